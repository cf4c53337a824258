//! The local backend's prerequisites, built or installed once into a versioned cache folder and
//! reused afterwards: the control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
//! kubectl) built from Go modules, and a LocalStack virtualenv from pinned Python requirements.
//!
//! Go and Python are test tooling only; nothing here is shipped. Every build goes to a temporary
//! name and is renamed into place when complete, so an interrupted build is never taken as done,
//! and a file lock keeps two test binaries from building the same thing at once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The Kubernetes version the control-plane binaries are built from (k8s.io/kubernetes tag).
pub const KUBERNETES_VERSION: &str = "v1.37.2";
/// The etcd version: the one k8s.io/kubernetes v1.37.2 itself requires, so both share one
/// Go dependency graph in `e2e/tools/go.mod`.
pub const ETCD_VERSION: &str = "v3.7.0";
/// The LocalStack version pinned in `e2e/localstack/requirements.txt`.
pub const LOCALSTACK_VERSION: &str = "4.9.2";

/// Binaries the local backend needs in its assets folder.
pub const CONTROL_PLANE_BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
];

/// Why a prerequisite could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum PrereqError {
    #[error("cannot find a cache folder: set ESOX_CACHE_DIR (or HOME) to a writable folder")]
    NoCacheDir,
    #[error("{what}: {source}; check that {path} is writable and the disk has space")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{tool}` is not runnable ({source}); install it (Go 1.26+ for the control plane, Python \
         3.11 with venv for LocalStack) or, for the control plane, point KUBEBUILDER_ASSETS at \
         a folder holding etcd, kube-apiserver and kube-controller-manager"
    )]
    ToolMissing {
        tool: String,
        source: std::io::Error,
    },
    #[error(
        "`{step}` failed ({status}); its last output lines:\n{tail}\nFix the cause and rerun: the half-built result was discarded"
    )]
    StepFailed {
        step: String,
        status: String,
        tail: String,
    },
    #[error("{path} is missing; set ESOX_E2E_SOURCE_DIR to the e2e/ folder of an esox checkout")]
    SourceMissing { path: PathBuf },
}

type Result<T> = std::result::Result<T, PrereqError>;

/// The cache root: `$ESOX_CACHE_DIR`, else `~/.cache/esox`.
pub fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("ESOX_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache").join("esox"))
        .ok_or(PrereqError::NoCacheDir)
}

