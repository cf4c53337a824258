//! Go text/template-compatible engine with the function library ESO users rely on.
//!
//! This crate owns parsing and executing templates (Go `text/template` syntax), the Go-like
//! value model ([`Value`], byte-backed strings) and the Sprig + ESO function library.

use std::collections::BTreeMap;
use std::fmt;

/// A Go-like dynamic value, as seen by templates.
///
/// Strings are byte strings because Go strings may hold arbitrary bytes: binary secret values
/// (keystores, DER) must pass through `b64enc`, `toString`, ... untouched.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Go's `nil` (missing or absent values).
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
}

/// An error while parsing or executing a template.
///
/// Displays like Go: `template: <name>:<line>:<col>: <what>`. It never carries a secret value.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    name: String,
    line: usize,
    col: usize,
    message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "template: {}:{}:{}: {}",
            self.name, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for TemplateError {}

/// A parsed template set (the main template plus its `define`/`block` templates).
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
}

impl Template {
    /// Parses `src` with the default `{{` `}}` delimiters.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        Self::parse_with_delims(name, src, "{{", "}}")
    }

    /// Parses `src` with custom delimiters (ESO's `--template-left/right-delimiter`).
    pub fn parse_with_delims(
        name: &str,
        _src: &str,
        _left: &str,
        _right: &str,
    ) -> Result<Template, TemplateError> {
        Ok(Template {
            name: name.to_string(),
        })
    }

    /// Executes the template with `missingkey=error` semantics and returns the rendered bytes.
    pub fn execute(&self, _data: &Value) -> Result<Vec<u8>, TemplateError> {
        Err(TemplateError {
            name: self.name.clone(),
            line: 1,
            col: 1,
            message: "not implemented yet".to_string(),
        })
    }
}

/// ESO v2 secret templates: `.key` is the value of each secret key (as a Go string of the raw bytes).
pub fn render_bytes(
    name: &str,
    src: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>, TemplateError> {
    let map = data
        .iter()
        .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
        .collect();
    Template::parse(name, src)?.execute(&Value::Map(map))
}

/// rewrite.transform: data is {"value": key}; returns the new key.
pub fn render_transform(src: &str, key: &str) -> Result<String, TemplateError> {
    let mut map = BTreeMap::new();
    map.insert("value".to_string(), Value::Str(key.as_bytes().to_vec()));
    let out = Template::parse("transform", src)?.execute(&Value::Map(map))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
