//! `esox-bench`: esox side by side with ESO v0.16.2 (default and tuned flags) and with a raw
//! writer, each on a fresh local stack (etcd + kube-apiserver + kube-controller-manager +
//! LocalStack from the e2e harness), with the same manifests.
//!
//! Per runner and N, one run measures:
//! - **start-up**: N ExternalSecrets (2 properties each, N/10 remote keys of one SecretStore:
//!   ESO's `fake` provider, or with `--provider aws` Secrets Manager on the stack's LocalStack)
//!   exist before the controller starts; seconds from its start until a watch sees all N Ready,
//!   ES/s, time-to-first-sync p50/p99, peak RSS (VmHWM), CPU seconds, API server requests and
//!   writes (from its `/metrics`), backend calls (esox's `esox_plugin_calls_total`, ESO's
//!   `externalsecret_provider_api_calls_count`; ESO's fake provider counts none);
//! - **new ExternalSecret after the backlog**: `--new` more, one at a time, time to Ready each;
//! - **rotation** (`--rotation`): every remote value changes; per ExternalSecret, the time until
//!   its Secret holds the new value (p50/p99/max, and how many within the timeout);
//! - **restart in sync**: the controller restarted with everything already synced; API server
//!   writes until it has looked at every ExternalSecret (the goal: none).
//!
//! Results go to `<out>/results.md`, `results.json` and `plot.svg`. See `docs/benchmark.md`.

mod apiserver;
mod procstat;
mod report;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use esox_e2e::{Backend, ManagedProcess, Stack, prereqs};

use crate::report::{Provider, Rotation, RunResult, Runner};
use crate::workload::{ReadyWatch, ValueWatch, Workload};

