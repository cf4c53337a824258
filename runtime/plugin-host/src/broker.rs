//! The auth broker's grant: what a plugin may ask the host for, decided from what its store's
//! config names.
//!
//! A plugin never holds Kubernetes credentials; it asks the host for a Secret key, a ConfigMap
//! key, a ServiceAccount token or the controller's own (ambient) identity. The host answers
//! only requests inside the store's [`Grant`]: the objects found at the plugin's declared
//! reference paths ([`References::Declared`], contract 0.2) — or, for a 0.1 plugin that cannot
//! declare, the objects its config names in ESO's selector shapes — in *this* store's config.
//! The [`HostServices`] behind the broker then apply ESO's namespace rules as a second check.
//! A refused request is `permission-denied`, logged with the object's name (never a value) and
//! counted in `esox_plugin_broker_denied_total`.
//!
//! Tokens are bounded too: audiences must be within the reference's grant (none at all, a token
//! for the API server's own audience, only when the operator grants that to the plugin), and the
//! lifetime is capped ([`Limits::max_token_lifetime`](crate::Limits)).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use esox_provider::ProviderError;
use serde_json::Value;

use crate::contract::{ReferenceKind, References, StoreContext};
use crate::metrics::{BrokerLabels, HostMetrics};
use crate::services::{HostServices, ServiceAccountToken, TokenRequest};

/// A Secret or ConfigMap key the store's config names. `key: None` names the whole object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ObjectKey {
    namespace: Option<String>,
    name: String,
    key: Option<String>,
}

impl ObjectKey {
    /// Whether this granted key covers `name`/`key` in `namespace` (a key of `None` covers
    /// every key of the object; namespaces compare as resolved against `home`).
    fn matches(&self, home: Option<&str>, namespace: Option<&str>, name: &str, key: &str) -> bool {
        self.name == name
            && self.key.as_deref().is_none_or(|k| k == key)
            && normalise(self.namespace.as_deref(), home) == normalise(namespace, home)
    }
}

/// Labels (name, value) an object must carry.
type Labels = Vec<(String, String)>;

/// Audiences a ServiceAccount reference allows; `None` (0.1 plugins only): any non-empty set.
type Audiences = Option<BTreeSet<String>>;

/// What one store's plugin may ask the host for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// Granted Secret keys, each with the labels the Secret must carry before the host reads
    /// it (contract 0.3's `required-labels`, ESO's webhook rule); `None` when some path grants
    /// it without any.
    secrets: BTreeMap<ObjectKey, Option<Labels>>,
    config_maps: BTreeSet<ObjectKey>,
    service_accounts: BTreeMap<(Option<String>, String), Audiences>,
}

impl Grant {
    /// The grant of a store with this config, for a plugin that references objects this way.
    pub fn from_config(references: &References, config: &Value) -> Grant {
        let mut grant = Grant::default();
        match references {
            References::Declared(paths) => {
                for p in paths {
                    for object in objects_at(config, &p.path) {
                        grant.add(p.kind, object, Some(&p.audiences), &p.required_labels);
                    }
                }
            }
            References::InferredFromConfig => grant.infer(config, false),
        }
        grant
    }

