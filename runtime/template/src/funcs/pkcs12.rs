//! ESO's PKCS#12 and RSA functions: `pkcs12key[Pass]`, `pkcs12cert[Pass]`, the
//! `pemToPkcs12` / `fullPemToPkcs12` / `pemTruststoreToPKCS12` encoders (each with a `Pass`
//! variant) and `rsaDecrypt`. Decoding follows go-pkcs12's `DecodeChain` (first certificate bag is
//! the leaf, the rest are CAs; exactly one key); encoding uses PBES2/AES-256 with an HMAC-SHA-256
//! MAC like go-pkcs12's `Modern` encoder (output is salted, so it is random per call, as in Go).

use p12_keystore::{
    Certificate, KeyStore, KeyStoreEntry, Pkcs12Archive, PrivateKey, PrivateKeyChain,
};

use super::der;
use super::eso::{PemBlock, pem_decode, pem_encode};
use super::{Registry, reg, s, st};
use crate::value::Value;

fn p12_error(e: p12_keystore::error::Error) -> String {
    match e {
        p12_keystore::error::Error::MacError(_) => "pkcs12: decryption password incorrect".into(),
        other => format!("pkcs12: {other}"),
    }
}

/// What go-pkcs12's `DecodeChain` returns: PKCS#8 key, leaf DER, CA DERs.
type Chain = (Vec<u8>, Vec<u8>, Vec<Vec<u8>>);

/// go-pkcs12's `DecodeChain`.
fn decode_chain(pfx: &[u8], pass: &str) -> Result<Chain, String> {
    let archive = Pkcs12Archive::from_pkcs12(pfx, pass).map_err(p12_error)?;
    if archive.keys.len() > 1 {
        return Err("pkcs12: expected exactly one key bag".into());
    }
    let mut certs = archive.certs.iter().map(|c| c.cert.as_der().to_vec());
    let leaf = certs.next().ok_or("pkcs12: certificate missing")?;
    let cas: Vec<Vec<u8>> = certs.collect();
    let key = archive.keys.first().ok_or("pkcs12: private key missing")?;
    Ok((canonical_pkcs8(key.key.as_der()), leaf, cas))
}

/// Go re-marshals the key with `x509.MarshalPKCS8PrivateKey`; for EC keys that drops the
/// curve parameters inside ECPrivateKey. Other key types round-trip unchanged.
fn canonical_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    let rebuild = || -> Option<Vec<u8>> {
        let (outer, _) = der::read(pkcs8)?;
        let f = der::children(outer.content)?;
        let alg = der::children(f.get(1)?.content)?;
        if der::tlv(alg.first()?.tag, alg.first()?.content) != der::OID_EC {
            return None;
        }
        let (ec, _) = der::read(f.get(2)?.content)?;
        let parts = der::children(ec.content)?;
        let d = parts.get(1)?;
        let public = parts.iter().find(|p| p.tag == 0xa1)?;
        let inner = der::seq(&[
            &der::uint(&[1]),
            &der::tlv(0x04, d.content),
            &der::tlv(0xa1, public.content),
        ]);
        let alg_der = der::tlv(f.get(1)?.tag, f.get(1)?.content);
        Some(der::seq(&[
            &der::uint(&[0]),
            &alg_der,
            &der::octets(&inner),
        ]))
    };
    rebuild().unwrap_or_else(|| pkcs8.to_vec())
}

fn pem(typ: &str, bytes: Vec<u8>) -> String {
    pem_encode(&PemBlock {
        typ: typ.into(),
        headers: vec![],
        bytes,
    })
}

fn pkcs12_key(pass: &str, input: &[u8]) -> Result<String, String> {
    let (key, _, _) = decode_chain(input, pass)
        .map_err(|e| format!("unable to decode pkcs12 with password: {e}"))?;
    Ok(pem("PRIVATE KEY", key))
}

