//! One store's client: its credential (a bearer token read through the host, a
//! ServiceAccount token the host mints, or a client certificate the host presents in the TLS
//! handshake), requests to the API server over wasi:http, and the mapping of the API's answers
//! to the contract's errors.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use esox_plugin_sdk::{
    Error, FindQuery, PushRef, RemoteRef, SecretClient, SecretMap, StoreContext, Validation, host,
    http, serde_json,
};
use serde::Deserialize;
use wstd::future::FutureExt as _;

use crate::config::{Auth, KubernetesConfig};
use crate::push::{self, ApiRequest, Existing};
use crate::secret::{self, Secret};

/// How long one exchange with the API server may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A bearer token read from a Secret is read again after this long, so a rotated token is used.
pub const TOKEN_REREAD: Duration = Duration::from_secs(5 * 60);
/// A minted ServiceAccount token is replaced this long before it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// ESO's TokenRequest lifetime (the operator's cap may shorten it).
pub const TOKEN_LIFETIME_SECONDS: u32 = 3600;

/// A token and when to get a new one. Debug never shows the token.
struct Cached {
    token: String,
    refresh_at: SystemTime,
}

/// The kubernetes store's client.
pub struct KubernetesClient {
    config: KubernetesConfig,
    /// `None`: a ClusterSecretStore with referent auth opened without an ExternalSecret
    /// namespace; it cannot authenticate, only answer `validate` with `unknown` (as ESO).
    auth: Option<Auth>,
    /// ESO answers `unknown` to Validate for a ClusterSecretStore with referent auth.
    referent_cluster_store: bool,
    /// Only a ClusterSecretStore may push to another namespace (`remoteNamespace` metadata).
    cluster_store: bool,
    cached: RefCell<Option<Cached>>,
}

impl KubernetesClient {
    /// A client for `store`: checks ESO's store-kind rules and gets the first token, so a wrong
    /// reference shows when the store is opened (as ESO's NewClient does).
    pub fn new(config: KubernetesConfig, store: &StoreContext) -> Result<Self, Error> {
        config.check_store(store)?;
        let referent_cluster_store = store.is_cluster_store() && config.auth.is_referent();
        let auth = if referent_cluster_store && store.referent_namespace.is_none() {
            None
        } else {
            Some(config.auth.clone())
        };
        let client = KubernetesClient {
            config,
            auth,
            referent_cluster_store,
            cluster_store: store.is_cluster_store(),
            cached: RefCell::new(None),
        };
        if client.auth.is_some() {
            client.token()?;
        }
        Ok(client)
    }

    /// The bearer token to send, from the cache while it is fresh; `None` with a client
    /// certificate, which the host presents in the TLS handshake instead.
    fn token(&self) -> Result<Option<String>, Error> {
        let now = SystemTime::now();
        if let Some(c) = self.cached.borrow().as_ref()
            && now < c.refresh_at
        {
            return Ok(Some(c.token.clone()));
        }
        let Some(auth) = &self.auth else {
            let field = self
                .config
                .auth
                .references()
                .into_iter()
                .find(|(_, ns)| ns.is_none())
                .map_or("auth", |(path, _)| path);
            return Err(Error::invalid_config(
                format!("{field}.namespace"),
                "the reference is referent (no namespace) and this ClusterSecretStore was opened without an ExternalSecret namespace to resolve it in",
            ));
        };
        if !sends_bearer_token(auth) {
            return Ok(None);
        }
        let fresh = fetch_token(auth, now)?;
        let token = fresh.token.clone();
        *self.cached.borrow_mut() = Some(fresh);
        Ok(Some(token))
    }

