//! Issue 15, item 8: the shared-memory Queue recovers from a process killed in the middle of an
//! item larger than its ring. The item is lost, reported once ([`FrameError::Lost`]); every
//! other item arrives whole, in order, once; and no wait outlives its deadline.
//!
//! A producer is caught mid-item by making the item larger than the ring with no one reading:
//! it fills the ring and waits for room, holding the writer lock, half its item written. A
//! consumer is caught mid-item by stopping (SIGSTOP) the producer of a large item once the
//! consumer has taken all there was of it.

use std::time::{Duration, Instant};

use ipc::queue::CAPACITY;
use ipc::{FrameError, Queue};
use lesson::within;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

type Item = (u32, Vec<u8>);

/// Item `i` of producer `p`: a payload whose bytes say whose it is.
fn item(p: u8, i: u32, len: usize) -> Item {
    (i, (0..len).map(|k| p ^ (k as u8) ^ (i as u8)).collect())
}

/// The bytes waiting in the queue, from its `Debug` output.
fn queued<T>(q: &Queue<T>) -> usize {
    let text = format!("{q:?}");
    text.split("bytes_queued: ")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no bytes_queued in {text}"))
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < LONG, "{what}: not within {LONG:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A producer that puts one item larger than the ring and stays blocked in the middle of it,
/// and how many bytes of it are in the ring: one chunk, its 4-byte header and its payload.
fn stuck_producer(q: &Queue<Item>, big: usize) -> (Process, usize) {
    let child_q = q.clone();
    let mut p = Process::new(move || -> Result<(), FrameError> { child_q.put(&item(1, 0, big)) })
        .named("stuck producer");
    p.start().unwrap();
    wait_until("the producer fills the ring", || queued(q) >= CAPACITY - 64);
    (p, queued(q))
}

/// The bytes of an item's encoding (what a lost item's `discarded` counts).
fn encoded_len(i: &Item) -> usize {
    ipc::frame::encode(i, usize::MAX).unwrap().len() - ipc::frame::HEADER
}

#[test]
fn a_producer_killed_mid_item_loses_that_item_and_the_others_go_on() {
    let _fork = serial();
    within(LONG, "producer killed mid-item", || {
        let q: Queue<Item> = Queue::new().unwrap();
        let (mut a, published) = stuck_producer(&q, 3 * CAPACITY);
        a.kill().unwrap();
        assert_eq!(a.join().unwrap(), -9);
        // Another producer goes on putting.
        let qb = q.clone();
        let mut b = Process::new(move || -> Result<(), FrameError> {
            for i in 1..=200 {
                qb.put(&item(2, i, 1 + (i as usize * 97) % 3000))?;
            }
            Ok(())
        })
        .named("producer b");
        b.start().unwrap();
        let mut lost = 0;
        let mut next = 1;
        while next <= 200 {
            match q.get_timeout(LONG) {
                Ok(got) => {
                    let want = item(2, next, 1 + (next as usize * 97) % 3000);
                    assert!(got == want, "item {next} arrived torn");
                    next += 1;
                }
                Err(FrameError::Lost { cause, discarded }) => {
                    assert_eq!(cause, ipc::frame::LostCause::ProducerDied);
                    assert_eq!(discarded, published - 4, "what the dead producer wrote");
                    lost += 1;
                }
                Err(e) => panic!("item {next}: {e}"),
            }
        }
        assert_eq!(b.join().unwrap(), 0);
        assert_eq!(lost, 1, "exactly the killed producer's item is lost");
        assert!(matches!(q.try_get(), Err(FrameError::Timeout)));
    });
}

#[test]
fn a_producer_killed_mid_item_with_no_other_does_not_leave_get_waiting() {
    let _fork = serial();
    within(LONG, "no other producer", || {
        let q: Queue<Item> = Queue::new().unwrap();
        let (mut a, published) = stuck_producer(&q, 3 * CAPACITY);
        a.kill().unwrap();
        a.join().unwrap();
        // The first get takes what the dead producer wrote, finds it will never end, and says
        // so; it neither hangs nor hands out a torn item.
        match q.get_timeout(Duration::from_secs(2)) {
            Err(e @ FrameError::Lost { .. }) => {
                assert!(e.to_string().contains("putting"), "{e}");
                let FrameError::Lost { discarded, .. } = e else {
                    unreachable!()
                };
                assert_eq!(discarded, published - 4, "what the dead producer wrote");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(q.try_get(), Err(FrameError::Timeout)));
        q.put(&item(3, 1, 10)).unwrap();
        assert_eq!(q.get_timeout(LONG).unwrap(), item(3, 1, 10));
    });
}

#[test]
fn a_consumer_killed_mid_item_loses_that_item_and_the_next_get_goes_on() {
    let _fork = serial();
    within(LONG, "consumer killed mid-item", || {
        let q: Queue<Item> = Queue::new().unwrap();
        let qp = q.clone();
        let mut p = Process::new(move || -> Result<(), FrameError> {
            qp.put(&item(1, 0, 3 * CAPACITY))?;
            for i in 1..=50 {
                qp.put(&item(1, i, 100))?;
            }
            Ok(())
        })
        .named("producer");
        p.start().unwrap();
        wait_until("the producer fills the ring", || {
            queued(&q) >= CAPACITY - 64
        });
        let taken = queued(&q) - 4; // the consumer will take this chunk's payload
        let producer = Pid::from_raw(p.pid().unwrap());
        kill(producer, Signal::SIGSTOP).unwrap();
        // A consumer takes all of the item there is, and waits for the rest.
        let qc = q.clone();
        let mut c = Process::new(move || -> Result<(), FrameError> { qc.get().map(drop) })
            .named("consumer");
        c.start().unwrap();
        wait_until("the consumer takes what there is", || queued(&q) == 0);
        c.kill().unwrap();
        assert_eq!(c.join().unwrap(), -9);
        kill(producer, Signal::SIGCONT).unwrap();
        // The rest of that item is discarded, reported once; then every other item.
        match q.get_timeout(LONG) {
            Err(e @ FrameError::Lost { .. }) => {
                assert!(e.to_string().contains("getting"), "{e}");
                let FrameError::Lost { discarded, .. } = e else {
                    unreachable!()
                };
                let whole = encoded_len(&item(1, 0, 3 * CAPACITY));
                assert_eq!(
                    discarded,
                    whole - taken,
                    "the rest the dead consumer did not take"
                );
            }
            other => panic!("{other:?}"),
        }
        for i in 1..=50 {
            assert_eq!(q.get_timeout(LONG).unwrap(), item(1, i, 100), "item {i}");
        }
        assert_eq!(p.join().unwrap(), 0);
        assert!(matches!(q.try_get(), Err(FrameError::Timeout)));
    });
}

#[test]
fn put_timeout_honours_its_deadline_in_the_middle_of_a_large_item() {
    let _fork = serial();
    within(LONG, "put_timeout mid-item", || {
        let q: Queue<Item> = Queue::new().unwrap();
        // Nobody reads: the item fills the ring and cannot finish.
        let big = item(1, 0, 3 * CAPACITY);
        assert!(matches!(
            q.put_timeout(&big, Duration::from_millis(200)),
            Err(FrameError::Timeout)
        ));
        // Nothing of it is handed out: the next get discards what was in, and finds nothing.
        assert!(matches!(q.try_get(), Err(FrameError::Timeout)));
        q.put(&item(1, 1, 10)).unwrap();
        assert_eq!(q.get_timeout(LONG).unwrap(), item(1, 1, 10));
        assert!(matches!(q.try_get(), Err(FrameError::Timeout)));
    });
}

#[test]
fn get_after_close_is_a_clear_error_not_a_wait() {
    let _fork = serial();
    within(LONG, "closed", || {
        let mut q: Queue<u32> = Queue::new().unwrap();
        let other = q.clone();
        other.put(&1).unwrap();
        q.close();
        let err = q.get().unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
        assert!(q.put(&2).unwrap_err().to_string().contains("closed"));
        // Other handles are not closed.
        assert_eq!(other.get_timeout(LONG).unwrap(), 1);
    });
}
