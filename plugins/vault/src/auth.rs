//! Logging in to Vault: the `POST auth/<mount>/login` request each method sends (cert auth's
//! certificate travels in the TLS handshake, presented by the host), the token its answer
//! carries, and when a token must be renewed by logging in again. Pure, so it is
//! unit-tested natively; the client ([`crate::client`]) does the I/O.

use esox_plugin_sdk::{Error, serde_json};

use crate::config::Auth;
use crate::kv::encode_path;

/// Credentials read through the host for one login. Never logged or put in an error.
pub enum Credentials {
    AppRole {
        role_id: String,
        secret_id: String,
    },
    Jwt(String),
    Password(String),
    /// Nothing the plugin reads: the host presents the client certificate (`auth.cert`) in
    /// the TLS handshake, and Vault's cert auth logs in whoever presented it.
    ClientCertificate,
}

/// A login request: the Vault path (under `/v1/`) and the JSON body.
pub struct LoginRequest {
    pub path: String,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body holds credentials.
        f.debug_struct("LoginRequest")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The mount path of a login method and the config field that sets it.
pub fn mount_of(auth: &Auth) -> Option<(&str, String)> {
    match auth {
        Auth::None | Auth::Token(_) => None,
        Auth::AppRole { path, .. } | Auth::Jwt { path, .. } | Auth::Password { path, .. } => {
            Some((path.as_str(), format!("{}.path", auth.field())))
        }
        Auth::Kubernetes { mount_path, .. } => {
            Some((mount_path.as_str(), "auth.kubernetes.mountPath".to_string()))
        }
        Auth::Cert { path, .. } => Some((path.as_str(), "auth.cert.path".to_string())),
    }
}

/// The request that logs in with `auth` and `credentials` (Vault's HTTP API for each method,
/// as the Go client's auth helpers and ESO send it).
pub fn login_request(auth: &Auth, credentials: &Credentials) -> Result<LoginRequest, Error> {
    let body = |v: serde_json::Value| v.to_string().into_bytes();
    let mismatch = || Error::backend("internal error: credentials do not fit the auth method");
    Ok(match (auth, credentials) {
        (Auth::AppRole { path, .. }, Credentials::AppRole { role_id, secret_id }) => LoginRequest {
            path: format!("auth/{path}/login"),
            body: body(serde_json::json!({"role_id": role_id, "secret_id": secret_id})),
        },
        (
            Auth::Kubernetes {
                mount_path, role, ..
            },
            Credentials::Jwt(jwt),
        ) => LoginRequest {
            path: format!("auth/{mount_path}/login"),
            body: body(serde_json::json!({"role": role, "jwt": jwt})),
        },
        (Auth::Jwt { path, role, .. }, Credentials::Jwt(jwt)) => LoginRequest {
            path: format!("auth/{path}/login"),
            body: body(serde_json::json!({"role": role, "jwt": jwt})),
        },
        (Auth::Password { path, username, .. }, Credentials::Password(password)) => LoginRequest {
            // The username is one path segment: a `/` in it must not make another.
            path: format!(
                "auth/{path}/login/{}",
                encode_path(username).replace('/', "%2F")
            ),
            body: body(serde_json::json!({"password": password})),
        },
        // ESO's `auth/<path>/login` with `{"name": vaultRole}`, or no role: Vault then tries
        // every role of the mount that trusts the presented certificate.
        (Auth::Cert { path, role, .. }, Credentials::ClientCertificate) => LoginRequest {
            path: format!("auth/{path}/login"),
            body: body(if role.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({"name": role})
            }),
        },
        _ => return Err(mismatch()),
    })
}

/// A Vault token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    pub value: String,
    /// Unix seconds after which the token is renewed by logging in again; None: it does not
    /// expire (or came from a Secret, and is re-read when Vault refuses it).
    pub refresh_at: Option<u64>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Whether the token can still be used at `now` (Unix seconds).
    pub fn usable(&self, now: u64) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }
}

