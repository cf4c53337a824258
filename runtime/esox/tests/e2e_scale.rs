//! The scale benchmark on the real stack: N ExternalSecrets (default 100; `ESOX_SCALE_N=1000`
//! for the bar in the controller brief) over N/10 remote keys of one fake SecretStore, each
//! reading two properties. Prints seconds from the first apply to all Ready, and what the
//! controller did for it. A benchmark, not a timing assertion: the test fails only if some
//! ExternalSecret does not become Ready at all.
//!
//! ```text
//! ESOX_SCALE_N=1000 cargo test -p esox --test e2e_scale -- --nocapture
//! ```

mod support;

use std::time::{Duration, Instant};

use esox_e2e::{ManagedProcess, Stack};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn scale_n_external_secrets_reach_ready_on_the_fake_plugin() {
    let n: usize = std::env::var("ESOX_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let keys = (n / 10).max(1);
    let stack = Stack::shared().await.unwrap();
    let crds = tempfile::tempdir().unwrap();
    esox_api::write_crds(crds.path()).unwrap();
    stack.install_crds(crds.path()).await.unwrap();
    let ns = stack.new_namespace("scale").await.unwrap();
    let client = stack.admin_client();

    let mut cmd = support::esox_run(stack, "info");
    cmd.args(["--namespace", ns.name()]);
    let mut esox = ManagedProcess::spawn("esox-scale", cmd).unwrap();
    esox.wait_for_log("watch caches synced", Duration::from_secs(120))
        .await
        .unwrap();

    let data: Vec<_> = (0..keys)
        .map(|k| json!({"key": format!("db-{k}"), "value": format!(r#"{{"user":"u{k}","password":"p{k}"}}"#)}))
        .collect();
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "fake", "namespace": ns.name()},
        "spec": {"provider": {"fake": {"data": data}}},
    });
    esox_e2e::manifests::apply_yaml(&client, &serde_yaml::to_string(&store).unwrap())
        .await
        .unwrap();

    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "external-secrets.io",
        "v1",
        "ExternalSecret",
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &ar);
    let started = Instant::now();
    let applied = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let ns = ns.name().to_string();
            async move {
                let key = format!("db-{}", i % keys);
                let es = json!({
                    "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                    "metadata": {"name": format!("es-{i}"), "namespace": ns},
                    "spec": {
                        "refreshInterval": "1h",
                        "secretStoreRef": {"name": "fake", "kind": "SecretStore"},
                        "data": [
                            {"secretKey": "user", "remoteRef": {"key": key, "property": "user"}},
                            {"secretKey": "password", "remoteRef": {"key": key, "property": "password"}},
                        ],
                    },
                });
                esox_e2e::manifests::apply_yaml(&client, &serde_yaml::to_string(&es).unwrap()).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .count()
        .await;
    let applied_in = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(600);
    let mut ready = 0;
    while Instant::now() < deadline {
        let list = api.list(&ListParams::default()).await.unwrap();
        ready = list
            .items
            .iter()
            .filter(|es| {
                es.data["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .count();
        if ready == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_ready = started.elapsed();
    println!(
        "SCALE: {n} ExternalSecrets ({keys} remote keys, 2 properties each) on the fake plugin"
    );
    println!(
        "SCALE: applied in {:.1} s; all Ready {:.1} s after the first apply ({ready}/{n} Ready)",
        applied_in.as_secs_f64(),
        all_ready.as_secs_f64()
    );
    println!(
        "SCALE: {:.0} ExternalSecrets/s",
        n as f64 / all_ready.as_secs_f64()
    );
    assert_eq!(applied, n);
    assert_eq!(ready, n, "every ExternalSecret becomes Ready");
    esox.stop(Duration::from_secs(5));
}
