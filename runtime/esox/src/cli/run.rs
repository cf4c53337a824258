//! `esox run`: the controller. Reconciles ExternalSecrets, SecretStores and
//! ClusterSecretStores (external-secrets.io) until SIGTERM, with `/metrics` and
//! `/healthz`/`/readyz`. Flags keep ESO's names where ESO has them; the defaults are meant to
//! hold at 10,000 ExternalSecrets without tuning.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::plugins::PluginOptions;

/// Options of `esox run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub plugins: PluginOptions,

    /// Kubeconfig to use. Default: $KUBECONFIG, ~/.kube/config, else the in-cluster
    /// ServiceAccount.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long)]
    pub context: Option<String>,

    /// Watch only this namespace; empty watches all namespaces.
    #[arg(long, env = "ESOX_NAMESPACE", default_value = "")]
    pub namespace: String,

    /// Serve only stores whose spec.controller is empty or equals this class.
    #[arg(long, default_value = "default")]
    pub controller_class: String,

    /// ExternalSecret syncs in flight at once, for first syncs and for refreshes each (first
    /// syncs never wait behind refreshes).
    #[arg(long = "concurrent", default_value_t = 32)]
    pub concurrent: usize,

    /// Syncs in flight at once per store, taken before the global `--concurrent` permits: a slow
    /// or failing store can hold no more than this many of them, so other tenants keep syncing.
    /// Default: half of `--concurrent`.
    #[arg(long)]
    pub concurrency_per_store: Option<usize>,

    /// Syncs in flight at once per namespace, taken before the global `--concurrent` permits.
    /// Default: half of `--concurrent`.
    #[arg(long)]
    pub concurrency_per_namespace: Option<usize>,

    /// The shortest refresh interval esox honours (Go duration): a shorter non-zero
    /// `refreshInterval` is raised to it, protecting the backends (and their bills) from
    /// ExternalSecrets that refresh every second. 0, the default, sets no floor (as ESO).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub min_refresh_interval: Duration,

    /// How long a value read for one ExternalSecret may be reused by other ExternalSecrets
    /// reading the same remote reference from the same store (Go duration): one backend call
    /// per unique key per refresh wave instead of one per ExternalSecret. Also capped at a tenth
    /// of the reader's refreshInterval; an edited or force-synced ExternalSecret always reads
    /// the backend. 0 turns it off.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub coalesce_window: Duration,

    /// Which Events a successful sync posts: `all` (ESO's: a Normal `Created` or `Updated` for
    /// every write of a target) or `failures` (only the Warning Events of failed syncs; success
    /// shows in the ExternalSecret's status and the metrics). At start-up with N new
    /// ExternalSecrets, `failures` spares the API server N of its 3N writes.
    #[arg(long, default_value = "all", value_parser = esox_controller::SyncEvents::parse)]
    pub sync_events: esox_controller::SyncEvents,

    /// Client-side cap on Kubernetes API requests per second (ESO's flag). 0, the default, sets
    /// none: the API server's priority and fairness protects it, and a low cap is what makes ESO
    /// users wait at a few thousand ExternalSecrets.
    #[arg(long, default_value_t = 0.0)]
    pub client_qps: f64,

    /// Requests allowed in a burst above `--client-qps` (default: twice the QPS).
    #[arg(long, default_value_t = 0)]
    pub client_burst: u32,

    /// How often stores are validated again when they set no refreshInterval (Go duration).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub store_requeue_interval: Duration,

    /// Refuse to sync from stores that are not Ready.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_flood_gate: bool,

    /// Where /metrics listens (`HOST:PORT`, or ESO's `:PORT` for all addresses).
    #[arg(long, default_value = "0.0.0.0:8080", value_parser = parse_addr)]
    pub metrics_addr: SocketAddr,

    /// Where /healthz and /readyz listen (`HOST:PORT` or `:PORT`).
    #[arg(long, default_value = "0.0.0.0:8082", value_parser = parse_addr)]
    pub live_addr: SocketAddr,

    /// Run as one of several replicas: only the holder of a coordination.k8s.io Lease
    /// reconciles; the others stand by (ready, serving health) and take over when it expires.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_leader_election: bool,

    /// The Lease's name.
    #[arg(long, default_value = "esox-controller-leader")]
    pub leader_election_id: String,

    /// The Lease's namespace. Default: the controller's own (POD_NAMESPACE, or the in-cluster
    /// ServiceAccount's namespace), else `default`.
    #[arg(long)]
    pub leader_election_namespace: Option<String>,

    /// How long the lease holds after its last renewal (Go duration); a killed leader is
    /// replaced within about this (ESO's default is 15s; 12s keeps a failover under 15s).
    #[arg(long, default_value = "12s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,

    /// The leader renews the lease when this much of it has passed (Go duration; ESO's name).
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    pub leader_election_renew_deadline: Duration,

    /// ESO's retry period. Accepted so ESO's Deployment arguments work; esox's standbys retry
    /// when the lease expires instead (logged at start when set).
    #[arg(long, value_parser = parse_duration)]
    pub leader_election_retry_period: Option<Duration>,

    #[command(flatten)]
    pub eso: super::eso_flags::EsoFlags,

    /// The longest a SIGTERM may take: in-flight syncs finish and the lease is released, and
    /// whatever is still running after this is abandoned and the process exits (Go duration;
    /// keep it below the Pod's terminationGracePeriodSeconds).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

