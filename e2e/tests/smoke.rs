//! Smoke tests proving the harness's stack is real: a real API server stores Secrets, a real
//! garbage collector removes owned objects, real TokenRequest tokens carry the harness's issuer,
//! real LocalStack keeps Secrets Manager versions, RBAC really refuses the controller what
//! deploy/rbac.yaml does not grant, and certificates from the real CertificateSigningRequest API
//! authenticate as the user they name.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use esox_e2e::Stack;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{
    SelfSubjectReview, TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};

/// Polls `check` every 200 ms for up to `timeout`.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn secret_written_by_admin_reads_back_with_the_same_bytes() {
    let stack = Stack::shared().await.unwrap();
    let ns = stack.new_namespace("secret-round-trip").await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(stack.admin_client(), ns.name());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("db".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "password".to_owned(),
            ByteString(b"s3cr\x00t".to_vec()),
        )])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let read = secrets.get("db").await.unwrap();
    assert_eq!(
        read.data.unwrap()["password"],
        ByteString(b"s3cr\x00t".to_vec())
    );
    assert_eq!(read.type_.as_deref(), Some("Opaque"));
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn secret_owned_by_a_configmap_is_garbage_collected_after_the_configmap_is_deleted() {
    let stack = Stack::shared().await.unwrap();
    let ns = stack.new_namespace("gc").await.unwrap();
    let client = stack.admin_client();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let secrets: Api<Secret> = Api::namespaced(client, ns.name());
    let owner = configmaps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("owner".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let owned = Secret {
        metadata: ObjectMeta {
            name: Some("owned".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: owner.metadata.uid.clone().unwrap(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &owned)
        .await
        .unwrap();
    assert!(secrets.get_opt("owned").await.unwrap().is_some());

    configmaps
        .delete("owner", &DeleteParams::background())
        .await
        .unwrap();

    let collected = eventually(Duration::from_secs(60), || async {
        matches!(secrets.get_opt("owned").await, Ok(None))
    })
    .await;
    assert!(
        collected,
        "the garbage collector did not delete Secret owned within 60s"
    );
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn token_request_returns_a_jwt_from_the_harness_issuer_that_the_api_server_accepts() {
    let stack = Stack::shared().await.unwrap();
    let ns = stack.new_namespace("token").await.unwrap();
    let client = stack.admin_client();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns.name());
    // The serviceaccount controller (kube-controller-manager) creates "default" in new namespaces.
    let created = eventually(Duration::from_secs(30), || async {
        matches!(accounts.get_opt("default").await, Ok(Some(_)))
    })
    .await;
    assert!(created, "ServiceAccount default was not created within 30s");

    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["sts.amazonaws.com".into()]),
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = accounts
        .create_token_request("default", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap();

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three dot-separated parts");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], stack.service_account_issuer());
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{}:default", ns.name())
    );
    assert_eq!(claims["aud"], serde_json::json!(["sts.amazonaws.com"]));
    if stack.backend() == "local" {
        assert!(
            stack
                .service_account_issuer()
                .starts_with("https://127.0.0.1:"),
            "the local backend's issuer is its API server URL, got {}",
            stack.service_account_issuer()
        );
    }

    // The API server verifies the signature with the key the harness generated.
    let reviews: Api<TokenReview> = Api::all(client);
    let review = reviews
        .create(
            &PostParams::default(),
            &TokenReview {
                spec: TokenReviewSpec {
                    token,
                    audiences: Some(vec!["sts.amazonaws.com".into()]),
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let status = review.status.unwrap();
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    assert_eq!(
        status.user.unwrap().username.unwrap(),
        format!("system:serviceaccount:{}:default", ns.name())
    );
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn localstack_secrets_manager_keeps_the_previous_value_after_a_rotation() {
    let stack = Stack::shared().await.unwrap();
    let sm = stack.secretsmanager_client();
    let name = esox_e2e::namespace::unique_name("smoke/db");

    sm.create_secret()
        .name(&name)
        .secret_string(r#"{"password":"v1"}"#)
        .send()
        .await
        .unwrap();
    let current = sm.get_secret_value().secret_id(&name).send().await.unwrap();
    assert_eq!(current.secret_string(), Some(r#"{"password":"v1"}"#));

    sm.put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"password":"v2"}"#)
        .send()
        .await
        .unwrap();
    let current = sm.get_secret_value().secret_id(&name).send().await.unwrap();
    assert_eq!(current.secret_string(), Some(r#"{"password":"v2"}"#));
    let previous = sm
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(previous.secret_string(), Some(r#"{"password":"v1"}"#));
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn localstack_ssm_returns_a_secure_string_decrypted() {
    let stack = Stack::shared().await.unwrap();
    let ssm = stack.ssm_client();
    let name = format!("/{}/api-key", esox_e2e::namespace::unique_name("smoke"));
    ssm.put_parameter()
        .name(&name)
        .value("k-123")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let read = ssm
        .get_parameter()
        .name(&name)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(read.parameter().and_then(|p| p.value()), Some("k-123"));
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn controller_identity_is_the_esox_service_account_and_gets_only_what_rbac_grants() {
    let stack = Stack::shared().await.unwrap();
    let ns = stack.new_namespace("rbac").await.unwrap();
    let controller = stack.controller_client();

    let reviews: Api<SelfSubjectReview> = Api::all(controller.clone());
    let me = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    assert_eq!(
        me.status.unwrap().user_info.unwrap().username.as_deref(),
        Some("system:serviceaccount:esox-system:esox")
    );

    // Granted by deploy/rbac.yaml: Secrets read and write.
    let secrets: Api<Secret> = Api::namespaced(controller.clone(), ns.name());
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("target".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        secrets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Not granted: writing ConfigMaps, reading Pods, deleting its namespace.
    let configmaps: Api<ConfigMap> = Api::namespaced(controller.clone(), ns.name());
    let error = configmaps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("nope".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&error), Some(403), "{error}");
    let pods: Api<Pod> = Api::namespaced(controller.clone(), ns.name());
    let error = pods.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(status_code(&error), Some(403), "{error}");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(controller);
    let error = namespaces
        .delete(ns.name(), &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(status_code(&error), Some(403), "{error}");
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn a_certificate_from_the_csr_api_authenticates_as_its_user_and_groups() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    let stack = Stack::shared().await.unwrap();
    let ns = stack.new_namespace("client-cert").await.unwrap();
    let user = "esox-e2e-cert-user";
    let cert = stack
        .issue_client_certificate(user, &["esox-e2e-cert-group-a", "esox-e2e-cert-group-b"])
        .await
        .unwrap();
    assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    // The API server identifies the certificate's holder as the user and groups it names.
    let client = stack.client_with_certificate(&cert).await.unwrap();
    let me = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("a SelfSubjectReview with the CSR-issued certificate");
    let info = me.status.unwrap().user_info.unwrap();
    assert_eq!(info.username.as_deref(), Some(user));
    let groups = info.groups.unwrap_or_default();
    for group in [
        "esox-e2e-cert-group-a",
        "esox-e2e-cert-group-b",
        "system:authenticated",
    ] {
        assert!(
            groups.iter().any(|g| g == group),
            "{group} not in {groups:?}"
        );
    }
    // Authenticated but granted nothing: 403 naming the user, not 401.
    let secrets: Api<Secret> = Api::namespaced(client, ns.name());
    let error = secrets.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(status_code(&error), Some(403), "{error}");
    assert!(error.to_string().contains(user), "{error}");

    // A certificate for the same user from a CA the API server does not trust: 401.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, user);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let forged = esox_e2e::pki::ClientCert {
        cert_pem: params.self_signed(&key).unwrap().pem(),
        key_pem: key.serialize_pem(),
    };
    let forged = stack.client_with_certificate(&forged).await.unwrap();
    let error = Api::<SelfSubjectReview>::all(forged)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap_err();
    assert_eq!(status_code(&error), Some(401), "{error}");

    // The harness cleaned up after itself: no CertificateSigningRequest of its own is left.
    let left: Vec<String> = Api::<CertificateSigningRequest>::all(stack.admin_client())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|csr| csr.metadata.name)
        .filter(|name| name.starts_with("esox-e2e-client-"))
        .collect();
    assert!(left.is_empty(), "CertificateSigningRequests left: {left:?}");
}
