//! `--timeline`: who did what when, as a text chart, or as an SVG picture (`--timeline=svg`).

use std::fmt::Write;
use std::time::Duration;

use crate::{Activity, Kind, Record};

/// The speakers of `records`, in order of first appearance.
pub fn speakers(records: &[Record]) -> Vec<&str> {
    let mut speakers: Vec<&str> = Vec::new();
    for r in records {
        if !speakers.contains(&r.speaker.as_str()) {
            speakers.push(&r.speaker);
        }
    }
    speakers
}

fn end_of(records: &[Record]) -> Duration {
    records.iter().map(Record::end).max().unwrap_or_default()
}

/// Draw `records` as one row per speaker (in order of first appearance), time running left to
/// right over `width` columns. A line said is `*`, or the digit of the CPU that ran it when that
/// is known; a span is a bar of its activity's glyph (`=` working, `#` holding, `~` sleeping,
/// `.` waiting; where spans nest, holding shows over the others); `-` fills the rest of the time
/// between a speaker's first and last record, so rows whose marks overlap were alive at the same
/// time.
///
/// ```
/// use lesson::{Activity, Record, render_timeline};
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let chart = render_timeline(
///     &[
///         Record::said(ms(0), "main", ""),
///         Record::span(ms(50), ms(100), "t1", Activity::Sleep, "sleep"),
///         Record::said(ms(100), "main", ""),
///     ],
///     11,
/// );
/// assert!(chart.contains("main |*---------*|"));
/// assert!(chart.contains("t1   |     ~~~~~~|"));
/// ```
pub fn render(records: &[Record], width: usize) -> String {
    let width = width.max(2);
    let speakers = speakers(records);
    let end_s = end_of(records).as_secs_f64();
    let column = |at: Duration| -> usize {
        if end_s == 0.0 {
            0
        } else {
            ((at.as_secs_f64() / end_s) * (width - 1) as f64).round() as usize
        }
    };
    let label = speakers
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "timeline: 0 .. {:.3}s, one column = {:.1} ms",
        end_s,
        end_s * 1000.0 / (width - 1) as f64
    );
    let legend: Vec<String> = Activity::ALL
        .iter()
        .map(|a| format!("{} {}", a.glyph(), a.name()))
        .collect();
    let _ = writeln!(
        out,
        "* a line said (a digit: the CPU that said it), {}, - alive",
        legend.join(", ")
    );
    for who in speakers {
        let mine: Vec<&Record> = records.iter().filter(|r| r.speaker == who).collect();
        let first = mine.iter().map(|r| column(r.at)).min().unwrap_or(0);
        let last = mine.iter().map(|r| column(r.end())).max().unwrap_or(0);
        let mut row = vec![' '; width];
        row[first..=last].iter_mut().for_each(|c| *c = '-');
        // Holding is drawn last, over the rest: a thread that sleeps or waits while it holds a
        // lock is, above all, holding it (others wait for it).
        for layer in [
            Activity::Sleep,
            Activity::Wait,
            Activity::Work,
            Activity::Hold,
        ] {
            for r in &mine {
                if let Kind::Span { until, activity } = r.kind
                    && activity == layer
                {
                    row[column(r.at)..=column(until)]
                        .iter_mut()
                        .for_each(|c| *c = activity.glyph());
                }
            }
        }
        for r in mine.iter().filter(|r| r.kind == Kind::Said) {
            row[column(r.at)] = match r.cpu {
                Some(c) if c < 10 => char::from_digit(c, 10).unwrap_or('*'),
                _ => '*',
            };
        }
        let pad = label - who.chars().count();
        let _ = writeln!(
            out,
            "{who}{} |{}|",
            " ".repeat(pad),
            row.into_iter().collect::<String>()
        );
    }
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn color(a: Activity) -> &'static str {
    match a {
        Activity::Work => "#2e8b57",
        Activity::Hold => "#d2691e",
        Activity::Sleep => "#9db4d6",
        Activity::Wait => "#d9d9d9",
    }
}

