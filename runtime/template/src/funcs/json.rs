//! JSON functions matching Go's `encoding/json`: `toJson`, `toPrettyJson`, `toRawJson`,
//! `fromJson` (numbers become float64, as in Go) and their `must` variants.

use std::collections::BTreeMap;

use super::{FnResult, Registry, reg, s};
use crate::gofmt;
use crate::value::Value;

/// Go's float encoding in encoding/json: `'f'` unless the exponent is tiny or huge.
pub(crate) fn json_float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!(
            "json: unsupported value: {}",
            gofmt::format_float_g(f, -1)
        ));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = gofmt::format_float_e(f, -1, false);
        // Go cleans e-07 into e-7.
        let n = s.len();
        if n >= 4 && &s[n - 4..n - 2] == "e-" && &s[n - 2..n - 1] == "0" {
            return Ok(format!("{}{}", &s[..n - 2], &s[n - 1..]));
        }
        if n >= 4 && &s[n - 4..n - 2] == "e+" && &s[n - 2..n - 1] == "0" {
            return Ok(format!("{}{}", &s[..n - 2], &s[n - 1..]));
        }
        return Ok(s);
    }
    Ok(gofmt::format_float_f(f, -1))
}

fn json_string(out: &mut Vec<u8>, s: &[u8], escape_html: bool) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\x08' => out.extend_from_slice(b"\\b"),
                '\x0c' => out.extend_from_slice(b"\\f"),
                '<' | '>' | '&' if escape_html => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                '\u{2028}' | '\u{2029}' => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c if (c as u32) < 0x20 => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Encodes like `json.Marshal` / `json.MarshalIndent(v, "", indent)`.
pub(crate) fn encode(
    v: &Value,
    out: &mut Vec<u8>,
    indent: Option<&str>,
    escape_html: bool,
    depth: usize,
) -> Result<(), String> {
    if depth > 1000 {
        return Err("json: exceeded max depth".into());
    }
    let nl = |out: &mut Vec<u8>, d: usize| {
        if let Some(ind) = indent {
            out.push(b'\n');
            for _ in 0..d {
                out.extend_from_slice(ind.as_bytes());
            }
        }
    };
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(json_float(*f)?.as_bytes()),
        Value::Str(s) => json_string(out, s, escape_html),
        Value::Time(t) => json_string(out, super::date::rfc3339_nano(t).as_bytes(), escape_html),
        Value::List(l) => {
            if l.is_empty() {
                out.extend_from_slice(b"[]");
                return Ok(());
            }
            out.push(b'[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                nl(out, depth + 1);
                encode(e, out, indent, escape_html, depth + 1)?;
            }
            nl(out, depth);
            out.push(b']');
        }
        Value::Map(m) => {
            if m.is_empty() {
                out.extend_from_slice(b"{}");
                return Ok(());
            }
            out.push(b'{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                nl(out, depth + 1);
                json_string(out, k.as_bytes(), escape_html);
                out.push(b':');
                if indent.is_some() {
                    out.push(b' ');
                }
                encode(e, out, indent, escape_html, depth + 1)?;
            }
            nl(out, depth);
            out.push(b'}');
        }
    }
    Ok(())
}

/// Converts parsed JSON into a template value (numbers are float64, like Go's `interface{}`).
pub(crate) fn from_serde(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::Str(s.into_bytes()),
        serde_json::Value::Array(a) => Value::List(a.into_iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.into_iter()
                .map(|(k, v)| (k, from_serde(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

fn decode(src: &[u8]) -> Result<Value, String> {
    let v: serde_json::Value = serde_json::from_slice(src).map_err(|e| {
        if e.is_eof() {
            "unexpected end of JSON input".to_string()
        } else {
            // Position only: the input may be a secret.
            format!("invalid JSON at line {} column {}", e.line(), e.column())
        }
    })?;
    Ok(from_serde(v))
}

fn to_json(v: &Value, indent: Option<&str>, html: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    encode(v, &mut out, indent, html, 0)?;
    Ok(out)
}

pub(crate) fn register(r: &mut Registry) {
    reg(r, "toJson", 1, |a| {
        Ok(Value::Str(to_json(&a[0], None, true).unwrap_or_default()))
    });
    reg(r, "mustToJson", 1, |a| {
        Ok(Value::Str(to_json(&a[0], None, true)?))
    });
    reg(r, "toPrettyJson", 1, |a| {
        Ok(Value::Str(
            to_json(&a[0], Some("  "), true).unwrap_or_default(),
        ))
    });
    reg(r, "mustToPrettyJson", 1, |a| {
        Ok(Value::Str(to_json(&a[0], Some("  "), true)?))
    });
    reg(r, "toRawJson", 1, |a| {
        Ok(Value::Str(to_json(&a[0], None, false)?))
    });
    reg(r, "mustToRawJson", 1, |a| {
        Ok(Value::Str(to_json(&a[0], None, false)?))
    });
    reg(r, "fromJson", 1, |a| {
        Ok(decode(s(&a[0])?).unwrap_or(Value::Nil))
    });
    reg(r, "mustFromJson", 1, |a| decode(s(&a[0])?));
}

#[allow(dead_code)]
fn _t(_: FnResult) {}
