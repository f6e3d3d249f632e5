//! `cargo run -p pool [-- LESSON]`: see `--help`.

fn main() -> std::process::ExitCode {
    lesson::main(&pool::CHAPTER)
}
