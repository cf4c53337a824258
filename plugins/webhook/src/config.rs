//! `spec.provider.webhook`: ESO's `WebhookProvider`, parsed and checked without contacting the
//! webhook. Everything here is pure so it can be unit-tested natively.
//!
//! Errors name the field as a path into the config and never quote a value: a store config's
//! templates and URL are not secret, but a header or body may be written with a literal token,
//! so the only text echoed back is field names, header names and `secrets[].name`s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use esox_plugin_sdk::{ConfigError, serde_json};
use esox_template::Template;
use serde::Deserialize;

use crate::jsonpath::JsonPath;
use crate::template::referenced_keys;

/// A reference to a Kubernetes Secret (ESO's `SecretKeySelector`; `key` is optional).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretKeySelector {
    pub name: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSecret {
    name: String,
    secret_ref: SecretKeySelector,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawResult {
    #[serde(default)]
    json_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaProvider {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    key: Option<String>,
    /// Resolved by the host; the plugin checks ESO's store-kind rule for it.
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    auth: Option<serde_json::Value>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    result: Option<RawResult>,
    #[serde(default)]
    secrets: Option<Vec<RawSecret>>,
    /// Trusted by the host, beside `caProvider`; only its type is checked here.
    #[serde(default)]
    #[allow(dead_code)]
    ca_bundle: Option<String>,
    #[serde(default)]
    ca_provider: Option<RawCaProvider>,
    /// The store's `spec.retrySettings`, which the host passes along; ESO's webhook provider
    /// does not use it.
    #[serde(default)]
    #[allow(dead_code)]
    retry_settings: Option<serde_json::Value>,
}

/// A template field: its source (for the key scan and the egress origin) and its parsed form.
/// An empty source renders to the empty string, as in ESO.
#[derive(Debug, Clone)]
pub struct TemplateField {
    pub source: String,
    pub template: Option<Template>,
}

impl TemplateField {
    fn parse(field: &str, source: String) -> Result<Self, ConfigError> {
        let template = if source.is_empty() {
            None
        } else {
            Some(
                Template::parse(field, &source)
                    .map_err(|e| ConfigError::new(field, format!("not a valid template: {e}")))?,
            )
        };
        Ok(TemplateField { source, template })
    }

    /// Whether the source contains template actions.
    pub fn is_templated(&self) -> bool {
        self.source.contains("{{")
    }
}

/// One `secrets[]` entry: a Secret whose keys templates read as `.<name>.<key>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSecret {
    /// The name templates use.
    pub name: String,
    pub secret_ref: SecretKeySelector,
    /// The keys the templates read (plus `secretRef.key` when set): those the plugin asks the
    /// host for. ESO loads every key of the Secret; the host hands out keys one by one.
    pub keys: BTreeSet<String>,
}

/// `spec.provider.webhook`, checked.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The HTTP method (ESO's default: GET).
    pub method: String,
    pub url: TemplateField,
    /// Header names and value templates, in name order.
    pub headers: Vec<(String, TemplateField)>,
    pub body: TemplateField,
    /// ESO's `timeout` (the whole exchange); none: no limit of the plugin's own.
    pub timeout: Option<Duration>,
    pub json_path: TemplateField,
    pub secrets: Vec<TemplateSecret>,
    /// `caProvider.namespace`, when a caProvider is set (`Some(None)`: without a namespace).
    pub ca_provider_namespace: Option<Option<String>>,
}

