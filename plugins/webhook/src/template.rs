//! The data ESO's webhook templates see, and rendering them with the controller's Go
//! `text/template` engine (`esox-template`, with ESO's Sprig + ESO function map).
//!
//! ESO renders `url` with every value query-escaped (`url.QueryEscape`), except
//! `.remoteRef.namespace` and the `secrets[]` values; `body`, `headers` and `result.jsonPath`
//! see the raw values. The data is `{"remoteRef": {key, version, property, namespace},
//! "<secrets[].name>": {"<key>": "<value>", ...}}`.
//!
//! One difference from ESO: the engine runs with `missingkey=error`, so a template naming a key
//! that is not there fails (naming the key) instead of rendering `<no value>`.

use std::collections::{BTreeMap, BTreeSet};

use esox_plugin_sdk::{Error, RemoteRef};
use esox_template::Value;
use regex::Regex;

use crate::config::TemplateField;

/// Each `secrets[].name` mapped to the keys read from its Secret.
pub type SecretData = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// The template data for one reference. `escape`: query-escape the reference's fields (the
/// data `url` is rendered with).
pub fn data(remote: &RemoteRef, namespace: &str, secrets: &SecretData, escape: bool) -> Value {
    let field = |v: &str| {
        if escape {
            Value::str(query_escape(v))
        } else {
            Value::str(v)
        }
    };
    let mut remote_ref = BTreeMap::new();
    remote_ref.insert("key".to_string(), field(&remote.key));
    remote_ref.insert(
        "version".to_string(),
        field(remote.version.as_deref().unwrap_or("")),
    );
    remote_ref.insert(
        "property".to_string(),
        field(remote.property.as_deref().unwrap_or("")),
    );
    remote_ref.insert("namespace".to_string(), Value::str(namespace));
    let mut root = BTreeMap::new();
    for (name, values) in secrets {
        root.insert(name.clone(), Value::from_secret_data(values));
    }
    root.insert("remoteRef".to_string(), Value::Map(remote_ref));
    Value::Map(root)
}

