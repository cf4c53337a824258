//! Kubeconfig files the harness writes (admin and least-privilege controller identity) and the
//! `kube::Config` values built from them, so tests, `kubectl` and the `esox` binary all use the
//! very same credentials.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// How a kubeconfig user authenticates.
pub enum Credentials<'a> {
    /// A client certificate and key (PEM): the admin of the local backend.
    ClientCert { cert_pem: &'a str, key_pem: &'a str },
    /// A bearer token: the controller's ServiceAccount token from TokenRequest.
    Token(&'a str),
}

/// Renders a single-context kubeconfig as YAML.
pub fn render(server: &str, ca_pem: &str, user: &str, credentials: Credentials<'_>) -> String {
    let user_entry = match credentials {
        Credentials::ClientCert { cert_pem, key_pem } => serde_json::json!({
            "client-certificate-data": STANDARD.encode(cert_pem),
            "client-key-data": STANDARD.encode(key_pem),
        }),
        Credentials::Token(token) => serde_json::json!({ "token": token }),
    };
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "esox-e2e",
            "cluster": { "server": server, "certificate-authority-data": STANDARD.encode(ca_pem) },
        }],
        "users": [{ "name": user, "user": user_entry }],
        "contexts": [{ "name": "esox-e2e", "context": { "cluster": "esox-e2e", "user": user } }],
        "current-context": "esox-e2e",
    });
    // Serialising a JSON value to YAML cannot fail.
    serde_yaml::to_string(&doc).unwrap_or_default()
}

/// Loads a kubeconfig file into a client configuration.
pub async fn load(path: &Path) -> anyhow::Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_kubeconfig_names_server_ca_and_token() {
        let yaml = render(
            "https://127.0.0.1:6443",
            "CA",
            "esox",
            Credentials::Token("tok"),
        );
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        assert_eq!(doc["users"][0]["user"]["token"], "tok");
        assert_eq!(doc["current-context"], "esox-e2e");
    }
}
