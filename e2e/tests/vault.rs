//! The harness's Vault for client-certificate tests: certificates from
//! [`VaultServer::client_certificate`] log in through Vault's real cert auth method on the TLS
//! listener, and pass the mutual-TLS listener's handshake, which refuses clients without one.

use esox_e2e::pki::ClientCert;
use esox_e2e::vault::VaultServer;
use serde_json::{Value, json};

/// An HTTPS client trusting only `ca_pem`, presenting `identity` when given.
fn https_client(ca_pem: &str, identity: Option<&ClientCert>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy();
    if let Some(cert) = identity {
        let pem = format!("{}{}", cert.cert_pem, cert.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A client certificate for `common_name` from a self-signed CA Vault does not know.
fn foreign_certificate(common_name: &str) -> ClientCert {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "esox-e2e-vault-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    ClientCert {
        cert_pem: params.signed_by(&key, &ca).unwrap().pem(),
        key_pem: key.serialize_pem(),
    }
}

async fn cert_login(client: &reqwest::Client, vault: &VaultServer, role: &str) -> (u16, Value) {
    let response = client
        .post(format!("{}/v1/auth/cert/login", vault.tls_addr()))
        .json(&json!({"name": role}))
        .send()
        .await
        .expect("the TLS listener answers with or without a client certificate");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
#[ignore = "needs a Vault built from its Go module: runs in `cargo xtask test` (e2e phase)"]
async fn client_certificates_log_in_with_cert_auth_and_pass_the_mtls_listener() {
    let logs = std::env::temp_dir().join(format!("esox-e2e-vault-tls-{}", std::process::id()));
    let vault = VaultServer::start(&logs).await.unwrap();
    let value = format!("cert-auth-{}", std::process::id());
    vault
        .write("secret/data/cert/db", &json!({"data": {"password": value}}))
        .await
        .unwrap();
    vault
        .write(
            "sys/policies/acl/cert-reader",
            &json!({"policy": "path \"secret/data/cert/*\" { capabilities = [\"read\"] }"}),
        )
        .await
        .unwrap();
    vault
        .write("sys/auth/cert", &json!({"type": "cert"}))
        .await
        .unwrap();
    vault
        .write(
            "auth/cert/certs/esox-e2e",
            &json!({"certificate": vault.ca_pem(), "token_policies": ["cert-reader"], "token_ttl": "10m"}),
        )
        .await
        .unwrap();
    let cert = vault.client_certificate("esox-e2e-client").unwrap();
    let with_cert = https_client(vault.ca_pem(), Some(&cert));
    let without_cert = https_client(vault.ca_pem(), None);
    let foreign = https_client(
        vault.ca_pem(),
        Some(&foreign_certificate("esox-e2e-client")),
    );

    // 1. Cert auth over the TLS listener: the certificate is the credential.
    let (status, body) = cert_login(&with_cert, &vault, "esox-e2e").await;
    assert_eq!(status, 200, "cert login failed: {}", body["errors"]);
    let auth = &body["auth"];
    assert_eq!(auth["metadata"]["common_name"], "esox-e2e-client");
    assert!(
        auth["policies"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "cert-reader")),
        "policies: {}",
        auth["policies"]
    );
    let token = auth["client_token"].as_str().expect("a client token");
    let read = with_cert
        .get(format!("{}/v1/secret/data/cert/db", vault.tls_addr()))
        .header("X-Vault-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status().as_u16(), 200);
    let read: Value = read.json().await.unwrap();
    assert!(read["data"]["data"]["password"] == value.as_str());
    // No certificate, or one from another CA with the same name: no token.
    for (what, client) in [
        ("no certificate", &without_cert),
        ("a foreign CA", &foreign),
    ] {
        let (status, body) = cert_login(client, &vault, "esox-e2e").await;
        assert!(
            (400..500).contains(&status) && body["auth"].is_null(),
            "cert login with {what}: HTTP {status}"
        );
    }

    // 2. The mTLS listener: the handshake needs a certificate from the harness CA.
    let health = format!("{}/v1/sys/health", vault.mtls_addr());
    let response = with_cert
        .get(&health)
        .send()
        .await
        .expect("the mTLS listener accepts the harness CA's client certificate");
    assert_eq!(response.status().as_u16(), 200);
    for (what, client) in [
        ("no certificate", &without_cert),
        ("a foreign CA", &foreign),
    ] {
        let refused = client.get(&health).send().await;
        assert!(
            refused.is_err(),
            "the mTLS listener answered a client with {what}: {:?}",
            refused.map(|r| r.status())
        );
    }
    // The plain TLS listener still serves clients without a certificate.
    let response = without_cert
        .get(format!("{}/v1/sys/health", vault.tls_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
