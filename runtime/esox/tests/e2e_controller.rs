//! End-to-end tests of `esox run` on the real stack (kube-apiserver, etcd,
//! kube-controller-manager from esox-e2e) with the fake provider plugin.
//!
//! One controller process serves the whole test binary, as in a cluster: the `esox` binary
//! under the least-privilege identity of deploy/rbac.yaml, watching all namespaces. Each test
//! works in its own namespace. Every secret value a test uses is registered, and every test
//! ends by scanning the controller's whole log for all values registered so far (raw and
//! base64): the controller must never log one.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use esox_e2e::Stack;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::*;

/// The shared stack with one `esox run` serving this test binary. Its `--plugin-dir` holds
/// the fake plugin as released for contract 0.1 (`fake-v01`), to show 0.1 plugins keep working.
async fn stack() -> &'static Stack {
    stack_with_controller("esox-controller", |_| {
        vec![
            "--store-requeue-interval".into(),
            "10s".into(),
            "--plugin-dir".into(),
            plugin_dir_with("esox_fixture_fake_v0_1.wasm")
                .display()
                .to_string(),
        ]
    })
    .await
}

/// A fake SecretStore serving `data` (key -> value).
fn fake_store(ns: &str, name: &str, data: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provider": {"fake": {"data": data.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}}},
    })
}

/// An ExternalSecret reading `secretKey <- remote key` pairs from store `store`.
fn external_secret(
    ns: &str,
    name: &str,
    store: &str,
    data: &[(&str, &str)],
    spec_extra: Value,
) -> Value {
    let mut spec = json!({
        "refreshInterval": "1h",
        "secretStoreRef": {"name": store, "kind": "SecretStore"},
        "data": data.iter().map(|(k, r)| json!({"secretKey": k, "remoteRef": {"key": r}})).collect::<Vec<_>>(),
    });
    merge(&mut spec, spec_extra);
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        for (k, v) in e {
            match b.get_mut(&k) {
                Some(existing @ Value::Object(_)) if v.is_object() => merge(existing, v),
                _ => {
                    b.insert(k, v);
                }
            }
        }
    }
}

async fn wait_secret_gone(client: &kube::Client, ns: &str, name: &str) {
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    eventually(&format!("Secret {ns}/{name} to be deleted"), || async {
        api.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await
}

async fn annotate(client: &kube::Client, ns: &str, name: &str, key: &str, value: &str) {
    es_api(client, ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {key: value}}})),
        )
        .await
        .unwrap();
}

