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
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: "reader".into(),
        namespace: Some(home.into()),
        ..Default::default()
    };
    secret_reader_role(client, remote, subject).await;
}

/// A Role that gets and lists Secrets in `remote`, bound to `subject`: the remote side an
/// operator sets up for the store's identity.
async fn secret_reader_role(client: &kube::Client, remote: &str, subject: Subject) {
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
                subjects: Some(vec![subject]),
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

/// A one-hour token for ServiceAccount `name` in `ns`, minted as an operator would (and
/// registered as a value no log or Event may hold).
async fn mint_token(client: &kube::Client, ns: &str, name: &str) -> String {
    let token = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(
            name,
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
    token
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
    let token = mint_token(&client, ns.name(), "reader").await;
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

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn push_and_delete_write_another_namespaces_secrets_as_eso() {
    let stack = stack().await;
    let home = stack.new_namespace("k8s-push").await.unwrap();
    let remote = stack.new_namespace("k8s-push-remote").await.unwrap();
    let client = stack.admin_client();
    // The identity: a ServiceAccount allowed to manage Secrets in the remote namespace only.
    Api::<ServiceAccount>::namespaced(client.clone(), home.name())
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta("pusher", None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Api::<Role>::namespaced(client.clone(), remote.name())
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta("secret-writer", None),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec!["".into()]),
                    resources: Some(vec!["secrets".into()]),
                    verbs: ["get", "create", "update", "delete"]
                        .map(String::from)
                        .to_vec(),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), remote.name())
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta("secret-writer", None),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "Role".into(),
                    name: "secret-writer".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "pusher".into(),
                    namespace: Some(home.name().into()),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    let token = mint_token(&client, home.name(), "pusher").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.json");
    std::fs::write(
        &store,
        kubernetes_store(
            stack,
            home.name(),
            "push",
            remote.name(),
            json!({"token": {"bearerToken": {"name": "remote-token", "key": "token"}}}),
        )
        .to_string(),
    )
    .unwrap();
    let secrets = dir.path().join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"secrets": {"remote-token": {"token": token}}}).to_string(),
    )
    .unwrap();
    let egress = format!("kubernetes={}", stack.api_server_url());
    let (store, secrets) = (store.to_str().unwrap(), secrets.to_str().unwrap());
    let common = |cmd: &'static str, property: Option<&'static str>| {
        let mut args = vec![
            cmd,
            "--store",
            store,
            "--secrets-file",
            secrets,
            "--plugin-egress",
            egress.as_str(),
            "--key",
            "app-creds",
        ];
        if let Some(p) = property {
            args.extend(["--property", p]);
        }
        args
    };
    let secrets_api = Api::<Secret>::namespaced(client.clone(), remote.name());
    let data = data_text;

    // 1. A property push creates the Secret with that key (Opaque).
    let password = secret_value("k8s-push-password");
    let (ok, printed) = esox_write(&common("push", Some("password")), Some(&password));
    assert!(ok, "{printed}");
    assert!(!printed.contains(&password), "{printed}");
    let s = secrets_api.get("app-creds").await.unwrap();
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        data(&s),
        BTreeMap::from([("password".into(), password.clone())])
    );

    // 2. Another property is added beside it, with ESO's push metadata (labels merged).
    let mut args = common("push", Some("username"));
    args.extend([
        "--metadata",
        "{apiVersion: kubernetes.external-secrets.io/v1alpha1, kind: PushSecretMetadata, spec: {labels: {team: payments}}}",
    ]);
    let (ok, printed) = esox_write(&args, Some("app"));
    assert!(ok, "{printed}");
    let s = secrets_api.get("app-creds").await.unwrap();
    assert_eq!(
        data(&s),
        BTreeMap::from([
            ("password".into(), password.clone()),
            ("username".into(), "app".into())
        ])
    );
    assert_eq!(
        s.metadata
            .labels
            .unwrap_or_default()
            .get("team")
            .map(String::as_str),
        Some("payments")
    );

    // 3. Deleting a property keeps the others; deleting the last one deletes the Secret.
    let (ok, printed) = esox_write(&common("delete", Some("password")), None);
    assert!(ok, "{printed}");
    let s = secrets_api.get("app-creds").await.unwrap();
    assert_eq!(
        data(&s),
        BTreeMap::from([("username".into(), "app".into())])
    );
    let (ok, printed) = esox_write(&common("delete", Some("username")), None);
    assert!(ok, "{printed}");
    assert!(secrets_api.get_opt("app-creds").await.unwrap().is_none());
    // Deleting what is gone succeeds, as in ESO.
    let (ok, printed) = esox_write(&common("delete", None), None);
    assert!(ok, "{printed}");

    // 4. Outside the Role's namespace the API server refuses, and esox says so.
    let mut elsewhere = common("push", Some("password"));
    let other = format!(
        "{{apiVersion: kubernetes.external-secrets.io/v1alpha1, kind: PushSecretMetadata, spec: {{remoteNamespace: {}}}}}",
        home.name()
    );
    elsewhere.extend(["--metadata", other.as_str()]);
    let (ok, printed) = esox_write(&elsewhere, Some(&password));
    assert!(
        !ok,
        "a SecretStore may not push to another namespace: {printed}"
    );
    assert!(!printed.contains(&password), "{printed}");
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_client_certificate_from_the_csr_api_reads_another_namespaces_secrets() {
    let stack = stack().await;
    let ns = stack.new_namespace("k8s-cert").await.unwrap();
    let remote = stack.new_namespace("k8s-cert-remote").await.unwrap();
    let client = stack.admin_client();
    let password = secret_value("k8s-cert-password");
    create_secret(
        &client,
        remote.name(),
        "db",
        &[("password", &password)],
        &[],
    )
    .await;
    // The remote side: a user named by its certificate, allowed to read Secrets there.
    let user = format!("esox-e2e-cert-{}", ns.name());
    let subject = Subject {
        kind: "User".into(),
        name: user.clone(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        ..Default::default()
    };
    secret_reader_role(&client, remote.name(), subject).await;
    // The certificate, signed by the cluster through the CertificateSigningRequest API, in a
    // kubernetes.io/tls-style Secret (its private key is a value no log or Event may hold).
    let cert = stack
        .issue_client_certificate(&user, &[])
        .await
        .expect("a client certificate from the CSR API");
    for line in cert.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        register_secret_value(line.to_string());
    }
    create_secret(
        &client,
        ns.name(),
        "remote-cert",
        &[("tls.crt", &cert.cert_pem), ("tls.key", &cert.key_pem)],
        &[],
    )
    .await;
    // ESO's documented auth.cert shape.
    apply(
        &client,
        kubernetes_store(
            stack,
            ns.name(),
            "cert",
            remote.name(),
            json!({"cert": {
                "clientCert": {"name": "remote-cert", "key": "tls.crt"},
                "clientKey": {"name": "remote-cert", "key": "tls.key"},
            }}),
        ),
    )
    .await;
    wait_ready(&client, ns.name(), "SecretStore", "cert", "True", "Valid").await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "by-cert",
            "cert",
            json!({"data": [{"secretKey": "pw", "remoteRef": {"key": "db", "property": "password"}}]}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "by-cert", &[("pw", &password)]).await;

    // The same certificate does not reach a namespace its user has no Role in.
    apply(
        &client,
        kubernetes_store(
            stack,
            ns.name(),
            "cert-elsewhere",
            ns.name(),
            json!({"cert": {
                "clientCert": {"name": "remote-cert", "key": "tls.crt"},
                "clientKey": {"name": "remote-cert", "key": "tls.key"},
            }}),
        ),
    )
    .await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "denied",
            "cert-elsewhere",
            json!({"data": [{"secretKey": "k", "remoteRef": {"key": "remote-cert", "property": "tls.key"}}]}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "denied", "False", "SecretSyncedError").await;
    assert!(secret_data(&client, ns.name(), "denied").await.is_none());

    // Half a pair never gets this far: ESO's CRD requires both clientCert and clientKey (the
    // host's own refusal of half pairs is runtime/plugin-host/tests/client_certificates.rs).
    assert_no_secret_values(&client).await;
}
