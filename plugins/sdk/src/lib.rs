//! The esox plugin SDK: write a provider plugin by implementing [`Provider`] and
//! [`SecretClient`], then calling [`export_provider!`]. It builds plugins for contract 0.3
//! (`wit/v0.3`, [`CONTRACT_VERSION`]).
//!
//! A complete plugin: it declares where its store config references a Kubernetes Secret (the
//! host grants it exactly that Secret, nothing else), reads the token from it when a client
//! opens, derives the origins it needs from the config, and answers with typed errors.
//!
//! ```ignore
//! use esox_plugin_sdk::{
//!     Capabilities, Error, PluginInfo, Provider, Reference, RemoteRef, SecretClient, Settings,
//!     StoreContext, export_provider, host, http, serde_json,
//! };
//! use serde::Deserialize;
//!
//! /// `spec.provider.vaultish`.
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Config {
//!     /// `https://vault.example.com`
//!     server: String,
//!     auth: Auth,
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Auth {
//!     token_secret_ref: SecretKeyRef,
//! }
//!
//! #[derive(Deserialize)]
//! struct SecretKeyRef {
//!     name: String,
//!     key: String,
//!     namespace: Option<String>,
//! }
//!
//! fn parse(config: &serde_json::Value) -> Result<Config, Error> {
//!     let config: Config = esox_plugin_sdk::config::from_value(config)?;
//!     if !config.server.starts_with("https://") {
//!         return Err(Error::invalid_config("server", "must be an https:// URL"));
//!     }
//!     Ok(config)
//! }
//!
//! struct Vaultish;
//!
//! struct VaultishClient {
//!     server: String,
//!     token: String,
//! }
//!
//! impl Provider for Vaultish {
//!     type Client = VaultishClient;
//!
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("vaultish", env!("CARGO_PKG_VERSION"), "Reads from Vaultish")
//!             .capabilities(Capabilities::READ)
//!             .default_egress(["https://*.example.com"])
//!             .references([Reference::secret_key("auth.tokenSecretRef")])
//!     }
//!
//!     fn validate_config(config: &serde_json::Value) -> Result<(), Error> {
//!         parse(config).map(|_| ())
//!     }
//!
//!     fn egress(config: &serde_json::Value, _settings: &Settings) -> Result<Vec<String>, Error> {
//!         let server = parse(config)?.server;
//!         // The origin only: scheme and host[:port].
//!         let end = server["https://".len()..].find('/').map_or(server.len(), |i| i + 8);
//!         Ok(vec![server[..end].to_string()])
//!     }
//!
//!     fn open(
//!         config: serde_json::Value,
//!         _settings: Settings,
//!         _store: &StoreContext,
//!     ) -> Result<VaultishClient, Error> {
//!         let config = parse(&config)?;
//!         let r = &config.auth.token_secret_ref;
//!         // Checked by the host against the declared reference; a missing Secret or key comes
//!         // back as `invalid-config`.
//!         let token = host::secret_key(&r.name, &r.key, r.namespace.as_deref())?;
//!         let token = String::from_utf8(token).map_err(|_| {
//!             Error::invalid_config("auth.tokenSecretRef", "the token is not UTF-8 text")
//!         })?;
//!         Ok(VaultishClient { server: config.server, token: token.trim().to_string() })
//!     }
//! }
//!
//! impl SecretClient for VaultishClient {
//!     fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
//!         let url = format!("{}/v1/secrets/{}", self.server, remote.key);
//!         let value = esox_plugin_sdk::block_on(async {
//!             let request = http::Request::get(&url)
//!                 .header("Authorization", format!("Bearer {}", self.token))
//!                 .body(http::body::Body::empty())
//!                 .map_err(|_| Error::invalid_config("server", "not a valid URL"))?;
//!             let mut response = http::Client::new()
//!                 .send(request)
//!                 .await
//!                 .map_err(|e| Error::http("GET secret", &e))?;
//!             match response.status().as_u16() {
//!                 200 => {}
//!                 404 => return Err(Error::NotFound),
//!                 401 | 403 => return Err(Error::permission_denied("the token was refused")),
//!                 429 => return Err(Error::throttled(None, "Vaultish asked to slow down")),
//!                 s => return Err(Error::backend(format!("Vaultish answered HTTP {s}"))),
//!             }
//!             response
//!                 .body_mut()
//!                 .contents()
//!                 .await
//!                 .map(|b| b.to_vec())
//!                 .map_err(|e| Error::http("reading the answer", &e))
//!         })?;
//!         self.select_property(value, remote)
//!     }
//! }
//!
//! export_provider!(Vaultish);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the output `.wasm` is a component
//! that `esox plugin inspect` can read and `esox run --plugin-dir` can load.
//!
//! What the SDK gives for free: ESO's property semantics ([`json::property`]) applied to
//! whole values, so `get-secrets` fetches each key once however many properties are read;
//! `get-secret-map` from `get-secret`; `unsupported` answers for operations a plugin skips;
//! `egress` from `default-egress` unless the plugin derives it; config parsing whose errors
//! name fields and never quote values ([`config`]); typed host calls ([`host`]); HTTP over
//! wasi:http ([`http`], from `wstd`) with the host's egress denial mapped to
//! `egress-denied` ([`Error::http`]).

pub mod config;
pub mod json;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.3",
        world: "provider-plugin",
        pub_export_macro: true,
        default_bindings_module: "esox_plugin_sdk::bindings",
        generate_all,
    });
}

