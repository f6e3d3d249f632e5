//! The hub: overlap, timers, time-outs and bad input.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use coroutines::hub::{self, Joinable};
use coroutines::lessons::{gevent, tradeoffs};
use lesson::PageServer;
use lesson::{Cx, within};

#[test]
fn delayed_fetches_overlap_on_one_thread() {
    let (results, _, _, serial_most, together_most) =
        within(Duration::from_secs(60), "crawl", || {
            // Long enough that all six connections are certainly open at once on a loaded machine.
            let server = PageServer::start(&[], Duration::from_millis(300)).unwrap();
            let paths: Vec<String> = (1..=6).map(|i| format!("/page/{}", i * 100)).collect();
            let (r, a, b, c, d) = gevent::both(&Cx::quiet(0.01), &server, &paths).unwrap();
            (
                r.into_iter()
                    .map(|r| r.map_err(|e| e.to_string()))
                    .collect::<Vec<_>>(),
                a,
                b,
                c,
                d,
            )
        });
    assert_eq!(serial_most, 1);
    assert_eq!(
        together_most, 6,
        "the server never saw all 6 connections open at once"
    );
    let sizes: Vec<usize> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(sizes, [100, 200, 300, 400, 500, 600]);
}

/// Tasks sleeping until different deadlines wake in the order of their deadlines, whatever
/// the order they started in. (Deadlines, not durations: on a slow machine the tasks start far
/// apart, and `sleep(10 ms)` begun late can end after `sleep(30 ms)` begun early.)
#[test]
fn sleeps_wake_in_deadline_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let start = Instant::now();
    let tasks: Vec<_> = [30u64, 10, 20, 0]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            hub::spawn(move || {
                hub::sleep_until(start + Duration::from_millis(ms)).expect("sleep");
                order.borrow_mut().push(ms);
            })
            .unwrap()
        })
        .collect();
    let refs: Vec<&dyn Joinable> = tasks.iter().map(|t| t as &dyn Joinable).collect();
    hub::joinall(&refs).expect("joinall");
    assert_eq!(*order.borrow(), [0, 10, 20, 30]);
}

#[test]
fn a_timeout_fires_where_the_task_waits() {
    within(Duration::from_secs(60), "timeout", || {
        let server = PageServer::start(&[], Duration::from_millis(500)).unwrap();
        let addr = server.addr();
        let t = hub::spawn(move || {
            hub::timeout(Duration::from_millis(50), || {
                gevent::fetch(&Cx::quiet(0.01), addr, "/page/10")
            })
        })
        .unwrap();
        hub::joinall(&[&t]).expect("joinall");
        // The fetch's read failed with TimedOut, and the block says its deadline passed.
        let err = t.take().unwrap().unwrap_err();
        assert_eq!(err, hub::Elapsed);
        // Had the deadline not cut the read, the reply (sent after 500 ms) would have come:
        // `Ok` here, however slow the machine.
        assert_eq!(err.to_string(), "timed out");
    });
}

#[test]
fn a_closed_port_fails_that_task_and_the_others_finish() {
    within(Duration::from_secs(60), "closed port", || {
        let server = PageServer::start(&[], Duration::from_millis(10)).unwrap();
        // A port nobody listens on: bind one, note it, close it.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            match l.local_addr().unwrap() {
                std::net::SocketAddr::V4(a) => a,
                _ => unreachable!(),
            }
        };
        let good = server.addr();
        let cx = Cx::quiet(0.01);
        let (c1, c2, c3) = (cx.clone(), cx.clone(), cx.clone());
        let a = hub::spawn(move || gevent::fetch(&c1, good, "/page/10")).unwrap();
        let b = hub::spawn(move || gevent::fetch(&c2, closed, "/page/10")).unwrap();
        let m = hub::spawn(move || gevent::fetch(&c3, good, "/malformed")).unwrap();
        hub::joinall(&[&a, &b, &m]).expect("joinall");
        assert_eq!(a.take().unwrap().unwrap(), 10);
        let refused = b.take().unwrap().unwrap_err();
        assert!(format!("{refused:#}").contains("connecting"), "{refused:#}");
        let malformed = m.take().unwrap().unwrap_err();
        assert!(
            format!("{malformed:#}").contains("malformed"),
            "{malformed:#}"
        );
    });
}

