//! `--timeline`: an ASCII chart of who said what when.

use std::fmt::Write;

use crate::Record;

/// Draw `records` as one row per speaker (in order of first appearance), time running left to
/// right over `width` columns. `*` marks a narration line; `-` fills the time between a speaker's
/// first and last line, so rows whose dashes overlap were alive at the same time.
///
/// ```
/// use lesson::{Record, render_timeline};
/// use std::time::Duration;
///
/// let r = |ms, who: &str| Record { at: Duration::from_millis(ms), speaker: who.into(), text: String::new() };
/// let chart = render_timeline(&[r(0, "main"), r(50, "t1"), r(100, "t1"), r(100, "main")], 11);
/// assert!(chart.contains("main |*---------*|"));
/// assert!(chart.contains("t1   |     *----*|"));
/// ```
pub fn render(records: &[Record], width: usize) -> String {
    let width = width.max(2);
    let mut speakers: Vec<&str> = Vec::new();
    for r in records {
        if !speakers.contains(&r.speaker.as_str()) {
            speakers.push(&r.speaker);
        }
    }
    let end = records.iter().map(|r| r.at).max().unwrap_or_default();
    let end_s = end.as_secs_f64();
    let column = |r: &Record| -> usize {
        if end_s == 0.0 {
            0
        } else {
            ((r.at.as_secs_f64() / end_s) * (width - 1) as f64).round() as usize
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
        "timeline: 0 .. {:.3}s, one column = {:.1} ms; * = a line said, - = between a speaker's first and last line",
        end_s,
        end_s * 1000.0 / (width - 1) as f64
    );
    for who in speakers {
        let cols: Vec<usize> = records
            .iter()
            .filter(|r| r.speaker == who)
            .map(column)
            .collect();
        let (first, last) = (cols[0], *cols.iter().max().unwrap_or(&cols[0]));
        let mut row = vec![' '; width];
        row[first..=last].iter_mut().for_each(|c| *c = '-');
        for c in cols {
            row[c] = '*';
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
