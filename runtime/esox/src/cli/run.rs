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

    /// Where /metrics listens.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Where /healthz and /readyz listen.
    #[arg(long, default_value = "0.0.0.0:8082")]
    pub live_addr: SocketAddr,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    esox_controller::parse_go_duration(s).map_err(|e| e.to_string())
}

/// Run the controller until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
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
        concurrency_per_store: args
            .concurrency_per_store
            .unwrap_or(args.concurrent / 2)
            .max(1),
        concurrency_per_namespace: args
            .concurrency_per_namespace
            .unwrap_or(args.concurrent / 2)
            .max(1),
        min_refresh_interval: args.min_refresh_interval,
    };
    let http = esox_controller::HttpConfig {
        metrics_addr: args.metrics_addr,
        live_addr: args.live_addr,
    };
    esox_controller::run(client, host, policy, config, http).await?;
    Ok(ExitCode::SUCCESS)
}
