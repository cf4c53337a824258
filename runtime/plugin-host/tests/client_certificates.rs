//! Client certificates (contract 0.3): the host reads the pair a store's config names,
//! presents it in TLS to the store's origins, picks up a renewed one, refuses bad pairs naming
//! the fields, and never lets the plugin read the private key.
//!
//! Behind it: a real TLS server (rustls) on loopback that requires a client certificate from a
//! CA made here, and answers with a status telling which certificate it saw.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use common::*;
use esox_plugin_host::{
    HostServices, Limits, PluginHost, ServiceAccountToken, StoreClient, StoreContext, StoreSpec,
    TokenRequest,
};
use esox_provider::{ProviderError, RemoteRef};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::{Value, json};

/// Secret keys by (name, key), and what was read.
#[derive(Default)]
struct Secrets {
    values: Mutex<HashMap<(String, String), Vec<u8>>>,
    asked: Mutex<Vec<String>>,
}

impl Secrets {
    fn put(&self, name: &str, key: &str, value: &str) {
        self.values
            .lock()
            .unwrap()
            .insert((name.into(), key.into()), value.as_bytes().to_vec());
    }
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl HostServices for Secrets {
    async fn secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("secret {namespace:?} {name} {key}"));
        self.values
            .lock()
            .unwrap()
            .get(&(name.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| {
                ProviderError::InvalidConfig(format!("Secret {name} has no key {key:?}").into())
            })
    }
    async fn config_map_key(
        &self,
        name: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::InvalidConfig(
            format!("no ConfigMap {name}").into(),
        ))
    }
    async fn service_account_token(
        &self,
        r: TokenRequest,
    ) -> Result<ServiceAccountToken, ProviderError> {
        Err(ProviderError::InvalidConfig(
            format!("no ServiceAccount {}", r.name).into(),
        ))
    }
}

