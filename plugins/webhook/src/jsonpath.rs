//! `result.jsonPath`: the JSONPath dialect of `github.com/PaesslerAG/jsonpath` v0.1.1, which
//! ESO's webhook provider uses.
//!
//! Supported: `$` (or a path without it, read from the root as gval's variables are),
//! `.name`, `["name"]` / `['name']`, `[n]` (no negative indices, as in the Go library),
//! `.*` / `[*]`, unions `[a,b]`, slices `[start:end:step]` (with the library's quirks), `..`
//! (recursive descent) and filters `[?(...)]` with what gval's base language offers: `@` and
//! `$` paths, string / number / `true` / `false` literals, `==`, `!=`, `in` and parentheses.
//! Not supported: scripts `[(...)]` and `#` placeholders (refused when parsed).
//!
//! As in the library, a path without wildcards, unions, slices, `..` or filters selects one
//! value and fails when a step misses; any of those makes the result a list of matches in
//! which misses are skipped. Object members are visited in key order (the Go library's map
//! order is random).

use std::fmt;

use serde_json::Value;

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name`, `[key]`: exactly one value.
    Key(Key),
    /// `.*`, `[*]`.
    Wildcard,
    /// `[a,b,...]`.
    Union(Vec<Key>),
    /// `[start:end:step]`.
    Slice(i64, i64, i64),
    /// `..`: the value itself and every value under it.
    Descendants,
    /// `[?(...)]`.
    Filter(Expr),
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Name(String),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// `@...` (relative) or `$...`.
    Path {
        current: bool,
        path: JsonPath,
    },
    Literal(Value),
    Eq(Box<Expr>, Box<Expr>),
    Ne(Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
}

/// What a path selected.
#[derive(Debug, Clone, PartialEq)]
pub enum Selected {
    /// A path without ambiguous steps: one value.
    One(Value),
    /// Every match of an ambiguous path (possibly none).
    Many(Vec<Value>),
}

impl Selected {
    /// The selection as one JSON value (matches as an array), as the Go library returns it.
    pub fn into_value(self) -> Value {
        match self {
            Selected::One(v) => v,
            Selected::Many(vs) => Value::Array(vs),
        }
    }
}

/// Why a path could not be parsed or did not select a value. Messages quote the path's own
/// keys, never the document.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPathError(String);

impl fmt::Display for JsonPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, JsonPathError> {
    Err(JsonPathError(msg.into()))
}

const MAX_INT32: i64 = i32::MAX as i64;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn unexpected<T>(&self, what: &str) -> Result<T, JsonPathError> {
        match self.peek() {
            Some(_) => err(format!(
                "unexpected character at offset {} of the JSON path: expected {what}",
                self.pos
            )),
            None => err(format!("the JSON path ends early: expected {what}")),
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.bump();
        }
        (self.pos > start).then(|| self.src[start..self.pos].to_string())
    }

    /// Steps after `$` / `@` until something that is not `.`, `[`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, JsonPathError> {
        let mut steps = Vec::new();
        loop {
            if in_filter {
                // Inside a filter, whitespace ends the path (an operator follows).
                if !matches!(self.peek(), Some('.' | '[')) {
                    return Ok(steps);
                }
            } else {
                self.skip_ws();
            }
            match self.peek() {
                Some('.') => {
                    self.bump();
                    if !in_filter {
                        self.skip_ws();
                    }
                    if self.peek() == Some('.') {
                        self.bump();
                        steps.push(Step::Descendants);
                        match self.peek() {
                            Some('[') => {
                                self.bump();
                                // After `..`, a single bracket key is a match, not a step.
                                let step = match self.bracket()? {
                                    Step::Key(k) => Step::Union(vec![k]),
                                    other => other,
                                };
                                steps.push(step);
                            }
                            Some('*') => {
                                self.bump();
                                steps.push(Step::Wildcard);
                            }
                            Some('(') => return err("scripts (`..(...)`) are not supported"),
                            _ => match self.ident() {
                                Some(name) => steps.push(Step::Key(Key::Name(name))),
                                None => return self.unexpected("a name, `*` or `[` after `..`"),
                            },
                        }
                    } else if self.peek() == Some('*') {
                        self.bump();
                        steps.push(Step::Wildcard);
                    } else {
                        match self.ident() {
                            Some(name) => steps.push(Step::Key(Key::Name(name))),
                            None => return self.unexpected("a name or `*` after `.`"),
                        }
                    }
                }
                Some('[') => {
                    self.bump();
                    let step = self.bracket()?;
                    steps.push(step);
                }
                Some('(') => return err("scripts (`(...)`) are not supported"),
                _ => return Ok(steps),
            }
        }
    }

    /// After `[`: `*]`, `?expr]`, keys separated by `,`, or a slice.
    fn bracket(&mut self) -> Result<Step, JsonPathError> {
        self.skip_ws();
        match self.peek() {
            Some('*') => {
                self.bump();
                if !self.eat(']') {
                    return self.unexpected("`]` after `[*`");
                }
                return Ok(Step::Wildcard);
            }
            Some('?') => {
                self.bump();
                let expr = self.expr()?;
                if !self.eat(']') {
                    return self.unexpected("`]` after a filter");
                }
                return Ok(Step::Filter(expr));
            }
            Some('(') => return err("scripts (`[(...)]`) are not supported"),
            _ => {}
        }
        // Keys or a slice.
        let mut parts: Vec<Option<Key>> = Vec::new();
        let mut separator: Option<char> = None;
        loop {
            self.skip_ws();
            let key = match self.peek() {
                Some(':' | ']' | ',') => None,
                _ => Some(self.key()?),
            };
            parts.push(key);
            self.skip_ws();
            match self.bump() {
                Some(']') => break,
                Some(c @ (':' | ',')) => {
                    if separator.is_some_and(|s| s != c) {
                        return err("a JSON path bracket mixes `:` and `,`");
                    }
                    separator = Some(c);
                }
                _ => {
                    return err("a JSON path bracket is not closed: expected `,`, `:` or `]`");
                }
            }
        }
        match separator {
            Some(':') => {
                if parts.len() > 3 {
                    return err("a JSON path slice takes at most [start:end:step]");
                }
                let defaults = [0, MAX_INT32, 1];
                let mut bounds = [0i64; 3];
                for (i, b) in bounds.iter_mut().enumerate() {
                    *b = match parts.get(i).cloned().flatten() {
                        None => defaults[i],
                        Some(Key::Number(n)) => n as i64,
                        Some(Key::Name(_)) => return err("a JSON path slice takes numbers"),
                    };
                }
                Ok(Step::Slice(bounds[0], bounds[1], bounds[2]))
            }
            _ => {
                let keys: Option<Vec<Key>> = parts.into_iter().collect();
                match keys {
                    None => err("a JSON path bracket has an empty key"),
                    Some(mut keys) if keys.len() == 1 => Ok(Step::Key(keys.remove(0))),
                    Some(keys) => Ok(Step::Union(keys)),
                }
            }
        }
    }

    /// A bracket key: a string or number literal.
    fn key(&mut self) -> Result<Key, JsonPathError> {
        match self.literal()? {
            Value::String(s) => Ok(Key::Name(s)),
            Value::Number(n) => Ok(Key::Number(n.as_f64().unwrap_or(0.0))),
            _ => err("a JSON path bracket key must be a string or a number"),
        }
    }

    /// A string (`"…"`, `'…'`, `` `…` ``), number, `true` or `false`.
    fn literal(&mut self) -> Result<Value, JsonPathError> {
        self.skip_ws();
        match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => {
                self.bump();
                let mut out = String::new();
                loop {
                    match self.bump() {
                        None => return err("a string in the JSON path is not closed"),
                        Some(c) if c == q => break,
                        Some('\\') if q != '`' => match self.bump() {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some('r') => out.push('\r'),
                            Some(c) => out.push(c),
                            None => return err("a string in the JSON path is not closed"),
                        },
                        Some(c) => out.push(c),
                    }
                }
                Ok(Value::String(out))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                self.bump();
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E'))
                {
                    self.bump();
                }
                let text = &self.src[start..self.pos];
                match text.parse::<f64>() {
                    Ok(f) => Ok(serde_json::Number::from_f64(f)
                        .map(Value::Number)
                        .unwrap_or(Value::Null)),
                    Err(_) => err("a number in the JSON path is malformed"),
                }
            }
            _ => match self.ident().as_deref() {
                Some("true") => Ok(Value::Bool(true)),
                Some("false") => Ok(Value::Bool(false)),
                Some(_) => err(
                    "a JSON path key or filter operand must be a string, a number, true, false or a path",
                ),
                None => self.unexpected("a string or a number"),
            },
        }
    }

    fn expr(&mut self) -> Result<Expr, JsonPathError> {
        let left = self.operand()?;
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let op = if rest.starts_with("==") {
            "=="
        } else if rest.starts_with("!=") {
            "!="
        } else if rest.starts_with("in") && !rest[2..].starts_with(|c: char| c.is_alphanumeric()) {
            "in"
        } else {
            return Ok(left);
        };
        self.pos += 2;
        let right = self.operand()?;
        let (l, r) = (Box::new(left), Box::new(right));
        Ok(match op {
            "==" => Expr::Eq(l, r),
            "!=" => Expr::Ne(l, r),
            _ => Expr::In(l, r),
        })
    }

    fn operand(&mut self) -> Result<Expr, JsonPathError> {
        self.skip_ws();
        match self.peek() {
            Some('(') => {
                self.bump();
                let e = self.expr()?;
                if !self.eat(')') {
                    return self.unexpected("`)`");
                }
                Ok(e)
            }
            Some(c @ ('@' | '$')) => {
                self.bump();
                let steps = self.steps(true)?;
                Ok(Expr::Path {
                    current: c == '@',
                    path: JsonPath { steps },
                })
            }
            Some('#') => err("placeholders (`#`) are not supported"),
            _ => Ok(Expr::Literal(self.literal()?)),
        }
    }
}

