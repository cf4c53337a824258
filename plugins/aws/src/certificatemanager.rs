//! Reads from AWS Certificate Manager with ESO's semantics (`service: CertificateManager`):
//! `remoteRef.key` is the certificate's ARN (no prefix), the value is one PEM bundle
//! (certificate, chain, then the private key decrypted to unencrypted PKCS#8), ready for a
//! `kubernetes.io/tls` template.
//!
//! One read: GetCertificate (free) gives the certificate and chain, whose fingerprint decides
//! whether the last export still holds; only when it changed (or on the first read) are
//! DescribeCertificate (is it exportable?) and ExportCertificate (a paid call) made. The export
//! is encrypted with a passphrase made up for that call and decrypted here, so the key never
//! crosses the network unencrypted and the passphrase never leaves the plugin.

use std::cell::RefCell;
use std::collections::HashMap;

use aws_sdk_acm::Client;
use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::{CertificateExport, CertificateType};
use esox_plugin_sdk::Error;
use pkcs8::der::pem::LineEnding;
use pkcs8::{EncryptedPrivateKeyInfoRef, der::Decode};

use crate::errors;

/// ESO's answer for the operations ACM does not serve (`find`, maps).
pub const NOT_IMPLEMENTED: &str = "operation not supported by AWS Certificate Manager provider";

/// Exports kept per client: ESO's 128 (ExportCertificate is billed per call).
pub const EXPORT_CACHE_SIZE: usize = 128;

/// Passphrase length and alphabet: ESO's (ACM refuses `#`, `$` and `%`).
const PASSPHRASE_LEN: usize = 32;
const PASSPHRASE_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The last export of each certificate, keyed by ARN, with the fingerprint of the certificate
/// and chain it was made from.
#[derive(Default)]
pub struct ExportCache {
    entries: RefCell<HashMap<String, (String, Vec<u8>)>>,
}

impl ExportCache {
    fn get(&self, arn: &str, fingerprint: &str) -> Option<Vec<u8>> {
        self.entries
            .borrow()
            .get(arn)
            .filter(|(f, _)| f == fingerprint)
            .map(|(_, pem)| pem.clone())
    }

    fn put(&self, arn: &str, fingerprint: String, pem: Vec<u8>) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= EXPORT_CACHE_SIZE && !entries.contains_key(arn) {
            // Bounded: drop an arbitrary entry (it is only re-exported when read again).
            if let Some(k) = entries.keys().next().cloned() {
                entries.remove(&k);
            }
        }
        entries.insert(arn.to_string(), (fingerprint, pem));
    }

    /// How many exports are kept.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// ESO's fingerprint: SHA-256 of the certificate and the chain, each without trailing line
