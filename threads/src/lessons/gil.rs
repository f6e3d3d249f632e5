//! Lesson `gil` (python的GIL): CPython lets one thread run Python bytecode at a time, however
//! many cores there are; Rust has no such lock, so a CPU-bound job split over threads can run
//! in parallel — when the machine gives it the cores. The lesson measures, and claims
//! parallelism only when the figures show it.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx};

/// The Python side's job: count the primes below this number by trial division (about half a
/// second in CPython; the Rust side sizes its own job, see [`calibrate`]).
pub const LIMIT: u64 = 200_000;

/// The Rust job lasts at least this long on one thread, so that a busy machine's hiccups and
/// thread start-up are small against it.
pub const MIN_JOB: Duration = Duration::from_millis(200);

/// How many times each side of the comparison runs; the best of them counts.
pub const RUNS: usize = 3;

/// The Python counterpart, run by this lesson and by the benchmarks.
pub const PYTHON_GIL: &str = include_str!("../../../bench/python/gil.py");

/// Trial division, deliberately plain: this is CPU work, not a prime sieve lesson.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// Numbers are dealt to workers in blocks of this many, round-robin.
pub const BLOCK: u64 = 1000;

/// Count the primes below `limit` that belong to worker `k` of `n`: the blocks
/// `[k*BLOCK, (k+1)*BLOCK)`, `[(k+n)*BLOCK, ...)`, and so on. Dealing blocks round-robin gives every
/// worker small and large numbers alike (a plain stride of 2 would give one worker every even
/// number, which takes no work at all). `count_primes(0, 1, limit)` is the serial job.
pub fn count_primes(k: u64, n: u64, limit: u64) -> u64 {
    let n = n.max(1);
    (0..)
        .map(|b| (k + b * n) * BLOCK)
        .take_while(|&start| start < limit)
        .map(|start| {
            (start..(start + BLOCK).min(limit))
                .filter(|&x| is_prime(x))
                .count() as u64
        })
        .sum()
}

/// The job on `threads` threads (scoped, so they may borrow and are joined before it returns).
pub fn parallel(limit: u64, threads: usize) -> u64 {
    let n = threads.max(1) as u64;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..n)
            .map(|k| s.spawn(move || count_primes(k, n, limit)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .sum()
    })
}

/// What the Python side measured: the prime count and its single- and multi-thread times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PythonRun {
    /// Primes counted (must equal the Rust count).
    pub primes: u64,
    /// One thread.
    pub serial: Duration,
    /// `threads` threads.
    pub threaded: Duration,
}

