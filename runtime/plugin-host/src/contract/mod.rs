//! The provider contract versions this host speaks, and how a plugin's version is read.
//!
//! Each released WIT version has its own folder (`wit/v0.1/`) and its own module here with its
//! own `bindgen!`. A plugin declares its version by the name of the interface it exports
//! (`esox:provider/provider@0.1.0`); [`declared_version`] reads that name from the binary with
//! a parser, *before* anything is compiled or instantiated, so an unsupported plugin is refused
//! with a message instead of failing at link time.
//!
//! The shape mature plugin hosts use: each version has its own module ([`v0_1`], [`v0_2`],
//! [`v0_3`]; the typed ones share their conversions through [`typed`]) with
//! its own `bindgen!` and the conversions of its types **into the newest** (the host-neutral
//! types of `esox-provider` and this module); [`Pre`] and [`Bindings`] below are the one place
//! that matches on the version. Everything else in the host speaks only the newest vocabulary.

use semver::Version;

mod typed;
pub mod v0_1;
pub mod v0_2;
pub mod v0_3;

use esox_provider::{FindQuery, ProviderError, PushRef, RemoteRef};
use wasmtime::Store;
use wasmtime::component::{InstancePre, ResourceAny};

use crate::instance::InstanceState;

/// Longest error message a plugin can make the host carry: the rest is cut where it crosses
/// the boundary, so a long message costs 4 KiB however often it is reported. (A message past
/// the copy budget, [`crate::Limits::copy_budget`], is refused before it is copied at all.)
pub const MAX_ERROR_BYTES: usize = 4096;

/// A contract version the host supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contract {
    /// `esox:provider@0.1.x`: no declared references (the grant is inferred from the config),
    /// untyped errors, no store context, no ambient identity.
    V0_1,
    /// `esox:provider@0.2.x`: typed errors, declared references, store context, derived
    /// egress, ambient identity.
    V0_2,
    /// `esox:provider@0.3.x`: the newest; 0.2 plus client certificates the host presents.
    V0_3,
}

/// The range of contract versions this host accepts, for messages.
pub const SUPPORTED: &str = "0.1.x, 0.2.x and 0.3.x";

const EXPORT_PREFIX: &str = "esox:provider/provider@";

/// Why a binary is not a plugin this host can run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    #[error("not a WebAssembly component (plugins are components built for wasm32-wasip2): {0}")]
    NotAComponent(String),
    #[error("not an esox provider plugin: it exports no `esox:provider/provider` interface")]
    NoProviderExport,
    #[error(
        "plugin is built against contract esox:provider@{found}; this esox supports {SUPPORTED}. Rebuild the plugin with a matching esox-plugin-sdk, or upgrade esox"
    )]
    Unsupported { found: String },
}

/// Read the contract version a component declares, without compiling it.
pub fn declared_version(bytes: &[u8]) -> Result<(Contract, Version), ContractError> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    let mut found: Option<String> = None;
    let mut is_component = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ContractError::NotAComponent(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 {
                    is_component = matches!(encoding, wasmparser::Encoding::Component);
                    if !is_component {
                        return Err(ContractError::NotAComponent("this is a core module".into()));
                    }
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            // Top-level exports only (depth 1 = the outer component).
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| ContractError::NotAComponent(e.to_string()))?;
                    if let Some(v) = export.name.name.strip_prefix(EXPORT_PREFIX) {
                        found = Some(v.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    if !is_component {
        return Err(ContractError::NotAComponent("empty input".into()));
    }
    let found = found.ok_or(ContractError::NoProviderExport)?;
    let version = Version::parse(&found).map_err(|_| ContractError::Unsupported {
        found: found.clone(),
    })?;
    match (version.major, version.minor) {
        (0, 1) => Ok((Contract::V0_1, version)),
        (0, 2) => Ok((Contract::V0_2, version)),
        (0, 3) => Ok((Contract::V0_3, version)),
        _ => Err(ContractError::Unsupported { found }),
    }
}

/// The kind of Kubernetes object a store config refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReferenceKind {
    /// `{name, key, namespace?}`: one key of a Secret.
    SecretKey,
    /// `{name, key, namespace?}`: one key of a ConfigMap.
    ConfigMapKey,
    /// `{type: Secret|ConfigMap, name, key, namespace?}`: ESO's `caProvider`.
    CaProvider,
    /// `{name, namespace?, audiences?}`: a ServiceAccount to mint tokens for.
    ServiceAccount,
}

impl ReferenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceKind::SecretKey => "secret-key",
            ReferenceKind::ConfigMapKey => "config-map-key",
            ReferenceKind::CaProvider => "ca-provider",
            ReferenceKind::ServiceAccount => "service-account",
        }
    }
}

