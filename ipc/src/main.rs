//! `cargo run -p ipc [-- LESSON]`: see `--help`.

fn main() -> std::process::ExitCode {
    lesson::main(&ipc::CHAPTER)
}
