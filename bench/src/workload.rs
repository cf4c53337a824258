//! The manifests every runner gets, and the watch that times them to Ready.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::{Value, json};

/// The namespace every benchmark object lives in.
pub const NAMESPACE: &str = "bench";
/// The fake SecretStore's name.
pub const STORE: &str = "fake";
const FIELD_MANAGER: &str = "esox-bench";

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("external-secrets.io", "v1", kind))
}

pub fn es_name(i: usize) -> String {
    format!("es-{i}")
}

pub async fn create_namespace(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    api.patch(
        NAMESPACE,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&ns),
    )
    .await?;
    Ok(())
}

/// One fake SecretStore holding `keys` JSON values `db-<k>` = `{"user": "u<k>", "password": "p<k>"}`.
pub async fn apply_store(client: &kube::Client, keys: usize) -> anyhow::Result<()> {
    let data: Vec<Value> = (0..keys)
        .map(|k| json!({"key": format!("db-{k}"), "value": format!(r#"{{"user":"u{k}","password":"p{k}"}}"#)}))
        .collect();
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": STORE, "namespace": NAMESPACE},
        "spec": {"provider": {"fake": {"data": data}}},
    });
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &resource("SecretStore"));
    api.patch(
        STORE,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&store),
    )
    .await?;
    Ok(())
}

/// The ExternalSecret `es-<i>`: two properties of key `db-<i mod keys>`, refreshed every
/// `refresh` (the benchmark's default: `1h`).
pub fn external_secret(i: usize, keys: usize, refresh: &str) -> Value {
    let key = format!("db-{}", i % keys);
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": es_name(i), "namespace": NAMESPACE},
        "spec": {
            "refreshInterval": refresh,
            "secretStoreRef": {"name": STORE, "kind": "SecretStore"},
            "data": [
                {"secretKey": "user", "remoteRef": {"key": key, "property": "user"}},
                {"secretKey": "password", "remoteRef": {"key": key, "property": "password"}},
            ],
        },
    })
}

/// Server-side applies ExternalSecrets `range` (see [`external_secret`]), 32 in flight.
pub async fn apply_external_secrets(
    client: &kube::Client,
    range: std::ops::Range<usize>,
    keys: usize,
    refresh: &str,
) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &resource("ExternalSecret"));
    let params = PatchParams::apply(FIELD_MANAGER);
    futures::stream::iter(range)
        .map(|i| {
            let (api, params) = (&api, &params);
            async move {
                api.patch(
                    &es_name(i),
                    params,
                    &Patch::Apply(&external_secret(i, keys, refresh)),
                )
                .await
                .map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn is_ready(obj: &DynamicObject) -> bool {
    obj.data["status"]["conditions"]
        .as_array()
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// A watch on the namespace's ExternalSecrets recording when each was first seen Ready.
pub struct ReadyWatch {
    first_ready: Arc<Mutex<HashMap<String, Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    pub async fn start(client: kube::Client, namespace: &str) -> anyhow::Result<Self> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client, namespace, &resource("ExternalSecret"));
        let first_ready = Arc::new(Mutex::new(HashMap::new()));
        let seen = first_ready.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let obj = match event {
                    Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => obj,
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("[bench]   watch error (retrying): {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                if is_ready(&obj)
                    && let Some(name) = obj.metadata.name
                {
                    seen.lock()
                        .unwrap()
                        .entry(name)
                        .or_insert_with(Instant::now);
                }
            }
        });
        Ok(Self { first_ready, task })
    }

    fn count(&self) -> usize {
        self.first_ready.lock().unwrap().len()
    }

    /// Waits until `n` ExternalSecrets were seen Ready, printing progress every 30 s.
    pub async fn wait_for(
        &self,
        n: usize,
        started: Instant,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = started + timeout;
        let mut last_print = Instant::now();
        loop {
            let count = self.count();
            if count >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("{count} of {n} ExternalSecrets Ready after {timeout:?}");
            }
            if last_print.elapsed() >= Duration::from_secs(30) {
                last_print = Instant::now();
                eprintln!(
                    "[bench]   {count}/{n} Ready after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_name(&self, name: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.first_ready.lock().unwrap().contains_key(name) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("{name} was not Ready within {timeout:?}")
    }

    /// p50 and p99 seconds from `started` to first Ready, over everything seen so far.
    pub fn first_sync_percentiles(&self, started: Instant) -> (f64, f64) {
        let mut secs: Vec<f64> = self
            .first_ready
            .lock()
            .unwrap()
            .values()
            .map(|t| t.saturating_duration_since(started).as_secs_f64())
            .collect();
        crate::report::percentiles(&mut secs)
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
