//! `cargo run -p threads [-- LESSON]`: see `--help`.

fn main() -> std::process::ExitCode {
    lesson::main(&threads::CHAPTER)
}
