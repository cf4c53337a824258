//! What every reconcile shares: the API client, the plugin clients, the watch caches, the
//! indexes that map Secrets and stores back to ExternalSecrets, metrics and the event recorder.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use esox_api::{ClusterSecretStore, ExternalSecret, ExternalSecretStatus, SecretStore};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::store_clients::{StoreClients, StoreKey};

/// The field manager of every write esox makes (Secrets and status), so ownership of fields is
/// visible in `managedFields` and server-side apply can remove what esox stops setting.
pub const FIELD_MANAGER: &str = "esox";

/// Operator settings of the controller.
#[derive(Clone, Debug)]
pub struct Config {
    /// Watch only this namespace (ExternalSecrets, SecretStores, Secrets); `None` = all.
    pub namespace: Option<String>,
    /// Serve only stores whose `spec.controller` is empty or equals this.
    pub controller_class: String,
    /// ExternalSecret syncs in flight at once, for first syncs and for refreshes each.
    pub concurrency: usize,
    /// How often a store is validated again when it sets no `refreshInterval`.
    pub store_requeue_interval: Duration,
    /// Refuse to sync from a store that is not Ready=True (ESO's flood gate).
    pub enable_flood_gate: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: None,
            controller_class: "default".into(),
            concurrency: 32,
            store_requeue_interval: Duration::from_secs(300),
            enable_flood_gate: true,
        }
    }
}

/// ExternalSecrets by the `(namespace, name)` of the Secret they write.
type TargetIndex = HashMap<(String, String), HashSet<ObjectRef<ExternalSecret>>>;

/// Which ExternalSecrets look at which Secrets and stores, learnt while reconciling; watch
/// events on a Secret or store are mapped back through it.
#[derive(Default)]
pub struct Index {
    targets: RwLock<TargetIndex>,
    store_users: RwLock<HashMap<StoreKey, HashSet<ObjectRef<ExternalSecret>>>>,
}

impl Index {
    /// Record that `es` writes Secret `namespace/name` and reads `stores`.
    pub fn record(
        &self,
        es: &ObjectRef<ExternalSecret>,
        namespace: &str,
        secret: &str,
        stores: &[StoreKey],
    ) {
        self.targets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry((namespace.to_string(), secret.to_string()))
            .or_default()
            .insert(es.clone());
        let mut users = self.store_users.write().unwrap_or_else(|e| e.into_inner());
        for s in stores {
            users.entry(s.clone()).or_default().insert(es.clone());
        }
    }

    /// ExternalSecrets that write this Secret.
    pub fn writers_of(&self, namespace: &str, secret: &str) -> Vec<ObjectRef<ExternalSecret>> {
        self.targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(namespace.to_string(), secret.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// ExternalSecrets that read this store.
    pub fn users_of(&self, store: &StoreKey) -> Vec<ObjectRef<ExternalSecret>> {
        self.store_users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(store)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Shared state of the reconcilers.
pub struct Context {
    pub client: kube::Client,
    pub config: Config,
    pub stores: Arc<StoreClients>,
    pub secret_stores: Store<SecretStore>,
    pub cluster_secret_stores: Store<ClusterSecretStore>,
    pub index: Index,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// Permits for syncs of ExternalSecrets that never synced: they never wait behind refreshes.
    pub first_syncs: Semaphore,
    /// Permits for refreshes of ExternalSecrets that synced before.
    pub refreshes: Semaphore,
    /// Permits for building Secrets (templates, decoding) on the blocking pool: one per core,
    /// so renders never run on, or starve, the async workers that serve every tenant.
    pub builds: Arc<Semaphore>,
    /// Consecutive failures per object, for backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// The resourceVersion of each Secret as esox last wrote it: a Secret still at that version
    /// is intact without reading its data.
    pub written: Mutex<HashMap<(String, String), String>>,
    /// The last error event per ExternalSecret, so a repeating failure emits one event.
    pub last_errors: Mutex<HashMap<String, String>>,
    /// The status esox last wrote per ExternalSecret (with its uid): newer than the watch
    /// cache right after a write.
    pub statuses: Mutex<HashMap<String, (String, ExternalSecretStatus)>>,
    /// The resourceVersion of each managed Secret as the (metadata-only) watch last saw it.
    pub observed: Mutex<HashMap<(String, String), String>>,
}

impl Context {
    /// The event recorder's identity.
    pub fn reporter() -> Reporter {
        Reporter {
            controller: "esox".into(),
            instance: std::env::var("POD_NAME").ok(),
        }
    }

    /// Count a failure of `key` and return how many in a row.
    pub fn failed(&self, key: &str) -> u32 {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Record the resourceVersion the Secret watch saw.
    pub fn observe_secret(&self, namespace: &str, name: &str, resource_version: Option<String>) {
        let key = (namespace.to_string(), name.to_string());
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        match resource_version {
            Some(rv) => {
                observed.insert(key, rv);
            }
            None => {
                observed.remove(&key);
            }
        }
    }

    /// Record the resourceVersion esox just wrote (or verified). It is also the newest version
    /// known, so the watch's view is brought forward to it: a reconcile that runs before the
    /// watch delivers esox's own write then needs no read.
    pub fn remember_write(&self, namespace: &str, name: &str, resource_version: String) {
        let key = (namespace.to_string(), name.to_string());
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), resource_version.clone());
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, resource_version);
    }

    /// Whether the Secret is, as far as the watch knows, at the version esox last wrote.
    pub fn secret_unchanged_since_write(&self, namespace: &str, name: &str) -> bool {
        let key = (namespace.to_string(), name.to_string());
        let written = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let observed = self
            .observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        matches!((written, observed), (Some(w), Some(o)) if w == o)
    }

    /// Reset the failure count of `key`.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}
