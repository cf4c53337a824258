//! PushSecret on the KV engine as ESO's vault provider does it (`PushSecret`, `DeleteSecret`
//! and `SecretExists`): what is read first, what is written (and when nothing is), and the
//! `managed-by: external-secrets` marker that keeps esox (and ESO) from overwriting or deleting
//! secrets it does not manage.
//!
//! The decisions are pure ([`plan_push`], [`plan_delete`], [`property_exists`]); the flows
//! ([`push`], [`delete`], [`exists`]) run them over a [`Kv`], which the client implements with
//! its HTTP (token, namespace, headers) and the tests with a script.

use std::collections::BTreeMap;

use esox_plugin_sdk::Error;
use esox_plugin_sdk::serde_json::{self, Value, value::RawValue};

use crate::config::KvVersion;
use crate::kv;

/// The custom metadata key ESO marks the secrets it pushes with.
pub const MANAGED_BY_KEY: &str = "managed-by";
/// The marker's value.
pub const MANAGED_BY: &str = "external-secrets";
/// ESO's error for a push to a secret that is not marked.
pub const ERR_NOT_MANAGED: &str = "secret not managed by external-secrets";
/// Where KV v1 secrets carry the marker, inside their data (ESO's convention).
pub const CUSTOM_METADATA: &str = "custom_metadata";

/// A secret's data, values as Vault wrote them (numbers keep their digits).
pub type Data = BTreeMap<String, Box<RawValue>>;

/// Where one remote key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// ESO's `buildPath`.
    pub data: String,
    /// ESO's `buildMetadataPath` (KV v2 only: KV v1 keeps the marker in the data).
    pub metadata: Option<String>,
    pub version: KvVersion,
    /// `checkAndSet.required`.
    pub cas: bool,
}

impl Target {
    /// The paths of `key` in a store with mount `mount`, as the reads build them.
    pub fn new(
        mount: Option<&str>,
        version: KvVersion,
        cas: bool,
        key: &str,
    ) -> Result<Target, Error> {
        if key.is_empty() {
            return Err(Error::backend(
                "the remote key is empty: name the Vault secret to write",
            ));
        }
        Ok(Target {
            data: kv::data_path(mount, version, key),
            metadata: match version {
                KvVersion::V1 => None,
                KvVersion::V2 => Some(kv::metadata_path(mount, version, key)?),
            },
            version,
            cas,
        })
    }
}

/// A write to Vault (what ESO's Vault client sends for `Write` and `Delete`).
#[derive(Clone, PartialEq, Eq)]
pub enum Call {
    /// PUT `path` with a JSON body.
    Put { path: String, body: Vec<u8> },
    /// DELETE `path`.
    Delete { path: String },
}

impl std::fmt::Debug for Call {
    // The body holds secret values: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::Put { path, body } => write!(f, "PUT {path} ({} bytes)", body.len()),
            Call::Delete { path } => write!(f, "DELETE {path}"),
        }
    }
}

/// What Vault holds at a target, read before a push or a delete.
#[derive(Clone)]
pub struct Current {
    /// The secret's data (KV v1: with its `custom_metadata` entry).
    pub data: Data,
    /// ESO's `readSecretMetadata`: custom metadata as strings and, on KV v2,
    /// `current_version`.
    pub metadata: BTreeMap<String, String>,
}

impl Current {
    fn managed(&self) -> bool {
        self.metadata
            .get(MANAGED_BY_KEY)
            .is_some_and(|m| m == MANAGED_BY)
    }

    /// ESO's `getCASVersion` for an existing secret: `current_version`, 1 when absent.
    fn cas_version(&self) -> Result<u64, Error> {
        match self.metadata.get("current_version") {
            None => Ok(1),
            Some(v) => v.parse().map_err(|_| {
                Error::backend("failed to get CAS version: unexpected current_version in the secret's metadata")
            }),
        }
    }
}

