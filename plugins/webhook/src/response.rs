//! What ESO's webhook provider makes of an answer: the HTTP status as an error, the value
//! `result.jsonPath` selects (`GetSecret`), the object it selects as a map (`GetSecretMap`).
//! Pure functions, tested natively. Error messages describe the answer's shape (line and
//! column, Go type names), never its content.

use std::time::Duration;

use esox_plugin_sdk::serde_json::{self, Value};
use esox_plugin_sdk::{Error, SecretMap};

use crate::jsonpath::{JsonPath, go_type};

/// The error an HTTP status means, or `None` for 2xx. ESO: 404 is "no such secret", 304 "not
/// modified", anything else outside 2xx `endpoint gave error <status>`; here 401/403, 429 and
/// 5xx get their own kinds so they are retried (or not) as they should.
pub fn status_error(status: u16, retry_after: Option<&str>) -> Option<Error> {
    let reason = http_reason(status);
    let gave = format!("endpoint gave error {status} {reason}")
        .trim_end()
        .to_string();
    Some(match status {
        200..=299 => return None,
        304 => Error::NotModified,
        404 => Error::NotFound,
        401 | 403 => Error::permission_denied(gave),
        429 => Error::throttled(
            retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            gave,
        ),
        500..=599 => Error::unavailable(gave),
        300..=399 => Error::backend(format!(
            "{gave}: the plugin does not follow redirects, point url at the final location"
        )),
        _ => Error::backend(gave),
    })
}

fn http_reason(status: u16) -> &'static str {
    esox_plugin_sdk::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// Parse an answer as JSON; the error says where it is broken, not what it holds.
