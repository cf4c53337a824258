//! `spec.provider.kubernetes`: ESO's `KubernetesProvider`, parsed and checked without contacting
//! the API server. Everything here is pure so it can be unit-tested natively.
//!
//! Errors name the field as a path into the config and never quote a value.

use base64::Engine as _;
use esox_plugin_sdk::{ConfigError, StoreContext, serde_json};
use serde::Deserialize;

/// The API server when `server.url` is empty (ESO's CRD defaults it to `kubernetes.default`,
/// which the cluster's DNS search path expands to this name).
pub const DEFAULT_SERVER: &str = "https://kubernetes.default.svc:443";

/// ESO's `remoteNamespace` default.
pub const DEFAULT_REMOTE_NAMESPACE: &str = "default";

/// A reference to one key of a Kubernetes Secret (ESO's `SecretKeySelector`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretKeySelector {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A ServiceAccount to mint tokens for (ESO's `ServiceAccountSelector`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountSelector {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaProvider {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    url: Option<String>,
    /// Trusted by the host, beside `caProvider`; only checked to be base64 here.
    #[serde(default)]
    ca_bundle: Option<String>,
    #[serde(default)]
    ca_provider: Option<RawCaProvider>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawToken {
    bearer_token: SecretKeySelector,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCert {
    #[serde(default)]
    client_cert: Option<SecretKeySelector>,
    #[serde(default)]
    client_key: Option<SecretKeySelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAuth {
    /// A client certificate and its key, which the host presents in the TLS handshake.
    #[serde(default)]
    cert: Option<RawCert>,
    #[serde(default)]
    token: Option<RawToken>,
    #[serde(default)]
    service_account: Option<ServiceAccountSelector>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    auth: Option<RawAuth>,
    /// A kubeconfig in a Secret: refused.
    #[serde(default)]
    auth_ref: Option<serde_json::Value>,
    #[serde(default)]
    remote_namespace: Option<String>,
    /// The store's `spec.retrySettings`, which the host passes along; ESO's kubernetes
    /// provider does not use it.
    #[serde(default)]
    #[allow(dead_code)]
    retry_settings: Option<serde_json::Value>,
}

/// How the plugin authenticates to the API server.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// `auth.token.bearerToken`: a token read from a Secret.
    Token(SecretKeySelector),
    /// `auth.serviceAccount`: a token minted through TokenRequest for these audiences.
    ServiceAccount {
        selector: ServiceAccountSelector,
        audiences: Vec<String>,
    },
    /// `auth.cert`: a client certificate and its private key. The host reads both and
    /// presents them in the TLS handshake; requests carry no `Authorization` header.
    Cert {
        client_cert: SecretKeySelector,
        client_key: SecretKeySelector,
    },
}

impl Auth {
    /// ESO's `IsReferentKubernetesAuth`: the credential's namespace is left out, so a
    /// ClusterSecretStore resolves it in the ExternalSecret's namespace.
    pub fn is_referent(&self) -> bool {
        self.references().iter().any(|(_, ns)| ns.is_none())
    }

    /// The path of the credential's reference in the config.
    pub fn field(&self) -> &'static str {
        match self {
            Auth::Token(_) => "auth.token.bearerToken",
            Auth::ServiceAccount { .. } => "auth.serviceAccount",
            Auth::Cert { .. } => "auth.cert",
        }
    }

    /// Each reference of the credential: its path in the config and its namespace.
    pub fn references(&self) -> Vec<(&'static str, Option<&str>)> {
        match self {
            Auth::Token(s) => vec![("auth.token.bearerToken", s.namespace.as_deref())],
            Auth::ServiceAccount { selector, .. } => {
                vec![("auth.serviceAccount", selector.namespace.as_deref())]
            }
            Auth::Cert {
                client_cert,
                client_key,
            } => vec![
                ("auth.cert.clientCert", client_cert.namespace.as_deref()),
                ("auth.cert.clientKey", client_key.namespace.as_deref()),
            ],
        }
    }
}

/// `spec.provider.kubernetes`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesConfig {
    /// `scheme://host:port` of the API server (always https, always with a port).
    pub origin: String,
    /// The API server's URL without a trailing slash: the origin plus any path prefix (a
    /// proxy such as Rancher's `/k8s/clusters/<id>`).
    pub base: String,
    /// Where Secrets are read.
    pub remote_namespace: String,
    pub auth: Auth,
    /// `server.caProvider.namespace`, when a caProvider is set (`Some(None)`: without one).
    ca_provider_namespace: Option<Option<String>>,
}

