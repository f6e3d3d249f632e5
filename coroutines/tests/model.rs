//! A randomized model test of [`Greenlet`]: seeded random sequences of create, clone, drop,
//! switch, throw, throw-exit, set-parent, return and panic over a handful of greenlets, run for
//! real and, step by step, against a small model of the rules in `greenlet/mod.rs` (the
//! ownership rules and greenlet's switching rules). Greenlets also arm "bombs": values on
//! their stacks that drop a handle when dropped, so handles are dropped from destructors on
//! other greenlets' stacks, while they return, panic or are unwound.
//!
//! Every greenlet and the root run the same interpreter: it picks an operation, tells the
//! model what it is about to do, does it, and tells the model what came back. The model says
//! which greenlet must run next and with what, and checks every report: who runs (also against
//! `getcurrent()`), what a switch returns, what `set_parent` answers, in which order bombs go
//! off. At the end every greenlet must be dead, and every function and value dropped exactly
//! once (counted).
//!
//! `cargo test` runs 3000 sequences (about a second in a debug build); set
//! `COROUTINES_MODEL_SEQUENCES` for more and `COROUTINES_MODEL_SEED` for another first seed.
//! The sequences run in a child process: a crash there fails this test with the child's
//! output, which names the failing seed and its last events.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use coroutines::{Greenlet, GreenletError, GreenletErrorKind, GreenletExit, Val, getcurrent, val};
use lesson::testing::Rng;

const SLOTS: usize = 6;
const MAX_GREENLETS: usize = 5;
const OPS_PER_SEQUENCE: u32 = 60;
const ROOT: usize = 0;

// ---------------------------------------------------------------------------------------------
// What crosses a switch, as the model sees it.

#[derive(Clone, Debug, PartialEq)]
enum M {
    /// A value: the token numbered so.
    Val(u64),
    /// The value `GreenletExit` (what a greenlet ending with `GreenletExit` hands its parent).
    GExit,
    /// The error `GreenletExit`.
    Exit,
    /// A thrown error, numbered.
    Thrown(u64),
    /// A panic, numbered.
    Panicked(u64),
    /// `CannotSwitch`.
    Cannot,
}

impl M {
    fn is_err(&self) -> bool {
        matches!(self, M::Exit | M::Thrown(_) | M::Panicked(_) | M::Cannot)
    }
}

/// What a dead greenlet, or one ending, hands on: `GreenletExit` becomes a value.
fn exit_to_value(m: M) -> M {
    if m == M::Exit { M::GExit } else { m }
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Unstarted,
    Suspended,
    Running,
    Unwinding,
    Dead,
}

/// Where a suspended greenlet (or the root) waits.
#[derive(Clone, Debug)]
enum Frame {
    /// In the interpreter's own switch: it gets what is switched to it.
    User,
    /// In a kill (of `victim`, whose last handle it dropped from `slot`), switched to the
    /// victim with `GreenletExit`; `saved` is the victim's parent to restore.
    Kill {
        victim: usize,
        saved: Option<usize>,
        slot: usize,
    },
    /// Root only: the hub killing `victim` (dropped while it ran), before going on with the
    /// switch `then` that the victim had made.
    HubKill {
        victim: usize,
        saved: Option<usize>,
        then: (usize, M),
    },
}

/// What to do once a greenlet's stack has been unwound.
#[derive(Clone, Debug)]
enum Then {
    /// The drop that killed it returns.
    DropEnd(usize, usize),
    /// The hub goes on with a switch.
    Resolve(usize, M),
    /// The greenlet being unwound below it goes on unwinding.
    Continue(usize),
}

#[derive(Clone, Debug, PartialEq)]
enum Expect {
    Resume(usize, M),
    DropEnd(usize, usize),
}

#[derive(Clone, Debug)]
struct Mg {
    st: St,
    parent: usize,
    owners: u32,
    killing: bool,
    frame: Option<Frame>,
    bombs: VecDeque<usize>,
    returning: Option<M>,
    panicking: bool,
}

