//! JSON text exactly as ESO's `esutils.JSONMarshal` writes it (Go's `encoding/json` with HTML
//! escaping off): object keys sorted, Go's string escapes, numbers as Go writes a `float64`.
//!
//! The values ESO's kubernetes provider marshals are Secret data turned into Go strings
//! (`string(bytes)`), so invalid UTF-8 is written as Go does: one `\ufffd` per invalid byte.

use std::collections::BTreeMap;

use esox_plugin_sdk::serde_json::Value;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `s` (any bytes, as a Go string) as a JSON string literal.
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c if (c as u32) < 0x20 => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// A `map[string]string` (Go strings of raw bytes); `None` is a nil map (`null`).
pub fn string_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(map: Option<&BTreeMap<K, V>>) -> Vec<u8> {
    let Some(map) = map else {
        return b"null".to_vec();
    };
    let mut entries: Vec<(&[u8], &[u8])> =
        map.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    // Go sorts map keys by their bytes; a BTreeMap of Strings is in that order already, but
    // sort anyway so any key type works.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = vec![b'{'];
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_string(&mut out, k);
        out.push(b':');
        push_string(&mut out, v);
    }
    out.push(b'}');
    out
}

/// A value decoded by Go into `any` (numbers become `float64`) and marshalled again.
pub fn value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    push_value(&mut out, v);
    out
}

fn push_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(float(n.as_f64().unwrap_or(0.0)).as_bytes()),
        Value::String(s) => push_string(out, s.as_bytes()),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_string(out, k.as_bytes());
                out.push(b':');
                push_value(out, v);
            }
            out.push(b'}');
        }
    }
}

/// A `float64` as Go's `encoding/json` writes it: shortest digits, `'f'` format unless the
/// magnitude is below 1e-6 or at least 1e21, then `'e'` with a signed exponent (`1e+21`,
/// `1.5e-7`).
pub fn float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else {
        format!("{f}")
    }
}

/// Bytes as Go's JSON decoder reads them into strings: each invalid UTF-8 byte becomes U+FFFD.
pub fn lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('\u{fffd}');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_plugin_sdk::serde_json::json;

    fn s(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        push_string(&mut out, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them_without_html_escaping() {
        assert_eq!(s(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(s(b"<a&b>"), r#""<a&b>""#);
        assert_eq!(
            s(b"\n\r\t\x08\x0c\x01\x1f\x7f"),
            "\"\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\""
        );
        assert_eq!(s("x\u{2028}y\u{2029}é".as_bytes()), "\"x\\u2028y\\u2029é\"");
        // One replacement per invalid byte, written escaped; a real U+FFFD stays raw.
        assert_eq!(s(b"a\xf0\x9f\x98b\xff"), r#""a\ufffd\ufffd\ufffdb\ufffd""#);
        assert_eq!(s("\u{fffd}".as_bytes()), "\"\u{fffd}\"");
    }

    #[test]
    fn maps_are_sorted_and_nil_is_null() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), b"2".to_vec());
        m.insert("a".to_string(), b"1".to_vec());
        assert_eq!(string_map(Some(&m)), br#"{"a":"1","b":"2"}"#);
        assert_eq!(string_map::<String, Vec<u8>>(None), b"null");
        assert_eq!(string_map(Some(&BTreeMap::<String, String>::new())), b"{}");
    }

    #[test]
    fn numbers_are_written_as_go_writes_a_float64() {
        assert_eq!(float(5432.0), "5432");
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(-0.0), "-0");
        assert_eq!(float(1e20), "100000000000000000000");
        assert_eq!(float(1e21), "1e+21");
        assert_eq!(float(1.5e-7), "1.5e-7");
        assert_eq!(float(0.000001), "0.000001");
        assert_eq!(float(12345678901234567890.0), "12345678901234567000");
        let v = json!({"z": [1, 2.50, true, null], "a": {"y": "q", "b": 1e3}});
        assert_eq!(
            String::from_utf8(value(&v)).unwrap(),
            r#"{"a":{"b":1000,"y":"q"},"z":[1,2.5,true,null]}"#
        );
    }

    #[test]
    fn lossy_replaces_each_invalid_byte() {
        assert_eq!(lossy(b"a\xf0\x9f\x98b"), "a\u{fffd}\u{fffd}\u{fffd}b");
        assert_eq!(lossy("é".as_bytes()), "é");
    }
}
