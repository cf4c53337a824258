//! Go text/template-compatible engine with the function library ESO users rely on.
//!
//! This crate owns parsing and executing templates (Go `text/template` syntax, executed with
//! `missingkey=error`), the Go-like value model ([`Value`], byte-backed strings), and the
//! Sprig + ESO function library. Output is meant to be byte-identical to ESO's Go engine for the
//! same template and data; `docs/templates.md` lists the known differences.

use std::collections::BTreeMap;

mod error;
mod exec;
mod funcs;
mod gofmt;
mod limits;
mod parse;
mod value;

pub use error::TemplateError;
pub use funcs::function_names;
pub use limits::{LimitKind, Limits};
pub use value::Value;

/// A parsed template set (the main template plus its `define`/`block` templates).
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    tree: parse::Tree,
}

impl Template {
    /// Parses `src` with the default `{{` `}}` delimiters.
    ///
    /// Unknown functions and undefined variables are parse errors, as in Go.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        Self::parse_with_delims(name, src, "{{", "}}")
    }

    /// Parses `src` with custom delimiters (ESO's `--template-left/right-delimiter`).
    pub fn parse_with_delims(
        name: &str,
        src: &str,
        left: &str,
        right: &str,
    ) -> Result<Template, TemplateError> {
        let tree = parse::parse(name, src, left, right, &funcs::is_defined)
            .map_err(|e| TemplateError::at(name, src, e.pos, e.msg))?;
        Ok(Template {
            name: name.to_string(),
            src: src.to_string(),
            tree,
        })
    }

    /// The name given at parse time (used in error messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Executes the template with `missingkey=error` semantics and returns the rendered bytes.
    ///
    /// On error no partial output is returned (ESO discards it too). The render runs under
    /// [`Limits::default`]; see [`Template::execute_with`].
    pub fn execute(&self, data: &Value) -> Result<Vec<u8>, TemplateError> {
        self.execute_with(data, &Limits::default())
    }

    /// [`Template::execute`] under explicit resource limits. A render that exceeds one fails
    /// with an error whose [`TemplateError::limit`] names it.
    pub fn execute_with(&self, data: &Value, limits: &Limits) -> Result<Vec<u8>, TemplateError> {
        exec::execute(&self.tree, &self.name, &self.src, data, limits)
    }
}

/// ESO v2 secret templates: `.key` is the value of each secret key (as a Go string of the raw bytes).
///
/// Runs under [`Limits::default`]; see [`render_bytes_with_limits`].
pub fn render_bytes(
    name: &str,
    src: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>, TemplateError> {
    render_bytes_with_delims(name, src, "{{", "}}", data)
}

/// [`render_bytes`] with ESO's `--template-left-delimiter` / `--template-right-delimiter`.
pub fn render_bytes_with_delims(
    name: &str,
    src: &str,
    left: &str,
    right: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>, TemplateError> {
    Template::parse_with_delims(name, src, left, right)?.execute(&Value::from_secret_data(data))
}

/// [`render_bytes_with_delims`] under explicit resource limits.
pub fn render_bytes_with_limits(
    name: &str,
    src: &str,
    left: &str,
    right: &str,
    data: &BTreeMap<String, Vec<u8>>,
    limits: &Limits,
) -> Result<Vec<u8>, TemplateError> {
    Template::parse_with_delims(name, src, left, right)?
        .execute_with(&Value::from_secret_data(data), limits)
}

/// rewrite.transform (under [`Limits::default`]): data is {"value": key}; returns the new key.
pub fn render_transform(src: &str, key: &str) -> Result<String, TemplateError> {
    let mut map = BTreeMap::new();
    map.insert("value".to_string(), Value::Str(key.as_bytes().to_vec()));
    let out = Template::parse("transform", src)?.execute(&Value::Map(map))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
