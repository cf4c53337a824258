//! Helpers shared by the controller's end-to-end suites (`e2e_controller`, `e2e_aws_features`,
//! `e2e_scale`).
//!
//! Each test binary that includes this module gets its own copy of the statics: one `esox run`
//! serving the whole binary, and the registry of secret values its log is scanned for.
//! Everything here talks to the real stack from `esox-e2e`; nothing imitates the API server.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use esox_e2e::{ManagedProcess, Stack};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use tokio::sync::OnceCell;

/// How long any wait on the stack may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);
/// The log filter of the controller under test: everything of ours, at trace.
const LOG_FILTER: &str =
    "trace,kube=debug,hyper=info,tower=info,h2=info,rustls=info,wasmtime=info,cranelift=info";

static CONTROLLER_LOG: OnceCell<PathBuf> = OnceCell::const_new();
static SECRET_VALUES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A secret value unique to this run, registered for the log scan.
pub fn secret_value(purpose: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let value = format!("s3cr3t-{purpose}-{nanos:x}");
    register_secret_value(value.clone());
    value
}

/// Register a value derived from a secret (an encoding of it, say) for the log scan.
pub fn register_secret_value(value: String) {
    SECRET_VALUES.lock().unwrap().push(value);
}

/// A fresh directory holding only the built plugin component `file` (from the plugins
/// bundle: fixtures such as `esox_fixture_hostile.wasm`), for `--plugin-dir`.
pub fn plugin_dir_with(file: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "esox-e2e-{}-{}",
        file.trim_end_matches(".wasm"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        std::path::Path::new(esox_plugins_bundle::WASM_DIR).join(file),
        dir.join(file),
    )
    .unwrap();
    dir
}

/// `esox run` under the least-privilege controller identity, logging JSON with `log_filter`,
/// its metrics and health endpoints on free ports; add further `run` arguments to it.
pub fn esox_run(stack: &Stack, log_filter: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_esox"));
    cmd.args(["--log-format", "json", "--log", log_filter])
        .arg("run")
        .arg("--kubeconfig")
        .arg(stack.controller_kubeconfig_path())
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--live-addr",
            "127.0.0.1:0",
        ]);
    cmd
}

/// The shared stack with the CRDs installed (exactly as esox-api generates them, the same text
/// as `crds/`) and one `esox run` under the least-privilege controller identity, logging JSON
/// at trace. `name` labels the process in the harness's logs; `run_args` come after
/// `esox run`'s own arguments (kubeconfig, metrics and health addresses).
pub async fn stack_with_controller(
    name: &'static str,
    run_args: impl FnOnce(&Stack) -> Vec<String>,
) -> &'static Stack {
    stack_with_controller_env(name, run_args, &[]).await
}

/// [`stack_with_controller`] with these variables in the controller's environment (the
/// controller's own identity, as a Deployment's `env` would give it).
pub async fn stack_with_controller_env(
    name: &'static str,
    run_args: impl FnOnce(&Stack) -> Vec<String>,
    env: &[(&str, &str)],
) -> &'static Stack {
    let stack = Stack::shared().await.expect("the e2e stack starts");
    CONTROLLER_LOG
        .get_or_init(|| async {
            let crds = tempfile::tempdir().unwrap();
            esox_api::write_crds(crds.path()).unwrap();
            stack.install_crds(crds.path()).await.expect("CRDs install");
            let mut cmd = esox_run(stack, LOG_FILTER);
            cmd.args(run_args(stack));
            cmd.envs(env.iter().copied());
            let mut process = ManagedProcess::spawn(name, cmd).expect("esox starts");
            process
                .wait_for_log("watch caches synced", WAIT)
                .await
                .expect("esox becomes ready");
            let path = process.log_path().to_path_buf();
            // Lives as long as the test binary; the harness kills it at exit.
            Box::leak(Box::new(process));
            path
        })
        .await;
    stack
}

/// The controller's whole log so far.
pub fn controller_log() -> String {
    let path = CONTROLLER_LOG.get().expect("controller started");
    std::fs::read_to_string(path).expect("controller log readable")
}

