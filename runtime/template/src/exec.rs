//! Executes a parsed template tree against a [`Value`] with Go's `missingkey=error` semantics.
//!
//! Owns variable scoping, control flow (`if`/`range`/`with`/`break`/`continue`), template
//! invocation, field access, function calls (with the lazy `and`/`or`), and printing.

use std::time::Instant;

use crate::error::TemplateError;
use crate::funcs;
use crate::limits::{self, DEADLINE_CHECK_INTERVAL, LimitKind, Limits};
use crate::parse::{Arg, Command, List, Node, Pipe, Tree};
use crate::value::Value;

/// Sprig functions that modify their first (map) argument in place in Go.
const MUTATING: &[&str] = &[
    "set",
    "unset",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
];

/// Maximum combined nesting of bodies and pipelines during execution: bounds stack use for
/// any template (a 2 MiB thread stack holds this comfortably, even in debug builds).
const MAX_NESTING: usize = 150;

/// `range N` over an integer is bounded so a template cannot stall or exhaust the controller.
const MAX_RANGE_INT: i64 = 1 << 20;

/// Longest node text quoted in an error (`executing "t" at <...>`).
const MAX_NODE_TEXT: usize = 200;

/// An execution failure before the template name is attached.
pub(crate) struct ExecError {
    pos: usize,
    node: String,
    msg: String,
    limit: Option<LimitKind>,
}

type R<T> = Result<T, ExecError>;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'a> {
    tree: &'a Tree,
    src: &'a str,
    current: String,
    vars: Vec<(String, Value)>,
    out: Vec<u8>,
    depth: usize,
    nesting: usize,
    limits: Limits,
    steps: u64,
    started: Instant,
}

pub(crate) fn execute(
    tree: &Tree,
    name: &str,
    src: &str,
    data: &Value,
    limits: &Limits,
) -> Result<Vec<u8>, TemplateError> {
    let _cap = limits::CapGuard::install(limits.max_output_bytes);
    let mut ex = Exec {
        tree,
        src,
        current: name.to_string(),
        vars: vec![("$".to_string(), data.clone())],
        out: Vec::new(),
        depth: 0,
        nesting: 0,
        limits: *limits,
        steps: 0,
        started: Instant::now(),
    };
    match ex.walk_list(data, &tree.main) {
        Ok(_) => Ok(ex.out),
        Err(e) => {
            let mut node = e.node;
            if node.len() > MAX_NODE_TEXT {
                let mut cut = MAX_NODE_TEXT;
                while !node.is_char_boundary(cut) {
                    cut -= 1;
                }
                node.truncate(cut);
                node.push_str("...");
            }
            Err(TemplateError::at(
                name,
                src,
                e.pos,
                format!("executing {:?} at <{}>: {}", ex.current, node, e.msg),
            )
            .with_limit(e.limit))
        }
    }
}

/// Deepest nesting of lists and maps a function may return: recursive `Clone`/`Drop` and
/// printing must not overflow the stack (`{{ $x = list $x }}` in a long `range`).
const MAX_VALUE_DEPTH: usize = 1000;

/// Why a function's result is refused.
enum TooBig {
    /// Larger than the output cap.
    Size,
    /// Nested deeper than [`MAX_VALUE_DEPTH`].
    Depth,
}

/// Checks `v` against `cap` in the units of [`Limits::max_output_bytes`] (string bytes, plus one
/// per list element and map entry; map keys count their bytes) and against
/// [`MAX_VALUE_DEPTH`]. Stops early.
fn check_value(v: &Value, cap: usize) -> Result<(), TooBig> {
    fn walk(v: &Value, budget: &mut usize, depth: usize) -> Result<(), TooBig> {
        let own = match v {
            Value::Str(b) => b.len(),
            Value::Map(m) => m.len(),
            Value::List(l) => l.len(),
            _ => return Ok(()),
        };
        if own > *budget {
            return Err(TooBig::Size);
        }
        *budget -= own;
        if depth > MAX_VALUE_DEPTH && matches!(v, Value::List(_) | Value::Map(_)) {
            return Err(TooBig::Depth);
        }
        match v {
            Value::List(l) => l.iter().try_for_each(|x| walk(x, budget, depth + 1)),
            Value::Map(m) => m.iter().try_for_each(|(k, x)| {
                if k.len() > *budget {
                    return Err(TooBig::Size);
                }
                *budget -= k.len();
                walk(x, budget, depth + 1)
            }),
            _ => Ok(()),
        }
    }
    let mut budget = cap;
    walk(v, &mut budget, 1)
}

fn err<T>(pos: usize, node: impl Into<String>, msg: impl Into<String>) -> R<T> {
    Err(ExecError {
        pos,
        node: node.into(),
        msg: msg.into(),
        limit: None,
    })
}

