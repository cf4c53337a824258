//! End-to-end test of `esox run --sync-events=failures` on the real stack: successful syncs post
//! no `Created`/`Updated` Event (one API write fewer per sync), and failures still post their
//! Warning Events. The default (`all`, ESO's Events) is what every other e2e suite runs with.

mod support;

use esox_e2e::Stack;
use k8s_openapi::api::events::v1::Event;
use kube::api::Api;
use serde_json::json;
use support::*;

async fn stack() -> &'static Stack {
    stack_with_controller("esox-sync-events", |_| {
        vec!["--sync-events=failures".into()]
    })
    .await
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn successful_syncs_post_no_event_and_failures_still_do() {
    let stack = stack().await;
    let ns = stack.new_namespace("sync-events").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("sync-events");
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": "fake", "namespace": ns.name()},
            "spec": {"provider": {"fake": {"data": [{"key": "k", "value": value}]}}},
        }),
    )
    .await;
    // A store not yet Ready fails a sync (ESO's flood gate), which is an Event of its own.
    wait_ready(&client, ns.name(), "SecretStore", "fake", "True", "Valid").await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "ok",
            "fake",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": "k"}}]}),
        ),
    )
    .await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "broken",
            "fake",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": "missing"}}]}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "ok", &[("v", &value)]).await;
    wait_es(&client, ns.name(), "ok", "True", "SecretSynced").await;
    // The failure still says why, as a Warning Event.
    let (type_, _) = wait_event(&client, ns.name(), "broken", "UpdateFailed", |_, _| true).await;
    assert_eq!(type_, "Warning");
    // The success posted nothing: no Event at all about `ok`, after the failure's had time to
    // land (Events of one controller are posted in order per object).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let events = Api::<Event>::namespaced(client.clone(), ns.name())
        .list(&Default::default())
        .await
        .unwrap();
    let about_ok: Vec<_> = events
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("ok"))
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect();
    assert!(about_ok.is_empty(), "events about ok: {about_ok:?}");
    assert_no_secret_values(&client).await;
}