impl WebhookConfig {
    /// Parse and check a store's `spec.provider.webhook`.
    pub fn parse(config: &serde_json::Value) -> Result<Self, ConfigError> {
        let raw: RawConfig = esox_plugin_sdk::config::from_value(config)?;

        if let Some(auth) = &raw.auth {
            check_auth(auth)?;
        }

        let method = raw.method.unwrap_or_default();
        let method = if method.is_empty() {
            "GET".to_string()
        } else {
            method
        };
        if !method.bytes().all(is_token_byte) {
            return Err(ConfigError::new(
                "method",
                "not a valid HTTP method: write a token such as GET or POST",
            ));
        }

        if raw.url.trim().is_empty() {
            return Err(ConfigError::new("url", "must be set"));
        }
        let url = TemplateField::parse("url", raw.url)?;
        check_static_scheme(&url.source)?;

        let mut headers = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(ConfigError::new(
                    "headers",
                    "a header name is not a valid HTTP header name (a token such as Content-Type)",
                ));
            }
            let field = format!("headers.{name}");
            let template = TemplateField::parse(&field, value)?;
            headers.push((name, template));
        }

        let body = TemplateField::parse("body", raw.body.unwrap_or_default())?;

        let timeout = match raw.timeout.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let nanos = parse_go_duration(text).ok_or_else(|| {
                    ConfigError::new(
                        "timeout",
                        "not a duration: write a Go duration such as 500ms, 10s or 1m30s",
                    )
                })?;
                // Go's http.Client treats a zero or negative timeout as none.
                (nanos > 0).then(|| Duration::from_nanos(nanos as u64))
            }
        };

        let json_path = TemplateField::parse(
            "result.jsonPath",
            raw.result.and_then(|r| r.json_path).unwrap_or_default(),
        )?;
        if !json_path.source.is_empty() && !json_path.is_templated() {
            JsonPath::parse(&json_path.source)
                .map_err(|e| ConfigError::new("result.jsonPath", e.to_string()))?;
        }

        if let Some(ca) = &raw.ca_provider {
            if ca.kind != "Secret" && ca.kind != "ConfigMap" {
                return Err(ConfigError::new(
                    "caProvider.type",
                    "must be Secret or ConfigMap",
                ));
            }
            if ca.name.is_empty() {
                return Err(ConfigError::new("caProvider.name", "must not be empty"));
            }
            if ca.key.as_deref().unwrap_or_default().is_empty() {
                return Err(ConfigError::new(
                    "caProvider.key",
                    "must name the key that holds the CA certificate",
                ));
            }
        }
        let ca_provider_namespace = raw
            .ca_provider
            .as_ref()
            .map(|ca| ca.namespace.clone().filter(|n| !n.is_empty()));

        let sources: Vec<&str> = std::iter::once(url.source.as_str())
            .chain(headers.iter().map(|(_, t)| t.source.as_str()))
            .chain([body.source.as_str(), json_path.source.as_str()])
            .collect();
        let mut secrets: Vec<TemplateSecret> = Vec::new();
        for (i, s) in raw.secrets.unwrap_or_default().into_iter().enumerate() {
            let at = |f: &str| format!("secrets[{i}].{f}");
            if s.name.is_empty() {
                return Err(ConfigError::new(at("name"), "must not be empty"));
            }
            if s.name == "remoteRef" {
                return Err(ConfigError::new(
                    at("name"),
                    "remoteRef is the name of the reference's own template data: choose another name",
                ));
            }
            if secrets.iter().any(|o| o.name == s.name) {
                return Err(ConfigError::new(
                    at("name"),
                    "another entry of secrets has the same name",
                ));
            }
            if s.secret_ref.name.is_empty() {
                return Err(ConfigError::new(at("secretRef.name"), "must not be empty"));
            }
            let mut keys = referenced_keys(&sources, &s.name);
            match s.secret_ref.key.as_deref() {
                Some("") => {
                    return Err(ConfigError::new(
                        at("secretRef.key"),
                        "must not be empty: leave it out to use the whole Secret",
                    ));
                }
                Some(only) => {
                    let others: Vec<&str> = keys
                        .iter()
                        .map(String::as_str)
                        .filter(|k| *k != only)
                        .collect();
                    if !others.is_empty() {
                        return Err(ConfigError::new(
                            at("secretRef.key"),
                            format!(
                                "the templates read other keys of {} ({}), but secretRef.key limits this store to one key of the Secret: leave key out to use the whole Secret",
                                s.name,
                                others.join(", ")
                            ),
                        ));
                    }
                    keys.insert(only.to_string());
                }
                None => {}
            }
            secrets.push(TemplateSecret {
                name: s.name,
                secret_ref: s.secret_ref,
                keys,
            });
        }

        Ok(WebhookConfig {
            method,
            url,
            headers,
            body,
            timeout,
            json_path,
            secrets,
            ca_provider_namespace,
        })
    }

    /// The origin (`scheme://host[:port]`) the store calls, when `url` fixes it without
    /// template actions in its scheme or authority.
    pub fn origin(&self) -> Option<String> {
        static_origin(&self.url.source)
    }
}

