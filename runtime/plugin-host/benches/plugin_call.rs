//! Plugin call overhead (docs/plugin-call-overhead.md). A program that prints numbers:
//!
//!     cargo bench -p esox-plugin-host --bench plugin_call
//!
//! Measures, in one run on one machine:
//! - cold load (compile) vs precompiled load (deserialize from the cache) of the fake plugin;
//! - the floor of a fresh instance: instantiate from `InstancePre` (pooling allocator) and one
//!   call that does next to nothing (`validate-config {}`);
//! - `get-secret` on the fake plugin with a fresh instance per call (instantiate, open the
//!   client, call), for a 1-entry and a 21-entry store config, and with a warm instance reused
//!   by the store;
//! - the same fresh-instance series with pooled slots reset by returning their pages to the OS
//!   (`keep_resident_bytes = 0`) instead of restoring dirty pages in place (the default);
//! - where a fresh instance's time goes: new store, instantiate, `open`, `get-secret`, drop;
//! - the same lookup done natively in Rust, as the baseline for the ratio.
//!
//! `ESOX_BENCH_ITERS` sets the number of calls per series (default 5000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use esox_plugin_host::{
    EgressGrant, HostConfig, KEEP_RESIDENT_DEFAULT, Limits, NoServices, PluginHost, PluginOrigin,
    StoreContext, StoreSpec,
};
use esox_provider::RemoteRef;

const VALUE: &str = r#"{"username":"app","password":"s3cr3t"}"#;

