//! The context: scaling, records, speakers, the timeline and the deadline helpers.

use std::process::Command;
use std::time::{Duration, Instant};

use lesson::{Cx, Record, render_timeline};

#[test]
fn sleep_is_scaled() {
    let cx = Cx::quiet(0.01);
    assert_eq!(cx.scaled(3.0), Duration::from_millis(30));
    assert_eq!(cx.scaled(-1.0), Duration::ZERO);
    let t = Instant::now();
    cx.sleep(5.0);
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn records_keep_order_and_speaker() {
    let cx = Cx::quiet(0.01);
    cx.say("first");
    let worker = cx.clone();
    std::thread::Builder::new()
        .name("worker".into())
        .spawn(move || worker.say(format_args!("second {}", 2)))
        .unwrap()
        .join()
        .unwrap();
    cx.say("third");
    let r = cx.records();
    let texts: Vec<&str> = r.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["first", "second 2", "third"]);
    assert_eq!(r[1].speaker, "worker");
    assert!(r[0].at <= r[1].at && r[1].at <= r[2].at);
    assert_eq!(cx.position(Some("worker"), "second"), Some(1));
    assert_eq!(cx.position(None, "third"), Some(2));
    assert_eq!(cx.position(Some("worker"), "third"), None);
}

#[test]
fn unnamed_threads_show_their_id() {
    let cx = Cx::quiet(0.01);
    let c = cx.clone();
    std::thread::spawn(move || c.say("x")).join().unwrap();
    assert!(cx.records()[0].speaker.starts_with("ThreadId("));
}

#[test]
fn timeline_overlapping_rows() {
    let r = |ms, who: &str| Record::said(Duration::from_millis(ms), who, "");
    let chart = render_timeline(
        &[
            r(0, "main"),
            r(0, "a"),
            r(50, "b"),
            r(100, "a"),
            r(100, "b"),
            r(100, "main"),
        ],
        21,
    );
    let rows: Vec<&str> = chart.lines().skip(2).collect();
    assert_eq!(rows[0], "main |*-------------------*|");
    assert_eq!(rows[1], "a    |*-------------------*|");
    assert_eq!(rows[2], "b    |          *---------*|");
    assert!(chart.starts_with("timeline: 0 .. 0.100s"));
    // An empty narration and a single instant do not divide by zero.
    assert_eq!(render_timeline(&[], 10).lines().count(), 2);
    assert!(render_timeline(&[r(0, "x")], 3).contains("x |*  |"));
}

#[test]
fn helper_needs_the_chapter_binary() {
    let err = Cx::quiet(0.01).helper("x").unwrap_err();
    assert!(err.to_string().contains("not given the chapter binary"));
    let cx = Cx::quiet(0.5).with_exe("/nonexistent/chapter");
    assert!(cx.helper("x").is_err());
    let cx = Cx::quiet(0.5).with_exe(env!("CARGO_BIN_EXE_lesson-demo"));
    let cmd = cx.helper("x").unwrap();
    let args: Vec<_> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(args, ["--helper", "x", "--scale", "0.5"]);
    let handoff = cmd
        .get_envs()
        .find(|(k, _)| *k == lesson::HANDOFF_ENV)
        .and_then(|(_, v)| v)
        .expect("a helper is handed the lesson's timeline");
    let handoff = lesson::Handoff::decode(&handoff.to_string_lossy()).unwrap();
    assert_eq!(handoff.scale, 0.5);
    assert!(handoff.sink.is_some());
}

