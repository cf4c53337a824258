//! A real HashiCorp Vault for the vault provider's e2e suite: the pinned build
//! ([`crate::prereqs::ensure_vault`]) in dev mode (in-memory storage, unsealed, KV v2 at
//! `secret/`) on a free loopback port, with a root token the harness makes up. Tests configure
//! it through its HTTP API ([`VaultServer::write`], [`VaultServer::read`]): mounts, policies,
//! auth methods (AppRole, userpass, JWT, cert, Kubernetes pointed at the harness's API server).
//! It listens three times: plain HTTP ([`VaultServer::addr`]); TLS with a certificate from a CA
//! of the harness's own ([`VaultServer::tls_addr`], [`VaultServer::ca_pem`]), which asks for but
//! does not require a client certificate (what the cert auth method reads); and mutual TLS
//! ([`VaultServer::mtls_addr`]), which refuses the handshake without a client certificate from
//! that CA. [`VaultServer::client_certificate`] issues such certificates.
//! Stopped when dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use crate::ManagedProcess;
use crate::pki::ClientCert;

/// One running Vault dev server.
pub struct VaultServer {
    process: ManagedProcess,
    addr: String,
    tls_addr: String,
    mtls_addr: String,
    ca: HarnessCa,
    ca_pem: String,
    root_token: String,
    http: reqwest::Client,
}

