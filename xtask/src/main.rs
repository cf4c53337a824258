//! `cargo xtask <task>`: the two commands a newcomer runs, and what CI runs.
//!
//! - `cargo xtask test`: installs what the suite needs (wasm32-wasip2 target, control-plane
//!   binaries built from Go modules, the LocalStack venv; all cached under ~/.cache/esox), then
//!   runs formatting and lint checks, the CRD drift check and every test, and prints how long
//!   each phase took.
//! - `cargo xtask demo`: the quick start for real — brings up the local stack (kube-apiserver,
//!   etcd, kube-controller-manager, LocalStack), seeds `my-application/database` in LocalStack,
//!   runs the controller, applies the README's manifests and shows the synced Secret (its keys
//!   and sizes; values are never printed).
//!
//! Plain std on purpose: it must build in seconds on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

mod demo;
mod image;

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let mut phases = Phases::default();
    let result = match task.as_str() {
        "test" => test(&mut phases),
        "demo" => demo::run(&mut phases),
        "prepare" => prepare(&mut phases),
        "e2e" => e2e(&mut phases),
        "image" => image_task(&mut phases),
        "bench-churn" => bench_churn(&mut phases),
        "bench" => bench(&mut phases),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|e2e|demo|prepare|image|bench|bench-churn>\n  test     the suite CI runs: prerequisites, format, full build, lint, every test incl. e2e on the real stack\n  e2e      only the end-to-end suites on the real stack (installs the control plane and LocalStack)\n  demo     the quick start, end to end\n  prepare  only install the prerequisites\n  bench    esox side by side with ESO v0.16.2 (default and tuned) and a raw writer, N = 1,000 and 10,000, fresh stacks (release build; about 45 minutes); --short for N = 1,000 only; --debug for the debug binaries; arguments after -- go to esox-bench\n  bench-churn  the churn benchmark: 1,000 ExternalSecrets and 100 stores created and deleted in rounds for 10 minutes, controller RSS per round (ESOX_CHURN_SECONDS/_ES/_STORES to change)\n  image    the container image, without Docker: an OCI layout and a docker-load tarball in target/image (release build; --debug for the debug binary, --binary PATH for one built elsewhere)"
            );
            return ExitCode::from(2);
        }
    };
    phases.print();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Timings of the phases run so far, printed as a table at the end.
#[derive(Default)]
pub struct Phases(Vec<(String, Duration, bool)>);

impl Phases {
    /// Run one phase, printing its start and recording its duration.
    pub fn run(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        eprintln!("\n==> {name}");
        let started = Instant::now();
        let result = f();
        self.0
            .push((name.to_string(), started.elapsed(), result.is_ok()));
        result
    }

    fn print(&self) {
        if self.0.is_empty() {
            return;
        }
        eprintln!("\n| phase | seconds | result |\n|---|---:|---|");
        let mut total = Duration::ZERO;
        for (name, d, ok) in &self.0 {
            total += *d;
            eprintln!(
                "| {name} | {:.1} | {} |",
                d.as_secs_f64(),
                if *ok { "ok" } else { "FAILED" }
            );
        }
        eprintln!("| total | {:.1} | |", total.as_secs_f64());
    }
}

/// The repository root (xtask lives one level below it).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Run a command in the repository, inheriting output; an error names the command.
pub fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .current_dir(repo())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Install everything the suite needs; each step is cached and skipped when done.
/// The binaries are built with the whole workspace selected, like every later cargo call, so
/// cargo unifies features once and builds nothing twice.
pub fn prepare(phases: &mut Phases) -> Result<(), String> {
    prepare_with(phases, false)
}

