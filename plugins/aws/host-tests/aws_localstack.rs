//! The AWS plugin through the real plugin host against a real LocalStack (ESO-COMPAT.md §3):
//! secretRef auth, versions, properties, maps, batch reads, find, Parameter Store, not-found,
//! tags, and the egress allow-list following the operator's endpoint setting.
//!
//! Needs two things the plugin host's own build does not provide yet, so every test here is
//! `#[ignore]`d with that reason and runs with `--ignored` where they are provided:
//! - `ESOX_TEST_LOCALSTACK_ENDPOINT`: a running LocalStack (e.g. `http://127.0.0.1:4566`), as the
//!   e2e harness starts it (REAL-APIS.md);
//! - the plugin component: `ESOX_AWS_PLUGIN_WASM`, or `esox_plugin_aws.wasm` beside the other
//!   plugins build.rs builds.
//!
//! ```text
//! ESOX_TEST_LOCALSTACK_ENDPOINT=http://127.0.0.1:4566 \
//!   cargo test -p esox-plugin-host --test aws_localstack -- --ignored
//! ```
//!
//! STATUS: written against the host's API but NOT YET COMPILED OR RUN (the host's wasmtime
//! build did not finish in the author's session). It lives in `plugins/aws/host-tests/` so it
//! cannot break the plugin host's build; move it to `runtime/plugin-host/tests/` to use it.
//!
//! Values are seeded with plain AWS JSON-protocol requests (LocalStack accepts any signature),
//! each test under names of its own so tests do not depend on each other.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use esox_plugin_host::{EgressPolicy, Limits, LocalServices, PluginHost, PluginOrigin, StoreClient, StoreSpec, Validation};
use esox_provider::{FindQuery, MetadataPolicy, ProviderError, RemoteRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn endpoint() -> String {
    std::env::var("ESOX_TEST_LOCALSTACK_ENDPOINT")
        .expect("set ESOX_TEST_LOCALSTACK_ENDPOINT to a running LocalStack, e.g. http://127.0.0.1:4566")
        .trim_end_matches('/')
        .to_string()
}

fn plugin_wasm() -> PathBuf {
    std::env::var_os("ESOX_AWS_PLUGIN_WASM").map(PathBuf::from).unwrap_or_else(|| wasm("esox_plugin_aws.wasm"))
}

/// A unique name per test run, so reruns against the same LocalStack do not collide.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}-{nanos}")
}

/// One AWS JSON 1.1 call to LocalStack over plain HTTP/1.1. Returns the status and body.
async fn aws_call(service: &str, target: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let url = endpoint();
    let authority = url.trim_start_matches("http://");
    let body = body.to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: {target}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let payload = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // One chunk is all LocalStack sends for these small answers.
        rest.split_once("\r\n").map(|(_, r)| r.rsplit_once("\r\n0\r\n").map_or(r, |(b, _)| b)).unwrap_or(rest).to_string()
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(payload.trim()).unwrap_or(serde_json::Value::Null))
}

async fn create_secret(name: &str, value: &str, tags: &[(&str, &str)]) {
    let tags: Vec<_> = tags.iter().map(|(k, v)| serde_json::json!({"Key": k, "Value": v})).collect();
    let (status, body) =
        aws_call("secretsmanager", "secretsmanager.CreateSecret", serde_json::json!({"Name": name, "SecretString": value, "Tags": tags})).await;
    assert_eq!(status, 200, "CreateSecret {name}: {body}");
}

async fn put_secret_value(name: &str, value: &str) {
    let (status, body) =
        aws_call("secretsmanager", "secretsmanager.PutSecretValue", serde_json::json!({"SecretId": name, "SecretString": value})).await;
    assert_eq!(status, 200, "PutSecretValue {name}: {body}");
}

async fn put_parameter(name: &str, value: &str, kind: &str) {
    let (status, body) = aws_call(
        "ssm",
        "AmazonSSM.PutParameter",
        serde_json::json!({"Name": name, "Value": value, "Type": kind, "Overwrite": true}),
    )
    .await;
    assert_eq!(status, 200, "PutParameter {name}: {body}");
}

async fn aws_host() -> (PluginHost, tempfile::TempDir) {
    // The SDK's first call signs and parses more than the fixtures do: looser limits than
    // `test_limits`, still far below the defaults.
    let limits = Limits {
        memory_bytes: 128 << 20,
        cpu_time: std::time::Duration::from_secs(5),
        call_timeout: std::time::Duration::from_secs(30),
        ..test_limits()
    };
    let (host, cache) = host_with(limits).await;
    let path = plugin_wasm();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read the aws plugin at {}: {e}", path.display()));
    host.load(PluginOrigin::File(path), &bytes).await.unwrap();
    (host, cache)
}

