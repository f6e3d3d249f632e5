//! Counts per operation for the benches: context switches, CPU migrations, system calls and,
//! where measurable, instructions, counted in-process over the timed runs only.
//!
//! Timings differ from one processor to the next; these counts say *why*. A hand-off that
//! costs 0.01 context switches per item on one machine and 0.5 on another is parking on the
//! second, whatever the clock says. They are what two machines' reports can be compared by.
//!
//! # Where the counts come from
//!
//! - **perf** (Linux `perf_event_open`, through the `perf-event2` crate): the software events
//!   `context-switches` and `cpu-migrations`, the `raw_syscalls:sys_enter` tracepoint (its id
//!   read from tracefs, `/sys/kernel/tracing` or `/sys/kernel/debug/tracing`) and, where the
//!   processor exposes it, the hardware event `instructions`. Each counter is opened on the
//!   calling thread with `inherit`, so threads and processes it creates *afterwards* are
//!   counted too (a child's counts are added to the parent's when read); it is enabled only
//!   around each timed run. Kernel-side events need `perf_event_paranoid` <= 1 or root; tracing
//!   needs root (or `CAP_PERFMON` and a readable tracefs).
//! - **getrusage**, when perf's context-switch counter cannot be opened: the voluntary and
//!   involuntary context switches of this process (`RUSAGE_SELF`, every thread, ended ones
//!   included) and of its reaped children (`RUSAGE_CHILDREN`), before and after each run. It
//!   also counts threads that existed before the counters were opened.
//! - **callgrind**: under `valgrind --tool=callgrind` (as `cargo xtask bench --counts` runs
//!   the single-threaded figures), each counted run goes through one function,
//!   [`callgrind_region`], which callgrind is told to collect and to dump after
//!   (`--collect-atstart=no --toggle-collect=*callgrind_region* --dump-after=*callgrind_region*`).
//!   The run's instruction count is then read back from the part file callgrind wrote when the
//!   region returned. [`CALLGRIND_ENV`] names the file prefix given to callgrind
//!   (`--callgrind-out-file=PREFIX.%p`). Instruction counts do not depend on the machine's
//!   load or clock, so they compare across machines; valgrind runs one thread at a time, so
//!   only single-threaded figures give meaningful ones. Only one run is counted (after one
//!   warm-up) in this mode, and its timing means nothing.
//!
//! A count that cannot be had is left out (`None`), and the report shows "-".
//!
//! Not counted: threads that already existed when the counters were opened (under perf).
//! A bench whose helper thread outlives one run opens [`Counters`] before spawning it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use perf_event::events::{Hardware, Software, Tracepoint};
use perf_event::{Builder, Counter};

use crate::bench::Param;

/// The environment variable that turns on callgrind mode: the prefix of callgrind's output
/// files (`--callgrind-out-file=PREFIX.%p`). Set by `cargo xtask bench --counts`.
pub const CALLGRIND_ENV: &str = "LESSON_BENCH_CALLGRIND";

/// What the counters saw over the counted runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Operations done in the counted runs (the divisor of every `*_per_op`).
    pub ops: u64,
    /// Context switches (voluntary and involuntary), if counted.
    pub context_switches: Option<u64>,
    /// Moves of a thread from one CPU to another, if counted.
    pub migrations: Option<u64>,
    /// System calls entered, if counted.
    pub syscalls: Option<u64>,
    /// Instructions retired (perf) or executed (callgrind), if counted.
    pub instructions: Option<u64>,
    /// Where the counts came from: `perf`, `getrusage`, `callgrind`, joined by `+` when mixed,
    /// or `none`.
    pub via: String,
}

impl Counts {
    /// `count / ops`, or `None` when nothing was counted or no operation was done.
    pub fn per_op(&self, count: Option<u64>) -> Option<f64> {
        count
            .filter(|_| self.ops > 0)
            .map(|c| c as f64 / self.ops as f64)
    }

