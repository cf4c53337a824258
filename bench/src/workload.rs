//! The manifests and remote values every runner gets, the watch that times them to Ready, and
//! the watch that times a rotation (every Secret holding its new value).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esox_e2e::Stack;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::report::Provider;

/// The namespace every benchmark object lives in.
pub const NAMESPACE: &str = "bench";
/// The Secret holding the AWS store's access keys (LocalStack accepts any).
pub const AWS_CREDENTIALS: &str = "aws-credentials";
/// The region the AWS store names and the values are seeded in.
pub const AWS_REGION: &str = esox_e2e::stack::AWS_REGION;
const FIELD_MANAGER: &str = "esox-bench";

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("external-secrets.io", "v1", kind))
}

pub fn es_name(i: usize) -> String {
    format!("es-{i}")
}

/// The remote key `db-<k>`.
pub fn key_name(k: usize) -> String {
    format!("db-{k}")
}

/// The `password` property of key `k` after `round` rotations (0: as seeded).
pub fn password(k: usize, round: u32) -> String {
    if round == 0 {
        format!("p{k}")
    } else {
        format!("p{k}-r{round}")
    }
}

/// The JSON value of key `k` after `round` rotations: `{"user": "u<k>", "password": ...}`.
pub fn remote_value(k: usize, round: u32) -> String {
    json!({"user": format!("u{k}"), "password": password(k, round)}).to_string()
}

/// What every runner gets: one SecretStore of `provider` holding `keys` JSON values, and
/// ExternalSecrets reading two properties of one key each, refreshed every `refresh`.
#[derive(Debug, Clone)]
pub struct Workload {
    pub keys: usize,
    pub refresh: String,
    pub provider: Provider,
}

impl Workload {
    /// The SecretStore's name: `fake` or `aws`.
    pub fn store(&self) -> &'static str {
        self.provider.as_str()
    }

    /// The ExternalSecret `es-<i>`: two properties of key `db-<i mod keys>`.
    pub fn external_secret(&self, i: usize) -> Value {
        let key = key_name(i % self.keys);
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": es_name(i), "namespace": NAMESPACE},
            "spec": {
                "refreshInterval": self.refresh,
                "secretStoreRef": {"name": self.store(), "kind": "SecretStore"},
                "data": [
                    {"secretKey": "user", "remoteRef": {"key": key, "property": "user"}},
                    {"secretKey": "password", "remoteRef": {"key": key, "property": "password"}},
                ],
            },
        })
    }

    /// Server-side applies ExternalSecrets `range` (see [`Workload::external_secret`]), 32 in
    /// flight.
    pub async fn apply_external_secrets(
        &self,
        client: &kube::Client,
        range: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NAMESPACE, &resource("ExternalSecret"));
        let params = PatchParams::apply(FIELD_MANAGER);
        futures::stream::iter(range)
            .map(|i| {
                let (api, params) = (&api, &params);
                async move {
                    api.patch(&es_name(i), params, &Patch::Apply(&self.external_secret(i)))
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// The store and its values, as seeded: the fake store with its data, or the values in
    /// LocalStack's Secrets Manager plus the credentials Secret and the aws store.
    pub async fn create_store(&self, stack: &Stack) -> anyhow::Result<()> {
        let client = stack.admin_client();
        match self.provider {
            Provider::Fake => apply_fake_store(&client, self.keys, 0).await,
            Provider::Aws => {
                let sm = stack.secretsmanager_client();
                futures::stream::iter(0..self.keys)
                    .map(|k| {
                        let sm = &sm;
                        async move {
                            sm.create_secret()
                                .name(key_name(k))
                                .secret_string(remote_value(k, 0))
                                .send()
                                .await
                                .map(|_| ())
                                .map_err(|e| {
                                    anyhow::anyhow!("create {} in LocalStack: {e:?}", key_name(k))
                                })
                        }
                    })
                    .buffer_unordered(16)
                    .try_collect::<Vec<()>>()
                    .await?;
                apply_aws_store(&client).await
            }
        }
    }

    /// Changes every remote value to round `round`; returns, per key, when its change was
    /// made (fake: all at once, when the store's apply returned; aws: when its PutSecretValue
    /// returned).
    pub async fn rotate(&self, stack: &Stack, round: u32) -> anyhow::Result<Vec<Instant>> {
        match self.provider {
            Provider::Fake => {
                apply_fake_store(&stack.admin_client(), self.keys, round).await?;
                Ok(vec![Instant::now(); self.keys])
            }
            Provider::Aws => {
                let sm = stack.secretsmanager_client();
                let mut changed = futures::stream::iter(0..self.keys)
                    .map(|k| {
                        let sm = &sm;
                        async move {
                            sm.put_secret_value()
                                .secret_id(key_name(k))
                                .secret_string(remote_value(k, round))
                                .send()
                                .await
                                .map(|_| (k, Instant::now()))
                                .map_err(|e| {
                                    anyhow::anyhow!("rotate {} in LocalStack: {e:?}", key_name(k))
                                })
                        }
                    })
                    .buffer_unordered(16)
                    .try_collect::<Vec<(usize, Instant)>>()
                    .await?;
                changed.sort_by_key(|(k, _)| *k);
                Ok(changed.into_iter().map(|(_, t)| t).collect())
            }
        }
    }
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

/// The fake SecretStore `fake` holding `keys` JSON values `db-<k>` = [`remote_value`]`(k, round)`.
async fn apply_fake_store(client: &kube::Client, keys: usize, round: u32) -> anyhow::Result<()> {
    let data: Vec<Value> = (0..keys)
        .map(|k| json!({"key": key_name(k), "value": remote_value(k, round)}))
        .collect();
    apply_store(client, Provider::Fake, json!({"fake": {"data": data}})).await
}

/// The SecretStore named after `provider`, with `spec.provider` = `spec`.
async fn apply_store(client: &kube::Client, provider: Provider, spec: Value) -> anyhow::Result<()> {
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": provider.as_str(), "namespace": NAMESPACE},
        "spec": {"provider": spec},
    });
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &resource("SecretStore"));
    api.patch(
        provider.as_str(),
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&store),
    )
    .await?;
    Ok(())
}