/// How often each interesting path was taken, over all sequences (printed at the end, to
/// show what the random sequences reach).
#[derive(Default, Debug)]
struct Seen {
    kills_by_exit: u64,
    unwinds: u64,
    kills_by_the_hub: u64,
    kills_cut_short: u64,
    drops_while_running: u64,
    bombs_while_unwinding: u64,
    bombs_while_returning: u64,
    bombs_while_panicking: u64,
    cycles_refused: u64,
    switches_to_dead: u64,
}

thread_local! {
    static SEEN: RefCell<Seen> = RefCell::default();
}

fn seen(f: impl FnOnce(&mut Seen)) {
    SEEN.with(|s| f(&mut s.borrow_mut()));
}

struct Model {
    g: Vec<Mg>,
    root_frames: Vec<Frame>,
    chain: Vec<usize>,
    expect: Option<Expect>,
    slots: Vec<Option<usize>>,
    unwinds: Vec<(usize, Then)>,
}

impl Model {
    fn new() -> Model {
        let root = Mg {
            st: St::Running,
            parent: ROOT,
            owners: 1,
            killing: false,
            frame: None,
            bombs: VecDeque::new(),
            returning: None,
            panicking: false,
        };
        Model {
            g: vec![root],
            root_frames: Vec::new(),
            chain: Vec::new(),
            expect: None,
            slots: vec![None; SLOTS],
            unwinds: Vec::new(),
        }
    }

    fn current(&self) -> usize {
        self.chain.last().copied().unwrap_or(ROOT)
    }

    fn runnable(&self, v: usize) -> bool {
        v != ROOT && matches!(self.g[v].st, St::Unstarted | St::Suspended)
    }

    fn in_use(&self, v: usize) -> bool {
        self.chain.contains(&v)
    }

    fn would_cycle(&self, child: usize, parent: usize) -> bool {
        let mut p = parent;
        while p != ROOT {
            if p == child {
                return true;
            }
            p = self.g[p].parent;
        }
        false
    }

    fn can_switch(&self, ctx: usize) -> bool {
        ctx == ROOT || (self.g[ctx].st == St::Running && !self.g[ctx].panicking)
    }

    /// Make `killer` the victim's parent if that makes no cycle; the parent it had.
    fn reparent(&mut self, victim: usize, killer: usize) -> Option<usize> {
        if self.would_cycle(victim, killer) {
            return None;
        }
        Some(std::mem::replace(&mut self.g[victim].parent, killer))
    }

    fn restore(&mut self, victim: usize, saved: Option<usize>) {
        if let Some(p) = saved
            && !self.would_cycle(victim, p)
        {
            self.g[victim].parent = p;
        }
    }

    fn suspend(&mut self, ctx: usize, frame: Frame) -> Result<(), String> {
        if ctx == ROOT {
            self.root_frames.push(frame);
            return Ok(());
        }
        if self.chain != [ctx] {
            return Err(format!("{ctx} suspends but the chain is {:?}", self.chain));
        }
        self.chain.clear();
        self.g[ctx].st = St::Suspended;
        self.g[ctx].frame = Some(frame);
        Ok(())
    }

    /// The hub, after `ctx` suspended (or the root switched) asking for `target` with `msg`.
    fn hub_from(&mut self, ctx: usize, target: usize, msg: M) -> Result<(), String> {
        if ctx != ROOT && self.g[ctx].owners == 0 && !self.g[ctx].killing && self.runnable(ctx) {
            self.g[ctx].killing = true;
            seen(|s| s.kills_by_the_hub += 1);
            let saved = self.reparent(ctx, ROOT);
            self.root_frames.push(Frame::HubKill {
                victim: ctx,
                saved,
                then: (target, msg),
            });
            return self.resolve(ctx, M::Exit);
        }
        self.resolve(target, msg)
    }

