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

pub use esox_plugin_host::policy::PluginPolicy;

impl PluginOptions {
    /// The operator's settings and egress grants from these options.
    pub fn policy(&self) -> anyhow::Result<PluginPolicy> {
        PluginPolicy::parse(&self.plugin_settings, &self.plugin_egress)
    }
}

/// A host with the embedded plugins and those of `--plugin-dir`.
pub async fn host(opts: &PluginOptions) -> anyhow::Result<PluginHost> {
    let mut config = HostConfig {
        keep_resident_bytes: opts.plugin_keep_resident_kib.saturating_mul(1024),
        ..HostConfig::default()
    };
    if let Some(dir) = &opts.plugin_cache_dir {
        config.cache_dir = Some(dir.clone());
    }
    let host = PluginHost::new(config)?;
    host.load_embedded().await?;
    if let Some(dir) = &opts.plugin_dir {
        host.load_dir(dir).await?;
    }
    Ok(host)
}