/// `auth`: ESO allows exactly one protocol, and its only protocol is NTLM, which this plugin
/// does not implement.
fn check_auth(auth: &serde_json::Value) -> Result<(), ConfigError> {
    let Some(map) = auth.as_object() else {
        return Err(ConfigError::new("auth", "must be an object"));
    };
    let set: Vec<&String> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k)
        .collect();
    match set.as_slice() {
        [] => Err(ConfigError::new(
            "auth",
            "must set exactly one protocol (ntlm), or be left out",
        )),
        [one] if one.as_str() == "ntlm" => Err(ConfigError::new(
            "auth.ntlm",
            "NTLM authentication is not supported by the esox webhook plugin: send credentials with headers (for example Authorization: Basic {{ print .creds.username \":\" .creds.password | b64enc }}) instead",
        )),
        [one] => Err(ConfigError::new(
            format!("auth.{one}"),
            "unknown authorization protocol: ESO's webhook provider knows only ntlm",
        )),
        _ => Err(ConfigError::new("auth", "must set exactly one protocol")),
    }
}

/// The URL's scheme must be http or https when it is written literally.
fn check_static_scheme(url: &str) -> Result<(), ConfigError> {
    let Some((scheme, _)) = url.split_once("://") else {
        if url.contains("{{") {
            return Ok(());
        }
        return Err(ConfigError::new(
            "url",
            "must be an absolute http:// or https:// URL",
        ));
    };
    if scheme.contains("{{") {
        return Ok(());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => Ok(()),
        _ => Err(ConfigError::new("url", "the scheme must be http or https")),
    }
}

/// `scheme://host[:port]` of a URL template whose scheme and authority hold no template action.
pub fn static_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.contains("{{") {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // Userinfo (`user:pass@`, possibly templated) is not part of the origin.
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() || host_port.contains("{{") || host_port.contains('}') {
        return None;
    }
    Some(format!("{scheme}://{}", host_port.to_ascii_lowercase()))
}

