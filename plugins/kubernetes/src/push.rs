//! ESO's `PushSecret`, `DeleteSecret` and `SecretExists` for the kubernetes provider, as
//! `providers/v1/kubernetes/client.go` and `metadata.go` do them, once the target Secret has
//! been read: which request (if any) to send next. Pure, so it can be unit-tested natively;
//! [`crate::client`] sends the requests.
//!
//! What the contract hands a push differs from what ESO's provider gets: a value instead of
//! the whole source Secret. With a `property`, the value is written under that key (ESO's
//! `secretKey` push, or the source's data marshalled as JSON when ESO has no `secretKey`: the
//! host sends that JSON as the value). Without one, ESO replaces the target's data with the
//! source's: the value must then be a JSON object of the keys (strings, as ESO marshals
//! Secret data) and becomes the whole `data`. The source Secret's own labels, annotations
//! and type are not part of the contract: a push behaves as ESO's does from an `Opaque`
//! source without labels or annotations, except that an existing target keeps its type.
//!
//! Writes are ESO's: create (`POST`) when the Secret is missing, else update (`PUT` of the
//! object as read, so its `resourceVersion` makes a concurrent change a conflict), and no
//! request at all when nothing would change. No error here quotes a value.

use std::collections::BTreeMap;

use base64::Engine as _;
use esox_plugin_sdk::{Error, http, json, serde_json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::is_dns_label;
use crate::secret::Secret;

/// `apiVersion` of ESO's push metadata.
pub const METADATA_API_VERSION: &str = "kubernetes.external-secrets.io/v1alpha1";
/// `kind` of ESO's push metadata.
pub const METADATA_KIND: &str = "PushSecretMetadata";
/// Labels or annotations.
type StringMap = BTreeMap<String, String>;

/// The type of a Secret the push creates.
pub const OPAQUE: &str = "Opaque";

/// ESO's `PushSecretMetadata` for the kubernetes provider.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushMetadata {
    #[serde(default)]
    pub kind: String,
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    #[serde(default)]
    pub spec: Option<PushMetadataSpec>,
}

/// ESO's `PushSecretMetadataSpec`. The policies stay strings, as in ESO, so that an unknown
/// one is refused with ESO's own message when the metadata is merged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PushMetadataSpec {
    #[serde(default)]
    pub target_merge_policy: Option<String>,
    #[serde(default)]
    pub source_merge_policy: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub remote_namespace: Option<String>,
}

impl PushMetadata {
    fn spec(&self) -> PushMetadataSpec {
        self.spec.clone().unwrap_or_default()
    }
}

/// ESO's `metadata.ParseMetadataParameters`: no metadata (or an empty string) is none; else
/// the JSON must be a `PushSecretMetadata` of ESO's apiVersion, without unknown fields.
pub fn parse_metadata(metadata: Option<&str>) -> Result<Option<PushMetadata>, Error> {
    let Some(raw) = metadata.filter(|m| !m.trim().is_empty()) else {
        return Ok(None);
    };
    let context = "unable to parse metadata parameters";
    let meta: PushMetadata = serde_json::from_str(raw).map_err(|e| {
        Error::backend(format!(
            "{context}: failed to parse {METADATA_API_VERSION} {METADATA_KIND}: {e}"
        ))
    })?;
    if meta.api_version != METADATA_API_VERSION {
        return Err(Error::backend(format!(
            "{context}: unexpected apiVersion {:?}, expected {METADATA_API_VERSION:?}",
            meta.api_version
        )));
    }
    if meta.kind != METADATA_KIND {
        return Err(Error::backend(format!(
            "{context}: unexpected kind {:?}, expected {METADATA_KIND:?}",
            meta.kind
        )));
    }
    Ok(Some(meta))
}

