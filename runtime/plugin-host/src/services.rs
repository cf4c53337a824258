//! The auth broker: what the host does for a plugin that the plugin may not do itself.
//!
//! Plugins hold no Kubernetes credentials. When a plugin needs a credential referenced by its
//! store (a Secret key, a ServiceAccount token, a CA bundle in a ConfigMap) it asks the host,
//! and the host answers through a [`HostServices`] implementation: the controller's reads the
//! API server under the store's [`NamespaceRules`]; the CLI's reads a local file or refuses.

use std::collections::BTreeMap;
use std::path::Path;

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

/// Where a store may read referenced objects: ESO's rules.
///
/// - A SecretStore reads only its own namespace; naming another namespace is refused.
/// - A ClusterSecretStore reference names its namespace, or is *referent*: it resolves in the
///   namespace of the ExternalSecret being synced. Without one (validation of the store itself)
///   a referent reference cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceRules {
    /// A namespaced SecretStore in this namespace.
    Namespaced { store_namespace: String },
    /// A ClusterSecretStore, with the ExternalSecret's namespace if there is one.
    Cluster { referent_namespace: Option<String> },
}

impl NamespaceRules {
    /// The namespace a reference resolves to, or why it may not be read.
    pub fn resolve(&self, requested: Option<&str>) -> Result<String, ProviderError> {
        match (self, requested) {
            (NamespaceRules::Namespaced { store_namespace }, None) => Ok(store_namespace.clone()),
            (NamespaceRules::Namespaced { store_namespace }, Some(ns)) if ns == store_namespace => Ok(ns.to_string()),
            (NamespaceRules::Namespaced { store_namespace }, Some(ns)) => Err(ProviderError::PermissionDenied(format!(
                "a SecretStore in namespace {store_namespace:?} cannot read objects in namespace {ns:?}; \
                 use a ClusterSecretStore to reference other namespaces"
            ))),
            (NamespaceRules::Cluster { .. }, Some(ns)) => Ok(ns.to_string()),
            (NamespaceRules::Cluster { referent_namespace: Some(ns) }, None) => Ok(ns.clone()),
            (NamespaceRules::Cluster { referent_namespace: None }, None) => Err(ProviderError::InvalidConfig(
                "this ClusterSecretStore reference has no namespace: it is resolved in each ExternalSecret's \
                 namespace (referent authentication) and cannot be checked on its own"
                    .into(),
            )),
        }
    }
}

/// For the CLI: no cluster. Every request is refused with a message that says what to do.
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
            "the store references Secret {name:?} key {key:?}, but esox is running without a cluster; \
             pass --secrets-file FILE with the referenced values"
        )))
    }
    async fn config_map_key(
        &self,
        name: &str,
        key: &str,
        _: Option<&str>,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::InvalidConfig(format!(
            "the store references ConfigMap {name:?} key {key:?}, but esox is running without a cluster; \
             pass --secrets-file FILE with the referenced values"
        )))
    }
    async fn service_account_token(
        &self,
        r: TokenRequest,
    ) -> Result<ServiceAccountToken, ProviderError> {
        Err(ProviderError::InvalidConfig(format!(
            "the store authenticates as ServiceAccount {:?}, which needs a cluster (TokenRequest); \
             use secretRef credentials with --secrets-file to run it locally",
            r.name
        )))
    }
}

/// For the CLI: referenced values from a local YAML/JSON file.
///
/// ```yaml
/// secrets:                 # Secret name -> key -> value (namespace ignored locally)
///   aws-credentials:
///     access-key-id: AKIA...
///     secret-access-key: ...
/// configMaps:
///   ca:
///     ca.crt: "-----BEGIN CERTIFICATE-----..."
/// ```
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalServices {
    #[serde(default)]
    secrets: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl LocalServices {
    /// Read the file. Errors name the file, never its values.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .or_else(|_| yaml_to_json(&text))
            .map_err(|e| anyhow::anyhow!("{} is not a valid secrets file (expected `secrets:` and/or `configMaps:` maps): {e}", path.display()))
    }
}

