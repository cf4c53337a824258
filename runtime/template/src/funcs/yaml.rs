//! ESO's `toYaml` / `fromYaml`, matching `sigs.k8s.io/yaml` (JSON round trip, then the
//! go-yaml v2 emitter): sorted keys in go-yaml's natural order, unindented block sequences,
//! quoting of strings that would resolve to other types, literal blocks for multi-line strings.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::json;
use crate::value::Value;

const BEST_WIDTH: usize = 80;

/// go-yaml v2's map key order: digit runs compare numerically, letters after non-letters.
pub(crate) fn key_less(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ar[j].is_ascii_digit() {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// Whether go-yaml v2 would resolve an unquoted scalar to something other than a string.
fn resolves_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off",
        "OFF", "true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~", "",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return false;
    }
    let plain = s.replace('_', "");
    if super::parse_int_base0(&plain).is_some() {
        return true;
    }
    if let Some(b) = plain
        .strip_prefix("0b")
        .or_else(|| plain.strip_prefix("-0b"))
        && !b.is_empty()
        && b.bytes().all(|c| c == b'0' || c == b'1')
    {
        return true;
    }
    // yaml float: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let t = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mant_ok = if let Some(f) = mant.strip_prefix('.') {
        !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit())
    } else {
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        !ip.is_empty()
            && ip.bytes().all(|c| c.is_ascii_digit())
            && fp.bytes().all(|c| c.is_ascii_digit())
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    if mant_ok && exp_ok {
        return true;
    }
    // Base 60 floats (1:20) are quoted too.
    let b60 = t.split(':').collect::<Vec<_>>();
    b60.len() > 1
        && b60.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_digit() || c == b'.' || c == b'_')
        })
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || u == 0x85
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
        || u >= 0x10000
}

#[derive(PartialEq, Clone, Copy)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml's scalar analysis reduced to block context.
fn choose_style(s: &str, simple_key: bool) -> Style {
    if s.is_empty() || resolves_non_string(s) {
        return Style::Double;
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut block_ind = false;
    let mut special = false;
    let mut line_breaks = false;
    let (mut space_break, mut break_space) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
    }
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_blank = next.is_none_or(|n| n == ' ' || n == '\n');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_ind = true,
                '?' | ':' | '-' if followed_blank => block_ind = true,
                _ => {}
            }
        } else {
            if c == ':' && followed_blank {
                block_ind = true;
            }
            if c == '#' && chars[i - 1] == ' ' {
                block_ind = true;
            }
        }
        if !is_printable(c) || (i == 0 && c == '\u{FEFF}') {
            special = true;
        }
        if c == '\n' {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if c == '\n' {
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
    }
    let mut plain = true;
    let mut single = true;
    let mut block = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        plain = false;
    }
    if trailing_space {
        block = false;
    }
    if break_space {
        plain = false;
        single = false;
    }
    if space_break || special {
        plain = false;
        single = false;
        block = false;
    }
    if line_breaks {
        plain = false;
    }
    if block_ind {
        plain = false;
    }
    if line_breaks {
        // The encoder asks for a literal block for any string containing a newline.
        if !block || simple_key {
            return Style::Double;
        }
        return Style::Literal;
    }
    if plain {
        return Style::Plain;
    }
    if single { Style::Single } else { Style::Double }
}

struct Emitter {
    out: String,
    column: usize,
}

impl Emitter {
    fn write(&mut self, s: &str) {
        for c in s.chars() {
            if c == '\n' {
                self.column = 0;
            } else {
                self.column += 1;
            }
        }
        self.out.push_str(s);
    }

    fn newline_indent(&mut self, indent: usize) {
        self.write("\n");
        self.write(&" ".repeat(indent));
    }

