//! Go's `fmt` and `strconv` formatting rules: `printf` verbs, float formatting, `Sprint`
//! spacing and `strconv.Quote`. Output must match Go byte for byte.

use crate::value::Value;

const MAX_SIG_DIGITS: usize = 800;
const MAX_FRAC_DIGITS: usize = 1100;

/// Decomposes a finite, non-negative float into decimal digits and Go's `dp` (decimal point
/// position), either shortest (`sig = None`) or rounded to `sig` significant digits.
fn digits(f: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    let s = match sig {
        None => format!("{f:e}"),
        // An f64 has at most 767 significant decimal digits; beyond that Go pads with zeros,
        // and Rust's formatter refuses precisions above 65535.
        Some(n) => format!("{:.*e}", n.saturating_sub(1).min(MAX_SIG_DIGITS), f),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(|b| b.is_ascii_digit()).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    if d == b"0" {
        return (d, 1);
    }
    (d, exp + 1)
}

/// NaN and infinities, spelled as Go's strconv spells them.
fn special(f: f64) -> Option<String> {
    if f.is_nan() {
        return Some("NaN".into());
    }
    if f.is_infinite() {
        return Some(if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        });
    }
    None
}

fn fmt_e(neg: bool, d: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push(d.first().copied().unwrap_or(b'0') as char);
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(d.get(i).copied().unwrap_or(b'0') as char);
        }
    }
    let exp = if d == b"0" { 0 } else { dp - 1 };
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

fn fmt_f(neg: bool, d: &[u8], dp: i32, prec: usize) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if dp > 0 {
        for i in 0..dp as usize {
            s.push(d.get(i).copied().unwrap_or(b'0') as char);
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 0..prec as i32 {
            let j = dp + i;
            let c = if j < 0 {
                b'0'
            } else {
                d.get(j as usize).copied().unwrap_or(b'0')
            };
            s.push(c as char);
        }
    }
    s
}

/// `strconv.FormatFloat(f, 'g', prec, 64)`; `prec < 0` is the shortest form used by `%v`.
pub fn format_float_g(f: f64, prec: i32) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let neg = f.is_sign_negative() && f != 0.0 || (f == 0.0 && f.is_sign_negative());
    let a = f.abs();
    let shortest = prec < 0;
    let (d, dp) = if shortest {
        digits(a, None)
    } else {
        digits(a, Some(prec.max(1) as usize))
    };
    let nd = d.len() as i32;
    let mut prec = if shortest { nd } else { prec.max(1) };
    let mut eprec = prec;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        if prec > nd {
            prec = nd;
        }
        return fmt_e(neg, &d, dp, (prec - 1).max(0) as usize, false);
    }
    if prec > dp {
        prec = nd;
    }
    fmt_f(neg, &d, dp, (prec - dp).max(0) as usize)
}

/// `strconv.FormatFloat(f, 'f', prec, 64)`; `prec < 0` is shortest.
pub fn format_float_f(f: f64, prec: i32) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    if prec < 0 {
        let neg = f.is_sign_negative();
        let (d, dp) = digits(f.abs(), None);
        let nd = d.len() as i32;
        return fmt_f(neg, &d, dp, (nd - dp).max(0) as usize);
    }
    // An f64's exact expansion has at most 1074 fractional digits: format those, pad zeros.
    let exact = (prec as usize).min(MAX_FRAC_DIGITS);
    let mut s = format!("{:.*}", exact, f);
    s.extend(std::iter::repeat_n('0', prec as usize - exact));
    if s.starts_with("-") && s[1..].bytes().all(|b| b == b'0' || b == b'.') && !f.is_sign_negative()
    {
        return s[1..].to_string();
    }
    s
}

/// `strconv.FormatFloat(f, 'e', prec, 64)`; `prec < 0` is shortest.
pub fn format_float_e(f: f64, prec: i32, upper: bool) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let neg = f.is_sign_negative();
    let (d, dp) = if prec < 0 {
        digits(f.abs(), None)
    } else {
        digits(f.abs(), Some(prec as usize + 1))
    };
    let p = if prec < 0 {
        d.len().saturating_sub(1)
    } else {
        prec as usize
    };
    fmt_e(neg, &d, dp, p, upper)
}

/// Go's `unicode.IsPrint` (approximation adequate for quoting).
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c as u32, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xFFFE | 0xFFFF))
}

/// `strconv.Quote` on a byte string (invalid UTF-8 bytes become `\xNN`).
pub fn quote(s: &[u8]) -> String {
    quote_with(s, '"')
}

pub(crate) fn quote_with(s: &[u8], q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                c if c == q || c == '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                c if is_print(c) => out.push(c),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push_str(&format!("\\U{:08x}", c as u32)),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push(q);
    out
}

/// `fmt.Sprint`: operands separated by a space when neither side is a string.
pub fn sprint(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(b' ');
        }
        a.write_go(&mut out);
    }
    out
}

