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

use esox::provider::host as wit_host;
use esox::provider::types as wit;

/// A plugin's error, in the newest terms, its message cut to [`MAX_ERROR_BYTES`].
pub(crate) fn from_wit(e: wit::Error) -> ProviderError {
    match e {
        wit::Error::NotFound => ProviderError::NotFound,
        wit::Error::NotModified => ProviderError::NotModified,
        wit::Error::InvalidConfig(m) => ProviderError::InvalidConfig(m.into()),
        wit::Error::PermissionDenied(m) => ProviderError::PermissionDenied(m.into()),
        wit::Error::Unavailable(m) => ProviderError::Unavailable(m.into()),
        wit::Error::Unsupported(m) => ProviderError::Unsupported(m.into()),
        wit::Error::Internal(m) => ProviderError::Backend(m.into()),
    }
    .truncated(MAX_ERROR_BYTES)
}

/// A host error, as 0.1 can carry it.
fn to_wit(e: ProviderError) -> wit::Error {
    match e {
        ProviderError::NotFound => wit::Error::NotFound,
        ProviderError::NotModified => wit::Error::NotModified,
        ProviderError::InvalidConfig(m) => wit::Error::InvalidConfig(m.to_string()),
        ProviderError::PermissionDenied(m) => wit::Error::PermissionDenied(m.to_string()),
        ProviderError::Unavailable(m) => wit::Error::Unavailable(m.to_string()),
        ProviderError::Unsupported(m) => wit::Error::Unsupported(m.to_string()),
        ProviderError::Throttled { message, .. } => wit::Error::Unavailable(message.to_string()),
        ProviderError::EgressDenied(m) => wit::Error::PermissionDenied(m.to_string()),
        ProviderError::Backend(m) | ProviderError::Internal(m) => {
            wit::Error::Internal(m.to_string())
        }
    }
}

pub(crate) fn to_wit_push_ref(r: &esox_provider::PushRef) -> wit::PushRef {
    wit::PushRef {
        remote_key: r.remote_key.clone(),
        property: r.property.clone(),
        metadata: r.metadata.clone(),
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
        client_certificates: Vec::new(),
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

impl wit_host::Host for InstanceState {
    super::broker_host_calls!();
}
