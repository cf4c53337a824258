//! One plugin client per store identity: a SecretStore, or a ClusterSecretStore (per referent
//! namespace when its configuration holds references without a namespace, because those
//! resolve in each ExternalSecret's namespace). Clients keep warm plugin instances (sessions,
//! tokens) between reconciles; a client is replaced when the store's provider configuration
//! changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::coalesce::ValueCache;
use crate::plugin_policy::PluginPolicy;
use esox_api::SecretStoreSpec;
use esox_plugin_host::{PluginHost, StoreClient, StoreContext, StoreSpec};
use esox_provider::ProviderError;

use crate::services::{KubeServices, NamespaceRules};

/// Which store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreKey {
    /// A SecretStore.
    Namespaced { namespace: String, name: String },
    /// A ClusterSecretStore.
    Cluster { name: String },
}

impl std::fmt::Display for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKey::Namespaced { namespace, name } => write!(f, "SecretStore/{namespace}/{name}"),
            StoreKey::Cluster { name } => write!(f, "ClusterSecretStore/{name}"),
        }
    }
}

/// Whether a ClusterSecretStore's provider config has object references (`{name, key}`
/// selectors or a `serviceAccountRef`) without a namespace: those are *referent*, resolved in
/// the namespace of each ExternalSecret, so the store needs one client per namespace.
pub fn has_referent_refs(config: &serde_json::Value) -> bool {
    match config {
        serde_json::Value::Object(map) => {
            let is_ref = map.contains_key("name")
                && (map.contains_key("key") || map.contains_key("audiences"));
            let sa_ref = map
                .get("serviceAccountRef")
                .is_some_and(|r| r.get("namespace").is_none());
            (is_ref && !map.contains_key("namespace"))
                || sa_ref
                || map.values().any(has_referent_refs)
        }
        serde_json::Value::Array(items) => items.iter().any(has_referent_refs),
        _ => false,
    }
}

/// Whether the client depends on the ExternalSecret's namespace beyond its references: the
/// aws provider's `sessionTagsPolicy: Simple` or `Custom` tags each session with it
/// (`esoNamespace`), as ESO does, so a ClusterSecretStore needs one client per namespace.
pub fn names_the_namespace(config: &serde_json::Value) -> bool {
    matches!(
        config.get("sessionTagsPolicy").and_then(|p| p.as_str()),
        Some("Simple" | "Custom")
    )
}

/// Clients by store and referent namespace, with the configuration they were opened with and
/// when they were last used.
type ClientCache = HashMap<(StoreKey, Option<String>), (String, Arc<CachedClient>, Instant)>;

/// A plugin client and the values recently read through it (see coalesce.rs).
pub struct CachedClient {
    client: StoreClient,
    /// Values read through this client, reused within the coalescing window.
    pub values: ValueCache,
}

impl std::ops::Deref for CachedClient {
    type Target = StoreClient;

    fn deref(&self) -> &StoreClient {
        &self.client
    }
}

/// Store clients kept per namespace; past this the least recently used one is dropped (it is
/// opened again when next needed), so one tenant's stores cannot grow the cache without bound.
pub const CLIENTS_PER_NAMESPACE: usize = 256;

/// The namespace whose share a cached client counts against (`""`: cluster-wide).
fn quota_namespace(key: &(StoreKey, Option<String>)) -> &str {
    match key {
        (StoreKey::Namespaced { namespace, .. }, _) => namespace,
        (StoreKey::Cluster { .. }, Some(referent)) => referent,
        (StoreKey::Cluster { .. }, None) => "",
    }
}

/// Drop the least recently used clients of `namespace` beyond `cap`.
fn enforce_cap<V>(
    cache: &mut HashMap<(StoreKey, Option<String>), (String, V, Instant)>,
    namespace: &str,
    cap: usize,
) -> Vec<V> {
    let mut mine: Vec<((StoreKey, Option<String>), Instant)> = cache
        .iter()
        .filter(|(k, _)| quota_namespace(k) == namespace)
        .map(|(k, (_, _, used))| (k.clone(), *used))
        .collect();
    if mine.len() <= cap {
        return Vec::new();
    }
    mine.sort_by_key(|(_, used)| *used);
    let excess = mine.len() - cap;
    mine.into_iter()
        .take(excess)
        .filter_map(|(k, _)| cache.remove(&k).map(|(_, c, _)| c))
        .collect()
}

