//! One store's connection to AWS: the cached credential session and SDK client, and the
//! contract operations (get, batch get, find, validate) dispatched to the store's service.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_secretsmanager::config::retry::RetryConfig;
use esox_plugin_sdk::{
    Error, FindQuery, MetadataPolicy, RemoteRef, SecretClient, SecretMap, StoreContext, Validation,
    block_on,
};

use crate::config::{AwsConfig, Service};
use crate::credentials::{self, Session};
use crate::endpoint::{AwsService, Endpoints};
use crate::{certificatemanager, parameterstore, secretsmanager};

/// The SDK client of the store's service, built for one credential session.
#[derive(Clone)]
enum Backend {
    SecretsManager(aws_sdk_secretsmanager::Client),
    ParameterStore(aws_sdk_ssm::Client),
    CertificateManager(aws_sdk_acm::Client),
}

struct Live {
    session: Session,
    backend: Backend,
}

/// A client for one store. The host keeps it across calls, so the session is reused.
pub struct AwsClient {
    config: AwsConfig,
    endpoints: Endpoints,
    store: StoreContext,
    live: RefCell<Option<Live>>,
    /// CertificateManager: the last export of each certificate (ExportCertificate is billed).
    exports: certificatemanager::ExportCache,
}

/// `retrySettings` as the SDK's standard retryer; the SDK default (3 attempts) without them.
pub fn retry_config(config: &AwsConfig) -> RetryConfig {
    match &config.retry {
        None => RetryConfig::standard(),
        Some(r) => {
            let mut rc = RetryConfig::standard().with_max_attempts(r.max_retries.saturating_add(1));
            if let Some(interval) = r.retry_interval {
                // Initial and maximum backoff equal: a fixed interval (the SDK adds jitter).
                rc = rc.with_initial_backoff(interval).with_max_backoff(interval);
            }
            rc
        }
    }
}

impl AwsClient {
    /// A client that resolves credentials on first use.
    pub fn new(config: AwsConfig, endpoints: Endpoints, store: StoreContext) -> AwsClient {
        AwsClient {
            config,
            endpoints,
            store,
            live: RefCell::new(None),
            exports: certificatemanager::ExportCache::default(),
        }
    }

    /// Whether this client cannot tell if the store works: its credentials are referent (no
    /// namespace) and it serves a ClusterSecretStore validated on its own, so there is no
    /// ExternalSecret namespace to resolve them in (ESO answers `ValidationUnknown`). On a
    /// SecretStore the same references resolve in its namespace, and their errors (a missing
    /// Secret, refused keys) make the store not Ready, as in ESO.
    pub fn validation_is_unknown(&self) -> bool {
        self.config.is_referent() && self.store.lacks_referent_namespace()
    }

    fn build_backend(&self, session: &Session) -> Backend {
        let region = self.config.region.clone();
        let http = aws_smithy_wasm::wasi::WasiHttpClientBuilder::new().build();
        match self.config.service {
            Service::SecretsManager => {
                let mut b = aws_sdk_secretsmanager::Config::builder()
                    .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                    .region(aws_sdk_secretsmanager::config::Region::new(region))
                    .credentials_provider(session.to_sdk())
                    .http_client(http)
                    .sleep_impl(aws_smithy_wasm::wasi::WasiSleep)
                    .retry_config(retry_config(&self.config));
                if let Some(url) = self.endpoints.for_service(AwsService::SecretsManager) {
                    b = b.endpoint_url(url);
                }
                Backend::SecretsManager(aws_sdk_secretsmanager::Client::from_conf(b.build()))
            }
            Service::ParameterStore => {
                let mut b = aws_sdk_ssm::Config::builder()
                    .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
                    .region(aws_sdk_ssm::config::Region::new(region))
                    .credentials_provider(session.to_sdk())
                    .http_client(http)
                    .sleep_impl(aws_smithy_wasm::wasi::WasiSleep)
                    .retry_config(retry_config(&self.config));
                if let Some(url) = self.endpoints.for_service(AwsService::Ssm) {
                    b = b.endpoint_url(url);
                }
                Backend::ParameterStore(aws_sdk_ssm::Client::from_conf(b.build()))
            }
            Service::CertificateManager => {
                let mut b = aws_sdk_acm::Config::builder()
                    .behavior_version(aws_sdk_acm::config::BehaviorVersion::latest())
                    .region(aws_sdk_acm::config::Region::new(region))
                    .credentials_provider(session.to_sdk())
                    .http_client(http)
                    .sleep_impl(aws_smithy_wasm::wasi::WasiSleep)
                    .retry_config(retry_config(&self.config));
                if let Some(url) = self.endpoints.for_service(AwsService::Acm) {
                    b = b.endpoint_url(url);
                }
                Backend::CertificateManager(aws_sdk_acm::Client::from_conf(b.build()))
            }
        }
    }

