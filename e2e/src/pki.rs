//! Keys and certificates the local backend generates for each stack: one CA (its key too, so
//! kube-controller-manager signs CertificateSigningRequests with it), the API server's serving
//! certificate for 127.0.0.1, client certificates for the admin and the controller-manager, and
//! the ServiceAccount token signing key. All ECDSA P-256, pure Rust (rcgen), written as PEM files
//! into the stack's temp folder. Also [`client_key_and_csr`]: a key and a PKCS#10 request for a
//! Kubernetes user and its groups, for the CertificateSigningRequest API.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData as _, SanType, SigningKey as _,
};

/// Why the stack's keys and certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot generate a key or certificate: {0}; this is a harness bug, please report it")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}; check that the temp folder is writable")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// PEM file paths of everything [`generate`] wrote, plus the PEM texts kubeconfigs embed.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_cert_pem: String,
    /// The CA's private key (PKCS#8 PEM): kube-controller-manager's `--cluster-signing-key-file`,
    /// so certificates issued through the CertificateSigningRequest API chain to the CA the API
    /// server's `--client-ca-file` trusts.
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    /// `system:masters` member: full access, for tests and the person at the keyboard.
    pub admin: ClientCert,
    /// The controller-manager's identity (also in `system:masters`: it runs the garbage
    /// collector, which touches every resource type).
    pub controller_manager: ClientCert,
    /// Private key (PKCS#8) that signs ServiceAccount tokens.
    pub service_account_key: PathBuf,
    /// Its public key (SPKI). Separate because kube-apiserver's `--service-account-key-file`
    /// derives public keys only from PKCS#1/SEC1 private keys, not PKCS#8.
    pub service_account_public_key: PathBuf,
}

/// A client certificate and its private key, as PEM text (`Debug` leaves the key out).
#[derive(Clone)]
pub struct ClientCert {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// Its private key, PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, PkiError> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|source| PkiError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Generates a fresh CA and every certificate and key the local control plane needs into `dir`.
pub fn generate(dir: &Path) -> Result<Pki, PkiError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "esox-e2e-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let ca_cert_pem = ca.pem();

    let serving_key = KeyPair::generate()?;
    let mut serving = CertificateParams::new(vec![
        "localhost".to_owned(),
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
    ])?;
    serving
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving.signed_by(&serving_key, &ca)?;

    let client = |user: &str, group: &str| -> Result<ClientCert, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, user);
        params
            .distinguished_name
            .push(DnType::OrganizationName, group);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &ca)?;
        Ok(ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    };
    let admin = client("esox-e2e-admin", "system:masters")?;
    let controller_manager = client("system:kube-controller-manager", "system:masters")?;

    let sa_key = KeyPair::generate()?;
    Ok(Pki {
        ca_cert: write(dir, "ca.crt", &ca_cert_pem)?,
        ca_key: write(dir, "ca.key", &ca.key().serialize_pem())?,
        serving_cert: write(dir, "apiserver.crt", &serving_cert.pem())?,
        serving_key: write(dir, "apiserver.key", &serving_key.serialize_pem())?,
        service_account_key: write(dir, "sa.key", &sa_key.serialize_pem())?,
        service_account_public_key: write(dir, "sa.pub", &sa_key.public_key_pem())?,
        ca_cert_pem,
        admin,
        controller_manager,
    })
}

/// A fresh ECDSA P-256 key and a PKCS#10 certificate request for Kubernetes user `user` in
/// `groups` (subject `O=<group>` for each group, then `CN=<user>`), as `(csr_pem, key_pem)`.
///
/// Hand-encoded DER: rcgen's distinguished names hold one value per attribute type, and a
/// Kubernetes user in two groups needs two `O` attributes.
pub fn client_key_and_csr(user: &str, groups: &[&str]) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut subject = Vec::new();
    for group in groups {
        subject.extend(rdn(OID_ORGANIZATION, group));
    }
    subject.extend(rdn(OID_COMMON_NAME, user));
    let info = der(
        SEQUENCE,
        &[
            der(INTEGER, &[0]),
            der(SEQUENCE, &subject),
            key.subject_public_key_info(),
            // attributes [0] IMPLICIT SET OF Attribute: none.
            der(CONTEXT_0, &[]),
        ]
        .concat(),
    );
    let signature = key.sign(&info)?;
    let csr = der(
        SEQUENCE,
        &[
            info,
            der(SEQUENCE, &der(OID, OID_ECDSA_WITH_SHA256)),
            der(BIT_STRING, &[&[0u8][..], &signature].concat()),
        ]
        .concat(),
    );
    Ok((pem("CERTIFICATE REQUEST", &csr), key.serialize_pem()))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const CONTEXT_0: u8 = 0xa0;
