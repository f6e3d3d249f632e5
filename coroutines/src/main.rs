//! `cargo run -p coroutines [-- LESSON]`: see `--help`.

fn main() -> std::process::ExitCode {
    lesson::main(&coroutines::CHAPTER)
}
