//! Line charts as SVG, rendered on the server (and re-rendered in place by
//! the hydrated page). No script, no library: a polyline per series, two
//! axis labels, and a text summary for people who cannot see the chart.

use leptos::prelude::*;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 1.0;
const RIGHT: f64 = 4.0;
const TOP: f64 = 4.0;
const BOTTOM: f64 = 1.0;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub label: &'static str,
    /// CSS class (colour).
    pub class: &'static str,
    /// `(seconds before the newest sample, value)`; `None` values break the line.
    pub points: Vec<(f64, Option<f64>)>,
}

/// The `points` attribute of each unbroken run of `series`, scaled to the
/// plot area: time runs from `-span` (left) to 0 (right), values from 0 to `max`.
pub fn polylines(series: &Series, span: f64, max: f64) -> Vec<String> {
    let span = if span > 0.0 { span } else { 1.0 };
    let max = if max > 0.0 { max } else { 1.0 };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let mut runs = Vec::new();
    let mut current = String::new();
    for &(age, value) in &series.points {
        match value {
            Some(v) => {
                let x = LEFT + plot_w * (1.0 - (age / span).clamp(0.0, 1.0));
                let y = TOP + plot_h * (1.0 - (v / max).clamp(0.0, 1.0));
                if !current.is_empty() {
                    current.push(' ');
                }
                current.push_str(&format!("{x:.1},{y:.1}"));
            }
            None if !current.is_empty() => runs.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// A round upper bound for the y axis: 1, 2, 5 × 10ⁿ at or above `value`.
pub fn nice_max(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if value <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

/// How long ago, for the x axis: `5 min`, `40 s`.
fn ago(seconds: f64) -> String {
    if seconds >= 120.0 {
        format!("−{:.0} min", seconds / 60.0)
    } else {
        format!("−{seconds:.0} s")
    }
}

/// A line chart. `format` turns a y value into text (axis and summary).
#[component]
pub fn LineChart(
    /// Heading and accessible name.
    title: &'static str,
    /// The lines.
    series: Vec<Series>,
    /// Top of the y axis (`None`: from the data).
    #[prop(optional)]
    max: Option<f64>,
    /// Seconds covered by the x axis.
    span: f64,
    /// Value formatter.
    format: fn(f64) -> String,
    /// An id for the figure (tests and links find it by this).
    id: &'static str,
) -> impl IntoView {
    let data_max = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .fold(0.0f64, f64::max);
    let max = max.unwrap_or_else(|| nice_max(data_max));
    let summary = series
        .iter()
        .map(|s| match s.points.iter().rev().find_map(|p| p.1) {
            Some(v) => format!("{}: {} (latest)", s.label, format(v)),
            None => format!("{}: no data yet", s.label),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    let lines = series
        .iter()
        .flat_map(|s| polylines(s, span, max).into_iter().map(move |points| (s.class, points)))
        .map(|(class, points)| view! { <polyline class=format!("line {class}") points=points fill="none"/> })
        .collect_view();
    let legend = series
        .iter()
        .map(|s| view! { <li><span class=format!("key {}", s.class) aria-hidden="true"></span>{s.label}</li> })
        .collect_view();
    let plot_bottom = HEIGHT - BOTTOM;
    let mid = TOP + (plot_bottom - TOP) / 2.0;
    let described_by = desc_id.clone();
    view! {
        <figure class="chart" id=id>
            <figcaption id=title_id.clone()>{title}</figcaption>
            <div class="plot">
                <div class="y-ticks" aria-hidden="true"><span>{format(max)}</span><span>{format(max / 2.0)}</span><span>{format(0.0)}</span></div>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-labelledby=title_id aria-describedby=described_by
                    preserveAspectRatio="none">
                    <desc id=desc_id>{summary.clone()}</desc>
                    <line class="axis" x1=LEFT y1=TOP x2=LEFT y2=plot_bottom/>
                    <line class="axis" x1=LEFT y1=plot_bottom x2=WIDTH - RIGHT y2=plot_bottom/>
                    <line class="grid" x1=LEFT y1=mid x2=WIDTH - RIGHT y2=mid/>
                    {lines}
                </svg>
                <div class="x-ticks" aria-hidden="true"><span>{ago(span)}</span><span>"now"</span></div>
            </div>
            <ul class="legend">{legend}</ul>
            <p class="summary">{summary}</p>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_scaled_and_gaps_break_lines() {
        let series = Series {
            label: "x",
            class: "a",
            points: vec![
                (10.0, Some(0.0)),
                (5.0, Some(1.0)),
                (3.0, None),
                (0.0, Some(0.5)),
            ],
        };
        let runs = polylines(&series, 10.0, 1.0);
        assert_eq!(runs.len(), 2);
        // oldest at the left edge, bottom; the middle one half way, at the top
        assert_eq!(
            runs[0],
            format!(
                "{LEFT:.1},{:.1} {:.1},{TOP:.1}",
                HEIGHT - BOTTOM,
                LEFT + (WIDTH - LEFT - RIGHT) / 2.0
            )
        );
        assert_eq!(
            runs[1],
            format!(
                "{:.1},{:.1}",
                WIDTH - RIGHT,
                TOP + (HEIGHT - TOP - BOTTOM) / 2.0
            )
        );
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.7), 1.0);
        assert_eq!(nice_max(1.5), 2.0);
        assert_eq!(nice_max(33.0), 50.0);
        assert_eq!(nice_max(800.0), 1000.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }
}