/// Where a store config holds a reference to a Kubernetes object (declared by the plugin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferencePath {
    pub kind: ReferenceKind,
    /// Keys separated by dots, `[*]` for every element of an array.
    pub path: String,
    /// Audiences the plugin requests for a service account besides the reference's own.
    pub audiences: Vec<String>,
    /// Labels a Secret found at a `secret-key` path must carry before it is read (0.3+).
    pub required_labels: Vec<(String, String)>,
}

/// Where a store config names a client certificate and its private key (declared by the
/// plugin, contract 0.3+): the host reads both and presents them in TLS; the plugin never
/// sees the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificatePath {
    /// Path to the `{name, key?, namespace?}` selector of the PEM certificate chain.
    pub certificate: String,
    /// Path to the selector of the PEM private key.
    pub private_key: String,
}

/// How a plugin's grant of Kubernetes objects is found in a store's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum References {
    /// Contract 0.2+: exactly the objects at these paths.
    Declared(Vec<ReferencePath>),
    /// Contract 0.1 (which cannot declare): the objects the config names in ESO's selector
    /// shapes — every `{name, key}` object (as a Secret or ConfigMap key) and every
    /// `serviceAccountRef` — still only what this store's config names.
    InferredFromConfig,
}

/// What a plugin says about itself, in the newest contract's terms.
#[derive(Clone, Debug)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub capabilities: Vec<&'static str>,
    pub config_schema: String,
    pub default_egress: Vec<String>,
    pub references: References,
    pub wants_ambient_identity: bool,
    /// Client certificates the host presents for the plugin (0.3+), first match wins.
    pub client_certificates: Vec<ClientCertificatePath>,
}

/// Which kind of store a client serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    SecretStore,
    ClusterSecretStore,
}

/// The store a client is opened for (handed to `open` from contract 0.2 on).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreContext {
    pub kind: StoreKind,
    /// The store's namespace (SecretStore only).
    pub namespace: Option<String>,
    pub name: String,
    /// For a ClusterSecretStore with referent references: the ExternalSecret's namespace.
    pub referent_namespace: Option<String>,
}

impl StoreContext {
    /// A SecretStore.
    pub fn secret_store(namespace: &str, name: &str) -> Self {
        StoreContext {
            kind: StoreKind::SecretStore,
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
            referent_namespace: None,
        }
    }

    /// A ClusterSecretStore, resolved in `referent_namespace` if given.
    pub fn cluster_secret_store(name: &str, referent_namespace: Option<&str>) -> Self {
        StoreContext {
            kind: StoreKind::ClusterSecretStore,
            namespace: None,
            name: name.to_string(),
            referent_namespace: referent_namespace.map(str::to_string),
        }
    }

    /// Where a reference without a namespace resolves: the store's own namespace, or the
    /// referent namespace of a ClusterSecretStore (none when the store is checked on its own).
    pub fn home_namespace(&self) -> Option<&str> {
        match self.kind {
            StoreKind::SecretStore => self.namespace.as_deref(),
            StoreKind::ClusterSecretStore => self.referent_namespace.as_deref(),
        }
    }

    /// The namespace whose quota this store's instances count against (`""`: cluster-wide).
    pub fn quota_namespace(&self) -> &str {
        self.home_namespace().unwrap_or("")
    }
}

impl std::fmt::Display for StoreContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.kind, &self.namespace, &self.referent_namespace) {
            (StoreKind::SecretStore, Some(ns), _) => write!(f, "SecretStore/{ns}/{}", self.name),
            (StoreKind::SecretStore, None, _) => write!(f, "SecretStore/{}", self.name),
            (StoreKind::ClusterSecretStore, _, Some(r)) => {
                write!(f, "ClusterSecretStore/{}@{r}", self.name)
            }
            (StoreKind::ClusterSecretStore, _, None) => {
                write!(f, "ClusterSecretStore/{}", self.name)
            }
        }
    }
}

