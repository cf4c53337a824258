//! Sprig v3 functions as ESO exposes them (minus `env`, `expandenv`, `getHostByName`):
//! strings, lists, dicts, math, encodings, hashes, regex, paths, defaults, reflection.
//! Dates live in `date.rs`, JSON in `json.rs`.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::Digest as _;

use super::{
    FnResult, Registry, boolean, int, is_empty, list_of, map, reg, reg_range, reg_var, s, st,
    strval, to_f64, to_i64,
};
use crate::gofmt;
use crate::value::Value;

fn vs(s: impl AsRef<[u8]>) -> FnResult {
    Ok(Value::str(s))
}

fn str_list(v: Vec<String>) -> Value {
    Value::List(v.into_iter().map(Value::from).collect())
}

fn bytes_list(v: Vec<Vec<u8>>) -> Value {
    Value::List(v.into_iter().map(Value::Str).collect())
}

/// Sprig's `strslice`: a list's non-nil elements as strings; a scalar becomes a 1-list.
fn strslice(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::List(l) => l
            .iter()
            .filter(|x| !matches!(x, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn go_split(sep: &[u8], s: &[u8], n: i64) -> Vec<Vec<u8>> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        // Split into UTF-8 sequences.
        let text = String::from_utf8_lossy(s);
        let mut parts: Vec<Vec<u8>> = text.chars().map(|c| c.to_string().into_bytes()).collect();
        if n > 0 && parts.len() > n as usize {
            let tail: Vec<u8> = parts[n as usize - 1..].concat();
            parts.truncate(n as usize - 1);
            parts.push(tail);
        }
        return parts;
    }
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        match find(rest, sep) {
            Some(i) => {
                out.push(rest[..i].to_vec());
                rest = &rest[i + sep.len()..];
            }
            None => break,
        }
    }
    out.push(rest.to_vec());
    out
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Size of `replace_all(src, old, new)` without building it.
fn replaced_len(src: &[u8], old: &[u8], new: &[u8]) -> u128 {
    let count = if old.is_empty() {
        String::from_utf8_lossy(src).chars().count() as u128 + 1
    } else {
        let mut n = 0u128;
        let mut rest = src;
        while let Some(i) = find(rest, old) {
            n += 1;
            rest = &rest[i + old.len()..];
        }
        n
    };
    (src.len() as u128 + count * new.len() as u128).saturating_sub(count * old.len() as u128)
}

fn replace_all(src: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    if old.is_empty() {
        // Go inserts `new` before every rune and at the end.
        let text = String::from_utf8_lossy(src);
        let mut out = Vec::new();
        for c in text.chars() {
            out.extend_from_slice(new);
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
        out.extend_from_slice(new);
        return out;
    }
    let mut out = Vec::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = find(rest, old) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(new);
        rest = &rest[i + old.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn is_go_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{A0}'
    ) || (c as u32 > 0xff && c.is_whitespace())
}

/// Sprig's `title` (Go's deprecated `strings.Title`).
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        out.push(if prev_sep { simple_title(c) } else { c });
        prev_sep = is_separator(c);
    }
    out
}