#[test]
fn a_child_past_its_deadline_is_killed_and_reaped() {
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let t = Instant::now();
    let err = lesson::output_within(&mut cmd, Duration::from_millis(100)).unwrap_err();
    assert!(err.to_string().contains("did not finish"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(20));
    let mut child = Command::new("true").spawn().unwrap();
    let status = lesson::wait_within(&mut child, Duration::from_secs(30)).unwrap();
    assert!(status.is_some_and(|s| s.success()));
}

#[test]
fn run_lesson_returns_what_the_lesson_said() {
    fn lesson(cx: &Cx) -> anyhow::Result<()> {
        cx.say("one");
        cx.say("two");
        Ok(())
    }
    let r = lesson::testing::run_lesson(Cx::quiet(0.001), lesson);
    let texts: Vec<&str> = r.iter().map(|x| x.text.as_str()).collect();
    assert_eq!(texts, ["one", "two"]);
}

#[test]
fn run_lesson_fails_the_test_with_the_lessons_error() {
    fn lesson(_: &Cx) -> anyhow::Result<()> {
        anyhow::bail!("the demo broke")
    }
    let caught = std::panic::catch_unwind(|| lesson::testing::run_lesson(Cx::quiet(0.001), lesson));
    let payload = caught.expect_err("a failing lesson must fail the test");
    assert!(lesson::panic_message(payload.as_ref()).contains("the demo broke"));
}

#[test]
fn long_wait_is_the_scaled_minute_plus_slack() {
    let cx = Cx::quiet(0.5);
    assert_eq!(cx.long_wait(), Duration::from_secs(40));
}

#[test]
fn panic_message_reads_str_string_and_other_payloads() {
    let s: Box<dyn std::any::Any + Send> = Box::new("static");
    assert_eq!(lesson::panic_message(s.as_ref()), "static");
    let s: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
    assert_eq!(lesson::panic_message(s.as_ref()), "owned");
    let s: Box<dyn std::any::Any + Send> = Box::new(7u8);
    assert!(lesson::panic_message(s.as_ref()).contains("non-string"));
}

#[test]
fn spans_are_kept_apart_from_lines_and_drawn_as_bars() {
    let cx = Cx::quiet(0.001);
    cx.say("before");
    {
        let _hold = cx.span(lesson::Activity::Hold, "holding the lock");
        cx.say("inside");
    }
    cx.sleep(1.0);
    let lines: Vec<String> = cx.records().into_iter().map(|r| r.text).collect();
    assert_eq!(lines, ["before", "inside"]);
    let all = cx.timeline();
    let kinds: Vec<&str> = all
        .iter()
        .map(|r| match r.kind {
            lesson::Kind::Said => "said",
            lesson::Kind::Span { activity, .. } => activity.name(),
        })
        .collect();
    assert_eq!(kinds, ["said", "holding", "said", "sleeping"]);
    assert!(
        all[1].end() >= all[2].at,
        "the span covers the line said inside it"
    );
    let chart = render_timeline(&all, 40);
    assert!(chart.contains('#') && chart.contains('~'), "{chart}");
}

#[test]
fn a_forked_childs_lines_reach_the_parents_records() {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    let cx = Cx::quiet(0.001);
    cx.say("parent before");
    let named = cx.as_speaker("Process-1");
    // SAFETY: the child only formats, writes to the sink with one write(2), and leaves with
    // _exit; it takes no lock another thread of the test harness may hold (a quiet context
    // prints nothing, and a child never touches the records' mutex).
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            named.say("child speaks");
            cx.say("child without a name");
            // SAFETY: _exit is async-signal-safe and skips the parent's destructors.
            unsafe { nix::libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            let status = lesson::within(Duration::from_secs(60), "the child", move || {
                waitpid(child, None)
            })
            .unwrap();
            assert_eq!(status, WaitStatus::Exited(child, 0));
            cx.say("parent after");
            let r = cx.records();
            let texts: Vec<&str> = r.iter().map(|r| r.text.as_str()).collect();
            assert_eq!(
                texts,
                [
                    "parent before",
                    "child speaks",
                    "child without a name",
                    "parent after"
                ]
            );
            let me = lesson::speaker(std::process::id());
            let speakers: Vec<&str> = r.iter().map(|r| r.speaker.as_str()).collect();
            let pid = format!("pid {child}");
            assert_eq!(
                speakers,
                [me.as_str(), "Process-1", pid.as_str(), me.as_str()]
            );
            assert_eq!(r[1].pid, child.as_raw() as u32);
        }
    }
}

#[test]
fn a_handoff_survives_its_text_form() {
    let h = Cx::quiet(0.25).handoff().named("worker\t1");
    let back = lesson::Handoff::decode(&h.encode()).unwrap();
    assert_eq!(back, h);
    assert!(lesson::Handoff::decode("nonsense").is_err());
}

#[test]
fn a_sleep_inside_a_hold_shows_the_hold_in_text_and_both_in_svg() {
    let ms = Duration::from_millis;
    let records = [
        Record::span(ms(0), ms(100), "t1", lesson::Activity::Hold, "lock"),
        Record::span(ms(10), ms(90), "t1", lesson::Activity::Sleep, "sleep"),
    ];
    let chart = render_timeline(&records, 11);
    assert!(chart.contains("t1 |###########|"), "{chart}");
    let svg = lesson::render_timeline_svg(&records, "nested");
    let y_of = |class: &str| -> f64 {
        let at = svg.find(&format!("class=\"span {class}\"")).unwrap();
        let y = &svg[at..][svg[at..].find(" y=\"").unwrap() + 4..];
        y[..y.find('"').unwrap()].parse().unwrap()
    };
    assert!(
        y_of("sleeping") > y_of("holding"),
        "the inner bar is inset: {svg}"
    );
}
