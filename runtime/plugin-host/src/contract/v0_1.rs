//! Contract 0.1 (`wit/v0.1`, released): its bindings and their conversion into the newest
//! vocabulary. Frozen: a plugin built against 0.1 keeps loading and running unchanged.
//!
//! What 0.1 cannot say, the host supplies: the grant is inferred from the store's config
//! ([`References::InferredFromConfig`]), errors are untyped text (`internal` becomes a backend
//! error), and `open` gets no store context.

use esox_provider::{MetadataPolicy, ProviderError, RemoteRef};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::{Call, MAX_ERROR_BYTES, PluginInfo, References, Reply};
use crate::broker::LogLevel;
use crate::instance::InstanceState;

wasmtime::component::bindgen!({
    path: "../../wit/v0.1",
    world: "provider-plugin",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

use esox::provider::types as wit;

/// A plugin's error, in the newest terms, its message cut to [`MAX_ERROR_BYTES`].
pub(crate) fn from_wit(e: wit::Error) -> ProviderError {
    match e {
        wit::Error::NotFound => ProviderError::NotFound,
        wit::Error::NotModified => ProviderError::NotModified,
        wit::Error::InvalidConfig(m) => ProviderError::InvalidConfig(m),
        wit::Error::PermissionDenied(m) => ProviderError::PermissionDenied(m),
        wit::Error::Unavailable(m) => ProviderError::Unavailable(m),
        wit::Error::Unsupported(m) => ProviderError::Unsupported(m),
        wit::Error::Internal(m) => ProviderError::Backend(m),
    }
    .truncated(MAX_ERROR_BYTES)
}

/// A host error, as 0.1 can carry it.
fn to_wit(e: ProviderError) -> wit::Error {
    match e {
        ProviderError::NotFound => wit::Error::NotFound,
        ProviderError::NotModified => wit::Error::NotModified,
        ProviderError::InvalidConfig(m) => wit::Error::InvalidConfig(m),
        ProviderError::PermissionDenied(m) => wit::Error::PermissionDenied(m),
        ProviderError::Unavailable(m) => wit::Error::Unavailable(m),
        ProviderError::Unsupported(m) => wit::Error::Unsupported(m),
        ProviderError::Throttled { message, .. } => wit::Error::Unavailable(message),
        ProviderError::EgressDenied(m) => wit::Error::PermissionDenied(m),
        ProviderError::Backend(m) | ProviderError::Internal(m) => wit::Error::Internal(m),
    }
}

pub(crate) fn to_wit_ref(r: &RemoteRef) -> wit::RemoteRef {
    wit::RemoteRef {
        key: r.key.clone(),
        property: r.property.clone(),
        version: r.version.clone(),
        metadata_policy: match r.metadata_policy {
            MetadataPolicy::None => wit::MetadataPolicy::None,
            MetadataPolicy::Fetch => wit::MetadataPolicy::Fetch,
        },
    }
}

pub(crate) async fn info(
    b: &ProviderPlugin,
    store: &mut Store<InstanceState>,
) -> wasmtime::Result<PluginInfo> {
    let info = b.esox_provider_provider().call_info(store).await?;
    Ok(PluginInfo {
        capabilities: super::capability_names!(self, info.capabilities),
        name: info.name,
        version: info.version,
        description: info.description,
        config_schema: info.config_schema,
        default_egress: info.default_egress,
        references: References::InferredFromConfig,
        wants_ambient_identity: false,
    })
}

pub(crate) async fn invoke(
    b: &ProviderPlugin,
    store: &mut Store<InstanceState>,
    this: ResourceAny,
    call: &Call<'_>,
) -> wasmtime::Result<Reply> {
    super::invoke_reads!(self, b, store, this, call)
}

impl wit::Host for InstanceState {}

impl esox::provider::host::Host for InstanceState {
    async fn log(
        &mut self,
        level: esox::provider::host::LogLevel,
        message: String,
    ) -> wasmtime::Result<()> {
        use esox::provider::host::LogLevel as L;
        self.log(
            match level {
                L::Trace => LogLevel::Trace,
                L::Debug => LogLevel::Debug,
                L::Info => LogLevel::Info,
                L::Warn => LogLevel::Warn,
                L::Error => LogLevel::Error,
            },
            message,
        );
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
    ) -> wasmtime::Result<Result<esox::provider::host::SaToken, wit::Error>> {
        Ok(self
            .broker()
            .service_account_token(name, namespace, audiences, expiration_seconds)
            .await
            .map(|t| esox::provider::host::SaToken {
                token: t.token,
                expires_at: t.expires_at,
                annotations: t.annotations,
            })
            .map_err(to_wit))
    }
}
