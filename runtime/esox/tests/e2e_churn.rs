//! The churn benchmark: ExternalSecrets and stores created and deleted in rounds, the
//! controller's memory printed after each round. It must stay flat: everything esox keeps per
//! object is freed when the object goes (docs/operations.md, "Cleanup after deletes"). A
//! benchmark, not a timing test: it fails only if something never becomes Ready or never goes.
//!
//! ```text
//! cargo xtask bench-churn            # 1,000 ExternalSecrets and 100 stores per round, 10 minutes
//! ESOX_CHURN_SECONDS=120 ESOX_CHURN_ES=500 ESOX_CHURN_STORES=50 \
//!   cargo test --workspace --test e2e_churn -- --ignored --nocapture
//! ```
//!
//! Without `ESOX_CHURN_SECONDS` (as in the gate) it runs a smoke of 3 rounds of 100
//! ExternalSecrets and 10 stores, which shows the rounds work and prints the same figures.

mod support;

use std::time::{Duration, Instant};

use esox_e2e::{ManagedProcess, Stack};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use serde_json::{Value, json};
use support::*;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The resident memory of process `pid`, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// The controller's metrics address, from its start line.
fn metrics_addr(p: &ManagedProcess) -> String {
    let log = std::fs::read_to_string(p.log_path()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("esox controller starting"))
        .unwrap();
    let v: Value = serde_json::from_str(line).unwrap();
    v["fields"]["metrics_addr"].as_str().unwrap().to_string()
}

/// How many metric series name an object (`name="…"` label), read from `/metrics`.
async fn object_series(addr: &str) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body.lines()
        // Series naming an object; `workqueue_*` carry the queue's `name` (a controller).
        .filter(|l| !l.starts_with('#') && !l.starts_with("workqueue_") && l.contains("name=\""))
        .count()
}

async fn count(api: &Api<DynamicObject>) -> usize {
    api.list(&ListParams::default()).await.unwrap().items.len()
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase, as a short smoke) and in `cargo xtask bench-churn`"]
async fn churn_keeps_the_controllers_memory_flat() {
    let full = std::env::var("ESOX_CHURN_SECONDS").is_ok();
    let seconds = env_or("ESOX_CHURN_SECONDS", 0);
    let n_es = env_or("ESOX_CHURN_ES", if full { 1000 } else { 100 }) as usize;
    let n_stores = env_or("ESOX_CHURN_STORES", if full { 100 } else { 10 }).max(1) as usize;
    let stack = Stack::shared().await.unwrap();
    let crds = tempfile::tempdir().unwrap();
    esox_api::write_crds(crds.path()).unwrap();
    stack.install_crds(crds.path()).await.unwrap();
    let client = stack.admin_client();
    let ns = stack.new_namespace("churn").await.unwrap();
    let n = ns.name().to_string();

    let mut cmd = esox_run(stack, "info");
    cmd.args(["--namespace", &n]);
    let mut esox = ManagedProcess::spawn("esox-churn", cmd).unwrap();
    esox.wait_for_log("watch caches synced", WAIT)
        .await
        .unwrap();
    let pid = esox.pid().unwrap();
    let addr = metrics_addr(&esox);
    let es_api = Api::<DynamicObject>::namespaced_with(client.clone(), &n, &gvk("ExternalSecret"));
    let store_api = Api::<DynamicObject>::namespaced_with(client.clone(), &n, &gvk("SecretStore"));

    println!(
        "CHURN: {n_es} ExternalSecrets over {n_stores} stores per round, {}",
        if full {
            format!("for {seconds} s")
        } else {
            "3 rounds (smoke)".into()
        }
    );
    println!("CHURN: round | create+Ready s | delete+GC s | RSS MiB | object series after delete");
    let started = Instant::now();
    let mut rss = Vec::new();
    let mut round = 0;
    loop {
        round += 1;
        let t = Instant::now();
        for s in 0..n_stores {
            let data: Vec<_> = (0..10)
                .map(|k| json!({"key": format!("k{k}"), "value": format!("r{round}-s{s}-k{k}")}))
                .collect();
            apply(
                &client,
                json!({
                    "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                    "metadata": {"name": format!("store-r{round}-{s}"), "namespace": n},
                    "spec": {"provider": {"fake": {"data": data}}},
                }),
            )
            .await;
        }
        for i in 0..n_es {
            apply(
                &client,
                json!({
                    "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                    "metadata": {"name": format!("es-r{round}-{i}"), "namespace": n},
                    "spec": {
                        "refreshInterval": "1h",
                        "secretStoreRef": {"name": format!("store-r{round}-{}", i % n_stores), "kind": "SecretStore"},
                        "data": [{"secretKey": "v", "remoteRef": {"key": format!("k{}", i % 10)}}],
                    },
                }),
            )
            .await;
        }
        eventually(&format!("round {round}: all {n_es} Ready"), || {
            let es_api = es_api.clone();
            async move {
                let list = es_api.list(&ListParams::default()).await.ok()?;
                let ready = list
                    .items
                    .iter()
                    .filter(|o| ready_condition(o).is_some_and(|(s, _, _)| s == "True"))
                    .count();
                (ready == n_es).then_some(())
            }
        })
        .await;
        let created = t.elapsed();

        let t = Instant::now();
        es_api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .unwrap();
        store_api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .unwrap();
        // The owned Secrets go with garbage collection (kube-controller-manager deletes at its
        // own pace, about 20 requests a second by default): wait for them too, so that every
        // round starts from nothing.
        let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &n);
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let left = secrets
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len();
            if count(&es_api).await == 0 && count(&store_api).await == 0 && left == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: {left} Secrets still there after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let deleted = t.elapsed();
        let kib = rss_kib(pid);
        rss.push(kib);
        let series = object_series(&addr).await;
        println!(
            "CHURN: {round:5} | {:14.1} | {:8.1} | {:7.1} | {series}",
            created.as_secs_f64(),
            deleted.as_secs_f64(),
            kib as f64 / 1024.0
        );
        assert_eq!(
            series, 0,
            "round {round}: metric series of deleted objects are left behind"
        );
        let done = if full {
            started.elapsed() >= Duration::from_secs(seconds)
        } else {
            round >= 3
        };
        if done {
            break;
        }
    }
    let (first, last) = (rss[0] as f64, *rss.last().unwrap() as f64);
    println!(
        "CHURN: RSS first round {:.1} MiB, last {:.1} MiB, ratio {:.2}, over {round} rounds",
        first / 1024.0,
        last / 1024.0,
        last / first
    );
}
