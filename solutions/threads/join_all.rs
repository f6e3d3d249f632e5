//! threads -- join: wait for every thread, not only the last one.
//!
//! After the lesson `cargo run -p threads -- join`.
//! Check your work: `cargo xtask exercise join-all`.
//! Run it: `cargo run --bin join-all` in `exercises/`.
//!
//! The seed starts its threads, then waits with `for i in threads: t.join()`: the loop variable
//! is `i`, but it joins `t`, the last thread started, every time. The code below has the same
//! bug in Rust clothes.

use std::thread::{self, JoinHandle};

/// What a player does on its thread: its line once it has finished.
fn play_one(game: &'static str) -> String {
    format!("stop {game}")
}

// Solved: keep every handle, then join each one; a handle joined is a result received.
/// Start one thread per game, wait for all of them, and return their lines in start order.
pub fn play(games: &[&'static str]) -> Vec<String> {
    let mut threads: Vec<JoinHandle<String>> = Vec::new();
    for &game in games {
        let t = thread::Builder::new()
            .name(game.to_owned())
            .spawn(move || play_one(game))
            .expect("start a thread");
        threads.push(t);
    }
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn main() {
    for line in play(&["music", "game"]) {
        println!("{line}");
    }
    println!("ending....");
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn every_thread_is_joined() {
        let lines = nothing_left(|| play(&["music", "game", "movie"]));
        assert_eq!(
            lines,
            ["stop music", "stop game", "stop movie"],
            "one line per thread started, in start order"
        );
    }
}
