//! The Helm chart (`deploy/charts/esox`) checked for real: `helm lint`, then `helm template`
//! with several value sets, each output checked for what the values promise and then sent to
//! the harness's real kube-apiserver with `kubectl apply --dry-run=server` (schema, defaulting
//! and admission run; nothing is stored). The RBAC of the multi-replica set is also applied for
//! real, and the API server's authorizer is asked what the chart's ServiceAccount may do.
//!
//! helm is built from its Go module by the harness (`prereqs::ensure_helm`, cached under
//! ~/.cache/esox like the control plane). The chart's CRDs must stay byte-identical to the
//! generated `crds/`: `chart_crds_are_the_generated_crds` checks that without a stack.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use esox_e2e::{Stack, prereqs};
use serde::Deserialize as _;
use serde_yaml::Value;

fn repo_root() -> PathBuf {
    prereqs::source_dir().join("..")
}

fn chart_dir() -> PathBuf {
    repo_root().join("deploy").join("charts").join("esox")
}

/// A minimal prometheus-operator ServiceMonitor CRD: the fields the chart renders, with the
/// types of prometheus-operator's own CRD and no `x-kubernetes-preserve-unknown-fields`, so a
/// misspelt field in the chart's ServiceMonitor fails kubectl's strict field validation. (The
/// full CRD is ~60 KB of schema for fields the chart never sets.)
const SERVICE_MONITOR_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [selector]
              properties:
                selector:
                  type: object
                  properties:
                    matchLabels: {type: object, additionalProperties: {type: string}}
                namespaceSelector:
                  type: object
                  properties:
                    any: {type: boolean}
                    matchNames: {type: array, items: {type: string}}
                endpoints:
                  type: array
                  items:
                    type: object
                    properties:
                      port: {type: string}
                      path: {type: string}
                      interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      scrapeTimeout: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      honorLabels: {type: boolean}
                      metricRelabelings: {type: array, items: {type: object, x-kubernetes-preserve-unknown-fields: true}}
                      relabelings: {type: array, items: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

/// Runs a command, feeding `stdin` when given; returns its output (never panics on failure).
fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes()).expect("write to stdin");
    }
    child.wait_with_output().expect("wait for the child")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn succeed(command: &mut Command, stdin: Option<&str>) -> String {
    let what = format!("{command:?}");
    let out = run(command, stdin);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The rendered documents, empty ones dropped.
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("helm template renders valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter().map(|d| kind(d).to_owned()).collect()
}

fn count(docs: &[Value], wanted: &str) -> usize {
    docs.iter().filter(|d| kind(d) == wanted).count()
}

fn find<'a>(docs: &'a [Value], wanted: &str) -> &'a Value {
    docs.iter()
        .find(|d| kind(d) == wanted)
        .unwrap_or_else(|| panic!("no {wanted} rendered"))
}

/// The controller container's arguments.
fn args(docs: &[Value]) -> Vec<String> {
    find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .expect("the container has args")
        .iter()
        .map(|a| a.as_str().expect("string args").to_owned())
        .collect()
}

fn has_arg(args: &[String], wanted: &str) -> bool {
    args.iter().any(|a| a == wanted)
}

struct Helm {
    binary: PathBuf,
    chart: PathBuf,
    values_dir: tempfile::TempDir,
}

