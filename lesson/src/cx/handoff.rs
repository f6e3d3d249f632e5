//! How a context crosses into a process started afresh.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use super::sink::{Sink, escape, unescape};
use super::{Cx, Inner};

/// What a context hands to a process started afresh (spawn, a helper), so that its lines fall on
/// the parent's timeline and its records reach the parent's ([`Cx::handoff`], [`Handoff::cx`]).
/// Plain data: it travels as postcard bytes to a spawned child, or as text ([`Handoff::encode`])
/// in the environment of a helper.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    /// The time scale.
    pub scale: f64,
    /// When the parent's lesson started, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// Whether the child prints its lines.
    pub echo: bool,
    /// Where the parent's records sink is (`/proc/<pid>/fd/<n>`), if it has one.
    pub sink: Option<String>,
    /// The child's speaker name, if it has one (else `pid N`).
    pub speaker: Option<String>,
}

/// The environment variable a helper process finds its [`Handoff`] in.
pub const HANDOFF_ENV: &str = "LESSON_HANDOFF";

impl Handoff {
    /// The context the child narrates through: timed from the parent's start, appending its
    /// records to the parent's sink.
    pub fn cx(&self) -> Cx {
        let start = UNIX_EPOCH + Duration::from_nanos(self.start_unix_nanos);
        let since = SystemTime::now().duration_since(start).unwrap_or_default();
        let now = Instant::now();
        let sink = self
            .sink
            .as_deref()
            .and_then(|p| Sink::open(std::path::Path::new(p)));
        Cx {
            inner: Arc::new(Inner {
                start: now.checked_sub(since).unwrap_or(now),
                scale: self.scale,
                count: None,
                echo: self.echo,
                // No process has pid 0: every line of this context goes to the sink.
                root_pid: 0,
                exe: None,
                records: Mutex::new(Vec::new()),
                sink,
            }),
            name: self.speaker.as_deref().map(Arc::from),
        }
    }

    /// The same handoff, with the child named `speaker` on the timeline.
    pub fn named(mut self, speaker: impl Into<String>) -> Handoff {
        self.speaker = Some(speaker.into());
        self
    }

    /// As one line of text (for an environment variable).
    pub fn encode(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}",
            self.scale,
            self.start_unix_nanos,
            u8::from(self.echo),
            escape(self.sink.as_deref().unwrap_or("")),
            escape(self.speaker.as_deref().unwrap_or(""))
        )
    }

    /// Read [`Handoff::encode`]'s text back.
    ///
    /// # Errors
    /// If the text is not a handoff.
    pub fn decode(text: &str) -> anyhow::Result<Handoff> {
        let f: Vec<&str> = text.split('\t').collect();
        let [scale, start, echo, sink, speaker] = f.as_slice() else {
            bail!("a lesson handoff has 5 fields, got {text:?}")
        };
        let some = |s: &str| (!s.is_empty()).then(|| unescape(s));
        Ok(Handoff {
            scale: scale.parse().context("handoff scale")?,
            start_unix_nanos: start.parse().context("handoff start")?,
            echo: *echo == "1",
            sink: some(sink),
            speaker: some(speaker),
        })
    }
}
