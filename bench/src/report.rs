//! Results: one row per run, the ratios measured in the same benchmark run, a markdown table,
//! JSON, and an SVG plot.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::apiserver::Requests;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runner {
    /// ESO v0.16.2 with its default flags.
    EsoDefault,
    /// ESO v0.16.2 with `--concurrent=10 --client-qps=500 --client-burst=1000`.
    EsoTuned,
    /// esox release build, default flags.
    Esox,
    /// The raw writer: the API server's limit.
    Raw,
}

impl Runner {
    pub fn as_str(self) -> &'static str {
        match self {
            Runner::EsoDefault => "eso-default",
            Runner::EsoTuned => "eso-tuned",
            Runner::Esox => "esox",
            Runner::Raw => "raw",
        }
    }
}

impl std::fmt::Display for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    pub runner: Runner,
    pub raw_concurrency: Option<usize>,
    pub n: usize,
    pub keys: usize,
    pub refresh_interval: String,
    /// Scenario (b): the ExternalSecrets were applied while the controller ran.
    #[serde(default)]
    pub storm: bool,
    pub all_ready_s: f64,
    pub first_sync: (f64, f64),
    pub peak_rss_mib: f64,
    pub cpu_s: f64,
    pub api: Requests,
    pub backend_calls: Option<u64>,
    pub new_es: (f64, f64),
    /// How many new ExternalSecrets were timed, and whether the last one never became Ready.
    pub new_es_count: usize,
    pub new_es_timed_out: bool,
    pub restart_s: Option<f64>,
    pub restart_writes: Option<u64>,
}

impl RunResult {
    pub fn new(runner: Runner, raw_concurrency: Option<usize>, n: usize, keys: usize) -> Self {
        Self {
            runner,
            raw_concurrency,
            n,
            keys,
            refresh_interval: "1h".into(),
            storm: false,
            all_ready_s: 0.0,
            first_sync: (0.0, 0.0),
            peak_rss_mib: 0.0,
            cpu_s: 0.0,
            api: Requests::default(),
            backend_calls: None,
            new_es: (f64::NAN, f64::NAN),
            new_es_count: 0,
            new_es_timed_out: false,
            restart_s: None,
            restart_writes: None,
        }
    }

    pub fn label(&self) -> String {
        let base = match self.raw_concurrency {
            Some(c) => format!("raw x{c}"),
            None => self.runner.as_str().to_string(),
        };
        let base = if self.storm {
            format!("{base}, apply storm")
        } else {
            base
        };
        if self.refresh_interval == "1h" {
            base
        } else {
            format!("{base} (refresh {})", self.refresh_interval)
        }
    }

    pub fn es_per_s(&self) -> f64 {
        self.n as f64 / self.all_ready_s
    }

    pub fn summary(&self) -> String {
        format!(
            "{} N={}: all Ready in {:.1} s ({:.0} ES/s), peak RSS {:.0} MiB, CPU {:.1} s, {} API requests ({} writes)",
            self.label(),
            self.n,
            self.all_ready_s,
            self.es_per_s(),
            self.peak_rss_mib,
            self.cpu_s,
            self.api.total,
            self.api.writes
        )
    }
}

/// (p50, p99) of `values` (sorted in place), nearest rank; NaN when empty.
pub fn percentiles(values: &mut [f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let at =
        |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    (at(0.50), at(0.99))
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "–".into())
}

fn pair(p: (f64, f64)) -> String {
    if p.0.is_nan() {
        "–".into()
    } else {
        format!("{:.2} / {:.2}", p.0, p.1)
    }
}

fn new_es_cell(r: &RunResult) -> String {
    if r.new_es_timed_out {
        format!(
            "{} (#{} not Ready in {:.0} s)",
            pair(r.new_es),
            r.new_es_count,
            120.0 + r.all_ready_s
        )
    } else {
        pair(r.new_es)
    }
}

/// The best (fastest) raw-writer run for `n`.
fn best_raw<'a>(results: &'a [RunResult], n: usize, refresh: &str) -> Option<&'a RunResult> {
    results
        .iter()
        .filter(|r| r.n == n && r.refresh_interval == refresh && r.runner == Runner::Raw)
        .min_by(|a, b| a.all_ready_s.total_cmp(&b.all_ready_s))
}

fn find<'a>(
    results: &'a [RunResult],
    n: usize,
    refresh: &str,
    runner: Runner,
) -> Option<&'a RunResult> {
    results
        .iter()
        .find(|r| r.n == n && r.refresh_interval == refresh && r.runner == runner)
}