    fn resolve(&mut self, target: usize, msg: M) -> Result<(), String> {
        let (mut t, mut msg) = (target, msg);
        if !self.chain.is_empty() {
            return Err(format!("the hub runs with {:?} on the chain", self.chain));
        }
        loop {
            if t == ROOT {
                return self.deliver_root(msg);
            }
            match self.g[t].st {
                St::Dead => {
                    seen(|s| s.switches_to_dead += 1);
                    msg = exit_to_value(msg);
                    t = self.g[t].parent;
                }
                St::Unstarted if msg.is_err() => {
                    // It ends at once, its function unrun, with the error.
                    self.g[t].st = St::Dead;
                    msg = exit_to_value(msg);
                    t = self.g[t].parent;
                }
                St::Unstarted => {
                    self.g[t].st = St::Running;
                    self.chain.push(t);
                    self.expect = Some(Expect::Resume(t, msg));
                    return Ok(());
                }
                St::Suspended => {
                    self.g[t].st = St::Running;
                    self.chain.push(t);
                    return match self.g[t].frame.take() {
                        Some(Frame::User) => {
                            self.expect = Some(Expect::Resume(t, msg));
                            Ok(())
                        }
                        Some(Frame::Kill {
                            victim,
                            saved,
                            slot,
                        }) => self.kill_done(t, victim, saved, Then::DropEnd(t, slot)),
                        f => Err(format!("{t} was suspended in {f:?}")),
                    };
                }
                st => return Err(format!("the hub resumes {t}, which is {st:?}")),
            }
        }
    }

    fn deliver_root(&mut self, msg: M) -> Result<(), String> {
        match self.root_frames.pop() {
            Some(Frame::User) => {
                self.expect = Some(Expect::Resume(ROOT, msg));
                Ok(())
            }
            Some(Frame::Kill {
                victim,
                saved,
                slot,
            }) => self.kill_done(ROOT, victim, saved, Then::DropEnd(ROOT, slot)),
            Some(Frame::HubKill {
                victim,
                saved,
                then,
            }) => self.kill_done(ROOT, victim, saved, Then::Resolve(then.0, then.1)),
            None => Err("a switch to the root, which waits nowhere".into()),
        }
    }

    /// A kill's switch came back to the killer: restore the victim's parent, unwind it if it
    /// is still alive.
    fn kill_done(
        &mut self,
        _killer: usize,
        victim: usize,
        saved: Option<usize>,
        then: Then,
    ) -> Result<(), String> {
        self.restore(victim, saved);
        if self.g[victim].owners == 0 && !self.in_use(victim) && self.runnable(victim) {
            return self.force_unwind(victim, then);
        }
        self.g[victim].killing = false;
        self.apply(then)
    }

    fn apply(&mut self, then: Then) -> Result<(), String> {
        match then {
            Then::DropEnd(ctx, slot) => {
                self.expect = Some(Expect::DropEnd(ctx, slot));
                Ok(())
            }
            Then::Resolve(t, m) => self.resolve(t, m),
            Then::Continue(v) => self.continue_unwind(v),
        }
    }

    fn force_unwind(&mut self, v: usize, then: Then) -> Result<(), String> {
        if self.g[v].st == St::Unstarted {
            self.g[v].st = St::Dead;
            self.g[v].killing = false;
            return self.apply(then);
        }
        self.g[v].st = St::Unwinding;
        seen(|s| s.unwinds += 1);
        self.chain.push(v);
        self.unwinds.push((v, then));
        // A kill of its own that it was in is cut short: its guards run first.
        if let Some(Frame::Kill { victim, saved, .. }) = self.g[v].frame.take() {
            seen(|s| s.kills_cut_short += 1);
            self.restore(victim, saved);
            if self.g[victim].owners == 0 && !self.in_use(victim) && self.runnable(victim) {
                return self.force_unwind(victim, Then::Continue(v));
            }
            self.g[victim].killing = false;
        }
        self.continue_unwind(v)
    }

    fn continue_unwind(&mut self, v: usize) -> Result<(), String> {
        if !self.g[v].bombs.is_empty() {
            return Ok(()); // its bombs go off next, one event each
        }
        if self.chain.last() != Some(&v) {
            return Err(format!("{v} ends its unwind below {:?}", self.chain));
        }
        self.chain.pop();
        self.g[v].st = St::Dead;
        self.g[v].killing = false;
        self.g[v].panicking = false;
        let (w, then) = self.unwinds.pop().ok_or("no unwind to end")?;
        if w != v {
            return Err(format!("unwind of {v} ends, but {w} was expected"));
        }
        self.apply(then)
    }