/// The calls a store client makes, in every contract version.
pub(crate) enum Call<'a> {
    Validate,
    GetSecret(&'a RemoteRef),
    GetSecrets(&'a [RemoteRef]),
    GetSecretMap(&'a RemoteRef),
    GetAllSecrets(&'a FindQuery),
    PushSecret(&'a PushRef, &'a [u8]),
    DeleteSecret(&'a PushRef),
    SecretExists(&'a PushRef),
}

impl Call<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Call::Validate => "validate",
            Call::GetSecret(_) => "get-secret",
            Call::GetSecrets(_) => "get-secrets",
            Call::GetSecretMap(_) => "get-secret-map",
            Call::GetAllSecrets(_) => "get-all-secrets",
            Call::PushSecret(..) => "push-secret",
            Call::DeleteSecret(_) => "delete-secret",
            Call::SecretExists(_) => "secret-exists",
        }
    }
}

/// Whether a store is usable, as the plugin reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    Ready,
    Unknown,
}

/// A plugin's answer, in the newest vocabulary. Maps stay lists here: the host checks their
/// size and refuses repeated keys before building a map (`store::into_map`).
pub(crate) enum Reply {
    Validation(Result<Validation, ProviderError>),
    Value(Result<Vec<u8>, ProviderError>),
    Values(Vec<Result<Vec<u8>, ProviderError>>),
    Map(Result<Vec<(String, Vec<u8>)>, ProviderError>),
    Done(Result<(), ProviderError>),
    Exists(Result<bool, ProviderError>),
}

impl Reply {
    /// Bytes of values and keys in the reply, counted before anything is merged.
    pub fn bytes(&self) -> usize {
        match self {
            Reply::Validation(_) | Reply::Done(_) | Reply::Exists(_) => 0,
            Reply::Value(v) => v.as_ref().map_or(0, Vec::len),
            Reply::Values(vs) => vs.iter().map(|v| v.as_ref().map_or(0, Vec::len)).sum(),
            Reply::Map(m) => m
                .as_ref()
                .map_or(0, |m| m.iter().map(|(k, v)| k.len() + v.len()).sum()),
        }
    }
}

/// A component ready to instantiate, for its contract version.
pub(crate) enum Pre {
    V0_1(v0_1::ProviderPluginPre<InstanceState>),
    V0_2(v0_2::ProviderPluginPre<InstanceState>),
    V0_3(v0_3::ProviderPluginPre<InstanceState>),
}

/// A live instance's exports, for its contract version.
pub(crate) enum Bindings {
    V0_1(v0_1::ProviderPlugin),
    V0_2(v0_2::ProviderPlugin),
    V0_3(v0_3::ProviderPlugin),
}

impl Pre {
    pub fn new(contract: Contract, pre: InstancePre<InstanceState>) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::V0_1 => Pre::V0_1(v0_1::ProviderPluginPre::new(pre)?),
            Contract::V0_2 => Pre::V0_2(v0_2::ProviderPluginPre::new(pre)?),
            Contract::V0_3 => Pre::V0_3(v0_3::ProviderPluginPre::new(pre)?),
        })
    }

    pub async fn instantiate(
        &self,
        store: &mut Store<InstanceState>,
    ) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V0_1(p) => Bindings::V0_1(p.instantiate_async(store).await?),
            Pre::V0_2(p) => Bindings::V0_2(p.instantiate_async(store).await?),
            Pre::V0_3(p) => Bindings::V0_3(p.instantiate_async(store).await?),
        })
    }
}

impl Bindings {
    pub async fn info(&self, store: &mut Store<InstanceState>) -> wasmtime::Result<PluginInfo> {
        match self {
            Bindings::V0_1(b) => v0_1::info(b, store).await,
            Bindings::V0_2(b) => v0_2::info(b, store).await,
            Bindings::V0_3(b) => v0_3::info(b, store).await,
        }
    }