    /// The SDK client for a fresh session, resolving the credential chain only when the cached
    /// session is missing or near expiry.
    async fn backend(&self) -> Result<Backend, Error> {
        let now = SystemTime::now();
        if let Some(live) = self.live.borrow().as_ref()
            && live.session.is_fresh(now)
        {
            return Ok(live.backend.clone());
        }
        let session = credentials::resolve(&self.config, &self.endpoints).await?;
        let backend = self.build_backend(&session);
        *self.live.borrow_mut() = Some(Live {
            session,
            backend: backend.clone(),
        });
        Ok(backend)
    }

    /// Forget the session after AWS refused it, so the next call (a retry) resolves the chain
    /// again and picks up rotated keys or a changed role.
    fn note<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if matches!(result, Err(Error::PermissionDenied(_))) {
            self.live.borrow_mut().take();
        }
        result
    }

    /// The whole value (or tags) of one reference, without applying its property.
    async fn fetch_whole(&self, backend: &Backend, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        let prefix = &self.config.prefix;
        let fetch_tags = matches!(remote.metadata_policy, MetadataPolicy::Fetch);
        match backend {
            Backend::SecretsManager(c) => {
                let id = format!("{prefix}{}", remote.key);
                if fetch_tags {
                    secretsmanager::get_tags(c, &id).await
                } else {
                    secretsmanager::get_value(c, &id, remote.version.as_deref()).await
                }
            }
            Backend::ParameterStore(c) => {
                if fetch_tags {
                    let name = parameterstore::parameter_name(prefix, &remote.key, None);
                    parameterstore::get_tags(c, &name).await
                } else {
                    let name = parameterstore::parameter_name(
                        prefix,
                        &remote.key,
                        remote.version.as_deref(),
                    );
                    parameterstore::get_value(c, &name).await
                }
            }
            // The key is the certificate's ARN, without the store's prefix (as ESO).
            Backend::CertificateManager(c) => {
                if fetch_tags {
                    return Err(Error::unsupported(
                        "metadataPolicy: Fetch with service CertificateManager (the value is the certificate bundle; ESO reads no tags either)",
                    ));
                }
                if remote.version.as_deref().is_some_and(|v| !v.is_empty()) {
                    return Err(Error::unsupported(
                        "remoteRef.version with service CertificateManager (ACM exports the current certificate only)",
                    ));
                }
                certificatemanager::get_value(c, &self.exports, &remote.key).await
            }
        }
    }

    /// Batch-fetch the current values of `ids` (prefix applied); absent ids fall back.
    async fn fetch_batch(
        &self,
        backend: &Backend,
        ids: &[String],
    ) -> HashMap<String, Result<Vec<u8>, Error>> {
        if ids.len() < 2 {
            return HashMap::new();
        }
        let result = match backend {
            Backend::SecretsManager(c) => secretsmanager::batch_current(c, ids).await,
            Backend::ParameterStore(c) => parameterstore::batch(c, ids).await,
            Backend::CertificateManager(_) => return HashMap::new(),
        };
        // A refused or failed batch is not fatal: each key is then read on its own.
        result.unwrap_or_default()
    }
}

/// The identity of a fetch: what one backend call returns, before properties.
type Identity = (String, Option<String>, bool);

fn identity(remote: &RemoteRef) -> Identity {
    (
        remote.key.clone(),
        remote.version.clone(),
        matches!(remote.metadata_policy, MetadataPolicy::Fetch),
    )
}

/// Whether a reference reads what a batch call returns: the current value, not tags.
fn batchable(service: Service, remote: &RemoteRef) -> bool {
    if matches!(remote.metadata_policy, MetadataPolicy::Fetch) {
        return false;
    }
    match service {
        Service::SecretsManager => secretsmanager::is_current(remote.version.as_deref()),
        Service::ParameterStore => remote.version.as_deref().is_none_or(str::is_empty),
        Service::CertificateManager => false,
    }
}

impl SecretClient for AwsClient {
    fn validate(&self) -> Result<Validation, Error> {
        if self.validation_is_unknown() {
            return Ok(Validation::Unknown);
        }
        block_on(self.backend()).map(|_| Validation::Ready)
    }

    fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        let whole = block_on(async {
            let backend = self.backend().await?;
            self.fetch_whole(&backend, &remote.without_property()).await
        });
        let whole = self.note(whole)?;
        self.select_property(whole, remote)
    }

    fn get_secrets(&self, remotes: &[RemoteRef]) -> Vec<Result<Vec<u8>, Error>> {
        let fetched: Result<HashMap<Identity, Result<Vec<u8>, Error>>, Error> = block_on(async {
            let backend = self.backend().await?;
            let mut fetched: HashMap<Identity, Result<Vec<u8>, Error>> = HashMap::new();
            let mut batch_ids: Vec<String> = Vec::new();
            for remote in remotes.iter().filter(|r| batchable(self.config.service, r)) {
                let id = format!("{}{}", self.config.prefix, remote.key);
                if !batch_ids.contains(&id) {
                    batch_ids.push(id);
                }
            }
            let batched = self.fetch_batch(&backend, &batch_ids).await;
            for remote in remotes {
                let key = identity(remote);
                if fetched.contains_key(&key) {
                    continue;
                }
                let id = format!("{}{}", self.config.prefix, remote.key);
                let from_batch = if batchable(self.config.service, remote) {
                    batched.get(&id).cloned()
                } else {
                    None
                };
                let value = match from_batch {
                    Some(v) => v,
                    None => self.fetch_whole(&backend, &remote.without_property()).await,
                };
                fetched.insert(key, value);
            }
            Ok(fetched)
        });
        match self.note(fetched) {
            Err(e) => remotes.iter().map(|_| Err(e.clone())).collect(),
            Ok(fetched) => remotes
                .iter()
                .map(|remote| {
                    let whole = fetched
                        .get(&identity(remote))
                        .cloned()
                        .unwrap_or_else(|| Err(Error::backend("value missing from batch")));
                    if matches!(whole, Err(Error::PermissionDenied(_))) {
                        self.live.borrow_mut().take();
                    }
                    whole.and_then(|v| self.select_property(v, remote))
                })
                .collect(),
        }
    }

    fn get_all_secrets(&self, query: &FindQuery) -> Result<SecretMap, Error> {
        let result = block_on(async {
            match self.backend().await? {
                Backend::SecretsManager(c) => secretsmanager::find(&c, query).await,
                Backend::ParameterStore(c) => parameterstore::find(&c, query).await,
                Backend::CertificateManager(_) => {
                    Err(Error::unsupported(certificatemanager::NOT_IMPLEMENTED))
                }
            }
        });
        self.note(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_plugin_sdk::serde_json::json;

    fn remote(key: &str, version: Option<&str>, fetch: bool) -> RemoteRef {
        RemoteRef {
            key: key.into(),
            property: None,
            version: version.map(str::to_string),
            metadata_policy: if fetch {
                MetadataPolicy::Fetch
            } else {
                MetadataPolicy::None
            },
        }
    }

    #[test]
    fn current_values_are_batched_but_other_versions_and_tags_are_not() {
        let sm = Service::SecretsManager;
        assert!(batchable(sm, &remote("a", None, false)));
        assert!(batchable(sm, &remote("a", Some("AWSCURRENT"), false)));
        assert!(!batchable(sm, &remote("a", Some("AWSPREVIOUS"), false)));
        assert!(!batchable(sm, &remote("a", None, true)));
        let ps = Service::ParameterStore;
        assert!(batchable(ps, &remote("/a", None, false)));
        assert!(!batchable(ps, &remote("/a", Some("2"), false)));
    }

    fn client(auth: serde_json::Value, store: StoreContext) -> AwsClient {
        let config = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1", "auth": auth
        }))
        .unwrap();
        AwsClient::new(config, Endpoints::default(), store)
    }

    #[test]
    fn a_cluster_store_with_referent_references_validates_as_unknown_on_its_own() {
        let referent = json!({"secretRef": {
            "accessKeyIDSecretRef": {"name": "s", "key": "id"},
            "secretAccessKeySecretRef": {"name": "s", "key": "secret"}
        }});
        let pinned = json!({"secretRef": {
            "accessKeyIDSecretRef": {"name": "s", "key": "id", "namespace": "ops"},
            "secretAccessKeySecretRef": {"name": "s", "key": "secret", "namespace": "ops"}
        }});
        let alone = StoreContext::cluster_secret_store("aws", None);
        let for_es = StoreContext::cluster_secret_store("aws", Some("team-a"));
        let namespaced = StoreContext::secret_store("team-a", "aws");
        assert!(client(referent.clone(), alone.clone()).validation_is_unknown());
        assert!(matches!(
            client(referent.clone(), alone.clone()).validate(),
            Ok(Validation::Unknown)
        ));
        assert!(!client(referent.clone(), for_es).validation_is_unknown());
        assert!(!client(referent, namespaced).validation_is_unknown());
        assert!(!client(pinned, alone.clone()).validation_is_unknown());
        assert!(!client(json!({}), alone).validation_is_unknown());
    }

    #[test]
    fn retry_settings_become_the_standard_retryer_with_a_fixed_interval() {
        let config = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1",
            "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": "s", "key": "id"},
                "secretAccessKeySecretRef": {"name": "s", "key": "secret"}
            }},
            "retrySettings": {"maxRetries": 4, "retryInterval": "2s"}
        }))
        .unwrap();
        let rc = retry_config(&config);
        assert_eq!(rc.max_attempts(), 5);
        assert_eq!(rc.initial_backoff(), std::time::Duration::from_secs(2));
        assert_eq!(rc.max_backoff(), std::time::Duration::from_secs(2));
    }
}
