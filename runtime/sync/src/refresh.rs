//! When an ExternalSecret must be read again (ESO's `shouldRefresh`, `isSecretValid` and
//! `getRequeueResult`): refreshPolicy Periodic / OnChange / CreatedOnce, `refreshInterval: 0`,
//! forced syncs through a changed `syncedResourceVersion`, and the next refresh time.
//!
//! A sync is skipped only when [`should_refresh`] is false **and** [`secret_is_valid`] is true,
//! so a deleted or edited Secret is repaired at once.
//!
//! `syncWindows` gate periodic refreshes only (see windows.rs): a refresh that is due while
//! the windows block it waits, and the requeue points at the next opening.

use std::time::Duration;

use esox_api::{CreationPolicy, ExternalSecret, RefreshPolicy};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::build::ExistingSecret;
use crate::hash::{
    ANNOTATION_DATA_HASH, LABEL_MANAGED, LABEL_MANAGED_VALUE, data_hash, synced_resource_version,
};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// The refresh interval in effect; an unparseable value (refused by the CRD pattern) falls
/// back to ESO's default of one hour. A non-zero interval below the operator's `floor`
/// (`esox run --min-refresh-interval`) is raised to it; zero (never by timer) stays zero.
fn interval(es: &ExternalSecret, floor: Duration) -> Duration {
    let interval = es.spec.refresh_interval().unwrap_or(DEFAULT_INTERVAL);
    if interval.is_zero() {
        interval
    } else {
        interval.max(floor)
    }
}

fn last_refresh(es: &ExternalSecret) -> Option<Timestamp> {
    es.status
        .as_ref()
        .and_then(|s| s.refresh_time.as_ref())
        .map(|t| t.0)
}

fn synced_version(es: &ExternalSecret) -> &str {
    es.status
        .as_ref()
        .and_then(|s| s.synced_resource_version.as_deref())
        .unwrap_or("")
}

/// Whether the ExternalSecret must be read from the provider now, by its refresh policy.
pub fn should_refresh(es: &ExternalSecret, now: Timestamp) -> bool {
    should_refresh_with_floor(es, now, Duration::ZERO)
}

/// [`should_refresh`] with the operator's minimum refresh interval.
pub fn should_refresh_with_floor(es: &ExternalSecret, now: Timestamp, floor: Duration) -> bool {
    let never_synced = synced_version(es).is_empty() || last_refresh(es).is_none();
    match es.spec.refresh_policy() {
        RefreshPolicy::CreatedOnce => never_synced,
        RefreshPolicy::OnChange => {
            never_synced || synced_version(es) != synced_resource_version(es)
        }
        RefreshPolicy::Periodic => should_refresh_periodic(es, now, floor),
    }
}

fn should_refresh_periodic(es: &ExternalSecret, now: Timestamp, floor: Duration) -> bool {
    let interval = interval(es, floor);
    if interval.is_zero() && !synced_version(es).is_empty() {
        return false;
    }
    if synced_version(es) != synced_resource_version(es) {
        return true;
    }
    let Some(last) = last_refresh(es) else {
        return true;
    };
    if last > now {
        return true;
    }
    let due = last.checked_add(SignedDuration::try_from(interval).unwrap_or(SignedDuration::MAX));
    // ESO refreshes when last+interval is strictly before now, and the windows allow it.
    match due {
        Ok(due) => due < now && windows_allow(es, now).0,
        Err(_) => false,
    }
}

fn windows_allow(es: &ExternalSecret, now: Timestamp) -> (bool, Option<Duration>) {
    crate::windows::allowed_at(es.spec.sync_windows.as_ref(), now.as_second())
}

/// Whether the target Secret is as esox left it: it exists, carries the managed label and its
/// data matches the data-hash annotation. Under `creationPolicy: Orphan` it always counts as
/// valid (esox does not repair orphaned Secrets).
pub fn secret_is_valid(es: &ExternalSecret, existing: Option<&ExistingSecret>) -> bool {
    if es.spec.creation_policy() == CreationPolicy::Orphan {
        return true;
    }
    let Some(secret) = existing else {
        return false;
    };
    secret.labels.get(LABEL_MANAGED).map(String::as_str) == Some(LABEL_MANAGED_VALUE)
        && secret.annotations.get(ANNOTATION_DATA_HASH) == Some(&data_hash(&secret.data))
}

/// When to look at the ExternalSecret again after a successful sync (or a skipped one):
/// `None` means never by timer (interval 0), `Some(Duration::ZERO)` means now.
pub fn requeue_after(es: &ExternalSecret, now: Timestamp) -> Option<Duration> {
    requeue_after_with_floor(es, now, Duration::ZERO)
}

