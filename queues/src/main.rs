//! `cargo run -p queues [-- LESSON]`: see `--help`.

fn main() -> std::process::ExitCode {
    lesson::main(&queues::CHAPTER)
}
