//! The AWS provider plugin end to end, through the controller, on the real stack: a real
//! kube-apiserver (etcd, kube-controller-manager) and a real LocalStack, with ESO `v1`
//! SecretStore and ExternalSecret manifests. Nothing imitates Kubernetes or AWS.
//!
//! One `esox run` serves this test binary (least-privilege identity of deploy/rbac.yaml, the AWS
//! endpoint set by `--plugin-setting aws:endpoint=...`, never in the manifests). Each test works
//! in its own namespace with its own remote names (prefixed with the namespace), so the tests
//! are independent and run in parallel. Every store authenticates with `auth.secretRef` keys
//! read from a Secret in the test's namespace (LocalStack accepts `test`/`test`), and names
//! [`REGION`], where the values are seeded (LocalStack keeps regions apart, as AWS does).
//!
//! Every value a test seeds is registered, and each test ends by scanning the controller's
//! whole log for every value registered so far, raw and base64.
//!
//! Not covered: **access denied**. LocalStack community 4.9.2 does not enforce IAM, and no read
//! path this plugin takes yields an AccessDenied-class error from it. Tried against the real
//! LocalStack of this harness (boto3 from its venv, region eu-west-1):
//! - Secrets Manager secrets created with a KMS key that was then disabled, that was disabled
//!   before, that is scheduled for deletion, and with the ARN of a key that does not exist:
//!   GetSecretValue succeeds for all (LocalStack does not encrypt with KMS).
//! - SSM SecureString parameters with `alias/does-not-exist`, a disabled key, and a key disabled
//!   and then scheduled for deletion after the put: GetParameter with decryption succeeds.
//! - A `Deny *` resource policy on a secret (PutResourcePolicy): GetSecretValue succeeds.
//! - Unknown access key ids (`AKIANOTREAL`, `ASIA…` with a session token, `LSIA…`): accepted.
//!   A 12-digit access key id selects another account: its reads of our secret are
//!   ResourceNotFoundException (by name) or succeed (by full ARN), never AccessDenied.
//! - STS AssumeRoleWithWebIdentity with a garbage token, AssumeRole of a role that does not
//!   exist: both succeed; a malformed role ARN is ValidationError.
//! - The only AccessDeniedException LocalStack's SSM raises is PutParameter under the reserved
//!   `/aws/` path, a write the plugin never makes.
//!
//! So the permission-denied path stays covered only by the plugin's unit tests
//! (`plugins/aws/src/errors.rs`) and the egress denial in the plugin-host tests.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use esox_e2e::Stack;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, ObjectMeta, PostParams};
use serde_json::{Value, json};
use support::*;

const REGION: &str = "eu-west-1";
/// The Secret holding the store's AWS keys, in each test's namespace.
const CREDENTIALS: &str = "aws-credentials";

/// The shared stack with one `esox run` serving this test binary, its AWS endpoint pointed at
/// LocalStack (`--plugin-setting`, never in the manifests).
async fn stack() -> &'static Stack {
    stack_with_controller("esox-aws-features", |stack| {
        vec![
            "--plugin-setting".into(),
            format!("aws:endpoint={}", stack.localstack_endpoint()),
        ]
    })
    .await
}

// --- Kubernetes side --------------------------------------------------------------------------

/// The Secret with the store's AWS keys (LocalStack accepts any; `test`/`test` is its default).
async fn create_credentials(client: &kube::Client, ns: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(CREDENTIALS.into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("access-key-id".to_string(), "test".to_string()),
            ("secret-access-key".to_string(), "test".to_string()),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("credentials Secret");
}

/// A SecretStore for `service` in [`REGION`], authenticating with `auth.secretRef`.
fn aws_store(ns: &str, name: &str, service: &str) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provider": {"aws": {
            "service": service,
            "region": REGION,
            "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": CREDENTIALS, "key": "access-key-id"},
                "secretAccessKeySecretRef": {"name": CREDENTIALS, "key": "secret-access-key"},
            }},
        }}},
    })
}

/// The credentials Secret and a SecretStore named `aws` for `service`, Ready.
async fn setup_store(client: &kube::Client, ns: &str, service: &str) {
    create_credentials(client, ns).await;
    apply(client, aws_store(ns, "aws", service)).await;
    wait_ready(client, ns, "SecretStore", "aws", "True", "Valid").await;
}

