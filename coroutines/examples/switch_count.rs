//! Instructions per switch, counted by callgrind (issue 22): run `N` round trips of one kind,
//! so that two runs with different `N` give the cost of one switch by difference, whatever the
//! start-up costs.
//!
//! ```text
//! cargo build --release -p coroutines --example switch_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/switch_count greenlet 100000
//! ```
//!
//! `greenlet`: `Greenlet::switch` main -> greenlet -> main, as the bench's `greenlet_switch`;
//! `raw`: corosensei's resume + suspend, as `corosensei_switch_raw`. A round trip is two
//! switches.

use corosensei::{Coroutine, CoroutineResult};
use coroutines::{Greenlet, getcurrent, val};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(kind), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: switch_count greenlet|raw ROUND_TRIPS");
        std::process::exit(2);
    };
    match kind.as_str() {
        "greenlet" => {
            let g = Greenlet::new(|_| {
                let parent = getcurrent().parent().expect("made on the root");
                loop {
                    parent.switch(val(()))?;
                }
            })
            .expect("greenlet");
            for _ in 0..n {
                drop(g.switch(val(())).expect("switch"));
            }
        }
        "raw" => {
            let mut raw: Coroutine<(), (), ()> = Coroutine::new(|y, ()| {
                loop {
                    y.suspend(());
                }
            });
            for _ in 0..n {
                if let CoroutineResult::Return(()) = raw.resume(()) {
                    break;
                }
            }
        }
        other => {
            eprintln!("switch_count: unknown kind {other:?} (greenlet or raw)");
            std::process::exit(2);
        }
    }
}
