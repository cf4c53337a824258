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

/// The backend the one SecretStore reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// ESO's `fake` provider: the values are in the SecretStore's spec.
    #[default]
    Fake,
    /// ESO's `aws` provider (Secrets Manager) against the stack's LocalStack.
    Aws,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Fake => "fake",
            Provider::Aws => "aws",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scenario (d), rotation: every remote value changed once all were Ready; per ExternalSecret,
/// seconds from the change of its key until a watch saw its Secret hold the new value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
    /// ExternalSecrets whose Secret held the new value within `timeout_s`, of `total`.
    pub rotated: usize,
    pub total: usize,
    pub timeout_s: f64,
    /// How long making the change took (fake: one apply of the store; aws: one
    /// PutSecretValue per key).
    pub change_s: f64,
    /// When the change started, in seconds after all N were first Ready (the latency is
    /// mostly the wait for each ExternalSecret's next refresh, so this phase matters).
    pub changed_after_ready_s: f64,
    /// Backend calls from the change until the last Secret held the new value (or the timeout).
    pub backend_calls: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    pub runner: Runner,
    pub raw_concurrency: Option<usize>,
    pub n: usize,
    pub keys: usize,
    pub provider: Provider,
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
    /// Scenario (d); `None` when not asked for (`--rotation`) and for the raw writer.
    pub rotation: Option<Rotation>,
}