    fn infer(&mut self, value: &Value, under_service_account: bool) {
        match value {
            Value::Object(map) => {
                if under_service_account {
                    self.add(ReferenceKind::ServiceAccount, value, None, &[]);
                } else if map.get("type").and_then(Value::as_str).is_some()
                    && map.contains_key("name")
                {
                    self.add(ReferenceKind::CaProvider, value, None, &[]);
                } else if map.contains_key("name") && map.contains_key("key") {
                    self.add(ReferenceKind::SecretKey, value, None, &[]);
                    self.add(ReferenceKind::ConfigMapKey, value, None, &[]);
                }
                for (k, v) in map {
                    self.infer(v, k == "serviceAccountRef");
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.infer(v, false)),
            _ => {}
        }
    }

    fn add(
        &mut self,
        kind: ReferenceKind,
        object: &Value,
        declared_audiences: Option<&[String]>,
        required_labels: &[(String, String)],
    ) {
        let text = |k: &str| object.get(k).and_then(Value::as_str).map(str::to_string);
        let Some(name) = text("name").filter(|n| !n.is_empty()) else {
            return;
        };
        let key = ObjectKey {
            namespace: text("namespace"),
            name: name.clone(),
            key: text("key"),
        };
        match kind {
            ReferenceKind::SecretKey => self.grant_secret(key, required_labels),
            ReferenceKind::ConfigMapKey => {
                self.config_maps.insert(key);
            }
            ReferenceKind::CaProvider => match text("type").as_deref() {
                Some("Secret") => self.grant_secret(key, &[]),
                Some("ConfigMap") => {
                    self.config_maps.insert(key);
                }
                _ => {}
            },
            ReferenceKind::ServiceAccount => {
                let audiences = declared_audiences.map(|declared| {
                    let mut set: BTreeSet<String> = declared.iter().cloned().collect();
                    if let Some(Value::Array(own)) = object.get("audiences") {
                        set.extend(own.iter().filter_map(Value::as_str).map(str::to_string));
                    }
                    set
                });
                let entry = self
                    .service_accounts
                    .entry((key.namespace, name))
                    .or_insert_with(|| Some(BTreeSet::new()));
                match (entry.as_mut(), audiences) {
                    (Some(have), Some(more)) => have.extend(more),
                    _ => *entry = None,
                }
            }
        }
    }

    /// Grant a Secret key, requiring `labels` of it; a key granted elsewhere without labels
    /// needs none, and the requirements of several paths add up.
    fn grant_secret(&mut self, key: ObjectKey, labels: &[(String, String)]) {
        let labels = (!labels.is_empty()).then(|| labels.to_vec());
        let entry = self.secrets.entry(key).or_insert_with(|| labels.clone());
        match (entry.as_mut(), labels) {
            (Some(have), Some(more)) => {
                for l in more {
                    if !have.contains(&l) {
                        have.push(l);
                    }
                }
            }
            _ => *entry = None,
        }
    }

    /// The labels a granted Secret key must carry before it is read: those every grant of it
    /// requires; none when any grant requires none.
    fn required_labels(
        &self,
        home: Option<&str>,
        namespace: Option<&str>,
        name: &str,
        key: &str,
    ) -> Option<&Labels> {
        let mut required = None;
        for (g, labels) in &self.secrets {
            if g.matches(home, namespace, name, key) {
                match labels {
                    None => return None,
                    Some(l) => required = Some(l),
                }
            }
        }
        required
    }

    /// Whether nothing at all is granted.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.config_maps.is_empty() && self.service_accounts.is_empty()
    }

    fn allows_key<'a>(
        granted: impl IntoIterator<Item = &'a ObjectKey>,
        home: Option<&str>,
        namespace: Option<&str>,
        name: &str,
        key: &str,
    ) -> bool {
        granted
            .into_iter()
            .any(|g| g.matches(home, namespace, name, key))
    }

    fn audiences_for(
        &self,
        home: Option<&str>,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&Audiences> {
        let wanted = normalise(namespace, home);
        self.service_accounts
            .iter()
            .find(|((ns, n), _)| n == name && normalise(ns.as_deref(), home) == wanted)
            .map(|(_, a)| a)
    }
}

/// A reference without a namespace means the store's home namespace; comparing resolved
/// namespaces lets a plugin spell the home namespace either way, and nothing more.
fn normalise<'a>(namespace: Option<&'a str>, home: Option<&'a str>) -> Option<&'a str> {
    namespace.or(home)
}

/// The JSON values at `path` (`a.b[*].c`): keys separated by dots, `[*]` for every element of
/// an array. Missing steps yield nothing.
pub fn objects_at<'a>(config: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![config];
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let mut key = segment;
        let mut wildcards = 0;
        while let Some(rest) = key.strip_suffix("[*]") {
            key = rest;
            wildcards += 1;
        }
        if !key.is_empty() {
            current = current.into_iter().filter_map(|v| v.get(key)).collect();
        }
        for _ in 0..wildcards {
            current = current
                .into_iter()
                .filter_map(Value::as_array)
                .flatten()
                .collect();
        }
    }
    current
}

