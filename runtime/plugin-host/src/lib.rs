//! The plugin host: runs provider plugins (WebAssembly components) in a sandbox.
//!
//! ```text
//! PluginHost ── load(bytes) ──► Plugin (compiled once, InstancePre, metadata from `info`)
//!     │
//!     └─ open_store(StoreSpec) ──► StoreClient ── pool of warm instances, one store only
//!                                      └─ get_secret / get_secrets / get_secret_map / ...
//! ```
//!
//! Why it is shaped like this:
//! - **Compile once.** Compiling a component takes ~1 s; deserializing a precompiled one takes
//!   milliseconds. Artefacts are cached by the component's sha256 and the engine's
//!   compatibility hash, in a directory only this host writes ([`cache`]).
//! - **Instances per store, never shared.** A store's calls run on a small pool of instances
//!   of its own. An instance keeps its opened `client` (and so the plugin's sessions and
//!   credentials) across calls, and is thrown away after a trap, a timeout, a limit, or
//!   [`Limits::calls_per_instance`] calls. With the pooling allocator, `InstancePre` and slots
//!   that keep their pages resident ([`HostConfig::keep_resident_bytes`]), a new instance
//!   costs ~30 µs, so recycling is cheap (`benches/plugin_call.rs`).
//! - **Bounded.** Memory per instance ([`Limits::memory_bytes`]), wasm CPU per call
//!   ([`Limits::cpu_time`], epoch-based), wall time per call including host I/O
//!   ([`Limits::call_timeout`]), size of what a call may return ([`Limits::max_response_bytes`]),
//!   and outgoing HTTP through [`egress`] only.
//! - **Contract versions** are read from the binary before compiling ([`contract`]).

pub mod cache;
pub mod contract;
pub mod egress;
pub mod embedded;
mod instance;
pub mod metrics;
pub mod policy;
pub mod services;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use esox_provider::{FindQuery, MetadataPolicy, ProviderError, RemoteRef, SecretMap};
use sha2::{Digest, Sha256};
use wasmtime::component::{Linker, ResourceAny};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use contract::{Contract, v0_1};
pub use egress::{EgressPolicy, EgressRule, HttpLimits};
use instance::{CpuBudget, InstanceState};
pub use metrics::HostMetrics;
pub use services::{
    HostServices, LocalServices, NamespaceRules, NoServices, ServiceAccountToken, TokenRequest,
};

/// How often the engine's epoch advances: the granularity of the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The default of [`HostConfig::keep_resident_bytes`].
pub const KEEP_RESIDENT_DEFAULT: usize = 1 << 20;

/// What one plugin call may use.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Linear memory per instance.
    pub memory_bytes: usize,
    /// Wasm execution time per call (host I/O excluded), in [`EPOCH_TICK`] steps.
    pub cpu_time: Duration,
    /// Wall time per call, including waiting on the network and the host.
    pub call_timeout: Duration,
    /// Bytes one call may return in total. A Kubernetes Secret holds at most 1 MiB, so more
    /// can never be used.
    pub max_response_bytes: usize,
    /// Instances a store may run at once (its parallelism).
    pub instances_per_store: usize,
    /// Calls an instance serves before it is recycled; 1 means a fresh instance per call.
    pub calls_per_instance: u32,
    /// Limits on the plugin's outgoing HTTP.
    pub http: HttpLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(2),
            call_timeout: Duration::from_secs(30),
            max_response_bytes: 1 << 20,
            instances_per_store: 4,
            calls_per_instance: 10_000,
            http: HttpLimits::default(),
        }
    }
}

