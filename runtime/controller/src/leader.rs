//! Leader election over a `coordination.k8s.io` Lease (kube-lease-manager), for running more
//! than one replica: only the holder of the lease reconciles and writes; the others wait,
//! serve `/healthz` and `/readyz` (ready as standbys, so a rollout is not stuck on them) and
//! take over when the lease expires.
//!
//! - The holder renews the lease [`LeaderElection::renew_before`] before it expires; a holder
//!   that cannot renew (API server unreachable, lease taken) **exits at once** rather than keep
//!   writing beside a new leader. Its replacement starts as a standby.
//! - On SIGTERM the holder stops its controllers, then releases the lease, so a standby takes
//!   over without waiting for the lease to expire on its own.
//! - A killed holder (SIGKILL, node lost) is replaced when its lease expires: at most
//!   [`LeaderElection::lease_duration`] (12 s by default in `esox run`) after its last renewal,
//!   plus up to a second the standby waits to avoid colliding with another.

use std::time::Duration;

use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};

/// Where the lease lives and how long it lasts.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// The Lease's namespace (the controller's own, in a cluster).
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity in the lease (the Pod name in a cluster).
    pub identity: String,
    /// How long a lease holds after its last renewal.
    pub lease_duration: Duration,
    /// How long before expiry the holder renews.
    pub renew_before: Duration,
}

impl LeaderElection {
    /// Defaults: lease `esox-controller-leader`, 12 s, renewed 4 s before expiry.
    pub fn new(namespace: String, identity: String) -> Self {
        LeaderElection {
            namespace,
            name: "esox-controller-leader".into(),
            identity,
            lease_duration: Duration::from_secs(12),
            renew_before: Duration::from_secs(4),
        }
    }
}

/// A running election: wait for leadership, learn of its loss, release it on shutdown.
pub struct Election {
    state: tokio::sync::watch::Receiver<bool>,
    task: tokio::task::JoinHandle<Result<LeaseManager, kube_lease_manager::LeaseManagerError>>,
}

impl Election {
    /// Join the election (creating the Lease if it does not exist).
    pub async fn join(client: kube::Client, config: &LeaderElection) -> anyhow::Result<Self> {
        let manager = LeaseManagerBuilder::new(client, &config.name)
            .with_namespace(&config.namespace)
            .with_identity(&config.identity)
            .with_duration(config.lease_duration.as_secs().max(2))
            .with_grace(
                config
                    .renew_before
                    .as_secs()
                    .clamp(1, config.lease_duration.as_secs().max(2) - 1),
            )
            .with_field_manager("esox-leader-election")
            .build()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "leader election: cannot use Lease {}/{}: {e} (the controller needs get, create, update and patch on leases in that namespace)",
                    config.namespace,
                    config.name
                )
            })?;
        let (state, task) = manager.watch().await;
        Ok(Election { state, task })
    }

    /// Wait until this replica holds the lease.
    pub async fn leading(&mut self) -> anyhow::Result<()> {
        self.state
            .wait_for(|leader| *leader)
            .await
            .map(|_| ())
            .map_err(|_| anyhow::anyhow!("leader election stopped before this replica led"))
    }

    /// Resolves when this replica, having led, no longer holds the lease.
    pub async fn lost(&mut self) {
        let _ = self.state.wait_for(|leader| !*leader).await;
    }

    /// Release the lease (if held) and stop electing, within `bound`.
    pub async fn release(self, bound: Duration) {
        let Election { state, task } = self;
        drop(state);
        match tokio::time::timeout(bound, task).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader election: lease released"),
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "leader election: releasing the lease failed; it expires on its own")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "leader election task failed"),
            Err(_) => tracing::warn!(
                "leader election: the lease was not released within {bound:?}; it expires on its own"
            ),
        }
    }
}

/// The namespace the controller runs in: `POD_NAMESPACE`, else the in-cluster ServiceAccount's
/// namespace file, else `None`.
pub fn own_namespace() -> Option<String> {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
        })
}

/// This replica's identity: `POD_NAME`, else the host name, with a random suffix so two
/// processes on one host never share it.
pub fn own_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "esox".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{base}_{:08x}", nanos ^ std::process::id().rotate_left(16))
}
