//! [`Stack`]: one running Kubernetes API and LocalStack, whichever backend provides them, plus
//! everything tests need to talk to them: an admin client, a client as the controller's
//! least-privilege identity (deploy/rbac.yaml + a TokenRequest token), AWS SDK clients pointed
//! at LocalStack, CRD installation, per-test namespaces, and client certificates signed by the
//! cluster through the CertificateSigningRequest API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use tokio::sync::OnceCell;

use crate::containers::{self, ContainersBackend};
use crate::kubeconfig::{self, Credentials};
use crate::local::{self, LocalBackend};
use crate::namespace::TestNamespace;
use crate::pki::ClientCert;

/// Namespace and name of the controller's ServiceAccount in deploy/rbac.yaml.
pub const CONTROLLER_NAMESPACE: &str = "esox-system";
/// See [`CONTROLLER_NAMESPACE`].
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "esox";
/// Region the AWS clients and the env file use; LocalStack accepts any.
pub const AWS_REGION: &str = "us-east-1";
/// How long the controller's token lives; the API server may shorten it.
const CONTROLLER_TOKEN_SECONDS: i64 = 24 * 3600;
/// The signer whose certificates the API server accepts as client certificates.
pub const CLIENT_CERT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// Lifetime asked for in [`Stack::issue_client_certificate`]'s requests (`expirationSeconds`).
const CLIENT_CERT_SECONDS: i32 = 3600;
/// How long an approved CertificateSigningRequest may wait for the controller-manager's signature.
const CSR_SIGNING_TIMEOUT: Duration = Duration::from_secs(60);

/// Which implementation runs the APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// etcd + kube-apiserver + kube-controller-manager + LocalStack as host processes.
    Local,
    /// k3s + LocalStack containers through testcontainers (needs a Docker engine).
    Containers,
}

impl Backend {
    /// The name used in `ESOX_E2E_BACKEND` and printed in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Containers => "containers",
        }
    }

    /// `ESOX_E2E_BACKEND=local|containers`; when unset, `containers` if a Docker engine
    /// answers, else `local`. Prints the choice and the reason.
    pub fn from_env() -> anyhow::Result<Backend> {
        match std::env::var("ESOX_E2E_BACKEND").ok().as_deref() {
            Some("local") => {
                eprintln!("[esox-e2e] backend: local (ESOX_E2E_BACKEND=local)");
                Ok(Backend::Local)
            }
            Some("containers") => match containers::docker_answers() {
                Ok(()) => {
                    eprintln!("[esox-e2e] backend: containers (ESOX_E2E_BACKEND=containers)");
                    Ok(Backend::Containers)
                }
                Err(why) => anyhow::bail!(
                    "containers backend skipped: {why}. Start Docker, or unset ESOX_E2E_BACKEND \
                     to run the local backend"
                ),
            },
            Some(other) => anyhow::bail!(
                "ESOX_E2E_BACKEND={other} is not a backend; use `local` or `containers`"
            ),
            None => match containers::docker_answers() {
                Ok(()) => {
                    eprintln!(
                        "[esox-e2e] backend: containers (a Docker engine answers; set ESOX_E2E_BACKEND=local to override)"
                    );
                    Ok(Backend::Containers)
                }
                Err(why) => {
                    eprintln!("[esox-e2e] backend: local ({why})");
                    Ok(Backend::Local)
                }
            },
        }
    }
}

enum Running {
    Local(LocalBackend),
    Containers(Box<ContainersBackend>),
}

/// A running Kubernetes API + LocalStack with the project's RBAC installed.
///
/// Tests share one per test binary through [`Stack::shared`] (starting one costs seconds, and
/// namespaces isolate tests); `esox-stack up` owns one through [`Stack::start`]. Dropping a
/// `Stack` stops its processes or containers; the shared one is torn down when the test binary
/// exits, even after a failed test.
pub struct Stack {
    running: Option<Running>,
    backend: Backend,
    dir: PathBuf,
    admin_config: kube::Config,
    controller_config: kube::Config,
    admin_kubeconfig: PathBuf,
    controller_kubeconfig: PathBuf,
    localstack_endpoint: String,
    issuer: String,
    kubectl: Option<PathBuf>,
    api_server: String,
    ca_pem: String,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("backend", &self.backend)
            .field("dir", &self.dir)
            .field("localstack_endpoint", &self.localstack_endpoint)
            .finish_non_exhaustive()
    }
}

static SHARED: OnceCell<Stack> = OnceCell::const_new();