/// The data of a read answer, or `None` when the secret (or its latest version) is absent.
pub fn decode_data(body: &[u8], version: KvVersion) -> Result<Option<Data>, Error> {
    let Some(rendered) = kv::decode_read(body, version)? else {
        return Ok(None);
    };
    serde_json::from_slice(&rendered)
        .map(Some)
        .map_err(|_| Error::backend(kv::ERR_JSON_UNMARSHALL))
}

/// ESO's `readSecretMetadata` of a metadata answer (KV v2) or of the data answer (KV v1).
pub fn decode_metadata(
    body: &[u8],
    version: KvVersion,
) -> Result<Option<BTreeMap<String, String>>, Error> {
    let Some(rendered) = kv::decode_metadata(body, version)? else {
        return Ok(None);
    };
    serde_json::from_slice(&rendered)
        .map(Some)
        .map_err(|_| Error::backend(kv::ERR_JSON_UNMARSHALL))
}

fn raw(value: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("strings and maps of strings serialize")
}

fn marker() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([(MANAGED_BY_KEY, MANAGED_BY)])
}

/// A pushed whole value: a JSON object (the error never quotes the value).
fn parse_object(value: &[u8], message: &str) -> Result<Data, Error> {
    serde_json::from_slice(value).map_err(|_| Error::backend(message))
}

/// Whether two data hold the same JSON (ESO compares the maps, not the bytes).
fn same(a: &Data, b: &Data) -> bool {
    let value = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).ok();
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| match (value(v), b.get(k).and_then(|w| value(w))) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            })
}

#[derive(serde::Serialize)]
struct V2Body<'a> {
    data: &'a Data,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Cas>,
}

#[derive(serde::Serialize)]
struct Cas {
    cas: u64,
}

fn to_vec(body: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(body).expect("JSON maps serialize")
}

/// The body that writes `data` to `target`: KV v1 as it is, KV v2 under `data` with
/// `options.cas` when check-and-set is required.
fn data_body(target: &Target, data: &Data, cas: Option<u64>) -> Vec<u8> {
    match target.version {
        KvVersion::V1 => to_vec(data),
        KvVersion::V2 => to_vec(&V2Body {
            data,
            options: cas.filter(|_| target.cas).map(|cas| Cas { cas }),
        }),
    }
}

/// ESO's `PushSecret`: the writes that put `value` at `target` (as its `property`, or as the
/// whole secret when there is none), given what Vault holds there. Nothing when Vault already
/// holds the value.
pub fn plan_push(
    target: &Target,
    current: Option<&Current>,
    property: Option<&str>,
    value: &[u8],
) -> Result<Vec<Call>, Error> {
    let property = property.filter(|p| !p.is_empty());
    let mut existing = Data::new();
    if let Some(current) = current {
        if !current.managed() {
            return Err(Error::backend(format!(
                "{ERR_NOT_MANAGED}: {} exists without custom metadata {MANAGED_BY_KEY}={MANAGED_BY}, so it is not overwritten",
                target.data
            )));
        }
        existing = current.data.clone();
        if target.version == KvVersion::V1 {
            existing.remove(CUSTOM_METADATA);
        }
        if property.is_none() {
            let incoming = parse_object(
                value,
                "error unmarshalling incoming secret value: invalid JSON format",
            )?;
            if same(&existing, &incoming) {
                return Ok(Vec::new());
            }
        }
    }
    let mut secret = match property {
        Some(p) => {
            if let Some(old) = existing.get(p) {
                let old: String = serde_json::from_str(old.get())
                    .map_err(|_| Error::backend(format!("error converting {p} to string")))?;
                if old.as_bytes() == value {
                    return Ok(Vec::new());
                }
            }
            existing.insert(p.to_string(), raw(&String::from_utf8_lossy(value)));
            existing
        }
        None => parse_object(
            value,
            "error unmarshalling vault secret: invalid JSON format",
        )?,
    };
    match (target.version, &target.metadata) {
        (KvVersion::V2, Some(metadata)) => {
            // ESO's `getCASVersion`: 0 creates only if absent, else the version read.
            let cas = match current {
                None => 0,
                Some(c) => c.cas_version()?,
            };
            Ok(vec![
                Call::Put {
                    path: metadata.clone(),
                    body: to_vec(&BTreeMap::from([(CUSTOM_METADATA, marker())])),
                },
                Call::Put {
                    path: target.data.clone(),
                    body: data_body(target, &secret, Some(cas)),
                },
            ])
        }
        _ => {
            secret.insert(CUSTOM_METADATA.to_string(), raw(&marker()));
            Ok(vec![Call::Put {
                path: target.data.clone(),
                body: data_body(target, &secret, None),
            }])
        }
    }
}

