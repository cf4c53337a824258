//! The README's commands that need no cluster, run through the real `esox` binary with the
//! embedded plugins: `esox plugin list`, `esox get` on a fake store, `esox render` of a
//! templated ExternalSecret, and `esox crds --check` on the committed CRDs.

use std::path::Path;
use std::process::{Command, Output};

fn esox(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_esox"))
        .args(args)
        .current_dir(dir)
        // Precompiled plugins go to a cache of the test build's, not the user's; shared by the
        // tests here so each plugin is compiled once.
        .env(
            "ESOX_PLUGIN_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("esox-cli-wasm-cache"),
        )
        .env_remove("ESOX_PLUGIN_DIR")
        .output()
        .expect("esox runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "esox failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

const STORE: &str = r#"apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: demo}
spec:
  provider:
    fake:
      data:
        - key: /db/credentials
          value: '{"username": "app", "password": "not-a-real-password"}'
"#;

#[test]
fn plugin_list_shows_the_embedded_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&esox(&["plugin", "list"], dir.path()));
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        ["aws", "fake", "kubernetes", "vault", "webhook"],
        "{out}"
    );
    assert!(out.contains("embedded"), "{out}");
}

#[test]
fn get_prints_one_property_of_a_fake_store_value_and_fails_clearly_on_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("store.yaml"), STORE).unwrap();
    let out = esox(
        &[
            "get",
            "--store",
            "store.yaml",
            "--key",
            "/db/credentials",
            "--property",
            "username",
        ],
        dir.path(),
    );
    assert_eq!(stdout(&out).trim_end(), "app");

    let missing = esox(
        &["get", "--store", "store.yaml", "--key", "/nope"],
        dir.path(),
    );
    assert!(!missing.status.success());
    assert!(missing.stdout.is_empty(), "nothing on stdout for a failure");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nope"), "the error names the key: {err}");
    assert!(
        !err.contains("not-a-real-password"),
        "no value in the error: {err}"
    );
}

#[test]
fn render_prints_the_templated_secret_and_names_the_template_position_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let es = r#"apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: registry, namespace: apps}
spec:
  secretStoreRef: {name: aws, kind: ClusterSecretStore}
  target:
    name: registry-credentials
    template:
      type: kubernetes.io/dockerconfigjson
      data:
        .dockerconfigjson: '{"auths":{"r.example.com":{"auth":"{{ printf "%s:%s" .user .password | b64enc }}"}}}'
        config.yaml: "user: {{ .user | upper }}\n"
  data:
  - {secretKey: user, remoteRef: {key: registry, property: user}}
  - {secretKey: password, remoteRef: {key: registry, property: password}}
"#;
    std::fs::write(dir.path().join("es.yaml"), es).unwrap();
    std::fs::write(
        dir.path().join("values.json"),
        r#"{"registry": {"user": "robot", "password": "hunter2"}}"#,
    )
    .unwrap();
    let out = stdout(&esox(
        &["render", "-f", "es.yaml", "--values", "values.json"],
        dir.path(),
    ));
    let secret: serde_json::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(secret["metadata"]["name"], "registry-credentials");
    let decode = |key: &str| {
        use base64::Engine as _;
        let b64 = secret["data"][key].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    // base64("robot:hunter2") = cm9ib3Q6aHVudGVyMg==
    assert_eq!(
        decode(".dockerconfigjson"),
        r#"{"auths":{"r.example.com":{"auth":"cm9ib3Q6aHVudGVyMg=="}}}"#
    );
    assert_eq!(decode("config.yaml"), "user: ROBOT\n");

    std::fs::write(
        dir.path().join("es.yaml"),
        es.replace("| upper }}", "| nosuchfn }}"),
    )
    .unwrap();
    let bad = esox(
        &["render", "-f", "es.yaml", "--values", "values.json"],
        dir.path(),
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("config.yaml:1:") && err.contains("nosuchfn"),
        "the error names the template, line and function: {err}"
    );
}

#[test]
fn render_prints_a_config_map_target_as_the_config_map_and_refuses_other_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let es = r#"apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: settings, namespace: apps}
spec:
  secretStoreRef: {name: aws, kind: ClusterSecretStore}
  target:
    manifest: {apiVersion: v1, kind: ConfigMap}
  data:
  - {secretKey: endpoint, remoteRef: {key: app, property: endpoint}}
"#;
    std::fs::write(dir.path().join("es.yaml"), es).unwrap();
    std::fs::write(
        dir.path().join("values.json"),
        r#"{"app": {"endpoint": "https://api.example.com"}}"#,
    )
    .unwrap();
    let out = stdout(&esox(
        &["render", "-f", "es.yaml", "--values", "values.json"],
        dir.path(),
    ));
    let cm: serde_json::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["data"]["endpoint"], "https://api.example.com");
    assert!(cm.get("type").is_none());
    std::fs::write(
        dir.path().join("es.yaml"),
        es.replace(
            "{apiVersion: v1, kind: ConfigMap}",
            "{apiVersion: argoproj.io/v1alpha1, kind: Application}",
        ),
    )
    .unwrap();
    let bad = esox(
        &["render", "-f", "es.yaml", "--values", "values.json"],
        dir.path(),
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("invalid generic target"), "{err}");
}

#[test]
fn crds_check_accepts_the_committed_crds() {
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let dir = tempfile::tempdir().unwrap();
    let out = esox(&["crds", "--check", crds.to_str().unwrap()], dir.path());
    stdout(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("up to date"),
        "{out:?}"
    );

    // A drifted copy fails the check.
    let drifted = dir.path().join("crds");
    std::fs::create_dir(&drifted).unwrap();
    for entry in std::fs::read_dir(&crds).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            drifted.join(path.file_name().unwrap()),
            text.replacen("description:", "description: drifted", 1),
        )
        .unwrap();
    }
    let out = esox(&["crds", "--check", "crds"], dir.path());
    assert!(!out.status.success(), "a drifted CRD passes the check");
}