impl KubernetesConfig {
    /// Parse and check a store's `spec.provider.kubernetes`.
    pub fn parse(config: &serde_json::Value) -> Result<Self, ConfigError> {
        let raw: RawConfig = esox_plugin_sdk::config::from_value(config)?;

        if raw.auth_ref.as_ref().is_some_and(|v| !v.is_null()) {
            if raw.auth.is_some() {
                return Err(ConfigError::new(
                    "authRef",
                    "authRef and inline auth cannot both be set",
                ));
            }
            return Err(ConfigError::new(
                "authRef",
                "a kubeconfig in a Secret is not supported by the esox kubernetes plugin (its server, CA and credentials would escape the store's declared egress and references): set server.url, server.caBundle or server.caProvider, and auth.token or auth.serviceAccount instead",
            ));
        }

        let server = raw.server.unwrap_or_default();
        let (origin, base) = parse_server_url(server.url.as_deref().unwrap_or(""))?;
        if let Some(bundle) = server.ca_bundle.as_deref()
            && base64::engine::general_purpose::STANDARD
                .decode(bundle.trim())
                .is_err()
        {
            return Err(ConfigError::new(
                "server.caBundle",
                "is not valid base64: write the PEM bundle base64-encoded",
            ));
        }
        let ca_provider_namespace = match &server.ca_provider {
            None => None,
            Some(ca) => {
                if ca.kind != "Secret" && ca.kind != "ConfigMap" {
                    return Err(ConfigError::new(
                        "server.caProvider.type",
                        "must be Secret or ConfigMap",
                    ));
                }
                if ca.name.is_empty() {
                    return Err(ConfigError::new(
                        "server.caProvider.name",
                        "must not be empty",
                    ));
                }
                if ca.key.as_deref().unwrap_or_default().is_empty() {
                    return Err(ConfigError::new(
                        "server.caProvider.key",
                        "must name the key that holds the CA certificate",
                    ));
                }
                Some(ca.namespace.clone())
            }
        };

        let remote_namespace = match raw.remote_namespace.as_deref() {
            None | Some("") => DEFAULT_REMOTE_NAMESPACE.to_string(),
            Some(ns) if is_dns_label(ns) => ns.to_string(),
            Some(_) => {
                return Err(ConfigError::new(
                    "remoteNamespace",
                    "must be a namespace name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
                ));
            }
        };

        let auth = parse_auth(raw.auth)?;
        Ok(KubernetesConfig {
            origin,
            base,
            remote_namespace,
            auth,
            ca_provider_namespace,
        })
    }

