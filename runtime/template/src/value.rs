//! The Go-like value model templates compute with, and Go's default (`%v` / `fmt.Print`) rendering.
//!
//! Owns [`Value`], truthiness (`if`), emptiness (sprig `empty`), and how a value prints.

use std::collections::BTreeMap;

/// A Go-like dynamic value, as seen by templates.
///
/// Strings are byte strings because Go strings may hold arbitrary bytes: binary secret values
/// (keystores, DER) must pass through `b64enc`, `toString`, ... untouched.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum Value {
    /// Go's `nil` (missing or absent values); prints as `<no value>` at top level.
    #[default]
    Nil,
    /// A Go `bool`.
    Bool(bool),
    /// Any Go integer type (all integer kinds compare by value, as in Go templates).
    Int(i64),
    /// A Go `float64`.
    Float(f64),
    /// A Go `string`: arbitrary bytes.
    Str(Vec<u8>),
    /// A Go slice (`[]interface{}` and friends).
    List(Vec<Value>),
    /// A Go `map[string]interface{}`; BTreeMap gives Go's sorted iteration order.
    Map(BTreeMap<String, Value>),
    /// A Go `time.Time` (from `now`, `toDate`, ...), kept with its UTC offset.
    Time(chrono::DateTime<chrono::FixedOffset>),
}

impl Value {
    /// A string value from anything byte-like.
    pub fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Str(s.as_ref().to_vec())
    }

    /// ESO's template data: each secret key maps to a Go string holding the value's raw bytes.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Value {
        Value::Map(
            data.iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
        )
    }

    /// Go's truthiness for `if`/`with`/`and`/`or`: zero values and empty collections are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Time(_) => true,
        }
    }

    /// The Go type name used in error messages and `typeOf`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Time(_) => "time.Time",
        }
    }

    /// The Go reflect kind name (`kindOf`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Time(_) => "struct",
        }
    }

    /// Renders the value like Go's `fmt.Print` (`%v`), appending to `out`.
    pub fn write_go(&self, out: &mut Vec<u8>) {
        match self {
            Value::Nil => out.extend_from_slice(b"<nil>"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Float(f) => {
                out.extend_from_slice(crate::gofmt::format_float_g(*f, -1).as_bytes())
            }
            Value::Str(s) => out.extend_from_slice(s),
            Value::List(l) => {
                out.push(b'[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    v.write_go(out);
                }
                out.push(b']');
            }
            Value::Map(m) => {
                out.extend_from_slice(b"map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b':');
                    v.write_go(out);
                }
                out.push(b']');
            }
            Value::Time(t) => {
                out.extend_from_slice(crate::funcs::date::go_time_string(t).as_bytes())
            }
        }
    }

    /// The `%v` rendering as bytes.
    pub fn to_go_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_go(&mut out);
        out
    }

    /// The `%v` rendering as (lossy) text.
    pub fn to_go_string(&self) -> String {
        String::from_utf8_lossy(&self.to_go_bytes()).into_owned()
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.as_bytes().to_vec())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s.into_bytes())
    }
}
impl From<Vec<u8>> for Value {
    fn from(s: Vec<u8>) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