use std::collections::HashMap;
use std::time::Duration;

pub use bindings::esox::provider::types::{
    Capabilities, ClientCertificatePath, ConfigError, Error, FindQuery, MetadataPolicy, PluginInfo,
    PushRef, ReferenceKind, ReferencePath, RemoteRef, StoreContext, StoreKind, Throttled,
    Validation,
};
use bindings::exports::esox::provider::provider as exports;

pub use serde_json;
/// HTTP over wasi:http. Requests go through the host's egress allow-list; a denied request
/// fails and must not be retried (see [`Error::http`] and [`http_error_is_denial`]).
pub use wstd::http;
/// Run a future to completion inside a plugin call (exports are synchronous in WASI 0.2).
pub use wstd::runtime::block_on;

/// Keys mapped to raw values, as `get-secret-map` and `get-all-secrets` return them.
pub type SecretMap = Vec<(String, Vec<u8>)>;

/// A declared reference: where a store config holds a Kubernetes object reference
/// (`Reference::secret_key("auth.secretRef.accessKeyIDSecretRef")`).
pub type Reference = ReferencePath;

/// The contract version this SDK builds plugins for.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// What the host's denial of an outgoing request looks like in a wasi:http error
/// (`ErrorCode::HttpRequestDenied`), for plugins whose HTTP stack only gives error text.
pub const EGRESS_DENIAL_MARKER: &str = "HttpRequestDenied";

impl Error {
    /// The store configuration is wrong: which field (a path into the config such as
    /// `auth.secretRef.accessKeyIDSecretRef.key`, or empty) and what is expected. Never put a
    /// value in the message.
    pub fn invalid_config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidConfig(ConfigError {
            field: field.into(),
            message: message.into(),
        })
    }
    /// The backend could not be reached or timed out: retried with backoff.
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Error::Unavailable(msg.into())
    }
    /// The backend (or the host's broker) refused the credentials or the operation.
    pub fn permission_denied(msg: impl Into<String>) -> Self {
        Error::PermissionDenied(msg.into())
    }
    /// The plugin does not implement the operation or this configuration of it.
    pub fn unsupported(op: impl Into<String>) -> Self {
        Error::Unsupported(op.into())
    }
    /// The backend answered with an error that fits no other case, or the value is not what
    /// the request asked for.
    pub fn backend(msg: impl Into<String>) -> Self {
        Error::Backend(msg.into())
    }
    /// The backend asked to slow down, for `retry_after` if it said.
    pub fn throttled(retry_after: Option<Duration>, msg: impl Into<String>) -> Self {
        Error::Throttled(Throttled {
            retry_after_ms: retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            message: msg.into(),
        })
    }
    /// The host's egress policy refused a request: not retried until the operator changes it.
    pub fn egress_denied(msg: impl Into<String>) -> Self {
        Error::EgressDenied(msg.into())
    }
    /// An HTTP failure of `operation`: `egress-denied` when it is the host's egress denial,
    /// `unavailable` (retried) otherwise.
    pub fn http(operation: &str, err: &wstd::http::Error) -> Self {
        if http_error_is_denial(err) {
            Error::egress_denied(format!(
                "{operation}: the controller's egress policy refused the request"
            ))
        } else {
            Error::unavailable(format!("{operation}: {err}"))
        }
    }
    /// The field an `invalid-config` error names, if this is one.
    pub fn config_field(&self) -> Option<&str> {
        match self {
            Error::InvalidConfig(c) => Some(&c.field),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::InvalidConfig(e)
    }
}

