//! The provider vocabulary, shared by the pure sync pipeline (`esox-sync`) and the plugin host
//! (`esox-plugin-host`) so neither depends on the other.
//!
//! These types mirror `wit/v0.1/types.wit` one to one; the plugin host converts between them and
//! its generated bindings. They carry no Kubernetes or wasmtime types on purpose: the sync
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
    InvalidConfig(String),
    /// The backend refused the credentials or the operation.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The backend could not be reached or throttled us; retry with backoff.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider does not implement this operation.
    #[error("operation not supported by this provider: {0}")]
    Unsupported(String),
    /// Anything else, including a property that does not exist in a value.
    #[error("{0}")]
    Internal(String),
}

impl ProviderError {
    /// Whether retrying the same call later can succeed without a change to the configuration.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Unavailable(_) | ProviderError::Internal(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
