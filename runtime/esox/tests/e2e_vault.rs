//! End-to-end tests of the `vault` provider plugin against a real HashiCorp Vault (the pinned
//! v1.21.0 built from its Go module by the harness, in dev mode) and the real API server: ESO's
//! `spec.provider.vault` manifests with each auth method, KV v1 and v2, properties, find. One
//! Vault and one `esox run` serve the whole test binary; the operator grants the plugin the
//! Vault's origin (`--plugin-egress`), as a cluster's operator would. Every test ends by scanning
//! the controller's log and every Event for the values it synced.

mod support;

use std::collections::BTreeMap;

use esox_e2e::Stack;
use esox_e2e::vault::VaultServer;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::{Value, json};
use support::*;
use tokio::sync::OnceCell;

static VAULT: OnceCell<VaultServer> = OnceCell::const_new();

/// The shared Vault (started once for this binary).
async fn vault() -> &'static VaultServer {
    VAULT
        .get_or_init(|| async {
            let logs = std::env::temp_dir().join(format!("esox-e2e-vault-{}", std::process::id()));
            let vault = VaultServer::start(&logs).await.expect("vault starts");
            // A KV v1 mount beside dev mode's KV v2 at `secret/`.
            vault
                .write("sys/mounts/kv1", &json!({"type": "kv", "options": {"version": "1"}}))
                .await
                .expect("kv v1 mount");
            // What the stores may read, and nothing else.
            vault
                .write(
                    "sys/policies/acl/esox-read",
                    &json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }\npath \"secret/metadata/*\" { capabilities = [\"read\", \"list\"] }\npath \"kv1/*\" { capabilities = [\"read\", \"list\"] }"}),
                )
                .await
                .expect("policy");
            vault
        })
        .await
}

/// The shared stack, Vault, and one `esox run` allowed to reach it.
async fn stack() -> &'static Stack {
    let vault = vault().await;
    stack_with_controller("esox-vault", |_| {
        vec![
            "--plugin-egress".into(),
            format!("vault={}", vault.addr()),
            "--plugin-egress".into(),
            format!("vault={}", vault.tls_addr()),
            "--plugin-egress".into(),
            format!("vault={}", vault.mtls_addr()),
        ]
    })
    .await
}

/// A Secret `name` with `key: value` in `ns`.
async fn create_secret(client: &kube::Client, ns: &str, name: &str, key: &str, value: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(key.to_string(), value.to_string())])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("Secret");
}

/// ESO's documented SecretStore for Vault, with `auth` and the mount given.
fn vault_store(ns: &str, name: &str, path: &str, version: &str, auth: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provider": {"vault": {
            "server": vault_addr(),
            "path": path,
            "version": version,
            "auth": auth,
        }}},
    })
}

fn vault_addr() -> String {
    VAULT.get().expect("vault started").addr().to_string()
}

/// A token with the read policy only (what an operator would hand a store).
async fn read_token(vault: &VaultServer) -> String {
    let answer = vault
        .write(
            "auth/token/create",
            &json!({"policies": ["esox-read"], "ttl": "1h"}),
        )
        .await
        .expect("token create");
    answer["auth"]["client_token"]
        .as_str()
        .expect("a token")
        .to_string()
}

