//! The auth broker against the API server: what a plugin may ask the host for (one key of a
//! Secret, one key of a ConfigMap, a ServiceAccount token), answered under the store's
//! [`NamespaceRules`]. One instance per store (and per referent namespace for a
//! ClusterSecretStore), so a SecretStore can never read outside its own namespace.
//!
//! Values read here go to the plugin only; they are never logged.

use async_trait::async_trait;
use esox_plugin_host::{HostServices, NamespaceRules, ServiceAccountToken, TokenRequest};
use esox_provider::ProviderError;
use k8s_openapi::api::authentication::v1::{TokenRequest as K8sTokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, PostParams};

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
        )),
        _ => ProviderError::Unavailable(format!("reading {what} from the API server failed: {e}")),
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
        let ns = self.rules.resolve(namespace)?;
        let what = format!("Secret {ns}/{name}");
        let secret = Api::<Secret>::namespaced(self.client.clone(), &ns)
            .get_opt(name)
            .await
            .map_err(|e| kube_error(&what, e))?
            .ok_or_else(|| ProviderError::InvalidConfig(format!("{what}, referenced by the store, does not exist: create it or fix the reference")))?;
        secret
            .data
            .and_then(|mut d| d.remove(key))
            .map(|b| b.0)
            .ok_or_else(|| {
                ProviderError::InvalidConfig(format!(
                    "{what} has no key {key:?}: add it or fix the reference"
                ))
            })
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
            .ok_or_else(|| ProviderError::InvalidConfig(format!("{what}, referenced by the store, does not exist: create it or fix the reference")))?;
        cm.data.and_then(|mut d| d.remove(key)).ok_or_else(|| {
            ProviderError::InvalidConfig(format!(
                "{what} has no key {key:?}: add it or fix the reference"
            ))
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
                ProviderError::InvalidConfig(format!(
                    "{what}, referenced by the store, does not exist"
                ))
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
            ProviderError::Unavailable(format!("the API server returned no token for {what}"))
        })?;
        let token = status.token.ok_or_else(|| {
            ProviderError::Unavailable(format!("the API server returned an empty token for {what}"))
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
