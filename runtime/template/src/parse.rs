//! Lexer and parser for Go `text/template` syntax.
//!
//! Owns turning template source into a tree: text, actions, pipelines, control structures
//! (`if`/`range`/`with`/`block`/`template`/`define`), trim markers and comments. It also does
//! Go's parse-time checks: unknown functions and undefined variables are parse errors.

use std::collections::BTreeMap;

use crate::value::Value;

/// Maximum nesting of parentheses/control structures; protects the stack from hostile input.
const MAX_DEPTH: usize = 100;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(Vec<u8>),
    LeftDelim,
    RightDelim,
    Space,
    Ident(String),
    Field(String),
    Variable(String),
    Dot,
    Bool(bool),
    Nil,
    Number(String),
    Char(i64),
    Str(Vec<u8>),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Kw(Kw),
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kw {
    If,
    Else,
    End,
    Range,
    With,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

/// A position-annotated parse error before the template name is attached.
#[derive(Debug)]
pub(crate) struct PosError {
    pub pos: usize,
    pub msg: String,
}

fn perr<T>(pos: usize, msg: impl Into<String>) -> Result<T, PosError> {
    Err(PosError {
        pos,
        msg: msg.into(),
    })
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a str,
    left: &'a str,
    right: &'a str,
    pos: usize,
    toks: Vec<Token>,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        self.toks.push(Token { tok, pos });
    }

    fn run(mut self) -> Result<Vec<Token>, PosError> {
        loop {
            // Text up to the next left delimiter.
            let rest = self.rest();
            let Some(idx) = rest.find(self.left) else {
                if !rest.is_empty() {
                    self.push(Tok::Text(rest.as_bytes().to_vec()), self.pos);
                }
                let end = self.src.len();
                self.push(Tok::Eof, end);
                return Ok(self.toks);
            };
            let after = &rest[idx + self.left.len()..];
            let ltrim =
                after.len() >= 2 && after.as_bytes()[0] == b'-' && is_space(after.as_bytes()[1]);
            let mut text = &rest[..idx];
            if ltrim {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                self.push(Tok::Text(text.as_bytes().to_vec()), self.pos);
            }
            let delim_pos = self.pos + idx;
            self.pos = delim_pos + self.left.len() + if ltrim { 2 } else { 0 };
            // Comments.
            if self.rest().starts_with("/*") {
                let Some(end) = self.rest().find("*/") else {
                    return perr(delim_pos, "unclosed comment");
                };
                self.pos += end + 2;
                let (is_delim, rtrim) = self.at_right_delim();
                if !is_delim {
                    return perr(delim_pos, "comment ends before closing delimiter");
                }
                self.pos += self.right.len() + if rtrim { 2 } else { 0 };
                if rtrim {
                    self.skip_leading_space();
                }
                continue;
            }
            self.push(Tok::LeftDelim, delim_pos);
            self.inside_action(delim_pos)?;
        }
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest().as_bytes();
        if r.len() >= 2
            && is_space(r[0])
            && r[1] == b'-'
            && self.rest()[2..].starts_with(self.right)
        {
            return (true, true);
        }
        (self.rest().starts_with(self.right), false)
    }

    fn skip_leading_space(&mut self) {
        let trimmed = self.rest().trim_start_matches([' ', '\t', '\r', '\n']);
        self.pos = self.src.len() - trimmed.len();
    }

    fn inside_action(&mut self, start: usize) -> Result<(), PosError> {
        let mut paren_depth = 0usize;
        loop {
            let (is_delim, rtrim) = self.at_right_delim();
            if is_delim && paren_depth == 0 {
                let p = self.pos;
                self.push(Tok::RightDelim, p);
                self.pos += self.right.len() + if rtrim { 2 } else { 0 };
                if rtrim {
                    self.skip_leading_space();
                }
                return Ok(());
            }
            let p = self.pos;
            let Some(c) = self.peek_char() else {
                return perr(start, "unclosed action");
            };
            if is_delim {
                return perr(p, "unclosed left paren");
            }
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    let trimmed = self.rest().trim_start_matches([' ', '\t', '\r', '\n']);
                    self.pos = self.src.len() - trimmed.len();
                    // A space that starts a right trim marker is part of the delimiter.
                    self.push(Tok::Space, p);
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, p);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return perr(p, "expected :=");
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, p);
                }
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, p);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, p);
                }
                '(' => {
                    self.pos += 1;
                    paren_depth += 1;
                    self.push(Tok::LParen, p);
                }
                ')' => {
                    self.pos += 1;
                    if paren_depth == 0 {
                        return perr(p, "unexpected right paren");
                    }
                    paren_depth -= 1;
                    self.push(Tok::RParen, p);
                }
                '"' => {
                    let s = self.quoted(p)?;
                    self.push(Tok::Str(s), p);
                }
                '`' => {
                    let rest = &self.rest()[1..];
                    let Some(end) = rest.find('`') else {
                        return perr(p, "unterminated raw quoted string");
                    };
                    let s: Vec<u8> = rest[..end].bytes().filter(|b| *b != b'\r').collect();
                    self.pos += end + 2;
                    self.push(Tok::Str(s), p);
                }
                '\'' => {
                    let v = self.char_const(p)?;
                    self.push(Tok::Char(v), p);
                }
                '$' => {
                    self.pos += 1;
                    let name = self.word();
                    self.push(Tok::Variable(format!("${name}")), p);
                }
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        let n = self.number(p)?;
                        self.push(Tok::Number(n), p);
                    } else if next.is_some_and(is_alnum) {
                        self.pos += 1;
                        let name = self.word();
                        self.push(Tok::Field(name), p);
                    } else {
                        self.pos += 1;
                        self.push(Tok::Dot, p);
                    }
                }
                '+' | '-' | '0'..='9' => {
                    let n = self.number(p)?;
                    self.push(Tok::Number(n), p);
                }
                c if is_alnum(c) => {
                    let w = self.word();
                    let tok = match w.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        "if" => Tok::Kw(Kw::If),
                        "else" => Tok::Kw(Kw::Else),
                        "end" => Tok::Kw(Kw::End),
                        "range" => Tok::Kw(Kw::Range),
                        "with" => Tok::Kw(Kw::With),
                        "define" => Tok::Kw(Kw::Define),
                        "template" => Tok::Kw(Kw::Template),
                        "block" => Tok::Kw(Kw::Block),
                        "break" => Tok::Kw(Kw::Break),
                        "continue" => Tok::Kw(Kw::Continue),
                        _ => Tok::Ident(w),
                    };
                    self.push(tok, p);
                }
                c => return perr(p, format!("unrecognized character in action: {c:?}")),
            }
        }
    }

    fn word(&mut self) -> String {
        let rest = self.rest();
        let end = rest.find(|c: char| !is_alnum(c)).unwrap_or(rest.len());
        self.pos += end;
        rest[..end].to_string()
    }

    fn number(&mut self, p: usize) -> Result<String, PosError> {
        let rest = self.rest();
        let b = rest.as_bytes();
        let mut i = 0;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        if b.len() > i + 1
            && b[i] == b'0'
            && matches!(b[i + 1], b'x' | b'X' | b'o' | b'O' | b'b' | b'B')
        {
            digits = match b[i + 1] {
                b'x' | b'X' => b"0123456789abcdefABCDEF_",
                b'o' | b'O' => b"01234567_",
                _ => b"01_",
            };
            i += 2;
        }
        while i < b.len() && digits.contains(&b[i]) {
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && digits.contains(&b[i]) {
                i += 1;
            }
        }
        let exp: &[u8] = if digits.len() == 11 {
            b"eE"
        } else if digits.len() > 20 {
            b"pP"
        } else {
            b""
        };
        if i < b.len() && exp.contains(&b[i]) {
            i += 1;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i < b.len() && (b[i] == b'i' || b[i].is_ascii_alphanumeric() || b[i] == b'.') {
            return perr(
                p,
                format!("bad number syntax: {:?}", &rest[..=i.min(rest.len() - 1)]),
            );
        }
        self.pos += i;
        Ok(rest[..i].to_string())
    }

    fn quoted(&mut self, p: usize) -> Result<Vec<u8>, PosError> {
        let rest = self.rest();
        let b = rest.as_bytes();
        let mut i = 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') => return perr(p, "unterminated quoted string"),
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let body = rest.get(1..i).unwrap_or("");
        let out = unescape(body, '"').map_err(|m| PosError { pos: p, msg: m })?;
        self.pos += i + 1;
        Ok(out)
    }

    fn char_const(&mut self, p: usize) -> Result<i64, PosError> {
        let rest = self.rest();
        let b = rest.as_bytes();
        let mut i = 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') => return perr(p, "unterminated character constant"),
                Some(b'\\') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        let body = rest.get(1..i).unwrap_or("");
        self.pos += i + 1;
        let bytes = unescape(body, '\'').map_err(|m| PosError { pos: p, msg: m })?;
        let s = String::from_utf8_lossy(&bytes);
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None)
                if body.starts_with("\\x")
                    || body.starts_with("\\0")
                    || (body.starts_with('\\')
                        && body.len() == 4
                        && body.as_bytes()[1].is_ascii_digit()) =>
            {
                Ok(i64::from(bytes.first().copied().unwrap_or(c as u8)))
            }
            (Some(c), None) => Ok(c as i64),
            _ => perr(p, format!("malformed character constant: '{body}'")),
        }
    }
}