/// Where the push writes: the metadata's `remoteNamespace` (only for a ClusterSecretStore,
/// as ESO), else the store's `remoteNamespace`. The name is checked, as it becomes part of
/// the request path.
pub fn target_namespace(
    meta: Option<&PushMetadata>,
    cluster_store: bool,
    store_namespace: &str,
) -> Result<String, Error> {
    let Some(ns) = meta
        .and_then(|m| m.spec.as_ref())
        .and_then(|s| s.remote_namespace.as_deref())
        .filter(|ns| !ns.is_empty())
    else {
        return Ok(store_namespace.to_string());
    };
    if !cluster_store {
        return Err(Error::backend(
            "remoteNamespace override is only supported with ClusterSecretStore",
        ));
    }
    if !is_dns_label(ns) {
        return Err(Error::backend(format!(
            "remoteNamespace {ns:?} in the push metadata is not a namespace name"
        )));
    }
    Ok(ns.to_string())
}

/// What a push writes into the Secret's data.
#[derive(Clone, PartialEq)]
pub enum Pushed {
    /// One key (`property`), the other keys kept.
    Key(String, Vec<u8>),
    /// The whole data, replacing what is there.
    Whole(BTreeMap<String, Vec<u8>>),
}

impl std::fmt::Debug for Pushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pushed::Key(k, _) => f.debug_tuple("Key").field(k).finish_non_exhaustive(),
            Pushed::Whole(m) => f
                .debug_tuple("Whole")
                .field(&m.keys().collect::<Vec<_>>())
                .finish_non_exhaustive(),
        }
    }
}

/// The data a push writes: the value under `property`, or (no property) the value as a JSON
/// object of the keys, which ESO's provider gets as the source Secret's data. Any other value
/// without a property is ESO's single-key push without a property, which ESO refuses.
pub fn pushed(property: Option<&str>, value: Vec<u8>) -> Result<Pushed, Error> {
    if let Some(p) = property.filter(|p| !p.is_empty()) {
        return Ok(Pushed::Key(p.to_string(), value));
    }
    let entries = json::object_entries(&value).map_err(|_| {
            Error::backend(
                "requires property in RemoteRef to push secret value if secret key is defined (without a property the value must be a JSON object of the Secret's keys)",
            )
    })?;
    Ok(Pushed::Whole(entries.into_iter().collect()))
}

/// The part of a Secret a push decides: its type, labels, annotations and data. A nil map
/// and an empty one are the same here, as in ESO's `equality.Semantic`.
#[derive(Clone, Default, PartialEq)]
pub struct Target {
    pub secret_type: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("type", &self.secret_type)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Target {
    /// What an existing Secret holds (as read).
    pub fn of(secret: &Secret, secret_type: Option<&str>) -> Self {
        Target {
            secret_type: secret_type
                .filter(|t| !t.is_empty())
                .unwrap_or(OPAQUE)
                .to_string(),
            labels: secret.metadata.labels.clone().unwrap_or_default(),
            annotations: secret.metadata.annotations.clone().unwrap_or_default(),
            data: secret.data.clone(),
        }
    }
}

/// ESO's `mergeSourceMetadata` for a source Secret without labels or annotations: without
/// metadata nothing; with it (policy `Merge` or `Replace`) its labels and annotations.
fn source_metadata(meta: Option<&PushMetadata>) -> Result<(StringMap, StringMap), Error> {
    let Some(meta) = meta else {
        return Ok(Default::default());
    };
    let spec = meta.spec();
    match spec.source_merge_policy.as_deref().unwrap_or("") {
        "" | "Merge" | "Replace" => Ok((
            spec.labels.unwrap_or_default(),
            spec.annotations.unwrap_or_default(),
        )),
        other => Err(Error::backend(format!(
            "failed to merge source metadata: unexpected source merge policy {other:?}"
        ))),
    }
}

/// ESO's `mergeTargetMetadata`: `Merge` (default) adds the source's labels and annotations
/// to the target's (the source winning), `Replace` sets them, `Ignore` leaves the target's.
pub fn merge_metadata(target: &mut Target, meta: Option<&PushMetadata>) -> Result<(), Error> {
    let (labels, annotations) = source_metadata(meta)?;
    let policy = meta
        .and_then(|m| m.spec.as_ref())
        .and_then(|s| s.target_merge_policy.clone())
        .unwrap_or_default();
    match policy.as_str() {
        "" | "Merge" => {
            target.labels.extend(labels);
            target.annotations.extend(annotations);
        }
        "Replace" => {
            target.labels = labels;
            target.annotations = annotations;
        }
        "Ignore" => {}
        other => {
            return Err(Error::backend(format!(
                "failed to merge target metadata: unexpected target merge policy {other:?}"
            )));
        }
    }
    Ok(())
}

/// ESO's `mergePushSecretData` applied to `current` (the existing Secret, or a new empty one):
/// metadata merged, then the data set. A new Secret is `Opaque`; an existing one keeps its type.
pub fn merge(
    current: &Target,
    meta: Option<&PushMetadata>,
    pushed: &Pushed,
) -> Result<Target, Error> {
    let mut next = current.clone();
    merge_metadata(&mut next, meta)?;
    match pushed {
        Pushed::Whole(data) => next.data = data.clone(),
        Pushed::Key(key, value) => {
            next.data.insert(key.clone(), value.clone());
        }
    }
    Ok(next)
}

/// A request to the API server. Debug leaves the body out (it holds secret values).
#[derive(Clone, PartialEq)]
pub struct ApiRequest {
    pub method: http::Method,
    pub url: String,
    pub body: Option<Value>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A Secret as read, both decoded and as the API's JSON (for an update to send back).
#[derive(Clone)]
pub struct Existing {
    pub raw: Value,
    pub secret: Secret,
}

impl Existing {
    fn secret_type(&self) -> Option<&str> {
        self.raw.get("type").and_then(Value::as_str)
    }