impl ConfigError {
    /// A config error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
    /// The same error about a field nested under `parent` (`auth` + `secretRef.name`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = match (parent.is_empty(), self.field.is_empty()) {
            (true, _) => self.field,
            (false, true) => parent.to_string(),
            (false, false) if self.field.starts_with('[') => format!("{parent}{}", self.field),
            (false, false) => format!("{parent}.{}", self.field),
        };
        self
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl ReferencePath {
    fn at(kind: ReferenceKind, path: impl Into<String>) -> Self {
        ReferencePath {
            kind,
            path: path.into(),
            audiences: Vec::new(),
            required_labels: Vec::new(),
        }
    }
    /// A label a Secret found at this `secret-key` path must carry before the host reads it
    /// (ESO's webhook provider: `external-secrets.io/type: webhook`); a Secret without it is
    /// `permission-denied`, naming the label.
    pub fn requiring_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.required_labels.push((name.into(), value.into()));
        self
    }
    /// `{name, key, namespace?}` at `path`: one key of a Secret.
    pub fn secret_key(path: impl Into<String>) -> Self {
        Self::at(ReferenceKind::SecretKey, path)
    }
    /// `{name, key, namespace?}` at `path`: one key of a ConfigMap.
    pub fn config_map_key(path: impl Into<String>) -> Self {
        Self::at(ReferenceKind::ConfigMapKey, path)
    }
    /// `{type: Secret|ConfigMap, name, key, namespace?}` at `path`: ESO's `caProvider`.
    pub fn ca_provider(path: impl Into<String>) -> Self {
        Self::at(ReferenceKind::CaProvider, path)
    }
    /// `{name, namespace?, audiences?}` at `path`: a ServiceAccount to mint tokens for, with
    /// the audiences the plugin requests besides the reference's own.
    pub fn service_account<S: Into<String>>(
        path: impl Into<String>,
        audiences: impl IntoIterator<Item = S>,
    ) -> Self {
        ReferencePath {
            audiences: audiences.into_iter().map(Into::into).collect(),
            ..Self::at(ReferenceKind::ServiceAccount, path)
        }
    }
}

/// A declared client certificate: where a store config names the Secret keys of a client
/// certificate and its private key
/// (`ClientCertificate::new("auth.cert.clientCert", "auth.cert.clientKey")`). The host presents
/// the pair in the TLS handshakes of the store's requests; the plugin never reads the key.
pub type ClientCertificate = ClientCertificatePath;

impl ClientCertificatePath {
    /// The `{name, key?, namespace?}` selectors of the certificate and of its private key
    /// (`key` defaults to `tls.crt` and `tls.key`).
    pub fn new(certificate: impl Into<String>, private_key: impl Into<String>) -> Self {
        ClientCertificatePath {
            certificate: certificate.into(),
            private_key: private_key.into(),
        }
    }
}