/// An ExternalSecret from store `aws` into the Secret of the same name; `spec` is merged in.
fn external_secret(ns: &str, name: &str, spec: Value) -> Value {
    let mut full = json!({
        "refreshInterval": "1h",
        "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
        "target": {"name": name},
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut full, spec) {
        base.extend(extra);
    }
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": full,
    })
}

/// The notes of the `UpdateFailed` events about ExternalSecret `name`.
async fn update_failed_notes(client: &kube::Client, ns: &str, name: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("UpdateFailed")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .filter_map(|e| e.note)
        .collect()
}

// --- AWS side (LocalStack) --------------------------------------------------------------------

/// Create a Secrets Manager secret in [`REGION`], or put a new current value if it exists;
/// returns the VersionId of the value written.
async fn sm_put(stack: &Stack, name: &str, value: &str) -> String {
    let sm = stack.secretsmanager_client_in(REGION);
    match sm
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(out) => out.version_id().expect("VersionId").to_string(),
        Err(_) => sm
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .expect("PutSecretValue in LocalStack")
            .version_id()
            .expect("VersionId")
            .to_string(),
    }
}

/// Create a tagged Secrets Manager secret in [`REGION`]. This package does not depend on the
/// AWS SDK crates, so `Tag` cannot be named here: the tags go into CreateSecret's JSON body
/// before signing (the same request the SDK would send with `.tags(..)`).
async fn sm_create_tagged(stack: &Stack, name: &str, value: &str, tags: &[(&str, &str)]) {
    let tags: Value = tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    stack
        .secretsmanager_client_in(REGION)
        .create_secret()
        .name(name)
        .secret_string(value)
        .customize()
        .mutate_request(move |request| {
            let mut body: Value =
                serde_json::from_slice(request.body().bytes().expect("an in-memory JSON body"))
                    .expect("CreateSecret sends JSON");
            body["Tags"] = tags.clone();
            let body = serde_json::to_vec(&body).unwrap();
            request
                .headers_mut()
                .insert("content-length", body.len().to_string());
            *request.body_mut() = body.into();
        })
        .send()
        .await
        .expect("CreateSecret with tags in LocalStack");
}