/// Host-wide settings.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub limits: Limits,
    /// Where precompiled artefacts are kept; `None` compiles in memory on every start.
    pub cache_dir: Option<PathBuf>,
    /// Instances alive at once across all stores (the pooling allocator's size).
    pub max_instances: u32,
    /// Dirty linear-memory bytes each pooled slot keeps resident when its instance is dropped
    /// (a slot's tables and fiber stack keep up to 1/16 of it). On Linux 6.7+ the dirty pages
    /// are found with the `PAGEMAP_SCAN` ioctl and restored in place, so the next instance in
    /// the slot takes no page faults and the reset needs no `madvise`: this halves the cost
    /// of a fresh instance (`benches/plugin_call.rs` measures both). The price is RSS: up to
    /// this much per recently used slot. 0 returns every page to the OS on reset.
    pub keep_resident_bytes: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            limits: Limits::default(),
            cache_dir: cache::default_dir(),
            max_instances: 512,
            keep_resident_bytes: KEEP_RESIDENT_DEFAULT,
        }
    }
}

/// Errors loading a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{origin}: {source}")]
    Contract {
        origin: String,
        source: contract::ContractError,
    },
    #[error("{origin}: cannot compile the component: {message}")]
    Compile { origin: String, message: String },
    #[error(
        "{origin}: the component cannot be linked (it imports something esox does not grant, such as wasi:sockets): {message}"
    )]
    Link { origin: String, message: String },
    #[error("{origin}: `info` failed: {message}")]
    Info { origin: String, message: String },
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a plugin came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginOrigin {
    /// Built into the esox binary.
    Embedded,
    /// Loaded from a file (`--plugin-dir`).
    File(PathBuf),
}

impl std::fmt::Display for PluginOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginOrigin::Embedded => f.write_str("embedded"),
            PluginOrigin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// What is known about a loaded plugin.
#[derive(Clone, Debug)]
pub struct PluginMeta {
    pub name: String,
    pub version: String,
    pub description: String,
    pub contract: semver::Version,
    pub capabilities: Vec<&'static str>,
    pub config_schema: String,
    pub default_egress: Vec<String>,
    pub sha256: String,
    pub origin: PluginOrigin,
    /// Whether the component was compiled now (true) or loaded precompiled from the cache.
    pub compiled: bool,
    /// Time to compile or deserialize.
    pub load_time: Duration,
}

/// A loaded plugin, ready to instantiate.
pub struct Plugin {
    pub meta: PluginMeta,
    pre: v0_1::ProviderPluginPre<InstanceState>,
    contract: Contract,
}