impl PluginInfo {
    /// Info with no capabilities, an empty config schema, no default egress, no references,
    /// no client certificates and no ambient identity.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            capabilities: Capabilities::empty(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            default_egress: Vec::new(),
            references: Vec::new(),
            wants_ambient_identity: false,
            client_certificates: Vec::new(),
        }
    }
    /// What the plugin implements.
    pub fn capabilities(mut self, caps: Capabilities) -> Self {
        self.capabilities = caps;
        self
    }
    /// The JSON Schema of `spec.provider.<name>`.
    pub fn config_schema(mut self, schema: serde_json::Value) -> Self {
        self.config_schema = schema.to_string();
        self
    }
    /// Every origin the plugin may ever reach (`https://*.example.com`): the ceiling of what
    /// [`Provider::egress`] may answer. The operator decides.
    pub fn default_egress<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.default_egress = origins.into_iter().map(Into::into).collect();
        self
    }
    /// Where a store config holds references to Kubernetes objects; the host grants exactly
    /// the objects found there.
    pub fn references(mut self, references: impl IntoIterator<Item = ReferencePath>) -> Self {
        self.references = references.into_iter().collect();
        self
    }
    /// Where a store config names client certificates for mutual TLS, the most specific
    /// first: the host presents the first pair present in a config, in every TLS handshake of
    /// the store's requests, and never hands the private key to the plugin. A store that sets
    /// only one of a pair is refused by the host.
    pub fn client_certificates(
        mut self,
        pairs: impl IntoIterator<Item = ClientCertificatePath>,
    ) -> Self {
        self.client_certificates = pairs.into_iter().collect();
        self
    }
    /// Whether a store with no `auth` may use the controller's own identity
    /// ([`host::ambient_identity`]). The operator decides whether it is granted.
    pub fn ambient_identity(mut self, wanted: bool) -> Self {
        self.wants_ambient_identity = wanted;
        self
    }
}

impl StoreContext {
    /// A namespaced SecretStore.
    pub fn secret_store(namespace: &str, name: &str) -> Self {
        StoreContext {
            kind: StoreKind::SecretStore,
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
            referent_namespace: None,
        }
    }
    /// A ClusterSecretStore, opened for an ExternalSecret in `referent_namespace` or (None) on
    /// its own.
    pub fn cluster_secret_store(name: &str, referent_namespace: Option<&str>) -> Self {
        StoreContext {
            kind: StoreKind::ClusterSecretStore,
            namespace: None,
            name: name.to_string(),
            referent_namespace: referent_namespace.map(str::to_string),
        }
    }
    /// Whether this is a ClusterSecretStore.
    pub fn is_cluster_store(&self) -> bool {
        matches!(self.kind, StoreKind::ClusterSecretStore)
    }
    /// Whether references without a namespace cannot be resolved in this context: a
    /// ClusterSecretStore validated on its own (no ExternalSecret, so no referent namespace).
    /// `validate` should then answer `unknown` for such references.
    pub fn lacks_referent_namespace(&self) -> bool {
        self.is_cluster_store() && self.referent_namespace.is_none()
    }
}

impl RemoteRef {
    /// The same reference without its property: what a backend call actually fetches.
    pub fn without_property(&self) -> RemoteRef {
        RemoteRef {
            property: None,
            ..self.clone()
        }
    }
}

/// The operator's settings for this plugin (set on the controller, not in manifests).
#[derive(Debug, Clone, Default)]
pub struct Settings(Vec<(String, String)>);

impl Settings {
    /// Settings from pairs (for tests and hand-written hosts).
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Settings(pairs)
    }
    /// The value of a setting, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What one backend call fetches: key, version, and whether metadata rather than the value.
type FetchIdentity = (String, Option<String>, bool);

/// A provider: the plugin-wide entry points.
pub trait Provider: 'static {
    /// The client opened from one store's config.
    type Client: SecretClient;

    /// Name, version, capabilities, config schema, references. Must not fail or do I/O.
    fn info() -> PluginInfo;

    /// Check a store config without contacting the backend. The default accepts any object.
    fn validate_config(_config: &serde_json::Value) -> Result<(), Error> {
        Ok(())
    }

    /// The origins a store with this config needs, without I/O. The host grants those within
    /// `default-egress`. Default: `default-egress` itself.
    fn egress(_config: &serde_json::Value, _settings: &Settings) -> Result<Vec<String>, Error> {
        Ok(Self::info().default_egress)
    }

    /// Open a client for one store. `config` is `spec.provider.<name>`, already checked by
    /// [`Provider::validate_config`]; `store` says which store (and, for a ClusterSecretStore,
    /// which ExternalSecret namespace) this client serves.
    fn open(
        config: serde_json::Value,
        settings: Settings,
        store: &StoreContext,
    ) -> Result<Self::Client, Error>;
}