/// The markdown report: the runs, then per N the ratios of esox to the others.
pub fn markdown(results: &[RunResult]) -> String {
    let mut md = String::new();
    md.push_str("| runner | N | all Ready (s) | ES/s | first sync p50 / p99 (s) | peak RSS (MiB) | CPU (s) | API requests | API writes | backend calls | new ES p50 / p99 (s) | restart in sync: writes (s) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let restart = match (r.restart_writes, r.restart_s) {
            (Some(w), Some(s)) => format!("{w} ({s:.1})"),
            _ => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.0} | {} | {:.0} | {:.1} | {} | {} | {} | {} | {} |",
            r.label(),
            r.n,
            r.all_ready_s,
            r.es_per_s(),
            pair(r.first_sync),
            r.peak_rss_mib,
            r.cpu_s,
            r.api.total,
            r.api.writes,
            opt(r.backend_calls),
            new_es_cell(r),
            restart
        );
    }
    let mut groups: Vec<(usize, &str)> = results
        .iter()
        .map(|r| (r.n, r.refresh_interval.as_str()))
        .collect();
    groups.dedup();
    let mut ratios = String::new();
    for (n, refresh) in groups {
        let Some(esox) = find(results, n, refresh, Runner::Esox) else {
            continue;
        };
        let mut cells = Vec::new();
        for (runner, goal) in [(Runner::EsoDefault, "≥ 10×"), (Runner::EsoTuned, "≥ 3×")] {
            if let Some(other) = find(results, n, refresh, runner) {
                cells.push(format!(
                    "{:.1}× faster than {} (goal {goal}), {:.2}× its peak RSS",
                    other.all_ready_s / esox.all_ready_s,
                    runner.as_str(),
                    esox.peak_rss_mib / other.peak_rss_mib
                ));
            }
        }
        if let Some(raw) = best_raw(results, n, refresh) {
            cells.push(format!(
                "{:.2}× the raw writer's time ({}, goal ≤ 1.5×)",
                esox.all_ready_s / raw.all_ready_s,
                raw.label()
            ));
        }
        if let Some(calls) = esox.backend_calls {
            cells.push(format!(
                "{calls} backend calls for {} unique keys",
                esox.keys
            ));
        }
        let _ = writeln!(
            ratios,
            "- N = {n}, refreshInterval {refresh}: {}",
            cells.join("; ")
        );
    }
    if !ratios.is_empty() {
        md.push_str("\nMeasured in this run:\n");
        md.push_str(&ratios);
    }
    md
}

/// Writes `results.md`, `results.json` and `plot.svg` into `out`; returns the markdown.
pub fn write(out: &Path, results: &[RunResult]) -> anyhow::Result<String> {
    let md = markdown(results);
    std::fs::write(out.join("results.md"), &md)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(results)?,
    )?;
    plot(&out.join("plot.svg"), results)?;
    Ok(md)
}

fn color(runner: Runner) -> RGBColor {
    match runner {
        Runner::EsoDefault => RGBColor(0xd6, 0x27, 0x28),
        Runner::EsoTuned => RGBColor(0xff, 0x7f, 0x0e),
        Runner::Esox => RGBColor(0x1f, 0x77, 0xb4),
        Runner::Raw => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// Two panels of horizontal bars, one bar per run: seconds to all Ready, and peak RSS.
pub fn plot(path: &Path, results: &[RunResult]) -> anyhow::Result<()> {
    let rows = results.len().max(1);
    let height = 120 + 30 * rows as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    type Panel<'a, DB> = (
        &'a DrawingArea<DB, plotters::coord::Shift>,
        &'a str,
        fn(&RunResult) -> f64,
    );
    let panels: [Panel<'_, _>; 2] = [
        (&left, "seconds to all Ready", |r| r.all_ready_s),
        (&right, "peak RSS (MiB)", |r| r.peak_rss_mib),
    ];
    for (area, title, value) in panels {
        let max = results.iter().map(value).fold(1.0f64, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..max, 0f64..rows as f64)?;
        let labels: Vec<String> = results
            .iter()
            .map(|r| format!("{} N={}", r.label(), r.n))
            .collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(2 * rows + 1)
            .y_label_formatter(&|y| {
                let i = (rows as f64 - y - 0.5).round();
                if i >= 0.0 && (i as usize) < labels.len() && (y.fract() - 0.5).abs() < 0.01 {
                    labels[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .draw()?;
        chart.draw_series(results.iter().enumerate().map(|(i, r)| {
            let top = rows as f64 - i as f64 - 0.15;
            let bottom = rows as f64 - i as f64 - 0.85;
            Rectangle::new([(0.0, bottom), (value(r), top)], color(r.runner).filled())
        }))?;
        chart.draw_series(results.iter().enumerate().map(|(i, r)| {
            Text::new(
                format!("{:.1}", value(r)),
                (value(r), rows as f64 - i as f64 - 0.4),
                ("sans-serif", 11),
            )
        }))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(runner: Runner, n: usize, secs: f64, rss: f64) -> RunResult {
        let mut r = RunResult::new(runner, (runner == Runner::Raw).then_some(16), n, n / 10);
        r.all_ready_s = secs;
        r.peak_rss_mib = rss;
        r
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(&mut v), (50.0, 99.0));
        assert!(percentiles(&mut []).0.is_nan());
    }

    #[test]
    fn ratios_are_computed_from_the_same_run() {
        let results = vec![
            run(Runner::EsoDefault, 1000, 100.0, 140.0),
            run(Runner::EsoTuned, 1000, 10.0, 150.0),
            run(Runner::Esox, 1000, 5.0, 35.0),
            run(Runner::Raw, 1000, 4.0, 20.0),
        ];
        let md = markdown(&results);
        assert!(md.contains("20.0× faster than eso-default"), "{md}");
        assert!(md.contains("2.0× faster than eso-tuned"), "{md}");
        assert!(md.contains("0.25× its peak RSS"), "{md}");
        assert!(md.contains("1.25× the raw writer's time (raw x16"), "{md}");
        let dir = std::env::temp_dir().join(format!("esox-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, &results).unwrap();
        let svg = std::fs::read_to_string(dir.join("plot.svg")).unwrap();
        assert!(
            svg.contains("<rect") && svg.contains("esox N=1000"),
            "the plot has bars and labels"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
