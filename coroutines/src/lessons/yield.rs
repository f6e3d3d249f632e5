//! Lesson `yield` (Yield(协程)): a producer and a consumer generator, driven by send().

use anyhow::ensure;
use lesson::Cx;

use crate::Generator;

/// What [`take_turns`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turns {
    /// The consumer's acknowledgements, in order.
    pub acks: Vec<String>,
    /// The thread the consumer ate each bun on ([`this_thread`]), in order.
    pub eaten_on: Vec<String>,
}

/// The thread running this: `thread "NAME" (ThreadId(N))` (`unnamed` for a thread with no
/// name; the id tells apart two threads of one name).
pub fn this_thread() -> String {
    let t = std::thread::current();
    format!("thread {:?} ({:?})", t.name().unwrap_or("unnamed"), t.id())
}

/// The consumer receives each item by `send` and answers with an acknowledgement; the
/// producer (the caller, on the root) sends 1..=n. The consumer narrates as `consumer`, and
/// notes the thread it ate each bun on.
pub fn take_turns(cx: &Cx, n: u32) -> Turns {
    let c = cx.as_speaker("consumer");
    let mut consumer = Generator::new(move |y, first: u32| {
        let mut item = first;
        loop {
            c.say(format!("consumer: eating bun {item}"));
            // `None`: the generator is being dropped, so the consumer stops.
            let Some(next) = y.suspend((format!("ate {item}"), this_thread())) else {
                return;
            };
            item = next;
        }
    });
    let (acks, eaten_on) = (1..=n)
        .filter_map(|i| {
            cx.say(format!("producer: made bun {i}"));
            consumer.send(i)
        })
        .unzip();
    Turns { acks, eaten_on }
}

/// [`take_turns`]' acknowledgements.
pub fn produce_consume(cx: &Cx, n: u32) -> Vec<String> {
    take_turns(cx, n).acks
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let turns = take_turns(cx, 5);
    cx.say(format!("acknowledgements: {:?}", turns.acks));
    ensure!(
        turns.acks == (1..=5).map(|i| format!("ate {i}")).collect::<Vec<_>>(),
        "send/yield sequence"
    );
    let producer = this_thread();
    let mut consumer = turns.eaten_on.clone();
    consumer.dedup();
    cx.say(format!(
        "the producer ran on {producer}, the consumer on {}",
        consumer.join(" and ")
    ));
    ensure!(
        consumer == [producer.clone()],
        "the consumer ate on {consumer:?}, not on the producer's {producer}"
    );
    cx.explain(
        "Each send() runs the consumer until its next yield: the two take turns on one thread,\n\
         no lock, no thread switch. Python must prime the generator with next() first; here\n\
         the first send() starts it with its value.",
    );
    Ok(())
}
