//! ESO's fake provider, run through the real host: values, versions, properties, maps, find,
//! not-found and validation behave as in ESO (docs/eso-compat.md).

mod common;

use common::*;
use esox_plugin_host::Validation;
use esox_provider::{FindQuery, ProviderError, PushRef, RemoteRef};

fn fake_store(
    host: &esox_plugin_host::PluginHost,
    validation_result: Option<i64>,
) -> esox_plugin_host::StoreClient {
    let mut config = serde_json::json!({
        "data": [
            {"key": "/db/credentials", "value": r#"{"username":"app","password":"s3cr3t","tls":{"ca":"x"}}"#},
            {"key": "/db/credentials", "value": r#"{"username":"app","password":"old"}"#, "version": "v1"},
            {"key": "/db/credentials", "value": r#"{"username":"app","password":"older"}"#, "version": "v0"},
            {"key": "/app/token", "value": "plain-token"},
            {"key": "/other/x", "value": "y"}
        ]
    });
    if let Some(v) = validation_result {
        config["validationResult"] = v.into();
    }
    store(host, "fake", config, egress(&[]))
}

fn r(key: &str, property: Option<&str>, version: Option<&str>) -> RemoteRef {
    RemoteRef {
        key: key.into(),
        property: property.map(Into::into),
        version: version.map(Into::into),
        ..Default::default()
    }
}

#[tokio::test]
async fn values_are_read_by_key_and_exact_version() {
    let (host, _c) = host_with(test_limits()).await;
    let s = fake_store(&host, None);
    assert_eq!(
        s.get_secret(&r("/app/token", None, None)).await.unwrap(),
        b"plain-token"
    );
    assert_eq!(
        s.get_secret(&r("/db/credentials", Some("password"), Some("v1")))
            .await
            .unwrap(),
        b"old"
    );
    assert_eq!(
        s.get_secret(&r("/db/credentials", Some("password"), None))
            .await
            .unwrap(),
        b"s3cr3t"
    );
    assert_eq!(
        s.get_secret(&r("/db/credentials", None, Some("v9"))).await,
        Err(ProviderError::NotFound)
    );
    assert_eq!(
        s.get_secret(&r("/app/token", None, Some("v1"))).await,
        Err(ProviderError::NotFound)
    );
}

#[tokio::test]
async fn properties_follow_eso_and_a_missing_one_is_not_found() {
    let (host, _c) = host_with(test_limits()).await;
    let s = fake_store(&host, None);
    assert_eq!(
        s.get_secret(&r("/db/credentials", Some("tls"), None))
            .await
            .unwrap(),
        br#"{"ca":"x"}"#
    );
    assert_eq!(
        s.get_secret(&r("/db/credentials", Some("tls.ca"), None))
            .await
            .unwrap(),
        b"x"
    );
    assert_eq!(
        s.get_secret(&r("/db/credentials", Some("nope"), None))
            .await,
        Err(ProviderError::NotFound)
    );
    assert_eq!(
        s.get_secret(&r("/missing", None, None)).await,
        Err(ProviderError::NotFound)
    );
}

#[tokio::test]
async fn a_batch_answers_each_request_in_order() {
    let (host, _c) = host_with(test_limits()).await;
    let s = fake_store(&host, None);
    let answers = s
        .get_secrets(&[
            r("/db/credentials", Some("username"), None),
            r("/db/credentials", Some("password"), None),
            r("/missing", None, None),
            r("/db/credentials", Some("password"), Some("v0")),
        ])
        .await;
    assert_eq!(answers[0].as_deref().unwrap(), b"app");
    assert_eq!(answers[1].as_deref().unwrap(), b"s3cr3t");
    assert_eq!(answers[2], Err(ProviderError::NotFound));
    assert_eq!(answers[3].as_deref().unwrap(), b"older");
}

#[tokio::test]
async fn a_json_value_reads_as_a_map() {
    let (host, _c) = host_with(test_limits()).await;
    let s = fake_store(&host, None);
    let map = s
        .get_secret_map(&r("/db/credentials", None, None))
        .await
        .unwrap();
    assert_eq!(map["username"], b"app");
    assert_eq!(map["tls"], br#"{"ca":"x"}"#);
    assert_eq!(map.len(), 3);
    let err = s
        .get_secret_map(&r("/app/token", None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Backend(m) if m.contains("not valid JSON") && m.contains("/app/token")),
        "{err:?}"
    );
}

#[tokio::test]
async fn find_by_name_returns_the_highest_version_of_each_match() {
    let (host, _c) = host_with(test_limits()).await;
    let s = fake_store(&host, None);
    let found = s
        .get_all_secrets(&FindQuery {
            name_regexp: Some("^/db/".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), vec!["/db/credentials"]);
    assert_eq!(
        found["/db/credentials"], br#"{"username":"app","password":"old"}"#,
        "v1 is the highest version"
    );
    let err = s
        .get_all_secrets(&FindQuery {
            path: Some("/db".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unsupported(_)), "{err:?}");
}

#[tokio::test]
async fn validation_result_drives_validate() {
    let (host, _c) = host_with(test_limits()).await;
    assert_eq!(
        fake_store(&host, None).validate().await,
        Ok(Validation::Ready)
    );
    assert_eq!(
        fake_store(&host, Some(1)).validate().await,
        Ok(Validation::Unknown)
    );
    assert!(fake_store(&host, Some(2)).validate().await.is_err());
}

#[tokio::test]
async fn writes_to_a_plugin_without_the_write_capability_are_refused_before_any_call() {
    let (host, _c) = host_with(test_limits()).await;
    let store = fake_store(&host, None);
    let remote = PushRef::key("/db/credentials");
    for result in [
        store.push_secret(&remote, b"v").await,
        store.delete_secret(&remote).await,
        store.secret_exists(&remote).await.map(|_| ()),
    ] {
        match result {
            Err(ProviderError::Unsupported(m)) => {
                assert!(m.contains("does not declare the write capability"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        store.egress_policy().is_none(),
        "refused before the first instance is made"
    );
}

#[tokio::test]
async fn bad_configs_are_refused_with_the_field_named() {
    let (host, _c) = host_with(test_limits()).await;
    let err = host
        .validate_config(
            "fake",
            &serde_json::json!({"data": [{"key": "", "value": "x"}]}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::InvalidConfig(m) if m.contains("data[0].key")),
        "{err:?}"
    );
    let err = host
        .validate_config("fake", &serde_json::json!({"data": "nope"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::InvalidConfig(m) if m.starts_with("data: ") && !m.contains("nope")),
        "the field is named and the value is not quoted: {err:?}"
    );
    assert_eq!(
        host.validate_config("fake", &serde_json::json!({"data": []}))
            .await,
        Ok(())
    );
    let err = host
        .validate_config("gcpsm", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::InvalidConfig(m) if m.contains("spec.provider.gcpsm") && m.contains("fake")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_plugin_describes_itself() {
    let (host, _c) = host_with(test_limits()).await;
    let fake = host.plugin("fake").unwrap();
    assert_eq!(fake.meta.contract.to_string(), "0.3.0");
    assert_eq!(fake.meta.capabilities, vec!["read", "find"]);
    assert_eq!(
        fake.meta.references,
        esox_plugin_host::References::Declared(vec![]),
        "the fake plugin reads nothing from the cluster"
    );
    assert_eq!(fake.meta.sha256.len(), 64);
    let schema: serde_json::Value = serde_json::from_str(&fake.meta.config_schema).unwrap();
    assert_eq!(schema["properties"]["data"]["type"], "array");
}

#[tokio::test]
async fn a_plugin_built_for_contract_0_1_loads_and_serves_unchanged() {
    let (host, _c) = host_with(test_limits()).await;
    let file = wasm("esox_fixture_fake_v0_1.wasm");
    let meta = host
        .load(
            esox_plugin_host::PluginOrigin::File(file.clone()),
            &std::fs::read(&file).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(meta.name, "fake-v01");
    assert_eq!(meta.contract.to_string(), "0.1.0");
    assert_eq!(
        meta.references,
        esox_plugin_host::References::InferredFromConfig
    );
    assert!(!meta.wants_ambient_identity);
    let s = store(
        &host,
        "fake-v01",
        serde_json::json!({"data": [
            {"key": "/db/credentials", "value": "{\"username\":\"app\",\"password\":\"s3cr3t\"}"},
            {"key": "/plain", "value": "not json"}
        ]}),
        egress(&[]),
    );
    assert_eq!(
        s.get_secret(&r("/db/credentials", Some("password"), None))
            .await
            .unwrap(),
        b"s3cr3t"
    );
    assert_eq!(
        s.get_secret_map(&r("/db/credentials", None, None))
            .await
            .unwrap()["username"],
        b"app"
    );
    // 0.1's untyped `internal` error arrives as a backend error; `not-found` stays typed.
    assert_eq!(
        s.get_secret(&r("/missing", None, None)).await,
        Err(ProviderError::NotFound)
    );
    assert!(matches!(
        s.get_secret_map(&r("/plain", None, None)).await,
        Err(ProviderError::Backend(_))
    ));
}

/// Answers one Secret key, `creds/token`.
struct OneSecret;

#[async_trait::async_trait]
impl esox_plugin_host::HostServices for OneSecret {
    async fn secret_key(
        &self,
        name: &str,
        key: &str,
        _: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        match (name, key) {
            ("creds", "token") => Ok(b"t0ken".to_vec()),
            _ => Err(ProviderError::InvalidConfig("no such Secret key".into())),
        }
    }
    async fn config_map_key(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::InvalidConfig("no ConfigMaps here".into()))
    }
    async fn service_account_token(
        &self,
        _: esox_plugin_host::TokenRequest,
    ) -> Result<esox_plugin_host::ServiceAccountToken, ProviderError> {
        Err(ProviderError::InvalidConfig(
            "no ServiceAccounts here".into(),
        ))
    }
}

#[tokio::test]
async fn a_plugin_built_for_contract_0_2_loads_and_serves_with_its_declared_grant() {
    let (host, _c) = host_with(test_limits()).await;
    let file = wasm("esox_fixture_fake_v0_2.wasm");
    let meta = host
        .load(
            esox_plugin_host::PluginOrigin::File(file.clone()),
            &std::fs::read(&file).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(meta.name, "fake-v02");
    assert_eq!(meta.contract.to_string(), "0.2.0");
    assert_eq!(
        meta.references,
        esox_plugin_host::References::Declared(vec![esox_plugin_host::ReferencePath {
            kind: esox_plugin_host::ReferenceKind::SecretKey,
            path: "secretRef".into(),
            audiences: vec![],
            required_labels: vec![],
        }])
    );
    assert!(
        meta.client_certificates.is_empty(),
        "0.2 cannot declare any"
    );
    let s = store_in(
        &host,
        esox_plugin_host::StoreContext::secret_store("ns", "v02"),
        "fake-v02",
        serde_json::json!({
            "data": [{"key": "plain", "value": "v"}],
            "secretRef": {"name": "creds", "key": "token"},
        }),
        egress(&[]),
        std::sync::Arc::new(OneSecret),
    );
    assert_eq!(s.get_secret(&r("plain", None, None)).await.unwrap(), b"v");
    assert_eq!(
        s.get_secret(&r("missing", None, None)).await,
        Err(ProviderError::NotFound)
    );
    // The declared reference is granted; anything else is refused before the services.
    assert_eq!(
        s.get_secret(&r("from-secret", None, None)).await.unwrap(),
        b"t0ken"
    );
    assert_eq!(
        s.get_secret(&r("secret:creds:token", None, None))
            .await
            .unwrap(),
        b"t0ken"
    );
    assert!(matches!(
        s.get_secret(&r("secret:other:token", None, None)).await,
        Err(ProviderError::PermissionDenied(_))
    ));
}
