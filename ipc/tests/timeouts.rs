//! Timeouts as Python takes them: any length. A huge timeout means "as long as it takes"; it
//! must neither panic (`Instant + Duration` overflowing) nor turn into an immediate time-out (a
//! `timespec` whose seconds wrapped negative). Each of these panicked or timed out at once
//! before `deadline.rs`.

use std::time::Duration;

use ipc::{Lock, Pipe, Queue};
use lesson::within;

const LIMIT: Duration = Duration::from_secs(60);
const HUGE: [Duration; 3] = [
    Duration::MAX,
    Duration::from_secs(u64::MAX / 2),
    Duration::from_secs(1 << 62),
];

#[test]
fn lock_acquire_timeout_huge_waits_for_the_holder() {
    within(LIMIT, "huge lock timeouts", || {
        for huge in HUGE {
            let lock = Lock::new().unwrap();
            assert!(
                lock.acquire_timeout(huge).unwrap().is_some(),
                "{huge:?} free"
            );
            let (held_tx, held_rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let holder = {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    let _g = lock.acquire().unwrap();
                    held_tx.send(()).unwrap();
                    let _ = go_rx.recv();
                })
            };
            held_rx.recv().unwrap();
            let waiter = {
                let lock = lock.clone();
                std::thread::spawn(move || lock.acquire_timeout(huge).unwrap().is_some())
            };
            std::thread::sleep(Duration::from_millis(20));
            go_tx.send(()).unwrap();
            holder.join().unwrap();
            assert!(
                waiter.join().unwrap(),
                "{huge:?}: gave up instead of waiting"
            );
        }
    });
}

#[test]
fn queue_put_and_get_timeout_huge() {
    within(LIMIT, "huge queue timeouts", || {
        let q: Queue<u32> = Queue::new().unwrap();
        for (i, huge) in HUGE.into_iter().enumerate() {
            q.put_timeout(&(i as u32), huge).unwrap();
            assert_eq!(q.get_timeout(huge).unwrap(), i as u32);
        }
    });
}

#[test]
fn connection_poll_and_recv_timeout_huge() {
    within(LIMIT, "huge connection timeouts", || {
        let (a, b) = Pipe::duplex::<u32, u32>().unwrap();
        for (i, huge) in HUGE.into_iter().enumerate() {
            a.send(&(i as u32)).unwrap();
            assert!(b.poll(huge).unwrap());
            assert_eq!(b.recv_timeout(huge).unwrap(), i as u32);
        }
    });
}
