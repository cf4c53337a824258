//! `cargo xtask image`: the esox container image, built without Docker.
//!
//! The image is one layer written here, byte for byte: the `esox` binary (debug info stripped),
//! the few shared
//! libraries it links (glibc, libgcc_s, libm: read off `ldd`, copied from the build machine),
//! `/etc/passwd` and `/etc/group` with the non-root user `esox` (65532), `/etc/nsswitch.conf`
//! (DNS for the plugins' backends), an empty `/tmp` and `/var/cache/esox` (the plugin cache;
//! mount a writable volume there, the root filesystem can stay read-only). TLS roots are
//! compiled into esox (webpki-roots), so no CA bundle is needed.
//!
//! Out come an OCI image layout (`target/image/oci`, for `crane push`, `skopeo copy`,
//! `ctr import`) and a `docker load`-able tarball (`target/image/esox-image.tar`). The tar is
//! written with sorted entries, zero timestamps and fixed owners, and the config carries no
//! creation time, so the same binary and libraries always give the same digest; the gate
//! builds the image twice and compares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A file in the image.
struct Entry {
    mode: u32,
    uid: u32,
    content: Option<Vec<u8>>, // None: a directory
}

/// What `image` produced.
pub struct Built {
    /// `sha256:...` of the image manifest (the digest a registry shows).
    pub digest: String,
    /// Size of the single layer in bytes.
    pub layer_bytes: usize,
    /// The layer's blob name (its sha256, hex).
    pub layer: String,
    /// Where the OCI layout and the docker tarball are.
    pub out: PathBuf,
}

const USER: u32 = 65532;

/// Build the image from the binary at `binary` into `out`.
pub fn build(binary: &Path, out: &Path, tag: &str) -> Result<Built, String> {
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let bin = stripped(binary, out)?;
    let dir = |uid, mode| Entry {
        mode,
        uid,
        content: None,
    };
    let file = |content: Vec<u8>, mode| Entry {
        mode,
        uid: 0,
        content: Some(content),
    };
    for d in [
        "etc",
        "usr",
        "usr/local",
        "usr/local/bin",
        "var",
        "var/cache",
        "home",
    ] {
        files.insert(d.into(), dir(0, 0o755));
    }
    files.insert("tmp".into(), dir(0, 0o1777));
    files.insert("var/cache/esox".into(), dir(USER, 0o700));
    files.insert("home/esox".into(), dir(USER, 0o700));
    files.insert("usr/local/bin/esox".into(), file(bin, 0o755));
    files.insert(
        "etc/passwd".into(),
        file(
            format!("root:x:0:0:root:/root:/sbin/nologin\nesox:x:{USER}:{USER}:esox:/home/esox:/sbin/nologin\n").into_bytes(),
            0o644,
        ),
    );
    files.insert(
        "etc/group".into(),
        file(format!("root:x:0:\nesox:x:{USER}:\n").into_bytes(), 0o644),
    );
    files.insert(
        "etc/nsswitch.conf".into(),
        file(b"hosts: files dns\n".to_vec(), 0o644),
    );
    for lib in shared_libraries(binary)? {
        let content = std::fs::read(&lib).map_err(|e| format!("reading {}: {e}", lib.display()))?;
        let inside = lib.to_string_lossy().trim_start_matches('/').to_string();
        let mut parent = Path::new(&inside).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            files
                .entry(p.to_string_lossy().into_owned())
                .or_insert_with(|| dir(0, 0o755));
            parent = p.parent();
        }
        files.insert(inside, file(content, 0o755));
    }

    let layer = tar(&files);
    let layer_digest = sha256(&layer);
    let config = format!(
        concat!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"User":"{u}:{u}","#,
            r#""Entrypoint":["/usr/local/bin/esox"],"Cmd":["run"],"#,
            r#""Env":["PATH=/usr/local/bin","ESOX_LOG_FORMAT=json","ESOX_PLUGIN_CACHE_DIR=/var/cache/esox"],"#,
            r#""WorkingDir":"/home/esox","Labels":{{"org.opencontainers.image.title":"esox","org.opencontainers.image.version":"{tag}"}}}},"#,
            r#""rootfs":{{"type":"layers","diff_ids":["{layer}"]}},"history":[{{"created_by":"cargo xtask image"}}]}}"#
        ),
        u = USER,
        tag = tag,
        layer = layer_digest
    );
    let config_digest = sha256(config.as_bytes());
    let manifest = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            r#""config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{cs}}},"#,
            r#""layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{ls}}}]}}"#
        ),
        cd = config_digest,
        cs = config.len(),
        ld = layer_digest,
        ls = layer.len()
    );
    let manifest_digest = sha256(manifest.as_bytes());

    // OCI image layout.
    let oci = out.join("oci");
    let _ = std::fs::remove_dir_all(&oci);
    let blobs = oci.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| format!("{}: {e}", blobs.display()))?;
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    write(blobs.join(hex_of(&layer_digest)), &layer)?;
    write(blobs.join(hex_of(&config_digest)), config.as_bytes())?;
    write(blobs.join(hex_of(&manifest_digest)), manifest.as_bytes())?;
    write(oci.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    write(
        oci.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
            manifest.len()
        )
        .as_bytes(),
    )?;

    // `docker load` tarball (the classic format every Docker and containerd version reads).
    let mut docker: BTreeMap<String, Entry> = BTreeMap::new();
    let layer_dir = hex_of(&layer_digest);
    docker.insert(layer_dir.clone(), dir(0, 0o755));
    docker.insert(format!("{layer_dir}/layer.tar"), file(layer.clone(), 0o644));
    let config_name = format!("{}.json", hex_of(&config_digest));
    docker.insert(
        config_name.clone(),
        file(config.clone().into_bytes(), 0o644),
    );
    docker.insert(
        "manifest.json".into(),
        file(
            format!(
                r#"[{{"Config":"{config_name}","RepoTags":["esox:{tag}"],"Layers":["{layer_dir}/layer.tar"]}}]"#
            )
            .into_bytes(),
            0o644,
        ),
    );
    write(out.join("esox-image.tar"), &tar(&docker))?;

    Ok(Built {
        digest: manifest_digest,
        layer_bytes: layer.len(),
        layer: hex_of(&layer_digest),
        out: out.to_path_buf(),
    })
}