async fn delete_es(client: &kube::Client, ns: &str, name: &str) {
    es_api(client, ns)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_plugin_built_for_contract_0_1_still_syncs_an_external_secret() {
    let stack = stack().await;
    let ns = stack.new_namespace("v01").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("v01");
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": "old-plugin", "namespace": ns.name()},
            "spec": {"provider": {"fake-v01": {"data": [{"key": "db", "value": value}]}}},
        }),
    )
    .await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "from-v01",
            "old-plugin",
            &[("password", "db")],
            json!({}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "from-v01", "True", "SecretSynced").await;
    wait_secret_data(&client, ns.name(), "from-v01", &[("password", &value)]).await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn owner_policy_writes_the_secret_with_label_hash_owner_and_status() {
    let stack = stack().await;
    let ns = stack.new_namespace("owner").await.unwrap();
    let client = stack.admin_client();
    let password = secret_value("owner-password");
    let json_value = format!(r#"{{"user":"app","password":"{password}"}}"#);
    apply(
        &client,
        fake_store(ns.name(), "fake", &[("db", &json_value)]),
    )
    .await;
    let mut es = external_secret(ns.name(), "db", "fake", &[], json!({}));
    es["spec"]["data"] = json!([
        {"secretKey": "user", "remoteRef": {"key": "db", "property": "user"}},
        {"secretKey": "password", "remoteRef": {"key": "db", "property": "password"}},
    ]);
    apply(&client, es).await;

    let es = wait_es(&client, ns.name(), "db", "True", "SecretSynced").await;
    let (_, _, message) = ready_condition(&es).unwrap();
    assert_eq!(message, "secret synced");
    let status = &es.data["status"];
    assert_eq!(status["binding"]["name"], "db");
    assert!(
        status["refreshTime"].is_string(),
        "refreshTime set: {status}"
    );
    assert!(
        status["syncedResourceVersion"]
            .as_str()
            .unwrap()
            .starts_with("1-"),
        "{status}"
    );

    let secret = wait_secret_data(
        &client,
        ns.name(),
        "db",
        &[("user", "app"), ("password", &password)],
    )
    .await;
    let labels = secret.metadata.labels.clone().unwrap();
    assert_eq!(labels["reconcile.external-secrets.io/managed"], "true");
    assert!(labels.contains_key("reconcile.external-secrets.io/created-by"));
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .clone()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    assert_eq!(
        secret.metadata.annotations.unwrap()["reconcile.external-secrets.io/data-hash"],
        esox_sync::data_hash(&data)
    );
    let owner = &secret.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ExternalSecret", "db", Some(true))
    );
    assert_eq!(owner.uid, es.metadata.uid.unwrap());
    let managers: Vec<String> = secret
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"esox/db".to_string()),
        "written by the ExternalSecret's own field manager esox/db: {managers:?}"
    );

    let store =
        Api::<DynamicObject>::namespaced_with(client.clone(), ns.name(), &gvk("SecretStore"))
            .get("fake")
            .await
            .unwrap();
    assert_eq!(
        ready_condition(&store).unwrap(),
        ("True".into(), "Valid".into(), "store validated".into())
    );
    assert_eq!(store.data["status"]["capabilities"], "ReadOnly");
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_failing_provider_leaves_the_secret_intact_and_recovers_when_fixed() {
    let stack = stack().await;
    let ns = stack.new_namespace("failing").await.unwrap();
    let client = stack.admin_client();
    let v1 = secret_value("failing-v1");
    apply(&client, fake_store(ns.name(), "fake", &[("api", &v1)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "api",
            "fake",
            &[("token", "api")],
            json!({"refreshInterval": "1s"}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "api", "True", "SecretSynced").await;
    wait_secret_data(&client, ns.name(), "api", &[("token", &v1)]).await;

    // The remote key disappears: under deletionPolicy Retain that is an error.
    apply(&client, fake_store(ns.name(), "fake", &[("other", "x")])).await;
    let es = wait_es(&client, ns.name(), "api", "False", "SecretSyncedError").await;
    assert_eq!(
        ready_condition(&es).unwrap().2,
        "could not get secret data from provider"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        secret_data(&client, ns.name(), "api").await.unwrap()["token"],
        v1,
        "the Secret is untouched"
    );

    // The store itself fails validation: the flood gate keeps the ExternalSecret failing.
    let mut broken = fake_store(ns.name(), "fake", &[("api", &v1)]);
    broken["spec"]["provider"]["fake"]["validationResult"] = json!(2);
    apply(&client, broken).await;
    let store_api =
        Api::<DynamicObject>::namespaced_with(client.clone(), ns.name(), &gvk("SecretStore"));
    eventually("the store to go Ready=False", || async {
        let s = store_api.get("fake").await.ok()?;
        (ready_condition(&s)?.1 == "InvalidProviderConfig").then_some(())
    })
    .await;
    let es = wait_es(&client, ns.name(), "api", "False", "SecretSyncedError").await;
    assert_eq!(es.data["status"]["binding"]["name"], "api");
    assert_eq!(
        secret_data(&client, ns.name(), "api").await.unwrap()["token"],
        v1
    );

    // Fixed: a new value flows in.
    let v2 = secret_value("failing-v2");
    apply(&client, fake_store(ns.name(), "fake", &[("api", &v2)])).await;
    wait_es(&client, ns.name(), "api", "True", "SecretSynced").await;
    wait_secret_data(&client, ns.name(), "api", &[("token", &v2)]).await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn owned_secrets_are_garbage_collected_with_their_external_secret() {
    let stack = stack().await;
    let ns = stack.new_namespace("gc").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("gc");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    apply(
        &client,
        external_secret(ns.name(), "owned", "fake", &[("k", "k")], json!({})),
    )
    .await;
    wait_secret_data(&client, ns.name(), "owned", &[("k", &v)]).await;
    delete_es(&client, ns.name(), "owned").await;
    wait_secret_gone(&client, ns.name(), "owned").await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn orphan_policy_writes_without_owner_and_the_secret_outlives_the_external_secret() {
    let stack = stack().await;
    let ns = stack.new_namespace("orphan").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("orphan");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "orph",
            "fake",
            &[("k", "k")],
            json!({"target": {"creationPolicy": "Orphan"}}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "orph", "True", "SecretSynced").await;
    let secret = wait_secret_data(&client, ns.name(), "orph", &[("k", &v)]).await;
    assert!(
        secret
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    assert!(
        !secret
            .metadata
            .labels
            .unwrap()
            .contains_key("reconcile.external-secrets.io/created-by")
    );
    delete_es(&client, ns.name(), "orph").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        secret_data(&client, ns.name(), "orph").await.unwrap()["k"],
        v,
        "an orphaned Secret stays"
    );
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn merge_policy_adds_keys_to_an_existing_secret_and_reports_a_missing_one() {
    let stack = stack().await;
    let ns = stack.new_namespace("merge").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("merge");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "m",
            "fake",
            &[("from-esox", "k")],
            json!({"target": {"creationPolicy": "Merge"}}),
        ),
    )
    .await;
    let es = wait_es(&client, ns.name(), "m", "True", "SecretMissing").await;
    assert_eq!(
        ready_condition(&es).unwrap().2,
        "secret will not be created due to CreationPolicy=Merge"
    );
    assert!(secret_data(&client, ns.name(), "m").await.is_none());

    let existing = Secret {
        metadata: ObjectMeta {
            name: Some("m".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "mine".to_string(),
            ByteString(b"kept".to_vec()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &existing)
        .await
        .unwrap();
    annotate(&client, ns.name(), "m", "force-sync", "1").await;
    let secret = wait_secret_data(
        &client,
        ns.name(),
        "m",
        &[("mine", "kept"), ("from-esox", &v)],
    )
    .await;
    assert!(
        secret
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    wait_es(&client, ns.name(), "m", "True", "SecretSynced").await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn none_policy_writes_no_secret() {
    let stack = stack().await;
    let ns = stack.new_namespace("none").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("none");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "n",
            "fake",
            &[("k", "k")],
            json!({"target": {"creationPolicy": "None"}}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "n", "True", "SecretSynced").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(secret_data(&client, ns.name(), "n").await.is_none());
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn create_or_merge_creates_without_owner_then_merges() {
    let stack = stack().await;
    let ns = stack.new_namespace("create-or-merge").await.unwrap();
    let client = stack.admin_client();
    let (a, b) = (secret_value("com-a"), secret_value("com-b"));
    apply(
        &client,
        fake_store(ns.name(), "fake", &[("a", &a), ("b", &b)]),
    )
    .await;
    let com = json!({"target": {"name": "shared", "creationPolicy": "CreateOrMerge"}});
    apply(
        &client,
        external_secret(ns.name(), "first", "fake", &[("a", "a")], com.clone()),
    )
    .await;
    let secret = wait_secret_data(&client, ns.name(), "shared", &[("a", &a)]).await;
    assert!(
        secret
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    apply(
        &client,
        external_secret(ns.name(), "second", "fake", &[("b", "b")], com),
    )
    .await;
    wait_secret_data(&client, ns.name(), "shared", &[("a", &a), ("b", &b)]).await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn deletion_policy_delete_removes_the_secret_when_the_remote_value_is_gone() {
    let stack = stack().await;
    let ns = stack.new_namespace("del-delete").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("del-delete");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "d",
            "fake",
            &[("k", "k")],
            json!({"refreshInterval": "1s", "target": {"deletionPolicy": "Delete"}}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "d", &[("k", &v)]).await;
    apply(
        &client,
        fake_store(ns.name(), "fake", &[("unrelated", "x")]),
    )
    .await;
    let es = wait_es(&client, ns.name(), "d", "True", "SecretDeleted").await;
    assert_eq!(
        ready_condition(&es).unwrap().2,
        "secret deleted due to DeletionPolicy=Delete"
    );
    wait_secret_gone(&client, ns.name(), "d").await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn deletion_policy_merge_removes_only_the_managed_keys() {
    let stack = stack().await;
    let ns = stack.new_namespace("del-merge").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("del-merge");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    let existing = Secret {
        metadata: ObjectMeta {
            name: Some("dm".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "mine".to_string(),
            ByteString(b"kept".to_vec()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &existing)
        .await
        .unwrap();
    let policy = json!({"refreshInterval": "1s", "target": {"creationPolicy": "Merge", "deletionPolicy": "Merge"}});
    apply(
        &client,
        external_secret(ns.name(), "dm", "fake", &[("k", "k")], policy),
    )
    .await;
    wait_secret_data(&client, ns.name(), "dm", &[("mine", "kept"), ("k", &v)]).await;
    apply(
        &client,
        fake_store(ns.name(), "fake", &[("unrelated", "x")]),
    )
    .await;
    wait_secret_data(&client, ns.name(), "dm", &[("mine", "kept")]).await;
    wait_es(&client, ns.name(), "dm", "True", "SecretSynced").await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn periodic_refresh_picks_up_a_changed_value() {
    let stack = stack().await;
    let ns = stack.new_namespace("periodic").await.unwrap();
    let client = stack.admin_client();
    let (v1, v2) = (secret_value("periodic-1"), secret_value("periodic-2"));
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v1)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "p",
            "fake",
            &[("k", "k")],
            json!({"refreshPolicy": "Periodic", "refreshInterval": "2s"}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "p", &[("k", &v1)]).await;
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v2)])).await;
    wait_secret_data(&client, ns.name(), "p", &[("k", &v2)]).await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn on_change_refreshes_only_when_the_external_secret_changes() {
    let stack = stack().await;
    let ns = stack.new_namespace("onchange").await.unwrap();
    let client = stack.admin_client();
    let (v1, v2) = (secret_value("onchange-1"), secret_value("onchange-2"));
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v1)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "o",
            "fake",
            &[("k", "k")],
            json!({"refreshPolicy": "OnChange", "refreshInterval": "1s"}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "o", &[("k", &v1)]).await;
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v2)])).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        secret_data(&client, ns.name(), "o").await.unwrap()["k"],
        v1,
        "no refresh without a change"
    );
    annotate(&client, ns.name(), "o", "touched", "yes").await;
    wait_secret_data(&client, ns.name(), "o", &[("k", &v2)]).await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn created_once_never_refreshes_even_when_forced() {
    let stack = stack().await;
    let ns = stack.new_namespace("createdonce").await.unwrap();
    let client = stack.admin_client();
    let (v1, v2) = (secret_value("once-1"), secret_value("once-2"));
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v1)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "c",
            "fake",
            &[("k", "k")],
            json!({"refreshPolicy": "CreatedOnce", "refreshInterval": "1s"}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "c", &[("k", &v1)]).await;
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v2)])).await;
    annotate(&client, ns.name(), "c", "force-sync", "1").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(secret_data(&client, ns.name(), "c").await.unwrap()["k"], v1);
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn force_sync_annotation_refreshes_at_once() {
    let stack = stack().await;
    let ns = stack.new_namespace("force-sync").await.unwrap();
    let client = stack.admin_client();
    let (v1, v2) = (secret_value("force-1"), secret_value("force-2"));
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v1)])).await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "f",
            "fake",
            &[("k", "k")],
            json!({"refreshInterval": "1h"}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "f", &[("k", &v1)]).await;
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v2)])).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        secret_data(&client, ns.name(), "f").await.unwrap()["k"],
        v1,
        "1h interval: not yet refreshed"
    );
    annotate(&client, ns.name(), "f", "force-sync", "2").await;
    wait_secret_data(&client, ns.name(), "f", &[("k", &v2)]).await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn an_edited_managed_secret_is_repaired() {
    let stack = stack().await;
    let ns = stack.new_namespace("repair").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("repair");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    apply(
        &client,
        external_secret(ns.name(), "r", "fake", &[("k", "k")], json!({})),
    )
    .await;
    wait_secret_data(&client, ns.name(), "r", &[("k", &v)]).await;
    Api::<Secret>::namespaced(client.clone(), ns.name())
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "dGFtcGVyZWQ=", "extra": "eA=="}})),
        )
        .await
        .unwrap();
    wait_secret_data(&client, ns.name(), "r", &[("k", &v)]).await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_cluster_secret_store_is_refused_outside_its_namespace_conditions() {
    let stack = stack().await;
    let allowed = stack.new_namespace("css-allowed").await.unwrap();
    let denied = stack.new_namespace("css-denied").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("css");
    let store_name = format!("css-{}", allowed.name());
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ClusterSecretStore",
            "metadata": {"name": store_name},
            "spec": {
                "provider": {"fake": {"data": [{"key": "k", "value": v}]}},
                "conditions": [{"namespaces": [allowed.name()]}],
            },
        }),
    )
    .await;
    let css_ref = json!({"secretStoreRef": {"name": store_name, "kind": "ClusterSecretStore"}});
    apply(
        &client,
        external_secret(
            allowed.name(),
            "x",
            &store_name,
            &[("k", "k")],
            css_ref.clone(),
        ),
    )
    .await;
    apply(
        &client,
        external_secret(denied.name(), "x", &store_name, &[("k", "k")], css_ref),
    )
    .await;
    wait_secret_data(&client, allowed.name(), "x", &[("k", &v)]).await;
    wait_es(&client, denied.name(), "x", "False", "SecretSyncedError").await;
    assert!(secret_data(&client, denied.name(), "x").await.is_none());
    let events =
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), denied.name());
    eventually(
        "an UpdateFailed event naming the namespace condition",
        || async {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("UpdateFailed")
                        && e.note
                            .as_deref()
                            .unwrap_or_default()
                            .contains("denied by spec.condition")
                })
                .then_some(())
        },
    )
    .await;
    Api::<DynamicObject>::all_with(client.clone(), &gvk("ClusterSecretStore"))
        .delete(&store_name, &DeleteParams::default())
        .await
        .unwrap();
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_spec_esos_webhook_would_refuse_is_refused_by_cel() {
    let stack = stack().await;
    let ns = stack.new_namespace("cel").await.unwrap();
    let client = stack.admin_client();
    let bad = external_secret(
        ns.name(),
        "bad",
        "fake",
        &[("k", "k")],
        json!({"target": {"creationPolicy": "Merge", "deletionPolicy": "Delete"}}),
    );
    let err = esox_e2e::manifests::apply_yaml(&client, &serde_yaml::to_string(&bad).unwrap())
        .await
        .expect_err("the API server refuses it");
    let text = format!("{err:#}");
    assert!(
        text.contains("Invalid") || text.contains("invalid"),
        "refused as invalid: {text}"
    );
    assert!(
        text.to_lowercase().contains("deletionpolicy"),
        "the message names the field: {text}"
    );
    assert!(
        es_api(&client, ns.name())
            .get_opt("bad")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn the_controller_serves_health_and_eso_metrics() {
    let stack = stack().await;
    let ns = stack.new_namespace("metrics").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("metrics");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    apply(
        &client,
        external_secret(ns.name(), "m", "fake", &[("k", "k")], json!({})),
    )
    .await;
    wait_es(&client, ns.name(), "m", "True", "SecretSynced").await;
    let log = controller_log();
    let start = log
        .lines()
        .find(|l| l.contains("esox controller starting"))
        .expect("start line");
    let field = |name: &str| -> String {
        let line: Value = serde_json::from_str(start).unwrap();
        line["fields"][name].as_str().unwrap().to_string()
    };
    let metrics = reqwest_get(&format!("http://{}/metrics", field("metrics_addr"))).await;
    let needle = format!(
        r#"externalsecret_status_condition{{name="m",namespace="{}",condition="Ready",status="True"}} 1"#,
        ns.name()
    );
    assert!(metrics.contains(&needle), "{metrics}");
    assert!(metrics.contains("externalsecret_sync_calls_total"));
    assert!(metrics.contains("esox_plugin_calls_total"));

    // Every series ESO's Grafana dashboard (deploy/charts/external-secrets/files/monitoring/
    // grafana-dashboard.json in ESO's repository, v2.9.0) queries, with the labels it filters
    // and groups by. Not served: controller_runtime_webhook_* (esox has no admission webhook;
    // its CRDs validate with CEL in the API server).
    apply(
        &client,
        external_secret(
            ns.name(),
            "broken",
            "no-such-store",
            &[("k", "k")],
            json!({}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "broken", "False", "SecretSyncedError").await;
    let metrics = metrics_text().await;
    let series = parse_series(&metrics);
    for (name, labels) in [
        (
            "controller_runtime_reconcile_total",
            &["controller", "result"][..],
        ),
        (
            "controller_runtime_reconcile_time_seconds_bucket",
            &["controller", "le"],
        ),
        ("controller_runtime_active_workers", &["controller"]),
        (
            "controller_runtime_max_concurrent_reconciles",
            &["controller"],
        ),
        ("workqueue_depth", &["name"]),
        (
            "externalsecret_provider_api_calls_count",
            &["provider", "call", "status"],
        ),
        (
            "externalsecret_status_condition",
            &["name", "namespace", "condition", "status"],
        ),
        ("externalsecret_sync_calls_error", &["name", "namespace"]),
    ] {
        assert!(
            series
                .iter()
                .any(|(n, l)| n == name && labels.iter().all(|k| l.contains_key(*k))),
            "no {name} series with labels {labels:?}"
        );
    }
    let value = |name: &str, want: &[(&str, &str)]| -> f64 {
        series
            .iter()
            .filter(|(n, l)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, l)| l["__value"].parse::<f64>().unwrap())
            .sum()
    };
    // The synced ExternalSecret asked to come back after its interval; the broken one failed.
    let es_result = |result| {
        value(
            "controller_runtime_reconcile_total",
            &[("controller", "externalsecret"), ("result", result)],
        )
    };
    assert!(es_result("requeue_after") >= 1.0, "{metrics}");
    assert!(es_result("error") >= 1.0, "{metrics}");
    assert!(
        value(
            "controller_runtime_reconcile_total",
            &[("controller", "secretstore")]
        ) >= 1.0
    );
    assert!(
        value(
            "externalsecret_provider_api_calls_count",
            &[("provider", "fake"), ("status", "success")]
        ) >= 1.0
    );
    assert!(
        value(
            "controller_runtime_max_concurrent_reconciles",
            &[("controller", "externalsecret")]
        ) >= 2.0
    );
    let healthz = reqwest_get(&format!("http://{}/healthz", field("live_addr"))).await;
    assert!(
        healthz.contains("[+]watch ExternalSecret ok") && healthz.ends_with("\nok\n"),
        "{healthz}"
    );
    let readyz = reqwest_get(&format!("http://{}/readyz", field("live_addr"))).await;
    for check in [
        "[+]watch ExternalSecret ok",
        "[+]watch SecretStore ok",
        "[+]watch ClusterSecretStore ok",
        "[+]watch Secret ok",
        "[+]apiserver ok",
    ] {
        assert!(readyz.contains(check), "{check}: {readyz}");
    }
    assert!(readyz.ends_with("\nok\n"), "{readyz}");
    assert_no_secret_values(&client).await;
}

/// Prometheus text as (name, labels) per sample, the value under `__value`.
fn parse_series(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (head, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match head.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (head, ""),
        };
        let mut map = BTreeMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            if let Some((k, v)) = pair.split_once("=\"") {
                map.insert(
                    k.trim_start_matches(',').to_string(),
                    v.trim_end_matches('"').to_string(),
                );
            }
        }
        map.insert("__value".to_string(), value.to_string());
        out.push((name.to_string(), map));
    }
    out
}

/// The controller's `/metrics` text (its address is in its start line).
async fn metrics_text() -> String {
    let log = controller_log();
    let start = log
        .lines()
        .find(|l| l.contains("esox controller starting"))
        .expect("start line");
    let line: Value = serde_json::from_str(start).unwrap();
    let addr = line["fields"]["metrics_addr"].as_str().unwrap().to_string();
    reqwest_get(&format!("http://{addr}/metrics")).await
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_secret_another_external_secret_owns_is_refused_under_every_policy_and_left_intact() {
    let stack = stack().await;
    let ns = stack.new_namespace("owned").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("owned");
    let intruder = secret_value("owned-intruder");
    apply(
        &client,
        fake_store(ns.name(), "fake", &[("k", &v), ("i", &intruder)]),
    )
    .await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "first",
            "fake",
            &[("k", "k")],
            json!({"target": {"name": "shared"}}),
        ),
    )
    .await;
    let first = wait_es(&client, ns.name(), "first", "True", "SecretSynced").await;
    for (name, policy) in [
        ("orphan", "Orphan"),
        ("merger", "Merge"),
        ("owner", "Owner"),
    ] {
        apply(
            &client,
            external_secret(
                ns.name(),
                name,
                "fake",
                &[("intruder", "i")],
                json!({"target": {"name": "shared", "creationPolicy": policy}}),
            ),
        )
        .await;
        let es = wait_es(&client, ns.name(), name, "False", "SecretSyncedError").await;
        assert_eq!(
            ready_condition(&es).unwrap().2,
            "target is owned by another ExternalSecret",
            "{policy}"
        );
    }
    // Give the refused ones time to have written, were they not refused.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let secret = Api::<Secret>::namespaced(client.clone(), ns.name())
        .get("shared")
        .await
        .unwrap();
    let owners = secret.metadata.owner_references.clone().unwrap();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].uid, first.metadata.uid.unwrap());
    let keys: Vec<&String> = secret.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, vec!["k"], "no intruding key");
    // The Orphan and Owner ones first tried a create without reading (a first sync); the
    // create conflicted, and the retry that read the Secret refused it as above.
    let conflicts = metrics_text()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("esox_first_sync_create_conflicts_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(conflicts >= 2, "{conflicts} create conflicts");
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn owner_external_secrets_racing_for_one_secret_end_with_exactly_one_owner() {
    let stack = stack().await;
    let ns = stack.new_namespace("race").await.unwrap();
    let client = stack.admin_client();
    let (a, b) = (secret_value("race-a"), secret_value("race-b"));
    apply(
        &client,
        fake_store(ns.name(), "fake", &[("a", &a), ("b", &b)]),
    )
    .await;
    for round in 0..3 {
        let target = format!("race-{round}");
        let es = |name: &str, key: &str| {
            external_secret(
                ns.name(),
                &format!("{name}-{round}"),
                "fake",
                &[("v", key)],
                json!({"target": {"name": target}}),
            )
        };
        // Both created at once: the first create wins, the other sees a conflict or an owner.
        futures::join!(apply(&client, es("a", "a")), apply(&client, es("b", "b")));
        let mut ready = Vec::new();
        for name in ["a", "b"] {
            let name = format!("{name}-{round}");
            let obj = eventually(&format!("{name} to have a Ready condition"), || async {
                let obj = es_api(&client, ns.name()).get(&name).await.ok()?;
                let (status, _, message) = ready_condition(&obj)?;
                (status == "True" || message == "target is owned by another ExternalSecret")
                    .then_some(obj)
            })
            .await;
            ready.push((name, obj));
        }
        let owners: Vec<_> = ready
            .iter()
            .filter(|(_, o)| ready_condition(o).unwrap().0 == "True")
            .collect();
        assert_eq!(owners.len(), 1, "round {round}: exactly one owner");
        let (winner, obj) = owners[0];
        let secret = Api::<Secret>::namespaced(client.clone(), ns.name())
            .get(&target)
            .await
            .unwrap();
        let refs = secret.metadata.owner_references.clone().unwrap();
        assert_eq!(refs.len(), 1, "{refs:?}");
        assert_eq!(Some(&refs[0].uid), obj.metadata.uid.as_ref(), "{winner}");
        let expected = if winner.starts_with('a') { &a } else { &b };
        assert_eq!(
            secret_data(&client, ns.name(), &target).await.unwrap()["v"],
            *expected,
            "the Secret holds the winner's value"
        );
    }
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn deletion_policy_delete_never_deletes_a_secret_the_external_secret_did_not_create() {
    let stack = stack().await;
    let ns = stack.new_namespace("foreign").await.unwrap();
    let client = stack.admin_client();
    let mine = secret_value("foreign-own");
    Api::<Secret>::namespaced(client.clone(), ns.name())
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("theirs".into()),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([(
                    "own".to_string(),
                    ByteString(mine.clone().into_bytes()),
                )])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    apply(
        &client,
        fake_store(ns.name(), "fake", &[("unrelated", "x")]),
    )
    .await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "d",
            "fake",
            &[("k", "missing")],
            json!({"target": {"name": "theirs", "deletionPolicy": "Delete"}}),
        ),
    )
    .await;
    let es = wait_es(&client, ns.name(), "d", "True", "SecretSynced").await;
    assert_eq!(
        ready_condition(&es).unwrap().2,
        esox_sync::write::MSG_KEPT_FOREIGN
    );
    assert_eq!(
        secret_data(&client, ns.name(), "theirs").await.unwrap()["own"],
        mine,
        "someone else's Secret is still there, untouched"
    );
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn deleted_external_secrets_and_stores_leave_no_metric_series_behind() {
    let stack = stack().await;
    let ns = stack.new_namespace("forget").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("forget");
    apply(&client, fake_store(ns.name(), "gone-store", &[("k", &v)])).await;
    apply(
        &client,
        external_secret(ns.name(), "gone-es", "gone-store", &[("k", "k")], json!({})),
    )
    .await;
    // A second one reads the same store: it stays, and so do its series.
    apply(
        &client,
        external_secret(
            ns.name(),
            "stays",
            "gone-store",
            &[("k", "k")],
            json!({"target": {"name": "stays"}}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "gone-es", "True", "SecretSynced").await;
    wait_es(&client, ns.name(), "stays", "True", "SecretSynced").await;
    let series = |name: &str| format!(r#"name="{name}",namespace="{}""#, ns.name());
    let text = metrics_text().await;
    for name in ["gone-es", "gone-store", "stays"] {
        assert!(text.contains(&series(name)), "{name} has series: {text}");
    }

    delete_es(&client, ns.name(), "gone-es").await;
    eventually("the deleted ExternalSecret's series to go", || async {
        (!metrics_text().await.contains(&series("gone-es"))).then_some(())
    })
    .await;
    Api::<DynamicObject>::namespaced_with(client.clone(), ns.name(), &gvk("SecretStore"))
        .delete("gone-store", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted store's series to go", || async {
        (!metrics_text().await.contains(&series("gone-store"))).then_some(())
    })
    .await;
    assert!(
        metrics_text().await.contains(&series("stays")),
        "the remaining ExternalSecret keeps its series"
    );
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn hostile_templates_fail_fast_with_clear_errors_while_others_keep_syncing() {
    let stack = stack().await;
    let ns = stack.new_namespace("hostile-tpl").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("hostile-tpl");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    wait_ready(&client, ns.name(), "SecretStore", "fake", "True", "Valid").await;
    let hostile = [
        (
            "huge",
            r#"{{range 64}}{{repeat 16777216 "x"}}{{end}}"#,
            "output limit",
        ),
        (
            "loops",
            "{{range 1048576}}{{range 1048576}}{{end}}{{end}}",
            "step limit",
        ),
        (
            "recursion",
            r#"{{define "t"}}{{template "t" .}}{{template "t" .}}{{end}}{{template "t" .}}"#,
            "nesting limit",
        ),
    ];
    let started = std::time::Instant::now();
    for (name, template, _) in hostile {
        apply(
            &client,
            external_secret(
                ns.name(),
                name,
                "fake",
                &[("k", "k")],
                json!({"target": {"template": {"data": {"out": template, "k": "{{ .k }}"}}}}),
            ),
        )
        .await;
    }
    apply(
        &client,
        external_secret(ns.name(), "fine", "fake", &[("k", "k")], json!({})),
    )
    .await;
    wait_secret_data(&client, ns.name(), "fine", &[("k", &v)]).await;
    println!(
        "a plain ExternalSecret synced {:.1}s after three hostile ones were applied",
        started.elapsed().as_secs_f64()
    );
    for (name, _, limit) in hostile {
        let es = wait_es(&client, ns.name(), name, "False", "SecretSyncedError").await;
        assert_eq!(ready_condition(&es).unwrap().2, "could not update secret");
        // An UpdateFailed event names the limit (earlier ones may say the store was not
        // validated yet).
        eventually(
            &format!("{name}'s UpdateFailed event naming the {limit}"),
            || async {
                let notes = event_notes(&client, ns.name(), name, "UpdateFailed").await;
                notes.iter().any(|n| n.contains(limit)).then_some(())
            },
        )
        .await;
        assert!(
            secret_data(&client, ns.name(), name).await.is_none(),
            "{name}: no Secret written"
        );
    }
    assert_no_secret_values(&client).await;
}

/// The API server semantics the write plan's preconditions rest on, checked on the real one:
/// an apply carrying `ABSENT_RESOURCE_VERSION` creates an absent Secret and is refused with a
/// conflict when the Secret exists; an apply at a stale resourceVersion is refused too.
#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn conditional_writes_esox_relies_on_hold_on_the_real_api_server() {
    let stack = stack().await;
    let ns = stack.new_namespace("conditional").await.unwrap();
    let client = stack.admin_client();
    let api = Api::<Secret>::namespaced(client.clone(), ns.name());
    let body = |rv: &str, value: &str| {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "c", "namespace": ns.name(), "resourceVersion": rv},
            "stringData": {"k": value},
        })
    };
    let pp = PatchParams::apply("esox/test").force();
    let absent = esox_controller::external_secret::ABSENT_RESOURCE_VERSION;
    let created = api
        .patch("c", &pp, &Patch::Apply(body(absent, "first")))
        .await
        .expect("an absent Secret is created");
    let again = api
        .patch("c", &pp, &Patch::Apply(body(absent, "second")))
        .await;
    assert!(
        matches!(&again, Err(kube::Error::Api(s)) if s.code == 409),
        "a create-only apply over an existing Secret is a conflict: {again:?}"
    );
    let rv = created.metadata.resource_version.clone().unwrap();
    let updated = api
        .patch("c", &pp, &Patch::Apply(body(&rv, "third")))
        .await
        .expect("an apply at the current version goes through");
    let stale = api
        .patch("c", &pp, &Patch::Apply(body(&rv, "fourth")))
        .await;
    assert!(
        matches!(&stale, Err(kube::Error::Api(s)) if s.code == 409),
        "an apply at a stale version is a conflict: {stale:?}"
    );
    assert_ne!(updated.metadata.resource_version, Some(rv));
    assert_eq!(
        secret_data(&client, ns.name(), "c").await.unwrap()["k"],
        "third"
    );
}

