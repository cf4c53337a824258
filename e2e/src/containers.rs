//! The `containers` backend: k3s and LocalStack in Docker through testcontainers-modules, for a
//! laptop with a Docker engine. Also the probe that decides whether a Docker engine answers at
//! all, which picks the default backend and explains a skip.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use testcontainers::ImageExt;
use testcontainers::runners::AsyncRunner;
use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};
use testcontainers_modules::localstack::LocalStack;

/// k3s image tag. The module's default (v1.28.8-k3s1) is long out of support; override with
/// `ESOX_E2E_K3S_TAG`.
pub const K3S_TAG: &str = "v1.34.1-k3s1";
/// LocalStack image tag: the same version the local backend pins.
pub const LOCALSTACK_TAG: &str = "4.9.2";

/// Where the Docker engine is expected: `$DOCKER_HOST`, else the default Unix socket.
fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Sends one HTTP/1.0 request to the Docker engine API and returns the raw response.
fn docker_request(method: &str, path: &str) -> Result<String, String> {
    let host = docker_host();
    let request = format!("{method} {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
    let timeout = Some(Duration::from_secs(3));
    let mut response = String::new();
    if let Some(socket) = host.strip_prefix("unix://") {
        let mut stream = std::os::unix::net::UnixStream::connect(socket)
            .map_err(|e| format!("no Docker engine answers at {host} ({e})"))?;
        stream
            .set_read_timeout(timeout)
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
    } else if let Some(addr) = host.strip_prefix("tcp://") {
        let mut stream = std::net::TcpStream::connect(addr)
            .map_err(|e| format!("no Docker engine answers at {host} ({e})"))?;
        stream
            .set_read_timeout(timeout)
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
    } else {
        return Err(format!("DOCKER_HOST={host} is neither unix:// nor tcp://"));
    }
    Ok(response)
}

/// `Ok(())` when a Docker engine answers `GET /_ping`, else why not (for the skip message).
pub fn docker_answers() -> Result<(), String> {
    let response = docker_request("GET", "/_ping")?;
    if response.ends_with("OK") {
        Ok(())
    } else {
        Err(format!(
            "the Docker engine at {} did not answer /_ping with OK",
            docker_host()
        ))
    }
}

/// Removes a container by id through the engine API (used at exit, where no async runtime is).
pub(crate) fn force_remove(id: &str) {
    let _ = docker_request("DELETE", &format!("/containers/{id}?force=true&v=true"));
}

/// A running k3s and LocalStack pair. Dropping it removes both containers.
pub(crate) struct ContainersBackend {
    k3s: Option<testcontainers::ContainerAsync<K3s>>,
    localstack: Option<testcontainers::ContainerAsync<LocalStack>>,
    pub admin_kubeconfig_yaml: String,
    pub localstack_endpoint: String,
    pub container_ids: Vec<String>,
}

impl Drop for ContainersBackend {
    fn drop(&mut self) {
        // Removal through the engine API works with or without an async runtime; the handles
        // are then forgotten so testcontainers does not try a second, async removal.
        for id in &self.container_ids {
            force_remove(id);
        }
        std::mem::forget(self.k3s.take());
        std::mem::forget(self.localstack.take());
    }
}

/// Starts k3s (privileged, as k3s needs) and LocalStack; writes k3s's config into `dir/k3s`.
pub(crate) async fn start(dir: &Path) -> anyhow::Result<ContainersBackend> {
    docker_answers().map_err(|why| anyhow::anyhow!("containers backend unavailable: {why}"))?;
    let conf = dir.join("k3s");
    std::fs::create_dir_all(&conf)?;
    let k3s_tag = std::env::var("ESOX_E2E_K3S_TAG").unwrap_or_else(|_| K3S_TAG.into());
    eprintln!(
        "[esox-e2e] containers: starting rancher/k3s:{k3s_tag} and localstack/localstack:{LOCALSTACK_TAG}"
    );
    let (k3s, localstack) = tokio::join!(
        K3s::default()
            .with_conf_mount(&conf)
            .with_tag(k3s_tag)
            .with_privileged(true)
            .with_userns_mode("host")
            .with_startup_timeout(Duration::from_secs(300))
            .start(),
        LocalStack::default()
            .with_tag(LOCALSTACK_TAG)
            .with_env_var("SERVICES", crate::local::LOCALSTACK_SERVICES)
            .with_startup_timeout(Duration::from_secs(300))
            .start(),
    );
    let k3s = k3s.context("starting k3s (is the image tag valid? set ESOX_E2E_K3S_TAG)")?;
    let localstack = localstack.context("starting LocalStack")?;
    let container_ids = vec![k3s.id().to_owned(), localstack.id().to_owned()];
    let kube_port = k3s.get_host_port_ipv4(KUBE_SECURE_PORT).await?;
    let localstack_port = localstack.get_host_port_ipv4(4566).await?;
    let raw = k3s
        .image()
        .read_kube_config()
        .context("reading k3s.yaml from the conf mount")?;
    let mut kubeconfig: serde_yaml::Value = serde_yaml::from_str(&raw)?;
    if let Some(clusters) = kubeconfig["clusters"].as_sequence_mut() {
        for cluster in clusters {
            cluster["cluster"]["server"] =
                serde_yaml::Value::from(format!("https://127.0.0.1:{kube_port}"));
        }
    }
    Ok(ContainersBackend {
        k3s: Some(k3s),
        localstack: Some(localstack),
        admin_kubeconfig_yaml: serde_yaml::to_string(&kubeconfig)?,
        localstack_endpoint: format!("http://127.0.0.1:{localstack_port}"),
        container_ids,
    })
}