/// [`prepare`], with only what a stack needs when `stack_only` (the demo: no helm, ESO or
/// Vault, which only the tests and the benchmark use).
pub fn prepare_with(phases: &mut Phases, stack_only: bool) -> Result<(), String> {
    wasm_target(phases)?;
    phases.run(
        "build the binaries (cargo build --workspace --bins; plugins for wasm32-wasip2 via build.rs)",
        || sh(&cargo(), &["build", "--workspace", "--bins"]),
    )?;
    let (what, args): (&str, &[&str]) = if stack_only {
        (
            "control plane + LocalStack (esox-stack prepare --stack-only; cached under ~/.cache/esox)",
            &["prepare", "--stack-only"],
        )
    } else {
        (
            "control plane + LocalStack + helm, ESO and Vault test tooling (esox-stack prepare; cached under ~/.cache/esox)",
            &["prepare"],
        )
    };
    phases.run(what, || {
        let stack = bin_dir().join("esox-stack");
        sh(&stack.display().to_string(), args)
    })
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (as `.ci/run` sets it) or `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => std::env::current_dir().unwrap_or_else(|_| repo()).join(dir),
        None => repo().join("target"),
    }
}

/// Where `cargo build` puts the debug binaries.
pub fn bin_dir() -> PathBuf {
    target_dir().join("debug")
}

fn wasm_target(phases: &mut Phases) -> Result<(), String> {
    phases.run("wasm32-wasip2 target (rustup)", || {
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map_err(|e| format!("rustup: {e}"))?;
        if String::from_utf8_lossy(&installed.stdout)
            .lines()
            .any(|l| l.trim() == "wasm32-wasip2")
        {
            eprintln!("already installed");
            Ok(())
        } else {
            sh("rustup", &["target", "add", "wasm32-wasip2"])
        }
    })
}

/// The end-to-end suites alone (the last phase of `test`): real kube-apiserver + etcd +
/// kube-controller-manager + LocalStack. Their tests are `#[ignore]`d so a plain `cargo test`
/// stays fast and needs no stack; `--ignored` runs exactly them.
fn e2e(phases: &mut Phases) -> Result<(), String> {
    prepare(phases)?;
    e2e_phase(phases)
}

fn e2e_phase(phases: &mut Phases) -> Result<(), String> {
    phases.run(
        "end-to-end suites on the real stack (harness smoke, controller, AWS, templates, scale at N=100)",
        || sh(&cargo(), &["test", "--workspace", "--", "--ignored"]),
    )
}

/// The churn benchmark (runtime/esox/tests/e2e_churn.rs) at full size: 10 minutes unless
/// `ESOX_CHURN_SECONDS` says otherwise.
fn bench_churn(phases: &mut Phases) -> Result<(), String> {
    prepare(phases)?;
    phases.run("churn benchmark (prints RSS per round)", || {
        let seconds = std::env::var("ESOX_CHURN_SECONDS").unwrap_or_else(|_| "600".into());
        let status = Command::new(cargo())
            .args([
                "test",
                "--workspace",
                "--test",
                "e2e_churn",
                "--",
                "--ignored",
                "--nocapture",
            ])
            .env("ESOX_CHURN_SECONDS", seconds)
            .current_dir(repo())
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the churn benchmark failed ({status})"))
        }
    })
}

/// `cargo xtask bench [--short] [--debug] [-- esox-bench args]`: the side-by-side benchmark
/// (bench/): ESO v0.16.2 with default and tuned flags, esox, and the raw writer, each on a fresh
/// local stack. Release binaries unless `--debug` (CI's short run uses the debug build the gate
/// already has: its table checks the machinery, its ratios are not the product's).
fn bench(phases: &mut Phases) -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let (ours, passed) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&args[..], &[][..]),
    };
    let short = ours.iter().any(|a| a == "--short");
    let debug = ours.iter().any(|a| a == "--debug");
    prepare(phases)?;
    bench_run(phases, short, debug, passed)
}

fn bench_run(
    phases: &mut Phases,
    short: bool,
    debug: bool,
    passed: &[String],
) -> Result<(), String> {
    let profile = if debug { "debug" } else { "release" };
    phases.run(
        &format!("build esox, esox-bench and esox-raw-writer ({profile})"),
        || {
            let mut args = vec![
                "build",
                "--workspace",
                "--bin",
                "esox",
                "--bin",
                "esox-bench",
                "--bin",
                "esox-raw-writer",
            ];
            if !debug {
                args.push("--release");
            }
            sh(&cargo(), &args)
        },
    )?;
    let dir = target_dir().join(profile);
    let ns = if short { "1000" } else { "1000,10000" };
    phases.run(
        &format!(
            "side-by-side benchmark: ESO default, ESO tuned, esox ({profile}), raw writer; N = {ns}"
        ),
        || {
            let bench = dir.join("esox-bench").to_string_lossy().into_owned();
            let esox = dir.join("esox").to_string_lossy().into_owned();
            let mut args = vec!["--esox", esox.as_str(), "--n", ns];
            args.extend(passed.iter().map(String::as_str));
            sh(&bench, &args)
        },
    )
}