/// A store with secretRef auth (LocalStack's test/test keys, read through the host's local
/// auth broker) and the endpoint given as the operator's `endpoint` setting.
fn aws_store(host: &PluginHost, dir: &tempfile::TempDir, service: &str, extra: serde_json::Value, allow_endpoint: bool) -> StoreClient {
    let secrets = dir.path().join("secrets.yaml");
    std::fs::write(&secrets, "secrets:\n  aws-creds:\n    access-key-id: test\n    secret-access-key: test\n").unwrap();
    let mut config = serde_json::json!({
        "service": service,
        "region": "us-east-1",
        "auth": {"secretRef": {
            "accessKeyIDSecretRef": {"name": "aws-creds", "key": "access-key-id"},
            "secretAccessKeySecretRef": {"name": "aws-creds", "key": "secret-access-key"}
        }}
    });
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            config[k] = v;
        }
    }
    let mut egress = EgressPolicy::deny_all();
    if allow_endpoint {
        egress.allow_origin_of(&endpoint()).unwrap();
    }
    host.open_store(StoreSpec {
        identity: "SecretStore/test/aws".into(),
        plugin: "aws".into(),
        config,
        settings: vec![("endpoint".into(), endpoint())],
        egress,
        services: Arc::new(LocalServices::from_file(&secrets).unwrap()),
    })
    .unwrap()
}