struct HostInner {
    engine: Engine,
    linker: Linker<InstanceState>,
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    config: HostConfig,
    metrics: HostMetrics,
    ticker_stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for HostInner {
    fn drop(&mut self) {
        self.ticker_stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The plugin host. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

impl PluginHost {
    /// A host with its engine, pooling allocator and epoch ticker.
    pub fn new(config: HostConfig) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 4)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .max_memories_per_component(2)
            .max_tables_per_component(8)
            .max_core_instances_per_component(16)
            .max_memory_size(config.limits.memory_bytes)
            // See `HostConfig::keep_resident_bytes`. Without the ioctl (other OSes, Linux
            // < 6.7) wasmtime falls back to resetting the kept bytes with `memset`.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(config.keep_resident_bytes)
            .table_keep_resident(config.keep_resident_bytes / 16)
            .async_stack_keep_resident(config.keep_resident_bytes / 16);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Reserve only what the memory cap can use (plus guard), so hundreds of pooled
            // slots stay within a modest virtual address budget.
            .memory_reservation(config.limits.memory_bytes as u64)
            .memory_guard_size(32 << 20)
            .memory_reservation_for_growth(0);
        let engine = Engine::new(&wasm)?;
        let linker = instance::linker(&engine)?;
        let ticker_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let engine = engine.weak();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("esox-epoch".into())
                .spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        match engine.upgrade() {
                            Some(e) => e.increment_epoch(),
                            None => break,
                        }
                    }
                })?;
        }
        Ok(PluginHost {
            inner: Arc::new(HostInner {
                engine,
                linker,
                plugins: RwLock::new(BTreeMap::new()),
                config,
                metrics: HostMetrics::default(),
                ticker_stop,
            }),
        })
    }

    /// The host's metrics (register them with [`HostMetrics::register`]).
    pub fn metrics(&self) -> &HostMetrics {
        &self.inner.metrics
    }

    /// The host's limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    /// Load the first-party plugins built into this binary.
    pub async fn load_embedded(&self) -> Result<Vec<PluginMeta>, LoadError> {
        let mut out = Vec::new();
        for (_, bytes) in embedded::PLUGINS {
            out.push(self.load(PluginOrigin::Embedded, bytes).await?);
        }
        Ok(out)
    }

    /// Load every `*.wasm` in a directory (sorted by name). A plugin with the name of an
    /// embedded one replaces it.
    pub async fn load_dir(&self, dir: &Path) -> Result<Vec<PluginMeta>, LoadError> {
        let read = |e| LoadError::Read {
            path: dir.to_path_buf(),
            source: e,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            out.push(self.load_file(&p).await?);
        }
        Ok(out)
    }

    /// Load one plugin file.
    pub async fn load_file(&self, path: &Path) -> Result<PluginMeta, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        self.load(PluginOrigin::File(path.to_path_buf()), &bytes)
            .await
    }

    /// Read a plugin's metadata without registering it (`esox plugin inspect`).
    pub async fn inspect(
        &self,
        origin: PluginOrigin,
        bytes: &[u8],
    ) -> Result<PluginMeta, LoadError> {
        Ok(self.prepare(origin, bytes).await?.meta.clone())
    }

    /// Load a plugin from bytes and register it under its name.
    pub async fn load(&self, origin: PluginOrigin, bytes: &[u8]) -> Result<PluginMeta, LoadError> {
        let plugin = self.prepare(origin, bytes).await?;
        let meta = plugin.meta.clone();
        let mut plugins = self
            .inner
            .plugins
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(old) = plugins.get(&meta.name) {
            tracing::warn!(plugin = %meta.name, old = %old.meta.origin, new = %meta.origin, "plugin replaces one with the same name");
        }
        plugins.insert(meta.name.clone(), plugin);
        Ok(meta)
    }

    async fn prepare(&self, origin: PluginOrigin, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let origin_s = origin.to_string();
        // Refuse unsupported contracts before spending a second compiling.
        let (contract, version) =
            contract::declared_version(bytes).map_err(|source| LoadError::Contract {
                origin: origin_s.clone(),
                source,
            })?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        let started = Instant::now();
        let (component, compiled) = cache::load_or_compile(
            &self.inner.engine,
            self.inner.config.cache_dir.as_deref(),
            &sha256,
            bytes,
        )
        .map_err(|e| LoadError::Compile {
            origin: origin_s.clone(),
            message: format!("{e:#}"),
        })?;
        let load_time = started.elapsed();
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .and_then(v0_1::ProviderPluginPre::new)
            .map_err(|e| LoadError::Link {
                origin: origin_s.clone(),
                message: format!("{e:#}"),
            })?;
        let mut plugin = Plugin {
            meta: PluginMeta {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                contract: version,
                capabilities: Vec::new(),
                config_schema: String::new(),
                default_egress: Vec::new(),
                sha256,
                origin,
                compiled,
                load_time,
            },
            pre,
            contract,
        };
        let info = self
            .plugin_info(&plugin)
            .await
            .map_err(|e| LoadError::Info {
                origin: origin_s,
                message: e.to_string(),
            })?;
        plugin.meta.name = info.name;
        plugin.meta.version = info.version;
        plugin.meta.description = info.description;
        plugin.meta.config_schema = info.config_schema;
        plugin.meta.default_egress = info.default_egress;
        let caps = info.capabilities;
        use v0_1::esox::provider::types::Capabilities as C;
        for (flag, name) in [(C::READ, "read"), (C::FIND, "find"), (C::WRITE, "write")] {
            if caps.contains(flag) {
                plugin.meta.capabilities.push(name);
            }
        }
        Ok(Arc::new(plugin))
    }

    async fn plugin_info(
        &self,
        plugin: &Plugin,
    ) -> Result<v0_1::esox::provider::types::PluginInfo, ProviderError> {
        let mut inst = self.new_store(
            plugin,
            "(load)",
            Arc::new(NoServices),
            EgressPolicy::deny_all(),
        );
        let limits = &self.inner.config.limits;
        let fut = async {
            let bindings = plugin.pre.instantiate_async(&mut inst).await?;
            bindings.esox_provider_provider().call_info(&mut inst).await
        };
        match tokio::time::timeout(limits.call_timeout, fut).await {
            Ok(Ok(info)) => Ok(info),
            Ok(Err(e)) => Err(classify_trap(&e, &inst, limits)),
            Err(_) => Err(ProviderError::Unavailable(format!(
                "timed out after {:?}",
                limits.call_timeout
            ))),
        }
    }

    /// The loaded plugins, by name.
    pub fn plugins(&self) -> Vec<PluginMeta> {
        self.inner
            .plugins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|p| p.meta.clone())
            .collect()
    }

    /// A loaded plugin by provider name.
    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.inner
            .plugins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// A store for one new instance, its CPU budget set for the first call.
    fn new_store(
        &self,
        plugin: &Plugin,
        store_id: &str,
        services: Arc<dyn HostServices>,
        policy: EgressPolicy,
    ) -> Store<InstanceState> {
        let limits = &self.inner.config.limits;
        let metrics = self.inner.metrics.clone();
        let plugin_name: Arc<str> = Arc::from(plugin.meta.name.as_str());
        let store_name: Arc<str> = Arc::from(store_id);
        let on_denial: egress::DenialSink = {
            let plugin_name = plugin_name.clone();
            let store_name = store_name.clone();
            Arc::new(move |d| {
                metrics
                    .egress_denied
                    .get_or_create(&metrics::PluginLabels {
                        plugin: plugin_name.to_string(),
                    })
                    .inc();
                tracing::warn!(plugin = %plugin_name, store = %store_name, denial = %d, "egress denied");
            })
        };
        let state = InstanceState::new(
            plugin_name,
            store_name,
            services,
            Arc::new(policy),
            limits.http.clone(),
            on_denial,
            limits.memory_bytes,
        );
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.memory);
        store.epoch_deadline_callback(instance::on_epoch);
        reset_budget(&mut store, limits);
        store
    }

    /// Check a store config with the plugin, without contacting the backend.
    pub async fn validate_config(
        &self,
        plugin: &str,
        config: &serde_json::Value,
    ) -> Result<(), ProviderError> {
        let p = self
            .plugin(plugin)
            .ok_or_else(|| unknown_plugin(plugin, &self.plugins()))?;
        let mut store = self.new_store(
            &p,
            "(validate-config)",
            Arc::new(NoServices),
            EgressPolicy::deny_all(),
        );
        let limits = &self.inner.config.limits;
        let config = config.to_string();
        let fut = async {
            let bindings = p.pre.instantiate_async(&mut store).await?;
            bindings
                .esox_provider_provider()
                .call_validate_config(&mut store, &config)
                .await
        };
        match tokio::time::timeout(limits.call_timeout, fut).await {
            Ok(Ok(r)) => r.map_err(from_wit),
            Ok(Err(e)) => Err(classify_trap(&e, &store, limits)),
            Err(_) => Err(ProviderError::Unavailable(format!(
                "validate-config timed out after {:?}",
                limits.call_timeout
            ))),
        }
    }

    /// Where a fresh instance's time goes, for the plugin-call benchmark only: new store,
    /// instantiate, `open` on `config`, `get-secret` of `remote`, and dropping the store
    /// (which returns the pooled slots). Not part of the API.
    #[doc(hidden)]
    pub async fn fresh_instance_phases(
        &self,
        plugin: &str,
        config: &str,
        remote: &RemoteRef,
    ) -> anyhow::Result<[std::time::Duration; 5]> {
        let p = self
            .plugin(plugin)
            .ok_or_else(|| anyhow::anyhow!("no plugin {plugin}"))?;
        let t0 = Instant::now();
        let mut store = self.new_store(
            &p,
            "(bench)",
            Arc::new(NoServices),
            EgressPolicy::deny_all(),
        );
        let t1 = Instant::now();
        let bindings = p.pre.instantiate_async(&mut store).await?;
        let t2 = Instant::now();
        let client = bindings.esox_provider_provider().client();
        let this = client
            .call_open(&mut store, config, &[])
            .await?
            .map_err(|e| anyhow::anyhow!("open: {}", from_wit(e)))?;
        let t3 = Instant::now();
        client
            .call_get_secret(&mut store, this, &to_wit_ref(remote))
            .await?
            .map_err(|e| anyhow::anyhow!("get-secret: {}", from_wit(e)))?;
        let t4 = Instant::now();
        drop(store);
        let t5 = Instant::now();
        Ok([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4])
    }

    /// Open a client for one store. Nothing is instantiated until the first call.
    pub fn open_store(&self, spec: StoreSpec) -> Result<StoreClient, ProviderError> {
        let plugin = self
            .plugin(&spec.plugin)
            .ok_or_else(|| unknown_plugin(&spec.plugin, &self.plugins()))?;
        let permits = self.inner.config.limits.instances_per_store.max(1);
        Ok(StoreClient {
            host: self.clone(),
            plugin,
            config_json: Arc::from(spec.config.to_string()),
            spec: Arc::new(spec),
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(permits),
        })
    }
}

