//! Generation of the CustomResourceDefinitions served by esox, and the files under `crds/`.
//!
//! Each kind is derived once, as `v1` (storage). A copy of that version named `v1beta1` is
//! served too, marked deprecated: ESO's quick-start manifests use `v1beta1`, and since the
//! schemas are identical the API server converts with strategy `None` (only `apiVersion`
//! changes), so no conversion webhook is needed.

use std::io;
use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition,
};
use kube::CustomResourceExt;
use kube::core::crd::merge_crds;

use crate::{ClusterSecretStore, ExternalSecret, SecretStore};

/// The files `write_crds` writes, in the order `crds()` returns the CRDs.
pub const CRD_FILES: [&str; 3] = [
    "external-secrets.io_externalsecrets.yaml",
    "external-secrets.io_secretstores.yaml",
    "external-secrets.io_clustersecretstores.yaml",
];

/// Turns a single-version `v1` CRD into the served pair `v1` (storage) + `v1beta1` (deprecated).
fn with_v1beta1(v1: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut beta = v1.clone();
    for version in &mut beta.spec.versions {
        version.name = "v1beta1".to_string();
        version.served = true;
        version.storage = false;
        version.deprecated = Some(true);
        version.deprecation_warning = Some(format!(
            "external-secrets.io/v1beta1 {} is deprecated; use external-secrets.io/v1",
            v1.spec.names.kind
        ));
    }
    let mut merged = match merge_crds(vec![v1.clone(), beta], "v1") {
        Ok(crd) => crd,
        // Both inputs come from the same derive and differ only in the version name, so this
        // cannot fail; fall back to the v1-only CRD rather than panic.
        Err(_) => v1,
    };
    merged.spec.conversion = Some(CustomResourceConversion {
        strategy: "None".to_string(),
        webhook: None,
    });
    merged
}

/// The CRDs esox serves, in a stable order: ExternalSecret, SecretStore, ClusterSecretStore.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        with_v1beta1(ExternalSecret::crd()),
        with_v1beta1(SecretStore::crd()),
        with_v1beta1(ClusterSecretStore::crd()),
    ]
}

fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    // Serialising a CRD built from derived types cannot fail (no non-string map keys).
    serde_yaml::to_string(crd).unwrap_or_default()
}

/// All CRDs as one multi-document YAML stream (what `esox crds` prints).
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| format!("---\n{}", crd_yaml(crd)))
        .collect()
}

/// The content of each file under `crds/`: (file name, YAML).
pub fn crd_files() -> Vec<(&'static str, String)> {
    CRD_FILES
        .iter()
        .copied()
        .zip(crds().iter().map(crd_yaml))
        .collect()
}

