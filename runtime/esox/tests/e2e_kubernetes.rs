//! End-to-end tests of the `kubernetes` provider plugin: ESO's `spec.provider.kubernetes`
//! manifests reading Secrets of another namespace through the real API server's TLS and auth
//! paths (the harness's API server stands in for the remote cluster: a second namespace holds
//! the remote Secrets, a ServiceAccount with a Role there is the identity). One `esox run` serves
//! the whole test binary; the operator grants the plugin the API server's origin
//! (`--plugin-egress`). Every test ends by scanning the controller's log and every Event for the
//! values it synced.

mod support;

use std::collections::BTreeMap;

use base64::Engine as _;
use esox_e2e::Stack;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::{Value, json};
use support::*;

async fn stack() -> &'static Stack {
    let shared = Stack::shared().await.expect("the e2e stack starts");
    let api = shared.api_server_url().to_string();
    stack_with_controller("esox-kubernetes", move |_| {
        vec!["--plugin-egress".into(), format!("kubernetes={api}")]
    })
    .await
}

fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(str::to_string),
        ..Default::default()
    }
}

/// ServiceAccount `reader` in `home`, allowed to get and list Secrets in `remote` (a Role and
/// RoleBinding there), as an operator would set up the remote side.
async fn reader(client: &kube::Client, home: &str, remote: &str) {
    Api::<ServiceAccount>::namespaced(client.clone(), home)
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta("reader", None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Api::<Role>::namespaced(client.clone(), remote)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta("secret-reader", None),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec!["".into()]),
                    resources: Some(vec!["secrets".into()]),
                    verbs: vec!["get".into(), "list".into(), "watch".into()],
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), remote)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta("secret-reader", None),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "Role".into(),
                    name: "secret-reader".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "reader".into(),
                    namespace: Some(home.into()),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
}

async fn create_secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
    data: &[(&str, &str)],
    labels: &[(&str, &str)],
) {
    let mut metadata = meta(name, None);
    metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &Secret {
                metadata,
                string_data: Some(
                    data.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

/// ESO's documented store shape: the server's URL and CA, the remote namespace, `auth`.
fn kubernetes_store(stack: &Stack, ns: &str, name: &str, remote: &str, auth: Value) -> Value {
    let ca = base64::engine::general_purpose::STANDARD.encode(stack.api_server_ca_pem());
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provider": {"kubernetes": {
            "server": {"url": stack.api_server_url(), "caBundle": ca},
            "remoteNamespace": remote,
            "auth": auth,
        }}},
    })
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_bearer_token_and_a_brokered_service_account_read_another_namespaces_secrets() {
    let stack = stack().await;
    let ns = stack.new_namespace("k8s-provider").await.unwrap();
    let remote = stack.new_namespace("k8s-remote").await.unwrap();
    let client = stack.admin_client();
    let password = secret_value("k8s-provider-password");
    create_secret(
        &client,
        remote.name(),
        "db",
        &[("username", "app"), ("password", &password)],
        &[("app", "db")],
    )
    .await;
    reader(&client, ns.name(), remote.name()).await;

    // 1. A bearer token in a Secret (minted here as an operator would).
    let token = Api::<ServiceAccount>::namespaced(client.clone(), ns.name())
        .create_token_request(
            "reader",
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .status
        .and_then(|s| s.token)
        .expect("a token");
    register_secret_value(token.clone());
    create_secret(
        &client,
        ns.name(),
        "remote-token",
        &[("token", &token)],
        &[],
    )
    .await;
    apply(
        &client,
        kubernetes_store(
            stack,
            ns.name(),
            "token",
            remote.name(),
            json!({"token": {"bearerToken": {"name": "remote-token", "key": "token"}}}),
        ),
    )
    .await;
    // 2. The ServiceAccount itself: the host mints its token (for the API server's audience).
    apply(
        &client,
        kubernetes_store(
            stack,
            ns.name(),
            "sa",
            remote.name(),
            json!({"serviceAccount": {"name": "reader", "audiences": [stack.service_account_issuer()]}}),
        ),
    )
    .await;
    // 3. ESO's documented example: no audiences, so a token for the API server's own audience,
    //    which the operator grants the embedded kubernetes plugin by default.
    apply(
        &client,
        kubernetes_store(
            stack,
            ns.name(),
            "sa-default",
            remote.name(),
            json!({"serviceAccount": {"name": "reader"}}),
        ),
    )
    .await;
    for store in ["token", "sa", "sa-default"] {
        apply(
            &client,
            store_external_secret(
                ns.name(),
                store,
                store,
                json!({
                    "data": [{"secretKey": "pw", "remoteRef": {"key": "db", "property": "password"}}],
                    "dataFrom": [{"extract": {"key": "db"}}],
                }),
            ),
        )
        .await;
        wait_secret_data(
            &client,
            ns.name(),
            store,
            &[
                ("pw", &password),
                ("password", &password),
                ("username", "app"),
            ],
        )
        .await;
    }

    // A Secret the Role does not reach (another namespace): Ready=False, nothing written.
    let mut elsewhere = kubernetes_store(
        stack,
        ns.name(),
        "elsewhere",
        ns.name(),
        json!({"token": {"bearerToken": {"name": "remote-token", "key": "token"}}}),
    );
    elsewhere["spec"]["provider"]["kubernetes"]["remoteNamespace"] = json!(ns.name());
    apply(&client, elsewhere).await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "denied",
            "elsewhere",
            json!({"data": [{"secretKey": "t", "remoteRef": {"key": "remote-token", "property": "token"}}]}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "denied", "False", "SecretSyncedError").await;
    assert!(secret_data(&client, ns.name(), "denied").await.is_none());
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn without_the_clusters_ca_the_server_is_not_trusted() {
    let stack = stack().await;
    let ns = stack.new_namespace("k8s-untrusted").await.unwrap();
    let client = stack.admin_client();
    reader(&client, ns.name(), ns.name()).await;
    let mut store = kubernetes_store(
        stack,
        ns.name(),
        "untrusted",
        ns.name(),
        json!({"serviceAccount": {"name": "reader", "audiences": [stack.service_account_issuer()]}}),
    );
    store["spec"]["provider"]["kubernetes"]["server"]
        .as_object_mut()
        .unwrap()
        .remove("caBundle");
    apply(&client, store).await;
    create_secret(&client, ns.name(), "db", &[("k", "v")], &[]).await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "db-copy",
            "untrusted",
            json!({"data": [{"secretKey": "k", "remoteRef": {"key": "db", "property": "k"}}]}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "db-copy", "False", "SecretSyncedError").await;
    assert!(secret_data(&client, ns.name(), "db-copy").await.is_none());
    assert_no_secret_values(&client).await;
}
