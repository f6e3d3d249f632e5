//! The queue's behaviour: orders, blocking with deadlines, Full / Empty / ShutDown,
//! task_done / join, maxsize 0, and many producers and consumers.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use lesson::within;
use queues::{
    GetError, LifoQueue, Prioritized, PriorityQueue, PutError, Queue, TextbookQueue,
    TooManyTaskDone,
};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(20);

fn drain<S: queues::Store>(q: &queues::BlockingQueue<S>) -> Vec<S::Item> {
    let mut out = Vec::new();
    while let Ok(x) = q.try_get() {
        out.push(x);
    }
    out
}

#[test]
fn each_order_is_exact() {
    let fifo = Queue::new(0);
    let lifo = LifoQueue::new(0);
    let prio = PriorityQueue::new(0);
    for x in [3, 1, 4, 1, 5, 9, 2, 6] {
        fifo.put(x).unwrap();
        lifo.put(x).unwrap();
        prio.put(x).unwrap();
    }
    assert_eq!(drain(&fifo), [3, 1, 4, 1, 5, 9, 2, 6]);
    assert_eq!(drain(&lifo), [6, 2, 9, 5, 1, 4, 1, 3]);
    assert_eq!(drain(&prio), [1, 1, 2, 3, 4, 5, 6, 9]);
}