/// Every registered value, raw and base64, must be absent from the controller's log.
pub fn assert_log_has_no_secret_values() {
    let log = controller_log();
    assert!(
        !log.is_empty(),
        "the controller logged nothing at all; the scan would prove nothing"
    );
    for value in SECRET_VALUES.lock().unwrap().iter() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(
            !log.contains(value.as_str()),
            "the controller log contains the secret value {value:?}"
        );
        assert!(
            !log.contains(&b64),
            "the controller log contains the base64 of secret value {value:?}"
        );
    }
}

/// The notes of the events with `reason` about object `name` in `ns` (events.k8s.io/v1, as
/// the controller's recorder writes them).
pub async fn event_notes(client: &kube::Client, ns: &str, name: &str, reason: &str) -> Vec<String> {
    use k8s_openapi::api::events::v1::Event;
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .filter_map(|e| e.note)
        .collect()
}

/// The log scan ([`assert_log_has_no_secret_values`]) and the same scan of every Event in the
/// cluster: users who may read Events but not Secrets must not find a value there either.
pub async fn assert_no_secret_values(client: &kube::Client) {
    use k8s_openapi::api::events::v1::Event;
    assert_log_has_no_secret_values();
    let events = Api::<Event>::all(client.clone())
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    assert!(
        !events.is_empty(),
        "no Event in the cluster at all; the scan would prove nothing"
    );
    let text: String = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {}\n",
                e.reason.as_deref().unwrap_or(""),
                e.note.as_deref().unwrap_or(""),
                e.deprecated_source
                    .as_ref()
                    .and_then(|s| s.component.as_deref())
                    .unwrap_or("")
            )
        })
        .collect();
    for value in SECRET_VALUES.lock().unwrap().iter() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(
            !text.contains(value.as_str()) && !text.contains(&b64),
            "an Event carries the secret value {value:?} (raw or base64)"
        );
    }
}

/// The end of the controller's log, for timeout diagnostics (it holds no values: it is scanned).
pub fn controller_log_tail() -> String {
    let Some(path) = CONTROLLER_LOG.get() else {
        return String::new();
    };
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let mut start = log.len().saturating_sub(6000);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    log[start..].to_string()
}

/// An `external-secrets.io/v1` kind.
pub fn gvk(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("external-secrets.io", "v1", kind))
}

pub fn es_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &gvk("ExternalSecret"))
}

/// An ExternalSecret `name` in `ns` reading from SecretStore `store` into the Secret of its own
/// name, refreshed hourly; `spec` is merged over that (top-level keys replace).
pub fn store_external_secret(ns: &str, name: &str, store: &str, spec: Value) -> Value {
    let mut full = serde_json::json!({
        "refreshInterval": "1h",
        "secretStoreRef": {"name": store, "kind": "SecretStore"},
        "target": {"name": name},
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut full, spec) {
        base.extend(extra);
    }
    serde_json::json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": full,
    })
}

/// Server-side apply, as `kubectl apply --server-side` would.
pub async fn apply(client: &kube::Client, manifest: Value) {
    esox_e2e::manifests::apply_yaml(client, &serde_yaml::to_string(&manifest).unwrap())
        .await
        .unwrap_or_else(|e| panic!("applying {}: {e:#}", manifest["metadata"]));
}

/// The Ready condition of an object: (status, reason, message).
pub fn ready_condition(obj: &DynamicObject) -> Option<(String, String, String)> {
    let conditions = obj.data.get("status")?.get("conditions")?.as_array()?;
    let c = conditions.iter().find(|c| c["type"] == "Ready")?;
    let s = |f: &str| {
        c.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some((s("status"), s("reason"), s("message")))
}

/// Poll `check` until it returns a value; fail after [`WAIT`] with the controller log's tail.
pub async fn eventually<F, Fut, T>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_seen(what, check, String::new).await
}