/// A switch from ESO: an ExternalSecret with ESO's cleanup finalizer and a Secret exactly as
/// ESO left it (managed label, data hash, owner reference, written by ESO's field manager).
/// esox takes over without rewriting the Secret, removes the finalizer, and deleting the
/// ExternalSecret completes. Under Merge, the key ESO wrote for an ExternalSecret is that
/// ExternalSecret's: when it stops rendering it, esox removes it and keeps the user's.
#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn an_external_secret_and_secret_eso_left_behind_are_taken_over_without_a_rewrite() {
    let stack = stack().await;
    let ns = stack.new_namespace("from-eso").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("from-eso");
    let finalizer = esox_controller::external_secret::ESO_FINALIZER;

    // The ExternalSecret first (its uid goes into the Secret's owner reference); its store
    // comes last, so esox cannot sync before the Secret is in place.
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "migrated", "namespace": ns.name(), "finalizers": [finalizer]},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "fake", "kind": "SecretStore"},
                "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}],
            },
        }),
    )
    .await;
    let es = es_api(&client, ns.name()).get("migrated").await.unwrap();
    let data = BTreeMap::from([("k".to_string(), v.clone().into_bytes())]);
    let secrets = Api::<Secret>::namespaced(client.clone(), ns.name());
    let eso_manager = "externalsecrets.external-secrets.io/migrated";
    let created = secrets
        .create(
            &PostParams {
                field_manager: Some(eso_manager.into()),
                ..Default::default()
            },
            &Secret {
                metadata: ObjectMeta {
                    name: Some("migrated".into()),
                    labels: Some(BTreeMap::from([
                        (
                            "reconcile.external-secrets.io/managed".to_string(),
                            "true".to_string(),
                        ),
                        (
                            "reconcile.external-secrets.io/created-by".to_string(),
                            esox_sync::created_by_label(ns.name(), "migrated"),
                        ),
                    ])),
                    annotations: Some(BTreeMap::from([(
                        "reconcile.external-secrets.io/data-hash".to_string(),
                        esox_sync::data_hash(&data),
                    )])),
                    owner_references: Some(vec![
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                            api_version: "external-secrets.io/v1".into(),
                            kind: "ExternalSecret".into(),
                            name: "migrated".into(),
                            uid: es.metadata.uid.clone().unwrap(),
                            controller: Some(true),
                            block_owner_deletion: Some(true),
                        },
                    ]),
                    ..Default::default()
                },
                type_: Some("Opaque".into()),
                data: Some(
                    data.iter()
                        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                        .collect(),
                ),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // Merge: ESO wrote "a" for ExternalSecret "merger" into a Secret whose "user" key is a
    // person's.
    secrets
        .create(
            &PostParams {
                field_manager: Some("kubectl".into()),
                ..Default::default()
            },
            &Secret {
                metadata: ObjectMeta {
                    name: Some("shared".into()),
                    ..Default::default()
                },
                string_data: Some(BTreeMap::from([("user".to_string(), "u".to_string())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    secrets
        .patch(
            "shared",
            &PatchParams {
                field_manager: Some("externalsecrets.external-secrets.io/merger".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"stringData": {"a": "written-by-eso"}})),
        )
        .await
        .unwrap();

    apply(
        &client,
        fake_store(ns.name(), "fake", &[("k", &v), ("b", "rendered-by-esox")]),
    )
    .await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "merger",
            "fake",
            &[("b", "b")],
            json!({"target": {"name": "shared", "creationPolicy": "Merge"}}),
        ),
    )
    .await;

    wait_es(&client, ns.name(), "migrated", "True", "SecretSynced").await;
    let after = secrets.get("migrated").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, created.metadata.resource_version,
        "the Secret ESO left intact is not rewritten"
    );
    eventually("ESO's finalizer to be removed", || async {
        let es = es_api(&client, ns.name()).get("migrated").await.ok()?;
        (!es.metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == finalizer))
        .then_some(())
    })
    .await;

    wait_es(&client, ns.name(), "merger", "True", "SecretSynced").await;
    let shared = wait_secret_data(
        &client,
        ns.name(),
        "shared",
        &[("user", "u"), ("b", "rendered-by-esox")],
    )
    .await;
    assert!(
        !shared.data.unwrap().contains_key("a"),
        "the key ESO wrote for this ExternalSecret, no longer rendered, is removed"
    );

    // Deleting an ExternalSecret that had ESO's finalizer completes.
    delete_es(&client, ns.name(), "migrated").await;
    eventually("the ExternalSecret to be gone", || async {
        es_api(&client, ns.name())
            .get_opt("migrated")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // And so does deleting a namespace that holds one: a namespace with an ExternalSecret
    // carrying ESO's finalizer, deleted before or after esox saw it, goes away.
    let doomed = stack.new_namespace("eso-ns-delete").await.unwrap();
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "left-by-eso", "namespace": doomed.name(), "finalizers": [finalizer]},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "absent", "kind": "SecretStore"},
                "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}],
            },
        }),
    )
    .await;
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    namespaces
        .delete(doomed.name(), &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the namespace holding ESO's finalizer to be deleted",
        || async {
            namespaces
                .get_opt(doomed.name())
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_no_secret_values(&client).await;
}

/// A plain HTTP GET over a TCP socket (the endpoints are local and unencrypted).
async fn reqwest_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn templates_render_a_docker_config_secret_and_a_config_file_from_a_configmap() {
    let stack = stack().await;
    let ns = stack.new_namespace("template").await.unwrap();
    let client = stack.admin_client();
    let password = secret_value("registry-password");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("robot:{password}"));
    register_secret_value(auth.clone());
    let remote = format!(r#"{{"user":"robot","password":"{password}"}}"#);
    apply(
        &client,
        fake_store(ns.name(), "fake", &[("registry", &remote)]),
    )
    .await;

    // The config file's template lives in a ConfigMap, as ESO users keep it (templateFrom).
    apply(
        &client,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app-config-template", "namespace": ns.name()},
            "data": {"config.yaml": "database:\n  user: {{ .user }}\n  password: {{ .password | quote }}\n  url: postgres://{{ .user }}@db:5432/app\n"},
        }),
    )
    .await;
    let mut es = external_secret(ns.name(), "registry", "fake", &[], json!({}));
    es["spec"]["data"] = json!([
        {"secretKey": "user", "remoteRef": {"key": "registry", "property": "user"}},
        {"secretKey": "password", "remoteRef": {"key": "registry", "property": "password"}},
    ]);
    es["spec"]["target"] = json!({
        "name": "registry-credentials",
        "template": {
            "type": "kubernetes.io/dockerconfigjson",
            "engineVersion": "v2",
            "metadata": {"labels": {"app": "web"}, "annotations": {"registry": "{{ \"registry.example.com\" | upper }}"}},
            "data": {
                ".dockerconfigjson": "{\"auths\":{\"registry.example.com\":{\"username\":\"{{ .user }}\",\"password\":\"{{ .password }}\",\"auth\":\"{{ printf \"%s:%s\" .user .password | b64enc }}\"}}}",
            },
            "templateFrom": [
                {"configMap": {"name": "app-config-template", "items": [{"key": "config.yaml", "templateAs": "Values"}]}},
            ],
        },
    });
    apply(&client, es).await;

    wait_es(&client, ns.name(), "registry", "True", "SecretSynced").await;
    let docker_config = format!(
        r#"{{"auths":{{"registry.example.com":{{"username":"robot","password":"{password}","auth":"{auth}"}}}}}}"#
    );
    let config_file = format!(
        "database:\n  user: robot\n  password: \"{password}\"\n  url: postgres://robot@db:5432/app\n"
    );
    // mergePolicy Replace (the default): only the templated keys, not `user`/`password`.
    let secret = wait_secret_data(
        &client,
        ns.name(),
        "registry-credentials",
        &[
            (".dockerconfigjson", &docker_config),
            ("config.yaml", &config_file),
        ],
    )
    .await;
    // The API server checks a dockerconfigjson Secret's payload itself; it accepted this one.
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    let metadata = secret.metadata;
    assert_eq!(metadata.labels.unwrap()["app"], "web");
    assert_eq!(
        metadata.annotations.unwrap()["registry"],
        "REGISTRY.EXAMPLE.COM"
    );
    assert_no_secret_values(&client).await;
}