    fn resource_version(&self) -> Option<&str> {
        self.raw
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
    }
}

fn b64_data(data: &BTreeMap<String, Vec<u8>>) -> Value {
    Value::Object(
        data.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect(),
    )
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Set `key` of `object` to `value`, or remove it when the map is empty (Go's `omitempty`).
fn set_or_remove(object: &mut Map<String, Value>, key: &str, value: Value, empty: bool) {
    if empty {
        object.remove(key);
    } else {
        object.insert(key.to_string(), value);
    }
}

/// The object as read, with `target`'s labels, annotations, type and data: everything else
/// (resourceVersion, ownerReferences, finalizers, immutable, ...) as the API answered it.
fn updated(raw: &Value, target: &Target) -> Value {
    let mut object = raw.as_object().cloned().unwrap_or_default();
    let mut metadata = object
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    set_labels_and_annotations(&mut metadata, target);
    object.insert("metadata".into(), Value::Object(metadata));
    object.insert("type".into(), Value::String(target.secret_type.clone()));
    set_or_remove(
        &mut object,
        "data",
        b64_data(&target.data),
        target.data.is_empty(),
    );
    Value::Object(object)
}

/// The target's labels and annotations into `metadata` (removed when there are none).
fn set_labels_and_annotations(metadata: &mut Map<String, Value>, target: &Target) {
    set_or_remove(
        metadata,
        "labels",
        string_map(&target.labels),
        target.labels.is_empty(),
    );
    set_or_remove(
        metadata,
        "annotations",
        string_map(&target.annotations),
        target.annotations.is_empty(),
    );
}

/// The `POST` body of a new Secret.
fn created(namespace: &str, name: &str, target: &Target) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(name.to_string()));
    metadata.insert("namespace".into(), Value::String(namespace.to_string()));
    set_labels_and_annotations(&mut metadata, target);
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!("v1"));
    object.insert("kind".into(), json!("Secret"));
    object.insert("metadata".into(), Value::Object(metadata));
    object.insert("type".into(), Value::String(target.secret_type.clone()));
    set_or_remove(
        &mut object,
        "data",
        b64_data(&target.data),
        target.data.is_empty(),
    );
    Value::Object(object)
}

/// URLs of one Secret (`secret_url`) and of its namespace's collection (`collection_url`).
pub struct Urls<'a> {
    pub secret_url: &'a str,
    pub collection_url: &'a str,
}