fn arg_text(a: &Arg) -> String {
    match a {
        Arg::Field { names, .. } => format!(".{}", names.join(".")),
        Arg::Variable { name, names, .. } => {
            let mut s = name.clone();
            for n in names {
                s.push('.');
                s.push_str(n);
            }
            s
        }
        Arg::Chain { names, .. } => format!("(...).{}", names.join(".")),
        Arg::Dot => ".".into(),
        Arg::Nil { .. } => "nil".into(),
        Arg::Const(v) => match v {
            Value::Str(_) => "\"...\"".into(),
            other => other.to_go_string(),
        },
        Arg::Func { name, .. } => name.clone(),
        Arg::Pipe(_) => "(...)".into(),
    }
}

fn arg_pos(a: &Arg, fallback: usize) -> usize {
    match a {
        Arg::Field { pos, .. }
        | Arg::Variable { pos, .. }
        | Arg::Chain { pos, .. }
        | Arg::Nil { pos }
        | Arg::Func { pos, .. } => *pos,
        Arg::Pipe(p) => p.pos,
        _ => fallback,
    }
}

impl Exec<'_> {
    fn limit_err<T>(&self, pos: usize, node: impl Into<String>, kind: LimitKind) -> R<T> {
        Err(ExecError {
            pos,
            node: node.into(),
            msg: limits::message(kind, &self.limits),
            limit: Some(kind),
        })
    }

    /// Counts one step against the budget; reads the clock every few steps.
    fn step(&mut self, pos: usize, node: &str) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return self.limit_err(pos, node, LimitKind::Steps);
        }
        if self.steps.is_multiple_of(DEADLINE_CHECK_INTERVAL) {
            self.check_deadline(pos, node)?;
        }
        Ok(())
    }

    fn check_deadline(&self, pos: usize, node: &str) -> R<()> {
        if self.started.elapsed() > self.limits.timeout {
            return self.limit_err(pos, node, LimitKind::Time);
        }
        Ok(())
    }

    /// Fails when the output has grown past the cap.
    fn check_output(&self, pos: usize, node: &str) -> R<()> {
        if self.out.len() > self.limits.max_output_bytes {
            return self.limit_err(pos, node, LimitKind::Output);
        }
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &List) -> R<Flow> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ExecError {
                pos: 0,
                node: "template".into(),
                msg: format!("exceeded maximum nesting depth ({MAX_NESTING})"),
                limit: Some(LimitKind::TemplateDepth),
            });
        }
        let r = self.walk_list_inner(dot, list);
        self.nesting -= 1;
        r
    }

    fn walk_list_inner(&mut self, dot: &Value, list: &List) -> R<Flow> {
        for n in list {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &Node) -> R<Flow> {
        let pos = match node {
            Node::Action(p)
            | Node::If { pipe: p, .. }
            | Node::With { pipe: p, .. }
            | Node::Range { pipe: p, .. } => p.pos,
            Node::Template { pos, .. } => *pos,
            _ => 0,
        };
        self.step(pos, "template")?;
        match node {
            Node::Text(t) => {
                self.out.extend_from_slice(t);
                self.check_output(0, "template")?;
            }
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    match v {
                        Value::Nil => self.out.extend_from_slice(b"<no value>"),
                        v => v.write_go(&mut self.out),
                    }
                    self.check_output(pipe.pos, "action")?;
                }
            }
            Node::If {
                pipe,
                list,
                else_list,
            }
            | Node::With {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, pipe)?;
                let is_with = matches!(node, Node::With { .. });
                let flow = if v.truthy() {
                    if is_with {
                        self.walk_list(&v, list)?
                    } else {
                        self.walk_list(dot, list)?
                    }
                } else if let Some(e) = else_list {
                    self.walk_list(dot, e)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, pipe)?;
                // Lazily: `range 1048576` must not allocate a million pairs up front.
                let (empty, items): (bool, Box<dyn Iterator<Item = (Value, Value)>>) = match v {
                    Value::List(l) => (
                        l.is_empty(),
                        Box::new(
                            l.into_iter()
                                .enumerate()
                                .map(|(i, v)| (Value::Int(i as i64), v)),
                        ),
                    ),
                    Value::Map(m) => (
                        m.is_empty(),
                        Box::new(m.into_iter().map(|(k, v)| (Value::Str(k.into_bytes()), v))),
                    ),
                    Value::Int(n) => {
                        if pipe.decl.len() > 1 {
                            return err(
                                pipe.pos,
                                "range",
                                "can't use int to iterate over more than one variable",
                            );
                        }
                        if n > MAX_RANGE_INT {
                            return err(
                                pipe.pos,
                                "range",
                                format!(
                                    "range over {n} exceeds the limit of {MAX_RANGE_INT} iterations"
                                ),
                            );
                        }
                        (
                            n <= 0,
                            Box::new((0..n.max(0)).map(|i| (Value::Int(i), Value::Int(i)))),
                        )
                    }
                    Value::Nil => (true, Box::new(std::iter::empty())),
                    other => {
                        return err(
                            pipe.pos,
                            "range",
                            format!(
                                "range can't iterate over value of type {}",
                                other.type_name()
                            ),
                        );
                    }
                };
                let inner = self.vars.len();
                for (idx, elem) in items {
                    self.step(pipe.pos, "range")?;
                    let nd = pipe.decl.len();
                    if nd > 0 {
                        if pipe.is_assign {
                            if nd > 1 {
                                self.set_var(&pipe.decl[0], idx.clone());
                                self.set_var(&pipe.decl[1], elem.clone());
                            } else {
                                self.set_var(&pipe.decl[0], elem.clone());
                            }
                        } else {
                            let top = self.vars.len() - 1;
                            self.vars[top].1 = elem.clone();
                            if nd > 1 {
                                self.vars[top - 1].1 = idx.clone();
                            }
                        }
                    }
                    let flow = self.walk_list(&elem, list)?;
                    self.vars.truncate(inner);
                    if let Flow::Break = flow {
                        break;
                    }
                }
                if empty && let Some(e) = else_list {
                    let f = self.walk_list(dot, e)?;
                    self.vars.truncate(mark);
                    return Ok(f);
                }
                self.vars.truncate(mark);
            }
            Node::Template { pos, name, pipe } => {
                let Some(body) = self.tree.defs.get(name) else {
                    return err(
                        *pos,
                        format!("{{{{template {name:?}}}}}"),
                        format!("template {name:?} not defined"),
                    );
                };
                let newdot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                if self.depth >= self.limits.max_template_depth {
                    return self.limit_err(
                        *pos,
                        format!("template {name:?}"),
                        LimitKind::TemplateDepth,
                    );
                }
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".to_string(), newdot.clone())]);
                let saved_name = std::mem::replace(&mut self.current, name.clone());
                self.depth += 1;
                let r = self.walk_list(&newdot, body);
                self.depth -= 1;
                if r.is_ok() {
                    self.current = saved_name;
                }
                self.vars = saved_vars;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var(&self, name: &str, pos: usize) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(pos, name, format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ExecError {
                pos: pipe.pos,
                node: "pipeline".into(),
                msg: format!("exceeded maximum nesting depth ({MAX_NESTING})"),
                limit: Some(LimitKind::TemplateDepth),
            });
        }
        let r = self.eval_pipeline_inner(dot, pipe);
        self.nesting -= 1;
        r
    }

    fn eval_pipeline_inner(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut val: Option<Value> = None;
        for cmd in &pipe.cmds {
            val = Some(self.eval_command(dot, cmd, val)?);
        }
        let v = val.unwrap_or(Value::Nil);
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(d, v.clone());
            } else {
                self.vars.push((d.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn not_a_function(&self, cmd: &Command, fin: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || fin.is_some() {
            let a = &cmd.args[0];
            return err(
                arg_pos(a, cmd.pos),
                arg_text(a),
                format!("can't give argument to non-function {}", arg_text(a)),
            );
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, fin: Option<Value>) -> R<Value> {
        self.step(cmd.pos, "pipeline")?;
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match first {
            Arg::Field { pos, names } => self.eval_field_chain(dot, dot, *pos, names, rest, fin),
            Arg::Variable { pos, name, names } => {
                let v = self.var(name, *pos)?;
                if names.is_empty() {
                    self.not_a_function(cmd, &fin)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, &v, *pos, names, rest, fin)
            }
            Arg::Chain { pos, pipe, names } => {
                let v = self.eval_pipeline(dot, pipe)?;
                self.eval_field_chain(dot, &v, *pos, names, rest, fin)
            }
            Arg::Func { pos, name } => {
                let src = self.src;
                let text = src.get(cmd.pos..cmd.end).map_or(name.as_str(), str::trim);
                self.eval_function(dot, *pos, name, text, rest, fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Dot => {
                self.not_a_function(cmd, &fin)?;
                Ok(dot.clone())
            }
            Arg::Const(v) => {
                self.not_a_function(cmd, &fin)?;
                Ok(v.clone())
            }
            Arg::Nil { pos } => err(*pos, "nil", "nil is not a command"),
        }
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> R<Value> {
        match arg {
            Arg::Field { pos, names } => self.eval_field_chain(dot, dot, *pos, names, &[], None),
            Arg::Variable { pos, name, names } => {
                let v = self.var(name, *pos)?;
                if names.is_empty() {
                    return Ok(v);
                }
                self.eval_field_chain(dot, &v, *pos, names, &[], None)
            }
            Arg::Chain { pos, pipe, names } => {
                let v = self.eval_pipeline(dot, pipe)?;
                self.eval_field_chain(dot, &v, *pos, names, &[], None)
            }
            Arg::Func { pos, name } => self.eval_function(dot, *pos, name, name, &[], None),
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Dot => Ok(dot.clone()),
            Arg::Const(v) => Ok(v.clone()),
            Arg::Nil { .. } => Ok(Value::Nil),
        }
    }

    /// Evaluates `.a.b.c` on `recv`, borrowing it: only the selected values are copied.
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        recv: &Value,
        pos: usize,
        names: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let n = names.len();
        let node = |i: usize| format!(".{}", names[..=i].join("."));
        if n == 1 {
            return self.eval_field(dot, recv, pos, &node(0), &names[0], args, fin);
        }
        let mut cur = self.eval_field(dot, recv, pos, &node(0), &names[0], &[], None)?;
        for (i, name) in names.iter().enumerate().take(n - 1).skip(1) {
            cur = self.eval_field(dot, &cur, pos, &node(i), name, &[], None)?;
        }
        self.eval_field(dot, &cur, pos, &node(n - 1), &names[n - 1], args, fin)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field(
        &mut self,
        dot: &Value,
        recv: &Value,
        pos: usize,
        node: &str,
        name: &str,
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let has_args = !args.is_empty() || fin.is_some();
        match recv {
            Value::Map(m) => {
                if has_args {
                    return err(
                        pos,
                        node,
                        format!("{name} is not a method but has arguments"),
                    );
                }
                match m.get(name) {
                    Some(v) => Ok(v.clone()),
                    None => err(pos, node, format!("map has no entry for key {name:?}")),
                }
            }
            Value::Nil => err(pos, node, format!("nil data; no entry for key {name:?}")),
            Value::Time(t) => {
                let mut argv = Vec::new();
                for a in args {
                    argv.push(self.eval_arg(dot, a)?);
                }
                if let Some(f) = fin {
                    argv.push(f);
                }
                funcs::date::time_method(t, name, &argv).map_err(|msg| ExecError {
                    pos,
                    node: node.to_string(),
                    msg,
                    limit: None,
                })
            }
            other => err(
                pos,
                node,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            ),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        node: &str,
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(fin.is_some());
            if total == 0 {
                return err(
                    pos,
                    node,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let is_and = name == "and";
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(dot, a)?;
                if last.truthy() != is_and {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let Some(f) = funcs::lookup(name) else {
            return err(pos, node, format!("{name:?} is not a defined function"));
        };
        let mut argv = Vec::with_capacity(args.len() + 1);
        for a in args {
            argv.push(self.eval_arg(dot, a)?);
        }
        if let Some(v) = fin {
            argv.push(v);
        }
        let got = argv.len();
        if got < f.min || f.max.is_some_and(|m| got > m) {
            let want = match f.max {
                Some(m) if m == f.min => format!("want {m}"),
                _ => format!("want at least {}", f.min),
            };
            return err(
                pos,
                node,
                format!("wrong number of args for {name}: {want} got {got}"),
            );
        }
        self.step(pos, node)?;
        limits::take_hit();
        let result = (f.call)(argv).map_err(|e| ExecError {
            pos,
            node: node.to_string(),
            limit: limits::take_hit().then_some(LimitKind::Output),
            msg: if e.starts_with("wrong type") || e.starts_with("invalid value") {
                e
            } else {
                format!("error calling {name}: {e}")
            },
        })?;
        // A function's result is bounded like the output (functions that amplify their input
        // refuse before allocating), and every call reads the clock: one call can be slow.
        match check_value(&result, self.limits.max_output_bytes) {
            Ok(()) => {}
            Err(TooBig::Size) => return self.limit_err(pos, node, LimitKind::Output),
            Err(TooBig::Depth) => {
                return Err(ExecError {
                    pos,
                    node: node.to_string(),
                    msg: format!(
                        "template exceeded its value nesting limit of {MAX_VALUE_DEPTH} levels"
                    ),
                    limit: Some(LimitKind::TemplateDepth),
                });
            }
        }
        self.check_deadline(pos, node)?;
        // Sprig's set/unset/merge mutate their map argument in Go (`$_ := set $d "k" v`).
        // Values here are immutable, so write the result back to the variable that was passed.
        if MUTATING.contains(&name)
            && let Some(Arg::Variable {
                name: var, names, ..
            }) = args.first()
            && names.is_empty()
        {
            self.set_var(var, result.clone());
        }
        Ok(result)
    }
}