/// `fmt.Sprintln`: always space-separated, newline-terminated.
pub fn sprintln(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        a.write_go(&mut out);
    }
    out.push(b'\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(out: &mut Vec<u8>, body: &[u8], sp: &Spec, numeric: bool) {
    let w = sp.width.unwrap_or(0);
    let n = String::from_utf8_lossy(body).chars().count();
    if n >= w {
        out.extend_from_slice(body);
        return;
    }
    let fill = w - n;
    if sp.minus {
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if sp.zero && numeric {
        // Zero padding goes after the sign.
        let (sign, rest) = match body.first() {
            Some(b'-' | b'+' | b' ') => body.split_at(1),
            _ => (&body[..0], body),
        };
        out.extend_from_slice(sign);
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(rest);
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(body);
    }
}

fn bad_verb(out: &mut Vec<u8>, verb: char, v: &Value) {
    out.extend_from_slice(format!("%!{verb}(").as_bytes());
    match v {
        Value::Nil => out.extend_from_slice(b"<nil>"),
        v => {
            out.extend_from_slice(v.type_name().as_bytes());
            out.push(b'=');
            v.write_go(out);
        }
    }
    out.push(b')');
}

fn fmt_int(i: i64, verb: char, sp: &Spec) -> Option<String> {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => a.to_string(),
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        'o' | 'O' => format!("{a:o}"),
        'b' => format!("{a:b}"),
        'c' => return Some(char::from_u32(i as u32).unwrap_or('\u{FFFD}').to_string()),
        'q' => {
            return Some(quote_with(
                char::from_u32(i as u32)
                    .unwrap_or('\u{FFFD}')
                    .to_string()
                    .as_bytes(),
                '\'',
            ));
        }
        'U' => return Some(format!("U+{:04X}", a)),
        _ => return None,
    };
    if let Some(p) = sp.prec {
        if p == 0 && a == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let mut s = String::new();
    if neg {
        s.push('-');
    } else if sp.plus {
        s.push('+');
    } else if sp.space {
        s.push(' ');
    }
    if sp.sharp {
        match verb {
            'x' => s.push_str("0x"),
            'X' => s.push_str("0X"),
            'o' => s.push('0'),
            'b' => s.push_str("0b"),
            _ => {}
        }
    }
    if verb == 'O' {
        s.push_str("0o");
    }
    s.push_str(&digits);
    Some(s)
}

fn fmt_float(f: f64, verb: char, sp: &Spec) -> Option<String> {
    let p = sp.prec.map(|p| p as i32);
    let mut s = match verb {
        'v' | 'g' => format_float_g(f, p.unwrap_or(-1)),
        'G' => format_float_g(f, p.unwrap_or(-1)).to_uppercase(),
        'f' | 'F' => format_float_f(f, p.unwrap_or(6)),
        'e' => format_float_e(f, p.unwrap_or(6), false),
        'E' => format_float_e(f, p.unwrap_or(6), true),
        _ => return None,
    };
    if !s.starts_with('-') && !s.starts_with('+') {
        if sp.plus {
            s.insert(0, '+');
        } else if sp.space {
            s.insert(0, ' ');
        }
    } else if s.starts_with('+') && !sp.plus {
        // "+Inf" keeps its sign only with the plus flag for %v-style output.
        if verb != 'v' && verb != 'g' {
            s.remove(0);
        }
    }
    Some(s)
}

fn fmt_one(out: &mut Vec<u8>, verb: char, sp: &Spec, v: &Value) {
    match (verb, v) {
        ('T', v) => pad(out, v.type_name().as_bytes(), sp, false),
        ('v', Value::Nil) => pad(out, b"<nil>", sp, false),
        (_, Value::Nil) => bad_verb(out, verb, v),
        ('v' | 't', Value::Bool(b)) => pad(out, if *b { b"true" } else { b"false" }, sp, false),
        (_, Value::Bool(_)) => bad_verb(out, verb, v),
        (_, Value::Int(i)) => match fmt_int(*i, verb, sp) {
            Some(s) => pad(out, s.as_bytes(), sp, !matches!(verb, 'c' | 'q' | 'U')),
            None => bad_verb(out, verb, v),
        },
        (_, Value::Float(f)) => match fmt_float(*f, verb, sp) {
            Some(s) => pad(out, s.as_bytes(), sp, true),
            None => bad_verb(out, verb, v),
        },
        ('s' | 'v', Value::Str(s)) => {
            let body: Vec<u8> = match sp.prec {
                Some(p) => {
                    let t = String::from_utf8_lossy(s);
                    t.chars().take(p).collect::<String>().into_bytes()
                }
                None => s.clone(),
            };
            pad(out, &body, sp, false)
        }
        ('q', Value::Str(s)) => pad(out, quote(s).as_bytes(), sp, false),
        ('x' | 'X', Value::Str(s)) => {
            let mut h = if verb == 'x' {
                hex_lower(s)
            } else {
                hex_lower(s).to_uppercase()
            };
            if sp.sharp {
                h.insert_str(0, if verb == 'x' { "0x" } else { "0X" });
            }
            pad(out, h.as_bytes(), sp, false)
        }
        (_, Value::Str(_)) => bad_verb(out, verb, v),
        (_, Value::List(l)) => {
            let mut body = vec![b'['];
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    body.push(b' ');
                }
                fmt_one(&mut body, verb, &Spec { width: None, ..*sp }, e);
            }
            body.push(b']');
            pad(out, &body, sp, false)
        }
        (_, Value::Map(m)) => {
            let mut body = b"map[".to_vec();
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    body.push(b' ');
                }
                fmt_one(
                    &mut body,
                    verb,
                    &Spec { width: None, ..*sp },
                    &Value::str(k),
                );
                body.push(b':');
                fmt_one(&mut body, verb, &Spec { width: None, ..*sp }, e);
            }
            body.push(b']');
            pad(out, &body, sp, false)
        }
        ('v' | 's', Value::Time(_)) => pad(out, &v.to_go_bytes(), sp, false),
        (_, Value::Time(_)) => bad_verb(out, verb, v),
    }
}