    /// Send one request and return the answer's body, or the error its status means.
    fn call(
        &self,
        method: http::Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, Error> {
        let token = self.token()?;
        let uri: http::Uri = url.parse().map_err(|_| {
            Error::invalid_config("server.url", "does not make a valid request URL")
        })?;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("Accept", "application/json");
        if let Some(token) = token {
            let bearer = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Error::invalid_config(
                    self.config.auth.field(),
                    "the token contains characters an HTTP header cannot carry",
                )
            })?;
            builder = builder.header("Authorization", bearer);
        }
        let body = match body {
            Some(b) => {
                builder = builder.header("Content-Type", "application/json");
                http::body::Body::from(b)
            }
            None => http::body::Body::empty(),
        };
        let request = builder
            .body(body)
            .map_err(|_| Error::invalid_config("server.url", "does not make a valid request"))?;
        let exchange = async move {
            let mut response = http::Client::new()
                .send(request)
                .await
                .map_err(|e| Error::http("calling the Kubernetes API", &e))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response
                .body_mut()
                .contents()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| Error::http("reading the Kubernetes API's answer", &e))?;
            Ok::<_, Error>((status, retry_after, body))
        };
        let (status, retry_after, body) = esox_plugin_sdk::block_on(async {
            exchange
                .timeout(wstd::time::Duration::from(REQUEST_TIMEOUT))
                .await
                .map_err(|_| {
                    Error::unavailable(format!(
                        "the Kubernetes API did not answer within {}s",
                        REQUEST_TIMEOUT.as_secs()
                    ))
                })?
        })?;
        match status_error(status, retry_after.as_deref(), &body) {
            Some(e) => Err(e),
            None => Ok(body),
        }
    }

    fn read_secret(&self, name: &str) -> Result<Secret, Error> {
        let url = secret_url(&self.config.base, &self.config.remote_namespace, name)?;
        secret::decode_secret(&self.call(http::Method::GET, &url, None)?)
    }

    /// A Secret of `namespace` both decoded and as the API's JSON, `None` when it is missing.
    fn read_existing(&self, namespace: &str, name: &str) -> Result<Option<Existing>, Error> {
        let url = secret_url(&self.config.base, namespace, name)?;
        let body = match self.call(http::Method::GET, &url, None) {
            Ok(body) => body,
            Err(Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let secret = secret::decode_secret(&body)?;
        let raw = serde_json::from_slice(&body).map_err(|_| {
            Error::backend("the Kubernetes API answered with a Secret that could not be decoded")
        })?;
        Ok(Some(Existing { raw, secret }))
    }

    /// Send a write. A 404 means the Secret went away between the read and the write: the
    /// caller decides what that means.
    fn send(&self, request: ApiRequest) -> Result<(), Error> {
        let body = request.body.map(|b| b.to_string().into_bytes());
        self.call(request.method, &request.url, body).map(|_| ())
    }

    /// The namespace a push, delete or exists check of `remote` addresses.
    fn push_target(&self, remote: &PushRef) -> Result<(Option<push::PushMetadata>, String), Error> {
        let meta = push::parse_metadata(remote.metadata.as_deref())?;
        let namespace = push::target_namespace(
            meta.as_ref(),
            self.cluster_store,
            &self.config.remote_namespace,
        )?;
        Ok((meta, namespace))
    }

    fn list_secrets(&self, selector: Option<&str>) -> Result<Vec<Secret>, Error> {
        let url = list_url(&self.config.base, &self.config.remote_namespace, selector);
        self.call(http::Method::GET, &url, None)
            .and_then(|body| secret::decode_secret_list(&body))
            .map_err(|e| with_context(e, "unable to list secrets"))
    }

    fn review(&self, kind: &str, spec: serde_json::Value) -> Result<Vec<u8>, Error> {
        let url = format!(
            "{}/apis/authorization.k8s.io/v1/{}s",
            self.config.base,
            kind.to_ascii_lowercase()
        );
        let body = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": kind,
            "spec": spec,
        });
        self.call(
            http::Method::POST,
            &url,
            Some(body.to_string().into_bytes()),
        )
    }
}

