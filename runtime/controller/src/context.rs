//! What every reconcile shares: the API client, the plugin clients, the watch caches, the
//! indexes that map Secrets and stores back to ExternalSecrets, metrics and the event recorder.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::events::{Recorder, Reporter};
use esox_api::{ClusterSecretStore, ExternalSecret, ExternalSecretStatus, SecretStore};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::parking::Parking;
use crate::store_clients::{StoreClients, StoreKey};
use crate::target::TargetKind;

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
    /// Syncs in flight at once per store: a slow or failing store holds no more than this of
    /// the global permits (see fairness.rs).
    pub concurrency_per_store: usize,
    /// Syncs in flight at once per namespace.
    pub concurrency_per_namespace: usize,
    /// The shortest refresh interval esox honours; shorter non-zero `refreshInterval`s are
    /// raised to it. Zero: no floor (ESO's behaviour).
    pub min_refresh_interval: Duration,
    /// How long a value read for one ExternalSecret may be reused by others reading the same
    /// remote reference through the same store client (see coalesce.rs). Zero: never.
    pub coalesce_window: Duration,
    /// ESO's `--unsafe-allow-generic-targets`. esox does not write generic targets
    /// (`target.manifest`) yet: with or without it they are refused, with a message that says
    /// which.
    pub allow_generic_targets: bool,
    /// Which Events a successful sync posts: ESO's (`Created`/`Updated` for every write) or
    /// none (failures still post their Warning Events).
    pub sync_events: SyncEvents,
}

/// Which Events successful syncs post.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncEvents {
    /// ESO's behaviour: a Normal `Created` or `Updated` Event for every write of a target.
    #[default]
    All,
    /// Only failures post Events: a write's success is in the ExternalSecret's status
    /// (Ready, `refreshTime`) and metrics, and the API server is spared one write per sync.
    Failures,
}

impl SyncEvents {
    /// `all` or `failures`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "all" => Ok(SyncEvents::All),
            "failures" => Ok(SyncEvents::Failures),
            other => Err(format!("{other:?}: expected all or failures")),
        }
    }

    /// Whether a successful write posts its Normal Event.
    pub fn on_success(self) -> bool {
        self == SyncEvents::All
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: None,
            controller_class: "default".into(),
            concurrency: 32,
            store_requeue_interval: Duration::from_secs(300),
            enable_flood_gate: true,
            concurrency_per_store: 16,
            concurrency_per_namespace: 16,
            min_refresh_interval: Duration::ZERO,
            coalesce_window: Duration::from_secs(120),
            sync_events: SyncEvents::All,
            allow_generic_targets: false,
        }
    }
}

/// What one ExternalSecret was last seen to use.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Uses {
    target: (String, String),
    stores: Vec<StoreKey>,
}

#[derive(Default)]
struct IndexMaps {
    /// ExternalSecrets by the `(namespace, name)` of the Secret they write.
    targets: HashMap<(String, String), HashSet<ObjectRef<ExternalSecret>>>,
    /// ExternalSecrets by the store they read.
    store_users: HashMap<StoreKey, HashSet<ObjectRef<ExternalSecret>>>,
    /// The other two, inverted: what each ExternalSecret uses now.
    uses: HashMap<ObjectRef<ExternalSecret>, Uses>,
}

impl IndexMaps {
    fn unlink(&mut self, es: &ObjectRef<ExternalSecret>) -> Option<Uses> {
        let old = self.uses.remove(es)?;
        if let Some(set) = self.targets.get_mut(&old.target) {
            set.remove(es);
            if set.is_empty() {
                self.targets.remove(&old.target);
            }
        }
        for store in &old.stores {
            if let Some(set) = self.store_users.get_mut(store) {
                set.remove(es);
                if set.is_empty() {
                    self.store_users.remove(store);
                }
            }
        }
        Some(old)
    }
}

/// An ExternalSecret dropped from the index, with the `(namespace, name)` of its Secret.
pub type Gone = (ObjectRef<ExternalSecret>, (String, String));

/// Which ExternalSecrets look at which Secrets and stores, learnt while reconciling; watch
/// events on a Secret or store are mapped back through it.
///
/// Each ExternalSecret has one entry, replaced on every reconcile (`apply`: a changed target or
/// store drops the old links), removed when it is deleted (`delete`), and after a relist of
/// the watch every entry the list no longer has is dropped (`reset`), so the index holds what
/// exists now and nothing more.
#[derive(Default)]
pub struct Index {
    maps: RwLock<IndexMaps>,
}

