//! ESO's `vault` provider as an esox plugin: HashiCorp Vault and OpenBao KV v1 and v2 over
//! Vault's HTTP API, inside the wasm sandbox (HTTP over wasi:http).
//!
//! The store spec is ESO's `spec.provider.vault` ([`config`]). Credentials come only through
//! the host: a token or a login secret from a referenced Secret key, or a ServiceAccount token
//! the host mints (Kubernetes and JWT auth); the plugin logs in with `POST auth/<mount>/login`
//! ([`auth`]) and reuses the token until shortly before it expires ([`client`]). Keys map to
//! Vault paths as ESO maps them, and answers decode and render as ESO renders them ([`kv`]);
//! statuses map to contract errors in one place ([`errors`]). PushSecret writes, deletes and
//! checks as ESO does, under ESO's `managed-by: external-secrets` marker ([`push`]).
//!
//! TLS trust is the host's: it trusts the CA at `caProvider` and the inline `caBundle` for the
//! store's requests. Client certificates are the host's too: it reads the pair at
//! `auth.cert.clientCert`/`auth.cert.secretRef` (cert auth), else at
//! `tls.certSecretRef`/`tls.keySecretRef` (mutual TLS), and presents it in every TLS handshake
//! of the store's requests; the plugin never sees the private key. The store's origin derives
//! from `server`; the operator grants it (the plugin has no default egress).

pub mod auth;
pub mod client;
pub mod config;
pub mod errors;
pub mod kv;
pub mod push;

use esox_plugin_sdk::{
    Capabilities, ClientCertificate, Error, PluginInfo, Provider, Reference, Settings,
    StoreContext, export_provider, serde_json,
};

use client::VaultClient;
use config::VaultConfig;

/// The `vault` provider.
pub struct Vault;

impl Provider for Vault {
    type Client = VaultClient;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "vault",
            env!("CARGO_PKG_VERSION"),
            "HashiCorp Vault and OpenBao KV v1/v2 (ESO's vault provider)",
        )
        .capabilities(Capabilities::READ | Capabilities::FIND | Capabilities::WRITE)
        .config_schema(config_schema())
        .references(references())
        .client_certificates(client_certificates())
    }

    fn validate_config(config: &serde_json::Value) -> Result<(), Error> {
        VaultConfig::parse(config).map(|_| ()).map_err(Error::from)
    }

    fn egress(config: &serde_json::Value, _settings: &Settings) -> Result<Vec<String>, Error> {
        Ok(vec![VaultConfig::parse(config)?.origin])
    }

    fn open(
        config: serde_json::Value,
        _settings: Settings,
        store: &StoreContext,
    ) -> Result<VaultClient, Error> {
        let config = VaultConfig::parse(&config)?;
        config.check_store(store)?;
        Ok(VaultClient::new(config, store.clone()))
    }
}

/// Where `spec.provider.vault` references Kubernetes objects: the Secret keys of each auth
/// method, the ServiceAccounts of Kubernetes and JWT auth (JWT tokens are for audience `vault`
/// by default, as in ESO), and the CA of the server's certificate.
pub fn references() -> Vec<Reference> {
    vec![
        Reference::secret_key("auth.tokenSecretRef"),
        Reference::secret_key("auth.appRole.roleRef"),
        Reference::secret_key("auth.appRole.secretRef"),
        Reference::secret_key("auth.kubernetes.secretRef"),
        Reference::service_account("auth.kubernetes.serviceAccountRef", Vec::<String>::new()),
        Reference::secret_key("auth.ldap.secretRef"),
        Reference::secret_key("auth.userPass.secretRef"),
        Reference::secret_key("auth.jwt.secretRef"),
        Reference::service_account(
            "auth.jwt.kubernetesServiceAccountToken.serviceAccountRef",
            [config::DEFAULT_JWT_AUDIENCE],
        ),
        Reference::ca_provider("caProvider"),
    ]
}

/// Where `spec.provider.vault` names client certificates, the host presenting the first pair a
/// store sets: `auth.cert`'s (cert auth) before `tls`'s, as in ESO, where the cert login's
/// certificate replaces the `tls` one in the handshake. ESO's keys: `auth.cert` names both;
/// `tls` defaults them to `tls.crt` and `tls.key`, as the host does.
pub fn client_certificates() -> Vec<ClientCertificate> {
    vec![
        ClientCertificate::new("auth.cert.clientCert", "auth.cert.secretRef"),
        ClientCertificate::new("tls.certSecretRef", "tls.keySecretRef"),
    ]
}

/// Compile a `find.name.regexp` (RE2 syntax in ESO; Rust's `regex` is RE2-compatible).
pub(crate) fn compile_regexp(pattern: Option<&str>) -> Result<Option<regex::Regex>, Error> {
    pattern
        .map(|p| {
            regex::Regex::new(p).map_err(|e| {
                Error::invalid_config(
                    "",
                    format!("find.name.regexp {p:?} is not a valid regexp: {e}"),
                )
            })
        })
        .transpose()
}

