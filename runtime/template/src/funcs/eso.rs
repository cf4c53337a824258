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

fn pem_cert(der: &[u8]) -> String {
    pem_encode(&PemBlock {
        typ: "CERTIFICATE".into(),
        headers: vec![],
        bytes: der.to_vec(),
    })
}

/// ESO's `certSANs`: DNS names, IPs, emails, then URIs of the first certificate.
fn cert_sans(input: &[u8]) -> Result<Value, String> {
    let (block, _) = pem_decode(trim_junk(input));
    let block = block.ok_or("failed to decode PEM block")?;
    let c = super::der::parse_cert(&block.bytes)
        .map_err(|e| format!("failed to parse certificate: {e}"))?;
    let all = c.dns.into_iter().chain(c.ips).chain(c.emails).chain(c.uris);
    Ok(Value::List(all.map(Value::from).collect()))
}

struct ChainCert {
    der: Vec<u8>,
    ski: Vec<u8>,
    aki: Option<Vec<u8>>,
}

/// ESO's `fetchX509CertChains`: order the PEM certificates leaf first by key identifiers.
fn cert_chain(input: &[u8]) -> Result<Vec<ChainCert>, String> {
    let mut certs = Vec::new();
    let mut data = input;
    loop {
        let (block, rest) = pem_decode(data);
        data = rest;
        let Some(block) = block else { break };
        let info = super::der::parse_cert(&block.bytes)?;
        certs.push(ChainCert {
            der: block.bytes,
            ski: info.subject_key_id.unwrap_or_default(),
            aki: info.authority_key_id,
        });
    }
    let n = certs.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut is_parent = vec![false; n];
    for i in 0..n {
        for j in 0..n {
            // Go compares with bytes.Equal, for which a missing identifier equals an empty one.
            if i != j && certs[i].aki.as_deref().unwrap_or_default() == certs[j].ski.as_slice() {
                is_parent[j] = true;
                parent[i] = Some(j);
                break;
            }
        }
    }
    let mut leaf = None;
    for (i, p) in is_parent.iter().enumerate() {
        if !p {
            if leaf.is_some() {
                return Err("found multiple leaf or disjunct certificates".into());
            }
            leaf = Some(i);
        }
    }
    let mut cur = Some(leaf.ok_or("no leaf certificate found")?);
    let mut order = Vec::new();
    while let Some(i) = cur {
        order.push(i);
        if order.len() > n {
            return Err("constructing chain resulted in cycle".into());
        }
        cur = parent[i];
    }
    let mut slots: Vec<Option<ChainCert>> = certs.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// ESO's `fetchCertChains`: the bundle re-encoded leaf first.
pub(crate) fn ordered_chain_pem(input: &[u8]) -> Result<String, String> {
    Ok(cert_chain(input)?
        .iter()
        .map(|c| pem_cert(&c.der))
        .collect())
}

fn is_root(c: &ChainCert) -> bool {
    c.aki.as_deref().is_none_or(|a| a == c.ski.as_slice())
}

/// ESO's `filterCertChain`: the leaf, the intermediates or the root of a PEM bundle.
fn filter_cert_chain(cert_type: &str, input: &[u8]) -> Result<String, String> {
    let ordered = cert_chain(input)?;
    match cert_type {
        "leaf" => {
            let c = &ordered[0];
            if c.aki.as_deref().is_some_and(|a| a != c.ski.as_slice()) {
                return Ok(pem_cert(&c.der));
            }
        }
        "intermediate" => {
            let mut out = String::new();
            for c in ordered.iter().skip(1) {
                if is_root(c) {
                    break;
                }
                out.push_str(&pem_cert(&c.der));
            }
            return Ok(out);
        }
        "root" => {
            if let Some(c) = ordered.last()
                && is_root(c)
            {
                return Ok(pem_cert(&c.der));
            }
        }
        _ => {}
    }
    Ok(String::new())
}

/// JWK base64url fields (padding and the standard alphabet are tolerated, as jwx does).
fn jwk_b64(v: &serde_json::Value, field: &str) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine as _;
    let Some(s) = v.get(field) else {
        return Ok(None);
    };
    let s = s
        .as_str()
        .ok_or_else(|| format!("failed to parse JWK: field {field:?} must be a string"))?;
    let norm: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(norm.as_bytes())
        .map(Some)
        .map_err(|_| format!("failed to parse JWK: field {field:?} is not base64url"))
}

fn left_pad(b: &[u8], n: usize) -> Vec<u8> {
    let b = if b.len() > n { &b[b.len() - n..] } else { b };
    let mut out = vec![0u8; n - b.len()];
    out.extend_from_slice(b);
    out
}