/// A CA of the harness's own (ECDSA P-256, in memory): signs the TLS listeners' serving
/// certificates and client certificates.
pub(crate) struct HarnessCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl HarnessCa {
    pub(crate) fn new(common_name: &str) -> anyhow::Result<HarnessCa> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)
            .with_context(|| format!("generating the harness CA {common_name}"))?;
        Ok(HarnessCa { issuer })
    }

    /// The CA certificate (PEM).
    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A serving certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
    pub(crate) fn serving_certificate(
        &self,
        common_name: &str,
    ) -> anyhow::Result<(String, String)> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::V4(
                std::net::Ipv4Addr::LOCALHOST,
            )));
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("signing a serving certificate for {common_name}"))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A client certificate (`CN=<common_name>`, extended key usage clientAuth) and its key.
    pub(crate) fn client_certificate(&self, common_name: &str) -> anyhow::Result<ClientCert> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
        anyhow::ensure!(
            !common_name.is_empty(),
            "a client certificate needs a common name"
        );
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("signing a client certificate for {common_name}"))?;
        Ok(ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A CA and a serving certificate for 127.0.0.1 signed by it (PEM: CA, certificate, key), for
/// the TLS listeners of Vault and the webhook service.
pub(crate) fn tls_material() -> anyhow::Result<(String, String, String)> {
    let ca = HarnessCa::new("esox-e2e-vault-ca")?;
    let (cert_pem, key_pem) = ca.serving_certificate("vault")?;
    Ok((ca.pem(), cert_pem, key_pem))
}

impl VaultServer {
    /// Build (first time only, cached) and start Vault in dev mode, logging to `log_dir`; ready
    /// when `/v1/sys/health` answers 200 (initialised, unsealed, active).
    pub async fn start(log_dir: &Path) -> anyhow::Result<VaultServer> {
        let started = Instant::now();
        let binary = tokio::task::spawn_blocking(crate::prereqs::ensure_vault)
            .await
            .context("the vault build task failed")??;
        let port = crate::local::free_port()?;
        let addr = format!("http://127.0.0.1:{port}");
        let root_token = format!(
            "esox-e2e-root-{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        // A second listener with TLS from a CA of the harness's own, for stores that name it
        // in `caBundle` or `caProvider`; it asks for a client certificate (Vault's default),
        // which the cert auth method reads. A third requires one from that CA (mutual TLS).
        let tls_port = crate::local::free_port()?;
        let tls_addr = format!("https://127.0.0.1:{tls_port}");
        let mtls_port = crate::local::free_port()?;
        let mtls_addr = format!("https://127.0.0.1:{mtls_port}");
        let ca = HarnessCa::new("esox-e2e-vault-ca")?;
        let ca_pem = ca.pem();
        let (cert_pem, key_pem) = ca.serving_certificate("vault")?;
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("cannot create the log folder {}", log_dir.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("esox-e2e-vault-")
            .tempdir()
            .context("cannot create a temp folder for vault's TLS files")?
            .keep();
        crate::process::delete_at_exit(dir.clone());
        let (cert_file, key_file, ca_file) = (
            dir.join("vault.crt"),
            dir.join("vault.key"),
            dir.join("ca.crt"),
        );
        std::fs::write(&cert_file, &cert_pem)?;
        std::fs::write(&key_file, &key_pem)?;
        std::fs::write(&ca_file, &ca_pem)?;
        let config = dir.join("tls-listeners.hcl");
        std::fs::write(
            &config,
            format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{cert}\"\n  tls_key_file = \"{key}\"\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{mtls_port}\"\n  tls_cert_file = \"{cert}\"\n  tls_key_file = \"{key}\"\n  \
                 tls_require_and_verify_client_cert = true\n  tls_client_ca_file = \"{ca}\"\n}}\n",
                cert = cert_file.display(),
                key = key_file.display(),
                ca = ca_file.display(),
            ),
        )
        .with_context(|| format!("cannot write {}", config.display()))?;
        let mut command = std::process::Command::new(&binary);
        command
            .arg("server")
            .arg("-dev")
            .arg(format!("-config={}", config.display()))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={root_token}"))
            .arg("-dev-no-store-token")
            // No telemetry or update checks from a test.
            .env("VAULT_DISABLE_USER_LOCKOUT", "true")
            .env("CHECKPOINT_DISABLE", "1");
        let mut process = ManagedProcess::spawn_logging_to("vault", command, log_dir)
            .context("cannot start vault")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let health = format!("{addr}/v1/sys/health");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(&health).send().await
                && r.status().as_u16() == 200
            {
                break;
            }
            if let Some(status) = process.exited() {
                anyhow::bail!(
                    "vault exited before it was ready ({status}); its log ends with:\n{}",
                    process.log_tail(4096)
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "vault was not ready within 60 s; its log ends with:\n{}",
                    process.log_tail(4096)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "[esox-e2e] vault {} ready at {addr} ({:.1}s)",
            crate::prereqs::VAULT_VERSION,
            started.elapsed().as_secs_f64()
        );
        Ok(VaultServer {
            process,
            addr,
            tls_addr,
            mtls_addr,
            ca,
            ca_pem,
            root_token,
            http,
        })
    }

    /// `http://127.0.0.1:<port>`: what a store's `server` names.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `https://127.0.0.1:<port>`: the same Vault behind TLS from a CA only [`Self::ca_pem`]
    /// knows (no public root trusts it).
    pub fn tls_addr(&self) -> &str {
        &self.tls_addr
    }

    /// `https://127.0.0.1:<port>`: the same Vault behind mutual TLS. The handshake fails
    /// unless the client presents a certificate from [`Self::client_certificate`] (any CA
    /// other than [`Self::ca_pem`]'s is refused too); the server's certificate is the one
    /// [`Self::tls_addr`] presents.
    pub fn mtls_addr(&self) -> &str {
        &self.mtls_addr
    }

    /// The PEM of the CA that signed the TLS listeners' certificate and signs
    /// [`Self::client_certificate`]s.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client certificate from [`Self::ca_pem`]'s CA (`CN=<common_name>`, extended key usage
    /// clientAuth, valid for years) and its key: passes [`Self::mtls_addr`]'s handshake, and
    /// logs in through the cert auth method at [`Self::tls_addr`] for a role whose
    /// `certificate` is [`Self::ca_pem`].
    pub fn client_certificate(&self, common_name: &str) -> anyhow::Result<ClientCert> {
        self.ca.client_certificate(common_name)
    }

    /// The root token (for a store's `tokenSecretRef` in tests of token auth).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Token", &self.root_token);
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("vault {method} {path}: HTTP {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("vault {method} {path}: not JSON"))
    }

    /// `POST /v1/<path>` with `body`, as root; the answer's JSON (Null for 204).
    pub async fn write(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `GET /v1/<path>`, as root.
    pub async fn read(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `DELETE /v1/<path>`, as root.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// The server's log so far (the e2e suites scan it like the controller's).
    pub fn log_tail(&self, max_bytes: u64) -> String {
        self.process.log_tail(max_bytes)
    }
}

// Test binaries keep one Vault in a `static` (a OnceCell): it must stay Send + Sync.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<VaultServer>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_are_for_client_auth_and_chain_to_the_ca() {
        let ca = HarnessCa::new("test-ca").unwrap();
        let cert = ca.client_certificate("someone").unwrap();
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(
            ca.client_certificate("someone").unwrap().key_pem,
            cert.key_pem
        );
        assert!(ca.client_certificate("").is_err());
        // rustls (the webhook service's stack) accepts it as a client of this CA and of no other.
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier_for = |ca_pem: &str| {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
                .unwrap();
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                provider.clone(),
            )
            .build()
            .unwrap()
        };
        let leaf = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier_for(&ca.pem())
            .verify_client_cert(&leaf, &[], now)
            .expect("the harness CA's client certificate verifies");
        let other = HarnessCa::new("other-ca").unwrap();
        assert!(
            verifier_for(&other.pem())
                .verify_client_cert(&leaf, &[], now)
                .is_err()
        );
        // A serving certificate is not a client certificate.
        let (serving, _) = ca.serving_certificate("vault").unwrap();
        let serving = CertificateDer::from_pem_slice(serving.as_bytes()).unwrap();
        assert!(
            verifier_for(&ca.pem())
                .verify_client_cert(&serving, &[], now)
                .is_err()
        );
    }
}
