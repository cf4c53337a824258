//! The provider vocabulary, shared by the pure sync pipeline (`esox-sync`) and the plugin host
//! (`esox-plugin-host`) so neither depends on the other.
//!
//! These types follow the newest contract (`wit/v0.2/types.wit`); the plugin host converts each
//! contract version's generated bindings into them. They carry no Kubernetes or wasmtime types on purpose: the sync
//! pipeline plans requests and consumes answers in this vocabulary and stays free of I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A map of secret keys to raw values, as a provider returns it (`get-secret-map`,
/// `get-all-secrets`). Ordered so that everything derived from it is deterministic.
pub type SecretMap = BTreeMap<String, Vec<u8>>;

/// Whether to return the secret's value or its metadata (tags/labels) as a JSON object.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum MetadataPolicy {
    /// Return the value (ESO's `None`, the default).
    #[default]
    None,
    /// Return the metadata as a JSON object (ESO's `Fetch`).
    Fetch,
}

/// What to read from a store: ESO's `remoteRef`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RemoteRef {
    /// The key of the secret in the backend (after any store-level prefix is applied by the
    /// plugin).
    pub key: String,
    /// A property inside a JSON value (ESO's gjson semantics, see the plugin SDK).
    pub property: Option<String>,
    /// A version or stage (`AWSCURRENT`, `uuid/<id>`, a number, ... per provider).
    pub version: Option<String>,
    /// Value or metadata.
    pub metadata_policy: MetadataPolicy,
}

impl RemoteRef {
    /// A reference to a whole value at its default version.
    pub fn key(key: impl Into<String>) -> Self {
        RemoteRef {
            key: key.into(),
            ..Default::default()
        }
    }

    /// The identity used to coalesce backend calls: the same key, version and metadata policy
    /// need one backend call however many properties are read from it.
    pub fn without_property(&self) -> RemoteRef {
        RemoteRef {
            property: None,
            ..self.clone()
        }
    }
}

/// Where a push writes: ESO's `remoteRef` of a PushSecret (plus its provider metadata).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PushRef {
    /// The secret's name or path in the backend.
    pub remote_key: String,
    /// When set, the value is written as this property of a JSON object, keeping the others.
    pub property: Option<String>,
    /// Provider-specific metadata for the write, as JSON (ESO's `PushSecret` metadata).
    pub metadata: Option<String>,
}

impl PushRef {
    /// A push of a whole value to `key`.
    pub fn key(key: impl Into<String>) -> Self {
        PushRef {
            remote_key: key.into(),
            ..PushRef::default()
        }
    }
}

/// How to find many secrets: ESO's `dataFrom[].find`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FindQuery {
    /// An RE2 regular expression the secret's name must match.
    pub name_regexp: Option<String>,
    /// A path prefix the secret's name must start with.
    pub path: Option<String>,
    /// Tags the secret must carry, all of them, with these values.
    pub tags: BTreeMap<String, String>,
}

/// An error's text, shared rather than copied: an error reported for every entry of a batch
/// (a store that cannot open, say) is one allocation however many entries carry it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(std::sync::Arc<str>);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(s.into())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.into())
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Text(s.as_str().into())
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

/// What a provider can answer instead of a value. The controller maps each variant to retry
/// behaviour and to ESO's condition reasons in one place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ProviderError {
    /// The secret (or version) does not exist. ESO's `NoSecretErr`: under deletionPolicy other
    /// than Retain an entry that is not found is skipped.
    #[error("secret not found")]
    NotFound,
    /// The value has not changed since the last read (ESO's `NotModifiedErr`).
    #[error("secret not modified")]
    NotModified,
    /// The store's configuration is wrong; retrying will not help until it is changed.
    #[error("invalid store configuration: {0}")]
    InvalidConfig(Text),
    /// The backend refused the credentials or the operation.
    #[error("permission denied: {0}")]
    PermissionDenied(Text),
    /// The backend could not be reached or throttled us; retry with backoff.
    #[error("provider unavailable: {0}")]
    Unavailable(Text),
    /// The provider does not implement this operation.
    #[error("operation not supported by this provider: {0}")]
    Unsupported(Text),
    /// The backend asked to slow down; retry after `retry_after_ms` when it said.
    #[error("provider throttled: {message}")]
    Throttled {
        message: Text,
        retry_after_ms: Option<u64>,
    },
    /// The host's egress policy refused a request the plugin needed; retrying will not help
    /// until the operator changes the policy.
    #[error("egress denied: {0}")]
    EgressDenied(Text),
    /// The backend answered with an error that fits no other case, or the value is not what the
    /// request asked for (a property that does not exist).
    #[error("{0}")]
    Backend(Text),
    /// Something went wrong in esox or the plugin itself (a trap, a limit, a malformed reply).
    #[error("{0}")]
    Internal(Text),
}

