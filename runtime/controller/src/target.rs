//! The object an ExternalSecret writes: a Secret, or, for ESO's generic targets
//! (`target.manifest`, only with `--unsafe-allow-generic-targets`), a ConfigMap.
//!
//! Both go through the same pipeline (`esox_sync::build` and `plan_write`: ownership, one field
//! manager per ExternalSecret, creation and deletion policies, conditional writes, the
//! data-hash that detects drift); this module is the only place that knows which API the
//! target lives in. A ConfigMap holds each UTF-8 value under `data` and every other value under
//! `binaryData` ([`esox_sync::config_map_manifest`]); read back, both are the target's data.
//! Other generic kinds (custom resources) are refused with a clear message.

use std::collections::BTreeSet;

use esox_api::ExternalSecret;
use esox_sync::hash::LABEL_CREATED_BY;
use esox_sync::write::Owner;
use esox_sync::{Delete, ExistingSecret, TargetMeta};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};

use crate::managed_fields::managed_data_keys;

/// ESO's error when an ExternalSecret names a generic target and the flag is off.
pub const GENERIC_TARGETS_DISABLED: &str =
    "generic targets are disabled. Enable with --unsafe-allow-generic-targets flag";

/// The kind of object an ExternalSecret writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// A Secret (no `target.manifest`).
    Secret,
    /// A ConfigMap (`target.manifest: {apiVersion: v1, kind: ConfigMap}`).
    ConfigMap,
}

impl TargetKind {
    /// The kind this ExternalSecret writes, or why it cannot be written (the detail of an
    /// "invalid generic target" condition): generic targets need the operator's
    /// `--unsafe-allow-generic-targets` (`allow`), esox writes ConfigMaps among them, and a
    /// ConfigMap has no `type` for `template.type` to set.
    pub fn of(es: &ExternalSecret, allow: bool) -> Result<TargetKind, String> {
        let Some(target) = es.spec.target.as_ref() else {
            return Ok(TargetKind::Secret);
        };
        let Some(manifest) = target.manifest.as_ref() else {
            return Ok(TargetKind::Secret);
        };
        if !allow {
            return Err(GENERIC_TARGETS_DISABLED.into());
        }
        if manifest.api_version != "v1" || manifest.kind != "ConfigMap" {
            return Err(format!(
                "target.manifest: esox writes generic targets of apiVersion \"v1\", kind \"ConfigMap\" only, not apiVersion {:?}, kind {:?}",
                manifest.api_version, manifest.kind
            ));
        }
        if let Some(t) = target
            .template
            .as_ref()
            .and_then(|t| t.type_.as_deref())
            .filter(|t| !t.is_empty() && *t != "Opaque")
        {
            return Err(format!(
                "target.template.type {t:?}: a ConfigMap has no type; remove template.type or write a Secret"
            ));
        }
        Ok(TargetKind::ConfigMap)
    }

    /// "Secret" or "ConfigMap", for messages.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Secret => "Secret",
            TargetKind::ConfigMap => "ConfigMap",
        }
    }

    /// The name under which the controller remembers the resourceVersions it wrote and saw:
    /// a Secret's own name, `configmap:<name>` for a ConfigMap (no Secret name has a colon).
    pub fn write_key(self, name: &str) -> String {
        match self {
            TargetKind::Secret => name.to_string(),
            TargetKind::ConfigMap => format!("configmap:{name}"),
        }
    }

    /// The apply body for this kind, from the Secret manifest the write plan made.
    pub fn manifest(self, secret_manifest: Value) -> Value {
        match self {
            TargetKind::Secret => secret_manifest,
            TargetKind::ConfigMap => esox_sync::config_map_manifest(secret_manifest),
        }
    }
}

/// The target as it exists: its metadata for the write plan, its data for the build.
pub struct Current {
    /// Name, uid, resourceVersion, controller owner, created-by label.
    pub meta: TargetMeta,
    /// Data, type, labels, annotations, immutability, managed keys.
    pub existing: ExistingSecret,
}

/// The target's metadata as the write plan needs it (no values).
pub fn target_meta(meta: &ObjectMeta) -> TargetMeta {
    TargetMeta {
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        controller_owner: controller_owner(meta.owner_references.as_deref().unwrap_or_default()),
        created_by: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_CREATED_BY))
            .cloned(),
    }
}

/// The controller owner among `refs`, as the write plan sees it.
pub fn controller_owner(refs: &[OwnerReference]) -> Option<Owner> {
    refs.iter()
        .find(|o| o.controller == Some(true))
        .map(|o| Owner {
            kind: o.kind.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
        })
}

