//! `cargo xtask TASK`: see `cargo xtask help`.

fn main() -> std::process::ExitCode {
    xtask::main(std::env::args().skip(1).collect())
}