/// ESO's `DeleteSecret`: the writes that remove `property` (or the whole secret) from
/// `target`. Nothing when the secret is absent or not managed by external-secrets; a
/// property delete rewrites the rest, and deletes the secret when it held only that property.
pub fn plan_delete(
    target: &Target,
    current: Option<&Current>,
    property: Option<&str>,
) -> Result<Vec<Call>, Error> {
    let Some(current) = current.filter(|c| c.managed()) else {
        return Ok(Vec::new());
    };
    if let Some(p) = property.filter(|p| !p.is_empty()) {
        let mut data = current.data.clone();
        if data.remove(p).is_none() {
            // ESO writes the secret back unchanged (a new KV v2 version); esox writes nothing.
            return Ok(Vec::new());
        }
        if target.version == KvVersion::V1 && data.len() == 1 {
            data.remove(CUSTOM_METADATA);
        }
        if !data.is_empty() {
            let cas = match target.cas {
                true => Some(current.cas_version()?),
                false => None,
            };
            return Ok(vec![Call::Put {
                path: target.data.clone(),
                body: data_body(target, &data, cas),
            }]);
        }
    }
    let mut calls = vec![Call::Delete {
        path: target.data.clone(),
    }];
    if let Some(metadata) = &target.metadata {
        calls.push(Call::Delete {
            path: metadata.clone(),
        });
    }
    Ok(calls)
}

/// ESO's `SecretExists` on a read answer: the secret exists, and so does `property` (a
/// top-level key that is not null, or a gjson path).
pub fn property_exists(
    body: &[u8],
    version: KvVersion,
    property: Option<&str>,
) -> Result<bool, Error> {
    let Some(rendered) = kv::decode_read(body, version)? else {
        return Ok(false);
    };
    let Some(p) = property.filter(|p| !p.is_empty()) else {
        return Ok(true);
    };
    if let Ok(data) = serde_json::from_slice::<Data>(&rendered)
        && let Some(v) = data.get(p)
    {
        return Ok(v.get().trim() != "null");
    }
    Ok(kv::property(&rendered, p).is_ok())
}

