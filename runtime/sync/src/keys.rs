//! Turning the keys a provider returns into Secret keys: `rewrite` (regexp, transform, merge),
//! else `conversionStrategy`, then ESO's key validation (`runtime/esutils/utils.go`).

use std::collections::BTreeMap;

use esox_api::{
    ConversionStrategy, ExternalSecretRewrite, RewriteMerge, RewriteMergeConflictPolicy,
    RewriteMergePriorityPolicy, RewriteMergeStrategy,
};
use esox_provider::SecretMap;

use crate::redact::{json_error, json_kind};

/// Longest Secret key Kubernetes accepts.
pub const MAX_KEY_LENGTH: usize = 253;

/// Whether ESO lets `c` stand in a key unchanged: letters, digits, `-`, `.`, `_`.
/// (Go's `unicode.IsLetter`/`IsNumber`; Rust's `is_alphabetic` also admits a few marks.)
fn is_key_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || c == '-' || c == '.' || c == '_'
}

/// Replaces characters a Secret key cannot hold: `_` (Default) or `_U<hex>_` (Unicode).
pub fn convert_key(strategy: ConversionStrategy, key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if is_key_char(c) {
            out.push(c);
        } else {
            match strategy {
                ConversionStrategy::Default => out.push('_'),
                ConversionStrategy::Unicode => out.push_str(&format!("_U{:04x}_", c as u32)),
            }
        }
    }
    out
}

/// Converts every key; two keys becoming one is an error naming the result.
pub fn convert_keys(strategy: ConversionStrategy, input: SecretMap) -> Result<SecretMap, String> {
    let mut out = SecretMap::new();
    for (key, value) in input {
        let new_key = convert_key(strategy, &key);
        if out.contains_key(&new_key) {
            return Err(new_key);
        }
        out.insert(new_key, value);
    }
    Ok(out)
}

/// ESO's `ValidateKeys`: drops empty keys, refuses keys longer than 253 bytes or holding
/// characters other than letters, digits, `-`, `.` and `_`.
pub fn validate_keys(map: &mut SecretMap) -> Result<(), String> {
    map.remove("");
    for key in map.keys() {
        if key.len() > MAX_KEY_LENGTH {
            let mut cut = MAX_KEY_LENGTH;
            while !key.is_char_boundary(cut) {
                cut -= 1;
            }
            return Err(format!(
                "key has length {} but max is 253: (following is truncated): {}",
                key.len(),
                &key[..cut]
            ));
        }
        if let Some(c) = key.chars().find(|c| !is_key_char(*c)) {
            return Err(format!(
                "key has invalid character {c}, only alphanumeric, '-', '.' and '_' are allowed: {key}"
            ));
        }
    }
    Ok(())
}

/// Applies the rewrites in order; the error carries the failing rewrite's index and message.
pub fn rewrite_map(
    operations: &[ExternalSecretRewrite],
    input: SecretMap,
) -> Result<SecretMap, (usize, String)> {
    let mut map = input;
    for (index, op) in operations.iter().enumerate() {
        map = if let Some(merge) = &op.merge {
            rewrite_merge(merge, map)
        } else if let Some(regexp) = &op.regexp {
            rewrite_regexp(&regexp.source, &regexp.target, map)
        } else if let Some(transform) = &op.transform {
            rewrite_transform(&transform.template, map)
        } else {
            Ok(map)
        }
        .map_err(|message| (index, message))?;
    }
    Ok(map)
}

/// Go's `regexp.ReplaceAllString(key, target)` on every key (`$1`, `${name}` expand).
fn rewrite_regexp(source: &str, target: &str, input: SecretMap) -> Result<SecretMap, String> {
    let re = regex::Regex::new(source)
        .map_err(|e| format!("regexp failed with failed to compile: {e}"))?;
    Ok(input
        .into_iter()
        .map(|(key, value)| (re.replace_all(&key, target).into_owned(), value))
        .collect())
}

/// A template per key with `.value` bound to the key; the output is the new key.
fn rewrite_transform(template: &str, input: SecretMap) -> Result<SecretMap, String> {
    let mut out = SecretMap::new();
    for (key, value) in input {
        let new_key = esox_template::render_transform(template, &key).map_err(|e| {
            format!("transform failed with failed to execute template for key {key:?}: {e}")
        })?;
        out.insert(new_key, value);
    }
    Ok(out)
}

