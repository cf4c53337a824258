//! The README's quick start, end to end, on the real stack: the shared quick-start manifests
//! (a v1beta1 ClusterSecretStore with IRSA auth, an ExternalSecret reading two properties)
//! applied exactly as written, against LocalStack's Secrets Manager and STS, with the endpoint
//! set on the controller (`--plugin-setting aws:endpoint=...`), never in the manifests.
//!
//! One `esox run` serves this test binary under the least-privilege identity; the controller's
//! whole log is scanned for every value used.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use esox_e2e::{ManagedProcess, Stack};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
const REMOTE_KEY: &str = "my-application/database";
/// The region `examples/quickstart/cluster-secret-store.yaml` names; LocalStack keeps regions apart.
const REGION: &str = "eu-central-1";

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart")
}

/// Polls `check` until it gives a value; on timeout, fails with the ExternalSecret's status and
/// the end of the controller's log (which holds no secret values: the test scans it for them).
async fn eventually<T, Fut: Future<Output = Option<T>>>(
    what: &str,
    diagnostics: (&kube::Client, &ManagedProcess),
    mut check: impl FnMut() -> Fut,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if started.elapsed() > WAIT {
            let (admin, controller) = diagnostics;
            let status = external_secrets(admin)
                .get_opt("database-credentials")
                .await
                .map(|es| es.map(|es| es.data["status"].to_string()));
            panic!(
                "timed out after {WAIT:?} waiting for {what}\nExternalSecret status: {status:?}\n\
                 controller log ends with:\n{}",
                controller.log_tail(4000)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn external_secrets(admin: &kube::Client) -> Api<kube::api::DynamicObject> {
    Api::namespaced_with(
        admin.clone(),
        "my-application",
        &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "external-secrets.io",
            "v1",
            "ExternalSecret",
        )),
    )
}

async fn put_remote(stack: &Stack, username: &str, password: &str) {
    let sm = stack.secretsmanager_client_in(REGION);
    let value = json!({"username": username, "password": password}).to_string();
    if sm
        .create_secret()
        .name(REMOTE_KEY)
        .secret_string(&value)
        .send()
        .await
        .is_err()
    {
        sm.put_secret_value()
            .secret_id(REMOTE_KEY)
            .secret_string(&value)
            .send()
            .await
            .expect("rotate in LocalStack");
    }
}

async fn secret_password(client: &kube::Client) -> Option<Vec<u8>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "my-application");
    let secret = secrets.get_opt("database-credentials").await.ok()??;
    secret.data?.get("password").map(|b| b.0.clone())
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager, LocalStack): runs in `cargo xtask test` (e2e phase)"]
async fn the_quick_start_manifests_sync_rotate_and_clean_up_as_written() {
    let stack = Stack::shared().await.expect("the e2e stack starts");
    let admin = stack.admin_client();
    let crds = tempfile::tempdir().unwrap();
    esox_api::write_crds(crds.path()).unwrap();
    stack.install_crds(crds.path()).await.expect("CRDs install");

    // What an EKS cluster would have: the namespaces and the IRSA-annotated ServiceAccount.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for ns in ["external-secrets", "my-application"] {
        let _ = namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(ns.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await;
    }
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "external-secrets");
    sas.patch(
        "external-secrets",
        &PatchParams::apply("esox-e2e").force(),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "external-secrets", "namespace": "external-secrets",
                         "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::000000000000:role/esox-e2e"}}
        })),
    )
    .await
    .expect("ServiceAccount");

    let store_manifest =
        std::fs::read_to_string(examples().join("cluster-secret-store.yaml")).unwrap();
    assert!(
        store_manifest.contains(&format!("region: {REGION}")),
        "the quick start's store names another region than {REGION}; seed there"
    );
    let first_password = format!("pw-first-{}", std::process::id());
    let rotated_password = format!("pw-rotated-{}", std::process::id());
    put_remote(stack, "app", &first_password).await;

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_esox"));
    cmd.args([
        "--log-format",
        "json",
        "--log",
        "debug,kube=info,hyper=info,tower=info,h2=info,rustls=info,wasmtime=info,cranelift=info",
    ])
    .arg("run")
    .arg("--kubeconfig")
    .arg(stack.controller_kubeconfig_path())
    .arg("--plugin-setting")
    .arg(format!("aws:endpoint={}", stack.localstack_endpoint()))
    .args([
        "--metrics-addr",
        "127.0.0.1:0",
        "--live-addr",
        "127.0.0.1:0",
    ]);
    let mut controller = ManagedProcess::spawn("esox-aws", cmd).expect("esox starts");
    controller
        .wait_for_log("watch caches synced", WAIT)
        .await
        .expect("esox becomes ready");

    // The manifests exactly as the quick start has them.
    for file in ["cluster-secret-store.yaml", "external-secret.yaml"] {
        let yaml = std::fs::read_to_string(examples().join(file)).unwrap();
        esox_e2e::manifests::apply_yaml(&admin, &yaml)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e:#}"));
    }

    let synced = eventually(
        "the Secret with LocalStack's password",
        (&admin, &controller),
        || async {
            secret_password(&admin)
                .await
                .filter(|p| p == first_password.as_bytes())
        },
    )
    .await;
    assert_eq!(synced, first_password.as_bytes());
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "my-application");
    let secret = secrets.get("database-credentials").await.unwrap();
    assert_eq!(secret.data.as_ref().unwrap()["username"].0, b"app");
    assert_eq!(
        secret.metadata.labels.as_ref().unwrap()["reconcile.external-secrets.io/managed"],
        "true"
    );
    let owner = &secret
        .metadata
        .owner_references
        .as_ref()
        .expect("creationPolicy Owner sets an owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ExternalSecret", "database-credentials", Some(true))
    );

    // Rotation: change the value upstream, force a refresh; the ExternalSecret's spec is untouched.
    put_remote(stack, "app", &rotated_password).await;
    let es = external_secrets(&admin);
    es.patch(
        "database-credentials",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"force-sync": format!("{}", std::process::id())}}}),
        ),
    )
    .await
    .expect("force-sync annotation");
    eventually(
        "the Secret to follow the rotation",
        (&admin, &controller),
        || async {
            secret_password(&admin)
                .await
                .filter(|p| p == rotated_password.as_bytes())
                .map(|_| ())
        },
    )
    .await;

    // Deleting the ExternalSecret (creationPolicy Owner) removes the Secret.
    es.delete("database-credentials", &DeleteParams::default())
        .await
        .expect("delete ES");
    eventually(
        "the Secret to be garbage-collected",
        (&admin, &controller),
        || async {
            match secrets.get_opt("database-credentials").await {
                Ok(None) => Some(()),
                _ => None,
            }
        },
    )
    .await;

    // The controller never logged a value it handled.
    let log = std::fs::read_to_string(controller.log_path()).unwrap();
    assert!(!log.is_empty());
    for value in [&first_password, &rotated_password] {
        assert!(
            !log.contains(value.as_str()),
            "the controller log contains a secret value"
        );
    }
}
