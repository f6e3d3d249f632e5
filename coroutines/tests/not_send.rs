//! `cargo run -p coroutines -- greenlet` prints what rustc says about a greenlet handed to
//! another thread (`lessons::greenlet::NOT_SEND_ERROR`). This compiles the lesson's snippet
//! with rustc against this build's `coroutines` and checks that rustc says exactly that: that
//! the program is refused, because the greenlet cannot be sent between threads. Its twin, a
//! greenlet made on the other thread, must compile.
//!
//! rustc type-checks only (`--emit=metadata`, well under a second), with the `coroutines`
//! library cargo built for this test (`target/<profile>/deps/libcoroutines-*.rlib`, the newest)
//! and its dependencies from the same directory. The source goes in a temporary directory,
//! removed afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use coroutines::lessons::greenlet::{NOT_SEND_ERROR, NOT_SEND_SNIPPET};

/// The directory of this test binary: cargo's `deps`, where the libraries it was built with
/// are.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent().expect("deps").to_owned()
}

/// The newest `libcoroutines-*.rlib` in `deps`.
fn coroutines_rlib(deps: &Path) -> PathBuf {
    std::fs::read_dir(deps)
        .expect("reading deps")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libcoroutines-") && n.ends_with(".rlib"))
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("no libcoroutines-*.rlib next to the test binary")
}

/// rustc: the one next to the cargo that built this test, else the one on the PATH.
fn rustc() -> PathBuf {
    let beside = Path::new(env!("CARGO")).with_file_name("rustc");
    if beside.exists() {
        beside
    } else {
        PathBuf::from("rustc")
    }
}

/// Type-check `body` as the body of a `main` returning `Result`; (whether it compiled, what
/// rustc printed).
fn check(name: &str, body: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("coroutines-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("main.rs");
    std::fs::write(
        &src,
        format!(
            "use coroutines::{{Greenlet, val}};\n\
             fn main() -> Result<(), coroutines::GreenletError> {{\n{body}\nOk(())\n}}\n"
        ),
    )
    .expect("writing the snippet");
    let deps = deps_dir();
    let mut cmd = Command::new(rustc());
    cmd.args([
        "--edition",
        "2024",
        "--crate-type",
        "bin",
        "--emit=metadata",
    ])
    .arg("--out-dir")
    .arg(&dir)
    .arg("--extern")
    .arg(format!("coroutines={}", coroutines_rlib(&deps).display()))
    .arg("-L")
    .arg(format!("dependency={}", deps.display()))
    .arg(&src);
    let out = lesson::output_within(&mut cmd, Duration::from_secs(120));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.expect("running rustc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rustc_refuses_a_greenlet_sent_to_another_thread_with_the_lessons_words() {
    let (compiled, stderr) = check("not-send", NOT_SEND_SNIPPET);
    assert!(!compiled, "the snippet compiled:\n{stderr}");
    for line in NOT_SEND_ERROR {
        assert!(
            stderr.contains(line),
            "rustc did not say {line:?}; it said:\n{stderr}"
        );
    }
    assert!(stderr.contains("cannot be sent between threads safely"));
}

#[test]
fn a_greenlet_made_on_the_other_thread_compiles() {
    let body = "std::thread::spawn(|| {\n\
                let g = Greenlet::new(|v| Ok(v)).unwrap();\n\
                let _ = g.switch(val(()));\n\
                }).join().unwrap();";
    let (compiled, stderr) = check("send-ok", body);
    assert!(compiled, "the twin did not compile:\n{stderr}");
}
