//! The plugin host: runs provider plugins (WebAssembly components) in a sandbox.
//!
//! ```text
//! PluginHost ── load(bytes) ──► Plugin (compiled once, InstancePre, metadata from `info`)
//!     │
//!     └─ open_store(StoreSpec) ──► StoreClient ── warm instances of one store only, drawn
//!                                      │          from the host-wide pool (store.rs)
//!                                      └─ get_secret / get_secrets / get_secret_map / ...
//! ```
//!
//! Modules by concern: engine and loading (here), [`contract`] (one bindings module per
//! contract version, converted into the newest; the one place that matches on the version),
//! [`store`] (store clients and the instance pool), [`broker`] (what a plugin may ask the host
//! for), [`egress`] (what it may reach), [`instance`] (one sandboxed instance and its limits).
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
//! - **Least privilege.** A plugin may read only the Kubernetes objects its store's config
//!   references ([`broker`]), reach only the origins its store needs within what the operator
//!   grants ([`egress`]), and use the controller's own identity only when the operator grants it.

pub mod broker;
pub mod cache;
pub mod contract;
pub mod egress;
mod instance;
pub mod metrics;
pub mod services;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use esox_provider::{ProviderError, RemoteRef};
use sha2::{Digest, Sha256};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

pub use broker::{AmbientIdentity, AmbientSource, Grant};
use contract::Pre;
pub use contract::{
    ClientCertificatePath, ReferenceKind, ReferencePath, References, StoreContext, StoreKind,
    Validation,
};
pub use egress::{EgressGrant, EgressPolicy, EgressRule, HttpLimits};
use instance::{CpuBudget, InstanceState};
pub use metrics::HostMetrics;
pub use services::{HostServices, NoServices, ServiceAccountToken, TokenRequest};
pub use store::{StoreClient, StoreSpec};

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
    /// can never be used. The host also refuses, before copying anything, a reply or a host
    /// call that would copy more than [`Limits::copy_budget`] out of the instance.
    pub max_response_bytes: usize,
    /// Instances a store may run at once (its parallelism).
    pub instances_per_store: usize,
    /// Calls an instance serves before it is recycled; 1 means a fresh instance per call.
    pub calls_per_instance: u32,
    /// Limits on the plugin's outgoing HTTP.
    pub http: HttpLimits,
    /// The longest ServiceAccount token a plugin may ask for; asking for none gets this.
    pub max_token_lifetime: Duration,
    /// A warm instance unused this long is dropped, returning its pooled slot.
    pub idle_timeout: Duration,
    /// Instances alive at once for the stores of one namespace (ClusterSecretStores without a
    /// referent namespace count as one more namespace), so one tenant cannot take the pool.
    pub instances_per_namespace: usize,
    /// How long a call waits for a free instance slot before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// An instance whose memory grew past this many bytes is dropped after its call instead
    /// of being kept warm.
    pub recycle_memory_bytes: usize,
    /// How long a store's own TLS material (the CA certificates its config names, the client
    /// certificate it presents) is used before the host reads it again, so a rotated CA or a
    /// renewed certificate is picked up without a restart or a change to the store.
    pub tls_refresh_interval: Duration,
}

impl Limits {
    /// Bytes the host copies out of an instance's memory for one reply (values, keys, error
    /// text and the bookkeeping of each list entry) or one host call the plugin makes, checked
    /// before any copy: twice [`Limits::max_response_bytes`] plus 64 KiB. A reply within the
    /// budget is then checked exactly against `max_response_bytes`; one past it fails the call
    /// without the host allocating for it (wasmtime's hostcall fuel).
    pub fn copy_budget(&self) -> usize {
        self.max_response_bytes
            .saturating_mul(2)
            .saturating_add(64 << 10)
    }
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
            max_token_lifetime: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(300),
            instances_per_namespace: 64,
            acquire_timeout: Duration::from_secs(10),
            recycle_memory_bytes: 32 << 20,
            tls_refresh_interval: Duration::from_secs(300),
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
    /// Where a store config holds the Kubernetes objects the plugin may use.
    pub references: References,
    /// Whether the plugin can use the controller's own identity (when the operator grants it).
    pub wants_ambient_identity: bool,
    /// Where a store config names client certificates the host presents (contract 0.3+).
    pub client_certificates: Vec<contract::ClientCertificatePath>,
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
    pre: Pre,
}

