//! The latency-percentile plot, written by hand as SVG text: x is the percentile on the
//! usual log scale of `1 / (1 − p)` (50 … 99.99), y is the latency on a log scale, one
//! line per scenario, with axis labels and a legend.

use std::fmt::Write;

/// Percentiles plotted (and tabulated).
pub const PERCENTILES: [f64; 9] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99];

const W: f64 = 760.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLORS: [&str; 4] = ["#326ce5", "#e5533d", "#2a9d4b", "#8e44ad"];

/// One line: a name and `(percentile, latency ns)` points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, in percentile order.
    pub points: Vec<(f64, u64)>,
}

fn x_of(p: f64) -> f64 {
    // 50 → log10(2) ≈ 0.30, 99.99 → 4.
    let v = (1.0 / (1.0 - p / 100.0)).log10();
    let (lo, hi) = (2f64.log10(), 4.0);
    LEFT + (v - lo) / (hi - lo) * (W - LEFT - RIGHT)
}

fn label_ns(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.0} s", n / 1e9),
        n if n >= 1e6 => format!("{:.0} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.0} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document for `series` (empty series are left out of the lines, not the legend).
pub fn percentile_plot(title: &str, y_label: &str, series: &[Series]) -> String {
    let values: Vec<u64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1.max(1)))
        .collect();
    let lo_dec = values
        .iter()
        .map(|&v| (v as f64).log10().floor())
        .fold(f64::INFINITY, f64::min);
    let hi_dec = values
        .iter()
        .map(|&v| (v as f64).log10().ceil())
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo_dec, hi_dec) = if lo_dec.is_finite() && hi_dec.is_finite() {
        (lo_dec, hi_dec.max(lo_dec + 1.0))
    } else {
        (2.0, 6.0)
    };
    let y_of = |ns: u64| {
        let v = (ns.max(1) as f64).log10();
        TOP + (hi_dec - v) / (hi_dec - lo_dec) * (H - TOP - BOTTOM)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        escape(title)
    );
    // Grid and y ticks, one per decade.
    let mut d = lo_dec;
    while d <= hi_dec + 1e-9 {
        let y = y_of(10f64.powf(d) as u64);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label_ns(10f64.powf(d))
        );
        d += 1.0;
    }
    // x ticks.
    for p in [50.0, 90.0, 99.0, 99.9, 99.99] {
        let x = x_of(p);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{p}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 18.0
        );
    }
    // Axes and labels.
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333"/>"##,
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile (log scale of 1/(1-p))</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 16.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
        escape(y_label)
    );
    // Lines and legend.
    for (i, series) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        if !series.points.is_empty() {
            let pts: Vec<String> = series
                .points
                .iter()
                .map(|&(p, ns)| format!("{:.1},{:.1}", x_of(p), y_of(ns)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                pts.join(" ")
            );
            for &(p, ns) in &series.points {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    x_of(p),
                    y_of(ns)
                );
            }
        }
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = W - RIGHT + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            escape(&series.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_map_left_to_right_and_latency_bottom_to_top() {
        assert!(x_of(50.0) < x_of(99.0) && x_of(99.0) < x_of(99.99));
        assert!((x_of(50.0) - LEFT).abs() < 1e-9);
        let svg = percentile_plot(
            "t",
            "y",
            &[Series {
                name: "a<b".into(),
                points: vec![(50.0, 100), (99.0, 10_000)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b"));
    }
}