fn pkcs12_cert(pass: &str, input: &[u8]) -> Result<String, String> {
    let (_, leaf, cas) = decode_chain(input, pass)
        .map_err(|e| format!("unable to decode pkcs12 certificate with password: {e}"))?;
    let mut out = pem("CERTIFICATE", leaf);
    for ca in cas {
        out.push_str(&pem("CERTIFICATE", ca));
    }
    // ESO orders the chain leaf-first when it can, and otherwise keeps the bag order.
    match super::eso::ordered_chain_pem(out.as_bytes()) {
        Ok(ordered) => Ok(ordered),
        Err(_) => Ok(out),
    }
}

/// ESO's `parsePrivateKey`: PKCS#1 RSA, PKCS#8, or SEC1 EC, as PKCS#8 DER.
fn private_key_pkcs8(key_pem: &[u8]) -> Result<Vec<u8>, String> {
    let (block, _) = pem_decode(key_pem);
    let block = block.ok_or("failed to decode PEM block containing the private key")?;
    let b = block.bytes;
    let (outer, _) = der::read(&b).ok_or("unable to parse private key type")?;
    let fields = der::children(outer.content).ok_or("unable to parse private key type")?;
    match fields.get(1).map(|f| f.tag) {
        // PKCS#8: version, AlgorithmIdentifier (SEQUENCE), key.
        Some(0x30) => Ok(canonical_pkcs8(&b)),
        // PKCS#1 RSAPrivateKey: version, modulus (INTEGER), ...
        Some(0x02) => Ok(der::seq(&[
            &der::uint(&[0]),
            &der::seq(&[der::OID_RSA, der::NULL]),
            &der::octets(&b),
        ])),
        // SEC1 ECPrivateKey: version, privateKey (OCTET STRING), [0] curve, [1] public key.
        Some(0x04) => {
            let curve = fields
                .iter()
                .find(|f| f.tag == 0xa0)
                .ok_or("unable to parse private key type")?;
            let public = fields
                .iter()
                .find(|f| f.tag == 0xa1)
                .ok_or("unable to parse private key type")?;
            let inner = der::seq(&[
                &der::uint(&[1]),
                &der::tlv(0x04, fields[1].content),
                &der::tlv(0xa1, public.content),
            ]);
            let alg = der::seq(&[der::OID_EC, curve.content]);
            Ok(der::seq(&[&der::uint(&[0]), &alg, &der::octets(&inner)]))
        }
        _ => Err("unable to parse private key type".into()),
    }
}

fn all_cert_ders(pem_bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = pem_bytes;
    while !rest.is_empty() {
        let (block, r) = pem_decode(rest);
        let Some(block) = block else {
            if out.is_empty() {
                return Err("failed to decode PEM block containing the certificate".into());
            }
            break;
        };
        super::der::parse_cert(&block.bytes)?;
        out.push(block.bytes);
        rest = r;
    }
    Ok(out)
}

fn cert(der_bytes: &[u8]) -> Result<Certificate, String> {
    Certificate::from_der(der_bytes).map_err(|e| format!("x509: {e}"))
}

fn encode(store: &KeyStore, pass: &str) -> Result<String, String> {
    let pfx = store
        .writer(pass)
        .encryption_iterations(2048)
        .mac_iterations(2048)
        .write()
        .map_err(|e| format!("pkcs12: {e}"))?;
    Ok(super::sprig::b64_encode(&pfx))
}

/// `pemToPkcs12Pass` (only the first certificate) and `fullPemToPkcs12Pass` (all of them).
fn pem_to_pkcs12(
    cert_pem: &[u8],
    key_pem: &[u8],
    pass: &str,
    full: bool,
) -> Result<String, String> {
    let ders = all_cert_ders(cert_pem)?;
    let take = if full { ders.len() } else { 1 };
    let certs: Vec<Certificate> = ders
        .iter()
        .take(take)
        .map(|d| cert(d))
        .collect::<Result<_, _>>()?;
    let key =
        PrivateKey::from_der(&private_key_pkcs8(key_pem)?).map_err(|e| format!("pkcs12: {e}"))?;
    let mut store = KeyStore::new();
    let chain = PrivateKeyChain::new(vec![1u8; 20], key, certs);
    store.add_entry("1", KeyStoreEntry::PrivateKeyChain(chain));
    encode(&store, pass)
}