/// RFC 7230 `tchar`: what a method or header name may contain.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<WebhookConfig, ConfigError> {
        WebhookConfig::parse(&v)
    }

    #[test]
    fn eso_documentation_example_parses() {
        let c = parse(json!({
            "url": "http://httpbin.org/get?parameter={{ .remoteRef.key }}",
            "result": {"jsonPath": "$.args.parameter"},
            "headers": {
                "Content-Type": "application/json",
                "Authorization": "Basic {{ print .auth.username \":\" .auth.password | b64enc }}"
            },
            "secrets": [{"name": "auth", "secretRef": {"name": "webhook-credentials"}}]
        }))
        .unwrap();
        assert_eq!(c.method, "GET");
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.headers[0].0, "Authorization");
        assert_eq!(c.timeout, None);
        assert_eq!(c.secrets.len(), 1);
        assert_eq!(
            c.secrets[0].keys.iter().collect::<Vec<_>>(),
            ["password", "username"]
        );
        assert_eq!(c.origin().as_deref(), Some("http://httpbin.org"));
    }

    #[test]
    fn every_field_of_the_schema_is_accepted() {
        let c = parse(json!({
            "method": "POST",
            "url": "https://api.example.com:8443/v1/secret",
            "headers": {"X-Key": "{{ .remoteRef.key }}"},
            "body": "{\"key\": \"{{ .remoteRef.key }}\", \"v\": \"{{ .remoteRef.version }}\"}",
            "timeout": "1m30s",
            "result": {"jsonPath": "$.data[0].value"},
            "secrets": [{"name": "tok", "secretRef": {"name": "t", "key": "token", "namespace": "ns"}}],
            "caBundle": "LS0tLS1CRUdJTg==",
            "caProvider": {"type": "ConfigMap", "name": "ca", "key": "ca.crt", "namespace": "ns"},
            "retrySettings": {"maxRetries": 3}
        }))
        .unwrap();
        assert_eq!(c.method, "POST");
        assert_eq!(c.timeout, Some(Duration::from_secs(90)));
        assert_eq!(
            c.secrets[0].keys.iter().collect::<Vec<_>>(),
            ["token"],
            "secretRef.key is read even when no template names it"
        );
        assert_eq!(c.origin().as_deref(), Some("https://api.example.com:8443"));
    }

    #[test]
    fn ntlm_and_unknown_auth_are_refused_by_field() {
        let err = parse(json!({"url": "https://x", "auth": {"ntlm": {
            "usernameSecret": {"name": "a", "key": "u"},
            "passwordSecret": {"name": "a", "key": "p"}
        }}}))
        .unwrap_err();
        assert_eq!(err.field, "auth.ntlm");
        assert!(err.message.contains("not supported"), "{}", err.message);
        assert_eq!(
            parse(json!({"url": "https://x", "auth": {}}))
                .unwrap_err()
                .field,
            "auth"
        );
        assert_eq!(
            parse(json!({"url": "https://x", "auth": {"kerberos": {}}}))
                .unwrap_err()
                .field,
            "auth.kerberos"
        );
    }

    #[test]
    fn malformed_fields_are_named_without_quoting_values() {
        const SECRET: &str = "s3cr3t-VALUE-xyzzy";
        let err = parse(json!({"url": "https://x", "headers": {"Authorization": 42}})).unwrap_err();
        assert_eq!(err.field, "headers.Authorization");
        let err = parse(json!({"url": "https://x", "timeout": SECRET})).unwrap_err();
        assert_eq!(err.field, "timeout");
        assert!(!err.message.contains(SECRET));
        let err =
            parse(json!({"url": "https://x", "method": SECRET.to_string() + " x"})).unwrap_err();
        assert_eq!(err.field, "method");
        assert!(!err.message.contains(SECRET));
        let err = parse(json!({"url": "https://x", "unknown": 1})).unwrap_err();
        assert!(err.message.contains("unknown field"), "{}", err.message);
        assert_eq!(parse(json!({})).unwrap_err().message, "missing field `url`");
        assert_eq!(parse(json!({"url": ""})).unwrap_err().field, "url");
        assert_eq!(parse(json!({"url": "ftp://x/y"})).unwrap_err().field, "url");
        assert_eq!(parse(json!({"url": "x/y"})).unwrap_err().field, "url");
        let err = parse(json!({"url": "https://x", "headers": {"Bad Name": "v"}})).unwrap_err();
        assert_eq!(err.field, "headers");
    }

    #[test]
    fn templates_and_json_paths_are_checked_at_validation() {
        let err = parse(json!({"url": "https://x/{{ .remoteRef.key "})).unwrap_err();
        assert_eq!(err.field, "url");
        let err = parse(json!({"url": "https://x", "body": "{{ frobnicate }}"})).unwrap_err();
        assert_eq!(err.field, "body");
        let err = parse(json!({"url": "https://x", "headers": {"A": "{{ end }}"}})).unwrap_err();
        assert_eq!(err.field, "headers.A");
        let err = parse(json!({"url": "https://x", "result": {"jsonPath": "$.a[(@.length-1)]"}}))
            .unwrap_err();
        assert_eq!(err.field, "result.jsonPath");
        // A templated jsonPath is checked once rendered.
        parse(json!({"url": "https://x", "result": {"jsonPath": "$.{{ .remoteRef.property }}"}}))
            .unwrap();
    }

    #[test]
    fn secrets_entries_are_checked() {
        let s = |name: &str, r: serde_json::Value| json!({"name": name, "secretRef": r});
        let cfg = |secrets: serde_json::Value| json!({"url": "https://x/{{ .a.user }}", "secrets": secrets});
        assert_eq!(
            parse(cfg(json!([s("", json!({"name": "n"}))])))
                .unwrap_err()
                .field,
            "secrets[0].name"
        );
        assert_eq!(
            parse(cfg(json!([s("remoteRef", json!({"name": "n"}))])))
                .unwrap_err()
                .field,
            "secrets[0].name"
        );
        assert_eq!(
            parse(cfg(json!([
                s("a", json!({"name": "n"})),
                s("a", json!({"name": "m"}))
            ])))
            .unwrap_err()
            .field,
            "secrets[1].name"
        );
        assert_eq!(
            parse(cfg(json!([s("a", json!({"name": ""}))])))
                .unwrap_err()
                .field,
            "secrets[0].secretRef.name"
        );
        let err = parse(cfg(json!([s(
            "a",
            json!({"name": "n", "key": "password"})
        )])))
        .unwrap_err();
        assert_eq!(err.field, "secrets[0].secretRef.key");
        assert!(err.message.contains("(user)"), "{}", err.message);
        parse(cfg(json!([s("a", json!({"name": "n", "key": "user"}))]))).unwrap();
    }

    #[test]
    fn ca_provider_is_checked() {
        let err = parse(json!({"url": "https://x", "caProvider": {"type": "Vault", "name": "n"}}))
            .unwrap_err();
        assert_eq!(err.field, "caProvider.type");
        let err = parse(json!({"url": "https://x", "caProvider": {"type": "Secret", "name": ""}}))
            .unwrap_err();
        assert_eq!(err.field, "caProvider.name");
    }

    #[test]
    fn timeouts_follow_gos_http_client() {
        let timeout = |t: &str| parse(json!({"url": "https://x", "timeout": t})).map(|c| c.timeout);
        assert_eq!(timeout("250ms").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(timeout("2h").unwrap(), Some(Duration::from_secs(7200)));
        // Go's http.Client: a zero or negative timeout means no timeout.
        assert_eq!(timeout("0").unwrap(), None);
        assert_eq!(timeout("0s").unwrap(), None);
        assert_eq!(timeout("-5s").unwrap(), None);
        assert_eq!(timeout("").unwrap(), None);
        assert_eq!(parse(json!({"url": "https://x"})).unwrap().timeout, None);
        assert_eq!(timeout("30").unwrap_err().field, "timeout");
    }

    #[test]
    fn ca_provider_keys_and_namespaces_are_checked() {
        let ca = |ca: serde_json::Value| parse(json!({"url": "https://x", "caProvider": ca}));
        let err = ca(json!({"type": "ConfigMap", "name": "ca", "key": ""})).unwrap_err();
        assert_eq!(err.field, "caProvider.key");
        let err = ca(json!({"type": "ConfigMap", "name": "ca"})).unwrap_err();
        assert_eq!(err.field, "caProvider.key", "ESO fails without the key too");
        ca(json!({"type": "Secret", "name": "ca", "key": "ca.crt"})).unwrap();
        ca(json!({"type": "ConfigMap", "name": "ca", "key": "ca.crt", "namespace": "infra"}))
            .unwrap();
        let err = ca(json!({"type": "Secret", "name": "ca", "key": "ca.crt", "namespace": 7}))
            .unwrap_err();
        assert_eq!(err.field, "caProvider.namespace");
    }

    #[test]
    fn ntlm_is_refused_whatever_its_secrets_name() {
        let selector = |key: &str| json!({"name": "ntlm-creds", "key": key, "namespace": "infra"});
        let err = parse(json!({"url": "https://x", "auth": {"ntlm": {
            "usernameSecret": selector("username"),
            "passwordSecret": selector("password")
        }}}))
        .unwrap_err();
        assert_eq!(err.field, "auth.ntlm");
        assert!(err.message.contains("not supported"), "{}", err.message);
        assert!(!err.message.contains("ntlm-creds"), "{}", err.message);
    }

    #[test]
    fn origins_are_derived_only_from_static_authorities() {
        assert_eq!(
            static_origin("https://API.example.com/a?b={{ .remoteRef.key }}").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            static_origin("https://user:{{ .a.p }}@h.example.com:444/x").as_deref(),
            Some("https://h.example.com:444")
        );
        assert_eq!(
            static_origin("https://{{ .remoteRef.key }}.example.com/"),
            None
        );
        assert_eq!(static_origin("{{ .a.url }}/x"), None);
        assert_eq!(
            static_origin("http://[::1]:8080").as_deref(),
            Some("http://[::1]:8080")
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("10s"), Some(10_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration("2µs"), Some(2_000));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