/// A fake store with `entries` entries, the last one being the one looked up.
fn config(entries: usize) -> serde_json::Value {
    let mut data: Vec<serde_json::Value> = (0..entries.saturating_sub(1))
        .map(|i| serde_json::json!({"key": format!("/filler/{i}"), "value": "x"}))
        .collect();
    data.push(serde_json::json!({"key": "/db/credentials", "value": VALUE}));
    serde_json::json!({ "data": data })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Series {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn summarize(name: &'static str, mut samples: Vec<Duration>) -> Series {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Series {
        name,
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        mean,
    }
}

/// The same lookup the fake plugin does, natively: find the entry by key and version, then
/// read the property from its JSON value.
fn native_lookup(
    entries: &[(String, String, String)],
    key: &str,
    property: &str,
) -> Option<Vec<u8>> {
    let (_, _, value) = entries.iter().find(|(k, v, _)| k == key && v.is_empty())?;
    let doc: serde_json::Value = serde_json::from_str(value).ok()?;
    match &doc[property] {
        serde_json::Value::String(s) => Some(s.clone().into_bytes()),
        serde_json::Value::Null => None,
        other => Some(other.to_string().into_bytes()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let iters: usize = std::env::var("ESOX_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let bytes = esox_plugins_bundle::PLUGINS
        .iter()
        .find(|(f, _)| f.contains("fake"))
        .map(|(_, b)| *b)
        .ok_or_else(|| anyhow::anyhow!("the fake plugin is not embedded"))?;
    let cache = tempfile::tempdir()?;
    let host_config = |limits: Limits| HostConfig {
        limits,
        cache_dir: Some(cache.path().join("wasm")),
        max_instances: 64,
        ..Default::default()
    };

    // Load: cold compile, then precompiled (same cache dir, new engine).
    let cold = PluginHost::new(host_config(Limits::default()))?
        .load(PluginOrigin::Embedded, bytes)
        .await?;
    let warm_load = PluginHost::new(host_config(Limits::default()))?
        .load(PluginOrigin::Embedded, bytes)
        .await?;
    assert!(
        cold.compiled && !warm_load.compiled,
        "expected a compile then a cache hit"
    );

    let remote = RemoteRef {
        key: "/db/credentials".into(),
        property: Some("password".into()),
        ..Default::default()
    };
    let mut results = Vec::new();
    {
        // The floor of a fresh instance: new store + instantiate + one call that does next to
        // nothing (validate-config on an empty config).
        let host = PluginHost::new(host_config(Limits::default()))?;
        host.load(PluginOrigin::Embedded, bytes).await?;
        let empty = serde_json::json!({});
        for _ in 0..200 {
            host.validate_config("fake", &empty).await?;
        }
        let mut samples = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            host.validate_config("fake", &empty).await?;
            samples.push(t.elapsed());
        }
        results.push(summarize(
            "fresh instance, trivial call (instantiate + validate-config {})",
            samples,
        ));
    }
    for (name, calls_per_instance, entries, keep_resident_bytes) in [
        (
            "fresh instance per call, 1-entry store (instantiate + open + get-secret)",
            1u32,
            1usize,
            KEEP_RESIDENT_DEFAULT,
        ),
        (
            "same, slots reset by returning pages to the OS (keep_resident_bytes = 0)",
            1,
            1,
            0,
        ),
        (
            "fresh instance per call, 21-entry store (instantiate + open + get-secret)",
            1,
            21,
            KEEP_RESIDENT_DEFAULT,
        ),
        (
            "warm instance reused by the store (get-secret)",
            u32::MAX,
            21,
            KEEP_RESIDENT_DEFAULT,
        ),
    ] {
        let host = PluginHost::new(HostConfig {
            keep_resident_bytes,
            ..host_config(Limits {
                calls_per_instance,
                instances_per_store: 1,
                ..Limits::default()
            })
        })?;
        host.load(PluginOrigin::Embedded, bytes).await?;
        let store = host.open_store(StoreSpec {
            context: StoreContext::cluster_secret_store("bench", None),
            plugin: "fake".into(),
            config: config(entries),
            settings: vec![],
            egress: EgressGrant::default(),
            services: Arc::new(NoServices),
            ambient: None,
            api_audience_tokens: false,
        })?;
        for _ in 0..200 {
            store.get_secret(&remote).await?; // warm-up
        }
        let mut samples = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            let v = store.get_secret(&remote).await?;
            samples.push(t.elapsed());
            assert_eq!(v, b"s3cr3t");
        }
        results.push(summarize(name, samples));
    }

    // Where a fresh instance's time goes (p50 of each phase, measured separately).
    let mut phases = Vec::new();
    for entries in [1usize, 21] {
        let host = PluginHost::new(host_config(Limits::default()))?;
        host.load(PluginOrigin::Embedded, bytes).await?;
        let text = config(entries).to_string();
        for _ in 0..200 {
            host.fresh_instance_phases("fake", &text, &remote).await?;
        }
        let mut samples: [Vec<Duration>; 5] = Default::default();
        for _ in 0..iters {
            let p = host.fresh_instance_phases("fake", &text, &remote).await?;
            for (series, d) in samples.iter_mut().zip(p) {
                series.push(d);
            }
        }
        let p50s = samples.map(|mut s| {
            s.sort();
            percentile(&s, 0.5)
        });
        phases.push((entries, p50s));
    }

    let entries: Vec<(String, String, String)> = config(21)["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["key"].as_str().unwrap_or("").to_string(),
                String::new(),
                e["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let v = std::hint::black_box(native_lookup(
            std::hint::black_box(&entries),
            "/db/credentials",
            "password",
        ));
        samples.push(t.elapsed());
        assert_eq!(v.as_deref(), Some(&b"s3cr3t"[..]));
    }
    let native = summarize("native Rust lookup (baseline)", samples);

    println!(
        "## Plugin call overhead (fake plugin, {iters} calls per series, wasmtime 48, pooling allocator)\n"
    );
    println!("| load | time |\n|---|---|");
    println!(
        "| cold: compile {:.1} MB component | {:.1} ms |",
        bytes.len() as f64 / 1e6,
        cold.load_time.as_secs_f64() * 1e3
    );
    println!(
        "| precompiled: deserialize from cache | {:.2} ms |",
        warm_load.load_time.as_secs_f64() * 1e3
    );
    println!(
        "| ratio cold / precompiled | {:.0}x |\n",
        cold.load_time.as_secs_f64() / warm_load.load_time.as_secs_f64()
    );
    println!("| call | p50 µs | p99 µs | mean µs | p50 vs native |\n|---|---|---|---|---|");
    for s in results.iter().chain(std::iter::once(&native)) {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.0}x |",
            s.name,
            s.p50.as_secs_f64() * 1e6,
            s.p99.as_secs_f64() * 1e6,
            s.mean.as_secs_f64() * 1e6,
            s.p50.as_secs_f64() / native.p50.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "\n| fresh instance, phase p50 µs | new store | instantiate | open | get-secret | drop (slots returned) |\n|---|---|---|---|---|---|"
    );
    for (entries, p) in &phases {
        println!(
            "| {entries}-entry store | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            p[0].as_secs_f64() * 1e6,
            p[1].as_secs_f64() * 1e6,
            p[2].as_secs_f64() * 1e6,
            p[3].as_secs_f64() * 1e6,
            p[4].as_secs_f64() * 1e6
        );
    }
    Ok(())
}