/// A CA, a serving certificate for `localhost`, and two client certificates it signed plus one
/// from a stranger CA.
struct Pki {
    ca_pem: String,
    server: (String, String),
    alice: (String, String),
    bob: (String, String),
    stranger: (String, String),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let ca_ = ca("esox-test-ca");
    let other = ca("stranger-ca");
    Pki {
        ca_pem: ca_.pem(),
        server: leaf(&ca_, "localhost", ExtendedKeyUsagePurpose::ServerAuth),
        alice: leaf(&ca_, "alice", ExtendedKeyUsagePurpose::ClientAuth),
        bob: leaf(&ca_, "bob", ExtendedKeyUsagePurpose::ClientAuth),
        stranger: leaf(&other, "stranger", ExtendedKeyUsagePurpose::ClientAuth),
    }
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A TLS server on loopback that requires a client certificate from `pki`'s CA and answers
/// 200 for alice's, 201 for bob's (any other is refused in the handshake). Returns its port.
async fn mtls_server(pki: &Pki) -> u16 {
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(&pki.ca_pem).into()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![der(&pki.server.0).into()],
            rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let known = [(der(&pki.alice.0), 200u16), (der(&pki.bob.0), 201)];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let known = known.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let seen = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                let status = known
                    .iter()
                    .find(|(d, _)| Some(d) == seen.as_ref())
                    .map_or(500, |(_, s)| *s);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        format!("HTTP/1.1 {status} Seen\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn selector(name: &str, key: Option<&str>) -> Value {
    match key {
        Some(k) => json!({"name": name, "key": k}),
        None => json!({"name": name}),
    }
}

/// A hostile-plugin SecretStore trusting the test CA and reaching `https://localhost:<port>`.
fn open(
    host: &PluginHost,
    port: u16,
    pki: &Pki,
    extra: Value,
    secrets: Arc<Secrets>,
) -> StoreClient {
    let mut config = json!({
        "auth": {"caBundle": base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem)},
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut config, extra) {
        for (k, v) in e {
            if k == "auth" {
                c["auth"]
                    .as_object_mut()
                    .unwrap()
                    .extend(v.as_object().unwrap().clone());
            } else {
                c.insert(k, v);
            }
        }
    }
    let origin = format!("https://localhost:{port}");
    host.open_store(StoreSpec {
        context: StoreContext::secret_store("ns", "mtls"),
        plugin: "hostile".into(),
        config,
        settings: vec![],
        egress: egress(&[origin.as_str()]),
        services: secrets,
        ambient: None,
        api_audience_tokens: false,
    })
    .unwrap()
}

async fn get(store: &StoreClient, key: &str) -> String {
    match store.get_secret(&RemoteRef::key(key)).await {
        Ok(v) => String::from_utf8_lossy(&v).into_owned(),
        Err(e) => format!("host-error:{e}"),
    }
}

fn secrets_with(pki: &Pki) -> Arc<Secrets> {
    let secrets = Arc::new(Secrets::default());
    secrets.put("client", "tls.crt", &pki.alice.0);
    secrets.put("client", "tls.key", &pki.alice.1);
    secrets.put("bob", "cert.pem", &pki.bob.0);
    secrets.put("bob", "key.pem", &pki.bob.1);
    secrets.put("stranger", "tls.crt", &pki.stranger.0);
    secrets.put("stranger", "tls.key", &pki.stranger.1);
    secrets.put("mixed", "tls.crt", &pki.alice.0);
    secrets.put("mixed", "tls.key", &pki.bob.1);
    secrets.put("junk", "tls.crt", "not a certificate");
    secrets.put("junk", "tls.key", &pki.alice.1);
    secrets
}

#[tokio::test]
async fn the_host_presents_the_stores_client_certificate_and_the_plugin_never_reads_its_key() {
    let (host, _) = host_with(test_limits()).await;
    let pki = pki();
    let port = mtls_server(&pki).await;
    let url = format!("get:https://localhost:{port}/");

    // Without a client certificate the server refuses the handshake: the negative control.
    let bare = open(&host, port, &pki, json!({}), secrets_with(&pki));
    let answer = get(&bare, &url).await;
    assert!(answer.starts_with("error:"), "{answer}");

    // `tls` names alice's pair (the private key by its default key, tls.key).
    let secrets = secrets_with(&pki);
    let store = open(
        &host,
        port,
        &pki,
        json!({"tls": {"certSecretRef": selector("client", Some("tls.crt")), "keySecretRef": selector("client", None)}}),
        secrets.clone(),
    );
    assert_eq!(get(&store, &url).await, "status:200");
    assert_eq!(
        secrets.asked(),
        vec![
            "secret None client tls.crt".to_string(),
            "secret None client tls.key".to_string()
        ],
        "the host read the pair itself, once"
    );

    // The plugin cannot read either half through the broker: not in its grant.
    for key in ["tls.key", "tls.crt"] {
        let answer = get(&store, &format!("secret:client:{key}")).await;
        assert!(
            answer.starts_with("error:") && answer.contains("PermissionDenied"),
            "{answer}"
        );
    }
    assert_eq!(
        secrets.asked().len(),
        2,
        "refused reads never reach the API"
    );

    // A certificate from another CA is named and presented, and the server refuses it.
    let stranger = open(
        &host,
        port,
        &pki,
        json!({"tls": {"certSecretRef": selector("stranger", None), "keySecretRef": selector("stranger", None)}}),
        secrets_with(&pki),
    );
    let answer = get(&stranger, &url).await;
    assert!(answer.starts_with("error:"), "{answer}");
}

#[tokio::test]
async fn the_first_declared_pair_wins_as_auth_cert_does_over_tls_in_eso() {
    let (host, _) = host_with(test_limits()).await;
    let pki = pki();
    let port = mtls_server(&pki).await;
    let store = open(
        &host,
        port,
        &pki,
        json!({
            "auth": {"cert": {"clientCert": selector("bob", Some("cert.pem")), "clientKey": selector("bob", Some("key.pem"))}},
            "tls": {"certSecretRef": selector("client", None), "keySecretRef": selector("client", None)},
        }),
        secrets_with(&pki),
    );
    assert_eq!(
        get(&store, &format!("get:https://localhost:{port}/")).await,
        "status:201"
    );
}

#[tokio::test]
async fn a_certificate_renewed_in_its_secret_reaches_new_connections() {
    let limits = Limits {
        tls_refresh_interval: Duration::ZERO,
        ..test_limits()
    };
    let (host, _) = host_with(limits).await;
    let pki = pki();
    let port = mtls_server(&pki).await;
    let secrets = secrets_with(&pki);
    let store = open(
        &host,
        port,
        &pki,
        json!({"tls": {"certSecretRef": selector("client", None), "keySecretRef": selector("client", None)}}),
        secrets.clone(),
    );
    let url = format!("get:https://localhost:{port}/");
    assert_eq!(get(&store, &url).await, "status:200");
    // cert-manager renews: same Secret, a new pair.
    secrets.put("client", "tls.crt", &pki.bob.0);
    secrets.put("client", "tls.key", &pki.bob.1);
    assert_eq!(get(&store, &url).await, "status:201");

    // A renewal that breaks the pair fails the call with the reason and keeps nothing broken.
    secrets.put("client", "tls.key", &pki.alice.1);
    let answer = get(&store, &url).await;
    assert!(
        answer.contains("does not belong to the certificate"),
        "{answer}"
    );
    secrets.put("client", "tls.key", &pki.bob.1);
    assert_eq!(get(&store, &url).await, "status:201");
}

#[tokio::test]
async fn bad_pairs_are_refused_naming_the_fields_and_never_quoting_the_key() {
    let (host, _) = host_with(test_limits()).await;
    let pki = pki();
    let port = mtls_server(&pki).await;
    let cases = [
        (
            json!({"tls": {"certSecretRef": selector("client", None)}}),
            "tls.certSecretRef is set but tls.keySecretRef is not",
        ),
        (
            json!({"auth": {"cert": {"clientKey": selector("client", None)}}}),
            "auth.cert.clientKey is set but auth.cert.clientCert is not",
        ),
        (
            json!({"tls": {"certSecretRef": selector("mixed", None), "keySecretRef": selector("mixed", None)}}),
            "tls.certSecretRef and tls.keySecretRef: the private key does not belong to the certificate",
        ),
        (
            json!({"tls": {"certSecretRef": selector("junk", None), "keySecretRef": selector("junk", None)}}),
            "tls.certSecretRef and tls.keySecretRef: the certificate holds no PEM certificate",
        ),
        (
            json!({"tls": {"certSecretRef": selector("client", Some("missing")), "keySecretRef": selector("client", None)}}),
            "tls.certSecretRef: Secret client has no key \"missing\"",
        ),
        (
            json!({"tls": {"certSecretRef": {"key": "tls.crt"}, "keySecretRef": selector("client", None)}}),
            "tls.certSecretRef.name: the Secret's name is required",
        ),
    ];
    let key_body = pki.alice.1.lines().nth(1).unwrap().to_string();
    for (extra, expected) in cases {
        let store = open(&host, port, &pki, extra.clone(), secrets_with(&pki));
        let err = store
            .get_secret(&RemoteRef::key("ok"))
            .await
            .expect_err(&format!("{extra}"));
        let message = err.to_string();
        assert!(
            matches!(err, ProviderError::InvalidConfig(_)),
            "{extra}: {err:?}"
        );
        assert!(message.contains(expected), "{extra}: {message}");
        assert!(!message.contains(&key_body), "a key leaked into {message}");
    }
}

#[tokio::test]
async fn a_ca_rotated_in_its_secret_is_trusted_without_a_restart() {
    let limits = Limits {
        tls_refresh_interval: Duration::ZERO,
        ..test_limits()
    };
    let (host, _) = host_with(limits).await;
    let pki = pki();
    let port = mtls_server(&pki).await;
    let secrets = secrets_with(&pki);
    // The CA Secret holds another CA first: the server's certificate is not trusted.
    secrets.put("ca", "ca.crt", &ca("some-other-ca").pem());
    let origin = format!("https://localhost:{port}");
    let store = host
        .open_store(StoreSpec {
            context: StoreContext::secret_store("ns", "rotating-ca"),
            plugin: "hostile".into(),
            config: json!({
                "auth": {"caProvider": {"type": "Secret", "name": "ca", "key": "ca.crt"}},
                "tls": {"certSecretRef": selector("client", None), "keySecretRef": selector("client", None)},
            }),
            settings: vec![],
            egress: egress(&[origin.as_str()]),
            services: secrets.clone(),
            ambient: None,
            api_audience_tokens: false,
        })
        .unwrap();
    let url = format!("get:{origin}/");
    let answer = get(&store, &url).await;
    assert!(answer.starts_with("error:"), "{answer}");
    // The owner puts the right CA into the same Secret: the next connection trusts it.
    secrets.put("ca", "ca.crt", &pki.ca_pem);
    assert_eq!(get(&store, &url).await, "status:200");
}