impl Index {
    /// Record that `es` writes Secret `namespace/secret` and reads `stores`, replacing what it
    /// used before.
    pub fn apply(
        &self,
        es: &ObjectRef<ExternalSecret>,
        namespace: &str,
        secret: &str,
        stores: &[StoreKey],
    ) {
        let uses = Uses {
            target: (namespace.to_string(), secret.to_string()),
            stores: stores.to_vec(),
        };
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        if maps.uses.get(es) == Some(&uses) {
            return;
        }
        maps.unlink(es);
        maps.targets
            .entry(uses.target.clone())
            .or_default()
            .insert(es.clone());
        for s in &uses.stores {
            maps.store_users
                .entry(s.clone())
                .or_default()
                .insert(es.clone());
        }
        maps.uses.insert(es.clone(), uses);
    }

    /// Forget `es`; returns the Secret it wrote, if it was known.
    pub fn delete(&self, es: &ObjectRef<ExternalSecret>) -> Option<(String, String)> {
        self.maps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .unlink(es)
            .map(|u| u.target)
    }

    /// Keep only the ExternalSecrets in `live` (a fresh list); returns the ones dropped, each
    /// with the Secret it wrote.
    pub fn reset(&self, live: &HashSet<ObjectRef<ExternalSecret>>) -> Vec<Gone> {
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<_> = maps
            .uses
            .keys()
            .filter(|es| !live.contains(*es))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|es| maps.unlink(&es).map(|u| (es, u.target)))
            .collect()
    }

    /// ExternalSecrets that write this Secret.
    pub fn writers_of(&self, namespace: &str, secret: &str) -> Vec<ObjectRef<ExternalSecret>> {
        self.maps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .targets
            .get(&(namespace.to_string(), secret.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// ExternalSecrets that read this store.
    pub fn users_of(&self, store: &StoreKey) -> Vec<ObjectRef<ExternalSecret>> {
        self.maps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .store_users
            .get(store)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many ExternalSecrets, Secrets and stores the index holds.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        (maps.uses.len(), maps.targets.len(), maps.store_users.len())
    }
}

/// The key of an ExternalSecret in the per-object maps (failures, statuses, errors).
pub fn es_key(namespace: &str, name: &str) -> String {
    format!("ExternalSecret/{namespace}/{name}")
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
    /// The sync permits (global pools, store and namespace shares) and the reconciles parked
    /// while they wait for them (parking.rs).
    pub parking: Arc<Parking>,
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

    /// Record the resourceVersion the Secret watch saw, for Secrets an ExternalSecret writes
    /// (the watch sees every managed Secret, ESO's and orphaned ones too: those are not kept).
    pub fn observe_secret(&self, namespace: &str, name: &str, resource_version: Option<String>) {
        self.observe_target(TargetKind::Secret, namespace, name, resource_version);
    }

    /// [`Context::observe_secret`] for a target of `kind` (a ConfigMap target's watch).
    pub fn observe_target(
        &self,
        kind: TargetKind,
        namespace: &str,
        name: &str,
        resource_version: Option<String>,
    ) {
        if self.index.writers_of(namespace, name).is_empty() {
            return;
        }
        let key = (namespace.to_string(), kind.write_key(name));
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

    /// Forget what esox wrote to a Secret it deleted.
    pub fn forget_write(&self, namespace: &str, name: &str) {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_string(), name.to_string()));
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

    /// Drop everything kept about a deleted ExternalSecret: its index entry, failure count,
    /// last error, last status, metric series, and the resourceVersions of its Secret when no
    /// other ExternalSecret writes it.
    pub fn forget_external_secret(&self, es: &ObjectRef<ExternalSecret>) {
        let target = self.index.delete(es);
        self.forget_unindexed(es, target);
    }

    /// After a relist: forget every ExternalSecret the list no longer has.
    pub fn forget_all_but(&self, live: &HashSet<ObjectRef<ExternalSecret>>) -> usize {
        let gone = self.index.reset(live);
        let n = gone.len();
        for (es, target) in gone {
            self.forget_unindexed(&es, Some(target));
        }
        n
    }

    fn forget_unindexed(&self, es: &ObjectRef<ExternalSecret>, target: Option<(String, String)>) {
        self.parking.forget(es);
        let namespace = es.namespace.clone().unwrap_or_default();
        let key = es_key(&namespace, &es.name);
        if let Some((ns, secret)) = target
            && self.index.writers_of(&ns, &secret).is_empty()
        {
            for key in [
                TargetKind::Secret.write_key(&secret),
                TargetKind::ConfigMap.write_key(&secret),
            ] {
                self.forget_write(&ns, &key);
                self.observed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(ns.clone(), key));
            }
        }
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        self.last_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        self.metrics.forget_external_secret(&es.name, &namespace);
    }

    /// Drop everything kept about a deleted store: its plugin clients (and their instances),
    /// failure count and metric series.
    pub fn forget_store(&self, store: &StoreKey) {
        self.stores.forget(store);
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&store.to_string());
        match store {
            StoreKey::Namespaced { namespace, name } => {
                self.metrics.forget_store(Some(namespace), name)
            }
            StoreKey::Cluster { name } => self.metrics.forget_store(None, name),
        }
    }

    /// How many entries the per-object maps hold, summed (for the churn check and tests).
    pub fn tracked(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            + self.written.lock().unwrap_or_else(|e| e.into_inner()).len()
            + self
                .last_errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len()
            + self
                .statuses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len()
            + self
                .observed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len()
    }

    /// Reset the failure count of `key`.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn sync_events_parse_and_only_all_posts_on_success() {
        assert_eq!(SyncEvents::parse("all"), Ok(SyncEvents::All));
        assert_eq!(SyncEvents::parse("failures"), Ok(SyncEvents::Failures));
        assert!(
            SyncEvents::parse("none")
                .unwrap_err()
                .contains("all or failures")
        );
        assert!(SyncEvents::All.on_success());
        assert!(!SyncEvents::Failures.on_success());
        assert_eq!(
            Config::default().sync_events,
            SyncEvents::All,
            "ESO's by default"
        );
    }

    use super::*;

    fn es(ns: &str, name: &str) -> ObjectRef<ExternalSecret> {
        ObjectRef::new(name).within(ns)
    }

    fn store(name: &str) -> StoreKey {
        StoreKey::Namespaced {
            namespace: "team".into(),
            name: name.into(),
        }
    }

    #[test]
    fn apply_replaces_what_an_external_secret_used_before() {
        let index = Index::default();
        let a = es("team", "a");
        index.apply(&a, "team", "db", &[store("aws")]);
        assert_eq!(index.writers_of("team", "db"), vec![a.clone()]);
        assert_eq!(index.users_of(&store("aws")), vec![a.clone()]);

        // A new target and another store: the old links go.
        index.apply(&a, "team", "db2", &[store("vault")]);
        assert!(index.writers_of("team", "db").is_empty());
        assert!(index.users_of(&store("aws")).is_empty());
        assert_eq!(index.writers_of("team", "db2"), vec![a.clone()]);
        assert_eq!(index.users_of(&store("vault")), vec![a]);
        assert_eq!(index.sizes(), (1, 1, 1));
    }

    #[test]
    fn delete_drops_only_that_external_secret() {
        let index = Index::default();
        let (a, b) = (es("team", "a"), es("team", "b"));
        index.apply(&a, "team", "shared", &[store("aws")]);
        index.apply(&b, "team", "shared", &[store("aws")]);
        assert_eq!(index.delete(&a), Some(("team".into(), "shared".into())));
        assert_eq!(index.writers_of("team", "shared"), vec![b.clone()]);
        assert_eq!(index.users_of(&store("aws")), vec![b.clone()]);
        assert_eq!(index.delete(&a), None, "a second delete finds nothing");
        index.delete(&b);
        assert_eq!(index.sizes(), (0, 0, 0), "empty sets are removed too");
    }

    #[test]
    fn reset_keeps_only_what_the_relist_returned() {
        let index = Index::default();
        let names = ["a", "b", "c", "d"];
        for n in names {
            index.apply(&es("team", n), "team", n, &[store(n)]);
        }
        let live: HashSet<_> = [es("team", "b"), es("team", "d"), es("team", "new")].into();
        let mut gone = index.reset(&live);
        gone.sort_by(|x, y| x.0.name.cmp(&y.0.name));
        assert_eq!(
            gone,
            vec![
                (es("team", "a"), ("team".into(), "a".into())),
                (es("team", "c"), ("team".into(), "c".into()))
            ]
        );
        assert_eq!(index.sizes(), (2, 2, 2));
        assert!(index.writers_of("team", "a").is_empty());
        assert_eq!(index.writers_of("team", "d"), vec![es("team", "d")]);
        // Same namespace and name elsewhere stay apart.
        assert!(index.writers_of("other", "b").is_empty());
    }
}