#[test]
fn equal_priorities_come_out_in_insertion_order() {
    let q = PriorityQueue::new(0);
    for (p, v) in [(2, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (2, 'e')] {
        q.put(Prioritized::new(p, v)).unwrap();
    }
    let got: Vec<char> = drain(&q).into_iter().map(|x| x.value).collect();
    assert_eq!(got, ['b', 'd', 'a', 'c', 'e']);
}

#[test]
fn full_and_empty_hand_back_or_report() {
    let q = Queue::new(2);
    assert_eq!(q.try_get(), Err(GetError::Empty));
    assert_eq!(q.get_timeout(SHORT), Err(GetError::Empty));
    q.put(1).unwrap();
    q.try_put(2).unwrap();
    assert!(q.full());
    assert_eq!(q.try_put(3).unwrap_err().into_inner(), 3);
    assert!(matches!(q.put_timeout(4, SHORT), Err(PutError::Full(4))));
    assert_eq!(q.qsize(), 2);
    // A failed put does not count as unfinished work.
    assert_eq!(q.unfinished(), 2);
}

#[test]
fn maxsize_0_is_unbounded() {
    let q = Queue::new(0);
    for i in 0..100_000 {
        q.try_put(i).unwrap();
    }
    assert!(!q.full());
    assert_eq!(q.qsize(), 100_000);
    let l = LifoQueue::new(0);
    let p = PriorityQueue::new(0);
    for i in 0..1000 {
        l.try_put(i).unwrap();
        p.try_put(i).unwrap();
    }
}

#[test]
fn a_blocked_put_proceeds_when_space_frees() {
    within(LONG, "blocked put", || {
        let q = Arc::new(Queue::new(1));
        q.put(1).unwrap();
        let (tx, rx) = mpsc::channel();
        let q2 = q.clone();
        let t = thread::spawn(move || {
            q2.put(2).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(SHORT).is_err(),
            "put did not block on a full queue"
        );
        assert_eq!(q.get().unwrap(), 1);
        rx.recv_timeout(LONG)
            .expect("the put went through once there was room");
        t.join().unwrap();
        assert_eq!(q.get().unwrap(), 2);
    });
}

#[test]
fn a_blocked_get_proceeds_when_an_item_arrives() {
    within(LONG, "blocked get", || {
        for kind in 0..3 {
            let (tx, rx) = mpsc::channel();
            let q = Arc::new(Queue::new(if kind == 0 { 0 } else { 1 }));
            let q2 = q.clone();
            let t = thread::spawn(move || tx.send(q2.get()).unwrap());
            assert!(
                rx.recv_timeout(SHORT).is_err(),
                "get did not block on empty"
            );
            q.put(42).unwrap();
            assert_eq!(rx.recv_timeout(LONG).unwrap(), Ok(42));
            t.join().unwrap();
        }
    });
}

#[test]
fn task_done_and_join_count_puts_not_emptiness() {
    within(LONG, "join", || {
        let q = Arc::new(Queue::new(0));
        assert!(
            q.join_timeout(Duration::ZERO),
            "nothing put: nothing to wait for"
        );
        q.put("a").unwrap();
        q.put("b").unwrap();
        assert_eq!(q.get().unwrap(), "a");
        assert_eq!(q.get().unwrap(), "b");
        assert!(q.empty());
        assert!(!q.join_timeout(SHORT), "empty but not done: join must wait");
        q.task_done().unwrap();
        assert_eq!(q.unfinished(), 1);
        let q2 = q.clone();
        let joiner = thread::spawn(move || q2.join());
        thread::sleep(SHORT);
        assert!(!joiner.is_finished());
        q.task_done().unwrap();
        joiner.join().unwrap();
        assert_eq!(q.task_done(), Err(TooManyTaskDone));
        assert_eq!(q.unfinished(), 0);
    });
}

#[test]
fn shutdown_wakes_blocked_getters_and_putters_and_drains() {
    within(LONG, "shutdown", || {
        let empty = Arc::new(Queue::<u8>::new(1));
        let full = Arc::new(Queue::new(1));
        full.put(1u8).unwrap();
        let getters: Vec<_> = (0..3)
            .map(|_| {
                let q = empty.clone();
                thread::spawn(move || q.get())
            })
            .collect();
        let putters: Vec<_> = (0..3)
            .map(|i| {
                let q = full.clone();
                thread::spawn(move || q.put(10 + i))
            })
            .collect();
        thread::sleep(SHORT);
        empty.shutdown(false);
        full.shutdown(false);
        for g in getters {
            assert_eq!(g.join().unwrap(), Err(GetError::ShutDown));
        }
        for p in putters {
            assert!(matches!(p.join().unwrap(), Err(PutError::ShutDown(_))));
        }
        // What was in the queue is still handed out, then ShutDown.
        assert_eq!(full.get(), Ok(1));
        assert_eq!(full.get(), Err(GetError::ShutDown));
        assert!(matches!(full.put(5), Err(PutError::ShutDown(5))));
        assert!(full.is_shutdown());
    });
}

#[test]
fn immediate_shutdown_discards_and_releases_join() {
    let q = Queue::new(0);
    for i in 0..5 {
        q.put(i).unwrap();
    }
    q.shutdown(true);
    assert_eq!(q.try_get(), Err(GetError::ShutDown));
    assert!(q.join_timeout(Duration::ZERO));
}

#[test]
fn four_producers_four_consumers_deliver_every_item_exactly_once() {
    const PER: u64 = 20_000;
    for maxsize in [0, 3, 64] {
        let (count, sum) = within(LONG, "4P4C", move || {
            let q = Arc::new(Queue::<u64>::new(maxsize));
            let start = Arc::new(Barrier::new(8));
            let consumers: Vec<_> = (0..4)
                .map(|_| {
                    let (q, start) = (q.clone(), start.clone());
                    thread::spawn(move || {
                        start.wait();
                        let (mut n, mut sum) = (0u64, 0u64);
                        while let Ok(x) = q.get() {
                            n += 1;
                            sum += x;
                            q.task_done().unwrap();
                        }
                        (n, sum)
                    })
                })
                .collect();
            let producers: Vec<_> = (0..4)
                .map(|p| {
                    let (q, start) = (q.clone(), start.clone());
                    thread::spawn(move || {
                        start.wait();
                        for i in 0..PER {
                            q.put(p * PER + i).unwrap();
                        }
                    })
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            q.join();
            q.shutdown(false);
            consumers
                .into_iter()
                .map(|c| c.join().unwrap())
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        let n = 4 * PER;
        assert_eq!(count, n, "maxsize {maxsize}");
        assert_eq!(sum, n * (n - 1) / 2, "maxsize {maxsize}: checksum");
    }
}

#[test]
fn lifo_and_priority_block_too() {
    within(LONG, "lifo/prio blocking", || {
        let l = Arc::new(LifoQueue::new(1));
        l.put(1).unwrap();
        let l2 = l.clone();
        let t = thread::spawn(move || l2.put(2));
        thread::sleep(SHORT);
        assert_eq!(l.get(), Ok(1));
        t.join().unwrap().unwrap();
        assert_eq!(l.get(), Ok(2));
        let p = Arc::new(PriorityQueue::<u8>::new(0));
        let p2 = p.clone();
        let t = thread::spawn(move || p2.get());
        thread::sleep(SHORT);
        p.put(7).unwrap();
        assert_eq!(t.join().unwrap(), Ok(7));
    });
}

#[test]
fn textbook_queue_is_correct_too() {
    within(LONG, "textbook", || {
        let q = Arc::new(TextbookQueue::new(3));
        let q2 = q.clone();
        let t = thread::spawn(move || (0..1000u32).map(|_| q2.get()).sum::<u32>());
        for i in 0..1000 {
            q.put(i);
        }
        assert_eq!(t.join().unwrap(), 999 * 1000 / 2);
    });
}

#[test]
fn try_operations_do_not_wait() {
    let q = Queue::<u8>::new(1);
    let t = Instant::now();
    for _ in 0..100 {
        let _ = q.try_get();
    }
    q.put(1).unwrap();
    for _ in 0..100 {
        let _ = q.try_put(2);
    }
    // Generous: 200 non-waiting calls are far below a second even on a loaded machine.
    assert!(t.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------------------
// Regressions of issue 16. Each failed on the code before its fix.

/// Bug 1: once `shutdown(true)` has returned, nothing is in the queue and no put succeeds, so
/// `try_get` says ShutDown, nothing is left unfinished, and `join` returns.
#[test]
fn no_put_lands_after_an_immediate_shutdown_returns() {
    within(LONG, "shutdown(true) against putters", || {
        for round in 0..300 {
            let q = Arc::new(Queue::<u32>::new(0));
            let go = Arc::new(Barrier::new(4));
            let putters: Vec<_> = (0..3)
                .map(|p| {
                    let (q, go) = (q.clone(), go.clone());
                    thread::spawn(move || {
                        go.wait();
                        let mut ok = 0;
                        for i in 0..200 {
                            if q.put(p * 1000 + i).is_err() {
                                break;
                            }
                            ok += 1;
                        }
                        ok
                    })
                })
                .collect();
            go.wait();
            q.shutdown(true);
            assert_eq!(
                q.try_get(),
                Err(GetError::ShutDown),
                "round {round}: an item after shutdown(true)"
            );
            assert_eq!(q.qsize(), 0, "round {round}");
            for p in putters {
                p.join().unwrap();
            }
            assert_eq!(
                q.qsize(),
                0,
                "round {round}: a put landed after shutdown returned"
            );
            assert_eq!(
                q.unfinished(),
                0,
                "round {round}: unfinished after shutdown(true)"
            );
            assert!(
                q.join_timeout(Duration::ZERO),
                "round {round}: join would block"
            );
        }
    });
}

/// Bug 1, graceful: after `shutdown(false)`, a consumer told ShutDown has seen the last item:
/// every put that succeeded was consumed.
#[test]
fn no_item_arrives_after_a_consumer_was_told_shutdown() {
    within(LONG, "shutdown(false) against putters", || {
        for round in 0..2000 {
            let q = Arc::new(Queue::<u32>::new(0));
            let go = Arc::new(Barrier::new(4));
            let putters: Vec<_> = (0..2)
                .map(|p| {
                    let (q, go) = (q.clone(), go.clone());
                    thread::spawn(move || {
                        go.wait();
                        (0..200u32)
                            .take_while(|i| q.put(p * 1000 + i).is_ok())
                            .count()
                    })
                })
                .collect();
            let consumer = {
                let (q, go) = (q.clone(), go.clone());
                thread::spawn(move || {
                    go.wait();
                    let mut got = 0;
                    while q.get().is_ok() {
                        got += 1;
                    }
                    got
                })
            };
            go.wait();
            q.shutdown(false);
            let got = consumer.join().unwrap();
            let put: usize = putters.into_iter().map(|p| p.join().unwrap()).sum();
            assert_eq!(
                got, put,
                "round {round}: an item arrived after the consumer was told ShutDown"
            );
            assert_eq!(q.qsize(), 0, "round {round}");
        }
    });
}

/// Bug 4: a timeout too long to add to `Instant::now()` means "wait as long as it takes".
#[test]
fn timed_waits_accept_duration_max() {
    within(LONG, "Duration::MAX", || {
        let q = Arc::new(Queue::new(1));
        q.put_timeout(1, Duration::MAX).unwrap();
        assert_eq!(q.get_timeout(Duration::MAX), Ok(1));
        q.task_done().unwrap();
        assert!(q.join_timeout(Duration::MAX));
        let q2 = q.clone();
        let getter = thread::spawn(move || q2.get_timeout(Duration::MAX));
        q.put(2).unwrap();
        assert_eq!(getter.join().unwrap(), Ok(2));
    });
}

/// Bug 5: a put still waiting for room is not yet unfinished work (Python counts an item once
/// it is in), so one `task_done` more than the items in is refused.
#[test]
fn a_blocked_put_is_not_counted_as_unfinished() {
    within(LONG, "blocked put and task_done", || {
        let q = Arc::new(Queue::new(1));
        q.put(1).unwrap();
        let q2 = q.clone();
        let putter = thread::spawn(move || q2.put(2));
        // The putter is given time to block; nothing it does may change the count.
        thread::sleep(SHORT);
        assert_eq!(q.unfinished(), 1, "a blocked put was counted");
        q.task_done().unwrap();
        assert_eq!(
            q.task_done(),
            Err(TooManyTaskDone),
            "a task_done too many was accepted"
        );
        assert_eq!(q.get(), Ok(1));
        putter.join().unwrap().unwrap();
        assert_eq!(q.unfinished(), 1);
        assert_eq!(q.get(), Ok(2));
        q.task_done().unwrap();
        assert!(q.join_timeout(Duration::ZERO));
    });
}

/// Set to make the next push of a [`PanickyStore`] panic. Only the test below uses that store.
static FAIL_NEXT_PUSH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A store whose push panics on request (Python's `FailingQueue._put` raising).
struct PanickyStore {
    inner: queues::Fifo<u32>,
}

impl queues::Store for PanickyStore {
    type Item = u32;
    fn with_maxsize(maxsize: usize) -> Self {
        PanickyStore {
            inner: queues::Fifo::with_maxsize(maxsize),
        }
    }
    fn push(&self, item: u32) -> Result<(), u32> {
        if FAIL_NEXT_PUSH.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("the store refused the item");
        }
        self.inner.push(item)
    }
    fn pop(&self) -> Option<u32> {
        self.inner.pop()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

/// Bug 5: a put whose store panics leaves the count as it was, so `join` does not wait for an
/// item that never went in.
#[test]
fn a_put_whose_store_panics_leaves_unfinished_unchanged() {
    within(LONG, "panicking store", || {
        let q = queues::BlockingQueue::<PanickyStore>::new(0);
        FAIL_NEXT_PUSH.store(true, std::sync::atomic::Ordering::SeqCst);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.put(7)));
        assert!(outcome.is_err(), "the store was meant to panic");
        assert_eq!(q.unfinished(), 0, "the failed put was counted");
        assert!(
            q.join_timeout(Duration::ZERO),
            "join waits for an item never put"
        );
        q.put(8).unwrap();
        assert_eq!(q.get(), Ok(8));
    });
}

/// `wait_stats` (issue 22): a get that times out on an empty queue spun, then slept at least
/// once, and nobody was woken; a put with nobody asleep wakes nobody.
#[test]
fn wait_stats_count_a_timed_out_get_as_parks_and_no_wakeup() {
    let q = Queue::<u8>::new(1);
    assert_eq!(q.get_timeout(SHORT), Err(GetError::Empty));
    let s = q.wait_stats();
    assert!(s.parks >= 1, "{s:?}");
    assert_eq!((s.wakeups, s.spun), (0, 0), "{s:?}");
    q.put(1).unwrap();
    assert_eq!(q.wait_stats().wakeups, 0);
}

/// `wait_stats` (issue 22): a getter asleep on an empty queue is woken by exactly one notify,
/// however many items are put while it is being woken.
#[test]
fn wait_stats_a_sleeping_getter_is_woken_once_by_several_puts() {
    let q = Arc::new(Queue::<u32>::new(0));
    let q2 = q.clone();
    let getter = thread::spawn(move || q2.get_timeout(LONG));
    // Wait (with a deadline) until the getter sleeps; then put three items at once.
    let deadline = Instant::now() + LONG;
    while q.wait_stats().parks == 0 {
        assert!(Instant::now() < deadline, "the getter never slept");
        thread::sleep(Duration::from_millis(1));
    }
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert_eq!(getter.join().unwrap(), Ok(0));
    let s = q.wait_stats();
    // Each put saw the getter counted asleep; only the first notified it (the getter may have
    // left before the second or third looked, or still be on its way: no notify either way).
    assert_eq!(s.wakeups, 1, "{s:?}");
    assert_eq!(drain(&q), [1, 2]);
}

/// How many times the [`StuckStore`] was asked for an item.
static STUCK_POPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A store that takes nothing in and has nothing to give: every put waits for room and every
/// get for an item. Counts its pops (the tries of the getters).
struct StuckStore;

impl queues::Store for StuckStore {
    type Item = u32;
    fn with_maxsize(_: usize) -> Self {
        StuckStore
    }
    fn push(&self, item: u32) -> Result<(), u32> {
        Err(item)
    }
    fn pop(&self) -> Option<u32> {
        STUCK_POPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        None
    }
    fn len(&self) -> usize {
        0
    }
}

/// Issue 22, `Queue(3)` regression: a getter that finds the queue empty while a putter is
/// asleep (or woken and not yet out) does not go to sleep after a few tries, but keeps
/// looking for about a wake-up's latency (two of the latencies learnt so far, at most 50 us,
/// counted in PAUSE instructions: about 200 looks, 250 ns apart, whatever the machine's
/// speed). Sleeping at once made the two sides of a `Queue(3)` on two CPUs wake each other in
/// turn (0.002 to 0.02 sleeps per item, each with a wake-up). Before the fix a getter tried
/// 7 times in all (the first try, 4 yields, the try under the lock, one after the time-out).
#[test]
fn a_getter_keeps_looking_while_the_putter_is_on_its_way_back() {
    within(LONG, "stuck store", || {
        let q = Arc::new(queues::BlockingQueue::<StuckStore>::new(1));
        let q2 = q.clone();
        let putter = thread::spawn(move || q2.put_timeout(1, LONG));
        let deadline = Instant::now() + LONG;
        while q.wait_stats().parks == 0 {
            assert!(Instant::now() < deadline, "the putter never slept");
            thread::sleep(Duration::from_millis(1));
        }
        let before = STUCK_POPS.load(std::sync::atomic::Ordering::SeqCst);
        // Long enough that the deadline does not end the looking early even on a loaded
        // machine (the looks are counted, not timed; only a deadline cuts them short).
        assert_eq!(
            q.get_timeout(Duration::from_millis(500)),
            Err(GetError::Empty)
        );
        let tries = STUCK_POPS.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert!(tries >= 50, "the getter slept after {tries} tries");
        q.shutdown(false);
        assert!(matches!(putter.join().unwrap(), Err(PutError::ShutDown(1))));
    });
}

/// Gets that found nothing, of the [`CountingFifo`].
static EMPTY_POPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A FIFO that counts the gets that found it empty.
struct CountingFifo(queues::Fifo<u32>);

impl queues::Store for CountingFifo {
    type Item = u32;
    fn with_maxsize(maxsize: usize) -> Self {
        CountingFifo(queues::Fifo::with_maxsize(maxsize))
    }
    fn push(&self, item: u32) -> Result<(), u32> {
        self.0.push(item)
    }
    fn pop(&self) -> Option<u32> {
        let item = self.0.pop();
        if item.is_none() {
            EMPTY_POPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        item
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Pin the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    let mut one = nix::sched::CpuSet::new();
    one.set(cpu).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one).unwrap();
}

/// Issue 22, `Queue(3)` regression: a producer and a consumer on one CPU (as `taskset -c 0`
/// puts them, and as a loaded machine's scheduler often does) cannot hand anything over while
/// the waiter spins: the waiter, seeing the other side's last wait on its own CPU, yields at
/// once. Counted: the gets that found the queue empty. The consumer waits about once per 3
/// items (the producer fills the queue, then yields to it); with a yield at once that is
/// about one empty get per wait, ~0.33 per item. Before the fix every wait first spun
/// (0.5 us or more, looking 4 or more times), ~1.7 empty gets per item.
#[test]
fn producer_and_consumer_on_one_cpu_yield_instead_of_spinning() {
    const ITEMS: u32 = 3000;
    within(LONG, "one cpu", || {
        let mask = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
        let cpu = (0..nix::sched::CpuSet::count())
            .find(|&c| mask.is_set(c).unwrap_or(false))
            .expect("a CPU this test may use");
        let q = Arc::new(queues::BlockingQueue::<CountingFifo>::new(3));
        let before = EMPTY_POPS.load(std::sync::atomic::Ordering::SeqCst);
        let consumer = {
            let q = q.clone();
            thread::spawn(move || {
                pin_to(cpu);
                (0..ITEMS).map(|_| q.get().unwrap()).collect::<Vec<_>>()
            })
        };
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                pin_to(cpu);
                (0..ITEMS).for_each(|i| q.put(i).unwrap());
            })
        };
        producer.join().unwrap();
        assert_eq!(consumer.join().unwrap(), (0..ITEMS).collect::<Vec<_>>());
        let empty = EMPTY_POPS.load(std::sync::atomic::Ordering::SeqCst) - before;
        let per_item = f64::from(u32::try_from(empty).unwrap()) / f64::from(ITEMS);
        assert!(
            per_item < 1.0,
            "{empty} empty gets for {ITEMS} items ({per_item:.2} per item): the waits spun"
        );
    });
}
