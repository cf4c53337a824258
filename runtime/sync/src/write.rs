//! The write plan: what the controller may do to the target Secret, decided without I/O.
//!
//! `build` says what the Secret should hold; this module decides whether and how esox may
//! write it, from what the controller read of the Secret's metadata ([`TargetMeta`]):
//!
//! - **Ownership** ([`check_ownership`]): a Secret whose controller owner is another
//!   ExternalSecret is refused under every creation policy (ESO's `target is owned by another
//!   ExternalSecret`), before any provider is called.
//! - **One field manager per ExternalSecret** ([`field_manager`]), for every policy: two
//!   ExternalSecrets (or an ExternalSecret and a person) never share server-side apply
//!   ownership, so one cannot strip another's owner reference or keys by applying.
//! - **Conditional writes** ([`Precondition`]): a Secret esox saw absent is created only if it
//!   is still absent, an existing one is written only at the resourceVersion esox read, so two
//!   racing writers get a conflict instead of silently overwriting each other.
//! - **Deletes** ([`Delete`]) only of a Secret this ExternalSecret owns (controller reference
//!   with its uid) or created (its `created-by` label), always with a uid precondition so a
//!   Secret recreated meanwhile by someone else is never deleted.
//!
//! The controller executes the plan ([`WritePlan`]) and `esox render` prints its manifest:
//! both use [`secret_manifest`], so there is one definition of the object esox writes.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use esox_api::{CreationPolicy, ExternalSecret};
use serde_json::{Value, json};

use crate::build::{Action, DesiredSecret, ExistingSecret, Outcome};
use crate::error::{SyncError, reason};
use crate::hash::created_by_label;

/// The prefix of every field manager esox writes Secrets under (`esox/<ExternalSecret>`).
pub const FIELD_MANAGER_PREFIX: &str = "esox";

/// The ExternalSecret a plan is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Writer {
    /// Its namespace (the Secret's too).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid (empty only offline, in `esox render`).
    pub uid: String,
}

impl Writer {
    /// The writer of `es`.
    pub fn of(es: &ExternalSecret) -> Self {
        Writer {
            namespace: es.metadata.namespace.clone().unwrap_or_default(),
            name: es.metadata.name.clone().unwrap_or_default(),
            uid: es.metadata.uid.clone().unwrap_or_default(),
        }
    }

    /// The value of the `created-by` label this writer puts on Secrets it creates (Owner).
    pub fn created_by(&self) -> String {
        created_by_label(&self.namespace, &self.name)
    }
}

/// A Secret's controller owner reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Its kind (`ExternalSecret`, `Deployment`, ...).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

/// What the controller read of an existing Secret, values excluded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetMeta {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Its resourceVersion when read.
    pub resource_version: String,
    /// Its controller owner, if any.
    pub controller_owner: Option<Owner>,
    /// Its `reconcile.external-secrets.io/created-by` label, if any.
    pub created_by: Option<String>,
}

impl TargetMeta {
    /// Whether `writer` owns this Secret (controller reference with its uid) or created it
    /// (its created-by label): the only Secrets esox deletes.
    pub fn belongs_to(&self, writer: &Writer) -> bool {
        let owned = self.controller_owner.as_ref().is_some_and(|o| {
            o.kind == "ExternalSecret" && !writer.uid.is_empty() && o.uid == writer.uid
        });
        owned || self.created_by.as_deref() == Some(writer.created_by().as_str())
    }
}

/// Refuse a Secret whose controller owner is another ExternalSecret (any creation policy).
/// An owner of the same name but another uid is an earlier ExternalSecret of that name: its
/// Secret goes with garbage collection, and this one creates its own afterwards.
pub fn check_ownership(writer: &Writer, current: Option<&TargetMeta>) -> Result<(), SyncError> {
    let Some(current) = current else {
        return Ok(());
    };
    match &current.controller_owner {
        Some(owner) if owner.kind == "ExternalSecret" && owner.uid != writer.uid => {
            Err(SyncError::OwnedByAnother {
                secret: format!("{}/{}", writer.namespace, current.name),
                owner: owner.name.clone(),
                same_name: owner.name == writer.name,
            })
        }
        _ => Ok(()),
    }
}

