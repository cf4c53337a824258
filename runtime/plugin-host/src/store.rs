//! Store clients and the host-wide pool of plugin instances.
//!
//! A [`StoreClient`] serves one store (one store and referent namespace for a
//! ClusterSecretStore with referent references). Its calls run on warm instances of its own,
//! drawn from one host-wide [`Pool`] of slots, bounded three ways:
//! - per store: at most [`Limits::instances_per_store`] calls at once;
//! - per namespace: at most [`Limits::instances_per_namespace`] instances alive for the stores
//!   of one namespace, so a tenant who creates hundreds of stores takes its own share, not the
//!   pool;
//! - host-wide: the pooling allocator's slots.
//!
//! When a bound is reached, the oldest idle instance that frees a slot is evicted; when none is
//! idle, the caller waits (at most [`Limits::acquire_timeout`]) instead of failing other stores.
//! Idle instances expire after [`Limits::idle_timeout`]; an instance whose memory grew past
//! [`Limits::recycle_memory_bytes`] is dropped after its call; a dropped client (a deleted or
//! changed store) frees its idle instances at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use esox_provider::{FindQuery, ProviderError, PushRef, RemoteRef, SecretMap};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::broker::{AmbientSource, Broker, Grant};
use crate::contract::{Bindings, Call, Reply, StoreContext, Validation};
use crate::egress::{EgressGrant, EgressPolicy};
use crate::instance::InstanceState;
use crate::metrics::{self, HostMetrics, PluginLabels};
use crate::services::HostServices;
use crate::{HostConfig, Plugin, PluginHost, classify_trap, error_status, reset_budget};

/// What a store needs to run its plugin.
#[derive(Clone)]
pub struct StoreSpec {
    /// Which store (names it in logs and metrics; handed to the plugin's `open`).
    pub context: StoreContext,
    /// The provider name (`spec.provider.<name>`).
    pub plugin: String,
    /// `spec.provider.<name>` as JSON.
    pub config: serde_json::Value,
    /// Operator settings for the plugin (endpoints, ...).
    pub settings: Vec<(String, String)>,
    /// What the operator grants the plugin's egress; the store's own origins are derived
    /// from its config within it.
    pub egress: EgressGrant,
    /// The auth broker's services for this store (the grant is checked before them).
    pub services: Arc<dyn HostServices>,
    /// The controller's own identity, when the operator grants it to this plugin.
    pub ambient: Option<AmbientSource>,
    /// Whether the operator lets this plugin ask for ServiceAccount tokens with the API
    /// server's own audience (for a reference that names no `audiences`).
    pub api_audience_tokens: bool,
}

/// A pooled slot: released when the instance holding it is dropped.
struct Slot {
    _namespace: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

struct WarmInstance {
    store: Store<InstanceState>,
    bindings: Bindings,
    client: ResourceAny,
    calls: u32,
    _slot: Slot,
}

struct Idle {
    store: u64,
    namespace: Arc<str>,
    plugin: Arc<str>,
    since: Instant,
    instance: WarmInstance,
}

/// Instance slots for the whole host.
pub(crate) struct Pool {
    global: Arc<Semaphore>,
    per_namespace: usize,
    namespaces: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
    /// Idle instances, oldest first.
    idle: Mutex<VecDeque<Idle>>,
    next_store: AtomicU64,
}

/// Slots kept back from stores for `info` at load time and `validate-config`.
const RESERVED_SLOTS: usize = 8;

impl Pool {
    pub fn new(config: &HostConfig) -> Self {
        let total = (config.max_instances as usize)
            .saturating_sub(RESERVED_SLOTS)
            .max(1);
        Pool {
            global: Arc::new(Semaphore::new(total)),
            per_namespace: config.limits.instances_per_namespace.clamp(1, total),
            namespaces: Mutex::new(HashMap::new()),
            idle: Mutex::new(VecDeque::new()),
            next_store: AtomicU64::new(1),
        }
    }

