//! Per-render resource limits: a step budget, an output cap, a wall-clock deadline and a
//! bound on `{{template}}` nesting, so a hostile template fails fast instead of stalling or
//! exhausting the controller.
//!
//! The executor enforces the step budget, the deadline and the depth itself. The output cap
//! covers the bytes written and every value a function returns; functions that can amplify
//! their input (`repeat`, `indent`, `replace`, `printf` widths, `randAlpha`, `until`, ...)
//! check the size of their result *before* allocating it through [`fits`], which reads the
//! cap of the render running on this thread.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

/// Resource limits for one render. [`Limits::default`] is what [`crate::Template::execute`],
/// [`crate::render_bytes`] and [`crate::render_transform`] use.
///
/// ```
/// use esox_template::{Limits, Template, Value};
/// let t = Template::parse("t", "{{ repeat 3 \"ab\" }}").unwrap();
/// let small = Limits { max_output_bytes: 4, ..Limits::default() };
/// assert!(t.execute_with(&Value::Nil, &small).is_err());
/// assert_eq!(t.execute_with(&Value::Nil, &Limits::default()).unwrap(), b"ababab");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Executed steps: one per node walked, range iteration, command, function call and
    /// `{{template}}` call. Default 10 000 000.
    pub max_steps: u64,
    /// Bytes of output, and the largest value (string bytes, plus one per list element and
    /// map entry) any single function may produce. Default 1 MiB, the size limit of a
    /// Kubernetes Secret.
    pub max_output_bytes: usize,
    /// Wall-clock time for one render, checked every 256 steps and after every
    /// function call. Default 1 s.
    pub timeout: Duration,
    /// Nesting of `{{template}}` calls. Default 100 (Go allows 100 000, but Rust stacks are
    /// smaller; execution nesting is also capped internally to bound stack use).
    pub max_template_depth: usize,
}

/// How many steps pass between two clock reads (function calls always read it).
pub const DEADLINE_CHECK_INTERVAL: u64 = 256;

impl Limits {
    /// Default step budget.
    pub const DEFAULT_MAX_STEPS: u64 = 10_000_000;
    /// Default output cap: 1 MiB.
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;
    /// Default deadline per render.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default `{{template}}` nesting.
    pub const DEFAULT_MAX_TEMPLATE_DEPTH: usize = 100;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: Self::DEFAULT_MAX_STEPS,
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
            max_template_depth: Self::DEFAULT_MAX_TEMPLATE_DEPTH,
        }
    }
}

/// Which limit a render exceeded (see [`crate::TemplateError::limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// [`Limits::max_steps`].
    Steps,
    /// [`Limits::max_output_bytes`].
    Output,
    /// [`Limits::timeout`].
    Time,
    /// [`Limits::max_template_depth`] (or the internal execution nesting cap).
    TemplateDepth,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Steps => "step limit",
            LimitKind::Output => "output limit",
            LimitKind::Time => "time limit",
            LimitKind::TemplateDepth => "template nesting limit",
        })
    }
}

/// The message for an exceeded limit: names the limit and its value, never any data.
pub(crate) fn message(kind: LimitKind, limits: &Limits) -> String {
    match kind {
        LimitKind::Steps => format!(
            "template exceeded its step limit of {} steps",
            limits.max_steps
        ),
        LimitKind::Output => output_message(limits.max_output_bytes),
        LimitKind::Time => format!(
            "template exceeded its time limit of {} ms",
            limits.timeout.as_millis()
        ),
        LimitKind::TemplateDepth => format!(
            "template exceeded its nesting limit of {} template calls (exceeded maximum template depth)",
            limits.max_template_depth
        ),
    }
}

fn output_message(cap: usize) -> String {
    format!("template exceeded its output limit of {cap} bytes")
}

thread_local! {
    /// The output cap of the render running on this thread (functions read it).
    static CAP: Cell<usize> = const { Cell::new(Limits::DEFAULT_MAX_OUTPUT_BYTES) };
    /// Set when a function refused to build a value over the cap.
    static HIT: Cell<bool> = const { Cell::new(false) };
}

/// Installs a render's cap for the functions it calls; restores the previous one on drop.
pub(crate) struct CapGuard {
    prev: usize,
}

impl CapGuard {
    pub(crate) fn install(cap: usize) -> CapGuard {
        HIT.with(|h| h.set(false));
        CapGuard {
            prev: CAP.with(|c| c.replace(cap)),
        }
    }
}

impl Drop for CapGuard {
    fn drop(&mut self) {
        CAP.with(|c| c.set(self.prev));
    }
}

/// The output cap in force on this thread.
pub(crate) fn cap() -> usize {
    CAP.with(Cell::get)
}

/// Called by functions before building a result of `size` bytes (or elements): refuses sizes
/// over the cap with the output-limit message and marks the render as over its limit.
pub(crate) fn fits(size: u128) -> Result<(), String> {
    let cap = cap();
    if size > cap as u128 {
        HIT.with(|h| h.set(true));
        return Err(output_message(cap));
    }
    Ok(())
}

/// Whether a function failed because of [`fits`] since the last call (and clears the mark).
pub(crate) fn take_hit() -> bool {
    HIT.with(|h| h.replace(false))
}