/// The managed keys of a target: those this ExternalSecret's field manager owns, and those
/// ESO's owned for it (keys ESO wrote under Merge stay this ExternalSecret's after a switch).
fn managed_keys(meta: &ObjectMeta, es_name: &str) -> BTreeSet<String> {
    let fields = meta.managed_fields.as_deref().unwrap_or_default();
    managed_data_keys(fields, &esox_sync::field_manager(es_name))
        .into_iter()
        .chain(managed_data_keys(
            fields,
            &esox_sync::write::eso_field_manager(es_name),
        ))
        .collect()
}

/// An existing Secret as the build sees it.
pub fn existing_secret(s: &Secret, es_name: &str) -> ExistingSecret {
    ExistingSecret {
        type_: s.type_.clone().unwrap_or_default(),
        data: s
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
        labels: s.metadata.labels.clone().unwrap_or_default(),
        annotations: s.metadata.annotations.clone().unwrap_or_default(),
        immutable: s.immutable.unwrap_or(false),
        managed_data_keys: managed_keys(&s.metadata, es_name),
    }
}

/// An existing ConfigMap as the build sees it: `data` and `binaryData` together, type
/// "Opaque" (what the build renders for a target without `template.type`).
pub fn existing_config_map(c: &ConfigMap, es_name: &str) -> ExistingSecret {
    let text = c
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()));
    let binary = c
        .binary_data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0));
    ExistingSecret {
        type_: "Opaque".into(),
        data: text.chain(binary).collect(),
        labels: c.metadata.labels.clone().unwrap_or_default(),
        annotations: c.metadata.annotations.clone().unwrap_or_default(),
        immutable: c.immutable.unwrap_or(false),
        managed_data_keys: managed_keys(&c.metadata, es_name),
    }
}

/// Read the target `name` in `namespace`; `None` when it does not exist.
pub async fn read(
    client: &kube::Client,
    kind: TargetKind,
    namespace: &str,
    name: &str,
    es_name: &str,
) -> Result<Option<Current>, kube::Error> {
    Ok(match kind {
        TargetKind::Secret => Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|s| Current {
                meta: target_meta(&s.metadata),
                existing: existing_secret(&s, es_name),
            }),
        TargetKind::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|c| Current {
                meta: target_meta(&c.metadata),
                existing: existing_config_map(&c, es_name),
            }),
    })
}

/// Read only the target's metadata; `None` when it does not exist.
pub async fn read_meta(
    client: &kube::Client,
    kind: TargetKind,
    namespace: &str,
    name: &str,
) -> Result<Option<TargetMeta>, kube::Error> {
    Ok(match kind {
        TargetKind::Secret => Api::<Secret>::namespaced(client.clone(), namespace)
            .get_metadata_opt(name)
            .await?
            .map(|m| target_meta(&m.metadata)),
        TargetKind::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .get_metadata_opt(name)
            .await?
            .map(|m| target_meta(&m.metadata)),
    })
}

/// What an apply left: the new resourceVersion and every data key the object now holds.
pub struct Written {
    /// The object's resourceVersion after the write.
    pub resource_version: Option<String>,
    /// Its data keys (a ConfigMap's `data` and `binaryData`).
    pub keys: BTreeSet<String>,
}

fn secret_written(s: Secret) -> Written {
    Written {
        keys: s.data.unwrap_or_default().into_keys().collect(),
        resource_version: s.metadata.resource_version,
    }
}

fn config_map_written(c: ConfigMap) -> Written {
    Written {
        keys: c
            .data
            .unwrap_or_default()
            .into_keys()
            .chain(c.binary_data.unwrap_or_default().into_keys())
            .collect(),
        resource_version: c.metadata.resource_version,
    }
}

/// Server-side apply `body` (forced, as `field_manager`) to the target `name`.
pub async fn apply(
    client: &kube::Client,
    kind: TargetKind,
    namespace: &str,
    name: &str,
    field_manager: &str,
    body: Value,
) -> Result<Written, kube::Error> {
    let params = PatchParams::apply(field_manager).force();
    Ok(match kind {
        TargetKind::Secret => secret_written(
            Api::<Secret>::namespaced(client.clone(), namespace)
                .patch(name, &params, &Patch::Apply(body))
                .await?,
        ),
        TargetKind::ConfigMap => config_map_written(
            Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .patch(name, &params, &Patch::Apply(body))
                .await?,
        ),
    })
}

