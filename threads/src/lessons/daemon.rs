//! Lesson `daemon` (join和setDaemon): Python waits at exit for every non-daemon thread and kills
//! the daemon ones; in Rust every thread is, in Python's terms, a daemon: when `main` returns the
//! process exits and takes its threads with it. Each case runs as a child process of this
//! chapter's binary, because "what happens when main returns" needs a main that can return.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use super::Latch;

/// One of the helpers' threads, music or game (see [`start_music_and_game`]).
struct Player {
    handle: JoinHandle<()>,
    /// Opened once main waits for the thread: only then does it say stop.
    waited_for: Arc<Latch>,
}

impl Player {
    /// What Python's interpreter does at exit for a non-daemon thread: wait for it. The thread
    /// may now say stop (once its sleep is over); join it.
    fn join(self) -> anyhow::Result<()> {
        let name = self.handle.thread().name().unwrap_or("a thread").to_owned();
        self.waited_for.count_down();
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("{name} panicked"))
    }
}

/// Start the music (3 s) and game (5 s) threads; return once both have said "begin" (Python's
/// `start()` likewise returns once the thread is running), so the demo does not depend on luck.
/// In helper `helper`, they speak as `helper/music` and `helper/game` on the timeline.
///
/// Each thread, after its sleep, says stop only once main waits for it ([`Player::join`]). So
/// a thread main does not wait for is still running when main returns and when the process
/// ends, however late a busy machine makes main: that it never says stop does not depend on its
/// sleep being long enough. The wait has a deadline ([`Cx::long_wait`]): were the process to
/// wait for its threads at exit, they would say stop then.
fn start_music_and_game(cx: &Cx, helper: &str) -> anyhow::Result<(Player, Player)> {
    let (started_tx, started) = mpsc::channel();
    let spawn = |name: &str, what: &'static str, secs: f64| {
        let cx = cx.as_speaker(format!("{helper}/{name}"));
        let started_tx = started_tx.clone();
        let waited_for = Arc::new(Latch::new(1));
        let opened = Arc::clone(&waited_for);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                cx.say(format!("begin {what}"));
                let _ = started_tx.send(());
                cx.sleep(secs);
                opened.wait(&cx, "until main waits for me");
                cx.say(format!("stop {what}"));
            })
            .context("spawning a thread")?;
        anyhow::Ok(Player { handle, waited_for })
    };
    let music = spawn("music", "listen music", 3.0)?;
    let game = spawn("game", "to game", 5.0)?;
    for _ in 0..2 {
        started
            .recv_timeout(Duration::from_secs(30))
            .context("a thread did not start")?;
    }
    Ok((music, game))
}

/// Helper `main-returns`: start both threads, say ending, return from main (waiting for
/// neither).
pub fn main_returns(cx: &Cx) -> anyhow::Result<()> {
    let _players = start_music_and_game(cx, "main-returns")?;
    cx.as_speaker("main-returns/main")
        .say("ending.... main returns now");
    Ok(())
}

/// Helper `python-default`: what Python does with non-daemon threads: after main's last line,
/// wait for every thread.
pub fn python_default(cx: &Cx) -> anyhow::Result<()> {
    let (music, game) = start_music_and_game(cx, "python-default")?;
    let cx = cx.as_speaker("python-default/main");
    cx.say("ending.... main waits for its threads");
    let _waiting = cx.span(Activity::Wait, "join every thread at exit");
    for t in [music, game] {
        t.join()?;
    }
    Ok(())
}

/// Helper `python-daemon`: the seed's `t2.setDaemon(True)`: wait for music only; the game is a
/// daemon and dies with main.
pub fn python_daemon(cx: &Cx) -> anyhow::Result<()> {
    let (music, _game) = start_music_and_game(cx, "python-daemon")?;
    let cx = cx.as_speaker("python-daemon/main");
    cx.say("ending.... main waits for music only");
    let _waiting = cx.span(Activity::Wait, "join music");
    // The game, not waited for, is still running when main returns: it dies with the process.
    music.join()
}

/// Run one of the helpers above in a child process and return the lines it printed.
pub fn child_lines(cx: &Cx, helper: &str) -> anyhow::Result<Vec<String>> {
    let mut cmd = cx.helper(helper)?;
    let limit = cx.scaled(60.0) + Duration::from_secs(30);
    let _waiting = cx.span(Activity::Wait, format!("wait for the {helper} process"));
    let out = lesson::output_within(&mut cmd, limit)?;
    ensure!(
        out.status.success(),
        "helper {helper} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

fn show(cx: &Cx, helper: &str) -> anyhow::Result<(bool, bool)> {
    let lines = child_lines(cx, helper)?;
    for line in &lines {
        cx.explain(format!("child> {line}"));
    }
    let said = |what: &str| lines.iter().any(|l| l.contains(what));
    ensure!(said("ending"), "the child never said ending: {lines:?}");
    Ok((said("stop listen music"), said("stop to game")))
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "1) Rust: main returns while music (3 s) and game (5 s) are still running\n\
         (in these children a thread, after its sleep, says stop only once main waits for it, by\n\
         a join standing for the wait Python's interpreter does at exit: a thread nobody waits\n\
         for is then still running when main returns, on a busy machine too; were the process to\n\
         wait for its threads, that wait would run out, a scaled minute and 10 s later, and\n\
         they would say stop)",
    );
    let (music, game) = show(cx, "main-returns")?;
    cx.say(format!(
        "rust, main returned: music stopped? {}, game stopped? {}",
        yes(music),
        yes(game)
    ));
    ensure!(
        !music && !game,
        "threads outlived main in the child process"
    );
    cx.explain("   Both threads died with the process: every Rust thread is a 'daemon'.");

    cx.explain("2) Python's default (daemon=False): the interpreter joins every thread at exit");
    let t = std::time::Instant::now();
    let (music, game) = show(cx, "python-default")?;
    let took = t.elapsed();
    cx.say(format!(
        "python default, emulated by joining all: music stopped? {}, game stopped? {}",
        yes(music),
        yes(game)
    ));
    ensure!(music && game, "a joined thread did not finish");
    cx.say(format!(
        "the seed says that without setDaemon the program hangs forever: it does not hang, it \
         waits. The process ended on its own after {:.2} s, once the game's 5 s (x{} = {:.2} s) \
         were over.",
        took.as_secs_f64(),
        cx.scale(),
        cx.scaled(5.0).as_secs_f64()
    ));

    cx.explain("3) the seed: t2.setDaemon(True), so Python waits for music only");
    let (music, game) = show(cx, "python-daemon")?;
    cx.say(format!(
        "python daemon game, emulated by joining music only: music stopped? {}, game stopped? {}",
        yes(music),
        yes(game)
    ));
    ensure!(music && !game, "the daemon emulation did not behave");

    cx.explain(
        "4) In one process, std::thread::scope gives Python's default without a join loop:\n\
         every thread spawned in the scope is joined before the scope returns.",
    );
    let waiting = std::cell::Cell::new(None);
    std::thread::scope(|s| -> anyhow::Result<()> {
        for (name, what, secs) in [("music", "listen music", 3.0), ("game", "to game", 5.0)] {
            std::thread::Builder::new()
                .name(name.into())
                .spawn_scoped(s, move || {
                    cx.say(format!("begin {what}"));
                    cx.sleep(secs);
                    cx.say(format!("stop {what}"));
                })?;
        }
        cx.say("ending.... (inside the scope)");
        waiting.set(Some(cx.span(Activity::Wait, "the scope joins its threads")));
        Ok(())
    })?;
    drop(waiting.take());
    cx.say("scope returned: both threads had stopped");
    Ok(())
}