    /// Writes a string scalar; `indent` is the indentation for continuation lines.
    fn string(&mut self, s: &str, indent: usize, simple_key: bool) {
        match choose_style(s, simple_key) {
            Style::Plain => self.folded(s, indent, !simple_key, None),
            Style::Single => {
                self.write("'");
                self.folded(s, indent, !simple_key, Some('\''));
                self.write("'");
            }
            Style::Double => self.double(s, indent, !simple_key),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn folded(&mut self, s: &str, indent: usize, allow_breaks: bool, quote: Option<char>) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                let at_end = quote.is_some() && (i == 0 || i + 1 == chars.len());
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space && !at_end {
                    self.newline_indent(indent);
                } else {
                    self.write(" ");
                }
                spaces = true;
            } else {
                if Some(c) == quote {
                    self.write("''");
                } else {
                    let mut b = [0u8; 4];
                    self.write(c.encode_utf8(&mut b));
                }
                spaces = false;
            }
        }
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.write("\"");
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            let esc = match c {
                '\0' => Some("\\0".to_string()),
                '\x07' => Some("\\a".into()),
                '\x08' => Some("\\b".into()),
                '\t' => Some("\\t".into()),
                '\n' => Some("\\n".into()),
                '\x0b' => Some("\\v".into()),
                '\x0c' => Some("\\f".into()),
                '\r' => Some("\\r".into()),
                '\x1b' => Some("\\e".into()),
                '"' => Some("\\\"".into()),
                '\\' => Some("\\\\".into()),
                '\u{85}' => Some("\\N".into()),
                '\u{A0}' => Some("\\_".into()),
                '\u{2028}' => Some("\\L".into()),
                '\u{2029}' => Some("\\P".into()),
                '\u{FEFF}' => Some("\\uFEFF".into()),
                c if !is_printable(c) => Some(if (c as u32) <= 0xFF {
                    format!("\\x{:02X}", c as u32)
                } else if (c as u32) <= 0xFFFF {
                    format!("\\u{:04X}", c as u32)
                } else {
                    format!("\\U{:08X}", c as u32)
                }),
                _ => None,
            };
            if let Some(e) = esc {
                self.write(&e);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i + 1 != chars.len()
                {
                    self.newline_indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.write("\\");
                    }
                } else {
                    self.write(" ");
                }
                spaces = true;
            } else {
                let mut b = [0u8; 4];
                self.write(c.encode_utf8(&mut b));
                spaces = false;
            }
        }
        self.write("\"");
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.write("|");
        if s.starts_with(' ') || s.starts_with('\n') {
            self.write("2");
        }
        if !s.ends_with('\n') {
            self.write("-");
        } else if s.len() == 1 || s[..s.len() - 1].ends_with('\n') {
            self.write("+");
        }
        let body = s.strip_suffix('\n').unwrap_or(s);
        for line in body.split('\n') {
            self.write("\n");
            if !line.is_empty() {
                self.write(&" ".repeat(indent));
                self.write(line);
            }
        }
        if s.ends_with('\n') && s.len() > 1 && s[..s.len() - 1].ends_with('\n') {
            // Keep-chomping: trailing empty lines are already represented by the split.
        }
    }

    fn scalar(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Nil => self.write("null"),
            Value::Bool(b) => self.write(if *b { "true" } else { "false" }),
            Value::Int(i) => self.write(&i.to_string()),
            Value::Float(f) => {
                let j = json::json_float(*f).unwrap_or_default();
                if j.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
                    match j.parse::<i64>() {
                        Ok(i) => self.write(&i.to_string()),
                        Err(_) => self.write(&crate::gofmt::format_float_g(*f, -1)),
                    }
                } else {
                    self.write(&crate::gofmt::format_float_g(*f, -1));
                }
            }
            Value::Str(s) => self.string(&String::from_utf8_lossy(s), indent, false),
            Value::Time(t) => self.string(&super::date::rfc3339_nano(t), indent, false),
            Value::List(_) | Value::Map(_) => {}
        }
    }

    /// Emits a mapping whose keys sit at column `indent`; the first key continues the current line.
    fn map(&mut self, m: &BTreeMap<String, Value>, indent: usize) {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by(|a, b| key_less(a, b));
        for (i, k) in keys.into_iter().enumerate() {
            if i > 0 {
                self.newline_indent(indent);
            }
            self.string(k, indent, true);
            self.write(":");
            let v = &m[k];
            match v {
                Value::Map(inner) if !inner.is_empty() => {
                    self.newline_indent(indent + 2);
                    self.map(inner, indent + 2);
                }
                Value::List(inner) if !inner.is_empty() => {
                    self.newline_indent(indent);
                    self.seq(inner, indent);
                }
                Value::Map(_) => self.write(" {}"),
                Value::List(_) => self.write(" []"),
                other => {
                    self.write(" ");
                    self.scalar(other, indent + 2);
                }
            }
        }
    }

    /// Emits a sequence whose dashes sit at column `indent`; the first item continues the line.
    fn seq(&mut self, l: &[Value], indent: usize) {
        for (i, v) in l.iter().enumerate() {
            if i > 0 {
                self.newline_indent(indent);
            }
            self.write("- ");
            match v {
                Value::Map(inner) if !inner.is_empty() => self.map(inner, indent + 2),
                Value::List(inner) if !inner.is_empty() => self.seq(inner, indent + 2),
                Value::Map(_) => self.write("{}"),
                Value::List(_) => self.write("[]"),
                other => self.scalar(other, indent + 2),
            }
        }
    }
}