    fn kill_start(&mut self, ctx: usize, v: usize, slot: usize) -> Result<(), String> {
        if !self.runnable(v) || self.g[v].killing {
            self.expect = Some(Expect::DropEnd(ctx, slot));
            return Ok(());
        }
        self.g[v].killing = true;
        if self.g[v].st == St::Unstarted {
            self.g[v].st = St::Dead;
            self.g[v].killing = false;
            self.expect = Some(Expect::DropEnd(ctx, slot));
            return Ok(());
        }
        if self.can_switch(ctx) {
            seen(|s| s.kills_by_exit += 1);
            let saved = self.reparent(v, ctx);
            self.suspend(
                ctx,
                Frame::Kill {
                    victim: v,
                    saved,
                    slot,
                },
            )?;
            return self.hub_from(ctx, v, M::Exit);
        }
        self.force_unwind(v, Then::DropEnd(ctx, slot))
    }
}

// ---------------------------------------------------------------------------------------------
// Events: what the interpreters report, checked by the model.

#[derive(Clone, Debug)]
enum Ev {
    Create {
        id: usize,
        slot: usize,
    },
    Clone {
        from: usize,
        to: usize,
    },
    DropBegin {
        slot: usize,
        bomb: bool,
    },
    DropEnd {
        slot: usize,
    },
    Switch {
        target: usize,
        msg: M,
    },
    Resumed {
        msg: M,
    },
    SetParent {
        a: usize,
        b: usize,
        got: Result<(), GreenletErrorKind>,
    },
    Arm {
        slot: usize,
    },
    Returning {
        result: M,
    },
    Panicking,
    Finish {
        result: M,
    },
}