/// ESO's `PushSecret` once the target was read (`existing`, `None` when it is missing):
/// `POST` a new Secret, `PUT` the changed one, or nothing when it would not change.
pub fn plan_push(
    urls: &Urls<'_>,
    namespace: &str,
    name: &str,
    existing: Option<&Existing>,
    meta: Option<&PushMetadata>,
    pushed: &Pushed,
) -> Result<Option<ApiRequest>, Error> {
    let Some(existing) = existing else {
        let fresh = Target {
            secret_type: OPAQUE.to_string(),
            ..Target::default()
        };
        let target = merge(&fresh, meta, pushed)?;
        return Ok(Some(ApiRequest {
            method: http::Method::POST,
            url: urls.collection_url.to_string(),
            body: Some(created(namespace, name, &target)),
        }));
    };
    let current = Target::of(&existing.secret, existing.secret_type());
    let target = merge(&current, meta, pushed)?;
    if target == current {
        return Ok(None);
    }
    Ok(Some(ApiRequest {
        method: http::Method::PUT,
        url: urls.secret_url.to_string(),
        body: Some(updated(&existing.raw, &target)),
    }))
}

/// ESO's `DeleteSecret` once the Secret was read: nothing when it is missing or lacks the
/// property; a `PUT` without the property when other keys remain; else a `DELETE` of the
/// whole Secret (with no property, or when the property was its last key; then on condition
/// that it is still the version read, so keys added meanwhile are not lost).
pub fn plan_delete(
    secret_url: &str,
    property: Option<&str>,
    existing: Option<&Existing>,
) -> Option<ApiRequest> {
    let existing = existing?;
    let property = property.filter(|p| !p.is_empty());
    if let Some(p) = property {
        if !existing.secret.data.contains_key(p) {
            return None;
        }
        if existing.secret.data.len() > 1 {
            let mut target = Target::of(&existing.secret, existing.secret_type());
            target.data.remove(p);
            return Some(ApiRequest {
                method: http::Method::PUT,
                url: secret_url.to_string(),
                body: Some(updated(&existing.raw, &target)),
            });
        }
    }
    let body = match (property, existing.resource_version()) {
        (Some(_), Some(rv)) => Some(json!({
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": rv},
        })),
        _ => None,
    };
    Some(ApiRequest {
        method: http::Method::DELETE,
        url: secret_url.to_string(),
        body,
    })
}