/// `toYaml`: the YAML document without its final newline; "" if the value can't be marshalled.
pub(crate) fn to_yaml(v: &Value) -> String {
    // sigs.k8s.io/yaml goes through JSON: fail like json.Marshal does (NaN/Inf).
    let mut scratch = Vec::new();
    if json::encode(v, &mut scratch, None, false, 0).is_err() {
        return String::new();
    }
    let normalized = normalize(v);
    let mut e = Emitter {
        out: String::new(),
        column: 0,
    };
    match &normalized {
        Value::Map(m) if !m.is_empty() => e.map(m, 0),
        Value::List(l) if !l.is_empty() => e.seq(l, 0),
        Value::Map(_) => e.write("{}"),
        Value::List(_) => e.write("[]"),
        other => e.scalar(other, 2),
    }
    e.out
}

/// JSON round trip effects: invalid UTF-8 becomes U+FFFD, times become RFC 3339 strings.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Str(s) => Value::Str(String::from_utf8_lossy(s).into_owned().into_bytes()),
        Value::Time(t) => Value::str(super::date::rfc3339_nano(t)),
        Value::List(l) => Value::List(l.iter().map(normalize).collect()),
        Value::Map(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

fn yaml_to_value(v: serde_yaml::Value) -> Result<Value, String> {
    Ok(match v {
        serde_yaml::Value::Null => Value::Nil,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_yaml::Value::String(s) => Value::Str(s.into_bytes()),
        serde_yaml::Value::Sequence(s) => {
            Value::List(s.into_iter().map(yaml_to_value).collect::<Result<_, _>>()?)
        }
        serde_yaml::Value::Mapping(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let key = match k {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    serde_yaml::Value::Number(n) => {
                        yaml_to_value(serde_yaml::Value::Number(n))?.to_go_string()
                    }
                    serde_yaml::Value::Null => "null".into(),
                    _ => {
                        return Err(
                            "error converting YAML to JSON: unsupported map key type".into()
                        );
                    }
                };
                out.insert(key, yaml_to_value(v)?);
            }
            Value::Map(out)
        }
        serde_yaml::Value::Tagged(t) => yaml_to_value(t.value)?,
    })
}

/// `fromYaml`: a map; on failure the map holds the error under "Error" (as ESO does).
pub(crate) fn from_yaml(src: &[u8]) -> Value {
    let err_map = |msg: String| {
        let mut m = BTreeMap::new();
        m.insert("Error".to_string(), Value::Str(msg.into_bytes()));
        Value::Map(m)
    };
    let parsed: Result<serde_yaml::Value, _> = serde_yaml::from_slice(src);
    match parsed {
        Ok(serde_yaml::Value::Null) => Value::Map(BTreeMap::new()),
        Ok(v) => match yaml_to_value(v) {
            Ok(Value::Map(m)) => Value::Map(m),
            Ok(other) => err_map(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                match other {
                    Value::List(_) => "array",
                    Value::Str(_) => "string",
                    Value::Bool(_) => "bool",
                    _ => "number",
                }
            )),
            Err(e) => err_map(e),
        },
        Err(e) => err_map(match e.location() {
            Some(l) => format!(
                "error converting YAML to JSON: yaml: line {}: invalid YAML",
                l.line()
            ),
            None => "error converting YAML to JSON: invalid YAML".to_string(),
        }),
    }
}