/// Go's `unicode.ToUpper`: one-to-one simple case mapping (ß and ligatures stay as they are).
pub(crate) fn simple_upper(c: char) -> char {
    let mut m = c.to_uppercase();
    match (m.next(), m.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Go's `unicode.ToLower` (no final-sigma or other context rules).
pub(crate) fn simple_lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut m = c.to_lowercase();
    match (m.next(), m.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Go's `unicode.ToTitle`: like upper case except for the Latin digraphs.
fn simple_title(c: char) -> char {
    match c {
        '\u{1c4}'..='\u{1c6}' => '\u{1c5}',
        '\u{1c7}'..='\u{1c9}' => '\u{1c8}',
        '\u{1ca}'..='\u{1cc}' => '\u{1cb}',
        '\u{1f1}'..='\u{1f3}' => '\u{1f2}',
        c => simple_upper(c),
    }
}

/// goutils' `AbbreviateFull`, which counts and cuts bytes like Go does.
fn abbreviate_full(s: &[u8], offset: i64, max_width: i64) -> Option<Vec<u8>> {
    let len = s.len() as i64;
    if s.is_empty() || len <= max_width {
        return Some(s.to_vec());
    }
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    if offset <= 4 {
        return Some([&s[..(max_width - 3) as usize], b"..."].concat());
    }
    if max_width < 7 {
        return None;
    }
    if offset + max_width - 3 < len {
        let inner = abbreviate_full(&s[offset as usize..], 0, max_width - 3)?;
        return Some([b"...".as_slice(), &inner].concat());
    }
    Some([b"...".as_slice(), &s[(len - (max_width - 3)) as usize..]].concat())
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

fn deep_eq(a: &Value, b: &Value) -> bool {
    a == b
}

fn trim_go(s: &[u8], cutset: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(s);
    text.trim_matches(|c| cutset.contains(c))
        .as_bytes()
        .to_vec()
}

/// A decimal (mantissa × 10^-scale) for Sprig's shopspring/decimal float ops.
#[derive(Clone, Copy)]
struct Dec {
    m: i128,
    scale: u32,
}

impl Dec {
    fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        let s = gofmt::format_float_f(f, -1);
        let (ip, fp) = s.split_once('.').unwrap_or((&s, ""));
        let m: i128 = format!("{ip}{fp}").parse().ok()?;
        Some(Dec {
            m,
            scale: fp.len() as u32,
        })
    }
    fn align(a: Dec, b: Dec) -> Option<(i128, i128, u32)> {
        let sc = a.scale.max(b.scale);
        let am = a.m.checked_mul(10i128.checked_pow(sc - a.scale)?)?;
        let bm = b.m.checked_mul(10i128.checked_pow(sc - b.scale)?)?;
        Some((am, bm, sc))
    }
    fn to_f64(self) -> f64 {
        let s = self.m.unsigned_abs().to_string();
        let sc = self.scale as usize;
        let txt = if sc == 0 {
            s
        } else if s.len() > sc {
            format!("{}.{}", &s[..s.len() - sc], &s[s.len() - sc..])
        } else {
            format!("0.{}{}", "0".repeat(sc - s.len()), s)
        };
        let v: f64 = txt.parse().unwrap_or(0.0);
        if self.m < 0 { -v } else { v }
    }
}

fn dec_op(first: &Value, rest: &[Value], op: char) -> FnResult {
    let mut acc = to_f64(first);
    let mut dacc = Dec::from_f64(acc);
    for v in rest {
        let x = to_f64(v);
        let dx = Dec::from_f64(x);
        dacc = match (dacc, dx) {
            (Some(a), Some(b)) => match op {
                '+' | '-' => Dec::align(a, b).and_then(|(am, bm, sc)| {
                    let m = if op == '+' {
                        am.checked_add(bm)?
                    } else {
                        am.checked_sub(bm)?
                    };
                    Some(Dec { m, scale: sc })
                }),
                '*' => a.m.checked_mul(b.m).map(|m| Dec {
                    m,
                    scale: a.scale + b.scale,
                }),
                _ => {
                    if b.m == 0 {
                        return Err("decimal division by 0".into());
                    }
                    // shopspring's Div rounds to 16 fractional digits.
                    Dec::align(a, b).and_then(|(am, bm, _)| {
                        let num = am.checked_mul(10i128.pow(17))?;
                        let q = num / bm;
                        let r = (q.abs() % 10) >= 5;
                        let q = q / 10 + if r { q.signum() } else { 0 };
                        Some(Dec { m: q, scale: 16 })
                    })
                }
            },
            _ => None,
        };
        acc = match op {
            '+' => acc + x,
            '-' => acc - x,
            '*' => acc * x,
            _ => acc / x,
        };
        if let Some(d) = dacc {
            acc = d.to_f64();
        }
    }
    Ok(Value::Float(dacc.map_or(acc, Dec::to_f64)))
}

/// Indentation widths are bounded so a template cannot exhaust the controller's memory.
fn pad_width(n: i64) -> Result<usize, String> {
    if n > 1 << 16 {
        return Err(format!("indent width {n} is too large (limit 65536)"));
    }
    Ok(n.max(0) as usize)
}

/// `pad_width`, refusing before allocation when indenting every line of `text` would exceed
/// the output cap.
fn indent_width(n: i64, text: &[u8]) -> Result<usize, String> {
    let w = pad_width(n)?;
    let lines = text.iter().filter(|b| **b == b'\n').count() as u128 + 1;
    crate::limits::fits(text.len() as u128 + lines * w as u128 + 1)?;
    Ok(w)
}

fn rand_string(n: i64, charset: &[u8]) -> FnResult {
    if n < 0 {
        return Err(format!("Requested random length {n} is less than 0."));
    }
    crate::limits::fits(n as u128)?;
    if n > 1 << 20 {
        return Err(format!(
            "random string length {n} is too large (limit 1048576)"
        ));
    }
    let mut out = Vec::with_capacity(n as usize);
    let mut buf = [0u8; 64];
    while out.len() < n as usize {
        getrandom::fill(&mut buf).map_err(|e| format!("no randomness available: {e}"))?;
        for b in buf {
            // Rejection sampling keeps the distribution uniform.
            let limit = 256 - (256 % charset.len());
            if (b as usize) < limit && out.len() < n as usize {
                out.push(charset[b as usize % charset.len()]);
            }
        }
    }
    vs(out)
}

const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const NUM: &[u8] = b"0123456789";

fn b64_engine() -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    )
}

/// Go's `base64.StdEncoding.DecodeString`, error text included (Sprig returns it as the value).
pub(crate) fn b64_decode(input: &[u8]) -> Result<Vec<u8>, String> {
    let clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    let alphabet_only = clean
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    if alphabet_only && !clean.len().is_multiple_of(4) {
        // Go reports the start of the incomplete final quantum.
        return Err(format!(
            "illegal base64 data at input byte {}",
            clean.len() - clean.len() % 4
        ));
    }
    b64_engine().decode(&clean).map_err(|e| {
        let off = match e {
            base64::DecodeError::InvalidByte(o, _) => o,
            base64::DecodeError::InvalidLastSymbol(o, _) => o,
            base64::DecodeError::InvalidLength(l) => l - l % 4,
            base64::DecodeError::InvalidPadding => clean.len().saturating_sub(1),
        };
        format!("illegal base64 data at input byte {off}")
    })
}

pub(crate) fn b64_encode(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b32_encode(input: &[u8]) -> String {
    let mut out = String::new();
    for chunk in input.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for i in 0..8 {
            if i < chars {
                out.push(B32[((n >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b32_decode(input: &[u8]) -> Result<Vec<u8>, String> {
    let clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    if !clean.len().is_multiple_of(8) {
        return Err(format!(
            "illegal base32 data at input byte {}",
            clean.len() - clean.len() % 8
        ));
    }
    let mut out = Vec::new();
    for (ci, chunk) in clean.chunks(8).enumerate() {
        let pad = chunk.iter().rev().take_while(|b| **b == b'=').count();
        let data = &chunk[..8 - pad];
        let mut n: u64 = 0;
        for (i, b) in data.iter().enumerate() {
            let Some(v) = B32.iter().position(|c| c == b) else {
                return Err(format!("illegal base32 data at input byte {}", ci * 8 + i));
            };
            n |= (v as u64) << (35 - i * 5);
        }
        let bytes = match data.len() {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => {
                return Err(format!(
                    "illegal base32 data at input byte {}",
                    ci * 8 + data.len()
                ));
            }
        };
        if pad > 0 && (ci + 1) * 8 != clean.len() {
            return Err(format!(
                "illegal base32 data at input byte {}",
                ci * 8 + data.len()
            ));
        }
        let be = n.to_be_bytes();
        out.extend_from_slice(&be[3..3 + bytes]);
    }
    Ok(out)
}

/// Go's `hex.DecodeString`, with its error texts.
fn hex_decode(src: &[u8]) -> Result<Vec<u8>, String> {
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let invalid = |c: u8| {
        let ch = char::from(c);
        format!(
            "encoding/hex: invalid byte: U+{:04X} {}",
            c,
            crate::gofmt::quote_with(ch.to_string().as_bytes(), '\'')
        )
    };
    let mut out = Vec::with_capacity(src.len() / 2);
    let mut j = 1;
    while j < src.len() {
        let hi = val(src[j - 1]).ok_or_else(|| invalid(src[j - 1]))?;
        let lo = val(src[j]).ok_or_else(|| invalid(src[j]))?;
        out.push(hi << 4 | lo);
        j += 2;
    }
    if src.len() % 2 == 1 {
        if val(src[j - 1]).is_none() {
            return Err(invalid(src[j - 1]));
        }
        return Err("encoding/hex: odd length hex string".into());
    }
    Ok(out)
}

/// Go's `bcrypt.GenerateFromPassword(pw, DefaultCost)`; failures are returned as text, as
/// Sprig does.
fn bcrypt_hash(pw: &[u8]) -> String {
    if pw.len() > 72 {
        return "failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes"
            .into();
    }
    match bcrypt::hash_with_result(pw, 10) {
        Ok(h) => h.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &d in data {
        a = (a + u32::from(d)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn hexs(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `regexp.Compile`, on RE2 syntax (Rust's `regex` accepts the same dialect).
pub(crate) fn compile(re: &[u8]) -> Result<regex::bytes::Regex, String> {
    let pat = std::str::from_utf8(re).map_err(|_| "regexp: invalid UTF-8".to_string())?;
    regex::bytes::RegexBuilder::new(pat)
        .size_limit(10 << 20)
        .build()
        .map_err(|e| {
            format!(
                "error parsing regexp: {}",
                e.to_string().lines().last().unwrap_or("invalid")
            )
        })
}

fn regex_find_all(re: &regex::bytes::Regex, s: &[u8], n: i64) -> Vec<Vec<u8>> {
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut prev_end: Option<usize> = None;
    for m in re.find_iter(s) {
        // Go drops an empty match that abuts the previous match.
        if m.is_empty() && prev_end == Some(m.start()) {
            continue;
        }
        prev_end = Some(m.end());
        out.push(m.as_bytes().to_vec());
        if n > 0 && out.len() as i64 >= n {
            break;
        }
    }
    out
}

fn regex_split(re: &regex::bytes::Regex, s: &[u8], n: i64) -> Vec<Vec<u8>> {
    if n == 0 {
        return Vec::new();
    }
    if !re.as_str().is_empty() && s.is_empty() {
        return vec![Vec::new()];
    }
    let mut matches: Vec<(usize, usize)> = Vec::new();
    let mut prev_end: Option<usize> = None;
    for m in re.find_iter(s) {
        if m.is_empty() && prev_end == Some(m.start()) {
            continue;
        }
        prev_end = Some(m.end());
        matches.push((m.start(), m.end()));
        if n > 0 && matches.len() as i64 >= n {
            break;
        }
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0usize, 0usize);
    for (ms, me) in matches {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = ms;
        if me != 0 {
            out.push(s[beg..end].to_vec());
        }
        beg = me;
    }
    if end != s.len() {
        out.push(s[beg..].to_vec());
    }
    out
}

/// Go's `Regexp.Expand` template syntax (`$1`, `${name}`, `$$`) applied by `ReplaceAllString`.
fn regex_replace(
    re: &regex::bytes::Regex,
    s: &[u8],
    repl: &[u8],
    literal: bool,
) -> Result<Vec<u8>, String> {
    let cap = crate::limits::cap();
    let mut out = Vec::new();
    let mut last = 0;
    let mut prev_end: Option<usize> = None;
    for caps in re.captures_iter(s) {
        let Some(m) = caps.get(0) else { continue };
        if m.is_empty() && prev_end == Some(m.start()) {
            continue;
        }
        prev_end = Some(m.end());
        out.extend_from_slice(&s[last..m.start()]);
        if literal {
            out.extend_from_slice(repl);
        } else {
            caps.expand(repl, &mut out);
        }
        last = m.end();
        if out.len() > cap {
            crate::limits::fits(out.len() as u128)?;
        }
    }
    out.extend_from_slice(&s[last..]);
    Ok(out)
}

fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_dir(p: &str) -> String {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    path_clean(&p[..i])
}

fn path_ext(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return p[i..].to_string();
        }
    }
    String::new()
}

fn merge_into(dst: &mut BTreeMap<String, Value>, src: &BTreeMap<String, Value>, overwrite: bool) {
    for (k, sv) in src {
        match dst.get_mut(k) {
            None => {
                dst.insert(k.clone(), sv.clone());
            }
            Some(dv) => match (dv, sv) {
                (Value::Map(d), Value::Map(s)) => merge_into(d, s, overwrite),
                (dv, sv) => {
                    if is_empty(dv) || (overwrite && !is_empty(sv)) {
                        *dv = sv.clone();
                    }
                }
            },
        }
    }
}

/// xstrings-style word splitting for snake/kebab/camel case.
fn case_words(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if !cur.is_empty() {
            let prev = chars[i - 1];
            let next = chars.get(i + 1).copied();
            let boundary = (c.is_uppercase() && (prev.is_lowercase() || prev.is_ascii_digit()))
                || (c.is_uppercase()
                    && prev.is_uppercase()
                    && next.is_some_and(|n| n.is_lowercase()));
            if boundary {
                words.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn delimited_case(s: &str, delim: char) -> String {
    case_words(s)
        .iter()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(&delim.to_string())
}

/// xstrings' `ToPascalCase` (Sprig's `camelcase`), ported rune for rune.
fn pascal_case(s: &str) -> String {
    let is_connector = |c: char| c == '-' || c == '_' || c.is_whitespace();
    let mut chars = s.chars();
    let mut out = String::new();
    let mut first_upper = false;
    let mut r0 = None;
    for c in chars.by_ref() {
        if !is_connector(c) {
            first_upper = c.is_uppercase();
            r0 = Some(simple_upper(c));
            break;
        }
        out.push(c);
    }
    let Some(mut r0) = r0 else { return out };
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = r0.is_uppercase();
            r0 = simple_upper(r0);
        } else {
            if first_upper {
                if r0.is_uppercase() {
                    r0 = simple_lower(r0);
                } else {
                    first_upper = false;
                }
            }
            out.push(r1);
        }
    }
    out.push(r0);
    out
}

/// goutils.WrapCustom(str, width, newLine, wrapLongWords=true).
fn wrap_custom(s: &str, width: i64, nl: &str) -> String {
    let width = if width < 1 { 1 } else { width as usize };
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len();
    let mut out = String::new();
    let mut offset = 0usize;
    while len - offset > width {
        if chars[offset] == ' ' {
            offset += 1;
            continue;
        }
        let window: String = chars[offset..=offset + width.min(len - offset - 1)]
            .iter()
            .collect();
        let space = window
            .chars()
            .collect::<Vec<_>>()
            .iter()
            .rposition(|c| *c == ' ');
        match space {
            Some(sp) if sp > 0 => {
                out.extend(&chars[offset..offset + sp]);
                out.push_str(nl);
                offset += sp + 1;
            }
            _ => {
                out.extend(&chars[offset..offset + width]);
                out.push_str(nl);
                offset += width;
            }
        }
    }
    out.extend(&chars[offset..]);
    out
}

pub(crate) fn register(r: &mut Registry) {
    // --- strings
    reg(r, "trim", 1, |a| {
        vs(String::from_utf8_lossy(s(&a[0])?)
            .trim_matches(is_go_space)
            .as_bytes())
    });
    reg(r, "trimAll", 2, |a| vs(trim_go(s(&a[1])?, &st(&a[0])?)));
    reg(r, "trimall", 2, |a| vs(trim_go(s(&a[1])?, &st(&a[0])?)));
    reg(r, "trimPrefix", 2, |a| {
        let (p, x) = (s(&a[0])?, s(&a[1])?);
        vs(x.strip_prefix(p).unwrap_or(x))
    });
    reg(r, "trimSuffix", 2, |a| {
        let (p, x) = (s(&a[0])?, s(&a[1])?);
        vs(x.strip_suffix(p).unwrap_or(x))
    });
    reg(r, "upper", 1, |a| {
        vs(st(&a[0])?.chars().map(simple_upper).collect::<String>())
    });
    reg(r, "lower", 1, |a| {
        vs(st(&a[0])?.chars().map(simple_lower).collect::<String>())
    });
    reg(r, "title", 1, |a| vs(title(&st(&a[0])?)));
    reg(r, "untitle", 1, |a| {
        let t = st(&a[0])?;
        let mut out = String::new();
        let mut prev_space = true;
        for c in t.chars() {
            if prev_space {
                out.push(simple_lower(c));
            } else {
                out.push(c);
            }
            prev_space = c.is_whitespace();
        }
        vs(out)
    });
    reg(r, "substr", 3, |a| {
        let (start, end, x) = (int(&a[0])?, int(&a[1])?, s(&a[2])?);
        let len = x.len() as i64;
        let (b, e) = if start < 0 {
            (0, end)
        } else if end < 0 || end > len {
            (start, len)
        } else {
            (start, end)
        };
        if b > e || e > len || b < 0 || e < 0 {
            return Err(format!(
                "runtime error: slice bounds out of range [{b}:{e}]"
            ));
        }
        vs(&x[b as usize..e as usize])
    });
    reg(r, "repeat", 2, |a| {
        let (n, x) = (int(&a[0])?, s(&a[1])?);
        if n < 0 {
            return Err("strings: negative Repeat count".into());
        }
        crate::limits::fits((n as u128) * (x.len() as u128))?;
        vs(x.repeat(n as usize))
    });
    reg(r, "nospace", 1, |a| {
        vs(st(&a[0])?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>())
    });
    reg(r, "initials", 1, |a| {
        let t = st(&a[0])?;
        vs(t.split_whitespace()
            .filter_map(|w| w.chars().next())
            .collect::<String>())
    });
    reg(r, "randAlphaNum", 1, |a| rand_string(int(&a[0])?, ALNUM));
    reg(r, "randAlpha", 1, |a| rand_string(int(&a[0])?, ALPHA));
    reg(r, "randNumeric", 1, |a| rand_string(int(&a[0])?, NUM));
    reg(r, "randAscii", 1, |a| {
        let printable: Vec<u8> = (32u8..=126).collect();
        rand_string(int(&a[0])?, &printable)
    });
    reg(r, "swapcase", 1, |a| {
        let t = st(&a[0])?;
        vs(t.chars()
            .map(|c| {
                if c.is_uppercase() || simple_title(c) == c && simple_lower(c) != c {
                    simple_lower(c)
                } else if c.is_lowercase() {
                    simple_upper(c)
                } else {
                    c
                }
            })
            .collect::<String>())
    });
    reg(r, "shuffle", 1, |a| {
        let mut cs: Vec<char> = st(&a[0])?.chars().collect();
        for i in (1..cs.len()).rev() {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).map_err(|e| e.to_string())?;
            let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
            cs.swap(i, j);
        }
        vs(cs.into_iter().collect::<String>())
    });
    reg(r, "snakecase", 1, |a| vs(delimited_case(&st(&a[0])?, '_')));
    reg(r, "kebabcase", 1, |a| vs(delimited_case(&st(&a[0])?, '-')));
    reg(r, "camelcase", 1, |a| vs(pascal_case(&st(&a[0])?)));
    reg(r, "wrap", 2, |a| {
        vs(wrap_custom(&st(&a[1])?, int(&a[0])?, "\n"))
    });
    reg(r, "wrapWith", 3, |a| {
        // At most one separator per `width` characters (and per input byte).
        let (w, sep, text) = (int(&a[0])?.max(1) as u128, s(&a[1])?, s(&a[2])?);
        let breaks = (text.len() as u128).div_ceil(w);
        crate::limits::fits(text.len() as u128 + breaks * sep.len() as u128)?;
        vs(wrap_custom(&st(&a[2])?, int(&a[0])?, &st(&a[1])?))
    });
    reg(r, "contains", 2, |a| {
        Ok(Value::Bool(find(s(&a[1])?, s(&a[0])?).is_some()))
    });
    reg(r, "hasPrefix", 2, |a| {
        Ok(Value::Bool(s(&a[1])?.starts_with(s(&a[0])?)))
    });
    reg(r, "hasSuffix", 2, |a| {
        Ok(Value::Bool(s(&a[1])?.ends_with(s(&a[0])?)))
    });
    reg_var(r, "quote", 0, |a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(|v| gofmt::quote(&strval(v)))
            .collect();
        vs(parts.join(" "))
    });
    reg_var(r, "squote", 0, |a| {
        let parts: Vec<Vec<u8>> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(|v| [b"'".as_slice(), &v.to_go_bytes(), b"'"].concat())
            .collect();
        vs(parts.join(&b' '))
    });
    reg_var(r, "cat", 0, |a| {
        let parts: Vec<Vec<u8>> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(Value::to_go_bytes)
            .collect();
        vs(parts.join(&b' '))
    });
    reg(r, "indent", 2, |a| {
        let pad = " ".repeat(indent_width(int(&a[0])?, s(&a[1])?)?);
        let body = replace_all(s(&a[1])?, b"\n", format!("\n{pad}").as_bytes());
        vs([pad.as_bytes(), &body].concat())
    });
    reg(r, "nindent", 2, |a| {
        let pad = " ".repeat(indent_width(int(&a[0])?, s(&a[1])?)?);
        let body = replace_all(s(&a[1])?, b"\n", format!("\n{pad}").as_bytes());
        vs([b"\n", pad.as_bytes(), &body].concat())
    });
    reg(r, "replace", 3, |a| {
        crate::limits::fits(replaced_len(s(&a[2])?, s(&a[0])?, s(&a[1])?))?;
        vs(replace_all(s(&a[2])?, s(&a[0])?, s(&a[1])?))
    });
    reg(r, "plural", 3, |a| {
        let n = int(&a[2])?;
        Ok(if n == 1 {
            Value::str(s(&a[0])?)
        } else {
            Value::str(s(&a[1])?)
        })
    });
    reg(r, "abbrev", 2, |a| {
        let (w, x) = (int(&a[0])?, s(&a[1])?);
        if w < 4 {
            return vs(x);
        }
        vs(abbreviate_full(x, 0, w).unwrap_or_else(|| x.to_vec()))
    });
    reg(r, "abbrevboth", 3, |a| {
        let (left, right, x) = (int(&a[0])?, int(&a[1])?, s(&a[2])?);
        if right < 4 || left > 0 && right < 7 {
            return vs(x);
        }
        vs(abbreviate_full(x, left, right).unwrap_or_else(|| x.to_vec()))
    });
    reg(r, "trunc", 2, |a| {
        let (c, x) = (int(&a[0])?, s(&a[1])?);
        let len = x.len() as i64;
        if c < 0 && len + c > 0 {
            return vs(&x[(len + c) as usize..]);
        }
        if c >= 0 && len > c {
            return vs(&x[..c as usize]);
        }
        vs(x)
    });
    reg(r, "toString", 1, |a| vs(strval(&a[0])));
    reg(r, "toStrings", 1, |a| Ok(bytes_list(strslice(&a[0]))));
    reg(r, "join", 2, |a| {
        let (parts, sep) = (strslice(&a[1]), s(&a[0])?);
        let total: u128 = parts.iter().map(|p| p.len() as u128).sum::<u128>()
            + (parts.len().saturating_sub(1) as u128) * sep.len() as u128;
        crate::limits::fits(total)?;
        vs(parts.join(sep))
    });
    reg(r, "split", 2, |a| {
        let parts = go_split(s(&a[0])?, s(&a[1])?, -1);
        Ok(Value::Map(
            parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::Str(p)))
                .collect(),
        ))
    });
    reg(r, "splitn", 3, |a| {
        let parts = go_split(s(&a[0])?, s(&a[2])?, int(&a[1])?);
        Ok(Value::Map(
            parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::Str(p)))
                .collect(),
        ))
    });
    reg(r, "splitList", 2, |a| {
        Ok(bytes_list(go_split(s(&a[0])?, s(&a[1])?, -1)))
    });
    reg(r, "sortAlpha", 1, |a| match &a[0] {
        Value::List(_) => {
            let mut l = strslice(&a[0]);
            l.sort();
            Ok(bytes_list(l))
        }
        other => Ok(bytes_list(vec![strval(other)])),
    });

    // --- conversions and math
    reg(r, "atoi", 1, |a| {
        let t = st(&a[0])?;
        Ok(Value::Int(t.parse::<i64>().unwrap_or(0)))
    });
    reg(r, "int", 1, |a| Ok(Value::Int(to_i64(&a[0]))));
    reg(r, "int64", 1, |a| Ok(Value::Int(to_i64(&a[0]))));
    reg(r, "float64", 1, |a| Ok(Value::Float(to_f64(&a[0]))));
    reg(r, "toDecimal", 1, |a| {
        let t = String::from_utf8_lossy(&a[0].to_go_bytes()).into_owned();
        Ok(Value::Int(i64::from_str_radix(&t, 8).unwrap_or(0)))
    });
    reg(r, "add1", 1, |a| {
        Ok(Value::Int(to_i64(&a[0]).wrapping_add(1)))
    });
    reg_var(r, "add", 0, |a| {
        Ok(Value::Int(
            a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_i64(v))),
        ))
    });
    reg(r, "sub", 2, |a| {
        Ok(Value::Int(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
    });
    reg(r, "div", 2, |a| {
        let d = to_i64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int(to_i64(&a[0]).wrapping_div(d)))
    });
    reg(r, "mod", 2, |a| {
        let d = to_i64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int(to_i64(&a[0]).wrapping_rem(d)))
    });
    reg_var(r, "mul", 1, |a| {
        Ok(Value::Int(
            a[1..]
                .iter()
                .fold(to_i64(&a[0]), |acc, v| acc.wrapping_mul(to_i64(v))),
        ))
    });
    reg(r, "add1f", 1, |a| dec_op(&a[0], &[Value::Int(1)], '+'));
    reg_var(r, "addf", 0, |a| dec_op(&Value::Float(0.0), &a, '+'));
    reg_var(r, "subf", 1, |a| dec_op(&a[0], &a[1..], '-'));
    reg_var(r, "mulf", 1, |a| dec_op(&a[0], &a[1..], '*'));
    reg_var(r, "divf", 1, |a| dec_op(&a[0], &a[1..], '/'));
    reg_var(r, "max", 1, |a| {
        Ok(Value::Int(a.iter().map(to_i64).max().unwrap_or(0)))
    });
    reg_var(r, "biggest", 1, |a| {
        Ok(Value::Int(a.iter().map(to_i64).max().unwrap_or(0)))
    });
    reg_var(r, "min", 1, |a| {
        Ok(Value::Int(a.iter().map(to_i64).min().unwrap_or(0)))
    });
    reg_var(r, "maxf", 1, |a| {
        Ok(Value::Float(
            a[1..].iter().map(to_f64).fold(to_f64(&a[0]), f64::max),
        ))
    });
    reg_var(r, "minf", 1, |a| {
        Ok(Value::Float(
            a[1..].iter().map(to_f64).fold(to_f64(&a[0]), f64::min),
        ))
    });
    reg(r, "floor", 1, |a| Ok(Value::Float(to_f64(&a[0]).floor())));
    reg(r, "ceil", 1, |a| Ok(Value::Float(to_f64(&a[0]).ceil())));
    reg_range(r, "round", 2, 3, |a| {
        let round_on = a.get(2).map_or(0.5, to_f64);
        let val = to_f64(&a[0]);
        let pow = 10f64.powf(int(&a[1])? as f64);
        let digit = pow * val;
        let frac = digit.fract();
        let rounded = if frac >= round_on {
            digit.ceil()
        } else {
            digit.floor()
        };
        Ok(Value::Float(rounded / pow))
    });
    reg(r, "until", 1, |a| {
        let n = int(&a[0])?;
        until_step(0, n, if n < 0 { -1 } else { 1 })
    });
    reg(r, "untilStep", 3, |a| {
        until_step(int(&a[0])?, int(&a[1])?, int(&a[2])?)
    });
    reg_var(r, "seq", 0, |a| {
        let p: Vec<i64> = a.iter().map(int).collect::<Result<_, _>>()?;
        let list = match p.as_slice() {
            [end] => {
                let inc = if *end < 1 { -1 } else { 1 };
                until_step(1, end + inc, inc)?
            }
            [start, end] => {
                let step = if end < start { -1 } else { 1 };
                until_step(*start, end + step, step)?
            }
            [start, step, end] => {
                let mut inc = 1;
                if end < start {
                    inc = -1;
                    if *step > 0 {
                        return vs("");
                    }
                }
                until_step(*start, end + inc, *step)?
            }
            _ => return vs(""),
        };
        let Value::List(l) = list else { return vs("") };
        vs(l.iter()
            .map(Value::to_go_string)
            .collect::<Vec<_>>()
            .join(" "))
    });

    // --- defaults
    reg_var(r, "default", 1, |a| {
        if a.len() < 2 || is_empty(&a[1]) {
            return Ok(a[0].clone());
        }
        Ok(a[1].clone())
    });
    reg(r, "empty", 1, |a| Ok(Value::Bool(is_empty(&a[0]))));
    reg_var(r, "coalesce", 0, |a| {
        Ok(a.iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil))
    });
    reg_var(r, "all", 0, |a| {
        Ok(Value::Bool(a.iter().all(|v| !is_empty(v))))
    });
    reg_var(r, "any", 0, |a| {
        Ok(Value::Bool(a.iter().any(|v| !is_empty(v))))
    });
    reg(r, "ternary", 3, |a| {
        Ok(if boolean(&a[2])? {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    reg(r, "compact", 1, |a| {
        Ok(Value::List(
            list_of(&a[0], "compact")?
                .into_iter()
                .filter(|v| !is_empty(v))
                .collect(),
        ))
    });
    reg(r, "mustCompact", 1, |a| {
        Ok(Value::List(
            list_of(&a[0], "compact")?
                .into_iter()
                .filter(|v| !is_empty(v))
                .collect(),
        ))
    });
    reg(r, "deepCopy", 1, |a| Ok(a[0].clone()));
    reg(r, "mustDeepCopy", 1, |a| Ok(a[0].clone()));
    reg(r, "typeOf", 1, |a| vs(a[0].type_name()));
    reg(r, "kindOf", 1, |a| vs(a[0].kind_name()));
    reg(r, "typeIs", 2, |a| {
        Ok(Value::Bool(s(&a[0])? == a[1].type_name().as_bytes()))
    });
    reg(r, "typeIsLike", 2, |a| {
        let t = s(&a[0])?;
        let n = a[1].type_name().as_bytes();
        Ok(Value::Bool(t == n || t == [b"*".as_slice(), n].concat()))
    });
    reg(r, "kindIs", 2, |a| {
        Ok(Value::Bool(s(&a[0])? == a[1].kind_name().as_bytes()))
    });
    reg(r, "deepEqual", 2, |a| {
        Ok(Value::Bool(deep_eq(&a[0], &a[1])))
    });
    reg(r, "fail", 1, |a| Err(st(&a[0])?));

    // --- paths
    reg(r, "base", 1, |a| vs(path_base(&st(&a[0])?)));
    reg(r, "osBase", 1, |a| vs(path_base(&st(&a[0])?)));
    reg(r, "dir", 1, |a| vs(path_dir(&st(&a[0])?)));
    reg(r, "osDir", 1, |a| vs(path_dir(&st(&a[0])?)));
    reg(r, "clean", 1, |a| vs(path_clean(&st(&a[0])?)));
    reg(r, "osClean", 1, |a| vs(path_clean(&st(&a[0])?)));
    reg(r, "ext", 1, |a| vs(path_ext(&st(&a[0])?)));
    reg(r, "osExt", 1, |a| vs(path_ext(&st(&a[0])?)));
    reg(r, "isAbs", 1, |a| {
        Ok(Value::Bool(s(&a[0])?.starts_with(b"/")))
    });
    reg(r, "osIsAbs", 1, |a| {
        Ok(Value::Bool(s(&a[0])?.starts_with(b"/")))
    });

    // --- encodings and hashes
    reg(r, "b64enc", 1, |a| vs(b64_encode(s(&a[0])?)));
    reg(r, "b64dec", 1, |a| match b64_decode(s(&a[0])?) {
        Ok(v) => vs(v),
        Err(e) => vs(e),
    });
    reg(r, "b32enc", 1, |a| vs(b32_encode(s(&a[0])?)));
    reg(r, "b32dec", 1, |a| match b32_decode(s(&a[0])?) {
        Ok(v) => vs(v),
        Err(e) => vs(e),
    });
    // ESO's vendored Sprig adds `hexdec` (errors are returned as the value, like b64dec).
    reg(r, "hexdec", 1, |a| match hex_decode(s(&a[0])?) {
        Ok(v) => vs(v),
        Err(e) => vs(e),
    });
    reg(r, "sha1sum", 1, |a| {
        vs(hexs(&sha1::Sha1::digest(s(&a[0])?)))
    });
    reg(r, "sha256sum", 1, |a| {
        vs(hexs(&sha2::Sha256::digest(s(&a[0])?)))
    });
    reg(r, "sha512sum", 1, |a| {
        vs(hexs(&sha2::Sha512::digest(s(&a[0])?)))
    });
    reg(r, "adler32sum", 1, |a| vs(adler32(s(&a[0])?).to_string()));
    reg(r, "uuidv4", 0, |_| {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| format!("no randomness available: {e}"))?;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hexs(&b);
        vs(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    });
    reg(r, "bcrypt", 1, |a| vs(bcrypt_hash(s(&a[0])?)));
    // ESO's vendored Sprig: htpasswd(user, password, "bcrypt" | "sha").
    reg(r, "htpasswd", 3, |a| {
        let user = st(&a[0])?;
        if user.contains(':') {
            return vs(format!("invalid username: {user}"));
        }
        let pw = s(&a[1])?;
        if st(&a[2])? == "sha" {
            return vs(format!(
                "{user}:{{SHA}}{}",
                b64_encode(&sha1::Sha1::digest(pw))
            ));
        }
        vs(format!("{user}:{}", bcrypt_hash(pw)))
    });
    reg(r, "randInt", 2, |a| {
        let (lo, hi) = (int(&a[0])?, int(&a[1])?);
        if hi <= lo {
            return Err("invalid argument to Intn".into());
        }
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|e| format!("no randomness available: {e}"))?;
        let span = (hi - lo) as u64;
        Ok(Value::Int(lo + (u64::from_le_bytes(b) % span) as i64))
    });
    reg(r, "randBytes", 1, |a| {
        let n = int(&a[0])?;
        if !(0..=1 << 20).contains(&n) {
            return Err("randBytes: count out of range".into());
        }
        crate::limits::fits((n as u128).div_ceil(3) * 4)?;
        let mut b = vec![0u8; n as usize];
        getrandom::fill(&mut b).map_err(|e| format!("no randomness available: {e}"))?;
        vs(b64_encode(&b))
    });

    // --- lists
    reg_var(r, "list", 0, |a| Ok(Value::List(a)));
    reg_var(r, "tuple", 0, |a| Ok(Value::List(a)));
    for name in ["append", "push", "mustAppend", "mustPush"] {
        reg(r, name, 2, |a| {
            let mut l = list_of(&a[0], "push")?;
            l.push(a[1].clone());
            Ok(Value::List(l))
        });
    }
    for name in ["prepend", "mustPrepend"] {
        reg(r, name, 2, |a| {
            let mut l = list_of(&a[0], "prepend")?;
            l.insert(0, a[1].clone());
            Ok(Value::List(l))
        });
    }
    for name in ["first", "mustFirst"] {
        reg(r, name, 1, |a| {
            Ok(list_of(&a[0], "find first")?
                .into_iter()
                .next()
                .unwrap_or(Value::Nil))
        });
    }
    for name in ["last", "mustLast"] {
        reg(r, name, 1, |a| {
            Ok(list_of(&a[0], "find last")?.pop().unwrap_or(Value::Nil))
        });
    }
    for name in ["rest", "mustRest"] {
        reg(r, name, 1, |a| {
            let l = list_of(&a[0], "find rest")?;
            Ok(Value::List(l.get(1..).unwrap_or_default().to_vec()))
        });
    }
    for name in ["initial", "mustInitial"] {
        reg(r, name, 1, |a| {
            let mut l = list_of(&a[0], "find initial")?;
            l.pop();
            Ok(Value::List(l))
        });
    }
    for name in ["reverse", "mustReverse"] {
        reg(r, name, 1, |a| {
            let mut l = list_of(&a[0], "find reverse")?;
            l.reverse();
            Ok(Value::List(l))
        });
    }
    for name in ["uniq", "mustUniq"] {
        reg(r, name, 1, |a| {
            let mut out: Vec<Value> = Vec::new();
            for v in list_of(&a[0], "find uniq")? {
                if !out.iter().any(|o| deep_eq(o, &v)) {
                    out.push(v);
                }
            }
            Ok(Value::List(out))
        });
    }
    for name in ["without", "mustWithout"] {
        reg_var(r, name, 1, |a| {
            let l = list_of(&a[0], "find without")?;
            Ok(Value::List(
                l.into_iter()
                    .filter(|v| !a[1..].iter().any(|o| deep_eq(o, v)))
                    .collect(),
            ))
        });
    }
    for name in ["has", "mustHas"] {
        reg(r, name, 2, |a| {
            if matches!(a[1], Value::Nil) {
                return Ok(Value::Bool(false));
            }
            Ok(Value::Bool(
                list_of(&a[1], "find has")?
                    .iter()
                    .any(|v| deep_eq(v, &a[0])),
            ))
        });
    }
    for name in ["slice", "mustSlice"] {
        reg_var(r, name, 1, |a| {
            let l = match &a[0] {
                Value::List(l) => l.clone(),
                other => {
                    return Err(format!(
                        "list should be type of slice or array but {}",
                        other.kind_name()
                    ));
                }
            };
            if l.is_empty() {
                return Ok(Value::Nil);
            }
            let start = a.get(1).map_or(0, to_i64);
            let end = a.get(2).map_or(l.len() as i64, to_i64);
            if start < 0 || end < start || end as usize > l.len() {
                return Err(format!("reflect: slice index out of range [{start}:{end}]"));
            }
            Ok(Value::List(l[start as usize..end as usize].to_vec()))
        });
    }
    reg_var(r, "concat", 0, |a| {
        let mut out = Vec::new();
        for l in &a {
            out.extend(list_of(l, "concat type as list")?);
        }
        Ok(if out.is_empty() {
            Value::Nil
        } else {
            Value::List(out)
        })
    });
    for name in ["chunk", "mustChunk"] {
        reg(r, name, 2, |a| {
            let size = int(&a[0])?;
            let l = list_of(&a[1], "chunk type")?;
            if size <= 0 {
                return Err("chunk size must be positive".into());
            }
            Ok(Value::List(
                l.chunks(size as usize)
                    .map(|c| Value::List(c.to_vec()))
                    .collect(),
            ))
        });
    }

    // --- dicts
    reg_var(r, "dict", 0, |a| {
        let mut m = BTreeMap::new();
        let mut i = 0;
        while i < a.len() {
            let k = String::from_utf8_lossy(&strval(&a[i])).into_owned();
            m.insert(k, a.get(i + 1).cloned().unwrap_or_else(|| Value::str("")));
            i += 2;
        }
        Ok(Value::Map(m))
    });
    reg(r, "get", 2, |a| {
        Ok(map(&a[0])?
            .get(&st(&a[1])?)
            .cloned()
            .unwrap_or_else(|| Value::str("")))
    });
    reg(r, "set", 3, |a| {
        let mut m = map(&a[0])?.clone();
        m.insert(st(&a[1])?, a[2].clone());
        Ok(Value::Map(m))
    });
    reg(r, "unset", 2, |a| {
        let mut m = map(&a[0])?.clone();
        m.remove(&st(&a[1])?);
        Ok(Value::Map(m))
    });
    reg(r, "hasKey", 2, |a| {
        Ok(Value::Bool(map(&a[0])?.contains_key(&st(&a[1])?)))
    });
    reg_var(r, "pluck", 1, |a| {
        let k = st(&a[0])?;
        let mut out = Vec::new();
        for d in &a[1..] {
            if let Some(v) = map(d)?.get(&k) {
                out.push(v.clone());
            }
        }
        Ok(Value::List(out))
    });
    reg_var(r, "keys", 0, |a| {
        let mut out = Vec::new();
        for d in &a {
            out.extend(map(d)?.keys().cloned());
        }
        Ok(str_list(out))
    });
    reg_var(r, "pick", 1, |a| {
        let m = map(&a[0])?;
        let mut out = BTreeMap::new();
        for k in &a[1..] {
            let k = st(k)?;
            if let Some(v) = m.get(&k) {
                out.insert(k, v.clone());
            }
        }
        Ok(Value::Map(out))
    });
    reg_var(r, "omit", 1, |a| {
        let mut m = map(&a[0])?.clone();
        for k in &a[1..] {
            m.remove(&st(k)?);
        }
        Ok(Value::Map(m))
    });
    for (name, over) in [
        ("merge", false),
        ("mustMerge", false),
        ("mergeOverwrite", true),
        ("mustMergeOverwrite", true),
    ] {
        let f: fn(Vec<Value>) -> FnResult = if over {
            |a| {
                let mut d = map(&a[0])?.clone();
                for src in &a[1..] {
                    merge_into(&mut d, map(src)?, true);
                }
                Ok(Value::Map(d))
            }
        } else {
            |a| {
                let mut d = map(&a[0])?.clone();
                for src in &a[1..] {
                    merge_into(&mut d, map(src)?, false);
                }
                Ok(Value::Map(d))
            }
        };
        reg_var(r, name, 1, f);
    }
    reg(r, "values", 1, |a| {
        Ok(Value::List(map(&a[0])?.values().cloned().collect()))
    });
    reg_var(r, "dig", 3, |a| {
        let n = a.len();
        let mut cur = map(&a[n - 1])?.clone();
        let def = a[n - 2].clone();
        let keys = &a[..n - 2];
        for (i, k) in keys.iter().enumerate() {
            let k = st(k)?;
            let Some(v) = cur.remove(&k) else {
                return Ok(def);
            };
            if i + 1 == keys.len() {
                return Ok(v);
            }
            cur = match v {
                Value::Map(m) => m,
                other => {
                    return Err(format!(
                        "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                        other.type_name()
                    ));
                }
            };
        }
        Ok(def)
    });

    // --- regex
    for (name, must) in [("regexMatch", false), ("mustRegexMatch", true)] {
        let f: fn(Vec<Value>) -> FnResult = if must {
            |a| Ok(Value::Bool(compile(s(&a[0])?)?.is_match(s(&a[1])?)))
        } else {
            |a| {
                Ok(Value::Bool(
                    compile(s(&a[0])?)
                        .map(|re| re.is_match(s(&a[1]).unwrap_or(b"")))
                        .unwrap_or(false),
                ))
            }
        };
        let _ = must;
        reg(r, name, 2, f);
    }
    for name in ["regexFindAll", "mustRegexFindAll"] {
        reg(r, name, 3, |a| {
            Ok(bytes_list(regex_find_all(
                &compile(s(&a[0])?)?,
                s(&a[1])?,
                int(&a[2])?,
            )))
        });
    }
    for name in ["regexFind", "mustRegexFind"] {
        reg(r, name, 2, |a| {
            vs(compile(s(&a[0])?)?
                .find(s(&a[1])?)
                .map(|m| m.as_bytes().to_vec())
                .unwrap_or_default())
        });
    }
    for name in ["regexReplaceAll", "mustRegexReplaceAll"] {
        reg(r, name, 3, |a| {
            vs(regex_replace(
                &compile(s(&a[0])?)?,
                s(&a[1])?,
                s(&a[2])?,
                false,
            )?)
        });
    }
    for name in ["regexReplaceAllLiteral", "mustRegexReplaceAllLiteral"] {
        reg(r, name, 3, |a| {
            vs(regex_replace(
                &compile(s(&a[0])?)?,
                s(&a[1])?,
                s(&a[2])?,
                true,
            )?)
        });
    }
    for name in ["regexSplit", "mustRegexSplit"] {
        reg(r, name, 3, |a| {
            Ok(bytes_list(regex_split(
                &compile(s(&a[0])?)?,
                s(&a[1])?,
                int(&a[2])?,
            )))
        });
    }
    reg(r, "regexQuoteMeta", 1, |a| vs(regex::escape(&st(&a[0])?)));

    // --- urls
    reg(r, "urlParse", 1, |a| url_parse(&st(&a[0])?));
    reg(r, "urlJoin", 1, |a| {
        let m = map(&a[0])?;
        let g = |k: &str| {
            m.get(k)
                .map(|v| String::from_utf8_lossy(&strval(v)).into_owned())
                .unwrap_or_default()
        };
        let mut out = String::new();
        let scheme = g("scheme");
        if !scheme.is_empty() {
            out.push_str(&scheme);
            out.push(':');
        }
        let opaque = g("opaque");
        if !opaque.is_empty() {
            out.push_str(&opaque);
        } else {
            let host = g("host");
            let user = g("userinfo");
            if !scheme.is_empty() || !host.is_empty() || !user.is_empty() {
                out.push_str("//");
                if !user.is_empty() {
                    out.push_str(&user);
                    out.push('@');
                }
                out.push_str(&host);
            }
            let path = g("path");
            if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
                out.push('/');
            }
            out.push_str(&path);
        }
        let q = g("query");
        if !q.is_empty() {
            out.push('?');
            out.push_str(&q);
        }
        let f = g("fragment");
        if !f.is_empty() {
            out.push('#');
            out.push_str(&f);
        }
        vs(out)
    });
}

fn until_step(start: i64, stop: i64, step: i64) -> FnResult {
    let mut v = Vec::new();
    const LIMIT: usize = 1 << 20;
    // Each element counts one unit against the output cap; refuse before building the list.
    if step != 0 {
        let count = (i128::from(stop) - i128::from(start)) / i128::from(step);
        if count > 0 {
            crate::limits::fits(count as u128)?;
        }
    }
    if stop < start {
        if step >= 0 {
            return Ok(Value::List(v));
        }
        let mut i = start;
        while i > stop {
            v.push(Value::Int(i));
            if v.len() > LIMIT {
                return Err("sequence too long".into());
            }
            i = i.saturating_add(step);
        }
        return Ok(Value::List(v));
    }
    if step <= 0 {
        return Ok(Value::List(v));
    }
    let mut i = start;
    while i < stop {
        v.push(Value::Int(i));
        if v.len() > LIMIT {
            return Err("sequence too long".into());
        }
        i = i.saturating_add(step);
    }
    Ok(Value::List(v))
}

fn url_parse(u: &str) -> FnResult {
    let mut m = BTreeMap::new();
    let (rest, fragment) = u.split_once('#').map_or((u, ""), |(a, b)| (a, b));
    let (rest, query) = rest.split_once('?').map_or((rest, ""), |(a, b)| (a, b));
    let (scheme, rest) = match rest.find(':') {
        Some(i)
            if i > 0
                && rest[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (&rest[..i], &rest[i + 1..])
        }
        _ => ("", rest),
    };
    let (mut host, mut path, mut user, mut opaque) = ("", rest, "", "");
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find('/').unwrap_or(r.len());
        let auth = &r[..end];
        path = &r[end..];
        match auth.rsplit_once('@') {
            Some((ui, h)) => {
                user = ui;
                host = h;
            }
            None => host = auth,
        }
    } else if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest;
        path = "";
    }
    let hostname = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    for (k, v) in [
        ("scheme", scheme),
        ("host", host),
        ("hostname", hostname),
        ("path", path),
        ("query", query),
        ("opaque", opaque),
        ("fragment", fragment),
        ("userinfo", user),
    ] {
        m.insert(k.to_string(), Value::str(v));
    }
    Ok(Value::Map(m))
}