fn parse_json(body: &[u8], what: &str) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| {
        Error::backend(format!(
            "failed to parse {what}: not valid JSON (at line {} column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Apply a (rendered) JSONPath.
fn select(doc: &Value, json_path: &str) -> Result<Value, Error> {
    let path = JsonPath::parse(json_path)
        .map_err(|e| Error::invalid_config("result.jsonPath", e.to_string()))?;
    path.select(doc)
        .map(|s| s.into_value())
        .map_err(|e| Error::backend(format!("failed to get response path {json_path}: {e}")))
}

/// ESO's `GetSecret`: the raw answer when `json_path` is empty, else the value it selects
/// (strings as they are, numbers rounded to integers, the first element of a list, objects as
/// JSON).
pub fn secret_value(body: &[u8], json_path: &str) -> Result<Vec<u8>, Error> {
    if json_path.is_empty() {
        return Ok(body.to_vec());
    }
    let doc = parse_json(body, "response json")?;
    extract(&select(&doc, json_path)?)
}

/// ESO's `extractSecretData`.
pub fn extract(v: &Value) -> Result<Vec<u8>, Error> {
    match v {
        Value::String(s) => Ok(s.clone().into_bytes()),
        Value::Null => Ok(Vec::new()),
        Value::Bool(b) => Ok(b.to_string().into_bytes()),
        // Go's strconv.FormatFloat(v, 'f', 0, 64): no decimals.
        Value::Number(n) => Ok(format_f0(n.as_f64().unwrap_or(0.0)).into_bytes()),
        Value::Array(items) => match items.first() {
            None => Err(Error::backend("filter worked but didn't get any result")),
            Some(first) => extract(first),
        },
        Value::Object(_) => Ok(go_json(v).into_bytes()),
    }
}

/// ESO's `GetSecretMap`: the answer parsed as JSON, `json_path` applied when set, a string
/// result parsed again as JSON, then an object's entries (ESO's `GetByteValue`).
pub fn secret_map(body: &[u8], json_path: &str) -> Result<SecretMap, Error> {
    let mut doc = parse_json(body, "response json")?;
    if !json_path.is_empty() {
        doc = select(&doc, json_path)?;
    }
    if let Value::String(s) = &doc {
        doc = parse_json(s.as_bytes(), "response json from jsonpath")?;
    }
    let Value::Object(map) = doc else {
        return Err(Error::backend(format!(
            "failed to get response (wrong type: {})",
            go_type(&doc)
        )));
    };
    let mut entries: SecretMap = map
        .iter()
        .map(|(k, v)| (k.clone(), byte_value(v)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// ESO's `esutils.GetByteValue` for decoded JSON.
pub fn byte_value(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        Value::Null => Vec::new(),
        Value::Bool(b) => b.to_string().into_bytes(),
        // strconv.FormatFloat(v, 'f', -1, 64): shortest, no exponent (as Rust's Display).
        Value::Number(n) => format!("{}", n.as_f64().unwrap_or(0.0)).into_bytes(),
        Value::Array(_) | Value::Object(_) => go_json(v).into_bytes(),
    }
}

/// Go's `strconv.FormatFloat(f, 'f', 0, 64)`: rounded half to even on the exact binary value.
pub fn format_f0(f: f64) -> String {
    // At 2^52 and above every f64 is an integer.
    let r = if f.abs() >= 4_503_599_627_370_496.0 {
        f
    } else {
        let floor = f.floor();
        let frac = f - floor;
        if frac > 0.5 || (frac == 0.5 && floor.rem_euclid(2.0) == 1.0) {
            floor + 1.0
        } else {
            floor
        }
    };
    let r = if r == 0.0 { 0.0f64.copysign(f) } else { r };
    format!("{r:.0}")
}

/// Go's `json.Marshal` of a decoded JSON value: object keys sorted, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped, numbers as float64.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_json_float(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => write_go_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(k, out);
                out.push(':');
                write_go_json(v, out);
            }
            out.push('}');
        }
    }
}

/// encoding/json's float64 encoder.
fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if exp < 0 {
            format!("{mantissa}e-{}", -exp)
        } else {
            format!("{mantissa}e+{exp:02}")
        }
    } else {
        format!("{f}")
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-VALUE-xyzzy";

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        assert!(status_error(200, None).is_none());
        assert!(status_error(204, None).is_none());
        assert!(matches!(status_error(404, None), Some(Error::NotFound)));
        assert!(matches!(status_error(304, None), Some(Error::NotModified)));
        assert!(
            matches!(status_error(401, None), Some(Error::PermissionDenied(m)) if m == "endpoint gave error 401 Unauthorized")
        );
        assert!(matches!(
            status_error(403, None),
            Some(Error::PermissionDenied(_))
        ));
        match status_error(429, Some("7")) {
            Some(Error::Throttled(t)) => assert_eq!(t.retry_after_ms, Some(7000)),
            other => panic!("{other:?}"),
        }
        match status_error(429, Some("Wed, 21 Oct 2015 07:28:00 GMT")) {
            Some(Error::Throttled(t)) => assert_eq!(t.retry_after_ms, None),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(status_error(503, None), Some(Error::Unavailable(m)) if m == "endpoint gave error 503 Service Unavailable")
        );
        assert!(
            matches!(status_error(302, None), Some(Error::Backend(m)) if m.contains("redirects"))
        );
        assert!(
            matches!(status_error(400, None), Some(Error::Backend(m)) if m == "endpoint gave error 400 Bad Request")
        );
        assert!(
            matches!(status_error(599, None), Some(Error::Unavailable(m)) if m == "endpoint gave error 599")
        );
    }

    #[test]
    fn without_a_json_path_the_raw_answer_is_the_value() {
        assert_eq!(
            text(secret_value(b"plain text\n", "").unwrap()),
            "plain text\n"
        );
        assert_eq!(text(secret_value(br#"{"a":1}"#, "").unwrap()), r#"{"a":1}"#);
    }

    #[test]
    fn json_path_values_are_extracted_as_eso_does() {
        let body = br#"{
            "s": "v", "t": true, "n": null, "i": 42, "f": 2.5, "g": 3.7, "neg": -0.2,
            "big": 12345678901234567890,
            "list": ["first", "second"], "empty": [],
            "obj": {"z": 1, "a": "<b>&", "l": [1.5, 1e21, 1e-7]}
        }"#;
        let get = |p: &str| secret_value(body, p).map(text);
        assert_eq!(get("$.s").unwrap(), "v");
        assert_eq!(get("$.t").unwrap(), "true");
        assert_eq!(get("$.n").unwrap(), "");
        assert_eq!(get("$.i").unwrap(), "42");
        assert_eq!(
            get("$.f").unwrap(),
            "2",
            "FormatFloat 'f' 0 rounds half to even"
        );
        assert_eq!(get("$.g").unwrap(), "4");
        assert_eq!(get("$.neg").unwrap(), "-0");
        assert_eq!(get("$.big").unwrap(), "12345678901234567168");
        assert_eq!(
            get("$.list").unwrap(),
            "first",
            "a list gives its first element"
        );
        assert_eq!(get("$.list[*]").unwrap(), "first");
        assert_eq!(
            get("$.obj").unwrap(),
            r#"{"a":"\u003cb\u003e\u0026","l":[1.5,1e+21,1e-7],"z":1}"#
        );
        assert!(
            matches!(get("$.empty"), Err(Error::Backend(m)) if m == "filter worked but didn't get any result")
        );
        assert!(
            matches!(get("$.nope"), Err(Error::Backend(m)) if m == "failed to get response path $.nope: unknown key nope")
        );
    }

    /// The GetSecret / GetSecretMap cases of ESO's `providers/v1/webhook/webhook_test.go`.
    #[test]
    fn eso_webhook_test_cases() {
        let get = |body: &str, path: &str| text(secret_value(body.as_bytes(), path).unwrap());
        let secrets = r#"{"secrets": [{"name": "thesecret", "value": "secret-value"}, {"name": "alsosecret", "value": "another-value"}]}"#;
        assert_eq!(
            get(
                r#"{"result":{"thesecret":{"one":"secret-value"}}}"#,
                "$.result.thesecret"
            ),
            r#"{"one":"secret-value"}"#
        );
        assert_eq!(get("secret-value", ""), "secret-value");
        assert_eq!(
            get(
                r#"{"result":{"thesecret":"secret-value"}}"#,
                "$.result.thesecret"
            ),
            "secret-value"
        );
        assert_eq!(
            get(secrets, r#"$.secrets[?@.name=="thesecret"].value"#),
            "secret-value"
        );
        assert!(matches!(
            secret_value(secrets.as_bytes(), r#"$.secrets[?@.name=="thebadsecret"].value"#),
            Err(Error::Backend(m)) if m == "filter worked but didn't get any result"
        ));
        assert_eq!(get(secrets, "$..name"), "thesecret");
        assert_eq!(
            get(
                r#"{"secrets": [{"name": 123, "value": "secret-value"}, {"name": 456, "value": "another-value"}]}"#,
                "$..name"
            ),
            "123"
        );
        assert_eq!(
            get(
                r#"{"access_token":"REDACTED","refresh_token":"RE\/DACTED=="}"#,
                "$.refresh_token"
            ),
            "RE/DACTED=="
        );
        assert!(matches!(
            secret_value(b"not json", "$.result.thesecret"),
            Err(Error::Backend(m)) if m.starts_with("failed to parse response json")
        ));
        let map: Vec<(String, String)> = secret_map(
            br#"{"result":{"thesecret":"secret-value","alsosecret":"another-value", "id": 1234, "weight": 1.5}}"#,
            "$.result",
        )
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, text(v)))
        .collect();
        assert_eq!(
            map,
            [
                ("alsosecret", "another-value"),
                ("id", "1234"),
                ("thesecret", "secret-value"),
                ("weight", "1.5"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(matches!(
            secret_map(br#"{"result":{"thesecret":"secret-value"}}"#, "$.result.thesecret"),
            Err(Error::Backend(m)) if m.starts_with("failed to parse response json from jsonpath")
        ));
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(format_f0(0.5), "0");
        assert_eq!(format_f0(1.5), "2");
        assert_eq!(format_f0(2.5), "2");
        assert_eq!(format_f0(-1.5), "-2");
        assert_eq!(format_f0(-2.5), "-2");
        assert_eq!(format_f0(1e21), "1000000000000000000000");
        assert_eq!(format_f0(0.49999999999999994), "0");
        assert_eq!(go_json_float(0.000001), "0.000001");
        assert_eq!(go_json_float(1.5e-10), "1.5e-10");
        assert_eq!(go_json_float(-2e22), "-2e+22");
        assert_eq!(go_json_float(100.0), "100");
    }

    #[test]
    fn go_json_escapes_like_encoding_json() {
        let v: Value =
            serde_json::from_str(r#"{"k":"a\"b\\c\n\r\t\b\f\u0001\u007f\u2028é"}"#).unwrap();
        assert_eq!(
            go_json(&v),
            "{\"k\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\u{7f}\\u2028é\"}"
        );
    }

    #[test]
    fn secret_maps_follow_get_byte_value() {
        let body = br#"{"user": "admin", "port": 5432, "ratio": 0.25, "on": false, "none": null,
                        "tls": {"b": 1, "a": 2}, "list": [1, "x"]}"#;
        let m: Vec<(String, String)> = secret_map(body, "")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, text(v)))
            .collect();
        assert_eq!(
            m,
            [
                ("list", r#"[1,"x"]"#),
                ("none", ""),
                ("on", "false"),
                ("port", "5432"),
                ("ratio", "0.25"),
                ("tls", r#"{"a":2,"b":1}"#),
                ("user", "admin"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn secret_maps_use_the_json_path_and_reparse_strings() {
        let body = br#"{"data": {"inner": {"a": "1", "bad": "not json"}, "str": "{\"b\": 2}", "list": [{"c": 3}]}}"#;
        let keys = |p: &str| {
            secret_map(body, p).map(|m| m.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
        };
        assert_eq!(keys("$.data.inner").unwrap(), ["a", "bad"]);
        assert_eq!(keys("$.data.str").unwrap(), ["b"]);
        assert!(
            matches!(keys("$.data.list"), Err(Error::Backend(m)) if m == "failed to get response (wrong type: []interface {})")
        );
        assert!(matches!(keys("$.data.list[*]"), Err(Error::Backend(_))));
        assert!(
            matches!(keys("$.data.inner.a"), Err(Error::Backend(m)) if m == "failed to get response (wrong type: float64)")
        );
        assert!(
            matches!(keys("$.data.inner.bad"), Err(Error::Backend(m)) if m.starts_with("failed to parse response json from jsonpath"))
        );
    }

    #[test]
    fn answer_errors_never_quote_the_answer() {
        for body in [
            SECRET.to_string(),
            format!("{{\"a\": \"{SECRET}\""),
            format!("[\"{SECRET}\"]"),
            format!("\"{SECRET}\""),
            format!("{{\"a\": {{\"b\": \"{SECRET}\"}}}}"),
        ] {
            for path in ["", "$.a", "$.a.b.c", "$[0].x"] {
                if let Err(e) = secret_map(body.as_bytes(), path) {
                    assert!(!format!("{e:?}").contains(SECRET), "{body} {path}: {e:?}");
                }
                if !path.is_empty()
                    && let Err(e) = secret_value(body.as_bytes(), path)
                {
                    assert!(!format!("{e:?}").contains(SECRET), "{body} {path}: {e:?}");
                }
            }
        }
    }
}