impl JsonPath {
    /// Parse a path.
    pub fn parse(src: &str) -> Result<Self, JsonPathError> {
        let mut p = Parser { src, pos: 0 };
        p.skip_ws();
        let mut steps = Vec::new();
        match p.peek() {
            Some('$') => {
                p.bump();
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                // gval's variables: `a.b[0]` reads from the root.
                let name = p.ident().unwrap_or_default();
                steps.push(Step::Key(Key::Name(name)));
            }
            _ => return p.unexpected("`$`"),
        }
        steps.extend(p.steps(false)?);
        p.skip_ws();
        if p.peek().is_some() {
            return p.unexpected("`.` or `[`");
        }
        Ok(JsonPath { steps })
    }

    /// Apply the path to `root`.
    pub fn select(&self, root: &Value) -> Result<Selected, JsonPathError> {
        self.select_from(root, root)
    }

    fn select_from(&self, root: &Value, start: &Value) -> Result<Selected, JsonPathError> {
        let mut current: Vec<&Value> = vec![start];
        let mut ambiguous = false;
        for step in &self.steps {
            match step {
                Step::Key(k) if !ambiguous => current = vec![select_key(current[0], k)?],
                Step::Key(k) => {
                    current = current
                        .into_iter()
                        .filter_map(|v| select_key(v, k).ok())
                        .collect()
                }
                other => {
                    ambiguous = true;
                    let mut next = Vec::new();
                    for v in current {
                        expand(other, root, v, &mut next);
                    }
                    current = next;
                }
            }
        }
        Ok(if ambiguous {
            Selected::Many(current.into_iter().cloned().collect())
        } else {
            Selected::One(current[0].clone())
        })
    }
}

