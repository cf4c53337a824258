//! Fairness between tenants on the real stack: a store whose every call hangs (the hostile
//! fixture's `sleep` key, stopped only by the plugin's 30 s wall-clock limit) cannot hold the
//! controller's sync permits. The controller runs with 4 global permits, so 40 ExternalSecrets
//! on the hanging store would take all of them; with the per-store share (half of the global
//! permits by default) an ExternalSecret on a healthy store in another namespace still syncs at
//! once, while the hanging ones are all still waiting on their store. (The namespace share is
//! set equal to the global permits here, so the store share is tested alone.)
//!
//! There are 40 hanging ExternalSecrets, more than the 16 reconciles the controller runs at
//! once with 4 permits (`parking::max_in_flight`): the ones waiting for their store's share
//! must wait parked, outside those slots, or the healthy one would find every slot taken.
//!
//! Its own test binary: it needs its own controller, with `--concurrent 4` and the hostile
//! fixture in its `--plugin-dir`.

mod support;

use std::time::Instant;

use esox_e2e::Stack;
use serde_json::json;
use support::*;

async fn stack() -> &'static Stack {
    stack_with_controller("esox-fairness", |_| {
        vec![
            "--concurrent".into(),
            "4".into(),
            // The namespace share off (equal to the global permits), so the store share alone
            // is what keeps the healthy tenant going. Checked by hand: with
            // `--concurrency-per-store 4` too, the healthy ExternalSecret waits ~28 s, behind
            // the hanging ones, and this test fails.
            "--concurrency-per-namespace".into(),
            "4".into(),
            "--plugin-dir".into(),
            plugin_dir_with("esox_fixture_hostile.wasm")
                .display()
                .to_string(),
        ]
    })
    .await
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_hanging_store_cannot_hold_the_permits_other_tenants_need() {
    let stack = stack().await;
    let client = stack.admin_client();
    let slow = stack.new_namespace("hanging").await.unwrap();
    let fast = stack.new_namespace("healthy").await.unwrap();

    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "hangs", "namespace": slow.name()},
            "spec": {"provider": {"hostile": {}}},
        }),
    )
    .await;
    wait_ready(
        &client,
        slow.name(),
        "SecretStore",
        "hangs",
        "True",
        "Valid",
    )
    .await;
    let hanging: Vec<String> = (0..40).map(|i| format!("hangs-{i}")).collect();
    for name in &hanging {
        apply(
            &client,
            json!({
                "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": {"name": name, "namespace": slow.name()},
                "spec": {
                    "refreshInterval": "1h",
                    "secretStoreRef": {"name": "hangs", "kind": "SecretStore"},
                    "data": [{"secretKey": "v", "remoteRef": {"key": "sleep"}}],
                },
            }),
        )
        .await;
    }
    // Let the hanging syncs take what they can.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let v = secret_value("fairness");
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "fake", "namespace": fast.name()},
            "spec": {"provider": {"fake": {"data": [{"key": "k", "value": v}]}}},
        }),
    )
    .await;
    let started = Instant::now();
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "healthy", "namespace": fast.name()},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "fake", "kind": "SecretStore"},
                "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}],
            },
        }),
    )
    .await;
    wait_secret_data(&client, fast.name(), "healthy", &[("k", &v)]).await;
    let synced_after = started.elapsed();

    // None of the hanging ones has an answer yet: the healthy tenant did not wait for them.
    let api = es_api(&client, slow.name());
    for name in &hanging {
        let es = api.get(name).await.unwrap();
        assert!(
            ready_condition(&es).is_none(),
            "{name} already has a condition {:?}: the healthy ExternalSecret waited {:.1}s, behind the hanging store",
            ready_condition(&es),
            synced_after.as_secs_f64()
        );
    }
    println!(
        "FAIRNESS: with 40 ExternalSecrets hanging on one store and 4 global permits, a healthy tenant synced in {:.1}s",
        synced_after.as_secs_f64()
    );
    assert_no_secret_values(&client).await;
}