/// `jwkPublicKeyPem` / `jwkPrivateKeyPem`: PKIX or PKCS#8 DER of a JWK, like Go's x509 marshalers.
fn jwk_pem(input: &[u8], private: bool) -> Result<String, String> {
    use super::der::*;
    let v: serde_json::Value = serde_json::from_slice(input)
        .map_err(|_| "failed to parse JWK: invalid JSON".to_string())?;
    let kty = v
        .get("kty")
        .and_then(|k| k.as_str())
        .ok_or("failed to parse JWK: missing \"kty\"")?;
    let need = |f: &str| -> Result<Vec<u8>, String> {
        jwk_b64(&v, f)?.ok_or_else(|| format!("failed to parse JWK: missing {f:?}"))
    };
    let has_d = v.get("d").is_some();
    let (der, typ) = match (kty, private) {
        ("RSA", false) if has_d => {
            return Err("x509: unsupported public key type: *rsa.PrivateKey".into());
        }
        ("EC", false) if has_d => {
            return Err("x509: unsupported public key type: *ecdsa.PrivateKey".into());
        }
        ("OKP", false) if has_d => {
            return Err("x509: unsupported public key type: ed25519.PrivateKey".into());
        }
        ("RSA", true) if !has_d => {
            return Err("x509: unknown key type while marshaling PKCS#8: *rsa.PublicKey".into());
        }
        ("EC", true) if !has_d => {
            return Err("x509: unknown key type while marshaling PKCS#8: *ecdsa.PublicKey".into());
        }
        ("OKP", true) if !has_d => {
            return Err("x509: unknown key type while marshaling PKCS#8: ed25519.PublicKey".into());
        }
        ("RSA", false) => {
            let pk = seq(&[&uint(&need("n")?), &uint(&need("e")?)]);
            (
                seq(&[&seq(&[OID_RSA, NULL]), &bit_string(&pk)]),
                "PUBLIC KEY",
            )
        }
        ("RSA", true) => {
            let parts = ["n", "e", "d", "p", "q", "dp", "dq", "qi"].map(need);
            let mut ints = vec![uint(&[0])];
            for p in parts {
                ints.push(uint(&p.map_err(|e| {
                    format!("{e} (esox needs all RSA CRT parameters)")
                })?));
            }
            let refs: Vec<&[u8]> = ints.iter().map(Vec::as_slice).collect();
            let pkcs1 = seq(&refs);
            (
                seq(&[&uint(&[0]), &seq(&[OID_RSA, NULL]), &octets(&pkcs1)]),
                "PRIVATE KEY",
            )
        }
        ("EC", _) => {
            let crv = v.get("crv").and_then(|c| c.as_str()).unwrap_or_default();
            let (oid, size) = match crv {
                "P-256" => (OID_P256, 32),
                "P-384" => (OID_P384, 48),
                "P-521" => (OID_P521, 66),
                other => return Err(format!("failed to parse JWK: unsupported curve {other:?}")),
            };
            let point = [
                &[4u8][..],
                &left_pad(&need("x")?, size),
                &left_pad(&need("y")?, size),
            ]
            .concat();
            if private {
                let ec = seq(&[
                    &uint(&[1]),
                    &octets(&left_pad(&need("d")?, size)),
                    &tlv(0xa1, &bit_string(&point)),
                ]);
                (
                    seq(&[&uint(&[0]), &seq(&[OID_EC, oid]), &octets(&ec)]),
                    "PRIVATE KEY",
                )
            } else {
                (
                    seq(&[&seq(&[OID_EC, oid]), &bit_string(&point)]),
                    "PUBLIC KEY",
                )
            }
        }
        ("OKP", _) => {
            if v.get("crv").and_then(|c| c.as_str()) != Some("Ed25519") {
                return Err("failed to parse JWK: esox supports only the Ed25519 OKP curve".into());
            }
            if private {
                (
                    seq(&[
                        &uint(&[0]),
                        &seq(&[OID_ED25519]),
                        &octets(&octets(&need("d")?)),
                    ]),
                    "PRIVATE KEY",
                )
            } else {
                (
                    seq(&[&seq(&[OID_ED25519]), &bit_string(&need("x")?)]),
                    "PUBLIC KEY",
                )
            }
        }
        ("oct", _) => return Err("x509: unsupported public key type: []uint8".into()),
        (other, _) => return Err(format!("failed to parse JWK: invalid key type {other:?}")),
    };
    Ok(pem_encode(&PemBlock {
        typ: typ.into(),
        headers: vec![],
        bytes: der,
    }))
}

pub(crate) fn register(r: &mut Registry) {
    super::json::register(r);
    super::pkcs12::register(r);
    reg(r, "toYaml", 1, |a| {
        Ok(Value::str(super::yaml::to_yaml(&a[0])))
    });
    reg(r, "fromYaml", 1, |a| Ok(super::yaml::from_yaml(s(&a[0])?)));
    reg(r, "certSANs", 1, |a| cert_sans(s(&a[0])?));
    reg(r, "filterCertChain", 2, |a| {
        Ok(Value::str(filter_cert_chain(&st(&a[0])?, s(&a[1])?)?))
    });
    reg(r, "jwkPublicKeyPem", 1, |a| {
        Ok(Value::str(jwk_pem(s(&a[0])?, false)?))
    });
    reg(r, "jwkPrivateKeyPem", 1, |a| {
        Ok(Value::str(jwk_pem(s(&a[0])?, true)?))
    });
    reg(r, "filterPEM", 2, |a| {
        Ok(Value::str(filter_pem(&st(&a[0])?, s(&a[1])?)?))
    });
}