/// Go's type name of a decoded JSON value, for error messages.
pub fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// gval's `%v` of a number key used on an object.
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn select_key<'v>(v: &'v Value, key: &Key) -> Result<&'v Value, JsonPathError> {
    match v {
        Value::Array(items) => {
            let i: i64 = match key {
                Key::Number(n) => *n as i64,
                Key::Name(s) => s.trim().parse().map_err(|_| {
                    JsonPathError(format!(
                        "could not select value, invalid key: {s:?} is not an index"
                    ))
                })?,
            };
            if i < 0 || i as usize >= items.len() {
                return err(format!("index {i} out of bounds"));
            }
            Ok(&items[i as usize])
        }
        Value::Object(map) => {
            let name = match key {
                Key::Name(s) => s.clone(),
                Key::Number(n) => number_text(*n),
            };
            map.get(&name)
                .ok_or_else(|| JsonPathError(format!("unknown key {name}")))
        }
        other => err(format!(
            "unsupported value type {} for select, expected map[string]interface{{}} or []interface{{}}",
            go_type(other)
        )),
    }
}

/// The children of a value: array items in order, object members in key order.
fn children(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            entries.into_iter().map(|(_, v)| v).collect()
        }
        _ => Vec::new(),
    }
}

fn expand<'v>(step: &Step, root: &'v Value, v: &'v Value, out: &mut Vec<&'v Value>) {
    match step {
        Step::Key(k) => out.extend(select_key(v, k).ok()),
        Step::Wildcard => out.extend(children(v)),
        Step::Union(keys) => out.extend(keys.iter().filter_map(|k| select_key(v, k).ok())),
        Step::Slice(start, end, step) => {
            let Value::Array(items) = v else { return };
            if start > end {
                return;
            }
            let n = items.len() as i64;
            let clamp = |i: i64| {
                if i < 0 { (n + i).max(0) } else { i.min(n) }
            };
            let (lo, hi) = (clamp(*start), clamp(*end));
            let step = if *step == 0 { 1 } else { *step };
            if step > 0 {
                let mut i = lo;
                while i < hi {
                    out.push(&items[i as usize]);
                    i += step;
                }
            } else {
                let mut i = hi - 1;
                while i >= lo {
                    out.push(&items[i as usize]);
                    i += step;
                }
            }
        }
        Step::Descendants => {
            out.push(v);
            for c in children(v) {
                expand(step, root, c, out);
            }
        }
        Step::Filter(expr) => {
            for c in children(v) {
                if let Ok(Value::Bool(true)) = eval(expr, root, c) {
                    out.push(c);
                }
            }
        }
    }
}