fn r(key: &str, property: Option<&str>, version: Option<&str>) -> RemoteRef {
    RemoteRef { key: key.into(), property: property.map(Into::into), version: version.map(Into::into), ..Default::default() }
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn secrets_manager_values_and_properties_are_read_with_secret_ref_auth() {
    let name = unique("db/creds");
    create_secret(&name, r#"{"username":"app","password":"s3cr3t","a.b":"dotted","tls":{"ca":"x"}}"#, &[]).await;
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "SecretsManager", serde_json::json!({}), true);
    assert_eq!(s.validate().await.unwrap(), Validation::Ready);
    assert_eq!(
        s.get_secret(&r(&name, None, None)).await.unwrap(),
        br#"{"username":"app","password":"s3cr3t","a.b":"dotted","tls":{"ca":"x"}}"#
    );
    assert_eq!(s.get_secret(&r(&name, Some("password"), None)).await.unwrap(), b"s3cr3t");
    assert_eq!(s.get_secret(&r(&name, Some("a.b"), None)).await.unwrap(), b"dotted");
    assert_eq!(s.get_secret(&r(&name, Some("tls.ca"), None)).await.unwrap(), b"x");
    assert_eq!(s.get_secret(&r(&name, Some("tls"), None)).await.unwrap(), br#"{"ca":"x"}"#);
    assert_eq!(
        s.get_secret(&r(&name, Some("missing"), None)).await,
        Err(ProviderError::Internal(format!("key missing does not exist in secret {name}")))
    );
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn versions_read_awscurrent_by_default_and_awsprevious_by_stage() {
    let name = unique("rotated");
    create_secret(&name, "v1", &[]).await;
    put_secret_value(&name, "v2").await;
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "SecretsManager", serde_json::json!({}), true);
    assert_eq!(s.get_secret(&r(&name, None, None)).await.unwrap(), b"v2");
    assert_eq!(s.get_secret(&r(&name, None, Some("AWSCURRENT"))).await.unwrap(), b"v2");
    assert_eq!(s.get_secret(&r(&name, None, Some("AWSPREVIOUS"))).await.unwrap(), b"v1");
    assert_eq!(s.get_secret(&r(&name, None, Some("uuid/00000000-0000-0000-0000-00000000dead"))).await, Err(ProviderError::NotFound));
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn a_missing_secret_is_not_found() {
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "SecretsManager", serde_json::json!({}), true);
    assert_eq!(s.get_secret(&r(&unique("does/not/exist"), None, None)).await, Err(ProviderError::NotFound));
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn get_secret_map_unquotes_strings_and_keeps_other_json() {
    let name = unique("map");
    create_secret(&name, r#"{"user":"app","port":5432,"tls":{"on":true}}"#, &[]).await;
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "SecretsManager", serde_json::json!({}), true);
    let map = s.get_secret_map(&r(&name, None, None)).await.unwrap();
    assert_eq!(map.get("user").map(Vec::as_slice), Some(&b"app"[..]));
    assert_eq!(map.get("port").map(Vec::as_slice), Some(&b"5432"[..]));
    assert_eq!(map.get("tls").map(Vec::as_slice), Some(&br#"{"on":true}"#[..]));
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn a_batch_answers_every_reference_in_order_with_prefix_applied() {
    let base = unique("batch");
    create_secret(&format!("{base}/a"), r#"{"k":"A"}"#, &[]).await;
    create_secret(&format!("{base}/b"), "B", &[]).await;
    put_secret_value(&format!("{base}/b"), "B2").await;
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "SecretsManager", serde_json::json!({"prefix": format!("{base}/")}), true);
    let answers = s
        .get_secrets(&[r("a", Some("k"), None), r("b", None, None), r("missing", None, None), r("b", None, Some("AWSPREVIOUS")), r("a", None, None)])
        .await;
    assert_eq!(answers[0], Ok(b"A".to_vec()));
    assert_eq!(answers[1], Ok(b"B2".to_vec()));
    assert_eq!(answers[2], Err(ProviderError::NotFound));
    assert_eq!(answers[3], Ok(b"B".to_vec()));
    assert_eq!(answers[4], Ok(br#"{"k":"A"}"#.to_vec()));
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn metadata_policy_fetch_returns_the_tags() {
    let name = unique("tagged");
    create_secret(&name, "v", &[("team", "payments"), ("env", "prod")]).await;
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "SecretsManager", serde_json::json!({}), true);
    let tags = RemoteRef { metadata_policy: MetadataPolicy::Fetch, ..r(&name, None, None) };
    let json: serde_json::Value = serde_json::from_slice(&s.get_secret(&tags).await.unwrap()).unwrap();
    assert_eq!(json, serde_json::json!({"team": "payments", "env": "prod"}));
    let team = RemoteRef { property: Some("team".into()), ..tags };
    assert_eq!(s.get_secret(&team).await.unwrap(), b"payments");
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn find_by_name_regexp_by_tags_and_by_path() {
    let base = unique("find");
    create_secret(&format!("{base}/one"), "1", &[("group", &base)]).await;
    create_secret(&format!("{base}/two"), "2", &[("group", &base)]).await;
    create_secret(&format!("{base}-other"), "3", &[]).await;
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "SecretsManager", serde_json::json!({}), true);

    let by_name = s.get_all_secrets(&FindQuery { name_regexp: Some(format!("^{base}/")), ..Default::default() }).await.unwrap();
    assert_eq!(by_name.keys().cloned().collect::<Vec<_>>(), [format!("{base}/one"), format!("{base}/two")]);
    assert_eq!(by_name[&format!("{base}/one")], b"1");

    let by_tags = s
        .get_all_secrets(&FindQuery { tags: [("group".to_string(), base.clone())].into_iter().collect(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(by_tags.len(), 2, "{:?}", by_tags.keys().collect::<Vec<_>>());

    let by_path = s.get_all_secrets(&FindQuery { path: Some(base.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(by_path.len(), 3, "{:?}", by_path.keys().collect::<Vec<_>>());
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn parameter_store_reads_decrypted_values_versions_and_paths() {
    let base = format!("/{}", unique("app"));
    put_parameter(&format!("{base}/db/password"), "p1", "SecureString").await;
    put_parameter(&format!("{base}/db/password"), "p2", "SecureString").await;
    put_parameter(&format!("{base}/db/user"), r#"{"name":"app"}"#, "String").await;
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "ParameterStore", serde_json::json!({}), true);
    assert_eq!(s.get_secret(&r(&format!("{base}/db/password"), None, None)).await.unwrap(), b"p2");
    assert_eq!(s.get_secret(&r(&format!("{base}/db/password"), None, Some("1"))).await.unwrap(), b"p1");
    assert_eq!(s.get_secret(&r(&format!("{base}/db/user"), Some("name"), None)).await.unwrap(), b"app");
    assert_eq!(s.get_secret(&r(&format!("{base}/nope"), None, None)).await, Err(ProviderError::NotFound));
    let found = s.get_all_secrets(&FindQuery { path: Some(base.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(found.keys().cloned().collect::<Vec<_>>(), [format!("{base}/db/password"), format!("{base}/db/user")]);
    assert_eq!(found[&format!("{base}/db/password")], b"p2");
    let batch = s.get_secrets(&[r(&format!("{base}/db/user"), None, None), r(&format!("{base}/db/password"), None, None), r(&format!("{base}/nope"), None, None)]).await;
    assert_eq!(batch[0], Ok(br#"{"name":"app"}"#.to_vec()));
    assert_eq!(batch[1], Ok(b"p2".to_vec()));
    assert_eq!(batch[2], Err(ProviderError::NotFound));
}

#[tokio::test]
#[ignore = "needs ESOX_TEST_LOCALSTACK_ENDPOINT and the aws plugin component"]
async fn without_an_egress_grant_for_the_endpoint_the_read_is_refused_not_retried() {
    let (host, dir) = aws_host().await;
    let s = aws_store(&host, &dir, "SecretsManager", serde_json::json!({}), false);
    let err = s.get_secret(&r("anything", None, None)).await.unwrap_err();
    assert!(matches!(&err, ProviderError::PermissionDenied(m) if m.contains("egress")), "{err:?}");
}
