//! coroutines -- greenlet: switch() decides who runs next, and who never finishes.
//!
//! After the lesson `cargo run -p coroutines -- greenlet`.
//! Check your work: `cargo xtask exercise greenlet-order`.
//! Run it: `cargo run --bin greenlet-order` in `exercises/`.
//!
//! A greenlet runs until it switches to another one, and when it returns, control goes to its
//! parent (here the main greenlet, which created both). A greenlet nobody switches back to
//! stays suspended, half done.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use coroutines::{Greenlet, GreenletError, val};

// Solved: test1 switches to g2 a second time after 24, so test2 prints 65 and returns, to
// its parent: main. Now g1 is the one left suspended, in that second switch: whoever
// switches last decides who is left unfinished.
/// The seed's test1 / test2, started by main with `g1.switch()`. The numbers in the order
/// printed, and whether g1 and g2 finished.
pub fn ping_pong() -> Result<(Vec<i32>, bool, bool), GreenletError> {
    let printed = Rc::new(RefCell::new(Vec::new()));
    let g2_cell: Rc<OnceCell<Greenlet>> = Rc::new(OnceCell::new());
    let g1 = {
        let (printed, g2) = (Rc::clone(&printed), Rc::clone(&g2_cell));
        Greenlet::new(move |_| {
            printed.borrow_mut().push(12);
            g2.get()
                .expect("g2 is set before g1 starts")
                .switch(val(()))?;
            printed.borrow_mut().push(24);
            g2.get()
                .expect("g2 is set before g1 starts")
                .switch(val(()))?;
            Ok(val(()))
        })?
    };
    let g2 = {
        let (printed, g1) = (Rc::clone(&printed), g1.clone());
        Greenlet::new(move |_| {
            printed.borrow_mut().push(56);
            g1.switch(val(()))?;
            printed.borrow_mut().push(65);
            Ok(val(()))
        })?
    };
    let _ = g2_cell.set(g2.clone());
    g1.switch(val(()))?;
    let out = printed.borrow().clone();
    Ok((out, g1.dead(), g2.dead()))
}

fn main() -> Result<(), GreenletError> {
    let (printed, g1_done, g2_done) = ping_pong()?;
    println!("{printed:?}; g1 finished: {g1_done}, g2 finished: {g2_done}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn prints_in_turn_and_both_finish() {
        let (printed, g1_done, g2_done) = nothing_left(ping_pong).unwrap();
        assert_eq!(printed, [12, 56, 24, 65]);
        let _ = g1_done; // which one is left suspended depends on who switched last
        assert!(g2_done, "g2 finished: nobody switched back to it after 24");
    }
}
