//! The first-party plugins built into the esox binary, as bytes for
//! `PluginHost::load_embedded`. The host crate does not depend on this one: which plugins a
//! product ships is the product's choice (`esox` links this crate; the host's own tests and
//! benches use it as a dev-dependency for the fixtures).
//!
//! `build.rs` builds the `plugins/` workspace for wasm32-wasip2 during the normal `cargo
//! build` and points `ESOX_WASM_DIR` at the output, so the components are compiled from this
//! repository's source every time; no prebuilt binary is committed.

/// (file name, component bytes) of each embedded plugin.
pub static PLUGINS: &[(&str, &[u8])] = &[
    (
        "esox_plugin_aws.wasm",
        include_bytes!(concat!(env!("ESOX_WASM_DIR"), "/esox_plugin_aws.wasm")),
    ),
    (
        "esox_plugin_fake.wasm",
        include_bytes!(concat!(env!("ESOX_WASM_DIR"), "/esox_plugin_fake.wasm")),
    ),
    (
        "esox_plugin_kubernetes.wasm",
        include_bytes!(concat!(
            env!("ESOX_WASM_DIR"),
            "/esox_plugin_kubernetes.wasm"
        )),
    ),
    (
        "esox_plugin_vault.wasm",
        include_bytes!(concat!(env!("ESOX_WASM_DIR"), "/esox_plugin_vault.wasm")),
    ),
    (
        "esox_plugin_webhook.wasm",
        include_bytes!(concat!(env!("ESOX_WASM_DIR"), "/esox_plugin_webhook.wasm")),
    ),
];

/// Where the build put the plugin components (first-party plugins and test fixtures).
pub const WASM_DIR: &str = env!("ESOX_WASM_DIR");