/// 2.5.4.3
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.4.10
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
/// 1.2.840.10045.4.3.2
const OID_ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

/// One DER TLV.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A RelativeDistinguishedName with one UTF8String attribute.
fn rdn(oid: &[u8], value: &str) -> Vec<u8> {
    der(
        SET,
        &der(
            SEQUENCE,
            &[der(OID, oid), der(UTF8_STRING, value.as_bytes())].concat(),
        ),
    )
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_writes_pem_files_for_the_control_plane() {
        let dir = tempfile::tempdir().unwrap();
        let pki = generate(dir.path()).unwrap();
        for path in [&pki.ca_cert, &pki.serving_cert] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{path:?}");
        }
        for path in [&pki.serving_key, &pki.service_account_key] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{path:?}");
        }
        assert!(
            pki.admin
                .cert_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert_ne!(pki.admin.key_pem, pki.controller_manager.key_pem);
        let ca_key = std::fs::read_to_string(&pki.ca_key).unwrap();
        assert!(ca_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        // The key file holds the CA certificate's key pair: its public key is in the certificate.
        let ca_spki = KeyPair::from_pem(&ca_key)
            .unwrap()
            .subject_public_key_info();
        let body: String = pki
            .ca_cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let ca_der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert!(ca_der.windows(ca_spki.len()).any(|w| w == ca_spki));
    }

    #[test]
    fn client_cert_debug_leaves_the_key_out() {
        let cert = ClientCert {
            cert_pem: "CERT".into(),
            key_pem: "very-private".into(),
        };
        let printed = format!("{cert:?}");
        assert!(printed.contains("CERT"), "{printed}");
        assert!(!printed.contains("very-private"), "{printed}");
    }

    /// Splits one DER TLV off `input`: (tag, content, rest).
    fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = input[0];
        let (len, header) = if input[1] < 0x80 {
            (input[1] as usize, 2)
        } else {
            let n = (input[1] & 0x7f) as usize;
            let len = input[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + n)
        };
        (tag, &input[header..header + len], &input[header + len..])
    }

    #[test]
    fn csr_names_user_and_every_group_and_its_signature_verifies() {
        let (csr_pem, key_pem) =
            client_key_and_csr("esox-e2e-user", &["group-a", "group-b"]).unwrap();
        assert!(csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let body: String = csr_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let csr = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();

        let (tag, content, rest) = tlv(&csr);
        assert_eq!((tag, rest.len()), (SEQUENCE, 0));
        let info_len = content.len() - tlv(content).2.len();
        let signed = &content[..info_len];
        let (_, info, after_info) = tlv(content);
        let (tag, alg, after_alg) = tlv(after_info);
        assert_eq!(tag, SEQUENCE);
        assert_eq!(alg, der(OID, OID_ECDSA_WITH_SHA256));
        let (tag, bits, rest) = tlv(after_alg);
        assert_eq!((tag, bits[0], rest.len()), (BIT_STRING, 0, 0));

        // version 0, then the subject: O=group-a, O=group-b, CN=esox-e2e-user.
        let (_, version, after_version) = tlv(info);
        assert_eq!(version, [0]);
        let (tag, subject, after_subject) = tlv(after_version);
        assert_eq!(tag, SEQUENCE);
        let expected = [
            rdn(OID_ORGANIZATION, "group-a"),
            rdn(OID_ORGANIZATION, "group-b"),
            rdn(OID_COMMON_NAME, "esox-e2e-user"),
        ]
        .concat();
        assert_eq!(subject, expected);

        // The embedded public key is the returned key's, and it verifies the signature.
        let key = KeyPair::from_pem(&key_pem).unwrap();
        let spki = key.subject_public_key_info();
        assert!(after_subject.starts_with(&spki));
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let (_, verifiers) = algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == rustls::SignatureScheme::ECDSA_NISTP256_SHA256)
            .unwrap();
        let verifier = verifiers
            .iter()
            .find(|v| v.public_key_alg_id() == rustls::pki_types::alg_id::ECDSA_P256)
            .unwrap();
        verifier
            .verify_signature(key.public_key_raw(), signed, &bits[1..])
            .expect("the CSR's signature verifies with its own public key");
        // A tampered request does not.
        let mut tampered = signed.to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(
            verifier
                .verify_signature(key.public_key_raw(), &tampered, &bits[1..])
                .is_err()
        );
    }

    #[test]
    fn der_lengths_use_the_long_form_past_127_bytes() {
        assert_eq!(der(0x04, &[7; 3]), [0x04, 3, 7, 7, 7]);
        let long = der(0x04, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = der(0x04, &[0; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