/// One store's connection to the backend. Implement `get_secret`; the rest has defaults.
pub trait SecretClient: 'static {
    /// Read one value, applying `remote.property` (ESO's `GetSecret`).
    fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error>;

    /// Check that the store can be used. Default: ready.
    fn validate(&self) -> Result<Validation, Error> {
        Ok(Validation::Ready)
    }

    /// Pick `property` out of a whole value. Default: ESO's gjson semantics, a missing property
    /// being an error that names the key (as ESO's AWS provider does).
    fn select_property(&self, value: Vec<u8>, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        select_property(value, remote)
    }

    /// Read many values. Default: fetch each distinct key/version/metadata once (property-less)
    /// and pick every requested property from it, so two properties of one key cost one call.
    fn get_secrets(&self, remotes: &[RemoteRef]) -> Vec<Result<Vec<u8>, Error>> {
        let mut fetched: HashMap<FetchIdentity, Result<Vec<u8>, Error>> = HashMap::new();
        remotes
            .iter()
            .map(|remote| {
                let identity = (
                    remote.key.clone(),
                    remote.version.clone(),
                    matches!(remote.metadata_policy, MetadataPolicy::Fetch),
                );
                let whole = fetched
                    .entry(identity)
                    .or_insert_with(|| self.get_secret(&remote.without_property()))
                    .clone();
                match (&remote.property, whole) {
                    (None, whole) => whole,
                    (Some(_), Ok(value)) => self.select_property(value, remote),
                    (Some(_), Err(e)) => Err(e),
                }
            })
            .collect()
    }

    /// Read a value holding a JSON object as a map (ESO's `GetSecretMap`).
    fn get_secret_map(&self, remote: &RemoteRef) -> Result<SecretMap, Error> {
        json::object_entries(&self.get_secret(remote)?)
            .map_err(|e| Error::backend(format!("{e} (key {})", remote.key)))
    }

    /// Find many secrets (ESO's `GetAllSecrets`). Default: unsupported.
    fn get_all_secrets(&self, _query: &FindQuery) -> Result<SecretMap, Error> {
        Err(Error::unsupported("get-all-secrets (dataFrom.find)"))
    }

    /// Write a value (ESO's `PushSecret`). Default: unsupported.
    fn push_secret(&self, _remote: &PushRef, _value: Vec<u8>) -> Result<(), Error> {
        Err(Error::unsupported("push-secret"))
    }

    /// Delete a pushed value. Default: unsupported.
    fn delete_secret(&self, _remote: &PushRef) -> Result<(), Error> {
        Err(Error::unsupported("delete-secret"))
    }

    /// Whether a value exists. Default: unsupported.
    fn secret_exists(&self, _remote: &PushRef) -> Result<bool, Error> {
        Err(Error::unsupported("secret-exists"))
    }
}

/// ESO's property selection with its error for a missing property:
/// `key <property> does not exist in secret <key>` (a `backend` error). The value itself is
/// never part of the error.
pub fn select_property(value: Vec<u8>, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
    let Some(prop) = &remote.property else {
        return Ok(value);
    };
    json::property(&value, prop).map_err(|e| match e {
        json::PropertyError::Missing | json::PropertyError::NotJson => Error::Backend(format!(
            "key {prop} does not exist in secret {}",
            remote.key
        )),
    })
}

/// Whether an HTTP error means the host's egress policy refused the request. Such requests
/// must not be retried: the answer will not change until the operator changes the policy.
pub fn http_error_is_denial(err: &wstd::http::Error) -> bool {
    format!("{err:?}").contains(EGRESS_DENIAL_MARKER)
}

/// Typed calls to the host (the auth broker). The host checks every call against the
/// references the plugin declared and the store's namespace rules.
pub mod host {
    use super::bindings::esox::provider::host as raw;
    pub use raw::{ContainerCredentials, ControllerIdentity, LogLevel, SaToken, WebIdentity};

    use super::Error;

    /// What [`ambient_identity`] returns: the controller's own identity (the WIT record
    /// `controller-identity`).
    pub type AmbientIdentity = ControllerIdentity;

    /// Read one key of a Kubernetes Secret that the store's config references.
    pub fn secret_key(name: &str, key: &str, namespace: Option<&str>) -> Result<Vec<u8>, Error> {
        raw::secret_key(name, key, namespace)
    }

