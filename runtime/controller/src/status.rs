//! The status esox writes, computed purely from the old status and what just happened, so the
//! controller can compare and skip writes that change nothing (ESO writes on every reconcile;
//! at thousands of ExternalSecrets those writes load the API server for nothing).
//!
//! `lastTransitionTime` moves only when a condition's status changes, as in ESO's
//! `SetExternalSecretCondition`.

use esox_api::{
    Binding, ExternalSecretCondition, ExternalSecretStatus, SecretStoreCondition, SecretStoreStatus,
};
use esox_sync::reason;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The Ready condition a reconcile arrived at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    /// `True` or `False`.
    pub status: bool,
    /// ESO's reason.
    pub reason: String,
    /// ESO's message.
    pub message: String,
}

impl Ready {
    /// Ready=True with a reason and message.
    pub fn ok(reason: &str, message: &str) -> Ready {
        Ready {
            status: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
    /// Ready=False with a reason and message.
    pub fn failed(reason: &str, message: &str) -> Ready {
        Ready {
            status: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

fn status_str(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// What a sync records besides the condition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// The `syncedResourceVersion` of the ExternalSecret that was synced.
    pub synced_resource_version: String,
    /// The Secret written (for `binding`).
    pub secret_name: String,
    /// Whether the provider was read now (then `refreshTime` moves to `now`).
    pub refreshed: bool,
}

/// The new ExternalSecret status. `synced` is `None` after a failure: `refreshTime` and
/// `syncedResourceVersion` then stay as they were (ESO does not advance them on errors).
pub fn external_secret_status(
    old: Option<&ExternalSecretStatus>,
    ready: &Ready,
    synced: Option<&Synced>,
    now: Timestamp,
) -> ExternalSecretStatus {
    let mut status = old.cloned().unwrap_or_default();
    if let Some(s) = synced {
        if s.refreshed {
            status.refresh_time = Some(Time(now));
        }
        status.synced_resource_version = Some(s.synced_resource_version.clone());
        status.binding = Some(Binding {
            name: s.secret_name.clone(),
        });
    }
    let previous = status.conditions.iter().find(|c| c.type_ == reason::READY);
    let transition = match previous {
        Some(p) if p.status == status_str(ready.status) => p.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    let condition = ExternalSecretCondition {
        type_: reason::READY.into(),
        status: status_str(ready.status).into(),
        reason: Some(ready.reason.clone()),
        message: Some(ready.message.clone()),
        last_transition_time: transition,
    };
    status.conditions.retain(|c| c.type_ != reason::READY);
    status.conditions.insert(0, condition);
    status
}

/// Whether the Ready condition of an ExternalSecret status is exactly `ready`.
pub fn has_condition(status: Option<&ExternalSecretStatus>, ready: &Ready) -> bool {
    status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == reason::READY))
        .is_some_and(|c| {
            c.status == status_str(ready.status)
                && c.reason.as_deref() == Some(ready.reason.as_str())
                && c.message.as_deref() == Some(ready.message.as_str())
        })
}

/// The new store status: the Ready condition and the plugin's capabilities.
pub fn store_status(
    old: Option<&SecretStoreStatus>,
    ready: &Ready,
    capabilities: Option<String>,
    now: Timestamp,
) -> SecretStoreStatus {
    let previous = old.and_then(|s| s.conditions.iter().find(|c| c.type_ == reason::READY));
    let transition = match previous {
        Some(p) if p.status == status_str(ready.status) => p.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    let mut conditions: Vec<SecretStoreCondition> = old
        .map(|s| {
            s.conditions
                .iter()
                .filter(|c| c.type_ != reason::READY)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    conditions.insert(
        0,
        SecretStoreCondition {
            type_: reason::READY.into(),
            status: status_str(ready.status).into(),
            reason: Some(ready.reason.clone()),
            message: Some(ready.message.clone()),
            last_transition_time: transition,
        },
    );
    SecretStoreStatus {
        conditions,
        capabilities: capabilities.or_else(|| old.and_then(|s| s.capabilities.clone())),
    }
}

/// ESO's capability string from the plugin's capability flags.
pub fn capabilities(flags: &[&str]) -> String {
    let read = flags.contains(&"read");
    let write = flags.contains(&"write");
    match (read, write) {
        (true, true) => "ReadWrite",
        (false, true) => "WriteOnly",
        _ => "ReadOnly",
    }
    .to_string()
}

/// Whether a store's status says Ready=True (the flood gate).
pub fn store_is_ready(status: Option<&SecretStoreStatus>) -> bool {
    status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == reason::READY))
        .is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn synced(rv: &str) -> Synced {
        Synced {
            synced_resource_version: rv.into(),
            secret_name: "db".into(),
            refreshed: true,
        }
    }

    #[test]
    fn a_first_sync_sets_refresh_time_version_binding_and_ready() {
        let ready = Ready::ok("SecretSynced", "secret synced");
        let s = external_secret_status(None, &ready, Some(&synced("1-abc")), at(100));
        assert_eq!(s.refresh_time, Some(Time(at(100))));
        assert_eq!(s.synced_resource_version.as_deref(), Some("1-abc"));
        assert_eq!(s.binding, Some(Binding { name: "db".into() }));
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.conditions[0].status, "True");
        assert_eq!(s.conditions[0].reason.as_deref(), Some("SecretSynced"));
        assert_eq!(s.conditions[0].last_transition_time, Some(Time(at(100))));
        assert!(has_condition(Some(&s), &ready));
    }

    #[test]
    fn a_failure_keeps_refresh_time_and_moves_the_transition_time() {
        let ok = external_secret_status(
            None,
            &Ready::ok("SecretSynced", "secret synced"),
            Some(&synced("1-abc")),
            at(100),
        );
        let failed = Ready::failed(
            "SecretSyncedError",
            "could not get secret data from provider",
        );
        let s = external_secret_status(Some(&ok), &failed, None, at(200));
        assert_eq!(s.refresh_time, Some(Time(at(100))));
        assert_eq!(s.synced_resource_version.as_deref(), Some("1-abc"));
        assert_eq!(s.conditions[0].status, "False");
        assert_eq!(s.conditions[0].last_transition_time, Some(Time(at(200))));
    }

    #[test]
    fn the_same_outcome_again_changes_nothing_but_refresh_time() {
        let ready = Ready::ok("SecretSynced", "secret synced");
        let first = external_secret_status(None, &ready, Some(&synced("1-abc")), at(100));
        let skipped = Synced {
            refreshed: false,
            ..synced("1-abc")
        };
        assert_eq!(
            external_secret_status(Some(&first), &ready, Some(&skipped), at(500)),
            first
        );
        let refreshed =
            external_secret_status(Some(&first), &ready, Some(&synced("1-abc")), at(500));
        assert_eq!(refreshed.refresh_time, Some(Time(at(500))));
        assert_eq!(
            refreshed.conditions[0].last_transition_time,
            Some(Time(at(100)))
        );
    }

    #[test]
    fn store_status_keeps_transition_time_while_status_holds_and_maps_capabilities() {
        let valid = Ready::ok("Valid", "store validated");
        let s1 = store_status(
            None,
            &valid,
            Some(capabilities(&["read", "find", "write"])),
            at(10),
        );
        assert_eq!(s1.capabilities.as_deref(), Some("ReadWrite"));
        let s2 = store_status(Some(&s1), &valid, None, at(20));
        assert_eq!(s2, s1);
        assert!(store_is_ready(Some(&s2)));
        let s3 = store_status(
            Some(&s2),
            &Ready::failed("InvalidProviderConfig", "unable to validate store"),
            None,
            at(30),
        );
        assert_eq!(s3.conditions[0].last_transition_time, Some(Time(at(30))));
        assert!(!store_is_ready(Some(&s3)));
        assert_eq!(capabilities(&["read"]), "ReadOnly");
    }
}