/// ESO's `rewrite.merge`: parses each value as a JSON object and merges them (non-priority keys
/// sorted, then `priority` in order, later wins); `Extract` makes each merged field a key,
/// `JSON` stores the merged object under `into`.
fn rewrite_merge(op: &RewriteMerge, input: SecretMap) -> Result<SecretMap, String> {
    let mut order: Vec<&String> = input.keys().filter(|k| !op.priority.contains(k)).collect();
    order.extend(op.priority.iter());
    let ignore_missing = op.priority_policy == Some(RewriteMergePriorityPolicy::IgnoreNotFound);
    let mut merged: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut conflicts: Vec<String> = Vec::new();
    for key in order {
        let Some(value) = input.get(key) else {
            if ignore_missing {
                continue;
            }
            return Err(format!(
                "merge failed with key {key:?} not found in input map"
            ));
        };
        // Parse to a generic value first: serde's typed errors quote the value.
        let parsed: serde_json::Value = serde_json::from_slice(value).map_err(|e| {
            format!(
                "merge failed with failed to unmarshal JSON of key {key:?}: {}",
                json_error(&e)
            )
        })?;
        let object = match parsed {
            serde_json::Value::Object(object) => object,
            // Go's json.Unmarshal leaves a map nil (empty) for `null`.
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                return Err(format!(
                    "merge failed with failed to unmarshal JSON of key {key:?}: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_kind(&other)
                ));
            }
        };
        for (field, field_value) in object {
            if merged.contains_key(&field) {
                conflicts.push(field.clone());
            }
            merged.insert(field, field_value);
        }
    }
    if op.conflict_policy != Some(RewriteMergeConflictPolicy::Ignore) && !conflicts.is_empty() {
        return Err(format!(
            "merge failed with conflicts: {}",
            conflicts.join(", ")
        ));
    }
    match op.strategy.unwrap_or_default() {
        RewriteMergeStrategy::Extract => Ok(merged
            .into_iter()
            .map(|(k, v)| (k, json_value_bytes(&v)))
            .collect()),
        RewriteMergeStrategy::Json => {
            if op.into.is_empty() {
                return Err("merge failed with missing 'into' field".to_string());
            }
            let bytes = serde_json::to_vec(&merged)
                .map_err(|_| "merge failed with failed to marshal merged map".to_string())?;
            let mut out = input;
            out.insert(op.into.clone(), bytes);
            Ok(out)
        }
    }
}