struct HostInner {
    engine: Engine,
    linker: Linker<InstanceState>,
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    config: HostConfig,
    metrics: HostMetrics,
    pool: store::Pool,
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
                pool: store::Pool::new(&config),
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

    /// Load plugins the product embeds in its binary (`(file name, component bytes)` pairs;
    /// esox's are in `esox-plugins-bundle`); they are listed with origin `embedded`.
    pub async fn load_embedded(
        &self,
        plugins: &[(&str, &[u8])],
    ) -> Result<Vec<PluginMeta>, LoadError> {
        let mut out = Vec::new();
        for (_, bytes) in plugins {
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
            .and_then(|pre| Pre::new(contract, pre))
            .map_err(|e| LoadError::Link {
                origin: origin_s.clone(),
                message: format!("{e:#}"),
            })?;
        let info = self.plugin_info(&pre).await.map_err(|e| LoadError::Info {
            origin: origin_s,
            message: e.to_string(),
        })?;
        let plugin = Plugin {
            meta: PluginMeta {
                name: info.name,
                version: info.version,
                description: info.description,
                contract: version,
                capabilities: info.capabilities,
                config_schema: info.config_schema,
                default_egress: info.default_egress,
                references: info.references,
                wants_ambient_identity: info.wants_ambient_identity,
                client_certificates: info.client_certificates,
                sha256,
                origin,
                compiled,
                load_time,
            },
            pre,
        };
        Ok(Arc::new(plugin))
    }

    async fn plugin_info(&self, pre: &Pre) -> Result<contract::PluginInfo, ProviderError> {
        let mut inst = self.new_store(
            self.broker_none("(loading)", "(load)"),
            Arc::new(EgressPolicy::deny_all()),
        );
        let limits = &self.inner.config.limits;
        let fut = async {
            let bindings = pre.instantiate(&mut inst).await?;
            bindings.info(&mut inst).await
        };
        match tokio::time::timeout(limits.call_timeout, fut).await {
            Ok(Ok(info)) => Ok(info),
            Ok(Err(e)) => Err(classify_trap(&e, &inst, limits).0),
            Err(_) => Err(ProviderError::Unavailable(
                format!("timed out after {:?}", limits.call_timeout).into(),
            )),
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

    /// A broker that grants nothing, for calls outside any store.
    fn broker_none(&self, plugin: &str, what: &str) -> Arc<broker::Broker> {
        Arc::new(broker::Broker::none(
            Arc::from(plugin),
            what,
            self.inner.metrics.clone(),
        ))
    }

    /// A store for one new instance, its CPU budget set for the first call.
    fn new_store(
        &self,
        broker: Arc<broker::Broker>,
        policy: Arc<EgressPolicy>,
    ) -> Store<InstanceState> {
        let limits = &self.inner.config.limits;
        let metrics = self.inner.metrics.clone();
        let plugin_name = broker.plugin.clone();
        let store_name = broker.store.clone();
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
            broker,
            policy,
            limits.http.clone(),
            on_denial,
            limits.memory_bytes,
            self.inner.metrics.clone(),
        );
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_hostcall_fuel(limits.copy_budget());
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
            self.broker_none(&p.meta.name, "(validate-config)"),
            Arc::new(EgressPolicy::deny_all()),
        );
        let limits = &self.inner.config.limits;
        let config = config.to_string();
        let fut = async {
            let bindings = p.pre.instantiate(&mut store).await?;
            bindings.validate_config(&mut store, &config).await
        };
        match tokio::time::timeout(limits.call_timeout, fut).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(classify_trap(&e, &store, limits).0),
            Err(_) => Err(ProviderError::Unavailable(
                format!("validate-config timed out after {:?}", limits.call_timeout).into(),
            )),
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
        let broker = self.broker_none(&p.meta.name, "(bench)");
        let context = StoreContext::cluster_secret_store("bench", None);
        let t0 = Instant::now();
        let mut store = self.new_store(broker, Arc::new(EgressPolicy::deny_all()));
        let t1 = Instant::now();
        let bindings = p.pre.instantiate(&mut store).await?;
        let t2 = Instant::now();
        let this = bindings
            .open(&mut store, config, &[], &context)
            .await?
            .map_err(|e| anyhow::anyhow!("open: {e}"))?;
        let t3 = Instant::now();
        match bindings
            .invoke(&mut store, this, &contract::Call::GetSecret(remote))
            .await?
        {
            contract::Reply::Value(v) => v.map_err(|e| anyhow::anyhow!("get-secret: {e}"))?,
            _ => anyhow::bail!("get-secret: unexpected reply"),
        };
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
        Ok(StoreClient::new(self.clone(), plugin, spec))
    }
}

fn unknown_plugin(name: &str, loaded: &[PluginMeta]) -> ProviderError {
    let names: Vec<&str> = loaded.iter().map(|m| m.name.as_str()).collect();
    ProviderError::InvalidConfig(
        format!(
            "no plugin provides `spec.provider.{name}` (loaded: {}); the operator can load one",
            names.join(", ")
        )
        .into(),
    )
}

fn reset_budget(store: &mut Store<InstanceState>, limits: &Limits) {
    let ticks = (limits.cpu_time.as_millis() / EPOCH_TICK.as_millis().max(1)).max(1) as u64;
    store.data_mut().cpu = CpuBudget {
        ticks: 0,
        budget: ticks,
    };
    store.set_epoch_deadline(1);
}

/// Which limit a trap hit, read off the instance's state (never off a message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TrapKind {
    Memory,
    Cpu,
    TooLarge,
    Crash,
}