#[tokio::test]
#[ignore = "needs the real stack and a Vault built from its Go module: runs in `cargo xtask test` (e2e phase)"]
async fn token_auth_reads_kv_v2_values_properties_whole_secrets_and_finds_by_path() {
    let stack = stack().await;
    let vault = vault().await;
    let ns = stack.new_namespace("vault-token").await.unwrap();
    let client = stack.admin_client();
    let password = secret_value("vault-v2-password");
    let other = secret_value("vault-v2-other");
    let key = format!("{}/db", ns.name());
    vault
        .write(
            &format!("secret/data/{key}"),
            &json!({"data": {"username": "app", "password": password}}),
        )
        .await
        .unwrap();
    vault
        .write(
            &format!("secret/data/{}/other", ns.name()),
            &json!({"data": {"value": other}}),
        )
        .await
        .unwrap();
    let token = read_token(vault).await;
    register_secret_value(token.clone());
    create_secret(&client, ns.name(), "vault-token", "token", &token).await;
    apply(
        &client,
        vault_store(
            ns.name(),
            "vault",
            "secret",
            "v2",
            json!({"tokenSecretRef": {"name": "vault-token", "key": "token"}}),
        ),
    )
    .await;
    wait_ready(&client, ns.name(), "SecretStore", "vault", "True", "Valid").await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "db",
            "vault",
            json!({
                "data": [
                    {"secretKey": "password", "remoteRef": {"key": key, "property": "password"}},
                    {"secretKey": "user", "remoteRef": {"key": key, "property": "username"}},
                ],
                "dataFrom": [{"extract": {"key": format!("{}/other", ns.name())}}],
            }),
        ),
    )
    .await;
    wait_secret_data(
        &client,
        ns.name(),
        "db",
        &[("password", &password), ("user", "app"), ("value", &other)],
    )
    .await;

    // find: every secret under the namespace's path whose name matches, keyed by its path
    // (rewritten to the last segment: a Secret key cannot hold "/"), each the JSON of its data.
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "found",
            "vault",
            json!({"dataFrom": [{
                "find": {"path": ns.name(), "name": {"regexp": "other$"}},
                "rewrite": [{"regexp": {"source": ".*/(.*)", "target": "$1"}}],
            }]}),
        ),
    )
    .await;
    let whole = json!({"value": other}).to_string();
    register_secret_value(whole.clone());
    wait_secret_data(&client, ns.name(), "found", &[("other", &whole)]).await;

    // A key that does not exist: Ready=False, the existing Secret untouched.
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "missing",
            "vault",
            json!({"data": [{"secretKey": "x", "remoteRef": {"key": format!("{}/nope", ns.name())}}]}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "missing", "False", "SecretSyncedError").await;
    assert!(secret_data(&client, ns.name(), "missing").await.is_none());
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack and a Vault built from its Go module: runs in `cargo xtask test` (e2e phase)"]
async fn approle_and_userpass_log_in_and_read_kv_v1() {
    let stack = stack().await;
    let vault = vault().await;
    let ns = stack.new_namespace("vault-login").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("vault-v1");
    let key = format!("{}/api", ns.name());
    vault
        .write(&format!("kv1/{key}"), &json!({"token": value}))
        .await
        .unwrap();

    // AppRole: role id inline (as ESO's docs), secret id from a Secret.
    let _ = vault
        .write("sys/auth/approle", &json!({"type": "approle"}))
        .await;
    vault
        .write(
            "auth/approle/role/esox",
            &json!({"token_policies": ["esox-read"], "token_ttl": "1h"}),
        )
        .await
        .unwrap();
    let role_id = vault.read("auth/approle/role/esox/role-id").await.unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = vault
        .write("auth/approle/role/esox/secret-id", &json!({}))
        .await
        .unwrap()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    register_secret_value(secret_id.clone());
    create_secret(&client, ns.name(), "approle", "secret-id", &secret_id).await;
    apply(
        &client,
        vault_store(
            ns.name(),
            "approle",
            "kv1",
            "v1",
            json!({"appRole": {"path": "approle", "roleId": role_id, "secretRef": {"name": "approle", "key": "secret-id"}}}),
        ),
    )
    .await;

    // userpass: the password from a Secret.
    let _ = vault
        .write("sys/auth/userpass", &json!({"type": "userpass"}))
        .await;
    let password = secret_value("vault-userpass");
    vault
        .write(
            "auth/userpass/users/esox",
            &json!({"password": password, "token_policies": ["esox-read"]}),
        )
        .await
        .unwrap();
    create_secret(&client, ns.name(), "userpass", "password", &password).await;
    apply(
        &client,
        vault_store(
            ns.name(),
            "userpass",
            "kv1",
            "v1",
            json!({"userPass": {"path": "userpass", "username": "esox", "secretRef": {"name": "userpass", "key": "password"}}}),
        ),
    )
    .await;

    for store in ["approle", "userpass"] {
        wait_ready(&client, ns.name(), "SecretStore", store, "True", "Valid").await;
        apply(
            &client,
            store_external_secret(
                ns.name(),
                store,
                store,
                json!({"data": [{"secretKey": "token", "remoteRef": {"key": key, "property": "token"}}]}),
            ),
        )
        .await;
        wait_secret_data(&client, ns.name(), store, &[("token", &value)]).await;
    }
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack and a Vault built from its Go module: runs in `cargo xtask test` (e2e phase)"]
async fn tls_is_trusted_only_through_the_stores_ca_bundle_or_ca_provider() {
    use base64::Engine as _;
    let stack = stack().await;
    let vault = vault().await;
    let ns = stack.new_namespace("vault-tls").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("vault-tls");
    let key = format!("{}/tls", ns.name());
    vault
        .write(
            &format!("secret/data/{key}"),
            &json!({"data": {"v": value}}),
        )
        .await
        .unwrap();
    let token = read_token(vault).await;
    register_secret_value(token.clone());
    create_secret(&client, ns.name(), "vault-token", "token", &token).await;
    let auth = json!({"tokenSecretRef": {"name": "vault-token", "key": "token"}});
    let tls_store = |name: &str, extra: Value| {
        let mut store = vault_store(ns.name(), name, "secret", "v2", auth.clone());
        store["spec"]["provider"]["vault"]["server"] = json!(vault.tls_addr());
        if let (Some(Value::Object(p)), Value::Object(e)) =
            (store["spec"]["provider"].get_mut("vault"), extra)
        {
            p.extend(e);
        }
        store
    };
    // The CA inline, and from a ConfigMap (ESO's caProvider).
    let bundle = base64::engine::general_purpose::STANDARD.encode(vault.ca_pem());
    apply(&client, tls_store("inline", json!({"caBundle": bundle}))).await;
    apply(
        &client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "vault-ca", "namespace": ns.name()},
               "data": {"ca.crt": vault.ca_pem()}}),
    )
    .await;
    apply(
        &client,
        tls_store(
            "provider",
            json!({"caProvider": {"type": "ConfigMap", "name": "vault-ca", "key": "ca.crt"}}),
        ),
    )
    .await;
    for store in ["inline", "provider"] {
        wait_ready(&client, ns.name(), "SecretStore", store, "True", "Valid").await;
        apply(
            &client,
            store_external_secret(
                ns.name(),
                store,
                store,
                json!({"data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]}),
            ),
        )
        .await;
        wait_secret_data(&client, ns.name(), store, &[("v", &value)]).await;
    }
    // Without the CA, no public root trusts the listener: the store is not Ready.
    apply(&client, tls_store("untrusted", json!({}))).await;
    wait_ready(
        &client,
        ns.name(),
        "SecretStore",
        "untrusted",
        "False",
        "InvalidProviderConfig",
    )
    .await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack and a Vault built from its Go module: runs in `cargo xtask test` (e2e phase)"]
async fn client_certificates_log_in_with_cert_auth_and_pass_mtls() {
    use base64::Engine as _;
    let stack = stack().await;
    let vault = vault().await;
    let ns = stack.new_namespace("vault-cert").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("vault-cert");
    let key = format!("{}/cert", ns.name());
    vault
        .write(
            &format!("secret/data/{key}"),
            &json!({"data": {"v": value}}),
        )
        .await
        .unwrap();
    // Vault's cert auth method trusts the harness CA for the role (ESO's vaultRole).
    let role = format!("esox-{}", ns.name());
    vault
        .write("sys/auth/cert", &json!({"type": "cert"}))
        .await
        .expect("enable the cert auth method");
    vault
        .write(
            &format!("auth/cert/certs/{role}"),
            &json!({"certificate": vault.ca_pem(), "token_policies": ["esox-read"], "token_ttl": "10m"}),
        )
        .await
        .unwrap();
    // A client certificate in a kubernetes.io/tls-style Secret: its key is a value no log or
    // Event may hold.
    let cert = vault.client_certificate("esox-store").unwrap();
    for line in cert.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        register_secret_value(line.to_string());
    }
    apply(
        &client,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "vault-client", "namespace": ns.name()},
               "type": "kubernetes.io/tls",
               "stringData": {"tls.crt": cert.cert_pem, "tls.key": cert.key_pem}}),
    )
    .await;
    let token = read_token(vault).await;
    register_secret_value(token.clone());
    create_secret(&client, ns.name(), "vault-token", "token", &token).await;
    let bundle = base64::engine::general_purpose::STANDARD.encode(vault.ca_pem());
    let store = |name: &str, server: &str, fields: Value| {
        let mut store = vault_store(ns.name(), name, "secret", "v2", json!({}));
        let provider = store["spec"]["provider"]["vault"].as_object_mut().unwrap();
        provider.insert("server".into(), json!(server));
        provider.insert("caBundle".into(), json!(bundle));
        if let Value::Object(f) = fields {
            provider.extend(f);
        }
        store
    };
    let token_auth = json!({"tokenSecretRef": {"name": "vault-token", "key": "token"}});
    // 1. ESO's auth.cert: the host presents the certificate, the plugin logs in as the role.
    apply(
        &client,
        store(
            "cert-login",
            vault.tls_addr(),
            json!({"auth": {"cert": {
                "path": "cert",
                "vaultRole": role,
                "clientCert": {"name": "vault-client", "key": "tls.crt"},
                "secretRef": {"name": "vault-client", "key": "tls.key"},
            }}}),
        ),
    )
    .await;
    // 2. ESO's tls: mutual TLS to a listener that requires a client certificate (the key
    //    names default to tls.crt and tls.key), with token auth.
    apply(
        &client,
        store(
            "mtls",
            vault.mtls_addr(),
            json!({"auth": token_auth, "tls": {
                "certSecretRef": {"name": "vault-client"},
                "keySecretRef": {"name": "vault-client"},
            }}),
        ),
    )
    .await;
    for name in ["cert-login", "mtls"] {
        wait_ready(&client, ns.name(), "SecretStore", name, "True", "Valid").await;
        apply(
            &client,
            store_external_secret(
                ns.name(),
                name,
                name,
                json!({"data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]}),
            ),
        )
        .await;
        wait_secret_data(&client, ns.name(), name, &[("v", &value)]).await;
    }
    // Without the certificate the mTLS listener refuses the handshake: not Ready.
    apply(
        &client,
        store(
            "mtls-without",
            vault.mtls_addr(),
            json!({"auth": token_auth}),
        ),
    )
    .await;
    let without = wait_ready(
        &client,
        ns.name(),
        "SecretStore",
        "mtls-without",
        "False",
        "InvalidProviderConfig",
    )
    .await;
    let (_, _, message) = ready_condition(&without).expect("a Ready condition");
    assert!(!message.is_empty());
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack and a Vault built from its Go module: runs in `cargo xtask test` (e2e phase)"]
async fn kubernetes_auth_logs_in_with_a_token_the_host_mints_for_the_service_account() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
    let stack = stack().await;
    let vault = vault().await;
    let ns = stack.new_namespace("vault-k8s").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("vault-k8s");
    let key = format!("{}/app", ns.name());
    vault
        .write(
            &format!("secret/data/{key}"),
            &json!({"data": {"v": value}}),
        )
        .await
        .unwrap();
    // The ServiceAccount the store names, and the reviewer Vault checks its tokens with
    // (system:auth-delegator; a token for the API server's own audience), as Vault's docs set
    // it up against a cluster.
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), ns.name());
    for name in ["vault-auth", "vault-reviewer"] {
        accounts
            .create(
                &PostParams::default(),
                &ServiceAccount {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata: ObjectMeta {
                    name: Some(format!("{}-vault-reviewer", ns.name())),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "ClusterRole".into(),
                    name: "system:auth-delegator".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "vault-reviewer".into(),
                    namespace: Some(ns.name().into()),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    let reviewer_jwt = accounts
        .create_token_request(
            "vault-reviewer",
            &PostParams::default(),
            &k8s_openapi::api::authentication::v1::TokenRequest {
                spec: Some(k8s_openapi::api::authentication::v1::TokenRequestSpec {
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
        .expect("a reviewer token");
    let _ = vault
        .write("sys/auth/kubernetes", &json!({"type": "kubernetes"}))
        .await;
    vault
        .write(
            "auth/kubernetes/config",
            &json!({
                "kubernetes_host": stack.api_server_url(),
                "kubernetes_ca_cert": stack.api_server_ca_pem(),
                "token_reviewer_jwt": reviewer_jwt,
                "disable_local_ca_jwt": true,
            }),
        )
        .await
        .unwrap();
    let role = format!("esox-{}", ns.name());
    vault
        .write(
            &format!("auth/kubernetes/role/{role}"),
            &json!({
                "bound_service_account_names": ["vault-auth"],
                "bound_service_account_namespaces": [ns.name()],
                "audience": "vault",
                "token_policies": ["esox-read"],
                "token_ttl": "1h",
            }),
        )
        .await
        .unwrap();
    apply(
        &client,
        vault_store(
            ns.name(),
            "k8s",
            "secret",
            "v2",
            json!({"kubernetes": {
                "mountPath": "kubernetes",
                "role": role,
                "serviceAccountRef": {"name": "vault-auth", "audiences": ["vault"]},
            }}),
        ),
    )
    .await;
    wait_ready(&client, ns.name(), "SecretStore", "k8s", "True", "Valid").await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "app",
            "k8s",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "app", &[("v", &value)]).await;

    // ESO's documented example names no audiences: the host mints a token for the API
    // server's own audience (granted to the embedded vault plugin by default), which a role
    // without `audience` accepts after Vault's TokenReview.
    vault
        .write(
            &format!("auth/kubernetes/role/{role}-default"),
            &json!({
                "bound_service_account_names": ["vault-auth"],
                "bound_service_account_namespaces": [ns.name()],
                "token_policies": ["esox-read"],
                "token_ttl": "1h",
            }),
        )
        .await
        .unwrap();
    apply(
        &client,
        vault_store(
            ns.name(),
            "k8s-default",
            "secret",
            "v2",
            json!({"kubernetes": {
                "mountPath": "kubernetes",
                "role": format!("{role}-default"),
                "serviceAccountRef": {"name": "vault-auth"},
            }}),
        ),
    )
    .await;
    wait_ready(
        &client,
        ns.name(),
        "SecretStore",
        "k8s-default",
        "True",
        "Valid",
    )
    .await;
    apply(
        &client,
        store_external_secret(
            ns.name(),
            "app-default",
            "k8s-default",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "app-default", &[("v", &value)]).await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack and a Vault built from its Go module: runs in `cargo xtask test` (e2e phase)"]
async fn push_and_delete_write_kv_v2_with_esos_marker_and_leave_foreign_secrets_alone() {
    let vault = vault().await;
    let prefix = format!("push-{}", std::process::id());
    // A token that may write under push/ only, as an operator would scope a PushSecret store.
    vault
        .write(
            "sys/policies/acl/esox-push",
            &json!({"policy": "path \"secret/data/push-*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\"] }\npath \"secret/metadata/push-*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\"] }"}),
        )
        .await
        .unwrap();
    let token = vault
        .write(
            "auth/token/create",
            &json!({"policies": ["esox-push"], "ttl": "1h"}),
        )
        .await
        .unwrap()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.json");
    let mut manifest = vault_store(
        "default",
        "push",
        "secret",
        "v2",
        json!({"tokenSecretRef": {"name": "vault-token", "key": "token"}}),
    );
    manifest["spec"]["provider"]["vault"]["checkAndSet"] = json!({"required": true});
    std::fs::write(&store, manifest.to_string()).unwrap();
    let secrets = dir.path().join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"secrets": {"vault-token": {"token": token}}}).to_string(),
    )
    .unwrap();
    let egress = format!("vault={}", vault.addr());
    let (store, secrets) = (store.to_str().unwrap(), secrets.to_str().unwrap());
    let key = format!("{prefix}/db");
    let args = |cmd: &'static str, key: &str, property: Option<&'static str>| {
        let mut a: Vec<String> = [cmd, "--store", store, "--secrets-file", secrets]
            .map(String::from)
            .to_vec();
        a.extend([
            "--plugin-egress".into(),
            egress.clone(),
            "--key".into(),
            key.into(),
        ]);
        if let Some(p) = property {
            a.extend(["--property".into(), p.into()]);
        }
        a
    };
    // A call that found Vault unavailable (a connection reset while the other tests load the
    // dev server; the controller would retry it with backoff) is tried again, up to 3 times.
    let run = |a: Vec<String>, value: Option<&str>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut attempt = 0;
        loop {
            let (ok, printed) = esox_write(&refs, value);
            attempt += 1;
            if ok || attempt == 3 || !printed.contains("provider unavailable") {
                return (ok, printed);
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    };

    // 1. Two property pushes build one KV v2 secret, marked as ESO marks what it manages.
    let password = secret_value("vault-push-password");
    let (ok, printed) = run(args("push", &key, Some("password")), Some(&password));
    assert!(ok, "{printed}");
    assert!(!printed.contains(&password), "{printed}");
    let (ok, printed) = run(args("push", &key, Some("username")), Some("app"));
    assert!(ok, "{printed}");
    let read = vault.read(&format!("secret/data/{key}")).await.unwrap();
    assert_eq!(
        read["data"]["data"],
        json!({"password": password, "username": "app"})
    );
    let meta = vault.read(&format!("secret/metadata/{key}")).await.unwrap();
    assert_eq!(
        meta["data"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );
    assert_eq!(meta["data"]["current_version"], 2, "check-and-set writes");
    // Pushing the same value again writes nothing (no new version).
    let (ok, printed) = run(args("push", &key, Some("username")), Some("app"));
    assert!(ok, "{printed}");
    let meta = vault.read(&format!("secret/metadata/{key}")).await.unwrap();
    assert_eq!(meta["data"]["current_version"], 2);

    // 2. A secret someone else wrote (no marker) is neither overwritten nor deleted.
    let foreign = format!("{prefix}/foreign");
    vault
        .write(
            &format!("secret/data/{foreign}"),
            &json!({"data": {"owner": "someone else"}}),
        )
        .await
        .unwrap();
    let (ok, printed) = run(args("push", &foreign, Some("owner")), Some("esox"));
    assert!(
        !ok && printed.contains("not managed by external-secrets"),
        "{printed}"
    );
    let (ok, printed) = run(args("delete", &foreign, None), None);
    assert!(ok, "{printed}");
    let read = vault.read(&format!("secret/data/{foreign}")).await.unwrap();
    assert_eq!(read["data"]["data"], json!({"owner": "someone else"}));

    // 3. Deleting a property keeps the rest; deleting the whole secret removes every version.
    let (ok, printed) = run(args("delete", &key, Some("password")), None);
    assert!(ok, "{printed}");
    let read = vault.read(&format!("secret/data/{key}")).await.unwrap();
    assert_eq!(read["data"]["data"], json!({"username": "app"}));
    let (ok, printed) = run(args("delete", &key, None), None);
    assert!(ok, "{printed}");
    assert!(vault.read(&format!("secret/metadata/{key}")).await.is_err());

    // 4. A token without write rights is refused by Vault, and esox says so.
    let readonly = dir.path().join("readonly.json");
    std::fs::write(
        &readonly,
        json!({"secrets": {"vault-token": {"token": read_token(vault).await}}}).to_string(),
    )
    .unwrap();
    let mut a = args("push", &key, Some("password"));
    a[4] = readonly.to_str().unwrap().to_string();
    let (ok, printed) = run(a, Some(&password));
    assert!(
        !ok && printed.to_lowercase().contains("permission"),
        "{printed}"
    );
    assert!(!printed.contains(&password), "{printed}");
}