/// `cargo run -p coroutines -- tradeoffs`: greenlets need no lock. Ten greenlets add 1 to
/// one `Cell` a hundred times each, reading and writing with no switch in between, and taking
/// turns (each switches to the root after each addition): no update is lost, and the additions
/// interleave, one greenlet after another in order, so the count was shared while they took
/// turns. (What a switch costs against a thread hand-off is the bench's to measure, not a
/// test's: `cargo bench -p coroutines -- switch handoff`.)
#[test]
fn greenlets_taking_turns_share_a_counter_with_no_lock_and_lose_no_update() {
    let (greenlets, rounds) = (10, 100);
    let (count, who) = tradeoffs::shared_counter_among(greenlets, rounds).unwrap();
    assert_eq!(count, 1000, "updates were lost");
    let turns: Vec<usize> = (0..rounds).flat_map(|_| 0..greenlets).collect();
    assert_eq!(who, turns, "the greenlets did not take turns");
    assert_eq!(tradeoffs::shared_counter(500).unwrap(), 1000);
}

/// Sockets stay registered in the hub's epoll between waits and leave it when dropped: a new
/// socket that gets a dropped one's descriptor number must still be woken.
#[test]
fn a_socket_reusing_a_dropped_sockets_number_is_still_woken() {
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, AsRawFd};
    let numbers = within(Duration::from_secs(60), "echo", || {
        let listener = hub::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Clients on plain threads: connect, send, read the echo, one after another.
        let clients = std::thread::spawn(move || {
            for round in 0..5u8 {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                c.write_all(&[round; 3]).unwrap();
                let mut back = [0u8; 3];
                c.read_exact(&mut back).unwrap();
                assert_eq!(back, [round; 3]);
            }
        });
        let server = hub::spawn(move || {
            let mut numbers = Vec::new();
            for _ in 0..5 {
                let (mut s, _) = listener.accept().unwrap();
                numbers.push(s.as_fd().as_raw_fd());
                let mut buf = [0u8; 3];
                let mut got = 0;
                while got < 3 {
                    got += s.read(&mut buf[got..]).unwrap();
                }
                s.write_all(&buf).unwrap();
                // Waits (registered) for the client's close, then drops the socket.
                while s.read(&mut buf).unwrap() > 0 {}
            }
            numbers
        })
        .unwrap();
        hub::joinall(&[&server]).expect("joinall");
        clients.join().unwrap();
        server.take().unwrap()
    });
    assert_eq!(numbers.len(), 5);
    assert!(
        numbers.windows(2).any(|w| w[0] == w[1]),
        "no descriptor number was reused, so this did not test reuse: {numbers:?}"
    );
}

#[test]
fn after_a_read_that_drained_the_socket_later_data_and_the_close_still_arrive() {
    // A short read tells the hub the socket is drained, so the next read waits for an event
    // without asking the kernel first. Data sent after that, and the peer's close (which
    // raises no further event once seen), must still reach the task, in order.
    use std::io::Write;
    let got = within(Duration::from_secs(60), "drained reads", || {
        let listener = hub::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (sent_first, first_read) = std::sync::mpsc::channel::<()>();
        let (read_first, wait_read) = std::sync::mpsc::channel::<()>();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"one").unwrap();
            sent_first.send(()).unwrap();
            // Only once the server has read "one" (and so marked the socket drained).
            wait_read.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            c.write_all(b"two").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            c.write_all(b"three").unwrap();
            // Dropped here: the close follows the last bytes.
        });
        let server = hub::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            first_read.recv().unwrap();
            let mut buf = [0u8; 64];
            let mut got = Vec::new();
            let n = s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            read_first.send(()).unwrap();
            loop {
                match s.read(&mut buf).unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            got
        })
        .unwrap();
        hub::joinall(&[&server]).expect("joinall");
        client.join().unwrap();
        server.take().unwrap()
    });
    assert_eq!(got, b"onetwothree");
}