fn unknown_plugin(name: &str, loaded: &[PluginMeta]) -> ProviderError {
    let names: Vec<&str> = loaded.iter().map(|m| m.name.as_str()).collect();
    ProviderError::InvalidConfig(format!(
        "no plugin provides `spec.provider.{name}` (loaded: {}); add one with --plugin-dir",
        names.join(", ")
    ))
}

fn reset_budget(store: &mut Store<InstanceState>, limits: &Limits) {
    let ticks = (limits.cpu_time.as_millis() / EPOCH_TICK.as_millis().max(1)).max(1) as u64;
    store.data_mut().cpu = CpuBudget {
        ticks: 0,
        budget: ticks,
    };
    store.set_epoch_deadline(1);
}

/// Turn a trap into the error users see, naming the limit that was hit.
fn classify_trap(
    err: &wasmtime::Error,
    store: &Store<InstanceState>,
    limits: &Limits,
) -> ProviderError {
    let state = store.data();
    if state.memory.hit {
        ProviderError::Internal(format!(
            "plugin exceeded its memory limit of {} MiB",
            limits.memory_bytes >> 20
        ))
    } else if state.cpu.exhausted() {
        ProviderError::Internal(format!(
            "plugin exceeded its CPU budget of {:?} per call",
            limits.cpu_time
        ))
    } else {
        let trap = err
            .downcast_ref::<wasmtime::Trap>()
            .map(|t| t.to_string())
            .unwrap_or_else(|| format!("{}", err.root_cause()));
        ProviderError::Internal(format!("plugin crashed: {trap}"))
    }
}