impl Model {
    fn on(&mut self, ctx: usize, ev: &Ev) -> Result<(), String> {
        if let Ev::Resumed { msg } = ev {
            return match self.expect.take() {
                Some(Expect::Resume(c, m)) if c == ctx && &m == msg => Ok(()),
                other => Err(format!("expected {other:?}")),
            };
        }
        if let Ev::DropEnd { slot } = ev {
            match self.expect.take() {
                Some(Expect::DropEnd(c, s)) if c == ctx && s == *slot => {}
                other => return Err(format!("expected {other:?}")),
            }
            if ctx != ROOT && self.g[ctx].st == St::Unwinding {
                return self.continue_unwind(ctx);
            }
            return Ok(());
        }
        if let Some(e) = &self.expect {
            return Err(format!("expected {e:?}"));
        }
        if ctx != self.current() {
            return Err(format!("reported by {ctx}, but {} runs", self.current()));
        }
        if ctx == ROOT && !self.root_frames.is_empty() {
            return Err(format!("the root runs inside {:?}", self.root_frames));
        }
        match ev.clone() {
            Ev::Create { id, slot } => {
                if id != self.g.len() {
                    return Err(format!("greenlet {id} made as number {}", self.g.len()));
                }
                self.g.push(Mg {
                    st: St::Unstarted,
                    parent: ctx,
                    owners: 1,
                    killing: false,
                    frame: None,
                    bombs: VecDeque::new(),
                    returning: None,
                    panicking: false,
                });
                self.slots[slot] = Some(id);
                Ok(())
            }
            Ev::Clone { from, to } => {
                let id = self.slots[from].ok_or("clone of an empty slot")?;
                self.g[id].owners += 1;
                self.slots[to] = Some(id);
                Ok(())
            }
            Ev::DropBegin { slot, bomb } => {
                if bomb && ctx != ROOT {
                    let g = &self.g[ctx];
                    let (unwinding, panicking) = (g.st == St::Unwinding, g.panicking);
                    seen(|s| match (unwinding, panicking) {
                        (true, _) => s.bombs_while_unwinding += 1,
                        (_, true) => s.bombs_while_panicking += 1,
                        _ => s.bombs_while_returning += 1,
                    });
                    let next = self.g[ctx].bombs.pop_front();
                    if next != Some(slot) {
                        return Err(format!("bomb for slot {slot} went off; {next:?} was next"));
                    }
                } else if self.g[ctx].st == St::Unwinding {
                    return Err("an unwinding greenlet ran an operation".into());
                }
                let Some(id) = self.slots[slot].take() else {
                    self.expect = Some(Expect::DropEnd(ctx, slot));
                    return Ok(());
                };
                self.g[id].owners -= 1;
                if self.g[id].owners == 0 && self.in_use(id) {
                    seen(|s| s.drops_while_running += 1);
                }
                if self.g[id].owners > 0 || self.in_use(id) {
                    self.expect = Some(Expect::DropEnd(ctx, slot));
                    return Ok(());
                }
                self.kill_start(ctx, id, slot)
            }
            Ev::Switch { target, msg } => {
                if ctx != ROOT && (self.g[ctx].st != St::Running || self.g[ctx].panicking) {
                    self.expect = Some(Expect::Resume(ctx, M::Cannot));
                    return Ok(());
                }
                if target == ctx {
                    self.expect = Some(Expect::Resume(ctx, msg));
                    return Ok(());
                }
                self.suspend(ctx, Frame::User)?;
                self.hub_from(ctx, target, msg)
            }
            Ev::SetParent { a, b, got } => {
                let want = if a == ROOT {
                    Err(GreenletErrorKind::ParentOfRoot)
                } else if self.would_cycle(a, b) {
                    seen(|s| s.cycles_refused += 1);
                    Err(GreenletErrorKind::CyclicParent)
                } else {
                    self.g[a].parent = b;
                    Ok(())
                };
                if want != got {
                    return Err(format!("set_parent({a}, {b}) gave {got:?}, not {want:?}"));
                }
                Ok(())
            }
            Ev::Arm { slot } => {
                self.g[ctx].bombs.push_back(slot);
                Ok(())
            }
            Ev::Returning { result } => {
                self.g[ctx].returning = Some(result);
                Ok(())
            }
            Ev::Panicking => {
                self.g[ctx].panicking = true;
                Ok(())
            }
            Ev::Finish { result } => {
                if self.chain != [ctx] {
                    return Err(format!("{ctx} ends with {:?} on the chain", self.chain));
                }
                if !self.g[ctx].bombs.is_empty() {
                    return Err(format!("{ctx} ends with bombs {:?}", self.g[ctx].bombs));
                }
                if !self.g[ctx].panicking && self.g[ctx].returning.as_ref() != Some(&result) {
                    return Err(format!(
                        "{ctx} ends with {result:?}, but began to return {:?}",
                        self.g[ctx].returning
                    ));
                }
                self.chain.clear();
                self.g[ctx].st = St::Dead;
                self.g[ctx].panicking = false;
                let parent = self.g[ctx].parent;
                self.resolve(parent, exit_to_value(result))
            }
            Ev::Resumed { .. } | Ev::DropEnd { .. } => unreachable!(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world the interpreters share, on this thread.

/// Counts how many are alive, in a shared cell.
struct Live(Rc<Cell<i64>>);

impl Live {
    fn new(count: &Rc<Cell<i64>>) -> Live {
        count.set(count.get() + 1);
        Live(count.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A value switched between greenlets: numbered, and counted.
struct Tok {
    id: u64,
    _live: Live,
}

struct World {
    seed: u64,
    rng: Rng,
    budget: u32,
    next_number: u64,
    model: Model,
    slots: Vec<Option<Greenlet>>,
    /// Views of the greenlets by number (0: the root).
    views: Vec<Greenlet>,
    tokens: Rc<Cell<i64>>,
    functions: Rc<Cell<i64>>,
    log: VecDeque<String>,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Run `f` on the world. Never held across a switch or a drop of a handle: those run other
/// greenlets' code, which reaches the world too.
fn world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|w| f(w.borrow_mut().as_mut().expect("no world")))
}

/// Report `ev` from `ctx` to the model; on any disagreement, print the seed and the last
/// events and end the process (a failure inside a greenlet would otherwise just become an
/// error handed to its parent).
fn report(ctx: usize, ev: Ev) {
    let (seed, failure) = world(|w| {
        let line = format!("{ctx}: {ev:?}");
        w.log.push_back(line);
        if w.log.len() > 80 {
            w.log.pop_front();
        }
        let failure = if getcurrent() != w.views[ctx] {
            Some(format!("reported by {ctx}, but getcurrent() is another"))
        } else {
            w.model.on(ctx, &ev).err()
        };
        (w.seed, failure.map(|f| (f, w.log.clone())))
    });
    if let Some((failure, log)) = failure {
        fail(seed, &failure, log);
    }
}

/// Print what went wrong and the last events, and end the process.
fn fail(seed: u64, failure: &str, log: VecDeque<String>) -> ! {
    let mut out = format!("model test failed, seed {seed}: {failure}\nlast events:\n");
    for line in log {
        let _ = writeln!(out, "  {line}");
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
    std::process::exit(3);
}

fn number(w: &mut World) -> u64 {
    w.next_number += 1;
    w.next_number
}

fn observe(r: Result<Val, GreenletError>) -> M {
    match r {
        Ok(v) => {
            if v.is::<GreenletExit>() {
                return M::GExit;
            }
            match v.downcast::<Tok>() {
                Ok(t) => M::Val(t.id),
                Err(v) => panic!("an unexpected value: {v:?}"),
            }
        }
        Err(e) => match e.kind() {
            GreenletErrorKind::Exit => M::Exit,
            GreenletErrorKind::Thrown(t) => M::Thrown(t[1..].parse().expect("t<n>")),
            GreenletErrorKind::Panicked(p) => {
                M::Panicked(p["model panic ".len()..].parse().expect("model panic <n>"))
            }
            GreenletErrorKind::CannotSwitch(_) => M::Cannot,
            other => panic!("an unexpected error: {other:?}"),
        },
    }
}

fn to_error(m: &M) -> GreenletError {
    match m {
        M::Exit => GreenletError::exit(),
        M::Thrown(n) => GreenletError::thrown(format!("t{n}")),
        M::Panicked(n) => GreenletErrorKind::Panicked(format!("model panic {n}")).into(),
        other => GreenletErrorKind::CannotSwitch(if *other == M::Cannot { "" } else { "?" }).into(),
    }
}

/// A value on a greenlet's stack that drops the handle in `slot` when it is dropped.
struct Bomb {
    owner: usize,
    slot: usize,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        let (owner, slot) = (self.owner, self.slot);
        report(owner, Ev::DropBegin { slot, bomb: true });
        let handle = world(|w| w.slots[slot].take());
        drop(handle);
        report(owner, Ev::DropEnd { slot });
    }
}

/// What an interpreter does next.
enum Op {
    Create(usize),
    Clone(usize, usize),
    Drop(usize),
    Switch(usize),
    Throw(usize),
    ThrowExit(usize),
    SetParent(usize, usize),
    Arm(usize),
    Return,
    Panic,
    Stop,
}

fn choose(me: usize) -> Op {
    world(|w| {
        if w.budget == 0 {
            return if me == ROOT { Op::Stop } else { Op::Return };
        }
        w.budget -= 1;
        let n = w.views.len();
        let free = (0..SLOTS).find(|&s| w.slots[s].is_none());
        let full: Vec<usize> = (0..SLOTS).filter(|&s| w.slots[s].is_some()).collect();
        loop {
            let op = match w.rng.below(100) {
                0..=9 if n <= MAX_GREENLETS && free.is_some() => Op::Create(free.unwrap()),
                10..=13 if free.is_some() && !full.is_empty() => {
                    Op::Clone(full[w.rng.below(full.len())], free.unwrap())
                }
                14..=27 => Op::Drop(w.rng.below(SLOTS)),
                28..=57 => Op::Switch(w.rng.below(n)),
                58..=64 => Op::Throw(w.rng.below(n)),
                65..=68 => Op::ThrowExit(w.rng.below(n)),
                69..=76 => Op::SetParent(w.rng.below(n), w.rng.below(n)),
                77..=87 if me != ROOT => Op::Arm(w.rng.below(SLOTS)),
                88..=96 if me != ROOT => Op::Return,
                97..=99 if me != ROOT => Op::Panic,
                _ => continue,
            };
            return op;
        }
    })
}

/// Do one of the operations both the root and a greenlet do; what a switch returned.
fn perform(me: usize, op: Op) -> Option<M> {
    match op {
        Op::Create(slot) => {
            let (id, alive) = world(|w| (w.views.len(), Live::new(&w.functions)));
            let g = Greenlet::new(move |first| run_greenlet(id, first, alive)).expect("a stack");
            world(|w| {
                w.views.push(g.view());
                w.slots[slot] = Some(g);
            });
            report(me, Ev::Create { id, slot });
            None
        }
        Op::Clone(from, to) => {
            world(|w| w.slots[to] = w.slots[from].clone());
            report(me, Ev::Clone { from, to });
            None
        }
        Op::Drop(slot) => {
            report(me, Ev::DropBegin { slot, bomb: false });
            let handle = world(|w| w.slots[slot].take());
            drop(handle);
            report(me, Ev::DropEnd { slot });
            None
        }
        Op::Switch(target) | Op::Throw(target) | Op::ThrowExit(target) => {
            let (to, n, tok) = world(|w| {
                let n = number(w);
                let tok = Tok {
                    id: n,
                    _live: Live::new(&w.tokens),
                };
                (w.views[target].clone(), n, tok)
            });
            let (msg, r) = match op {
                Op::Switch(_) => {
                    report(
                        me,
                        Ev::Switch {
                            target,
                            msg: M::Val(n),
                        },
                    );
                    (M::Val(n), to.switch(val(tok)))
                }
                Op::Throw(_) => {
                    drop(tok);
                    report(
                        me,
                        Ev::Switch {
                            target,
                            msg: M::Thrown(n),
                        },
                    );
                    (M::Thrown(n), to.throw(&format!("t{n}")))
                }
                _ => {
                    drop(tok);
                    report(
                        me,
                        Ev::Switch {
                            target,
                            msg: M::Exit,
                        },
                    );
                    (M::Exit, to.throw_exit())
                }
            };
            let _ = msg;
            let got = observe(r);
            report(me, Ev::Resumed { msg: got.clone() });
            Some(got)
        }
        Op::SetParent(a, b) => {
            let (ga, gb) = world(|w| (w.views[a].clone(), w.views[b].clone()));
            let got = ga.set_parent(&gb).map_err(|e| e.kind().clone());
            report(me, Ev::SetParent { a, b, got });
            None
        }
        Op::Arm(_) | Op::Return | Op::Panic | Op::Stop => unreachable!(),
    }
}

/// A greenlet's function: the interpreter, with what it reports when it ends by a panic.
fn run_greenlet(me: usize, first: Val, alive: Live) -> Result<Val, GreenletError> {
    let _alive = alive;
    let first = observe(Ok(first));
    match catch_unwind(AssertUnwindSafe(|| interpret(me, first))) {
        Ok(r) => r,
        Err(payload) => {
            // Unwound by a kill: the model has it unwinding, or dead once its bombs went off.
            let unwinding = world(|w| matches!(w.model.g[me].st, St::Unwinding | St::Dead));
            let planned = payload
                .downcast_ref::<String>()
                .and_then(|t| t.strip_prefix("model panic "))
                .and_then(|n| n.parse().ok());
            match (unwinding, planned) {
                (false, Some(n)) => report(
                    me,
                    Ev::Finish {
                        result: M::Panicked(n),
                    },
                ),
                (true, _) => {}
                (false, None) => world(|w| {
                    let log = w.log.clone();
                    fail(
                        w.seed,
                        &format!("{me} is unwound, unknown to the model"),
                        log,
                    )
                }),
            }
            resume_unwind(payload)
        }
    }
}

fn interpret(me: usize, first: M) -> Result<Val, GreenletError> {
    report(me, Ev::Resumed { msg: first.clone() });
    let mut bombs: Vec<Bomb> = Vec::new();
    let mut msg = first;
    loop {
        let propagate = match &msg {
            M::Exit => world(|w| w.rng.chance(70)),
            M::Thrown(_) | M::Panicked(_) => world(|w| w.rng.chance(50)),
            _ => false,
        };
        let op = if propagate { Op::Return } else { choose(me) };
        match op {
            Op::Return => {
                let (result, m) = if propagate {
                    (Err(to_error(&msg)), msg.clone())
                } else {
                    world(|w| {
                        let n = number(w);
                        let tok = Tok {
                            id: n,
                            _live: Live::new(&w.tokens),
                        };
                        if w.rng.chance(80) {
                            (Ok(val(tok)), M::Val(n))
                        } else {
                            (Err(GreenletError::thrown(format!("t{n}"))), M::Thrown(n))
                        }
                    })
                };
                report(me, Ev::Returning { result: m.clone() });
                for bomb in bombs.drain(..) {
                    drop(bomb);
                }
                report(me, Ev::Finish { result: m });
                return result;
            }
            Op::Panic => {
                let n = world(number);
                report(me, Ev::Panicking);
                panic!("model panic {n}");
            }
            Op::Arm(slot) => {
                bombs.push(Bomb { owner: me, slot });
                report(me, Ev::Arm { slot });
            }
            op => {
                if let Some(got) = perform(me, op) {
                    msg = got;
                    continue;
                }
            }
        }
        msg = M::Val(0);
    }
}

/// One sequence, from the root.
fn sequence(seed: u64) {
    let tokens = Rc::new(Cell::new(0));
    let functions = Rc::new(Cell::new(0));
    WORLD.with(|w| {
        *w.borrow_mut() = Some(World {
            seed,
            rng: Rng::new(seed),
            budget: OPS_PER_SEQUENCE,
            next_number: 0,
            model: Model::new(),
            slots: (0..SLOTS).map(|_| None).collect(),
            views: vec![getcurrent()],
            tokens: tokens.clone(),
            functions: functions.clone(),
            log: VecDeque::new(),
        })
    });
    loop {
        match choose(ROOT) {
            Op::Stop => break,
            op => {
                perform(ROOT, op);
            }
        }
    }
    for slot in 0..SLOTS {
        perform(ROOT, Op::Drop(slot));
    }
    let failure = world(|w| {
        let alive: Vec<usize> = (1..w.views.len()).filter(|&i| !w.views[i].dead()).collect();
        let model_alive: Vec<usize> = (1..w.model.g.len())
            .filter(|&i| w.model.g[i].st != St::Dead)
            .collect();
        if !alive.is_empty() || !model_alive.is_empty() {
            Some(format!(
                "alive at the end: {alive:?} (the model: {model_alive:?})"
            ))
        } else {
            None
        }
    });
    let world = WORLD.with(|w| w.borrow_mut().take());
    drop(world);
    let failure = failure.or_else(|| {
        (tokens.get() != 0 || functions.get() != 0).then(|| {
            format!(
                "not dropped: {} values, {} greenlet functions",
                tokens.get(),
                functions.get()
            )
        })
    });
    if let Some(f) = failure {
        let _ = writeln!(std::io::stderr(), "model test failed, seed {seed}: {f}");
        std::process::exit(3);
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_sequences_follow_the_model() {
    let name = "random_sequences_follow_the_model";
    if support::is_child(name) {
        // The panics the sequences make on purpose are not worth a backtrace each.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|s| s.starts_with("model panic "));
            if !planned {
                default(info);
            }
        }));
        let first = env_number("COROUTINES_MODEL_SEED", 14);
        let count = env_number("COROUTINES_MODEL_SEQUENCES", 3000);
        for seed in first..first + count {
            sequence(seed);
        }
        println!("{count} sequences from seed {first} followed the model");
        SEEN.with(|s| println!("paths taken: {:#?}", s.borrow()));
        return;
    }
    let out = support::run_child(name, std::time::Duration::from_secs(600));
    assert!(out.status.success(), "{}", support::describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("followed the model"),
        "{}",
        support::describe(&out)
    );
}
