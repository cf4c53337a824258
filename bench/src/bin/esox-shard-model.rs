//! `esox-shard-model`: what one replica, and S sharded replicas, would take for N
//! ExternalSecrets, from the costs one benchmark run measured (`esox-bench`'s results.json).
//!
//! A first-order model, not a measurement: it says which bound binds first. From the run it
//! takes, per ExternalSecret, esox's API writes, CPU seconds and resident memory above the
//! idle process, and the API server's write rate from the raw writer's best run (the floor:
//! the API server's limit on the benchmark's machine). With S replicas sharded by a hash of
//! namespace/name (docs/benchmark.md, "Past one machine"):
//! - API writes do not divide: every replica writes to the same API server;
//! - CPU divides, except the share spent decoding watch events, which every replica pays for
//!   every ExternalSecret (the API has no hash selector; `--watch-share`, an assumption);
//! - memory divides (objects outside a replica's shards are dropped before its cache), above
//!   the idle process each replica has;
//! - backend calls per refresh wave divide per replica, not per account: a rate limit per
//!   account or region is shared by all replicas.
//!
//! `cargo run -p esox-bench --bin esox-shard-model -- --from <results.json> --n 100000`

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "esox-shard-model",
    about = "One replica vs S sharded replicas, from one esox-bench run's measured costs"
)]
struct Args {
    /// An esox-bench results.json with an `esox` run and at least one `raw` run.
    #[arg(long)]
    from: PathBuf,
    /// ExternalSecrets to model (repeat or comma-separate).
    #[arg(long = "n", value_delimiter = ',', default_values_t = [10_000usize, 100_000])]
    ns: Vec<usize>,
    /// Replicas to model.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 4, 8])]
    replicas: Vec<usize>,
    /// Resident memory of an idle esox (no ExternalSecrets), MiB: what every replica has.
    /// Default: fitted through the esox runs at two N when the results have them, else 40.
    #[arg(long)]
    idle_mib: Option<f64>,
    /// Share of esox's CPU per ExternalSecret spent decoding its watch events, which every
    /// replica pays (an assumption; 0 to 1).
    #[arg(long, default_value_t = 0.2)]
    watch_share: f64,
    /// Cores each replica has to itself.
    #[arg(long, default_value_t = 1.0)]
    cores: f64,
}

/// Costs per ExternalSecret, from one run.
#[derive(Debug, Clone, PartialEq)]
struct Costs {
    /// The run's N.
    n: usize,
    writes_per_es: f64,
    cpu_s_per_es: f64,
    mib_per_es: f64,
    /// The API server's writes per second, from the raw writer's best run.
    api_writes_per_s: f64,
    /// Backend calls per ExternalSecret in a refresh wave (unique keys / N with coalescing).
    calls_per_es: f64,
}

/// What S replicas take for N ExternalSecrets at start-up.
#[derive(Debug, Clone, PartialEq)]
struct Prediction {
    replicas: usize,
    /// Seconds the API server needs for the writes (all replicas together).
    api_s: f64,
    /// Seconds each replica needs for its CPU work.
    cpu_s: f64,
    /// Peak resident memory per replica, MiB.
    mib_per_replica: f64,
    /// Backend calls per refresh wave, per replica.
    calls_per_replica: f64,
}

impl Prediction {
    /// The start-up time: the slower of the two bounds.
    fn seconds(&self) -> f64 {
        self.api_s.max(self.cpu_s)
    }

    fn bound(&self) -> &'static str {
        if self.api_s >= self.cpu_s {
            "API server writes"
        } else {
            "replica CPU"
        }
    }
}

fn field(run: &serde_json::Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(run, |v, k| v.get(k))?.as_f64()
}