    /// The counts as BENCH params: `ctx_per_op`, `migrations_per_op`, `syscalls_per_op`,
    /// `instructions_per_op` (each only when counted) and `counts_via`.
    ///
    /// ```
    /// let c = lesson::bench::Counts {
    ///     ops: 4,
    ///     context_switches: Some(2),
    ///     syscalls: Some(1),
    ///     via: "perf".into(),
    ///     ..Default::default()
    /// };
    /// let l = lesson::bench::line("x", "ns", 1.0, &c.params());
    /// assert_eq!(l, r#"BENCH {"name": "x", "unit": "ns", "value": 1, "params": {"ctx_per_op": 0.5, "syscalls_per_op": 0.25, "counts_via": "perf"}}"#);
    /// ```
    pub fn params(&self) -> Vec<(&'static str, Param)> {
        let mut out = Vec::new();
        for (name, count) in [
            ("ctx_per_op", self.context_switches),
            ("migrations_per_op", self.migrations),
            ("syscalls_per_op", self.syscalls),
            ("instructions_per_op", self.instructions),
        ] {
            if let Some(v) = self.per_op(count) {
                out.push((name, Param::Num(v)));
            }
        }
        out.push((
            "counts_via",
            Param::Str(if self.via.is_empty() {
                "none".into()
            } else {
                self.via.clone()
            }),
        ));
        out
    }

    /// `params` followed by these counts' [`params`](Self::params): what a counted figure's
    /// BENCH line carries.
    pub fn with<'a>(&self, params: &[(&'a str, Param)]) -> Vec<(&'a str, Param)> {
        let mut all = params.to_vec();
        all.extend(self.params());
        all
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    ContextSwitches,
    Migrations,
    Syscalls,
    Instructions,
}

/// Counters opened on the calling thread, enabled only inside [`Counters::count`].
///
/// ```
/// let mut c = lesson::bench::Counters::open();
/// let v = c.count(1000, || (0..1000u64).sum::<u64>());
/// assert_eq!(v, 499_500);
/// let counts = c.counts();
/// assert_eq!(counts.ops, 1000);
/// ```
pub struct Counters {
    perf: Vec<(Kind, Counter)>,
    /// Context switches from getrusage, when perf's cannot be had.
    rusage: Option<u64>,
    instructions: Option<u64>,
    callgrind: Option<String>,
    ops: u64,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field(
                "perf",
                &self.perf.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            )
            .field("rusage", &self.rusage)
            .field("callgrind", &self.callgrind)
            .field("ops", &self.ops)
            .finish()
    }
}