/// The Secret with the access keys (LocalStack accepts any) and the SecretStore `aws`: ESO's
/// `aws` provider, Secrets Manager in [`AWS_REGION`], `auth.secretRef`. The endpoint is set on
/// each controller (esox: `--plugin-setting aws:endpoint=`; ESO: `AWS_SECRETSMANAGER_ENDPOINT`),
/// never in the manifest.
async fn apply_aws_store(client: &kube::Client) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let credentials = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": AWS_CREDENTIALS, "namespace": NAMESPACE},
        "stringData": {"access-key-id": "test", "secret-access-key": "test"},
    });
    secrets
        .patch(
            AWS_CREDENTIALS,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&credentials),
        )
        .await?;
    let spec = json!({"aws": {
        "service": "SecretsManager",
        "region": AWS_REGION,
        "auth": {"secretRef": {
            "accessKeyIDSecretRef": {"name": AWS_CREDENTIALS, "key": "access-key-id"},
            "secretAccessKeySecretRef": {"name": AWS_CREDENTIALS, "key": "secret-access-key"},
        }},
    }});
    apply_store(client, Provider::Aws, spec).await
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

/// A watch on the namespace's Secrets recording when each Secret named in `expected` was first
/// seen holding its expected `password` (the rotated value). Values are compared, never logged.
pub struct ValueWatch {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ValueWatch {
    /// Starts the watch and returns once its initial list is done, so a change made after
    /// this returns is timed from a known state.
    pub async fn start(
        client: kube::Client,
        expected: HashMap<String, Vec<u8>>,
    ) -> anyhow::Result<Self> {
        let api: Api<Secret> = Api::namespaced(client, NAMESPACE);
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let (listed_tx, listed_rx) = tokio::sync::oneshot::channel();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut listed_tx = Some(listed_tx);
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let secret = match event {
                    Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = listed_tx.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("[bench]   Secret watch error (retrying): {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let Some(name) = secret.metadata.name.as_deref() else {
                    continue;
                };
                let Some(want) = expected.get(name) else {
                    continue;
                };
                let holds = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get("password"))
                    .is_some_and(|v| v.0 == *want);
                if holds {
                    record
                        .lock()
                        .unwrap()
                        .entry(name.to_owned())
                        .or_insert_with(Instant::now);
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(120), listed_rx)
            .await
            .map_err(|_| anyhow::anyhow!("the Secret watch did not list within 120 s"))?
            .map_err(|_| anyhow::anyhow!("the Secret watch ended"))?;
        Ok(Self { seen, task })
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// When each Secret was first seen with its expected value.
    pub fn seen(&self) -> HashMap<String, Instant> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ValueWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