/// Go's `strconv.Unquote` escapes.
pub(crate) fn unescape(body: &str, quote: char) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err("invalid syntax in quoted string".into());
        };
        let mut hex = |n: usize| -> Result<u32, String> {
            let mut v = 0u32;
            for _ in 0..n {
                let d = chars
                    .next()
                    .and_then(|(_, c)| c.to_digit(16))
                    .ok_or_else(|| "invalid syntax in quoted string".to_string())?;
                v = v * 16 + d;
            }
            Ok(v)
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '\'' if quote == '\'' => out.push(b'\''),
            '"' if quote == '"' => out.push(b'"'),
            'x' => out.push(hex(2)? as u8),
            'u' | 'U' => {
                let v = hex(if e == 'u' { 4 } else { 8 })?;
                let c = char::from_u32(v)
                    .ok_or_else(|| "invalid syntax in quoted string".to_string())?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|(_, c)| c.to_digit(8))
                        .ok_or_else(|| "invalid syntax in quoted string".to_string())?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err("invalid syntax in quoted string".into());
                }
                out.push(v as u8);
            }
            _ => return Err("invalid syntax in quoted string".into()),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- tree

/// A list of nodes (a template body or a branch).
pub(crate) type List = Vec<Node>;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(Vec<u8>),
    Action(Pipe),
    If {
        pipe: Pipe,
        list: List,
        else_list: Option<List>,
    },
    With {
        pipe: Pipe,
        list: List,
        else_list: Option<List>,
    },
    Range {
        pipe: Pipe,
        list: List,
        else_list: Option<List>,
    },
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub pos: usize,
    pub end: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// `.a.b`
    Field {
        pos: usize,
        names: Vec<String>,
    },
    /// `$x.a.b` (`$` is the root).
    Variable {
        pos: usize,
        name: String,
        names: Vec<String>,
    },
    /// `(pipe).a.b`
    Chain {
        pos: usize,
        pipe: Box<Pipe>,
        names: Vec<String>,
    },
    Dot,
    Nil {
        pos: usize,
    },
    Const(Value),
    Func {
        pos: usize,
        name: String,
    },
    Pipe(Box<Pipe>),
}

