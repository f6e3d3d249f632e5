//! The introspection lesson counts every thread in the registry, so it runs in a test binary
//! of its own, where no other test starts threads.

use lesson::Cx;

#[test]
fn introspection_lists_three_threads_times_out_a_join_and_reports_a_panic() {
    let cx = Cx::quiet(0.04);
    threads::lessons::introspection::run(&cx).unwrap();
    let said = |needle: &str| {
        cx.position(None, needle)
            .unwrap_or_else(|| panic!("no {needle:?} in {:#?}", cx.records()))
    };
    let listed = &cx.records()[said("active_count() = 3")].text;
    assert!(listed.contains("worker-1, worker-2, Thread-"), "{listed}");
    said("worker-1.join_timeout(1 s) -> false; is_alive() -> true");
    said("their return values: [10, 20, 30]; enumerate() = [], active_count() = 0");
    // `cargo run -p threads -- introspection` (issue 18, claim 4): Python's enumerate() always
    // includes MainThread, so Python's figures are one more, said beside ours.
    assert!(listed.contains("Python's enumerate() always lists MainThread too: it would say 4"));
    said("active_count() = 0 (Python: [MainThread], 1");
    said("join() -> Err: thread doomed panicked: something went wrong in the thread");
}