    /// ESO's store-kind rules (`ValidateKubernetesConnection`), checked when a client opens:
    /// a ClusterSecretStore's caProvider and bearer token name their namespace; a SecretStore's
    /// references stay in its own namespace.
    pub fn check_store(&self, store: &StoreContext) -> Result<(), ConfigError> {
        let cluster = store.is_cluster_store();
        match &self.ca_provider_namespace {
            Some(None) if cluster => {
                return Err(ConfigError::new(
                    "server.caProvider.namespace",
                    "CAProvider.namespace must not be empty with ClusterSecretStore",
                ));
            }
            Some(Some(_)) if !cluster => {
                return Err(ConfigError::new(
                    "server.caProvider.namespace",
                    "CAProvider.namespace must be empty with SecretStore",
                ));
            }
            _ => {}
        }
        for (path, namespace) in self.auth.references() {
            let field = format!("{path}.namespace");
            match namespace {
                // ESO's ValidateSecretSelector, which it applies to the bearer token and the
                // client certificate; the client key and the ServiceAccount may be referent.
                None if cluster
                    && matches!(path, "auth.token.bearerToken" | "auth.cert.clientCert") =>
                {
                    return Err(ConfigError::new(field, "cluster scope requires namespace"));
                }
                Some(ns) if !cluster && Some(ns) != store.namespace.as_deref() => {
                    return Err(ConfigError::new(
                        field,
                        "namespace should either be empty or match the namespace of the SecretStore for a namespaced SecretStore",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn parse_auth(auth: Option<RawAuth>) -> Result<Auth, ConfigError> {
    let Some(auth) = auth else {
        return Err(ConfigError::new(
            "auth",
            "no auth provider given: set auth.token, auth.serviceAccount or auth.cert",
        ));
    };
    let set = [
        auth.token.is_some(),
        auth.service_account.is_some(),
        auth.cert.is_some(),
    ]
    .into_iter()
    .filter(|s| *s)
    .count();
    if set > 1 {
        return Err(ConfigError::new(
            "auth",
            "multiple auth methods provided: set exactly one of Token, ServiceAccount, or Cert",
        ));
    }
    if let Some(cert) = auth.cert {
        // ESO's ValidateStore checks the certificate's name and key; the key's are checked
        // here too, as ESO reads exactly the key named (an empty one fails when it reads).
        let selector = |field: &str, label: &str, s: Option<SecretKeySelector>, what: &str| {
            let Some(s) = s else {
                return Err(ConfigError::new(
                    field,
                    format!("must reference the Secret key holding the client {what}"),
                ));
            };
            if s.name.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!("{label}.Name cannot be empty"),
                ));
            }
            if s.key.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.key"),
                    format!("{label}.Key cannot be empty"),
                ));
            }
            Ok(s)
        };
        return Ok(Auth::Cert {
            client_cert: selector(
                "auth.cert.clientCert",
                "ClientCert",
                cert.client_cert,
                "certificate",
            )?,
            client_key: selector(
                "auth.cert.clientKey",
                "ClientKey",
                cert.client_key,
                "private key",
            )?,
        });
    }
    if let Some(token) = auth.token {
        let s = token.bearer_token;
        if s.name.is_empty() {
            return Err(ConfigError::new(
                "auth.token.bearerToken.name",
                "BearerToken.Name cannot be empty",
            ));
        }
        if s.key.is_empty() {
            return Err(ConfigError::new(
                "auth.token.bearerToken.key",
                "BearerToken.Key cannot be empty",
            ));
        }
        return Ok(Auth::Token(s));
    }
    if let Some(sa) = auth.service_account {
        if sa.name.is_empty() {
            return Err(ConfigError::new(
                "auth.serviceAccount.name",
                "must not be empty",
            ));
        }
        // No audiences, as in ESO's examples: a token for the API server's own audience, which
        // the host mints only when the operator grants that to this plugin (it does by default;
        // `--plugin-api-audience-tokens`).
        let audiences = sa.audiences.clone().unwrap_or_default();
        if audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(ConfigError::new(
                "auth.serviceAccount.audiences",
                "must not contain an empty audience",
            ));
        }
        return Ok(Auth::ServiceAccount {
            selector: sa,
            audiences,
        });
    }
    Err(ConfigError::new(
        "auth",
        "no auth provider given: set auth.token, auth.serviceAccount or auth.cert",
    ))
}

