//! Reconciles that wait for their sync permits wait outside kube-runtime's slots.
//!
//! kube-runtime (5.0) spawns every reconcile and keeps the handles in a map whose `poll_next`
//! polls *every* running reconcile until it finds a finished one: one pass per completion.
//! When each of 10,000 queued ExternalSecrets waited for its permits inside its reconcile,
//! that was ~N²/2 = 50 million polls at start-up, half of esox's CPU and a third of its peak
//! memory (docs/benchmark.md). So the controller runs at most [`max_in_flight`] reconciles at
//! once (kube-runtime's own limit), and a reconcile whose permits are not free at once does
//! not wait in its slot: it **parks**.
//!
//! A parked ExternalSecret is one small task that waits for the same permits in the same order
//! as the reconcile would have (stores sorted, then the namespace, then the global pool; see
//! fairness.rs), so the queues, and who waits behind whom, are exactly as before. When it holds
//! them it keeps them for the ExternalSecret and triggers its next reconcile
//! (`Controller::reconcile_on`), which takes them over. So a slot is never spent waiting, and a
//! tenant whose thousands of ExternalSecrets wait on a slow store holds none of them: the
//! limit cannot become the head-of-line blocking the fairness design avoids.
//!
//! Permits a reconcile does not come to take (the ExternalSecret was deleted, or its needs
//! changed) are released after [`CLAIM_TIMEOUT`], or at once when the deletion is seen.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use esox_api::ExternalSecret;
use kube::runtime::reflector::ObjectRef;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::Error;
use crate::fairness::{KeyedLimiter, KeyedPermit};
use crate::metrics::{Metrics, RuntimeMetrics};
use crate::store_clients::StoreKey;

/// How long permits taken for a parked ExternalSecret wait for its reconcile to take them.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(30);

/// Reconciles kube-runtime runs at once for `concurrency` sync permits per pool: the two pools'
/// holders, and as many again for reconciles between two waits (resolving stores, writing a
/// status), so that holders never fill the slots. At least 16.
pub fn max_in_flight(concurrency: usize) -> u16 {
    concurrency
        .saturating_mul(4)
        .clamp(16, u16::MAX as usize)
        .try_into()
        .unwrap_or(u16::MAX)
}

/// Which global pool a sync takes from (see `Context::first_syncs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pool {
    FirstSyncs,
    Refreshes,
}

/// The permits one reconcile needs, in the order they are taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// Sorted, without duplicates.
    stores: Vec<StoreKey>,
    namespace: String,
    pool: Pool,
}

impl Need {
    /// A sync: a share of each store, the namespace's share, a global permit.
    pub fn sync(mut stores: Vec<StoreKey>, namespace: &str, pool: Pool) -> Need {
        stores.sort();
        stores.dedup();
        Need {
            stores,
            namespace: namespace.to_string(),
            pool,
        }
    }

    /// A look at the Secret only (not due): the namespace's share and a global permit.
    pub fn look(namespace: &str, pool: Pool) -> Need {
        Need::sync(Vec::new(), namespace, pool)
    }
}

/// Held permits; dropping them frees them.
pub struct Permits {
    _stores: Vec<KeyedPermit<(StoreKey, Pool)>>,
    _namespace: KeyedPermit<(String, Pool)>,
    _global: OwnedSemaphorePermit,
}

enum Slot {
    /// A task waits for the permits.
    Waiting {
        need: Need,
        task: tokio::task::AbortHandle,
        generation: u64,
    },
    /// The permits are held for the ExternalSecret's next reconcile.
    Held {
        need: Need,
        permits: Permits,
        generation: u64,
    },
}

impl Slot {
    fn generation(&self) -> u64 {
        match self {
            Slot::Waiting { generation, .. } | Slot::Held { generation, .. } => *generation,
        }
    }
}

/// The sync permits, the parked ExternalSecrets, and the trigger that brings each back once
/// its permits are held.
pub struct Parking {
    /// Permits for syncs of ExternalSecrets that never synced: they never wait behind refreshes.
    first_syncs: Arc<Semaphore>,
    /// Permits for refreshes of ExternalSecrets that synced before.
    refreshes: Arc<Semaphore>,
    /// Each store's share of each pool's permits, taken before the global ones. Per pool, so
    /// that a first sync never queues behind the refreshes of its store (or namespace).
    store_shares: KeyedLimiter<(StoreKey, Pool)>,
    /// Each namespace's share of each pool's permits, taken before the global ones.
    namespace_shares: KeyedLimiter<(String, Pool)>,
    metrics: RuntimeMetrics,
    /// Reconciles that parked (`esox_reconciles_parked_total`).
    parked: Counter,
    /// Permits released because no reconcile came to take them.
    unclaimed: Counter,
    claim_timeout: Duration,
    slots: Mutex<HashMap<ObjectRef<ExternalSecret>, Slot>>,
    wake: mpsc::UnboundedSender<ObjectRef<ExternalSecret>>,
    generation: AtomicU64,
}

