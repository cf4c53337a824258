//! Shares of the sync permits per store and per namespace, taken before the global ones.
//!
//! A sync holds a global permit (`--concurrency`) while it calls providers, and one call can
//! take up to the plugin deadline. Without shares, 32 ExternalSecrets on one slow or failing
//! store hold every global permit and every other tenant waits. So a sync first takes a permit
//! of each store it reads (`--concurrency-per-store`), then one of its namespace
//! (`--concurrency-per-namespace`), and only then a global one: what waits on a slow store
//! waits in that store's queue, holding nothing anyone else needs.
//!
//! Permits are always taken in the same order (stores sorted, then namespace, then global),
//! so two syncs can never hold each other's next permit. Semaphores exist only while someone
//! holds or waits for them: the maps do not grow with the stores and namespaces ever seen.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `limit` holders per key.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limit: usize,
    semaphores: Arc<Mutex<HashMap<K, Arc<Semaphore>>>>,
}

/// A permit of one key; dropping it frees the key's semaphore when no one else uses it.
pub struct KeyedPermit<K: Hash + Eq + Clone> {
    key: K,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    semaphores: Arc<Mutex<HashMap<K, Arc<Semaphore>>>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter of `limit` (at least 1) per key.
    pub fn new(limit: usize) -> Self {
        KeyedLimiter {
            limit: limit.max(1),
            semaphores: Arc::default(),
        }
    }

    /// Wait for a permit of `key`.
    pub async fn acquire(&self, key: K) -> KeyedPermit<K> {
        let semaphore = self
            .semaphores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
            .clone();
        // Never closed, so acquiring cannot fail; if it ever did, the permit is simply absent.
        let permit = semaphore.clone().acquire_owned().await.ok();
        KeyedPermit {
            key,
            semaphore,
            permit,
            semaphores: self.semaphores.clone(),
        }
    }

    /// How many keys have a semaphore now (held or waited for).
    pub fn keys(&self) -> usize {
        self.semaphores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

impl<K: Hash + Eq + Clone> Drop for KeyedPermit<K> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut map = self.semaphores.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are made under this lock, so the count is exact: the map's and ours only
        // means no one else holds or waits for this key.
        if Arc::strong_count(&self.semaphore) == 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_key_makes_only_its_own_callers_wait() {
        let limiter = KeyedLimiter::new(2);
        let a1 = limiter.acquire("slow").await;
        let _a2 = limiter.acquire("slow").await;
        let third = tokio::time::timeout(Duration::from_millis(50), limiter.acquire("slow")).await;
        assert!(third.is_err(), "a third holder of a share of 2 waits");
        let other = tokio::time::timeout(Duration::from_millis(50), limiter.acquire("fast")).await;
        assert!(other.is_ok(), "another key does not wait");
        drop(other);
        drop(a1);
        let third = tokio::time::timeout(Duration::from_millis(50), limiter.acquire("slow")).await;
        assert!(third.is_ok(), "a freed permit goes to the next caller");
    }

    #[tokio::test]
    async fn semaphores_go_when_nobody_holds_or_waits() {
        let limiter = KeyedLimiter::new(1);
        for n in 0..100 {
            let _p = limiter.acquire(n).await;
        }
        assert_eq!(limiter.keys(), 0);
        let held = limiter.acquire(1).await;
        assert_eq!(limiter.keys(), 1);
        drop(held);
        assert_eq!(limiter.keys(), 0);
    }
}
