//! Alone in its binary (it exhausts the process's memory maps): making greenlets until the
//! kernel refuses another stack mapping gives an error, not a crash, and things work again once
//! they are dropped.

use coroutines::{Greenlet, GreenletErrorKind, val};

#[test]
fn past_the_map_limit_a_new_greenlet_is_an_error() {
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530);
    let mut alive = Vec::new();
    let err = loop {
        // Small stacks: only the mapping count matters here.
        match Greenlet::with_stack_size(16 * 1024, Ok) {
            Ok(g) => alive.push(g),
            Err(e) => break e,
        }
        assert!(
            alive.len() <= limit,
            "no error after {} greenlets",
            alive.len()
        );
    };
    assert!(matches!(err.kind(), GreenletErrorKind::NoStack(_)), "{err}");
    assert!(
        err.to_string().contains("cannot make a greenlet stack"),
        "{err}"
    );
    assert!(
        alive.len() > 1000,
        "only {} greenlets before the limit",
        alive.len()
    );
    drop(alive);
    let g = Greenlet::new(Ok).expect("a stack once the others are gone");
    assert_eq!(g.switch(val(7)).unwrap().downcast::<i32>().unwrap(), 7);
}
