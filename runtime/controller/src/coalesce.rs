//! Coalescing reads within a refresh wave: values one ExternalSecret read through a store
//! client are reused by the next ExternalSecrets asking that client for the same remote
//! reference, for a short time. With N ExternalSecrets over K remote keys a wave then costs the
//! backend K calls instead of N (the fake store in `esox-bench`: 10,000 ExternalSecrets over
//! 1,000 keys), which is what the backend's rate limits and bills see.
//!
//! What bounds the reuse:
//! - one cache per store client, and a client exists per store *revision* and referent
//!   namespace: a changed store, or a ClusterSecretStore authenticating per namespace, never
//!   shares values;
//! - a value is reused only while it is younger than [`max_age`]: `--coalesce-window`
//!   (default 2 min: a refresh wave of 10,000 ExternalSecrets takes about a minute on two
//!   cores), and at most a tenth of the reading ExternalSecret's `refreshInterval`,
//!   so a value is never stale by more than a small part of the interval its owner asked for;
//! - an ExternalSecret whose spec or annotations changed since its last sync (an edit, or
//!   ESO's `force-sync` annotation) reads the backend itself, as do ExternalSecrets whose
//!   refresh interval is below ten times the smallest tick;
//! - only successful values are kept (an error is retried by the next reader), and entries
//!   older than the window are swept when the cache has doubled since the last sweep (at
//!   least [`PRUNE_AT`]); past [`MAX_ENTRIES`] nothing new is kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use esox_provider::RemoteRef;

/// Entries at which expired ones are swept on insert.
pub const PRUNE_AT: usize = 4_096;
/// Hard cap on entries per store client.
pub const MAX_ENTRIES: usize = 65_536;

/// How old a reused value may be for an ExternalSecret refreshing every `refresh` (`None`:
/// never refreshes) when the operator's window is `window`. Zero disables reuse.
pub fn max_age(window: Duration, refresh: Option<Duration>) -> Duration {
    match refresh {
        Some(interval) => window.min(interval / 10),
        None => window,
    }
}

/// How old a reused value may be for this sync of `es`: none when it was edited or
/// force-synced since its last sync (its synced resource version changed: the user is waiting
/// for a fresh read), else [`max_age`] for its refresh interval. First syncs and periodic
/// refreshes coalesce.
pub fn reuse_for(
    window: Duration,
    es: &esox_api::ExternalSecret,
    old_status: Option<&esox_api::ExternalSecretStatus>,
) -> Duration {
    let changed_since_sync = old_status
        .and_then(|s| s.synced_resource_version.as_deref())
        .is_some_and(|v| !v.is_empty() && v != esox_sync::synced_resource_version(es));
    if changed_since_sync {
        return Duration::ZERO;
    }
    let interval = es.spec.refresh_interval().ok().filter(|d| !d.is_zero());
    max_age(window, interval)
}

/// Recently read values of one store client.
#[derive(Default)]
pub struct ValueCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<RemoteRef, (Instant, Vec<u8>)>,
    /// Size at which the next sweep runs: twice what survived the last one (at least
    /// [`PRUNE_AT`]), so sweeping costs O(1) per insert however many entries are live.
    sweep_at: usize,
}

