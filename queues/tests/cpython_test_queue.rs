//! CPython's `Lib/test/test_queue.py`, rewritten against this crate: `BaseQueueTestMixin` for
//! the three orders (3.11's tests as installed with python3, plus the shutdown tests of 3.13,
//! whose file is not installed here: written from 3.13's documented `shutdown` semantics, with
//! the list of tests taken from CPython 3.13's `test_queue.py`), and `FailingQueueTest`. One
//! module per test class, one `#[test]` per method, named after the original. The chapter
//! README's conformance table lists every method, ported or skipped, and why.
//!
//! Python's `_TriggerThread` sleeps 0.1 s before it unblocks the call under test, and the test
//! then checks that the call did not return before the trigger started: a sleep only before
//! "nothing has happened yet". Every test runs under a deadline (`within`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use lesson::within;
use queues::{BlockingQueue, GetError, PutError, Store, TooManyTaskDone};

const QUEUE_SIZE: usize = 5;
const LONG: Duration = Duration::from_secs(60);
/// `_TriggerThread`'s pause before it acts (Python: 0.1 s).
const TRIGGER_PAUSE: Duration = Duration::from_millis(20);

fn qfull<S: Store>(q: &BlockingQueue<S>) -> bool {
    q.maxsize() > 0 && q.qsize() == q.maxsize()
}

/// `do_blocking_test`: run `block` here while a trigger thread, after a pause, runs
/// `trigger`; `block` must not return before the trigger started.
fn do_blocking_test<R>(block: impl FnOnce() -> R, trigger: impl FnOnce() + Send) -> R {
    let started = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(TRIGGER_PAUSE);
            started.store(true, Ordering::SeqCst);
            trigger();
        });
        let r = block();
        assert!(
            started.load(Ordering::SeqCst),
            "blocking function appeared not to block"
        );
        r
    })
}

/// `do_exceptional_blocking_test`: as [`do_blocking_test`], for a `block` that must panic
/// (Python: raise) once the trigger has run.
fn do_exceptional_blocking_test<R>(block: impl FnOnce() -> R, trigger: impl FnOnce() + Send) {
    let started = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(TRIGGER_PAUSE);
            started.store(true, Ordering::SeqCst);
            trigger();
        });
        let outcome = catch_unwind(AssertUnwindSafe(block));
        assert!(outcome.is_err(), "expected the blocking call to fail");
    });
    assert!(
        started.load(Ordering::SeqCst),
        "trigger thread ended but event never set"
    );
}

/// `BaseQueueTestMixin`, generic over the order.
mod mixin {
    use super::*;

    fn basic_queue_test<S: Store<Item = i64>>(q: &BlockingQueue<S>, order: [i64; 3]) {
        assert_eq!(q.qsize(), 0, "call this function with an empty queue");
        assert!(q.empty());
        assert!(!q.full());
        q.put(111).unwrap();
        q.put(333).unwrap();
        q.put(222).unwrap();
        let actual = [q.get().unwrap(), q.get().unwrap(), q.get().unwrap()];
        assert_eq!(actual, order, "didn't seem to queue the correct data");
        for i in 0..QUEUE_SIZE as i64 - 1 {
            q.put(i).unwrap();
            assert!(q.qsize() > 0, "queue should not be empty");
        }
        assert!(!qfull(q), "queue should not be full");
        let last = 2 * QUEUE_SIZE as i64;
        let full = 3 * 2 * QUEUE_SIZE as i64;
        q.put(last).unwrap();
        assert!(qfull(q), "queue should be full");
        assert!(!q.empty());
        assert!(q.full());
        assert!(matches!(q.try_put(full), Err(PutError::Full(_))));
        assert!(matches!(
            q.put_timeout(full, Duration::from_millis(10)),
            Err(PutError::Full(_))
        ));
        // A blocking put, then one with a timeout.
        do_blocking_test(
            || q.put(full).unwrap(),
            || {
                let _ = q.get();
            },
        );
        do_blocking_test(
            || q.put_timeout(full, Duration::from_secs(10)).unwrap(),
            || {
                let _ = q.get();
            },
        );
        for _ in 0..QUEUE_SIZE {
            q.get().unwrap();
        }
        assert_eq!(q.qsize(), 0, "queue should be empty");
        assert_eq!(q.try_get(), Err(GetError::Empty));
        assert_eq!(
            q.get_timeout(Duration::from_millis(10)),
            Err(GetError::Empty)
        );
        // A blocking get, then one with a timeout.
        do_blocking_test(|| q.get().unwrap(), || q.put(-7).unwrap());
        do_blocking_test(
            || q.get_timeout(Duration::from_secs(10)).unwrap(),
            || q.put(-7).unwrap(),
        );
    }

