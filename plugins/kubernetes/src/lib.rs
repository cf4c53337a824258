//! ESO's `kubernetes` provider as an esox plugin: the Secrets of one namespace
//! (`remoteNamespace`) of a Kubernetes cluster, possibly another one, read over the API.
//!
//! The store spec is ESO's `spec.provider.kubernetes` ([`config`]). The plugin authenticates
//! with a bearer token that the host reads from the Secret at `auth.token.bearerToken`, or one
//! it mints for the ServiceAccount at `auth.serviceAccount` (for the audiences listed there),
//! or with the client certificate at `auth.cert`, which the host reads and presents in the TLS
//! handshake (the plugin never sees its private key); kubeconfigs (`authRef`) are refused. It
//! reads as ESO
//! does ([`secret`]): `GET /api/v1/namespaces/<remoteNamespace>/secrets/<key>`, and lists for
//! `dataFrom.find` ([`client`]). It pushes, deletes and checks pushed values as ESO does
//! ([`push`]): create, update with the `resourceVersion` read, or leave a Secret unchanged.
//!
//! TLS trust is the host's: it trusts the CA at `server.caProvider` and the inline
//! `server.caBundle` beside it. The origin a store calls is `server.url`'s; the operator
//! grants it (the plugin has no default egress).

pub mod client;
pub mod config;
pub mod gojson;
pub mod push;
pub mod secret;

use esox_plugin_sdk::{
    Capabilities, ClientCertificate, Error, PluginInfo, Provider, Reference, Settings,
    StoreContext, export_provider, serde_json,
};

use client::KubernetesClient;
use config::KubernetesConfig;

/// The `kubernetes` provider.
pub struct Kubernetes;

impl Provider for Kubernetes {
    type Client = KubernetesClient;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "kubernetes",
            env!("CARGO_PKG_VERSION"),
            "Secrets of a namespace of a Kubernetes cluster, read and written over its API (ESO's kubernetes provider)",
        )
        .capabilities(Capabilities::READ | Capabilities::FIND | Capabilities::WRITE)
        .config_schema(config_schema())
        .references(references())
        .client_certificates(client_certificates())
    }

    fn validate_config(config: &serde_json::Value) -> Result<(), Error> {
        KubernetesConfig::parse(config)
            .map(|_| ())
            .map_err(Error::from)
    }

    /// The origin of `server.url` (`https://kubernetes.default.svc:443` when it is empty).
    fn egress(config: &serde_json::Value, _settings: &Settings) -> Result<Vec<String>, Error> {
        Ok(vec![KubernetesConfig::parse(config)?.origin])
    }

    fn open(
        config: serde_json::Value,
        _settings: Settings,
        store: &StoreContext,
    ) -> Result<KubernetesClient, Error> {
        KubernetesClient::new(KubernetesConfig::parse(&config)?, store)
    }
}

/// Where `spec.provider.kubernetes` references Kubernetes objects: the bearer token's Secret,
/// the ServiceAccount to mint tokens for (for the audiences its own `audiences` lists: the
/// plugin adds none) and the CA the host trusts for the store's TLS.
pub fn references() -> Vec<Reference> {
    vec![
        Reference::secret_key("auth.token.bearerToken"),
        Reference::service_account("auth.serviceAccount", Vec::<String>::new()),
        Reference::ca_provider("server.caProvider"),
    ]
}

/// Where `spec.provider.kubernetes` names a client certificate and its private key: the host
/// reads both (never granting them to the plugin) and presents them to the API server.
pub fn client_certificates() -> Vec<ClientCertificate> {
    vec![ClientCertificate::new(
        "auth.cert.clientCert",
        "auth.cert.clientKey",
    )]
}

/// The JSON Schema of `spec.provider.kubernetes`: ESO's fields and constraints. The same file is the
/// CRDs' schema of this key (`runtime/api` includes it), so the API server and the plugin
/// agree on the shape by construction.
pub const CONFIG_SCHEMA: &str = include_str!("../schema.json");

/// [`CONFIG_SCHEMA`], parsed.
pub fn config_schema() -> serde_json::Value {
    serde_json::from_str(CONFIG_SCHEMA).expect("schema.json is JSON")
}

export_provider!(Kubernetes);

#[cfg(test)]
mod tests {
    use super::*;
    use esox_plugin_sdk::ReferenceKind;
    use serde_json::json;

