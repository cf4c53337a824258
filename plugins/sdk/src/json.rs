//! JSON helpers with ESO's exact semantics, so every plugin reads properties the same way.
//!
//! ESO reads a property with gjson: a property containing dots is first tried as a literal
//! top-level key (`"a.b"`), then as a path (`name.first`, `friends.1.first`). The result is
//! gjson's `String()`: strings unquoted, integers as written, other numbers in Go's shortest
//! `'f'` form, `true`/`false`, `null` as the empty string, objects and arrays as their raw JSON
//! text exactly as it appears in the value.
//!
//! Not supported from gjson's path syntax: wildcards (`*`, `?`), `#` queries and `@` modifiers.
//! A component with those characters is matched literally.

use serde_json::value::RawValue;
use std::collections::HashMap;

/// Why a property could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyError {
    /// The value is not JSON, so it has no properties.
    NotJson,
    /// The value is JSON but the property is not in it.
    Missing,
}

/// Read `property` from the JSON document `value` with ESO's semantics (see the module docs).
pub fn property(value: &[u8], property: &str) -> Result<Vec<u8>, PropertyError> {
    let root: &RawValue = serde_json::from_slice(value).map_err(|_| PropertyError::NotJson)?;
    // ESO escapes the dots first, so `a.b` is a literal key before it is a path.
    if property.contains('.')
        && let Some(found) = child(root, property)
    {
        return Ok(gjson_string(found));
    }
    let mut current = root;
    for component in split_path(property) {
        current = child(current, &component).ok_or(PropertyError::Missing)?;
    }
    Ok(gjson_string(current))
}

/// The entries of a JSON object, as ESO's `GetSecretMap` returns them: string values unquoted,
/// every other value as its raw JSON text.
///
/// The error says what kind of value was found, or where the JSON is broken (line and column),
/// and never quotes the value: it is a secret.
pub fn object_entries(value: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let map: HashMap<String, &RawValue> = serde_json::from_slice(value).map_err(|e| {
        let found = match serde_json::from_slice::<&RawValue>(value) {
            Ok(raw) => kind_of(raw),
            Err(_) => {
                return format!(
                    "unable to unmarshal secret: value is not valid JSON ({} at line {} column {})",
                    crate::config::category(&e),
                    e.line(),
                    e.column()
                );
            }
        };
        format!("unable to unmarshal secret: value is {found}, not a JSON object")
    })?;
    let mut entries: Vec<(String, Vec<u8>)> = map
        .into_iter()
        .map(|(k, v)| {
            let bytes = match serde_json::from_str::<String>(v.get()) {
                Ok(s) => s.into_bytes(),
                Err(_) => v.get().as_bytes().to_vec(),
            };
            (k, bytes)
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// What kind of JSON value `raw` is, in words (never its content).
fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "a JSON object with an invalid entry",
        Some(b'[') => "a JSON array",
        Some(b'"') => "a JSON string",
        Some(b't' | b'f') => "a JSON boolean",
        Some(b'n') => "JSON null",
        _ => "a JSON number",
    }
}

/// Split a gjson path at unescaped dots; `\` escapes the next character.
fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '.' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// The child of an object by key, or of an array by index.
fn child<'a>(node: &'a RawValue, component: &str) -> Option<&'a RawValue> {
    let text = node.get().trim_start();
    if text.starts_with('{') {
        // gjson returns the first match when a key repeats; so do we.
        let entries: Vec<(String, &RawValue)> = object_entries_raw(node.get())?;
        entries
            .into_iter()
            .find(|(k, _)| k == component)
            .map(|(_, v)| v)
    } else if text.starts_with('[') {
        let index: usize = component.parse().ok()?;
        let items: Vec<&RawValue> = serde_json::from_str(node.get()).ok()?;
        items.get(index).copied()
    } else {
        None
    }
}

/// The entries of a JSON object in document order, keeping repeated keys (as Go's decoder
/// sees them); `None` when `text` is not an object.
pub fn object_entries_raw(text: &str) -> Option<Vec<(String, &RawValue)>> {
    serde_json::from_str::<Entries>(text).ok().map(|e| e.0)
}

