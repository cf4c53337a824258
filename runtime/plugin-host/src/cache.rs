//! Precompiled components on disk, so a restart does not pay ~1 s of compilation per plugin.
//!
//! An artefact is named by the component's sha256 *and* the engine's compatibility hash (which
//! changes with the wasmtime version, the target CPU features and the engine configuration),
//! so a stale artefact is never even looked at.
//!
//! Deserializing a precompiled artefact runs native code without validation, so this module
//! only ever deserializes files it wrote itself: the directory is created owner-only (0700),
//! files are written atomically with a sidecar sha256 of their content, and a file is used only
//! if it and its directory belong to the directory's owner, are writable by no one else, and
//! match their sidecar. Anything else is ignored and recompiled.
//!
//! A trusted artefact is mapped from its file rather than copied into memory: its code pages
//! are then clean, file-backed and faulted in only when run, so the plugins a controller never
//! calls cost next to no resident memory (copied, the five embedded plugins kept ~36 MiB of
//! anonymous memory resident in every controller; docs/benchmark.md). A freshly compiled
//! component is swapped for its mapped artefact the same way once that is written.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// `$ESOX_CACHE_DIR/wasm`, else the user's cache directory (`~/.cache/esox/wasm`).
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ESOX_CACHE_DIR") {
        return Some(PathBuf::from(dir).join("wasm"));
    }
    dirs::cache_dir().map(|d| d.join("esox").join("wasm"))
}

fn engine_key(engine: &Engine) -> String {
    // DefaultHasher::new() has fixed keys, so this is stable for a given binary.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The component, and whether it had to be compiled (false: loaded from the cache).
pub fn load_or_compile(
    engine: &Engine,
    dir: Option<&Path>,
    sha256: &str,
    bytes: &[u8],
) -> anyhow::Result<(Component, bool)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, bytes)?, true));
    };
    let path = dir.join(format!("{sha256}-{}.cwasm", engine_key(engine)));
    if let Some(component) = read_trusted(engine, dir, &path) {
        return Ok((component, false));
    }
    let component = Component::new(engine, bytes)?;
    if let Err(e) = write_trusted(dir, &path, &component.serialize()?) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot write the plugin cache; plugins will be compiled on every start");
        return Ok((component, true));
    }
    // The mapped artefact instead of the compiled copy (see the module docs).
    Ok((read_trusted(engine, dir, &path).unwrap_or(component), true))
}

fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn private_to_owner(meta: &std::fs::Metadata, owner: u32) -> bool {
    meta.uid() == owner && meta.mode() & 0o022 == 0
}

fn read_trusted(engine: &Engine, dir: &Path, path: &Path) -> Option<Component> {
    let dir_meta = std::fs::metadata(dir).ok()?;
    let owner = dir_meta.uid();
    if !private_to_owner(&dir_meta, owner) || dir_meta.mode() & 0o077 != 0 {
        return None;
    }
    let file_meta = std::fs::symlink_metadata(path).ok()?;
    if !file_meta.is_file() || !private_to_owner(&file_meta, owner) {
        return None;
    }
    // One open file for the checks and the mapping: the inode checked is the one mapped.
    let mut file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.ino() != file_meta.ino() {
        return None;
    }
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut content).ok()?;
    let expected = std::fs::read_to_string(sidecar(path)).ok()?;
    if hex::encode(Sha256::digest(&content)) != expected.trim() {
        return None;
    }
    // SAFETY (both): the artefact was produced by `Component::serialize` of this host (see the
    // module docs for how that is established) for an engine with the same compatibility
    // hash. Mapped through the open descriptor, so a rename over the path since the check
    // does not change what is mapped; artefacts are only ever replaced by rename, never
    // written in place.
    let fd = std::path::PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ));
    match unsafe { Component::deserialize_file(engine, &fd) } {
        Ok(component) => Some(component),
        // No /proc (not Linux): copied into memory instead.
        Err(_) => unsafe { Component::deserialize(engine, &content) }.ok(),
    }
}

fn write_trusted(dir: &Path, path: &Path, content: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let write_atomically = |target: &Path, data: &[u8]| -> std::io::Result<()> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = target.with_extension(format!("tmp{}-{seq}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode_0600()
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    };
    write_atomically(path, content)?;
    write_atomically(
        &sidecar(path),
        hex::encode(Sha256::digest(content)).as_bytes(),
    )
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}