    fn namespace(&self, namespace: &Arc<str>) -> Arc<Semaphore> {
        let mut map = self.namespaces.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 4096 {
            // Forget namespaces with nothing alive, so the map does not grow for ever.
            let full = self.per_namespace;
            map.retain(|_, s| s.available_permits() < full);
        }
        map.entry(namespace.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_namespace)))
            .clone()
    }

    /// Drop idle instances past the idle timeout; count them.
    fn expire(&self, idle_timeout: Duration, metrics: &HostMetrics) {
        let expired: Vec<Idle> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::new();
            while idle
                .front()
                .is_some_and(|i| i.since.elapsed() >= idle_timeout)
            {
                out.extend(idle.pop_front());
            }
            out
        };
        Self::count_evicted(&expired, metrics);
    }

    fn count_evicted(evicted: &[Idle], metrics: &HostMetrics) {
        for i in evicted {
            metrics
                .instances_evicted
                .get_or_create(&PluginLabels {
                    plugin: i.plugin.to_string(),
                })
                .inc();
        }
    }

    /// This store's most recently used idle instance.
    fn take(&self, store: u64) -> Option<WarmInstance> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let at = idle.iter().rposition(|i| i.store == store)?;
        idle.remove(at).map(|i| i.instance)
    }

    fn put(&self, idle: Idle) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(idle);
    }

    /// Drop the oldest idle instance that `frees` says would free the wanted slot.
    fn evict_oldest(&self, frees: impl Fn(&Idle) -> bool, metrics: &HostMetrics) -> bool {
        let evicted = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.iter().position(frees).and_then(|at| idle.remove(at))
        };
        match evicted {
            Some(i) => {
                Self::count_evicted(std::slice::from_ref(&i), metrics);
                drop(i);
                true
            }
            None => false,
        }
    }

    /// Drop every idle instance of a store (its client is gone).
    fn forget(&self, store: u64) {
        let gone: Vec<Idle> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let (gone, keep): (Vec<Idle>, Vec<Idle>) =
                idle.drain(..).partition(|i| i.store == store);
            idle.extend(keep);
            gone
        };
        drop(gone);
    }

    async fn permit(
        &self,
        semaphore: &Arc<Semaphore>,
        frees: impl Fn(&Idle) -> bool,
        wait: Duration,
        metrics: &HostMetrics,
        plugin: &str,
    ) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(p) = semaphore.clone().try_acquire_owned() {
                return Some(p);
            }
            if !self.evict_oldest(&frees, metrics) {
                break;
            }
        }
        metrics
            .pool_waits
            .get_or_create(&PluginLabels {
                plugin: plugin.to_string(),
            })
            .inc();
        tokio::time::timeout(wait, semaphore.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }

    async fn slot(
        &self,
        namespace: &Arc<str>,
        wait: Duration,
        metrics: &HostMetrics,
        plugin: &str,
    ) -> Result<Slot, ProviderError> {
        let ns = self.namespace(namespace);
        let ns_permit = self
            .permit(&ns, |i| i.namespace == *namespace, wait, metrics, plugin)
            .await
            .ok_or_else(|| {
                let whose = if namespace.is_empty() {
                    "cluster-wide stores".to_string()
                } else {
                    format!("namespace {namespace:?}")
                };
                ProviderError::Unavailable(format!(
                    "the stores of {whose} already run {} plugin instances, their share of the pool; waited {wait:?} for one to finish",
                    self.per_namespace
                ).into())
            })?;
        let global = self
            .permit(&self.global, |_| true, wait, metrics, plugin)
            .await
            .ok_or_else(|| {
                ProviderError::Unavailable(format!(
                    "every plugin instance slot of this controller is busy; waited {wait:?} for one"
                ).into())
            })?;
        Ok(Slot {
            _namespace: ns_permit,
            _global: global,
        })
    }
}

