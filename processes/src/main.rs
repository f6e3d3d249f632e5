//! `cargo run -p processes [-- LESSON]`: see `--help`.

fn main() -> std::process::ExitCode {
    // A spawned child runs its entry here and exits; otherwise this returns at once.
    processes::spawn_main(processes::ENTRIES);
    lesson::main(&processes::CHAPTER)
}
