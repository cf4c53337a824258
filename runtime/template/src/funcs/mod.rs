//! The function library: Go's text/template built-ins, Sprig v3 (as ESO vendors it) and ESO's
//! own functions, in one registry looked up at parse time (unknown names are parse errors).
//!
//! Argument conversion follows Go's rules closely enough for real templates: parameters Go
//! declares as `string` reject non-strings ("wrong type for value"), `interface{}` parameters
//! accept anything, and Sprig's `cast`-based numeric conversions are lenient.

pub(crate) mod builtin;
pub(crate) mod date;
pub(crate) mod der;
pub(crate) mod eso;
pub(crate) mod json;
pub(crate) mod pkcs12;
pub(crate) mod sprig;
pub(crate) mod yaml;

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::value::Value;

/// A function's result; the error text is wrapped as `error calling <name>: <text>`.
pub(crate) type FnResult = Result<Value, String>;

/// A registered template function with its arity bounds.
pub(crate) struct Func {
    pub min: usize,
    pub max: Option<usize>,
    pub call: fn(Vec<Value>) -> FnResult,
}

pub(crate) type Registry = HashMap<&'static str, Func>;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut r = Registry::new();
    builtin::register(&mut r);
    sprig::register(&mut r);
    date::register(&mut r);
    eso::register(&mut r);
    r
});

/// Adds `name` with exactly `n` arguments.
pub(crate) fn reg(
    r: &mut Registry,
    name: &'static str,
    n: usize,
    call: fn(Vec<Value>) -> FnResult,
) {
    r.insert(
        name,
        Func {
            min: n,
            max: Some(n),
            call,
        },
    );
}

/// Adds a variadic `name` taking at least `min` arguments.
pub(crate) fn reg_var(
    r: &mut Registry,
    name: &'static str,
    min: usize,
    call: fn(Vec<Value>) -> FnResult,
) {
    r.insert(
        name,
        Func {
            min,
            max: None,
            call,
        },
    );
}

/// Adds `name` taking between `min` and `max` arguments.
pub(crate) fn reg_range(
    r: &mut Registry,
    name: &'static str,
    min: usize,
    max: usize,
    call: fn(Vec<Value>) -> FnResult,
) {
    r.insert(
        name,
        Func {
            min,
            max: Some(max),
            call,
        },
    );
}

/// Looks a function up by name (`and`/`or` are handled by the executor itself).
pub(crate) fn lookup(name: &str) -> Option<&'static Func> {
    REGISTRY.get(name)
}

/// Whether a name is a known function, as checked at parse time.
pub(crate) fn is_defined(name: &str) -> bool {
    name == "and" || name == "or" || REGISTRY.contains_key(name)
}

/// Sprig/ESO functions esox deliberately does not provide, with the reason given at parse time.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "env",
        "ESO removes it: templates must not read the controller's environment",
    ),
    (
        "expandenv",
        "ESO removes it: templates must not read the controller's environment",
    ),
    (
        "getHostByName",
        "ESO removes it: templates must not do DNS lookups",
    ),
    ("derivePassword", "not implemented in esox"),
    (
        "genPrivateKey",
        "key and certificate generation is not implemented in esox; use a generator",
    ),
    (
        "buildCustomCert",
        "key and certificate generation is not implemented in esox; use a generator",
    ),
    (
        "genCA",
        "key and certificate generation is not implemented in esox; use a generator",
    ),
    (
        "genCAWithKey",
        "key and certificate generation is not implemented in esox; use a generator",
    ),
    (
        "genSelfSignedCert",
        "key and certificate generation is not implemented in esox; use a generator",
    ),
    (
        "genSelfSignedCertWithKey",
        "key and certificate generation is not implemented in esox; use a generator",
    ),
    (
        "genSignedCert",
        "key and certificate generation is not implemented in esox; use a generator",
    ),
    (
        "genSignedCertWithKey",
        "key and certificate generation is not implemented in esox; use a generator",
    ),
    ("encryptAES", "AES helpers are not implemented in esox"),
    ("decryptAES", "AES helpers are not implemented in esox"),
    ("semver", "semver helpers are not implemented in esox"),
    (
        "semverCompare",
        "semver helpers are not implemented in esox",
    ),
    ("durationRound", "not implemented in esox"),
];

/// Why a known Sprig/ESO function is unavailable, if it is one of those.
pub(crate) fn unsupported(name: &str) -> Option<&'static str> {
    if REGISTRY.contains_key(name) {
        return None;
    }
    UNSUPPORTED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

/// The names of every supported function, sorted (for documentation and tests).
pub fn function_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = REGISTRY.keys().copied().chain(["and", "or"]).collect();
    v.sort_unstable();
    v
}

// ------------------------------------------------------------------ argument helpers

/// A Go `string` parameter: strings only.
pub(crate) fn s(v: &Value) -> Result<&[u8], String> {
    match v {
        Value::Str(b) => Ok(b),
        Value::Nil => Err("invalid value; expected string".into()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// A Go `string` parameter as text (lossy for invalid UTF-8).
pub(crate) fn st(v: &Value) -> Result<String, String> {
    s(v).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A Go `int` parameter: integers only (floats are rejected, as Go does for variables).
pub(crate) fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
        Value::Nil => Err("invalid value; expected int".into()),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

/// A Go `bool` parameter.
pub(crate) fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Nil => Err("invalid value; expected bool".into()),
        other => Err(format!(
            "wrong type for value; expected bool; got {}",
            other.type_name()
        )),
    }
}

/// A Go `map[string]interface{}` parameter.
pub(crate) fn map(v: &Value) -> Result<&std::collections::BTreeMap<String, Value>, String> {
    match v {
        Value::Map(m) => Ok(m),
        Value::Nil => Err("invalid value; expected map[string]interface {}".into()),
        other => Err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        )),
    }
}

/// Sprig's `strval`: strings as-is, everything else via `%v` (nil is `<nil>`).
pub(crate) fn strval(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(b) => b.clone(),
        other => other.to_go_bytes(),
    }
}

/// `cast.ToInt64`: lenient, failures are 0.
pub(crate) fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => {
            if f.is_nan() {
                0
            } else {
                *f as i64
            }
        }
        Value::Bool(b) => i64::from(*b),
        Value::Str(b) => {
            let t = String::from_utf8_lossy(b);
            let t = t.trim();
            // cast trims a ".0" style zero decimal before parsing with base 0.
            let t = match t.split_once('.') {
                Some((i, frac)) if !frac.is_empty() && frac.bytes().all(|c| c == b'0') => i,
                _ => t,
            };
            parse_int_base0(t).unwrap_or(0)
        }
        _ => 0,
    }
}

/// `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int_base0(t: &str) -> Option<i64> {
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() {
        return None;
    }
    let body = body.replace('_', "");
    let l = body.to_ascii_lowercase();
    let v = if let Some(h) = l.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = l.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(o) = l.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if l.len() > 1 && l.starts_with('0') {
        i64::from_str_radix(&l[1..], 8).ok()?
    } else {
        if !l.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        l.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// `cast.ToFloat64`: lenient, failures are 0.
pub(crate) fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(b) => String::from_utf8_lossy(b).trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`: nil, false, 0, "" and empty collections.
pub(crate) fn is_empty(v: &Value) -> bool {
    !v.truthy()
}

/// A list-like argument (Sprig accepts any slice).
pub(crate) fn list_of(v: &Value, fname: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(format!("Cannot {fname} on type {}", other.type_name())),
    }
}
