//! `cargo run -p pool [-- LESSON]`: see `--help`.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lesson::main(&pool::CHAPTER)
}