/// A greenlet started inside a task, waiting on the hub: it runs the hub in place (other tasks
/// go on meanwhile) instead of suspending the task from inside the greenlet (state rule 3).
#[test]
fn a_greenlet_inside_a_task_waits_by_running_the_hub_in_place() {
    use coroutines::{Greenlet, val};
    within(Duration::from_secs(60), "greenlet in a task", || {
        let ticks = Rc::new(std::cell::Cell::new(0u32));
        let t = ticks.clone();
        let ticker = hub::spawn(move || {
            for _ in 0..5 {
                hub::sleep(Duration::from_millis(1)).unwrap();
                t.set(t.get() + 1);
            }
        })
        .unwrap();
        let task = hub::spawn(move || {
            let g = Greenlet::new(move |_| {
                hub::joinall(&[&ticker])
                    .map_err(|e| coroutines::GreenletError::thrown(e.to_string()))?;
                Ok(val(ticks.get()))
            })
            .unwrap();
            g.switch(val(())).unwrap().downcast::<u32>().unwrap()
        })
        .unwrap();
        hub::joinall(&[&task]).unwrap();
        assert_eq!(task.take(), Some(5));
    });
}

/// While a hub task runs on top of a greenlet (the greenlet called `joinall`), the greenlet
/// cannot switch away: the task's code is on its stack. Once the task has suspended, it can.
#[test]
fn a_greenlet_under_a_running_task_cannot_switch_away() {
    use coroutines::{Greenlet, GreenletErrorKind, getcurrent, val};
    let g = Greenlet::new(|_| {
        let from_task = hub::spawn(|| {
            // Inside the task, the current greenlet is still g.
            getcurrent()
                .parent()
                .unwrap()
                .switch(val("from the task"))
                .map(drop)
                .map_err(|e| e.kind().clone())
        })
        .unwrap();
        hub::joinall(&[&from_task]).unwrap();
        let refused = from_task.take().unwrap();
        getcurrent().parent().unwrap().switch(val(refused))?;
        Ok(val(()))
    })
    .unwrap();
    let refused = g.switch(val(())).unwrap();
    assert_eq!(
        refused.downcast::<Result<(), GreenletErrorKind>>().unwrap(),
        Err(GreenletErrorKind::CannotSwitch(
            "a hub task is running on top of this greenlet"
        ))
    );
    assert!(g.switch(val(())).unwrap().is::<()>());
}

/// Tasks still waiting when their thread ends are unwound with the hub; hub calls from their
/// destructors then fail with an error instead of touching the hub being dropped.
#[test]
fn tasks_left_waiting_at_thread_exit_are_unwound_and_their_hub_calls_fail_cleanly() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    struct UsesHubWhenDropped(Arc<AtomicU32>);
    impl Drop for UsesHubWhenDropped {
        fn drop(&mut self) {
            let spawned = hub::spawn(|| ()).is_err();
            let slept = hub::sleep(Duration::from_millis(1)).is_err();
            if spawned && slept {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let unwound = Arc::new(AtomicU32::new(0));
    let u = unwound.clone();
    std::thread::spawn(move || {
        for _ in 0..3 {
            let guard = UsesHubWhenDropped(u.clone());
            hub::spawn(move || {
                let _guard = guard;
                let _ = hub::sleep(Duration::from_secs(3600));
            })
            .unwrap();
        }
        hub::yield_now().unwrap(); // each starts, and sleeps
    })
    .join()
    .expect("the thread's exit crashed or panicked");
    assert_eq!(unwound.load(Ordering::SeqCst), 3);
}
