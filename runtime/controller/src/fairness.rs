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

    /// The semaphore of `key`, made if no one holds or waits for it.
    fn semaphore(&self, key: &K) -> Arc<Semaphore> {
        self.semaphores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
            .clone()
    }

    /// Wait for a permit of `key`.
    pub async fn acquire(&self, key: K) -> KeyedPermit<K> {
        let semaphore = self.semaphore(&key);
        // Never closed, so acquiring cannot fail; if it ever did, the permit is simply absent.
        let permit = semaphore.clone().acquire_owned().await.ok();
        KeyedPermit {
            key,
            semaphore,
            permit,
            semaphores: self.semaphores.clone(),
        }
    }

    /// A permit of `key` if one is free now. Never jumps a queue: a key with waiters has no
    /// free permit (a released one goes to the first waiter).
    pub fn try_acquire(&self, key: K) -> Option<KeyedPermit<K>> {
        let semaphore = self.semaphore(&key);
        // Built before the attempt, so that a failed one frees the key's semaphore on drop.
        let mut permit = KeyedPermit {
            key,
            semaphore: semaphore.clone(),
            permit: None,
            semaphores: self.semaphores.clone(),
        };
        permit.permit = Some(semaphore.try_acquire_owned().ok()?);
        Some(permit)
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
    async fn trying_takes_only_a_free_permit_and_leaves_nothing_behind() {
        let limiter = KeyedLimiter::new(1);
        let held = limiter.try_acquire("a").expect("a free permit");
        assert!(
            limiter.try_acquire("a").is_none(),
            "the only permit is held"
        );
        assert!(limiter.try_acquire("b").is_some(), "another key is free");
        // A waiter queues behind the holder; a released permit goes to it, not to a try.
        let waiter = tokio::spawn({
            let semaphores = limiter.semaphores.clone();
            let limiter = KeyedLimiter {
                limit: 1,
                semaphores,
            };
            async move { limiter.acquire("a").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(limiter.try_acquire("a").is_none(), "the waiter's turn");
        let got = waiter.await.unwrap();
        drop(got);
        assert_eq!(limiter.keys(), 0, "failed tries keep no semaphore");
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