/// The parsed set: main body plus defined templates.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    pub main: List,
    pub defs: BTreeMap<String, List>,
}

struct Parser<'f> {
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    defs: BTreeMap<String, List>,
    is_func: &'f dyn Fn(&str) -> bool,
}

enum End {
    End,
    Else(usize),
}

/// Go's `IsEmptyTree`: only whitespace text.
fn is_empty_list(list: &List) -> bool {
    list.iter()
        .all(|n| matches!(n, Node::Text(t) if t.iter().all(|b| is_space(*b))))
}

pub(crate) fn parse(
    name: &str,
    src: &str,
    left: &str,
    right: &str,
    is_func: &dyn Fn(&str) -> bool,
) -> Result<Tree, PosError> {
    if left.is_empty() || right.is_empty() {
        return perr(0, "empty template delimiter");
    }
    let toks = Lexer {
        src,
        left,
        right,
        pos: 0,
        toks: Vec::new(),
    }
    .run()?;
    let mut p = Parser {
        toks,
        i: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        defs: BTreeMap::new(),
        is_func,
    };
    let mut main = Vec::new();
    loop {
        match p.peek().tok {
            Tok::Eof => break,
            Tok::LeftDelim => {
                let save = p.i;
                p.next();
                if let Tok::Kw(Kw::Define) = p.next_non_space().tok {
                    p.definition()?;
                    continue;
                }
                p.i = save;
            }
            _ => {}
        }
        match p.text_or_action()? {
            Some(Ok(n)) => main.push(n),
            Some(Err(End::End)) => return perr(p.prev_pos(), "unexpected {{end}}"),
            Some(Err(End::Else(pos))) => return perr(pos, "unexpected {{else}}"),
            None => {}
        }
    }
    // The main body is the template called `name`: a define of that name replaces an empty
    // body (Go executes the define) and conflicts with a non-empty one.
    let mut defs = p.defs;
    if let Some(def) = defs.get(name) {
        if is_empty_list(&main) {
            main = def.clone();
        } else if !is_empty_list(def) {
            return perr(
                0,
                format!("template: multiple definition of template {name:?}"),
            );
        }
    }
    if !is_empty_list(&main) {
        defs.insert(name.to_string(), main.clone());
    }
    Ok(Tree { main, defs })
}