/// `cargo xtask image [--debug]`: build `esox` (release unless `--debug`) and the image.
fn image_task(phases: &mut Phases) -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let debug = args.iter().any(|a| a == "--debug");
    // `--binary PATH`: package a binary built elsewhere (a musl build, say) as it is.
    let given = args
        .iter()
        .position(|a| a == "--binary")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let (profile_args, dir): (&[&str], &str) = if debug {
        (&[], "debug")
    } else {
        (&["--release"], "release")
    };
    if given.is_none() {
        phases.run(&format!("build esox ({dir})"), || {
            let mut args = vec!["build", "--workspace", "--bin", "esox"];
            args.extend_from_slice(profile_args);
            sh(&cargo(), &args)
        })?;
    }
    let binary = given.unwrap_or_else(|| target_dir().join(dir).join("esox"));
    phases.run("assemble the image (OCI layout + docker tarball)", || {
        let built = image::build(
            &binary,
            &target_dir().join("image"),
            env!("CARGO_PKG_VERSION"),
        )?;
        eprintln!(
            "image {} (one layer, {:.1} MB)\n  OCI layout: {}\n  docker:     docker load -i {}",
            built.digest,
            built.layer_bytes as f64 / 1e6,
            built.out.join("oci").display(),
            built.out.join("esox-image.tar").display()
        );
        Ok(())
    })
}

/// The image from the debug binary, built twice into separate folders: both digests must be
/// equal (the build is reproducible) and the tarball well formed.
fn image_check() -> Result<(), String> {
    let binary = bin_dir().join("esox");
    let a = image::build(&binary, &target_dir().join("image-check/a"), "check")?;
    let b = image::build(&binary, &target_dir().join("image-check/b"), "check")?;
    if a.digest != b.digest {
        return Err(format!(
            "the image is not reproducible: {} then {}",
            a.digest, b.digest
        ));
    }
    let index = std::fs::read_to_string(a.out.join("oci/index.json"))
        .map_err(|e| format!("index.json: {e}"))?;
    if !index.contains(&a.digest) {
        return Err(format!("index.json does not name {}: {index}", a.digest));
    }
    eprintln!(
        "image digest {} twice ({:.1} MB layer, debug binary)",
        a.digest,
        a.layer_bytes as f64 / 1e6
    );
    run_in_image_rootfs(&a)
}

/// Unpack the image's layer and run `esox plugin list` in it as the image's user (chroot; the
/// embedded plugins compile into /var/cache/esox): the binary and the libraries copied with it
/// are enough. Needs root for chroot; otherwise says it skipped.
fn run_in_image_rootfs(built: &image::Built) -> Result<(), String> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        eprintln!("skipped running the image's filesystem: chroot needs root");
        return Ok(());
    }
    let rootfs = built.out.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(&rootfs).map_err(|e| format!("{}: {e}", rootfs.display()))?;
    let layer = built.out.join("oci/blobs/sha256").join(&built.layer);
    let rootfs_s = rootfs.display().to_string();
    sh(
        "tar",
        &["-xf", &layer.display().to_string(), "-C", &rootfs_s],
    )?;
    sh(
        "chroot",
        &[
            "--userspec=65532:65532",
            &rootfs_s,
            "/usr/local/bin/esox",
            "plugin",
            "list",
            "--plugin-cache-dir",
            "/var/cache/esox",
        ],
    )
}

