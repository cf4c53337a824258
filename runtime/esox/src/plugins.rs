//! Assembling the plugin host from command-line options: which plugins are loaded, the
//! operator's settings for each plugin, and the egress each store's plugin gets.

use std::path::PathBuf;

use esox_plugin_host::{HostConfig, PluginHost};

/// Plugin options shared by every command that runs plugins.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginOptions {
    /// Also load every `*.wasm` plugin in this directory (a plugin with the name of an embedded
    /// one replaces it).
    #[arg(long, env = "ESOX_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,

    /// An operator setting for a plugin, `PLUGIN:KEY=VALUE` (repeatable), e.g.
    /// `aws:endpoint=http://localstack:4566`. Settings named `endpoint` or `endpoint.*` also
    /// open their origin in the plugin's egress allow-list.
    #[arg(long = "plugin-setting", value_name = "PLUGIN:KEY=VALUE")]
    pub plugin_settings: Vec<String>,

    /// Grant a plugin an egress origin, `PLUGIN=scheme://host[:port]` (repeatable; `*.` wildcards
    /// allowed). Plugins loaded from files get no egress unless granted here.
    #[arg(long = "plugin-egress", value_name = "PLUGIN=ORIGIN")]
    pub plugin_egress: Vec<String>,

    /// Plugins that may use the controller's own identity (IRSA web identity, EKS Pod Identity,
    /// AWS environment credentials) for stores with no `auth`: plugin names (repeatable or
    /// comma-separated), or `none`. Default: the embedded `aws` plugin only.
    #[arg(
        long = "plugin-ambient-identity",
        env = "ESOX_PLUGIN_AMBIENT_IDENTITY",
        value_name = "PLUGIN"
    )]
    pub plugin_ambient_identity: Vec<String>,

    /// Plugins that may ask for ServiceAccount tokens with the API server's own audience, for a
    /// store's ServiceAccount reference that names no `audiences` (ESO mints such tokens for its
    /// vault and kubernetes providers): plugin names (repeatable or comma-separated), or `none`.
    /// Default: the embedded `kubernetes` and `vault` plugins. A server that receives such a
    /// token could use it against this cluster's API as that ServiceAccount; `none` makes every
    /// store name the audiences its server expects.
    #[arg(
        long = "plugin-api-audience-tokens",
        env = "ESOX_PLUGIN_API_AUDIENCE_TOKENS",
        value_name = "PLUGIN"
    )]
    pub plugin_api_audience_tokens: Vec<String>,

    /// The longest ServiceAccount token a plugin may ask the host for, in seconds.
    #[arg(
        long,
        env = "ESOX_PLUGIN_MAX_TOKEN_SECONDS",
        value_name = "SECONDS",
        default_value_t = 3600
    )]
    pub plugin_max_token_seconds: u64,

    /// Plugin instances alive at once for the stores of one namespace (their share of the pool).
    #[arg(
        long,
        env = "ESOX_PLUGIN_INSTANCES_PER_NAMESPACE",
        value_name = "N",
        default_value_t = 64
    )]
    pub plugin_instances_per_namespace: usize,

    /// Seconds an unused warm plugin instance is kept before its slot is returned.
    #[arg(
        long,
        env = "ESOX_PLUGIN_IDLE_SECONDS",
        value_name = "SECONDS",
        default_value_t = 300
    )]
    pub plugin_idle_seconds: u64,

    /// Where precompiled plugins are cached (default: $ESOX_CACHE_DIR/wasm or ~/.cache/esox/wasm).
    #[arg(long, env = "ESOX_PLUGIN_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,

    /// KiB of dirty plugin memory each pooled instance slot keeps resident for the next
    /// instance (restored in place on Linux 6.7+, which halves the cost of a fresh instance).
    /// 0 returns every page to the OS when an instance ends: less RSS, slower recycling.
    #[arg(long, env = "ESOX_PLUGIN_KEEP_RESIDENT_KIB", value_name = "KIB",
          default_value_t = esox_plugin_host::KEEP_RESIDENT_DEFAULT / 1024)]
    pub plugin_keep_resident_kib: usize,
}

pub use esox_controller::plugin_policy::PluginPolicy;

impl PluginOptions {
    /// The operator's settings and egress grants from these options.
    pub fn policy(&self) -> anyhow::Result<PluginPolicy> {
        PluginPolicy::parse(&self.plugin_settings, &self.plugin_egress)?
            .with_ambient_identity(&self.plugin_ambient_identity)
            .and_then(|p| p.with_api_audience_tokens(&self.plugin_api_audience_tokens))
    }
}

/// A host with the embedded plugins and those of `--plugin-dir`.
pub async fn host(opts: &PluginOptions) -> anyhow::Result<PluginHost> {
    let mut config = HostConfig {
        keep_resident_bytes: opts.plugin_keep_resident_kib.saturating_mul(1024),
        ..HostConfig::default()
    };
    if opts.plugin_max_token_seconds < 600 {
        anyhow::bail!(
            "--plugin-max-token-seconds {}: the Kubernetes TokenRequest API mints tokens of at least 600 s",
            opts.plugin_max_token_seconds
        );
    }
    config.limits.max_token_lifetime =
        std::time::Duration::from_secs(opts.plugin_max_token_seconds);
    config.limits.instances_per_namespace = opts.plugin_instances_per_namespace.max(1);
    config.limits.idle_timeout = std::time::Duration::from_secs(opts.plugin_idle_seconds.max(1));
    if let Some(dir) = &opts.plugin_cache_dir {
        config.cache_dir = Some(dir.clone());
    }
    let host = PluginHost::new(config)?;
    host.load_embedded(esox_plugins_bundle::PLUGINS).await?;
    let released = esox_plugins_bundle::release_resident();
    tracing::debug!(
        bytes = released,
        "embedded plugin bytes released from resident memory"
    );
    if let Some(dir) = &opts.plugin_dir {
        host.load_dir(dir).await?;
    }
    Ok(host)
}