/// The e2e/ source folder (holding `tools/` and `localstack/`): `$ESOX_E2E_SOURCE_DIR`, else the
/// folder this crate was compiled from.
pub fn source_dir() -> PathBuf {
    std::env::var_os("ESOX_E2E_SOURCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The versioned folder name for the control-plane binaries.
pub fn control_plane_dir_name() -> String {
    format!("k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}")
}

fn has_binaries(dir: &Path, names: &[&str]) -> bool {
    names.iter().all(|name| dir.join(name).is_file())
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PrereqError {
    let path = path.to_path_buf();
    move |source| PrereqError::Io { what, path, source }
}

/// Returns a folder holding `etcd`, `kube-apiserver`, `kube-controller-manager` and `kubectl`.
///
/// Order: `$KUBEBUILDER_ASSETS` when it holds etcd, kube-apiserver and kube-controller-manager
/// (envtest's downloads lack the controller-manager, so those are not enough); else
/// `<cache>/assets/k8s-v1.37.2-etcd-v3.7.0/` when complete; else that folder is built with
/// `go build` from `e2e/tools/` (cold: tens of minutes on two cores, progress on stderr).
pub fn ensure_control_plane() -> Result<PathBuf> {
    if let Some(assets) = std::env::var_os("KUBEBUILDER_ASSETS") {
        let assets = PathBuf::from(assets);
        if has_binaries(&assets, &CONTROL_PLANE_BINARIES[..3]) {
            eprintln!(
                "[esox-e2e] control plane: using KUBEBUILDER_ASSETS={}",
                assets.display()
            );
            return Ok(assets);
        }
        eprintln!(
            "[esox-e2e] control plane: KUBEBUILDER_ASSETS={} lacks one of etcd, kube-apiserver, \
             kube-controller-manager (envtest ships no controller-manager); using the pinned build",
            assets.display()
        );
    }
    let assets_root = cache_root()?.join("assets");
    let dir = assets_root.join(control_plane_dir_name());
    if has_binaries(&dir, &CONTROL_PLANE_BINARIES) {
        eprintln!("[esox-e2e] control plane: reusing {}", dir.display());
        return Ok(dir);
    }
    std::fs::create_dir_all(&assets_root)
        .map_err(io_err("create the assets folder", &assets_root))?;
    let _lock = FileLock::acquire(&assets_root.join(".build.lock"))?;
    if has_binaries(&dir, &CONTROL_PLANE_BINARIES) {
        eprintln!(
            "[esox-e2e] control plane: built meanwhile by another process, reusing {}",
            dir.display()
        );
        return Ok(dir);
    }
    let tools = source_dir().join("tools");
    if !tools.join("go.mod").is_file() {
        return Err(PrereqError::SourceMissing {
            path: tools.join("go.mod"),
        });
    }
    run_quiet_probe("go", &["version"])?;

    let tmp = assets_root.join(format!(
        ".{}.tmp-{}",
        control_plane_dir_name(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_err("create the build folder", &tmp))?;
    let started = Instant::now();
    eprintln!(
        "[esox-e2e] control plane: building etcd {ETCD_VERSION}, kube-apiserver, \
         kube-controller-manager and kubectl {KUBERNETES_VERSION} with `go build` into {}.\n\
         [esox-e2e] This is slow only the first time: about 15-30 minutes on 2 cores when Go's \
         module and build caches are cold (downloads ~500 MB of modules), then reused.",
        dir.display()
    );

    let mut download = Command::new("go");
    download.args(["mod", "download", "-x"]).current_dir(&tools);
    run_with_progress("go mod download", download, "module downloads", |line| {
        line.starts_with("# get ") && !line.contains("@v/list")
    })?;
    eprintln!(
        "[esox-e2e] control plane: modules ready after {:.0?}",
        started.elapsed()
    );

    let ldflags = format!(
        "-s -w -X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION} \
         -X k8s.io/component-base/version.gitMajor=1 \
         -X k8s.io/component-base/version.gitMinor=37 \
         -X k8s.io/client-go/pkg/version.gitVersion={KUBERNETES_VERSION}"
    );
    let mut out_arg = tmp.clone().into_os_string();
    out_arg.push("/");
    let mut build = Command::new("go");
    build
        .arg("build")
        .arg("-v")
        .arg("-trimpath")
        .arg("-o")
        .arg(out_arg)
        .arg("-ldflags")
        .arg(ldflags)
        .args([
            "go.etcd.io/etcd/server/v3",
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kubectl",
        ])
        .current_dir(&tools);
    // `go build -v` prints one line per package it compiles (about 2,500 when cold).
    run_with_progress("go build", build, "packages compiled", |line| {
        !line.starts_with('#') && !line.contains(' ')
    })?;

    // `go build -o dir/` names the etcd main package after its path ("server" for .../server/v3).
    if !tmp.join("etcd").is_file() {
        for candidate in ["server", "v3"] {
            if tmp.join(candidate).is_file() {
                std::fs::rename(tmp.join(candidate), tmp.join("etcd"))
                    .map_err(io_err("rename the etcd binary", &tmp))?;
                break;
            }
        }
    }
    if !has_binaries(&tmp, &CONTROL_PLANE_BINARIES) {
        return Err(PrereqError::StepFailed {
            step: "go build".into(),
            status: "succeeded but a binary is missing".into(),
            tail: format!("expected {CONTROL_PLANE_BINARIES:?} in {}", tmp.display()),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io_err("move the finished build into place", &dir))?;
    eprintln!(
        "[esox-e2e] control plane: built in {:.0?} -> {}",
        started.elapsed(),
        dir.display()
    );
    Ok(dir)
}

/// The pinned requirements and the constraints file that freezes their dependencies.
fn localstack_requirement_files() -> Result<(PathBuf, PathBuf)> {
    let dir = source_dir().join("localstack");
    let requirements = dir.join("requirements.txt");
    let constraints = dir.join("constraints.txt");
    for path in [&requirements, &constraints] {
        if !path.is_file() {
            return Err(PrereqError::SourceMissing { path: path.clone() });
        }
    }
    Ok((requirements, constraints))
}

/// The venv folder name: LocalStack version and the first 12 hex digits of
/// sha256(requirements.txt ++ constraints.txt), so changing a pin makes a new venv.
pub fn localstack_dir_name() -> Result<String> {
    let (requirements, constraints) = localstack_requirement_files()?;
    let mut hasher = Sha256::new();
    for path in [&requirements, &constraints] {
        hasher.update(std::fs::read(path).map_err(io_err("read the LocalStack pins", path))?);
    }
    let digest = hex::encode(hasher.finalize());
    Ok(format!("{LOCALSTACK_VERSION}-{}", &digest[..12]))
}

/// Returns a virtualenv with LocalStack installed (run it as `<venv>/bin/python -m
/// localstack.runtime.main`).
///
/// Reuses `<cache>/localstack/<version>-<hash>/` when present; else creates it with
/// `python3 -m venv` and pip from `e2e/localstack/requirements.txt` constrained by
/// `constraints.txt` (cold: a few minutes, mostly downloads). `$ESOX_PYTHON` picks the
/// interpreter (default `python3`; LocalStack 4.9.2 needs 3.11).
pub fn ensure_localstack() -> Result<PathBuf> {
    let root = cache_root()?.join("localstack");
    let name = localstack_dir_name()?;
    let dir = root.join(&name);
    let python = |venv: &Path| venv.join("bin").join("python");
    if python(&dir).is_file() {
        eprintln!("[esox-e2e] LocalStack: reusing {}", dir.display());
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).map_err(io_err("create the LocalStack cache folder", &root))?;
    let _lock = FileLock::acquire(&root.join(".install.lock"))?;
    if python(&dir).is_file() {
        eprintln!(
            "[esox-e2e] LocalStack: installed meanwhile by another process, reusing {}",
            dir.display()
        );
        return Ok(dir);
    }
    let base_python = std::env::var("ESOX_PYTHON").unwrap_or_else(|_| "python3".into());
    run_quiet_probe(&base_python, &["-c", "import venv"])?;
    let (requirements, constraints) = localstack_requirement_files()?;
    let tmp = root.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let started = Instant::now();
    eprintln!(
        "[esox-e2e] LocalStack: installing localstack-core {LOCALSTACK_VERSION} into {} \
         (about 2-5 minutes the first time, mostly downloads from PyPI; reused afterwards)",
        dir.display()
    );
    let mut venv = Command::new(&base_python);
    venv.arg("-m").arg("venv").arg(&tmp);
    run_with_progress("python3 -m venv", venv, "lines", |_| false)?;
    let mut pip = Command::new(python(&tmp));
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-r",
    ])
    .arg(&requirements)
    .arg("-c")
    .arg(&constraints);
    run_with_progress("pip install", pip, "packages fetched", |line| {
        line.trim_start().starts_with("Downloading ")
            || line.trim_start().starts_with("Using cached ")
    })?;
    let mut check = Command::new(python(&tmp));
    check.args(["-c", "import localstack.runtime.main"]);
    run_with_progress("import localstack", check, "lines", |_| false)?;
    let _ = std::fs::remove_dir_all(&dir);
    // A venv only records its own path in activate scripts and console-script shebangs; the
    // harness runs `bin/python -m ...`, which finds its packages from wherever it lives.
    std::fs::rename(&tmp, &dir).map_err(io_err("move the finished venv into place", &dir))?;
    eprintln!(
        "[esox-e2e] LocalStack: installed in {:.0?} -> {}",
        started.elapsed(),
        dir.display()
    );
    Ok(dir)
}

/// The Helm version the chart check builds (helm.sh/helm/v3, a release on the Go module proxy).
/// v3.22.0 is built against k8s.io/client-go v0.37, the control plane's minor.
pub const HELM_VERSION: &str = "v3.22.0";

/// The versioned folder name for the helm binary.
pub fn helm_dir_name() -> String {
    format!("helm-{HELM_VERSION}")
}

/// Returns the path of a `helm` binary (for the chart check in `e2e/tests/helm_chart.rs`).
///
/// Order: `$ESOX_HELM` when it names a file; else `<cache>/assets/helm-v3.22.0/helm` when
/// present; else it is built there with `go install helm.sh/helm/v3/cmd/helm@v3.22.0`
/// (module-checksum verified; with the ldflags of Helm's Makefile, so `helm version` and the
/// default Kubernetes version of `helm template` are right). Cold: about 100 s on two cores,
/// mostly compiling; progress on stderr.
pub fn ensure_helm() -> Result<PathBuf> {
    let (dir, tmp, _lock) = match locate_tool("helm", "ESOX_HELM", &helm_dir_name(), "helm", |d| {
        d.join("helm").is_file()
    })? {
        Tool::Ready(helm) => return Ok(helm),
        Tool::Build { dir, tmp, _lock } => (dir, tmp, _lock),
    };
    let helm = dir.join("helm");
    let started = Instant::now();
    eprintln!(
        "[esox-e2e] helm: building helm {HELM_VERSION} with `go install` into {}.\n\
         [esox-e2e] This is slow only the first time: about 2 minutes on 2 cores when Go's \
         module and build caches are cold (downloads ~110 modules), then reused.",
        dir.display()
    );
    let minor = KUBERNETES_VERSION
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .unwrap_or("37");
    let ldflags = format!(
        "-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION} \
         -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
         -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
         -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor} \
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}"
    );
    let mut install = Command::new("go");
    install
        .arg("install")
        .arg("-v")
        .arg("-trimpath")
        .arg("-ldflags")
        .arg(ldflags)
        .arg(format!("helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"))
        // `go install pkg@version` ignores any enclosing module; an empty folder makes sure.
        .current_dir(&tmp)
        .env("GOBIN", &tmp);
    // `go install -v` prints one line per package it compiles (about 950 when cold) and
    // "go: downloading ..." per module fetched.
    run_with_progress(
        "go install helm",
        install,
        "packages compiled or modules fetched",
        |line| {
            line.starts_with("go: downloading ") || (!line.starts_with('#') && !line.contains(' '))
        },
    )?;
    if !tmp.join("helm").is_file() {
        return Err(PrereqError::StepFailed {
            step: "go install helm".into(),
            status: "succeeded but the binary is missing".into(),
            tail: format!("expected helm in {}", tmp.display()),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io_err("move the finished build into place", &dir))?;
    eprintln!(
        "[esox-e2e] helm: built in {:.0?} -> {}",
        started.elapsed(),
        helm.display()
    );
    Ok(helm)
}

/// The External Secrets Operator release the side-by-side benchmark runs (`bench/`): a module on
/// the Go module proxy, built here as test tooling only; nothing of it is shipped.
pub const ESO_VERSION: &str = "v0.16.2";

/// The versioned folder name for the ESO controller binary (`-fakelock`: see [`ensure_eso`]).
pub fn eso_dir_name() -> String {
    format!("eso-{ESO_VERSION}-fakelock")
}

/// Where ESO v0.16.2's fake provider writes a map shared by every client without a lock
/// (`fatal error: concurrent map writes` with `--concurrent` > 1), and what the benchmark's build
/// puts there: the same function body under a package mutex, handing each client its own copy
/// of the store's data so later `NewClient` calls cannot race with its reads.
const ESO_FAKE_FILE: &str = "pkg/provider/fake/fake.go";
const ESO_FAKE_UNGUARDED: &str = "func (p *Provider) NewClient(_ context.Context, store esv1.GenericStore, _ client.Client, _ string) (esv1.SecretsClient, error) {\n\tif p.database == nil {";
const ESO_FAKE_GUARDED: &str = "var esoxBenchNewClientMu sync.Mutex\n\nfunc (p *Provider) NewClient(ctx context.Context, store esv1.GenericStore, kube client.Client, ns string) (esv1.SecretsClient, error) {\n\tesoxBenchNewClientMu.Lock()\n\tdefer esoxBenchNewClientMu.Unlock()\n\tsc, err := p.newClientUnguarded(ctx, store, kube, ns)\n\tif err != nil {\n\t\treturn nil, err\n\t}\n\tshared := sc.(*Provider).config\n\tcopied := make(Config, len(shared))\n\tfor k, v := range shared {\n\t\td := *v\n\t\tcopied[k] = &d\n\t}\n\treturn &Provider{config: copied}, nil\n}\n\nfunc (p *Provider) newClientUnguarded(_ context.Context, store esv1.GenericStore, _ client.Client, _ string) (esv1.SecretsClient, error) {\n\tif p.database == nil {";

/// Rewrites ESO's fake provider source as described at [`ESO_FAKE_UNGUARDED`]; fails loudly when
/// the source is not the one this patch was written for.
pub fn guard_eso_fake_provider(source: &str) -> std::result::Result<String, String> {
    if source.matches(ESO_FAKE_UNGUARDED).count() != 1 {
        return Err(format!(
            "{ESO_FAKE_FILE} of ESO {ESO_VERSION} no longer has the unguarded NewClient the benchmark patches"
        ));
    }
    let patched = source.replacen(ESO_FAKE_UNGUARDED, ESO_FAKE_GUARDED, 1);
    let patched = patched.replacen("\t\"strings\"\n", "\t\"strings\"\n\t\"sync\"\n", 1);
    if !patched.contains("\t\"sync\"\n") {
        return Err(format!("{ESO_FAKE_FILE}: cannot add the `sync` import"));
    }
    Ok(patched)
}

/// Returns the path of an ESO controller binary (`external-secrets` v0.16.2) for the side-by-side
/// benchmark.
///
/// Order: `$ESOX_ESO_BINARY` when it names a file; else `<cache>/assets/eso-v0.16.2-fakelock/`
/// when present; else it is built there: `go mod download` of
/// `github.com/external-secrets/external-secrets@v0.16.2` (checksum-verified by Go's sum
/// database), a copy of that module with [`guard_eso_fake_provider`] applied, `go build` of its
/// main package. The folder also receives ESO's CRDs (`crds/`, from the same module). Cold: about
/// 10 minutes on two cores (ESO links every provider's SDK); progress on stderr.
pub fn ensure_eso() -> Result<PathBuf> {
    let (dir, tmp, _lock) = match locate_tool(
        "ESO",
        "ESOX_ESO_BINARY",
        &eso_dir_name(),
        "external-secrets",
        |d| d.join("external-secrets").is_file() && d.join("crds").is_dir(),
    )? {
        Tool::Ready(binary) => return Ok(binary),
        Tool::Build { dir, tmp, _lock } => (dir, tmp, _lock),
    };
    let binary = dir.join("external-secrets");
    let started = Instant::now();
    eprintln!(
        "[esox-e2e] ESO: building external-secrets {ESO_VERSION} (benchmark tooling) into {}.\n\
         [esox-e2e] This is slow only the first time: about 10 minutes on 2 cores when Go's \
         module and build caches are cold (~1 GB of modules: ESO links every provider), then reused.",
        dir.display()
    );
    let src = module_source(
        &format!("github.com/external-secrets/external-secrets@{ESO_VERSION}"),
        &tmp,
    )?;
    let fake = src.join(ESO_FAKE_FILE);
    let source =
        std::fs::read_to_string(&fake).map_err(io_err("read ESO's fake provider", &fake))?;
    let patched = guard_eso_fake_provider(&source).map_err(|why| PrereqError::StepFailed {
        step: "patch ESO's fake provider".into(),
        status: "source changed".into(),
        tail: why,
    })?;
    std::fs::write(&fake, patched).map_err(io_err("write ESO's fake provider", &fake))?;
    let mut build = Command::new("go");
    build
        .args(["build", "-v", "-trimpath", "-ldflags", "-s -w", "-o"])
        .arg(tmp.join("external-secrets"))
        .arg(".")
        .current_dir(&src);
    run_with_progress(
        "go build external-secrets",
        build,
        "packages compiled or modules fetched",
        |line| {
            line.starts_with("go: downloading ") || (!line.starts_with('#') && !line.contains(' '))
        },
    )?;
    copy_tree(
        &src.join("config").join("crds").join("bases"),
        &tmp.join("crds"),
    )?;
    // Only the CRDs: the folder also holds a kustomization.
    let _ = std::fs::remove_file(tmp.join("crds").join("kustomization.yaml"));
    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io_err("move the finished build into place", &dir))?;
    eprintln!(
        "[esox-e2e] ESO: built in {:.0?} -> {}",
        started.elapsed(),
        binary.display()
    );
    Ok(binary)
}

/// The Vault release the vault provider's e2e suite runs against: a module on the Go module
/// proxy, built here as test tooling only; nothing of it is shipped.
pub const VAULT_VERSION: &str = "v1.21.0";

/// The versioned folder name for the vault binary.
pub fn vault_dir_name() -> String {
    format!("vault-{VAULT_VERSION}")
}

/// Vault's nested modules its go.mod replaces with folders of its repository; the module zip
/// on the proxy leaves those folders out, so the build takes their published versions (the
/// ones its go.mod requires) instead.
pub const VAULT_NESTED_MODULES: [&str; 5] = [
    "github.com/hashicorp/vault/api",
    "github.com/hashicorp/vault/api/auth/approle",
    "github.com/hashicorp/vault/api/auth/kubernetes",
    "github.com/hashicorp/vault/api/auth/userpass",
    "github.com/hashicorp/vault/sdk",
];

/// Returns the path of a `vault` binary (HashiCorp Vault v1.21.0, for the vault provider's e2e
/// suite, which runs it in dev mode).
///
/// Order: `$ESOX_VAULT` when it names a file; else `<cache>/assets/vault-v1.21.0/vault` when
/// present; else it is built there: `go mod download` of `github.com/hashicorp/vault@v1.21.0`
/// (checksum-verified by Go's sum database), a copy of that module with the replace directives
/// of its nested modules dropped ([`VAULT_NESTED_MODULES`]), `go build` of its main package.
/// Cold: about 10 minutes on two cores (Vault links every built-in plugin); progress on stderr.
pub fn ensure_vault() -> Result<PathBuf> {
    let (dir, tmp, _lock) =
        match locate_tool("vault", "ESOX_VAULT", &vault_dir_name(), "vault", |d| {
            d.join("vault").is_file()
        })? {
            Tool::Ready(vault) => return Ok(vault),
            Tool::Build { dir, tmp, _lock } => (dir, tmp, _lock),
        };
    let binary = dir.join("vault");
    let started = Instant::now();
    eprintln!(
        "[esox-e2e] vault: building Vault {VAULT_VERSION} (e2e tooling) into {}.\n\
         [esox-e2e] This is slow only the first time: about 10 minutes on 2 cores when Go's \
         module and build caches are cold (Vault links its built-in plugins), then reused.",
        dir.display()
    );
    let src = module_source(&format!("github.com/hashicorp/vault@{VAULT_VERSION}"), &tmp)?;
    let mut edit = Command::new("go");
    edit.arg("mod").arg("edit");
    for nested in VAULT_NESTED_MODULES {
        edit.arg(format!("-dropreplace={nested}"));
    }
    let edited = edit
        .current_dir(&src)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PrereqError::ToolMissing {
            tool: "go".into(),
            source,
        })?;
    if !edited.status.success() {
        return Err(PrereqError::StepFailed {
            step: "go mod edit -dropreplace (vault's nested modules)".into(),
            status: edited.status.to_string(),
            tail: String::from_utf8_lossy(&edited.stderr).into_owned(),
        });
    }
    let mut build = Command::new("go");
    build
        .args(["build", "-v", "-ldflags", "-s -w", "-o"])
        .arg(tmp.join("vault"))
        .arg(".")
        .current_dir(&src)
        .env("GOFLAGS", "-mod=mod");
    run_with_progress(
        "go build vault",
        build,
        "packages compiled or modules fetched",
        |line| {
            line.starts_with("go: downloading ") || (!line.starts_with('#') && !line.contains(' '))
        },
    )?;
    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io_err("move the finished build into place", &dir))?;
    eprintln!(
        "[esox-e2e] vault: built in {:.0?} -> {}",
        started.elapsed(),
        binary.display()
    );
    Ok(binary)
}

/// ESO's CRDs (from the same module as the binary): `crds/` beside [`ensure_eso`]'s binary.
pub fn eso_crds_dir(binary: &Path) -> PathBuf {
    binary
        .parent()
        .map(|d| d.join("crds"))
        .unwrap_or_else(|| PathBuf::from("crds"))
}

/// `go mod download` of `module` (`path@version`, checksum-verified by Go's sum database) and a
/// writable copy of its source in `tmp/src` (Go's module cache is read-only); returns that copy.
fn module_source(module: &str, tmp: &Path) -> Result<PathBuf> {
    let output = Command::new("go")
        .args(["mod", "download", "-json", module])
        .current_dir(tmp)
        .env("GOFLAGS", "-mod=mod")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PrereqError::ToolMissing {
            tool: "go".into(),
            source,
        })?;
    if !output.status.success() {
        return Err(PrereqError::StepFailed {
            step: format!("go mod download {module}"),
            status: output.status.to_string(),
            tail: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let info: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| PrereqError::StepFailed {
            step: format!("go mod download {module}"),
            status: "printed no JSON".into(),
            tail: e.to_string(),
        })?;
    let module_dir = PathBuf::from(info["Dir"].as_str().unwrap_or_default());
    let src = tmp.join("src");
    copy_tree(&module_dir, &src)?;
    Ok(src)
}

/// Where a test tool built from a Go module into `<cache>/assets/<dir_name>/` comes from.
enum Tool {
    /// `$var` names a file, or the cached build is complete: use it.
    Ready(PathBuf),
    /// Build it: into `tmp`, then move it to `dir`; `_lock` (the tool's own) is held meanwhile.
    Build {
        dir: PathBuf,
        tmp: PathBuf,
        _lock: FileLock,
    },
}

/// The override in `$var` when it names a file; else `dir/binary` when `complete(dir)`
/// (checked again under the tool's own lock, so concurrent runs build once); else an empty
/// build folder beside it, once `go` is known to run. `label` names the tool in the messages.
fn locate_tool(
    label: &str,
    var: &str,
    dir_name: &str,
    binary: &str,
    complete: impl Fn(&Path) -> bool,
) -> Result<Tool> {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        if path.is_file() {
            eprintln!("[esox-e2e] {label}: using {var}={}", path.display());
            return Ok(Tool::Ready(path));
        }
        eprintln!(
            "[esox-e2e] {label}: {var}={} is not a file; using the pinned build",
            path.display()
        );
    }
    let assets_root = cache_root()?.join("assets");
    let dir = assets_root.join(dir_name);
    let found = dir.join(binary);
    if complete(&dir) {
        eprintln!("[esox-e2e] {label}: reusing {}", found.display());
        return Ok(Tool::Ready(found));
    }
    std::fs::create_dir_all(&assets_root)
        .map_err(io_err("create the assets folder", &assets_root))?;
    // Its own lock: building one tool need not wait for another's build.
    let lock = FileLock::acquire(&assets_root.join(format!(".{}.lock", label.to_lowercase())))?;
    if complete(&dir) {
        eprintln!(
            "[esox-e2e] {label}: built meanwhile by another process, reusing {}",
            found.display()
        );
        return Ok(Tool::Ready(found));
    }
    run_quiet_probe("go", &["version"])?;
    let tmp = assets_root.join(format!(".{dir_name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_err("create the build folder", &tmp))?;
    Ok(Tool::Build {
        dir,
        tmp,
        _lock: lock,
    })
}

/// Copies a folder tree (files made writable: Go's module cache is read-only).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io_err("create a folder", to))?;
    for entry in std::fs::read_dir(from).map_err(io_err("read a folder", from))? {
        let entry = entry.map_err(io_err("read a folder", from))?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io_err("read a folder", from))?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(io_err("copy a file", &target))?;
            let mut perms = std::fs::metadata(&target)
                .map_err(io_err("copy a file", &target))?
                .permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).map_err(io_err("copy a file", &target))?;
        }
    }
    Ok(())
}