    /// Read one key of a ConfigMap that the store's config references.
    pub fn config_map_key(name: &str, key: &str, namespace: Option<&str>) -> Result<String, Error> {
        raw::config_map_key(name, key, namespace)
    }

    /// Mint a token through TokenRequest for a ServiceAccount the store's config references;
    /// also returns the ServiceAccount's annotations.
    pub fn service_account_token(
        name: &str,
        namespace: Option<&str>,
        audiences: &[String],
        expiration_seconds: Option<u32>,
    ) -> Result<SaToken, Error> {
        raw::service_account_token(name, namespace, audiences, expiration_seconds)
    }

    /// The controller's own identity, for stores with no `auth`. `permission-denied` unless the
    /// plugin declared `wants-ambient-identity` and the operator granted it.
    pub fn ambient_identity() -> Result<AmbientIdentity, Error> {
        raw::ambient_identity()
    }

    impl AmbientIdentity {
        /// A variable of the controller's environment, if allow-listed, set and not empty.
        pub fn env(&self, key: &str) -> Option<&str> {
            self.environment
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        }
    }

    /// Log through the controller. Never pass secret values.
    pub fn log(level: LogLevel, message: &str) {
        raw::log(level, message)
    }
}

/// Log at info level through the host: `esox_plugin_sdk::info!("opened client for {}", region)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::host::log($crate::host::LogLevel::Info, &format!($($arg)*)) };
}

/// Log at debug level through the host.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::host::log($crate::host::LogLevel::Debug, &format!($($arg)*)) };
}

/// Log at warn level through the host.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::host::log($crate::host::LogLevel::Warn, &format!($($arg)*)) };
}

/// Export a [`Provider`] as this component's `esox:provider/provider@0.3.0` implementation.
#[macro_export]
macro_rules! export_provider {
    ($provider:ty) => {
        type __EsoxExportedProvider = $crate::Adapter<$provider>;
        $crate::bindings::export!(__EsoxExportedProvider with_types_in $crate::bindings);
    };
}

/// Bridges a [`Provider`] to the generated bindings. Used by [`export_provider!`].
#[doc(hidden)]
pub struct Adapter<P>(std::marker::PhantomData<P>);

/// Bridges a [`SecretClient`] to the generated resource. Used by [`export_provider!`].
#[doc(hidden)]
pub struct ClientAdapter<P: Provider>(P::Client);

impl<P: Provider> exports::Guest for Adapter<P> {
    type Client = ClientAdapter<P>;

    fn info() -> PluginInfo {
        P::info()
    }

    fn validate_config(config: String) -> Result<(), Error> {
        P::validate_config(&config::parse_json(&config)?)
    }

    fn egress(config: String, settings: Vec<(String, String)>) -> Result<Vec<String>, Error> {
        P::egress(&config::parse_json(&config)?, &Settings(settings))
    }
}

impl<P: Provider> exports::GuestClient for ClientAdapter<P> {
    fn open(
        config: String,
        settings: Vec<(String, String)>,
        store: StoreContext,
    ) -> Result<exports::Client, Error> {
        let config = config::parse_json(&config)?;
        P::validate_config(&config)?;
        let client = P::open(config, Settings(settings), &store)?;
        Ok(exports::Client::new(ClientAdapter::<P>(client)))
    }

    fn validate(&self) -> Result<Validation, Error> {
        self.0.validate()
    }

    fn get_secret(&self, remote: RemoteRef) -> Result<Vec<u8>, Error> {
        self.0.get_secret(&remote)
    }

    fn get_secrets(&self, remotes: Vec<RemoteRef>) -> Vec<Result<Vec<u8>, Error>> {
        self.0.get_secrets(&remotes)
    }

    fn get_secret_map(&self, remote: RemoteRef) -> Result<SecretMap, Error> {
        self.0.get_secret_map(&remote)
    }

    fn get_all_secrets(&self, query: FindQuery) -> Result<SecretMap, Error> {
        self.0.get_all_secrets(&query)
    }

    fn push_secret(&self, remote: PushRef, value: Vec<u8>) -> Result<(), Error> {
        self.0.push_secret(&remote, value)
    }

    fn delete_secret(&self, remote: PushRef) -> Result<(), Error> {
        self.0.delete_secret(&remote)
    }

