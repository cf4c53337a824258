//! Builds the plugins workspace (`plugins/`) for wasm32-wasip2 as part of the normal build, so
//! the first-party plugins embedded in `esox` always come from this repository's source.
//!
//! The nested cargo uses its own target directory (next to the outer one) so it never waits on
//! the outer build's lock, and it shares the outer jobserver, so `-j` is respected. The finished
//! components are copied into OUT_DIR, which is this checkout's alone.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages built: first-party plugins and the test fixtures (hostile, a future contract, the
/// fake plugin as released for contract 0.1, a minimal plugin built against contract 0.2).
const PACKAGES: &[&str] = &[
    "esox-plugin-fake",
    "esox-plugin-aws",
    "esox-plugin-webhook",
    "esox-plugin-vault",
    "esox-plugin-kubernetes",
    "esox-fixture-hostile",
    "esox-fixture-future-contract",
    "esox-fixture-fake-v0-1",
    "esox-fixture-fake-v0-2",
];

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let repo = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("runtime/plugins-bundle is two levels below the repository root");
    let plugins = repo.join("plugins");
    for watched in [
        "Cargo.toml",
        "Cargo.lock",
        "sdk",
        "sdk-v0.1",
        "fake",
        "aws",
        "webhook",
        "vault",
        "kubernetes",
        "fixtures",
    ] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    // The webhook plugin renders its templates with the controller's own engine.
    println!(
        "cargo:rerun-if-changed={}",
        repo.join("runtime").join("template").display()
    );
    println!("cargo:rerun-if-changed={}", repo.join("wit").display());

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The outer target directory is the ancestor holding cargo's CACHEDIR.TAG.
    let target_root = out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .unwrap_or(&out_dir)
        .to_path_buf();
    let wasm_target = target_root.join("wasm-plugins");

    // Every checkout that uses this outer target dir (a CI clone, a worktree) shares the nested
    // one: that reuses the compiled dependencies, but the components themselves land in one file
    // per package whatever the checkout, and cargo calls a checkout's own build fresh even when
    // another checkout has overwritten the file since. So each component records the checkout
    // that built it last, and a component another checkout built is deleted before the build,
    // which makes cargo rebuild it (the package alone, not its dependencies) from this source.
    let built = wasm_target.join("wasm32-wasip2").join("release");
    let this_checkout = repo.display().to_string();
    let files: Vec<String> = PACKAGES
        .iter()
        .map(|p| format!("{}.wasm", p.replace('-', "_")))
        .collect();
    for file in &files {
        let owner = std::fs::read_to_string(wasm_target.join(format!(".built-by.{file}"))).ok();
        if owner.as_deref() != Some(this_checkout.as_str()) {
            let _ = std::fs::remove_file(built.join(file));
            let _ = std::fs::remove_file(built.join("deps").join(file));
        }
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .args(["--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&wasm_target);
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    // Settings of the outer build that must not leak into a build for another target.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PKG_NAME",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
        "CARGO_INCREMENTAL",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the plugins: {e}"));
    if !status.success() {
        panic!(
            "building the plugins in {} for wasm32-wasip2 failed (see above).\n\
             If the target is missing, install it once: `rustup target add wasm32-wasip2` \
             (`cargo xtask test` does this for you).",
            plugins.display()
        );
    }
    // Copied into this checkout's own OUT_DIR right away, so a later build in another checkout
    // cannot swap the bytes embedded here.
    let own = out_dir.join("wasm");
    std::fs::create_dir_all(&own)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", own.display()));
    for file in &files {
        let _ = std::fs::write(
            wasm_target.join(format!(".built-by.{file}")),
            &this_checkout,
        );
        std::fs::copy(built.join(file), own.join(file)).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} into {}: {e}",
                built.join(file).display(),
                own.display()
            )
        });
    }
    println!("cargo:rustc-env=ESOX_WASM_DIR={}", own.display());
}