/// The idle process's resident memory, from the line through esox's peak RSS at the smallest
/// and the largest N of the results (`None` with fewer than two N).
fn fitted_idle_mib(results: &serde_json::Value) -> Option<f64> {
    let mut points: Vec<(f64, f64)> = results
        .as_array()?
        .iter()
        .filter(|r| r["runner"] == "esox")
        .filter_map(|r| Some((field(r, &["n"])?, field(r, &["peak_rss_mib"])?)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (&(n1, m1), &(n2, m2)) = (points.first()?, points.last()?);
    if n2 <= n1 {
        return None;
    }
    Some((m1 - (m2 - m1) / (n2 - n1) * n1).max(0.0))
}

/// The costs of the esox run at the largest N.
fn costs(results: &serde_json::Value, idle_mib: f64) -> anyhow::Result<Costs> {
    let runs = results
        .as_array()
        .context("results.json is not a list of runs")?;
    let esox = runs
        .iter()
        .filter(|r| r["runner"] == "esox")
        .max_by(|a, b| {
            let n = |r: &serde_json::Value| field(r, &["n"]).unwrap_or(0.0);
            n(a).total_cmp(&n(b))
        })
        .context("no esox run in results.json")?;
    let n = field(esox, &["n"]).context("the esox run has no n")?;
    // The floor is the raw writer's best rate.
    let api_writes_per_s = runs
        .iter()
        .filter(|r| r["runner"] == "raw")
        .filter_map(|r| Some(field(r, &["api", "writes"])? / field(r, &["all_ready_s"])?))
        .fold(None, |best: Option<f64>, rate| {
            Some(best.map_or(rate, |b| b.max(rate)))
        })
        .context("no raw writer run in results.json")?;
    let peak = field(esox, &["peak_rss_mib"]).context("no peak_rss_mib")?;
    Ok(Costs {
        n: n as usize,
        writes_per_es: field(esox, &["api", "writes"]).context("no api.writes")? / n,
        cpu_s_per_es: field(esox, &["cpu_s"]).context("no cpu_s")? / n,
        mib_per_es: ((peak - idle_mib) / n).max(0.0),
        api_writes_per_s,
        calls_per_es: field(esox, &["backend_calls"]).unwrap_or(0.0) / n,
    })
}

fn predict(
    costs: &Costs,
    n: usize,
    replicas: usize,
    idle_mib: f64,
    watch_share: f64,
    cores: f64,
) -> Prediction {
    let n = n as f64;
    let s = replicas.max(1) as f64;
    let watch_share = watch_share.clamp(0.0, 1.0);
    let cpu_per_replica = n * costs.cpu_s_per_es * (watch_share + (1.0 - watch_share) / s);
    Prediction {
        replicas,
        api_s: n * costs.writes_per_es / costs.api_writes_per_s,
        cpu_s: cpu_per_replica / cores.max(0.01),
        mib_per_replica: idle_mib + n * costs.mib_per_es / s,
        calls_per_replica: n * costs.calls_per_es / s,
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.from)
        .with_context(|| format!("read {}", args.from.display()))?;
    let results: serde_json::Value = serde_json::from_str(&text)?;
    let (idle_mib, idle_from) = match (args.idle_mib, fitted_idle_mib(&results)) {
        (Some(m), _) => (m, "--idle-mib"),
        (None, Some(m)) => (m, "fitted through the esox runs at two N"),
        (None, None) => (40.0, "default; pass --idle-mib or results at two N"),
    };
    let c = costs(&results, idle_mib)?;
    println!(
        "measured at N = {}: {:.2} API writes, {:.2} ms CPU, {:.1} KiB above an idle {:.0} MiB ({idle_from}), {:.3} backend calls per ExternalSecret; the API server took {:.0} writes/s (raw writer)",
        c.n,
        c.writes_per_es,
        c.cpu_s_per_es * 1000.0,
        c.mib_per_es * 1024.0,
        idle_mib,
        c.calls_per_es,
        c.api_writes_per_s
    );
    println!(
        "assumed: {:.0} % of the CPU per ExternalSecret is watch decoding every replica pays; {} core(s) per replica; the API server as fast as on the measured machine\n",
        args.watch_share * 100.0,
        args.cores
    );
    println!(
        "| N | replicas | API server writes (s) | CPU per replica (s) | start-up (s) | bound | peak RSS per replica (MiB) | backend calls per wave per replica |"
    );
    println!("|---:|---:|---:|---:|---:|---|---:|---:|");
    for &n in &args.ns {
        for &s in &args.replicas {
            let p = predict(&c, n, s, idle_mib, args.watch_share, args.cores);
            println!(
                "| {n} | {s} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {:.0} |",
                p.api_s,
                p.cpu_s,
                p.seconds(),
                p.bound(),
                p.mib_per_replica,
                p.calls_per_replica
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> serde_json::Value {
        serde_json::json!([
            {"runner": "esox", "n": 10000, "all_ready_s": 45.0, "cpu_s": 20.0,
             "peak_rss_mib": 140.0, "api": {"writes": 20000}, "backend_calls": 1000},
            {"runner": "raw", "n": 10000, "all_ready_s": 40.0, "api": {"writes": 20000}},
            {"runner": "raw", "n": 10000, "all_ready_s": 25.0, "api": {"writes": 20000}},
            {"runner": "eso-tuned", "n": 10000, "all_ready_s": 110.0, "cpu_s": 60.0,
             "peak_rss_mib": 400.0, "api": {"writes": 30000}}
        ])
    }

    #[test]
    fn costs_come_from_the_esox_run_and_the_best_raw_run() {
        let c = costs(&results(), 40.0).unwrap();
        assert_eq!(c.n, 10_000);
        assert_eq!(c.writes_per_es, 2.0);
        assert_eq!(c.cpu_s_per_es, 0.002);
        assert_eq!(c.mib_per_es, 0.01);
        assert_eq!(c.api_writes_per_s, 800.0);
        assert_eq!(c.calls_per_es, 0.1);
    }

    #[test]
    fn replicas_divide_cpu_memory_and_calls_but_not_api_writes() {
        let c = costs(&results(), 40.0).unwrap();
        let one = predict(&c, 100_000, 1, 40.0, 0.2, 1.0);
        let four = predict(&c, 100_000, 4, 40.0, 0.2, 1.0);
        assert_eq!(one.api_s, 250.0);
        assert_eq!(four.api_s, one.api_s, "one API server for all replicas");
        assert_eq!(one.cpu_s, 200.0);
        // 20 % watch decoding on every replica, the rest divided by 4.
        assert!((four.cpu_s - (40.0 + 160.0 / 4.0)).abs() < 1e-9);
        assert_eq!(one.mib_per_replica, 1040.0);
        assert_eq!(four.mib_per_replica, 290.0);
        assert_eq!(four.calls_per_replica, 2500.0);
        assert_eq!(one.bound(), "API server writes");
        assert_eq!(four.seconds(), 250.0);
    }

    #[test]
    fn the_idle_memory_is_fitted_through_two_n() {
        assert_eq!(fitted_idle_mib(&results()), None, "one N only");
        let mut two = results();
        two.as_array_mut().unwrap().push(serde_json::json!(
            {"runner": "esox", "n": 1000, "peak_rss_mib": 50.0, "cpu_s": 2.0, "api": {"writes": 2000}}
        ));
        // 50 MiB at 1,000 and 140 at 10,000: 10 KiB each above 40.
        assert!((fitted_idle_mib(&two).unwrap() - 40.0).abs() < 1e-9);
        assert_eq!(
            costs(&two, 40.0).unwrap().n,
            10_000,
            "the largest N's costs"
        );
    }

    #[test]
    fn a_run_without_the_raw_writer_cannot_be_modelled() {
        let only_esox = serde_json::json!([results()[0].clone()]);
        let err = costs(&only_esox, 40.0).unwrap_err().to_string();
        assert!(err.contains("raw"), "{err}");
    }
}
