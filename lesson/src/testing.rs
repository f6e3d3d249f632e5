//! Test support for chapter crates: drive a chapter binary as a user would (STYLE.md 12) and
//! check what every chapter's command line must do.

use std::process::{Command, Output};
use std::time::Duration;

use crate::{Chapter, Cx, Record, RunFn};

/// Run the binary at `exe` with `args` (stdin closed, `LESSON_SCALE` unset, 120 s at most),
/// printing the command, its status, stdout and stderr, so a failing test shows them.
///
/// # Panics
/// If the binary cannot be started or does not finish in time (this is for tests).
pub fn run_binary(exe: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(exe);
    cmd.args(args).env_remove("LESSON_SCALE");
    let out = match crate::output_within(&mut cmd, Duration::from_secs(120)) {
        Ok(out) => out,
        Err(e) => panic!("{exe} {}: {e:#}", args.join(" ")),
    };
    eprintln!(
        "$ {exe} {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What every chapter binary must do: an unknown lesson exits 2 naming every lesson, and
/// `--list` prints exactly the chapter's lessons, in order.
///
/// # Panics
/// When the binary does not (this is for tests).
pub fn check_cli_basics(exe: &str, chapter: &Chapter) {
    let out = run_binary(exe, &["no-such-lesson"]);
    assert_eq!(out.status.code(), Some(2), "an unknown lesson must exit 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let names = chapter.names().join(", ");
    assert!(
        stderr.contains(&format!("valid lessons: {names}")),
        "the error must name every lesson: {stderr}"
    );
    let out = run_binary(exe, &["--list"]);
    assert!(out.status.success(), "--list must succeed");
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(
        listed,
        chapter.names(),
        "--list must print the chapter's lessons in order"
    );
}

/// The position of the first record whose text contains `needle`.
///
/// # Panics
/// If there is none, showing every record (this is for tests).
pub fn index(records: &[crate::Record], needle: &str) -> usize {
    records
        .iter()
        .position(|r| r.text.contains(needle))
        .unwrap_or_else(|| panic!("no line containing {needle:?} in {records:#?}"))
}

/// The positions of every record whose text contains `needle`, in order (none: empty).
pub fn indices(records: &[crate::Record], needle: &str) -> Vec<usize> {
    records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.text.contains(needle))
        .map(|(i, _)| i)
        .collect()
}

/// The number that follows `needle` in `text` ("... speedup 1.93x", "speedup " -> 1.93):
/// digits and a decimal point, up to the first other character.
///
/// # Panics
/// If `needle` is not in `text`, or no number follows it (this is for tests).
pub fn number_after(text: &str, needle: &str) -> f64 {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in {text}"));
    let digits: String = text[at + needle.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("a number after {needle:?} in {text}"))
}

/// How long [`run_lesson`] lets a lesson run before the test fails.
pub const LESSON_LIMIT: Duration = Duration::from_secs(120);

/// Run lesson `f` with `cx` (usually [`Cx::quiet`], with [`Cx::with_exe`] where the lesson
/// starts helpers) on a thread of its own under [`LESSON_LIMIT`], and return what it said.
///
/// # Panics
/// If the lesson fails or does not finish in time (this is for tests).
pub fn run_lesson(cx: Cx, f: RunFn) -> Vec<Record> {
    crate::within(LESSON_LIMIT, "the lesson", move || {
        if let Err(e) = f(&cx) {
            panic!("the lesson failed: {e:#}");
        }
        cx.records()
    })
}

/// A small, fast, reproducible random number generator for randomized tests (splitmix64): the
/// same seed gives the same sequence on every machine, and any seed, 0 included, is good.
/// Not for anything that must be unpredictable.
///
/// ```
/// use lesson::testing::Rng;
/// let (mut a, mut b) = (Rng::new(7), Rng::new(7));
/// assert_eq!(a.next(), b.next());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The seed of a randomized test: the number in environment variable `var` if it holds one
/// (to re-run a failure), else one from the clock. It is printed to stderr as `var=seed`, so
/// a failing run shows how to repeat it.
pub fn seed(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{var}={seed}");
    seed
}
