//! The auth broker: what the host does for a plugin that the plugin may not do itself.
//!
//! Plugins hold no Kubernetes credentials. When a plugin needs a credential referenced by its
//! store (a Secret key, a ServiceAccount token, a CA bundle in a ConfigMap) it asks the host,
//! and the host answers, within the store's [`Grant`](crate::Grant), through a [`HostServices`]
//! implementation: the controller's reads the API server under ESO's namespace rules; the CLI's
//! reads a local file or refuses.

use async_trait::async_trait;
use esox_provider::ProviderError;

/// A ServiceAccount token minted through TokenRequest, with the ServiceAccount's annotations.
#[derive(Clone)]
pub struct ServiceAccountToken {
    /// The JWT. Never logged.
    pub token: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// Annotations of the ServiceAccount (IRSA reads `eks.amazonaws.com/role-arn`).
    pub annotations: Vec<(String, String)>,
}

impl std::fmt::Debug for ServiceAccountToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("annotations", &self.annotations)
            .finish()
    }
}

/// A TokenRequest on behalf of a plugin.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub name: String,
    pub namespace: Option<String>,
    pub audiences: Vec<String>,
    pub expiration_seconds: Option<u32>,
}

/// What the host does for plugins. One implementation per store (it knows the store's
/// namespace rules); shared by all instances of that store.
#[async_trait]
pub trait HostServices: Send + Sync {
    /// One key of a Secret.
    async fn secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError>;
    /// One key of a Secret that must carry `labels` (each name with its value): a Secret
    /// without them is refused as `permission-denied` saying which label is missing. Services
    /// that cannot see labels refuse every such read (the default).
    async fn labelled_secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
        labels: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        let _ = (key, namespace);
        Err(ProviderError::PermissionDenied(
            format!(
                "Secret {name:?} must carry the labels {} before a plugin may read it, and labels cannot be checked here",
                describe_labels(labels)
            )
            .into(),
        ))
    }
    /// One key of a ConfigMap.
    async fn config_map_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<String, ProviderError>;
    /// A ServiceAccount token and the ServiceAccount's annotations.
    async fn service_account_token(
        &self,
        request: TokenRequest,
    ) -> Result<ServiceAccountToken, ProviderError>;
}

/// `a=b, c=d`, for messages.
pub fn describe_labels(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a Secret's labels do not meet what a store's plugin requires (ESO's webhook wording),
/// or `None` when they do.
pub fn missing_label(
    what: &str,
    have: Option<&std::collections::BTreeMap<String, String>>,
    required: &[(String, String)],
) -> Option<String> {
    for (name, value) in required {
        match have.and_then(|l| l.get(name)) {
            None => {
                return Some(format!(
                    "{what} does not carry the label {name}: {value} that this store's plugin requires of the Secrets it reads (as ESO): add the label to use it"
                ));
            }
            Some(v) if v != value => {
                return Some(format!(
                    "{what} has the label {name}: {v:?}, but this store's plugin requires {name}: {value}"
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// No cluster: every request is refused.
pub struct NoServices;

#[async_trait]
impl HostServices for NoServices {
    async fn secret_key(
        &self,
        name: &str,
        key: &str,
        _: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        Err(ProviderError::InvalidConfig(format!(
            "the store references Secret {name:?} key {key:?}, but esox is running without a cluster"
        ).into()))
    }
    async fn config_map_key(
        &self,
        name: &str,
        key: &str,
        _: Option<&str>,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::InvalidConfig(format!(
            "the store references ConfigMap {name:?} key {key:?}, but esox is running without a cluster"
        ).into()))
    }
    async fn service_account_token(
        &self,
        r: TokenRequest,
    ) -> Result<ServiceAccountToken, ProviderError> {
        Err(ProviderError::InvalidConfig(format!(
            "the store authenticates as ServiceAccount {:?}, which needs a cluster (TokenRequest)",
            r.name
        ).into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_missing_or_different_label_is_named_and_matching_ones_pass() {
        let required = [(
            "external-secrets.io/type".to_string(),
            "webhook".to_string(),
        )];
        let labels =
            |v: &str| BTreeMap::from([("external-secrets.io/type".to_string(), v.to_string())]);
        assert_eq!(
            missing_label("Secret a/b", Some(&labels("webhook")), &required),
            None
        );
        let none = missing_label("Secret a/b", None, &required).unwrap();
        assert!(
            none.contains("does not carry the label external-secrets.io/type: webhook"),
            "{none}"
        );
        let other = missing_label("Secret a/b", Some(&labels("vault")), &required).unwrap();
        assert!(
            other.contains("\"vault\"")
                && other.contains("requires external-secrets.io/type: webhook"),
            "{other}"
        );
        assert_eq!(missing_label("Secret a/b", None, &[]), None);
    }
}
