//! `spec.provider.vault`: the store configuration as ESO defines it, parsed and validated
//! without contacting Vault. Errors name the field (a path into `spec.provider.vault`) and what
//! to write; they never quote a value from the config (a header value or an inline role ID may
//! be sensitive).

use std::collections::BTreeMap;

use esox_plugin_sdk::{ConfigError, StoreContext, config, serde_json};
use serde::Deserialize;

/// The KV secrets engine version of the store's mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

/// `{name, key, namespace?}`: one key of a Kubernetes Secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SecretKeyRef {
    pub name: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `{name, namespace?, audiences?}`: a ServiceAccount to mint tokens for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceAccountRef {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// Where a login's JWT comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtSource {
    /// A key of a Secret holding the token.
    Secret(SecretKeyRef),
    /// A token the host mints for a ServiceAccount (TokenRequest), for these audiences and
    /// lifetime.
    ServiceAccount {
        account: ServiceAccountRef,
        audiences: Vec<String>,
        expiration_seconds: u32,
    },
}

/// Where the AppRole role ID comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleId {
    Inline(String),
    Secret(SecretKeyRef),
}

/// How the store authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `auth`: requests carry no token (a Vault Agent or proxy adds one), as in ESO.
    None,
    /// `tokenSecretRef`.
    Token(SecretKeyRef),
    /// `appRole`.
    AppRole {
        path: String,
        role_id: RoleId,
        secret_ref: SecretKeyRef,
    },
    /// `kubernetes`.
    Kubernetes {
        mount_path: String,
        role: String,
        jwt: JwtSource,
    },
    /// `jwt`.
    Jwt {
        path: String,
        role: String,
        jwt: JwtSource,
    },
    /// `userPass` or `ldap` (the same login shape): `method` is the config field.
    Password {
        method: &'static str,
        path: String,
        username: String,
        secret_ref: SecretKeyRef,
    },
    /// `cert`: Vault's TLS certificate auth. The host presents the certificate
    /// (`clientCert`) with its private key (`secretRef`) in the TLS handshake; the plugin
    /// only sends the login, naming `vaultRole` when it is set.
    Cert {
        path: String,
        role: String,
        client_cert: SecretKeyRef,
        secret_ref: SecretKeyRef,
    },
}

impl Auth {
    /// The config field of this method (`auth.appRole`), for messages.
    pub fn field(&self) -> &'static str {
        match self {
            Auth::None => "auth",
            Auth::Token(_) => "auth.tokenSecretRef",
            Auth::AppRole { .. } => "auth.appRole",
            Auth::Kubernetes { .. } => "auth.kubernetes",
            Auth::Jwt { .. } => "auth.jwt",
            Auth::Cert { .. } => "auth.cert",
            Auth::Password { method, .. } => {
                if *method == "ldap" {
                    "auth.ldap"
                } else {
                    "auth.userPass"
                }
            }
        }
    }

    /// Whether this method logs in (rather than presenting a token as it is).
    pub fn logs_in(&self) -> bool {
        !matches!(self, Auth::None | Auth::Token(_))
    }

    /// The namespaces of every Kubernetes reference this method reads (None: referent).
    fn reference_namespaces(&self) -> Vec<Option<&str>> {
        fn jwt(j: &JwtSource) -> Option<&str> {
            match j {
                JwtSource::Secret(s) => s.namespace.as_deref(),
                JwtSource::ServiceAccount { account, .. } => account.namespace.as_deref(),
            }
        }
        match self {
            Auth::None => Vec::new(),
            Auth::Token(s) => vec![s.namespace.as_deref()],
            Auth::AppRole {
                role_id,
                secret_ref,
                ..
            } => {
                let mut out = vec![secret_ref.namespace.as_deref()];
                if let RoleId::Secret(r) = role_id {
                    out.push(r.namespace.as_deref());
                }
                out
            }
            Auth::Kubernetes { jwt: j, .. } | Auth::Jwt { jwt: j, .. } => vec![jwt(j)],
            Auth::Password { secret_ref, .. } => vec![secret_ref.namespace.as_deref()],
            // ESO's isReferentSpec looks at the private key's reference only.
            Auth::Cert { secret_ref, .. } => vec![secret_ref.namespace.as_deref()],
        }
    }
}

/// `tls`: the client certificate presented to Vault in every TLS handshake (mutual TLS),
/// with ESO's key defaults applied. The host reads and presents it; the plugin never does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// `tls.certSecretRef` (`key` defaults to `tls.crt`).
    pub cert: SecretKeyRef,
    /// `tls.keySecretRef` (`key` defaults to `tls.key`).
    pub key: SecretKeyRef,
}

/// `spec.provider.vault`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultConfig {
    /// `server` without a trailing slash (scheme, authority and any path prefix).
    pub server: String,
    /// `scheme://host[:port]` of `server`, lowercased.
    pub origin: String,
    /// `path`: the KV mount, if set.
    pub path: Option<String>,
    pub version: KvVersion,
    /// `namespace`: sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// `auth.namespace`, else `namespace`: the namespace logins are sent to.
    pub auth_namespace: Option<String>,
    /// Read-your-writes (`X-Vault-Index`): on with `readYourWrites` or `forwardInconsistent`,
    /// as ESO turns on its Vault client's `ReadYourWrites` for either.
    pub read_your_writes: bool,
    /// `X-Vault-Inconsistent: forward-active-node`: ESO sends it only when both
    /// `readYourWrites` and `forwardInconsistent` are set.
    pub forward_inconsistent: bool,
    /// `headers`, in name order.
    pub headers: Vec<(String, String)>,
    pub auth: Auth,
    /// `checkAndSet.required` (KV v2 only): pushes send `options.cas` with the version they
    /// read.
    pub check_and_set: bool,
    /// `caProvider.namespace`, when a caProvider is set (`Some(None)`: without a namespace).
    pub ca_provider_namespace: Option<Option<String>>,
    /// `tls`, when both of its references are set.
    pub tls: Option<ClientTls>,
}