fn run_quiet_probe(tool: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| PrereqError::ToolMissing {
            tool: tool.into(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(PrereqError::ToolMissing {
            tool: format!("{tool} {}", args.join(" ")),
            source: std::io::Error::other(status.to_string()),
        })
    }
}

/// Runs a build step, counting output lines that `counts` matches and printing a heartbeat with
/// that count every 30 s; on failure returns the last 40 lines.
fn run_with_progress(
    step: &str,
    mut command: Command,
    unit: &str,
    counts: fn(&str) -> bool,
) -> Result<()> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().map_err(|source| PrereqError::ToolMissing {
        tool: program,
        source,
    })?;
    let started = Instant::now();
    let count = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let heartbeat = {
        let (count, done, step, unit) = (
            count.clone(),
            done.clone(),
            step.to_owned(),
            unit.to_owned(),
        );
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(250));
                if last.elapsed() >= Duration::from_secs(30) {
                    last = Instant::now();
                    eprintln!(
                        "[esox-e2e]   {step}: {} {unit}, {}s elapsed",
                        count.load(Ordering::SeqCst),
                        started.elapsed().as_secs()
                    );
                }
            }
        })
    };
    let tail = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    let mut readers = Vec::new();
    let streams: Vec<Box<dyn std::io::Read + Send>> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    for stream in streams {
        let (tail, count) = (tail.clone(), count.clone());
        // Both pipes are drained concurrently so neither can fill up and stall the child.
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                if counts(&line) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                if let Ok(mut tail) = tail.lock() {
                    tail.push_back(line);
                    if tail.len() > 40 {
                        tail.pop_front();
                    }
                }
            }
        }));
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait();
    done.store(true, Ordering::SeqCst);
    let _ = heartbeat.join();
    let counted = count.load(Ordering::SeqCst);
    let status = status.map_err(|source| PrereqError::ToolMissing {
        tool: step.into(),
        source,
    })?;
    if status.success() {
        eprintln!(
            "[esox-e2e]   {step}: done in {}s ({counted} {unit})",
            started.elapsed().as_secs()
        );
        Ok(())
    } else {
        let tail = tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default();
        Err(PrereqError::StepFailed {
            step: step.into(),
            status: status.to_string(),
            tail,
        })
    }
}