    pub async fn validate_config(
        &self,
        store: &mut Store<InstanceState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), ProviderError>> {
        Ok(match self {
            Bindings::V0_1(b) => b
                .esox_provider_provider()
                .call_validate_config(store, config)
                .await?
                .map_err(v0_1::from_wit),
            Bindings::V0_2(b) => b
                .esox_provider_provider()
                .call_validate_config(store, config)
                .await?
                .map_err(v0_2::from_wit),
            Bindings::V0_3(b) => b
                .esox_provider_provider()
                .call_validate_config(store, config)
                .await?
                .map_err(v0_3::from_wit),
        })
    }

    /// The origins a store with this config needs, when the contract can say (0.2+).
    pub async fn egress(
        &self,
        store: &mut Store<InstanceState>,
        config: &str,
        settings: &[(String, String)],
    ) -> wasmtime::Result<Option<Result<Vec<String>, ProviderError>>> {
        Ok(match self {
            Bindings::V0_1(_) => None,
            Bindings::V0_2(b) => Some(
                b.esox_provider_provider()
                    .call_egress(store, config, settings)
                    .await?
                    .map_err(v0_2::from_wit),
            ),
            Bindings::V0_3(b) => Some(
                b.esox_provider_provider()
                    .call_egress(store, config, settings)
                    .await?
                    .map_err(v0_3::from_wit),
            ),
        })
    }

    pub async fn open(
        &self,
        store: &mut Store<InstanceState>,
        config: &str,
        settings: &[(String, String)],
        context: &StoreContext,
    ) -> wasmtime::Result<Result<ResourceAny, ProviderError>> {
        Ok(match self {
            Bindings::V0_1(b) => b
                .esox_provider_provider()
                .client()
                .call_open(store, config, settings)
                .await?
                .map_err(v0_1::from_wit),
            Bindings::V0_2(b) => b
                .esox_provider_provider()
                .client()
                .call_open(store, config, settings, &v0_2::to_wit_context(context))
                .await?
                .map_err(v0_2::from_wit),
            Bindings::V0_3(b) => b
                .esox_provider_provider()
                .client()
                .call_open(store, config, settings, &v0_3::to_wit_context(context))
                .await?
                .map_err(v0_3::from_wit),
        })
    }

    pub async fn invoke(
        &self,
        store: &mut Store<InstanceState>,
        this: ResourceAny,
        call: &Call<'_>,
    ) -> wasmtime::Result<Reply> {
        match self {
            Bindings::V0_1(b) => v0_1::invoke(b, store, this, call).await,
            Bindings::V0_2(b) => v0_2::invoke(b, store, this, call).await,
            Bindings::V0_3(b) => v0_3::invoke(b, store, this, call).await,
        }
    }
}

/// The calls that read, the same in every version but for the module their types come from.
macro_rules! invoke_reads {
    ($v:ident, $bindings:expr, $store:expr, $this:expr, $call:expr) => {{
        use $crate::contract::{Call, Reply, Validation};
        let client = $bindings.esox_provider_provider().client();
        let (store, this) = ($store, $this);
        Ok(match $call {
            Call::Validate => Reply::Validation(
                client
                    .call_validate(store, this)
                    .await?
                    .map(|v| match v {
                        $v::esox::provider::types::Validation::Ready => Validation::Ready,
                        $v::esox::provider::types::Validation::Unknown => Validation::Unknown,
                    })
                    .map_err($v::from_wit),
            ),
            Call::GetSecret(r) => Reply::Value(
                client
                    .call_get_secret(store, this, &$v::to_wit_ref(r))
                    .await?
                    .map_err($v::from_wit),
            ),
            Call::GetSecrets(rs) => {
                let refs: Vec<_> = rs.iter().map($v::to_wit_ref).collect();
                Reply::Values(
                    client
                        .call_get_secrets(store, this, &refs)
                        .await?
                        .into_iter()
                        .map(|r| r.map_err($v::from_wit))
                        .collect(),
                )
            }
            Call::GetSecretMap(r) => Reply::Map(
                client
                    .call_get_secret_map(store, this, &$v::to_wit_ref(r))
                    .await?
                    .map_err($v::from_wit),
            ),
            Call::GetAllSecrets(q) => {
                let query = $v::esox::provider::types::FindQuery {
                    name_regexp: q.name_regexp.clone(),
                    path: q.path.clone(),
                    tags: q.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                };
                Reply::Map(
                    client
                        .call_get_all_secrets(store, this, &query)
                        .await?
                        .map_err($v::from_wit),
                )
            }
            Call::PushSecret(r, value) => Reply::Done(
                client
                    .call_push_secret(store, this, &$v::to_wit_push_ref(r), value)
                    .await?
                    .map_err($v::from_wit),
            ),
            Call::DeleteSecret(r) => Reply::Done(
                client
                    .call_delete_secret(store, this, &$v::to_wit_push_ref(r))
                    .await?
                    .map_err($v::from_wit),
            ),
            Call::SecretExists(r) => Reply::Exists(
                client
                    .call_secret_exists(store, this, &$v::to_wit_push_ref(r))
                    .await?
                    .map_err($v::from_wit),
            ),
        })
    }};
}
pub(crate) use invoke_reads;