impl Stack {
    /// The stack shared by every test in this test binary, started on first use with the
    /// backend [`Backend::from_env`] picks.
    pub async fn shared() -> anyhow::Result<&'static Stack> {
        SHARED
            .get_or_try_init(|| async {
                let backend = Backend::from_env()?;
                let dir = tempfile::Builder::new()
                    .prefix("esox-e2e-")
                    .tempdir()
                    .context("cannot create a temp folder for the stack")?
                    .keep();
                crate::process::delete_at_exit(dir.clone());
                let stack = Stack::start_in(backend, dir).await?;
                if let Some(Running::Containers(containers)) = &stack.running {
                    let ids = containers.container_ids.clone();
                    crate::process::run_at_exit(Box::new(move || {
                        for id in &ids {
                            containers::force_remove(id);
                        }
                    }));
                }
                Ok(stack)
            })
            .await
    }

    /// Starts a stack of its own in `dir` (created if missing, kept afterwards: it holds the
    /// kubeconfigs and logs). Stopped when the value is dropped.
    pub async fn start(backend: Backend, dir: &Path) -> anyhow::Result<Stack> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Stack::start_in(backend, dir.to_path_buf()).await
    }

    async fn start_in(backend: Backend, dir: PathBuf) -> anyhow::Result<Stack> {
        let started = Instant::now();
        let (running, admin_yaml, localstack_endpoint, mut issuer, kubectl) = match backend {
            Backend::Local => {
                let local = local::start(&dir).await?;
                let yaml = local.admin_kubeconfig_yaml.clone();
                let endpoint = local.localstack_endpoint.clone();
                let issuer = local.issuer.clone();
                let kubectl = local.kubectl.clone();
                (Running::Local(local), yaml, endpoint, Some(issuer), kubectl)
            }
            Backend::Containers => {
                let containers = containers::start(&dir).await?;
                let yaml = containers.admin_kubeconfig_yaml.clone();
                let endpoint = containers.localstack_endpoint.clone();
                (
                    Running::Containers(Box::new(containers)),
                    yaml,
                    endpoint,
                    None,
                    None,
                )
            }
        };
        let admin_kubeconfig = dir.join("kubeconfig");
        std::fs::write(&admin_kubeconfig, &admin_yaml)?;
        let admin_config = kubeconfig::load(&admin_kubeconfig).await?;
        let admin = kube::Client::try_from(admin_config.clone())?;
        if issuer.is_none() {
            issuer = Some(discover_issuer(&admin).await?);
        }
        let issuer = issuer.unwrap_or_default();

        let rbac = rbac_manifest_path();
        let yaml = std::fs::read_to_string(&rbac).with_context(|| {
            format!(
                "cannot read the controller RBAC {}; set ESOX_RBAC_MANIFEST to deploy/rbac.yaml",
                rbac.display()
            )
        })?;
        crate::manifests::apply_yaml(&admin, &yaml)
            .await
            .with_context(|| format!("applying {}", rbac.display()))?;
        let token = controller_token(&admin).await?;
        let server = admin_config.cluster_url.to_string();
        let server = server.trim_end_matches('/');
        let ca_pem = match &running {
            Running::Local(local) => local.ca_pem.clone(),
            Running::Containers(_) => ca_pem_from_kubeconfig(&admin_yaml)?,
        };
        let controller_kubeconfig = dir.join("controller.kubeconfig");
        std::fs::write(
            &controller_kubeconfig,
            kubeconfig::render(
                server,
                &ca_pem,
                &format!(
                    "system:serviceaccount:{CONTROLLER_NAMESPACE}:{CONTROLLER_SERVICE_ACCOUNT}"
                ),
                Credentials::Token(&token),
            ),
        )?;
        let controller_config = kubeconfig::load(&controller_kubeconfig).await?;
        eprintln!(
            "[esox-e2e] stack up ({} backend) in {:.1}s: API {server}, LocalStack {localstack_endpoint}, files in {}",
            backend.as_str(),
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        Ok(Stack {
            running: Some(running),
            backend,
            dir,
            admin_config,
            controller_config,
            admin_kubeconfig,
            controller_kubeconfig,
            localstack_endpoint,
            issuer,
            kubectl,
            api_server: server.to_string(),
            ca_pem,
        })
    }

    /// `"local"` or `"containers"`.
    pub fn backend(&self) -> &str {
        self.backend.as_str()
    }

    /// The folder holding kubeconfigs, keys and process logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client with full access (`system:masters`). A new client per call: a kube client is
    /// bound to the tokio runtime that created it, and each `#[tokio::test]` has its own.
    pub fn admin_client(&self) -> kube::Client {
        client_from(&self.admin_config)
    }

    /// A client authenticated as ServiceAccount `esox-system/esox` with a TokenRequest token,
    /// holding exactly the ClusterRole in deploy/rbac.yaml: what the controller runs as.
    pub fn controller_client(&self) -> kube::Client {
        client_from(&self.controller_config)
    }

    /// The admin kubeconfig file (for kubectl or a child process).
    pub fn admin_kubeconfig_path(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// The least-privilege kubeconfig file: pass it to the `esox` binary as KUBECONFIG.
    pub fn controller_kubeconfig_path(&self) -> &Path {
        &self.controller_kubeconfig
    }

    /// `http://127.0.0.1:<port>`: LocalStack's endpoint for every AWS service.
    pub fn localstack_endpoint(&self) -> &str {
        &self.localstack_endpoint
    }

    /// The API server's URL (`https://127.0.0.1:<port>` on the local backend): what another
    /// service that reviews tokens (Vault's Kubernetes auth) is pointed at.
    pub fn api_server_url(&self) -> &str {
        &self.api_server
    }

    /// The PEM of the CA the API server's certificate chains to.
    pub fn api_server_ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The ServiceAccount token issuer (`iss` of TokenRequest tokens).
    pub fn service_account_issuer(&self) -> &str {
        &self.issuer
    }

    /// The kubectl binary built with the control plane (local backend only).
    pub fn kubectl(&self) -> Option<&Path> {
        self.kubectl.as_deref()
    }

    /// A Secrets Manager client for LocalStack (credentials test/test), to seed and rotate values.
    pub fn secretsmanager_client(&self) -> aws_sdk_secretsmanager::Client {
        self.secretsmanager_client_in(AWS_REGION)
    }

    /// A Secrets Manager client for LocalStack in `region`. LocalStack keeps each region's
    /// secrets apart, as AWS does: seed in the region the SecretStore names.
    pub fn secretsmanager_client_in(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        localstack_secretsmanager_client(&self.localstack_endpoint, region)
    }

    /// An SSM Parameter Store client for LocalStack (credentials test/test).
    pub fn ssm_client(&self) -> aws_sdk_ssm::Client {
        self.ssm_client_in(AWS_REGION)
    }

    /// An SSM Parameter Store client for LocalStack in `region`.
    pub fn ssm_client_in(&self, region: &str) -> aws_sdk_ssm::Client {
        use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.localstack_endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "esox-e2e"))
            .http_client(aws_http_client())
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    /// An AWS Certificate Manager client for LocalStack in `region` (credentials test/test), to
    /// request certificates for the CertificateManager provider.
    pub fn acm_client_in(&self, region: &str) -> aws_sdk_acm::Client {
        use aws_sdk_acm::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_acm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.localstack_endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "esox-e2e"))
            .http_client(aws_http_client())
            .build();
        aws_sdk_acm::Client::from_conf(config)
    }

    /// Applies every YAML file in `dir` (e.g. the repository's `crds/`) and waits until each
    /// CustomResourceDefinition is Established.
    pub async fn install_crds(&self, dir: &Path) -> anyhow::Result<()> {
        crate::manifests::install_crds(&self.admin_client(), dir).await
    }

    /// Creates a namespace `<prefix>-<random>`; deleted when the returned value drops.
    pub async fn new_namespace(&self, prefix: &str) -> anyhow::Result<TestNamespace> {
        TestNamespace::create(self.admin_config.clone(), prefix).await
    }

    /// A client certificate for Kubernetes user `user` in `groups`, signed by the cluster through
    /// the real CertificateSigningRequest API (so it works the same on both backends): a fresh
    /// ECDSA P-256 key and a CSR (`CN=<user>`, `O=<group>` each), a `certificates.k8s.io/v1`
    /// CertificateSigningRequest for signer `kubernetes.io/kube-apiserver-client` with usage
    /// `client auth` and `expirationSeconds` 3600, approved as admin through the `/approval`
    /// subresource, signed by kube-controller-manager (waits up to 60 s), then deleted.
    ///
    /// The user has no permissions until a (Cluster)RoleBinding names it.
    pub async fn issue_client_certificate(
        &self,
        user: &str,
        groups: &[&str],
    ) -> anyhow::Result<ClientCert> {
        anyhow::ensure!(
            !user.is_empty(),
            "issue_client_certificate: the user name (the certificate's CN) is empty"
        );
        let (csr_pem, key_pem) = crate::pki::client_key_and_csr(user, groups)
            .with_context(|| format!("generating a key and CSR for user {user}"))?;
        let csrs: Api<CertificateSigningRequest> = Api::all(self.admin_client());
        let request = CertificateSigningRequest {
            metadata: ObjectMeta {
                generate_name: Some("esox-e2e-client-".into()),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(csr_pem.into_bytes()),
                signer_name: CLIENT_CERT_SIGNER.into(),
                usages: Some(vec!["client auth".into()]),
                expiration_seconds: Some(CLIENT_CERT_SECONDS),
                ..Default::default()
            },
            status: None,
        };
        let created = csrs
            .create(&PostParams::default(), &request)
            .await
            .with_context(|| {
                format!(
                    "creating a CertificateSigningRequest for user {user} ({CLIENT_CERT_SIGNER})"
                )
            })?;
        let name = created
            .metadata
            .name
            .context("the API server created a CertificateSigningRequest without a name")?;
        let signed = self.approve_and_wait(&csrs, &name, user).await;
        let deleted = csrs
            .delete(&name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting CertificateSigningRequest {name}"));
        let cert_pem = signed?;
        deleted?;
        Ok(ClientCert { cert_pem, key_pem })
    }

    /// Approves CertificateSigningRequest `name` and waits for its certificate (PEM).
    async fn approve_and_wait(
        &self,
        csrs: &Api<CertificateSigningRequest>,
        name: &str,
        user: &str,
    ) -> anyhow::Result<String> {
        let approval = serde_json::json!({"status": {"conditions": [{
            "type": "Approved",
            "status": "True",
            "reason": "EsoxE2E",
            "message": format!("client certificate for {user}, approved by the esox e2e harness"),
        }]}});
        csrs.patch_approval(name, &PatchParams::default(), &Patch::Merge(&approval))
            .await
            .with_context(|| format!("approving CertificateSigningRequest {name} (user {user})"))?;
        let deadline = Instant::now() + CSR_SIGNING_TIMEOUT;
        loop {
            let csr = csrs
                .get(name)
                .await
                .with_context(|| format!("reading CertificateSigningRequest {name}"))?;
            let status = csr.status.unwrap_or_default();
            if let Some(certificate) = status.certificate.filter(|c| !c.0.is_empty()) {
                let pem = String::from_utf8(certificate.0).with_context(|| {
                    format!("CertificateSigningRequest {name}: status.certificate is not PEM text")
                })?;
                anyhow::ensure!(
                    pem.contains("-----BEGIN CERTIFICATE-----"),
                    "CertificateSigningRequest {name}: status.certificate holds no PEM certificate"
                );
                return Ok(pem);
            }
            if let Some(refused) = status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True")
            {
                anyhow::bail!(
                    "CertificateSigningRequest {name} (user {user}) is {}: {} {}; {}",
                    refused.type_,
                    refused.reason.unwrap_or_default(),
                    refused.message.unwrap_or_default(),
                    self.csr_signer_hint()
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "CertificateSigningRequest {name} (user {user}) was approved but not signed \
                     within {CSR_SIGNING_TIMEOUT:?}: is the controller-manager's \
                     certificatesigningrequest-signing-controller running with \
                     --cluster-signing-cert-file/--cluster-signing-key-file? {}",
                    self.csr_signer_hint()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Where the CSR signer's log is: the local controller-manager's log (with its tail), or
    /// the k3s container's.
    fn csr_signer_hint(&self) -> String {
        match &self.running {
            Some(Running::Local(local)) => local
                .processes
                .iter()
                .find(|p| p.name() == "kube-controller-manager")
                .map(|p| {
                    format!(
                        "kube-controller-manager's log {} ends with:\n{}",
                        p.log_path().display(),
                        p.log_tail(4000)
                    )
                })
                .unwrap_or_else(|| {
                    "kube-controller-manager is not among the stack's processes".into()
                }),
            Some(Running::Containers(containers)) => format!(
                "the signer runs in the k3s container: see `docker logs {}`",
                containers
                    .container_ids
                    .first()
                    .map(String::as_str)
                    .unwrap_or("<k3s>")
            ),
            None => "the stack is stopped".into(),
        }
    }

    /// A client authenticated by `cert` (from [`Self::issue_client_certificate`]) against this
    /// stack's API server: what a store's `auth.cert` stands for.
    pub async fn client_with_certificate(&self, cert: &ClientCert) -> anyhow::Result<kube::Client> {
        let yaml = kubeconfig::render(
            &self.api_server,
            &self.ca_pem,
            "esox-e2e-client-cert",
            Credentials::ClientCert {
                cert_pem: &cert.cert_pem,
                key_pem: &cert.key_pem,
            },
        );
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)
            .context("parsing the client-certificate kubeconfig the harness rendered")?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .context("a client configuration from a client certificate")?;
        kube::Client::try_from(config).context("a kube client from a client certificate")
    }

    /// `Some(description)` when a process of the local backend has died (its log tail
    /// included); `None` while all run, and always for the containers backend.
    pub fn exited_process(&mut self) -> Option<String> {
        let Some(Running::Local(local)) = self.running.as_mut() else {
            return None;
        };
        local.processes.iter_mut().find_map(|process| {
            process.exited().map(|status| {
                format!(
                    "{} exited ({status}); its log ends with:\n{}",
                    process.name(),
                    process.log_tail(4000)
                )
            })
        })
    }

    /// The environment file `esox-stack up` writes: LocalStack endpoint, credentials, region and
    /// the admin kubeconfig.
    pub fn env_file_contents(&self) -> String {
        let mut env = format!(
            "AWS_ENDPOINT_URL={}\nAWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\n\
             AWS_REGION={AWS_REGION}\nAWS_DEFAULT_REGION={AWS_REGION}\nKUBECONFIG={}\n\
             ESOX_CONTROLLER_KUBECONFIG={}\nESOX_E2E_BACKEND={}\n",
            self.localstack_endpoint,
            self.admin_kubeconfig.display(),
            self.controller_kubeconfig.display(),
            self.backend.as_str(),
        );
        if let Some(kubectl) = &self.kubectl {
            env.push_str(&format!("ESOX_KUBECTL={}\n", kubectl.display()));
        }
        env
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(Running::Local(local)) = self.running.as_mut() {
            for process in local.processes.iter_mut() {
                process.stop(Duration::from_secs(5));
            }
        }
        self.running = None;
    }
}

fn client_from(config: &kube::Config) -> kube::Client {
    // Test-harness code only: the same configuration built a working client when the stack
    // started (TLS and auth settings are checked then), so this cannot fail afterwards.
    kube::Client::try_from(config.clone()).expect("a kube client from a config that worked before")
}

/// A Secrets Manager client for the LocalStack at `endpoint` in `region` (credentials
/// test/test): for tools that have the endpoint but not the [`Stack`] (the benchmark's raw
/// writer).
pub fn localstack_secretsmanager_client(
    endpoint: &str,
    region: &str,
) -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "esox-e2e"))
        .http_client(aws_http_client())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

fn aws_http_client() -> aws_sdk_secretsmanager::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// `deploy/rbac.yaml` of this checkout, or `$ESOX_RBAC_MANIFEST`.
pub fn rbac_manifest_path() -> PathBuf {
    std::env::var_os("ESOX_RBAC_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::prereqs::source_dir()
                .join("..")
                .join("deploy")
                .join("rbac.yaml")
        })
}

async fn discover_issuer(admin: &kube::Client) -> anyhow::Result<String> {
    let request = http::Request::get("/.well-known/openid-configuration").body(Vec::new())?;
    let document: serde_json::Value = admin.request(request).await?;
    document["issuer"]
        .as_str()
        .map(str::to_owned)
        .context("the API server's OIDC discovery document has no issuer")
}

/// Requests a token for the controller's ServiceAccount, as the kubelet would for a pod.
async fn controller_token(admin: &kube::Client) -> anyhow::Result<String> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), CONTROLLER_NAMESPACE);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(CONTROLLER_TOKEN_SECONDS),
            ..Default::default()
        }),
        ..Default::default()
    };
    let response = accounts
        .create_token_request(CONTROLLER_SERVICE_ACCOUNT, &PostParams::default(), &request)
        .await
        .context("TokenRequest for esox-system/esox")?;
    response
        .status
        .and_then(|s| s.token)
        .context("TokenRequest answered without a token")
}

fn ca_pem_from_kubeconfig(yaml: &str) -> anyhow::Result<String> {
    use base64::Engine as _;
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml)?;
    let data = doc["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .context("the kubeconfig has no certificate-authority-data")?;
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(data)?,
    )?)
}