#[derive(Parser, Clone)]
#[command(
    name = "esox-bench",
    about = "esox vs ESO v0.16.2 vs a raw writer on fresh local stacks"
)]
struct Args {
    /// Numbers of ExternalSecrets, one full set of runs each.
    #[arg(long = "n", value_delimiter = ',', default_values_t = [1000usize])]
    ns: Vec<usize>,
    /// Runners, in order: eso-default, eso-tuned, esox, raw.
    #[arg(long, value_delimiter = ',', default_values_t = [Runner::EsoDefault, Runner::EsoTuned, Runner::Esox, Runner::Raw])]
    runners: Vec<Runner>,
    /// The esox binary (a release build; `cargo xtask bench` builds and passes it).
    #[arg(long)]
    esox: PathBuf,
    /// Extra arguments for `esox run` (repeat the flag), e.g. `--esox-arg=--coalesce-window=0`.
    #[arg(long = "esox-arg", allow_hyphen_values = true)]
    esox_args: Vec<String>,
    /// The raw writer binary (built beside esox-bench by default).
    #[arg(long)]
    raw_writer: Option<PathBuf>,
    /// Writes in flight for the raw writer; each value is one run, the best is the floor.
    #[arg(long, value_delimiter = ',', default_values_t = [16usize, 64])]
    raw_concurrency: Vec<usize>,
    /// The ExternalSecrets' `refreshInterval` (Go duration). Short (e.g. `1m`) keeps refresh
    /// waves running while the new ExternalSecrets are timed: scenario (c), new ExternalSecret
    /// latency under load.
    #[arg(long, default_value = "1h")]
    refresh_interval: String,
    /// New ExternalSecrets applied one at a time after the backlog is Ready.
    #[arg(long, default_value_t = 20)]
    new: usize,
    /// Seconds between the start of one new ExternalSecret and the next (0: back to back).
    /// Spread over a refresh interval (e.g. `--new 20 --new-every 5` with
    /// `--refresh-interval 1m`), they are timed while the N refresh: scenario (c).
    #[arg(long, default_value_t = 0.0)]
    new_every: f64,
    /// Seconds to wait once all are Ready, before the next measurement (time to attach a
    /// profiler or read allocator statistics; the pid is printed).
    #[arg(long, default_value_t = 0)]
    pause_after_ready: u64,
    /// Scenario (b), an apply storm: the controller is started first and the N ExternalSecrets
    /// are applied while it runs; the clock starts when applying starts. The raw writer, which
    /// has no watch, runs as at start-up (its time is still the floor).
    #[arg(long)]
    storm: bool,
    /// The SecretStore's provider: `fake` (values in the store's spec) or `aws` (Secrets Manager
    /// on the stack's LocalStack: N/10 secrets, one store with `auth.secretRef`; esox gets
    /// `--plugin-setting aws:endpoint=`, ESO `AWS_SECRETSMANAGER_ENDPOINT`/`AWS_STS_ENDPOINT`).
    #[arg(long, value_enum, default_value_t = Provider::Fake)]
    provider: Provider,
    /// Scenario (d), rotation: once all are Ready (and the new ones timed), every remote value
    /// changes (aws: PutSecretValue per key; fake: the store's data) and each Secret is timed
    /// until it holds the new value. Rotation waits for the refresh: use a short
    /// `--refresh-interval` (e.g. `1m`). With the fake provider the change is an edit of the
    /// store, which wakes esox's ExternalSecrets of that store and not ESO's (both then sync
    /// when the refresh is due): prefer `--provider aws`.
    #[arg(long)]
    rotation: bool,
    /// Seconds to wait for every Secret to hold its rotated value (default: twice the refresh
    /// interval + 60 s + the run's time to all Ready).
    #[arg(long)]
    rotation_timeout: Option<u64>,
    /// Results folder (default: <target>/bench/<UTC time>).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.rotation {
        let refresh = go_duration(&args.refresh_interval).with_context(|| {
            format!(
                "--refresh-interval {} is not a Go duration",
                args.refresh_interval
            )
        })?;
        if refresh > Duration::from_secs(300) && args.rotation_timeout.is_none() {
            eprintln!(
                "[bench] warning: --rotation with refreshInterval {}: a rotation waits for the \
                 refresh; use e.g. --refresh-interval 1m",
                args.refresh_interval
            );
        }
        if args.provider == Provider::Fake {
            eprintln!(
                "[bench] note: rotation with the fake provider edits the SecretStore, which \
                 wakes every ExternalSecret of the store in esox and none in ESO (both sync when \
                 the refresh is due). Prefer --provider aws to compare rotation."
            );
        }
    }
    let out = args.out.clone().unwrap_or_else(default_out);
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let eso = if args
        .runners
        .iter()
        .any(|r| matches!(r, Runner::EsoDefault | Runner::EsoTuned))
    {
        let started = Instant::now();
        let binary = prereqs::ensure_eso()?;
        eprintln!(
            "[bench] ESO {} ready in {:.0} s: {}",
            prereqs::ESO_VERSION,
            started.elapsed().as_secs_f64(),
            binary.display()
        );
        Some(binary)
    } else {
        None
    };
    let raw_writer = args.raw_writer.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("esox-raw-writer")))
            .unwrap_or_else(|| PathBuf::from("esox-raw-writer"))
    });
    let mut results = Vec::new();
    let bench_started = Instant::now();
    for &n in &args.ns {
        for runner in &args.runners {
            let concurrencies: Vec<Option<usize>> = if *runner == Runner::Raw {
                args.raw_concurrency.iter().map(|c| Some(*c)).collect()
            } else {
                vec![None]
            };
            for concurrency in concurrencies {
                let label = match concurrency {
                    Some(c) => format!("{} x{c}", runner.as_str()),
                    None => runner.as_str().to_string(),
                };
                eprintln!(
                    "[bench] {label}, N = {n}: fresh stack ({:.0} s into the benchmark)",
                    bench_started.elapsed().as_secs_f64()
                );
                let dir = out
                    .join("runs")
                    .join(format!("{}-{n}", label.replace(' ', "")));
                let result = run_one(
                    &args,
                    *runner,
                    concurrency,
                    n,
                    &dir,
                    eso.as_deref(),
                    &raw_writer,
                )
                .await
                .with_context(|| format!("{label} at N = {n}"))?;
                // The stack's data (etcd, LocalStack) is tens of MB per run; its logs stay.
                for data in ["etcd", "localstack"] {
                    let _ = std::fs::remove_dir_all(dir.join(data));
                }
                eprintln!("[bench] {}", result.summary());
                results.push(result);
                // Keep partial results if a later run fails.
                report::write(&out, &results)?;
            }
        }
    }
    let table = report::write(&out, &results)?;
    println!("{table}");
    println!(
        "results: {} (markdown, JSON, SVG plot); the benchmark took {:.0} s",
        out.display(),
        bench_started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn default_out() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let stamp = k8s_openapi::jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    target.join("bench").join(stamp.to_string())
}

