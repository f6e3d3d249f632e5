//! Lesson `join` (join和setDaemon): the music/game demo without and with `join`, and the seed's
//! join loop that joins only the last thread.

use std::sync::Arc;

use lesson::{Activity, Cx};

use super::Latch;
use crate::Thread;

fn music(cx: &Cx) {
    cx.say("begin listen music");
    cx.say("stop listen music");
}

/// The seed's game: 5 s (scaled), then it says stop, but only once `ending` is open (main
/// said its ending line), so that part 1's order does not depend on the machine's speed.
fn game(cx: &Cx, ending: &Latch) {
    cx.say("begin to game");
    cx.sleep(5.0);
    ending.wait(cx, "until main said ending");
    cx.say("stop to game");
}

/// Start music and game; the game says stop only once `ending` is open.
fn start_both(cx: &Cx, ending: &Arc<Latch>) -> anyhow::Result<(Thread<()>, Thread<()>)> {
    let (c1, c2, ending) = (cx.clone(), cx.clone(), Arc::clone(ending));
    let t1 = Thread::builder().name("music").spawn(move || music(&c1))?;
    let t2 = Thread::builder()
        .name("game")
        .spawn(move || game(&c2, &ending))?;
    Ok((t1, t2))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "1) without join: main prints its last line while the game is still playing\n\
         (the game, after its 5 s, also waits until main said ending, so that this order holds\n\
         on a busy machine too; were spawn to run the game to its end, that wait would run out,\n\
         a scaled minute and 10 s later, and the order would break)",
    );
    let ending = Arc::new(Latch::new(1));
    let (t1, t2) = start_both(cx, &ending)?;
    cx.say("ending.... (without join)");
    ending.count_down();
    cx.say(format!("t1.name() = {}", t1.name()));
    // Joined only so this part's output stays in this part; "ending" was already said.
    {
        let _waiting = cx.span(Activity::Wait, "join (after ending)");
        t1.join()?;
        t2.join()?;
    }

    cx.explain("2) with join: main waits for both threads, then says ending");
    // Open from the start: here main says ending only after the game stopped.
    let (t1, t2) = start_both(cx, &Arc::new(Latch::new(0)))?;
    {
        let _waiting = cx.span(Activity::Wait, "t1.join(); t2.join()");
        t1.join()?;
        t2.join()?;
    }
    cx.say("ending.... (with join)");

    cx.explain(
        "3) the seed's loop `for i in threads: t.join()` joins `t`, the last thread, every time.\n\
         Python lets the loop variable of an earlier loop leak; Rust does not (`t` would not\n\
         even be in scope). Here is what joining only the last one does (sleeper-1 and\n\
         sleeper-2 also wait, after their sleep, until main has looked: on a busy machine main\n\
         could otherwise look late, and what it saw would depend on the machine's speed):",
    );
    let looked = Arc::new(Latch::new(1));
    let sleepers: Vec<Thread<f64>> = [3.0, 2.0, 1.0]
        .into_iter()
        .enumerate()
        .map(|(i, secs)| {
            let (cx, looked) = (cx.clone(), Arc::clone(&looked));
            let last = i == 2;
            Thread::builder()
                .name(format!("sleeper-{}", i + 1))
                .spawn(move || {
                    cx.sleep(secs);
                    if !last {
                        looked.wait(&cx, "until main has looked");
                    }
                    cx.say(format!("slept {secs} s"));
                    secs
                })
        })
        .collect::<Result<_, _>>()?;
    if let Some(last) = sleepers.last() {
        let _waiting = cx.span(Activity::Wait, "join the last only");
        last.join_timeout(cx.long_wait());
    }
    let alive: Vec<&str> = sleepers
        .iter()
        .filter(|t| t.is_alive())
        .map(|t| t.name())
        .collect();
    cx.say(format!(
        "joined only the last: still alive = [{}]",
        alive.join(", ")
    ));
    looked.count_down();
    {
        let _waiting = cx.span(Activity::Wait, "join every thread");
        for t in sleepers {
            t.join()?;
        }
    }
    cx.say("joined every thread (for t in threads: t.join()): none alive");
    Ok(())
}