/// `HOST:PORT`, or `:PORT` (Go's form, as ESO's flags take it) for every address.
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_string(),
    };
    full.parse()
        .map_err(|e| format!("{s:?} is not HOST:PORT or :PORT: {e}"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    esox_controller::parse_go_duration(s).map_err(|e| e.to_string())
}

/// Run the controller until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let ignored = args.eso.check().map_err(|e| anyhow::anyhow!(e))?;
    if !ignored.is_empty() {
        tracing::info!(flags = %ignored.join(" "), "ESO flags accepted with no effect in esox (see docs/operations.md)");
    }
    let policy = args.plugins.policy()?;
    let host = crate::plugins::host(&args.plugins)
        .await
        .context("loading plugins")?;
    for meta in host.plugins() {
        tracing::info!(plugin = %meta.name, version = %meta.version, origin = %meta.origin, "plugin loaded");
    }
    let rate_limit =
        esox_controller::rate_limit::RateLimitLayer::new(args.client_qps, args.client_burst);
    let client = esox_controller::kube_client(
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
        rate_limit,
    )
    .await?;
    let config = esox_controller::Config {
        namespace: Some(args.namespace).filter(|n| !n.is_empty()),
        controller_class: args.controller_class,
        concurrency: args.concurrent,
        store_requeue_interval: args.store_requeue_interval,
        enable_flood_gate: args.enable_flood_gate,
        allow_generic_targets: args.eso.unsafe_allow_generic_targets == Some(true),
        concurrency_per_store: args
            .concurrency_per_store
            .unwrap_or(args.concurrent / 2)
            .max(1),
        concurrency_per_namespace: args
            .concurrency_per_namespace
            .unwrap_or(args.concurrent / 2)
            .max(1),
        min_refresh_interval: args.min_refresh_interval,
        coalesce_window: args.coalesce_window,
        sync_events: args.sync_events,
    };
    let http = esox_controller::HttpConfig {
        metrics_addr: args.metrics_addr,
        live_addr: args.live_addr,
    };
    let leader_election = args.enable_leader_election.then(|| {
        if args.leader_election_retry_period.is_some() {
            tracing::info!("--leader-election-retry-period is accepted for ESO's arguments and not used: standbys try again when the lease expires");
        }
        let namespace = args
            .leader_election_namespace
            .clone()
            .or_else(esox_controller::leader::own_namespace)
            .unwrap_or_else(|| "default".into());
        let mut le = esox_controller::LeaderElection::new(
            namespace,
            esox_controller::leader::own_identity(),
        );
        le.name = args.leader_election_id.clone();
        le.lease_duration = args.leader_election_lease_duration;
        le.renew_before = args
            .leader_election_lease_duration
            .saturating_sub(args.leader_election_renew_deadline);
        le
    });
    spawn_shutdown_deadline(args.shutdown_timeout);
    esox_controller::run(client, host, policy, config, http, leader_election).await?;
    Ok(ExitCode::SUCCESS)
}

/// After SIGTERM (or Ctrl-C), the process ends within `bound` whatever is still running: a
/// hung plugin call or a stuck write must not keep a Pod in Terminating until it is killed.
fn spawn_shutdown_deadline(bound: Duration) {
    tokio::spawn(async move {
        esox_controller::shutdown_signal().await;
        tracing::info!(bound = ?bound, "shutdown requested; in-flight syncs finish, then esox exits");
        tokio::time::sleep(bound).await;
        tracing::warn!(bound = ?bound, "shutdown did not finish in time; exiting now");
        std::process::exit(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_host_port_and_esos_colon_port() {
        assert_eq!(
            parse_addr(":8080").unwrap(),
            "0.0.0.0:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_addr("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse::<SocketAddr>().unwrap()
        );
        assert!(parse_addr("8080").unwrap_err().contains(":PORT"));
    }

    #[test]
    fn esos_leader_election_arguments_parse() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            run: RunArgs,
        }
        let w = Wrapper::try_parse_from([
            "esox",
            "--enable-leader-election",
            "--leader-election-id",
            "external-secrets-controller",
            "--leader-election-lease-duration",
            "20s",
            "--leader-election-retry-period",
            "2s",
            "--metrics-addr=:8080",
        ])
        .unwrap();
        assert!(w.run.enable_leader_election);
        assert_eq!(w.run.leader_election_id, "external-secrets-controller");
        assert_eq!(
            w.run.leader_election_lease_duration,
            Duration::from_secs(20)
        );
        let w = Wrapper::try_parse_from(["esox", "--enable-leader-election=false"]).unwrap();
        assert!(!w.run.enable_leader_election);
    }
}