/// The repo's CRDs (`crds/`, checked for drift against the generator in CI).
fn esox_crds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("crds")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A Go duration (`1h`, `1m30s`, `90s`, `500ms`) as ESO's `refreshInterval` takes it.
fn go_duration(text: &str) -> Option<Duration> {
    esox_api::duration::parse_go_duration(text).ok()
}

/// How to start one controller under test; `None` for the raw writer.
fn controller_command(
    runner: Runner,
    stack: &Stack,
    args: &Args,
    eso: Option<&Path>,
    metrics_port: u16,
) -> anyhow::Result<std::process::Command> {
    let metrics = format!("127.0.0.1:{metrics_port}");
    Ok(match runner {
        Runner::Esox => {
            let mut cmd = std::process::Command::new(&args.esox);
            cmd.args([
                "--log-format",
                "json",
                "--log",
                "info",
                "run",
                "--kubeconfig",
            ])
            .arg(stack.controller_kubeconfig_path())
            .args(["--metrics-addr", &metrics])
            .args(["--live-addr", &format!("127.0.0.1:{}", free_port()?)]);
            if args.provider == Provider::Aws {
                // As the e2e suites do: the endpoint (and its egress grant) on the controller.
                cmd.arg("--plugin-setting")
                    .arg(format!("aws:endpoint={}", stack.localstack_endpoint()));
            }
            cmd.args(&args.esox_args);
            cmd
        }
        Runner::EsoDefault | Runner::EsoTuned => {
            let mut cmd = std::process::Command::new(eso.context("ESO was not built")?);
            cmd.env("KUBECONFIG", stack.admin_kubeconfig_path())
                .args(["--metrics-addr", &metrics]);
            if runner == Runner::EsoTuned {
                cmd.args(["--concurrent=10", "--client-qps=500", "--client-burst=1000"]);
            }
            if args.provider == Provider::Aws {
                // ESO v0.16.2's AWS provider (aws-sdk-go v1) reads these for custom endpoints
                // (pkg/provider/aws/auth/resolver.go).
                let endpoint = stack.localstack_endpoint();
                cmd.env("AWS_SECRETSMANAGER_ENDPOINT", endpoint)
                    .env("AWS_STS_ENDPOINT", endpoint)
                    .env("AWS_SSM_ENDPOINT", endpoint);
            }
            cmd
        }
        Runner::Raw => anyhow::bail!("the raw writer is not a controller"),
    })
}