impl ProviderError {
    /// Whether retrying the same call later can succeed without a change to the configuration.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Unavailable(_)
                | ProviderError::Internal(_)
                | ProviderError::Backend(_)
                | ProviderError::Throttled { .. }
        )
    }

    /// How long the backend asked to wait before the next try, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ProviderError::Throttled {
                retry_after_ms: Some(ms),
                ..
            } => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }

    /// The same error with its message cut to at most `max` bytes (on a character boundary),
    /// so a plugin cannot make the host carry, copy or publish an unbounded text.
    pub fn truncated(self, max: usize) -> Self {
        let cut = |m: Text| {
            if m.len() <= max {
                return m;
            }
            let mut at = max;
            while !m.is_char_boundary(at) {
                at -= 1;
            }
            Text::from(format!("{}… (truncated)", &m[..at]))
        };
        match self {
            ProviderError::InvalidConfig(m) => ProviderError::InvalidConfig(cut(m)),
            ProviderError::PermissionDenied(m) => ProviderError::PermissionDenied(cut(m)),
            ProviderError::Unavailable(m) => ProviderError::Unavailable(cut(m)),
            ProviderError::Unsupported(m) => ProviderError::Unsupported(cut(m)),
            ProviderError::Throttled {
                message,
                retry_after_ms,
            } => ProviderError::Throttled {
                message: cut(message),
                retry_after_ms,
            },
            ProviderError::EgressDenied(m) => ProviderError::EgressDenied(cut(m)),
            ProviderError::Backend(m) => ProviderError::Backend(cut(m)),
            ProviderError::Internal(m) => ProviderError::Internal(cut(m)),
            e @ (ProviderError::NotFound | ProviderError::NotModified) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_errors_text_is_shared_by_its_clones_and_truncation_cuts_it() {
        let e = ProviderError::Backend("x".repeat(10_000).into());
        let copies: Vec<ProviderError> = (0..200).map(|_| e.clone()).collect();
        let text = |e: &ProviderError| match e {
            ProviderError::Backend(t) => t.as_str().as_ptr(),
            _ => unreachable!(),
        };
        assert!(
            copies.iter().all(|c| text(c) == text(&e)),
            "one allocation for all clones"
        );
        let cut = e.truncated(4096);
        assert!(cut.to_string().len() < 4096 + 20);
        assert!(cut.to_string().ends_with("… (truncated)"));
        let short = ProviderError::Backend("short".into());
        assert_eq!(short.clone().truncated(4096), short);
    }

    #[test]
    fn coalescing_identity_ignores_only_the_property() {
        let a = RemoteRef {
            key: "db".into(),
            property: Some("username".into()),
            version: Some("AWSPREVIOUS".into()),
            metadata_policy: MetadataPolicy::None,
        };
        let b = RemoteRef {
            property: Some("password".into()),
            ..a.clone()
        };
        assert_eq!(a.without_property(), b.without_property());
        let c = RemoteRef {
            version: None,
            ..a.clone()
        };
        assert_ne!(a.without_property(), c.without_property());
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(ProviderError::Unavailable("throttled".into()).is_retryable());
        assert!(!ProviderError::NotFound.is_retryable());
        assert!(!ProviderError::InvalidConfig("bad region".into()).is_retryable());
        assert!(!ProviderError::PermissionDenied("no".into()).is_retryable());
        assert!(!ProviderError::EgressDenied("https://x".into()).is_retryable());
        let throttled = ProviderError::Throttled {
            message: "slow down".into(),
            retry_after_ms: Some(1500),
        };
        assert!(throttled.is_retryable());
        assert_eq!(
            throttled.retry_after(),
            Some(std::time::Duration::from_millis(1500))
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(10_000);
        let ProviderError::Backend(m) = ProviderError::Backend(Text::from(long)).truncated(4096)
        else {
            panic!("variant changed");
        };
        assert!(m.len() <= 4096 + "… (truncated)".len(), "{}", m.len());
        assert!(m.ends_with("(truncated)"));
        assert_eq!(
            ProviderError::Backend("short".into()).truncated(4096),
            ProviderError::Backend("short".into())
        );
    }
}
