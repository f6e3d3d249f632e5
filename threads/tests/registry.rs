//! `enumerate()` / `active_count()` are process-wide, so this file holds one test: no other test
//! in this binary starts threads that could show up in the list.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use threads::{Thread, active_count, enumerate};

#[test]
fn enumerate_lists_exactly_the_live_registered_threads() {
    assert_eq!(active_count(), 0);
    let release = Arc::new(Barrier::new(4));
    let started: Vec<Thread<()>> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let release = release.clone();
            Thread::builder()
                .name(name)
                .spawn(move || {
                    release.wait();
                })
                .unwrap()
        })
        .collect();
    // Plain std threads are not in the registry.
    let plain = std::thread::spawn(|| ());
    let listed: Vec<String> = enumerate().into_iter().map(|t| t.name).collect();
    assert_eq!(listed, ["a", "b", "c"]);
    assert_eq!(active_count(), 3);
    let idents: Vec<u64> = enumerate().into_iter().map(|t| t.ident).collect();
    assert_eq!(
        idents,
        started.iter().map(|t| t.ident()).collect::<Vec<_>>()
    );

    release.wait();
    for t in &started {
        assert!(t.join_timeout(Duration::from_secs(30)));
    }
    // Finished threads leave the list before join_timeout reports them finished.
    assert_eq!(active_count(), 0);
    assert!(enumerate().is_empty());
    for t in started {
        t.join().unwrap();
    }
    plain.join().unwrap();
}
