//! The `local` backend: etcd, kube-apiserver, kube-controller-manager and LocalStack as host
//! processes on free 127.0.0.1 ports, with keys, certificates and data in the stack's temp
//! folder. Needs no Docker engine; binaries come from [`crate::prereqs`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;

use crate::kubeconfig::{self, Credentials};
use crate::pki;
use crate::process::ManagedProcess;

/// The Services LocalStack starts; the seed scenario needs STS and IAM next to the stores.
pub const LOCALSTACK_SERVICES: &str = "secretsmanager,ssm,acm,sts,iam,kms";

/// A running local control plane and LocalStack. Dropping it stops every process (LocalStack
/// and the controller-manager first, etcd last).
pub(crate) struct LocalBackend {
    /// In stop order.
    pub processes: Vec<ManagedProcess>,
    pub admin_kubeconfig_yaml: String,
    #[allow(dead_code)] // kept for diagnostics; the Stack reads the URL from the kubeconfig
    pub server: String,
    pub ca_pem: String,
    pub issuer: String,
    pub localstack_endpoint: String,
    pub kubectl: Option<PathBuf>,
}

/// Finds a free TCP port on 127.0.0.1 by binding port 0 and releasing it.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot bind 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn log_line(message: &str, started: Instant) {
    eprintln!(
        "[esox-e2e] {message} ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
}