    #[test]
    fn info_declares_read_find_write_references_and_no_default_egress() {
        let info = Kubernetes::info();
        assert_eq!(info.name, "kubernetes");
        assert_eq!(
            info.capabilities,
            Capabilities::READ | Capabilities::FIND | Capabilities::WRITE
        );
        assert!(info.default_egress.is_empty());
        assert!(!info.wants_ambient_identity);
        let refs: Vec<(&str, bool)> = info
            .references
            .iter()
            .map(|r| (r.path.as_str(), r.audiences.is_empty()))
            .collect();
        assert_eq!(
            refs,
            [
                ("auth.token.bearerToken", true),
                ("auth.serviceAccount", true),
                ("server.caProvider", true)
            ]
        );
        assert!(matches!(info.references[0].kind, ReferenceKind::SecretKey));
        assert!(matches!(
            info.references[1].kind,
            ReferenceKind::ServiceAccount
        ));
        assert!(matches!(info.references[2].kind, ReferenceKind::CaProvider));
        // Every declared path exists in the schema.
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        let p = &schema["properties"];
        assert!(p["auth"]["properties"]["token"]["properties"]["bearerToken"].is_object());
        assert!(p["auth"]["properties"]["serviceAccount"].is_object());
        assert!(p["server"]["properties"]["caProvider"].is_object());
    }

    #[test]
    fn info_declares_the_client_certificate_pair() {
        let info = Kubernetes::info();
        let pairs: Vec<(&str, &str)> = info
            .client_certificates
            .iter()
            .map(|p| (p.certificate.as_str(), p.private_key.as_str()))
            .collect();
        assert_eq!(pairs, [("auth.cert.clientCert", "auth.cert.clientKey")]);
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        let cert = &schema["properties"]["auth"]["properties"]["cert"]["properties"];
        assert!(cert["clientCert"]["properties"]["name"].is_object());
        assert!(cert["clientKey"]["properties"]["name"].is_object());
        // Neither half is a reference the plugin may read.
        assert!(
            info.references
                .iter()
                .all(|r| !r.path.starts_with("auth.cert"))
        );
    }

    #[test]
    fn egress_is_the_server_origin() {
        let s = Settings::default();
        let token = json!({"auth": {"token": {"bearerToken": {"name": "t", "key": "token"}}}});
        assert_eq!(
            Kubernetes::egress(&token, &s).unwrap(),
            ["https://kubernetes.default.svc:443"]
        );
        let mut other = token.clone();
        other["server"] = json!({"url": "https://api.other-cluster.example.com:6443/"});
        assert_eq!(
            Kubernetes::egress(&other, &s).unwrap(),
            ["https://api.other-cluster.example.com:6443"]
        );
        other["server"] = json!({"url": "http://api.other-cluster.example.com"});
        assert!(matches!(
            Kubernetes::egress(&other, &s),
            Err(Error::InvalidConfig(c)) if c.field == "server.url"
        ));
    }

    #[test]
    fn validate_config_reports_fields() {
        assert!(
            Kubernetes::validate_config(&json!({
                "server": {"url": "kubernetes.default", "caProvider": {"type": "ConfigMap", "name": "kube-root-ca.crt", "key": "ca.crt"}},
                "remoteNamespace": "team-a",
                "auth": {"serviceAccount": {"name": "reader", "audiences": ["https://kubernetes.default.svc.cluster.local"]}}
            }))
            .is_ok()
        );
        assert!(
            Kubernetes::validate_config(&json!({
                "server": {"url": "https://remote-api.example:6443", "caBundle": "LS0tLS1CRUdJTg=="},
                "auth": {"cert": {
                    "clientCert": {"name": "esox-client", "key": "tls.crt"},
                    "clientKey": {"name": "esox-client", "key": "tls.key"}
                }}
            }))
            .is_ok()
        );
        assert!(matches!(
            Kubernetes::validate_config(&json!({"auth": {"cert": {}}})),
            Err(Error::InvalidConfig(c)) if c.field == "auth.cert.clientCert"
        ));
        assert!(matches!(
            Kubernetes::validate_config(&json!({
                "server": {"url": "http://remote-api.example"},
                "auth": {"cert": {
                    "clientCert": {"name": "esox-client", "key": "tls.crt"},
                    "clientKey": {"name": "esox-client", "key": "tls.key"}
                }}
            })),
            Err(Error::InvalidConfig(c)) if c.field == "server.url"
        ));
        assert!(matches!(
            Kubernetes::validate_config(&json!({"remoteNamespace": 5, "auth": {}})),
            Err(Error::InvalidConfig(c)) if c.field == "remoteNamespace"
        ));
    }
}
