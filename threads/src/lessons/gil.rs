//! Lesson `gil` (python的GIL): CPython lets one thread run Python bytecode at a time, however
//! many cores there are; Rust has no such lock, so a CPU-bound job split over threads really
//! runs in parallel.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use lesson::Cx;

/// The job: count the primes below this number by trial division.
pub const LIMIT: u64 = 200_000;

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

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cx.explain(format!(
        "CPU-bound job: count the primes below {LIMIT} by trial division.\n\
         First on one thread, then split over {cores} threads (one per core this process may use)."
    ));
    let t = Instant::now();
    let serial = count_primes(0, 1, LIMIT);
    let serial_time = t.elapsed();
    cx.say(format!("1 thread: {serial} primes in {}", ms(serial_time)));
    let t = Instant::now();
    let par = parallel(LIMIT, cores);
    let par_time = t.elapsed();
    let speedup = serial_time.as_secs_f64() / par_time.as_secs_f64().max(1e-9);
    cx.say(format!(
        "{cores} threads: {par} primes in {} -> speedup {speedup:.2}x on {cores} cores",
        ms(par_time)
    ));
    ensure!(serial == par, "serial counted {serial}, parallel {par}");
    cx.say("same result both ways");
    cx.explain(
        "No GIL: each Rust thread runs on its own core at the same time (parallelism), and the\n\
         compiler refuses data races instead of a global lock preventing them.",
    );
    match python(LIMIT, cores)? {
        None => cx.say("python3 not found: skipping the Python side (install Python 3 to compare)"),
        Some(py) => {
            ensure!(
                py.primes == serial,
                "python counted {}, rust {serial}",
                py.primes
            );
            let py_speedup = py.serial.as_secs_f64() / py.threaded.as_secs_f64().max(1e-9);
            cx.say(format!(
                "python3, same job: 1 thread {}, {cores} threads {} -> speedup {py_speedup:.2}x",
                ms(py.serial),
                ms(py.threaded)
            ));
            cx.explain(
                "With the GIL, Python's threads take turns on the interpreter: about 1x, however\n\
                 many cores (free-threaded builds, PEP 703, change this). Python reaches for\n\
                 processes instead. `cargo bench -p threads` measures the Rust curve at 1..N threads.",
            );
        }
    }
    Ok(())
}
