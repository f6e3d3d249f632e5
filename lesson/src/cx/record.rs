//! What a lesson records: lines said and spans of activity.

use std::time::Duration;

/// One narration line or one span of activity, as kept for `--timeline` and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Time since the lesson started (a span's start).
    pub at: Duration,
    /// Who: the thread's name, `pid N` in a child process (see [`speaker`](crate::speaker)), or the name given
    /// with [`Cx::as_speaker`](crate::Cx::as_speaker) (a greenlet, a hub task, a named child process).
    pub speaker: String,
    /// What was said, or what the span was.
    pub text: String,
    /// A line said, or a span of activity.
    pub kind: Kind,
    /// The CPU that ran the speaker when the line was said (or the span began), if known.
    pub cpu: Option<u32>,
    /// The process that recorded it.
    pub pid: u32,
}

impl Record {
    /// A line said by `speaker` at `at` (process and CPU unknown): for tests and examples.
    pub fn said(at: Duration, speaker: impl Into<String>, text: impl Into<String>) -> Record {
        Record {
            at,
            speaker: speaker.into(),
            text: text.into(),
            kind: Kind::Said,
            cpu: None,
            pid: 0,
        }
    }

    /// A span of `activity` from `at` to `until`: for tests and examples.
    pub fn span(
        at: Duration,
        until: Duration,
        speaker: impl Into<String>,
        activity: Activity,
        text: impl Into<String>,
    ) -> Record {
        Record {
            kind: Kind::Span { until, activity },
            ..Record::said(at, speaker, text)
        }
    }

    /// When the record ends: a span's end, or the moment a line was said.
    pub fn end(&self) -> Duration {
        match self.kind {
            Kind::Said => self.at,
            Kind::Span { until, .. } => until,
        }
    }
}

/// What a [`Record`] is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A narration line ([`Cx::say`](crate::Cx::say)).
    Said,
    /// An activity over time ([`Cx::span`](crate::Cx::span)), ending at `until`.
    Span {
        /// When it ended (time since the lesson started).
        until: Duration,
        /// What kind of activity.
        activity: Activity,
    },
}

/// What a speaker was doing during a span: the timeline draws work and waiting differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Computing (on a CPU).
    Work,
    /// Holding something others may want: a lock, a permit of a semaphore.
    Hold,
    /// Sleeping (`time.sleep`): off the CPU, holding nothing it did not hold before.
    Sleep,
    /// Blocked waiting for something: a lock, a queue, an event, a child, a reply.
    Wait,
}

impl Activity {
    /// Every activity, in legend order.
    pub const ALL: [Activity; 4] = [
        Activity::Work,
        Activity::Hold,
        Activity::Sleep,
        Activity::Wait,
    ];

    /// The character the text timeline fills a span with.
    pub fn glyph(self) -> char {
        match self {
            Activity::Work => '=',
            Activity::Hold => '#',
            Activity::Sleep => '~',
            Activity::Wait => '.',
        }
    }

    /// Its name in the legend.
    pub fn name(self) -> &'static str {
        match self {
            Activity::Work => "working",
            Activity::Hold => "holding",
            Activity::Sleep => "sleeping",
            Activity::Wait => "waiting",
        }
    }

    pub(super) fn code(self) -> char {
        match self {
            Activity::Work => 'W',
            Activity::Hold => 'H',
            Activity::Sleep => 'S',
            Activity::Wait => 'B',
        }
    }

    pub(super) fn from_code(c: &str) -> Option<Activity> {
        Activity::ALL.into_iter().find(|a| c.starts_with(a.code()))
    }
}
