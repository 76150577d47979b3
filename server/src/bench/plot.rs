//! The benchmark as an SVG: throughput by scenario, and invalidation time
//! against namespace size (log scales).

use std::fmt::Write;

use super::{Report, Row};

fn colour(implementation: &str) -> &'static str {
    match implementation {
        "raw-redis" => "#7f7f7f",
        "nscache" => "#1f77b4",
        "nscache-l1" => "#2ca02c",
        "scan-del" => "#d62728",
        _ => "#9467bd",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Decades covering `lo..=hi` (powers of ten).
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    (
        lo.max(1e-9).log10().floor(),
        hi.max(1e-9)
            .log10()
            .ceil()
            .max(lo.max(1e-9).log10().floor() + 1.0),
    )
}

/// Draw the report: a title, the throughput panel, the invalidation panel.
pub fn svg(report: &Report) -> String {
    let (w, h) = (1180.0, 560.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let m = &report.machine;
    let _ = writeln!(
        out,
        r#"<text x="20" y="24" font-size="15" font-weight="bold">nscache bench — {} CPUs, Redis {}, {} s per cell</text>"#,
        m.cpus,
        escape(&m.redis_version),
        m.duration_secs
    );
    throughput_panel(&mut out, report);
    invalidation_panel(&mut out, report);
    out.push_str("</svg>\n");
    out
}

/// A legend entry: a coloured square and the implementation's name.
fn legend(out: &mut String, imp: &str, x: f64, y: f64) {
    let _ = writeln!(
        out,
        r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{imp}</text>"#,
        y - 10.0,
        colour(imp),
        x + 16.0,
        y
    );
}

/// Left: throughput at the concurrency closest to 16, a band per scenario.
fn throughput_panel(out: &mut String, report: &Report) {
    let ops: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.scenario != "invalidate-user")
        .collect();
    let Some(conc) = ops
        .iter()
        .map(|r| r.concurrency)
        .min_by_key(|c| c.abs_diff(16))
    else {
        return;
    };
    let rows: Vec<&Row> = ops.into_iter().filter(|r| r.concurrency == conc).collect();
    let mut scenarios: Vec<&str> = Vec::new();
    for r in &rows {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    let (x0, x1, y0) = (190.0, 640.0, 60.0);
    let max = rows.iter().map(|r| r.ops_per_sec).fold(1.0, f64::max);
    let min = rows.iter().map(|r| r.ops_per_sec).fold(f64::MAX, f64::min);
    let (lo, hi) = decades(min / 2.0, max);
    let x = |v: f64| x0 + (v.max(1.0).log10() - lo) / (hi - lo) * (x1 - x0);
    let band = 62.0;
    let _ = writeln!(
        out,
        r#"<text x="{x0}" y="48" font-weight="bold">Throughput at concurrency {conc} (ops/s, log scale)</text>"#
    );
    let bottom = y0 + band * scenarios.len() as f64;
    for d in lo as i32..=hi as i32 {
        let xv = x(10f64.powi(d));
        let _ = writeln!(
            out,
            r##"<line x1="{xv:.1}" y1="{y0}" x2="{xv:.1}" y2="{bottom}" stroke="#ddd"/><text x="{xv:.1}" y="{:.1}" text-anchor="middle" fill="#555">1e{d}</text>"##,
            bottom + 16.0
        );
    }
    for (i, s) in scenarios.iter().enumerate() {
        let top = y0 + band * i as f64;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 8.0,
            top + band / 2.0,
            escape(s)
        );
        for (j, imp) in ["raw-redis", "nscache", "nscache-l1"].iter().enumerate() {
            let Some(r) = rows
                .iter()
                .find(|r| r.scenario == *s && r.implementation == *imp)
            else {
                continue;
            };
            let yb = top + 6.0 + j as f64 * 17.0;
            let _ = writeln!(
                out,
                r#"<rect x="{x0}" y="{yb:.1}" width="{:.1}" height="14" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="11">{:.0}</text>"#,
                (x(r.ops_per_sec) - x0).max(1.0),
                colour(imp),
                x(r.ops_per_sec) + 4.0,
                yb + 11.0,
                r.ops_per_sec
            );
        }
    }
    for (j, imp) in ["raw-redis", "nscache", "nscache-l1"].iter().enumerate() {
        legend(out, imp, x0 + j as f64 * 130.0, bottom + 40.0);
    }
}

