//! End-to-end tests of the `webhook` provider plugin: ESO's `spec.provider.webhook` manifests
//! against a real HTTP(S) secrets service the harness runs (`esox_e2e::webhook`: bearer-token
//! auth, GET and POST lookups, TLS from a CA of its own) and the real API server. One service
//! and one `esox run` serve the whole test binary; the operator grants the plugin the service's
//! origins (`--plugin-egress`). Every test ends by scanning the controller's log and every Event
//! for the values it synced.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use esox_e2e::Stack;
use esox_e2e::webhook::WebhookServer;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::{Value, json};
use support::*;

static SERVER: OnceLock<(Arc<WebhookServer>, String)> = OnceLock::new();

/// The shared service and its bearer token (a value the controller must never log).
fn server() -> &'static (Arc<WebhookServer>, String) {
    SERVER.get_or_init(|| {
        let token = secret_value("webhook-token");
        let server =
            WebhookServer::start_in_background(&token).expect("the webhook service starts");
        (server, token)
    })
}

async fn stack() -> &'static Stack {
    let (server, _) = server();
    stack_with_controller("esox-webhook", |_| {
        vec![
            "--plugin-egress".into(),
            format!("webhook={}", server.url()),
            "--plugin-egress".into(),
            format!("webhook={}", server.tls_url()),
        ]
    })
    .await
}

/// The Secret holding the service's token, in `ns` (`secrets[].secretRef` reads it), with
/// the label ESO's webhook provider requires of it.
async fn create_token_secret(client: &kube::Client, ns: &str, token: &str) {
    create_named_token_secret(client, ns, "webhook-credentials", token, true).await;
}

async fn create_named_token_secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
    token: &str,
    labelled: bool,
) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: labelled.then(|| {
                BTreeMap::from([(
                    "external-secrets.io/type".to_string(),
                    "webhook".to_string(),
                )])
            }),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("token".to_string(), token.to_string())])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("credentials Secret");
}

/// ESO's documented webhook SecretStore shape: templated URL, a bearer header from a Secret,
/// a JSONPath into the answer; `extra` is merged into `spec.provider.webhook`.
fn webhook_store(ns: &str, name: &str, url: &str, extra: Value) -> Value {
    let mut provider = json!({
        "url": url,
        "headers": {
            "Content-Type": "application/json",
            "Authorization": "Bearer {{ print .auth.token }}",
        },
        "result": {"jsonPath": "$.value"},
        "secrets": [{"name": "auth", "secretRef": {"name": "webhook-credentials"}}],
    });
    if let (Value::Object(p), Value::Object(e)) = (&mut provider, extra) {
        p.extend(e);
    }
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provider": {"webhook": provider}},
    })
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn get_and_post_lookups_fill_a_secret_through_json_path_and_properties() {
    let stack = stack().await;
    let (server, token) = server();
    let ns = stack.new_namespace("webhook").await.unwrap();
    let client = stack.admin_client();
    let password = secret_value("webhook-password");
    let key = format!("{}-db", ns.name());
    server.put(&key, json!({"username": "app", "password": password}));
    // ESO's webhook applies no `property` itself (it is a template variable): one document per
    // value, or a map for `extract`.
    server.put(&format!("{key}-pw"), json!(password));
    create_token_secret(&client, ns.name(), token).await;
    apply(
        &client,
        webhook_store(
            ns.name(),
            "get",
            &format!("{}/api/secrets/{{{{ .remoteRef.key }}}}", server.url()),
            json!({}),
        ),
    )
    .await;
    apply(
        &client,
        webhook_store(
            ns.name(),
            "post",
            &format!("{}/api/lookup", server.url()),
            json!({"method": "POST", "body": "{\"key\": \"{{ .remoteRef.key }}\"}"}),
        ),
    )
    .await;
    for store in ["get", "post"] {
        // ESO's webhook provider cannot tell without a request: Ready, validation unknown.
        wait_ready(
            &client,
            ns.name(),
            "SecretStore",
            store,
            "True",
            "ValidationUnknown",
        )
        .await;
        apply(
            &client,
            store_external_secret(
                ns.name(),
                store,
                store,
                json!({
                    "data": [
                        {"secretKey": "pw", "remoteRef": {"key": format!("{key}-pw")}},
                    ],
                    "dataFrom": [{"extract": {"key": key}}],
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

    // An unknown key: Ready=False, nothing written.
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "missing",
            "get",
            json!({"data": [{"secretKey": "x", "remoteRef": {"key": "no-such-key"}}]}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "missing", "False", "SecretSyncedError").await;
    assert!(secret_data(&client, ns.name(), "missing").await.is_none());

    // As ESO, a Secret is sent to a webhook only when its owner labelled it
    // `external-secrets.io/type: webhook`: without the label the host refuses to read it.
    create_named_token_secret(&client, ns.name(), "unlabelled-credentials", token, false).await;
    let mut store = webhook_store(
        ns.name(),
        "unlabelled",
        &format!("{}/api/secrets/{{{{ .remoteRef.key }}}}", server.url()),
        json!({}),
    );
    store["spec"]["provider"]["webhook"]["secrets"] =
        json!([{"name": "auth", "secretRef": {"name": "unlabelled-credentials"}}]);
    apply(&client, store).await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "unlabelled",
            "unlabelled",
            json!({"data": [{"secretKey": "pw", "remoteRef": {"key": format!("{key}-pw")}}]}),
        ),
    )
    .await;
    wait_es(
        &client,
        ns.name(),
        "unlabelled",
        "False",
        "SecretSyncedError",
    )
    .await;
    // The condition carries ESO's generic message; the Event says why, naming the label.
    wait_event(
        &client,
        ns.name(),
        "unlabelled",
        "UpdateFailed",
        |_, note| note.contains("does not carry the label external-secrets.io/type: webhook"),
    )
    .await;
    assert!(
        secret_data(&client, ns.name(), "unlabelled")
            .await
            .is_none()
    );
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn tls_is_trusted_through_the_stores_ca_bundle_only() {
    use base64::Engine as _;
    let stack = stack().await;
    let (server, token) = server();
    let ns = stack.new_namespace("webhook-tls").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("webhook-tls");
    let key = format!("{}-tls", ns.name());
    server.put(&key, json!(value));
    create_token_secret(&client, ns.name(), token).await;
    let url = format!("{}/api/secrets/{{{{ .remoteRef.key }}}}", server.tls_url());
    let bundle = base64::engine::general_purpose::STANDARD.encode(server.ca_pem());
    apply(
        &client,
        webhook_store(ns.name(), "trusted", &url, json!({"caBundle": bundle})),
    )
    .await;
    apply(
        &client,
        webhook_store(ns.name(), "untrusted", &url, json!({})),
    )
    .await;
    for store in ["trusted", "untrusted"] {
        apply(
            &client,
            store_external_secret(
                ns.name(),
                store,
                store,
                json!({"data": [{"secretKey": "v", "remoteRef": {"key": key}}]}),
            ),
        )
        .await;
    }
    wait_secret_data(&client, ns.name(), "trusted", &[("v", &value)]).await;
    // No public root trusts the service's certificate.
    wait_es(
        &client,
        ns.name(),
        "untrusted",
        "False",
        "SecretSyncedError",
    )
    .await;
    assert!(secret_data(&client, ns.name(), "untrusted").await.is_none());
    assert_no_secret_values(&client).await;
}
