//! The wasmtime host that runs provider plugins in a sandbox.