/// The binary without its debug information (`strip --strip-debug`: symbol names stay, so a
/// panic's backtrace still names functions): the release binary goes from 260 MB to 54 MB.
/// Without `strip` on the machine, the binary as it is.
fn stripped(binary: &Path, out: &Path) -> Result<Vec<u8>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let copy = out.join("esox.stripped");
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status();
    let path = match status {
        Ok(s) if s.success() => copy.as_path(),
        _ => {
            eprintln!("strip is not available: the image carries the binary with its debug info");
            binary
        }
    };
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The shared libraries `binary` loads, as absolute paths (from `ldd`).
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    if libs.is_empty() {
        return Err(format!(
            "ldd found no libraries for {}: {text}",
            binary.display()
        ));
    }
    Ok(libs)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn hex_of(digest: &str) -> String {
    digest.trim_start_matches("sha256:").to_string()
}

/// A POSIX (ustar) archive of `files`, in path order, every timestamp zero.
fn tar(files: &BTreeMap<String, Entry>) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, entry) in files {
        let (name, prefix) = split_name(path, entry.content.is_none());
        let mut h = [0u8; 512];
        put(&mut h[0..100], name.as_bytes());
        octal(&mut h[100..108], u64::from(entry.mode));
        octal(&mut h[108..116], u64::from(entry.uid));
        octal(&mut h[116..124], u64::from(entry.uid));
        let size = entry.content.as_ref().map_or(0, Vec::len);
        octal(&mut h[124..136], size as u64);
        octal(&mut h[136..148], 0);
        h[156] = if entry.content.is_some() { b'0' } else { b'5' };
        put(&mut h[257..263], b"ustar\0");
        put(&mut h[263..265], b"00");
        put(&mut h[345..500], prefix.as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        octal(&mut h[148..155], u64::from(sum));
        h[155] = b' ';
        out.extend_from_slice(&h);
        if let Some(content) = &entry.content {
            out.extend_from_slice(content);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// ustar's name (≤ 100 bytes) and prefix (≤ 155 bytes); directories end in `/`.
fn split_name(path: &str, is_dir: bool) -> (String, String) {
    let full = if is_dir {
        format!("{path}/")
    } else {
        path.to_string()
    };
    if full.len() <= 100 {
        return (full, String::new());
    }
    let cut = full[..full.len() - 1]
        .rfind('/')
        .filter(|i| full.len() - i - 1 <= 100 && *i <= 155)
        .expect("image paths fit ustar's name and prefix");
    (full[cut + 1..].to_string(), full[..cut].to_string())
}

fn put(field: &mut [u8], value: &[u8]) {
    field[..value.len()].copy_from_slice(value);
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    put(field, text.as_bytes());
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_is_deterministic_and_well_formed() {
        let mut files = BTreeMap::new();
        files.insert(
            "etc".to_string(),
            Entry {
                mode: 0o755,
                uid: 0,
                content: None,
            },
        );
        files.insert(
            "etc/passwd".to_string(),
            Entry {
                mode: 0o644,
                uid: 0,
                content: Some(b"root:x:0:0::/:/sbin/nologin\n".to_vec()),
            },
        );
        let a = tar(&files);
        assert_eq!(a, tar(&files));
        assert_eq!(a.len() % 512, 0);
        assert_eq!(&a[0..4], b"etc/");
        assert_eq!(&a[257..262], b"ustar");
        assert_eq!(&a[512..522], b"etc/passwd");
        // The checksum field matches the header's bytes with the field as spaces.
        let mut h = a[512..1024].to_vec();
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        h[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, h.iter().map(|b| u32::from(*b)).sum::<u32>());
    }

    #[test]
    fn long_paths_use_the_prefix() {
        let path = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let (name, prefix) = split_name(&path, false);
        assert_eq!(name, "f".repeat(50));
        assert_eq!(prefix, "d".repeat(120));
    }
}