/// The field manager of this ExternalSecret's Secret writes: `esox/<name>`, or a hash of the
/// name when that would pass the API server's 128-character limit. One per ExternalSecret
/// under every policy, so server-side apply keeps each writer's fields apart.
pub fn field_manager(es_name: &str) -> String {
    let manager = format!("{FIELD_MANAGER_PREFIX}/{es_name}");
    if manager.len() <= 128 {
        manager
    } else {
        format!(
            "{FIELD_MANAGER_PREFIX}/{}",
            &created_by_label("", es_name)[..32]
        )
    }
}

/// The field manager ESO wrote this ExternalSecret's Secret under
/// (`externalsecrets.external-secrets.io/<name>`, or the SHA3-224 of the name past 63
/// characters): keys ESO wrote under Merge policies count as this ExternalSecret's own after a
/// migration from ESO.
pub fn eso_field_manager(es_name: &str) -> String {
    let manager = format!("externalsecrets.external-secrets.io/{es_name}");
    if manager.len() <= 63 {
        manager
    } else {
        format!(
            "externalsecrets.external-secrets.io/sha3/{}",
            created_by_label_raw(es_name)
        )
    }
}

/// SHA3-224 hex of `text` (ESO's `fqdnFor` hashes the bare name).
fn created_by_label_raw(text: &str) -> String {
    crate::hash::sha3_224_hex(text)
}

/// The condition under which a write may happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// The Secret was absent when read: create it only if it still is.
    Absent,
    /// The Secret existed at this resourceVersion: write only over that version.
    ResourceVersion(String),
}

/// A server-side apply of the Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Apply {
    /// The Secret's name.
    pub name: String,
    /// The field manager.
    pub field_manager: String,
    /// The apply body ([`secret_manifest`]).
    pub manifest: Value,
    /// When the write may happen.
    pub precondition: Precondition,
    /// Whether keys other writers added are removed after the apply (whole-Secret policies:
    /// ESO replaces the data; see [`keys_to_remove`]).
    pub remove_other_keys: bool,
    /// Keys this ExternalSecret wrote before (under its own field manager or, after a switch
    /// from ESO, ESO's) and no longer renders, under Merge policies: removed after the apply,
    /// since server-side apply drops only what the applying manager itself owned.
    pub remove_keys: BTreeSet<String>,
    /// The event to publish after the write: `Created` when the Secret was absent, `Updated`
    /// when its data changes, none when only metadata is re-applied.
    pub event: Option<(&'static str, &'static str)>,
}

/// A delete of a Secret this ExternalSecret owns or created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    /// The Secret's name.
    pub name: String,
    /// Delete only this incarnation of it.
    pub uid: String,
}

/// Everything one sync writes, in order: the Secret left under an old target name (Owner),
/// then the target itself.
#[derive(Clone, Debug, PartialEq)]
pub struct WritePlan {
    /// Delete the previous target (a changed `target.name` under Owner), if this ExternalSecret
    /// created it.
    pub delete_previous: Option<Delete>,
    /// What to do with the target.
    pub target: TargetWrite,
}

/// Ready=True message when the provider has no data under `deletionPolicy: Delete` but the
/// Secret is not this ExternalSecret's to delete (esox's own case: ESO deletes it anyway).
pub const MSG_KEPT_FOREIGN: &str = "secret kept: the provider has no data, but this ExternalSecret neither created nor owns the Secret";
/// Warning event reason for the same case.
pub const EVENT_FOREIGN_KEPT: &str = "ForeignSecretKept";

impl WritePlan {
    /// The Ready=True reason and message once this plan is carried out.
    pub fn condition(&self, outcome: &Outcome) -> (&'static str, &'static str) {
        match self.target {
            TargetWrite::KeepForeign { .. } => (reason::SECRET_SYNCED, MSG_KEPT_FOREIGN),
            _ => outcome.condition(),
        }
    }
}

/// What to do with the target Secret.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetWrite {
    /// Create or update it.
    Apply(Apply),
    /// Delete it (no data, deletionPolicy Delete).
    Delete(Delete),
    /// No data under deletionPolicy Delete, but the Secret is not this ExternalSecret's: left
    /// alone, and said so in a Warning event.
    KeepForeign {
        /// The Secret's name.
        name: String,
    },
    /// Nothing to write (Retain, Merge into a missing Secret, creationPolicy None, absent
    /// Secret to delete).
    Nothing,
}

