//! The KV secrets engine as ESO reads it: how `remoteRef.key` becomes a Vault path (ESO's
//! `buildPath` and `buildMetadataPath`), how answers decode (`data` for KV v1, `data.data` for
//! KV v2, `custom_metadata` for `metadataPolicy: Fetch`, `keys` of a LIST), and how a secret's
//! data is rendered (Go's `json.Marshal`: sorted keys, compact, HTML-escaped) and its
//! properties read. Pure functions only, so everything here is unit-tested natively.

use std::collections::BTreeMap;

use esox_plugin_sdk::serde_json::{self, value::RawValue};
use esox_plugin_sdk::{Error, json};

use crate::config::KvVersion;

/// ESO's message when the v2 answer has no `data` field.
pub const ERR_DATA_FIELD: &str = "failed to find data field";
/// ESO's message when a value is not the JSON object it should be.
pub const ERR_JSON_UNMARSHALL: &str = "failed to unmarshall JSON";
/// ESO's message for `metadataPolicy: Fetch` on a KV v1 store.
pub const ERR_METADATA_V1: &str = "cannot perform metadata fetch operations with kv version v1";
/// ESO's message when a metadata path cannot be built.
pub const ERR_PATH_INVALID: &str = "provided Path isn't a valid kv v2 path";
/// ESO's message for find by tags on a KV v1 store.
pub const ERR_TAGS_V1: &str = "cannot perform find by tag operations with kv version v1";

/// ESO's `buildPath`: the Vault path of the data of `key` in a store with mount `mount`.
///
/// With a mount, a key that already starts with it (and, in v2, `data/`) is not prefixed
/// again; without one, v2 keys get `data` after their first segment unless they hold `/data/`.
pub fn data_path(mount: Option<&str>, version: KvVersion, key: &str) -> String {
    match mount {
        Some(mount) => {
            let mut rest = key;
            if let Some(r) = rest.strip_prefix(&format!("{mount}/")) {
                rest = r;
                if version == KvVersion::V2
                    && let Some(r) = rest.strip_prefix("data/")
                {
                    rest = r;
                }
            }
            match version {
                KvVersion::V2 => format!("{mount}/data/{rest}"),
                KvVersion::V1 => format!("{mount}/{rest}"),
            }
        }
        None => {
            if version == KvVersion::V2 && !key.contains("/data/") {
                match key.split_once('/') {
                    Some((first, rest)) => format!("{first}/data/{rest}"),
                    None => format!("{key}/data"),
                }
            } else {
                key.to_string()
            }
        }
    }
}

/// ESO's `buildMetadataPath`: where `key`'s metadata (v2) or, for LIST, its folder lives.
pub fn metadata_path(mount: Option<&str>, version: KvVersion, key: &str) -> Result<String, Error> {
    match (version, mount) {
        (KvVersion::V1, Some(mount)) => Ok(format!("{mount}/{key}")),
        (KvVersion::V1, None) => Err(Error::invalid_config(
            "path",
            "must be set to list or read metadata from a KV v1 store",
        )),
        (KvVersion::V2, Some(mount)) => Ok(format!("{mount}/metadata/{key}")),
        (KvVersion::V2, None) => {
            if !key.contains("data") {
                return Err(Error::backend(ERR_PATH_INVALID));
            }
            Ok(key.replacen("/data/", "/metadata/", 1))
        }
    }
}

/// Percent-encode a Vault path for a URL: segments keep `/` and the characters Go's URL
/// encoder keeps in paths; everything else (spaces, `?`, `#`, `%`, non-ASCII) is escaped.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/$&+,:;=@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encode a query value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

