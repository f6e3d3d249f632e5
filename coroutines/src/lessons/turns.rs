//! Not a lesson: how the lessons show greenlets and hub tasks on the timeline, each under its
//! own name, with a span for each stretch it runs. A switch ends one stretch and begins
//! another's: the hand-over, as it happened.
//!
//! Greenlets mark their stretches themselves ([`Turn`]): a switch is a line of their own code.
//! Hub tasks hand over inside the hub's waits, which a lesson does not see, so the hub tells
//! a tracer ([`HubTimeline`], on [`hub::set_tracer`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use lesson::{Activity, Cx, SpanGuard};

use crate::hub::{self, Trace, Waiting};
use crate::{Greenlet, GreenletError, Val};

/// A greenlet's (or the root's) turns on the thread: a working span from when it runs until
/// it switches away.
pub struct Turn {
    cx: Cx,
    span: Option<SpanGuard>,
}

impl Turn {
    /// The turn of whoever speaks through `cx`, running from now.
    pub fn begin(cx: &Cx) -> Turn {
        Turn {
            cx: cx.clone(),
            span: Some(cx.span(Activity::Work, "runs")),
        }
    }

    /// Switch to `target`: this turn ends here, and the next one begins when something
    /// switches back (a greenlet killed while it waits here runs once more, to end: that turn
    /// says "GreenletExit").
    ///
    /// # Errors
    /// As [`Greenlet::switch`].
    pub fn switch(&mut self, target: &Greenlet, value: Val) -> Result<Val, GreenletError> {
        self.span.take();
        let r = target.switch(value);
        let what = match &r {
            Err(e) if e.is_exit() => "GreenletExit: ends",
            _ => "runs",
        };
        self.span = Some(self.cx.span(Activity::Work, what));
        r
    }
}

/// The hub's hand-overs drawn on the timeline while this lives: each named task's stretches on
/// the thread as working spans, and its waits as waiting (or sleeping) spans, under its name.
pub struct HubTimeline {
    names: Rc<RefCell<HashMap<u64, Cx>>>,
    open: Rc<RefCell<HashMap<u64, SpanGuard>>>,
}

impl HubTimeline {
    /// Start drawing (this thread's hub).
    ///
    /// # Errors
    /// If the hub cannot be made or is gone.
    pub fn install() -> io::Result<HubTimeline> {
        let names: Rc<RefCell<HashMap<u64, Cx>>> = Rc::default();
        let open: Rc<RefCell<HashMap<u64, SpanGuard>>> = Rc::default();
        let (n, o) = (names.clone(), open.clone());
        hub::set_tracer(Some(Rc::new(move |t: Trace| {
            let id = match t {
                Trace::Runs(id) | Trace::Waits(id, _) | Trace::Ends(id) => id,
            };
            // The span before ends first, then the next begins.
            drop(o.borrow_mut().remove(&id));
            let Some(cx) = n.borrow().get(&id).cloned() else {
                return;
            };
            let next = match t {
                Trace::Runs(_) => Some((Activity::Work, "runs")),
                Trace::Waits(_, Waiting::Sleep) => Some((Activity::Sleep, "sleeps")),
                Trace::Waits(_, Waiting::Read) => Some((Activity::Wait, "waits to read")),
                Trace::Waits(_, Waiting::Write) => Some((Activity::Wait, "waits to write")),
                Trace::Waits(_, Waiting::Task) => Some((Activity::Wait, "waits for a task")),
                Trace::Waits(_, Waiting::Parked) => Some((Activity::Wait, "waits (queue)")),
                Trace::Waits(_, Waiting::Turn) | Trace::Ends(_) => None,
            };
            if let Some((activity, text)) = next {
                o.borrow_mut().insert(id, cx.span(activity, text));
            }
        })))?;
        Ok(HubTimeline { names, open })
    }

    /// Draw task `id` under the name `cx` speaks as.
    pub fn name(&self, id: u64, cx: &Cx) {
        self.names.borrow_mut().insert(id, cx.clone());
    }
}

impl Drop for HubTimeline {
    fn drop(&mut self) {
        let _ = hub::set_tracer(None);
        self.open.borrow_mut().clear();
    }
}