/// Polls `check` every 100 ms until it returns true, failing early when `process` exits.
async fn wait_until<F, Fut>(
    what: &str,
    process: &mut ManagedProcess,
    timeout: Duration,
    mut check: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return Ok(());
        }
        if let Some(status) = process.exited() {
            anyhow::bail!(
                "{} exited ({status}) before {what}; log {}:\n{}",
                process.name(),
                process.log_path().display(),
                process.log_tail(6000)
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{what}: not within {timeout:?}; log {} ends with:\n{}",
                process.log_path().display(),
                process.log_tail(6000)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn http_ok(http: &reqwest::Client, url: &str) -> Option<String> {
    let response = http.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

/// Starts the local backend in `dir` (which must exist and stay until the backend is dropped).
pub(crate) async fn start(dir: &Path) -> anyhow::Result<LocalBackend> {
    let started = Instant::now();
    let (assets, venv) = tokio::task::spawn_blocking(|| {
        Ok::<_, anyhow::Error>((
            crate::prereqs::ensure_control_plane()?,
            crate::prereqs::ensure_localstack()?,
        ))
    })
    .await??;
    let logs = dir.join("logs");
    let pki_dir = dir.join("pki");
    std::fs::create_dir_all(&pki_dir)?;
    let pki = pki::generate(&pki_dir)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()?;
    let http = &http;

    // LocalStack first: it takes the longest to boot and needs nothing else.
    let localstack_port = free_port()?;
    let localstack_endpoint = format!("http://127.0.0.1:{localstack_port}");
    let localstack_volume = dir.join("localstack");
    std::fs::create_dir_all(&localstack_volume)?;
    let mut command = Command::new(venv.join("bin").join("python"));
    command
        .args(["-m", "localstack.runtime.main"])
        .current_dir(dir)
        .env("SERVICES", LOCALSTACK_SERVICES)
        .env("GATEWAY_LISTEN", format!("127.0.0.1:{localstack_port}"))
        .env("LOCALSTACK_HOST", format!("127.0.0.1:{localstack_port}"))
        .env("LOCALSTACK_VOLUME_DIR", &localstack_volume)
        .env("DISABLE_EVENTS", "1")
        .env("DNS_ADDRESS", "0")
        .env("SKIP_SSL_CERT_DOWNLOAD", "1")
        .env("PERSISTENCE", "0");
    let mut localstack = ManagedProcess::spawn_logging_to("localstack", command, &logs)?;

    let etcd_client_port = free_port()?;
    let etcd_peer_port = free_port()?;
    let etcd_url = format!("http://127.0.0.1:{etcd_client_port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
    let mut command = Command::new(assets.join("etcd"));
    command
        .arg("--name=esox-e2e")
        .arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg(format!("--listen-client-urls={etcd_url}"))
        .arg(format!("--advertise-client-urls={etcd_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=esox-e2e={peer_url}"))
        .arg("--unsafe-no-fsync")
        .arg("--log-level=warn");
    let mut etcd = ManagedProcess::spawn_logging_to("etcd", command, &logs)?;
    let etcd_health = format!("{etcd_url}/health");
    let etcd_health = etcd_health.as_str();
    wait_until(
        "etcd answers /health",
        &mut etcd,
        Duration::from_secs(60),
        || async move {
            http_ok(http, etcd_health)
                .await
                .is_some_and(|b| b.contains("true"))
        },
    )
    .await?;
    log_line("etcd ready", started);

    let apiserver_port = free_port()?;
    let server = format!("https://127.0.0.1:{apiserver_port}");
    // The issuer is the API server's own URL: it serves the matching OIDC discovery document.
    let issuer = server.clone();
    let sa_key = pki.service_account_key.display().to_string();
    let mut command = Command::new(assets.join("kube-apiserver"));
    command
        .arg(format!("--etcd-servers={etcd_url}"))
        .arg(format!("--secure-port={apiserver_port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!(
            "--cert-dir={}",
            dir.join("apiserver-certs").display()
        ))
        .arg(format!("--tls-cert-file={}", pki.serving_cert.display()))
        .arg(format!(
            "--tls-private-key-file={}",
            pki.serving_key.display()
        ))
        .arg(format!("--client-ca-file={}", pki.ca_cert.display()))
        .arg("--authorization-mode=RBAC")
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg(format!("--service-account-issuer={issuer}"))
        .arg(format!(
            "--service-account-key-file={}",
            pki.service_account_public_key.display()
        ))
        .arg(format!("--service-account-signing-key-file={sa_key}"))
        // The in-cluster "kubernetes" Service would point at 127.0.0.1, which is invalid there.
        .arg("--endpoint-reconciler-type=none")
        .arg("--profiling=false")
        .arg("--v=1");
    let mut apiserver = ManagedProcess::spawn_logging_to("kube-apiserver", command, &logs)?;

    let admin_kubeconfig_yaml = kubeconfig::render(
        &server,
        &pki.ca_cert_pem,
        "esox-e2e-admin",
        Credentials::ClientCert {
            cert_pem: &pki.admin.cert_pem,
            key_pem: &pki.admin.key_pem,
        },
    );
    let admin_path = dir.join("kubeconfig");
    std::fs::write(&admin_path, &admin_kubeconfig_yaml)?;
    let admin = kube::Client::try_from(kubeconfig::load(&admin_path).await?)?;
    let admin = &admin;
    wait_until(
        "kube-apiserver reports /readyz ok",
        &mut apiserver,
        Duration::from_secs(120),
        || async move {
            let Ok(request) = http::Request::get("/readyz").body(Vec::new()) else {
                return false;
            };
            admin
                .request_text(request)
                .await
                .is_ok_and(|body| body.trim() == "ok")
        },
    )
    .await?;
    log_line("kube-apiserver ready", started);

    let kcm_kubeconfig = dir.join("controller-manager.kubeconfig");
    std::fs::write(
        &kcm_kubeconfig,
        kubeconfig::render(
            &server,
            &pki.ca_cert_pem,
            "system:kube-controller-manager",
            Credentials::ClientCert {
                cert_pem: &pki.controller_manager.cert_pem,
                key_pem: &pki.controller_manager.key_pem,
            },
        ),
    )?;
    let mut command = Command::new(assets.join("kube-controller-manager"));
    command
        .arg(format!("--kubeconfig={}", kcm_kubeconfig.display()))
        .arg("--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,certificatesigningrequest-signing-controller")
        // Approved CertificateSigningRequests are signed by the CA the API server's
        // `--client-ca-file` trusts, so their certificates authenticate (Stack::issue_client_certificate).
        .arg(format!("--cluster-signing-cert-file={}", pki.ca_cert.display()))
        .arg(format!("--cluster-signing-key-file={}", pki.ca_key.display()))
        .arg(format!("--service-account-private-key-file={sa_key}"))
        .arg(format!("--root-ca-file={}", pki.ca_cert.display()))
        .arg("--leader-elect=false")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", free_port()?))
        .arg(format!("--cert-dir={}", dir.join("kcm-certs").display()))
        .arg("--use-service-account-credentials=false")
        .arg("--v=1");
    let mut controller_manager =
        ManagedProcess::spawn_logging_to("kube-controller-manager", command, &logs)?;
    // The serviceaccount controller creating "default" proves the controller-manager is live.
    let default_sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    let default_sas = &default_sas;
    wait_until(
        "kube-controller-manager creates ServiceAccount default/default",
        &mut controller_manager,
        Duration::from_secs(120),
        || async move {
            default_sas
                .get_opt("default")
                .await
                .ok()
                .flatten()
                .is_some()
        },
    )
    .await?;
    log_line("kube-controller-manager ready", started);

    let localstack_health = format!("{localstack_endpoint}/_localstack/health");
    let localstack_health = localstack_health.as_str();
    wait_until(
        "LocalStack's /_localstack/health lists secretsmanager, ssm and sts as available",
        &mut localstack,
        Duration::from_secs(120),
        || async move {
            let Some(body) = http_ok(http, localstack_health).await else {
                return false;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
                return false;
            };
            ["secretsmanager", "ssm", "sts"].iter().all(|service| {
                matches!(
                    json["services"][service].as_str(),
                    Some("available" | "running")
                )
            })
        },
    )
    .await?;
    log_line("LocalStack ready", started);

    let kubectl = Some(assets.join("kubectl")).filter(|p| p.is_file());
    Ok(LocalBackend {
        processes: vec![localstack, controller_manager, apiserver, etcd],
        admin_kubeconfig_yaml,
        server,
        ca_pem: pki.ca_cert_pem,
        issuer,
        localstack_endpoint,
        kubectl,
    })
}
