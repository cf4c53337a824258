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

/// Ask the kernel to reclaim the resident pages of the embedded components, once the host has
/// loaded them (it keeps its own compiled or mapped copy; these bytes are read again only if a
/// plugin is loaded again). Loading reads every byte (to hash and parse it), which left ~16 MiB
/// of the binary's read-only data resident in every controller for nothing.
///
/// `MADV_PAGEOUT` (Linux 5.4+) never changes memory contents: clean file-backed pages, which
/// these are in an ordinary executable, are dropped and read back from the binary if touched;
/// anything else is at most swapped. Elsewhere, or on an older kernel, nothing happens.
/// Returns the bytes the kernel accepted the advice for.
pub fn release_resident() -> usize {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let Ok(page) = usize::try_from(page) else {
            return 0;
        };
        if page == 0 {
            return 0;
        }
        let mut released = 0;
        for (_, bytes) in PLUGINS {
            let start = bytes.as_ptr() as usize;
            let first = start.div_ceil(page) * page;
            let last = (start + bytes.len()) / page * page;
            if last <= first {
                continue;
            }
            // SAFETY: whole pages inside a `static` byte slice, which lives as long as the
            // process; MADV_PAGEOUT is advice that preserves contents, so every reference to
            // these bytes stays valid and reads the same values.
            let rc = unsafe {
                libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_PAGEOUT)
            };
            if rc == 0 {
                released += last - first;
            }
        }
        released
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pages_still_read_the_same_bytes() {
        use std::hash::{Hash, Hasher};
        let digest = || {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for (_, bytes) in PLUGINS {
                bytes.hash(&mut h);
            }
            h.finish()
        };
        let before = digest();
        let released = release_resident();
        if cfg!(target_os = "linux") {
            assert!(released > 1 << 20, "released {released} bytes");
        }
        assert_eq!(digest(), before, "the advice never changes contents");
    }
}
