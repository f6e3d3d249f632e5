//! Lesson `spawn` (线程的基本调用, 第二种调用方式): start a thread from a function and its
//! arguments, or from a type that knows how to run itself; concurrency versus parallelism.

use std::sync::Arc;

use lesson::{Activity, Cx};

use super::Latch;
use crate::{Run, Thread};

/// The seed's `Hi(num)`: greet, then sleep 3 seconds (scaled). It says done only once `ready`
/// is open (both threads said hello and main said ending), so the order the lesson prints
/// does not depend on the machine's speed.
fn hi(cx: &Cx, num: u32, ready: &Latch) {
    cx.say(format!("hello {num}"));
    ready.count_down();
    cx.sleep(3.0);
    ready.wait(cx, "until both said hello and main said ending");
    cx.say(format!("done {num}"));
}

/// The seed's `MyThread` subclass: the data it needs plus a `run`.
#[derive(Debug, Clone)]
pub struct MyThread {
    /// What to narrate and with which number.
    pub cx: Cx,
    /// The seed's `self.num`.
    pub num: u32,
    /// If set: counted down once it said running; it says finished only once this is open
    /// (the lesson opens it when both threads said running and main said ending).
    pub ready: Option<Arc<Latch>>,
}

impl Run for MyThread {
    type Output = u32;

    fn run(self) -> u32 {
        self.cx.say(format!("running on number: {}", self.num));
        if let Some(ready) = &self.ready {
            ready.count_down();
        }
        self.cx.sleep(3.0);
        if let Some(ready) = &self.ready {
            ready.wait(&self.cx, "until both said running and main said ending");
        }
        self.cx.say(format!("finished number: {}", self.num));
        self.num
    }
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain("1) a function and its arguments: Thread(target=Hi, args=(10,)) then start()");
    // Each thread says done only once both said hello and main said ending: on a loaded
    // machine main (or the second thread) could otherwise be late by more than the 3 s sleep.
    let ready = Arc::new(Latch::new(3));
    let hi_thread = |name: &str, num: u32| {
        let (cx, ready) = (cx.clone(), Arc::clone(&ready));
        Thread::builder()
            .name(name)
            .spawn(move || hi(&cx, num, &ready))
    };
    let t1 = hi_thread("Thread-1", 10)?;
    let t2 = hi_thread("Thread-2", 9)?;
    cx.say("ending....");
    ready.count_down();
    cx.explain(
        "main went on at once: spawn returned while the threads were still running. Both\n\
         threads said hello before either was done: while one slept the other ran. That overlap\n\
         in time is concurrency (并发). (Each waits, after its sleep, until both said hello and\n\
         main said ending, so that this order holds on a busy machine too; were spawn to run the\n\
         thread to its end, that wait would run out, a scaled minute and 10 s later, and the\n\
         order would break.) On two cores they can also execute at the same instant:\n\
         parallelism (并行), which the gil lesson measured.",
    );
    // Python would wait for these non-daemon threads at exit; here we join explicitly
    // (the `daemon` lesson shows what happens if you do not).
    {
        let _waiting = cx.span(Activity::Wait, "join Thread-1 and Thread-2");
        t1.join()?;
        t2.join()?;
    }

    cx.explain("2) the subclass style: a type implementing Run, started with Thread::start");
    let ready = Arc::new(Latch::new(3));
    let my_thread = |name: &str, num: u32| {
        Thread::builder().name(name).start(MyThread {
            cx: cx.clone(),
            num,
            ready: Some(Arc::clone(&ready)),
        })
    };
    let a = my_thread("MyThread-1", 1)?;
    let b = my_thread("MyThread-2", 2)?;
    cx.say("ending......");
    ready.count_down();
    let returned = {
        let _waiting = cx.span(Activity::Wait, "join MyThread-1 and MyThread-2");
        (a.join()?, b.join()?)
    };
    cx.say(format!(
        "joined: the threads returned {} and {}",
        returned.0, returned.1
    ));

    cx.explain("3) calling run() yourself is just a function call, on your own thread:");
    MyThread {
        cx: cx.clone(),
        num: 3,
        ready: None,
    }
    .run();
    cx.explain("   (the speaker column says main: no thread was started)");
    Ok(())
}