/// The controller's own identity as its environment provides it (see `wit/v0.2/host.wit`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AmbientIdentity {
    pub web_identity: Option<WebIdentity>,
    pub container_credentials: Option<ContainerCredentials>,
    /// Allow-listed variables only ([`AMBIENT_ENV`]).
    pub environment: Vec<(String, String)>,
}

impl std::fmt::Debug for AmbientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmbientIdentity")
            .field(
                "web_identity",
                &self.web_identity.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "container_credentials",
                &self.container_credentials.as_ref().map(|c| &c.uri),
            )
            .field(
                "environment",
                &self.environment.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A web identity token and the role it may assume (IRSA).
#[derive(Clone, PartialEq, Eq)]
pub struct WebIdentity {
    pub token: String,
    pub role_arn: Option<String>,
}

/// A container credentials endpoint (EKS Pod Identity).
#[derive(Clone, PartialEq, Eq)]
pub struct ContainerCredentials {
    pub uri: String,
    pub authorization: Option<String>,
}

/// The environment variables of the controller a plugin may see through `ambient-identity`.
pub const AMBIENT_ENV: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_USE_FIPS_ENDPOINT",
];

/// Where the ambient identity comes from: the process environment in production, a map in tests.
pub type AmbientSource = Arc<dyn Fn() -> Result<AmbientIdentity, String> + Send + Sync>;

impl AmbientIdentity {
    /// Read it from an environment lookup: `AWS_WEB_IDENTITY_TOKEN_FILE` (+ `AWS_ROLE_ARN`),
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (+ `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`) and the
    /// variables of [`AMBIENT_ENV`]. Files are read on every call, so rotated tokens are seen.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let read = |path: &str, what: &str| {
            std::fs::read_to_string(path)
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("cannot read the controller's {what} ({path}): {e}"))
        };
        let web_identity = match var("AWS_WEB_IDENTITY_TOKEN_FILE") {
            Some(path) if !path.is_empty() => Some(WebIdentity {
                token: read(&path, "web identity token")?,
                role_arn: var("AWS_ROLE_ARN").filter(|r| !r.is_empty()),
            }),
            _ => None,
        };
        let container_credentials = match var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            Some(uri) if !uri.is_empty() => {
                let authorization = match var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
                    Some(path) if !path.is_empty() => {
                        Some(read(&path, "container authorization token")?)
                    }
                    _ => var("AWS_CONTAINER_AUTHORIZATION_TOKEN").filter(|t| !t.is_empty()),
                };
                Some(ContainerCredentials { uri, authorization })
            }
            _ => None,
        };
        let environment = AMBIENT_ENV
            .iter()
            .filter_map(|k| var(k).filter(|v| !v.is_empty()).map(|v| (k.to_string(), v)))
            .collect();
        Ok(AmbientIdentity {
            web_identity,
            container_credentials,
            environment,
        })
    }

    /// The process environment's identity.
    pub fn process_source() -> AmbientSource {
        Arc::new(|| AmbientIdentity::from_env(|k| std::env::var(k).ok()))
    }
}

/// Severity of a plugin's log line.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One store's broker: its grant, its services, and the bounds on tokens and identity. Shared
/// by the store's instances.
pub struct Broker {
    pub(crate) plugin: Arc<str>,
    pub(crate) store: Arc<str>,
    context: Option<StoreContext>,
    grant: Grant,
    services: Arc<dyn HostServices>,
    max_token_lifetime: Duration,
    ambient: Option<AmbientSource>,
    api_audience_tokens: bool,
    metrics: HostMetrics,
}

