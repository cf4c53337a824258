//! The one error type of the crate: where in which template what went wrong.
//!
//! Messages never contain secret values: they name the template, the position, the function
//! or field, and the Go type involved.

use std::fmt;

use crate::limits::LimitKind;

/// Longest message kept in an error; longer ones (user-controlled template text) are cut.
const MAX_MESSAGE: usize = 1024;

/// An error while parsing or executing a template.
///
/// Displays like Go: `template: <name>:<line>:<col>: <what>`. It never carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    name: String,
    line: usize,
    col: usize,
    message: String,
    limit: Option<LimitKind>,
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
        let mut message: String = message.into();
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        let mut name = name.to_string();
        if name.len() > 253 {
            let mut cut = 253;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
        }
        TemplateError {
            name,
            line,
            col,
            message,
            limit: None,
        }
    }

    /// Marks the error as a breach of `kind`.
    pub(crate) fn with_limit(mut self, kind: Option<LimitKind>) -> Self {
        self.limit = kind;
        self
    }

    /// The resource limit the render exceeded, when that is why it failed.
    pub fn limit(&self) -> Option<LimitKind> {
        self.limit
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
