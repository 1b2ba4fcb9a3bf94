//! Charts drawn on the server as inline SVG: no script, no library, nothing to download.
//! Every chart has labelled axes with units and an HTML legend; colours are the Okabe–Ito
//! palette (distinguishable with the common colour-vision deficiencies), and series also
//! differ by dash pattern or position, never by colour alone.

use maud::{Markup, html};

/// Okabe–Ito colours.
pub const BLUE: &str = "#0072B2";
pub const ORANGE: &str = "#E69F00";
pub const GREEN: &str = "#009E73";
pub const VERMILLION: &str = "#D55E00";
pub const SKY: &str = "#56B4E9";
pub const PURPLE: &str = "#CC79A7";
pub const GREY: &str = "#7f7f7f";

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 46.0;

/// Formats a value on an axis.
pub type Format<'a> = &'a dyn Fn(f64) -> String;

/// Round tick values covering `[lo, hi]`: 1, 2 or 5 × a power of ten apart.
pub fn ticks(lo: f64, hi: f64, wanted: usize) -> Vec<f64> {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let raw = (hi - lo) / wanted.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).floor() * step;
    let mut out = Vec::new();
    let mut t = first;
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    if out.last().is_some_and(|l| *l < hi) {
        out.push(t);
    }
    out
}

/// The plot area's scales: value → y pixel, index → x pixel.
struct Frame {
    lo: f64,
    hi: f64,
    n: usize,
}

impl Frame {
    fn y(&self, v: f64) -> f64 {
        let plot = HEIGHT - TOP - BOTTOM;
        TOP + plot * (1.0 - (v - self.lo) / (self.hi - self.lo))
    }
    /// The centre of slot `i` of `n`.
    fn x(&self, i: usize) -> f64 {
        let plot = WIDTH - LEFT - RIGHT;
        LEFT + plot * (i as f64 + 0.5) / self.n.max(1) as f64
    }
    fn slot(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / self.n.max(1) as f64
    }
}

/// Axes, grid lines, tick labels and the axis titles.
fn axes(
    frame: &Frame,
    ticks: &[f64],
    labels: &[String],
    y_title: &str,
    x_title: &str,
    format: Format<'_>,
) -> Markup {
    // As many x labels as fit without overlapping, evenly spaced.
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    let fit = (((WIDTH - LEFT - RIGHT) / (widest * 6.5 + 10.0)).floor() as usize).max(1);
    let every = labels.len().div_ceil(fit).max(1);
    html! {
        @for t in ticks {
            line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(frame.y(*t)) y2=(frame.y(*t)) class="grid" {}
            text x=(LEFT - 6.0) y=(frame.y(*t) + 4.0) text-anchor="end" class="tick" { (format(*t)) }
        }
        line x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(HEIGHT - BOTTOM) class="axis" {}
        line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(frame.y(frame.lo.max(0.0).min(frame.hi))) y2=(frame.y(frame.lo.max(0.0).min(frame.hi))) class="axis" {}
        @for (i, label) in labels.iter().enumerate() {
            @if i % every == 0 {
                text x=(frame.x(i)) y=(HEIGHT - BOTTOM + 16.0) text-anchor="middle" class="tick" { (label) }
            }
        }
        text x=(14) y=(TOP + (HEIGHT - TOP - BOTTOM) / 2.0) text-anchor="middle" class="axis-title"
            transform=(format!("rotate(-90 14 {})", TOP + (HEIGHT - TOP - BOTTOM) / 2.0)) { (y_title) }
        text x=(LEFT + (WIDTH - LEFT - RIGHT) / 2.0) y=(HEIGHT - 6.0) text-anchor="middle" class="axis-title" { (x_title) }
    }
}

/// One series of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<Option<f64>>,
    /// A dash pattern (`stroke-dasharray`) for lines, so lines differ by more than colour.
    pub dash: Option<&'a str>,
}

/// The legend, as HTML under the chart.
fn legend(series: &[Series<'_>], lines: bool) -> Markup {
    html! {
        ul.legend {
            @for s in series {
                li {
                    @if lines {
                        svg width="28" height="10" aria-hidden="true" {
                            line x1="0" x2="28" y1="5" y2="5" stroke=(s.color) stroke-width="3" stroke-dasharray=[s.dash] {}
                        }
                    } @else {
                        span.swatch style=(format!("background:{}", s.color)) {}
                    }
                    " " (s.name)
                }
            }
        }
    }
}

/// Labels of a chart: its title (for screen readers), the axes' titles.
pub struct Titles<'a> {
    pub title: &'a str,
    pub y: &'a str,
    pub x: &'a str,
}

