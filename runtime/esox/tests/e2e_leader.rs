//! Leader election and shutdown on the real stack, with several `esox run` processes under the
//! controller's least-privilege identity (deploy/rbac.yaml grants the Lease):
//!
//! 1. two replicas: exactly one leads and writes, the other stands by (and is ready);
//! 2. SIGKILL the leader: the standby takes over within the lease duration (printed; the
//!    default lease is 12 s) and syncs a changed value; the Secret was written exactly twice in
//!    all (create, then the change): no double writes;
//! 3. SIGTERM an idle leader: it exits at once and releases the lease;
//! 4. SIGTERM a leader with a plugin call hanging (the hostile fixture's `sleep` key): it still
//!    exits within `--shutdown-timeout`, instead of waiting out the 30 s call.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esox_e2e::{ManagedProcess, Stack};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::watcher;
use serde_json::json;
use support::*;

const LEASE_NAMESPACE: &str = "esox-system";
const LEASE: &str = "esox-e2e-leader";

/// One replica, with leader election on and the default lease settings.
fn replica(stack: &Stack, name: &str) -> ManagedProcess {
    let mut cmd = esox_run(stack, "info,esox=debug,esox_controller=debug");
    cmd.args([
        "--enable-leader-election",
        "--leader-election-namespace",
        LEASE_NAMESPACE,
        "--leader-election-id",
        LEASE,
        "--shutdown-timeout",
        "3s",
        // Arguments from an ESO Deployment: accepted, reported at start.
        "--zap-time-encoding=epoch",
        "--enable-managed-secrets-caching=true",
        "--enable-cluster-store-reconciler",
        "--plugin-dir",
    ])
    .arg(plugin_dir_with("esox_fixture_hostile.wasm"));
    ManagedProcess::spawn(name, cmd).unwrap()
}

fn log_of(p: &ManagedProcess) -> String {
    std::fs::read_to_string(p.log_path()).unwrap_or_default()
}

const LEADING: &str = "leader election: leading";
const STANDING_BY: &str = "leader election: standing by";

fn signal(p: &ManagedProcess, sig: &str) {
    let pid = p.pid().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

async fn wait_exit(p: &mut ManagedProcess, within: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < within {
        if p.exited().is_some() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} did not exit within {within:?} of the signal; its log ends with:\n{}",
        p.name(),
        p.log_tail(3000)
    );
}

async fn lease_holder(client: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE)
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn one_replica_leads_a_killed_leader_is_replaced_and_sigterm_ends_within_its_bound() {
    let stack = Stack::shared().await.unwrap();
    let crds = tempfile::tempdir().unwrap();
    esox_api::write_crds(crds.path()).unwrap();
    stack.install_crds(crds.path()).await.unwrap();
    let client = stack.admin_client();
    let ns = stack.new_namespace("leader").await.unwrap();

    // 1. Two replicas: one leads, one stands by.
    let mut a = replica(stack, "esox-replica-a");
    a.wait_for_log(LEADING, WAIT).await.unwrap();
    let mut b = replica(stack, "esox-replica-b");
    b.wait_for_log(STANDING_BY, WAIT).await.unwrap();
    assert!(
        log_of(&a).contains("ESO flags accepted with no effect")
            && log_of(&a).contains("--zap-time-encoding --enable-managed-secrets-caching"),
        "ESO's arguments are reported: {}",
        a.log_tail(3000)
    );

    // Every write of the target Secret, as the API server reports it.
    let versions: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let seen = versions.clone();
    let secrets = Api::<Secret>::namespaced(client.clone(), ns.name());
    let watch = tokio::spawn(async move {
        let mut events = watcher(
            secrets,
            watcher::Config::default().fields("metadata.name=synced"),
        )
        .boxed();
        while let Some(Ok(event)) = events.next().await {
            if let watcher::Event::Apply(s) | watcher::Event::InitApply(s) = event
                && let Some(rv) = s.metadata.resource_version
            {
                seen.lock().unwrap().insert(rv);
            }
        }
    });

    let (v1, v2) = (secret_value("leader-v1"), secret_value("leader-v2"));
    let store = |value: &str| {
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "fake", "namespace": ns.name()},
            "spec": {"provider": {"fake": {"data": [{"key": "k", "value": value}]}}},
        })
    };
    apply(&client, store(&v1)).await;
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "synced", "namespace": ns.name()},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "fake", "kind": "SecretStore"},
                "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}],
            },
        }),
    )
    .await;
    wait_secret_data(&client, ns.name(), "synced", &[("k", &v1)]).await;
    assert!(
        !log_of(&b).contains(LEADING),
        "the standby must not lead while the leader lives"
    );
    assert!(
        !log_of(&b).contains("watch caches synced"),
        "the standby watches nothing"
    );

    // 2. SIGKILL the leader: the standby takes over and syncs a change.
    signal(&a, "-KILL");
    let killed = Instant::now();
    b.wait_for_log(LEADING, Duration::from_secs(60))
        .await
        .unwrap();
    let failover = killed.elapsed();
    b.wait_for_log("watch caches synced", WAIT).await.unwrap();
    apply(&client, store(&v2)).await;
    es_api(&client, ns.name())
        .patch(
            "synced",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {"force-sync": "1"}}})),
        )
        .await
        .unwrap();
    wait_secret_data(&client, ns.name(), "synced", &[("k", &v2)]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let writes = versions.lock().unwrap().len();
    assert_eq!(
        writes, 2,
        "the Secret was written exactly twice (create, then the change): no double writes, no rewrite on takeover"
    );
    watch.abort();

    // 3. SIGTERM an idle leader: it exits at once and releases the lease.
    let mut c = replica(stack, "esox-replica-c");
    c.wait_for_log(STANDING_BY, WAIT).await.unwrap();
    signal(&b, "-TERM");
    let idle_exit = wait_exit(&mut b, Duration::from_secs(10)).await;
    assert!(
        log_of(&b).contains("lease released"),
        "the leader released the lease on SIGTERM: {}",
        b.log_tail(2000)
    );
    let released_holder = lease_holder(&client).await;
    assert!(
        released_holder.is_none() || log_of(&c).contains(LEADING),
        "the lease is free after SIGTERM (or already the standby's): {released_holder:?}"
    );
    c.wait_for_log(LEADING, Duration::from_secs(60))
        .await
        .unwrap();
    c.wait_for_log("watch caches synced", WAIT).await.unwrap();

    // 4. SIGTERM with a plugin call hanging: the process still ends within its bound.
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "hangs", "namespace": ns.name()},
            "spec": {"provider": {"hostile": {}}},
        }),
    )
    .await;
    wait_ready(&client, ns.name(), "SecretStore", "hangs", "True", "Valid").await;
    apply(
        &client,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "hanging", "namespace": ns.name()},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "hangs", "kind": "SecretStore"},
                "data": [{"secretKey": "v", "remoteRef": {"key": "sleep"}}],
            },
        }),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(&c, "-TERM");
    let hung_exit = wait_exit(&mut c, Duration::from_secs(8)).await;

    println!(
        "LEADER: failover after SIGKILL {:.1}s (default lease 12s); idle SIGTERM exit {:.1}s; SIGTERM with a call hanging exit {:.1}s (--shutdown-timeout 3s)",
        failover.as_secs_f64(),
        idle_exit.as_secs_f64(),
        hung_exit.as_secs_f64()
    );
    for p in [&a, &b, &c] {
        let log = log_of(p);
        for value in [&v1, &v2] {
            assert!(!log.contains(value.as_str()), "{} logged a value", p.name());
        }
    }
}
