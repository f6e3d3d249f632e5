//! The excepthook lesson replaces the process's panic hook for a moment, so it runs in a test
//! binary of its own, where no other test panics meanwhile.

use lesson::{Cx, Kind};

#[test]
fn a_hook_sees_worker_panics_before_unwinding_and_the_previous_hook_is_put_back() {
    // `cargo run -p threads -- excepthook`.
    let cx = Cx::quiet(0.04);
    threads::lessons::excepthook::run(&cx).unwrap();
    let r = cx.records();
    let pos = |who: &str, needle: &str| {
        r.iter()
            .position(|x| x.speaker == who && x.text.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} by {who} in {r:#?}"))
    };
    for w in ["worker-1", "worker-2"] {
        // The hook ran in the panicking thread, before that thread's destructors.
        assert!(pos(w, "my hook: thread") < pos(w, "destructors run"), "{w}");
        assert!(r[pos(w, "my hook")].text.contains("excepthook.rs"));
    }
    assert!(
        !r.iter()
            .any(|x| x.speaker == "other" && x.text.starts_with("my hook"))
    );
    assert!(r.iter().all(|x| x.kind == Kind::Said));
    let me = std::thread::current();
    let main = me.name().unwrap();
    pos(
        main,
        "the mutex the workers held while panicking is poisoned: true",
    );
    // join() returned each panic as an Err, with the thread's name and message.
    let said = |text: &str| {
        assert!(
            r.iter().any(|x| x.speaker == main && x.text == text),
            "{text:?} in {r:#?}"
        );
    };
    said(
        "join() -> Err: thread default-hook panicked: nobody replaced the hook (the hook's line \
         is on stderr)",
    );
    said(
        "join() of each -> Err: thread other panicked: not a worker: the previous hook reports \
         me; thread worker-1 panicked: bad input #1; thread worker-2 panicked: bad input #2",
    );
    // "it serves every thread, main included": the lesson's own thread (here the test's)
    // panicked under the same hook, which ran before that thread's destructors, and the panic
    // was caught.
    let hooked = pos(main, &format!("my hook: thread {main} panicked at "));
    assert!(
        r[hooked].text.ends_with(": main panics too"),
        "{}",
        r[hooked].text
    );
    assert!(r[hooked].text.contains("excepthook.rs"));
    assert!(hooked < pos(main, "destructors run"));
    let caught = pos(
        main,
        "catch_unwind on main -> Err: main panics too (the hook ran",
    );
    assert!(pos(main, "destructors run") < caught);
    assert_eq!(
        r.iter().filter(|x| x.text.starts_with("my hook:")).count(),
        3,
        "two workers and main: {r:#?}"
    );
    // The hook was put back: a worker's panic now goes to the previous hook, not the lesson.
    let before = cx.records().len();
    let t = std::thread::Builder::new()
        .name("worker-after".into())
        .spawn(|| -> () { panic!("after the lesson") })
        .unwrap();
    assert!(t.join().is_err());
    assert_eq!(cx.records().len(), before);
}
