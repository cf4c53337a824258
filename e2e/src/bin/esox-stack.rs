//! `esox-stack`: the harness's stack for people and scripts, like `kind create cluster` for the
//! local backend. `prepare` builds or reuses the prerequisites (CI runs it before the tests so
//! their timings are not hidden inside the first test); `up` runs a stack in the foreground and
//! writes the files a person, a demo script or the `esox` binary need to reach it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use esox_e2e::{Backend, Stack, prereqs};

#[derive(Parser)]
#[command(
    name = "esox-stack",
    about = "Real Kubernetes API + LocalStack for esox tests and demos"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build or reuse the control-plane binaries, the LocalStack venv, helm (chart check), ESO
    /// (benchmark) and Vault (vault e2e suite); print how long each took.
    Prepare {
        /// Only what a stack itself needs (control plane, LocalStack): the demo's case.
        #[arg(long)]
        stack_only: bool,
    },
    /// Build or reuse helm (for the chart check, e2e/tests/helm_chart.rs); print its path.
    Helm,
    /// Start a stack in the foreground; write DIR/kubeconfig, DIR/controller.kubeconfig, DIR/env
    /// and finally DIR/ready; tear everything down on Ctrl-C or SIGTERM.
    Up {
        /// Folder for kubeconfigs, the env file, logs and data (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// `local` or `containers`; default: ESOX_E2E_BACKEND, else containers when a Docker
        /// engine answers, else local.
        #[arg(long)]
        backend: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Prepare { stack_only } => prepare(stack_only),
        Command::Helm => {
            let started = Instant::now();
            let helm = prereqs::ensure_helm()?;
            eprintln!("helm ready in {:.1}s", started.elapsed().as_secs_f64());
            println!("{}", helm.display());
            Ok(())
        }
        Command::Up { dir, backend } => up(&dir, backend).await,
    }
}

fn prepare(stack_only: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let control_plane = prereqs::ensure_control_plane()?;
    let control_plane_secs = started.elapsed().as_secs_f64();
    let venv_started = Instant::now();
    let venv = prereqs::ensure_localstack()?;
    let venv_secs = venv_started.elapsed().as_secs_f64();
    println!(
        "control plane binaries: {} ({control_plane_secs:.1}s)",
        control_plane.display()
    );
    println!(
        "LocalStack venv:        {} ({venv_secs:.1}s)",
        venv.display()
    );
    if !stack_only {
        let helm_started = Instant::now();
        let helm = prereqs::ensure_helm()?;
        println!(
            "helm (chart checks):    {} ({:.1}s)",
            helm.display(),
            helm_started.elapsed().as_secs_f64()
        );
        let eso_started = Instant::now();
        let eso = prereqs::ensure_eso()?;
        println!(
            "ESO {} (benchmark):  {} ({:.1}s)",
            prereqs::ESO_VERSION,
            eso.display(),
            eso_started.elapsed().as_secs_f64()
        );
        let vault_started = Instant::now();
        let vault = prereqs::ensure_vault()?;
        println!(
            "Vault {} (vault e2e):  {} ({:.1}s)",
            prereqs::VAULT_VERSION,
            vault.display(),
            vault_started.elapsed().as_secs_f64()
        );
    }
    println!("prepare total: {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

async fn up(dir: &Path, backend: Option<String>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let ready = dir.join("ready");
    // Leftovers of an earlier run would be mistaken for this one.
    for stale in ["ready", "env", "etcd", "localstack"] {
        let path = dir.join(stale);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir_all(&path);
    }
    let backend = match backend.as_deref() {
        Some("local") => Backend::Local,
        Some("containers") => Backend::Containers,
        Some(other) => anyhow::bail!("--backend {other}: use `local` or `containers`"),
        None => Backend::from_env()?,
    };
    let stack = Stack::start(backend, &dir).await?;
    let env = dir.join("env");
    write(&env, &stack.env_file_contents())?;
    println!("esox-stack: {} backend is up", stack.backend());
    println!(
        "  {}  admin kubeconfig",
        stack.admin_kubeconfig_path().display()
    );
    println!(
        "  {}  the controller's least-privilege identity (esox-system/esox)",
        stack.controller_kubeconfig_path().display()
    );
    println!(
        "  {}  AWS_ENDPOINT_URL={} and test credentials",
        env.display(),
        stack.localstack_endpoint()
    );
    println!("  {}  process logs", dir.join("logs").display());
    if let Some(kubectl) = stack.kubectl() {
        println!(
            "  try: KUBECONFIG={} {} get namespaces",
            stack.admin_kubeconfig_path().display(),
            kubectl.display()
        );
    }
    println!("  or: set -a; . {}; set +a", env.display());
    println!("Ctrl-C (or SIGTERM) stops everything.");
    write(&ready, "")?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stack = stack;
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    let outcome = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
            _ = ticker.tick() => {
                if let Some(why) = stack.exited_process() {
                    break Err(anyhow::anyhow!("{why}; tearing down"));
                }
            }
        }
    };
    let _ = std::fs::remove_file(&ready);
    println!("esox-stack: stopping");
    drop(stack);
    outcome
}