fn coalesced_total(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("esox_values_coalesced_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn external_secrets_reading_one_key_share_one_backend_read() {
    let stack = stack().await;
    let ns = stack.new_namespace("coalesce").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("coalesce");
    apply(&client, fake_store(ns.name(), "fake", &[("shared", &v)])).await;
    let before = coalesced_total(&metrics_text().await);
    // One after another, each Ready before the next: every later one finds the first read
    // (well inside the 2 min window and a tenth of the 1h refresh interval).
    for i in 0..5 {
        let name = format!("reader-{i}");
        apply(
            &client,
            external_secret(ns.name(), &name, "fake", &[("k", "shared")], json!({})),
        )
        .await;
        wait_secret_data(&client, ns.name(), &name, &[("k", &v)]).await;
    }
    let after = coalesced_total(&metrics_text().await);
    assert!(
        after >= before + 4,
        "four of five reads come from the coalescing cache ({before} -> {after})"
    );
    // The tenth-of-the-refresh-interval cap and the bypass for edited ExternalSecrets are unit
    // tests (coalesce.rs); the bypass for force-sync also runs on LocalStack in e2e_aws (a
    // rotation, then force-sync, must show the new value at once).
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn stores_that_cannot_be_used_say_why_in_their_status_and_events() {
    let stack = stack().await;
    let ns = stack.new_namespace("store-events").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("store-events");

    // A valid store: Ready=True and a Normal Valid event, as ESO records it.
    apply(&client, fake_store(ns.name(), "good", &[("k", &v)])).await;
    wait_ready(&client, ns.name(), "SecretStore", "good", "True", "Valid").await;
    let (type_, note) = wait_event(&client, ns.name(), "good", "Valid", |_, _| true).await;
    assert_eq!(
        (type_.as_str(), note.as_str()),
        ("Normal", "store validated")
    );

    // Fields the API server accepts but that cannot be used are refused, naming the field,
    // instead of falling back to a default or matching nothing.
    let mut negative = fake_store(ns.name(), "negative", &[("k", &v)]);
    negative["spec"]["refreshInterval"] = json!("-5m");
    let mut scoped = fake_store(ns.name(), "scoped", &[("k", &v)]);
    scoped["spec"]["conditions"] = json!([{"namespaces": [ns.name()]}]);
    let mut selector = fake_store(ns.name(), "selector", &[("k", &v)]);
    selector["kind"] = json!("ClusterSecretStore");
    let css_name = format!("selector-{}", ns.name());
    selector["metadata"] = json!({"name": css_name});
    selector["spec"]["conditions"] = json!([{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": []}]}}]);
    let mut regex = selector.clone();
    let regex_name = format!("regex-{}", ns.name());
    regex["metadata"] = json!({"name": regex_name});
    regex["spec"]["conditions"] = json!([{"namespaceRegexes": ["^team-(a"]}]);
    for store in [negative, scoped, selector, regex] {
        apply(&client, store).await;
    }
    for (kind, name, words) in [
        ("SecretStore", "negative", "spec.refreshInterval"),
        (
            "SecretStore",
            "scoped",
            "spec.conditions: only a ClusterSecretStore",
        ),
    ] {
        let store = wait_ready(
            &client,
            ns.name(),
            kind,
            name,
            "False",
            "InvalidStoreConfiguration",
        )
        .await;
        let message = ready_condition(&store).unwrap().2;
        assert!(message.contains(words), "{name}: {message}");
        let (type_, note) = wait_event(
            &client,
            ns.name(),
            name,
            "InvalidStoreConfiguration",
            |_, _| true,
        )
        .await;
        assert_eq!(type_, "Warning");
        assert!(note.contains(words), "{name}: {note}");
    }
    for (name, words) in [
        (
            &css_name,
            "matchExpressions[0]: operator NotIn needs at least one value",
        ),
        (
            &regex_name,
            "namespaceRegexes[0]: \"^team-(a\" is not a regular expression",
        ),
    ] {
        let store = wait_ready(
            &client,
            "",
            "ClusterSecretStore",
            name,
            "False",
            "InvalidStoreConfiguration",
        )
        .await;
        let message = ready_condition(&store).unwrap().2;
        assert!(message.contains(words), "{name}: {message}");
        // An ExternalSecret using it is told why, not "denied by spec.condition".
        let es_name = format!("uses-{}", &name[..name.find('-').unwrap()]);
        apply(
            &client,
            external_secret(
                ns.name(),
                &es_name,
                name,
                &[("k", "k")],
                json!({"secretStoreRef": {"name": name, "kind": "ClusterSecretStore"}}),
            ),
        )
        .await;
        let es = wait_es(&client, ns.name(), &es_name, "False", "SecretSyncedError").await;
        let _ = es;
        let (_, note) = wait_event(&client, ns.name(), &es_name, "UpdateFailed", |_, _| true).await;
        assert!(
            note.contains(words) && note.contains("cannot be used"),
            "{es_name}: {note}"
        );
        assert!(secret_data(&client, ns.name(), &es_name).await.is_none());
    }

    // The plugin's own validation error reaches the event (ESO's condition text stays).
    let mut failing = fake_store(ns.name(), "failing", &[("k", &v)]);
    failing["spec"]["provider"]["fake"]["validationResult"] = json!(2);
    apply(&client, failing).await;
    let store = wait_ready(
        &client,
        ns.name(),
        "SecretStore",
        "failing",
        "False",
        "InvalidProviderConfig",
    )
    .await;
    assert_eq!(
        ready_condition(&store).unwrap().2,
        "unable to validate store"
    );
    let (type_, note) = wait_event(
        &client,
        ns.name(),
        "failing",
        "InvalidProviderConfig",
        |_, _| true,
    )
    .await;
    assert_eq!(type_, "Warning");
    assert!(note.contains("unable to validate"), "{note}");

    for name in [&css_name, &regex_name] {
        Api::<DynamicObject>::all_with(client.clone(), &gvk("ClusterSecretStore"))
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_generic_target_is_refused_with_esos_error_and_nothing_is_written() {
    let stack = stack().await;
    let ns = stack.new_namespace("generic").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("generic");
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v)])).await;
    // The store first, so the refusal is not preceded by "store not ready".
    wait_ready(&client, ns.name(), "SecretStore", "fake", "True", "Valid").await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "cm",
            "fake",
            &[("k", "k")],
            json!({"target": {"manifest": {"apiVersion": "v1", "kind": "ConfigMap"}}}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "cm", "False", "SecretSyncedError").await;
    let api = es_api(&client, ns.name());
    eventually("Ready=False \"invalid generic target\"", || async {
        let es = api.get("cm").await.ok()?;
        (ready_condition(&es)?.2 == "invalid generic target").then_some(())
    })
    .await;
    // (An earlier event may say the store was not ready yet: wait for this one.)
    wait_event(&client, ns.name(), "cm", "UpdateFailed", |type_, note| {
        type_ == "Warning"
            && note
                == "generic targets are disabled. Enable with --unsafe-allow-generic-targets flag"
    })
    .await;
    // Neither a Secret (what esox used to write) nor a ConfigMap.
    assert!(secret_data(&client, ns.name(), "cm").await.is_none());
    let cms = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), ns.name());
    assert!(cms.get_opt("cm").await.unwrap().is_none());
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn sync_windows_hold_periodic_refreshes_and_a_bad_schedule_is_refused() {
    let stack = stack().await;
    let ns = stack.new_namespace("windows").await.unwrap();
    let client = stack.admin_client();
    let (v1, v2) = (secret_value("windows-1"), secret_value("windows-2"));
    apply(&client, fake_store(ns.name(), "fake", &[("k", &v1)])).await;
    let every_2s = json!({"refreshPolicy": "Periodic", "refreshInterval": "2s"});
    apply(
        &client,
        external_secret(ns.name(), "open", "fake", &[("k", "k")], every_2s.clone()),
    )
    .await;
    // A deny window that is always open (fires every minute, lasts an hour).
    let mut held_spec = every_2s.clone();
    held_spec["syncWindows"] =
        json!({"kind": "deny", "windows": [{"schedule": "* * * * *", "duration": "1h"}]});
    apply(
        &client,
        external_secret(ns.name(), "held", "fake", &[("k", "k")], held_spec),
    )
    .await;
    // First syncs are not gated.
    wait_secret_data(&client, ns.name(), "open", &[("k", &v1)]).await;
    wait_secret_data(&client, ns.name(), "held", &[("k", &v1)]).await;

    apply(&client, fake_store(ns.name(), "fake", &[("k", &v2)])).await;
    wait_secret_data(&client, ns.name(), "open", &[("k", &v2)]).await;
    // Several intervals later the windowed one still holds the old value.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(
        secret_data(&client, ns.name(), "held").await.unwrap()["k"],
        v1,
        "a deny window held the refresh"
    );
    // A forced sync is not gated.
    annotate(&client, ns.name(), "held", "force-sync", "1").await;
    wait_secret_data(&client, ns.name(), "held", &[("k", &v2)]).await;

    // A schedule the CRD's pattern lets through but cron cannot parse is refused, not skipped.
    let mut bad_spec = every_2s;
    bad_spec["syncWindows"] =
        json!({"kind": "allow", "windows": [{"schedule": "61 * * * *", "duration": "1h"}]});
    apply(
        &client,
        external_secret(ns.name(), "bad", "fake", &[("k", "k")], bad_spec),
    )
    .await;
    let es = wait_es(&client, ns.name(), "bad", "False", "SecretSyncedError").await;
    let _ = es;
    let (_, note) = wait_event(&client, ns.name(), "bad", "UpdateFailed", |_, _| true).await;
    assert!(
        note.contains("spec.syncWindows.windows[0].schedule") && note.contains("ends above 59"),
        "{note}"
    );
    assert!(secret_data(&client, ns.name(), "bad").await.is_none());
    assert_no_secret_values(&client).await;
}