/// The host imports every contract version shares: the same broker calls over that version's
/// types. Expands inside `impl <version>::esox::provider::host::Host for InstanceState`, where
/// `wit_host`, `wit` and `to_wit` name the version's host interface, types and error conversion.
macro_rules! broker_host_calls {
    () => {
        async fn log(
            &mut self,
            level: wit_host::LogLevel,
            message: String,
        ) -> wasmtime::Result<()> {
            use wit_host::LogLevel as L;
            use $crate::broker::LogLevel;
            let level = match level {
                L::Trace => LogLevel::Trace,
                L::Debug => LogLevel::Debug,
                L::Info => LogLevel::Info,
                L::Warn => LogLevel::Warn,
                L::Error => LogLevel::Error,
            };
            self.log(level, message);
            Ok(())
        }

        async fn secret_key(
            &mut self,
            name: String,
            key: String,
            namespace: Option<String>,
        ) -> wasmtime::Result<Result<Vec<u8>, wit::Error>> {
            Ok(self
                .broker()
                .secret_key(&name, &key, namespace.as_deref())
                .await
                .map_err(to_wit))
        }

        async fn config_map_key(
            &mut self,
            name: String,
            key: String,
            namespace: Option<String>,
        ) -> wasmtime::Result<Result<String, wit::Error>> {
            Ok(self
                .broker()
                .config_map_key(&name, &key, namespace.as_deref())
                .await
                .map_err(to_wit))
        }

        async fn service_account_token(
            &mut self,
            name: String,
            namespace: Option<String>,
            audiences: Vec<String>,
            expiration_seconds: Option<u32>,
        ) -> wasmtime::Result<Result<wit_host::SaToken, wit::Error>> {
            Ok(self
                .broker()
                .service_account_token(name, namespace, audiences, expiration_seconds)
                .await
                .map(|t| wit_host::SaToken {
                    token: t.token,
                    expires_at: t.expires_at,
                    annotations: t.annotations,
                })
                .map_err(to_wit))
        }
    };
}
pub(crate) use broker_host_calls;

/// The capability flags, named.
macro_rules! capability_names {
    ($v:ident, $caps:expr) => {{
        use $v::esox::provider::types::Capabilities as C;
        let caps = $caps;
        [(C::READ, "read"), (C::FIND, "find"), (C::WRITE, "write")]
            .into_iter()
            .filter(|(flag, _)| caps.contains(*flag))
            .map(|(_, name)| name)
            .collect::<Vec<&'static str>>()
    }};
}
pub(crate) use capability_names;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_modules_and_garbage_are_refused_as_not_components() {
        let core_module = b"\0asm\x01\0\0\0";
        assert!(matches!(
            declared_version(core_module),
            Err(ContractError::NotAComponent(_))
        ));
        assert!(matches!(
            declared_version(b"hello"),
            Err(ContractError::NotAComponent(_))
        ));
    }

    #[test]
    fn unsupported_versions_name_the_supported_range() {
        let msg = ContractError::Unsupported {
            found: "9.0.0".into(),
        }
        .to_string();
        assert!(msg.contains("9.0.0") && msg.contains(SUPPORTED), "{msg}");
    }
}
