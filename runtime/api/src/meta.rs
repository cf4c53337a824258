//! Small reference types shared by the external-secrets.io kinds (ESO's `apis/meta/v1`):
//! Secret key selectors and ServiceAccount selectors, plus the string patterns the CRDs enforce.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A DNS-1123 subdomain: the names of Secrets, ConfigMaps, stores and generators.
pub const DNS1123_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A DNS-1123 label: namespace names.
pub const DNS1123_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A key of a Secret's `data` map.
pub const SECRET_KEY: &str = r"^[-._a-zA-Z0-9]+$";

/// A reference to one key of a Kubernetes Secret (credentials for a provider).
///
/// On a ClusterSecretStore a selector without `namespace` is *referent*: it resolves in the
/// namespace of the ExternalSecret being synced.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// The name of the Secret resource being referred to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// The namespace of the Secret. Ignored on a SecretStore (always its own namespace); on a
    /// ClusterSecretStore it defaults to the namespace of the ExternalSecret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub namespace: Option<String>,
    /// A key in the referenced Secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: String,
}

/// A reference to a ServiceAccount whose token a provider exchanges for credentials (IRSA-style).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSelector {
    /// The name of the ServiceAccount.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// Its namespace; on a ClusterSecretStore it defaults to the ExternalSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub namespace: Option<String>,
    /// Extra `aud` claims for the token, appended to the provider's well-known audience.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
}