fn yaml_to_json(text: &str) -> Result<LocalServices, String> {
    // A tiny YAML subset (two-level maps of strings) keeps serde_yaml out of the host crate.
    let mut out = LocalServices::default();
    let mut section: Option<&str> = None;
    let mut object: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("").trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let (k, v) = line
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected `key: value`", n + 1))?;
        let k = k.trim().trim_matches('"').to_string();
        let v = v.trim().trim_matches('"').to_string();
        match indent {
            0 => {
                section = match k.as_str() {
                    "secrets" => Some("secrets"),
                    "configMaps" => Some("configMaps"),
                    _ => return Err(format!("line {}: unknown section {k:?}", n + 1)),
                };
                object = None;
            }
            2 => object = Some(k),
            _ => {
                let (Some(section), Some(object)) = (section, object.clone()) else {
                    return Err(format!("line {}: value outside of an object", n + 1));
                };
                let target = if section == "secrets" {
                    &mut out.secrets
                } else {
                    &mut out.config_maps
                };
                target.entry(object).or_default().insert(k, v);
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl HostServices for LocalServices {
    async fn secret_key(
        &self,
        name: &str,
        key: &str,
        _: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.secrets
            .get(name)
            .and_then(|s| s.get(key))
            .map(|v| v.clone().into_bytes())
            .ok_or(ProviderError::NotFound)
    }
    async fn config_map_key(
        &self,
        name: &str,
        key: &str,
        _: Option<&str>,
    ) -> Result<String, ProviderError> {
        self.config_maps
            .get(name)
            .and_then(|s| s.get(key))
            .cloned()
            .ok_or(ProviderError::NotFound)
    }
    async fn service_account_token(
        &self,
        r: TokenRequest,
    ) -> Result<ServiceAccountToken, ProviderError> {
        NoServices.service_account_token(r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_store_reads_only_its_own_namespace() {
        let rules = NamespaceRules::Namespaced {
            store_namespace: "team-a".into(),
        };
        assert_eq!(rules.resolve(None).unwrap(), "team-a");
        assert_eq!(rules.resolve(Some("team-a")).unwrap(), "team-a");
        let err = rules.resolve(Some("kube-system")).unwrap_err();
        assert!(
            matches!(err, ProviderError::PermissionDenied(ref m) if m.contains("kube-system")),
            "{err:?}"
        );
    }

    #[test]
    fn a_cluster_store_reference_is_explicit_or_referent() {
        let rules = NamespaceRules::Cluster {
            referent_namespace: Some("app".into()),
        };
        assert_eq!(rules.resolve(Some("esox-system")).unwrap(), "esox-system");
        assert_eq!(rules.resolve(None).unwrap(), "app");
        let unbound = NamespaceRules::Cluster {
            referent_namespace: None,
        };
        assert!(matches!(
            unbound.resolve(None),
            Err(ProviderError::InvalidConfig(_))
        ));
    }

    #[test]
    fn local_secrets_files_parse_as_yaml_or_json() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("s.yaml");
        std::fs::write(&yaml, "secrets:\n  aws:\n    id: AKIA1\n    key: \"s3cr3t\"\nconfigMaps:\n  ca:\n    ca.crt: PEM\n").unwrap();
        let s = LocalServices::from_file(&yaml).unwrap();
        assert_eq!(s.secrets["aws"]["key"], "s3cr3t");
        assert_eq!(s.config_maps["ca"]["ca.crt"], "PEM");
        let json = dir.path().join("s.json");
        std::fs::write(&json, r#"{"secrets":{"aws":{"id":"AKIA2"}}}"#).unwrap();
        assert_eq!(
            LocalServices::from_file(&json).unwrap().secrets["aws"]["id"],
            "AKIA2"
        );
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "nonsense: [\n").unwrap();
        let err = LocalServices::from_file(&bad).err().unwrap().to_string();
        assert!(err.contains("not a valid secrets file"), "{err}");
    }
}
