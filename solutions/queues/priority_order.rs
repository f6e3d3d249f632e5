//! queues -- priority: the most urgent first, and equal ones in arrival order.
//!
//! After the lesson `cargo run -p queues -- priority`.
//! Check your work: `cargo xtask exercise priority-order`.
//! Run it: `cargo run --bin priority-order` in `exercises/`.
//!
//! The seed puts `[priority, data]` lists into a `PriorityQueue`: the lowest priority comes
//! out first. When two priorities tie, Python compares the data next. Here tickets of equal
//! urgency must be served in the order they came in, whatever their text says.

use queues::{Prioritized, PriorityQueue};

/// A help-desk ticket: its urgency (1 is the most urgent) and its text.
pub type Ticket = (u8, &'static str);

// Solved: a PriorityQueue of `Prioritized` items: ordered by urgency alone, ties in the order
// they were put (a `(u8, &str)` tuple would have served "apple pie" before "zebra pen").
/// The tickets' texts in the order they are served.
pub fn serve(tickets: &[Ticket]) -> Vec<&'static str> {
    let q = PriorityQueue::new(0);
    for &(urgency, text) in tickets {
        q.put(Prioritized::new(urgency, text))
            .expect("no limit, never shut down");
    }
    let mut served = Vec::new();
    while let Ok(ticket) = q.try_get() {
        served.push(ticket.value);
    }
    served
}

fn main() {
    println!(
        "{:?}",
        serve(&[(2, "printer"), (3, "coffee"), (1, "server down")])
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn most_urgent_first() {
        let served = nothing_left(|| serve(&[(2, "printer"), (3, "coffee"), (1, "server down")]));
        assert_eq!(served, ["server down", "printer", "coffee"]);
    }

    #[test]
    fn equal_urgency_in_arrival_order() {
        let served = nothing_left(|| {
            serve(&[
                (2, "zebra pen"),
                (1, "outage"),
                (2, "apple pie"),
                (2, "mango"),
            ])
        });
        assert_eq!(
            served,
            ["outage", "zebra pen", "apple pie", "mango"],
            "the three urgency-2 tickets came in as zebra, apple, mango"
        );
    }
}
