//! Go text/template's predefined functions: comparisons, `not`, `len`, `index`, `print*`,
//! `html`, `js`, `urlquery`, `call`. (`and`/`or` short-circuit, so the executor owns them;
//! `slice` is Sprig's, which ESO's function map installs over the built-in.)

use super::{Registry, reg, reg_var, s};
use crate::gofmt;
use crate::value::Value;

pub(crate) fn register(r: &mut Registry) {
    reg_var(r, "eq", 1, |a| {
        let first = &a[0];
        if a.len() < 2 {
            return Err("missing argument for comparison".into());
        }
        for other in &a[1..] {
            if eq(first, other)? {
                return Ok(Value::Bool(true));
            }
        }
        Ok(Value::Bool(false))
    });
    reg(r, "ne", 2, |a| Ok(Value::Bool(!eq(&a[0], &a[1])?)));
    reg(r, "lt", 2, |a| Ok(Value::Bool(lt(&a[0], &a[1])?)));
    reg(r, "le", 2, |a| {
        Ok(Value::Bool(lt(&a[0], &a[1])? || eq(&a[0], &a[1])?))
    });
    reg(r, "gt", 2, |a| {
        Ok(Value::Bool(!(lt(&a[0], &a[1])? || eq(&a[0], &a[1])?)))
    });
    reg(r, "ge", 2, |a| Ok(Value::Bool(!lt(&a[0], &a[1])?)));
    reg(r, "not", 1, |a| Ok(Value::Bool(!a[0].truthy())));
    reg(r, "len", 1, |a| match &a[0] {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::List(l) => Ok(Value::Int(l.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.len() as i64)),
        Value::Nil => Err("len of nil pointer".into()),
        other => Err(format!("len of type {}", other.type_name())),
    });
    reg_var(r, "index", 1, |a| {
        let mut item = a[0].clone();
        for idx in &a[1..] {
            item = match item {
                Value::Map(mut m) => {
                    let k = match idx {
                        Value::Str(k) => String::from_utf8_lossy(k).into_owned(),
                        Value::Nil => return Err("value is nil; should be of type string".into()),
                        other => {
                            return Err(format!(
                                "value has type {}; should be string",
                                other.type_name()
                            ));
                        }
                    };
                    let string_map =
                        !m.is_empty() && m.values().all(|v| matches!(v, Value::Str(_)));
                    // ESO's data is a map[string]string whose zero value is "", not nil; a map
                    // holding only strings is taken to be one (see docs/templates.md).
                    m.remove(&k).unwrap_or(if string_map {
                        Value::str("")
                    } else {
                        Value::Nil
                    })
                }
                Value::List(mut l) => {
                    let i = index_int(idx)?;
                    if i < 0 || i as usize >= l.len() {
                        return Err(format!("index out of range: {i}"));
                    }
                    l.swap_remove(i as usize)
                }
                Value::Str(b) => {
                    let i = index_int(idx)?;
                    if i < 0 || i as usize >= b.len() {
                        return Err(format!("index out of range: {i}"));
                    }
                    Value::Int(i64::from(b[i as usize]))
                }
                Value::Nil => return Err("index of untyped nil".into()),
                other => return Err(format!("can't index item of type {}", other.type_name())),
            };
        }
        Ok(item)
    });
    reg_var(r, "print", 0, |a| Ok(Value::Str(gofmt::sprint(&a))));
    reg_var(r, "println", 0, |a| Ok(Value::Str(gofmt::sprintln(&a))));
    reg_var(r, "printf", 1, |a| {
        let f = s(&a[0])?.to_vec();
        let cap = crate::limits::cap();
        let out = gofmt::sprintf_capped(&f, &a[1..], cap);
        if out.len() > cap {
            crate::limits::fits(out.len() as u128)?;
        }
        Ok(Value::Str(out))
    });
    reg_var(r, "html", 0, |a| {
        Ok(Value::Str(html_escape(&eval_args(&a))))
    });
    reg_var(r, "js", 0, |a| Ok(Value::Str(js_escape(&eval_args(&a)))));
    reg_var(r, "urlquery", 0, |a| {
        Ok(Value::Str(query_escape(&eval_args(&a))))
    });
    reg_var(r, "call", 1, |a| {
        Err(format!("non-function of type {}", a[0].type_name()))
    });
}

fn index_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err("cannot index slice/array with nil".into()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        )),
    }
}

#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Other,
    }
}

/// Go's `eq` for two values.
fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    if matches!(a, Value::Nil) || matches!(b, Value::Nil) {
        return Ok(matches!(a, Value::Nil) && matches!(b, Value::Nil));
    }
    if kind(a) != kind(b) {
        return Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        ));
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Time(x), Value::Time(y)) => x == y && x.offset() == y.offset(),
        _ => return Err(format!("non-comparable type: {}", a.type_name())),
    })
}

/// Go's `lt` for two values.
fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        _ if kind(a) == Kind::Other || kind(a) == Kind::Bool => {
            Err("invalid type for comparison".into())
        }
        _ if kind(b) == Kind::Other || kind(b) == Kind::Bool => {
            Err("invalid type for comparison".into())
        }
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

/// text/template's `evalArgs`: a single string is used as-is, anything else via `fmt.Sprint`.
fn eval_args(a: &[Value]) -> Vec<u8> {
    if let [Value::Str(s)] = a {
        return s.clone();
    }
    gofmt::sprint(a)
}

/// `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            b => out.push(b),
        }
    }
    out
}

/// `template.JSEscapeString`.
pub(crate) fn js_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.extend_from_slice(b"\\\\"),
                '\'' => out.extend_from_slice(b"\\'"),
                '"' => out.extend_from_slice(b"\\\""),
                '<' => out.extend_from_slice(b"\\u003C"),
                '>' => out.extend_from_slice(b"\\u003E"),
                '&' => out.extend_from_slice(b"\\u0026"),
                '=' => out.extend_from_slice(b"\\u003D"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes())
                }
                c if (c as u32) < 0x80 => out.push(c as u8),
                c if c.is_control() || c.is_whitespace() && c != ' ' => {
                    out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes())
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\uFFFD");
        }
    }
    out
}

/// `url.QueryEscape`.
pub(crate) fn query_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            b => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
    out
}
