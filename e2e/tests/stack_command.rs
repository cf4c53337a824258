//! `esox-stack up`, as the demo script and a person use it: it writes its files, signals
//! readiness with DIR/ready, serves a working cluster, and leaves no process behind when stopped
//! with SIGTERM or killed outright.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

/// Pids of every live process descending from `root` (found through /proc).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = std::collections::HashMap::<u32, Vec<u32>>::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the ")" that closes the command name: state, ppid, ...
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        parents.entry(ppid).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for child in parents.get(&pid).cloned().unwrap_or_default() {
            found.push(child);
            stack.push(child);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    // A zombie has released everything; only count processes still running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

fn start_up(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_esox-stack"))
        .args(["up", "--backend", "local", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for_ready(child: &mut Child, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !dir.join("ready").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "esox-stack up exited before ready"
        );
        assert!(
            Instant::now() < deadline,
            "esox-stack up not ready within 600s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_all_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while pids.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<_> = pids.iter().filter(|pid| alive(**pid)).collect();
    assert!(left.is_empty(), "processes outlived esox-stack: {left:?}");
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn up_writes_kubeconfigs_and_env_then_stops_everything_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_up(dir.path());
    wait_for_ready(&mut child, dir.path());

    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    assert!(env.contains("AWS_ENDPOINT_URL=http://127.0.0.1:"), "{env}");
    assert!(env.contains("AWS_ACCESS_KEY_ID=test\n"), "{env}");
    assert!(env.contains("AWS_SECRET_ACCESS_KEY=test\n"), "{env}");
    assert!(env.contains("AWS_REGION=us-east-1\n"), "{env}");
    assert!(
        env.contains(&format!(
            "KUBECONFIG={}",
            dir.path().join("kubeconfig").display()
        )),
        "{env}"
    );
    assert!(dir.path().join("controller.kubeconfig").is_file());

    let config = esox_e2e::kubeconfig::load(&dir.path().join("kubeconfig"))
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(kube::Client::try_from(config).unwrap());
    assert!(namespaces.get_opt("esox-system").await.unwrap().is_some());

    let children = descendants(child.id());
    assert!(
        children.len() >= 4,
        "expected etcd, apiserver, controller-manager, LocalStack: {children:?}"
    );
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "esox-stack up exited with {status}");
    assert!(
        !dir.path().join("ready").exists(),
        "ready must be removed on teardown"
    );
    assert_all_gone(&children);
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn killing_up_with_sigkill_still_takes_its_processes_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_up(dir.path());
    wait_for_ready(&mut child, dir.path());
    let children = descendants(child.id());
    assert!(children.len() >= 4, "{children:?}");

    child.kill().unwrap(); // SIGKILL: no destructor, no atexit; only PR_SET_PDEATHSIG remains.
    child.wait().unwrap();
    assert_all_gone(&children);
}