async fn run_one(
    args: &Args,
    runner: Runner,
    raw_concurrency: Option<usize>,
    n: usize,
    dir: &Path,
    eso: Option<&Path>,
    raw_writer: &Path,
) -> anyhow::Result<RunResult> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let stack = Stack::start(Backend::Local, dir).await?;
    let client = stack.admin_client();
    let crds = match runner {
        Runner::EsoDefault | Runner::EsoTuned => {
            prereqs::eso_crds_dir(eso.context("ESO was not built")?)
        }
        Runner::Esox | Runner::Raw => esox_crds(),
    };
    stack.install_crds(&crds).await?;
    let namespace = workload::NAMESPACE;
    workload::create_namespace(&client).await?;
    let keys = (n / 10).max(1);
    let workload = Workload {
        keys,
        refresh: args.refresh_interval.clone(),
        provider: args.provider,
    };
    let seeded = Instant::now();
    workload.create_store(&stack).await?;
    if args.provider == Provider::Aws {
        eprintln!(
            "[bench]   {keys} secrets created in LocalStack in {:.1} s",
            seeded.elapsed().as_secs_f64()
        );
    }
    let storm = args.storm && runner != Runner::Raw;
    if !storm {
        let applied = Instant::now();
        workload.apply_external_secrets(&client, 0..n).await?;
        eprintln!(
            "[bench]   {n} ExternalSecrets applied in {:.1} s; starting the {}",
            applied.elapsed().as_secs_f64(),
            if runner == Runner::Raw {
                "raw writer"
            } else {
                "controller"
            }
        );
    }

    let watch = ReadyWatch::start(client.clone(), namespace).await?;
    let api_before = apiserver::scrape(&client).await?;
    let timeout = Duration::from_secs(120) + Duration::from_millis(200 * n as u64);
    let started = Instant::now();
    let mut result = RunResult::new(runner, raw_concurrency, n, keys);
    result.provider = args.provider;
    result.refresh_interval = args.refresh_interval.clone();
    result.storm = storm;

    if runner == Runner::Raw {
        let mut cmd = tokio::process::Command::new(raw_writer);
        cmd.arg("--kubeconfig")
            .arg(stack.admin_kubeconfig_path())
            .args(["--namespace", namespace])
            .args(["--store", workload.store()])
            .args(["--concurrency", &raw_concurrency.unwrap_or(32).to_string()]);
        if args.provider == Provider::Aws {
            cmd.args(["--aws-endpoint", stack.localstack_endpoint()]);
        }
        let output = cmd
            .output()
            .await
            .with_context(|| format!("run {}", raw_writer.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "the raw writer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        watch.wait_for(n, started, timeout).await?;
        result.all_ready_s = started.elapsed().as_secs_f64();
        result.peak_rss_mib = report["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0;
        result.cpu_s = report["cpu_seconds"].as_f64().unwrap_or(0.0);
        result.backend_calls = report["backend_calls"].as_u64();
        let api_after = apiserver::scrape(&client).await?;
        result.api = api_after.since(&api_before);
        result.first_sync = watch.first_sync_percentiles(started);
        return Ok(result);
    }

    let metrics_port = free_port()?;
    let cmd = controller_command(runner, &stack, args, eso, metrics_port)?;
    eprintln!("[bench]   {cmd:?}");
    let mut controller = ManagedProcess::spawn(runner.as_str(), cmd)?;
    let pid = controller.pid().context("the controller has no pid")?;
    if storm {
        // The storm: every ExternalSecret applied while the controller runs.
        workload.apply_external_secrets(&client, 0..n).await?;
        eprintln!(
            "[bench]   {n} ExternalSecrets applied in {:.1} s while the controller runs",
            started.elapsed().as_secs_f64()
        );
    }
    if let Err(e) = watch.wait_for(n, started, timeout).await {
        eprintln!("{}", controller.log_tail(4000));
        return Err(e);
    }
    result.all_ready_s = started.elapsed().as_secs_f64();
    result.first_sync = watch.first_sync_percentiles(started);
    let usage = procstat::read(pid)?;
    result.cpu_s = usage.cpu_seconds;
    let api_after = apiserver::scrape(&client).await?;
    result.api = api_after.since(&api_before);
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    if args.pause_after_ready > 0 {
        eprintln!(
            "[bench]   all Ready; pausing {} s (controller pid {pid}, log {})",
            args.pause_after_ready,
            controller.log_path().display()
        );
        tokio::time::sleep(Duration::from_secs(args.pause_after_ready)).await;
    }
    result.backend_calls = apiserver::backend_calls(&metrics_url).await;

    // New ExternalSecrets after the backlog, one at a time. A controller may still be working
    // through its own status updates (ESO with default flags at 10,000: minutes), so each may
    // wait as long as the backlog took; one that does not make it ends the phase, reported.
    let limit = Duration::from_secs_f64(120.0 + result.all_ready_s);
    let mut latencies = Vec::new();
    for i in n..n + args.new {
        let t = Instant::now();
        workload.apply_external_secrets(&client, i..i + 1).await?;
        let ready = watch.wait_for_name(&workload::es_name(i), limit).await;
        latencies.push(t.elapsed().as_secs_f64());
        if let Err(e) = ready {
            eprintln!("[bench]   new ExternalSecrets: {e}; phase ended");
            result.new_es_timed_out = true;
            break;
        }
        let spacing = Duration::from_secs_f64(args.new_every.max(0.0));
        if let Some(rest) = spacing.checked_sub(t.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    result.new_es_count = latencies.len();
    result.new_es = report::percentiles(&mut latencies);

    // Rotation: every remote value changes; time each Secret until it holds the new value.
    if args.rotation {
        let timeout = match args.rotation_timeout {
            Some(secs) => Duration::from_secs(secs),
            None => {
                let refresh = go_duration(&args.refresh_interval).unwrap_or(Duration::ZERO);
                2 * refresh + Duration::from_secs_f64(60.0 + result.all_ready_s)
            }
        };
        if let Some(exited) = controller.exited() {
            eprintln!("{}", controller.log_tail(4000));
            anyhow::bail!("the controller exited before the rotation ({exited})");
        }
        let ready_at = started + Duration::from_secs_f64(result.all_ready_s);
        result.rotation =
            Some(measure_rotation(&stack, &workload, n, &metrics_url, timeout, ready_at).await?);
    }

    // The controller's metrics as they stand, for reading calls by label afterwards.
    if let Ok(text) = apiserver::get(&metrics_url).await {
        let _ = std::fs::write(dir.join("controller-metrics.txt"), text);
    }

    // Restart with everything in sync: what does the controller write?
    result.peak_rss_mib = procstat::read(pid)?.peak_rss_kib as f64 / 1024.0;
    controller.stop(Duration::from_secs(10));
    let total = n + result.new_es_count;
    let before = apiserver::scrape(&client).await?;
    let cmd = controller_command(runner, &stack, args, eso, metrics_port)?;
    let mut controller = ManagedProcess::spawn(&format!("{}-restart", runner.as_str()), cmd)?;
    let restarted = Instant::now();
    let seen = apiserver::wait_for_looked_at(
        &metrics_url,
        total,
        Duration::from_secs(60 + total as u64 / 10),
    )
    .await;
    match seen {
        Ok(()) => {
            // Let the writes of the last reconciles land before counting.
            tokio::time::sleep(Duration::from_secs(3)).await;
            result.restart_s = Some(restarted.elapsed().as_secs_f64() - 3.0);
            let after = apiserver::scrape(&client).await?;
            result.restart_writes = Some(after.since(&before).es_and_secret_writes);
        }
        Err(e) => eprintln!("[bench]   restart in sync: {e}"),
    }
    controller.stop(Duration::from_secs(10));
    // The watch first: it would report the API server's going away.
    drop(watch);
    drop(stack);
    Ok(result)
}

/// Scenario (d): changes every remote value once (round 1) and times, per ExternalSecret of the
/// first `n`, how long after its key's change its Secret held the new `password`.
async fn measure_rotation(
    stack: &Stack,
    workload: &Workload,
    n: usize,
    metrics_url: &str,
    timeout: Duration,
    ready_at: Instant,
) -> anyhow::Result<Rotation> {
    let keys = workload.keys;
    let expected = (0..n)
        .map(|i| {
            (
                workload::es_name(i),
                workload::password(i % keys, 1).into_bytes(),
            )
        })
        .collect();
    let watch = ValueWatch::start(stack.admin_client(), expected).await?;
    let calls_before = apiserver::backend_calls(metrics_url).await;
    let started = Instant::now();
    let changed_after_ready_s = started.saturating_duration_since(ready_at).as_secs_f64();
    let changed = workload.rotate(stack, 1).await?;
    let change_s = started.elapsed().as_secs_f64();
    eprintln!(
        "[bench]   rotation: {keys} remote values changed in {change_s:.1} s ({} provider), \
         {changed_after_ready_s:.1} s after all were Ready; waiting up to {:.0} s for {n} Secrets",
        workload.provider,
        timeout.as_secs_f64()
    );
    let deadline = started + timeout;
    let mut last_print = Instant::now();
    while watch.count() < n && Instant::now() < deadline {
        if last_print.elapsed() >= Duration::from_secs(30) {
            last_print = Instant::now();
            eprintln!(
                "[bench]   rotation: {}/{n} Secrets hold the new value after {:.0} s",
                watch.count(),
                started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls_after = apiserver::backend_calls(metrics_url).await;
    let seen = watch.seen();
    let mut latencies: Vec<f64> = (0..n)
        .filter_map(|i| {
            seen.get(&workload::es_name(i))
                .map(|t| t.saturating_duration_since(changed[i % keys]).as_secs_f64())
        })
        .collect();
    let rotated = latencies.len();
    if rotated < n {
        eprintln!(
            "[bench]   rotation: only {rotated} of {n} Secrets held the new value within {:.0} s",
            timeout.as_secs_f64()
        );
    }
    let (p50_s, p99_s, max_s) = report::percentiles_max(&mut latencies);
    Ok(Rotation {
        p50_s,
        p99_s,
        max_s,
        rotated,
        total: n,
        timeout_s: timeout.as_secs_f64(),
        change_s,
        changed_after_ready_s,
        backend_calls: match (calls_before, calls_after) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            (None, Some(after)) => Some(after),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("1x"), None);
        assert_eq!(go_duration(""), None);
    }
}