/// The write plan for a built `outcome`. `current` is the target as read before the build
/// (`None`: absent), `previous` the Secret under the previous target name (Owner only; the
/// controller reads it when the status binding names another Secret).
pub fn plan_write(
    es: &ExternalSecret,
    outcome: &Outcome,
    existing: Option<&ExistingSecret>,
    current: Option<&TargetMeta>,
    previous: Option<&TargetMeta>,
) -> Result<WritePlan, SyncError> {
    let existing_data = existing.map(|e| &e.data);
    let writer = Writer::of(es);
    check_ownership(&writer, current)?;
    let creation = es.spec.creation_policy();
    let delete_previous = match previous {
        Some(p) if creation == CreationPolicy::Owner && p.belongs_to(&writer) => Some(Delete {
            name: p.name.clone(),
            uid: p.uid.clone(),
        }),
        _ => None,
    };
    let target = match &outcome.action {
        Action::Write(desired)
            if existing.is_some_and(|e| already_holds(e, current, desired, &writer)) =>
        {
            // Nothing would change: no write, so a Secret ESO (or an earlier esox) left intact
            // is taken over without a new resourceVersion.
            TargetWrite::Nothing
        }
        Action::Write(desired) => {
            let merge = matches!(
                creation,
                CreationPolicy::Merge | CreationPolicy::CreateOrMerge
            );
            let event = match existing_data {
                None => Some((reason::EVENT_CREATED, "secret created")),
                Some(data) if *data != desired.data => {
                    Some((reason::EVENT_UPDATED, "secret updated"))
                }
                Some(_) => None,
            };
            TargetWrite::Apply(Apply {
                name: desired.name.clone(),
                field_manager: field_manager(&writer.name),
                manifest: secret_manifest(desired, &writer, merge),
                precondition: match current {
                    None => Precondition::Absent,
                    Some(c) => Precondition::ResourceVersion(c.resource_version.clone()),
                },
                remove_other_keys: !merge && current.is_some(),
                remove_keys: match existing {
                    Some(e) if merge => e
                        .managed_data_keys
                        .iter()
                        .filter(|k| e.data.contains_key(*k) && !desired.data.contains_key(*k))
                        .cloned()
                        .collect(),
                    _ => BTreeSet::new(),
                },
                event,
            })
        }
        Action::Delete { name } => match current {
            None => TargetWrite::Nothing,
            Some(c) if c.belongs_to(&writer) => TargetWrite::Delete(Delete {
                name: name.clone(),
                uid: c.uid.clone(),
            }),
            Some(_) => TargetWrite::KeepForeign { name: name.clone() },
        },
        Action::Retain | Action::Missing | Action::Nothing => TargetWrite::Nothing,
    };
    Ok(WritePlan {
        delete_previous,
        target,
    })
}

/// Whether the existing Secret already holds everything `desired` sets: the same data, type
/// and immutability, every desired label and annotation with its value, and this writer as
/// controller owner when it must be. Labels and annotations others added are not compared.
fn already_holds(
    existing: &ExistingSecret,
    current: Option<&TargetMeta>,
    desired: &DesiredSecret,
    writer: &Writer,
) -> bool {
    let subset = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    let owner_ok = !desired.controller_owner
        || current
            .and_then(|c| c.controller_owner.as_ref())
            .is_some_and(|o| {
                o.kind == "ExternalSecret" && o.uid == writer.uid && !writer.uid.is_empty()
            });
    existing.data == desired.data
        && existing.type_ == desired.type_
        && existing.immutable == desired.immutable
        && subset(&desired.labels, &existing.labels)
        && subset(&desired.annotations, &existing.annotations)
        && owner_ok
}