/// breaks, hex.
pub fn fingerprint(certificate: &str, chain: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(certificate.trim_end_matches(['\r', '\n']).as_bytes());
    let chain = chain.trim_end_matches(['\r', '\n']);
    if !chain.is_empty() {
        h.update(chain.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A passphrase of ESO's shape from the host's randomness.
fn passphrase() -> Result<Vec<u8>, Error> {
    let mut raw = [0u8; PASSPHRASE_LEN];
    getrandom::fill(&mut raw)
        .map_err(|e| Error::backend(format!("no randomness for the export passphrase: {e}")))?;
    Ok(raw
        .iter()
        .map(|b| PASSPHRASE_CHARS[*b as usize % PASSPHRASE_CHARS.len()])
        .collect())
}

/// The exported private key as unencrypted PKCS#8 PEM: an `ENCRYPTED PRIVATE KEY` is decrypted
/// with `passphrase`, a plain `PRIVATE KEY` is kept as it is (ESO's `decryptPKCS8PEM`).
/// Errors never quote the key.
pub fn decrypt_private_key(pem: &str, passphrase: &[u8]) -> Result<String, Error> {
    let (label, der) = pkcs8::der::pem::decode_vec(pem.trim().as_bytes()).map_err(|_| {
        Error::backend("failed to decrypt exported private key: failed to decode PEM block")
    })?;
    match label {
        "PRIVATE KEY" => Ok(pem.to_string()),
        "ENCRYPTED PRIVATE KEY" => {
            let info = EncryptedPrivateKeyInfoRef::from_der(&der).map_err(|e| {
                Error::backend(format!(
                    "failed to decrypt exported private key: not PKCS#8: {e}"
                ))
            })?;
            let document = info.decrypt(passphrase).map_err(|e| {
                Error::backend(format!(
                    "failed to decrypt exported private key: failed to decrypt PKCS#8 private key: {e}"
                ))
            })?;
            let pem = document
                .to_pem("PRIVATE KEY", LineEnding::LF)
                .map_err(|e| {
                    Error::backend(format!("failed to encode the decrypted private key: {e}"))
                })?;
            Ok(pem.to_string())
        }
        other => Err(Error::backend(format!(
            "failed to decrypt exported private key: unexpected PEM type: {other}"
        ))),
    }
}

/// ESO's bundle: certificate, chain and key, each without trailing line breaks, joined by a
/// newline, with one final newline.
pub fn bundle(certificate: Option<&str>, chain: Option<&str>, key: Option<&str>) -> Vec<u8> {
    let parts: Vec<&str> = [certificate, chain, key]
        .into_iter()
        .flatten()
        .map(|p| p.trim_end_matches(['\r', '\n']))
        .collect();
    if parts.is_empty() {
        return Vec::new();
    }
    format!("{}\n", parts.join("\n")).into_bytes()
}

/// The PEM bundle of the certificate `arn`: from `cache` while its certificate and chain are
/// unchanged, else exported anew.
pub async fn get_value(client: &Client, cache: &ExportCache, arn: &str) -> Result<Vec<u8>, Error> {
    if arn.is_empty() {
        return Err(Error::invalid_config(
            "",
            "certificate ARN must be specified in remoteRef.key",
        ));
    }
    let current = client
        .get_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(|e| errors::from_sdk("acm:GetCertificate", &e))?;
    let print = fingerprint(
        current.certificate().unwrap_or_default(),
        current.certificate_chain().unwrap_or_default(),
    );
    if let Some(pem) = cache.get(arn, &print) {
        return Ok(pem);
    }
    let described = client
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(|e| errors::from_sdk("acm:DescribeCertificate", &e))?;
    let detail = described.certificate();
    let export_enabled = detail
        .and_then(|d| d.options())
        .and_then(|o| o.export())
        .is_some_and(|e| *e == CertificateExport::Enabled);
    // Private certificates (issued by AWS Private CA) can always be exported.
    let private = detail
        .and_then(|d| d.r#type())
        .is_some_and(|t| *t == CertificateType::Private);
    if !export_enabled && !private {
        return Err(Error::invalid_config(
            "",
            format!("certificate {arn} is not exportable (Options.Export is not ENABLED)"),
        ));
    }
    let passphrase = passphrase()?;
    let exported = client
        .export_certificate()
        .certificate_arn(arn)
        .passphrase(Blob::new(passphrase.clone()))
        .send()
        .await
        .map_err(|e| errors::from_sdk("acm:ExportCertificate", &e))?;
    let key = exported
        .private_key()
        .map(|k| decrypt_private_key(k, &passphrase))
        .transpose()?;
    let pem = bundle(
        exported.certificate(),
        exported.certificate_chain(),
        key.as_deref(),
    );
    if pem.is_empty() {
        return Err(Error::backend(format!(
            "no data returned from ExportCertificate for {arn}"
        )));
    }
    cache.put(arn, print, pem.clone());
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway P-256 test key as PKCS#8, encrypted with PBES2 (PBKDF2-HMAC-SHA256,
    /// AES-256-CBC) under the passphrase "correcthorsebatterystaple" by Python's `cryptography`
    /// (`BestAvailableEncryption`): exactly what LocalStack's ExportCertificate returns.
    const ENCRYPTED_KEY: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIH0MF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBC+/4iWkFm49zVfkU93
zosmAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQHhwKVeKUcVWPbyPd
EF6gFgSBkMRzWHmkWRlWPxj+fdXFaMhu9tlPadm8AHqGWhiTWjgdM/6Jk93R3iEK
VqaNXistKn0lMoaw6CPKCZEQ8NNoVIFNywDEErcBZM0j5iPkyzyHGm0sEg5yA/W2
18SNQl1qL473/HSZBidqBz1KTuGqzHUVTJzsLyAapoJJJlRS++6F2pk9cY0dfgVR
Wz0aclQ5gg==
-----END ENCRYPTED PRIVATE KEY-----
";

    /// The same key, unencrypted (`openssl genpkey`).
    const PLAIN_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUW2XNBg29SsBfyKo
vCnDjchr9BrDcZwzG1lmJh+S1SOhRANCAAQ7CK7uuNkYmKMTIRr9yVLei+F+7nge
g9rUQ5lLKf48v4w4lwIuAZnnaKIaUHbgx5RoVG19iQ3GurKSZVtHjgxl
-----END PRIVATE KEY-----
";

    fn encrypted_fixture() -> (String, String) {
        (ENCRYPTED_KEY.to_string(), PLAIN_KEY.to_string())
    }

    #[test]
    fn an_encrypted_export_is_decrypted_to_the_plain_pkcs8_key() {
        let (encrypted, plain) = encrypted_fixture();
        assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let key = decrypt_private_key(&encrypted, b"correcthorsebatterystaple").unwrap();
        assert_eq!(key, plain);
    }

    #[test]
    fn a_wrong_passphrase_or_a_strange_pem_fails_without_quoting_the_key() {
        let (encrypted, _) = encrypted_fixture();
        let err = decrypt_private_key(&encrypted, b"wrong").unwrap_err();
        let text = format!("{err:?}");
        assert!(
            text.contains("failed to decrypt PKCS#8 private key"),
            "{text}"
        );
        assert!(!text.contains("MIG"), "{text}");
        let err = decrypt_private_key("not a pem", b"x").unwrap_err();
        assert!(format!("{err:?}").contains("failed to decode PEM block"));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = decrypt_private_key(cert, b"x").unwrap_err();
        assert!(format!("{err:?}").contains("unexpected PEM type: CERTIFICATE"));
        // A plain key passes as it is (ESO's behaviour).
        assert_eq!(decrypt_private_key(PLAIN_KEY, b"x").unwrap(), PLAIN_KEY);
    }

    #[test]
    fn the_bundle_is_certificate_chain_key_with_one_final_newline() {
        assert_eq!(
            bundle(Some("C\n"), Some("H\r\n"), Some("K\n")),
            b"C\nH\nK\n".to_vec()
        );
        assert_eq!(bundle(Some("C"), None, None), b"C\n".to_vec());
        assert!(bundle(None, None, None).is_empty());
    }

    #[test]
    fn the_fingerprint_is_esos_and_ignores_trailing_line_breaks() {
        assert_eq!(fingerprint("a\n", ""), fingerprint("a", "\r\n"));
        assert_ne!(fingerprint("a", "b"), fingerprint("a", ""));
        // sha256("ab"): certificate and chain concatenated.
        assert_eq!(
            fingerprint("a", "b"),
            "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603"
        );
    }

    #[test]
    fn passphrases_have_esos_shape_and_differ() {
        let a = passphrase().unwrap();
        let b = passphrase().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.iter().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_export_cache_serves_only_an_unchanged_certificate_and_stays_bounded() {
        let cache = ExportCache::default();
        cache.put("arn:1", "f1".into(), b"pem".to_vec());
        assert_eq!(cache.get("arn:1", "f1"), Some(b"pem".to_vec()));
        assert_eq!(cache.get("arn:1", "f2"), None, "renewed: export again");
        for i in 0..EXPORT_CACHE_SIZE + 10 {
            cache.put(&format!("arn:x{i}"), "f".into(), vec![]);
        }
        assert_eq!(cache.len(), EXPORT_CACHE_SIZE);
    }
}
