//! Keys and certificates the local backend generates for each stack: one CA, the API server's
//! serving certificate for 127.0.0.1, client certificates for the admin and the
//! controller-manager, and the ServiceAccount token signing key. All ECDSA P-256, pure Rust
//! (rcgen), written as PEM files into the stack's temp folder.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
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

/// A client certificate and its key, as files and as PEM text.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
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
        serving_cert: write(dir, "apiserver.crt", &serving_cert.pem())?,
        serving_key: write(dir, "apiserver.key", &serving_key.serialize_pem())?,
        service_account_key: write(dir, "sa.key", &sa_key.serialize_pem())?,
        service_account_public_key: write(dir, "sa.pub", &sa_key.public_key_pem())?,
        ca_cert_pem,
        admin,
        controller_manager,
    })
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
    }
}