/// One store's connection to its plugin: instances that belong to this store only.
pub struct StoreClient {
    host: PluginHost,
    plugin: Arc<Plugin>,
    spec: Arc<StoreSpec>,
    id: u64,
    namespace: Arc<str>,
    /// `spec.config` serialised once: every new instance's `open` gets the same text.
    config_json: Arc<str>,
    broker: Arc<Broker>,
    /// The store's egress policy, resolved by its first instance.
    egress: OnceLock<Arc<EgressPolicy>>,
    /// Held while the store's TLS material is read again ([`Self::renew_tls`]).
    tls_renewal: tokio::sync::Mutex<()>,
    permits: Semaphore,
}

impl Drop for StoreClient {
    fn drop(&mut self) {
        self.host.inner.pool.forget(self.id);
    }
}

impl StoreClient {
    pub(crate) fn new(host: PluginHost, plugin: Arc<Plugin>, spec: StoreSpec) -> Self {
        let limits = &host.inner.config.limits;
        let id = host.inner.pool.next_store.fetch_add(1, Ordering::Relaxed);
        let grant = Grant::from_config(&plugin.meta.references, &spec.config);
        let ambient = spec
            .ambient
            .clone()
            .filter(|_| plugin.meta.wants_ambient_identity);
        let broker = Arc::new(
            Broker::new(
                Arc::from(plugin.meta.name.as_str()),
                Arc::from(spec.context.to_string().as_str()),
                Some(spec.context.clone()),
                grant,
                spec.services.clone(),
                limits.max_token_lifetime,
                ambient,
                host.inner.metrics.clone(),
            )
            .with_api_audience_tokens(spec.api_audience_tokens),
        );
        StoreClient {
            namespace: Arc::from(spec.context.quota_namespace()),
            permits: Semaphore::new(limits.instances_per_store.max(1)),
            config_json: Arc::from(spec.config.to_string()),
            spec: Arc::new(spec),
            egress: OnceLock::new(),
            tls_renewal: tokio::sync::Mutex::new(()),
            broker,
            id,
            plugin,
            host,
        }
    }

    /// The plugin serving this store.
    pub fn plugin(&self) -> &crate::PluginMeta {
        &self.plugin.meta
    }

    /// The store this client serves.
    pub fn context(&self) -> &StoreContext {
        &self.spec.context
    }