impl Parking {
    /// `concurrency` global permits per pool, `per_store` and `per_namespace` shares; and the
    /// stream of ExternalSecrets to reconcile again (for `reconcile_on`).
    pub fn new(
        concurrency: usize,
        per_store: usize,
        per_namespace: usize,
        metrics: &Metrics,
    ) -> (
        Arc<Parking>,
        mpsc::UnboundedReceiver<ObjectRef<ExternalSecret>>,
    ) {
        Parking::with_claim_timeout(
            concurrency,
            per_store,
            per_namespace,
            metrics,
            CLAIM_TIMEOUT,
        )
    }

    fn with_claim_timeout(
        concurrency: usize,
        per_store: usize,
        per_namespace: usize,
        metrics: &Metrics,
        claim_timeout: Duration,
    ) -> (
        Arc<Parking>,
        mpsc::UnboundedReceiver<ObjectRef<ExternalSecret>>,
    ) {
        let (wake, woken) = mpsc::unbounded_channel();
        let parking = Parking {
            first_syncs: Arc::new(Semaphore::new(concurrency.max(1))),
            refreshes: Arc::new(Semaphore::new(concurrency.max(1))),
            store_shares: KeyedLimiter::new(per_store),
            namespace_shares: KeyedLimiter::new(per_namespace),
            metrics: metrics.runtime.clone(),
            parked: metrics.reconciles_parked.clone(),
            unclaimed: metrics.parked_permits_unclaimed.clone(),
            claim_timeout,
            slots: Mutex::default(),
            wake,
            generation: AtomicU64::new(0),
        };
        (Arc::new(parking), woken)
    }

