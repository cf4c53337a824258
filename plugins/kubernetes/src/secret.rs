//! The API's answers (a `Secret`, a `SecretList`, a `Status`) and ESO's reading of them:
//! `GetSecret`, `GetSecretMap` and `GetAllSecrets` after the API call, as
//! `providers/v1/kubernetes/client.go` does it. Pure, so it can be unit-tested natively.
//!
//! No error here quotes a value: decoding errors say where the JSON is broken, never what it
//! holds.

use std::collections::BTreeMap;

use base64::Engine as _;
use esox_plugin_sdk::{Error, MetadataPolicy, RemoteRef, SecretMap, json, serde_json};
use serde::Deserialize;

use crate::gojson;

const META_LABELS: &str = "labels";
const META_ANNOTATIONS: &str = "annotations";

/// A Secret's metadata as the API answers it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct RawSecret {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    data: Option<BTreeMap<String, Option<String>>>,
}

#[derive(Deserialize)]
struct RawSecretList {
    #[serde(default)]
    items: Option<Vec<RawSecret>>,
}

/// A Secret with its data decoded. Holds secret values: Debug shows names and keys only.
#[derive(Clone, Default, PartialEq)]
pub struct Secret {
    pub metadata: ObjectMeta,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.metadata.name)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn undecodable(what: &str, e: &serde_json::Error) -> Error {
    Error::backend(format!(
        "the Kubernetes API answered with a {what} that could not be decoded (line {} column {})",
        e.line(),
        e.column()
    ))
}

impl RawSecret {
    fn decode(self) -> Result<Secret, Error> {
        let mut data = BTreeMap::new();
        for (key, value) in self.data.unwrap_or_default() {
            let bytes = match value {
                None => Vec::new(),
                Some(v) => base64::engine::general_purpose::STANDARD
                    .decode(v.as_bytes())
                    .map_err(|_| {
                        Error::backend(format!(
                            "the Kubernetes API answered with Secret {} whose data key {key} is not base64",
                            self.metadata.name
                        ))
                    })?,
            };
            data.insert(key, bytes);
        }
        Ok(Secret {
            metadata: self.metadata,
            data,
        })
    }
}

/// A `GET .../secrets/<name>` answer.
pub fn decode_secret(body: &[u8]) -> Result<Secret, Error> {
    serde_json::from_slice::<RawSecret>(body)
        .map_err(|e| undecodable("Secret", &e))?
        .decode()
}

/// A `GET .../secrets` answer.
pub fn decode_secret_list(body: &[u8]) -> Result<Vec<Secret>, Error> {
    serde_json::from_slice::<RawSecretList>(body)
        .map_err(|e| undecodable("SecretList", &e))?
        .items
        .unwrap_or_default()
        .into_iter()
        .map(RawSecret::decode)
        .collect()
}

/// The `message` of a `Status` answer, if the body is one.
pub fn status_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Status {
        #[serde(default)]
        message: Option<String>,
    }
    serde_json::from_slice::<Status>(body)
        .ok()?
        .message
        .filter(|m| !m.trim().is_empty())
}

/// The whole data map as ESO returns it without a property: a JSON object of the values as
/// (Go) strings.
pub fn data_json(secret: &Secret) -> Vec<u8> {
    gojson::string_map(Some(&secret.data))
}

/// `{"annotations": …, "labels": …}` as ESO returns metadata without a property (a Secret
/// without labels has `null` there).
pub fn metadata_json(secret: &Secret) -> Vec<u8> {
    let mut out = b"{\"annotations\":".to_vec();
    out.extend(gojson::string_map(secret.metadata.annotations.as_ref()));
    out.extend_from_slice(b",\"labels\":");
    out.extend(gojson::string_map(secret.metadata.labels.as_ref()));
    out.push(b'}');
    out
}

/// ESO's `GetSecret` once the Secret is read: without a property, the whole data (or
/// metadata) as JSON; with one, a data key (or a label or annotation).
pub fn get_secret(secret: &Secret, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
    let fetch = matches!(remote.metadata_policy, MetadataPolicy::Fetch);
    let Some(property) = remote.property.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(if fetch {
            metadata_json(secret)
        } else {
            data_json(secret)
        });
    };
    if fetch {
        from_metadata(secret, property).ok_or_else(|| {
            Error::backend(format!(
                "property {property} does not exist in metadata of secret {:?}",
                remote.key
            ))
        })
    } else {
        from_data(secret, property).ok_or_else(|| {
            Error::backend(format!(
                "property {property} does not exist in data of secret {:?}",
                remote.key
            ))
        })
    }
}

