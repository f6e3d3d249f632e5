//! The command line every chapter binary shares.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use crate::{Chapter, Cx, Handoff, Lesson, render_timeline, render_timeline_svg};

/// Print to stdout, ignoring a closed stdout (`| head`): the lesson goes on, and a chapter
/// binary never panics with "failed printing to stdout".
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// The default time scale: the seed's `time.sleep(5)` becomes 250 ms, so that every chapter
/// finishes in seconds and `cargo xtask all` well under a minute, while sleeps stay long enough
/// (tens of milliseconds and more) for the orderings the lessons show to be clear.
pub const DEFAULT_SCALE: f64 = 0.05;

/// The largest scale accepted: 100 times slower than the Python lesson.
const MAX_SCALE: f64 = 100.0;

/// Settings that apply to every lesson run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Multiplies every `cx.sleep(seconds)`; 1.0 is real time.
    pub scale: f64,
    /// Draw the timeline after each lesson: as text, or into an SVG file.
    pub timeline: Timeline,
    /// `--count N`: the size of a lesson's experiment, for lessons that have one.
    pub count: Option<usize>,
}

/// Whether and how to draw a lesson's timeline (`--timeline`, `--timeline=svg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timeline {
    /// No timeline.
    #[default]
    Off,
    /// A text chart after the lesson's narration (`--timeline`, `--timeline=text`).
    Text,
    /// The text chart, and an SVG picture written to `timeline-CHAPTER-LESSON.svg` in the
    /// current directory (`--timeline=svg`, or `--timeline svg`).
    Svg,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// `--help`.
    Help,
    /// `--list`.
    List,
    /// No name: every lesson in order; a name: that lesson.
    Run {
        /// The lessons to run, in order.
        lessons: Vec<&'static Lesson>,
        /// Scale and timeline.
        options: Options,
    },
    /// `--helper NAME`: run a helper program (a lesson's child process).
    Helper {
        /// The helper to run.
        helper: &'static Lesson,
        /// Scale and timeline.
        options: Options,
    },
}

/// A command line that cannot be obeyed: the binary prints it and exits with status 2.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// The lessons the chapter has, listed under the message.
    pub valid: Vec<&'static str>,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\nvalid lessons: {}\nflags: --list --help --scale X --real-time --timeline[=svg]",
            self.message,
            self.valid.join(", ")
        )
    }
}

impl std::error::Error for UsageError {}

/// Parse a chapter's arguments (without the program name). `env_scale` is the value of
/// `LESSON_SCALE`, which `--scale` and `--real-time` override.
///
/// ```
/// use lesson::{Chapter, Invocation, Lesson, parse};
///
/// static LESSONS: [Lesson; 1] = [Lesson { name: "join", title: "join", run: |_| Ok(()) }];
/// static CH: Chapter = Chapter { name: "demo", title: "", lessons: &LESSONS, helpers: &[] };
///
/// let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
/// match parse(&CH, args(&["join", "--scale", "0.5"]), None) {
///     Ok(Invocation::Run { lessons, options }) => {
///         assert_eq!(lessons[0].name, "join");
///         assert_eq!(options.scale, 0.5);
///     }
///     other => panic!("{other:?}"),
/// }
/// let err = parse(&CH, args(&["nope"]), None).unwrap_err();
/// assert!(err.to_string().contains("valid lessons: join"));
/// ```
pub fn parse(
    chapter: &'static Chapter,
    args: impl IntoIterator<Item = String>,
    env_scale: Option<&str>,
) -> Result<Invocation, UsageError> {
    let fail = |message: String| UsageError {
        message,
        valid: chapter.names(),
    };
    let mut scale: Option<f64> = None;
    let mut real_time = false;
    let mut timeline = Timeline::Off;
    let mut count: Option<usize> = None;
    let mut list = false;
    let mut helper: Option<String> = None;
    let mut names: Vec<String> = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| fail(format!("{flag} needs {what}")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "--list" => list = true,
            "--timeline" => {
                timeline = match inline.as_deref() {
                    None | Some("text") => Timeline::Text,
                    Some("svg") => Timeline::Svg,
                    Some(other) => {
                        return Err(fail(format!("--timeline takes text or svg, got {other:?}")));
                    }
                };
                // `--timeline svg`: no lesson is called svg.
                if inline.is_none() && args.peek().map(String::as_str) == Some("svg") {
                    args.next();
                    timeline = Timeline::Svg;
                }
            }
            "--real-time" => real_time = true,
            "--scale" => scale = Some(parse_scale(&value("a number")?).map_err(&fail)?),
            crate::HELPER_FLAG => helper = Some(value("a helper name")?),
            "--count" => {
                let v = value("a whole number")?;
                count = Some(
                    v.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            fail(format!("--count needs a whole number above 0, got {v:?}"))
                        })?,
                );
            }
            f if f.starts_with('-') => return Err(fail(format!("unknown flag {f:?}"))),
            _ => names.push(arg),
        }
    }
    if list {
        return Ok(Invocation::List);
    }
    if real_time && scale.is_some() {
        return Err(fail("--scale and --real-time contradict each other".into()));
    }
    let scale = match (real_time, scale, env_scale) {
        (true, _, _) => 1.0,
        (false, Some(s), _) => s,
        (false, None, Some(env)) => {
            parse_scale(env).map_err(|m| fail(format!("LESSON_SCALE: {m}")))?
        }
        (false, None, None) => DEFAULT_SCALE,
    };
    let options = Options {
        scale,
        timeline,
        count,
    };
    if let Some(name) = helper {
        let helper = chapter
            .helper(&name)
            .ok_or_else(|| fail(format!("{} has no helper {name:?}", chapter.name)))?;
        return Ok(Invocation::Helper { helper, options });
    }
    let lessons = match names.as_slice() {
        [] => chapter.lessons.iter().collect(),
        [name] => vec![
            chapter
                .lesson(name)
                .ok_or_else(|| fail(format!("{} has no lesson {name:?}", chapter.name)))?,
        ],
        _ => {
            return Err(fail(format!(
                "one lesson at a time, got {}",
                names.join(" ")
            )));
        }
    };
    Ok(Invocation::Run { lessons, options })
}

