//! esox: keeps Kubernetes Secrets in sync with external secret stores, serving the External
//! Secrets Operator API, with every backend a sandboxed WebAssembly plugin.
//!
//! - [`cli`]: the commands (`esox plugin`, `esox get`, ...).
//! - [`plugins`]: how the binary assembles its plugin host (embedded plugins, `--plugin-dir`,
//!   operator settings and egress grants).

pub mod cli;
pub mod plugins;
