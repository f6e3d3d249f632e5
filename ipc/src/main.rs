//! `cargo run -p ipc [-- LESSON]`: see `--help`.

fn main() -> std::process::ExitCode {
    // A child started with spawn runs its entry here and exits; otherwise this returns at once.
    processes::spawn_main(ipc::lessons::ENTRIES);
    lesson::main(&ipc::CHAPTER)
}