    fn pool(&self, pool: Pool) -> Arc<Semaphore> {
        match pool {
            Pool::FirstSyncs => self.first_syncs.clone(),
            Pool::Refreshes => self.refreshes.clone(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<ExternalSecret>, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// ExternalSecrets parked now (waiting, or holding permits for their reconcile).
    pub fn len(&self) -> usize {
        self.slots().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Release whatever is parked for a deleted ExternalSecret.
    pub fn forget(&self, es: &ObjectRef<ExternalSecret>) {
        let slot = self.slots().remove(es);
        if let Some(Slot::Waiting { task, .. }) = &slot {
            task.abort();
        }
    }
}

/// The permits `need` names for `es`: the ones its parked task holds for it, or free ones
/// taken now. `None`: not free, so `es` is parked, and it is reconciled again once its permits
/// are held; the caller returns without waiting.
pub fn permits(
    parking: &Arc<Parking>,
    es: &ObjectRef<ExternalSecret>,
    need: Need,
) -> Result<Option<Permits>, Error> {
    let mut slots = parking.slots();
    match slots.remove(es) {
        Some(Slot::Held {
            need: held,
            permits,
            ..
        }) if held == need => return Ok(Some(permits)),
        // Held for needs this reconcile no longer has (the ExternalSecret or its refresh state
        // changed): released, and the current needs are taken as new.
        Some(Slot::Held { .. }) => {}
        Some(Slot::Waiting {
            need: waited,
            task,
            generation,
        }) => {
            if waited == need {
                // Already in the queues: keep the place rather than take another.
                slots.insert(
                    es.clone(),
                    Slot::Waiting {
                        need: waited,
                        task,
                        generation,
                    },
                );
                return Ok(None);
            }
            task.abort();
        }
        None => {}
    }
    if let Some(permits) = try_take(parking, &need)? {
        return Ok(Some(permits));
    }
    let generation = parking.generation.fetch_add(1, Ordering::Relaxed);
    let task = tokio::spawn(wait(parking.clone(), es.clone(), need.clone(), generation));
    slots.insert(
        es.clone(),
        Slot::Waiting {
            need,
            task: task.abort_handle(),
            generation,
        },
    );
    parking.parked.inc();
    Ok(None)
}

/// Every permit of `need` if all are free now; otherwise none is kept. Only free permits are
/// taken: a semaphore with waiters has none free, so this never jumps a queue.
fn try_take(parking: &Parking, need: &Need) -> Result<Option<Permits>, Error> {
    let mut stores = Vec::with_capacity(need.stores.len());
    for key in &need.stores {
        match parking.store_shares.try_acquire((key.clone(), need.pool)) {
            Some(p) => stores.push(p),
            None => return Ok(None),
        }
    }
    let Some(namespace) = parking
        .namespace_shares
        .try_acquire((need.namespace.clone(), need.pool))
    else {
        return Ok(None);
    };
    let global = match parking.pool(need.pool).try_acquire_owned() {
        Ok(p) => p,
        Err(tokio::sync::TryAcquireError::NoPermits) => return Ok(None),
        Err(e @ tokio::sync::TryAcquireError::Closed) => return Err(Error::Task(e.to_string())),
    };
    Ok(Some(Permits {
        _stores: stores,
        _namespace: namespace,
        _global: global,
    }))
}

/// A parked ExternalSecret: wait for the permits in order, hold them for its reconcile and
/// trigger it; release them if it has not come within [`CLAIM_TIMEOUT`].
async fn wait(parking: Arc<Parking>, es: ObjectRef<ExternalSecret>, need: Need, generation: u64) {
    let waiting = crate::metrics::Waiting::new(&parking.metrics);
    let mut stores = Vec::with_capacity(need.stores.len());
    for key in &need.stores {
        stores.push(parking.store_shares.acquire((key.clone(), need.pool)).await);
    }
    let namespace = parking
        .namespace_shares
        .acquire((need.namespace.clone(), need.pool))
        .await;
    let global = parking.pool(need.pool).acquire_owned().await;
    drop(waiting);
    {
        let mut slots = parking.slots();
        let current = slots.get(&es).map(Slot::generation) == Some(generation);
        let Ok(global) = global else {
            // Shutting down: nothing will take them.
            if current {
                slots.remove(&es);
            }
            return;
        };
        if !current {
            // Superseded or forgotten meanwhile: the permits go back at once.
            return;
        }
        slots.insert(
            es.clone(),
            Slot::Held {
                need,
                permits: Permits {
                    _stores: stores,
                    _namespace: namespace,
                    _global: global,
                },
                generation,
            },
        );
    }
    let _ = parking.wake.send(es.clone());
    tokio::time::sleep(parking.claim_timeout).await;
    let mut slots = parking.slots();
    if let Some(Slot::Held { generation: g, .. }) = slots.get(&es)
        && *g == generation
    {
        slots.remove(&es);
        parking.unclaimed.inc();
        tracing::debug!(externalsecret = %es, "sync permits held for a reconcile that did not come; released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(name: &str) -> ObjectRef<ExternalSecret> {
        ObjectRef::new(name).within("ns")
    }

    fn store(name: &str) -> StoreKey {
        StoreKey::Namespaced {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    async fn next(
        woken: &mut mpsc::UnboundedReceiver<ObjectRef<ExternalSecret>>,
    ) -> Option<ObjectRef<ExternalSecret>> {
        tokio::time::timeout(Duration::from_secs(5), woken.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn a_reconcile_whose_permits_are_taken_parks_and_is_woken_holding_them() {
        let metrics = Metrics::default();
        let (parking, mut woken) = Parking::new(1, 1, 1, &metrics);
        let need = || Need::sync(vec![store("s")], "ns", Pool::FirstSyncs);
        let first = permits(&parking, &es("a"), need()).unwrap();
        assert!(first.is_some(), "free permits are taken at once");
        assert!(
            permits(&parking, &es("b"), need()).unwrap().is_none(),
            "b parks"
        );
        assert_eq!(parking.len(), 1);
        assert_eq!(metrics.reconciles_parked.get(), 1);
        drop(first);
        assert_eq!(
            next(&mut woken).await,
            Some(es("b")),
            "b is triggered again"
        );
        let held = permits(&parking, &es("b"), need()).unwrap();
        assert!(held.is_some(), "b's reconcile takes what was held for it");
        assert!(parking.is_empty());
        // They are b's: nobody else gets them while b holds them.
        assert!(permits(&parking, &es("c"), need()).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_parked_sync_waits_on_its_own_store_only() {
        let metrics = Metrics::default();
        let (parking, _woken) = Parking::new(8, 1, 8, &metrics);
        let _slow = permits(
            &parking,
            &es("a"),
            Need::sync(vec![store("slow")], "ns", Pool::Refreshes),
        )
        .unwrap()
        .unwrap();
        let slow = Need::sync(vec![store("slow")], "ns", Pool::Refreshes);
        assert!(permits(&parking, &es("b"), slow).unwrap().is_none());
        let fast = Need::sync(vec![store("fast")], "ns", Pool::Refreshes);
        assert!(
            permits(&parking, &es("c"), fast).unwrap().is_some(),
            "another store's sync is not behind the slow one's queue"
        );
    }

    #[tokio::test]
    async fn a_first_sync_does_not_queue_behind_its_stores_refreshes() {
        let metrics = Metrics::default();
        let (parking, _woken) = Parking::new(8, 1, 1, &metrics);
        let refresh = || Need::sync(vec![store("s")], "ns", Pool::Refreshes);
        let _held = permits(&parking, &es("a"), refresh()).unwrap().unwrap();
        assert!(
            permits(&parking, &es("b"), refresh()).unwrap().is_none(),
            "b queues"
        );
        let first = Need::sync(vec![store("s")], "ns", Pool::FirstSyncs);
        assert!(
            permits(&parking, &es("new"), first).unwrap().is_some(),
            "a new ExternalSecret of the same store and namespace does not wait behind refreshes"
        );
    }

    #[tokio::test]
    async fn a_second_trigger_keeps_its_place_and_changed_needs_leave_the_queue() {
        let metrics = Metrics::default();
        let (parking, mut woken) = Parking::new(1, 1, 1, &metrics);
        let need = || Need::sync(vec![store("s")], "ns", Pool::FirstSyncs);
        let holder = permits(&parking, &es("a"), need()).unwrap().unwrap();
        assert!(permits(&parking, &es("b"), need()).unwrap().is_none());
        assert!(permits(&parking, &es("b"), need()).unwrap().is_none());
        assert_eq!(metrics.reconciles_parked.get(), 1, "one place in the queue");
        // b's needs changed (now another namespace, free): taken at once, the old wait gone.
        let other = Need::sync(vec![store("t")], "other", Pool::Refreshes);
        assert!(permits(&parking, &es("b"), other).unwrap().is_some());
        assert!(parking.is_empty());
        drop(holder);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), woken.recv())
                .await
                .is_err(),
            "the aborted wait triggers nothing"
        );
        assert!(
            permits(&parking, &es("c"), need()).unwrap().is_some(),
            "and holds nothing"
        );
    }

    #[tokio::test]
    async fn permits_nobody_takes_are_released_after_the_claim_timeout() {
        let metrics = Metrics::default();
        let timeout = Duration::from_millis(200);
        let (parking, mut woken) = Parking::with_claim_timeout(1, 1, 1, &metrics, timeout);
        let need = || Need::look("ns", Pool::Refreshes);
        let holder = permits(&parking, &es("a"), need()).unwrap().unwrap();
        assert!(permits(&parking, &es("b"), need()).unwrap().is_none());
        drop(holder);
        assert_eq!(next(&mut woken).await, Some(es("b")));
        // b's reconcile never comes (say it was not found).
        assert!(permits(&parking, &es("c"), need()).unwrap().is_none());
        assert_eq!(metrics.parked_permits_unclaimed.get(), 0);
        assert_eq!(
            next(&mut woken).await,
            Some(es("c")),
            "released, they go to c"
        );
        assert_eq!(metrics.parked_permits_unclaimed.get(), 1);
    }

    #[tokio::test]
    async fn a_deleted_external_secret_gives_back_what_was_held_for_it() {
        let metrics = Metrics::default();
        let (parking, mut woken) = Parking::new(1, 1, 1, &metrics);
        let need = || Need::look("ns", Pool::FirstSyncs);
        let holder = permits(&parking, &es("a"), need()).unwrap().unwrap();
        assert!(permits(&parking, &es("b"), need()).unwrap().is_none());
        drop(holder);
        assert_eq!(next(&mut woken).await, Some(es("b")));
        parking.forget(&es("b"));
        let c = permits(&parking, &es("c"), need()).unwrap();
        assert!(c.is_some(), "b's permits are free again");
        // A waiting one, forgotten, leaves the queue.
        assert!(permits(&parking, &es("d"), need()).unwrap().is_none());
        parking.forget(&es("d"));
        assert!(parking.is_empty());
    }

    #[test]
    fn in_flight_reconciles_leave_room_beside_the_permit_holders() {
        // Both pools' holders (2 x concurrency) never fill the slots.
        for concurrency in [1, 4, 32, 100, 1000] {
            assert!(max_in_flight(concurrency) as usize > 2 * concurrency.min(16_000));
        }
        assert_eq!(max_in_flight(32), 128);
        assert_eq!(max_in_flight(1), 16);
        assert_eq!(max_in_flight(usize::MAX), u16::MAX);
    }

    #[test]
    fn needs_compare_by_their_sorted_stores() {
        let a = StoreKey::Cluster { name: "a".into() };
        let b = StoreKey::Cluster { name: "b".into() };
        assert_eq!(
            Need::sync(vec![b.clone(), a.clone(), b.clone()], "ns", Pool::Refreshes),
            Need::sync(vec![a.clone(), b.clone()], "ns", Pool::Refreshes)
        );
        assert_ne!(
            Need::sync(vec![a.clone()], "ns", Pool::Refreshes),
            Need::sync(vec![a], "ns", Pool::FirstSyncs)
        );
        assert_ne!(
            Need::look("ns", Pool::Refreshes),
            Need::look("other", Pool::Refreshes)
        );
    }
}