impl RunResult {
    pub fn new(runner: Runner, raw_concurrency: Option<usize>, n: usize, keys: usize) -> Self {
        Self {
            runner,
            raw_concurrency,
            n,
            keys,
            provider: Provider::Fake,
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
            rotation: None,
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
        let mut line = format!(
            "{} N={} ({} provider): all Ready in {:.1} s ({:.0} ES/s), peak RSS {:.0} MiB, CPU {:.1} s, {} API requests ({} writes)",
            self.label(),
            self.n,
            self.provider,
            self.all_ready_s,
            self.es_per_s(),
            self.peak_rss_mib,
            self.cpu_s,
            self.api.total,
            self.api.writes
        );
        if let Some(rotation) = &self.rotation {
            let _ = write!(
                line,
                "; rotation p50 / p99 / max {}, {}",
                rotation_cell(rotation),
                rotated_cell(rotation)
            );
        }
        line
    }
}

/// (p50, p99, max) of `values` (sorted in place), nearest rank; NaN when empty.
pub fn percentiles_max(values: &mut [f64]) -> (f64, f64, f64) {
    let (p50, p99) = percentiles(values);
    (p50, p99, values.last().copied().unwrap_or(f64::NAN))
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

fn rotation_cell(r: &Rotation) -> String {
    if r.p50_s.is_nan() {
        "–".into()
    } else {
        format!("{:.1} / {:.1} / {:.1}", r.p50_s, r.p99_s, r.max_s)
    }
}

fn rotated_cell(r: &Rotation) -> String {
    format!("{} of {} in {:.0} s", r.rotated, r.total, r.timeout_s)
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
fn best_raw<'a>(results: &'a [RunResult], group: Group<'_>) -> Option<&'a RunResult> {
    results
        .iter()
        .filter(|r| r.group() == group && r.runner == Runner::Raw)
        .min_by(|a, b| a.all_ready_s.total_cmp(&b.all_ready_s))
}

/// Runs that are compared with each other: same N, refresh interval and provider.
type Group<'a> = (usize, &'a str, Provider);

impl RunResult {
    fn group(&self) -> Group<'_> {
        (self.n, self.refresh_interval.as_str(), self.provider)
    }
}

fn find<'a>(results: &'a [RunResult], group: Group<'_>, runner: Runner) -> Option<&'a RunResult> {
    results
        .iter()
        .find(|r| r.group() == group && r.runner == runner)
}

/// The markdown report: the runs, then per N the ratios of esox to the others. The rotation
/// columns appear when a run measured rotation (`--rotation`).
pub fn markdown(results: &[RunResult]) -> String {
    let mut md = String::new();
    let rotation = results.iter().any(|r| r.rotation.is_some());
    md.push_str("| runner | provider | N | all Ready (s) | ES/s | first sync p50 / p99 (s) | peak RSS (MiB) | CPU (s) | API requests | API writes | backend calls | new ES p50 / p99 (s) | restart in sync: writes (s) |");
    if rotation {
        md.push_str(" rotation p50 / p99 / max (s) | rotated | rotation backend calls |");
    }
    md.push_str("\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    if rotation {
        md.push_str("---:|---:|---:|");
    }
    md.push('\n');
    for r in results {
        let restart = match (r.restart_writes, r.restart_s) {
            (Some(w), Some(s)) => format!("{w} ({s:.1})"),
            _ => "–".into(),
        };
        let _ = write!(
            md,
            "| {} | {} | {} | {:.1} | {:.0} | {} | {:.0} | {:.1} | {} | {} | {} | {} | {} |",
            r.label(),
            r.provider,
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
        if rotation {
            match &r.rotation {
                Some(rot) => {
                    let _ = write!(
                        md,
                        " {} | {} | {} |",
                        rotation_cell(rot),
                        rotated_cell(rot),
                        opt(rot.backend_calls)
                    );
                }
                None => md.push_str(" – | – | – |"),
            }
        }
        md.push('\n');
    }
    let mut groups: Vec<Group<'_>> = results.iter().map(RunResult::group).collect();
    groups.dedup();
    let mut ratios = String::new();
    for group in groups {
        let (n, refresh, provider) = group;
        let Some(esox) = find(results, group, Runner::Esox) else {
            continue;
        };
        let mut cells = Vec::new();
        for (runner, goal) in [(Runner::EsoDefault, "≥ 10×"), (Runner::EsoTuned, "≥ 3×")] {
            if let Some(other) = find(results, group, runner) {
                cells.push(format!(
                    "{:.1}× faster than {} (goal {goal}), {:.2}× its peak RSS",
                    other.all_ready_s / esox.all_ready_s,
                    runner.as_str(),
                    esox.peak_rss_mib / other.peak_rss_mib
                ));
            }
        }
        if let Some(raw) = best_raw(results, group) {
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
            "- N = {n}, refreshInterval {refresh}, {provider} provider: {}",
            cells.join("; ")
        );
    }
    if !ratios.is_empty() {
        md.push_str("\nMeasured in this run:\n");
        md.push_str(&ratios);
    }
    if rotation {
        md.push_str(
            "\nRotation: once all N were Ready, every remote value changed (aws: one \
             PutSecretValue per key in LocalStack; fake: one apply of the SecretStore with new \
             data); per ExternalSecret, the seconds from its key's change until a watch saw its \
             Secret hold the new value. It waits for each ExternalSecret's next refresh, so it is \
             only meaningful with a short refreshInterval, and it depends on when the change \
             came in the refresh cycle (`changed_after_ready_s` in results.json). \"rotated\" \
             counts the N that made it within the timeout; rotation backend calls are those \
             from the change until then.\n",
        );
        if results
            .iter()
            .any(|r| r.rotation.is_some() && r.provider == Provider::Fake)
        {
            md.push_str(
                "\n**Caveat (fake provider):** the change is an edit of the SecretStore itself. \
                 esox watches stores and wakes every ExternalSecret of a changed store, ESO does \
                 not; both then sync only when the refresh is due, but a controller that synced \
                 on store changes would look faster here than with a real backend, whose values \
                 change without the store changing. Use `--provider aws` for rotation.\n",
            );
        }
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

    #[test]
    fn rotation_columns_and_the_fake_provider_caveat() {
        let plain = markdown(&[run(Runner::Esox, 1000, 5.0, 35.0)]);
        assert!(!plain.contains("rotation p50"), "{plain}");
        assert!(plain.contains("| esox | fake | 1000 |"), "{plain}");

        let mut esox = run(Runner::Esox, 1000, 5.0, 35.0);
        esox.provider = Provider::Aws;
        esox.backend_calls = Some(102);
        let mut latencies: Vec<f64> = (1..=100).map(f64::from).collect();
        let (p50_s, p99_s, max_s) = percentiles_max(&mut latencies);
        assert_eq!((p50_s, p99_s, max_s), (50.0, 99.0, 100.0));
        esox.rotation = Some(Rotation {
            p50_s,
            p99_s,
            max_s,
            rotated: 1000,
            total: 1000,
            timeout_s: 185.0,
            change_s: 0.5,
            changed_after_ready_s: 2.0,
            backend_calls: Some(100),
        });
        let mut raw = run(Runner::Raw, 1000, 4.0, 20.0);
        raw.provider = Provider::Aws;
        let md = markdown(&[esox.clone(), raw]);
        assert!(
            md.contains("| 50.0 / 99.0 / 100.0 | 1000 of 1000 in 185 s | 100 |"),
            "{md}"
        );
        assert!(md.contains("| raw x16 | aws | 1000 |"), "{md}");
        assert!(
            md.contains("– | – | – |"),
            "the raw writer has no rotation: {md}"
        );
        assert!(md.contains("aws provider: 1.25× the raw writer"), "{md}");
        assert!(!md.contains("Caveat"), "{md}");

        esox.provider = Provider::Fake;
        assert!(markdown(&[esox]).contains("Caveat (fake provider)"));
    }
}
