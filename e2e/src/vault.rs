//! A real HashiCorp Vault for the vault provider's e2e suite: the pinned build
//! ([`crate::prereqs::ensure_vault`]) in dev mode (in-memory storage, unsealed, KV v2 at
//! `secret/`) on a free loopback port, with a root token the harness makes up. Tests configure
//! it through its HTTP API ([`VaultServer::write`], [`VaultServer::read`]): mounts, policies,
//! auth methods (AppRole, userpass, JWT, Kubernetes pointed at the harness's API server). It
//! listens twice: plain HTTP ([`VaultServer::addr`]) and TLS with a certificate from a CA of
//! the harness's own ([`VaultServer::tls_addr`], [`VaultServer::ca_pem`]).
//! Stopped when dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use crate::ManagedProcess;

/// One running Vault dev server.
pub struct VaultServer {
    process: ManagedProcess,
    addr: String,
    tls_addr: String,
    ca_pem: String,
    root_token: String,
    http: reqwest::Client,
}

/// A CA and a serving certificate for 127.0.0.1 signed by it (PEM: CA, certificate, key), for
/// the TLS listeners of Vault and the webhook service.
pub(crate) fn tls_material() -> anyhow::Result<(String, String, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "esox-e2e-vault-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    params.distinguished_name.push(DnType::CommonName, "vault");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
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
        // in `caBundle` or `caProvider`.
        let tls_port = crate::local::free_port()?;
        let tls_addr = format!("https://127.0.0.1:{tls_port}");
        let (ca_pem, cert_pem, key_pem) = tls_material()?;
        std::fs::create_dir_all(log_dir)?;
        let dir = tempfile::Builder::new()
            .prefix("esox-e2e-vault-")
            .tempdir()?
            .keep();
        crate::process::delete_at_exit(dir.clone());
        std::fs::write(dir.join("vault.crt"), &cert_pem)?;
        std::fs::write(dir.join("vault.key"), &key_pem)?;
        let config = dir.join("tls-listener.hcl");
        std::fs::write(
            &config,
            format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
                dir.join("vault.crt").display(),
                dir.join("vault.key").display()
            ),
        )?;
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

    /// The PEM of the CA that signed the TLS listener's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
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
