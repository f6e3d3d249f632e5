//! `cargo run -p sync [-- LESSON]`: see `--help`.

fn main() -> std::process::ExitCode {
    lesson::main(&sync::CHAPTER)
}