/// [`requeue_after`] with the operator's minimum refresh interval.
pub fn requeue_after_with_floor(
    es: &ExternalSecret,
    now: Timestamp,
    floor: Duration,
) -> Option<Duration> {
    let interval = interval(es, floor);
    if interval.is_zero() {
        return None;
    }
    let Some(last) = last_refresh(es) else {
        return Some(interval);
    };
    let since = now.duration_since(last);
    if since.is_negative() {
        return Some(Duration::ZERO);
    }
    let since = Duration::try_from(since).unwrap_or(Duration::ZERO);
    let left = interval.saturating_sub(since);
    if left.is_zero() && es.spec.refresh_policy() == RefreshPolicy::Periodic {
        // Due now: if the windows block it, look again when they allow it (or after another
        // interval when no opening is ahead).
        if let (false, wait) = windows_allow(es, now) {
            return Some(wait.unwrap_or(interval));
        }
    }
    Some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_api::{ExternalSecretSpec, ExternalSecretStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use std::collections::BTreeMap;

    const NOW: i64 = 1_800_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    /// An ExternalSecret at generation 2, last synced `ago` seconds before NOW with the
    /// current version (or never synced when `ago` is None).
    fn es(policy: Option<RefreshPolicy>, interval: &str, ago: Option<i64>) -> ExternalSecret {
        let mut es = ExternalSecret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: ExternalSecretSpec {
                refresh_policy: policy,
                refresh_interval: Some(interval.into()),
                ..Default::default()
            },
            status: None,
        };
        if let Some(ago) = ago {
            es.status = Some(ExternalSecretStatus {
                refresh_time: Some(Time(at(NOW - ago))),
                synced_resource_version: Some(synced_resource_version(&es)),
                ..Default::default()
            });
        }
        es
    }

    fn force_sync(mut es: ExternalSecret) -> ExternalSecret {
        es.metadata.annotations = Some(BTreeMap::from([(
            "force-sync".to_string(),
            "1".to_string(),
        )]));
        es
    }

    #[test]
    fn periodic_refreshes_when_never_synced_or_interval_elapsed() {
        assert!(should_refresh(&es(None, "1h", None), at(NOW)));
        assert!(!should_refresh(&es(None, "1h", Some(600)), at(NOW)));
        assert!(
            !should_refresh(&es(None, "1h", Some(3600)), at(NOW)),
            "exactly due is not yet past"
        );
        assert!(should_refresh(&es(None, "1h", Some(3601)), at(NOW)));
        assert!(should_refresh(
            &es(Some(RefreshPolicy::Periodic), "1m", Some(61)),
            at(NOW)
        ));
    }

    #[test]
    fn the_operator_floor_raises_short_intervals_and_leaves_zero_and_forced_syncs_alone() {
        let floor = Duration::from_secs(60);
        let e = es(None, "5s", Some(10));
        assert!(
            should_refresh(&e, at(NOW)),
            "without a floor 5s is due after 10s"
        );
        assert!(!should_refresh_with_floor(&e, at(NOW), floor));
        assert!(should_refresh_with_floor(
            &es(None, "5s", Some(61)),
            at(NOW),
            floor
        ));
        assert_eq!(
            requeue_after_with_floor(&e, at(NOW), floor),
            Some(Duration::from_secs(50))
        );
        assert_eq!(
            requeue_after_with_floor(&es(None, "2h", Some(10)), at(NOW), floor),
            Some(Duration::from_secs(7190)),
            "longer intervals are untouched"
        );
        assert_eq!(
            requeue_after_with_floor(&es(None, "0", Some(10)), at(NOW), floor),
            None
        );
        assert!(
            should_refresh_with_floor(&force_sync(e), at(NOW), floor),
            "a forced sync is not delayed"
        );
    }

    #[test]
    fn periodic_refreshes_at_once_on_a_changed_annotation() {
        assert!(should_refresh(
            &force_sync(es(None, "1h", Some(10))),
            at(NOW)
        ));
    }

    #[test]
    fn periodic_with_interval_zero_syncs_once_even_when_forced() {
        assert!(should_refresh(&es(None, "0", None), at(NOW)));
        assert!(!should_refresh(&es(None, "0", Some(99999)), at(NOW)));
        assert!(!should_refresh(
            &force_sync(es(None, "0s", Some(10))),
            at(NOW)
        ));
    }

    #[test]
    fn sync_windows_gate_only_due_periodic_refreshes_and_say_when_to_look_again() {
        // NOW is 08:00 UTC; a deny window opened at 07:00 for 2 hours.
        let windows = |kind| {
            Some(esox_api::SyncWindows {
                kind,
                windows: vec![esox_api::SyncWindow {
                    schedule: "0 7 * * *".into(),
                    duration: "2h".into(),
                }],
            })
        };
        let mut due = es(None, "1h", Some(7200));
        due.spec.sync_windows = windows(esox_api::SyncWindowKind::Deny);
        assert!(!should_refresh(&due, at(NOW)));
        assert_eq!(
            requeue_after(&due, at(NOW)),
            Some(Duration::from_secs(3601))
        );
        // Not gated: never synced, or forced.
        let mut first = es(None, "1h", None);
        first.spec.sync_windows = windows(esox_api::SyncWindowKind::Deny);
        assert!(should_refresh(&first, at(NOW)));
        assert!(should_refresh(&force_sync(due.clone()), at(NOW)));
        // An allow window that is open lets it through.
        due.spec.sync_windows = windows(esox_api::SyncWindowKind::Allow);
        assert!(should_refresh(&due, at(NOW)));
        // Not due yet: the interval decides, windows or not.
        let mut early = es(None, "1h", Some(600));
        early.spec.sync_windows = windows(esox_api::SyncWindowKind::Deny);
        assert_eq!(
            requeue_after(&early, at(NOW)),
            Some(Duration::from_secs(3000))
        );
    }

    #[test]
    fn a_negative_interval_syncs_once_like_eso() {
        // ESO refreshes only when the interval is positive; esox used to read "-1h" as 1h.
        assert!(should_refresh(&es(None, "-1h", None), at(NOW)));
        assert!(!should_refresh(&es(None, "-1h", Some(99999)), at(NOW)));
        assert_eq!(requeue_after(&es(None, "-30m", Some(5)), at(NOW)), None);
    }

    #[test]
    fn periodic_refreshes_when_last_refresh_is_in_the_future() {
        assert!(should_refresh(&es(None, "1h", Some(-60)), at(NOW)));
    }

    #[test]
    fn on_change_refreshes_only_on_metadata_or_generation_change() {
        let policy = Some(RefreshPolicy::OnChange);
        assert!(should_refresh(&es(policy, "1h", None), at(NOW)));
        assert!(!should_refresh(&es(policy, "1h", Some(999_999)), at(NOW)));
        assert!(should_refresh(
            &force_sync(es(policy, "1h", Some(10))),
            at(NOW)
        ));
        let mut bumped = es(policy, "1h", Some(10));
        bumped.metadata.generation = Some(3);
        assert!(should_refresh(&bumped, at(NOW)));
    }

    #[test]
    fn created_once_refreshes_only_before_the_first_sync() {
        let policy = Some(RefreshPolicy::CreatedOnce);
        assert!(should_refresh(&es(policy, "1h", None), at(NOW)));
        assert!(!should_refresh(
            &force_sync(es(policy, "1h", Some(999_999))),
            at(NOW)
        ));
    }

    #[test]
    fn requeue_waits_for_the_rest_of_the_interval() {
        assert_eq!(
            requeue_after(&es(None, "1h", Some(600)), at(NOW)),
            Some(Duration::from_secs(3000))
        );
        assert_eq!(
            requeue_after(&es(None, "1h", Some(7200)), at(NOW)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            requeue_after(&es(None, "1h", Some(-5)), at(NOW)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            requeue_after(&es(None, "15m", None), at(NOW)),
            Some(Duration::from_secs(900))
        );
        assert_eq!(requeue_after(&es(None, "0", Some(5)), at(NOW)), None);
    }

    fn managed_secret(data: &[(&str, &str)]) -> ExistingSecret {
        let data: BTreeMap<String, Vec<u8>> = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        ExistingSecret {
            labels: BTreeMap::from([(LABEL_MANAGED.to_string(), "true".to_string())]),
            annotations: BTreeMap::from([(ANNOTATION_DATA_HASH.to_string(), data_hash(&data))]),
            data,
            ..Default::default()
        }
    }

    #[test]
    fn a_secret_is_valid_only_if_present_labelled_and_unchanged() {
        let es = es(None, "1h", Some(10));
        let good = managed_secret(&[("password", "x")]);
        assert!(secret_is_valid(&es, Some(&good)));
        assert!(!secret_is_valid(&es, None));

        let mut edited = good.clone();
        edited.data.insert("password".into(), b"changed".to_vec());
        assert!(!secret_is_valid(&es, Some(&edited)));

        let mut unlabelled = good.clone();
        unlabelled.labels.clear();
        assert!(!secret_is_valid(&es, Some(&unlabelled)));
    }

    #[test]
    fn under_orphan_the_secret_always_counts_as_valid() {
        let mut es = es(None, "1h", Some(10));
        es.spec.target = Some(esox_api::ExternalSecretTarget {
            creation_policy: CreationPolicy::Orphan,
            ..Default::default()
        });
        assert!(secret_is_valid(&es, None));
    }
}