/// Right: invalidation time against namespace size, log-log, a line per
/// implementation.
fn invalidation_panel(out: &mut String, report: &Report) {
    let inv: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.scenario == "invalidate-user")
        .collect();
    if inv.is_empty() {
        return;
    }
    let (x0, x1, y0, y1) = (780.0, 1150.0, 70.0, 460.0);
    let kmin = inv.iter().map(|r| r.keys as f64).fold(f64::MAX, f64::min);
    let kmax = inv.iter().map(|r| r.keys as f64).fold(1.0, f64::max);
    let tmin = inv
        .iter()
        .map(|r| r.p50_us / 1000.0)
        .fold(f64::MAX, f64::min);
    let tmax = inv
        .iter()
        .map(|r| r.p50_us / 1000.0)
        .fold(f64::MIN_POSITIVE, f64::max);
    let (klo, khi) = decades(kmin, kmax);
    let (tlo, thi) = decades(tmin, tmax);
    let x = |k: f64| x0 + (k.log10() - klo) / (khi - klo) * (x1 - x0);
    let y = |t: f64| y1 - (t.max(1e-9).log10() - tlo) / (thi - tlo) * (y1 - y0);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="48" font-weight="bold">Invalidating a user: time (ms) vs keys (log-log)</text>"#,
        x0 - 60.0
    );
    for d in klo as i32..=khi as i32 {
        let xv = x(10f64.powi(d));
        let _ = writeln!(
            out,
            r##"<line x1="{xv:.1}" y1="{y0}" x2="{xv:.1}" y2="{y1}" stroke="#ddd"/><text x="{xv:.1}" y="{:.1}" text-anchor="middle" fill="#555">1e{d}</text>"##,
            y1 + 16.0
        );
    }
    for d in tlo as i32..=thi as i32 {
        let yv = y(10f64.powi(d));
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{yv:.1}" x2="{x1}" y2="{yv:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">1e{d}</text>"##,
            x0 - 6.0,
            yv + 4.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">keys in the namespace</text>"#,
        (x0 + x1) / 2.0,
        y1 + 36.0
    );
    for (j, imp) in ["nscache", "scan-del"].iter().enumerate() {
        let mut pts: Vec<(f64, f64)> = inv
            .iter()
            .filter(|r| r.implementation == *imp)
            .map(|r| (x(r.keys as f64), y(r.p50_us / 1000.0)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            path.join(" "),
            colour(imp)
        );
        for (px, py) in &pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{}"/>"#,
                colour(imp)
            );
        }
        legend(out, imp, x0 + j as f64 * 130.0, y1 + 56.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Machine;

    #[test]
    fn draws_both_panels() {
        let row = |s: &str, i: &str, k: u64, ops: f64, p50: f64| Row {
            scenario: s.into(),
            implementation: i.into(),
            concurrency: 16,
            keys: k,
            ops_per_sec: ops,
            p50_us: p50,
            p99_us: p50,
            ..Row::default()
        };
        let report = Report {
            machine: Machine {
                cpus: 2,
                os: "linux".into(),
                redis_version: "7.0".into(),
                nscache_version: "0",
                unix_time: 0,
                duration_secs: 1.0,
            },
            rows: vec![
                row("get-hit", "raw-redis", 0, 50_000.0, 300.0),
                row("get-hit", "nscache", 0, 45_000.0, 330.0),
                row("get-hit", "nscache-l1", 0, 900_000.0, 10.0),
                row("invalidate-user", "nscache", 100, 1000.0, 300.0),
                row("invalidate-user", "nscache", 1_000_000, 1000.0, 310.0),
                row("invalidate-user", "scan-del", 100, 500.0, 900.0),
                row("invalidate-user", "scan-del", 1_000_000, 0.2, 4_000_000.0),
            ],
        };
        let svg = svg(&report);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">get-hit<") && svg.contains("900000"));
    }
}