/// [`eventually`], with `last_seen` describing the last state observed when it times out.
async fn eventually_seen<F, Fut, T>(what: &str, mut check: F, last_seen: impl Fn() -> String) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {WAIT:?} waiting for {what}; last seen: {}\n\
                 controller log ends with:\n{}",
                last_seen(),
                controller_log_tail()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until the object's Ready condition has this status and reason; returns the object
/// (`ns` empty for a cluster-scoped kind). On timeout the last Ready condition seen is part of the failure.
pub async fn wait_ready(
    client: &kube::Client,
    ns: &str,
    kind: &str,
    name: &str,
    status: &str,
    reason: &str,
) -> DynamicObject {
    // An empty namespace means a cluster-scoped kind (ClusterSecretStore).
    let api = if ns.is_empty() {
        Api::<DynamicObject>::all_with(client.clone(), &gvk(kind))
    } else {
        Api::<DynamicObject>::namespaced_with(client.clone(), ns, &gvk(kind))
    };
    let last = Mutex::new(None);
    eventually_seen(
        &format!("{kind} {ns}/{name} Ready={status} {reason}"),
        || async {
            let obj = api.get(name).await.ok()?;
            let ready = ready_condition(&obj);
            if ready
                .as_ref()
                .is_some_and(|(s, r, _)| s == status && r == reason)
            {
                return Some(obj);
            }
            *last.lock().unwrap() = ready;
            None
        },
        || format!("Ready {:?}", last.lock().unwrap()),
    )
    .await
}

/// Wait until the ExternalSecret's Ready condition has this status and reason; returns it.
pub async fn wait_es(
    client: &kube::Client,
    ns: &str,
    name: &str,
    status: &str,
    reason: &str,
) -> DynamicObject {
    wait_ready(client, ns, "ExternalSecret", name, status, reason).await
}

/// A Secret's data as UTF-8 text, or `None` when it does not exist.
pub async fn secret_data(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Option<BTreeMap<String, String>> {
    let s = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()?;
    Some(data_text(&s))
}

/// A Secret's data as text.
pub fn data_text(s: &Secret) -> BTreeMap<String, String> {
    s.data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

/// Wait until the Secret holds exactly `expected`; returns it. Values are never printed: a
/// timeout names the expected keys and the keys last seen.
pub async fn wait_secret_data(
    client: &kube::Client,
    ns: &str,
    name: &str,
    expected: &[(&str, &str)],
) -> Secret {
    let expected: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    let what = format!(
        "Secret {ns}/{name} to hold the expected data (keys {:?}; values not shown)",
        expected.keys().collect::<Vec<_>>()
    );
    let last_keys = Mutex::new(None);
    eventually_seen(
        &what,
        || async {
            let s = api.get_opt(name).await.ok()??;
            let data = data_text(&s);
            if data == expected {
                return Some(s);
            }
            *last_keys.lock().unwrap() = Some(data.into_keys().collect::<Vec<_>>());
            None
        },
        || format!("keys {:?}", last_keys.lock().unwrap()),
    )
    .await
}

/// Wait for an Event in `ns` about the object `name` with `reason` whose type and note
/// satisfy `accept`; returns that type and note.
pub async fn wait_event(
    client: &kube::Client,
    ns: &str,
    name: &str,
    reason: &str,
    accept: impl Fn(&str, &str) -> bool,
) -> (String, String) {
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), ns);
    eventually(&format!("a {reason} event on {ns}/{name}"), || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items.iter().find_map(|e| {
            let (type_, note) = (
                e.type_.clone().unwrap_or_default(),
                e.note.clone().unwrap_or_default(),
            );
            (e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && accept(&type_, &note))
            .then_some((type_, note))
        })
    })
    .await
}

/// `esox push`/`esox delete` with these arguments, the value (if any) on stdin; returns the
/// exit status and everything printed, which must never hold the value.
pub fn esox_write(args: &[&str], value: Option<&str>) -> (bool, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_esox"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("esox runs");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(v) = value {
        stdin.write_all(v.as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}