fn envelope(body: &[u8]) -> Result<Option<&RawValue>, Error> {
    let env: Envelope = serde_json::from_slice(body).map_err(|_| {
        Error::backend("cannot read secret data from Vault: the answer is not JSON")
    })?;
    // `"data": null` deserializes to a RawValue holding `null`.
    Ok(env.data.filter(|d| d.get().trim() != "null"))
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

/// The secret's data from a read answer (ESO's `readSecret`), rendered as Go's `json.Marshal`
/// of it. `None`: the secret (or this version of it) does not exist or was deleted.
pub fn decode_read(body: &[u8], version: KvVersion) -> Result<Option<Vec<u8>>, Error> {
    let Some(data) = envelope(body)? else {
        return Ok(None);
    };
    if !is_object(data) {
        return Err(Error::backend(ERR_JSON_UNMARSHALL));
    }
    let inner = match version {
        KvVersion::V1 => data,
        KvVersion::V2 => {
            let fields: BTreeMap<String, &RawValue> = serde_json::from_str(data.get())
                .map_err(|_| Error::backend(ERR_JSON_UNMARSHALL))?;
            match fields.get("data") {
                None => return Err(Error::backend(ERR_DATA_FIELD)),
                Some(d) if d.get().trim() == "null" => return Ok(None),
                Some(d) if !is_object(d) => return Err(Error::backend(ERR_JSON_UNMARSHALL)),
                Some(d) => *d,
            }
        }
    };
    go_marshal(inner).map(Some)
}

/// The keys v2 metadata answers carry that ESO reports besides `custom_metadata`.
const SYSTEM_METADATA_KEYS: [&str; 3] = ["created_time", "current_version", "delete_version_after"];

/// ESO's `readSecretMetadata`: a flat object of strings, the v2 system keys
/// (`created_time`, `current_version`, `delete_version_after`) and every `custom_metadata`
/// entry, rendered as Go's `json.Marshal` of a `map[string]string`.
pub fn decode_metadata(body: &[u8], version: KvVersion) -> Result<Option<Vec<u8>>, Error> {
    let Some(data) = envelope(body)? else {
        return Ok(None);
    };
    let fields: BTreeMap<String, &RawValue> = match serde_json::from_str(data.get()) {
        Ok(f) => f,
        Err(_) => return Err(Error::backend(ERR_JSON_UNMARSHALL)),
    };
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    if version == KvVersion::V2 {
        for key in SYSTEM_METADATA_KEYS {
            if let Some(v) = fields.get(key)
                && v.get().trim() != "null"
            {
                out.insert(key.to_string(), go_print(v));
            }
        }
    }
    if let Some(custom) = fields.get("custom_metadata")
        && is_object(custom)
        && let Ok(entries) = serde_json::from_str::<BTreeMap<String, &RawValue>>(custom.get())
    {
        for (k, v) in entries {
            out.insert(k, go_print(v));
        }
    }
    let mut rendered = vec![b'{'];
    for (i, (k, v)) in out.iter().enumerate() {
        if i > 0 {
            rendered.push(b',');
        }
        go_string(k, &mut rendered);
        rendered.push(b':');
        go_string(v, &mut rendered);
    }
    rendered.push(b'}');
    Ok(Some(rendered))
}

/// The `keys` of a LIST answer (folders end with `/`).
pub fn decode_list(body: &[u8]) -> Result<Vec<String>, Error> {
    let Some(data) = envelope(body)? else {
        return Ok(Vec::new());
    };
    #[derive(serde::Deserialize)]
    struct Keys {
        #[serde(default)]
        keys: Option<Vec<String>>,
    }
    let keys: Keys = serde_json::from_str(data.get())
        .map_err(|_| Error::backend("cannot list secrets in Vault: unexpected answer"))?;
    Ok(keys.keys.unwrap_or_default())
}

/// Go's `fmt.Sprintf("%v", v)` of a JSON value decoded with `UseNumber`: strings as they
/// are, numbers as written, objects and arrays as Go prints maps and slices (approximated by
/// their compact JSON).
fn go_print(v: &RawValue) -> String {
    let text = v.get().trim();
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text).unwrap_or_default();
    }
    if text.starts_with('{') || text.starts_with('[') {
        return go_marshal(v)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
    }
    if text == "null" {
        return "<nil>".to_string();
    }
    text.to_string()
}

