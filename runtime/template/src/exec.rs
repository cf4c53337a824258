//! Executes a parsed template tree against a [`Value`] with Go's `missingkey=error` semantics.
//!
//! Owns variable scoping, control flow (`if`/`range`/`with`/`break`/`continue`), template
//! invocation, field access, function calls (with the lazy `and`/`or`), and printing.

use crate::error::TemplateError;
use crate::funcs;
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

/// Maximum nesting of `{{template}}` calls (Go allows more, but Rust stacks are smaller).
const MAX_TEMPLATE_DEPTH: usize = 100;

/// An execution failure before the template name is attached.
pub(crate) struct ExecError {
    pos: usize,
    node: String,
    msg: String,
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
}

pub(crate) fn execute(
    tree: &Tree,
    name: &str,
    src: &str,
    data: &Value,
) -> Result<Vec<u8>, TemplateError> {
    let mut ex = Exec {
        tree,
        src,
        current: name.to_string(),
        vars: vec![("$".to_string(), data.clone())],
        out: Vec::new(),
        depth: 0,
        nesting: 0,
    };
    match ex.walk_list(data, &tree.main) {
        Ok(_) => Ok(ex.out),
        Err(e) => Err(TemplateError::at(
            name,
            src,
            e.pos,
            format!("executing {:?} at <{}>: {}", ex.current, e.node, e.msg),
        )),
    }
}

fn err<T>(pos: usize, node: impl Into<String>, msg: impl Into<String>) -> R<T> {
    Err(ExecError {
        pos,
        node: node.into(),
        msg: msg.into(),
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
    fn walk_list(&mut self, dot: &Value, list: &List) -> R<Flow> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return err(
                0,
                "template",
                format!("exceeded maximum nesting depth ({MAX_NESTING})"),
            );
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
        match node {
            Node::Text(t) => self.out.extend_from_slice(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    match v {
                        Value::Nil => self.out.extend_from_slice(b"<no value>"),
                        v => v.write_go(&mut self.out),
                    }
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
                let items: Vec<(Value, Value)> = match v {
                    Value::List(l) => l
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Int(i as i64), v))
                        .collect(),
                    Value::Map(m) => m
                        .into_iter()
                        .map(|(k, v)| (Value::Str(k.into_bytes()), v))
                        .collect(),
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
                        (0..n.max(0))
                            .map(|i| (Value::Int(i), Value::Int(i)))
                            .collect()
                    }
                    Value::Nil => Vec::new(),
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
                let empty = items.is_empty();
                let inner = self.vars.len();
                for (idx, elem) in items {
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
                if self.depth >= MAX_TEMPLATE_DEPTH {
                    return err(
                        *pos,
                        format!("template {name:?}"),
                        format!("exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"),
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
            return err(
                pipe.pos,
                "pipeline",
                format!("exceeded maximum nesting depth ({MAX_NESTING})"),
            );
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
        let result = (f.call)(argv).map_err(|e| ExecError {
            pos,
            node: node.to_string(),
            msg: if e.starts_with("wrong type") || e.starts_with("invalid value") {
                e
            } else {
                format!("error calling {name}: {e}")
            },
        })?;
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
