//! `esox-raw-writer`: the benchmark's floor. It does the API-server work a controller must do for
//! the benchmark's ExternalSecrets and nothing else: one GET of the SecretStore, one paged
//! LIST of the ExternalSecrets, then per ExternalSecret one server-side apply of its Secret (the
//! same data, labels, owner reference and a data-hash annotation of the same length as ESO's)
//! and one server-side apply of its status (Ready=True, as ESO writes it), `--concurrency` at a
//! time. No provider, no sandbox, no retries, no watches: how fast this box's API server takes
//! the writes.
//!
//! With an `aws` store (`--aws-endpoint`, the benchmark's LocalStack) it also does the backend
//! work that cannot be avoided: one GET of the credentials Secret and one GetSecretValue per
//! distinct remote key (through the e2e harness's LocalStack client), before the writes.
//!
//! Prints one JSON line on stdout: `{"written", "seconds", "peak_rss_kib", "cpu_seconds",
//! "backend_calls"}` (`backend_calls` null for the fake store).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Parser;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "esox-raw-writer",
    about = "Write the benchmark's Secrets and statuses directly"
)]
struct Args {
    /// Kubeconfig of an identity that may read the store and ExternalSecrets and write Secrets
    /// and ExternalSecret status.
    #[arg(long)]
    kubeconfig: PathBuf,
    #[arg(long)]
    namespace: String,
    /// The fake SecretStore the ExternalSecrets read from.
    #[arg(long, default_value = "fake")]
    store: String,
    /// Writes in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Secrets Manager endpoint for an `aws` store (plain HTTP, e.g. LocalStack's).
    #[arg(long)]
    aws_endpoint: Option<String>,
}

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("external-secrets.io", "v1", kind))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("read {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = kube::Client::try_from(config)?;
    let stores: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &args.namespace, &resource("SecretStore"));
    let store = stores.get(&args.store).await.context("get the store")?;

    let es_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &args.namespace, &resource("ExternalSecret"));
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = es_api.list(&params).await.context("list ExternalSecrets")?;
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }

    let aws = &store.data["spec"]["provider"]["aws"];
    let (values, backend_calls): (HashMap<String, String>, Option<usize>) = if aws.is_object() {
        let endpoint = args
            .aws_endpoint
            .as_deref()
            .context("the store is an aws store: pass --aws-endpoint")?;
        // The credentials a controller must read (the values are not used: LocalStack takes any).
        let name = aws["auth"]["secretRef"]["accessKeyIDSecretRef"]["name"]
            .as_str()
            .context("the aws store has no auth.secretRef")?;
        let credentials: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), &args.namespace);
        credentials
            .get(name)
            .await
            .context("get the credentials Secret")?;
        let region = aws["region"].as_str().unwrap_or("us-east-1");
        let keys: BTreeSet<String> = items
            .iter()
            .flat_map(|es| es.data["spec"]["data"].as_array().into_iter().flatten())
            .filter_map(|d| d["remoteRef"]["key"].as_str().map(str::to_owned))
            .collect();
        let sm = esox_e2e::stack::localstack_secretsmanager_client(endpoint, region);
        let fetched = futures::stream::iter(keys.iter())
            .map(|key| {
                let sm = &sm;
                async move {
                    let out = sm
                        .get_secret_value()
                        .secret_id(key)
                        .send()
                        .await
                        .with_context(|| format!("GetSecretValue {key}"))?;
                    let value = out
                        .secret_string()
                        .with_context(|| format!("GetSecretValue {key}: no SecretString"))?;
                    anyhow::Ok((key.clone(), value.to_owned()))
                }
            })
            .buffer_unordered(args.concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        let calls = fetched.len();
        (fetched, Some(calls))
    } else {
        let values = store.data["spec"]["provider"]["fake"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some((
                    d["key"].as_str()?.to_owned(),
                    d["value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        (values, None)
    };

    let secrets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &args.namespace,
        &ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
    );
    let apply = PatchParams::apply("esox-raw-writer").force();
    let written = futures::stream::iter(items.iter())
        .map(|es| {
            let (secrets, es_api, apply, values) = (&secrets, &es_api, &apply, &values);
            async move {
                let name = es.metadata.name.clone().unwrap_or_default();
                let data = secret_data(&es.data["spec"], values)?;
                let target = es.data["spec"]["target"]["name"]
                    .as_str()
                    .unwrap_or(&name)
                    .to_owned();
                let secret = json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {
                        "name": target,
                        "labels": {"reconcile.external-secrets.io/managed": "true"},
                        "annotations": {"reconcile.external-secrets.io/data-hash": data_hash(&data)},
                        "ownerReferences": [{
                            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                            "name": name, "uid": es.metadata.uid,
                            "controller": true, "blockOwnerDeletion": true,
                        }],
                    },
                    "type": "Opaque",
                    "data": data,
                });
                secrets
                    .patch(&target, apply, &Patch::Apply(&secret))
                    .await
                    .with_context(|| format!("apply Secret {target}"))?;
                let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                let status = json!({
                    "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                    "status": {
                        "binding": {"name": target},
                        "conditions": [{
                            "type": "Ready", "status": "True", "reason": "SecretSynced",
                            "message": "secret synced", "lastTransitionTime": now,
                        }],
                        "refreshTime": now,
                        "syncedResourceVersion": format!("1-{}", es.metadata.generation.unwrap_or(1)),
                    },
                });
                es_api
                    .patch_status(&name, apply, &Patch::Apply(&status))
                    .await
                    .with_context(|| format!("apply status of {name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut ok = 0usize;
    for result in written {
        result?;
        ok += 1;
    }
    let (peak_rss_kib, cpu_seconds) = self_usage();
    println!(
        "{}",
        json!({
            "written": ok,
            "seconds": started.elapsed().as_secs_f64(),
            "peak_rss_kib": peak_rss_kib,
            "cpu_seconds": cpu_seconds,
            "backend_calls": backend_calls,
        })
    );
    Ok(())
}

/// The Secret's `data` as ESO builds it from `spec.data`: each `remoteRef.key` looked up in the
/// store's values, `property` taken from the JSON value, base64-encoded.
fn secret_data(
    spec: &Value,
    values: &HashMap<String, String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = BTreeMap::new();
    for item in spec["data"].as_array().into_iter().flatten() {
        let key = item["remoteRef"]["key"].as_str().unwrap_or_default();
        let value = values
            .get(key)
            .with_context(|| format!("the store has no key {key}"))?;
        let value = match item["remoteRef"]["property"].as_str() {
            Some(property) => {
                let parsed: Value = serde_json::from_str(value)?;
                match &parsed[property] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            }
            None => value.clone(),
        };
        let secret_key = item["secretKey"].as_str().unwrap_or_default().to_owned();
        out.insert(secret_key, b64.encode(value));
    }
    Ok(out)
}

/// 32 hex digits, the length of ESO's md5 data hash (not the same function: only the size of
/// the write matters here).
fn data_hash(data: &BTreeMap<String, String>) -> String {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut a);
    let first = a.finish();
    first.hash(&mut a);
    format!("{first:016x}{:016x}", a.finish())
}

/// Peak resident set (VmHWM, KiB) and user+system CPU seconds of this process.
fn self_usage() -> (u64, f64) {
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    // SAFETY: getrusage fills a caller-owned struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (hwm, secs(usage.ru_utime) + secs(usage.ru_stime))
}