/// Go's `json.Marshal` of a JSON value decoded into `map[string]any` with `UseNumber` (as the
/// Vault client decodes): objects with sorted keys (the last of repeated keys wins), no
/// whitespace, numbers as written, strings with Go's escapes (`<`, `>`, `&`, U+2028 and U+2029
/// as `\u` escapes).
pub fn go_marshal(raw: &RawValue) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    marshal_into(raw, &mut out)?;
    Ok(out)
}

fn marshal_into(raw: &RawValue, out: &mut Vec<u8>) -> Result<(), Error> {
    let bad = || Error::backend(ERR_JSON_UNMARSHALL);
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => {
            let entries = json::object_entries_raw(text).ok_or_else(bad)?;
            let mut sorted: BTreeMap<String, &RawValue> = BTreeMap::new();
            for (k, v) in entries {
                sorted.insert(k, v);
            }
            out.push(b'{');
            for (i, (k, v)) in sorted.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                go_string(k, out);
                out.push(b':');
                marshal_into(v, out)?;
            }
            out.push(b'}');
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|_| bad())?;
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                marshal_into(v, out)?;
            }
            out.push(b']');
        }
        Some(b'"') => {
            let s: String = serde_json::from_str(text).map_err(|_| bad())?;
            go_string(&s, out);
        }
        Some(_) => out.extend_from_slice(text.as_bytes()),
        None => return Err(bad()),
    }
    Ok(())
}

/// Go's `encodeState.string` with HTML escaping on.
fn go_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// ESO's `getSecretValue` on a rendered secret: a top-level key named exactly `property`
/// first (strings raw, numbers as written, objects and arrays as JSON, null empty), then the
/// property as a gjson path (the SDK's semantics). A missing property is ESO's error.
pub fn property(data: &[u8], prop: &str) -> Result<Vec<u8>, Error> {
    let missing = || Error::backend(format!("cannot find secret data for key: {prop:?}"));
    if let Ok(entries) = serde_json::from_slice::<BTreeMap<String, &RawValue>>(data)
        && let Some(v) = entries.get(prop)
    {
        let text = v.get().trim();
        return Ok(match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text)
                .map(String::into_bytes)
                .map_err(|_| missing())?,
            Some(b'n') => Vec::new(),
            _ => text.as_bytes().to_vec(),
        });
    }
    json::property(data, prop).map_err(|_| missing())
}