/// An object's entries in document order, keeping duplicates.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Entries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// gjson's `Result.String()` of a raw JSON value.
fn gjson_string(raw: &RawValue) -> Vec<u8> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(String::into_bytes)
            .unwrap_or_else(|_| text.as_bytes().to_vec()),
        Some(b'n') => Vec::new(),
        Some(b'-' | b'0'..=b'9') => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.bytes().all(|b| b.is_ascii_digit()) {
                text.as_bytes().to_vec()
            } else {
                // Go's strconv.FormatFloat(f, 'f', -1, 64): shortest digits, no exponent.
                match text.parse::<f64>() {
                    Ok(f) => format!("{f}").into_bytes(),
                    Err(_) => text.as_bytes().to_vec(),
                }
            }
        }
        _ => text.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
  "name": {"first": "Tom", "last": "Anderson"},
  "age": 37, "ratio": 1.50, "big": 1e3, "neg": -12, "ok": true, "none": null,
  "children": ["Sara", "Alex", "Jack"],
  "friends": [
    {"first": "Dale", "last": "Murphy", "nets": ["ig", "fb"]},
    {"first": "Roger", "last": "Craig"}
  ],
  "dotted.key": "literal wins",
  "dotted": {"key": "path loses"},
  "escaped\"quote": "q"
}"#;

    fn get(p: &str) -> Result<String, PropertyError> {
        property(DOC.as_bytes(), p).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn strings_come_back_unquoted() {
        assert_eq!(get("name.first").unwrap(), "Tom");
        assert_eq!(get("friends.1.first").unwrap(), "Roger");
        assert_eq!(get("children.0").unwrap(), "Sara");
    }

    #[test]
    fn objects_and_arrays_come_back_as_raw_json_text() {
        assert_eq!(
            get("name").unwrap(),
            r#"{"first": "Tom", "last": "Anderson"}"#
        );
        assert_eq!(get("friends.0.nets").unwrap(), r#"["ig", "fb"]"#);
    }

    #[test]
    fn scalars_follow_gjson_string() {
        assert_eq!(get("age").unwrap(), "37");
        assert_eq!(get("neg").unwrap(), "-12");
        assert_eq!(get("ratio").unwrap(), "1.5");
        assert_eq!(get("big").unwrap(), "1000");
        assert_eq!(get("ok").unwrap(), "true");
        assert_eq!(get("none").unwrap(), "");
    }

    #[test]
    fn a_dotted_property_is_a_literal_key_before_it_is_a_path() {
        assert_eq!(get("dotted.key").unwrap(), "literal wins");
    }

    #[test]
    fn escaped_dots_address_literal_keys() {
        assert_eq!(get(r"dotted\.key").unwrap(), "literal wins");
    }

    #[test]
    fn missing_properties_and_non_json_values_are_told_apart() {
        assert_eq!(get("name.middle"), Err(PropertyError::Missing));
        assert_eq!(get("children.7"), Err(PropertyError::Missing));
        assert_eq!(get("age.x"), Err(PropertyError::Missing));
        assert_eq!(property(b"not json", "a"), Err(PropertyError::NotJson));
    }

    #[test]
    fn object_entries_unquote_strings_and_keep_other_values_raw() {
        let m = object_entries(br#"{"user":"admin","port":5432,"tls":{"on": true},"pw":"p\"w"}"#)
            .unwrap();
        let m: Vec<(String, String)> = m
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            m,
            vec![
                ("port".into(), "5432".into()),
                ("pw".into(), "p\"w".into()),
                ("tls".into(), r#"{"on": true}"#.into()),
                ("user".into(), "admin".into()),
            ]
        );
        assert!(object_entries(b"[1,2]").is_err());
        assert!(object_entries(b"plain").is_err());
    }

    const SECRET: &str = "s3cr3t-VALUE-xyzzy";

    #[test]
    fn object_entries_errors_never_quote_the_value() {
        let cases = [
            format!("\"{SECRET}\""),
            SECRET.to_string(),
            format!("[\"{SECRET}\"]"),
            format!("{{\"a\": \"{SECRET}"),
            format!("{{\"a\": {SECRET}}}"),
            format!("{{\"{SECRET}\" 1}}"),
        ];
        for case in cases {
            let err = object_entries(case.as_bytes()).unwrap_err();
            assert!(!err.contains(SECRET), "{case}: {err}");
            assert!(!err.contains("xyzzy"), "{case}: {err}");
        }
        let err = object_entries(format!("\"{SECRET}\"").as_bytes()).unwrap_err();
        assert_eq!(
            err,
            "unable to unmarshal secret: value is a JSON string, not a JSON object"
        );
        let err = object_entries(SECRET.as_bytes()).unwrap_err();
        assert!(err.contains("line 1 column"), "{err}");
    }

    #[test]
    fn property_errors_carry_no_text_at_all() {
        let doc = format!("{{\"a\": \"{SECRET}\"}}");
        assert_eq!(property(doc.as_bytes(), "b"), Err(PropertyError::Missing));
        assert_eq!(
            property(SECRET.as_bytes(), "a"),
            Err(PropertyError::NotJson)
        );
    }
}