/// ESO's `spec.provider.vault` as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    server: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    /// Trusted by the host (beside `caProvider`), never by the plugin.
    #[serde(default)]
    #[allow(dead_code)]
    ca_bundle: Option<String>,
    #[serde(default)]
    ca_provider: Option<CaProvider>,
    #[serde(default)]
    read_your_writes: bool,
    #[serde(default)]
    forward_inconsistent: bool,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    check_and_set: Option<CheckAndSet>,
    #[serde(default)]
    auth: Option<RawAuth>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct CaProvider {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTls {
    #[serde(default)]
    cert_secret_ref: Option<SecretKeyRef>,
    #[serde(default)]
    key_secret_ref: Option<SecretKeyRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    vault_role: String,
    #[serde(default)]
    client_cert: Option<SecretKeyRef>,
    #[serde(default)]
    secret_ref: Option<SecretKeyRef>,
}

#[derive(Deserialize)]
struct CheckAndSet {
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuth {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    token_secret_ref: Option<SecretKeyRef>,
    #[serde(default)]
    app_role: Option<RawAppRole>,
    #[serde(default)]
    kubernetes: Option<RawKubernetes>,
    #[serde(default)]
    ldap: Option<RawPassword>,
    #[serde(default)]
    user_pass: Option<RawPassword>,
    #[serde(default)]
    jwt: Option<RawJwt>,
    #[serde(default)]
    cert: Option<RawCert>,
    #[serde(default)]
    iam: Option<serde_json::Value>,
    #[serde(default)]
    gcp: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAppRole {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    role_id: Option<String>,
    #[serde(default)]
    role_ref: Option<SecretKeyRef>,
    secret_ref: SecretKeyRef,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKubernetes {
    #[serde(default)]
    mount_path: Option<String>,
    #[serde(default)]
    service_account_ref: Option<ServiceAccountRef>,
    #[serde(default)]
    secret_ref: Option<SecretKeyRef>,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPassword {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret_ref: Option<SecretKeyRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJwt {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    role: String,
    #[serde(default)]
    secret_ref: Option<SecretKeyRef>,
    #[serde(default)]
    kubernetes_service_account_token: Option<RawSaToken>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSaToken {
    service_account_ref: ServiceAccountRef,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    expiration_seconds: Option<i64>,
}

/// The audience ESO requests for `auth.jwt.kubernetesServiceAccountToken` when none is given.
pub const DEFAULT_JWT_AUDIENCE: &str = "vault";
/// The lifetime ESO requests for ServiceAccount tokens (10 minutes).
pub const DEFAULT_TOKEN_SECONDS: u32 = 600;

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(field, message)
}

impl VaultConfig {
    /// Parse and validate `spec.provider.vault`.
    pub fn parse(value: &serde_json::Value) -> Result<VaultConfig, ConfigError> {
        let raw: Raw = config::from_value(value)?;
        let (server, origin) = check_server(&raw.server)?;
        let version = match raw.version.as_deref() {
            None | Some("") | Some("v2") => KvVersion::V2,
            Some("v1") => KvVersion::V1,
            Some(_) => return Err(err("version", "must be v1 or v2")),
        };
        if let Some(path) = &raw.path
            && path.trim_matches('/').is_empty()
        {
            return Err(err(
                "path",
                "must name the KV mount (such as secret), or be left out",
            ));
        }
        let tls = parse_tls(raw.tls)?;
        if let Some(ca) = &raw.ca_provider {
            if ca.kind != "Secret" && ca.kind != "ConfigMap" {
                return Err(err("caProvider.type", "must be Secret or ConfigMap"));
            }
            if ca.name.is_empty() || ca.key.is_empty() {
                return Err(err("caProvider", "needs both name and key"));
            }
        }
        if raw.check_and_set.as_ref().is_some_and(|c| c.required) && version == KvVersion::V1 {
            return Err(err(
                "checkAndSet",
                "checkAndSet is not supported with Vault KV version v1",
            ));
        }
        let mut headers = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            if !is_header_name(&name) {
                return Err(err(
                    "headers",
                    "a header name is not a valid HTTP header name (a token such as X-Team)",
                ));
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(err(
                    format!("headers.{name}"),
                    "the value holds line breaks or control characters",
                ));
            }
            headers.push((name, value));
        }
        let namespace = raw.namespace.filter(|n| !n.is_empty());
        let (auth, auth_namespace) = match raw.auth {
            None => (Auth::None, namespace.clone()),
            Some(a) => {
                let ns = a
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .or_else(|| namespace.clone());
                (parse_auth(a)?, ns)
            }
        };
        if !origin.starts_with("https://") {
            let with = match (&auth, &tls) {
                (Auth::Cert { .. }, _) => Some("auth.cert"),
                (_, Some(_)) => Some("tls"),
                _ => None,
            };
            if let Some(with) = with {
                return Err(err(
                    "server",
                    format!(
                        "must be an https:// URL with {with}: a client certificate can only be presented over https"
                    ),
                ));
            }
        }
        Ok(VaultConfig {
            server,
            origin,
            path: raw.path,
            version,
            namespace,
            auth_namespace,
            read_your_writes: raw.read_your_writes || raw.forward_inconsistent,
            forward_inconsistent: raw.read_your_writes && raw.forward_inconsistent,
            headers,
            auth,
            check_and_set: raw.check_and_set.as_ref().is_some_and(|c| c.required),
            ca_provider_namespace: raw
                .ca_provider
                .as_ref()
                .map(|ca| ca.namespace.clone().filter(|n| !n.is_empty())),
            tls,
        })
    }

    /// ESO's store-kind rule for the CA: a ClusterSecretStore's `caProvider` names its
    /// namespace (a CA is not read from the namespace of whichever ExternalSecret syncs).
    pub fn check_store(&self, store: &StoreContext) -> Result<(), ConfigError> {
        if store.is_cluster_store() && self.ca_provider_namespace == Some(None) {
            return Err(err(
                "caProvider.namespace",
                "a ClusterSecretStore must name the namespace of its caProvider",
            ));
        }
        Ok(())
    }

    /// Whether some credential reference has no namespace (ESO's `isReferentSpec`): in a
    /// ClusterSecretStore it resolves in the namespace of the ExternalSecret being synced.
    pub fn is_referent(&self) -> bool {
        self.auth.reference_namespaces().iter().any(Option::is_none)
    }
}

/// `tls`: both references or neither (ESO's "when provided, both ClientTLS.ClientCert and
/// ClientTLS.SecretRef should be provided"), with ESO's key defaults (`tls.crt`, `tls.key`,
/// the keys of a `kubernetes.io/tls` Secret).
fn parse_tls(raw: Option<RawTls>) -> Result<Option<ClientTls>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let named = |field: &str, r: SecretKeyRef, default: &str| {
        if r.name.is_empty() {
            return Err(err(field, "needs the name of the Secret"));
        }
        Ok(SecretKeyRef {
            key: if r.key.is_empty() {
                default.to_string()
            } else {
                r.key
            },
            ..r
        })
    };
    match (raw.cert_secret_ref, raw.key_secret_ref) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(ClientTls {
            cert: named("tls.certSecretRef", cert, "tls.crt")?,
            key: named("tls.keySecretRef", key, "tls.key")?,
        })),
        (Some(_), None) => Err(err(
            "tls.keySecretRef",
            "must be set beside tls.certSecretRef: when provided, both the client certificate (certSecretRef) and its private key (keySecretRef) should be provided",
        )),
        (None, Some(_)) => Err(err(
            "tls.certSecretRef",
            "must be set beside tls.keySecretRef: when provided, both the client certificate (certSecretRef) and its private key (keySecretRef) should be provided",
        )),
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `server`: an http(s) URL. Returns it without a trailing slash, and its origin.
fn check_server(server: &str) -> Result<(String, String), ConfigError> {
    let bad = || {
        err(
            "server",
            "must be an http:// or https:// URL such as https://vault.example.com:8200",
        )
    };
    let server = server.trim();
    let (scheme, rest) = server.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err(err(
            "server",
            "must not carry credentials (user:password@): use auth",
        ));
    }
    if authority.is_empty()
        || authority.starts_with(':')
        || authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad());
    }
    let tail = &rest[end..];
    if tail.contains(['?', '#']) {
        return Err(err(
            "server",
            "must not have a query or fragment: write the address of the Vault server",
        ));
    }
    let origin = format!("{scheme}://{}", authority.to_ascii_lowercase());
    let full = format!("{scheme}://{authority}{}", tail.trim_end_matches('/'));
    Ok((full, origin))
}

/// A Secret key reference that must name both `name` and `key`.
fn secret_ref(field: &str, r: SecretKeyRef) -> Result<SecretKeyRef, ConfigError> {
    if r.name.is_empty() || r.key.is_empty() {
        return Err(err(field, "needs both name and key"));
    }
    Ok(r)
}

fn mount(field: &str, path: Option<String>, default: &str) -> Result<String, ConfigError> {
    let path = path.unwrap_or_default();
    let path = path.trim_matches('/');
    let path = if path.is_empty() { default } else { path };
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(err(field, "must be the mount path of the auth method"));
    }
    Ok(path.to_string())
}