    /// The egress policy in force, once the first instance has resolved it.
    pub fn egress_policy(&self) -> Option<Arc<EgressPolicy>> {
        self.egress.get().cloned()
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
            Reply::Map(m) => into_map(m?),
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    /// Find secrets.
    pub async fn get_all_secrets(&self, query: &FindQuery) -> Result<SecretMap, ProviderError> {
        match self.call(Call::GetAllSecrets(query)).await? {
            Reply::Map(m) => into_map(m?),
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    /// Write a value (ESO's `PushSecret`): refused unless the plugin declares `write`.
    pub async fn push_secret(&self, remote: &PushRef, value: &[u8]) -> Result<(), ProviderError> {
        self.require_write("push-secret")?;
        match self.call(Call::PushSecret(remote, value)).await? {
            Reply::Done(r) => r,
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    /// Delete a pushed value (ESO's `DeleteSecret`); a missing value is not an error.
    pub async fn delete_secret(&self, remote: &PushRef) -> Result<(), ProviderError> {
        self.require_write("delete-secret")?;
        match self.call(Call::DeleteSecret(remote)).await? {
            Reply::Done(r) => r,
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    /// Whether a value exists where a push would write (ESO's `SecretExists`).
    pub async fn secret_exists(&self, remote: &PushRef) -> Result<bool, ProviderError> {
        self.require_write("secret-exists")?;
        match self.call(Call::SecretExists(remote)).await? {
            Reply::Exists(r) => r,
            _ => Err(ProviderError::Internal("unexpected reply".into())),
        }
    }

    /// Writes go only to plugins that declare them; the others are not even instantiated.
    fn require_write(&self, call: &str) -> Result<(), ProviderError> {
        if self.plugin.meta.capabilities.contains(&"write") {
            return Ok(());
        }
        Err(ProviderError::Unsupported(
            format!(
                "{call}: the {} plugin does not declare the write capability",
                self.plugin.meta.name
            )
            .into(),
        ))
    }

    /// The store's egress policy: the origins its plugin derives from the config (0.2+),
    /// within the operator's grant, plus the ambient identity's credentials endpoint.
    fn resolve_egress(&self, derived: Option<&[String]>) -> Result<EgressPolicy, ProviderError> {
        let extra: Vec<String> = self.broker_ambient_endpoint().into_iter().collect();
        let (policy, dropped) = self
            .spec
            .egress
            .policy(derived, &extra)
            .map_err(|e| ProviderError::InvalidConfig(e.to_string().into()))?;
        if !dropped.is_empty() {
            tracing::warn!(plugin = %self.plugin.meta.name, store = %self.spec.context, ?dropped, "origins the plugin derived from the store's config are outside what the operator grants it; not granted");
        }
        Ok(policy)
    }

    /// The CA certificates the store's config names for its plugin's TLS: at each path the
    /// plugin declares as `ca-provider`, the referenced Secret or ConfigMap key (read through
    /// the broker, so the store's grant and namespace rules apply), and the `caBundle` beside
    /// it (inline base64 PEM: ESO's convention wherever it has a `caProvider`), which wins over
    /// the `caProvider` when both are set, as in ESO. Trusted for this store only and instead
    /// of the public roots (as ESO); resolved when the store client opens its first instance
    /// and again every [`crate::Limits::tls_refresh_interval`] ([`Self::renew_tls`]), so a CA
    /// rotated inside the same Secret or ConfigMap is picked up.
    async fn resolve_trust(&self) -> Result<Vec<Vec<u8>>, ProviderError> {
        let crate::contract::References::Declared(paths) = &self.plugin.meta.references else {
            return Ok(Vec::new());
        };
        let config = &self.spec.config;
        let invalid =
            |what: &str, why: String| ProviderError::InvalidConfig(format!("{what}: {why}").into());
        let mut trust = Vec::new();
        for p in paths
            .iter()
            .filter(|p| p.kind == crate::ReferenceKind::CaProvider)
        {
            // `objects_at` of an empty path is the config itself.
            let (parent, last, field) = match p.path.rsplit_once('.') {
                Some((parent, last)) => (parent, last, format!("{parent}.caBundle")),
                None => ("", p.path.as_str(), "caBundle".to_string()),
            };
            for holder in crate::broker::objects_at(config, parent) {
                // An inline caBundle wins over the caProvider beside it, as in ESO.
                if let Some(bundle) = holder
                    .get("caBundle")
                    .and_then(|v| v.as_str())
                    .filter(|b| !b.is_empty())
                {
                    use base64::Engine as _;
                    let pem = base64::engine::general_purpose::STANDARD
                        .decode(bundle.trim())
                        .map_err(|_| invalid(&field, "is not base64".into()))?;
                    trust.extend(
                        crate::egress::certificates_of_pem(&pem)
                            .map_err(|why| invalid(&field, why))?,
                    );
                    continue;
                }
                for object in crate::broker::objects_at(holder, last) {
                    let text = |k: &str| object.get(k).and_then(|v| v.as_str());
                    let (Some(kind), Some(name), Some(key)) =
                        (text("type"), text("name"), text("key"))
                    else {
                        continue;
                    };
                    let namespace = text("namespace");
                    let pem = match kind {
                        "Secret" => self.broker.secret_key(name, key, namespace).await?,
                        "ConfigMap" => self
                            .broker
                            .config_map_key(name, key, namespace)
                            .await?
                            .into_bytes(),
                        other => {
                            return Err(invalid(
                                &p.path,
                                format!("type {other:?} is neither Secret nor ConfigMap"),
                            ));
                        }
                    };
                    trust.extend(crate::egress::certificates_of_pem(&pem).map_err(|why| {
                        invalid(&format!("{}: {kind} {name} key {key}", p.path), why)
                    })?);
                }
            }
        }
        Ok(trust)
    }

    /// The client certificate the store's config names for its plugin's TLS (contract 0.3): at
    /// the first declared pair of paths present in the config, the two Secret keys, read by
    /// the host itself (not through the plugin's grant, under the same namespace rules) and
    /// checked against each other. `None` when the config names none.
    async fn resolve_client_identity(
        &self,
    ) -> Result<Option<crate::egress::ClientIdentity>, ProviderError> {
        let config = &self.spec.config;
        for pair in &self.plugin.meta.client_certificates {
            let certificate = single_selector(config, &pair.certificate)?;
            let private_key = single_selector(config, &pair.private_key)?;
            let (certificate, private_key) = match (certificate, private_key) {
                (None, None) => continue,
                (Some(c), Some(k)) => (c, k),
                (c, _) => {
                    let (have, missing) = if c.is_some() {
                        (&pair.certificate, &pair.private_key)
                    } else {
                        (&pair.private_key, &pair.certificate)
                    };
                    return Err(ProviderError::InvalidConfig(
                        format!("{have} is set but {missing} is not: a client certificate needs both its certificate and its private key").into(),
                    ));
                }
            };
            let cert_pem = self
                .read_selector(&pair.certificate, certificate, "tls.crt")
                .await?;
            let key_pem = self
                .read_selector(&pair.private_key, private_key, "tls.key")
                .await?;
            return crate::egress::ClientIdentity::from_pem(&cert_pem, &key_pem)
                .map(Some)
                .map_err(|e| {
                    ProviderError::InvalidConfig(
                        format!("{} and {}: {e}", pair.certificate, pair.private_key).into(),
                    )
                });
        }
        Ok(None)
    }

    /// The Secret key a client-certificate selector at `path` names (`default_key` when it
    /// names none), read by the host for itself; a config error names `path`.
    async fn read_selector(
        &self,
        path: &str,
        selector: Selector,
        default_key: &str,
    ) -> Result<Vec<u8>, ProviderError> {
        let key = selector.key.as_deref().unwrap_or(default_key);
        self.broker
            .client_certificate_key(&selector.name, key, selector.namespace.as_deref())
            .await
            .map_err(|e| match e {
                ProviderError::InvalidConfig(m) => {
                    ProviderError::InvalidConfig(format!("{path}: {m}").into())
                }
                other => other,
            })
    }

    /// Read the store's own TLS material (its CA certificates and its client certificate)
    /// again when it was read more than [`crate::Limits::tls_refresh_interval`] ago, so a CA
    /// rotated in its Secret or ConfigMap, or a certificate renewed in its Secret
    /// (cert-manager), reaches new handshakes without a restart. One call reads; the others go
    /// on with the current material meanwhile. On failure the current material stays and the
    /// call fails with the reason.
    async fn renew_tls(&self) -> Result<(), ProviderError> {
        let Some(tls) = self.egress.get().and_then(|p| p.tls()) else {
            return Ok(());
        };
        let interval = self.host.inner.config.limits.tls_refresh_interval;
        if !tls.is_older_than(interval) {
            return Ok(());
        }
        let Ok(_reading) = self.tls_renewal.try_lock() else {
            return Ok(());
        };
        if !tls.is_older_than(interval) {
            return Ok(());
        }
        let trust = self.resolve_trust().await?;
        let identity = self.resolve_client_identity().await?;
        match tls.renew(&trust, identity.as_ref()) {
            Ok(true) => {
                tracing::info!(plugin = %self.plugin.meta.name, store = %self.spec.context, "the store's CA or client certificate changed where its config names it; new connections use the new one");
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => Err(ProviderError::InvalidConfig(
                format!("the store's client certificate: {e}").into(),
            )),
        }
    }

    fn broker_ambient_endpoint(&self) -> Option<String> {
        if !self.plugin.meta.wants_ambient_identity {
            return None;
        }
        let source = self.spec.ambient.as_ref()?;
        source().ok()?.container_credentials.map(|c| c.uri)
    }

    async fn instantiate(&self) -> Result<WarmInstance, ProviderError> {
        let host = &self.host;
        let limits = &host.inner.config.limits;
        let metrics = &host.inner.metrics;
        let slot = host
            .inner
            .pool
            .slot(
                &self.namespace,
                limits.acquire_timeout,
                metrics,
                &self.plugin.meta.name,
            )
            .await?;
        let known = self.egress.get().cloned();
        let mut store = host.new_store(
            self.broker.clone(),
            known
                .clone()
                .unwrap_or_else(|| Arc::new(EgressPolicy::deny_all())),
        );
        let config = &*self.config_json;
        let settings = &self.spec.settings;
        let context = &self.spec.context;
        let fut = async {
            let bindings = self.plugin.pre.instantiate(&mut store).await?;
            if known.is_none() {
                let derived = match bindings.egress(&mut store, config, settings).await? {
                    None => None,
                    Some(Ok(origins)) => Some(origins),
                    Some(Err(e)) => return Ok(Err(e)),
                };
                let policy = match self.resolve_egress(derived.as_deref()) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let trust = match self.resolve_trust().await {
                    Ok(trust) => trust,
                    Err(e) => return Ok(Err(e)),
                };
                let identity = match self.resolve_client_identity().await {
                    Ok(identity) => identity,
                    Err(e) => return Ok(Err(e)),
                };
                let policy = match policy.with_tls(trust, identity.as_ref()) {
                    Ok(p) => Arc::new(p),
                    Err(e) => {
                        return Ok(Err(ProviderError::InvalidConfig(
                            format!("the store's client certificate: {e}").into(),
                        )));
                    }
                };
                store.data_mut().set_egress(policy.clone());
                let _ = self.egress.set(policy);
            }
            Ok::<_, wasmtime::Error>(
                bindings
                    .open(&mut store, config, settings, context)
                    .await?
                    .map(|client| (bindings, client)),
            )
        };
        let result = tokio::time::timeout(limits.call_timeout, fut).await;
        metrics
            .instances_created
            .get_or_create(&PluginLabels {
                plugin: self.plugin.meta.name.clone(),
            })
            .inc();
        match result {
            Ok(Ok(Ok((bindings, client)))) => Ok(WarmInstance {
                store,
                bindings,
                client,
                calls: 0,
                _slot: slot,
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(trap)) => Err(classify_trap(&trap, &store, limits).0),
            Err(_) => Err(ProviderError::Unavailable(
                format!(
                    "opening the plugin client timed out after {:?}",
                    limits.call_timeout
                )
                .into(),
            )),
        }
    }

    async fn call(&self, call: Call<'_>) -> Result<Reply, ProviderError> {
        let limits = &self.host.inner.config.limits;
        let metrics = &self.host.inner.metrics;
        let pool = &self.host.inner.pool;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ProviderError::Unavailable("store client closed".into()))?;
        let started = Instant::now();
        pool.expire(limits.idle_timeout, metrics);
        if let Err(e) = self.renew_tls().await {
            self.record(call.name(), error_status(&e), started);
            return Err(e);
        }
        let mut inst = match pool.take(self.id) {
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
        let outcome = tokio::time::timeout(
            limits.call_timeout,
            inst.bindings.invoke(&mut inst.store, inst.client, &call),
        )
        .await;
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
                Err(ProviderError::Unavailable(
                    format!(
                        "plugin call {} timed out after {:?}",
                        call.name(),
                        limits.call_timeout
                    )
                    .into(),
                ))
            }
            Ok(Err(trap)) => {
                let (err, kind) = classify_trap(&trap, &inst.store, limits);
                discard(kind.status());
                tracing::warn!(plugin = %self.plugin.meta.name, store = %self.spec.context, call = call.name(), error = %err, "plugin instance discarded");
                Err(err)
            }
            Ok(Ok(reply)) => {
                inst.calls += 1;
                let grown = inst.store.data().memory.peak_bytes > limits.recycle_memory_bytes;
                if grown {
                    metrics
                        .instances_evicted
                        .get_or_create(&PluginLabels {
                            plugin: self.plugin.meta.name.clone(),
                        })
                        .inc();
                } else if inst.calls < limits.calls_per_instance {
                    pool.put(Idle {
                        store: self.id,
                        namespace: self.namespace.clone(),
                        plugin: self.broker.plugin.clone(),
                        since: Instant::now(),
                        instance: inst,
                    });
                }
                let size = reply.bytes();
                if size > limits.max_response_bytes {
                    self.record(call.name(), "too_large", started);
                    return Err(ProviderError::Internal(format!(
                        "plugin returned {size} bytes, more than the {} bytes a Kubernetes Secret can hold",
                        limits.max_response_bytes
                    ).into()));
                }
                let status = match &reply {
                    Reply::Validation(Err(e))
                    | Reply::Value(Err(e))
                    | Reply::Map(Err(e))
                    | Reply::Done(Err(e))
                    | Reply::Exists(Err(e)) => error_status(e),
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
        m.eso_api_calls
            .get_or_create(&metrics::EsoCallLabels {
                provider: labels.plugin.clone(),
                call: labels.call.clone(),
                status: if status == "ok" { "success" } else { "error" }.into(),
            })
            .inc();
        m.calls.get_or_create(&labels).inc();
        m.call_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A plugin's map, refused when it repeats a key (a later entry would silently win).
fn into_map(entries: Vec<(String, Vec<u8>)>) -> Result<SecretMap, ProviderError> {
    let mut map = SecretMap::new();
    for (k, v) in entries {
        if map.contains_key(&k) {
            return Err(ProviderError::Internal(
                format!("plugin returned key {k:?} twice in one map; keys must be unique").into(),
            ));
        }
        map.insert(k, v);
    }
    Ok(map)
}

/// A `{name, key?, namespace?}` Secret selector in a store config.
struct Selector {
    name: String,
    key: Option<String>,
    namespace: Option<String>,
}

/// The one selector at `path`, if the config has one there; an error when the path holds
/// several or one without a name.
fn single_selector(
    config: &serde_json::Value,
    path: &str,
) -> Result<Option<Selector>, ProviderError> {
    let found = crate::broker::objects_at(config, path);
    let object = match found.as_slice() {
        [] => return Ok(None),
        [one] if one.is_null() => return Ok(None),
        [one] => *one,
        _ => {
            return Err(ProviderError::InvalidConfig(
                format!("{path}: names several client certificates; name one").into(),
            ));
        }
    };
    let text = |k: &str| {
        object
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let Some(name) = text("name") else {
        return Err(ProviderError::InvalidConfig(
            format!("{path}.name: the Secret's name is required").into(),
        ));
    };
    Ok(Some(Selector {
        name,
        key: text("key"),
        namespace: text("namespace"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_with_repeated_keys_are_refused() {
        let ok = into_map(vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"2".to_vec()),
        ]);
        assert_eq!(ok.unwrap().len(), 2);
        let dup = into_map(vec![
            ("a".into(), b"1".to_vec()),
            ("a".into(), b"2".to_vec()),
        ]);
        assert!(matches!(dup, Err(ProviderError::Internal(m)) if m.contains("twice")));
    }
}