fn trap_kind(err: &ProviderError) -> &'static str {
    match err {
        ProviderError::Internal(m) if m.contains("memory limit") => "memory_limit",
        ProviderError::Internal(m) if m.contains("CPU budget") => "cpu_limit",
        _ => "trap",
    }
}

fn from_wit(e: v0_1::esox::provider::types::Error) -> ProviderError {
    use v0_1::esox::provider::types::Error as W;
    match e {
        W::NotFound => ProviderError::NotFound,
        W::NotModified => ProviderError::NotModified,
        W::InvalidConfig(m) => ProviderError::InvalidConfig(m),
        W::PermissionDenied(m) => ProviderError::PermissionDenied(m),
        W::Unavailable(m) => ProviderError::Unavailable(m),
        W::Unsupported(m) => ProviderError::Unsupported(m),
        W::Internal(m) => ProviderError::Internal(m),
    }
}

fn error_status(e: &ProviderError) -> &'static str {
    match e {
        ProviderError::NotFound => "not_found",
        ProviderError::NotModified => "not_modified",
        ProviderError::InvalidConfig(_) => "invalid_config",
        ProviderError::PermissionDenied(_) => "permission_denied",
        ProviderError::Unavailable(_) => "unavailable",
        ProviderError::Unsupported(_) => "unsupported",
        ProviderError::Internal(_) => "internal",
    }
}

