//! The CLI's auth broker services: without a cluster, referenced Secrets and ConfigMaps come
//! from a local file (`esox get --secrets-file`), and everything else is refused with a message
//! that says what to do.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use esox_plugin_host::{HostServices, NoServices, ServiceAccountToken, TokenRequest};
use esox_provider::ProviderError;

/// No cluster and no secrets file: every request is refused, naming the flag that helps.
pub struct NoCluster;

fn with_hint(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::InvalidConfig(m) => ProviderError::InvalidConfig(
            format!("{m}; pass --secrets-file FILE with the referenced values").into(),
        ),
        other => other,
    }
}

#[async_trait]
impl HostServices for NoCluster {
    async fn secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        NoServices
            .secret_key(name, key, namespace)
            .await
            .map_err(with_hint)
    }
    async fn labelled_secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
        _: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        self.secret_key(name, key, namespace).await
    }
    async fn config_map_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<String, ProviderError> {
        NoServices
            .config_map_key(name, key, namespace)
            .await
            .map_err(with_hint)
    }
    async fn service_account_token(
        &self,
        r: TokenRequest,
    ) -> Result<ServiceAccountToken, ProviderError> {
        NoServices
            .service_account_token(r)
            .await
            .map_err(|e| match e {
                ProviderError::InvalidConfig(m) => ProviderError::InvalidConfig(
                    format!("{m}; use secretRef credentials with --secrets-file to run it locally")
                        .into(),
                ),
                other => other,
            })
    }
}

/// Referenced values from a local YAML or JSON file:
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalServices {
    #[serde(default)]
    secrets: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl LocalServices {
    /// Read the file (YAML, of which JSON is a subset). Errors name the file and the position,
    /// never a value.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        serde_yaml::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                .unwrap_or_default();
            anyhow::anyhow!(
                "{} is not a valid secrets file{at} (expected `secrets:` and/or `configMaps:` maps of names to maps of string keys and values)",
                path.display()
            )
        })
    }
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
    /// A secrets file is the user's own and has no labels: the labels a plugin requires of the
    /// Secrets it reads in a cluster (the webhook plugin's `external-secrets.io/type: webhook`)
    /// guard other people's Secrets there, so they are not asked for here.
    async fn labelled_secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
        _: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        self.secret_key(name, key, namespace).await
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
        NoCluster.service_account_token(r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_secrets_files_parse_as_yaml_or_json() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("s.yaml");
        std::fs::write(&yaml, "secrets:\n  aws:\n    id: AKIA1\n    key: \"s3cr3t\"\n    quoted: \"x #y\"\nconfigMaps:\n  ca:\n    ca.crt: PEM\n").unwrap();
        let s = LocalServices::from_file(&yaml).unwrap();
        assert_eq!(s.secrets["aws"]["key"], "s3cr3t");
        assert_eq!(
            s.secrets["aws"]["quoted"], "x #y",
            "a quoted ` #` is part of the value (the old hand-written parser cut it there)"
        );
        assert_eq!(s.config_maps["ca"]["ca.crt"], "PEM");
        let json = dir.path().join("s.json");
        std::fs::write(&json, r#"{"secrets":{"aws":{"id":"AKIA2"}}}"#).unwrap();
        assert_eq!(
            LocalServices::from_file(&json).unwrap().secrets["aws"]["id"],
            "AKIA2"
        );
    }

    #[test]
    fn a_bad_file_is_refused_without_quoting_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "secrets:\n  aws:\n    key: [hunter2-distinctive]\n").unwrap();
        let err = LocalServices::from_file(&bad).err().unwrap().to_string();
        assert!(err.contains("not a valid secrets file"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