impl Helm {
    fn new() -> Self {
        let binary = prereqs::ensure_helm().expect("helm builds from its Go module");
        // helm keeps config and cache in $HOME; keep this test's out of the user's.
        let values_dir = tempfile::tempdir().unwrap();
        Helm {
            binary,
            chart: chart_dir(),
            values_dir,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        let home = self.values_dir.path();
        command
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"));
        command
    }

    fn values_file(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.values_dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// `helm lint --strict` with the given values file (if any).
    fn lint(&self, values: Option<&Path>) -> String {
        let mut command = self.command();
        command.arg("lint").arg("--strict").arg(&self.chart);
        if let Some(values) = values {
            command.arg("-f").arg(values);
        }
        succeed(&mut command, None)
    }

    /// `helm template` as release `release` in `namespace`; `Err(stderr)` when it fails.
    fn template(
        &self,
        release: &str,
        namespace: &str,
        values: Option<&Path>,
        extra: &[&str],
    ) -> Result<String, String> {
        let mut command = self.command();
        command
            .arg("template")
            .arg(release)
            .arg(&self.chart)
            .arg("--namespace")
            .arg(namespace);
        if let Some(values) = values {
            command.arg("-f").arg(values);
        }
        command.args(extra);
        let out = run(&mut command, None);
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            Err(text(&out.stderr))
        }
    }
}

fn kubectl(stack: &Stack) -> Command {
    let binary = stack
        .kubectl()
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ESOX_KUBECTL").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let mut command = Command::new(binary);
    command.env("KUBECONFIG", stack.admin_kubeconfig_path());
    command
}

/// `kubectl apply --dry-run=server` of a rendering: every object must pass the API server.
fn dry_run(stack: &Stack, rendered: &str, docs: &[Value]) {
    let out = succeed(
        kubectl(stack).args(["apply", "--dry-run=server", "-f", "-"]),
        Some(rendered),
    );
    let accepted = out
        .lines()
        .filter(|l| l.ends_with("(server dry run)"))
        .count();
    assert_eq!(
        accepted,
        docs.len(),
        "every rendered object passes the server dry run:\n{out}"
    );
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let generated = repo_root().join("crds");
    let copied = chart_dir().join("files").join("crds");
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names(&generated),
        names(&copied),
        "deploy/charts/esox/files/crds/ holds exactly the files of crds/; fix with \
         `cp crds/*.yaml deploy/charts/esox/files/crds/`"
    );
    for name in names(&generated) {
        assert!(
            std::fs::read(generated.join(&name)).unwrap()
                == std::fs::read(copied.join(&name)).unwrap(),
            "deploy/charts/esox/files/crds/{name} differs from crds/{name}; fix with \
             `cp crds/*.yaml deploy/charts/esox/files/crds/`"
        );
    }
}