impl TrapKind {
    fn status(self) -> &'static str {
        match self {
            TrapKind::Memory => "memory_limit",
            TrapKind::Cpu => "cpu_limit",
            TrapKind::TooLarge => "too_large",
            TrapKind::Crash => "trap",
        }
    }
}

/// Turn a trap into the error users see, naming the limit that was hit.
fn classify_trap(
    err: &wasmtime::Error,
    store: &Store<InstanceState>,
    limits: &Limits,
) -> (ProviderError, TrapKind) {
    let state = store.data();
    if state.memory.hit {
        (
            ProviderError::Internal(
                format!(
                    "plugin exceeded its memory limit of {} MiB",
                    limits.memory_bytes >> 20
                )
                .into(),
            ),
            TrapKind::Memory,
        )
    } else if state.cpu.exhausted() {
        (
            ProviderError::Internal(
                format!(
                    "plugin exceeded its CPU budget of {:?} per call",
                    limits.cpu_time
                )
                .into(),
            ),
            TrapKind::Cpu,
        )
    } else if copy_budget_exhausted(err) {
        (
            ProviderError::Internal(
                format!(
                    "plugin tried to hand the host more than {} bytes in one reply or host call \
                     (at most {} bytes of values can be used); nothing of it was copied",
                    limits.copy_budget(),
                    limits.max_response_bytes
                )
                .into(),
            ),
            TrapKind::TooLarge,
        )
    } else {
        let trap = err
            .downcast_ref::<wasmtime::Trap>()
            .map(|t| t.to_string())
            .unwrap_or_else(|| format!("{}", err.root_cause()));
        (
            ProviderError::Internal(format!("plugin crashed: {trap}").into())
                .truncated(contract::MAX_ERROR_BYTES),
            TrapKind::Crash,
        )
    }
}

/// Whether wasmtime stopped a copy out of the instance because it would pass the store's
/// hostcall fuel ([`Limits::copy_budget`]). Wasmtime reports this with an error type of its own
/// that it does not export, so its text is matched; the text comes from wasmtime, never from
/// the plugin (a plugin's own errors arrive as values, not as errors of the call).
fn copy_budget_exhausted(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|e| e.to_string().contains("fuel allocated for hostcalls"))
}

fn error_status(e: &ProviderError) -> &'static str {
    match e {
        ProviderError::NotFound => "not_found",
        ProviderError::NotModified => "not_modified",
        ProviderError::InvalidConfig(_) => "invalid_config",
        ProviderError::PermissionDenied(_) => "permission_denied",
        ProviderError::Unavailable(_) => "unavailable",
        ProviderError::Unsupported(_) => "unsupported",
        ProviderError::Throttled { .. } => "throttled",
        ProviderError::EgressDenied(_) => "egress_denied",
        ProviderError::Backend(_) => "backend",
        ProviderError::Internal(_) => "internal",
    }
}