/// The Secret object esox applies for `desired`: under Merge policies only the keys this
/// ExternalSecret renders (server-side apply keeps everyone else's and drops the ones it stops
/// rendering); under the others all of them, with this ExternalSecret as controller owner when
/// the policy is Owner (offline, without a uid, there is no owner to name and the reference
/// is left out). Data is base64 as the API wants it.
pub fn secret_manifest(desired: &DesiredSecret, writer: &Writer, merge: bool) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let data: BTreeMap<&String, String> = desired
        .data
        .iter()
        .filter(|(k, _)| !merge || desired.managed_data_keys.contains(*k))
        .map(|(k, v)| (k, b64.encode(v)))
        .collect();
    let mut metadata = json!({ "name": desired.name, "namespace": desired.namespace });
    if !desired.labels.is_empty() {
        metadata["labels"] = json!(desired.labels);
    }
    if !desired.annotations.is_empty() {
        metadata["annotations"] = json!(desired.annotations);
    }
    if !desired.finalizers.is_empty() {
        metadata["finalizers"] = json!(desired.finalizers);
    }
    if desired.controller_owner && !writer.uid.is_empty() {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "name": writer.name,
            "uid": writer.uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    let mut secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": desired.type_,
        "data": data,
    });
    if desired.immutable {
        secret["immutable"] = json!(true);
    }
    secret
}

/// The ConfigMap esox applies for an ExternalSecret whose `target.manifest` is a ConfigMap
/// (ESO's generic targets, behind `--unsafe-allow-generic-targets`): the Secret manifest from
/// [`secret_manifest`] with the same metadata (labels, annotations, data-hash, owner), each
/// value that is UTF-8 text under `data` as ESO writes it and every other value under
/// `binaryData` (ESO would mangle it into replacement characters), no `type`.
pub fn config_map_manifest(secret: Value) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut text = serde_json::Map::new();
    let mut binary = serde_json::Map::new();
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let raw = v
                .as_str()
                .and_then(|s| b64.decode(s).ok())
                .unwrap_or_default();
            match String::from_utf8(raw) {
                Ok(t) => text.insert(k.clone(), Value::String(t)),
                Err(_) => binary.insert(k.clone(), v.clone()),
            };
        }
    }
    let mut cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": secret.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "data": text,
    });
    if !binary.is_empty() {
        cm["binaryData"] = Value::Object(binary);
    }
    if secret.get("immutable") == Some(&json!(true)) {
        cm["immutable"] = json!(true);
    }
    cm
}