/// ESO's `GetSecretMap` on a rendered secret: every top-level entry, strings raw and other
/// values as Go's `GetByteValue` renders them after `json.Unmarshal` (numbers through float64,
/// objects and arrays as JSON).
pub fn entries(data: &[u8], key: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let map: BTreeMap<String, &RawValue> = serde_json::from_slice(data).map_err(|_| {
        Error::backend(format!(
            "unable to unmarshal secret: the value of {key} is not a JSON object"
        ))
    })?;
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let text = v.get().trim();
            let bytes = match text.as_bytes().first() {
                Some(b'"') => serde_json::from_str::<String>(text)
                    .map(String::into_bytes)
                    .unwrap_or_else(|_| text.as_bytes().to_vec()),
                Some(b'n') => Vec::new(),
                Some(b'-' | b'0'..=b'9') => match text.parse::<f64>() {
                    Ok(f) => format!("{f}").into_bytes(),
                    Err(_) => text.as_bytes().to_vec(),
                },
                _ => text.as_bytes().to_vec(),
            };
            (k, bytes)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use KvVersion::{V1, V2};

    #[test]
    fn build_path_follows_esos_documented_examples() {
        // Simple build.
        assert_eq!(
            data_path(Some("secret/path"), V2, "foo"),
            "secret/path/data/foo"
        );
        assert_eq!(data_path(Some("secret/path"), V1, "foo"), "secret/path/foo");
        // Inheriting paths.
        assert_eq!(
            data_path(Some("secret/path"), V2, "secret/path/foo"),
            "secret/path/data/foo"
        );
        assert_eq!(
            data_path(Some("secret/path"), V2, "secret/path/data/foo"),
            "secret/path/data/foo"
        );
        assert_eq!(
            data_path(Some("secret/path"), V1, "secret/path/foo"),
            "secret/path/foo"
        );
        // No provider path.
        assert_eq!(
            data_path(None, V2, "secret/path/foo"),
            "secret/data/path/foo"
        );
        assert_eq!(
            data_path(None, V2, "secret/path/data/foo"),
            "secret/path/data/foo"
        );
        assert_eq!(data_path(None, V1, "secret/path/foo"), "secret/path/foo");
        // Nested keys under a mount, as the e2e stores use them.
        assert_eq!(
            data_path(Some("secret"), V2, "team-a/db"),
            "secret/data/team-a/db"
        );
        assert_eq!(data_path(Some("kv1"), V1, "team-a/api"), "kv1/team-a/api");
        // A key that merely contains the mount later is prefixed.
        assert_eq!(
            data_path(Some("secret"), V2, "x/secret/y"),
            "secret/data/x/secret/y"
        );
    }

    #[test]
    fn metadata_paths_follow_eso() {
        assert_eq!(
            metadata_path(Some("secret"), V2, "team/db").unwrap(),
            "secret/metadata/team/db"
        );
        assert_eq!(metadata_path(Some("kv"), V1, "team/").unwrap(), "kv/team/");
        assert_eq!(
            metadata_path(None, V2, "secret/data/team/db").unwrap(),
            "secret/metadata/team/db"
        );
        assert!(matches!(
            metadata_path(None, V2, "secret/team"),
            Err(Error::Backend(m)) if m == ERR_PATH_INVALID
        ));
        assert!(matches!(
            metadata_path(None, V1, "kv/team"),
            Err(Error::InvalidConfig(c)) if c.field == "path"
        ));
    }

    #[test]
    fn paths_and_queries_are_percent_encoded() {
        assert_eq!(
            encode_path("secret/data/a b?c#d%"),
            "secret/data/a%20b%3Fc%23d%25"
        );
        assert_eq!(encode_path("kv/team:a/x@y=1"), "kv/team:a/x@y=1");
        assert_eq!(encode_path("kv/é"), "kv/%C3%A9");
        assert_eq!(encode_query("3"), "3");
        assert_eq!(encode_query("1&x=2"), "1%26x%3D2");
    }

    #[test]
    fn v2_reads_take_data_data_and_render_it_as_go_marshals() {
        let body = br#"{"request_id":"r","data":{"data":{"z":"last","a":"<b>&","n":1.50,"o":{"y":2,"x":[1,"q"]},"t":true,"nil":null},"metadata":{"version":3}},"warnings":null}"#;
        let data = decode_read(body, V2).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(data).unwrap(),
            r#"{"a":"\u003cb\u003e\u0026","n":1.50,"nil":null,"o":{"x":[1,"q"],"y":2},"t":true,"z":"last"}"#
        );
    }

    #[test]
    fn v1_reads_take_data() {
        let body = br#"{"data":{"token":"abc","b":"line\nbreak"},"lease_duration":2764800}"#;
        let data = decode_read(body, V1).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(data).unwrap(),
            r#"{"b":"line\nbreak","token":"abc"}"#
        );
    }

    #[test]
    fn deleted_versions_and_missing_data_decode_as_eso_reads_them() {
        // A deleted or destroyed v2 version: data is null.
        let body = br#"{"data":{"data":null,"metadata":{"deletion_time":"2024-01-01T00:00:00Z"}}}"#;
        assert_eq!(decode_read(body, V2).unwrap(), None);
        assert_eq!(decode_read(br#"{"errors":[]}"#, V2).unwrap(), None);
        assert_eq!(decode_read(br#"{"data":null}"#, V1).unwrap(), None);
        // A v1 mount read as v2: no data field.
        assert!(matches!(
            decode_read(br#"{"data":{"token":"abc"}}"#, V2),
            Err(Error::Backend(m)) if m == ERR_DATA_FIELD
        ));
        assert!(matches!(
            decode_read(br#"{"data":{"data":"text"}}"#, V2),
            Err(Error::Backend(m)) if m == ERR_JSON_UNMARSHALL
        ));
        assert!(decode_read(b"<html>", V2).is_err());
    }

    #[test]
    fn go_strings_escape_like_encoding_json() {
        let raw: Box<RawValue> =
            serde_json::from_str(r#""q\" s\\ \u0001 \u0008 \f \u2028 é""#).unwrap();
        assert_eq!(
            String::from_utf8(go_marshal(&raw).unwrap()).unwrap(),
            r#""q\" s\\ \u0001 \b \f \u2028 é""#
        );
        let raw: Box<RawValue> = serde_json::from_str(r#"{"k":1,"k":2}"#).unwrap();
        assert_eq!(go_marshal(&raw).unwrap(), br#"{"k":2}"#);
    }

    #[test]
    fn metadata_holds_system_keys_and_custom_metadata_as_strings() {
        let body = br#"{"data":{"created_time":"2024-01-01T00:00:00Z","current_version":4,"delete_version_after":"0s","max_versions":0,"custom_metadata":{"owner":"team-a","n":"5"},"versions":{}}}"#;
        let meta = decode_metadata(body, V2).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(meta).unwrap(),
            r#"{"created_time":"2024-01-01T00:00:00Z","current_version":"4","delete_version_after":"0s","n":"5","owner":"team-a"}"#
        );
        let body = br#"{"data":{"created_time":"t","custom_metadata":null}}"#;
        assert_eq!(
            decode_metadata(body, V2).unwrap().unwrap(),
            br#"{"created_time":"t"}"#
        );
        assert_eq!(decode_metadata(br#"{"errors":[]}"#, V2).unwrap(), None);
    }

    #[test]
    fn list_answers_give_their_keys() {
        let body = br#"{"data":{"keys":["db","team/","api"]}}"#;
        assert_eq!(decode_list(body).unwrap(), ["db", "team/", "api"]);
        assert!(decode_list(br#"{"data":{}}"#).unwrap().is_empty());
        assert!(decode_list(br#"{"data":{"keys":"x"}}"#).is_err());
    }

    #[test]
    fn properties_prefer_literal_keys_then_gjson_paths() {
        let data = br#"{"a.b":"literal","a":{"b":"path"},"n":1.50,"o":{"x":1},"s":"v","nil":null,"list":["x","y"]}"#;
        let get = |p: &str| String::from_utf8(property(data, p).unwrap()).unwrap();
        assert_eq!(get("a.b"), "literal");
        assert_eq!(get("a"), r#"{"b":"path"}"#);
        assert_eq!(get("n"), "1.50");
        assert_eq!(get("s"), "v");
        assert_eq!(get("nil"), "");
        assert_eq!(get("o.x"), "1");
        assert_eq!(get("list.1"), "y");
        assert!(matches!(
            property(data, "missing"),
            Err(Error::Backend(m)) if m == r#"cannot find secret data for key: "missing""#
        ));
    }

    #[test]
    fn secret_maps_render_values_as_go_does() {
        let data = br#"{"user":"app","port":5432,"ratio":1.50,"tls":{"on":true},"nil":null}"#;
        let m: Vec<(String, String)> = entries(data, "db")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            m,
            [
                ("nil".to_string(), String::new()),
                ("port".into(), "5432".into()),
                ("ratio".into(), "1.5".into()),
                ("tls".into(), r#"{"on":true}"#.into()),
                ("user".into(), "app".into()),
            ]
        );
        const SECRET: &str = "s3cr3t-VALUE";
        let err = entries(format!("\"{SECRET}\"").as_bytes(), "db").unwrap_err();
        assert!(!format!("{err:?}").contains(SECRET));
    }
}