fn truststore(cert_pem: &[u8], pass: &str) -> Result<String, String> {
    let mut store = KeyStore::new();
    for (i, d) in all_cert_ders(cert_pem)?.iter().enumerate() {
        store.add_entry(&i.to_string(), KeyStoreEntry::Certificate(cert(d)?));
    }
    encode(&store, pass)
}

/// ESO's `rsaDecrypt(scheme, hash, ciphertext, privateKeyPEM)`.
fn rsa_decrypt(scheme: &str, hash: &str, input: &[u8], key_pem: &[u8]) -> Result<Vec<u8>, String> {
    use rsa::pkcs8::DecodePrivateKey as _;
    match scheme {
        "None" => return Ok(input.to_vec()),
        "RSA-OAEP" => {}
        other => return Err(format!("decryption scheme {other} is not supported")),
    }
    let (block, _) = pem_decode(key_pem);
    let block = block.ok_or("failed to decode PEM block")?;
    let pkcs8 = private_key_pkcs8(&pem(&block.typ, block.bytes).into_bytes())
        .map_err(|e| format!("could not parse private key: {e}"))?;
    let key = rsa::PrivateKey::from_pkcs8_der(&pkcs8)
        .map_err(|_| "could not parse RSA private key".to_string())?;
    let padding = match hash {
        "SHA1" => rsa::Oaep::<sha1_11::Sha1>::new(),
        "SHA512" => {
            return key
                .decrypt(rsa::Oaep::<sha2_11::Sha512>::new(), input)
                .map_err(rsa_error);
        }
        _ => {
            return key
                .decrypt(rsa::Oaep::<sha2_11::Sha256>::new(), input)
                .map_err(rsa_error);
        }
    };
    key.decrypt(padding, input).map_err(rsa_error)
}

pub(crate) fn register(r: &mut Registry) {
    reg(r, "pkcs12key", 1, |a| {
        Ok(Value::str(pkcs12_key("", s(&a[0])?)?))
    });
    reg(r, "pkcs12keyPass", 2, |a| {
        Ok(Value::str(pkcs12_key(&st(&a[0])?, s(&a[1])?)?))
    });
    reg(r, "pkcs12cert", 1, |a| {
        Ok(Value::str(pkcs12_cert("", s(&a[0])?)?))
    });
    reg(r, "pkcs12certPass", 2, |a| {
        Ok(Value::str(pkcs12_cert(&st(&a[0])?, s(&a[1])?)?))
    });
    reg(r, "pemToPkcs12", 2, |a| {
        Ok(Value::str(pem_to_pkcs12(s(&a[0])?, s(&a[1])?, "", false)?))
    });
    reg(r, "pemToPkcs12Pass", 3, |a| {
        Ok(Value::str(pem_to_pkcs12(
            s(&a[0])?,
            s(&a[1])?,
            &st(&a[2])?,
            false,
        )?))
    });
    reg(r, "fullPemToPkcs12", 2, |a| {
        Ok(Value::str(pem_to_pkcs12(s(&a[0])?, s(&a[1])?, "", true)?))
    });
    reg(r, "fullPemToPkcs12Pass", 3, |a| {
        Ok(Value::str(pem_to_pkcs12(
            s(&a[0])?,
            s(&a[1])?,
            &st(&a[2])?,
            true,
        )?))
    });
    reg(r, "pemTruststoreToPKCS12", 1, |a| {
        Ok(Value::str(truststore(s(&a[0])?, "")?))
    });
    reg(r, "pemTruststoreToPKCS12Pass", 2, |a| {
        Ok(Value::str(truststore(s(&a[0])?, &st(&a[1])?)?))
    });
    reg(r, "rsaDecrypt", 4, |a| {
        Ok(Value::Str(rsa_decrypt(
            &st(&a[0])?,
            &st(&a[1])?,
            s(&a[2])?,
            s(&a[3])?,
        )?))
    });
}

fn rsa_error(_: rsa::Error) -> String {
    // Go's crypto/rsa deliberately reports every OAEP failure the same way.
    "error decrypting data with RSA: crypto/rsa: decryption error".to_string()
}