/// The keys to remove after a whole-Secret apply: what the written Secret holds beyond what
/// esox rendered (keys other writers added).
pub fn keys_to_remove<'a>(
    desired: &DesiredSecret,
    written: impl IntoIterator<Item = &'a String>,
) -> BTreeSet<String> {
    written
        .into_iter()
        .filter(|k| !desired.data.contains_key(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_api::{DeletionPolicy, ExternalSecretSpec, ExternalSecretTarget};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn es(creation: CreationPolicy) -> ExternalSecret {
        ExternalSecret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("team".into()),
                uid: Some("uid-db".into()),
                ..Default::default()
            },
            spec: ExternalSecretSpec {
                target: Some(ExternalSecretTarget {
                    creation_policy: creation,
                    deletion_policy: DeletionPolicy::Delete,
                    ..Default::default()
                }),
                ..Default::default()
            },
            status: None,
        }
    }

    fn desired(owner: bool) -> DesiredSecret {
        DesiredSecret {
            name: "db".into(),
            namespace: "team".into(),
            type_: "Opaque".into(),
            data: BTreeMap::from([
                ("password".into(), b"p".to_vec()),
                ("kept".into(), b"k".to_vec()),
            ]),
            managed_data_keys: BTreeSet::from(["password".to_string()]),
            labels: BTreeMap::from([("l".into(), "v".into())]),
            controller_owner: owner,
            ..Default::default()
        }
    }

    fn write(d: DesiredSecret) -> Outcome {
        Outcome {
            action: Action::Write(d),
            missing_provider_secrets: vec![],
        }
    }

    fn meta(owner: Option<(&str, &str)>, created_by: Option<String>) -> TargetMeta {
        TargetMeta {
            name: "db".into(),
            uid: "uid-secret".into(),
            resource_version: "41".into(),
            controller_owner: owner.map(|(name, uid)| Owner {
                kind: "ExternalSecret".into(),
                name: name.into(),
                uid: uid.into(),
            }),
            created_by,
        }
    }

    #[test]
    fn a_secret_another_external_secret_controls_is_refused_under_every_policy() {
        for policy in [
            CreationPolicy::Owner,
            CreationPolicy::Orphan,
            CreationPolicy::Merge,
            CreationPolicy::CreateOrMerge,
            CreationPolicy::None,
        ] {
            let other = meta(Some(("other", "uid-other")), None);
            let err = plan_write(
                &es(policy),
                &write(desired(false)),
                None,
                Some(&other),
                None,
            )
            .unwrap_err();
            assert_eq!(
                err.condition_message(),
                reason::MSG_ERROR_IS_OWNED,
                "{policy:?}"
            );
            assert!(err.to_string().contains("\"other\""), "{err}");
            assert!(!err.is_retryable());
        }
        // Its own Secret, an unowned one and one a Deployment controls are fine.
        let w = Writer::of(&es(CreationPolicy::Owner));
        assert!(check_ownership(&w, Some(&meta(Some(("db", "uid-db")), None))).is_ok());
        assert!(check_ownership(&w, Some(&meta(None, None))).is_ok());
        let mut deployment = meta(None, None);
        deployment.controller_owner = Some(Owner {
            kind: "Deployment".into(),
            name: "app".into(),
            uid: "u".into(),
        });
        assert!(check_ownership(&w, Some(&deployment)).is_ok());
        assert!(check_ownership(&w, None).is_ok());
    }

    #[test]
    fn an_earlier_external_secret_of_the_same_name_is_named_as_such() {
        let w = Writer::of(&es(CreationPolicy::Owner));
        let err = check_ownership(&w, Some(&meta(Some(("db", "uid-old")), None))).unwrap_err();
        assert!(err.to_string().contains("garbage collection"), "{err}");
        assert!(
            err.is_retryable(),
            "garbage collection resolves it: retried with backoff"
        );
    }

    #[test]
    fn every_policy_writes_under_its_own_field_manager() {
        for policy in [
            CreationPolicy::Owner,
            CreationPolicy::Orphan,
            CreationPolicy::Merge,
        ] {
            let plan = plan_write(&es(policy), &write(desired(false)), None, None, None).unwrap();
            let TargetWrite::Apply(apply) = plan.target else {
                panic!("{policy:?}: {plan:?}")
            };
            assert_eq!(apply.field_manager, "esox/db");
        }
        let long = "x".repeat(200);
        let m = field_manager(&long);
        assert!(m.starts_with("esox/") && m.len() <= 128, "{m}");
        assert_ne!(field_manager(&long), field_manager(&"y".repeat(200)));
    }

    #[test]
    fn an_absent_secret_is_created_only_if_still_absent_and_an_existing_one_only_at_its_version() {
        let e = es(CreationPolicy::Owner);
        let plan = plan_write(&e, &write(desired(true)), None, None, None).unwrap();
        let TargetWrite::Apply(apply) = plan.target else {
            panic!()
        };
        assert_eq!(apply.precondition, Precondition::Absent);
        assert_eq!(apply.event, Some((reason::EVENT_CREATED, "secret created")));
        assert!(!apply.remove_other_keys);

        let current = meta(Some(("db", "uid-db")), None);
        // Same data, but a label esox sets is missing: written, at the version read.
        let mut same = existing_of(&desired(true));
        same.labels.clear();
        let plan =
            plan_write(&e, &write(desired(true)), Some(&same), Some(&current), None).unwrap();
        let TargetWrite::Apply(apply) = plan.target else {
            panic!()
        };
        assert_eq!(
            apply.precondition,
            Precondition::ResourceVersion("41".into())
        );
        assert_eq!(apply.event, None, "unchanged data: no event");
        assert!(apply.remove_other_keys);

        let mut changed = existing_of(&desired(true));
        changed.data = BTreeMap::from([("password".to_string(), b"old".to_vec())]);
        let plan = plan_write(
            &e,
            &write(desired(true)),
            Some(&changed),
            Some(&current),
            None,
        )
        .unwrap();
        let TargetWrite::Apply(apply) = plan.target else {
            panic!()
        };
        assert_eq!(apply.event, Some((reason::EVENT_UPDATED, "secret updated")));
    }

    fn existing_of(d: &DesiredSecret) -> ExistingSecret {
        ExistingSecret {
            type_: d.type_.clone(),
            data: d.data.clone(),
            labels: d.labels.clone(),
            annotations: d.annotations.clone(),
            immutable: d.immutable,
            managed_data_keys: BTreeSet::new(),
        }
    }

    #[test]
    fn a_secret_that_already_holds_everything_is_not_written_again() {
        let e = es(CreationPolicy::Owner);
        let own = meta(Some(("db", "uid-db")), None);
        let mut held = existing_of(&desired(true));
        held.labels.insert("added-by-someone".into(), "x".into());
        let plan = plan_write(&e, &write(desired(true)), Some(&held), Some(&own), None).unwrap();
        assert_eq!(
            plan.target,
            TargetWrite::Nothing,
            "extra labels of others do not count"
        );
        // Not yet owned by this ExternalSecret (say ESO's Secret before takeover): written.
        let unowned = meta(None, None);
        assert!(matches!(
            plan_write(&e, &write(desired(true)), Some(&held), Some(&unowned), None)
                .unwrap()
                .target,
            TargetWrite::Apply(_)
        ));
        // A label esox sets with another value, another type, immutability: written.
        for change in 0..3 {
            let mut other = existing_of(&desired(true));
            match change {
                0 => {
                    other.labels.insert("l".into(), "changed".into());
                }
                1 => other.type_ = "kubernetes.io/tls".into(),
                _ => other.immutable = true,
            }
            assert!(
                matches!(
                    plan_write(&e, &write(desired(true)), Some(&other), Some(&own), None)
                        .unwrap()
                        .target,
                    TargetWrite::Apply(_)
                ),
                "change {change}"
            );
        }
    }

    #[test]
    fn merge_removes_the_keys_it_wrote_before_and_no_longer_renders() {
        let e = es(CreationPolicy::Merge);
        let mut d = desired(false);
        d.data = BTreeMap::from([("user".into(), b"u".to_vec()), ("b".into(), b"2".to_vec())]);
        d.managed_data_keys = BTreeSet::from(["b".to_string()]);
        let mut existing = existing_of(&d);
        existing.data =
            BTreeMap::from([("user".into(), b"u".to_vec()), ("a".into(), b"1".to_vec())]);
        // "a" was this ExternalSecret's (its manager's, or ESO's for it); "gone" is long gone.
        existing.managed_data_keys = BTreeSet::from(["a".to_string(), "gone".to_string()]);
        let current = meta(None, None);
        let plan = plan_write(&e, &write(d), Some(&existing), Some(&current), None).unwrap();
        let TargetWrite::Apply(apply) = plan.target else {
            panic!()
        };
        assert_eq!(apply.remove_keys, BTreeSet::from(["a".to_string()]));
        assert!(!apply.remove_other_keys, "the user's key stays");
    }

    #[test]
    fn esos_field_manager_name_is_reproduced() {
        assert_eq!(
            eso_field_manager("db"),
            "externalsecrets.external-secrets.io/db"
        );
        let long = "a".repeat(40);
        let m = eso_field_manager(&long);
        assert!(
            m.starts_with("externalsecrets.external-secrets.io/sha3/"),
            "{m}"
        );
        assert_eq!(
            m.len(),
            "externalsecrets.external-secrets.io/sha3/".len() + 56
        );
    }

    #[test]
    fn a_config_map_target_keeps_text_in_data_and_the_rest_in_binary_data() {
        let w = Writer::of(&es(CreationPolicy::Owner));
        let mut d = desired(true);
        d.data.insert("text".into(), b"h\xc3\xa9llo".to_vec());
        d.data.insert("bin".into(), vec![0xff, 0x00, 0xfe]);
        d.immutable = true;
        let cm = config_map_manifest(secret_manifest(&d, &w, false));
        assert_eq!(cm["kind"], "ConfigMap");
        assert_eq!(cm["apiVersion"], "v1");
        assert_eq!(cm["data"]["text"], "h\u{e9}llo");
        assert!(cm["data"].get("bin").is_none());
        assert_eq!(cm["binaryData"]["bin"], "/wD+");
        assert!(cm.get("type").is_none(), "a ConfigMap has no type");
        assert_eq!(cm["immutable"], true);
        let secret = secret_manifest(&d, &w, false);
        assert_eq!(
            cm["metadata"], secret["metadata"],
            "same labels, annotations, owner"
        );
        // Only text: no binaryData at all.
        let mut t = desired(true);
        t.data.retain(|_, v| std::str::from_utf8(v).is_ok());
        let cm = config_map_manifest(secret_manifest(&t, &w, false));
        assert!(cm.get("binaryData").is_none());
    }

    #[test]
    fn the_manifest_carries_the_owner_only_under_owner_and_only_own_keys_under_merge() {
        let w = Writer::of(&es(CreationPolicy::Owner));
        let m = secret_manifest(&desired(true), &w, false);
        assert_eq!(m["metadata"]["ownerReferences"][0]["uid"], "uid-db");
        assert_eq!(m["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(m["data"]["password"], "cA==");
        assert_eq!(m["data"]["kept"], "aw==");
        assert_eq!(m["metadata"]["labels"]["l"], "v");
        assert!(m.get("immutable").is_none());

        let m = secret_manifest(&desired(false), &w, true);
        assert!(m["metadata"].get("ownerReferences").is_none());
        assert_eq!(m["data"].as_object().unwrap().len(), 1, "{m}");
        assert_eq!(m["data"]["password"], "cA==");
    }

    #[test]
    fn only_its_own_or_created_secret_is_deleted_and_with_a_uid_precondition() {
        let e = es(CreationPolicy::Owner);
        let gone = Outcome {
            action: Action::Delete { name: "db".into() },
            missing_provider_secrets: vec![],
        };
        let w = Writer::of(&e);
        let own = meta(Some(("db", "uid-db")), None);
        let plan = plan_write(&e, &gone, None, Some(&own), None).unwrap();
        assert_eq!(
            plan.target,
            TargetWrite::Delete(Delete {
                name: "db".into(),
                uid: "uid-secret".into()
            })
        );
        let created = meta(None, Some(w.created_by()));
        assert!(matches!(
            plan_write(&e, &gone, None, Some(&created), None)
                .unwrap()
                .target,
            TargetWrite::Delete(_)
        ));
        let foreign = meta(None, Some("someone-else".into()));
        assert_eq!(
            plan_write(&e, &gone, None, Some(&foreign), None)
                .unwrap()
                .target,
            TargetWrite::KeepForeign { name: "db".into() }
        );
        assert_eq!(
            plan_write(&e, &gone, None, None, None).unwrap().target,
            TargetWrite::Nothing
        );
    }

    #[test]
    fn a_previous_target_is_deleted_only_if_this_external_secret_created_it() {
        let e = es(CreationPolicy::Owner);
        let w = Writer::of(&e);
        let mut old = meta(None, Some(w.created_by()));
        old.name = "db-old".into();
        old.uid = "uid-old-secret".into();
        let plan = plan_write(&e, &write(desired(true)), None, None, Some(&old)).unwrap();
        assert_eq!(
            plan.delete_previous,
            Some(Delete {
                name: "db-old".into(),
                uid: "uid-old-secret".into()
            })
        );
        old.created_by = Some("not-mine".into());
        let plan = plan_write(&e, &write(desired(true)), None, None, Some(&old)).unwrap();
        assert_eq!(plan.delete_previous, None);
        // Orphan never deletes an old target.
        old.created_by = Some(w.created_by());
        let plan = plan_write(
            &es(CreationPolicy::Orphan),
            &write(desired(false)),
            None,
            None,
            Some(&old),
        )
        .unwrap();
        assert_eq!(plan.delete_previous, None);
    }

    #[test]
    fn whole_secret_policies_remove_only_keys_esox_did_not_render() {
        let d = desired(false);
        let written = ["password".to_string(), "kept".into(), "added".into()];
        assert_eq!(
            keys_to_remove(&d, written.iter()),
            BTreeSet::from(["added".to_string()])
        );
        assert!(keys_to_remove(&d, written[..2].iter()).is_empty());
    }
}
