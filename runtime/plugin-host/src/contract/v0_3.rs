//! Contract 0.3 (`wit/v0.3`, the newest): 0.2 plus `plugin-info.client-certificates`, where a
//! store config names a client certificate the host presents in TLS for the plugin.

use esox_provider::{MetadataPolicy, ProviderError, RemoteRef};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::{
    Call, MAX_ERROR_BYTES, PluginInfo, ReferenceKind, ReferencePath, References, Reply,
    StoreContext, StoreKind,
};
use crate::instance::InstanceState;

wasmtime::component::bindgen!({
    path: "../../wit/v0.3",
    world: "provider-plugin",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

super::typed::typed_contract!(
    |info: &wit::PluginInfo| {
        info.client_certificates
            .iter()
            .map(|c| super::ClientCertificatePath {
                certificate: c.certificate.clone(),
                private_key: c.private_key.clone(),
            })
            .collect::<Vec<_>>()
    },
    |r: &wit::ReferencePath| r.required_labels.clone()
);