/// The token of a login answer (`auth.client_token`, valid `auth.lease_duration` seconds).
/// It is renewed a minute before it expires (ESO treats tokens with under a minute left as
/// expired), or halfway through shorter leases.
pub fn decode_login(body: &[u8], now: u64) -> Result<Token, Error> {
    #[derive(serde::Deserialize)]
    struct Answer {
        auth: Option<AuthBlock>,
    }
    #[derive(serde::Deserialize)]
    struct AuthBlock {
        #[serde(default)]
        client_token: String,
        #[serde(default)]
        lease_duration: u64,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| {
        Error::backend("cannot parse Vault authentication token: the login answer is not JSON")
    })?;
    let auth = answer
        .auth
        .filter(|a| !a.client_token.is_empty())
        .ok_or_else(|| {
            Error::backend("cannot parse Vault authentication token: the login answer has none")
        })?;
    let refresh_at = match auth.lease_duration {
        0 => None,
        lease => Some(now + lease - (lease / 2).min(60)),
    };
    Ok(Token {
        value: auth.client_token,
        refresh_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VaultConfig;
    use serde_json::json;

    fn auth(v: serde_json::Value) -> Auth {
        VaultConfig::parse(&json!({"server": "https://v", "auth": v}))
            .unwrap()
            .auth
    }

    fn body(r: &LoginRequest) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn each_method_posts_to_its_mount_with_its_fields() {
        let a = auth(json!({"appRole": {"path": "ar", "roleId": "rid",
            "secretRef": {"name": "s", "key": "k"}}}));
        let r = login_request(
            &a,
            &Credentials::AppRole {
                role_id: "rid".into(),
                secret_id: "sid".into(),
            },
        )
        .unwrap();
        assert_eq!(r.path, "auth/ar/login");
        assert_eq!(body(&r), json!({"role_id": "rid", "secret_id": "sid"}));

        let a = auth(json!({"kubernetes": {"role": "app",
            "serviceAccountRef": {"name": "sa", "audiences": ["vault"]}}}));
        let r = login_request(&a, &Credentials::Jwt("eyJ".into())).unwrap();
        assert_eq!(r.path, "auth/kubernetes/login");
        assert_eq!(body(&r), json!({"role": "app", "jwt": "eyJ"}));

        let a = auth(json!({"jwt": {"path": "oidc", "secretRef": {"name": "j", "key": "t"}}}));
        let r = login_request(&a, &Credentials::Jwt("eyJ".into())).unwrap();
        assert_eq!(r.path, "auth/oidc/login");
        assert_eq!(body(&r), json!({"role": "", "jwt": "eyJ"}));

        let a = auth(json!({"userPass": {"username": "a/b c",
            "secretRef": {"name": "p", "key": "k"}}}));
        let r = login_request(&a, &Credentials::Password("pw".into())).unwrap();
        assert_eq!(r.path, "auth/userpass/login/a%2Fb%20c");
        assert_eq!(body(&r), json!({"password": "pw"}));

        let a = auth(json!({"ldap": {"username": "u", "secretRef": {"name": "p", "key": "k"}}}));
        let r = login_request(&a, &Credentials::Password("pw".into())).unwrap();
        assert_eq!(r.path, "auth/ldap/login/u");
        assert!(!format!("{r:?}").contains("pw"));

        assert!(login_request(&a, &Credentials::Jwt("x".into())).is_err());
    }

    #[test]
    fn jwt_logins_send_the_trimmed_role_to_the_default_mount() {
        let a = auth(json!({"jwt": {"role": " reader ",
            "secretRef": {"name": "j", "key": "jwt"}}}));
        let r = login_request(&a, &Credentials::Jwt("eyJ.jwt".into())).unwrap();
        assert_eq!(r.path, "auth/jwt/login");
        assert_eq!(body(&r), json!({"role": "reader", "jwt": "eyJ.jwt"}));
        let a = auth(json!({"jwt": {"path": "/oidc/", "role": "r",
            "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "sa"}}}}));
        let r = login_request(&a, &Credentials::Jwt("t".into())).unwrap();
        assert_eq!(r.path, "auth/oidc/login");
        assert_eq!(mount_of(&a), Some(("oidc", "auth.jwt.path".to_string())));
    }

    #[test]
    fn mounts_name_their_field() {
        let a = auth(json!({"kubernetes": {"mountPath": "k", "role": "r",
            "secretRef": {"name": "s", "key": "token"}}}));
        assert_eq!(
            mount_of(&a),
            Some(("k", "auth.kubernetes.mountPath".to_string()))
        );
        let a =
            auth(json!({"userPass": {"username": "u", "secretRef": {"name": "p", "key": "k"}}}));
        assert_eq!(
            mount_of(&a),
            Some(("userpass", "auth.userPass.path".to_string()))
        );
        let a = auth(json!({"tokenSecretRef": {"name": "t", "key": "k"}}));
        assert_eq!(mount_of(&a), None);
    }

    #[test]
    fn cert_logins_post_the_role_name_to_the_cert_mount() {
        let selectors = json!({"clientCert": {"name": "vault-client", "key": "tls.crt"},
            "secretRef": {"name": "vault-client", "key": "tls.key"}});
        let mut cert = selectors.clone();
        cert["vaultRole"] = json!("esox");
        let a = auth(json!({ "cert": cert }));
        let r = login_request(&a, &Credentials::ClientCertificate).unwrap();
        assert_eq!(r.path, "auth/cert/login");
        assert_eq!(body(&r), json!({"name": "esox"}));
        assert_eq!(mount_of(&a), Some(("cert", "auth.cert.path".to_string())));
        assert!(a.logs_in());
        // No role: an empty body, and Vault matches the certificate against the mount's roles.
        let mut cert = selectors.clone();
        cert["path"] = json!("/tls-cert/");
        let a = auth(json!({ "cert": cert }));
        let r = login_request(&a, &Credentials::ClientCertificate).unwrap();
        assert_eq!(r.path, "auth/tls-cert/login");
        assert_eq!(body(&r), json!({}));
        assert_eq!(
            mount_of(&a),
            Some(("tls-cert", "auth.cert.path".to_string()))
        );
        // The certificate is the host's to present: no credential the plugin reads fits.
        assert!(login_request(&a, &Credentials::Jwt("x".into())).is_err());
        let other = auth(json!({"jwt": {"secretRef": {"name": "j", "key": "t"}}}));
        assert!(login_request(&other, &Credentials::ClientCertificate).is_err());
    }

    #[test]
    fn login_answers_give_a_token_renewed_before_it_expires() {
        let t = decode_login(
            br#"{"auth":{"client_token":"hvs.X","lease_duration":3600,"renewable":true}}"#,
            1000,
        )
        .unwrap();
        assert_eq!(t.value, "hvs.X");
        assert_eq!(t.refresh_at, Some(1000 + 3600 - 60));
        assert!(t.usable(4539) && !t.usable(4540));
        let t = decode_login(br#"{"auth":{"client_token":"t","lease_duration":30}}"#, 0).unwrap();
        assert_eq!(t.refresh_at, Some(15));
        let t = decode_login(br#"{"auth":{"client_token":"t","lease_duration":0}}"#, 0).unwrap();
        assert!(t.usable(u64::MAX));
        assert!(decode_login(br#"{"auth":null}"#, 0).is_err());
        assert!(decode_login(b"nope", 0).is_err());
        let t = decode_login(
            br#"{"auth":{"client_token":"hvs.SECRET","lease_duration":9}}"#,
            0,
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("hvs.SECRET"));
    }
}