/// ESO's `getFromSecretData`: the key itself (`file.png`), else the part before the first dot
/// as a key and the rest as a gjson path into its (JSON) value.
fn from_data(secret: &Secret, property: &str) -> Option<Vec<u8>> {
    if let Some(v) = secret.data.get(property) {
        return Some(v.clone());
    }
    let idx = property.find('.')?;
    if idx == 0 || idx == property.len() - 1 {
        return None;
    }
    let value = secret.data.get(&property[..idx])?;
    json::property(value, &property[idx + 1..]).ok()
}

/// ESO's `getFromSecretMetadata`: `labels` / `annotations` (the whole map as JSON), then a
/// key of it, then a gjson path into that value. ESO joins the path's remaining components
/// without separators (`annotations.cfg.a.b` reads path `ab` of annotation `cfg`); so do we.
fn from_metadata(secret: &Secret, property: &str) -> Option<Vec<u8>> {
    let path: Vec<&str> = property.split('.').collect();
    let map = match path[0] {
        META_LABELS => secret.metadata.labels.as_ref(),
        META_ANNOTATIONS => secret.metadata.annotations.as_ref(),
        _ => return None,
    };
    if path.len() == 1 {
        return Some(gojson::string_map(map));
    }
    let value = map?.get(path[1])?;
    if path.len() == 2 {
        return Some(value.clone().into_bytes());
    }
    json::property(value.as_bytes(), &path[2..].concat()).ok()
}

