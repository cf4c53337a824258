//! ESO's zero-config AWS store on the real stack: a SecretStore with no `auth` syncs through the
//! controller's own identity, which the host hands to the embedded `aws` plugin (contract 0.2
//! `ambient-identity`). Here the identity is static keys in the controller's environment, as a
//! Deployment's `env` would give it (LocalStack accepts any keys); the IRSA and Pod Identity
//! paths of the same call are unit-tested in the aws plugin, and the operator's grant itself
//! (`--plugin-ambient-identity`) in the controller's and the host's tests.

mod support;

use esox_e2e::Stack;
use serde_json::{Value, json};
use support::*;

const REGION: &str = "eu-west-1";

/// The shared stack with one `esox run` that has AWS keys in its environment.
async fn stack() -> &'static Stack {
    stack_with_controller_env(
        "esox-aws-ambient",
        |stack| {
            vec![
                "--plugin-setting".into(),
                format!("aws:endpoint={}", stack.localstack_endpoint()),
            ]
        },
        &[
            ("AWS_ACCESS_KEY_ID", "ambient-test-key"),
            ("AWS_SECRET_ACCESS_KEY", "ambient-test-secret"),
        ],
    )
    .await
}

fn store_without_auth(ns: &str) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "zero-config", "namespace": ns},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": REGION}}},
    })
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_store_without_auth_syncs_with_the_controllers_own_identity() {
    let stack = stack().await;
    let ns = stack.new_namespace("ambient").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("ambient");
    let remote = format!("ambient/{}", ns.name());
    stack
        .secretsmanager_client_in(REGION)
        .create_secret()
        .name(&remote)
        .secret_string(&value)
        .send()
        .await
        .expect("seed LocalStack");

    apply(&client, store_without_auth(ns.name())).await;
    wait_ready(
        &client,
        ns.name(),
        "SecretStore",
        "zero-config",
        "True",
        "Valid",
    )
    .await;
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": ns.name()},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "zero-config", "kind": "SecretStore"},
                "data": [{"secretKey": "password", "remoteRef": {"key": remote}}],
            },
        }),
    )
    .await;
    wait_es(&client, ns.name(), "db", "True", "SecretSynced").await;
    wait_secret_data(&client, ns.name(), "db", &[("password", &value)]).await;
    assert_no_secret_values(&client).await;
    let log = controller_log();
    assert!(
        !log.contains("ambient-test-secret"),
        "the controller never logs its own credentials"
    );
}