/// Bars stacked per period: positive values upwards, negative ones downwards (MRR
/// movements: gains above the axis, losses below).
pub fn stacked_bars(
    titles: &Titles<'_>,
    labels: &[String],
    series: &[Series<'_>],
    format: Format<'_>,
) -> Markup {
    let n = labels.len();
    let mut hi: f64 = 0.0;
    let mut lo: f64 = 0.0;
    for i in 0..n {
        let (mut up, mut down) = (0.0, 0.0);
        for s in series {
            let v = s.values.get(i).copied().flatten().unwrap_or(0.0);
            if v >= 0.0 { up += v } else { down += v }
        }
        hi = hi.max(up);
        lo = lo.min(down);
    }
    let ticks = ticks(lo, hi, 5);
    let frame = Frame {
        lo: ticks.first().copied().unwrap_or(0.0),
        hi: ticks.last().copied().unwrap_or(1.0),
        n,
    };
    let width = frame.slot() * 0.7;
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(titles.title) {
                title { (titles.title) }
                (axes(&frame, &ticks, labels, titles.y, titles.x, format))
                @for i in 0..n {
                    @let (mut up, mut down) = (0.0f64, 0.0f64);
                    @for s in series {
                        @let v = s.values.get(i).copied().flatten().unwrap_or(0.0);
                        @if v != 0.0 {
                            @let (from, to) = if v > 0.0 { let f = up; up += v; (f, up) } else { let f = down; down += v; (f, down) };
                            rect x=(frame.x(i) - width / 2.0) y=(frame.y(from.max(to))) width=(width)
                                height=((frame.y(from.min(to)) - frame.y(from.max(to))).max(0.5)) fill=(s.color) {
                                title { (labels[i]) " — " (s.name) ": " (format(v)) }
                            }
                        }
                    }
                }
            }
            (legend(series, false))
        }
    }
}

/// Lines over periods; a missing value breaks the line.
pub fn lines(
    titles: &Titles<'_>,
    labels: &[String],
    series: &[Series<'_>],
    range: Option<(f64, f64)>,
    format: Format<'_>,
) -> Markup {
    let values = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied());
    let (lo, hi) = range.unwrap_or_else(|| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
    });
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo.min(0.0), hi)
    } else {
        (0.0, 1.0)
    };
    let ticks = ticks(lo, hi, 5);
    let frame = Frame {
        lo: ticks.first().copied().unwrap_or(0.0),
        hi: ticks.last().copied().unwrap_or(1.0),
        n: labels.len(),
    };
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(titles.title) {
                title { (titles.title) }
                (axes(&frame, &ticks, labels, titles.y, titles.x, format))
                @for s in series {
                    @for run in runs(&s.values) {
                        polyline fill="none" stroke=(s.color) stroke-width="2.5" stroke-dasharray=[s.dash]
                            points=(run.iter().map(|(i, v)| format!("{:.1},{:.1}", frame.x(*i), frame.y(*v))).collect::<Vec<_>>().join(" ")) {}
                    }
                    @for (i, v) in s.values.iter().enumerate() {
                        @if let Some(v) = v {
                            circle cx=(frame.x(i)) cy=(frame.y(*v)) r="3" fill=(s.color) {
                                title { (labels[i]) " — " (s.name) ": " (format(*v)) }
                            }
                        }
                    }
                }
            }
            (legend(series, true))
        }
    }
}

