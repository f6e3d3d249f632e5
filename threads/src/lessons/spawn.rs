//! Lesson `spawn` (线程的基本调用, 第二种调用方式): start a thread from a function and its
//! arguments, or from a type that knows how to run itself; concurrency versus parallelism.

use lesson::{Activity, Cx};

use crate::{Run, Thread};

/// The seed's `Hi(num)`: greet, then sleep 3 seconds (scaled).
fn hi(cx: &Cx, num: u32) {
    cx.say(format!("hello {num}"));
    cx.sleep(3.0);
    cx.say(format!("done {num}"));
}

/// The seed's `MyThread` subclass: the data it needs plus a `run`.
#[derive(Debug, Clone)]
pub struct MyThread {
    /// What to narrate and with which number.
    pub cx: Cx,
    /// The seed's `self.num`.
    pub num: u32,
}

impl Run for MyThread {
    type Output = u32;

    fn run(self) -> u32 {
        self.cx.say(format!("running on number: {}", self.num));
        self.cx.sleep(3.0);
        self.cx.say(format!("finished number: {}", self.num));
        self.num
    }
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain("1) a function and its arguments: Thread(target=Hi, args=(10,)) then start()");
    let t1 = {
        let cx = cx.clone();
        Thread::builder()
            .name("Thread-1")
            .spawn(move || hi(&cx, 10))?
    };
    let t2 = {
        let cx = cx.clone();
        Thread::builder()
            .name("Thread-2")
            .spawn(move || hi(&cx, 9))?
    };
    cx.say("ending....");
    cx.explain(
        "main went on at once. Both threads said hello before either was done: while one\n\
         slept the other ran. That overlap in time is concurrency (并发). On two cores they can\n\
         also execute at the same instant: parallelism (并行), which the gil lesson measured.",
    );
    // Python would wait for these non-daemon threads at exit; here we join explicitly
    // (the `daemon` lesson shows what happens if you do not).
    {
        let _waiting = cx.span(Activity::Wait, "join Thread-1 and Thread-2");
        t1.join()?;
        t2.join()?;
    }

    cx.explain("2) the subclass style: a type implementing Run, started with Thread::start");
    let a = Thread::builder().name("MyThread-1").start(MyThread {
        cx: cx.clone(),
        num: 1,
    })?;
    let b = Thread::builder().name("MyThread-2").start(MyThread {
        cx: cx.clone(),
        num: 2,
    })?;
    cx.say("ending......");
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
    }
    .run();
    cx.explain("   (the speaker column says main: no thread was started)");
    Ok(())
}