/// The JSON Schema of `spec.provider.vault`: ESO's fields and constraints. The same file is the
/// CRDs' schema of this key (`runtime/api` includes it), so the API server and the plugin
/// agree on the shape by construction.
pub const CONFIG_SCHEMA: &str = include_str!("../schema.json");

/// [`CONFIG_SCHEMA`], parsed.
pub fn config_schema() -> serde_json::Value {
    serde_json::from_str(CONFIG_SCHEMA).expect("schema.json is JSON")
}

export_provider!(Vault);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn info_declares_read_find_and_write_and_no_default_egress() {
        let info = Vault::info();
        assert_eq!(info.name, "vault");
        assert_eq!(
            info.capabilities,
            Capabilities::READ | Capabilities::FIND | Capabilities::WRITE
        );
        assert!(info.default_egress.is_empty());
        assert!(!info.wants_ambient_identity);
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(schema["properties"]["version"]["enum"], json!(["v1", "v2"]));
    }

    #[test]
    fn every_declared_reference_is_in_the_schema() {
        let info = Vault::info();
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        for r in &info.references {
            let mut node = &schema;
            for part in r.path.split('.') {
                node = &node["properties"][part];
            }
            assert!(node.is_object(), "{} is not in the schema", r.path);
        }
        let jwt_sa = info
            .references
            .iter()
            .find(|r| r.path == "auth.jwt.kubernetesServiceAccountToken.serviceAccountRef")
            .unwrap();
        assert_eq!(jwt_sa.audiences, ["vault"]);
        assert!(matches!(
            jwt_sa.kind,
            esox_plugin_sdk::ReferenceKind::ServiceAccount
        ));
        assert!(info.references.iter().any(|r| r.path == "caProvider"
            && matches!(r.kind, esox_plugin_sdk::ReferenceKind::CaProvider)));
    }

    #[test]
    fn info_declares_the_cert_auth_pair_before_the_tls_pair() {
        let info = Vault::info();
        let pairs: Vec<(&str, &str)> = info
            .client_certificates
            .iter()
            .map(|p| (p.certificate.as_str(), p.private_key.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("auth.cert.clientCert", "auth.cert.secretRef"),
                ("tls.certSecretRef", "tls.keySecretRef")
            ]
        );
        // Every path is a selector of the schema, and none is a reference the plugin may read.
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        for path in pairs.iter().flat_map(|(c, k)| [*c, *k]) {
            let mut node = &schema;
            for part in path.split('.') {
                node = &node["properties"][part];
            }
            assert!(node["properties"]["name"].is_object(), "{path}");
            assert!(info.references.iter().all(|r| r.path != path), "{path}");
        }
    }

    #[test]
    fn egress_is_the_servers_origin_only() {
        let s = Settings::default();
        assert_eq!(
            Vault::egress(
                &json!({"server": "https://Vault.example.com:8200/sub/path"}),
                &s
            )
            .unwrap(),
            ["https://vault.example.com:8200"]
        );
        assert_eq!(
            Vault::egress(&json!({"server": "http://127.0.0.1:8200"}), &s).unwrap(),
            ["http://127.0.0.1:8200"]
        );
        assert!(matches!(
            Vault::egress(&json!({"server": "vault:8200"}), &s),
            Err(Error::InvalidConfig(c)) if c.field == "server"
        ));
    }

    #[test]
    fn validate_config_reports_fields() {
        assert!(Vault::validate_config(&json!({"server": "https://v", "path": "secret"})).is_ok());
        assert!(matches!(
            Vault::validate_config(&json!({"server": "https://v", "auth": {"iam": {}}})),
            Err(Error::InvalidConfig(c)) if c.field == "auth.iam"
        ));
        // Client certificates: cert auth and mutual TLS, together or apart, over https only.
        let pair = |cert: &str, key: &str| json!({"clientCert": {"name": cert, "key": "tls.crt"}, "secretRef": {"name": key, "key": "tls.key"}});
        let tls = json!({"certSecretRef": {"name": "mtls"}, "keySecretRef": {"name": "mtls"}});
        assert!(
            Vault::validate_config(
                &json!({"server": "https://v", "auth": {"cert": pair("c", "c")}})
            )
            .is_ok()
        );
        assert!(
            Vault::validate_config(
                &json!({"server": "https://v", "tls": tls, "auth": {"cert": pair("c", "c")}})
            )
            .is_ok()
        );
        assert!(matches!(
            Vault::validate_config(&json!({"server": "http://v:8200", "tls": tls})),
            Err(Error::InvalidConfig(c)) if c.field == "server"
        ));
        assert!(matches!(
            Vault::validate_config(&json!({"server": "https://v", "tls": {"certSecretRef": {"name": "mtls"}}})),
            Err(Error::InvalidConfig(c)) if c.field == "tls.keySecretRef"
        ));
    }

    #[test]
    fn an_invalid_find_regexp_is_an_invalid_config_error() {
        assert!(compile_regexp(None).unwrap().is_none());
        assert!(compile_regexp(Some("^db/.*")).unwrap().is_some());
        assert!(matches!(
            compile_regexp(Some("(")),
            Err(Error::InvalidConfig(_))
        ));
    }
}