fn parse_auth(a: RawAuth) -> Result<Auth, ConfigError> {
    // The methods ESO knows that are not built.
    if a.iam.is_some() {
        return Err(err(
            "auth.iam",
            "AWS IAM authentication is not supported by the esox vault plugin; use kubernetes, jwt, appRole, userPass, ldap, cert or tokenSecretRef",
        ));
    }
    if a.gcp.is_some() {
        return Err(err(
            "auth.gcp",
            "GCP authentication is not supported by the esox vault plugin; use kubernetes, jwt, appRole, userPass, ldap, cert or tokenSecretRef",
        ));
    }
    let set: Vec<&str> = [
        ("tokenSecretRef", a.token_secret_ref.is_some()),
        ("appRole", a.app_role.is_some()),
        ("kubernetes", a.kubernetes.is_some()),
        ("ldap", a.ldap.is_some()),
        ("userPass", a.user_pass.is_some()),
        ("jwt", a.jwt.is_some()),
        ("cert", a.cert.is_some()),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| name)
    .collect();
    if set.len() > 1 {
        return Err(err(
            "auth",
            format!(
                "sets {}: set exactly one of tokenSecretRef, appRole, kubernetes, ldap, userPass, jwt or cert",
                set.join(" and ")
            ),
        ));
    }
    if let Some(r) = a.token_secret_ref {
        return Ok(Auth::Token(secret_ref("auth.tokenSecretRef", r)?));
    }
    if let Some(r) = a.app_role {
        let role_id = match (r.role_id.map(|s| s.trim().to_string()), r.role_ref) {
            (Some(id), _) if !id.is_empty() => RoleId::Inline(id),
            (_, Some(rr)) => RoleId::Secret(secret_ref("auth.appRole.roleRef", rr)?),
            _ => {
                return Err(err(
                    "auth.appRole",
                    "invalid Auth.AppRole: neither `roleId` nor `roleRef` was supplied",
                ));
            }
        };
        return Ok(Auth::AppRole {
            path: mount("auth.appRole.path", r.path, "approle")?,
            role_id,
            secret_ref: secret_ref("auth.appRole.secretRef", r.secret_ref)?,
        });
    }
    if let Some(k) = a.kubernetes {
        if k.role.trim().is_empty() {
            return Err(err("auth.kubernetes.role", "must name the Vault role"));
        }
        let jwt = match (k.service_account_ref, k.secret_ref) {
            (Some(sa), _) => {
                if sa.name.is_empty() {
                    return Err(err("auth.kubernetes.serviceAccountRef.name", "must be set"));
                }
                if sa.audiences.iter().any(|a| a.is_empty()) {
                    return Err(err(
                        "auth.kubernetes.serviceAccountRef.audiences",
                        "must not contain an empty audience",
                    ));
                }
                // None, as in ESO's examples: a token for the API server's own audience, which
                // the host mints only while the operator grants it to this plugin (it does by
                // default; `--plugin-api-audience-tokens`). Naming the role's `audience` is safer.
                let audiences = sa.audiences.clone();
                JwtSource::ServiceAccount {
                    account: sa,
                    audiences,
                    expiration_seconds: DEFAULT_TOKEN_SECONDS,
                }
            }
            (None, Some(s)) => {
                if s.key.is_empty() {
                    return Err(err(
                        "auth.kubernetes.secretRef.key",
                        "must be set (ESO's default is token: write key: token)",
                    ));
                }
                JwtSource::Secret(secret_ref("auth.kubernetes.secretRef", s)?)
            }
            (None, None) => {
                return Err(err(
                    "auth.kubernetes",
                    "needs serviceAccountRef or secretRef: plugins cannot use the controller's own ServiceAccount token",
                ));
            }
        };
        return Ok(Auth::Kubernetes {
            mount_path: mount("auth.kubernetes.mountPath", k.mount_path, "kubernetes")?,
            role: k.role.trim().to_string(),
            jwt,
        });
    }
    for (method, raw) in [("ldap", a.ldap), ("userPass", a.user_pass)] {
        let Some(p) = raw else { continue };
        let field = format!("auth.{method}");
        let username = p.username.trim().to_string();
        if username.is_empty() {
            return Err(err(format!("{field}.username"), "must be set"));
        }
        let Some(s) = p.secret_ref else {
            return Err(err(
                format!("{field}.secretRef"),
                "must reference the Secret key holding the password",
            ));
        };
        return Ok(Auth::Password {
            method: if method == "ldap" { "ldap" } else { "userpass" },
            path: mount(
                &format!("{field}.path"),
                p.path,
                if method == "ldap" { "ldap" } else { "userpass" },
            )?,
            username,
            secret_ref: secret_ref(&format!("{field}.secretRef"), s)?,
        });
    }
    if let Some(j) = a.jwt {
        let jwt = match (j.secret_ref, j.kubernetes_service_account_token) {
            (Some(s), _) => JwtSource::Secret(secret_ref("auth.jwt.secretRef", s)?),
            (None, Some(t)) => {
                let field = "auth.jwt.kubernetesServiceAccountToken";
                if t.service_account_ref.name.is_empty() {
                    return Err(err(
                        format!("{field}.serviceAccountRef.name"),
                        "must be set",
                    ));
                }
                // ESO requests the reference's audiences plus the deprecated field's (default
                // `vault`). The host grants the reference's own and `vault`, so the deprecated
                // field may only add what is granted.
                let extra = t
                    .audiences
                    .unwrap_or_else(|| vec![DEFAULT_JWT_AUDIENCE.to_string()]);
                for aud in &extra {
                    if aud != DEFAULT_JWT_AUDIENCE && !t.service_account_ref.audiences.contains(aud)
                    {
                        return Err(err(
                            format!("{field}.audiences"),
                            "lists an audience that serviceAccountRef.audiences does not: the deprecated audiences field may add only vault; list other audiences in serviceAccountRef.audiences",
                        ));
                    }
                }
                let mut audiences = t.service_account_ref.audiences.clone();
                for aud in extra {
                    if !audiences.contains(&aud) {
                        audiences.push(aud);
                    }
                }
                if audiences.iter().all(|a| a.is_empty()) {
                    return Err(err(
                        format!("{field}.serviceAccountRef.audiences"),
                        "must list at least one audience",
                    ));
                }
                let expiration_seconds = match t.expiration_seconds {
                    None => DEFAULT_TOKEN_SECONDS,
                    Some(s) if (600..=i64::from(u32::MAX)).contains(&s) => s as u32,
                    Some(_) => {
                        return Err(err(
                            format!("{field}.expirationSeconds"),
                            "must be at least 600 (the Kubernetes TokenRequest minimum)",
                        ));
                    }
                };
                JwtSource::ServiceAccount {
                    account: t.service_account_ref,
                    audiences,
                    expiration_seconds,
                }
            }
            (None, None) => {
                return Err(err(
                    "auth.jwt",
                    "neither `secretRef` nor `kubernetesServiceAccountToken` was supplied as token source for jwt authentication",
                ));
            }
        };
        return Ok(Auth::Jwt {
            path: mount("auth.jwt.path", j.path, "jwt")?,
            role: j.role.trim().to_string(),
            jwt,
        });
    }
    if let Some(c) = a.cert {
        // The host reads both keys and presents them; the plugin only checks their shape.
        let selector = |field: &str, r: Option<SecretKeyRef>, what: &str| match r {
            Some(r) => secret_ref(field, r),
            None => Err(err(
                field,
                format!("must reference the Secret key holding the client {what}"),
            )),
        };
        return Ok(Auth::Cert {
            path: mount("auth.cert.path", c.path, "cert")?,
            // Sent as written, as ESO sends it (`{"name": vaultRole}` when it is not empty).
            role: c.vault_role,
            client_cert: selector("auth.cert.clientCert", c.client_cert, "certificate")?,
            secret_ref: selector("auth.cert.secretRef", c.secret_ref, "private key")?,
        });
    }
    Err(err(
        "auth",
        "cannot initialize Vault client: no valid auth method specified (set one of tokenSecretRef, appRole, kubernetes, ldap, userPass, jwt or cert, or leave auth out to send no token)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<VaultConfig, ConfigError> {
        VaultConfig::parse(&v)
    }

    fn token_auth() -> serde_json::Value {
        json!({"tokenSecretRef": {"name": "vault-token", "key": "token"}})
    }

    #[test]
    fn eso_documented_token_store_parses_with_v2_by_default() {
        let c = parse(json!({
            "server": "https://vault.example.com:8200/", "path": "secret", "auth": token_auth()
        }))
        .unwrap();
        assert_eq!(c.server, "https://vault.example.com:8200");
        assert_eq!(c.origin, "https://vault.example.com:8200");
        assert_eq!(c.version, KvVersion::V2);
        assert_eq!(c.path.as_deref(), Some("secret"));
        assert_eq!(
            c.auth,
            Auth::Token(SecretKeyRef {
                name: "vault-token".into(),
                key: "token".into(),
                namespace: None
            })
        );
        assert!(c.is_referent());
        assert!(!c.auth.logs_in());
    }

    #[test]
    fn server_keeps_a_path_prefix_but_the_origin_does_not() {
        let c = parse(json!({"server": "HTTP://Vault.Internal:8200/proxy/", "auth": token_auth()}))
            .unwrap();
        assert_eq!(c.server, "http://Vault.Internal:8200/proxy");
        assert_eq!(c.origin, "http://vault.internal:8200");
        for bad in [
            "vault:8200",
            "ftp://vault",
            "https://",
            "https://user:pw@vault",
            "https://vault/?x=1",
            "",
        ] {
            let e = parse(json!({"server": bad, "auth": token_auth()})).unwrap_err();
            assert_eq!(e.field, "server", "{bad}");
            if bad.contains("pw") {
                assert!(!e.message.contains("pw"), "{}", e.message);
            }
        }
    }

    #[test]
    fn versions_and_paths_are_checked() {
        let c = parse(
            json!({"server": "https://v", "version": "v1", "path": "kv1", "auth": token_auth()}),
        )
        .unwrap();
        assert_eq!(c.version, KvVersion::V1);
        let e = parse(json!({"server": "https://v", "version": "v3", "auth": token_auth()}))
            .unwrap_err();
        assert_eq!(e.field, "version");
        let e =
            parse(json!({"server": "https://v", "path": "/", "auth": token_auth()})).unwrap_err();
        assert_eq!(e.field, "path");
    }

    #[test]
    fn no_auth_sends_no_token_but_an_empty_auth_is_refused() {
        let c = parse(json!({"server": "https://v"})).unwrap();
        assert_eq!(c.auth, Auth::None);
        assert!(!c.is_referent());
        let e = parse(json!({"server": "https://v", "auth": {}})).unwrap_err();
        assert_eq!(e.field, "auth");
        assert!(e.message.contains("no valid auth method"), "{}", e.message);
    }

    #[test]
    fn unsupported_auth_methods_are_refused_by_field() {
        for (method, body) in [
            ("iam", json!({"vaultRole": "r"})),
            ("gcp", json!({"role": "r"})),
        ] {
            let e = parse(json!({"server": "https://v", "auth": {method: body}})).unwrap_err();
            assert_eq!(e.field, format!("auth.{method}"));
            assert!(e.message.contains("not supported"), "{}", e.message);
        }
    }

    fn cert_ref(name: &str, key: &str) -> serde_json::Value {
        json!({"name": name, "key": key})
    }

    #[test]
    fn cert_auth_takes_the_certificate_its_key_a_mount_and_a_role() {
        let c = parse(
            json!({"server": "https://vault.example.com:8200", "auth": {"cert": {
                "clientCert": cert_ref("vault-client", "tls.crt"),
                "secretRef": cert_ref("vault-client", "tls.key"),
                "vaultRole": "esox"
            }}}),
        )
        .unwrap();
        assert_eq!(
            c.auth,
            Auth::Cert {
                path: "cert".into(),
                role: "esox".into(),
                client_cert: key_ref("vault-client", "tls.crt", None),
                secret_ref: key_ref("vault-client", "tls.key", None),
            }
        );
        assert_eq!(c.auth.field(), "auth.cert");
        assert!(c.auth.logs_in());
        assert!(c.is_referent());
        assert_eq!(c.tls, None);
        // A mount path of its own; no role.
        let c = parse(
            json!({"server": "https://v", "auth": {"cert": {"path": "/tls-cert/",
            "clientCert": cert_ref("c", "crt"), "secretRef": cert_ref("k", "key")}}}),
        )
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::Cert { path, role, .. } if path == "tls-cert" && role.is_empty())
        );
        // Each selector names its Secret and key (ESO reads exactly that key, with no default).
        for (cert, field) in [
            (
                json!({"secretRef": cert_ref("k", "tls.key")}),
                "auth.cert.clientCert",
            ),
            (
                json!({"clientCert": cert_ref("c", "tls.crt")}),
                "auth.cert.secretRef",
            ),
            (
                json!({"clientCert": {"name": "c"}, "secretRef": cert_ref("k", "tls.key")}),
                "auth.cert.clientCert",
            ),
            (
                json!({"clientCert": cert_ref("c", "tls.crt"), "secretRef": cert_ref("", "tls.key")}),
                "auth.cert.secretRef",
            ),
            (
                json!({"path": "../x", "clientCert": cert_ref("c", "tls.crt"), "secretRef": cert_ref("k", "tls.key")}),
                "auth.cert.path",
            ),
        ] {
            let e = parse(json!({"server": "https://v", "auth": {"cert": cert}})).unwrap_err();
            assert_eq!(e.field, field, "{cert}");
        }
        // One method per store, cert included.
        let e = parse(json!({"server": "https://v", "auth": {
            "tokenSecretRef": {"name": "t", "key": "k"},
            "cert": {"clientCert": cert_ref("c", "tls.crt"), "secretRef": cert_ref("k", "tls.key")}
        }}))
        .unwrap_err();
        assert_eq!(e.field, "auth");
        assert!(
            e.message.contains("tokenSecretRef and cert"),
            "{}",
            e.message
        );
    }

    #[test]
    fn tls_needs_both_references_and_defaults_their_keys_as_eso() {
        let c = parse(json!({"server": "https://v", "auth": token_auth(), "tls": {
            "certSecretRef": {"name": "vault-mtls"}, "keySecretRef": {"name": "vault-mtls"}
        }}))
        .unwrap();
        assert_eq!(
            c.tls,
            Some(ClientTls {
                cert: key_ref("vault-mtls", "tls.crt", None),
                key: key_ref("vault-mtls", "tls.key", None),
            })
        );
        // The token method is untouched: mutual TLS goes with any auth method, or none.
        assert!(matches!(c.auth, Auth::Token(_)));
        let c = parse(json!({"server": "https://v", "tls": {
            "certSecretRef": {"name": "c", "key": "client.pem", "namespace": "ops"},
            "keySecretRef": {"name": "k", "key": "client-key.pem", "namespace": "ops"}
        }}))
        .unwrap();
        assert_eq!(
            c.tls,
            Some(ClientTls {
                cert: key_ref("c", "client.pem", Some("ops")),
                key: key_ref("k", "client-key.pem", Some("ops")),
            })
        );
        // An empty tls, or empty references, set nothing.
        for empty in [json!({}), json!(null), json!({"certSecretRef": null})] {
            let c = parse(json!({"server": "https://v", "tls": empty})).unwrap();
            assert_eq!(c.tls, None, "{empty}");
        }
        // One reference alone is refused (ESO's ValidateStore), naming the one missing.
        let e = parse(json!({"server": "https://v", "tls": {"certSecretRef": {"name": "c"}}}))
            .unwrap_err();
        assert_eq!(e.field, "tls.keySecretRef");
        assert!(e.message.contains("both"), "{}", e.message);
        let e = parse(
            json!({"server": "https://v", "tls": {"keySecretRef": {"name": "k", "key": "tls.key"}}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "tls.certSecretRef");
        let e = parse(json!({"server": "https://v", "tls": {
            "certSecretRef": {"name": "", "key": "tls.crt"}, "keySecretRef": {"name": "k"}
        }}))
        .unwrap_err();
        assert_eq!(e.field, "tls.certSecretRef");
    }

    #[test]
    fn client_certificates_need_an_https_server() {
        let cert = json!({"cert": {"clientCert": cert_ref("c", "tls.crt"), "secretRef": cert_ref("c", "tls.key")}});
        let tls = json!({"certSecretRef": {"name": "m"}, "keySecretRef": {"name": "m"}});
        for config in [
            json!({"server": "http://vault:8200", "auth": cert}),
            json!({"server": "HTTP://vault:8200", "auth": token_auth(), "tls": tls}),
            json!({"server": "http://vault:8200", "auth": cert, "tls": tls}),
        ] {
            let e = parse(config.clone()).unwrap_err();
            assert_eq!(e.field, "server", "{config}");
            assert!(
                e.message.contains("can only be presented over https"),
                "{}",
                e.message
            );
        }
        assert!(parse(json!({"server": "https://vault:8200", "auth": cert, "tls": tls})).is_ok());
        // Without a certificate, http stays allowed (a dev server, an agent on localhost).
        assert!(
            parse(json!({"server": "http://vault:8200", "auth": token_auth(), "tls": {}})).is_ok()
        );
    }

    #[test]
    fn every_field_of_cert_auth_and_of_tls_is_accepted_and_kept() {
        let r = |name: &str, key: &str| json!({"name": name, "key": key, "namespace": "ops"});
        let config = json!({"server": "https://v",
            "auth": {"cert": {"path": "certs", "vaultRole": "esox",
                "clientCert": r("client", "cert.pem"), "secretRef": r("client-key", "key.pem")}},
            "tls": {"certSecretRef": r("mtls", "crt"), "keySecretRef": r("mtls-key", "key")}});
        let c = parse(config.clone()).unwrap();
        assert_eq!(
            c.auth,
            Auth::Cert {
                path: "certs".into(),
                role: "esox".into(),
                client_cert: key_ref("client", "cert.pem", Some("ops")),
                secret_ref: key_ref("client-key", "key.pem", Some("ops")),
            }
        );
        assert_eq!(
            c.tls,
            Some(ClientTls {
                cert: key_ref("mtls", "crt", Some("ops")),
                key: key_ref("mtls-key", "key", Some("ops")),
            })
        );
        assert!(!c.is_referent());
        // The config above writes every field the schema has under auth.cert and tls: none is
        // left to be accepted and ignored.
        let schema = crate::config_schema();
        let mut checked = 0;
        for (prefix, written) in [
            ("auth.cert", &config["auth"]["cert"]),
            ("tls", &config["tls"]),
        ] {
            let mut node = &schema;
            for part in prefix.split('.') {
                node = &node["properties"][part];
            }
            for (path, _) in settings(node).into_iter().skip(1) {
                let mut value = written;
                for part in path.trim_start_matches('.').split('.') {
                    value = &value[part];
                }
                assert!(!value.is_null(), "{prefix}{path} is not written");
                checked += 1;
            }
        }
        assert_eq!(checked, 10 + 8);
    }

    #[test]
    fn two_auth_methods_are_refused() {
        let e = parse(json!({"server": "https://v", "auth": {
            "tokenSecretRef": {"name": "t", "key": "k"},
            "userPass": {"username": "u", "secretRef": {"name": "p", "key": "k"}}
        }}))
        .unwrap_err();
        assert_eq!(e.field, "auth");
        assert!(
            e.message.contains("tokenSecretRef and userPass"),
            "{}",
            e.message
        );
    }

    #[test]
    fn approle_takes_role_id_inline_or_from_a_secret() {
        let c = parse(json!({"server": "https://v", "auth": {"appRole": {
            "path": "approle", "roleId": " 1234 ", "secretRef": {"name": "s", "key": "id", "namespace": "ops"}
        }}}))
        .unwrap();
        let Auth::AppRole { path, role_id, .. } = &c.auth else {
            panic!()
        };
        assert_eq!(path, "approle");
        assert_eq!(role_id, &RoleId::Inline("1234".into()));
        assert!(!c.is_referent());
        let c = parse(json!({"server": "https://v", "auth": {"appRole": {
            "roleRef": {"name": "r", "key": "role"}, "secretRef": {"name": "s", "key": "id", "namespace": "ops"}
        }}}))
        .unwrap();
        let Auth::AppRole { path, role_id, .. } = &c.auth else {
            panic!()
        };
        assert_eq!(path, "approle");
        assert!(matches!(role_id, RoleId::Secret(r) if r.key == "role"));
        assert!(c.is_referent());
        let e = parse(json!({"server": "https://v", "auth": {"appRole": {
            "secretRef": {"name": "s", "key": "id"}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.appRole");
        let e = parse(json!({"server": "https://v", "auth": {"appRole": {
            "roleId": "x", "secretRef": {"name": "s"}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.appRole.secretRef");
    }

    #[test]
    fn kubernetes_auth_needs_a_token_source_and_takes_audiences_as_written() {
        let c = parse(json!({"server": "https://v", "auth": {"kubernetes": {
            "mountPath": "k8s", "role": "app",
            "serviceAccountRef": {"name": "vault-auth", "audiences": ["vault"]}
        }}}))
        .unwrap();
        assert_eq!(
            c.auth,
            Auth::Kubernetes {
                mount_path: "k8s".into(),
                role: "app".into(),
                jwt: JwtSource::ServiceAccount {
                    account: ServiceAccountRef {
                        name: "vault-auth".into(),
                        namespace: None,
                        audiences: vec!["vault".into()]
                    },
                    audiences: vec!["vault".into()],
                    expiration_seconds: 600
                }
            }
        );
        // ESO's example names no audiences: a token for the API server's own audience.
        let c = parse(json!({"server": "https://v", "auth": {"kubernetes": {
            "role": "app", "serviceAccountRef": {"name": "vault-auth"}
        }}}))
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::Kubernetes { jwt: JwtSource::ServiceAccount { audiences, .. }, .. } if audiences.is_empty()),
            "{:?}",
            c.auth
        );
        let e = parse(json!({"server": "https://v", "auth": {"kubernetes": {
            "role": "app", "serviceAccountRef": {"name": "vault-auth", "audiences": [""]}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.kubernetes.serviceAccountRef.audiences");
        let e = parse(json!({"server": "https://v", "auth": {"kubernetes": {"role": "app"}}}))
            .unwrap_err();
        assert_eq!(e.field, "auth.kubernetes");
        let e = parse(json!({"server": "https://v", "auth": {"kubernetes": {
            "role": "app", "secretRef": {"name": "sa-token"}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.kubernetes.secretRef.key");
        let e = parse(json!({"server": "https://v", "auth": {"kubernetes": {
            "secretRef": {"name": "sa-token", "key": "token"}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.kubernetes.role");
        let c = parse(json!({"server": "https://v", "auth": {"kubernetes": {
            "role": "app", "secretRef": {"name": "sa-token", "key": "token"}
        }}}))
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::Kubernetes { mount_path, .. } if mount_path == "kubernetes")
        );
    }

    #[test]
    fn jwt_auth_defaults_the_audience_to_vault_as_eso_does() {
        let c = parse(json!({"server": "https://v", "auth": {"jwt": {
            "role": "r", "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "sa", "audiences": ["a"]}}
        }}}))
        .unwrap();
        let Auth::Jwt { path, jwt, .. } = &c.auth else {
            panic!()
        };
        assert_eq!(path, "jwt");
        assert!(
            matches!(jwt, JwtSource::ServiceAccount { audiences, expiration_seconds: 600, .. }
            if audiences == &["a".to_string(), "vault".to_string()])
        );
        let e = parse(json!({"server": "https://v", "auth": {"jwt": {
            "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "sa"}, "audiences": ["other"]}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.jwt.kubernetesServiceAccountToken.audiences");
        let e = parse(json!({"server": "https://v", "auth": {"jwt": {
            "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "sa"}, "expirationSeconds": 60}
        }}}))
        .unwrap_err();
        assert_eq!(
            e.field,
            "auth.jwt.kubernetesServiceAccountToken.expirationSeconds"
        );
        let e = parse(json!({"server": "https://v", "auth": {"jwt": {"role": "r"}}})).unwrap_err();
        assert_eq!(e.field, "auth.jwt");
        let c = parse(json!({"server": "https://v", "auth": {"jwt": {
            "path": "oidc", "secretRef": {"name": "j", "key": "jwt", "namespace": "ops"}
        }}}))
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::Jwt { path, jwt: JwtSource::Secret(_), .. } if path == "oidc")
        );
        assert!(!c.is_referent());
    }

    #[test]
    fn userpass_and_ldap_log_in_with_a_password_from_a_secret() {
        let c = parse(json!({"server": "https://v", "auth": {"userPass": {
            "username": "esox", "secretRef": {"name": "p", "key": "password"}
        }}}))
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::Password { method: "userpass", path, username, .. }
            if path == "userpass" && username == "esox")
        );
        let c = parse(json!({"server": "https://v", "auth": {"ldap": {
            "path": "corp-ldap", "username": "esox", "secretRef": {"name": "p", "key": "password"}
        }}}))
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::Password { method: "ldap", path, .. } if path == "corp-ldap")
        );
        assert_eq!(c.auth.field(), "auth.ldap");
        let e = parse(json!({"server": "https://v", "auth": {"userPass": {
            "secretRef": {"name": "p", "key": "password"}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.userPass.username");
        let e =
            parse(json!({"server": "https://v", "auth": {"ldap": {"username": "u"}}})).unwrap_err();
        assert_eq!(e.field, "auth.ldap.secretRef");
        let e = parse(json!({"server": "https://v", "auth": {"userPass": {
            "path": "../x", "username": "u", "secretRef": {"name": "p", "key": "k"}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.userPass.path");
    }

    #[test]
    fn namespaces_headers_and_consistency_options_are_kept() {
        let c = parse(json!({"server": "https://v", "auth": token_auth(),
            "namespace": "team", "readYourWrites": true, "forwardInconsistent": true,
            "headers": {"X-Team": "payments"}}))
        .unwrap();
        assert_eq!(c.namespace.as_deref(), Some("team"));
        assert_eq!(c.auth_namespace.as_deref(), Some("team"));
        assert!(c.read_your_writes && c.forward_inconsistent);
        assert_eq!(c.headers, [("X-Team".to_string(), "payments".to_string())]);
        let mut auth = token_auth();
        auth["namespace"] = json!("admin");
        let c = parse(json!({"server": "https://v", "auth": auth, "namespace": "team"})).unwrap();
        assert_eq!(c.auth_namespace.as_deref(), Some("admin"));
        let e = parse(json!({"server": "https://v", "headers": {"Bad Name": "x"}})).unwrap_err();
        assert_eq!(e.field, "headers");
        let e =
            parse(json!({"server": "https://v", "headers": {"X-A": "SECRETVAL\r\nInjected: 1"}}))
                .unwrap_err();
        assert_eq!(e.field, "headers.X-A");
        assert!(!e.message.contains("SECRETVAL"));
    }

    #[test]
    fn ca_provider_and_check_and_set_follow_eso() {
        assert!(
            parse(json!({"server": "https://v", "caBundle": "AAAA",
            "caProvider": {"type": "ConfigMap", "name": "ca", "key": "ca.crt"}}))
            .is_ok()
        );
        let e = parse(json!({"server": "https://v",
            "caProvider": {"type": "Vault", "name": "ca", "key": "ca.crt"}}))
        .unwrap_err();
        assert_eq!(e.field, "caProvider.type");
        let e = parse(
            json!({"server": "https://v", "version": "v1", "checkAndSet": {"required": true}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "checkAndSet");
        assert!(
            parse(json!({"server": "https://v", "checkAndSet": {"required": true}}))
                .unwrap()
                .check_and_set
        );
        assert!(
            !parse(json!({"server": "https://v", "checkAndSet": {}}))
                .unwrap()
                .check_and_set
        );
        assert!(!parse(json!({"server": "https://v"})).unwrap().check_and_set);
    }

    fn key_ref(name: &str, key: &str, namespace: Option<&str>) -> SecretKeyRef {
        SecretKeyRef {
            name: name.into(),
            key: key.into(),
            namespace: namespace.map(str::to_string),
        }
    }

    /// `v` without any `namespace` key.
    fn without_namespaces(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(k, _)| k.as_str() != "namespace")
                .map(|(k, v)| (k.clone(), without_namespaces(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => other.clone(),
        }
    }

    #[test]
    fn every_credential_reference_keeps_its_name_key_and_namespace() {
        let ops = Some("ops");
        let r = |name: &str, key: &str| json!({"name": name, "key": key, "namespace": "ops"});
        let sa = |audiences: &[&str]| ServiceAccountRef {
            name: "sa".into(),
            namespace: Some("ops".into()),
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
        };
        let cases = [
            (
                json!({"tokenSecretRef": r("t", "token")}),
                Auth::Token(key_ref("t", "token", ops)),
            ),
            (
                json!({"appRole": {"roleRef": r("role", "role-id"), "secretRef": r("s", "secret-id")}}),
                Auth::AppRole {
                    path: "approle".into(),
                    role_id: RoleId::Secret(key_ref("role", "role-id", ops)),
                    secret_ref: key_ref("s", "secret-id", ops),
                },
            ),
            (
                json!({"kubernetes": {"role": "app", "secretRef": r("sa-token", "jwt")}}),
                Auth::Kubernetes {
                    mount_path: "kubernetes".into(),
                    role: "app".into(),
                    jwt: JwtSource::Secret(key_ref("sa-token", "jwt", ops)),
                },
            ),
            (
                json!({"kubernetes": {"role": "app",
                    "serviceAccountRef": {"name": "sa", "namespace": "ops", "audiences": ["vault", "extra"]}}}),
                Auth::Kubernetes {
                    mount_path: "kubernetes".into(),
                    role: "app".into(),
                    jwt: JwtSource::ServiceAccount {
                        account: sa(&["vault", "extra"]),
                        audiences: vec!["vault".into(), "extra".into()],
                        expiration_seconds: 600,
                    },
                },
            ),
            (
                json!({"ldap": {"username": "u", "secretRef": r("ldap-pw", "password")}}),
                Auth::Password {
                    method: "ldap",
                    path: "ldap".into(),
                    username: "u".into(),
                    secret_ref: key_ref("ldap-pw", "password", ops),
                },
            ),
            (
                json!({"userPass": {"username": "u", "secretRef": r("up-pw", "pass")}}),
                Auth::Password {
                    method: "userpass",
                    path: "userpass".into(),
                    username: "u".into(),
                    secret_ref: key_ref("up-pw", "pass", ops),
                },
            ),
            (
                json!({"jwt": {"role": "r", "secretRef": r("j", "jwt")}}),
                Auth::Jwt {
                    path: "jwt".into(),
                    role: "r".into(),
                    jwt: JwtSource::Secret(key_ref("j", "jwt", ops)),
                },
            ),
            (
                json!({"jwt": {"role": "r", "kubernetesServiceAccountToken": {
                    "serviceAccountRef": {"name": "sa", "namespace": "ops"}, "expirationSeconds": 3600}}}),
                Auth::Jwt {
                    path: "jwt".into(),
                    role: "r".into(),
                    jwt: JwtSource::ServiceAccount {
                        account: sa(&[]),
                        audiences: vec!["vault".into()],
                        expiration_seconds: 3600,
                    },
                },
            ),
            (
                json!({"cert": {"clientCert": r("client", "tls.crt"), "secretRef": r("client", "tls.key")}}),
                Auth::Cert {
                    path: "cert".into(),
                    role: String::new(),
                    client_cert: key_ref("client", "tls.crt", ops),
                    secret_ref: key_ref("client", "tls.key", ops),
                },
            ),
        ];
        for (auth, expected) in cases {
            let c = parse(json!({"server": "https://v", "auth": auth})).unwrap();
            assert_eq!(c.auth, expected, "{auth}");
            assert!(!c.is_referent(), "{auth}");
            // Without a namespace each reference is referent: in a ClusterSecretStore it
            // resolves in the ExternalSecret's namespace (the host's rule, as ESO's).
            let c =
                parse(json!({"server": "https://v", "auth": without_namespaces(&auth)})).unwrap();
            assert!(c.is_referent(), "{auth}");
        }
    }

    #[test]
    fn secret_references_without_a_name_or_a_key_are_refused_by_field() {
        for (auth, field) in [
            (
                json!({"tokenSecretRef": {"name": "t"}}),
                "auth.tokenSecretRef",
            ),
            (
                json!({"tokenSecretRef": {"name": "", "key": "token"}}),
                "auth.tokenSecretRef",
            ),
            (
                json!({"appRole": {"roleRef": {"name": "r"}, "secretRef": {"name": "s", "key": "k"}}}),
                "auth.appRole.roleRef",
            ),
            (
                json!({"appRole": {"roleId": "x", "secretRef": {"name": "", "key": "k"}}}),
                "auth.appRole.secretRef",
            ),
            (
                json!({"ldap": {"username": "u", "secretRef": {"name": "p"}}}),
                "auth.ldap.secretRef",
            ),
            (
                json!({"userPass": {"username": "u", "secretRef": {"name": "", "key": "k"}}}),
                "auth.userPass.secretRef",
            ),
            (
                json!({"jwt": {"secretRef": {"name": "j"}}}),
                "auth.jwt.secretRef",
            ),
            (
                json!({"kubernetes": {"role": "r", "secretRef": {"name": "", "key": "token"}}}),
                "auth.kubernetes.secretRef",
            ),
            (
                json!({"kubernetes": {"role": "r", "serviceAccountRef": {"name": "", "audiences": ["vault"]}}}),
                "auth.kubernetes.serviceAccountRef.name",
            ),
            (
                json!({"jwt": {"kubernetesServiceAccountToken": {"serviceAccountRef": {"name": ""}}}}),
                "auth.jwt.kubernetesServiceAccountToken.serviceAccountRef.name",
            ),
        ] {
            let e = parse(json!({"server": "https://v", "auth": auth})).unwrap_err();
            assert_eq!(e.field, field, "{auth}");
        }
        let e = parse(json!({"server": "https://v",
            "caProvider": {"type": "Secret", "name": "ca"}}))
        .unwrap_err();
        assert_eq!(e.field, "caProvider");
        assert!(
            parse(json!({"server": "https://v",
            "caProvider": {"type": "Secret", "name": "ca", "key": "ca.crt", "namespace": "ops"}}))
            .is_ok()
        );
    }

    /// A value for the schema node `node` that is not empty at any depth.
    fn sample(node: &serde_json::Value) -> serde_json::Value {
        match node["type"].as_str() {
            Some("object") => {
                let (name, first) = node["properties"]
                    .as_object()
                    .and_then(|p| p.iter().next())
                    .expect("an object with properties");
                json!({ name.as_str(): sample(first) })
            }
            Some("array") => json!([sample(&node["items"])]),
            Some("integer") => json!(600),
            Some("boolean") => json!(true),
            _ => json!("x"),
        }
    }

    /// Every field at or under the schema node `node`: its path relative to `node` and a value
    /// of `node` that sets that field alone.
    fn settings(node: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
        let mut out = vec![(String::new(), sample(node))];
        if let Some(props) = node["properties"].as_object() {
            for (name, child) in props {
                for (path, value) in settings(child) {
                    out.push((format!(".{name}{path}"), json!({ name.as_str(): value })));
                }
            }
        }
        if node["items"].is_object() {
            for (path, value) in settings(&node["items"]) {
                out.push((format!("[]{path}"), json!([value])));
            }
        }
        out
    }

    #[test]
    fn every_field_of_the_refused_methods_is_refused_by_name() {
        let schema = crate::config_schema();
        let mut checked = Vec::new();
        for refused in ["auth.iam", "auth.gcp"] {
            let mut node = &schema;
            for part in refused.split('.') {
                node = &node["properties"][part];
            }
            for (path, value) in settings(node) {
                let field = format!("{refused}{path}");
                let method = refused.strip_prefix("auth.").unwrap();
                let mut config = json!({"server": "https://v", "auth": { method: value }});
                let e = parse(config.clone()).unwrap_err();
                assert_eq!(e.field, refused, "{field}: {config}");
                assert!(
                    e.message.contains("not supported"),
                    "{field}: {}",
                    e.message
                );
                // Beside a supported method, too.
                config["auth"]["tokenSecretRef"] = json!({"name": "t", "key": "token"});
                assert_eq!(parse(config).unwrap_err().field, refused, "{field}");
                checked.push(field);
            }
        }
        // Every field of the schema under them: auth.iam 26, auth.gcp 24.
        assert_eq!(checked.len(), 26 + 24, "{checked:?}");
        assert!(
            checked
                .contains(&"auth.gcp.workloadIdentity.serviceAccountRef.audiences[]".to_string())
        );
    }

    #[test]
    fn malformed_fields_are_named_without_their_values() {
        let e = parse(json!({"server": "https://v", "auth": {"appRole": {
            "roleId": 987654321, "secretRef": {"name": "s", "key": "k"}
        }}}))
        .unwrap_err();
        assert_eq!(e.field, "auth.appRole.roleId");
        assert!(!e.message.contains("987654321"), "{}", e.message);
        let e = parse(json!({"server": "https://v", "headers": {"X": 123456789}})).unwrap_err();
        assert_eq!(e.field, "headers.X");
        assert!(!e.message.contains("123456789"));
        let e = parse(json!({"path": "secret"})).unwrap_err();
        assert!(e.message.contains("server"), "{}", e.message);
    }

    #[test]
    fn a_cluster_stores_ca_provider_names_its_namespace() {
        let with_ca = |ca: serde_json::Value| {
            parse(json!({"server": "https://v", "caProvider": ca, "auth": {"tokenSecretRef": {"name": "t", "key": "token", "namespace": "ops"}}}))
                .unwrap()
        };
        let cluster = StoreContext::cluster_secret_store("c", Some("team"));
        let e = with_ca(json!({"type": "ConfigMap", "name": "ca", "key": "ca.crt"}))
            .check_store(&cluster)
            .unwrap_err();
        assert_eq!(e.field, "caProvider.namespace");
        with_ca(json!({"type": "ConfigMap", "name": "ca", "key": "ca.crt", "namespace": "ops"}))
            .check_store(&cluster)
            .unwrap();
        with_ca(json!({"type": "ConfigMap", "name": "ca", "key": "ca.crt"}))
            .check_store(&StoreContext::secret_store("team", "s"))
            .unwrap();
    }
}