/// A store's provider entry as one revision of the store object holds it: computed once per
/// revision, not once per reconcile (a fake store's data or a long config serialised for every
/// ExternalSecret cost most of the controller's CPU and transient memory at 10,000
/// ExternalSecrets).
struct ProviderEntry {
    revision: String,
    plugin: String,
    config: serde_json::Value,
    referent_refs: bool,
    fingerprint: String,
}

/// The revision of a store object that identifies its spec: uid and generation (which the API
/// server bumps on every spec change). `None` when either is missing.
pub fn store_revision(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<String> {
    Some(format!("{}/{}", meta.uid.as_deref()?, meta.generation?))
}

/// The cache of plugin clients.
pub struct StoreClients {
    host: PluginHost,
    policy: PluginPolicy,
    client: kube::Client,
    cache: Mutex<ClientCache>,
    entries: Mutex<HashMap<StoreKey, Arc<ProviderEntry>>>,
}

impl StoreClients {
    /// An empty cache.
    pub fn new(host: PluginHost, policy: PluginPolicy, client: kube::Client) -> Self {
        StoreClients {
            host,
            policy,
            client,
            cache: Mutex::new(HashMap::new()),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The plugin host.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// The provider entry of `spec` at `revision` (see [`store_revision`]): reused while the
    /// revision stays the same; computed every time when there is no revision.
    fn entry(
        &self,
        key: &StoreKey,
        spec: &SecretStoreSpec,
        revision: Option<&str>,
    ) -> Result<Arc<ProviderEntry>, ProviderError> {
        if let Some(revision) = revision
            && let Some(entry) = self
                .entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
            && entry.revision == revision
        {
            return Ok(entry.clone());
        }
        let (plugin, config) = spec
            .provider_entry()
            .map_err(|e| ProviderError::InvalidConfig(e.to_string().into()))?;
        let entry = Arc::new(ProviderEntry {
            revision: revision.unwrap_or_default().to_string(),
            referent_refs: has_referent_refs(&config) || names_the_namespace(&config),
            fingerprint: format!("{plugin}\n{config}"),
            plugin,
            config,
        });
        if revision.is_some() {
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone(), entry.clone());
        }
        Ok(entry)
    }

    /// The client for `key` with `spec` (at `revision`, see [`store_revision`]), for an
    /// ExternalSecret in `es_namespace` (`None` when validating the store itself).
    pub fn client(
        &self,
        key: &StoreKey,
        spec: &SecretStoreSpec,
        revision: Option<&str>,
        es_namespace: Option<&str>,
    ) -> Result<Arc<CachedClient>, ProviderError> {
        let entry = self.entry(key, spec, revision)?;
        let (rules, referent) = match key {
            StoreKey::Namespaced { namespace, .. } => (
                NamespaceRules::Namespaced {
                    store_namespace: namespace.clone(),
                },
                None,
            ),
            StoreKey::Cluster { .. } => {
                let referent = if entry.referent_refs {
                    es_namespace.map(str::to_string)
                } else {
                    None
                };
                (
                    NamespaceRules::Cluster {
                        referent_namespace: referent.clone(),
                    },
                    referent,
                )
            }
        };
        let cache_key = (key.clone(), referent.clone());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((fp, client, used)) = cache.get_mut(&cache_key)
            && *fp == entry.fingerprint
        {
            *used = Instant::now();
            return Ok(client.clone());
        }
        let plugin = &entry.plugin;
        let meta = self
            .host
            .plugin(plugin)
            .map(|p| p.meta.clone())
            .ok_or_else(|| {
                ProviderError::InvalidConfig(
                    format!(
                        "no plugin provides spec.provider.{plugin}; load one with --plugin-dir"
                    )
                    .into(),
                )
            })?;
        let egress = self
            .policy
            .egress(&meta)
            .map_err(|e| ProviderError::InvalidConfig(format!("{e:#}").into()))?;
        let context = match key {
            StoreKey::Namespaced { namespace, name } => StoreContext::secret_store(namespace, name),
            StoreKey::Cluster { name } => {
                StoreContext::cluster_secret_store(name, referent.as_deref())
            }
        };
        let client = Arc::new(CachedClient {
            values: ValueCache::default(),
            client: self.host.open_store(StoreSpec {
                context,
                plugin: plugin.clone(),
                config: entry.config.clone(),
                settings: self.policy.settings(plugin),
                egress,
                services: Arc::new(KubeServices::new(self.client.clone(), rules)),
                ambient: self.policy.ambient(&meta),
                api_audience_tokens: self.policy.api_audience_allowed(&meta),
            })?,
        });
        let namespace = quota_namespace(&cache_key).to_string();
        // A changed config replaces the old client here; dropping it frees its instances.
        let replaced = cache.insert(
            cache_key,
            (entry.fingerprint.clone(), client.clone(), Instant::now()),
        );
        let evicted = enforce_cap(&mut cache, &namespace, CLIENTS_PER_NAMESPACE);
        drop(cache);
        drop((replaced, evicted));
        Ok(client)
    }

    /// Forget every client of a deleted store (its idle plugin instances are freed as soon as
    /// no call is using the client).
    pub fn forget(&self, key: &StoreKey) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        let mut gone = Vec::new();
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _), (_, client, _)| {
                if k == key {
                    gone.push(client.clone());
                }
                k != key
            });
        drop(gone);
    }

    /// The stores that have clients.
    pub fn keys(&self) -> std::collections::HashSet<StoreKey> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// How many clients are cached (for tests and metrics).
    pub fn len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no client is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_namespace_keeps_at_most_its_cap_of_clients_dropping_the_least_recently_used() {
        let mut cache: HashMap<(StoreKey, Option<String>), (String, u32, Instant)> = HashMap::new();
        let start = Instant::now();
        for i in 0..5u32 {
            let key = StoreKey::Namespaced {
                namespace: "tenant".into(),
                name: format!("s{i}"),
            };
            cache.insert(
                (key, None),
                (
                    String::new(),
                    i,
                    start + std::time::Duration::from_secs(i.into()),
                ),
            );
        }
        let other = (
            StoreKey::Cluster {
                name: "shared".into(),
            },
            Some("other".to_string()),
        );
        cache.insert(other.clone(), (String::new(), 99, start));
        let mut evicted = enforce_cap(&mut cache, "tenant", 3);
        evicted.sort();
        assert_eq!(evicted, vec![0, 1], "the two least recently used go");
        assert_eq!(cache.len(), 4);
        assert!(cache.contains_key(&other), "other namespaces are untouched");
        assert_eq!(quota_namespace(&other), "other");
    }

    #[test]
    fn session_tag_policies_make_clients_per_namespace() {
        assert!(names_the_namespace(
            &serde_json::json!({"sessionTagsPolicy": "Simple"})
        ));
        assert!(names_the_namespace(
            &serde_json::json!({"sessionTagsPolicy": "Custom"})
        ));
        assert!(!names_the_namespace(
            &serde_json::json!({"sessionTagsPolicy": "None"})
        ));
        assert!(!names_the_namespace(&serde_json::json!({})));
    }

    #[test]
    fn references_without_namespace_are_referent() {
        let referent =
            json!({"auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "aws", "key": "id"}}}});
        assert!(has_referent_refs(&referent));
        let explicit = json!({"auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "aws", "key": "id", "namespace": "infra"}}}});
        assert!(!has_referent_refs(&explicit));
        let sa = json!({"auth": {"jwt": {"serviceAccountRef": {"name": "irsa"}}}});
        assert!(has_referent_refs(&sa));
    }

    #[test]
    fn static_configs_are_not_referent() {
        let fake = json!({"data": [{"key": "db", "value": "x"}]});
        assert!(!has_referent_refs(&fake));
    }
}
