//! Contract 0.2 (`wit/v0.2`): its bindings and their conversion into the host's vocabulary.
//! Typed errors, declared references, store context, egress derived from the config, ambient
//! identity. It declares no client certificates.

use esox_provider::{MetadataPolicy, ProviderError, RemoteRef};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::{
    Call, MAX_ERROR_BYTES, PluginInfo, ReferenceKind, ReferencePath, References, Reply,
    StoreContext, StoreKind,
};
use crate::instance::InstanceState;

wasmtime::component::bindgen!({
    path: "../../wit/v0.2",
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
    |_: &wit::PluginInfo| Vec::new(),
    |_: &wit::ReferencePath| { Vec::new() }
);