/// Get a token for `auth` at `now`, through the host (a client certificate has none).
fn fetch_token(auth: &Auth, now: SystemTime) -> Result<Cached, Error> {
    let name_field = |e: Error, field: &str| match e {
        Error::InvalidConfig(c) if c.field.is_empty() => Error::invalid_config(field, c.message),
        other => other,
    };
    match auth {
        Auth::Token(s) => {
            let field = "auth.token.bearerToken";
            let bytes = host::secret_key(&s.name, &s.key, s.namespace.as_deref())
                .map_err(|e| name_field(e, field))?;
            let token = String::from_utf8(bytes)
                .map_err(|_| Error::invalid_config(field, "the token is not UTF-8 text"))?;
            let token = token.trim().to_string();
            if token.is_empty() {
                return Err(Error::invalid_config(field, "the token is empty"));
            }
            Ok(Cached {
                token,
                refresh_at: now + TOKEN_REREAD,
            })
        }
        Auth::ServiceAccount {
            selector,
            audiences,
        } => {
            let minted = host::service_account_token(
                &selector.name,
                selector.namespace.as_deref(),
                audiences,
                Some(TOKEN_LIFETIME_SECONDS),
            )
            .map_err(|e| name_field(e, "auth.serviceAccount"))?;
            let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(minted.expires_at);
            Ok(Cached {
                token: minted.token,
                refresh_at: refresh_at(now, expires),
            })
        }
        Auth::Cert { .. } => Err(Error::backend(
            "internal error: a client certificate is presented by the host, not sent as a token",
        )),
    }
}

/// Whether requests carry `Authorization: Bearer`: not with a client certificate (ESO's
/// `auth.cert` sets the TLS client config only; the host presents the pair).
pub fn sends_bearer_token(auth: &Auth) -> bool {
    !matches!(auth, Auth::Cert { .. })
}

/// When to replace a token that expires at `expires`: [`REFRESH_MARGIN`] before, or halfway
/// for a token that lives shorter than twice the margin.
pub fn refresh_at(now: SystemTime, expires: SystemTime) -> SystemTime {
    let lifetime = expires.duration_since(now).unwrap_or_default();
    now + lifetime.saturating_sub(REFRESH_MARGIN.min(lifetime / 2))
}

/// `GET` URL of one Secret. The name is checked as client-go checks a path segment.
pub fn secret_url(base: &str, namespace: &str, name: &str) -> Result<String, Error> {
    if name.is_empty() {
        return Err(Error::backend("resource name may not be empty"));
    }
    let problem = match name {
        "." => Some("may not be '.'"),
        ".." => Some("may not be '..'"),
        _ if name.contains('/') => Some("may not contain '/'"),
        _ if name.contains('%') => Some("may not contain '%'"),
        _ => None,
    };
    if let Some(p) = problem {
        return Err(Error::backend(format!(
            "invalid resource name {name:?}: [{p}]"
        )));
    }
    Ok(format!(
        "{base}/api/v1/namespaces/{namespace}/secrets/{}",
        percent_encode(name)
    ))
}