/// Writes one YAML file per kind into `dir` (what `esox crds --write crds/` does).
pub fn write_crds(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, yaml) in crd_files() {
        std::fs::write(dir.join(name), yaml)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn repo_crds_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds")
    }

    #[test]
    fn committed_crds_match_the_generated_ones() {
        let dir = repo_crds_dir();
        if std::env::var("ESOX_UPDATE_CRDS").as_deref() == Ok("1") {
            write_crds(&dir).unwrap();
        }
        for (name, yaml) in crd_files() {
            let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            assert!(
                committed == yaml,
                "crds/{name} is out of date with the API types: regenerate with \
                 `cargo run -p esox -- crds --write crds/` (or ESOX_UPDATE_CRDS=1 cargo test -p esox-api) \
                 and commit the result"
            );
        }
    }

    #[test]
    fn every_kind_serves_v1_as_storage_and_v1beta1_deprecated_with_the_same_schema() {
        for crd in crds() {
            let names: Vec<_> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(names, ["v1", "v1beta1"], "{}", crd.spec.names.kind);
            let (v1, beta) = (&crd.spec.versions[0], &crd.spec.versions[1]);
            assert!(v1.served && v1.storage && v1.deprecated.is_none());
            assert!(beta.served && !beta.storage && beta.deprecated == Some(true));
            assert_eq!(v1.schema, beta.schema);
            assert_eq!(
                v1.additional_printer_columns,
                beta.additional_printer_columns
            );
            assert!(
                v1.subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some()
            );
            assert_eq!(
                crd.spec.conversion.as_ref().map(|c| c.strategy.as_str()),
                Some("None")
            );
            assert_eq!(
                crd.spec.names.categories,
                Some(vec!["external-secrets".to_string()])
            );
        }
    }

    #[test]
    fn names_scopes_and_short_names_are_esos() {
        let got: Vec<_> = crds()
            .iter()
            .map(|c| {
                (
                    c.metadata.name.clone().unwrap(),
                    c.spec.scope.clone(),
                    c.spec.names.short_names.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "externalsecrets.external-secrets.io".to_string(),
                    "Namespaced".to_string(),
                    vec!["es".to_string()]
                ),
                (
                    "secretstores.external-secrets.io".to_string(),
                    "Namespaced".to_string(),
                    vec!["ss".to_string()]
                ),
                (
                    "clustersecretstores.external-secrets.io".to_string(),
                    "Cluster".to_string(),
                    vec!["css".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn printer_columns_are_esos() {
        let columns = |i: usize| -> Vec<String> {
            crds()[i].spec.versions[0]
                .additional_printer_columns
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        assert_eq!(
            columns(0),
            [
                "StoreType",
                "Store",
                "Refresh Interval",
                "Status",
                "Ready",
                "Last Sync"
            ]
        );
        assert_eq!(columns(1), ["AGE", "Status", "Capabilities", "Ready"]);
        assert_eq!(columns(2), ["AGE", "Status", "Capabilities", "Ready"]);
    }

    #[test]
    fn crds_yaml_is_a_stable_multi_document_stream() {
        let yaml = crds_yaml();
        assert_eq!(yaml.matches("---\n").count(), 3);
        assert_eq!(yaml, crds_yaml());
        assert!(yaml.contains("x-kubernetes-validations"));
        assert!(yaml.contains("either data or dataFrom should be specified"));
    }

    // ---- CEL rules, evaluated client-side with kube's CEL implementation ----

    fn schema_of(kind_index: usize) -> Value {
        let crd = &crds()[kind_index];
        serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap()
    }

    /// The messages of the CEL rules an object violates (empty: accepted).
    fn cel_errors(kind_index: usize, object: Value) -> Vec<String> {
        match kube::core::cel::Validator::new().validate(&schema_of(kind_index), &object, None) {
            Ok(()) => vec![],
            Err(errs) => errs.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn es(spec: Value) -> Value {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": "db", "namespace": "app"}, "spec": spec})
    }

    fn assert_refused(errors: Vec<String>, message: &str) {
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "expected {message:?} in {errors:?}"
        );
    }

    #[test]
    fn cel_accepts_the_quick_start_external_secret() {
        let errors = cel_errors(
            0,
            es(json!({
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
                "target": {"name": "db", "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                "data": [{"secretKey": "password", "remoteRef": {"key": "prod/db", "property": "password"}}],
                "dataFrom": [{"extract": {"key": "prod/db"}}]
            })),
        );
        assert_eq!(errors, Vec::<String>::new());
    }

    #[test]
    fn cel_refuses_an_external_secret_without_data_or_data_from() {
        assert_refused(
            cel_errors(0, es(json!({"secretStoreRef": {"name": "aws"}}))),
            "either data or dataFrom",
        );
    }

    #[test]
    fn cel_refuses_delete_policy_without_ownership() {
        for creation in ["Merge", "None", "CreateOrMerge"] {
            let errors = cel_errors(
                0,
                es(json!({
                    "target": {"creationPolicy": creation, "deletionPolicy": "Delete"},
                    "dataFrom": [{"extract": {"key": "k"}}]
                })),
            );
            assert_refused(errors, "deletionPolicy=Delete must not be used");
        }
        let ok = cel_errors(
            0,
            es(
                json!({"target": {"creationPolicy": "Owner", "deletionPolicy": "Delete"}, "dataFrom": [{"extract": {"key": "k"}}]}),
            ),
        );
        assert_eq!(ok, Vec::<String>::new());
    }

    #[test]
    fn cel_refuses_merge_deletion_with_creation_none() {
        let errors = cel_errors(
            0,
            es(
                json!({"target": {"creationPolicy": "None", "deletionPolicy": "Merge"}, "dataFrom": [{"extract": {"key": "k"}}]}),
            ),
        );
        assert_refused(
            errors,
            "deletionPolicy=Merge must not be used with creationPolicy=None",
        );
    }

    #[test]
    fn cel_refuses_duplicate_secret_keys_only_under_retain() {
        let data = json!([
            {"secretKey": "a", "remoteRef": {"key": "k1"}},
            {"secretKey": "a", "remoteRef": {"key": "k2"}}
        ]);
        assert_refused(
            cel_errors(0, es(json!({"data": data}))),
            "duplicate secretKey",
        );
        assert_refused(
            cel_errors(
                0,
                es(json!({"target": {"deletionPolicy": "Retain"}, "data": data})),
            ),
            "duplicate secretKey",
        );
        assert_eq!(
            cel_errors(
                0,
                es(json!({"target": {"deletionPolicy": "Delete"}, "data": data}))
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn cel_refuses_data_from_with_several_or_no_sources() {
        assert_refused(
            cel_errors(
                0,
                es(json!({"dataFrom": [{"extract": {"key": "a"}, "find": {"path": "b"}}]})),
            ),
            "extract, find, or generatorRef cannot be set at the same time",
        );
        assert_refused(
            cel_errors(
                0,
                es(
                    json!({"dataFrom": [{"find": {"path": "b"}, "sourceRef": {"generatorRef": {"kind": "Password", "name": "p"}}}]}),
                ),
            ),
            "extract, find, or generatorRef cannot be set at the same time",
        );
        assert_refused(
            cel_errors(
                0,
                es(
                    json!({"dataFrom": [{"rewrite": [{"regexp": {"source": "a", "target": "b"}}]}]}),
                ),
            ),
            "either extract, find, or sourceRef must be set",
        );
        assert_eq!(
            cel_errors(
                0,
                es(
                    json!({"dataFrom": [{"sourceRef": {"generatorRef": {"kind": "Password", "name": "p"}}}]})
                )
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn cel_refuses_privileged_templates() {
        assert_refused(
            cel_errors(
                0,
                es(
                    json!({"target": {"template": {"type": "bootstrap.kubernetes.io/token"}}, "dataFrom": [{"extract": {"key": "k"}}]}),
                ),
            ),
            "bootstrap.kubernetes.io/token",
        );
        assert_refused(
            cel_errors(
                0,
                es(json!({"target": {"template": {
                    "type": "kubernetes.io/service-account-token",
                    "metadata": {"annotations": {"kubernetes.io/service-account.name": "admin"}}
                }}, "dataFrom": [{"extract": {"key": "k"}}]})),
            ),
            "with annotation",
        );
        assert_refused(
            cel_errors(
                0,
                es(json!({"target": {"template": {
                    "type": "kubernetes.io/service-account-token",
                    "templateFrom": [{"target": "annotations", "literal": "a: b"}]
                }}, "dataFrom": [{"extract": {"key": "k"}}]})),
            ),
            "with templateFrom target",
        );
    }

    #[test]
    fn cel_refuses_template_from_targets_a_secret_cannot_take() {
        let with_target = |target: &str| {
            cel_errors(
                0,
                es(
                    json!({"target": {"template": {"templateFrom": [{"target": target, "literal": "a: b"}]}},
                          "dataFrom": [{"extract": {"key": "k"}}]}),
                ),
            )
        };
        assert_refused(
            with_target("metadata.ownerReferences"),
            "templateFrom target is not allowed",
        );
        assert_refused(with_target("type"), "templateFrom target is not allowed");
        for ok in ["Data", "data", "Annotations", "LABELS", ""] {
            assert_eq!(with_target(ok), Vec::<String>::new(), "{ok}");
        }
    }

    fn store(provider: Value) -> Value {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
               "metadata": {"name": "s", "namespace": "app"}, "spec": {"provider": provider}})
    }

    #[test]
    fn cel_checks_aws_provider_rules() {
        assert_eq!(
            cel_errors(
                1,
                store(json!({"aws": {"service": "SecretsManager", "region": "eu-west-1"}}))
            ),
            Vec::<String>::new()
        );
        assert_refused(
            cel_errors(
                1,
                store(
                    json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                     "customSessionTags": {"esoNamespace": "x"}}}),
                ),
            ),
            "reserved keys",
        );
        assert_refused(
            cel_errors(
                1,
                store(
                    json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                     "secretsManager": {"recoveryWindowInDays": 3}}}),
                ),
            ),
            "between 7 and 30",
        );
        assert_refused(
            cel_errors(
                1,
                store(
                    json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                     "auth": {"secretRef": {}, "jwt": {}}}}),
                ),
            ),
            "only one of auth.secretRef or auth.jwt",
        );
    }

    #[test]
    fn store_schema_preserves_unknown_providers_and_limits_to_one() {
        let schema = schema_of(1);
        let provider = &schema["properties"]["spec"]["properties"]["provider"];
        assert_eq!(
            provider["x-kubernetes-preserve-unknown-fields"],
            json!(true)
        );
        assert_eq!(provider["minProperties"], json!(1));
        assert_eq!(provider["maxProperties"], json!(1));
        assert!(provider["properties"]["aws"]["properties"]["region"].is_object());
        assert!(provider["properties"]["fake"]["properties"]["data"].is_object());
    }

    /// The plugin-typed providers come from hand-kept `schema.json` files: they must stay
    /// structural (the API server refuses the CRD otherwise) and use OpenAPI's spelling.
    #[test]
    fn plugin_typed_providers_are_structural_schemas() {
        fn check(node: &Value, path: &str) {
            let map = node
                .as_object()
                .unwrap_or_else(|| panic!("{path}: not an object"));
            assert!(map.contains_key("type"), "{path}: every node needs a type");
            for banned in [
                "$schema",
                "contentEncoding",
                "const",
                "oneOf",
                "anyOf",
                "$ref",
            ] {
                assert!(
                    !map.contains_key(banned),
                    "{path}: {banned} is not OpenAPI v3 structural"
                );
            }
            if let Some(extra) = map.get("additionalProperties") {
                assert!(
                    extra.is_object(),
                    "{path}: additionalProperties must be a schema"
                );
                assert!(
                    !map.contains_key("properties"),
                    "{path}: properties or additionalProperties"
                );
                check(extra, &format!("{path}{{}}"));
            }
            for (name, sub) in map
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                check(sub, &format!("{path}.{name}"));
            }
            if let Some(items) = map.get("items") {
                check(items, &format!("{path}[]"));
            }
        }
        let schema = schema_of(1);
        let provider = &schema["properties"]["spec"]["properties"]["provider"];
        for (name, _) in crate::PLUGIN_SCHEMAS {
            check(
                &provider["properties"][name],
                &format!("spec.provider.{name}"),
            );
        }
        let vault = &provider["properties"]["vault"]["properties"];
        assert_eq!(vault["caBundle"]["format"], json!("byte"));
        assert_eq!(vault["version"]["default"], json!("v2"));
        assert_eq!(
            provider["properties"]["webhook"]["properties"]["auth"]["maxProperties"],
            json!(1)
        );
        assert_eq!(
            provider["properties"]["kubernetes"]["properties"]["auth"]["properties"]["token"]["properties"]
                ["bearerToken"]["properties"]["name"]["pattern"],
            json!(crate::meta::DNS1123_SUBDOMAIN)
        );
    }

    #[test]
    fn cluster_store_schema_matches_the_namespaced_store_schema() {
        let spec = |i: usize| schema_of(i)["properties"]["spec"].clone();
        assert_eq!(spec(1)["properties"], spec(2)["properties"]);
        assert_eq!(spec(1)["required"], spec(2)["required"]);
    }

    /// Collects every schema node carrying `x-kubernetes-validations`.
    fn nodes_with_rules<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
        match node {
            Value::Object(map) => {
                if map.contains_key("x-kubernetes-validations") {
                    out.push(node);
                }
                map.values().for_each(|v| nodes_with_rules(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| nodes_with_rules(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_cel_rule_compiles() {
        use kube::core::cel::{ScopeContext, analyze_rule, compile_schema};
        let mut checked = 0;
        for i in 0..3 {
            let schema = schema_of(i);
            let mut nodes = Vec::new();
            nodes_with_rules(&schema, &mut nodes);
            for node in nodes {
                let compiled = compile_schema(node);
                assert!(
                    !compiled.has_errors(),
                    "{:?}",
                    compiled.compilation_errors()
                );
                for rule in node["x-kubernetes-validations"].as_array().unwrap() {
                    let rule = rule["rule"].as_str().unwrap();
                    // The rule must at least parse and type-check in CEL.
                    let _ = analyze_rule(rule, &compiled, ScopeContext::CrdValidation);
                    checked += 1;
                }
            }
        }
        // ExternalSecret: 2 spec + 3 target + 3 template + 2 dataFrom + 1 sourceRef rules;
        // each store kind: 1 customSessionTags + 1 auth + 2 secretsManager.
        assert_eq!(checked, 11 + 4 + 4);
    }

    /// The API server refuses rules whose estimated cost exceeds its budget; the estimate is
    /// bounded only if every list a rule iterates has maxItems and every string it compares
    /// has maxLength. (kube-cel's own estimator is nondeterministic here, so the bounds are
    /// checked directly.)
    #[test]
    fn lists_and_strings_iterated_by_cel_rules_are_bounded() {
        let spec = &schema_of(0)["properties"]["spec"]["properties"];
        assert_eq!(spec["data"]["maxItems"], json!(200));
        assert_eq!(
            spec["data"]["items"]["properties"]["secretKey"]["maxLength"],
            json!(253)
        );
        let template = &spec["target"]["properties"]["template"]["properties"];
        assert_eq!(template["templateFrom"]["maxItems"], json!(100));
        assert_eq!(
            template["templateFrom"]["items"]["properties"]["target"]["maxLength"],
            json!(253)
        );
    }
}