/// A round step for the time axis: about `target` ticks over `end` seconds.
fn tick_step(end: f64, target: f64) -> f64 {
    let raw = (end / target).max(1e-6);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// Draw `records` as an SVG picture for a projector: one row per speaker (in order of first
/// appearance), a bar per span coloured by activity (a wait is pale, work is dark), a tick per
/// line said (its text and CPU in the tick's tooltip, the CPU's number above it), a time axis in
/// seconds and a legend. `title` heads it.
pub fn render_svg(records: &[Record], title: &str) -> String {
    let speakers = speakers(records);
    let end = end_of(records).as_secs_f64().max(1e-3);
    let (label_w, plot_w, row_h, top) = (150.0, 760.0, 30.0, 74.0);
    let height = top + speakers.len() as f64 * row_h + 70.0;
    let width = label_w + plot_w + 30.0;
    let x = |t: Duration| label_w + t.as_secs_f64() / end * plot_w;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    // `chapter/lesson: what it shows`: the name in bold, what it shows on a line of its own.
    let (name, about) = title.split_once(": ").unwrap_or((title, ""));
    let _ = writeln!(
        s,
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"22\" font-size=\"16\" font-weight=\"bold\">{}</text>\n<text x=\"10\" y=\"40\" font-size=\"12\">{}</text>",
        xml(name),
        xml(about)
    );
    // Legend.
    let mut lx = 10.0;
    for a in Activity::ALL {
        let _ = writeln!(
            s,
            "<g class=\"legend\"><rect x=\"{lx}\" y=\"50\" width=\"14\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"59\">{}</text></g>",
            color(a),
            lx + 18.0,
            a.name()
        );
        lx += 100.0;
    }
    let _ = writeln!(
        s,
        "<g class=\"legend\"><line x1=\"{lx}\" y1=\"49\" x2=\"{lx}\" y2=\"61\" stroke=\"black\" stroke-width=\"2\"/><text x=\"{}\" y=\"59\">a line said (above it: the CPU)</text></g>",
        lx + 6.0
    );
    // Rows.
    for (i, who) in speakers.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let _ = writeln!(
            s,
            "<g class=\"row\" data-speaker=\"{w}\"><rect x=\"{label_w}\" y=\"{y}\" width=\"{plot_w}\" height=\"{row_h}\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{w}</text>",
            if i % 2 == 0 { "#f7f7f7" } else { "#ffffff" },
            label_w - 8.0,
            y + row_h / 2.0 + 4.0,
            w = xml(who)
        );
        let mine: Vec<&Record> = records.iter().filter(|r| r.speaker == *who).collect();
        // A span inside another of the same speaker (a sleep while holding a lock) is drawn as
        // a thinner bar inside the outer one, so both show.
        let depth = |r: &Record| {
            mine.iter()
                .filter(|o| {
                    !std::ptr::eq(**o, r)
                        && matches!(o.kind, Kind::Span { .. })
                        && o.at <= r.at
                        && o.end() >= r.end()
                        && (o.end() - o.at > r.end() - r.at || o.at < r.at)
                })
                .count()
        };
        let mut ordered: Vec<(usize, &Record)> = mine.iter().map(|r| (depth(r), *r)).collect();
        ordered.sort_by_key(|(d, r)| (*d, r.at));
        for (d, r) in ordered {
            let inset = 7.0 + 4.0 * d.min(2) as f64;
            match r.kind {
                Kind::Span { until, activity } => {
                    let (x0, x1) = (x(r.at), x(until));
                    let _ = writeln!(
                        s,
                        "<rect class=\"span {}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} ({:.3}s .. {:.3}s)</title></rect>",
                        activity.name(),
                        y + inset,
                        (x1 - x0).max(1.5),
                        row_h - 2.0 * inset,
                        color(activity),
                        xml(who),
                        xml(&r.text),
                        r.at.as_secs_f64(),
                        until.as_secs_f64()
                    );
                }
                Kind::Said => {
                    let cx = x(r.at);
                    let cpu = r.cpu.map_or(String::new(), |c| format!(" on CPU {c}"));
                    let _ = writeln!(
                        s,
                        "<line class=\"said\" x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"2\"><title>{:.3}s {}{cpu}: {}</title></line>",
                        y + 4.0,
                        y + row_h - 4.0,
                        r.at.as_secs_f64(),
                        xml(who),
                        xml(&r.text)
                    );
                    if let Some(c) = r.cpu {
                        let _ = writeln!(
                            s,
                            "<text class=\"cpu\" x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"8\" text-anchor=\"middle\">{c}</text>",
                            y + 4.0
                        );
                    }
                }
            }
        }
        s.push_str("</g>\n");
    }
    // Time axis.
    let axis_y = top + speakers.len() as f64 * row_h + 6.0;
    let _ = writeln!(
        s,
        "<line x1=\"{label_w}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#333\"/>",
        label_w + plot_w
    );
    let step = tick_step(end, 8.0);
    let mut t = 0.0;
    while t <= end + step * 1e-9 {
        let tx = label_w + t / end * plot_w;
        let digits = if step >= 1.0 {
            0
        } else {
            (-step.log10().floor()) as usize
        };
        let _ = writeln!(
            s,
            "<g class=\"tick\"><line x1=\"{tx:.1}\" y1=\"{axis_y}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#333\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\">{t:.digits$}s</text></g>",
            axis_y + 5.0,
            axis_y + 18.0
        );
        t += step;
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time since the lesson started (seconds)</text>",
        label_w + plot_w / 2.0,
        axis_y + 38.0
    );
    s.push_str("</svg>\n");
    s
}