/// What a store needs to run its plugin.
#[derive(Clone)]
pub struct StoreSpec {
    /// Names the store in logs and metrics (`SecretStore/ns/name`, `ClusterSecretStore/name`).
    pub identity: String,
    /// The provider name (`spec.provider.<name>`).
    pub plugin: String,
    /// `spec.provider.<name>` as JSON.
    pub config: serde_json::Value,
    /// Operator settings for the plugin (endpoints, ...).
    pub settings: Vec<(String, String)>,
    /// Origins the plugin may reach.
    pub egress: EgressPolicy,
    /// The auth broker for this store.
    pub services: Arc<dyn HostServices>,
}

/// Whether a store is usable, as the plugin reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    Ready,
    Unknown,
}

struct WarmInstance {
    store: Store<InstanceState>,
    bindings: v0_1::ProviderPlugin,
    client: ResourceAny,
    calls: u32,
}

/// The one place that calls into a plugin, for every contract version (today only 0.1).
enum Call<'a> {
    Validate,
    GetSecret(&'a RemoteRef),
    GetSecrets(&'a [RemoteRef]),
    GetSecretMap(&'a RemoteRef),
    GetAllSecrets(&'a FindQuery),
}

impl Call<'_> {
    fn name(&self) -> &'static str {
        match self {
            Call::Validate => "validate",
            Call::GetSecret(_) => "get-secret",
            Call::GetSecrets(_) => "get-secrets",
            Call::GetSecretMap(_) => "get-secret-map",
            Call::GetAllSecrets(_) => "get-all-secrets",
        }
    }
}

enum Reply {
    Validation(Result<Validation, ProviderError>),
    Value(Result<Vec<u8>, ProviderError>),
    Values(Vec<Result<Vec<u8>, ProviderError>>),
    Map(Result<SecretMap, ProviderError>),
}

impl Reply {
    fn bytes(&self) -> usize {
        match self {
            Reply::Validation(_) => 0,
            Reply::Value(v) => v.as_ref().map_or(0, Vec::len),
            Reply::Values(vs) => vs.iter().map(|v| v.as_ref().map_or(0, Vec::len)).sum(),
            Reply::Map(m) => m
                .as_ref()
                .map_or(0, |m| m.iter().map(|(k, v)| k.len() + v.len()).sum()),
        }
    }
}

fn to_wit_ref(r: &RemoteRef) -> v0_1::esox::provider::types::RemoteRef {
    use v0_1::esox::provider::types::MetadataPolicy as M;
    v0_1::esox::provider::types::RemoteRef {
        key: r.key.clone(),
        property: r.property.clone(),
        version: r.version.clone(),
        metadata_policy: match r.metadata_policy {
            MetadataPolicy::None => M::None,
            MetadataPolicy::Fetch => M::Fetch,
        },
    }
}

fn map_from_wit(m: Vec<(String, Vec<u8>)>) -> SecretMap {
    m.into_iter().collect()
}

async fn invoke(inst: &mut WarmInstance, call: &Call<'_>) -> wasmtime::Result<Reply> {
    let client = inst.bindings.esox_provider_provider().client();
    let (store, this) = (&mut inst.store, inst.client);
    Ok(match call {
        Call::Validate => Reply::Validation(
            client
                .call_validate(store, this)
                .await?
                .map(|v| match v {
                    v0_1::esox::provider::types::Validation::Ready => Validation::Ready,
                    v0_1::esox::provider::types::Validation::Unknown => Validation::Unknown,
                })
                .map_err(from_wit),
        ),
        Call::GetSecret(r) => Reply::Value(
            client
                .call_get_secret(store, this, &to_wit_ref(r))
                .await?
                .map_err(from_wit),
        ),
        Call::GetSecrets(rs) => {
            let refs: Vec<_> = rs.iter().map(to_wit_ref).collect();
            Reply::Values(
                client
                    .call_get_secrets(store, this, &refs)
                    .await?
                    .into_iter()
                    .map(|r| r.map_err(from_wit))
                    .collect(),
            )
        }
        Call::GetSecretMap(r) => Reply::Map(
            client
                .call_get_secret_map(store, this, &to_wit_ref(r))
                .await?
                .map(map_from_wit)
                .map_err(from_wit),
        ),
        Call::GetAllSecrets(q) => {
            let query = v0_1::esox::provider::types::FindQuery {
                name_regexp: q.name_regexp.clone(),
                path: q.path.clone(),
                tags: q.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            };
            Reply::Map(
                client
                    .call_get_all_secrets(store, this, &query)
                    .await?
                    .map(map_from_wit)
                    .map_err(from_wit),
            )
        }
    })
}

/// One store's connection to its plugin: a pool of instances that belong to this store only.
pub struct StoreClient {
    host: PluginHost,
    plugin: Arc<Plugin>,
    spec: Arc<StoreSpec>,
    /// `spec.config` serialised once: every new instance's `open` gets the same text.
    config_json: Arc<str>,
    idle: Mutex<Vec<WarmInstance>>,
    permits: tokio::sync::Semaphore,
}

impl StoreClient {
    /// The plugin serving this store.
    pub fn plugin(&self) -> &PluginMeta {
        &self.plugin.meta
    }

    /// Check that the store can be used (ESO's `Validate`).
    pub async fn validate(&self) -> Result<Validation, ProviderError> {
        match self.call(Call::Validate).await? {
            Reply::Validation(v) => v,
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    /// Read one value.
    pub async fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, ProviderError> {
        match self.call(Call::GetSecret(remote)).await? {
            Reply::Value(v) => v,
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    /// Read many values in one call (one answer per request, in order).
    pub async fn get_secrets(&self, remotes: &[RemoteRef]) -> Vec<Result<Vec<u8>, ProviderError>> {
        match self.call(Call::GetSecrets(remotes)).await {
            Ok(Reply::Values(vs)) if vs.len() == remotes.len() => vs,
            Ok(_) => vec![
                Err(ProviderError::Internal(
                    "plugin answered get-secrets with the wrong number of results".into()
                ));
                remotes.len()
            ],
            Err(e) => vec![Err(e); remotes.len()],
        }
    }

    /// Read a JSON object value as a map.
    pub async fn get_secret_map(&self, remote: &RemoteRef) -> Result<SecretMap, ProviderError> {
        match self.call(Call::GetSecretMap(remote)).await? {
            Reply::Map(m) => m,
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    /// Find secrets.
    pub async fn get_all_secrets(&self, query: &FindQuery) -> Result<SecretMap, ProviderError> {
        match self.call(Call::GetAllSecrets(query)).await? {
            Reply::Map(m) => m,
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    async fn instantiate(&self) -> Result<WarmInstance, ProviderError> {
        let host = &self.host;
        let limits = &host.inner.config.limits;
        let mut store = host.new_store(
            &self.plugin,
            &self.spec.identity,
            self.spec.services.clone(),
            self.spec.egress.clone(),
        );
        let config = &*self.config_json;
        let settings = &self.spec.settings;
        let contract = self.plugin.contract;
        let fut = async {
            match contract {
                Contract::V0_1 => {
                    let bindings = self.plugin.pre.instantiate_async(&mut store).await?;
                    let opened = bindings
                        .esox_provider_provider()
                        .client()
                        .call_open(&mut store, config, settings)
                        .await?;
                    Ok::<_, wasmtime::Error>((bindings, opened))
                }
            }
        };
        let result = tokio::time::timeout(limits.call_timeout, fut).await;
        host.inner
            .metrics
            .instances_created
            .get_or_create(&metrics::PluginLabels {
                plugin: self.plugin.meta.name.clone(),
            })
            .inc();
        match result {
            Ok(Ok((bindings, Ok(client)))) => Ok(WarmInstance {
                store,
                bindings,
                client,
                calls: 0,
            }),
            Ok(Ok((_, Err(e)))) => Err(from_wit(e)),
            Ok(Err(trap)) => Err(classify_trap(&trap, &store, limits)),
            Err(_) => Err(ProviderError::Unavailable(format!(
                "opening the plugin client timed out after {:?}",
                limits.call_timeout
            ))),
        }
    }

    async fn call(&self, call: Call<'_>) -> Result<Reply, ProviderError> {
        let limits = &self.host.inner.config.limits;
        let metrics = &self.host.inner.metrics;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ProviderError::Unavailable("store client closed".into()))?;
        let started = Instant::now();
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut inst = match pooled {
            Some(i) => i,
            None => match self.instantiate().await {
                Ok(i) => i,
                Err(e) => {
                    self.record(call.name(), error_status(&e), started);
                    return Err(e);
                }
            },
        };
        reset_budget(&mut inst.store, limits);
        let outcome = tokio::time::timeout(limits.call_timeout, invoke(&mut inst, &call)).await;
        let discard = |status: &str| {
            metrics
                .instances_discarded
                .get_or_create(&metrics::PluginLabels {
                    plugin: self.plugin.meta.name.clone(),
                })
                .inc();
            self.record(call.name(), status, started);
        };
        match outcome {
            Err(_) => {
                discard("timeout");
                Err(ProviderError::Unavailable(format!(
                    "plugin call {} timed out after {:?}",
                    call.name(),
                    limits.call_timeout
                )))
            }
            Ok(Err(trap)) => {
                let err = classify_trap(&trap, &inst.store, limits);
                discard(trap_kind(&err));
                tracing::warn!(plugin = %self.plugin.meta.name, store = %self.spec.identity, call = call.name(), error = %err, "plugin instance discarded");
                Err(err)
            }
            Ok(Ok(reply)) => {
                inst.calls += 1;
                if inst.calls < limits.calls_per_instance {
                    self.idle
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(inst);
                }
                let size = reply.bytes();
                if size > limits.max_response_bytes {
                    self.record(call.name(), "too_large", started);
                    return Err(ProviderError::Internal(format!(
                        "plugin returned {size} bytes, more than the {} bytes a Kubernetes Secret can hold",
                        limits.max_response_bytes
                    )));
                }
                let status = match &reply {
                    Reply::Validation(Err(e)) | Reply::Value(Err(e)) | Reply::Map(Err(e)) => {
                        error_status(e)
                    }
                    _ => "ok",
                };
                self.record(call.name(), status, started);
                Ok(reply)
            }
        }
    }

    fn record(&self, call: &str, status: &str, started: Instant) {
        let labels = metrics::CallLabels {
            plugin: self.plugin.meta.name.clone(),
            call: call.to_string(),
            status: status.to_string(),
        };
        let m = &self.host.inner.metrics;
        m.calls.get_or_create(&labels).inc();
        m.call_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
}