fn parse_scale(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= MAX_SCALE => Ok(x),
        _ => Err(format!(
            "scale must be a number above 0 and at most {MAX_SCALE}, got {text:?}"
        )),
    }
}

/// The whole `main` of a chapter binary: parse the command line, run, and turn the outcome
/// into an exit status (0 done, 1 a lesson failed, 2 a bad command line).
pub fn main(chapter: &'static Chapter) -> ExitCode {
    one_line_panics();
    let env_scale = std::env::var("LESSON_SCALE").ok();
    match parse(chapter, std::env::args().skip(1), env_scale.as_deref()) {
        Err(e) => {
            eprintln!("{}: {e}", chapter.name);
            ExitCode::from(2)
        }
        Ok(Invocation::Help) => {
            out!("{}", help(chapter));
            ExitCode::SUCCESS
        }
        Ok(Invocation::List) => {
            for l in chapter.lessons {
                outln!("{:<17} {}", l.name, l.title);
            }
            ExitCode::SUCCESS
        }
        Ok(Invocation::Helper { helper, options }) => {
            // A helper started by a lesson narrates on that lesson's timeline. It always prints:
            // its stdout is how it talks to the lesson that started it (which may read it).
            let cx = match std::env::var(crate::HANDOFF_ENV).map(|t| Handoff::decode(&t)) {
                Ok(Ok(handoff)) => with_exe(
                    Handoff {
                        echo: true,
                        ..handoff
                    }
                    .cx(),
                ),
                _ => context(options),
            };
            report(chapter, helper, &cx, options)
        }
        Ok(Invocation::Run { lessons, options }) => {
            for lesson in lessons {
                outln!("=== {}/{}: {}", chapter.name, lesson.name, lesson.title);
                outln!("{}", scale_note(options.scale));
                let code = report(chapter, lesson, &context(options), options);
                if code != ExitCode::SUCCESS {
                    return code;
                }
                for name in crate::exercises_after(chapter.name, lesson.name) {
                    outln!("           | your turn: cargo xtask exercise {name}");
                }
                outln!("");
            }
            ExitCode::SUCCESS
        }
    }
}

/// Lessons panic on purpose (a thread that dies inside a lock, a join that returns the panic);
/// a backtrace for each would bury the narration. Print a panic as one line, where it happened
/// and why, unless `LESSON_BACKTRACE` is set (then the default hook, with `RUST_BACKTRACE`).
fn one_line_panics() {
    if std::env::var_os("LESSON_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{}", crate::panic_line(info, None))
    }));
}

fn context(options: Options) -> Cx {
    with_exe(Cx::new(options.scale).with_count(options.count))
}

fn with_exe(cx: Cx) -> Cx {
    match std::env::current_exe() {
        Ok(exe) => cx.with_exe(exe),
        Err(_) => cx,
    }
}

/// Run one lesson; print its timeline if asked; print its error chain if it failed.
fn report(chapter: &Chapter, lesson: &Lesson, cx: &Cx, options: Options) -> ExitCode {
    let outcome = catch_unwind(AssertUnwindSafe(|| (lesson.run)(cx)));
    if options.timeline != Timeline::Off {
        let records = cx.timeline();
        out!("{}", render_timeline(&records, 72));
        if options.timeline == Timeline::Svg {
            let path = format!("timeline-{}-{}.svg", chapter.name, lesson.name);
            let title = format!("{}/{}: {}", chapter.name, lesson.name, lesson.title);
            match std::fs::write(&path, render_timeline_svg(&records, &title)) {
                Ok(()) => outln!("timeline drawn in {path}"),
                Err(e) => eprintln!("cannot write the timeline to {path}: {e}"),
            }
        }
    }
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}/{} failed: {e}", chapter.name, lesson.name);
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!(
                "error: {}/{} panicked (message above)",
                chapter.name, lesson.name
            );
            ExitCode::from(1)
        }
    }
}

/// The line under a lesson's header that says how its times relate to the seed's, so that
/// "waited 1 s" printed at 0.05 s is no puzzle.
pub fn scale_note(scale: f64) -> String {
    if scale == 1.0 {
        "           | time: real time, the seed's own sleeps (--real-time)".to_owned()
    } else {
        format!(
            "           | time: every sleep is x{scale} of the seed's (the seed's 1 s takes {:.3} s here; \
             --real-time for the seed's own)",
            scale
        )
    }
}

fn help(chapter: &Chapter) -> String {
    let mut out = format!(
        "{name}: {title}\n\n\
         usage: {name} [LESSON] [--scale X | --real-time] [--timeline[=svg]]\n       \
         {name} --list | --help\n\n\
         Without LESSON, every lesson runs in order.\n\n\
         --scale X     multiply the Python lesson's sleeps by X (default {DEFAULT_SCALE}; \
         env LESSON_SCALE)\n\
         --real-time   sleep exactly as long as the Python lesson (--scale 1)\n\
         --timeline    after each lesson, chart who did what when\n\
         --timeline=svg  the same, and draw it in timeline-CHAPTER-LESSON.svg\n\
         --count N     the size of a lesson's experiment, where it has one\n\
         --list        the lessons, one per line\n\nlessons:\n",
        name = chapter.name,
        title = chapter.title
    );
    for l in chapter.lessons {
        out.push_str(&format!("  {:<17} {}\n", l.name, l.title));
    }
    out
}