type Step = Option<Result<Node, End>>;

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn prev_pos(&self) -> usize {
        self.toks[self.i.saturating_sub(1)].pos
    }
    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }
    /// Skips spaces (as Go's `peekNonSpace` does) and returns the next token without consuming it.
    fn peek_non_space(&mut self) -> Token {
        while self.i < self.toks.len() - 1 && self.toks[self.i].tok == Tok::Space {
            self.i += 1;
        }
        self.peek().clone()
    }
    fn expect_right(&mut self, context: &str) -> Result<(), PosError> {
        let t = self.next_non_space();
        if t.tok != Tok::RightDelim {
            return perr(
                t.pos,
                format!("unexpected {} in {context}", describe(&t.tok)),
            );
        }
        Ok(())
    }

    fn definition(&mut self) -> Result<(), PosError> {
        let t = self.next_non_space();
        let start = t.pos;
        let Tok::Str(name) = t.tok else {
            return perr(
                t.pos,
                format!("unexpected {} in define clause", describe(&t.tok)),
            );
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        self.expect_right("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        if let End::Else(pos) = end {
            return perr(pos, "unexpected {{else}} in define clause");
        }
        self.add_def(start, name, list)
    }

    /// Records a `define`/`block` body. Like Go, an empty body never replaces an existing one
    /// and two non-empty bodies for one name are an error.
    fn add_def(&mut self, pos: usize, name: String, list: List) -> Result<(), PosError> {
        let existing_empty = self.defs.get(&name).is_none_or(is_empty_list);
        if existing_empty {
            self.defs.insert(name, list);
        } else if !is_empty_list(&list) {
            return perr(
                pos,
                format!("template: multiple definition of template {name:?}"),
            );
        }
        Ok(())
    }

    /// Parses nodes until `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> Result<(List, End), PosError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return perr(self.peek().pos, "template nested too deeply");
        }
        let mut list = Vec::new();
        loop {
            if self.peek().tok == Tok::Eof {
                return perr(self.peek().pos, "unexpected EOF");
            }
            match self.text_or_action()? {
                Some(Ok(n)) => list.push(n),
                Some(Err(e)) => {
                    self.depth -= 1;
                    return Ok((list, e));
                }
                None => {}
            }
        }
    }

    fn text_or_action(&mut self) -> Result<Step, PosError> {
        let t = self.next();
        match t.tok {
            Tok::Text(s) => Ok(Some(Ok(Node::Text(s)))),
            Tok::LeftDelim => self.action(),
            other => perr(t.pos, format!("unexpected {}", describe(&other))),
        }
    }

    fn action(&mut self) -> Result<Step, PosError> {
        let save = self.i;
        let t = self.next_non_space();
        match t.tok {
            Tok::Kw(Kw::Block) => return self.block(t.pos).map(|n| Some(Ok(n))),
            Tok::Kw(Kw::Break) | Tok::Kw(Kw::Continue) => {
                let is_break = t.tok == Tok::Kw(Kw::Break);
                let what = if is_break { "break" } else { "continue" };
                if self.range_depth == 0 {
                    return perr(t.pos, format!("{{{{{what}}}}} outside {{{{range}}}}"));
                }
                self.expect_right(what)?;
                return Ok(Some(Ok(if is_break {
                    Node::Break
                } else {
                    Node::Continue
                })));
            }
            Tok::Kw(Kw::Else) => {
                // `else if` / `else with` leave the keyword for the enclosing control.
                let nt = self.peek_non_space();
                if !matches!(nt.tok, Tok::Kw(Kw::If) | Tok::Kw(Kw::With)) {
                    self.expect_right("else")?;
                }
                return Ok(Some(Err(End::Else(t.pos))));
            }
            Tok::Kw(Kw::End) => {
                self.expect_right("end")?;
                return Ok(Some(Err(End::End)));
            }
            Tok::Kw(Kw::If) => return self.control(ControlKind::If).map(|n| Some(Ok(n))),
            Tok::Kw(Kw::Range) => return self.control(ControlKind::Range).map(|n| Some(Ok(n))),
            Tok::Kw(Kw::With) => return self.control(ControlKind::With).map(|n| Some(Ok(n))),
            Tok::Kw(Kw::Template) => return self.template_call(t.pos).map(|n| Some(Ok(n))),
            _ => {}
        }
        self.i = save;
        let pipe = self.pipeline("command", true)?;
        Ok(Some(Ok(Node::Action(pipe))))
    }

    fn control(&mut self, kind: ControlKind) -> Result<Node, PosError> {
        let mark = self.vars.len();
        let context = match kind {
            ControlKind::If => "if",
            ControlKind::Range => "range",
            ControlKind::With => "with",
        };
        if kind == ControlKind::Range {
            self.range_depth += 1;
        }
        let pipe = self.pipeline(context, true)?;
        let (list, end) = self.item_list()?;
        if kind == ControlKind::Range {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let End::Else(_) = end {
            let nt = self.peek();
            let chained = match (&nt.tok, kind) {
                (Tok::Kw(Kw::If), ControlKind::If) => Some(ControlKind::If),
                (Tok::Kw(Kw::With), ControlKind::With) => Some(ControlKind::With),
                (Tok::Kw(Kw::If), _) | (Tok::Kw(Kw::With), _) => {
                    return perr(
                        nt.pos,
                        format!("unexpected {} after else in {context}", describe(&nt.tok)),
                    );
                }
                _ => None,
            };
            if let Some(k) = chained {
                self.next();
                // The chained control consumes the shared {{end}}.
                self.vars.truncate(mark);
                let n = self.control(k)?;
                else_list = Some(vec![n]);
            } else {
                self.vars.truncate(mark);
                let (l, end2) = self.item_list()?;
                if let End::Else(pos) = end2 {
                    return perr(
                        pos,
                        format!("expected end; found {{{{else}}}} in {context}"),
                    );
                }
                else_list = Some(l);
            }
        }
        self.vars.truncate(mark);
        Ok(match kind {
            ControlKind::If => Node::If {
                pipe,
                list,
                else_list,
            },
            ControlKind::Range => Node::Range {
                pipe,
                list,
                else_list,
            },
            ControlKind::With => Node::With {
                pipe,
                list,
                else_list,
            },
        })
    }

    fn template_call(&mut self, _keyword_pos: usize) -> Result<Node, PosError> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return perr(
                t.pos,
                format!("unexpected {} in template clause", describe(&t.tok)),
            );
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        let pipe = if self.peek_non_space().tok != Tok::RightDelim {
            Some(self.pipeline("template clause", true)?)
        } else {
            self.expect_right("template clause")?;
            None
        };
        // Go positions a template call at its name.
        Ok(Node::Template {
            pos: t.pos,
            name,
            pipe,
        })
    }

    fn block(&mut self, pos: usize) -> Result<Node, PosError> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return perr(
                t.pos,
                format!("unexpected {} in block clause", describe(&t.tok)),
            );
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        let pipe = self.pipeline("block clause", true)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        self.range_depth = saved_range;
        if let End::Else(p) = end {
            return perr(p, "unexpected {{else}} in block clause");
        }
        self.add_def(pos, name.clone(), list)?;
        Ok(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        })
    }

    /// Parses a pipeline; `to_delim` says whether it ends at `}}` (consumed) or `)` (left).
    fn pipeline(&mut self, context: &str, to_delim: bool) -> Result<Pipe, PosError> {
        let start = self.peek_non_space().pos;
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: `$x :=`, `$x =`, `$k, $v :=`.
        let save = self.i;
        if let Tok::Variable(name) = self.peek_non_space().tok {
            self.next_non_space();
            let nt = self.next_non_space();
            match nt.tok {
                Tok::Declare | Tok::Assign => {
                    is_assign = nt.tok == Tok::Assign;
                    decl.push(name);
                }
                Tok::Comma if context == "range" => {
                    let v2 = self.next_non_space();
                    let Tok::Variable(name2) = v2.tok else {
                        return perr(v2.pos, "range can only initialize variables".to_string());
                    };
                    let op = self.next_non_space();
                    match op.tok {
                        Tok::Declare | Tok::Assign => is_assign = op.tok == Tok::Assign,
                        Tok::Comma => {
                            return perr(op.pos, format!("too many declarations in {context}"));
                        }
                        _ => return perr(op.pos, format!("expected := or = in {context}")),
                    }
                    decl.push(name);
                    decl.push(name2);
                }
                Tok::Comma => return perr(nt.pos, format!("too many declarations in {context}")),
                _ => self.i = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.peek_non_space();
            match t.tok {
                Tok::RightDelim if to_delim => {
                    self.next();
                    break;
                }
                Tok::RParen if !to_delim => break,
                Tok::RightDelim | Tok::RParen => {
                    return perr(
                        t.pos,
                        format!("unexpected {} in {context}", describe(&t.tok)),
                    );
                }
                _ => {}
            }
            if !cmds.is_empty() {
                // The previous command ended on a pipe.
            }
            let cmd = self.command()?;
            cmds.push(cmd);
            if self.peek().tok == Tok::Pipe {
                self.next();
            }
        }
        if cmds.is_empty() {
            return perr(start, format!("missing value for {context}"));
        }
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if let Some(Arg::Const(_) | Arg::Dot | Arg::Nil { .. }) = c.args.first() {
                return perr(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        for v in &decl {
            if is_assign {
                if !self.vars.contains(v) {
                    return perr(start, format!("undefined variable {v:?}"));
                }
            } else {
                self.vars.push(v.clone());
            }
        }
        Ok(Pipe {
            pos: start,
            is_assign,
            decl,
            cmds,
        })
    }

    fn command(&mut self) -> Result<Command, PosError> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RParen => self.i -= 1,
                Tok::Pipe => self.i -= 1,
                other => return perr(t.pos, format!("unexpected {} in operand", describe(&other))),
            }
            break;
        }
        if args.is_empty() {
            return perr(pos, "empty command");
        }
        let end = self.toks[self.i].pos;
        Ok(Command { pos, end, args })
    }

    fn operand(&mut self) -> Result<Option<Arg>, PosError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        let mut fpos = 0;
        while let Tok::Field(f) = &self.peek().tok {
            if fields.is_empty() {
                fpos = self.peek().pos;
            }
            fields.push(f.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            // Go positions a chained field or variable at its first chained field.
            Arg::Field { mut names, .. } => {
                names.extend(fields);
                Arg::Field { pos: fpos, names }
            }
            Arg::Variable {
                name, mut names, ..
            } => {
                names.extend(fields);
                Arg::Variable {
                    pos: fpos,
                    name,
                    names,
                }
            }
            Arg::Pipe(p) => Arg::Chain {
                pos: p.pos,
                pipe: p,
                names: fields,
            },
            Arg::Func { pos, name } => {
                // `fn.x` : Go evaluates the function then the field (a chain).
                let cmd = Command {
                    pos,
                    end: pos,
                    args: vec![Arg::Func { pos, name }],
                };
                let pipe = Pipe {
                    pos,
                    is_assign: false,
                    decl: vec![],
                    cmds: vec![cmd],
                };
                Arg::Chain {
                    pos,
                    pipe: Box::new(pipe),
                    names: fields,
                }
            }
            _ => return perr(fpos, "unexpected . after term"),
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, PosError> {
        let t = self.next_non_space();
        Ok(Some(match t.tok {
            Tok::Ident(name) => {
                if !(self.is_func)(&name) {
                    if let Some(why) = crate::funcs::unsupported(&name) {
                        return perr(
                            t.pos,
                            format!("function {name:?} is not supported by esox: {why}"),
                        );
                    }
                    return perr(t.pos, format!("function {name:?} not defined"));
                }
                Arg::Func { pos: t.pos, name }
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil { pos: t.pos },
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return perr(t.pos, format!("undefined variable {name:?}"));
                }
                Arg::Variable {
                    pos: t.pos,
                    name,
                    names: vec![],
                }
            }
            Tok::Field(f) => Arg::Field {
                pos: t.pos,
                names: vec![f],
            },
            Tok::Bool(b) => Arg::Const(Value::Bool(b)),
            Tok::Number(n) => Arg::Const(parse_number(&n).ok_or_else(|| PosError {
                pos: t.pos,
                msg: format!("illegal number syntax: {n:?}"),
            })?),
            Tok::Char(c) => Arg::Const(Value::Int(c)),
            Tok::Str(s) => Arg::Const(Value::Str(s)),
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return perr(t.pos, "template nested too deeply");
                }
                let p = self.pipeline("parenthesized pipeline", false)?;
                let close = self.next_non_space();
                if close.tok != Tok::RParen {
                    return perr(close.pos, "unclosed left paren");
                }
                self.depth -= 1;
                Arg::Pipe(Box::new(p))
            }
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ControlKind {
    If,
    Range,
    With,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::LeftDelim => "left delim".into(),
        Tok::RightDelim => "right delim".into(),
        Tok::Space => "space".into(),
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Field(s) => format!("<.{s}>"),
        Tok::Variable(s) => format!("<{s}>"),
        Tok::Dot => "<.>".into(),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Number(n) => format!("<{n}>"),
        Tok::Char(_) => "character constant".into(),
        Tok::Str(_) => "quoted string".into(),
        Tok::Pipe => "<|>".into(),
        Tok::LParen => "<(>".into(),
        Tok::RParen => "<)>".into(),
        Tok::Declare => "<:=>".into(),
        Tok::Assign => "<=>".into(),
        Tok::Comma => "<,>".into(),
        Tok::Kw(k) => format!("<{}>", format!("{k:?}").to_lowercase()),
        Tok::Eof => "EOF".into(),
    }
}

/// Go's ideal-constant typing: a number with `.`/exponent is a float64, otherwise an int.
fn parse_number(n: &str) -> Option<Value> {
    let clean: String = n.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains(['.', 'p']) {
            return None;
        }
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if body.contains(['.', 'e', 'E']) {
        let f: f64 = body.parse().ok()?;
        return Some(Value::Float(if neg { -f } else { f }));
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        // Parse with the sign so that i64::MIN is representable.
        if let Ok(v) = clean.trim_start_matches('+').parse::<i64>() {
            return Some(Value::Int(v));
        }
        None
    };
    match int {
        Some(i) => Some(Value::Int(if neg { -i } else { i })),
        None if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) => {
            // Too big for int64: Go keeps it as a float constant.
            let f: f64 = body.parse().ok()?;
            Some(Value::Float(if neg { -f } else { f }))
        }
        None => None,
    }
}
