//! Applying the project's own YAML manifests (deploy/rbac.yaml, crds/) to a test cluster with
//! server-side apply, the way `kubectl apply --server-side` would, so tests exercise exactly the
//! files users apply.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use kube::runtime::wait::{await_condition, conditions};
use serde::Deserialize as _;

/// The field manager name the harness applies with.
pub const FIELD_MANAGER: &str = "esox-e2e";

/// Splits a multi-document YAML text into objects, skipping empty documents.
pub fn parse_documents(yaml: &str) -> anyhow::Result<Vec<DynamicObject>> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_yaml::Value::deserialize(document)?;
        if value.is_null() {
            continue;
        }
        let json = serde_json::to_value(value)?;
        let object: DynamicObject =
            serde_json::from_value(json).context("a document is not a Kubernetes object")?;
        objects.push(object);
    }
    Ok(objects)
}

/// Applies every object in `yaml` (server-side apply, forced) and returns them as applied.
pub async fn apply_yaml(client: &kube::Client, yaml: &str) -> anyhow::Result<Vec<DynamicObject>> {
    let mut applied = Vec::new();
    for object in parse_documents(yaml)? {
        let types = object
            .types
            .clone()
            .context("an object has no apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let name = object
            .metadata
            .name
            .clone()
            .context("an object has no metadata.name")?;
        let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("the API server does not serve {gvk:?}"))?;
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                object.metadata.namespace.as_deref().unwrap_or("default"),
                &resource,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let result = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .with_context(|| format!("applying {} {name}", types.kind))?;
        applied.push(result);
    }
    Ok(applied)
}

/// Applies every `*.yaml`/`*.yml` file in `dir` (sorted by name) and waits until each
/// CustomResourceDefinition among them is Established.
pub async fn install_crds(client: &kube::Client, dir: &Path) -> anyhow::Result<()> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the CRD folder {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        })
        .collect();
    files.sort();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in files {
        let yaml = std::fs::read_to_string(&file)?;
        let applied = apply_yaml(client, &yaml)
            .await
            .with_context(|| format!("applying {}", file.display()))?;
        for object in applied {
            let is_crd = object
                .types
                .as_ref()
                .is_some_and(|t| t.kind == "CustomResourceDefinition");
            if let (true, Some(name)) = (is_crd, object.metadata.name) {
                tokio::time::timeout(
                    Duration::from_secs(60),
                    await_condition(crds.clone(), &name, conditions::is_crd_established()),
                )
                .await
                .with_context(|| format!("CRD {name} not Established within 60s"))??;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_documents_skips_empty_documents_and_keeps_kinds() {
        let yaml = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\n\
                    apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: b\n  namespace: a\n";
        let objects = parse_documents(yaml).unwrap();
        let kinds: Vec<_> = objects
            .iter()
            .map(|o| o.types.as_ref().unwrap().kind.as_str())
            .collect();
        assert_eq!(kinds, ["Namespace", "ServiceAccount"]);
        assert_eq!(objects[1].metadata.namespace.as_deref(), Some("a"));
    }

    #[test]
    fn project_rbac_manifest_grants_what_the_brief_lists() {
        let yaml = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rbac.yaml"),
        )
        .unwrap();
        let objects = parse_documents(&yaml).unwrap();
        let kinds: Vec<_> = objects
            .iter()
            .map(|o| o.types.as_ref().unwrap().kind.as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding"
            ]
        );
        // Leases only in the controller's own namespace (leader election).
        let leases = &objects[4];
        assert_eq!(leases.metadata.namespace.as_deref(), Some("esox-system"));
        assert_eq!(
            leases.data["rules"][0]["resources"],
            serde_json::json!(["leases"])
        );
        let role = &objects[2];
        let rules = role.data["rules"].as_array().unwrap();
        let secrets = rules
            .iter()
            .find(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == "secrets")
            })
            .unwrap();
        // Server-side apply is a PATCH: no `update` on Secrets (least privilege; the e2e
        // suites run the controller under exactly this role).
        assert_eq!(
            secrets["verbs"],
            serde_json::json!(["get", "list", "watch", "create", "patch", "delete"])
        );
    }
}