/// An exclusive `flock` on a file, released on drop.
struct FileLock {
    file: std::fs::File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err("open the build lock", path))?;
        // SAFETY: flock on a descriptor this value owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            eprintln!(
                "[esox-e2e] waiting for another process building into this cache ({})",
                path.display()
            );
            // SAFETY: as above, now blocking.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(PrereqError::Io {
                    what: "lock the cache folder",
                    path: path.to_path_buf(),
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        Ok(Self { file })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking our own descriptor.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_plane_folder_names_both_pinned_versions() {
        assert_eq!(control_plane_dir_name(), "k8s-v1.37.2-etcd-v3.7.0");
    }

    #[test]
    fn localstack_folder_is_version_plus_short_hash_of_the_pins() {
        let name = localstack_dir_name().unwrap();
        let (version, hash) = name.split_once('-').unwrap();
        assert_eq!(version, "4.9.2");
        assert_eq!(hash.len(), 12);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn requirements_pin_the_localstack_version_the_harness_names() {
        let (requirements, constraints) = localstack_requirement_files().unwrap();
        let requirements = std::fs::read_to_string(requirements).unwrap();
        let constraints = std::fs::read_to_string(constraints).unwrap();
        assert!(requirements.contains(&format!("localstack-core[runtime]=={LOCALSTACK_VERSION}")));
        assert!(constraints.contains(&format!("localstack-core=={LOCALSTACK_VERSION}")));
    }

    #[test]
    fn eso_fake_provider_patch_applies_to_the_shape_it_was_written_for() {
        let source = "import (\n\t\"strings\"\n)\n\n".to_string() + ESO_FAKE_UNGUARDED + "\n}\n";
        let patched = guard_eso_fake_provider(&source).unwrap();
        assert!(patched.contains("esoxBenchNewClientMu.Lock()"));
        assert!(patched.contains("\t\"sync\"\n"));
        assert!(patched.contains("newClientUnguarded"));
        assert!(guard_eso_fake_provider("package fake").is_err());
        assert!(
            guard_eso_fake_provider(&patched).is_err(),
            "never patched twice"
        );
    }

    #[test]
    fn helm_folder_names_the_pinned_version() {
        assert_eq!(helm_dir_name(), "helm-v3.22.0");
    }

    #[test]
    fn tools_go_mod_pins_the_versions_the_harness_names() {
        let go_mod = std::fs::read_to_string(source_dir().join("tools/go.mod")).unwrap();
        assert!(go_mod.contains(&format!("k8s.io/kubernetes {KUBERNETES_VERSION}")));
        assert!(go_mod.contains(&format!("go.etcd.io/etcd/server/v3 {ETCD_VERSION}")));
        assert!(go_mod.contains("k8s.io/apiserver => k8s.io/apiserver v0.37.2"));
    }
}