    fn secret_exists(&self, remote: PushRef) -> Result<bool, Error> {
        self.0.secret_exists(&remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-VALUE-xyzzy";

    struct Holds(Vec<u8>);

    impl SecretClient for Holds {
        fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
            select_property(self.0.clone(), remote)
        }
    }

    fn remote(key: &str, property: Option<&str>) -> RemoteRef {
        RemoteRef {
            key: key.into(),
            property: property.map(str::to_string),
            version: None,
            metadata_policy: MetadataPolicy::None,
        }
    }

    #[test]
    fn secret_map_and_property_errors_never_contain_the_value() {
        for value in [
            format!("\"{SECRET}\""),
            SECRET.to_string(),
            format!("[\"{SECRET}\"]"),
            format!("{{\"a\": \"{SECRET}\""),
        ] {
            let client = Holds(value.clone().into_bytes());
            let err = client.get_secret_map(&remote("db", None)).unwrap_err();
            assert!(matches!(err, Error::Backend(_)), "{err:?}");
            assert!(!format!("{err:?}").contains(SECRET), "{value}: {err:?}");
            let err = client.get_secret(&remote("db", Some("user"))).unwrap_err();
            assert!(!format!("{err:?}").contains(SECRET), "{value}: {err:?}");
            let err = client.get_secrets(&[remote("db", Some("x.y"))]).remove(0);
            assert!(!format!("{err:?}").contains(SECRET), "{value}: {err:?}");
        }
    }

    #[test]
    fn a_missing_property_names_the_key_and_property() {
        let client = Holds(format!("{{\"user\": \"{SECRET}\"}}").into_bytes());
        let err = client.get_secret(&remote("db", Some("pass"))).unwrap_err();
        assert!(matches!(&err, Error::Backend(m) if m == "key pass does not exist in secret db"));
        assert_eq!(
            client.get_secret(&remote("db", Some("user"))).unwrap(),
            SECRET.as_bytes()
        );
    }

    #[test]
    fn error_helpers_build_the_typed_cases() {
        assert!(matches!(
            Error::invalid_config("auth.secretRef", "needs a key"),
            Error::InvalidConfig(ConfigError { field, message }) if field == "auth.secretRef" && message == "needs a key"
        ));
        assert!(matches!(
            Error::throttled(Some(Duration::from_secs(2)), "slow down"),
            Error::Throttled(Throttled {
                retry_after_ms: Some(2000),
                ..
            })
        ));
        assert!(matches!(Error::egress_denied("no"), Error::EgressDenied(_)));
        assert!(matches!(Error::backend("x"), Error::Backend(_)));
        assert_eq!(
            ConfigError::new("name", "empty")
                .under("auth.secretRef")
                .field,
            "auth.secretRef.name"
        );
        assert_eq!(ConfigError::new("[0]", "x").under("data").field, "data[0]");
        assert_eq!(ConfigError::new("", "x").under("data").field, "data");
    }

    #[test]
    fn info_declares_references_and_ambient_identity() {
        let info = PluginInfo::new("x", "1.0.0", "d")
            .references([
                Reference::secret_key("auth.secretRef.accessKeyIDSecretRef"),
                Reference::config_map_key("ca"),
                Reference::ca_provider("caProvider"),
                Reference::service_account("auth.jwt.serviceAccountRef", ["sts.amazonaws.com"]),
            ])
            .ambient_identity(true);
        assert!(info.wants_ambient_identity);
        assert_eq!(info.references.len(), 4);
        assert!(matches!(info.references[0].kind, ReferenceKind::SecretKey));
        assert_eq!(info.references[3].audiences, ["sts.amazonaws.com"]);
        assert!(matches!(
            info.references[3].kind,
            ReferenceKind::ServiceAccount
        ));
    }

    #[test]
    fn store_contexts_tell_when_referent_references_cannot_resolve() {
        assert!(!StoreContext::secret_store("ns", "s").lacks_referent_namespace());
        assert!(StoreContext::cluster_secret_store("c", None).lacks_referent_namespace());
        assert!(!StoreContext::cluster_secret_store("c", Some("team")).lacks_referent_namespace());
    }
}