    pub fn test_basic<S: Store<Item = i64> + 'static>(
        new: fn(usize) -> BlockingQueue<S>,
        order: [i64; 3],
    ) {
        within(LONG, "basic", move || {
            let q = new(QUEUE_SIZE);
            basic_queue_test(&q, order);
            basic_queue_test(&q, order);
        });
    }

    pub fn test_queue_task_done<S: Store<Item = i64>>(new: fn(usize) -> BlockingQueue<S>) {
        let q = new(0);
        assert_eq!(q.task_done(), Err(TooManyTaskDone));
    }

    fn queue_join_test<S: Store<Item = i64> + 'static>(q: &Arc<BlockingQueue<S>>) {
        let cum = Arc::new(Mutex::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (q, cum) = (q.clone(), cum.clone());
                thread::spawn(move || {
                    loop {
                        let x = q.get().unwrap();
                        if x < 0 {
                            q.task_done().unwrap();
                            return;
                        }
                        *cum.lock().unwrap() += x;
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        for i in 0..100 {
            q.put(i).unwrap();
        }
        q.join();
        assert_eq!(
            *cum.lock().unwrap(),
            (0..100).sum::<i64>(),
            "join() did not block until all tasks were done"
        );
        for _ in 0..2 {
            q.put(-1).unwrap();
        }
        q.join(); // joining twice works
        for w in workers {
            w.join().unwrap();
        }
    }

    pub fn test_queue_join<S: Store<Item = i64> + 'static>(new: fn(usize) -> BlockingQueue<S>) {
        within(LONG, "queue_join", move || {
            let q = Arc::new(new(0));
            queue_join_test(&q);
            queue_join_test(&q);
            assert_eq!(q.task_done(), Err(TooManyTaskDone));
        });
    }

    pub fn test_nowait<S: Store<Item = i64>>(new: fn(usize) -> BlockingQueue<S>) {
        let q = new(QUEUE_SIZE);
        for _ in 0..QUEUE_SIZE {
            q.try_put(1).unwrap();
        }
        assert!(matches!(q.try_put(1), Err(PutError::Full(1))));
        for _ in 0..QUEUE_SIZE {
            q.try_get().unwrap();
        }
        assert_eq!(q.try_get(), Err(GetError::Empty));
    }

    /// Adapted: `q.maxsize = 2` has no counterpart (a queue's capacity is fixed when it is
    /// made; the FIFO ring is allocated for it). The part that can be ported is checked.
    pub fn test_shrinking_queue<S: Store<Item = i64>>(new: fn(usize) -> BlockingQueue<S>) {
        let q = new(3);
        for i in 1..=3 {
            q.put(i).unwrap();
        }
        assert!(matches!(q.try_put(4), Err(PutError::Full(4))));
        assert_eq!(q.qsize(), 3);
    }

    // ---- Python 3.13's shutdown tests ----

    type StrQueue<S> = fn(usize) -> BlockingQueue<S>;

    pub fn test_shutdown_empty<S: Store<Item = &'static str>>(new: StrQueue<S>) {
        let q = new(0);
        q.shutdown(false);
        assert!(matches!(q.put("data"), Err(PutError::ShutDown("data"))));
        assert_eq!(q.get(), Err(GetError::ShutDown));
    }

    pub fn test_shutdown_nonempty<S: Store<Item = &'static str>>(new: StrQueue<S>) {
        let q = new(0);
        q.put("data").unwrap();
        q.shutdown(false);
        assert_eq!(q.get(), Ok("data"));
        assert_eq!(q.get(), Err(GetError::ShutDown));
    }

    pub fn test_shutdown_immediate<S: Store<Item = &'static str>>(new: StrQueue<S>) {
        let q = new(0);
        q.put("data").unwrap();
        q.shutdown(true);
        assert_eq!(q.get(), Err(GetError::ShutDown));
    }

    pub fn test_shutdown_allowed_transitions<S: Store<Item = &'static str>>(new: StrQueue<S>) {
        let q = new(0);
        assert!(!q.is_shutdown());
        q.shutdown(false);
        assert!(q.is_shutdown());
        q.shutdown(true);
        assert!(q.is_shutdown());
        q.shutdown(false);
        assert!(q.is_shutdown());
    }

    pub fn shutdown_all_methods_in_one_thread<S: Store<Item = &'static str>>(
        new: StrQueue<S>,
        immediate: bool,
    ) {
        let q = new(2);
        q.put("L").unwrap();
        q.try_put("O").unwrap();
        q.shutdown(immediate);
        assert!(matches!(q.put("E"), Err(PutError::ShutDown(_))));
        assert!(matches!(q.try_put("W"), Err(PutError::ShutDown(_))));
        if immediate {
            assert_eq!(q.get(), Err(GetError::ShutDown));
            assert_eq!(q.try_get(), Err(GetError::ShutDown));
            assert_eq!(q.task_done(), Err(TooManyTaskDone));
            assert!(q.join_timeout(LONG));
        } else {
            assert!(["L", "O"].contains(&q.get().unwrap()));
            q.task_done().unwrap();
            assert!(["L", "O"].contains(&q.get().unwrap()));
            q.task_done().unwrap();
            assert!(q.join_timeout(LONG));
            // Empty after shutdown(immediate=False): ShutDown, however it is asked.
            assert_eq!(q.get(), Err(GetError::ShutDown));
            assert_eq!(q.try_get(), Err(GetError::ShutDown));
            assert_eq!(
                q.get_timeout(Duration::from_secs(1)),
                Err(GetError::ShutDown)
            );
        }
    }

    /// Writers, readers and (for `immediate`) joiners around one shutdown, as in 3.13 (with
    /// 4096 messages instead of 65536). The readers loop on `try_get` until ShutDown; one
    /// writer asks for the shutdown half-way through its second half.
    pub fn shutdown_all_methods_in_many_threads<
        S: Store<Item = (usize, &'static str)> + 'static,
    >(
        new: fn(usize) -> BlockingQueue<S>,
        immediate: bool,
    ) {
        within(LONG, "shutdown_all_methods_in_many_threads", move || {
            const WRITERS: usize = 4;
            const READERS: usize = 6;
            const JOINERS: usize = 2;
            const MSGS: usize = 4096;
            const PER_WRITER: usize = MSGS / WRITERS;
            const WHEN_SHUTDOWN: usize = PER_WRITER / 2;
            let q = Arc::new(new(0));
            let parties = WRITERS + READERS + if immediate { JOINERS } else { 0 };
            let start = Arc::new(Barrier::new(parties));
            let shutdown_asked = Arc::new(AtomicBool::new(false));
            let res_puts = Arc::new(Mutex::new(Vec::new()));
            let res_gets = Arc::new(AtomicUsize::new(0));
            let mut threads = Vec::new();
            for _ in 0..WRITERS {
                let (q, start, asked, res) = (
                    q.clone(),
                    start.clone(),
                    shutdown_asked.clone(),
                    res_puts.clone(),
                );
                threads.push(thread::spawn(move || {
                    for i in 0..WHEN_SHUTDOWN / 2 {
                        q.put((i, "LOYD")).unwrap();
                    }
                    start.wait();
                    for i in WHEN_SHUTDOWN / 2..PER_WRITER {
                        if q.put((i, "YDLO")).is_err() {
                            res.lock().unwrap().push(false);
                            break;
                        }
                        if i == WHEN_SHUTDOWN && !asked.swap(true, Ordering::SeqCst) {
                            res.lock().unwrap().push(true);
                        }
                    }
                }));
            }
            for _ in 0..READERS {
                let (q, start, res) = (q.clone(), start.clone(), res_gets.clone());
                threads.push(thread::spawn(move || {
                    q.get().unwrap();
                    q.task_done().unwrap();
                    start.wait();
                    loop {
                        match q.try_get() {
                            Ok(_) => q.task_done().unwrap(),
                            Err(GetError::ShutDown) => {
                                res.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            Err(GetError::Empty) => thread::yield_now(),
                        }
                    }
                }));
            }
            let empty_after_shutdown = {
                let (q, asked) = (q.clone(), shutdown_asked.clone());
                thread::spawn(move || {
                    while !asked.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                    q.shutdown(immediate);
                    q.qsize() == 0
                })
            };
            if immediate {
                for _ in 0..JOINERS {
                    let (q, start) = (q.clone(), start.clone());
                    threads.push(thread::spawn(move || {
                        start.wait();
                        q.join();
                    }));
                }
            }
            for t in threads {
                t.join().unwrap();
            }
            let empty_after_shutdown = empty_after_shutdown.join().unwrap();
            assert!(res_puts.lock().unwrap().contains(&true));
            assert_eq!(res_gets.load(Ordering::SeqCst), READERS);
            if immediate {
                assert!(
                    empty_after_shutdown,
                    "an item was in the queue after shutdown(immediate=True) returned"
                );
                assert!(q.empty());
            }
        });
    }

    /// The getters of `_shutdown_get`: a full queue of two, then shutdown; with `immediate`
    /// both getters get ShutDown, without it two of three get an item and one ShutDown.
    pub fn shutdown_get<S: Store<Item = &'static str> + 'static>(
        new: StrQueue<S>,
        immediate: bool,
    ) {
        within(LONG, "shutdown_get", move || {
            let q = Arc::new(new(2));
            q.put("Y").unwrap();
            q.put("D").unwrap();
            let go = Arc::new(AtomicBool::new(false));
            let getters: Vec<_> = (0..if immediate { 2 } else { 3 })
                .map(|_| {
                    let (q, go) = (q.clone(), go.clone());
                    thread::spawn(move || {
                        while !go.load(Ordering::SeqCst) {
                            thread::yield_now();
                        }
                        q.get().is_ok()
                    })
                })
                .collect();
            q.shutdown(immediate);
            go.store(true, Ordering::SeqCst);
            let mut got: Vec<bool> = getters.into_iter().map(|t| t.join().unwrap()).collect();
            got.sort_unstable();
            if immediate {
                assert_eq!(got, [false, false]);
            } else {
                assert_eq!(got, [false, true, true]);
            }
        });
    }

    /// `_shutdown_put`: two puts on a full queue, started and then shut out.
    pub fn shutdown_put<S: Store<Item = &'static str> + 'static>(
        new: StrQueue<S>,
        immediate: bool,
    ) {
        within(LONG, "shutdown_put", move || {
            let q = Arc::new(new(2));
            q.put("Y").unwrap();
            q.put("D").unwrap();
            let go = Arc::new(AtomicBool::new(false));
            let putters: Vec<_> = ["E", "W"]
                .into_iter()
                .map(|item| {
                    let (q, go) = (q.clone(), go.clone());
                    thread::spawn(move || {
                        while !go.load(Ordering::SeqCst) {
                            thread::yield_now();
                        }
                        q.put(item)
                    })
                })
                .collect();
            q.shutdown(immediate);
            go.store(true, Ordering::SeqCst);
            for p in putters {
                assert!(matches!(p.join().unwrap(), Err(PutError::ShutDown(_))));
            }
        });
    }

    /// `_shutdown_join`: two joiners; without `immediate` a worker takes and finishes the
    /// item; with it, the item is thrown away and counted done.
    pub fn shutdown_join<S: Store<Item = &'static str> + 'static>(
        new: StrQueue<S>,
        immediate: bool,
    ) {
        within(LONG, "shutdown_join", move || {
            let q = Arc::new(new(0));
            q.put("Y").unwrap();
            let go = Arc::new(AtomicBool::new(false));
            let mut threads = Vec::new();
            for _ in 0..2 {
                let q = q.clone();
                threads.push(thread::spawn(move || q.join()));
            }
            if !immediate {
                let (q, go) = (q.clone(), go.clone());
                threads.push(thread::spawn(move || {
                    while !go.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                    q.get().unwrap();
                    q.task_done().unwrap();
                }));
            }
            q.shutdown(immediate);
            go.store(true, Ordering::SeqCst);
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(q.unfinished(), 0);
        });
    }

    /// `_shutdown_put_join`: a put that comes after the shutdown fails, and a joiner returns
    /// once the one item is done (taken and finished, or thrown away).
    pub fn shutdown_put_join<S: Store<Item = &'static str> + 'static>(
        new: StrQueue<S>,
        immediate: bool,
    ) {
        within(LONG, "shutdown_put_join", move || {
            let q = Arc::new(new(2));
            q.put("Y").unwrap();
            let go = Arc::new(AtomicBool::new(false));
            let putter = {
                let (q, go) = (q.clone(), go.clone());
                thread::spawn(move || {
                    while !go.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                    q.put("E")
                })
            };
            let joiner = {
                let q = q.clone();
                thread::spawn(move || q.join())
            };
            assert_eq!(q.unfinished(), 1);
            q.shutdown(immediate);
            go.store(true, Ordering::SeqCst);
            if immediate {
                assert_eq!(q.try_get(), Err(GetError::ShutDown));
            } else {
                assert_eq!(q.get(), Ok("Y"));
                q.task_done().unwrap();
            }
            assert!(matches!(
                putter.join().unwrap(),
                Err(PutError::ShutDown("E"))
            ));
            joiner.join().unwrap();
        });
    }

    pub fn test_shutdown_get_task_done_join<S: Store<Item = &'static str> + 'static>(
        new: StrQueue<S>,
    ) {
        within(LONG, "shutdown_get_task_done_join", move || {
            let q = Arc::new(new(2));
            q.put("Y").unwrap();
            q.put("D").unwrap();
            assert_eq!(q.unfinished(), q.qsize());
            let go = Arc::new(AtomicBool::new(false));
            let getters: Vec<_> = (0..2)
                .map(|_| {
                    let (q, go) = (q.clone(), go.clone());
                    thread::spawn(move || {
                        while !go.load(Ordering::SeqCst) {
                            thread::yield_now();
                        }
                        let got = q.get().is_ok();
                        if got {
                            q.task_done().unwrap();
                        }
                        got
                    })
                })
                .collect();
            let joiners: Vec<_> = (0..2)
                .map(|_| {
                    let q = q.clone();
                    thread::spawn(move || q.join())
                })
                .collect();
            go.store(true, Ordering::SeqCst);
            q.shutdown(false);
            for g in getters {
                assert!(g.join().unwrap(), "a getter got ShutDown with items left");
            }
            for j in joiners {
                j.join().unwrap();
            }
        });
    }

    pub fn test_shutdown_pending_get<S: Store<Item = &'static str> + 'static>(new: StrQueue<S>) {
        within(LONG, "shutdown_pending_get", move || {
            let q = Arc::new(new(0));
            let q2 = q.clone();
            let getter = thread::spawn(move || q2.get());
            q.shutdown(false);
            assert_eq!(getter.join().unwrap(), Err(GetError::ShutDown));
        });
    }
}

/// One module per order: `BaseQueueTestMixin`'s tests, with the order `basic_queue_test`
/// expects for 111, 333, 222.
macro_rules! base_queue_tests {
    ($Q:ident, $order:expr) => {
        use super::mixin;
        use queues::$Q;

        fn ints(n: usize) -> $Q<i64> {
            $Q::new(n)
        }
        fn strs(n: usize) -> $Q<&'static str> {
            $Q::new(n)
        }
        fn pairs(n: usize) -> $Q<(usize, &'static str)> {
            $Q::new(n)
        }

        #[test]
        fn test_queue_task_done() {
            mixin::test_queue_task_done(ints);
        }
        #[test]
        fn test_queue_join() {
            mixin::test_queue_join(ints);
        }
        #[test]
        fn test_basic() {
            mixin::test_basic(ints, $order);
        }
        #[test]
        fn test_nowait() {
            mixin::test_nowait(ints);
        }
        #[test]
        fn test_shrinking_queue() {
            mixin::test_shrinking_queue(ints);
        }
        #[test]
        fn test_shutdown_empty() {
            mixin::test_shutdown_empty(strs);
        }
        #[test]
        fn test_shutdown_nonempty() {
            mixin::test_shutdown_nonempty(strs);
        }
        #[test]
        fn test_shutdown_immediate() {
            mixin::test_shutdown_immediate(strs);
        }
        #[test]
        fn test_shutdown_allowed_transitions() {
            mixin::test_shutdown_allowed_transitions(strs);
        }
        #[test]
        fn test_shutdown_all_methods_in_one_thread() {
            mixin::shutdown_all_methods_in_one_thread(strs, false);
        }
        #[test]
        fn test_shutdown_immediate_all_methods_in_one_thread() {
            mixin::shutdown_all_methods_in_one_thread(strs, true);
        }
        #[test]
        fn test_shutdown_all_methods_in_many_threads() {
            mixin::shutdown_all_methods_in_many_threads(pairs, false);
        }
        #[test]
        fn test_shutdown_immediate_all_methods_in_many_threads() {
            mixin::shutdown_all_methods_in_many_threads(pairs, true);
        }
        #[test]
        fn test_shutdown_get() {
            mixin::shutdown_get(strs, false);
        }
        #[test]
        fn test_shutdown_immediate_get() {
            mixin::shutdown_get(strs, true);
        }
        #[test]
        fn test_shutdown_put() {
            mixin::shutdown_put(strs, false);
        }
        #[test]
        fn test_shutdown_immediate_put() {
            mixin::shutdown_put(strs, true);
        }
        #[test]
        fn test_shutdown_join() {
            mixin::shutdown_join(strs, false);
        }
        #[test]
        fn test_shutdown_immediate_join() {
            mixin::shutdown_join(strs, true);
        }
        #[test]
        fn test_shutdown_put_join() {
            mixin::shutdown_put_join(strs, false);
        }
        #[test]
        fn test_shutdown_immediate_put_join() {
            mixin::shutdown_put_join(strs, true);
        }
        #[test]
        fn test_shutdown_get_task_done_join() {
            mixin::test_shutdown_get_task_done_join(strs);
        }
        #[test]
        fn test_shutdown_pending_get() {
            mixin::test_shutdown_pending_get(strs);
        }
    };
}