/// Render a template field; an empty one renders to nothing. Failures are `invalid-config`
/// errors naming the field (the engine's messages never carry data values).
pub fn render(field_name: &str, field: &TemplateField, data: &Value) -> Result<Vec<u8>, Error> {
    match &field.template {
        None => Ok(Vec::new()),
        Some(t) => t
            .execute(data)
            .map_err(|e| Error::invalid_config(field_name, format!("rendering failed: {e}"))),
    }
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest as `%XX`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.PathUnescape` for userinfo; `None` if a `%` escape is malformed.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The keys of the `secrets[]` entry `name` that the template sources read: `.name.key`
/// (also after `$`), `index .name "key"` and `index . "name" "key"`.
///
/// ESO hands templates every key of the Secret; the host hands a plugin one key per call, so
/// the plugin reads those the templates name.
pub fn referenced_keys(sources: &[&str], name: &str) -> BTreeSet<String> {
    let n = regex::escape(name);
    let string = r#"("(?:[^"\\]|\\.)*"|`[^`]*`)"#;
    let patterns = [
        format!(r"(?:^|[^\w)\]])\$?\.{n}\.([\p{{L}}_][\p{{L}}\p{{Nd}}_]*)"),
        format!(r"index\s+\$?\.{n}\s+{string}"),
        format!(r#"index\s+\$?\.?\s+(?:"{n}"|`{n}`)\s+{string}"#),
    ];
    let mut keys = BTreeSet::new();
    for p in patterns {
        let re = Regex::new(&p).expect("the key patterns are valid regexes");
        for source in sources {
            for caps in re.captures_iter(source) {
                if let Some(k) = caps.get(1).and_then(|m| unquote(m.as_str())) {
                    keys.insert(k);
                }
            }
        }
    }
    keys
}

/// The text of a Go string literal, or an identifier as is.
fn unquote(token: &str) -> Option<String> {
    if let Some(raw) = token.strip_prefix('`') {
        return raw.strip_suffix('`').map(str::to_string);
    }
    if token.starts_with('"') {
        return esox_plugin_sdk::serde_json::from_str::<String>(token).ok();
    }
    Some(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_plugin_sdk::MetadataPolicy;
    use esox_template::Template;

    fn remote(key: &str, property: Option<&str>, version: Option<&str>) -> RemoteRef {
        RemoteRef {
            key: key.into(),
            property: property.map(str::to_string),
            version: version.map(str::to_string),
            metadata_policy: MetadataPolicy::None,
        }
    }

    fn field(src: &str) -> TemplateField {
        TemplateField {
            source: src.to_string(),
            template: (!src.is_empty()).then(|| Template::parse("t", src).unwrap()),
        }
    }

    fn secrets() -> SecretData {
        let mut auth = BTreeMap::new();
        auth.insert("username".to_string(), b"test user".to_vec());
        auth.insert("password".to_string(), b"p&w".to_vec());
        let mut s = SecretData::new();
        s.insert("auth".to_string(), auth);
        s
    }

    fn render_str(src: &str, data: &Value) -> String {
        String::from_utf8(render("f", &field(src), data).unwrap()).unwrap()
    }

    #[test]
    fn url_data_is_query_escaped_but_namespace_and_secrets_are_not() {
        let r = remote("a b/c&d", Some("x.y"), Some("v 1"));
        let escaped = data(&r, "team-a", &secrets(), true);
        assert_eq!(
            render_str(
                "https://h/get?k={{ .remoteRef.key }}&p={{ .remoteRef.property }}&v={{ .remoteRef.version }}&ns={{ .remoteRef.namespace }}&u={{ .auth.username }}",
                &escaped
            ),
            "https://h/get?k=a+b%2Fc%26d&p=x.y&v=v+1&ns=team-a&u=test user"
        );
        let raw = data(&r, "team-a", &secrets(), false);
        assert_eq!(
            render_str(r#"{"key":"{{ .remoteRef.key }}"}"#, &raw),
            r#"{"key":"a b/c&d"}"#
        );
    }

    #[test]
    fn absent_property_and_version_render_empty() {
        let raw = data(&remote("k", None, None), "", &SecretData::new(), false);
        assert_eq!(
            render_str("[{{ .remoteRef.property }}|{{ .remoteRef.version }}]", &raw),
            "[|]"
        );
    }

    #[test]
    fn eso_functions_work_on_secret_values() {
        let raw = data(&remote("k", None, None), "", &secrets(), false);
        assert_eq!(
            render_str(
                r#"Basic {{ print .auth.username ":" .auth.password | b64enc }}"#,
                &raw
            ),
            "Basic dGVzdCB1c2VyOnAmdw=="
        );
        assert_eq!(render_str(r#"{{ index .auth "password" }}"#, &raw), "p&w");
        assert_eq!(render_str("", &raw), "");
    }

    #[test]
    fn rendering_errors_name_the_field_and_not_the_data() {
        let raw = data(&remote("k", None, None), "", &secrets(), false);
        let err = render("headers.X", &field("{{ .auth.token }}"), &raw).unwrap_err();
        assert_eq!(err.config_field(), Some("headers.X"));
        let text = format!("{err:?}");
        assert!(text.contains("token"), "{text}");
        assert!(
            !text.contains("p&w") && !text.contains("test user"),
            "{text}"
        );
    }

    #[test]
    fn referenced_keys_are_found_in_every_spelling() {
        let sources = [
            "https://h/{{ .auth.username }}?x={{ $.auth.password }}",
            r#"{{ index .auth "api-key" }} {{ index . "auth" `tls.crt` }}"#,
            "{{ .other.thing }} {{ .xauth.nope }} {{ .remoteRef.auth.nope }}",
        ];
        let keys = referenced_keys(&sources, "auth");
        assert_eq!(
            keys.iter().map(String::as_str).collect::<Vec<_>>(),
            ["api-key", "password", "tls.crt", "username"]
        );
        assert!(referenced_keys(&sources, "missing").is_empty());
        assert_eq!(
            referenced_keys(&["{{ .my.name }}"], "my")
                .into_iter()
                .collect::<Vec<_>>(),
            ["name"]
        );
    }

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(query_escape("a b+c/d?e=f"), "a+b%2Bc%2Fd%3Fe%3Df");
        assert_eq!(query_escape("é"), "%C3%A9");
        assert_eq!(percent_decode("a%40b").unwrap(), b"a@b");
        assert!(percent_decode("a%4").is_none());
    }
}