/// Remove `keys` from the target, only over resourceVersion `rv` (a merge patch; for a
/// ConfigMap from `data` and `binaryData` both, wherever each is).
pub async fn remove_keys(
    client: &kube::Client,
    kind: TargetKind,
    namespace: &str,
    name: &str,
    rv: Option<&str>,
    keys: &BTreeSet<String>,
) -> Result<Written, kube::Error> {
    let nulls: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    let params = PatchParams::default();
    Ok(match kind {
        TargetKind::Secret => secret_written(
            Api::<Secret>::namespaced(client.clone(), namespace)
                .patch(
                    name,
                    &params,
                    &Patch::Merge(json!({"metadata": {"resourceVersion": rv}, "data": nulls})),
                )
                .await?,
        ),
        TargetKind::ConfigMap => config_map_written(
            Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .patch(
                    name,
                    &params,
                    &Patch::Merge(json!({
                        "metadata": {"resourceVersion": rv},
                        "data": nulls,
                        "binaryData": nulls,
                    })),
                )
                .await?,
        ),
    })
}

/// Delete this incarnation of the target only (uid precondition). Already gone, or replaced
/// by another object of the same name (the precondition's conflict), both mean there is
/// nothing of ours left to delete; every other error is the caller's to report.
pub async fn delete_exactly(
    client: &kube::Client,
    kind: TargetKind,
    namespace: &str,
    delete: &Delete,
) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(delete.uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let result = match kind {
        TargetKind::Secret => Api::<Secret>::namespaced(client.clone(), namespace)
            .delete(&delete.name, &params)
            .await
            .map(|_| ()),
        TargetKind::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .delete(&delete.name, &params)
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_api::{ExternalSecretSpec, ExternalSecretTarget, ManifestReference};

    fn es(manifest: Option<(&str, &str)>, type_: Option<&str>) -> ExternalSecret {
        let mut target = ExternalSecretTarget {
            manifest: manifest.map(|(a, k)| ManifestReference {
                api_version: a.into(),
                kind: k.into(),
            }),
            ..Default::default()
        };
        if let Some(t) = type_ {
            target.template = Some(esox_api::ExternalSecretTemplate {
                type_: Some(t.into()),
                ..Default::default()
            });
        }
        ExternalSecret::new(
            "es",
            ExternalSecretSpec {
                target: Some(target),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_target_kind_follows_the_manifest_and_the_operators_flag() {
        assert_eq!(
            TargetKind::of(&es(None, None), false),
            Ok(TargetKind::Secret)
        );
        let cm = es(Some(("v1", "ConfigMap")), None);
        assert_eq!(
            TargetKind::of(&cm, false).unwrap_err(),
            GENERIC_TARGETS_DISABLED
        );
        assert_eq!(TargetKind::of(&cm, true), Ok(TargetKind::ConfigMap));
        let opaque = es(Some(("v1", "ConfigMap")), Some("Opaque"));
        assert_eq!(TargetKind::of(&opaque, true), Ok(TargetKind::ConfigMap));
        let typed = es(Some(("v1", "ConfigMap")), Some("kubernetes.io/tls"));
        let err = TargetKind::of(&typed, true).unwrap_err();
        assert!(err.contains("a ConfigMap has no type"), "{err}");
        for (api, kind) in [("argoproj.io/v1alpha1", "Application"), ("v2", "ConfigMap")] {
            let err = TargetKind::of(&es(Some((api, kind)), None), true).unwrap_err();
            assert!(err.contains(kind) && err.contains("only"), "{err}");
        }
    }

    #[test]
    fn remembered_versions_of_a_config_map_never_collide_with_a_secrets() {
        assert_eq!(TargetKind::Secret.write_key("db"), "db");
        assert_ne!(
            TargetKind::ConfigMap.write_key("db"),
            TargetKind::Secret.write_key("db")
        );
    }

    #[test]
    fn a_config_maps_data_and_binary_data_are_the_targets_data() {
        use k8s_openapi::ByteString;
        let cm = ConfigMap {
            data: Some([("t".to_string(), "text".to_string())].into()),
            binary_data: Some([("b".to_string(), ByteString(vec![0xff]))].into()),
            immutable: Some(true),
            ..Default::default()
        };
        let e = existing_config_map(&cm, "es");
        assert_eq!(e.data.get("t").map(Vec::as_slice), Some(&b"text"[..]));
        assert_eq!(e.data.get("b").map(Vec::as_slice), Some(&[0xff][..]));
        assert_eq!(e.type_, "Opaque");
        assert!(e.immutable);
    }
}