/// `QueueTest`: `queue.Queue` is [`queues::Queue`].
mod queue_test {
    base_queue_tests!(Queue, [111, 333, 222]);
}

/// `LifoQueueTest`: `queue.LifoQueue` is [`queues::LifoQueue`].
mod lifo_queue_test {
    base_queue_tests!(LifoQueue, [222, 333, 111]);
}

/// `PriorityQueueTest`: `queue.PriorityQueue` is [`queues::PriorityQueue`].
mod priority_queue_test {
    base_queue_tests!(PriorityQueue, [111, 222, 333]);
}

/// `FailingQueueTest`: a FIFO store that fails (panics, Python: raises) on request, in
/// `_put` or `_get`, which must leave the queue undamaged.
mod failing_queue_test {
    use super::*;
    use queues::Fifo;

    /// Python's `fail_next_put` / `fail_next_get`. Statics because a store is reached only
    /// through its queue; only `test_failing_queue` uses this store.
    static FAIL_NEXT_PUT: AtomicBool = AtomicBool::new(false);
    static FAIL_NEXT_GET: AtomicBool = AtomicBool::new(false);

    struct FailingStore {
        inner: Fifo<&'static str>,
        maxsize: usize,
    }

    impl Store for FailingStore {
        type Item = &'static str;
        fn with_maxsize(maxsize: usize) -> Self {
            FailingStore {
                inner: Fifo::with_maxsize(maxsize),
                maxsize,
            }
        }
        // Python calls `_put` only when there is room and `_get` only when there is an item:
        // so the store fails only then, and otherwise reports full or empty as usual.
        fn push(&self, item: &'static str) -> Result<(), &'static str> {
            let room = self.maxsize == 0 || self.inner.len() < self.maxsize;
            if room && FAIL_NEXT_PUT.swap(false, Ordering::SeqCst) {
                panic!("You Lose");
            }
            self.inner.push(item)
        }
        fn pop(&self) -> Option<&'static str> {
            if !self.inner.is_empty() && FAIL_NEXT_GET.swap(false, Ordering::SeqCst) {
                panic!("You Lose");
            }
            self.inner.pop()
        }
        fn len(&self) -> usize {
            self.inner.len()
        }
    }

