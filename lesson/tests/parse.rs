//! Command-line parsing without starting a process.

use lesson::{Chapter, DEFAULT_SCALE, Invocation, Lesson, Options, Timeline, parse};

static CH: Chapter = Chapter {
    name: "demo",
    title: "",
    lessons: &[
        Lesson {
            name: "one",
            title: "first",
            run: |_| Ok(()),
        },
        Lesson {
            name: "two",
            title: "second",
            run: |_| Ok(()),
        },
    ],
    helpers: &[Lesson {
        name: "child",
        title: "",
        run: |_| Ok(()),
    }],
};

fn go(args: &[&str], env: Option<&str>) -> Result<Invocation, lesson::UsageError> {
    parse(&CH, args.iter().map(|s| s.to_string()), env)
}

fn run_options(args: &[&str], env: Option<&str>) -> (Vec<&'static str>, Options) {
    match go(args, env) {
        Ok(Invocation::Run { lessons, options }) => {
            (lessons.iter().map(|l| l.name).collect(), options)
        }
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn no_name_runs_every_lesson_in_order_at_the_default_scale() {
    let (names, options) = run_options(&[], None);
    assert_eq!(names, ["one", "two"]);
    assert_eq!(
        options,
        Options {
            scale: DEFAULT_SCALE,
            timeline: Timeline::Off,
            count: None
        }
    );
}

#[test]
fn scale_precedence_flag_over_env_over_default() {
    assert_eq!(run_options(&[], Some("0.2")).1.scale, 0.2);
    assert_eq!(run_options(&["--scale", "0.3"], Some("0.2")).1.scale, 0.3);
    assert_eq!(run_options(&["--scale=0.4"], None).1.scale, 0.4);
    assert_eq!(run_options(&["--real-time"], Some("0.2")).1.scale, 1.0);
    assert_eq!(
        run_options(&["two", "--timeline"], None).1.timeline,
        Timeline::Text
    );
    assert_eq!(
        run_options(&["--timeline", "svg", "two"], None).1.timeline,
        Timeline::Svg
    );
    assert_eq!(
        run_options(&["--timeline=svg"], None).1.timeline,
        Timeline::Svg
    );
    assert_eq!(run_options(&["--count", "1000"], None).1.count, Some(1000));
    assert_eq!(run_options(&["--count=7"], None).1.count, Some(7));
}

#[test]
fn bad_input_is_a_usage_error_naming_the_lessons() {
    for args in [
        &["three"][..],
        &["--scale", "nan"],
        &["--frobnicate"],
        &["one", "two"],
        &["--helper"],
        &["--count", "0"],
        &["--count", "many"],
        &["--timeline=png"],
    ] {
        let err = go(args, None).unwrap_err();
        assert_eq!(err.valid, ["one", "two"], "{args:?}");
    }
    assert!(
        go(&[], Some("-3"))
            .unwrap_err()
            .message
            .contains("LESSON_SCALE")
    );
}

#[test]
fn list_help_and_helpers() {
    assert!(matches!(go(&["--list"], None), Ok(Invocation::List)));
    assert!(matches!(go(&["-h"], None), Ok(Invocation::Help)));
    match go(&["--helper", "child", "--scale", "0.5"], None) {
        Ok(Invocation::Helper { helper, options }) => {
            assert_eq!(helper.name, "child");
            assert_eq!(options.scale, 0.5);
        }
        other => panic!("{other:?}"),
    }
    // Helpers are not lessons.
    assert!(go(&["child"], None).is_err());
}
