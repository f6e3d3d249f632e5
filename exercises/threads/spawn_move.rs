//! threads -- spawn: a thread per argument, and what its closure may take along.
//!
//! After the lesson `cargo run -p threads -- spawn`.
//! Check your work: `cargo xtask exercise spawn-move`.
//! Run it: `cargo run --bin spawn-move` in `exercises/`.
//!
//! Python's `Thread(target=hi, args=(10,))` hands the arguments to the new thread. In Rust the
//! closure carries them, and a thread may outlive the function that started it, so it may not
//! borrow that function's locals.

use std::thread;

// TODO(threads -- spawn): this does not compile: each closure borrows `name`, a local of this
// function that is gone when the loop turns, while the thread may still run. Give each thread
// its own `name` to keep. Read the compiler's message: it says how.
/// Start one thread per name; each returns its greeting. The greetings, in start order.
pub fn greet_all(names: &[&str]) -> Vec<String> {
    let mut handles = Vec::new();
    for name in names {
        let name = name.to_uppercase();
        handles.push(thread::spawn(|| format!("hello {name}")));
    }
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn main() {
    for greeting in greet_all(&["luck", "yuan"]) {
        println!("{greeting}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn every_thread_greets() {
        let greetings = nothing_left(|| greet_all(&["luck", "yuan", "alex"]));
        assert_eq!(greetings, ["hello LUCK", "hello YUAN", "hello ALEX"]);
    }
}
