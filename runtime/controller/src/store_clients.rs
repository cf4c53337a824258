//! One plugin client per store identity: a SecretStore, or a ClusterSecretStore (per referent
//! namespace when its configuration holds references without a namespace, because those
//! resolve in each ExternalSecret's namespace). Clients keep warm plugin instances (sessions,
//! tokens) between reconciles; a client is replaced when the store's provider configuration
//! changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use esox_api::SecretStoreSpec;
use esox_plugin_host::policy::PluginPolicy;
use esox_plugin_host::{NamespaceRules, PluginHost, StoreClient, StoreSpec};
use esox_provider::ProviderError;

use crate::services::KubeServices;

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

/// Clients by store and referent namespace, with the configuration they were opened with.
type ClientCache = HashMap<(StoreKey, Option<String>), (String, Arc<StoreClient>)>;

/// The cache of plugin clients.
pub struct StoreClients {
    host: PluginHost,
    policy: PluginPolicy,
    client: kube::Client,
    cache: Mutex<ClientCache>,
}

impl StoreClients {
    /// An empty cache.
    pub fn new(host: PluginHost, policy: PluginPolicy, client: kube::Client) -> Self {
        StoreClients {
            host,
            policy,
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The plugin host.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// The client for `key` with `spec`, for an ExternalSecret in `es_namespace` (`None` when
    /// validating the store itself).
    pub fn client(
        &self,
        key: &StoreKey,
        spec: &SecretStoreSpec,
        es_namespace: Option<&str>,
    ) -> Result<Arc<StoreClient>, ProviderError> {
        let (plugin, config) = spec
            .provider_entry()
            .map_err(|e| ProviderError::InvalidConfig(e.to_string()))?;
        let (rules, referent) = match key {
            StoreKey::Namespaced { namespace, .. } => (
                NamespaceRules::Namespaced {
                    store_namespace: namespace.clone(),
                },
                None,
            ),
            StoreKey::Cluster { .. } => {
                let referent = if has_referent_refs(&config) {
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
        let fingerprint = format!("{plugin}\n{config}");
        let cache_key = (key.clone(), referent.clone());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((fp, client)) = cache.get(&cache_key)
            && *fp == fingerprint
        {
            return Ok(client.clone());
        }
        let meta = self
            .host
            .plugin(&plugin)
            .map(|p| p.meta.clone())
            .ok_or_else(|| {
                ProviderError::InvalidConfig(format!(
                    "no plugin provides spec.provider.{plugin}; load one with --plugin-dir"
                ))
            })?;
        let egress = self
            .policy
            .egress(&meta)
            .map_err(|e| ProviderError::InvalidConfig(format!("{e:#}")))?;
        let identity = match &referent {
            Some(ns) => format!("{key}@{ns}"),
            None => key.to_string(),
        };
        let client = Arc::new(self.host.open_store(StoreSpec {
            identity,
            plugin: plugin.clone(),
            config,
            settings: self.policy.settings(&plugin),
            egress,
            services: Arc::new(KubeServices::new(self.client.clone(), rules)),
        })?);
        cache.insert(cache_key, (fingerprint, client.clone()));
        Ok(client)
    }

    /// Forget every client of a deleted store.
    pub fn forget(&self, key: &StoreKey) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _), _| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