    type FailingQueue = BlockingQueue<FailingStore>;

    fn fails<R>(f: impl FnOnce() -> R) {
        assert!(
            catch_unwind(AssertUnwindSafe(f)).is_err(),
            "the queue didn't fail when it should have"
        );
    }

    const NUMBERS: [&str; QUEUE_SIZE - 1] = ["0", "1", "2", "3"];

    fn failing_queue_test(q: &FailingQueue) {
        assert_eq!(q.qsize(), 0, "call this function with an empty queue");
        for i in NUMBERS {
            q.put(i).unwrap();
        }
        // A failing non-blocking put, and one with a timeout.
        FAIL_NEXT_PUT.store(true, Ordering::SeqCst);
        fails(|| q.try_put("oops"));
        FAIL_NEXT_PUT.store(true, Ordering::SeqCst);
        fails(|| q.put_timeout("oops", Duration::from_millis(100)));
        q.put("last").unwrap();
        assert!(qfull(q), "queue should be full");
        // A failing blocking put.
        FAIL_NEXT_PUT.store(true, Ordering::SeqCst);
        do_exceptional_blocking_test(
            || q.put("full"),
            || {
                let _ = q.get();
            },
        );
        // The queue is not damaged: the put failed, the get succeeded; re-add.
        q.put("last").unwrap();
        // A failing put with a timeout.
        FAIL_NEXT_PUT.store(true, Ordering::SeqCst);
        do_exceptional_blocking_test(
            || q.put_timeout("full", Duration::from_secs(10)),
            || {
                let _ = q.get();
            },
        );
        q.put("last").unwrap();
        assert!(qfull(q), "queue should be full");
        q.get().unwrap();
        assert!(!qfull(q), "queue should not be full");
        q.put("last").unwrap();
        assert!(qfull(q), "queue should be full");
        // A blocking put.
        do_blocking_test(
            || q.put("full").unwrap(),
            || {
                let _ = q.get();
            },
        );
        for _ in 0..QUEUE_SIZE {
            q.get().unwrap();
        }
        assert_eq!(q.qsize(), 0, "queue should be empty");
        q.put("first").unwrap();
        FAIL_NEXT_GET.store(true, Ordering::SeqCst);
        fails(|| q.get());
        assert!(q.qsize() > 0, "queue should not be empty");
        FAIL_NEXT_GET.store(true, Ordering::SeqCst);
        fails(|| q.get_timeout(Duration::from_millis(100)));
        assert!(q.qsize() > 0, "queue should not be empty");
        q.get().unwrap();
        assert_eq!(q.qsize(), 0, "queue should be empty");
        // A failing blocking get: the put succeeded, the get failed.
        FAIL_NEXT_GET.store(true, Ordering::SeqCst);
        do_exceptional_blocking_test(|| q.get(), || q.put("empty").unwrap());
        assert!(q.qsize() > 0, "queue should not be empty");
        q.get().unwrap();
        assert_eq!(q.qsize(), 0, "queue should be empty");
    }

    #[test]
    fn test_failing_queue() {
        within(LONG, "failing_queue", || {
            let q = FailingQueue::new(QUEUE_SIZE);
            failing_queue_test(&q);
            failing_queue_test(&q);
            // Beyond Python's checks: every put counted once it was in, none of the failed ones.
            // Each round, 11 puts went in: 4 numbers, "last" 4 times, "full", "first", "empty".
            assert_eq!(q.unfinished(), 22);
        });
    }
}