fn tracepoint_id(name: &str) -> Option<u64> {
    [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .find_map(|root| {
        let path: PathBuf = [root, name, "id"].iter().collect();
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
}

fn open_one(kind: Kind) -> Option<Counter> {
    let mut b = match kind {
        Kind::ContextSwitches => Builder::new(Software::CONTEXT_SWITCHES),
        Kind::Migrations => Builder::new(Software::CPU_MIGRATIONS),
        Kind::Syscalls => Builder::new(Tracepoint::with_id(tracepoint_id(
            "raw_syscalls/sys_enter",
        )?)),
        Kind::Instructions => Builder::new(Hardware::INSTRUCTIONS),
    };
    // Switches, migrations and system calls happen in the kernel: without it they read 0, so
    // a counter that cannot include the kernel is no counter at all.
    b.inherit(true).include_kernel().enabled(false).build().ok()
}

fn rusage_switches() -> Option<u64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let sum = |who| {
        getrusage(who).ok().map(|u| {
            (u.voluntary_context_switches() + u.involuntary_context_switches()).max(0) as u64
        })
    };
    Some(sum(UsageWho::RUSAGE_SELF)? + sum(UsageWho::RUSAGE_CHILDREN)?)
}

/// How many counted regions this process has entered (callgrind numbers its dumps the same
/// way, from 1).
static REGIONS: AtomicU64 = AtomicU64::new(0);

/// The one function every counted run goes through in callgrind mode; callgrind collects
/// inside it and dumps a part file when it returns. Not inlined, so that callgrind sees it.
#[inline(never)]
pub fn callgrind_region(f: &mut dyn FnMut()) {
    f();
    std::hint::black_box(());
}

/// The instruction count in callgrind's part file `PREFIX.PID.N` (its `totals:` or
/// `summary:` line), for the `n`th region.
fn callgrind_part(prefix: &str, n: u64) -> Option<u64> {
    let path = format!("{prefix}.{}.{n}", std::process::id());
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .find_map(|v| v.split_whitespace().next()?.parse().ok())
}

impl Counters {
    /// Open every counter this machine allows (see the module docs), disabled. Threads and
    /// processes created by the calling thread after this are counted with it.
    pub fn open() -> Counters {
        let callgrind = std::env::var(CALLGRIND_ENV).ok().filter(|p| !p.is_empty());
        let mut perf = Vec::new();
        if callgrind.is_none() {
            for kind in [
                Kind::ContextSwitches,
                Kind::Migrations,
                Kind::Instructions,
                Kind::Syscalls,
            ] {
                if let Some(c) = open_one(kind) {
                    perf.push((kind, c));
                }
            }
        }
        let rusage = (callgrind.is_none()
            && !perf.iter().any(|(k, _)| *k == Kind::ContextSwitches)
            && rusage_switches().is_some())
        .then_some(0);
        Counters {
            perf,
            rusage,
            instructions: callgrind.as_ref().map(|_| 0),
            callgrind,
            ops: 0,
        }
    }

    /// Whether this process runs under callgrind for counts (one counted run is enough then).
    pub fn under_callgrind(&self) -> bool {
        self.callgrind.is_some()
    }

    /// Run `f`, which does `ops` operations, with the counters enabled.
    pub fn count<R>(&mut self, ops: u64, f: impl FnOnce() -> R) -> R {
        self.ops += ops;
        if let Some(prefix) = &self.callgrind {
            let mut f = Some(f);
            let mut out = None;
            callgrind_region(&mut || out = f.take().map(|f| f()));
            let n = REGIONS.fetch_add(1, Ordering::SeqCst) + 1;
            self.instructions = match (self.instructions, callgrind_part(prefix, n)) {
                (Some(sum), Some(v)) => Some(sum + v),
                _ => None,
            };
            return out.unwrap_or_else(|| unreachable!("the region ran f"));
        }
        let before = self.rusage.and_then(|_| rusage_switches());
        // Syscalls last on, first off: the ioctls that switch the others are not counted.
        for (_, c) in &mut self.perf {
            let _ = c.enable();
        }
        let out = f();
        for (_, c) in self.perf.iter_mut().rev() {
            let _ = c.disable();
        }
        if let Some(sum) = self.rusage {
            self.rusage = before
                .zip(rusage_switches())
                .map(|(b, a)| sum + a.saturating_sub(b));
        }
        out
    }

    /// What was counted so far, over every [`count`](Self::count).
    pub fn counts(&mut self) -> Counts {
        let mut counts = Counts {
            ops: self.ops,
            ..Counts::default()
        };
        let mut via = Vec::new();
        for (kind, c) in &mut self.perf {
            // A counter the kernel never scheduled (time_running 0, as for a hardware event
            // with no free slot) counted nothing: leave it out rather than report 0.
            let Ok(data) = c.read_full() else { continue };
            if data.time_running().is_some_and(|t| t.is_zero()) && data.count() == 0 {
                continue;
            }
            let v = Some(data.count());
            match kind {
                Kind::ContextSwitches => counts.context_switches = v,
                Kind::Migrations => counts.migrations = v,
                Kind::Syscalls => counts.syscalls = v,
                Kind::Instructions => counts.instructions = v,
            }
            if !via.contains(&"perf") {
                via.push("perf");
            }
        }
        if counts.context_switches.is_none() && self.rusage.is_some() {
            counts.context_switches = self.rusage;
            via.push("getrusage");
        }
        if self.callgrind.is_some() && self.instructions.is_some() {
            counts.instructions = self.instructions;
            via.push("callgrind");
        }
        counts.via = if via.is_empty() {
            "none".into()
        } else {
            via.join("+")
        };
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_op_divides_and_leaves_out_what_was_not_counted() {
        let c = Counts {
            ops: 10,
            context_switches: Some(5),
            migrations: None,
            syscalls: Some(0),
            instructions: None,
            via: "perf".into(),
        };
        assert_eq!(c.per_op(c.context_switches), Some(0.5));
        assert_eq!(c.per_op(c.migrations), None);
        let names: Vec<&str> = c.params().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["ctx_per_op", "syscalls_per_op", "counts_via"]);
        let none = Counts::default();
        assert_eq!(none.per_op(Some(3)), None);
        assert_eq!(none.params(), [("counts_via", Param::Str("none".into()))]);
    }

    #[test]
    fn counts_only_inside_count_and_includes_threads_spawned_there() {
        let mut c = Counters::open();
        // Outside `count`: not counted.
        for _ in 0..50 {
            std::thread::yield_now();
        }
        c.count(20, || {
            for _ in 0..20 {
                std::thread::spawn(std::thread::yield_now)
                    .join()
                    .expect("thread");
            }
        });
        let counts = c.counts();
        assert_eq!(counts.ops, 20);
        // Whatever this machine allows, each spawn+join blocks at least once in join (a
        // context switch), and makes several system calls (clone3, mmap, futex...).
        if let Some(ctx) = counts.context_switches {
            assert!(ctx >= 1, "{counts:?}");
        }
        if let Some(sys) = counts.syscalls {
            assert!(sys >= 20 * 2, "{counts:?}");
            assert!(sys < 20 * 200, "{counts:?}");
        }
    }
}