/// The origin and base URL of `server.url`: `https://host[:port][/prefix]`, or a bare
/// `host[:port]` (https is assumed, as client-go does when a CA is configured); empty:
/// [`DEFAULT_SERVER`]. `http://` is refused: a bearer token must not travel in clear text, and
/// a client certificate can only be presented over https.
pub fn parse_server_url(url: &str) -> Result<(String, String), ConfigError> {
    let err = |m: &str| ConfigError::new("server.url", m);
    let url = url.trim();
    if url.is_empty() {
        return Ok((DEFAULT_SERVER.to_string(), DEFAULT_SERVER.to_string()));
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => {
            return Err(err(
                "must be an https:// URL: the plugin never sends a bearer token over plain http, and a client certificate (auth.cert) can only be presented over https",
            ));
        }
        Some(_) => return Err(err("must be an https:// URL")),
        None => url,
    };
    if rest.contains(['?', '#']) {
        return Err(err("must not have a query or fragment"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(err(
            "must not carry user information: credentials go in auth",
        ));
    }
    let (host, port) = split_host_port(authority)
        .ok_or_else(|| err("must be https://host[:port][/path] with a valid host and port"))?;
    let valid_host = if host.starts_with('[') {
        host.len() > 2
            && host[1..host.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    if !valid_host {
        return Err(err(
            "must be https://host[:port][/path] with a valid host and port",
        ));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            "the path must not contain spaces or control characters",
        ));
    }
    let origin = format!("https://{}:{port}", host.to_ascii_lowercase());
    let base = format!("{origin}{}", path.trim_end_matches('/'));
    Ok((origin, base))
}

/// `host[:port]` (IPv6 in brackets) into the host and the port (443 when absent).
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = &authority[..=end];
        match &authority[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 443,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
    };
    Some((host, port))
}

/// An RFC 1123 label: a namespace name.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "s3cr3t-VALUE-xyzzy";

    fn token_config() -> serde_json::Value {
        json!({
            "server": {"url": "https://k8s.example.com:6443", "caProvider": {"type": "ConfigMap", "name": "ca", "key": "ca.crt"}},
            "remoteNamespace": "team-a",
            "auth": {"token": {"bearerToken": {"name": "creds", "key": "token"}}}
        })
    }

    fn field(r: Result<KubernetesConfig, ConfigError>) -> String {
        let e = r.unwrap_err();
        assert!(!e.message.contains(SECRET), "{e}");
        e.field
    }

    #[test]
    fn a_token_store_parses_with_its_origin_and_namespace() {
        let c = KubernetesConfig::parse(&token_config()).unwrap();
        assert_eq!(c.origin, "https://k8s.example.com:6443");
        assert_eq!(c.base, "https://k8s.example.com:6443");
        assert_eq!(c.remote_namespace, "team-a");
        assert_eq!(
            c.auth,
            Auth::Token(SecretKeySelector {
                name: "creds".into(),
                key: "token".into(),
                namespace: None
            })
        );
        assert!(c.auth.is_referent());
    }

    #[test]
    fn defaults_follow_eso() {
        let c = KubernetesConfig::parse(&json!({
            "auth": {"serviceAccount": {"name": "reader", "audiences": ["https://kubernetes.default.svc"]}},
            "retrySettings": {"maxRetries": 3}
        }))
        .unwrap();
        assert_eq!(c.origin, DEFAULT_SERVER);
        assert_eq!(c.remote_namespace, "default");
        assert!(
            matches!(&c.auth, Auth::ServiceAccount { audiences, .. } if audiences == &["https://kubernetes.default.svc"])
        );
    }

    #[test]
    fn server_urls_become_https_origins_with_ports() {
        let p = |u: &str| parse_server_url(u).map_err(|e| e.field);
        assert_eq!(
            p("kubernetes.default").unwrap(),
            (
                "https://kubernetes.default:443".into(),
                "https://kubernetes.default:443".into()
            )
        );
        assert_eq!(
            p("HTTPS://API.Example.com/k8s/clusters/c-1/").unwrap(),
            (
                "https://api.example.com:443".into(),
                "https://api.example.com:443/k8s/clusters/c-1".into()
            )
        );
        assert_eq!(
            p("https://[fd00::1]:6443").unwrap().0,
            "https://[fd00::1]:6443"
        );
        assert_eq!(p("10.0.0.1:6443").unwrap().0, "https://10.0.0.1:6443");
        for bad in [
            "http://k8s:6443",
            "ftp://k8s",
            "https://user:pw@k8s",
            "https://k8s:0",
            "https://k8s:99999",
            "https://",
            "https://k8s?x=1",
            "https://k 8s",
        ] {
            assert_eq!(p(bad).unwrap_err(), "server.url", "{bad}");
        }
    }

    #[test]
    fn auth_errors_name_their_fields() {
        let with_auth = |auth: serde_json::Value| {
            KubernetesConfig::parse(&json!({"server": {"url": "https://k"}, "auth": auth}))
        };
        assert_eq!(field(KubernetesConfig::parse(&json!({}))), "auth");
        assert_eq!(field(with_auth(json!({}))), "auth");
        let cert = |cert: serde_json::Value, key: serde_json::Value| {
            with_auth(json!({"cert": {"clientCert": cert, "clientKey": key}}))
        };
        let ok = json!({"name": "c", "key": "k"});
        assert_eq!(
            field(cert(json!({"name": "", "key": "tls.crt"}), ok.clone())),
            "auth.cert.clientCert.name"
        );
        assert_eq!(
            field(cert(json!({"name": "c"}), ok.clone())),
            "auth.cert.clientCert.key"
        );
        assert_eq!(
            field(cert(ok.clone(), json!({"key": "tls.key"}))),
            "auth.cert.clientKey.name"
        );
        assert_eq!(
            field(cert(ok.clone(), json!({"name": "c", "key": ""}))),
            "auth.cert.clientKey.key"
        );
        assert_eq!(
            field(with_auth(json!({"cert": {"clientCert": ok.clone()}}))),
            "auth.cert.clientKey"
        );
        assert_eq!(
            field(with_auth(json!({"cert": {"clientKey": ok.clone()}}))),
            "auth.cert.clientCert"
        );
        assert_eq!(
            field(with_auth(
                json!({"cert": {"clientCert": ok.clone(), "clientKey": ok.clone()}, "token": {"bearerToken": ok.clone()}})
            )),
            "auth"
        );
        let e = cert(
            json!({"name": SECRET, "key": SECRET, "extra": 1}),
            ok.clone(),
        )
        .unwrap_err();
        assert!(!e.message.contains(SECRET), "{e}");
        assert_eq!(
            field(with_auth(
                json!({"token": {"bearerToken": {"name": "a", "key": "b"}}, "serviceAccount": {"name": "x"}})
            )),
            "auth"
        );
        assert_eq!(
            field(with_auth(json!({"token": {"bearerToken": {"key": "b"}}}))),
            "auth.token.bearerToken.name"
        );
        assert_eq!(
            field(with_auth(json!({"token": {"bearerToken": {"name": "a"}}}))),
            "auth.token.bearerToken.key"
        );
        assert_eq!(
            field(with_auth(
                json!({"serviceAccount": {"name": "reader", "audiences": [""]}})
            )),
            "auth.serviceAccount.audiences"
        );
        assert_eq!(
            field(with_auth(json!({"serviceAccount": {"audiences": ["a"]}}))),
            "auth.serviceAccount.name"
        );
        assert_eq!(
            field(with_auth(
                json!({"token": {"bearerToken": {"name": SECRET, "key": 7}}})
            )),
            "auth.token.bearerToken.key"
        );
        let mut c = token_config();
        c["authRef"] = json!({"name": "kubeconfig", "key": "config"});
        assert_eq!(field(KubernetesConfig::parse(&c)), "authRef");
        c.as_object_mut().unwrap().remove("auth");
        assert_eq!(field(KubernetesConfig::parse(&c)), "authRef");
    }

    #[test]
    fn server_and_namespace_errors_name_their_fields() {
        let mut c = token_config();
        c["remoteNamespace"] = json!("Team_A");
        assert_eq!(field(KubernetesConfig::parse(&c)), "remoteNamespace");
        let mut c = token_config();
        c["server"]["caBundle"] = json!(format!("{SECRET}!!"));
        assert_eq!(field(KubernetesConfig::parse(&c)), "server.caBundle");
        let mut c = token_config();
        c["server"]["caProvider"]["type"] = json!("Vault");
        assert_eq!(field(KubernetesConfig::parse(&c)), "server.caProvider.type");
        let mut c = token_config();
        c["server"]["insecure"] = json!(true);
        assert_eq!(field(KubernetesConfig::parse(&c)), "server.insecure");
        let mut c = token_config();
        c["server"]["caBundle"] = json!("LS0tLS1CRUdJTg==");
        KubernetesConfig::parse(&c).unwrap();
    }

    #[test]
    fn kubeconfigs_are_refused_whatever_they_name() {
        // A kubeconfig in a Secret, with its namespace: refused, naming authRef.
        let kubeconfig = json!({
            "authRef": {"name": "kubeconfig", "key": "config", "namespace": "infra"}
        });
        let e = KubernetesConfig::parse(&kubeconfig).unwrap_err();
        assert_eq!(e.field, "authRef");
        assert!(e.message.contains("not supported"), "{e}");
        // Beside a client certificate, too.
        let selector = |name: &str| json!({"name": name, "key": "tls.crt", "namespace": "infra"});
        let both = json!({
            "authRef": {"name": "kubeconfig", "key": "config"},
            "auth": {"cert": {"clientCert": selector("c"), "clientKey": selector("k")}}
        });
        assert_eq!(KubernetesConfig::parse(&both).unwrap_err().field, "authRef");
    }

    #[test]
    fn a_client_certificate_is_accepted_with_every_field_kept() {
        // ESO's full auth.cert shape, every selector field written.
        let selector =
            |name: &str, key: &str| json!({"name": name, "key": key, "namespace": "infra"});
        let config = json!({
            "server": {"url": "https://k8s.example.com:6443", "caBundle": "LS0tLS1CRUdJTg=="},
            "auth": {"cert": {"clientCert": selector("client", "tls.crt"), "clientKey": selector("client-key", "tls.key")}}
        });
        let c = KubernetesConfig::parse(&config).unwrap();
        let sel = |name: &str, key: &str| SecretKeySelector {
            name: name.into(),
            key: key.into(),
            namespace: Some("infra".into()),
        };
        assert_eq!(
            c.auth,
            Auth::Cert {
                client_cert: sel("client", "tls.crt"),
                client_key: sel("client-key", "tls.key"),
            }
        );
        assert_eq!(c.auth.field(), "auth.cert");
        assert!(!c.auth.is_referent());
        // Every field of the schema under auth.cert is written above: none is ignored.
        let schema = crate::config_schema();
        let cert = &schema["properties"]["auth"]["properties"]["cert"]["properties"];
        let mut fields = 0;
        for (name, node) in cert.as_object().unwrap() {
            for sub in node["properties"].as_object().unwrap().keys() {
                assert!(
                    !config["auth"]["cert"][name][sub].is_null(),
                    "auth.cert.{name}.{sub}"
                );
                fields += 1;
            }
        }
        assert_eq!(fields, 6);
        // Either selector without a namespace is referent (ESO's isReferentSpec).
        for half in ["clientCert", "clientKey"] {
            let mut c = config.clone();
            c["auth"]["cert"][half]
                .as_object_mut()
                .unwrap()
                .remove("namespace");
            assert!(
                KubernetesConfig::parse(&c).unwrap().auth.is_referent(),
                "{half}"
            );
        }
        // A client certificate can only be presented over https.
        let mut c = config.clone();
        c["server"]["url"] = json!("http://k8s.example.com:6443");
        let e = KubernetesConfig::parse(&c).unwrap_err();
        assert_eq!(e.field, "server.url");
        assert!(e.message.contains("client certificate"), "{e}");
    }

    #[test]
    fn a_client_certificates_namespaces_follow_esos_store_kind_rules() {
        let cert = |cert_ns: Option<&str>, key_ns: Option<&str>| {
            let selector = |key: &str, ns: Option<&str>| match ns {
                Some(ns) => json!({"name": "client", "key": key, "namespace": ns}),
                None => json!({"name": "client", "key": key}),
            };
            KubernetesConfig::parse(&json!({"auth": {"cert": {
                "clientCert": selector("tls.crt", cert_ns),
                "clientKey": selector("tls.key", key_ns)
            }}}))
            .unwrap()
        };
        let secret_store = StoreContext::secret_store("team", "s");
        let cluster = StoreContext::cluster_secret_store("c", Some("team"));
        // A SecretStore: its own namespace, written or not; another one is refused.
        cert(None, None).check_store(&secret_store).unwrap();
        cert(Some("team"), Some("team"))
            .check_store(&secret_store)
            .unwrap();
        assert_eq!(
            cert(Some("other"), None)
                .check_store(&secret_store)
                .unwrap_err()
                .field,
            "auth.cert.clientCert.namespace"
        );
        assert_eq!(
            cert(None, Some("other"))
                .check_store(&secret_store)
                .unwrap_err()
                .field,
            "auth.cert.clientKey.namespace"
        );
        // A ClusterSecretStore: the certificate names its namespace (ESO's
        // ValidateSecretSelector); the key may be referent.
        assert_eq!(
            cert(None, Some("infra"))
                .check_store(&cluster)
                .unwrap_err()
                .field,
            "auth.cert.clientCert.namespace"
        );
        cert(Some("infra"), Some("infra"))
            .check_store(&cluster)
            .unwrap();
        let referent = cert(Some("infra"), None);
        referent.check_store(&cluster).unwrap();
        assert!(referent.auth.is_referent());
    }

    #[test]
    fn ca_provider_fields_are_checked() {
        let with_ca = |ca: serde_json::Value| {
            let mut c = token_config();
            c["server"]["caProvider"] = ca;
            KubernetesConfig::parse(&c)
        };
        for kind in ["Secret", "ConfigMap"] {
            let c = with_ca(json!({"type": kind, "name": "ca", "key": "ca.crt"})).unwrap();
            assert_eq!(c.ca_provider_namespace, Some(None), "{kind}");
        }
        assert_eq!(
            field(with_ca(
                json!({"type": "Secret", "name": "", "key": "ca.crt"})
            )),
            "server.caProvider.name"
        );
        assert_eq!(
            field(with_ca(json!({"type": "Secret", "name": "ca", "key": ""}))),
            "server.caProvider.key"
        );
        assert_eq!(
            field(with_ca(json!({"type": "Secret", "name": "ca"}))),
            "server.caProvider.key",
            "ESO fails on a caProvider without its key; the host would skip it"
        );
        let e = with_ca(json!({"name": "ca", "key": "ca.crt"})).unwrap_err();
        assert!(e.message.contains("missing field `type`"), "{e}");
        let c = with_ca(
            json!({"type": "ConfigMap", "name": "ca", "key": "ca.crt", "namespace": "infra"}),
        )
        .unwrap();
        assert_eq!(c.ca_provider_namespace, Some(Some("infra".to_string())));
    }

    #[test]
    fn a_secret_stores_bearer_token_stays_in_its_namespace() {
        let mut cfg = token_config();
        cfg["server"].as_object_mut().unwrap().remove("caProvider");
        cfg["auth"]["token"]["bearerToken"]["namespace"] = json!("other");
        let c = KubernetesConfig::parse(&cfg).unwrap();
        assert!(!c.auth.is_referent());
        assert_eq!(
            c.check_store(&StoreContext::secret_store("team", "s"))
                .unwrap_err()
                .field,
            "auth.token.bearerToken.namespace"
        );
        c.check_store(&StoreContext::secret_store("other", "s"))
            .unwrap();
        // Without a namespace, a SecretStore reads the token from its own namespace.
        cfg["auth"]["token"]["bearerToken"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        KubernetesConfig::parse(&cfg)
            .unwrap()
            .check_store(&StoreContext::secret_store("team", "s"))
            .unwrap();
    }

    #[test]
    fn store_kind_rules_follow_eso() {
        let c = KubernetesConfig::parse(&token_config()).unwrap();
        c.check_store(&StoreContext::secret_store("team", "s"))
            .unwrap();
        let cluster = StoreContext::cluster_secret_store("c", Some("team"));
        // A cluster store's caProvider and bearer token must name their namespace.
        assert_eq!(
            c.check_store(&cluster).unwrap_err().field,
            "server.caProvider.namespace"
        );
        let mut cfg = token_config();
        cfg["server"]["caProvider"]["namespace"] = json!("infra");
        let c = KubernetesConfig::parse(&cfg).unwrap();
        assert_eq!(
            c.check_store(&cluster).unwrap_err().field,
            "auth.token.bearerToken.namespace"
        );
        assert_eq!(
            c.check_store(&StoreContext::secret_store("team", "s"))
                .unwrap_err()
                .field,
            "server.caProvider.namespace"
        );
        cfg["auth"]["token"]["bearerToken"]["namespace"] = json!("infra");
        KubernetesConfig::parse(&cfg)
            .unwrap()
            .check_store(&cluster)
            .unwrap();
        // A SecretStore's service account stays in its namespace; a cluster store's may be
        // referent.
        let sa = KubernetesConfig::parse(&json!({
            "auth": {"serviceAccount": {"name": "r", "namespace": "other", "audiences": ["a"]}}
        }))
        .unwrap();
        assert_eq!(
            sa.check_store(&StoreContext::secret_store("team", "s"))
                .unwrap_err()
                .field,
            "auth.serviceAccount.namespace"
        );
        sa.check_store(&StoreContext::secret_store("other", "s"))
            .unwrap();
        let referent = KubernetesConfig::parse(&json!({
            "auth": {"serviceAccount": {"name": "r", "audiences": ["a"]}}
        }))
        .unwrap();
        referent
            .check_store(&StoreContext::cluster_secret_store("c", None))
            .unwrap();
        assert!(referent.auth.is_referent());
    }

    #[test]
    fn a_service_account_without_audiences_asks_for_the_api_servers_own() {
        let c = KubernetesConfig::parse(&json!({
            "server": {"url": "https://k8s.example.com:6443"},
            "auth": {"serviceAccount": {"name": "reader"}}
        }))
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::ServiceAccount { audiences, .. } if audiences.is_empty()),
            "{:?}",
            c.auth
        );
    }
}
