//! The report's charts, as SVG text.

use std::fmt::Write as _;

use super::Row;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Bars: Rust's speedup over Python per figure on a log scale (1x in the middle), and its
/// overhead over the floor.
pub fn svg(rows: &[Row], title: &str) -> String {
    let with_py: Vec<&Row> = rows.iter().filter(|r| r.vs_python.is_some()).collect();
    let with_floor: Vec<&Row> = rows.iter().filter(|r| r.vs_floor.is_some()).collect();
    let bar_h = 18.0;
    let label_w = 330.0;
    let plot_w = 420.0;
    let height = 60.0 + (with_py.len() + with_floor.len()) as f64 * (bar_h + 6.0) + 60.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"15\">{}</text>\n",
        escape(title),
        w = label_w + plot_w + 120.0
    );
    // log10 scale from 0.1x to 1000x.
    let x_of = |v: f64| label_w + (v.max(0.1).log10() + 1.0) / 4.0 * plot_w;
    let mut y = 40.0;
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"{y}\" font-weight=\"bold\">Rust vs Python (times better, log scale; 1x = same)</text>"
    );
    y += 10.0;
    let one = x_of(1.0);
    for r in &with_py {
        let v = r.vs_python.unwrap_or(1.0);
        let (x0, x1) = if v >= 1.0 {
            (one, x_of(v))
        } else {
            (x_of(v), one)
        };
        let color = if v >= 1.0 { "#3a7" } else { "#c44" };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\">{v:.1}x</text>",
            label_w - 6.0,
            y + 13.0,
            escape(&r.label),
            (x1 - x0).max(1.0),
            x0.max(x1) + 4.0,
            y + 13.0
        );
        y += bar_h + 6.0;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{one:.1}\" y1=\"50\" x2=\"{one:.1}\" y2=\"{y:.1}\" stroke=\"#333\"/>"
    );
    y += 24.0;
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"{y}\" font-weight=\"bold\">Overhead over the floor (cost vs the raw mechanism; 1x = none)</text>"
    );
    y += 10.0;
    for r in &with_floor {
        let v = r.vs_floor.unwrap_or(1.0);
        let x1 = x_of(v.max(1.0));
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{one:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"#58c\"/><text x=\"{:.1}\" y=\"{:.1}\">{v:.2}x</text>",
            label_w - 6.0,
            y + 13.0,
            escape(&r.label),
            (x1 - one).max(1.0),
            x1 + 4.0,
            y + 13.0
        );
        y += bar_h + 6.0;
    }
    s.push_str("</svg>\n");
    s
}

/// The GIL chart: CPU-bound speedup against thread count, for Rust threads, Python threads and
/// Python processes. Each series is (threads, speedup).
pub fn gil_svg(series: &[(&str, Vec<(f64, f64)>)]) -> String {
    let (w, h, pad) = (520.0, 320.0, 50.0);
    let max_n = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(n, _)| *n))
        .fold(1.0f64, f64::max);
    let max_s = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, s)| *s))
        .fold(max_n, f64::max);
    let x = |n: f64| pad + (n - 1.0) / (max_n - 1.0).max(1.0) * (w - 2.0 * pad);
    let y = |v: f64| h - pad - v / max_s * (h - 2.0 * pad);
    let colors = ["#3a7", "#c44", "#58c"];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"15\">CPU-bound speedup against threads (the GIL)</text>\n<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#333\"/>\n",
        b = h - pad,
        r = w - pad
    );
    let mut n = 1.0;
    while n <= max_n {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
            x(n),
            h - pad + 16.0
        );
        n += 1.0;
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">threads (or processes)</text>",
        w / 2.0,
        h - 12.0
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let c = colors[i % colors.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(n, v)| format!("{:.1},{:.1}", x(*n), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
        for (n, v) in points {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"/>",
                x(*n),
                y(*v)
            );
        }
        // Only the last point is labelled: at one thread every series is near 1x.
        if let Some((n, v)) = points.last() {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\">{v:.2}x</text>",
                x(*n) + 6.0,
                y(*v) + 4.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{}</text>",
            pad + 10.0,
            pad + 14.0 * i as f64,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}