impl Broker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        plugin: Arc<str>,
        store: Arc<str>,
        context: Option<StoreContext>,
        grant: Grant,
        services: Arc<dyn HostServices>,
        max_token_lifetime: Duration,
        ambient: Option<AmbientSource>,
        metrics: HostMetrics,
    ) -> Self {
        Broker {
            plugin,
            store,
            context,
            grant,
            services,
            max_token_lifetime,
            ambient,
            api_audience_tokens: false,
            metrics,
        }
    }

    /// Let the plugin ask for tokens with the API server's own audience (no audiences) for
    /// the ServiceAccounts its store references: the operator's grant.
    pub(crate) fn with_api_audience_tokens(mut self, allowed: bool) -> Self {
        self.api_audience_tokens = allowed;
        self
    }

    /// A broker that grants nothing (loading, `validate-config`, benchmarks).
    pub(crate) fn none(plugin: Arc<str>, store: &str, metrics: HostMetrics) -> Self {
        Broker::new(
            plugin,
            Arc::from(store),
            None,
            Grant::default(),
            Arc::new(crate::services::NoServices),
            Duration::ZERO,
            None,
            metrics,
        )
    }

    fn home(&self) -> Option<&str> {
        self.context.as_ref().and_then(StoreContext::home_namespace)
    }

    fn deny(&self, kind: &'static str, object: &str, why: &str) -> ProviderError {
        self.metrics
            .broker_denied
            .get_or_create(&BrokerLabels {
                plugin: self.plugin.to_string(),
                kind: kind.to_string(),
            })
            .inc();
        tracing::warn!(plugin = %self.plugin, store = %self.store, kind, object, why, "broker denied a plugin's request");
        ProviderError::PermissionDenied(
            format!(
                "{object}: {why} (a plugin may use only the objects its store's config references)"
            )
            .into(),
        )
    }

    fn describe(kind: &str, namespace: Option<&str>, name: &str, key: Option<&str>) -> String {
        let ns = namespace.map(|n| format!("{n}/")).unwrap_or_default();
        match key {
            Some(k) => format!("{kind} {ns}{name} key {k:?}"),
            None => format!("{kind} {ns}{name}"),
        }
    }

    pub(crate) async fn secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        if !Grant::allows_key(self.grant.secrets.keys(), self.home(), namespace, name, key) {
            return Err(self.deny(
                "secret",
                &Self::describe("Secret", namespace, name, Some(key)),
                "not referenced by the store",
            ));
        }
        match self
            .grant
            .required_labels(self.home(), namespace, name, key)
        {
            None => self.services.secret_key(name, key, namespace).await,
            Some(labels) => {
                self.services
                    .labelled_secret_key(name, key, namespace, labels)
                    .await
            }
        }
    }

    /// One key of a Secret holding a store's client certificate or its private key, read for
    /// the host itself (contract 0.3): the plugin's grant does not include it, the namespace
    /// rules of the store's services still apply. Never logged with its value.
    pub(crate) async fn client_certificate_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.services.secret_key(name, key, namespace).await
    }

    pub(crate) async fn config_map_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<String, ProviderError> {
        if !Grant::allows_key(&self.grant.config_maps, self.home(), namespace, name, key) {
            return Err(self.deny(
                "config_map",
                &Self::describe("ConfigMap", namespace, name, Some(key)),
                "not referenced by the store",
            ));
        }
        self.services.config_map_key(name, key, namespace).await
    }

    pub(crate) async fn service_account_token(
        &self,
        name: String,
        namespace: Option<String>,
        audiences: Vec<String>,
        expiration_seconds: Option<u32>,
    ) -> Result<ServiceAccountToken, ProviderError> {
        let what = Self::describe("ServiceAccount", namespace.as_deref(), &name, None);
        let Some(allowed) = self
            .grant
            .audiences_for(self.home(), namespace.as_deref(), &name)
        else {
            return Err(self.deny("service_account", &what, "not referenced by the store"));
        };
        if audiences.iter().any(String::is_empty) {
            return Err(self.deny("token_audience", &what, "an audience cannot be empty"));
        }
        if audiences.is_empty() && !self.api_audience_tokens {
            return Err(self.deny(
                "token_audience",
                &what,
                &format!(
                    "a token without audiences is valid for the Kubernetes API server itself, and the operator does not grant those to the {} plugin (--plugin-api-audience-tokens): list the audiences its server expects on the reference",
                    self.plugin
                ),
            ));
        }
        if let Some(allowed) = allowed
            && let Some(extra) = audiences.iter().find(|a| !allowed.contains(*a))
        {
            return Err(self.deny(
                "token_audience",
                &what,
                &format!("audience {extra:?} is not among the reference's audiences {allowed:?}"),
            ));
        }
        let cap = u32::try_from(self.max_token_lifetime.as_secs()).unwrap_or(u32::MAX);
        let expiration = match expiration_seconds {
            None => cap,
            Some(s) if s <= cap => s,
            Some(s) => {
                return Err(self.deny(
                    "token_lifetime",
                    &what,
                    &format!("a token lifetime of {s} s exceeds the operator's cap of {cap} s"),
                ));
            }
        };
        self.services
            .service_account_token(TokenRequest {
                name,
                namespace,
                audiences,
                expiration_seconds: Some(expiration),
            })
            .await
    }

    pub(crate) fn ambient_identity(&self) -> Result<AmbientIdentity, ProviderError> {
        let Some(source) = &self.ambient else {
            return Err(self.deny(
                "ambient_identity",
                "the controller's own identity",
                "not granted to this plugin by the operator",
            ));
        };
        source().map_err(|e| ProviderError::InvalidConfig(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ReferencePath;
    use serde_json::json;

    fn declared(paths: &[(ReferenceKind, &str, &[&str])]) -> References {
        References::Declared(
            paths
                .iter()
                .map(|(kind, path, aud)| ReferencePath {
                    kind: *kind,
                    path: path.to_string(),
                    audiences: aud.iter().map(|a| a.to_string()).collect(),
                    required_labels: vec![],
                })
                .collect(),
        )
    }

    #[test]
    fn paths_walk_objects_and_arrays() {
        let config = json!({"a": {"b": [{"c": 1}, {"c": 2}, {"d": 3}]}, "x": [[{"y": 4}]]});
        assert_eq!(objects_at(&config, "a.b[*].c"), vec![&json!(1), &json!(2)]);
        assert_eq!(objects_at(&config, "x[*][*].y"), vec![&json!(4)]);
        assert!(objects_at(&config, "a.missing.c").is_empty());
        assert!(
            objects_at(&config, "a.b.c").is_empty(),
            "an array needs [*]"
        );
    }

    #[test]
    fn only_objects_at_declared_paths_are_granted() {
        let config = json!({
            "auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "aws", "key": "id"}}},
            "other": {"name": "db-password", "key": "password"}
        });
        let refs = declared(&[(
            ReferenceKind::SecretKey,
            "auth.secretRef.accessKeyIDSecretRef",
            &[],
        )]);
        let grant = Grant::from_config(&refs, &config);
        assert!(Grant::allows_key(
            grant.secrets.keys(),
            Some("team-a"),
            None,
            "aws",
            "id"
        ));
        assert!(
            Grant::allows_key(
                grant.secrets.keys(),
                Some("team-a"),
                Some("team-a"),
                "aws",
                "id"
            ),
            "the home namespace may be spelled out"
        );
        assert!(!Grant::allows_key(
            grant.secrets.keys(),
            Some("team-a"),
            None,
            "aws",
            "secret"
        ));
        assert!(!Grant::allows_key(
            grant.secrets.keys(),
            Some("team-a"),
            None,
            "db-password",
            "password"
        ));
        assert!(!Grant::allows_key(
            grant.secrets.keys(),
            Some("team-a"),
            Some("kube-system"),
            "aws",
            "id"
        ));
        assert!(
            grant.config_maps.is_empty(),
            "a secret-key path grants no ConfigMap"
        );
    }

    #[test]
    fn a_cluster_store_reference_grants_its_own_namespace_only() {
        let config = json!({"ref": {"name": "aws", "key": "id", "namespace": "infra"}});
        let refs = declared(&[(ReferenceKind::SecretKey, "ref", &[])]);
        let grant = Grant::from_config(&refs, &config);
        assert!(Grant::allows_key(
            grant.secrets.keys(),
            Some("app"),
            Some("infra"),
            "aws",
            "id"
        ));
        assert!(!Grant::allows_key(
            grant.secrets.keys(),
            Some("app"),
            None,
            "aws",
            "id"
        ));
        assert!(!Grant::allows_key(
            grant.secrets.keys(),
            Some("app"),
            Some("other"),
            "aws",
            "id"
        ));
    }

    #[test]
    fn ca_providers_grant_by_their_type() {
        let config = json!({"ca": {"type": "ConfigMap", "name": "ca", "key": "ca.crt"}});
        let grant = Grant::from_config(
            &declared(&[(ReferenceKind::CaProvider, "ca", &[])]),
            &config,
        );
        assert!(Grant::allows_key(
            &grant.config_maps,
            None,
            None,
            "ca",
            "ca.crt"
        ));
        assert!(grant.secrets.is_empty());
    }

    #[test]
    fn service_account_audiences_are_the_declared_and_the_written_ones() {
        let config = json!({"sa": {"name": "irsa", "audiences": ["extra"]}});
        let grant = Grant::from_config(
            &declared(&[(ReferenceKind::ServiceAccount, "sa", &["sts.amazonaws.com"])]),
            &config,
        );
        let aud = grant
            .audiences_for(Some("ns"), None, "irsa")
            .unwrap()
            .as_ref()
            .unwrap();
        assert_eq!(
            aud.iter().map(String::as_str).collect::<Vec<_>>(),
            ["extra", "sts.amazonaws.com"]
        );
        assert!(
            grant
                .audiences_for(Some("ns"), None, "cluster-admin")
                .is_none()
        );
    }

    #[test]
    fn v0_1_grants_are_inferred_from_selector_shapes() {
        let config = json!({
            "auth": {
                "secretRef": {"accessKeyIDSecretRef": {"name": "aws", "key": "id"}},
                "jwt": {"serviceAccountRef": {"name": "irsa"}}
            },
            "region": "eu-west-1",
            "data": [{"key": "db", "value": "x"}]
        });
        let grant = Grant::from_config(&References::InferredFromConfig, &config);
        assert!(Grant::allows_key(
            grant.secrets.keys(),
            Some("ns"),
            None,
            "aws",
            "id"
        ));
        assert!(Grant::allows_key(
            &grant.config_maps,
            Some("ns"),
            None,
            "aws",
            "id"
        ));
        assert_eq!(grant.secrets.len(), 1, "{:?}", grant.secrets);
        assert_eq!(grant.audiences_for(Some("ns"), None, "irsa"), Some(&None));
        let empty = Grant::from_config(&References::InferredFromConfig, &json!({"data": []}));
        assert!(empty.is_empty());
    }

    #[test]
    fn ambient_identity_reads_only_the_allow_listed_environment() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "jwt-value\n").unwrap();
        let env: BTreeMap<&str, String> = [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/esox".to_string()),
            ("AWS_REGION", "eu-west-1".to_string()),
            ("HOME", "/root".to_string()),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1".to_string()),
        ]
        .into_iter()
        .collect();
        let a = AmbientIdentity::from_env(|k| env.get(k).cloned()).unwrap();
        let web = a.web_identity.as_ref().unwrap();
        assert_eq!(web.token, "jwt-value");
        assert_eq!(web.role_arn.as_deref(), Some("arn:aws:iam::1:role/esox"));
        assert_eq!(
            a.environment,
            vec![
                ("AWS_REGION".to_string(), "eu-west-1".to_string()),
                (
                    "AWS_ROLE_ARN".to_string(),
                    "arn:aws:iam::1:role/esox".to_string()
                ),
            ],
            "HOME and KUBERNETES_SERVICE_HOST are not passed"
        );
        assert!(
            !format!("{a:?}").contains("jwt-value"),
            "Debug never shows the token"
        );
    }
}