/// ESO's `GetSecretMap` once the Secret is read: the data (or, with `metadataPolicy: Fetch`,
/// `labels` and `annotations` as JSON); with a property, that entry's value read as a JSON
/// object whose values are re-encoded as JSON (strings keep their quotes, as in ESO).
pub fn get_secret_map(secret: &Secret, remote: &RemoteRef) -> Result<SecretMap, Error> {
    let map: BTreeMap<String, Vec<u8>> = if matches!(remote.metadata_policy, MetadataPolicy::Fetch)
    {
        BTreeMap::from([
            (
                META_LABELS.to_string(),
                gojson::string_map(secret.metadata.labels.as_ref()),
            ),
            (
                META_ANNOTATIONS.to_string(),
                gojson::string_map(secret.metadata.annotations.as_ref()),
            ),
        ])
    } else {
        secret.data.clone()
    };
    let Some(property) = remote.property.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(map.into_iter().collect());
    };
    // ESO marshals the map (values base64) and reads the property with gjson, first as a
    // literal key, then as a path; a path's second step would be inside a base64 string,
    // which has no members, so only a literal key can match.
    let Some(value) = map.get(property) else {
        return Err(Error::backend(format!(
            "property {property} does not exist in key {}",
            remote.key
        )));
    };
    let object: serde_json::Map<String, serde_json::Value> =
        match serde_json::from_str::<Option<_>>(&gojson::lossy(value)) {
            Ok(object) => object.unwrap_or_default(),
            Err(_) => {
                return Err(Error::backend(
                    "failed to unmarshal secret: invalid JSON format",
                ));
            }
        };
    let mut entries: SecretMap = object
        .iter()
        .map(|(k, v)| (k.clone(), gojson::value(v)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// One found Secret as ESO's `GetAllSecrets` returns it: its name and its data as JSON.
pub fn found(secret: &Secret) -> (String, Vec<u8>) {
    (secret.metadata.name.clone(), data_json(secret))
}

/// ESO's `labels.ValidatedSelectorFromSet(tags).String()`: `k1=v1,k2=v2` sorted by key, every
/// key a qualified name and every value a label value.
pub fn label_selector(tags: &[(String, String)]) -> Result<String, String> {
    let map: BTreeMap<&str, &str> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut parts = Vec::new();
    for (key, value) in map {
        check_label_key(key)?;
        if !value.is_empty() && !is_label_name(value) {
            return Err(format!(
                "values[0][{key}]: Invalid value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)"
            ));
        }
        parts.push(format!("{key}={value}"));
    }
    Ok(parts.join(","))
}

fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "key: Invalid value: {key:?}: prefix part must be a lowercase RFC 1123 subdomain"
        ));
    }
    if !is_label_name(name) {
        return Err(format!(
            "key: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)"
        ));
    }
    Ok(())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A lowercase RFC 1123 subdomain (at most 253 characters).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-VALUE-xyzzy";

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn remote(property: Option<&str>, fetch: bool) -> RemoteRef {
        RemoteRef {
            key: "db-creds".into(),
            property: property.map(str::to_string),
            version: None,
            metadata_policy: if fetch {
                MetadataPolicy::Fetch
            } else {
                MetadataPolicy::None
            },
        }
    }

    fn sample() -> Secret {
        let body = serde_json::json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {
                "name": "db-creds",
                "namespace": "team-a",
                "labels": {"app": "db", "tier": "backend"},
                "annotations": {"cfg": "{\"a\":{\"b\":\"deep\"},\"ab\":\"joined\"}", "owner": "team-a"}
            },
            "type": "Opaque",
            "data": {
                "username": b64(b"admin"),
                "password": b64(SECRET.as_bytes()),
                "file.png": b64(b"\x89PNG"),
                "config": b64(br#"{"host": "db.internal", "port": 5432, "tls": {"on": true}}"#),
                "quote": b64(b"a\"b<c>\n")
            }
        });
        decode_secret(body.to_string().as_bytes()).unwrap()
    }

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn a_secret_answer_is_decoded_and_debug_hides_values() {
        let s = sample();
        assert_eq!(s.metadata.name, "db-creds");
        assert_eq!(s.data["password"], SECRET.as_bytes());
        assert_eq!(s.data["file.png"], b"\x89PNG");
        assert_eq!(s.metadata.labels.as_ref().unwrap()["app"], "db");
        assert!(!format!("{s:?}").contains(SECRET));
        // No data at all, null values.
        let empty = decode_secret(br#"{"metadata": {"name": "e"}, "data": {"k": null}}"#).unwrap();
        assert_eq!(empty.data["k"], b"");
        let none = decode_secret(br#"{"metadata": {"name": "e"}}"#).unwrap();
        assert!(none.data.is_empty());
    }

    #[test]
    fn undecodable_answers_never_quote_the_body() {
        let err = decode_secret(format!("{{\"data\": {{\"k\": \"{SECRET}").as_bytes()).unwrap_err();
        assert!(
            matches!(&err, Error::Backend(m) if m.contains("line 1")),
            "{err:?}"
        );
        assert!(!format!("{err:?}").contains(SECRET));
        let err =
            decode_secret(format!("{{\"data\": {{\"k\": 5, \"x\": \"{SECRET}\"}}}}").as_bytes())
                .unwrap_err();
        assert!(!format!("{err:?}").contains(SECRET));
        let err = decode_secret(format!("{{\"data\": {{\"k\": \"{SECRET}!\"}}}}").as_bytes())
            .unwrap_err();
        assert!(matches!(&err, Error::Backend(m) if m.contains("data key k is not base64")));
        assert!(!format!("{err:?}").contains(SECRET));
    }

    #[test]
    fn a_list_answer_is_decoded() {
        let body = serde_json::json!({
            "kind": "SecretList",
            "metadata": {"resourceVersion": "1"},
            "items": [
                {"metadata": {"name": "a"}, "data": {"k": b64(b"1")}},
                {"metadata": {"name": "b"}}
            ]
        });
        let list = decode_secret_list(body.to_string().as_bytes()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(found(&list[0]), ("a".to_string(), br#"{"k":"1"}"#.to_vec()));
        assert_eq!(found(&list[1]), ("b".to_string(), b"{}".to_vec()));
        assert!(
            decode_secret_list(br#"{"items": null}"#)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn without_a_property_the_whole_data_is_json_of_strings() {
        let s = sample();
        assert_eq!(
            text(get_secret(&s, &remote(None, false)).unwrap()),
            format!(
                r#"{{"config":"{{\"host\": \"db.internal\", \"port\": 5432, \"tls\": {{\"on\": true}}}}","file.png":"\ufffdPNG","password":"{SECRET}","quote":"a\"b<c>\n","username":"admin"}}"#
            )
        );
        assert_eq!(
            text(get_secret(&s, &remote(Some(""), false)).unwrap()),
            text(data_json(&s))
        );
    }

    #[test]
    fn properties_read_keys_then_json_paths_inside_values() {
        let s = sample();
        let get = |p: &str| get_secret(&s, &remote(Some(p), false));
        assert_eq!(get("username").unwrap(), b"admin");
        assert_eq!(get("file.png").unwrap(), b"\x89PNG");
        assert_eq!(get("config.host").unwrap(), b"db.internal");
        assert_eq!(get("config.port").unwrap(), b"5432");
        assert_eq!(get("config.tls").unwrap(), br#"{"on": true}"#);
        let err = get("missing").unwrap_err();
        assert!(
            matches!(&err, Error::Backend(m) if m == "property missing does not exist in data of secret \"db-creds\""),
            "{err:?}"
        );
        assert!(get("config.nope").is_err());
        assert!(get(".username").is_err());
        assert!(get("config.").is_err());
        assert!(get("password.x").is_err());
        assert!(!format!("{:?}", get("password.x")).contains(SECRET));
    }

    #[test]
    fn metadata_is_fetched_as_eso_fetches_it() {
        let s = sample();
        assert_eq!(
            text(get_secret(&s, &remote(None, true)).unwrap()),
            r#"{"annotations":{"cfg":"{\"a\":{\"b\":\"deep\"},\"ab\":\"joined\"}","owner":"team-a"},"labels":{"app":"db","tier":"backend"}}"#
        );
        let get = |p: &str| get_secret(&s, &remote(Some(p), true));
        assert_eq!(
            text(get("labels").unwrap()),
            r#"{"app":"db","tier":"backend"}"#
        );
        assert_eq!(get("labels.app").unwrap(), b"db");
        assert_eq!(get("annotations.owner").unwrap(), b"team-a");
        // ESO joins the rest of the path without dots.
        assert_eq!(get("annotations.cfg.a.b").unwrap(), b"joined");
        assert_eq!(get("annotations.cfg.a").unwrap(), br#"{"b":"deep"}"#);
        let err = get("data").unwrap_err();
        assert!(
            matches!(&err, Error::Backend(m) if m == "property data does not exist in metadata of secret \"db-creds\""),
            "{err:?}"
        );
        assert!(get("labels.nope").is_err());
        // A Secret without labels or annotations.
        let bare = Secret::default();
        assert_eq!(
            get_secret(&bare, &remote(None, true)).unwrap(),
            br#"{"annotations":null,"labels":null}"#
        );
        assert_eq!(
            get_secret(&bare, &remote(Some("labels"), true)).unwrap(),
            b"null"
        );
        assert!(get_secret(&bare, &remote(Some("labels.x"), true)).is_err());
    }

    #[test]
    fn secret_maps_are_the_data_or_the_metadata() {
        let s = sample();
        let map = get_secret_map(&s, &remote(None, false)).unwrap();
        let keys: Vec<&str> = map.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["config", "file.png", "password", "quote", "username"]
        );
        assert_eq!(map[2].1, SECRET.as_bytes());
        assert_eq!(map[1].1, b"\x89PNG");
        let meta = get_secret_map(&s, &remote(None, true)).unwrap();
        assert_eq!(meta[0].0, "annotations");
        assert_eq!(
            meta[1],
            (
                "labels".to_string(),
                br#"{"app":"db","tier":"backend"}"#.to_vec()
            )
        );
    }

    #[test]
    fn a_secret_map_property_is_a_json_object_whose_values_stay_json() {
        let s = sample();
        let map = get_secret_map(&s, &remote(Some("config"), false)).unwrap();
        let map: Vec<(String, String)> = map.into_iter().map(|(k, v)| (k, text(v))).collect();
        assert_eq!(
            map,
            [
                ("host".to_string(), "\"db.internal\"".to_string()),
                ("port".to_string(), "5432".to_string()),
                ("tls".to_string(), r#"{"on":true}"#.to_string()),
            ]
        );
        let labels = get_secret_map(&s, &remote(Some("labels"), true)).unwrap();
        assert_eq!(labels[0], ("app".to_string(), b"\"db\"".to_vec()));
        let err = get_secret_map(&s, &remote(Some("password"), false)).unwrap_err();
        assert!(
            matches!(&err, Error::Backend(m) if m == "failed to unmarshal secret: invalid JSON format")
        );
        assert!(!format!("{err:?}").contains(SECRET));
        let err = get_secret_map(&s, &remote(Some("config.host"), false)).unwrap_err();
        assert!(
            matches!(&err, Error::Backend(m) if m == "property config.host does not exist in key db-creds")
        );
    }

    #[test]
    fn status_messages_are_read_from_status_answers() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"secrets \"x\" is forbidden: User \"u\" cannot get resource \"secrets\"","reason":"Forbidden","code":403}"#;
        assert_eq!(
            status_message(body).unwrap(),
            r#"secrets "x" is forbidden: User "u" cannot get resource "secrets""#
        );
        assert_eq!(status_message(b"<html>"), None);
        assert_eq!(status_message(br#"{"message": " "}"#), None);
    }

    #[test]
    fn tags_become_a_sorted_validated_label_selector() {
        let t = |pairs: &[(&str, &str)]| {
            label_selector(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            t(&[
                ("tier", "backend"),
                ("app.kubernetes.io/name", "db"),
                ("empty", "")
            ])
            .unwrap(),
            "app.kubernetes.io/name=db,empty=,tier=backend"
        );
        assert_eq!(t(&[]).unwrap(), "");
        assert!(t(&[("bad key", "v")]).is_err());
        assert!(t(&[("Bad_Prefix/x", "v")]).is_err());
        assert!(t(&[("k", "a,b")]).is_err());
        assert!(t(&[("k", "-v")]).is_err());
        assert!(t(&[(&"k".repeat(64), "v")]).is_err());
    }
}
