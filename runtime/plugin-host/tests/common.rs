//! Shared set-up for the plugin host's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use esox_plugin_host::{
    EgressGrant, HostConfig, HostServices, Limits, NoServices, PluginHost, PluginOrigin,
    StoreClient, StoreContext, StoreSpec,
};

/// A fixture or first-party plugin component built by build.rs.
pub fn wasm(file: &str) -> PathBuf {
    PathBuf::from(esox_plugins_bundle::WASM_DIR).join(file)
}

/// Tight limits so hostile fixtures are stopped quickly.
pub fn test_limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        cpu_time: Duration::from_millis(500),
        call_timeout: Duration::from_secs(3),
        instances_per_store: 2,
        ..Limits::default()
    }
}

/// One precompile cache per test binary: the first test compiles, the others deserialize.
fn shared_cache() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .join("wasm")
}

/// A host with the embedded plugins and the hostile fixture loaded.
pub async fn host_with(limits: Limits) -> (PluginHost, ()) {
    let host = host_from(HostConfig {
        limits,
        max_instances: 64,
        ..Default::default()
    })
    .await;
    (host, ())
}

/// A host built from `config` (its cache dir replaced by the shared one) with the embedded
/// plugins and the hostile fixture loaded.
pub async fn host_from(config: HostConfig) -> PluginHost {
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(shared_cache()),
        ..config
    })
    .unwrap();
    host.load_embedded(esox_plugins_bundle::PLUGINS)
        .await
        .unwrap();
    host.load(
        PluginOrigin::File(wasm("esox_fixture_hostile.wasm")),
        &std::fs::read(wasm("esox_fixture_hostile.wasm")).unwrap(),
    )
    .await
    .unwrap();
    host
}

/// The operator's egress rules for a test store (nothing else is granted).
pub fn egress(rules: &[&str]) -> EgressGrant {
    let rules: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
    EgressGrant::new(false, &[], &[], &rules).unwrap()
}

/// A SecretStore `test/<plugin>` with these egress rules and no cluster behind its broker.
pub fn store(
    host: &PluginHost,
    plugin: &str,
    config: serde_json::Value,
    egress: EgressGrant,
) -> StoreClient {
    store_in(
        host,
        StoreContext::secret_store("test", plugin),
        plugin,
        config,
        egress,
        Arc::new(NoServices),
    )
}

/// A store with its context and broker services given.
pub fn store_in(
    host: &PluginHost,
    context: StoreContext,
    plugin: &str,
    config: serde_json::Value,
    egress: EgressGrant,
    services: Arc<dyn HostServices>,
) -> StoreClient {
    host.open_store(StoreSpec {
        context,
        plugin: plugin.into(),
        config,
        settings: vec![],
        egress,
        services,
        ambient: None,
        api_audience_tokens: false,
    })
    .unwrap()
}