/// Vault, as the flows see it.
pub(crate) trait Kv {
    /// GET `path` (`what`: `data` or `metadata`, for messages): the answer's body, `None`
    /// when Vault answers 404.
    async fn read(&self, path: &str, what: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Send a write.
    async fn send(&self, call: &Call) -> Result<(), Error>;
}

/// What Vault holds at `target`: the data, then (when there is some) its metadata.
async fn current(kv: &impl Kv, target: &Target) -> Result<Option<Current>, Error> {
    let Some(body) = kv.read(&target.data, "data").await? else {
        return Ok(None);
    };
    let Some(data) = decode_data(&body, target.version)? else {
        return Ok(None);
    };
    let metadata = match &target.metadata {
        // KV v1: the marker is in the data just read.
        None => decode_metadata(&body, target.version)?,
        Some(path) => match kv.read(path, "metadata").await? {
            Some(body) => decode_metadata(&body, target.version)?,
            None => None,
        },
    };
    let metadata = metadata.ok_or_else(|| {
        Error::backend(format!(
            "cannot read secret metadata from Vault: {} not found, so whether external-secrets manages {} is unknown",
            target.metadata.as_deref().unwrap_or(&target.data),
            target.data
        ))
    })?;
    Ok(Some(Current { data, metadata }))
}

async fn run(kv: &impl Kv, calls: Vec<Call>) -> Result<(), Error> {
    for call in &calls {
        kv.send(call).await?;
    }
    Ok(())
}

/// Push `value` to `target` (as `property`).
pub(crate) async fn push(
    kv: &impl Kv,
    target: &Target,
    property: Option<&str>,
    value: &[u8],
) -> Result<(), Error> {
    let current = current(kv, target).await?;
    run(kv, plan_push(target, current.as_ref(), property, value)?).await
}

/// Delete `property` (or the whole secret) at `target`; a missing secret is deleted already.
pub(crate) async fn delete(
    kv: &impl Kv,
    target: &Target,
    property: Option<&str>,
) -> Result<(), Error> {
    let current = current(kv, target).await?;
    run(kv, plan_delete(target, current.as_ref(), property)?).await
}

/// Whether the secret at data path `data` (and its `property`) exists.
pub(crate) async fn exists(
    kv: &impl Kv,
    data: &str,
    version: KvVersion,
    property: Option<&str>,
) -> Result<bool, Error> {
    match kv.read(data, "data").await? {
        None => Ok(false),
        Some(body) => property_exists(&body, version, property),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KvVersion::{V1, V2};
    use serde_json::json;
    use std::cell::RefCell;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    const SECRET: &str = "s3cr3t-VALUE-xyzzy";

    /// Vault as a script: the bodies GET answers (others 404), the path whose write fails,
    /// and every request sent, as (method, path, JSON body).
    #[derive(Default)]
    struct Fake {
        answers: BTreeMap<String, String>,
        failing: Option<String>,
        log: RefCell<Vec<(&'static str, String, Option<Value>)>>,
    }

    impl Fake {
        fn with(self, path: &str, answer: Value) -> Fake {
            self.with_raw(path, &answer.to_string())
        }
        fn with_raw(mut self, path: &str, answer: &str) -> Fake {
            self.answers.insert(path.to_string(), answer.to_string());
            self
        }
        fn log(&self) -> Vec<(&'static str, String, Option<Value>)> {
            self.log.borrow().clone()
        }
        fn writes(&self) -> Vec<(&'static str, String, Option<Value>)> {
            self.log()
                .into_iter()
                .filter(|(m, ..)| *m != "GET")
                .collect()
        }
    }

    impl Kv for Fake {
        async fn read(&self, path: &str, _what: &str) -> Result<Option<Vec<u8>>, Error> {
            self.log.borrow_mut().push(("GET", path.to_string(), None));
            Ok(self.answers.get(path).map(|v| v.clone().into_bytes()))
        }
        async fn send(&self, call: &Call) -> Result<(), Error> {
            let entry = match call {
                Call::Put { path, body } => (
                    "PUT",
                    path.clone(),
                    Some(serde_json::from_slice(body).unwrap()),
                ),
                Call::Delete { path } => ("DELETE", path.clone(), None),
            };
            let path = entry.1.clone();
            self.log.borrow_mut().push(entry);
            if self.failing.as_deref() == Some(path.as_str()) {
                return Err(Error::permission_denied("PUT refused"));
            }
            Ok(())
        }
    }

    /// The flows only await the fake, which is always ready.
    fn run<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the fake never waits"),
        }
    }

    fn target(version: KvVersion, cas: bool) -> Target {
        let mount = match version {
            V1 => "kv",
            V2 => "secret",
        };
        Target::new(Some(mount), version, cas, "team/db").unwrap()
    }

    /// A KV v2 read answer.
    fn v2_data(data: Value) -> Value {
        json!({"data": {"data": data, "metadata": {"version": 3}}})
    }

    /// A KV v2 metadata answer.
    fn v2_meta(custom: Value, version: u64) -> Value {
        json!({"data": {"current_version": version, "custom_metadata": custom, "versions": {}}})
    }

    fn managed() -> Value {
        json!({"managed-by": "external-secrets"})
    }

    fn get(path: &str) -> (&'static str, String, Option<Value>) {
        ("GET", path.to_string(), None)
    }

    fn put(path: &str, body: Value) -> (&'static str, String, Option<Value>) {
        ("PUT", path.to_string(), Some(body))
    }

    fn del(path: &str) -> (&'static str, String, Option<Value>) {
        ("DELETE", path.to_string(), None)
    }

    const DATA: &str = "secret/data/team/db";
    const META: &str = "secret/metadata/team/db";
    const V1_PATH: &str = "kv/team/db";

    /// A v2 store holding a managed secret.
    fn v2_managed(data: Value, version: u64) -> Fake {
        Fake::default()
            .with(DATA, v2_data(data))
            .with(META, v2_meta(managed(), version))
    }

    #[test]
    fn targets_use_the_reads_paths() {
        assert_eq!(
            target(V2, false),
            Target {
                data: DATA.into(),
                metadata: Some(META.into()),
                version: V2,
                cas: false
            }
        );
        assert_eq!(target(V1, false).data, V1_PATH);
        assert_eq!(target(V1, false).metadata, None);
        let t = Target::new(None, V2, false, "secret/data/team/db").unwrap();
        assert_eq!((t.data.as_str(), t.metadata.as_deref()), (DATA, Some(META)));
        // ESO's buildMetadataPath needs "data" in a key without a mount.
        assert!(matches!(
            Target::new(None, V2, false, "secret/team/db"),
            Err(Error::Backend(m)) if m == kv::ERR_PATH_INVALID
        ));
        // KV v1 keeps the marker in the data: no mount needed.
        assert_eq!(
            Target::new(None, V1, false, "kv/team/db").unwrap().data,
            V1_PATH
        );
        assert!(Target::new(Some("secret"), V2, false, "").is_err());
    }

    #[test]
    fn a_new_v2_secret_gets_the_marker_then_its_data() {
        let vault = Fake::default();
        let value = json!({"user": "app", "password": SECRET}).to_string();
        run(push(&vault, &target(V2, false), None, value.as_bytes())).unwrap();
        assert_eq!(
            vault.log(),
            [
                get(DATA),
                put(
                    META,
                    json!({"custom_metadata": {"managed-by": "external-secrets"}})
                ),
                put(DATA, json!({"data": {"user": "app", "password": SECRET}})),
            ]
        );
    }

    #[test]
    fn a_new_v1_secret_carries_the_marker_in_its_data() {
        let vault = Fake::default();
        run(push(
            &vault,
            &target(V1, false),
            None,
            br#"{"token":"abc"}"#,
        ))
        .unwrap();
        assert_eq!(
            vault.log(),
            [
                get(V1_PATH),
                put(
                    V1_PATH,
                    json!({"token": "abc", "custom_metadata": {"managed-by": "external-secrets"}})
                ),
            ]
        );
    }

    #[test]
    fn an_unchanged_whole_value_is_not_written() {
        // Compared as JSON: order and spacing do not count.
        let vault = v2_managed(json!({"a": "1", "b": "2"}), 2);
        run(push(
            &vault,
            &target(V2, false),
            None,
            br#"{ "b": "2", "a": "1" }"#,
        ))
        .unwrap();
        assert_eq!(vault.log(), [get(DATA), get(META)]);
        // KV v1: the marker in the data is not part of the comparison.
        let vault = Fake::default().with(
            V1_PATH,
            json!({"data": {"a": "1", "custom_metadata": managed()}}),
        );
        run(push(&vault, &target(V1, false), None, br#"{"a":"1"}"#)).unwrap();
        assert_eq!(vault.log(), [get(V1_PATH)]);
    }

    #[test]
    fn a_changed_whole_value_replaces_the_secret() {
        let vault = v2_managed(json!({"a": "1", "old": "x"}), 2);
        run(push(&vault, &target(V2, false), None, br#"{"a":"2"}"#)).unwrap();
        assert_eq!(
            vault.writes(),
            [
                put(META, json!({"custom_metadata": managed()})),
                put(DATA, json!({"data": {"a": "2"}})),
            ]
        );
    }

    #[test]
    fn secrets_not_managed_by_external_secrets_are_never_overwritten() {
        for custom in [json!({"managed-by": "terraform"}), json!({}), Value::Null] {
            let vault = Fake::default()
                .with(DATA, v2_data(json!({"password": SECRET})))
                .with(META, v2_meta(custom, 1));
            for property in [None, Some("password"), Some("other")] {
                let err = run(push(&vault, &target(V2, false), property, b"new")).unwrap_err();
                assert!(
                    matches!(&err, Error::Backend(m) if m.starts_with(ERR_NOT_MANAGED)),
                    "{err:?}"
                );
                assert!(!format!("{err:?}").contains(SECRET));
            }
            assert!(vault.writes().is_empty());
        }
        let vault = Fake::default().with(
            V1_PATH,
            json!({"data": {"a": "1", "custom_metadata": {"managed-by": "someone"}}}),
        );
        let err = run(push(&vault, &target(V1, false), None, br#"{"a":"2"}"#)).unwrap_err();
        assert!(matches!(&err, Error::Backend(m) if m.starts_with(ERR_NOT_MANAGED)));
        // A v1 secret without any custom_metadata is not managed either.
        let vault = Fake::default().with(V1_PATH, json!({"data": {"a": "1"}}));
        assert!(run(push(&vault, &target(V1, false), Some("b"), b"2")).is_err());
        assert!(vault.writes().is_empty());
    }

    #[test]
    fn a_property_push_merges_into_the_secret_keeping_other_values_as_written() {
        let vault = Fake::default()
            .with_raw(DATA, r#"{"data":{"data":{"user":"app","ratio":1.50}}}"#)
            .with(META, v2_meta(managed(), 1));
        // serde_json's Value would print 1.50 as 1.5: check the exact bytes of the plan.
        let current = run(current(&vault, &target(V2, false))).unwrap();
        let calls = plan_push(
            &target(V2, false),
            current.as_ref(),
            Some("password"),
            SECRET.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            calls[1],
            Call::Put {
                path: DATA.into(),
                body: format!(r#"{{"data":{{"password":"{SECRET}","ratio":1.50,"user":"app"}}}}"#)
                    .into_bytes()
            }
        );
        // The body is never printed.
        assert!(!format!("{calls:?}").contains(SECRET));
        // A property of a new secret is its only key; dotted names are literal keys.
        let vault = Fake::default();
        run(push(&vault, &target(V2, false), Some("a.b"), b"v")).unwrap();
        assert_eq!(vault.writes()[1], put(DATA, json!({"data": {"a.b": "v"}})));
    }

    #[test]
    fn a_property_push_updates_only_a_changed_string_property() {
        let vault = v2_managed(json!({"user": "app", "port": 5432}), 1);
        run(push(&vault, &target(V2, false), Some("user"), b"app")).unwrap();
        assert!(vault.writes().is_empty());
        run(push(&vault, &target(V2, false), Some("user"), b"svc")).unwrap();
        assert_eq!(
            vault.writes()[1],
            put(DATA, json!({"data": {"user": "svc", "port": 5432}}))
        );
        // ESO refuses to replace a property that is not a string.
        let err = run(push(&vault, &target(V2, false), Some("port"), b"1")).unwrap_err();
        assert!(matches!(err, Error::Backend(m) if m == "error converting port to string"));
        // KV v1: the marker is written again beside the merged data.
        let vault = Fake::default().with(
            V1_PATH,
            json!({"data": {"foo": "old", "custom_metadata": managed()}}),
        );
        run(push(&vault, &target(V1, false), Some("foo"), b"new")).unwrap();
        assert_eq!(
            vault.writes(),
            [put(
                V1_PATH,
                json!({"foo": "new", "custom_metadata": managed()})
            )]
        );
    }

    #[test]
    fn a_whole_value_must_be_a_json_object_and_errors_never_quote_it() {
        for value in [
            SECRET.to_string(),
            format!("[\"{SECRET}\"]"),
            format!("{{\"a\":\"{SECRET}\""),
        ] {
            let err = run(push(
                &Fake::default(),
                &target(V2, false),
                None,
                value.as_bytes(),
            ))
            .unwrap_err();
            assert!(
                matches!(&err, Error::Backend(m) if m == "error unmarshalling vault secret: invalid JSON format"),
                "{err:?}"
            );
            let vault = v2_managed(json!({"a": "1"}), 1);
            let err = run(push(&vault, &target(V2, false), None, value.as_bytes())).unwrap_err();
            assert!(
                matches!(&err, Error::Backend(m) if m == "error unmarshalling incoming secret value: invalid JSON format")
            );
            assert!(vault.writes().is_empty());
        }
    }

    #[test]
    fn check_and_set_sends_the_version_read() {
        // New: 0 (create only if absent).
        let vault = Fake::default();
        run(push(&vault, &target(V2, true), Some("k"), b"v")).unwrap();
        assert_eq!(
            vault.writes()[1],
            put(DATA, json!({"data": {"k": "v"}, "options": {"cas": 0}}))
        );
        // Existing: the current version of its metadata.
        let vault = v2_managed(json!({"k": "old"}), 7);
        run(push(&vault, &target(V2, true), Some("k"), b"v")).unwrap();
        assert_eq!(
            vault.writes()[1],
            put(DATA, json!({"data": {"k": "v"}, "options": {"cas": 7}}))
        );
        // Metadata without a current version: 1, as ESO assumes.
        let vault = Fake::default()
            .with(DATA, v2_data(json!({"k": "old"})))
            .with(META, json!({"data": {"custom_metadata": managed()}}));
        run(push(&vault, &target(V2, true), None, br#"{"k":"v"}"#)).unwrap();
        assert_eq!(
            vault.writes()[1],
            put(DATA, json!({"data": {"k": "v"}, "options": {"cas": 1}}))
        );
        // Without checkAndSet: no options.
        let vault = v2_managed(json!({"k": "old"}), 7);
        run(push(&vault, &target(V2, false), Some("k"), b"v")).unwrap();
        assert_eq!(vault.writes()[1], put(DATA, json!({"data": {"k": "v"}})));
    }

    #[test]
    fn a_deleted_latest_version_is_pushed_as_a_new_secret_as_in_eso() {
        let vault = Fake::default()
            .with(
                DATA,
                json!({"data": {"data": null, "metadata": {"deletion_time": "t"}}}),
            )
            .with(META, v2_meta(json!({}), 3));
        run(push(&vault, &target(V2, false), Some("k"), b"v")).unwrap();
        assert_eq!(vault.log()[0], get(DATA));
        assert_eq!(vault.writes().len(), 2);
    }

    #[test]
    fn read_and_write_failures_stop_the_push() {
        // Data present but its metadata missing: whether it is managed is unknown.
        let vault = Fake::default().with(DATA, v2_data(json!({"k": "v"})));
        assert!(matches!(
            run(push(&vault, &target(V2, false), Some("k"), b"w")),
            Err(Error::Backend(m)) if m.contains(META)
        ));
        assert!(vault.writes().is_empty());
        // A refused metadata write: the data is not written.
        let vault = Fake {
            failing: Some(META.into()),
            ..Fake::default()
        };
        assert!(matches!(
            run(push(&vault, &target(V2, false), Some("k"), b"v")),
            Err(Error::PermissionDenied(_))
        ));
        assert_eq!(vault.writes().len(), 1);
        // An answer that is not Vault's.
        let vault = Fake::default().with(DATA, json!({"data": {"no-data-field": 1}}));
        assert!(matches!(
            run(push(&vault, &target(V2, false), None, b"{}")),
            Err(Error::Backend(m)) if m == kv::ERR_DATA_FIELD
        ));
    }

    #[test]
    fn deleting_a_missing_or_unmanaged_secret_writes_nothing() {
        let vault = Fake::default();
        run(delete(&vault, &target(V2, false), None)).unwrap();
        assert_eq!(vault.log(), [get(DATA)]);
        let vault = Fake::default()
            .with(DATA, v2_data(json!({"k": "v"})))
            .with(META, v2_meta(json!({"managed-by": "terraform"}), 1));
        run(delete(&vault, &target(V2, false), None)).unwrap();
        run(delete(&vault, &target(V2, false), Some("k"))).unwrap();
        assert!(vault.writes().is_empty());
        let vault = Fake::default().with(V1_PATH, json!({"data": {"k": "v"}}));
        run(delete(&vault, &target(V1, false), None)).unwrap();
        assert_eq!(vault.log(), [get(V1_PATH)]);
    }

    #[test]
    fn deleting_a_managed_secret_removes_its_data_and_metadata() {
        let vault = v2_managed(json!({"k": "v"}), 1);
        run(delete(&vault, &target(V2, false), None)).unwrap();
        assert_eq!(vault.log(), [get(DATA), get(META), del(DATA), del(META)]);
        let vault = Fake::default().with(
            V1_PATH,
            json!({"data": {"k": "v", "custom_metadata": managed()}}),
        );
        run(delete(&vault, &target(V1, false), None)).unwrap();
        assert_eq!(vault.writes(), [del(V1_PATH)]);
    }

    #[test]
    fn deleting_a_property_rewrites_the_rest_or_deletes_the_last() {
        let vault = v2_managed(json!({"k": "v", "other": "o"}), 4);
        run(delete(&vault, &target(V2, false), Some("k"))).unwrap();
        assert_eq!(vault.writes(), [put(DATA, json!({"data": {"other": "o"}}))]);
        // With checkAndSet, the rewrite carries the version read.
        let vault = v2_managed(json!({"k": "v", "other": "o"}), 4);
        run(delete(&vault, &target(V2, true), Some("k"))).unwrap();
        assert_eq!(
            vault.writes(),
            [put(
                DATA,
                json!({"data": {"other": "o"}, "options": {"cas": 4}})
            )]
        );
        let vault = v2_managed(json!({"k": "v"}), 4);
        run(delete(&vault, &target(V2, false), Some("k"))).unwrap();
        assert_eq!(vault.writes(), [del(DATA), del(META)]);
        // A property the secret does not hold: nothing to write.
        let vault = v2_managed(json!({"k": "v"}), 4);
        run(delete(&vault, &target(V2, false), Some("gone"))).unwrap();
        assert!(vault.writes().is_empty());
        // KV v1: the marker stays beside the rest, and alone it goes with the secret.
        let vault = Fake::default().with(
            V1_PATH,
            json!({"data": {"k": "v", "other": "o", "custom_metadata": managed()}}),
        );
        run(delete(&vault, &target(V1, false), Some("k"))).unwrap();
        assert_eq!(
            vault.writes(),
            [put(
                V1_PATH,
                json!({"other": "o", "custom_metadata": managed()})
            )]
        );
        let vault = Fake::default().with(
            V1_PATH,
            json!({"data": {"k": "v", "custom_metadata": managed()}}),
        );
        run(delete(&vault, &target(V1, false), Some("k"))).unwrap();
        assert_eq!(vault.writes(), [del(V1_PATH)]);
    }

    #[test]
    fn exists_follows_esos_secret_exists() {
        let vault = Fake::default().with(
            DATA,
            v2_data(json!({"user": "app", "empty": "", "nil": null, "tls": {"on": true}})),
        );
        let has = |property: Option<&str>| run(exists(&vault, DATA, V2, property)).unwrap();
        assert!(has(None));
        assert!(has(Some("")));
        assert!(has(Some("user")));
        assert!(has(Some("empty")));
        assert!(has(Some("tls.on")));
        assert!(!has(Some("nil")));
        assert!(!has(Some("password")));
        assert!(!run(exists(&vault, "secret/data/other", V2, None)).unwrap());
        let deleted = Fake::default().with(DATA, json!({"data": {"data": null}}));
        assert!(!run(exists(&deleted, DATA, V2, None)).unwrap());
        let v1 = Fake::default().with(V1_PATH, json!({"data": {"token": "t"}}));
        assert!(run(exists(&v1, V1_PATH, V1, Some("token"))).unwrap());
        assert!(vault.writes().is_empty());
    }
}