/// ESO's `GetByteValue`: strings raw, objects/arrays as JSON, numbers and bools as text,
/// null as empty.
pub(crate) fn json_value_bytes(value: &serde_json::Value) -> Vec<u8> {
    match value {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        serde_json::Value::Null => Vec::new(),
        other => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_api::{RewriteRegexp, RewriteTransform};

    fn map(entries: &[(&str, &str)]) -> SecretMap {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn keys(m: &SecretMap) -> Vec<&str> {
        m.keys().map(String::as_str).collect()
    }

    #[test]
    fn default_conversion_replaces_each_invalid_character_with_underscore() {
        assert_eq!(
            convert_key(ConversionStrategy::Default, "db/prod:password"),
            "db_prod_password"
        );
        assert_eq!(convert_key(ConversionStrategy::Default, "a b@c"), "a_b_c");
        assert_eq!(
            convert_key(ConversionStrategy::Default, "ok-key_1.x"),
            "ok-key_1.x"
        );
    }

    #[test]
    fn unicode_conversion_encodes_the_code_point_in_lowercase_hex() {
        assert_eq!(convert_key(ConversionStrategy::Unicode, "a/b"), "a_U002f_b");
        assert_eq!(convert_key(ConversionStrategy::Unicode, "x😀"), "x_U1f600_");
        // Letters outside ASCII are letters to Go's unicode.IsLetter too.
        assert_eq!(convert_key(ConversionStrategy::Unicode, "é"), "é");
    }

    #[test]
    fn conversion_collision_is_an_error_naming_the_key() {
        let input = map(&[("a/b", "1"), ("a:b", "2")]);
        assert_eq!(
            convert_keys(ConversionStrategy::Default, input),
            Err("a_b".to_string())
        );
    }

    #[test]
    fn validation_drops_empty_keys_and_refuses_bad_ones() {
        let mut m = map(&[("", "x"), ("good", "y")]);
        validate_keys(&mut m).unwrap();
        assert_eq!(keys(&m), ["good"]);

        let mut bad = map(&[("a/b", "x")]);
        assert_eq!(
            validate_keys(&mut bad),
            Err(
                "key has invalid character /, only alphanumeric, '-', '.' and '_' are allowed: a/b"
                    .to_string()
            )
        );

        let long = "k".repeat(254);
        let mut too_long = map(&[(long.as_str(), "x")]);
        let err = validate_keys(&mut too_long).unwrap_err();
        assert!(
            err.starts_with("key has length 254 but max is 253"),
            "{err}"
        );
    }

    fn regexp(source: &str, target: &str) -> ExternalSecretRewrite {
        ExternalSecretRewrite {
            regexp: Some(RewriteRegexp {
                source: source.into(),
                target: target.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn regexp_rewrites_apply_in_order_with_go_replacement_syntax() {
        let input = map(&[("app/db/user", "u"), ("app/db/pass", "p")]);
        let out = rewrite_map(&[regexp("^app/", ""), regexp("db/(.*)", "db_${1}")], input).unwrap();
        assert_eq!(keys(&out), ["db_pass", "db_user"]);
        assert_eq!(out["db_user"], b"u");
    }

    #[test]
    fn a_bad_regexp_names_the_rewrite_that_failed() {
        let err =
            rewrite_map(&[regexp("ok", "x"), regexp("(", "x")], map(&[("k", "v")])).unwrap_err();
        assert_eq!(err.0, 1);
        assert!(
            err.1.starts_with("regexp failed with failed to compile"),
            "{}",
            err.1
        );
    }

    #[test]
    fn transform_rewrite_renders_the_key_as_value() {
        let op = ExternalSecretRewrite {
            transform: Some(RewriteTransform {
                template: "prefix-{{ .value }}".into(),
            }),
            ..Default::default()
        };
        let out = rewrite_map(&[op], map(&[("key", "v")])).unwrap();
        assert_eq!(keys(&out), ["prefix-key"]);
    }

    fn merge_op(
        strategy: RewriteMergeStrategy,
        into: &str,
        priority: &[&str],
    ) -> ExternalSecretRewrite {
        ExternalSecretRewrite {
            merge: Some(RewriteMerge {
                into: into.into(),
                priority: priority.iter().map(|s| s.to_string()).collect(),
                strategy: Some(strategy),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn merge_extract_flattens_json_values_and_fails_on_conflict_by_default() {
        let input = map(&[
            ("a", r#"{"user":"u","port":5432}"#),
            ("b", r#"{"pass":"p","nested":{"x":1}}"#),
        ]);
        let out = rewrite_map(&[merge_op(RewriteMergeStrategy::Extract, "", &[])], input).unwrap();
        assert_eq!(keys(&out), ["nested", "pass", "port", "user"]);
        assert_eq!(out["port"], b"5432");
        assert_eq!(out["nested"], br#"{"x":1}"#);

        let conflicting = map(&[("a", r#"{"user":"u1"}"#), ("b", r#"{"user":"u2"}"#)]);
        let err = rewrite_map(
            &[merge_op(RewriteMergeStrategy::Extract, "", &[])],
            conflicting,
        )
        .unwrap_err();
        assert_eq!(err.1, "merge failed with conflicts: user");
    }

    const SECRET: &str = "hunter2-DISTINCTIVE";

    #[test]
    fn merge_errors_never_quote_the_value() {
        let b64 = "aHVudGVyMi1ESVNUSU5DVElWRQ==";
        for value in [
            format!("\"{SECRET}\""),
            format!("[\"{SECRET}\"]"),
            format!("{{\"user\": {SECRET}}}"),
            format!("{{\"user\": \"{SECRET}"),
            SECRET.to_string(),
            b64.to_string(),
        ] {
            let input = map(&[("creds", value.as_str())]);
            let err = rewrite_map(&[merge_op(RewriteMergeStrategy::Extract, "", &[])], input)
                .unwrap_err();
            assert!(
                !err.1.contains("hunter2") && !err.1.contains(b64) && !err.1.contains("DISTINCT"),
                "{}",
                err.1
            );
            assert!(
                err.1
                    .starts_with("merge failed with failed to unmarshal JSON of key \"creds\": "),
                "{}",
                err.1
            );
        }
        let input = map(&[("creds", format!("\"{SECRET}\"").as_str())]);
        let err =
            rewrite_map(&[merge_op(RewriteMergeStrategy::Extract, "", &[])], input).unwrap_err();
        assert!(
            err.1.ends_with(
                "json: cannot unmarshal string into Go value of type map[string]interface {}"
            ),
            "{}",
            err.1
        );
        let input = map(&[("creds", format!("{{\n  \"user\": {SECRET}}}").as_str())]);
        let err =
            rewrite_map(&[merge_op(RewriteMergeStrategy::Extract, "", &[])], input).unwrap_err();
        assert!(err.1.contains("line 2, column"), "{}", err.1);
    }

    #[test]
    fn merge_treats_json_null_as_an_empty_object_like_go() {
        let input = map(&[("a", "null"), ("b", r#"{"x":"1"}"#)]);
        let out = rewrite_map(&[merge_op(RewriteMergeStrategy::Extract, "", &[])], input).unwrap();
        assert_eq!(keys(&out), ["x"]);
    }

    #[test]
    fn merge_priority_keys_win_and_json_strategy_writes_into() {
        let mut op = merge_op(RewriteMergeStrategy::Json, "all", &["a"]);
        if let Some(m) = op.merge.as_mut() {
            m.conflict_policy = Some(RewriteMergeConflictPolicy::Ignore);
        }
        let input = map(&[
            ("a", r#"{"user":"from-a"}"#),
            ("b", r#"{"user":"from-b","x":"1"}"#),
        ]);
        let out = rewrite_map(&[op], input).unwrap();
        assert_eq!(keys(&out), ["a", "all", "b"]);
        assert_eq!(out["all"], br#"{"user":"from-a","x":"1"}"#);
    }
}