/// Consecutive defined points.
fn runs(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => current.push((i, *v)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A tiny line of the last periods, for a headline card.
pub fn sparkline(label: &str, values: &[Option<f64>]) -> Markup {
    let (w, h) = (120.0, 32.0);
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    let lo = defined.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = defined.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let n = values.len().max(2) - 1;
    let point = |i: usize, v: f64| {
        format!(
            "{:.1},{:.1}",
            w * i as f64 / n as f64,
            h - 3.0 - (h - 6.0) * (v - lo) / span
        )
    };
    html! {
        svg.spark viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(format!("{label}, last {} periods", values.len())) {
            @for run in runs(values) {
                polyline fill="none" stroke=(BLUE) stroke-width="2" points=(run.iter().map(|(i, v)| point(*i, *v)).collect::<Vec<_>>().join(" ")) {}
            }
        }
    }
}

/// Horizontal bars, one per label, with the value written beside each.
pub fn bars(title: &str, unit: &str, rows: &[(String, Option<f64>)], format: Format<'_>) -> Markup {
    let hi = rows.iter().filter_map(|r| r.1).fold(0.0f64, f64::max);
    let hi = if hi > 0.0 { hi } else { 1.0 };
    html! {
        figure.chart.hbars role="img" aria-label=(title) {
            table.hbars {
                caption { (title) " (" (unit) ")" }
                @for (label, value) in rows {
                    tr {
                        th scope="row" { (label) }
                        td {
                            @if let Some(v) = value {
                                span.bar style=(format!("width:{:.1}%", 70.0 * v.max(0.0) / hi)) {}
                                " " (format(*v))
                            } @else {
                                span.muted { "n/a" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A heatmap's colour scale: white at `lo` to Okabe–Ito blue at `hi` (the range of the
/// table's values, so that a table of retention between 60% and 100% is not all one blue).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeatScale {
    pub lo: f64,
    pub hi: f64,
}

impl HeatScale {
    /// The scale spanning these values (0 to 1 when there are none).
    pub fn over(values: impl Iterator<Item = f64>) -> Self {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if lo.is_finite() && hi > lo {
            Self { lo, hi }
        } else {
            Self { lo: 0.0, hi: 1.0 }
        }
    }

    /// A cell's background and text colour; the text turns white on dark cells.
    pub fn style(&self, value: Option<f64>) -> String {
        let Some(v) = value else {
            return "background:#f2f2f2;color:#999".to_owned();
        };
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        let mix = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
        let (r, g, b) = (mix(255.0, 0.0), mix(255.0, 114.0), mix(255.0, 178.0));
        let text = if t > 0.55 { "#fff" } else { "#111" };
        format!("background:rgb({r},{g},{b});color:{text}")
    }

    /// The legend: five steps from `lo` to `hi`, as percentages.
    pub fn legend(&self, what: &str) -> Markup {
        html! {
            div.heat-legend {
                span { (what) ": " }
                @for i in 0..5 {
                    @let v = self.lo + (self.hi - self.lo) * i as f64 / 4.0;
                    span.heat-step style=(self.style(Some(v))) { (format!("{:.0}%", v * 100.0)) }
                }
                span.heat-step style=(self.style(None)) { "no data" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            ticks(-3.0, 7.0, 5),
            vec![-4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]
        );
        let t = ticks(0.0, 0.37, 4);
        assert_eq!(t.first(), Some(&0.0));
        assert!(*t.last().unwrap_or(&0.0) >= 0.37);
        // An empty range still gets an axis.
        assert!(ticks(5.0, 5.0, 5).len() >= 2);
    }

    #[test]
    fn heat_spans_the_values() {
        let scale = HeatScale::over([0.6, 0.8, 1.0].into_iter());
        assert_eq!(scale, HeatScale { lo: 0.6, hi: 1.0 });
        assert_eq!(
            scale.style(Some(0.6)),
            "background:rgb(255,255,255);color:#111"
        );
        assert_eq!(
            scale.style(Some(1.0)),
            "background:rgb(0,114,178);color:#fff"
        );
        assert_eq!(
            HeatScale::over(std::iter::empty()),
            HeatScale { lo: 0.0, hi: 1.0 }
        );
    }

    #[test]
    fn missing_values_break_lines() {
        let r = runs(&[Some(1.0), None, Some(2.0), Some(3.0)]);
        assert_eq!(r, vec![vec![(0, 1.0)], vec![(2, 2.0), (3, 3.0)]]);
    }

    #[test]
    fn stacks_losses_below_the_axis() {
        let labels = vec!["2026-01".to_owned()];
        let series = [
            Series {
                name: "New",
                color: GREEN,
                values: vec![Some(10.0)],
                dash: None,
            },
            Series {
                name: "Churned",
                color: VERMILLION,
                values: vec![Some(-4.0)],
                dash: None,
            },
        ];
        let svg = stacked_bars(
            &Titles {
                title: "t",
                y: "y",
                x: "x",
            },
            &labels,
            &series,
            &|v| format!("{v}"),
        )
        .into_string();
        assert!(svg.contains("New: 10"), "{svg}");
        assert!(svg.contains("Churned: -4"), "{svg}");
        assert!(svg.contains("<li>"), "has a legend");
    }
}
