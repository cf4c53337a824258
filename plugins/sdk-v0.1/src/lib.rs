//! The frozen esox plugin SDK for contract 0.1 (`wit/v0.1`), kept unchanged so that plugins
//! built against the released 0.1 contract stay tested (see `fixtures/fake-v0.1`). New plugins
//! use `esox-plugin-sdk`, which builds for the current contract.
//!
//! Write a provider plugin by implementing [`Provider`] and [`SecretClient`], then calling
//! [`export_provider!`].
//!
//! ```ignore
//! use esox_plugin_sdk_v0_1::*;
//!
//! struct Vaultish;
//! struct VaultishClient { base: String }
//!
//! impl Provider for Vaultish {
//!     type Client = VaultishClient;
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("vaultish", env!("CARGO_PKG_VERSION"), "Reads from Vaultish")
//!             .capabilities(Capabilities::READ)
//!             .default_egress(["https://vaultish.example.com"])
//!     }
//!     fn open(config: serde_json::Value, _settings: Settings) -> Result<VaultishClient, Error> {
//!         let base = config["url"].as_str().ok_or_else(|| Error::invalid_config("url is required"))?;
//!         Ok(VaultishClient { base: base.to_string() })
//!     }
//! }
//!
//! impl SecretClient for VaultishClient {
//!     fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
//!         // fetch with `esox_plugin_sdk_v0_1::http` (wasi:http through the host's egress policy)
//!         # Err(Error::unsupported("example"))
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
//! typed host calls ([`host`]); HTTP over wasi:http ([`http`], from `wstd`).

pub mod json;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1",
        world: "provider-plugin",
        pub_export_macro: true,
        default_bindings_module: "esox_plugin_sdk_v0_1::bindings",
        generate_all,
    });
}

use std::collections::HashMap;

pub use bindings::esox::provider::types::{
    Capabilities, Error, FindQuery, MetadataPolicy, PluginInfo, PushRef, RemoteRef, Validation,
};
use bindings::exports::esox::provider::provider as exports;

pub use serde_json;
/// HTTP over wasi:http. Requests go through the host's egress allow-list; a denied request
/// fails and must not be retried (see [`http_error_is_denial`]).
pub use wstd::http;
/// Run a future to completion inside a plugin call (exports are synchronous in WASI 0.2).
pub use wstd::runtime::block_on;

/// Keys mapped to raw values, as `get-secret-map` and `get-all-secrets` return them.
pub type SecretMap = Vec<(String, Vec<u8>)>;

/// The contract version this SDK builds plugins for.
pub const CONTRACT_VERSION: &str = "0.1.0";

impl Error {
    /// The store configuration is wrong: say which field and what is expected.
    pub fn invalid_config(msg: impl Into<String>) -> Self {
        Error::InvalidConfig(msg.into())
    }
    /// Anything that is not one of the specific cases.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
    /// The backend could not be reached or asked us to slow down: retried with backoff.
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Error::Unavailable(msg.into())
    }
    /// The backend refused the credentials or the operation.
    pub fn permission_denied(msg: impl Into<String>) -> Self {
        Error::PermissionDenied(msg.into())
    }
    /// The plugin does not implement the operation.
    pub fn unsupported(op: impl Into<String>) -> Self {
        Error::Unsupported(op.into())
    }
}

impl PluginInfo {
    /// Info with no capabilities, an empty config schema and no default egress.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            capabilities: Capabilities::empty(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            default_egress: Vec::new(),
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
    /// Origins the plugin asks to reach (`https://*.example.com`); the operator decides.
    pub fn default_egress<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.default_egress = origins.into_iter().map(Into::into).collect();
        self
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

    /// Name, version, capabilities, config schema. Must not fail or do I/O.
    fn info() -> PluginInfo;

    /// Check a store config without contacting the backend. The default accepts any object.
    fn validate_config(_config: &serde_json::Value) -> Result<(), Error> {
        Ok(())
    }

    /// Open a client for one store. `config` is `spec.provider.<name>`.
    fn open(config: serde_json::Value, settings: Settings) -> Result<Self::Client, Error>;
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
        json::object_entries(&self.get_secret(remote)?).map_err(Error::Internal)
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
/// `key <property> does not exist in secret <key>`.
pub fn select_property(value: Vec<u8>, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
    let Some(prop) = &remote.property else {
        return Ok(value);
    };
    json::property(&value, prop).map_err(|e| match e {
        json::PropertyError::Missing | json::PropertyError::NotJson => Error::Internal(format!(
            "key {prop} does not exist in secret {}",
            remote.key
        )),
    })
}

/// Whether an HTTP error means the host's egress policy refused the request. Such requests
/// must not be retried: the answer will not change until the operator changes the policy.
pub fn http_error_is_denial(err: &wstd::http::Error) -> bool {
    format!("{err:?}").contains("HttpRequestDenied")
}

/// Typed calls to the host (the auth broker). Every call is checked against the store's
/// namespace rules by the host.
pub mod host {
    use super::bindings::esox::provider::host as raw;
    pub use raw::{LogLevel, SaToken};

    use super::Error;

    /// Read one key of a Kubernetes Secret.
    pub fn secret_key(name: &str, key: &str, namespace: Option<&str>) -> Result<Vec<u8>, Error> {
        raw::secret_key(name, key, namespace)
    }

    /// Read one key of a ConfigMap.
    pub fn config_map_key(name: &str, key: &str, namespace: Option<&str>) -> Result<String, Error> {
        raw::config_map_key(name, key, namespace)
    }

    /// Mint a ServiceAccount token through TokenRequest; also returns the ServiceAccount's
    /// annotations.
    pub fn service_account_token(
        name: &str,
        namespace: Option<&str>,
        audiences: &[String],
        expiration_seconds: Option<u32>,
    ) -> Result<SaToken, Error> {
        raw::service_account_token(name, namespace, audiences, expiration_seconds)
    }

    /// Log through the controller. Never pass secret values.
    pub fn log(level: LogLevel, message: &str) {
        raw::log(level, message)
    }
}

/// Log at info level through the host: `esox_plugin_sdk_v0_1::info!("opened client for {}", region)`.
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

/// Export a [`Provider`] as this component's `esox:provider/provider` implementation.
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

fn parse_config(config: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(config)
        .map_err(|e| Error::invalid_config(format!("store config is not valid JSON: {e}")))
}

impl<P: Provider> exports::Guest for Adapter<P> {
    type Client = ClientAdapter<P>;

    fn info() -> PluginInfo {
        P::info()
    }

    fn validate_config(config: String) -> Result<(), Error> {
        P::validate_config(&parse_config(&config)?)
    }
}

impl<P: Provider> exports::GuestClient for ClientAdapter<P> {
    fn open(config: String, settings: Vec<(String, String)>) -> Result<exports::Client, Error> {
        let config = parse_config(&config)?;
        P::validate_config(&config)?;
        let client = P::open(config, Settings(settings))?;
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