fn hex_lower(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's fmt limit on widths and precisions (10^6; literal ones may reach about 10^7).
const MAX_WIDTH: usize = 1_000_000;

/// Go's `parsenum`: digits while the number is not "too large" (10^6) before the next digit;
/// a crazy long number consumes the rest of the format (which then has no verb), like Go.
fn parse_num(f: &[u8], i: &mut usize) -> Option<usize> {
    let mut num = 0usize;
    let mut any = false;
    while *i < f.len() && f[*i].is_ascii_digit() {
        if num > MAX_WIDTH {
            *i = f.len();
            return None;
        }
        num = num * 10 + usize::from(f[*i] - b'0');
        any = true;
        *i += 1;
    }
    any.then_some(num)
}

/// Go's `fmt.Sprintf`.
///
/// Stops (returning what it has, longer than `cap`) once the output exceeds
/// `cap` bytes, so many wide verbs cannot allocate without bound.
pub fn sprintf_capped(format: &[u8], args: &[Value], cap: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(format.len());
    let mut argi = 0usize;
    let mut i = 0usize;
    let f = format;
    while i < f.len() {
        if f[i] != b'%' {
            let next = f[i..]
                .iter()
                .position(|b| *b == b'%')
                .map_or(f.len(), |p| i + p);
            out.extend_from_slice(&f[i..next]);
            i = next;
            continue;
        }
        i += 1;
        let mut sp = Spec::default();
        while i < f.len() {
            match f[i] {
                b'+' => sp.plus = true,
                b'-' => sp.minus = true,
                b'#' => sp.sharp = true,
                b'0' => sp.zero = !sp.minus,
                b' ' => sp.space = true,
                _ => break,
            }
            i += 1;
        }
        // Width.
        if i < f.len() && f[i] == b'*' {
            i += 1;
            if let Some(Value::Int(w)) = args.get(argi) {
                if *w < 0 {
                    sp.minus = true;
                }
                if w.unsigned_abs() as usize > MAX_WIDTH {
                    out.extend_from_slice(b"%!(BADWIDTH)");
                    sp.minus = false;
                } else {
                    sp.width = Some(w.unsigned_abs() as usize);
                }
            } else {
                out.extend_from_slice(b"%!(BADWIDTH)");
            }
            argi += 1;
        } else {
            if let Some(w) = parse_num(f, &mut i) {
                sp.width = Some(w);
            }
        }
        // A trailing '.' is the verb itself, as in Go.
        if i + 1 < f.len() && f[i] == b'.' {
            i += 1;
            if i < f.len() && f[i] == b'*' {
                i += 1;
                if let Some(Value::Int(p)) = args.get(argi) {
                    // Negative or huge precision arguments are bad precisions in Go.
                    if *p < 0 || p.unsigned_abs() as usize > MAX_WIDTH {
                        out.extend_from_slice(b"%!(BADPREC)");
                    } else {
                        sp.prec = Some(*p as usize);
                    }
                } else {
                    out.extend_from_slice(b"%!(BADPREC)");
                }
                argi += 1;
            } else {
                match parse_num(f, &mut i) {
                    Some(p) => sp.prec = Some(p),
                    // Go: a precision dot without digits means precision zero.
                    None if i < f.len() => sp.prec = Some(0),
                    None => {}
                }
            }
        }
        if sp.minus {
            sp.zero = false;
        }
        if i >= f.len() {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        }
        let rest = String::from_utf8_lossy(&f[i..]);
        let verb = rest.chars().next().unwrap_or('?');
        i += verb.len_utf8();
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        match args.get(argi) {
            None => out.extend_from_slice(format!("%!{verb}(MISSING)").as_bytes()),
            Some(v) => fmt_one(&mut out, verb, &sp, v),
        }
        argi += 1;
        if out.len() > cap {
            return out;
        }
    }
    if argi < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (n, v) in args[argi..].iter().enumerate() {
            if n > 0 {
                out.extend_from_slice(b", ");
            }
            match v {
                Value::Nil => out.extend_from_slice(b"<nil>"),
                v => {
                    out.extend_from_slice(v.type_name().as_bytes());
                    out.push(b'=');
                    v.write_go(&mut out);
                }
            }
        }
        out.push(b')');
    }
    out
}