/// `GET` URL of the Secrets of a namespace, with a label selector when given.
pub fn list_url(base: &str, namespace: &str, selector: Option<&str>) -> String {
    let mut url = format!("{base}/api/v1/namespaces/{namespace}/secrets");
    if let Some(s) = selector.filter(|s| !s.is_empty()) {
        url.push_str("?labelSelector=");
        url.push_str(&percent_encode(s));
    }
    url
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error an answer's status means, with the API's `Status.message` when it sent one
/// (client-go's error text, which ESO reports): 404 not found, 401/403 permission denied, 429
/// throttled, 409 (a write conflicting with a concurrent change) and 5xx unavailable, any
/// other non-2xx a backend error.
pub fn status_error(status: u16, retry_after: Option<&str>, body: &[u8]) -> Option<Error> {
    if (200..300).contains(&status) {
        return None;
    }
    let message = secret::status_message(body);
    let or = |default: String| message.clone().unwrap_or(default);
    Some(match status {
        404 => Error::NotFound,
        401 => Error::permission_denied(or("Unauthorized".into())),
        403 => Error::permission_denied(or("Forbidden".into())),
        429 => Error::throttled(
            retry_after
                .and_then(|r| r.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            or("the Kubernetes API asked to slow down (HTTP 429)".into()),
        ),
        409 => Error::unavailable(or(
            "the Kubernetes API answered HTTP 409 Conflict: the Secret changed meanwhile".into(),
        )),
        s if s >= 500 => Error::unavailable(or(format!("the Kubernetes API answered HTTP {s}"))),
        s => Error::backend(or(format!("the Kubernetes API answered HTTP {s}"))),
    })
}

/// The same error with `prefix: ` before its message (ESO wraps errors this way).
pub fn with_context(e: Error, prefix: &str) -> Error {
    let p = |m: String| format!("{prefix}: {m}");
    match e {
        Error::PermissionDenied(m) => Error::PermissionDenied(p(m)),
        Error::Unavailable(m) => Error::Unavailable(p(m)),
        Error::Backend(m) => Error::Backend(p(m)),
        Error::EgressDenied(m) => Error::EgressDenied(p(m)),
        Error::Unsupported(m) => Error::Unsupported(p(m)),
        Error::Throttled(mut t) => {
            t.message = p(t.message);
            Error::Throttled(t)
        }
        Error::InvalidConfig(mut c) => {
            c.message = p(c.message);
            Error::InvalidConfig(c)
        }
        Error::NotFound => Error::backend(p("the Kubernetes API answered 404 Not Found".into())),
        other => other,
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResourceRule {
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    api_groups: Option<Vec<String>>,
    #[serde(default)]
    resources: Vec<String>,
}

/// Whether a SelfSubjectRulesReview answer lets the caller get Secrets (ESO's check: a rule on
/// `secrets` or `*`, with verb `get` or `*`, in the core group, `*` or no group).
pub fn rules_allow_get_secrets(body: &[u8]) -> Result<bool, Error> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        #[serde(default)]
        resource_rules: Vec<ResourceRule>,
    }
    #[derive(Deserialize)]
    struct Review {
        #[serde(default)]
        status: Option<Status>,
    }
    let review: Review = serde_json::from_slice(body).map_err(|_| {
        Error::backend(
            "the Kubernetes API answered with a SelfSubjectRulesReview that could not be decoded",
        )
    })?;
    let has = |list: &[String], want: &str| list.iter().any(|x| x == want || x == "*");
    Ok(review
        .status
        .unwrap_or_default()
        .resource_rules
        .iter()
        .any(|r| {
            has(&r.resources, "secrets")
                && has(&r.verbs, "get")
                && r.api_groups
                    .as_deref()
                    .is_none_or(|g| g.is_empty() || has(g, ""))
        }))
}

/// Whether a SelfSubjectAccessReview answer says allowed.
pub fn access_allowed(body: &[u8]) -> Result<bool, Error> {
    #[derive(Deserialize, Default)]
    struct Status {
        #[serde(default)]
        allowed: bool,
    }
    #[derive(Deserialize)]
    struct Review {
        #[serde(default)]
        status: Option<Status>,
    }
    let review: Review = serde_json::from_slice(body).map_err(|_| {
        Error::backend(
            "the Kubernetes API answered with a SelfSubjectAccessReview that could not be decoded",
        )
    })?;
    Ok(review.status.unwrap_or_default().allowed)
}

impl SecretClient for KubernetesClient {
    /// ESO's `GetSecret`: `GET /api/v1/namespaces/<remoteNamespace>/secrets/<key>`. Like ESO,
    /// `version` is ignored (a Secret has one version).
    fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        secret::get_secret(&self.read_secret(&remote.key)?, remote)
    }

    /// Each Secret read once, every reference to it answered from that read with ESO's own
    /// property rules (which differ from the SDK's whole-value default).
    fn get_secrets(&self, remotes: &[RemoteRef]) -> Vec<Result<Vec<u8>, Error>> {
        let mut read: HashMap<String, Result<Secret, Error>> = HashMap::new();
        remotes
            .iter()
            .map(|r| {
                match read
                    .entry(r.key.clone())
                    .or_insert_with(|| self.read_secret(&r.key))
                {
                    Ok(s) => secret::get_secret(s, r),
                    Err(e) => Err(e.clone()),
                }
            })
            .collect()
    }

    /// ESO's `GetSecretMap`: the Secret's decoded data (or its metadata).
    fn get_secret_map(&self, remote: &RemoteRef) -> Result<SecretMap, Error> {
        secret::get_secret_map(&self.read_secret(&remote.key)?, remote)
    }

    /// ESO's `GetAllSecrets`: tags (a label selector) win over a name regexp; each found
    /// Secret's data as JSON under its name. `find.path` is ignored, as ESO ignores it.
    fn get_all_secrets(&self, query: &FindQuery) -> Result<SecretMap, Error> {
        if !query.tags.is_empty() {
            let selector = secret::label_selector(&query.tags).map_err(|e| {
                Error::invalid_config("", format!("unable to validate selector tags: {e}"))
            })?;
            let secrets = self.list_secrets(Some(&selector))?;
            return Ok(secrets.iter().map(secret::found).collect());
        }
        let Some(pattern) = query.name_regexp.as_deref() else {
            return Err(Error::invalid_config(
                "",
                "find needs name.regexp or tags (the kubernetes provider ignores path)",
            ));
        };
        let matcher = regex::Regex::new(pattern).map_err(|e| {
            Error::invalid_config(
                "",
                format!("could not compile find.name.regexp [{pattern}]: {e}"),
            )
        })?;
        let secrets = self.list_secrets(None)?;
        Ok(secrets
            .iter()
            .filter(|s| matcher.is_match(&s.metadata.name))
            .map(secret::found)
            .collect())
    }

    /// ESO's `PushSecret` ([`push`]): read the Secret `remoteKey` of `remoteNamespace` (the
    /// push metadata's, for a ClusterSecretStore), then create it, update it (`PUT` with the
    /// `resourceVersion` read) or, when nothing would change, leave it.
    fn push_secret(&self, remote: &PushRef, value: Vec<u8>) -> Result<(), Error> {
        let pushed = push::pushed(remote.property.as_deref(), value)?;
        let (meta, namespace) = self.push_target(remote)?;
        let name = &remote.remote_key;
        let existing = self.read_existing(&namespace, name)?;
        let secret_url = secret_url(&self.config.base, &namespace, name)?;
        let collection_url = list_url(&self.config.base, &namespace, None);
        let urls = push::Urls {
            secret_url: &secret_url,
            collection_url: &collection_url,
        };
        let Some(request) = push::plan_push(
            &urls,
            &namespace,
            name,
            existing.as_ref(),
            meta.as_ref(),
            &pushed,
        )?
        else {
            return Ok(());
        };
        self.send(request).map_err(|e| match e {
            Error::NotFound => Error::unavailable(format!(
                "Secret {namespace}/{name} was deleted while it was being updated"
            )),
            other => other,
        })
    }

    /// ESO's `DeleteSecret`: the property's key, or the whole Secret when there is no property
    /// or it was the last key. A missing Secret or property is already deleted.
    fn delete_secret(&self, remote: &PushRef) -> Result<(), Error> {
        let (_, namespace) = self.push_target(remote)?;
        let existing = self.read_existing(&namespace, &remote.remote_key)?;
        let url = secret_url(&self.config.base, &namespace, &remote.remote_key)?;
        match push::plan_delete(&url, remote.property.as_deref(), existing.as_ref()) {
            None => Ok(()),
            Some(request) => match self.send(request) {
                Err(Error::NotFound) => Ok(()),
                other => other,
            },
        }
    }

    /// ESO's `SecretExists`: the Secret exists, and has the property's key if one is given.
    fn secret_exists(&self, remote: &PushRef) -> Result<bool, Error> {
        let (_, namespace) = self.push_target(remote)?;
        let existing = self.read_existing(&namespace, &remote.remote_key)?;
        Ok(push::exists(
            existing.as_ref().map(|e| &e.secret),
            remote.property.as_deref(),
        ))
    }

    /// ESO's `Validate`: a SelfSubjectRulesReview in `remoteNamespace`, then a
    /// SelfSubjectAccessReview for `get secrets`; `unknown` for a ClusterSecretStore with
    /// referent auth.
    fn validate(&self) -> Result<Validation, Error> {
        if self.referent_cluster_store {
            return Ok(Validation::Unknown);
        }
        let context = "could not verify if client is valid";
        let ns = &self.config.remote_namespace;
        let rules = self
            .review(
                "SelfSubjectRulesReview",
                serde_json::json!({"namespace": ns}),
            )
            .and_then(|b| rules_allow_get_secrets(&b))
            .map_err(|e| with_context(e, context))?;
        if rules {
            return Ok(Validation::Ready);
        }
        let access = self
            .review(
                "SelfSubjectAccessReview",
                serde_json::json!({"resourceAttributes": {"resource": "secrets", "namespace": ns, "verb": "get"}}),
            )
            .and_then(|b| access_allowed(&b))
            .map_err(|e| with_context(e, context))?;
        if access {
            Ok(Validation::Ready)
        } else {
            Err(Error::permission_denied(
                "client is not allowed to get secrets",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://k8s.example.com:6443";

    #[test]
    fn urls_are_built_under_the_base_and_names_are_checked() {
        assert_eq!(
            secret_url(BASE, "team-a", "db-creds").unwrap(),
            "https://k8s.example.com:6443/api/v1/namespaces/team-a/secrets/db-creds"
        );
        assert_eq!(
            secret_url("https://r:443/k8s/clusters/c-1", "default", "a b:c").unwrap(),
            "https://r:443/k8s/clusters/c-1/api/v1/namespaces/default/secrets/a%20b%3Ac"
        );
        for (bad, why) in [
            ("", "resource name may not be empty"),
            ("..", "invalid resource name \"..\": [may not be '..']"),
            (
                "a/../b",
                "invalid resource name \"a/../b\": [may not contain '/']",
            ),
            (
                "a%2F",
                "invalid resource name \"a%2F\": [may not contain '%']",
            ),
        ] {
            assert!(
                matches!(secret_url(BASE, "ns", bad), Err(Error::Backend(m)) if m == why),
                "{bad}"
            );
        }
        assert_eq!(
            list_url(BASE, "ns", None),
            "https://k8s.example.com:6443/api/v1/namespaces/ns/secrets"
        );
        assert_eq!(list_url(BASE, "ns", Some("")), list_url(BASE, "ns", None));
        assert_eq!(
            list_url(BASE, "ns", Some("app.kubernetes.io/name=db,tier=")),
            "https://k8s.example.com:6443/api/v1/namespaces/ns/secrets?labelSelector=app.kubernetes.io%2Fname%3Ddb%2Ctier%3D"
        );
    }

    #[test]
    fn statuses_map_to_the_contracts_errors() {
        let forbidden = br#"{"kind":"Status","message":"secrets \"x\" is forbidden","reason":"Forbidden","code":403}"#;
        assert!(status_error(200, None, b"").is_none());
        assert!(status_error(201, None, b"").is_none());
        assert!(matches!(
            status_error(404, None, b"{}"),
            Some(Error::NotFound)
        ));
        assert!(matches!(
            status_error(403, None, forbidden),
            Some(Error::PermissionDenied(m)) if m == "secrets \"x\" is forbidden"
        ));
        assert!(matches!(
            status_error(401, None, b"<html>"),
            Some(Error::PermissionDenied(m)) if m == "Unauthorized"
        ));
        assert!(matches!(
            status_error(429, Some("7"), b""),
            Some(Error::Throttled(t)) if t.retry_after_ms == Some(7000)
        ));
        assert!(matches!(
            status_error(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b""),
            Some(Error::Throttled(t)) if t.retry_after_ms.is_none()
        ));
        assert!(matches!(
            status_error(503, None, b""),
            Some(Error::Unavailable(m)) if m == "the Kubernetes API answered HTTP 503"
        ));
        assert!(matches!(
            status_error(409, None, br#"{"kind":"Status","message":"Operation cannot be fulfilled on secrets \"db\": the object has been modified","reason":"Conflict","code":409}"#),
            Some(Error::Unavailable(m)) if m == "Operation cannot be fulfilled on secrets \"db\": the object has been modified"
        ));
        assert!(matches!(
            status_error(409, None, b""),
            Some(Error::Unavailable(_))
        ));
        assert!(matches!(
            status_error(422, None, br#"{"message":"invalid"}"#),
            Some(Error::Backend(m)) if m == "invalid"
        ));
    }

    #[test]
    fn context_prefixes_messages_and_turns_not_found_into_a_backend_error() {
        assert!(matches!(
            with_context(Error::permission_denied("Forbidden"), "unable to list secrets"),
            Error::PermissionDenied(m) if m == "unable to list secrets: Forbidden"
        ));
        assert!(matches!(
            with_context(Error::NotFound, "could not verify if client is valid"),
            Error::Backend(m) if m.starts_with("could not verify if client is valid: ")
        ));
        assert!(matches!(
            with_context(Error::throttled(None, "slow"), "x"),
            Error::Throttled(t) if t.message == "x: slow"
        ));
    }

    #[test]
    fn reviews_are_read_as_eso_reads_them() {
        let rules = |r: serde_json::Value| {
            rules_allow_get_secrets(
                serde_json::json!({"status": {"resourceRules": r, "incomplete": false}})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap()
        };
        assert!(rules(
            serde_json::json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets"]}])
        ));
        assert!(rules(
            serde_json::json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
        ));
        assert!(rules(
            serde_json::json!([{"verbs": ["get"], "resources": ["secrets"]}])
        ));
        assert!(!rules(
            serde_json::json!([{"verbs": ["list"], "apiGroups": [""], "resources": ["secrets"]}])
        ));
        assert!(!rules(
            serde_json::json!([{"verbs": ["get"], "apiGroups": ["apps"], "resources": ["secrets"]}])
        ));
        assert!(!rules(
            serde_json::json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}])
        ));
        assert!(!rules(serde_json::json!([])));
        assert!(!rules_allow_get_secrets(b"{}").unwrap());
        assert!(rules_allow_get_secrets(b"nope").is_err());
        assert!(access_allowed(br#"{"status": {"allowed": true}}"#).unwrap());
        assert!(!access_allowed(br#"{"status": {"allowed": false, "reason": "no"}}"#).unwrap());
        assert!(!access_allowed(b"{}").unwrap());
    }

    #[test]
    fn a_client_certificate_sends_no_bearer_token() {
        let parse = |auth: serde_json::Value| {
            crate::config::KubernetesConfig::parse(&serde_json::json!({"auth": auth}))
                .unwrap()
                .auth
        };
        let cert = parse(serde_json::json!({"cert": {
            "clientCert": {"name": "client", "key": "tls.crt"},
            "clientKey": {"name": "client", "key": "tls.key"}
        }}));
        assert!(!sends_bearer_token(&cert));
        // Nothing is fetched for it: the host reads and presents the pair.
        assert!(fetch_token(&cert, SystemTime::now()).is_err());
        let token =
            parse(serde_json::json!({"token": {"bearerToken": {"name": "t", "key": "token"}}}));
        assert!(sends_bearer_token(&token));
        let sa = parse(serde_json::json!({"serviceAccount": {"name": "reader"}}));
        assert!(sends_bearer_token(&sa));
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            refresh_at(now, now + Duration::from_secs(3600)),
            now + Duration::from_secs(3300)
        );
        assert_eq!(
            refresh_at(now, now + Duration::from_secs(120)),
            now + Duration::from_secs(60)
        );
        assert_eq!(refresh_at(now, now - Duration::from_secs(5)), now);
    }
}
