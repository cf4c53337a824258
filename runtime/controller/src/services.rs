//! The auth broker against the API server: what a plugin may ask the host for (one key of a
//! Secret, one key of a ConfigMap, a ServiceAccount token), answered under the store's
//! [`NamespaceRules`]. One instance per store (and per referent namespace for a
//! ClusterSecretStore), so a SecretStore can never read outside its own namespace.
//!
//! Values read here go to the plugin only; they are never logged.

use async_trait::async_trait;
use esox_plugin_host::{HostServices, ServiceAccountToken, TokenRequest};
use esox_provider::ProviderError;
use k8s_openapi::api::authentication::v1::{TokenRequest as K8sTokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, PostParams};

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
            ).into())),
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

/// [`HostServices`] backed by the Kubernetes API.
pub struct KubeServices {
    client: kube::Client,
    rules: NamespaceRules,
}

impl KubeServices {
    /// A broker for one store with these namespace rules.
    pub fn new(client: kube::Client, rules: NamespaceRules) -> Self {
        KubeServices { client, rules }
    }
}

fn kube_error(what: &str, e: kube::Error) -> ProviderError {
    match &e {
        kube::Error::Api(s) if s.code == 403 => ProviderError::PermissionDenied(format!(
            "esox may not read {what}: {}; grant the controller's ServiceAccount access (deploy/rbac.yaml)",
            s.message
        ).into()),
        _ => ProviderError::Unavailable(format!("reading {what} from the API server failed: {e}").into()),
    }
}

/// One key of a Secret's data, or why not.
fn secret_data_key(secret: Secret, what: &str, key: &str) -> Result<Vec<u8>, ProviderError> {
    secret
        .data
        .and_then(|mut d| d.remove(key))
        .map(|b| b.0)
        .ok_or_else(|| {
            ProviderError::InvalidConfig(
                format!("{what} has no key {key:?}: add it or fix the reference").into(),
            )
        })
}

impl KubeServices {
    /// A referenced Secret, under the store's namespace rules, and how to name it in messages.
    async fn secret(
        &self,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<(Secret, String), ProviderError> {
        let ns = self.rules.resolve(namespace)?;
        let what = format!("Secret {ns}/{name}");
        let secret = Api::<Secret>::namespaced(self.client.clone(), &ns)
            .get_opt(name)
            .await
            .map_err(|e| kube_error(&what, e))?
            .ok_or_else(|| ProviderError::InvalidConfig(format!("{what}, referenced by the store, does not exist: create it or fix the reference").into()))?;
        Ok((secret, what))
    }
}

#[async_trait]
impl HostServices for KubeServices {
    async fn secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        let (secret, what) = self.secret(name, namespace).await?;
        secret_data_key(secret, &what, key)
    }

    async fn labelled_secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
        labels: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        let (secret, what) = self.secret(name, namespace).await?;
        if let Some(why) = esox_plugin_host::services::missing_label(
            &what,
            secret.metadata.labels.as_ref(),
            labels,
        ) {
            return Err(ProviderError::PermissionDenied(why.into()));
        }
        secret_data_key(secret, &what, key)
    }

    async fn config_map_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<String, ProviderError> {
        let ns = self.rules.resolve(namespace)?;
        let what = format!("ConfigMap {ns}/{name}");
        let cm = Api::<ConfigMap>::namespaced(self.client.clone(), &ns)
            .get_opt(name)
            .await
            .map_err(|e| kube_error(&what, e))?
            .ok_or_else(|| ProviderError::InvalidConfig(format!("{what}, referenced by the store, does not exist: create it or fix the reference").into()))?;
        cm.data.and_then(|mut d| d.remove(key)).ok_or_else(|| {
            ProviderError::InvalidConfig(
                format!("{what} has no key {key:?}: add it or fix the reference").into(),
            )
        })
    }

    async fn service_account_token(
        &self,
        request: TokenRequest,
    ) -> Result<ServiceAccountToken, ProviderError> {
        let ns = self.rules.resolve(request.namespace.as_deref())?;
        let what = format!("ServiceAccount {ns}/{}", request.name);
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), &ns);
        let sa = api
            .get_opt(&request.name)
            .await
            .map_err(|e| kube_error(&what, e))?
            .ok_or_else(|| {
                ProviderError::InvalidConfig(
                    format!("{what}, referenced by the store, does not exist").into(),
                )
            })?;
        let token_request = K8sTokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(request.audiences.clone()),
                expiration_seconds: request.expiration_seconds.map(i64::from),
                ..Default::default()
            }),
            ..Default::default()
        };
        let answer = api
            .create_token_request(&request.name, &PostParams::default(), &token_request)
            .await
            .map_err(|e| kube_error(&format!("a token for {what}"), e))?;
        let status = answer.status.ok_or_else(|| {
            ProviderError::Unavailable(
                format!("the API server returned no token for {what}").into(),
            )
        })?;
        let token = status.token.ok_or_else(|| {
            ProviderError::Unavailable(
                format!("the API server returned an empty token for {what}").into(),
            )
        })?;
        Ok(ServiceAccountToken {
            token,
            expires_at: status
                .expiration_timestamp
                .and_then(|t| u64::try_from(t.0.as_second()).ok())
                .unwrap_or(0),
            annotations: sa
                .metadata
                .annotations
                .unwrap_or_default()
                .into_iter()
                .collect(),
        })
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
}
