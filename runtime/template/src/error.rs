//! The one error type of the crate: where in which template what went wrong.
//!
//! Messages never contain secret values: they name the template, the position, the function
//! or field, and the Go type involved.

use std::fmt;

/// An error while parsing or executing a template.
///
/// Displays like Go: `template: <name>:<line>:<col>: <what>`. It never carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    name: String,
    line: usize,
    col: usize,
    message: String,
}

impl TemplateError {
    /// Builds an error at byte offset `pos` of `src`, computing Go's line (1-based) and column.
    pub(crate) fn at(name: &str, src: &str, pos: usize, message: impl Into<String>) -> Self {
        let pos = pos.min(src.len());
        let before = &src.as_bytes()[..pos];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        // Go reports the byte offset within the line (0-based).
        let col = match before.iter().rposition(|b| *b == b'\n') {
            Some(nl) => pos - nl - 1,
            None => pos,
        };
        TemplateError {
            name: name.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    /// The template name the error occurred in.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// 1-based line of the failing construct.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Byte offset of the failing construct within its line (0-based, as Go reports it).
    pub fn column(&self) -> usize {
        self.col
    }

    /// What went wrong, without the `template: name:line:col:` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
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
