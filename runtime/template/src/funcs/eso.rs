//! ESO's own template functions (runtime/template/v2): `toYaml`, `fromYaml`, `filterPEM`,
//! and the PEM codec they need, ported to match Go's `encoding/pem` byte for byte.

use super::{Registry, reg, s, st};
use crate::value::Value;

/// A decoded PEM block.
pub(crate) struct PemBlock {
    pub typ: String,
    pub headers: Vec<(String, String)>,
    pub bytes: Vec<u8>,
}

fn get_line(data: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    (&line[..end], rest)
}

fn trim_space(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Go's `pem.Decode`: the first valid block and the rest of the input.
pub(crate) fn pem_decode(data: &[u8]) -> (Option<PemBlock>, &[u8]) {
    const START: &[u8] = b"\n-----BEGIN ";
    const END: &[u8] = b"\n-----END ";
    let mut rest = data;
    loop {
        if rest.starts_with(&START[1..]) {
            rest = &rest[START.len() - 1..];
        } else if let Some(i) = super::sprig::find(rest, START) {
            rest = &rest[i + START.len()..];
        } else {
            return (None, data);
        }
        let (type_line, after) = get_line(rest);
        rest = after;
        let Some(typ) = type_line.strip_suffix(b"-----") else {
            continue;
        };
        let mut headers = Vec::new();
        let mut ok = true;
        loop {
            if rest.is_empty() {
                ok = false;
                break;
            }
            let (line, next) = get_line(rest);
            let Some(ci) = line.iter().position(|b| *b == b':') else {
                break;
            };
            let key = String::from_utf8_lossy(trim_space(&line[..ci])).into_owned();
            let val = String::from_utf8_lossy(trim_space(&line[ci + 1..])).into_owned();
            headers.retain(|(k, _): &(String, String)| *k != key);
            headers.push((key, val));
            rest = next;
        }
        if !ok {
            return (None, data);
        }
        let (end_index, trailer_index) = if headers.is_empty() && rest.starts_with(&END[1..]) {
            (0usize, END.len() - 1)
        } else {
            match super::sprig::find(rest, END) {
                Some(i) => (i, i + END.len()),
                None => continue,
            }
        };
        let trailer = &rest[trailer_index..];
        let tl = typ.len() + 5;
        if trailer.len() < tl {
            continue;
        }
        let (end_trailer, rest_of_end) = trailer.split_at(tl);
        if !end_trailer.starts_with(typ) || !end_trailer.ends_with(b"-----") {
            continue;
        }
        if !get_line(rest_of_end).0.is_empty() {
            continue;
        }
        let b64: Vec<u8> = rest[..end_index]
            .iter()
            .copied()
            .filter(|b| *b != b' ' && *b != b'\t')
            .collect();
        let Ok(bytes) = super::sprig::b64_decode(&b64) else {
            continue;
        };
        let consumed = end_index + END.len() - 1;
        let (_, after_end) = get_line(&rest[consumed..]);
        return (
            Some(PemBlock {
                typ: String::from_utf8_lossy(typ).into_owned(),
                headers,
                bytes,
            }),
            after_end,
        );
    }
}

/// Go's `pem.Encode`.
pub(crate) fn pem_encode(b: &PemBlock) -> String {
    let mut out = format!("-----BEGIN {}-----\n", b.typ);
    if !b.headers.is_empty() {
        let mut hs: Vec<&(String, String)> = b.headers.iter().collect();
        hs.sort_by(|x, y| (x.0 != "Proc-Type", &x.0).cmp(&(y.0 != "Proc-Type", &y.0)));
        for (k, v) in hs {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
    }
    let enc = super::sprig::b64_encode(&b.bytes);
    for chunk in enc.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {}-----\n", b.typ));
    out
}

/// ESO's `trimJunk`: drop anything before the first `-----BEGIN`.
pub(crate) fn trim_junk(input: &[u8]) -> &[u8] {
    match super::sprig::find(input, b"-----BEGIN") {
        Some(i) => &input[i..],
        None => input,
    }
}

fn filter_pem(pem_type: &str, input: &[u8]) -> Result<String, String> {
    let mut data = trim_junk(input);
    let mut out = String::new();
    let mut rest: &[u8];
    loop {
        let (block, r) = pem_decode(data);
        rest = r;
        data = r;
        let Some(block) = block else { break };
        if block.typ.eq_ignore_ascii_case(pem_type) {
            out.push_str(&pem_encode(&block));
        }
    }
    if out.is_empty() && !rest.is_empty() {
        return Err("error filtering pem: found junk".into());
    }
    Ok(out)
}

pub(crate) fn register(r: &mut Registry) {
    super::json::register(r);
    reg(r, "toYaml", 1, |a| {
        Ok(Value::str(super::yaml::to_yaml(&a[0])))
    });
    reg(r, "fromYaml", 1, |a| Ok(super::yaml::from_yaml(s(&a[0])?)));
    reg(r, "filterPEM", 2, |a| {
        Ok(Value::str(filter_pem(&st(&a[0])?, s(&a[1])?)?))
    });
}
