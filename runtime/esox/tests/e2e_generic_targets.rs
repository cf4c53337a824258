//! End-to-end tests of ESO's generic targets on the real stack: `esox run
//! --unsafe-allow-generic-targets` under the least-privilege identity of deploy/rbac.yaml plus
//! deploy/rbac-generic-targets.yaml (nothing more), writing ConfigMaps named by
//! `spec.target.manifest`. The refusal without the flag is in `e2e_controller`
//! (`a_generic_target_is_refused_with_esos_error_and_nothing_is_written`).

mod support;

use esox_e2e::Stack;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::*;

/// The shared stack, the generic-target RBAC applied, and one `esox run` with the flag.
async fn stack() -> &'static Stack {
    let shared = Stack::shared().await.expect("the e2e stack starts");
    let rbac = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/rbac-generic-targets.yaml");
    esox_e2e::manifests::apply_yaml(
        &shared.admin_client(),
        &std::fs::read_to_string(&rbac).unwrap(),
    )
    .await
    .expect("the generic-target RBAC applies");
    stack_with_controller("esox-generic-targets", |_| {
        vec!["--unsafe-allow-generic-targets".into()]
    })
    .await
}

fn fake_store(ns: &str, data: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "fake", "namespace": ns},
        "spec": {"provider": {"fake": {"data": data.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}}},
    })
}

fn external_secret(ns: &str, name: &str, data: Value, target: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "fake", "kind": "SecretStore"},
            "data": data,
            "target": target,
        },
    })
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_config_map_target_is_written_repaired_and_collected_with_its_owner() {
    let stack = stack().await;
    let ns = stack.new_namespace("generic-cm").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("generic-cm");
    // ff 00 fe: not UTF-8, so it must land in binaryData.
    apply(
        &client,
        fake_store(ns.name(), &[("k", &v), ("bin", "/wD+")]),
    )
    .await;
    wait_ready(&client, ns.name(), "SecretStore", "fake", "True", "Valid").await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "settings",
            json!([
                {"secretKey": "k", "remoteRef": {"key": "k"}},
                {"secretKey": "bin", "remoteRef": {"key": "bin", "decodingStrategy": "Base64"}},
            ]),
            json!({
                "name": "app-settings",
                "manifest": {"apiVersion": "v1", "kind": "ConfigMap"},
                "template": {"metadata": {"labels": {"team": "a"}}},
            }),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "settings", "True", "SecretSynced").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), ns.name());
    let cm = cms.get("app-settings").await.expect("the ConfigMap exists");
    let data = cm.data.clone().unwrap_or_default();
    assert_eq!(data.get("k"), Some(&v));
    assert!(!data.contains_key("bin"), "non-text values are not in data");
    assert_eq!(
        cm.binary_data
            .clone()
            .unwrap_or_default()
            .get("bin")
            .map(|b| b.0.clone()),
        Some(vec![0xff, 0x00, 0xfe])
    );
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        labels
            .get("reconcile.external-secrets.io/managed")
            .map(String::as_str),
        Some("true")
    );
    assert!(
        cm.metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .contains_key("reconcile.external-secrets.io/data-hash")
    );
    let owner = &cm.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ExternalSecret", "settings", Some(true))
    );
    // A ConfigMap, never a Secret.
    let secrets = Api::<Secret>::namespaced(client.clone(), ns.name());
    assert!(secrets.get_opt("app-settings").await.unwrap().is_none());
    wait_event(&client, ns.name(), "settings", "Created", |type_, note| {
        type_ == "Normal" && note == "configmap created"
    })
    .await;

    // Drift: someone changes a value and adds a key; the watch brings esox back, which
    // restores the value and removes the key (Owner: the ConfigMap is wholly esox's).
    cms.patch(
        "app-settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "tampered", "extra": "x"}})),
    )
    .await
    .unwrap();
    eventually("the drifted ConfigMap repaired", || async {
        let cm = cms.get("app-settings").await.ok()?;
        let data = cm.data.unwrap_or_default();
        (data.get("k") == Some(&v) && !data.contains_key("extra")).then_some(())
    })
    .await;

    // Deleting the ExternalSecret: kube-controller-manager's garbage collector removes the
    // ConfigMap it controls.
    es_api(&client, ns.name())
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the ConfigMap collected with its owner", || async {
        cms.get_opt("app-settings")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn other_generic_kinds_and_a_typed_config_map_are_refused_and_nothing_is_written() {
    let stack = stack().await;
    let ns = stack.new_namespace("generic-refused").await.unwrap();
    let client = stack.admin_client();
    let v = secret_value("generic-refused");
    apply(&client, fake_store(ns.name(), &[("k", &v)])).await;
    wait_ready(&client, ns.name(), "SecretStore", "fake", "True", "Valid").await;
    let data = json!([{"secretKey": "k", "remoteRef": {"key": "k"}}]);
    apply(
        &client,
        external_secret(
            ns.name(),
            "app",
            data.clone(),
            json!({"manifest": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}}),
        ),
    )
    .await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "typed",
            data,
            json!({
                "manifest": {"apiVersion": "v1", "kind": "ConfigMap"},
                "template": {"type": "kubernetes.io/tls"},
            }),
        ),
    )
    .await;
    for (name, says) in [
        ("app", "ConfigMap\" only"),
        ("typed", "a ConfigMap has no type"),
    ] {
        let es = wait_es(&client, ns.name(), name, "False", "SecretSyncedError").await;
        assert_eq!(ready_condition(&es).unwrap().2, "invalid generic target");
        wait_event(&client, ns.name(), name, "UpdateFailed", |type_, note| {
            type_ == "Warning" && note.contains(says)
        })
        .await;
        let cms = Api::<ConfigMap>::namespaced(client.clone(), ns.name());
        assert!(cms.get_opt(name).await.unwrap().is_none());
        assert!(secret_data(&client, ns.name(), name).await.is_none());
    }
    assert_no_secret_values(&client).await;
}
