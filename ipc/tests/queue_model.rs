//! The Queue's ring (its unsafe copies in and out of shared memory, its chunks, its markers)
//! checked against a model: random sequences of items of every size, some put with a time-out
//! short enough to be cancelled part-way, from two producer threads; what the consumer gets
//! must be exactly the items whose `put` succeeded, whole, each producer's in its order.
//! Threads share the mapping exactly as processes do (one `MAP_SHARED` region).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipc::queue::CAPACITY;
use ipc::{FrameError, Queue};
use lesson::testing::Rng;
use lesson::within;

type Item = (u8, u32, Vec<u8>);

/// Per producer: (index, length) of each item, in order.
type Log = Vec<Vec<(u32, usize)>>;

fn payload(p: u8, i: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (k as u32).wrapping_mul(31) as u8 ^ p ^ i as u8)
        .collect()
}

#[test]
fn what_is_got_is_exactly_what_was_put_whatever_the_sizes_and_cancellations() {
    let seed = lesson::testing::seed("QUEUE_MODEL_SEED");
    within(Duration::from_secs(240), "model", move || {
        let q: Queue<Item> = Queue::new().unwrap();
        // The model: each producer's successful puts, in order.
        let put: Arc<Mutex<Log>> = Arc::new(Mutex::new(vec![vec![]; 2]));
        let producers: Vec<_> = (0..2u8)
            .map(|p| {
                let (q, put) = (q.clone(), put.clone());
                std::thread::spawn(move || {
                    let mut rng = Rng::new(seed ^ ((u64::from(p) + 1) * 0x9e37_79b9));
                    let mut cancelled = 0;
                    for i in 0..150u32 {
                        let len = match rng.below(6) {
                            0 => rng.below(16),
                            1 | 2 => rng.below(2000),
                            3 => rng.below(CAPACITY),
                            4 => CAPACITY - 16 + rng.below(32),
                            _ => CAPACITY + rng.below(3 * CAPACITY),
                        };
                        let item = (p, i, payload(p, i, len));
                        let r = if rng.below(4) == 0 {
                            // Short enough to expire part-way through a large item at times.
                            q.put_timeout(&item, Duration::from_micros(rng.below(300) as u64))
                        } else {
                            q.put(&item)
                        };
                        match r {
                            Ok(()) => put.lock().unwrap()[p as usize].push((i, len)),
                            Err(FrameError::Timeout) => cancelled += 1,
                            Err(e) => panic!("put: {e}"),
                        }
                    }
                    // The end of this producer's items.
                    q.put(&(p, u32::MAX, vec![])).unwrap();
                    cancelled
                })
            })
            .collect();
        let mut got: Log = vec![vec![]; 2];
        let mut ended = 0;
        while ended < 2 {
            let (p, i, bytes) = q.get_timeout(Duration::from_secs(60)).unwrap();
            if i == u32::MAX {
                ended += 1;
                continue;
            }
            assert!(bytes == payload(p, i, bytes.len()), "item {p}/{i} torn");
            got[p as usize].push((i, bytes.len()));
        }
        let cancelled: usize = producers.into_iter().map(|t| t.join().unwrap()).sum();
        eprintln!("cancelled {cancelled}");
        assert_eq!(got, *put.lock().unwrap());
        assert!(matches!(q.try_get(), Err(FrameError::Timeout)));
        assert_eq!(q.qsize(), 0);
        assert!(q.is_empty());
    });
}