/// ESO's `SecretExists` once the Secret was read: it exists, and has the property if one is
/// given.
pub fn exists(secret: Option<&Secret>, property: Option<&str>) -> bool {
    match (secret, property.filter(|p| !p.is_empty())) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(s), Some(p)) => s.data.contains_key(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::decode_secret;

    const SECRET_URL: &str = "https://k8s:6443/api/v1/namespaces/team/secrets/db";
    const COLLECTION: &str = "https://k8s:6443/api/v1/namespaces/team/secrets";
    const URLS: Urls<'static> = Urls {
        secret_url: SECRET_URL,
        collection_url: COLLECTION,
    };
    const VALUE: &str = "s3cr3t-VALUE-xyzzy";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn existing(raw: Value) -> Existing {
        let secret = decode_secret(raw.to_string().as_bytes()).unwrap();
        Existing { raw, secret }
    }

    /// A Secret as the API answers it, with fields a PUT must carry back unchanged.
    fn remote_db(data: Value, labels: Value, annotations: Value) -> Existing {
        let mut metadata = json!({
            "name": "db", "namespace": "team", "resourceVersion": "41", "uid": "u-1",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-2"}],
            "finalizers": ["example.com/keep"],
        });
        if !labels.is_null() {
            metadata["labels"] = labels;
        }
        if !annotations.is_null() {
            metadata["annotations"] = annotations;
        }
        existing(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata, "data": data,
        }))
    }

    fn meta(spec: Value) -> Option<PushMetadata> {
        parse_metadata(Some(
            &json!({"apiVersion": METADATA_API_VERSION, "kind": METADATA_KIND, "spec": spec})
                .to_string(),
        ))
        .unwrap()
    }

    fn key(k: &str, v: &str) -> Pushed {
        Pushed::Key(k.into(), v.as_bytes().to_vec())
    }

    #[test]
    fn metadata_is_parsed_as_eso_parses_it() {
        assert_eq!(parse_metadata(None).unwrap(), None);
        assert_eq!(parse_metadata(Some("")).unwrap(), None);
        let m = meta(json!({
            "sourceMergePolicy": "Replace", "targetMergePolicy": "Ignore",
            "labels": {"a": "1"}, "annotations": {"b": "2"}, "remoteNamespace": "other"
        }))
        .unwrap();
        let spec = m.spec.unwrap();
        assert_eq!(spec.source_merge_policy.as_deref(), Some("Replace"));
        assert_eq!(spec.target_merge_policy.as_deref(), Some("Ignore"));
        assert_eq!(spec.labels.unwrap()["a"], "1");
        assert_eq!(spec.annotations.unwrap()["b"], "2");
        assert_eq!(spec.remote_namespace.as_deref(), Some("other"));
        for (bad, why) in [
            ("{}", "unexpected apiVersion \"\""),
            (
                "--- not json ---",
                "failed to parse kubernetes.external-secrets.io/v1alpha1 PushSecretMetadata",
            ),
            (
                r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"Other"}"#,
                "unexpected kind \"Other\", expected \"PushSecretMetadata\"",
            ),
            (
                r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"labelz":{}}}"#,
                "unknown field `labelz`",
            ),
            (
                r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","extra":1}"#,
                "unknown field `extra`",
            ),
        ] {
            assert!(
                matches!(parse_metadata(Some(bad)), Err(Error::Backend(m)) if m.starts_with("unable to parse metadata parameters: ") && m.contains(why)),
                "{bad}: {:?}",
                parse_metadata(Some(bad))
            );
        }
    }

    #[test]
    fn remote_namespace_overrides_only_for_a_cluster_store() {
        let m = meta(json!({"remoteNamespace": "target-ns"}));
        assert_eq!(target_namespace(None, false, "store").unwrap(), "store");
        assert_eq!(
            target_namespace(m.as_ref(), true, "store").unwrap(),
            "target-ns"
        );
        assert!(matches!(
            target_namespace(m.as_ref(), false, "store"),
            Err(Error::Backend(e)) if e == "remoteNamespace override is only supported with ClusterSecretStore"
        ));
        let empty = meta(json!({"remoteNamespace": ""}));
        assert_eq!(
            target_namespace(empty.as_ref(), false, "store").unwrap(),
            "store"
        );
        let bad = meta(json!({"remoteNamespace": "../kube-system"}));
        assert!(target_namespace(bad.as_ref(), true, "store").is_err());
    }

    #[test]
    fn a_push_without_property_needs_a_json_object_of_keys() {
        assert_eq!(
            pushed(Some("token"), b"raw".to_vec()).unwrap(),
            key("token", "raw")
        );
        // An empty property is none, as in ESO.
        let whole = pushed(
            Some(""),
            br#"{"a":"x","b":"y\n","n":1,"o":{"k":true}}"#.to_vec(),
        );
        let Pushed::Whole(data) = whole.unwrap() else {
            panic!("expected whole data")
        };
        assert_eq!(data["a"], b"x");
        assert_eq!(data["b"], b"y\n");
        assert_eq!(data["n"], b"1");
        assert_eq!(data["o"], br#"{"k":true}"#);
        for bad in [
            VALUE,
            "\"s3cr3t-VALUE-xyzzy\"",
            "[\"s3cr3t-VALUE-xyzzy\"]",
            "{\"s3cr3t-VALUE-xyzzy\"",
        ] {
            let err = pushed(None, bad.as_bytes().to_vec()).unwrap_err();
            assert!(
                matches!(&err, Error::Backend(m) if m.starts_with("requires property in RemoteRef to push secret value if secret key is defined")),
                "{bad}"
            );
            assert!(!format!("{err:?}").contains(VALUE));
        }
    }

    #[test]
    fn target_metadata_merges_as_eso() {
        let current = Target {
            secret_type: OPAQUE.into(),
            labels: BTreeMap::from([
                ("already".into(), "existing".into()),
                ("dev".into(), "old".into()),
            ]),
            annotations: BTreeMap::from([("already".into(), "existing".into())]),
            data: BTreeMap::new(),
        };
        let labels = |t: &Target| t.labels.clone().into_iter().collect::<Vec<_>>();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        let spec = json!({"labels": {"dev": "seb"}, "annotations": {"date": "today"}});

        // No metadata: the target's own metadata stays.
        let t = merge(&current, None, &key("k", "v")).unwrap();
        assert_eq!(t.labels, current.labels);
        assert_eq!(t.annotations, current.annotations);
        // Merge (default): added, the pushed one wins.
        let t = merge(&current, meta(spec.clone()).as_ref(), &key("k", "v")).unwrap();
        assert_eq!(labels(&t), [s("already", "existing"), s("dev", "seb")]);
        assert_eq!(t.annotations.len(), 2);
        // Replace: only the pushed ones.
        let mut replace = spec.clone();
        replace["targetMergePolicy"] = json!("Replace");
        let t = merge(&current, meta(replace).as_ref(), &key("k", "v")).unwrap();
        assert_eq!(labels(&t), [s("dev", "seb")]);
        assert_eq!(t.annotations, BTreeMap::from([s("date", "today")]));
        // Replace with nothing pushed clears them.
        let t = merge(
            &current,
            meta(json!({"targetMergePolicy": "Replace"})).as_ref(),
            &key("k", "v"),
        )
        .unwrap();
        assert!(t.labels.is_empty() && t.annotations.is_empty());
        // Ignore: untouched.
        let mut ignore = spec.clone();
        ignore["targetMergePolicy"] = json!("Ignore");
        let t = merge(&current, meta(ignore).as_ref(), &key("k", "v")).unwrap();
        assert_eq!(t.labels, current.labels);
        // sourceMergePolicy Replace: the pushed ones (the source Secret has none of its own).
        let mut source_replace = spec.clone();
        source_replace["sourceMergePolicy"] = json!("Replace");
        let t = merge(&current, meta(source_replace).as_ref(), &key("k", "v")).unwrap();
        assert_eq!(labels(&t), [s("already", "existing"), s("dev", "seb")]);
        // Unknown policies: ESO's errors.
        assert!(matches!(
            merge(&current, meta(json!({"targetMergePolicy": "Keep"})).as_ref(), &key("k", "v")),
            Err(Error::Backend(m)) if m == "failed to merge target metadata: unexpected target merge policy \"Keep\""
        ));
        assert!(matches!(
            merge(&current, meta(json!({"sourceMergePolicy": "Keep"})).as_ref(), &key("k", "v")),
            Err(Error::Backend(m)) if m == "failed to merge source metadata: unexpected source merge policy \"Keep\""
        ));
    }

    #[test]
    fn a_push_to_a_missing_secret_creates_it_opaque() {
        let req = plan_push(&URLS, "team", "db", None, None, &key("token", VALUE))
            .unwrap()
            .unwrap();
        assert_eq!(req.method, http::Method::POST);
        assert_eq!(req.url, COLLECTION);
        assert_eq!(
            req.body.unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "db", "namespace": "team"},
                "data": {"token": b64(VALUE)},
            })
        );
        // With push metadata: its labels and annotations.
        let m = meta(json!({"labels": {"dev": "seb"}, "annotations": {"date": "today"}}));
        let req = plan_push(&URLS, "team", "db", None, m.as_ref(), &key("secret", "bar"))
            .unwrap()
            .unwrap();
        assert_eq!(
            req.body.unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "db", "namespace": "team", "labels": {"dev": "seb"}, "annotations": {"date": "today"}},
                "data": {"secret": b64("bar")},
            })
        );
        // The whole data.
        let whole = pushed(None, br#"{"foo":"bar","baz":"bang"}"#.to_vec()).unwrap();
        let req = plan_push(&URLS, "team", "db", None, None, &whole)
            .unwrap()
            .unwrap();
        assert_eq!(
            req.body.unwrap()["data"],
            json!({"foo": b64("bar"), "baz": b64("bang")})
        );
        // An empty object makes a Secret without data.
        let empty = pushed(None, b"{}".to_vec()).unwrap();
        let req = plan_push(&URLS, "team", "db", None, None, &empty)
            .unwrap()
            .unwrap();
        assert!(req.body.unwrap().get("data").is_none());
    }

    #[test]
    fn a_push_with_property_updates_that_key_and_keeps_the_rest() {
        let remote = remote_db(
            json!({"owned-by-other": b64("untouched"), "token": b64("old")}),
            json!({"keep": "me"}),
            Value::Null,
        );
        let req = plan_push(
            &URLS,
            "team",
            "db",
            Some(&remote),
            None,
            &key("token", "new"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(req.method, http::Method::PUT);
        assert_eq!(req.url, SECRET_URL);
        let mut want = remote.raw.clone();
        want["data"]["token"] = json!(b64("new"));
        assert_eq!(
            req.body.unwrap(),
            want,
            "everything else as read, resourceVersion included"
        );

        // A new key is added.
        let req = plan_push(
            &URLS,
            "team",
            "db",
            Some(&remote),
            None,
            &key("token2", "x"),
        )
        .unwrap()
        .unwrap();
        let body = req.body.unwrap();
        assert_eq!(body["data"].as_object().unwrap().len(), 3);
        assert_eq!(body["metadata"]["resourceVersion"], "41");
        assert_eq!(body["metadata"]["labels"], json!({"keep": "me"}));
    }

    #[test]
    fn a_whole_push_replaces_the_data() {
        let remote = remote_db(
            json!({"a": b64("a1"), "b": b64("b1"), "c": b64("c1")}),
            Value::Null,
            Value::Null,
        );
        let whole = pushed(None, br#"{"a":"a2","b":"b2"}"#.to_vec()).unwrap();
        let req = plan_push(&URLS, "team", "db", Some(&remote), None, &whole)
            .unwrap()
            .unwrap();
        assert_eq!(req.method, http::Method::PUT);
        let body = req.body.unwrap();
        assert_eq!(body["data"], json!({"a": b64("a2"), "b": b64("b2")}));
        assert_eq!(body["metadata"]["uid"], "u-1");
        assert_eq!(body["metadata"]["finalizers"], json!(["example.com/keep"]));
        assert!(body["metadata"].get("labels").is_none());
        // Replaced by nothing: the data goes.
        let empty = pushed(None, b"{}".to_vec()).unwrap();
        let body = plan_push(&URLS, "team", "db", Some(&remote), None, &empty)
            .unwrap()
            .unwrap()
            .body
            .unwrap();
        assert!(body.get("data").is_none());
    }

    #[test]
    fn no_change_means_no_write() {
        let remote = remote_db(
            json!({"token": b64("same"), "other": b64("o")}),
            json!({"dev": "seb"}),
            Value::Null,
        );
        assert_eq!(
            plan_push(
                &URLS,
                "team",
                "db",
                Some(&remote),
                None,
                &key("token", "same")
            )
            .unwrap(),
            None
        );
        // Metadata already there: no change either.
        let m = meta(json!({"labels": {"dev": "seb"}}));
        assert_eq!(
            plan_push(
                &URLS,
                "team",
                "db",
                Some(&remote),
                m.as_ref(),
                &key("token", "same")
            )
            .unwrap(),
            None
        );
        let whole = pushed(None, br#"{"other":"o","token":"same"}"#.to_vec()).unwrap();
        assert_eq!(
            plan_push(&URLS, "team", "db", Some(&remote), None, &whole).unwrap(),
            None
        );
        // A label that changes is a write, with the data untouched.
        let m = meta(json!({"labels": {"dev": "other"}, "annotations": {"a": "b"}}));
        let body = plan_push(
            &URLS,
            "team",
            "db",
            Some(&remote),
            m.as_ref(),
            &key("token", "same"),
        )
        .unwrap()
        .unwrap()
        .body
        .unwrap();
        assert_eq!(body["metadata"]["labels"], json!({"dev": "other"}));
        assert_eq!(body["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(body["data"], remote.raw["data"]);
        // An existing Secret keeps its type.
        let mut tls = remote.raw.clone();
        tls["type"] = json!("kubernetes.io/tls");
        let tls = existing(tls);
        let body = plan_push(&URLS, "team", "db", Some(&tls), None, &key("tls.crt", "c"))
            .unwrap()
            .unwrap()
            .body
            .unwrap();
        assert_eq!(body["type"], "kubernetes.io/tls");
    }

    #[test]
    fn delete_follows_eso() {
        let one = remote_db(json!({"token": b64("t")}), Value::Null, Value::Null);
        let two = remote_db(
            json!({"token": b64("t"), "secret": b64("s")}),
            json!({"l": "1"}),
            Value::Null,
        );
        // Missing Secret, missing property: nothing.
        assert_eq!(plan_delete(SECRET_URL, Some("token"), None), None);
        assert_eq!(plan_delete(SECRET_URL, None, None), None);
        assert_eq!(plan_delete(SECRET_URL, Some("secret"), Some(&one)), None);
        // No property: the whole Secret.
        assert_eq!(
            plan_delete(SECRET_URL, None, Some(&two)),
            Some(ApiRequest {
                method: http::Method::DELETE,
                url: SECRET_URL.into(),
                body: None
            })
        );
        assert_eq!(
            plan_delete(SECRET_URL, Some(""), Some(&two)).unwrap().body,
            None
        );
        // The last key: the whole Secret, if it is still the version read.
        assert_eq!(
            plan_delete(SECRET_URL, Some("token"), Some(&one)),
            Some(ApiRequest {
                method: http::Method::DELETE,
                url: SECRET_URL.into(),
                body: Some(json!({
                    "apiVersion": "v1", "kind": "DeleteOptions",
                    "preconditions": {"resourceVersion": "41"}
                })),
            })
        );
        // Other keys remain: a PUT without the key, the rest as read.
        let req = plan_delete(SECRET_URL, Some("token"), Some(&two)).unwrap();
        assert_eq!(req.method, http::Method::PUT);
        assert_eq!(req.url, SECRET_URL);
        let mut want = two.raw.clone();
        want["data"].as_object_mut().unwrap().remove("token");
        assert_eq!(req.body.unwrap(), want);
    }

    #[test]
    fn exists_follows_eso() {
        let s = remote_db(json!({"token": b64("t")}), Value::Null, Value::Null).secret;
        assert!(!exists(None, None));
        assert!(!exists(None, Some("token")));
        assert!(exists(Some(&s), None));
        assert!(exists(Some(&s), Some("")));
        assert!(exists(Some(&s), Some("token")));
        assert!(!exists(Some(&s), Some("missing")));
    }

    #[test]
    fn debug_output_never_shows_values() {
        let req = plan_push(&URLS, "team", "db", None, None, &key("token", VALUE))
            .unwrap()
            .unwrap();
        assert!(!format!("{req:?}").contains(&b64(VALUE)));
        let p = key("token", VALUE);
        assert!(!format!("{p:?}").contains(VALUE));
        let t = merge(&Target::default(), None, &p).unwrap();
        assert!(!format!("{t:?}").contains(VALUE));
    }
}