/// Put an SSM parameter (`String` or `SecureString`) in [`REGION`].
async fn ssm_put(stack: &Stack, name: &str, value: &str, kind: &str) {
    stack
        .ssm_client_in(REGION)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind.into())
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter in LocalStack");
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn secret_ref_auth_reads_a_secrets_manager_value_and_its_properties() {
    let stack = stack().await;
    let ns = stack.new_namespace("aws-secretref").await.unwrap();
    let client = stack.admin_client();
    let password = secret_value("secretref-password");
    let key = format!("{}/database", ns.name());
    let whole = json!({"username": "app", "password": password}).to_string();
    sm_put(stack, &key, &whole).await;

    // The keys come from a Secret in the namespace; the store validates with them.
    setup_store(&client, ns.name(), "SecretsManager").await;
    let store =
        Api::<DynamicObject>::namespaced_with(client.clone(), ns.name(), &gvk("SecretStore"))
            .get("aws")
            .await
            .unwrap();
    assert_eq!(ready_condition(&store).unwrap().2, "store validated");

    apply(
        &client,
        external_secret(
            ns.name(),
            "db",
            json!({"data": [
                {"secretKey": "username", "remoteRef": {"key": key, "property": "username"}},
                {"secretKey": "password", "remoteRef": {"key": key, "property": "password"}},
                {"secretKey": "whole", "remoteRef": {"key": key}},
            ]}),
        ),
    )
    .await;
    let es = wait_ready(
        &client,
        ns.name(),
        "ExternalSecret",
        "db",
        "True",
        "SecretSynced",
    )
    .await;
    assert_eq!(ready_condition(&es).unwrap().2, "secret synced");
    wait_secret_data(
        &client,
        ns.name(),
        "db",
        &[
            ("username", "app"),
            ("password", &password),
            ("whole", &whole),
        ],
    )
    .await;

    // Without the keys' Secret the store cannot authenticate: it is not Ready (ESO's reason and
    // message), and the controller's log says which Secret is missing.
    let mut no_keys = aws_store(ns.name(), "no-keys", "SecretsManager");
    no_keys["spec"]["provider"]["aws"]["auth"]["secretRef"]["accessKeyIDSecretRef"]["name"] =
        json!("does-not-exist");
    apply(&client, no_keys).await;
    let store = wait_ready(
        &client,
        ns.name(),
        "SecretStore",
        "no-keys",
        "False",
        "InvalidProviderConfig",
    )
    .await;
    assert_eq!(
        ready_condition(&store).unwrap().2,
        "unable to validate store"
    );
    let log = controller_log();
    let missing = format!(
        "Secret {}/does-not-exist, referenced by the store, does not exist",
        ns.name()
    );
    assert!(
        log.contains(&missing),
        "the controller logs which Secret the store misses"
    );
    // ... and so does a Warning event on the store, with ESO's reason.
    wait_event(
        &client,
        ns.name(),
        "no-keys",
        "InvalidProviderConfig",
        |type_, note| type_ == "Warning" && note.contains(&missing),
    )
    .await;

    // The store's spec.retrySettings (ESO's place for it, beside provider) reaches the plugin:
    // a usable one keeps the store Ready, a bad one is refused by the plugin, naming the field.
    let mut retry_ok = aws_store(ns.name(), "retry-ok", "SecretsManager");
    retry_ok["spec"]["retrySettings"] = json!({"maxRetries": 1, "retryInterval": "50ms"});
    apply(&client, retry_ok).await;
    wait_ready(
        &client,
        ns.name(),
        "SecretStore",
        "retry-ok",
        "True",
        "Valid",
    )
    .await;
    let mut retry_bad = aws_store(ns.name(), "retry-bad", "SecretsManager");
    retry_bad["spec"]["retrySettings"] = json!({"maxRetries": -1});
    apply(&client, retry_bad).await;
    wait_ready(
        &client,
        ns.name(),
        "SecretStore",
        "retry-bad",
        "False",
        "InvalidProviderConfig",
    )
    .await;
    wait_event(
        &client,
        ns.name(),
        "retry-bad",
        "InvalidProviderConfig",
        |_, note| note.contains("spec.retrySettings.maxRetries must be 0 or more"),
    )
    .await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn parameter_store_reads_string_and_secure_string_and_finds_by_path() {
    let stack = stack().await;
    // Parameter names starting with `aws` or `ssm` are reserved (PutParameter refuses them):
    // the namespace, which prefixes the names, must not start so.
    let ns = stack.new_namespace("params").await.unwrap();
    let client = stack.admin_client();
    let user = secret_value("ssm-user");
    let password = secret_value("ssm-password");
    let prefix = format!("/{}/app", ns.name());
    ssm_put(stack, &format!("{prefix}/user"), &user, "String").await;
    ssm_put(
        stack,
        &format!("{prefix}/password"),
        &password,
        "SecureString",
    )
    .await;
    setup_store(&client, ns.name(), "ParameterStore").await;

    apply(
        &client,
        external_secret(
            ns.name(),
            "by-name",
            json!({"data": [
                {"secretKey": "user", "remoteRef": {"key": format!("{prefix}/user")}},
                {"secretKey": "password", "remoteRef": {"key": format!("{prefix}/password")}},
            ]}),
        ),
    )
    .await;
    // find by path (GetParametersByPath, recursive, decrypted): keys are the parameter names
    // with every character a Secret key cannot hold (here `/`) replaced by `_`.
    apply(
        &client,
        external_secret(
            ns.name(),
            "by-path",
            json!({"dataFrom": [{"find": {"path": prefix}}]}),
        ),
    )
    .await;
    // path and name.regexp together: only the matching names.
    apply(
        &client,
        external_secret(
            ns.name(),
            "by-path-and-name",
            json!({"dataFrom": [{"find": {"path": format!("/{}", ns.name()), "name": {"regexp": "/password$"}}}]}),
        ),
    )
    .await;

    wait_secret_data(
        &client,
        ns.name(),
        "by-name",
        &[("user", &user), ("password", &password)],
    )
    .await;
    let key = |leaf: &str| format!("_{}_app_{leaf}", ns.name());
    wait_secret_data(
        &client,
        ns.name(),
        "by-path",
        &[(&key("user"), &user), (&key("password"), &password)],
    )
    .await;
    wait_secret_data(
        &client,
        ns.name(),
        "by-path-and-name",
        &[(&key("password"), &password)],
    )
    .await;
    for es in ["by-name", "by-path", "by-path-and-name"] {
        wait_ready(
            &client,
            ns.name(),
            "ExternalSecret",
            es,
            "True",
            "SecretSynced",
        )
        .await;
    }
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn secrets_manager_find_by_name_regexp_and_by_tags_keys_the_secret_names() {
    let stack = stack().await;
    let ns = stack.new_namespace("aws-find").await.unwrap();
    let client = stack.admin_client();
    let n = ns.name();
    let db_user = secret_value("find-db-user");
    let db_password = secret_value("find-db-password");
    let cache_token = secret_value("find-cache-token");
    let other = secret_value("find-other");
    // regexp ^<ns>/db/ matches the first two; tag team=<ns> the first and the third.
    let team = n.to_string();
    let other_team = format!("not-{n}");
    sm_create_tagged(stack, &format!("{n}/db/user"), &db_user, &[("team", &team)]).await;
    sm_create_tagged(
        stack,
        &format!("{n}/db/password"),
        &db_password,
        &[("team", &other_team)],
    )
    .await;
    sm_create_tagged(
        stack,
        &format!("{n}/cache/token"),
        &cache_token,
        &[("team", &team)],
    )
    .await;
    sm_put(stack, &format!("{n}/cache/other"), &other).await;
    setup_store(&client, n, "SecretsManager").await;

    apply(
        &client,
        external_secret(
            n,
            "by-name",
            json!({"dataFrom": [{"find": {"name": {"regexp": format!("^{n}/db/")}}}]}),
        ),
    )
    .await;
    apply(
        &client,
        external_secret(
            n,
            "by-tags",
            json!({"dataFrom": [{"find": {"tags": {"team": team}}}]}),
        ),
    )
    .await;

    // Keys are the secret names, `/` converted to `_` (conversionStrategy Default).
    wait_secret_data(
        &client,
        n,
        "by-name",
        &[
            (&format!("{n}_db_user"), &db_user),
            (&format!("{n}_db_password"), &db_password),
        ],
    )
    .await;
    wait_secret_data(
        &client,
        n,
        "by-tags",
        &[
            (&format!("{n}_db_user"), &db_user),
            (&format!("{n}_cache_token"), &cache_token),
        ],
    )
    .await;
    for es in ["by-name", "by-tags"] {
        wait_ready(&client, n, "ExternalSecret", es, "True", "SecretSynced").await;
    }
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn versions_read_awsprevious_after_a_rotation_and_a_pinned_version_id() {
    let stack = stack().await;
    let ns = stack.new_namespace("aws-versions").await.unwrap();
    let client = stack.admin_client();
    let key = format!("{}/api-token", ns.name());
    let first = secret_value("versions-first");
    let second = secret_value("versions-second");
    let first_id = sm_put(stack, &key, &first).await;
    let second_id = sm_put(stack, &key, &second).await;
    assert_ne!(first_id, second_id, "the rotation made a new version");
    setup_store(&client, ns.name(), "SecretsManager").await;

    apply(
        &client,
        external_secret(
            ns.name(),
            "tokens",
            json!({"data": [
                {"secretKey": "current", "remoteRef": {"key": key}},
                {"secretKey": "explicit-current", "remoteRef": {"key": key, "version": "AWSCURRENT"}},
                {"secretKey": "previous", "remoteRef": {"key": key, "version": "AWSPREVIOUS"}},
                {"secretKey": "pinned", "remoteRef": {"key": key, "version": format!("uuid/{first_id}")}},
            ]}),
        ),
    )
    .await;
    wait_ready(
        &client,
        ns.name(),
        "ExternalSecret",
        "tokens",
        "True",
        "SecretSynced",
    )
    .await;
    wait_secret_data(
        &client,
        ns.name(),
        "tokens",
        &[
            ("current", &second),
            ("explicit-current", &second),
            ("previous", &first),
            ("pinned", &first),
        ],
    )
    .await;

    // A version id that does not exist is not-found (ResourceNotFoundException), named in the
    // UpdateFailed event.
    apply(
        &client,
        external_secret(
            ns.name(),
            "unknown-version",
            json!({"data": [{"secretKey": "pinned", "remoteRef": {
                "key": key, "version": "uuid/00000000-0000-4000-8000-000000000000"}}]}),
        ),
    )
    .await;
    wait_ready(
        &client,
        ns.name(),
        "ExternalSecret",
        "unknown-version",
        "False",
        "SecretSyncedError",
    )
    .await;
    let expected_note =
        format!("error processing spec.data[0] (key: {key}), err: secret not found");
    eventually("an UpdateFailed event for the unknown version", || async {
        let notes = update_failed_notes(&client, ns.name(), "unknown-version").await;
        notes.iter().any(|n| n == &expected_note).then_some(())
    })
    .await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_short_refresh_interval_follows_a_rotation_without_force_sync() {
    let stack = stack().await;
    let ns = stack.new_namespace("aws-rotate").await.unwrap();
    let client = stack.admin_client();
    let key = format!("{}/rotating", ns.name());
    let first = secret_value("rotate-first");
    sm_put(stack, &key, &first).await;
    setup_store(&client, ns.name(), "SecretsManager").await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "rotating",
            json!({"refreshInterval": "2s", "data": [{"secretKey": "value", "remoteRef": {"key": key}}]}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "rotating", &[("value", &first)]).await;
    let before = es_api(&client, ns.name()).get("rotating").await.unwrap();

    // Two rotations upstream; nothing touches the ExternalSecret.
    for round in ["second", "third"] {
        let next = secret_value(&format!("rotate-{round}"));
        let rotated = Instant::now();
        sm_put(stack, &key, &next).await;
        wait_secret_data(&client, ns.name(), "rotating", &[("value", &next)]).await;
        assert!(
            rotated.elapsed() < Duration::from_secs(30),
            "a 2s refreshInterval picks up a rotation quickly; took {:?}",
            rotated.elapsed()
        );
    }
    let after = es_api(&client, ns.name()).get("rotating").await.unwrap();
    assert_eq!(
        before.metadata.generation, after.metadata.generation,
        "the ExternalSecret's spec was not changed"
    );
    assert_eq!(
        before.metadata.annotations, after.metadata.annotations,
        "no force-sync annotation"
    );
    let (status, reason, _) = ready_condition(&after).unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "SecretSynced"));
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_missing_key_fails_with_secret_synced_error_naming_it_and_leaves_the_secret_intact() {
    let stack = stack().await;
    let ns = stack.new_namespace("aws-notfound").await.unwrap();
    let client = stack.admin_client();
    let key = format!("{}/short-lived", ns.name());
    let value = secret_value("notfound-value");
    sm_put(stack, &key, &value).await;
    setup_store(&client, ns.name(), "SecretsManager").await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "app",
            json!({"refreshInterval": "2s", "data": [{"secretKey": "token", "remoteRef": {"key": key}}]}),
        ),
    )
    .await;
    wait_ready(
        &client,
        ns.name(),
        "ExternalSecret",
        "app",
        "True",
        "SecretSynced",
    )
    .await;
    wait_secret_data(&client, ns.name(), "app", &[("token", &value)]).await;

    // The secret disappears upstream (deleted without recovery: ResourceNotFoundException).
    stack
        .secretsmanager_client_in(REGION)
        .delete_secret()
        .secret_id(&key)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("DeleteSecret in LocalStack");
    let es = wait_ready(
        &client,
        ns.name(),
        "ExternalSecret",
        "app",
        "False",
        "SecretSyncedError",
    )
    .await;
    // ESO's condition message; the detail (which entry, which key, why) is in the event.
    assert_eq!(
        ready_condition(&es).unwrap().2,
        "could not get secret data from provider"
    );
    let expected_note =
        format!("error processing spec.data[0] (key: {key}), err: secret not found");
    let notes = eventually("an UpdateFailed event naming the key", || async {
        let notes = update_failed_notes(&client, ns.name(), "app").await;
        notes.iter().any(|n| n == &expected_note).then_some(notes)
    })
    .await;
    assert!(notes.iter().all(|n| !n.contains(&value)));
    // Several refreshes later (2s interval, with backoff) the Secret still holds the last value.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        secret_data(&client, ns.name(), "app")
            .await
            .expect("Secret kept")["token"],
        value,
        "the Secret is left intact"
    );

    // An ExternalSecret that never synced, merging into an existing Secret: the existing data
    // is left as it was.
    let kept = secret_value("notfound-existing");
    Api::<Secret>::namespaced(client.clone(), ns.name())
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("existing".into()),
                    ..Default::default()
                },
                string_data: Some(BTreeMap::from([("kept".to_string(), kept.clone())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let never = format!("{}/never-existed", ns.name());
    apply(
        &client,
        external_secret(
            ns.name(),
            "existing",
            json!({
                "target": {"name": "existing", "creationPolicy": "Merge"},
                "data": [{"secretKey": "added", "remoteRef": {"key": never}}],
            }),
        ),
    )
    .await;
    let es = wait_ready(
        &client,
        ns.name(),
        "ExternalSecret",
        "existing",
        "False",
        "SecretSyncedError",
    )
    .await;
    assert_eq!(
        ready_condition(&es).unwrap().2,
        "could not get secret data from provider"
    );
    let expected_note =
        format!("error processing spec.data[0] (key: {never}), err: secret not found");
    eventually(
        "an UpdateFailed event naming the never-existing key",
        || async {
            let notes = update_failed_notes(&client, ns.name(), "existing").await;
            notes.iter().any(|n| n == &expected_note).then_some(())
        },
    )
    .await;
    assert_eq!(
        secret_data(&client, ns.name(), "existing").await.unwrap(),
        BTreeMap::from([("kept".to_string(), kept)]),
        "the existing Secret is left intact"
    );
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_secret_marked_for_deletion_is_not_found_so_deletion_policy_delete_removes_the_secret() {
    let stack = stack().await;
    let ns = stack.new_namespace("aws-marked").await.unwrap();
    let client = stack.admin_client();
    let key = format!("{}/retiring", ns.name());
    let value = secret_value("marked-value");
    sm_put(stack, &key, &value).await;
    setup_store(&client, ns.name(), "SecretsManager").await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "retiring",
            json!({
                "refreshInterval": "2s",
                "target": {"name": "retiring", "creationPolicy": "Owner", "deletionPolicy": "Delete"},
                "data": [{"secretKey": "token", "remoteRef": {"key": key}}],
            }),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "retiring", &[("token", &value)]).await;

    // Scheduled for deletion with a recovery window: AWS (and LocalStack) answer
    // InvalidRequestException "... because it was marked for deletion", which ESO treats as
    // "no such secret".
    stack
        .secretsmanager_client_in(REGION)
        .delete_secret()
        .secret_id(&key)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("DeleteSecret in LocalStack");
    let es = wait_ready(
        &client,
        ns.name(),
        "ExternalSecret",
        "retiring",
        "True",
        "SecretDeleted",
    )
    .await;
    assert_eq!(
        ready_condition(&es).unwrap().2,
        "secret deleted due to DeletionPolicy=Delete"
    );
    eventually("the Secret to be deleted", || async {
        secret_data(&client, ns.name(), "retiring")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_no_secret_values(&client).await;
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_role_given_by_name_with_session_tags_and_a_session_token_is_assumed_and_syncs() {
    let stack = stack().await;
    let ns = stack.new_namespace("aws-role-name").await.unwrap();
    let client = stack.admin_client();
    let value = secret_value("role-name");
    let key = format!("{}/token", ns.name());
    sm_put(stack, &key, &value).await;
    create_credentials(&client, ns.name()).await;
    // ESO's docs (provider/aws-access.md) write `role: team-b`: the plugin resolves it to
    // arn:<partition>:iam::<account>:role/team-b with sts:GetCallerIdentity, then assumes it.
    let mut store = aws_store(ns.name(), "aws", "SecretsManager");
    store["spec"]["provider"]["aws"]["role"] = json!("team-b");
    // With ESO's session tag policy: the session is tagged esoNamespace/esoStoreName/
    // esoStoreKind plus the custom tags (what tags are sent is unit-tested in the plugin;
    // LocalStack accepts them without showing them back).
    store["spec"]["provider"]["aws"]["sessionTagsPolicy"] = json!("Custom");
    store["spec"]["provider"]["aws"]["customSessionTags"] = json!({"team": "b"});
    // A session token read like the keys (the third reference the plugin declares; LocalStack
    // takes any token), with the namespace spelled out.
    store["spec"]["provider"]["aws"]["auth"]["secretRef"]["sessionTokenSecretRef"] =
        json!({"name": CREDENTIALS, "key": "secret-access-key", "namespace": ns.name()});
    apply(&client, store).await;
    wait_ready(&client, ns.name(), "SecretStore", "aws", "True", "Valid").await;
    apply(
        &client,
        external_secret(
            ns.name(),
            "token",
            json!({"data": [{"secretKey": "token", "remoteRef": {"key": key}}]}),
        ),
    )
    .await;
    wait_secret_data(&client, ns.name(), "token", &[("token", &value)]).await;
    assert_no_secret_values(&client).await;
}

/// A certificate requested in LocalStack's ACM: exportable (`Options.Export: ENABLED`) or not.
async fn request_certificate(stack: &Stack, domain: &str, exportable: bool) -> String {
    use esox_e2e::aws_sdk_acm::types::{CertificateExport, CertificateOptions};
    let acm = stack.acm_client_in(REGION);
    let mut request = acm.request_certificate().domain_name(domain);
    if exportable {
        request = request.options(
            CertificateOptions::builder()
                .export(CertificateExport::Enabled)
                .build(),
        );
    }
    request
        .send()
        .await
        .expect("RequestCertificate in LocalStack")
        .certificate_arn()
        .expect("an ARN")
        .to_string()
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn certificate_manager_exports_a_tls_bundle_and_refuses_what_it_cannot_serve() {
    let stack = stack().await;
    let ns = stack.new_namespace("aws-acm").await.unwrap();
    let client = stack.admin_client();
    let exportable = request_certificate(stack, &format!("app.{}.test", ns.name()), true).await;
    let locked = request_certificate(stack, &format!("locked.{}.test", ns.name()), false).await;
    setup_store(&client, ns.name(), "CertificateManager").await;

    // ESO's documented use: the bundle split into a kubernetes.io/tls Secret by filterPEM.
    apply(
        &client,
        external_secret(
            ns.name(),
            "tls",
            json!({
                "data": [{"secretKey": "bundle", "remoteRef": {"key": exportable}}],
                "target": {"name": "tls", "template": {
                    "type": "kubernetes.io/tls",
                    "data": {
                        "tls.crt": "{{ .bundle | filterPEM \"CERTIFICATE\" }}",
                        "tls.key": "{{ .bundle | filterPEM \"PRIVATE KEY\" }}",
                        "bundle.pem": "{{ .bundle }}",
                    },
                }},
            }),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "tls", "True", "SecretSynced").await;
    let secret = Api::<Secret>::namespaced(client.clone(), ns.name())
        .get("tls")
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| String::from_utf8(data.get(k).unwrap().0.clone()).unwrap();
    let (crt, key, bundle) = (text("tls.crt"), text("tls.key"), text("bundle.pem"));
    // The key's body is a secret: the controller must never log it.
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    register_secret_value(key_body);
    // ESO's bundle: certificate, chain (LocalStack's root), then the key, decrypted to plain
    // PKCS#8, never the encrypted form the export carried. (LocalStack indents the END line of
    // its root, so filterPEM, like Go's pem.Decode, finds the leaf only.)
    let begin = |what: &str| bundle.find(&format!("-----BEGIN {what}-----"));
    let leaf = begin("CERTIFICATE").expect("a certificate");
    let chain = bundle[leaf + 1..]
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a chain");
    let private = begin("PRIVATE KEY").expect("the key");
    assert!(
        leaf < chain + leaf + 1 && chain + leaf + 1 < private,
        "certificate, chain, key"
    );
    assert!(bundle.ends_with("-----END PRIVATE KEY-----\n"));
    assert!(crt.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(bundle.starts_with(crt.trim_end()), "tls.crt is the leaf");
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "decrypted PKCS#8"
    );
    assert!(!key.contains("ENCRYPTED"));

    // Not exportable: refused naming the certificate; nothing written.
    apply(
        &client,
        external_secret(
            ns.name(),
            "locked",
            json!({"data": [{"secretKey": "bundle", "remoteRef": {"key": locked}}]}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "locked", "False", "SecretSyncedError").await;
    wait_event(&client, ns.name(), "locked", "UpdateFailed", |_, note| {
        note.contains("is not exportable")
    })
    .await;
    assert!(secret_data(&client, ns.name(), "locked").await.is_none());

    // find has no meaning for ACM: ESO's error.
    apply(
        &client,
        external_secret(
            ns.name(),
            "find",
            json!({"dataFrom": [{"find": {"name": {"regexp": ".*"}}}]}),
        ),
    )
    .await;
    wait_es(&client, ns.name(), "find", "False", "SecretSyncedError").await;
    wait_event(&client, ns.name(), "find", "UpdateFailed", |_, note| {
        note.contains("operation not supported by AWS Certificate Manager provider")
    })
    .await;
    assert_no_secret_values(&client).await;
}
