//! A result as an SVG chart (plotters, SVG backend only).

use knit_bench::results::{fmt_ratio, BenchResult, Chart, Role, Row};
use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

const WIDTH: u32 = 960;
const FAST: RGBColor = RGBColor(46, 139, 87);
const SLOW: RGBColor = RGBColor(205, 92, 92);
const PALETTE: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

/// Draws `result`'s chart as an SVG document: ratio bars or sweep lines, as
/// its [`Chart`] says. A drawing error yields an SVG holding just the message.
pub fn svg(result: &BenchResult) -> String {
    let mut out = String::new();
    let height = match result.chart {
        Chart::Ratios => 110 + 30 * bars(result).len().max(1) as u32,
        Chart::Lines { .. } => 520,
    };
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        let drawn =
            root.fill(&WHITE)
                .map_err(|e| e.to_string())
                .and_then(|_| match &result.chart {
                    Chart::Ratios => ratio_bars(&root, result),
                    Chart::Lines {
                        x_label,
                        y_label,
                        log,
                    } => lines(&root, result, (x_label, y_label), *log),
                });
        if let Err(e) = drawn {
            let _ = root.draw(&Text::new(
                format!("chart error: {e}"),
                (10, 10),
                ("sans-serif", 14),
            ));
        }
        let _ = root.present();
    }
    out
}

/// The knit rows that have a ratio to show, with their label and ratio.
fn bars(result: &BenchResult) -> Vec<(String, String, f64)> {
    result
        .rows
        .iter()
        .filter(|r| r.spec.role == Role::Knit)
        .filter_map(|r| {
            let (peer, ratio) = result.chart_ratio(r)?;
            Some((format!("{}: {}", r.spec.group, r.spec.system), peer, ratio))
        })
        .collect()
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn ratio_bars(root: &Area, result: &BenchResult) -> Result<(), String> {
    let bars = bars(result);
    if bars.is_empty() {
        return Err("no knit row has a ratio".into());
    }
    let lo = bars.iter().map(|b| b.2).fold(1.0f64, f64::min) / 1.6;
    let hi = bars.iter().map(|b| b.2).fold(1.0f64, f64::max) * 1.6;
    let label_width = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(10) as u32 * 7 + 20;
    let n = bars.len();
    let caption = format!(
        "{}: knit time ÷ {} time (log scale; left of 1 = knit faster)",
        result.title, result.primary
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(label_width)
        .build_cartesian_2d(
            (lo..hi).log_scale().with_key_points(ratio_ticks(lo, hi)),
            (0..n - 1).into_segmented(),
        )
        .map_err(|e| e.to_string())?;
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < n => bars[n - 1 - *i].0.clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .y_labels(n)
        .y_label_formatter(&label)
        .x_label_formatter(&|x| fmt_ratio(*x))
        .x_desc("ratio (per-round paired medians)")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(bars.iter().rev().enumerate().map(|(i, (_, _, r))| {
            let color = if *r <= 1.0 { FAST } else { SLOW };
            let mut bar = Rectangle::new(
                [
                    (1.0, SegmentValue::Exact(i)),
                    (*r, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            );
            bar.set_margin(5, 5, 0, 0);
            bar
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(bars.iter().rev().enumerate().map(|(i, (_, peer, r))| {
            let text = if *peer == result.primary {
                fmt_ratio(*r)
            } else {
                format!("{} (vs {peer})", fmt_ratio(*r))
            };
            Text::new(
                text,
                (r.max(1.0) * 1.03, SegmentValue::CenterOf(i)),
                ("sans-serif", 13),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Round ratios (1, 2, 5 per decade) between `lo` and `hi`, for the axis.
fn ratio_ticks(lo: f64, hi: f64) -> Vec<f64> {
    (-3..4)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(|t| (lo..=hi).contains(t))
        .collect()
}

/// What a line chart plots for a row: bytes/s, or operations/s.
fn y_value(row: &Row) -> f64 {
    row.bytes_per_sec().unwrap_or(1e9 / row.median_ns)
}

fn lines(
    root: &Area,
    result: &BenchResult,
    (x_label, y_label): (&str, &str),
    log: bool,
) -> Result<(), String> {
    let points: Vec<&Row> = result.rows.iter().filter(|r| r.spec.x.is_some()).collect();
    if points.is_empty() {
        return Err("no row has an x position".into());
    }
    let xs = points.iter().filter_map(|r| r.spec.x);
    let (x_lo, x_hi) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let ys = points.iter().map(|r| y_value(r));
    let (y_lo, y_hi) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let bytes = points.iter().any(|r| r.spec.bytes.is_some());
    let caption = format!("{}: higher is better", result.title);
    let x_fmt = |x: &f64| {
        if bytes {
            si(*x, "B")
        } else if x.fract().abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    let y_fmt = |y: &f64| si(*y, if bytes { "B/s" } else { "/s" });
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90);
    let axes = Axes {
        x_label,
        y_label,
        x_fmt: &x_fmt,
        y_fmt: &y_fmt,
    };
    if log {
        let mut chart = builder
            .build_cartesian_2d(
                (x_lo..x_hi * 1.01).log_scale(),
                (y_lo / 2.0..y_hi * 2.0).log_scale(),
            )
            .map_err(|e| e.to_string())?;
        series(&mut chart, &points, axes)
    } else {
        let pad = ((x_hi - x_lo) * 0.05).max(0.1);
        let mut chart = builder
            .build_cartesian_2d(x_lo - pad..x_hi + pad, 0.0..y_hi * 1.15)
            .map_err(|e| e.to_string())?;
        series(&mut chart, &points, axes)
    }
}

/// Axis descriptions and label formats of a line chart.
struct Axes<'a> {
    x_label: &'a str,
    y_label: &'a str,
    x_fmt: &'a dyn Fn(&f64) -> String,
    y_fmt: &'a dyn Fn(&f64) -> String,
}

fn series<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    points: &[&Row],
    axes: Axes,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(axes.x_label)
        .y_desc(axes.y_label)
        .light_line_style(TRANSPARENT)
        .x_label_formatter(axes.x_fmt)
        .y_label_formatter(axes.y_fmt)
        .draw()
        .map_err(|e| e.to_string())?;
    let mut systems: Vec<(&str, Role)> = Vec::new();
    for r in points {
        if !systems.iter().any(|(s, _)| *s == r.spec.system) {
            systems.push((&r.spec.system, r.spec.role));
        }
    }
    for (i, (system, role)) in systems.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let width = if *role == Role::Knit { 3 } else { 1 };
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter(|r| r.spec.system == *system)
            .filter_map(|r| Some((r.spec.x?, y_value(r))))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(width)))
            .map_err(|e| e.to_string())?
            .label(*system)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
        chart
            .draw_series(line.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `v` with a decimal SI prefix and `unit`: `si(25_000.0, "/s")` is "25k/s".
fn si(v: f64, unit: &str) -> String {
    let (scaled, prefix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(f, _)| v >= *f)
        .map_or((v, ""), |(f, p)| (v / f, p));
    let digits = if scaled >= 10.0 || scaled.fract() == 0.0 {
        0
    } else {
        1
    };
    format!("{scaled:.digits$} {prefix}{unit}")
}
