//! The provider contract versions this host speaks, and how a plugin's version is read.
//!
//! Each released WIT version has its own folder (`wit/v0.1/`) and its own module here with its
//! own `bindgen!`. A plugin declares its version by the name of the interface it exports
//! (`esox:provider/provider@0.1.0`); [`declared_version`] reads that name from the binary with
//! a parser, *before* anything is compiled or instantiated, so an unsupported plugin is refused
//! with a message instead of failing at link time. When a `v0.2` arrives, it gets a sibling
//! module and [`Contract`] a new variant; the dispatch in `instance.rs` is the one place that
//! matches on it.

use semver::Version;

/// Generated host bindings for contract 0.1.
pub mod v0_1 {
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
}

/// A contract version the host supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contract {
    /// `esox:provider@0.1.x`.
    V0_1,
}

/// The range of contract versions this host accepts, for messages.
pub const SUPPORTED: &str = "0.1.x";

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
        _ => Err(ContractError::Unsupported { found }),
    }
}

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
