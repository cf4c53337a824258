//! `cargo xtask demo`: the README's quick start against a real local stack.
//!
//! Every value it creates is a throwaway demo value, and it still never prints one: it shows
//! the Secret's keys and sizes and says whether they match what LocalStack holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Phases, repo};

/// Kills a child process (and waits for it) when dropped, so the demo never leaves processes.
struct Guard(Child, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        // SIGTERM first so esox-stack tears its own children down.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("{} did not stop in time; killing it", self.1);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Result<(), String> {
    let started = Instant::now();
    let mut last_note = Instant::now();
    while started.elapsed() < timeout {
        if check() {
            return Ok(());
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            eprintln!(
                "  still waiting for {what} ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
            last_note = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("timed out after {timeout:?} waiting for {what}"))
}

fn read_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

/// The LocalStack venv's python (it has boto3, used to seed and rotate the demo value).
fn venv_python() -> Result<PathBuf, String> {
    let root = std::env::var_os("ESOX_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/esox")))
        .ok_or("no HOME")?
        .join("localstack");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| format!("{}: {e} (run `cargo xtask prepare`)", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/python")))
        .filter(|p| p.exists())
        .collect();
    candidates.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    candidates
        .pop()
        .ok_or_else(|| format!("no LocalStack venv under {}", root.display()))
}

/// Create or update `my-application/database` in LocalStack with a fresh random password.
fn put_demo_secret(python: &Path, endpoint: &str, create: bool) -> Result<(), String> {
    let script = r#"
import boto3, json, secrets, sys
sm = boto3.client("secretsmanager", endpoint_url=sys.argv[1], region_name="eu-central-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
value = json.dumps({"username": "app", "password": secrets.token_urlsafe(16)})
if sys.argv[2] == "create":
    try:
        sm.create_secret(Name="my-application/database", SecretString=value)
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId="my-application/database", SecretString=value)
else:
    sm.put_secret_value(SecretId="my-application/database", SecretString=value)
"#;
    let status = Command::new(python)
        .args([
            "-c",
            script,
            endpoint,
            if create { "create" } else { "rotate" },
        ])
        .status()
        .map_err(|e| format!("python: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("seeding LocalStack failed".into())
    }
}

/// What LocalStack holds now, as (username, password).
fn remote_value(python: &Path, endpoint: &str) -> Option<String> {
    let script = r#"
import boto3, sys
sm = boto3.client("secretsmanager", endpoint_url=sys.argv[1], region_name="eu-central-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
sys.stdout.write(sm.get_secret_value(SecretId="my-application/database")["SecretString"])
"#;
    let out = Command::new(python)
        .args(["-c", script, endpoint])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn run(phases: &mut Phases) -> Result<(), String> {
    // The demo needs the stack only; the test tooling (helm, ESO, Vault) is the suite's.
    crate::prepare_with(phases, true)?;
    let bin = crate::bin_dir();
    let dir = std::env::temp_dir().join(format!("esox-demo-{}", std::process::id()));
    let mut stack = None;
    phases.run(
        "start the local stack (etcd, kube-apiserver, kube-controller-manager, LocalStack)",
        || {
            let child = Command::new(bin.join("esox-stack"))
                .args(["up", "--dir"])
                .arg(&dir)
                .stdin(Stdio::null())
                .spawn()
                .map_err(|e| format!("esox-stack: {e}"))?;
            stack = Some(Guard(child, "esox-stack"));
            wait_for("the stack to be ready", Duration::from_secs(600), || {
                dir.join("ready").exists()
            })
        },
    )?;
    let env = read_env(&dir.join("env"));
    let kubeconfig = env
        .get("KUBECONFIG")
        .cloned()
        .ok_or("the stack wrote no KUBECONFIG")?;
    let controller_kubeconfig = env
        .get("ESOX_CONTROLLER_KUBECONFIG")
        .cloned()
        .ok_or("no controller kubeconfig")?;
    let endpoint = env
        .get("AWS_ENDPOINT_URL")
        .cloned()
        .ok_or("no AWS_ENDPOINT_URL")?;
    let kubectl_bin = env
        .get("ESOX_KUBECTL")
        .cloned()
        .unwrap_or_else(|| "kubectl".into());
    let kubectl = |args: &[&str]| -> Result<String, String> {
        let out = Command::new(&kubectl_bin)
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .map_err(|e| format!("kubectl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let python = venv_python()?;

    phases.run(
        "seed LocalStack and the cluster (CRDs, ServiceAccount with IRSA annotation)",
        || {
            put_demo_secret(&python, &endpoint, true)?;
            kubectl(&["apply", "-f", &repo().join("crds").display().to_string()])?;
            kubectl(&[
                "wait",
                "--for=condition=Established",
                "crd/externalsecrets.external-secrets.io",
                "crd/clustersecretstores.external-secrets.io",
                "--timeout=60s",
            ])?;
            for ns in ["external-secrets", "my-application"] {
                let _ = kubectl(&["create", "namespace", ns]);
            }
            let _ = kubectl(&[
                "-n",
                "external-secrets",
                "create",
                "serviceaccount",
                "external-secrets",
            ]);
            kubectl(&[
                "-n",
                "external-secrets",
                "annotate",
                "--overwrite",
                "serviceaccount",
                "external-secrets",
                "eks.amazonaws.com/role-arn=arn:aws:iam::000000000000:role/esox-demo",
            ])?;
            Ok(())
        },
    )?;

    let mut controller = None;
    phases.run(
        "start the controller (esox run, least-privilege identity, AWS endpoint -> LocalStack)",
        || {
            let log = std::fs::File::create(dir.join("esox.log")).map_err(|e| e.to_string())?;
            let child = Command::new(bin.join("esox"))
                .arg("run")
                .arg("--kubeconfig")
                .arg(&controller_kubeconfig)
                .arg("--plugin-setting")
                .arg(format!("aws:endpoint={endpoint}"))
                .arg("--metrics-addr")
                .arg(format!("127.0.0.1:{}", free_port()))
                .arg("--live-addr")
                .arg(format!("127.0.0.1:{}", free_port()))
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("esox: {e}"))?;
            controller = Some(Guard(child, "esox"));
            eprintln!("controller log: {}", dir.join("esox.log").display());
            Ok(())
        },
    )?;

    let secret_summary = |kubectl: &dyn Fn(&[&str]) -> Result<String, String>| {
        kubectl(&[
            "-n",
            "my-application",
            "get",
            "secret",
            "database-credentials",
            "-o",
            "jsonpath={.metadata.annotations.reconcile\\.external-secrets\\.io/data-hash}",
        ])
    };
    phases.run(
        "apply the README's manifests and wait for the Secret",
        || {
            let examples = repo().join("examples/quickstart");
            kubectl(&[
                "apply",
                "-f",
                &examples
                    .join("cluster-secret-store.yaml")
                    .display()
                    .to_string(),
            ])?;
            kubectl(&[
                "apply",
                "-f",
                &examples.join("external-secret.yaml").display().to_string(),
            ])?;
            wait_for(
                "Secret my-application/database-credentials",
                Duration::from_secs(180),
                || secret_summary(&kubectl).is_ok_and(|h| !h.is_empty()),
            )?;
            eprintln!(
                "{}",
                kubectl(&["get", "clustersecretstores,externalsecrets", "-A"])?
            );
            let keys = kubectl(&[
                "-n",
                "my-application",
                "get",
                "secret",
                "database-credentials",
                "-o",
                "go-template={{range $k, $v := .data}}{{$k}}: {{len $v}} base64 chars\n{{end}}",
            ])?;
            eprintln!("Secret my-application/database-credentials (values not shown):\n{keys}");
            let synced = kubectl(&[
                "-n",
                "my-application",
                "get",
                "secret",
                "database-credentials",
                "-o",
                "go-template={{.data.password | base64decode}}",
            ])?;
            let remote = remote_value(&python, &endpoint).ok_or("cannot read LocalStack")?;
            let matches = remote.contains(&format!("\"password\": \"{synced}\""));
            eprintln!(
                "password matches LocalStack: {}",
                if matches { "yes" } else { "NO" }
            );
            if matches {
                Ok(())
            } else {
                Err("the synced password differs from LocalStack's".into())
            }
        },
    )?;

    phases.run(
        "rotate in LocalStack, force-sync, and watch the Secret follow",
        || {
            let before = secret_summary(&kubectl)?;
            put_demo_secret(&python, &endpoint, false)?;
            kubectl(&[
                "-n",
                "my-application",
                "annotate",
                "--overwrite",
                "externalsecret",
                "database-credentials",
                &format!("force-sync={}", std::process::id()),
            ])?;
            wait_for("the Secret to change", Duration::from_secs(120), || {
                secret_summary(&kubectl).is_ok_and(|h| h != before)
            })?;
            eprintln!(
                "the Secret followed the rotation (data-hash changed; ExternalSecret unchanged)"
            );
            Ok(())
        },
    )?;
    drop(controller);
    drop(stack);
    eprintln!("demo done; logs kept in {}", dir.display());
    Ok(())
}