/// The CI gate. Every cargo invocation selects the whole workspace, so features unify the same
/// way each time and nothing is built twice.
fn test(phases: &mut Phases) -> Result<(), String> {
    prepare(phases)?;
    let cargo = cargo();
    let plugins = "plugins/Cargo.toml";
    let triple = host_triple();
    phases.run("format (cargo fmt --check, host and plugins)", || {
        sh(&cargo, &["fmt", "--all", "--check"])?;
        sh(
            &cargo,
            &["fmt", "--manifest-path", plugins, "--all", "--check"],
        )
    })?;
    phases.run(
        "build everything (host workspace, all targets; plugins for wasm32-wasip2 via build.rs)",
        || sh(&cargo, &["build", "--workspace", "--all-targets"]),
    )?;
    phases.run(
        "lint (clippy -D warnings): host workspace and plugins",
        || {
            sh(
                &cargo,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            )?;
            sh(
                &cargo,
                &[
                    "clippy",
                    "--manifest-path",
                    plugins,
                    "--workspace",
                    "--all-targets",
                    "--target",
                    triple.as_str(),
                    "--",
                    "-D",
                    "warnings",
                ],
            )
        },
    )?;
    phases.run(
        "pure crates stay pure (cargo tree: esox-sync, esox-template, esox-api reach no tokio, hyper or kube-client)",
        pure_crates_stay_pure,
    )?;
    phases.run(
        "plugin tests (native): SDK property semantics, AWS plugin config/errors/endpoints/ACM export, webhook templates/JSONPath/answers, vault paths/auth/answers, kubernetes reads/auth",
        || {
            sh(
                &cargo,
                &[
                    "test",
                    "--manifest-path",
                    plugins,
                    "-p",
                    "esox-plugin-sdk",
                    "-p",
                    "esox-plugin-aws",
                    "-p",
                    "esox-plugin-webhook",
                    "-p",
                    "esox-plugin-vault",
                    "-p",
                    "esox-plugin-kubernetes",
                    "--lib",
                    "--target",
                    triple.as_str(),
                ],
            )
        },
    )?;
    phases.run(
        "container image (cargo xtask image's assembly, from the debug binary): built twice, same digest",
        image_check,
    )?;
    phases.run(
        "unit and integration tests (API + CEL, CRD drift, sync, templates, plugin host + sandbox, CLI)",
        || sh(&cargo, &["test", "--workspace"]),
    )?;
    e2e_phase(phases)?;
    // The benchmark's short run, on the debug binaries built above: proves the command and
    // prints its table; the numbers worth quoting come from `cargo xtask bench` (release).
    let out = std::env::temp_dir().join(format!("esox-bench-ci-{}", std::process::id()));
    bench_run(
        phases,
        true,
        true,
        &["--out".to_string(), out.to_string_lossy().into_owned()],
    )
}

/// The decision crates have no I/O: their normal dependencies (as `cargo tree` resolves them
/// for that crate alone) must not include an async runtime, an HTTP stack or the Kubernetes
/// client. `cargo tree` reads the lock file only, so this costs a second.
fn pure_crates_stay_pure() -> Result<(), String> {
    const FORBIDDEN: &[&str] = &["tokio", "hyper", "kube-client", "kube-runtime", "reqwest"];
    for krate in ["esox-sync", "esox-template", "esox-api"] {
        let out = Command::new(cargo())
            .args(["tree", "-p", krate, "-e", "normal", "--prefix", "none"])
            .current_dir(repo())
            .output()
            .map_err(|e| format!("cannot run cargo tree: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo tree -p {krate} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let tree = String::from_utf8_lossy(&out.stdout);
        let found: Vec<&str> = FORBIDDEN
            .iter()
            .copied()
            .filter(|f| tree.lines().any(|l| l.split(' ').next() == Some(*f)))
            .collect();
        if !found.is_empty() {
            return Err(format!(
                "{krate} depends on {} (see `cargo tree -p {krate} -e normal -i {}`): keep I/O out of the pure crates",
                found.join(", "),
                found[0]
            ));
        }
        eprintln!("{krate}: none of {}", FORBIDDEN.join(", "));
    }
    Ok(())
}

fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or("x86_64-unknown-linux-gnu")
        .to_string()
}
