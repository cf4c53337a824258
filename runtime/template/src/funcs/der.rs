//! Just enough DER to read X.509 certificates (key identifiers, SANs) and to write the
//! SubjectPublicKeyInfo / PKCS#8 structures Go's `x509.MarshalPKIXPublicKey` and
//! `x509.MarshalPKCS8PrivateKey` produce. Hand-written to avoid a second crypto stack.

/// One DER element: its tag, its content, and the whole encoding (`raw`).
#[derive(Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

/// Reads one element; `None` if the input is not valid DER framing.
pub(crate) fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers do not occur in the structures we read
    }
    let first = *input.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    if end > input.len() {
        return None;
    }
    Some((
        Tlv {
            tag,
            content: &input[hdr..end],
        },
        &input[end..],
    ))
}

/// All elements of a SEQUENCE/SET body.
pub(crate) fn children(mut body: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (t, rest) = read(body)?;
        out.push(t);
        body = rest;
    }
    Some(out)
}

/// Encodes one element.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub(crate) fn uint(bytes: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => &[0],
    };
    let mut c = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        c.push(0);
    }
    c.extend_from_slice(trimmed);
    tlv(0x02, &c)
}

pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(0x03, &[&[0u8][..], bytes].concat())
}

pub(crate) fn octets(bytes: &[u8]) -> Vec<u8> {
    tlv(0x04, bytes)
}

pub(crate) const NULL: &[u8] = &[0x05, 0x00];
pub(crate) const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
pub(crate) const OID_EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub(crate) const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(crate) const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
pub(crate) const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
pub(crate) const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// The parts of a certificate ESO's functions look at.
pub(crate) struct CertInfo {
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
    pub dns: Vec<String>,
    pub ips: Vec<String>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
}

const OID_SKI: &[u8] = &[0x55, 0x1d, 0x0e];
const OID_AKI: &[u8] = &[0x55, 0x1d, 0x23];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// Parses a DER certificate far enough for chains and SANs (`x509: malformed certificate`
/// when the framing is wrong, like Go).
pub(crate) fn parse_cert(der: &[u8]) -> Result<CertInfo, String> {
    let bad = || "x509: malformed certificate".to_string();
    let (cert, rest) = read(der).ok_or_else(bad)?;
    if cert.tag != 0x30 || !rest.is_empty() {
        return Err(bad());
    }
    let parts = children(cert.content).ok_or_else(bad)?;
    let tbs = parts.first().filter(|t| t.tag == 0x30).ok_or_else(bad)?;
    if parts.len() != 3 {
        return Err(bad());
    }
    let fields = children(tbs.content).ok_or_else(bad)?;
    let mut info = CertInfo {
        subject_key_id: None,
        authority_key_id: None,
        dns: vec![],
        ips: vec![],
        emails: vec![],
        uris: vec![],
    };
    let Some(ext) = fields.iter().find(|t| t.tag == 0xa3) else {
        return Ok(info);
    };
    let (exts, _) = read(ext.content).ok_or_else(bad)?;
    for e in children(exts.content).ok_or_else(bad)? {
        let f = children(e.content).ok_or_else(bad)?;
        let (Some(oid), Some(val)) = (f.first(), f.last()) else {
            return Err(bad());
        };
        if oid.tag != 0x06 || val.tag != 0x04 {
            return Err(bad());
        }
        match oid.content {
            OID_SKI => {
                let (k, _) = read(val.content).ok_or_else(bad)?;
                info.subject_key_id = Some(k.content.to_vec());
            }
            OID_AKI => {
                let (s, _) = read(val.content).ok_or_else(bad)?;
                for c in children(s.content).ok_or_else(bad)? {
                    if c.tag == 0x80 {
                        info.authority_key_id = Some(c.content.to_vec());
                    }
                }
            }
            OID_SAN => {
                let (s, _) = read(val.content).ok_or_else(bad)?;
                for n in children(s.content).ok_or_else(bad)? {
                    let text = || String::from_utf8_lossy(n.content).into_owned();
                    match n.tag {
                        0x81 => info.emails.push(text()),
                        0x82 => info.dns.push(text()),
                        0x86 => info.uris.push(text()),
                        0x87 => info.ips.push(match n.content.len() {
                            4 => std::net::Ipv4Addr::new(
                                n.content[0],
                                n.content[1],
                                n.content[2],
                                n.content[3],
                            )
                            .to_string(),
                            16 => {
                                let mut b = [0u8; 16];
                                b.copy_from_slice(n.content);
                                let v6 = std::net::Ipv6Addr::from(b);
                                match v6.to_ipv4_mapped() {
                                    Some(v4) => v4.to_string(),
                                    None => v6.to_string(),
                                }
                            }
                            _ => {
                                return Err("x509: certificate contained IP address of length "
                                    .to_string()
                                    + &n.content.len().to_string());
                            }
                        }),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}
