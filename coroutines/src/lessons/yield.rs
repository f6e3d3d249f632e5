//! Lesson `yield` (Yield(协程)): a producer and a consumer generator, driven by send().

use anyhow::ensure;
use lesson::Cx;

use crate::Generator;

/// The consumer receives each item by `send` and answers with an acknowledgement; the
/// producer (the caller, on the root) sends 1..=n. The acknowledgements in order. The consumer
/// narrates as `consumer`.
pub fn produce_consume(cx: &Cx, n: u32) -> Vec<String> {
    let c = cx.as_speaker("consumer");
    let mut consumer = Generator::new(move |y, first: u32| {
        let mut item = first;
        loop {
            c.say(format!("consumer: eating bun {item}"));
            // `None`: the generator is being dropped, so the consumer stops.
            let Some(next) = y.suspend(format!("ate {item}")) else {
                return;
            };
            item = next;
        }
    });
    (1..=n)
        .filter_map(|i| {
            cx.say(format!("producer: made bun {i}"));
            consumer.send(i)
        })
        .collect()
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let acks = produce_consume(cx, 5);
    cx.say(format!("acknowledgements: {acks:?}"));
    ensure!(
        acks == (1..=5).map(|i| format!("ate {i}")).collect::<Vec<_>>(),
        "send/yield sequence"
    );
    cx.explain(
        "Each send() runs the consumer until its next yield: the two take turns on one thread,\n\
         no lock, no thread switch. Python must prime the generator with next() first; here\n\
         the first send() starts it with its value.",
    );
    Ok(())
}