#[tokio::test]
#[ignore = "needs the real stack (kube-apiserver, etcd, kube-controller-manager) and helm built from its Go module: runs in `cargo xtask test` (e2e phase)"]
async fn chart_lints_renders_and_passes_the_api_servers_dry_run() {
    let helm = Helm::new();
    let stack = Stack::shared().await.unwrap();
    let ns = stack.new_namespace("helm").await.unwrap();
    let namespace = ns.name().to_owned();
    // Cluster-scoped names are prefixed with the release's: unique per run, and never the
    // stack's own `esox-controller` ClusterRole.
    let release = namespace.clone();
    let fullname = format!("{release}-esox");

    let crd_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        crd_dir.path().join("servicemonitors.yaml"),
        SERVICE_MONITOR_CRD,
    )
    .unwrap();
    stack.install_crds(crd_dir.path()).await.unwrap();

    eprintln!("helm lint (defaults)");
    helm.lint(None);

    // 1. Defaults: CRDs, least-privilege RBAC, one replica without leader election, probes,
    //    a locked-down container, the plugin cache on an emptyDir.
    eprintln!("value set: defaults");
    let rendered = helm.template(&release, &namespace, None, &[]).unwrap();
    let docs = documents(&rendered);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "ServiceAccount"
        ]
        .map(String::from)
        .into(),
    );
    assert_eq!(count(&docs, "CustomResourceDefinition"), 3);
    for crd in docs
        .iter()
        .filter(|d| kind(d) == "CustomResourceDefinition")
    {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"].as_str(),
            Some("keep")
        );
    }
    let a = args(&docs);
    assert_eq!(a[0], "run");
    for wanted in [
        "--metrics-addr=:8080",
        "--live-addr=:8082",
        "--plugin-cache-dir=/var/cache/esox",
        "--concurrent=32",
    ] {
        assert!(has_arg(&a, wanted), "{wanted} in {a:?}");
    }
    assert!(!a.iter().any(|x| x.starts_with("--enable-leader-election")));
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "live");
    let ports: Vec<(String, i64)> = container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![("metrics".to_owned(), 8080), ("live".to_owned(), 8082)]
    );
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert_eq!(pod["volumes"][0]["name"], "plugin-cache");
    assert!(pod["volumes"][0]["emptyDir"].is_mapping());
    dry_run(stack, &rendered, &docs);

    // 2. Two replicas: leader election on, a Role for the one Lease in the release namespace,
    //    a PodDisruptionBudget.
    eprintln!("value set: replicaCount=2 + podDisruptionBudget");
    let replicas = helm.values_file(
        "replicas",
        "replicaCount: 2\npodDisruptionBudget:\n  enabled: true\n",
    );
    helm.lint(Some(&replicas));
    let rendered = helm
        .template(&release, &namespace, Some(&replicas), &[])
        .unwrap();
    let docs = documents(&rendered);
    let a = args(&docs);
    assert!(has_arg(&a, "--enable-leader-election=true"), "{a:?}");
    assert!(
        has_arg(&a, &format!("--leader-election-namespace={namespace}")),
        "{a:?}"
    );
    assert_eq!(find(&docs, "Deployment")["spec"]["replicas"], 2);
    let role = find(&docs, "Role");
    assert_eq!(role["metadata"]["namespace"].as_str(), Some(&*namespace));
    assert_eq!(count(&docs, "RoleBinding"), 1);
    assert_eq!(
        find(&docs, "PodDisruptionBudget")["spec"]["minAvailable"],
        1
    );
    dry_run(stack, &rendered, &docs);
    // The same as `helm install --dry-run=server` (helm's own checks against the cluster, and
    // the release notes).
    let install = succeed(
        helm.command()
            .args(["install", &release])
            .arg(&helm.chart)
            .args(["--namespace", &namespace, "--dry-run=server", "-f"])
            .arg(&replicas)
            .arg("--kubeconfig")
            .arg(stack.admin_kubeconfig_path()),
        None,
    );
    assert!(
        install.contains("STATUS: pending-install")
            && install.contains("(2 replicas, leader election on)"),
        "helm install --dry-run=server:\n{install}"
    );

    // 3. ServiceMonitor (with its metrics Service) and NetworkPolicy; the minimal
    //    ServiceMonitor CRD installed above makes the API server check it.
    eprintln!("value set: serviceMonitor + networkPolicy");
    let values = helm.values_file(
        "monitoring",
        "serviceMonitor:\n  enabled: true\n  additionalLabels: {release: prometheus}\n\
         networkPolicy:\n  enabled: true\n",
    );
    helm.lint(Some(&values));
    let monitoring_api = ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"];
    let rendered = helm
        .template(&release, &namespace, Some(&values), &monitoring_api)
        .unwrap();
    let docs = documents(&rendered);
    let monitor = find(&docs, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        find(&docs, "Service")["spec"]["ports"][0]["targetPort"],
        "metrics"
    );
    let policy = find(&docs, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"][1], "Egress");
    dry_run(stack, &rendered, &docs);
    // renderMode skipIfMissing (ESO's default): no ServiceMonitor when the API lacks the kind.
    let skipped = documents(
        &helm
            .template(&release, &namespace, Some(&values), &[])
            .unwrap(),
    );
    assert_eq!(count(&skipped, "ServiceMonitor"), 0);
    assert_eq!(count(&skipped, "Service"), 1);

    // 4. installCRDs=false: everything but the CRDs.
    eprintln!("value set: installCRDs=false");
    let rendered = helm
        .template(&release, &namespace, None, &["--set", "installCRDs=false"])
        .unwrap();
    let docs = documents(&rendered);
    assert_eq!(count(&docs, "CustomResourceDefinition"), 0);
    assert_eq!(count(&docs, "Deployment"), 1);
    dry_run(stack, &rendered, &docs);

    // 5. An extra plugin from a volume, plugin settings and egress, IRSA, extraArgs/extraEnv.
    eprintln!("value set: extra plugin + settings");
    let values = helm.values_file(
        "plugins",
        r#"
concurrent: 8
serviceAccount:
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/esox
plugins:
  settings:
    aws:
      endpoint: https://vpce-1.secretsmanager.eu-central-1.vpce.amazonaws.com
    vaultish:
      namespace: team-a
  egress:
    vaultish:
      - https://vault.internal:8200
      - https://*.vault.example.com
  ambientIdentity: [aws]
  apiAudienceTokens: [none]
  volume:
    configMap:
      name: esox-plugins
extraArgs:
  min-refresh-interval: 30s
  enable-flood-gate: false
extraEnv:
  - name: AWS_REGION
    value: eu-central-1
"#,
    );
    helm.lint(Some(&values));
    let rendered = helm
        .template(&release, &namespace, Some(&values), &[])
        .unwrap();
    let docs = documents(&rendered);
    let a = args(&docs);
    for wanted in [
        "--concurrent=8",
        "--plugin-dir=/var/lib/esox/plugins",
        "--plugin-setting=aws:endpoint=https://vpce-1.secretsmanager.eu-central-1.vpce.amazonaws.com",
        "--plugin-setting=vaultish:namespace=team-a",
        "--plugin-egress=vaultish=https://vault.internal:8200",
        "--plugin-egress=vaultish=https://*.vault.example.com",
        "--plugin-ambient-identity=aws",
        "--plugin-api-audience-tokens=none",
        "--min-refresh-interval=30s",
        "--enable-flood-gate=false",
    ] {
        assert!(has_arg(&a, wanted), "{wanted} in {a:?}");
    }
    assert_eq!(
        find(&docs, "ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/esox"
    );
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    let plugins_volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "plugins")
        .expect("a plugins volume");
    assert_eq!(plugins_volume["configMap"]["name"], "esox-plugins");
    let mounts = &pod["containers"][0]["volumeMounts"];
    assert!(
        mounts
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "plugins" && m["readOnly"] == true)
    );
    let env = pod["containers"][0]["env"].as_sequence().unwrap();
    assert!(env.iter().any(|e| e["name"] == "AWS_REGION"));
    assert!(env.iter().any(|e| e["name"] == "POD_NAMESPACE"));
    dry_run(stack, &rendered, &docs);

    // 6a. Generic targets: the flag and the ConfigMap rules, only when enabled.
    let generic = documents(
        &helm
            .template(
                &release,
                &namespace,
                None,
                &["--set", "genericTargets.enabled=true"],
            )
            .expect("genericTargets.enabled renders"),
    );
    let writes_config_maps = |docs: &[Value]| {
        docs.iter()
            .filter(|d| kind(d) == "ClusterRole")
            .flat_map(|role| role["rules"].as_sequence().cloned().unwrap_or_default())
            .any(|r| {
                r["resources"]
                    .as_sequence()
                    .is_some_and(|x| x.iter().any(|v| v == "configmaps"))
                    && r["verbs"]
                        .as_sequence()
                        .is_some_and(|x| x.iter().any(|v| v == "create"))
            })
    };
    assert!(has_arg(
        &args(&generic),
        "--unsafe-allow-generic-targets=true"
    ));
    assert!(writes_config_maps(&generic));
    assert!(!has_arg(&a, "--unsafe-allow-generic-targets=true"));
    assert!(!writes_config_maps(&docs));

    // 6. ESO values esox cannot honour fail the render, naming the value.
    for (set, named) in [
        (
            "genericTargets.resources[0].apiGroup=argoproj.io",
            "genericTargets.resources",
        ),
        ("scopedRBAC=true", "scopedRBAC"),
        ("processClusterStore=false", "processClusterStore"),
        (
            "metrics.listen.secure.enabled=true",
            "metrics.listen.secure",
        ),
    ] {
        let error = helm
            .template(&release, &namespace, None, &["--set", set])
            .expect_err(set);
        assert!(error.contains(named), "{set}: {error}");
    }
    let error = helm
        .template(
            &release,
            &namespace,
            None,
            &[
                "--set",
                "serviceMonitor.enabled=true",
                "--set",
                "serviceMonitor.renderMode=failIfMissing",
            ],
        )
        .expect_err("failIfMissing without the CRD");
    assert!(error.contains("ServiceMonitor"), "{error}");

    // 7. The RBAC of the two-replica set for real (the Deployment would never run: the local
    //    stack has no scheduler or kubelet), then the API server's authorizer is asked what the
    //    chart's ServiceAccount may do. kubectl resolves resource names through discovery, so
    //    the generated CRDs are installed first.
    eprintln!("RBAC: applied for real, checked with kubectl auth can-i");
    stack.install_crds(&repo_root().join("crds")).await.unwrap();
    let rbac = helm
        .template(
            &release,
            &namespace,
            Some(&replicas),
            &[
                "--show-only",
                "templates/serviceaccount.yaml",
                "--show-only",
                "templates/rbac.yaml",
            ],
        )
        .unwrap();
    succeed(kubectl(stack).args(["apply", "-f", "-"]), Some(&rbac));
    let service_account = format!("system:serviceaccount:{namespace}:{fullname}");
    // (verb, resource, subresource, namespace or None for all namespaces, allowed)
    let can_i = |verb: &str, resource: &str, subresource: &str, scope: Option<&str>| -> String {
        let mut command = kubectl(stack);
        command.args(["auth", "can-i", verb, resource, "--as", &service_account]);
        if !subresource.is_empty() {
            command.arg(format!("--subresource={subresource}"));
        }
        match scope {
            Some(n) => command.args(["-n", n]),
            None => command.arg("--all-namespaces"),
        };
        let out = run(&mut command, None);
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    };
    let own = Some(namespace.as_str());
    let lease = "leases/esox-controller-leader";
    let es = "externalsecrets.external-secrets.io";
    for (verb, resource, subresource, scope, allowed) in [
        ("create", "leases", "", own, true),
        ("get", lease, "", own, true),
        ("update", lease, "", own, true),
        ("patch", lease, "", own, true),
        ("update", "leases/another-lease", "", own, false),
        ("list", "leases", "", own, false),
        ("create", "leases", "", Some("default"), false),
        ("list", es, "", None, true),
        ("watch", es, "", None, true),
        ("patch", es, "status", None, true),
        ("update", es, "", None, false),
        ("patch", es, "", None, false),
        ("patch", "secrets", "", None, true),
        ("update", "secrets", "", None, false),
        ("create", "serviceaccounts", "token", None, true),
        ("create", "serviceaccounts", "", None, false),
        ("list", "configmaps", "", None, false),
    ] {
        let answer = can_i(verb, resource, subresource, scope);
        assert_eq!(
            answer.lines().next() == Some("yes"),
            allowed,
            "{service_account} may {verb} {resource} {subresource} in {scope:?}: expected \
             {allowed}, kubectl auth can-i says:\n{answer}"
        );
    }

    // 8. The chart's own Deployment arguments and identity, run: the `esox` binary with the
    //    rendered args (addresses and cache folder swapped for local ones), the Pod's downward
    //    API variables, and a token of the chart's ServiceAccount. It must parse them, win the
    //    election under the chart's Role, and sync an ExternalSecret under its ClusterRole.
    let Some(esox) = esox_binary() else {
        eprintln!(
            "SKIPPED running the chart's arguments: no esox binary next to this test's folder \
             (build the workspace's binaries, or set ESOX_BIN)"
        );
        return;
    };
    eprintln!(
        "the chart's arguments and identity, run: {}",
        esox.display()
    );
    let rendered = helm
        .template(&release, &namespace, Some(&replicas), &[])
        .unwrap();
    let chart_args = args(&documents(&rendered));
    let local = tempfile::tempdir().unwrap();
    let token = succeed(
        kubectl(stack).args([
            "create",
            "token",
            &fullname,
            "-n",
            &namespace,
            "--duration",
            "1h",
        ]),
        None,
    );
    let mut config: Value =
        serde_yaml::from_str(&std::fs::read_to_string(stack.controller_kubeconfig_path()).unwrap())
            .unwrap();
    config["users"][0]["user"]["token"] = Value::from(token.trim());
    let kubeconfig = local.path().join("kubeconfig");
    std::fs::write(&kubeconfig, serde_yaml::to_string(&config).unwrap()).unwrap();
    let mut command = Command::new(&esox);
    command.args(chart_args.iter().filter(|a| {
        !["--metrics-addr=", "--live-addr=", "--plugin-cache-dir="]
            .iter()
            .any(|swapped| a.starts_with(swapped))
    }));
    command
        .args(["--metrics-addr=127.0.0.1:0", "--live-addr=127.0.0.1:0"])
        .arg(format!(
            "--plugin-cache-dir={}",
            local.path().join("wasm").display()
        ))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("POD_NAME", "esox-chart-0")
        .env("POD_NAMESPACE", &namespace)
        .env_remove("KUBECONFIG");
    let mut controller = esox_e2e::ManagedProcess::spawn("esox-chart", command).unwrap();
    controller
        .wait_for_log("leader election: leading", Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}; its log ends with:\n{}", controller.log_tail(4000)));
    let holder = succeed(
        kubectl(stack).args([
            "get",
            "lease",
            "esox-controller-leader",
            "-n",
            &namespace,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]),
        None,
    );
    assert!(
        holder.starts_with("esox-chart-0"),
        "the Lease in the release namespace is held by the Pod (POD_NAME): {holder}"
    );
    let manifests = format!(
        r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: fake, namespace: {namespace}}}
spec:
  provider:
    fake:
      data: [{{key: k, value: from-the-chart}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: synced, namespace: {namespace}}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: fake, kind: SecretStore}}
  data: [{{secretKey: k, remoteRef: {{key: k}}}}]
"#
    );
    succeed(kubectl(stack).args(["apply", "-f", "-"]), Some(&manifests));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(
            kubectl(stack).args([
                "get",
                "secret",
                "synced",
                "-n",
                &namespace,
                "-o",
                "jsonpath={.data.k}",
            ]),
            None,
        );
        if out.status.success() && text(&out.stdout).trim() == "ZnJvbS10aGUtY2hhcnQ=" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ExternalSecret did not sync under the chart's RBAC within 60 s; esox's log \
             ends with:\n{}",
            controller.log_tail(4000)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    controller.stop(Duration::from_secs(5));
}

/// The `esox` binary: `$ESOX_BIN`, else the one cargo built into this test binary's target
/// folder (`target/debug/esox`; `cargo test --workspace` builds it).
fn esox_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("ESOX_BIN") {
        return Some(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().ok()?;
    // target/debug/deps/helm_chart-<hash> -> target/debug/esox
    let candidate = exe.parent()?.parent()?.join("esox");
    candidate.is_file().then_some(candidate)
}