fn eval(expr: &Expr, root: &Value, current: &Value) -> Result<Value, JsonPathError> {
    match expr {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Path { current: rel, path } => Ok(path
            .select_from(root, if *rel { current } else { root })?
            .into_value()),
        Expr::Eq(a, b) => Ok(Value::Bool(deep_equal(
            &eval(a, root, current)?,
            &eval(b, root, current)?,
        ))),
        Expr::Ne(a, b) => Ok(Value::Bool(!deep_equal(
            &eval(a, root, current)?,
            &eval(b, root, current)?,
        ))),
        Expr::In(a, b) => {
            let a = eval(a, root, current)?;
            match eval(b, root, current)? {
                Value::Array(items) => Ok(Value::Bool(items.iter().any(|i| deep_equal(&a, i)))),
                _ => err("`in` needs an array on its right"),
            }
        }
    }
}

/// Go's `reflect.DeepEqual` on decoded JSON (numbers are all float64).
fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| deep_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "args": {"parameter": "secret"},
            "data": [
                {"name": "db", "value": "one", "n": 1},
                {"name": "api", "value": "two", "n": 2},
                {"name": "cache", "value": "three", "n": 3}
            ],
            "tags": ["a", "b", "c", "d"],
            "nested": {"deep": {"name": "inner"}},
            "my-key": 7,
            "1": "number key"
        })
    }

    fn one(path: &str) -> Value {
        match JsonPath::parse(path).unwrap().select(&doc()).unwrap() {
            Selected::One(v) => v,
            Selected::Many(vs) => panic!("{path}: expected one value, got {vs:?}"),
        }
    }

    fn many(path: &str) -> Vec<Value> {
        match JsonPath::parse(path).unwrap().select(&doc()).unwrap() {
            Selected::Many(vs) => vs,
            Selected::One(v) => panic!("{path}: expected many, got {v:?}"),
        }
    }

    fn fails(path: &str) -> String {
        JsonPath::parse(path)
            .unwrap()
            .select(&doc())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn plain_paths_select_one_value() {
        assert_eq!(one("$"), doc());
        assert_eq!(one("$.args.parameter"), json!("secret"));
        assert_eq!(one("$.data[1].value"), json!("two"));
        assert_eq!(one(r#"$["data"][0]["name"]"#), json!("db"));
        assert_eq!(one("$['my-key']"), json!(7));
        assert_eq!(one("$[1]"), json!("number key"));
        assert_eq!(one("$.data.2.value"), json!("three"));
        assert_eq!(one("args.parameter"), json!("secret"));
        assert_eq!(one(" $ . args . parameter "), json!("secret"));
    }

    #[test]
    fn plain_misses_fail_like_the_go_library() {
        assert_eq!(fails("$.args.nope"), "unknown key nope");
        assert_eq!(fails("$.data[7]"), "index 7 out of bounds");
        assert_eq!(fails("$.data[-1]"), "index -1 out of bounds");
        assert!(fails("$.args.parameter.x").contains("unsupported value type string"));
    }

    #[test]
    fn ambiguous_paths_collect_matches() {
        assert_eq!(
            many("$.data[*].value"),
            [json!("one"), json!("two"), json!("three")]
        );
        assert_eq!(
            many("$.data.*.name"),
            [json!("db"), json!("api"), json!("cache")]
        );
        assert_eq!(many("$.tags[0,2,9]"), [json!("a"), json!("c")]);
        assert_eq!(many("$.tags[1:3]"), [json!("b"), json!("c")]);
        assert_eq!(many("$.tags[:2]"), [json!("a"), json!("b")]);
        assert_eq!(many("$.tags[-1:]"), [json!("d")]);
        assert_eq!(many("$.tags[::2]"), [json!("a"), json!("c")]);
        assert_eq!(
            many("$.tags[1:-1]"),
            Vec::<Value>::new(),
            "start > end: nothing"
        );
        assert_eq!(
            many("$.tags[0:4:-1]"),
            [json!("d"), json!("c"), json!("b"), json!("a")]
        );
        assert_eq!(
            many("$..name"),
            [json!("db"), json!("api"), json!("cache"), json!("inner")]
        );
        assert_eq!(many("$.data[*].missing"), Vec::<Value>::new());
    }

    #[test]
    fn filters_use_gval_base_operators() {
        assert_eq!(many(r#"$.data[?(@.name == "api")].value"#), [json!("two")]);
        assert_eq!(many("$.data[?(@.name=='api')].value"), [json!("two")]);
        assert_eq!(many("$.data[?(@.n == 3)].name"), [json!("cache")]);
        assert_eq!(
            many(r#"$.data[?(@.name != "api")].n"#),
            [json!(1), json!(3)]
        );
        assert_eq!(many("$.data[?(@.name in $.tags)].n"), Vec::<Value>::new());
        assert_eq!(
            many(r#"$.data[?("b" in $.tags)].n"#),
            [json!(1), json!(2), json!(3)]
        );
        assert_eq!(many(r#"$.data[?(@.missing == "x")]"#), Vec::<Value>::new());
        assert_eq!(many(r#"$..[?(@.name == "inner")].name"#), [json!("inner")]);
    }

    #[test]
    fn unsupported_syntax_is_refused_when_parsed() {
        for bad in [
            "$.a[(@.length-1)]",
            "$.a[#]",
            "$.a.",
            "$.a[",
            "$.a[1:2,3]",
            "$.a b",
            "",
            "$.a[?(@.x > 1)]",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
