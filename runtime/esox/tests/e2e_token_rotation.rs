//! A rotated ServiceAccount token is picked up, as in a cluster where the kubelet rewrites the
//! projected token file: `esox run` authenticates with a kubeconfig whose user reads a token
//! *file* (the in-cluster config works the same way). The first token is bound to a Secret;
//! the test writes a second token into the file and deletes that Secret, which revokes the
//! first token at once. The controller must go on syncing: kube-rs reads the file again at
//! least once a minute, so a new ExternalSecret syncs within about a minute (printed).

mod support;

use std::time::{Duration, Instant};

use esox_e2e::{ManagedProcess, Stack};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde_json::json;
use support::*;

/// A token of `esox-system/esox`, bound to Secret `binding` (deleting it revokes the token).
async fn bound_token(client: &kube::Client, binding: &str) -> String {
    let secrets = Api::<Secret>::namespaced(client.clone(), "esox-system");
    let secret = secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some(binding.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(3600),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Secret".into()),
                name: Some(binding.into()),
                uid: secret.metadata.uid,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), "esox-system")
        .create_token_request("esox", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .and_then(|s| s.token)
        .expect("a token")
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_rotated_token_file_is_picked_up_after_the_old_token_is_revoked() {
    let stack = Stack::shared().await.unwrap();
    let crds = tempfile::tempdir().unwrap();
    esox_api::write_crds(crds.path()).unwrap();
    stack.install_crds(crds.path()).await.unwrap();
    let client = stack.admin_client();
    let ns = stack.new_namespace("rotation").await.unwrap();
    let suffix = ns.name().rsplit('-').next().unwrap().to_string();
    let (first, second) = (format!("rot-a-{suffix}"), format!("rot-b-{suffix}"));

    // The controller's kubeconfig, its user reading a token file.
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    let old_token = bound_token(&client, &first).await;
    std::fs::write(&token_path, &old_token).unwrap();
    let mut kubeconfig: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(stack.controller_kubeconfig_path()).unwrap())
            .unwrap();
    let user = &mut kubeconfig["users"][0]["user"];
    user.as_mapping_mut()
        .unwrap()
        .remove(serde_yaml::Value::from("token"));
    user["tokenFile"] = serde_yaml::Value::from(token_path.display().to_string());
    let kubeconfig_path = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig_path,
        serde_yaml::to_string(&kubeconfig).unwrap(),
    )
    .unwrap();

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_esox"));
    cmd.args(["--log-format", "json", "--log", "info"])
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kubeconfig_path)
        .args([
            "--namespace",
            ns.name(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--live-addr",
            "127.0.0.1:0",
        ]);
    let mut esox = ManagedProcess::spawn("esox-token-rotation", cmd).unwrap();
    esox.wait_for_log("watch caches synced", WAIT)
        .await
        .unwrap();

    let (v1, v2) = (secret_value("rotation-1"), secret_value("rotation-2"));
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "fake", "namespace": ns.name()},
            "spec": {"provider": {"fake": {"data": [{"key": "one", "value": v1}, {"key": "two", "value": v2}]}}},
        }),
    )
    .await;
    let es = |name: &str, key: &str| {
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": ns.name()},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "fake", "kind": "SecretStore"},
                "data": [{"secretKey": "k", "remoteRef": {"key": key}}],
            },
        })
    };
    apply(&client, es("before", "one")).await;
    wait_secret_data(&client, ns.name(), "before", &[("k", &v1)]).await;

    // Rotate: the new token into the file (atomically, as the kubelet does), the old one
    // revoked by deleting what it is bound to.
    let next = dir.path().join("token.next");
    std::fs::write(&next, bound_token(&client, &second).await).unwrap();
    std::fs::rename(&next, &token_path).unwrap();
    Api::<Secret>::namespaced(client.clone(), "esox-system")
        .delete(&first, &DeleteParams::default())
        .await
        .unwrap();
    let rotated = Instant::now();
    // Wait until the API server refuses the old token (it may have cached its validation).
    let mut old: serde_yaml::Value = kubeconfig.clone();
    old["users"][0]["user"] = serde_yaml::from_str(&format!("token: {old_token}")).unwrap();
    let old_path = dir.path().join("old.kubeconfig");
    std::fs::write(&old_path, serde_yaml::to_string(&old).unwrap()).unwrap();
    let old_client =
        kube::Client::try_from(esox_e2e::kubeconfig::load(&old_path).await.unwrap()).unwrap();
    eventually("the old token to be refused", || async {
        match Api::<Secret>::namespaced(old_client.clone(), ns.name())
            .list(&Default::default())
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 401 => Some(()),
            _ => None,
        }
    })
    .await;
    let revoked = rotated.elapsed();

    apply(&client, es("after", "two")).await;
    let deadline = Duration::from_secs(150);
    loop {
        if secret_data(&client, ns.name(), "after")
            .await
            .is_some_and(|d| d.get("k") == Some(&v2))
        {
            break;
        }
        assert!(
            rotated.elapsed() < deadline,
            "no sync {deadline:?} after the rotation; the controller's log ends with:\n{}",
            esox.log_tail(3000)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "TOKEN ROTATION: the old token refused {:.1}s after its binding was deleted; synced again {:.1}s after the rotation (kube-rs rereads the file at least once a minute)",
        revoked.as_secs_f64(),
        rotated.elapsed().as_secs_f64()
    );
    let log = std::fs::read_to_string(esox.log_path()).unwrap();
    for v in [&v1, &v2] {
        assert!(!log.contains(v.as_str()), "the controller logged a value");
    }
    let _ = Api::<Secret>::namespaced(client.clone(), "esox-system")
        .delete(&second, &DeleteParams::default())
        .await;
}