/// Run the same job in CPython (`python3`, or `$PYTHON`), serial and on `threads` threads.
/// `Ok(None)` when no Python interpreter is installed.
pub fn python(limit: u64, threads: usize) -> anyhow::Result<Option<PythonRun>> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(&python);
    cmd.args(["-c", PYTHON_GIL, "--plain", "--limit"])
        .arg(limit.to_string())
        .arg("--threads")
        .arg(threads.to_string());
    let out = match lesson::output_within(&mut cmd, Duration::from_secs(120)) {
        Ok(out) => out,
        Err(e)
            if e.root_cause()
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if !out.status.success() {
        bail!(
            "{python} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let secs = |i: usize| -> anyhow::Result<Duration> {
        let s: f64 = fields
            .get(i)
            .context("too few fields")?
            .parse()
            .context("not a number")?;
        Ok(Duration::from_secs_f64(s))
    };
    let parsed = || -> anyhow::Result<PythonRun> {
        Ok(PythonRun {
            primes: fields.first().context("no output")?.parse()?,
            serial: secs(1)?,
            threaded: secs(2)?,
        })
    };
    parsed()
        .map(Some)
        .with_context(|| format!("unexpected output from {python}: {text:?}"))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A limit whose serial count takes at least [`MIN_JOB`] of CPU time here: start from [`LIMIT`]
/// and grow (trial division costs about limit^1.5) until one run is long enough. CPU time, not
/// wall time: on a busy machine a run's wall time includes the time it waited for a CPU, which
/// sized the job too small for the quieter runs after it (seen: 170 ms against 200).
pub fn calibrate() -> u64 {
    let mut limit = LIMIT;
    loop {
        let t = thread_cpu_time();
        std::hint::black_box(count_primes(0, 1, std::hint::black_box(limit)));
        let took = (thread_cpu_time().saturating_sub(t))
            .as_secs_f64()
            .max(1e-4);
        if took >= MIN_JOB.as_secs_f64() || limit >= 1 << 40 {
            return limit;
        }
        let grow = (MIN_JOB.as_secs_f64() * 1.2 / took)
            .powf(2.0 / 3.0)
            .clamp(1.2, 100.0);
        limit = (limit as f64 * grow) as u64;
    }
}

/// The CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

/// What one worker of [`observed`] did: its count, the CPU time it got, the CPUs it ran on.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Its thread's name.
    pub name: String,
    /// Primes it counted.
    pub primes: u64,
    /// CPU time its thread used.
    pub cpu_time: Duration,
    /// The CPUs it was seen on (sampled once per block).
    pub cpus: BTreeSet<u32>,
}

/// The job on `n` named threads (`worker-1`, ...), each marking its computing as a Work span
/// on the timeline and, if `narrate`, saying what it did: the total, the wall time, and each
/// worker's report. Each worker begins its span, then waits at a starting line (a
/// [`Latch`](super::Latch), with a deadline: a worker that could not be started does not keep
/// the others waiting for ever) until every worker has begun its own: so the spans overlap in
/// time, however late the machine starts a thread (none ends before the last one begins).
///
/// # Errors
/// If a thread cannot be started, or a worker panicked.
pub fn observed(
    cx: &Cx,
    limit: u64,
    n: usize,
    narrate: bool,
) -> anyhow::Result<(u64, Duration, Vec<Worker>)> {
    let n = n.max(1);
    let t = Instant::now();
    let start_line = super::Latch::new(n);
    let workers = std::thread::scope(|s| -> anyhow::Result<Vec<Worker>> {
        let handles = (0..n)
            .map(|k| {
                let name = format!("worker-{}", k + 1);
                let start_line = &start_line;
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(s, move || {
                        let span = cx.span(
                            Activity::Work,
                            format!("count my share of the primes below {limit}"),
                        );
                        start_line.count_down();
                        start_line.wait(cx, "at the starting line, until every worker is there");
                        let cpu0 = thread_cpu_time();
                        let mut cpus = BTreeSet::new();
                        let mut primes = 0;
                        let step = n as u64;
                        let mut b = k as u64;
                        while b * BLOCK < limit {
                            if let Ok(c) = nix::sched::sched_getcpu() {
                                cpus.insert(c as u32);
                            }
                            let start = b * BLOCK;
                            primes += (start..(start + BLOCK).min(limit))
                                .filter(|&x| is_prime(x))
                                .count() as u64;
                            b += step;
                        }
                        let cpu_time = thread_cpu_time().saturating_sub(cpu0);
                        drop(span);
                        if narrate {
                            cx.say(format!(
                                "{name}: {primes} primes, {} of CPU time, ran on CPU {}",
                                ms(cpu_time),
                                cpus.iter()
                                    .map(u32::to_string)
                                    .collect::<Vec<_>>()
                                    .join(" and ")
                            ));
                        }
                        Worker {
                            name,
                            primes,
                            cpu_time,
                            cpus,
                        }
                    })
                    .context("starting a worker")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let _waiting = cx.span(Activity::Wait, "join the workers");
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a worker panicked")))
            .collect()
    })?;
    let wall = t.elapsed();
    Ok((workers.iter().map(|w| w.primes).sum(), wall, workers))
}

/// The speedup at which the lesson says the threads ran in parallel: at least half of each
/// extra thread's ideal gain (1.5x on 2 threads, 2x on 3, ...).
pub fn parallel_threshold(threads: usize) -> f64 {
    1.0 + 0.5 * (threads.max(1) - 1) as f64
}

/// The one-minute load average, if it can be read.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let machine = crate::cpu_count();
    let usable = crate::process_cpu_count();
    let quota = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = usable.min(quota).max(1);
    cx.say(format!(
        "cpu_count() = {machine} (the machine's CPUs), process_cpu_count() = {usable} (the ones \
         this process may use: sched_getaffinity), available_parallelism() = {quota} (also a \
         cgroup quota): {n} threads, one per CPU this process may use"
    ));
    let limit = {
        let _work = cx.span(Activity::Work, "size the job");
        calibrate()
    };
    cx.explain(format!(
        "CPU-bound job: count the primes below {limit} by trial division (sized to take at least\n\
         {} ms of CPU time on one thread here); then the same split over {n} threads. Each\n\
         side runs {RUNS} times and the best run counts.",
        MIN_JOB.as_millis()
    ));
    let mut serial_best = Duration::MAX;
    let mut par_best = Duration::MAX;
    let mut serial = 0;
    let mut par = 0;
    let mut busy = 0.0f64;
    for round in 1..=RUNS {
        let t = Instant::now();
        serial = {
            let _work = cx.span(Activity::Work, "count all the primes on one thread");
            count_primes(0, 1, limit)
        };
        serial_best = serial_best.min(t.elapsed());
        let (count, wall, workers) = observed(cx, limit, n, round == RUNS)?;
        par = count;
        if wall < par_best {
            par_best = wall;
            let cpu: f64 = workers.iter().map(|w| w.cpu_time.as_secs_f64()).sum();
            busy = cpu / wall.as_secs_f64().max(1e-9);
        }
    }
    ensure!(serial == par, "serial counted {serial}, parallel {par}");
    let speedup = serial_best.as_secs_f64() / par_best.as_secs_f64().max(1e-9);
    cx.say(format!(
        "1 thread: {serial} primes in {} (best of {RUNS})",
        ms(serial_best)
    ));
    cx.say(format!(
        "{n} threads: {par} primes in {} (best of {RUNS}) -> speedup {speedup:.2}x; the workers' \
         CPU time was {busy:.2}x the wall time ({busy:.2} CPUs busy on average)",
        ms(par_best)
    ));
    cx.say("same result both ways");
    let wanted = parallel_threshold(n);
    if n >= 2 && speedup >= wanted {
        cx.say(format!(
            "parallel: {n} Rust threads ran at the same time on {n} CPUs ({speedup:.2}x, at least \
             the {wanted:.1}x this lesson asks before it says so). No GIL."
        ));
    } else if n < 2 {
        cx.say(
            "no parallel speedup shown: this process may use one CPU only (an affinity mask or a \
             quota), so its threads can only take turns. Run it where it may use two or more."
                .to_owned(),
        );
    } else if busy < wanted {
        let load = load_average().map_or("unknown".to_owned(), |l| format!("{l:.2}"));
        cx.say(format!(
            "no parallel speedup shown ({speedup:.2}x, below {wanted:.1}x): the machine is busy \
             (load average {load} on {machine} CPUs), so the {n} workers got only {busy:.2} CPUs \
             between them and took turns. Nothing in Rust stopped them: run it on a quieter \
             machine to see about {n}x."
        ));
    } else {
        cx.say(format!(
            "no parallel speedup shown ({speedup:.2}x, below {wanted:.1}x) although the workers \
             kept {busy:.2} CPUs busy: the CPUs were slower together (shared caches, frequency), \
             or the parallel run was unlucky. Nothing in Rust stopped the threads."
        ));
    }
    cx.explain(
        "No GIL: Rust threads may execute on different cores at the same instant (parallelism),\n\
         and the compiler refuses data races instead of a global lock preventing them.",
    );
    if n >= 2 {
        cx.explain(
            "The timeline shows each worker as a row: their 'working' bars overlap in time (each\n\
             worker begins its bar, then waits at a starting line until all have begun theirs),\n\
             and each line says which CPU ran it (the digit). Overlapping bars are concurrency;\n\
             that the CPUs computed at the same instant is what the speedup above measures.",
        );
    } else {
        cx.explain(
            "The timeline shows the one worker as a row, and its line says which CPU ran it\n\
             (the digit): with one CPU to use there is no second worker to overlap with.",
        );
    }
    match python(LIMIT, n)? {
        None => cx.say("python3 not found: skipping the Python side (install Python 3 to compare)"),
        Some(py) => {
            ensure!(
                py.primes == count_primes(0, 1, LIMIT),
                "python counted {}",
                py.primes
            );
            let py_speedup = py.serial.as_secs_f64() / py.threaded.as_secs_f64().max(1e-9);
            cx.say(format!(
                "python3, primes below {LIMIT} (a smaller job: CPython is far slower), one run: \
                 1 thread {}, {n} threads {} -> speedup {py_speedup:.2}x",
                ms(py.serial),
                ms(py.threaded)
            ));
            cx.explain(
                "With the GIL, Python's threads take turns running bytecode: about 1x (or worse),\n\
                 however many cores (free-threaded builds, PEP 703, change this). Python reaches\n\
                 for processes instead. `cargo bench -p threads` measures the Rust curve.",
            );
        }
    }
    cx.explain(
        "But CPython releases the GIL while a thread sleeps or waits for I/O (time.sleep, a\n\
         socket read, a file write): that is why every sleep demo in these lessons overlaps in\n\
         Python too. Only running Python code is one thread at a time.",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;

    use super::*;

    /// Pin the calling thread to `cpu` (pid 0: this thread only).
    fn pin(cpu: usize) {
        let mut one = CpuSet::new();
        one.set(cpu).expect("a CPU number");
        sched_setaffinity(Pid::from_raw(0), &one).expect("sched_setaffinity");
    }

    /// The job is sized by CPU time, so a machine that shares this thread's CPU with another
    /// busy thread does not make it too small. With the calibration timed by the wall clock
    /// (as it was), sharing the CPU half and half sized the job at about half of `MIN_JOB`,
    /// and the lesson's "at least 200 ms" was not true (seen: 170 ms, under load).
    #[test]
    fn the_job_is_sized_by_cpu_time_even_on_a_shared_cpu() {
        let saved = sched_getaffinity(Pid::from_raw(0)).expect("sched_getaffinity");
        let cpu = (0..CpuSet::count())
            .find(|&c| saved.is_set(c).unwrap_or(false))
            .expect("a CPU this thread may use");
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                pin(cpu);
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        pin(cpu);
        let limit = calibrate();
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        sched_setaffinity(Pid::from_raw(0), &saved).expect("restore the affinity");
        let before = thread_cpu_time();
        std::hint::black_box(count_primes(0, 1, std::hint::black_box(limit)));
        let took = thread_cpu_time().saturating_sub(before);
        assert!(
            took.as_secs_f64() >= MIN_JOB.as_secs_f64() * 0.9,
            "the job took {took:?} of CPU time"
        );
    }
}