impl ValueCache {
    /// For each of `refs`, the cached value when younger than `max_age` at `now`.
    pub fn lookup(
        &self,
        refs: &[RemoteRef],
        now: Instant,
        max_age: Duration,
    ) -> Vec<Option<Vec<u8>>> {
        if max_age.is_zero() {
            return vec![None; refs.len()];
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        refs.iter()
            .map(|r| match entries.map.get(r) {
                Some((read_at, value)) if now.saturating_duration_since(*read_at) <= max_age => {
                    Some(value.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Keep `value` of `remote`, read by a call that started at `read_at`.
    pub fn insert(&self, remote: &RemoteRef, read_at: Instant, value: &[u8], window: Duration) {
        if window.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Entries { map, sweep_at } = &mut *entries;
        if map.len() >= (*sweep_at).max(PRUNE_AT) && !map.contains_key(remote) {
            map.retain(|_, (at, _)| read_at.saturating_duration_since(*at) <= window);
            *sweep_at = (map.len() * 2).max(PRUNE_AT);
        }
        if map.len() >= MAX_ENTRIES && !map.contains_key(remote) {
            return;
        }
        map.insert(remote.clone(), (read_at, value.to_vec()));
    }

    /// How many values are kept.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(key: &str) -> RemoteRef {
        RemoteRef {
            key: key.into(),
            ..Default::default()
        }
    }

    #[test]
    fn reuse_is_bounded_by_the_window_and_a_tenth_of_the_refresh_interval() {
        let w = Duration::from_secs(30);
        assert_eq!(max_age(w, Some(Duration::from_secs(3600))), w);
        assert_eq!(
            max_age(w, Some(Duration::from_secs(10))),
            Duration::from_secs(1)
        );
        assert_eq!(max_age(w, None), w);
        assert_eq!(max_age(Duration::ZERO, None), Duration::ZERO);
    }

    fn es(refresh: &str, force_sync: &str) -> esox_api::ExternalSecret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "e", "namespace": "n", "generation": 1,
                         "annotations": {"force-sync": force_sync}},
            "spec": {"refreshInterval": refresh, "secretStoreRef": {"name": "s"},
                     "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]},
        }))
        .unwrap()
    }

    #[test]
    fn first_syncs_and_refreshes_coalesce_but_edited_or_force_synced_ones_read_fresh() {
        let w = Duration::from_secs(30);
        let synced = es("1h", "1");
        // First sync: no status yet.
        assert_eq!(reuse_for(w, &synced, None), w);
        let status = esox_api::ExternalSecretStatus {
            synced_resource_version: Some(esox_sync::synced_resource_version(&synced)),
            ..Default::default()
        };
        // A periodic refresh of an unchanged ExternalSecret.
        assert_eq!(reuse_for(w, &synced, Some(&status)), w);
        // Force-synced since (the annotation changed): read the backend.
        assert_eq!(reuse_for(w, &es("1h", "2"), Some(&status)), Duration::ZERO);
        // A 10s interval may take values at most 1 s old; a "sync once" one the window.
        assert_eq!(reuse_for(w, &es("10s", "1"), None), Duration::from_secs(1));
        assert_eq!(reuse_for(w, &es("0", "1"), None), w);
    }

    #[test]
    fn a_value_is_reused_only_while_young_enough() {
        let cache = ValueCache::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(30);
        cache.insert(&r("a"), t0, b"v1", w);
        let hits = cache.lookup(&[r("a"), r("b")], t0 + Duration::from_secs(5), w);
        assert_eq!(hits, vec![Some(b"v1".to_vec()), None]);
        // Too old for a reader that may only take 1 s old values.
        assert_eq!(
            cache.lookup(
                &[r("a")],
                t0 + Duration::from_secs(5),
                Duration::from_secs(1)
            ),
            vec![None]
        );
        assert_eq!(
            cache.lookup(&[r("a")], t0 + Duration::from_secs(31), w),
            vec![None]
        );
        // A zero window keeps nothing.
        let off = ValueCache::default();
        off.insert(&r("a"), t0, b"v1", Duration::ZERO);
        assert!(off.is_empty());
        assert_eq!(off.lookup(&[r("a")], t0, Duration::ZERO), vec![None]);
    }

    #[test]
    fn the_cache_sweeps_expired_entries_and_stops_growing_at_its_cap() {
        let cache = ValueCache::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(30);
        for i in 0..PRUNE_AT {
            cache.insert(&r(&format!("old-{i}")), t0, b"x", w);
        }
        assert_eq!(cache.len(), PRUNE_AT);
        // A minute later the old ones are swept by the next insert.
        cache.insert(&r("new"), t0 + Duration::from_secs(60), b"y", w);
        assert_eq!(cache.len(), 1);
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(&r(&format!("k-{i}")), t0 + Duration::from_secs(60), b"x", w);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
    }
}
