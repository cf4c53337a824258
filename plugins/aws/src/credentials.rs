//! Where the plugin's AWS credentials come from and how long they are kept.
//!
//! The chain follows ESO: base credentials from `auth.secretRef` (read through the host), from
//! `auth.jwt.serviceAccountRef` (a TokenRequest token exchanged at STS
//! AssumeRoleWithWebIdentity for the ServiceAccount's `eks.amazonaws.com/role-arn`) or, for a
//! store with no `auth`, from the controller's ambient identity as the host hands it over
//! (static keys from its environment, else its web identity token exchanged at STS, else its
//! container credentials endpoint: EKS Pod Identity); then each of `additionalRoles` assumed in
//! order, then `role` with the external ID and session tags.
//!
//! Only the end of the chain is cached, in the client (one per store), until
//! [`REFRESH_MARGIN`] before it expires: STS is called about once an hour per store, not per
//! reconcile. Static keys from a Secret are re-read through the host every [`STATIC_REREAD`] so a
//! rotated key is picked up without AWS calls.

use std::time::{Duration, SystemTime};

use aws_sdk_secretsmanager::config::Credentials;
use esox_plugin_sdk::{Error, host, http};
use serde::Deserialize;

use crate::config::{Auth, AwsConfig, SecretKeyRef, ServiceAccountRef};
use crate::endpoint::{AwsService, Endpoints};
use crate::errors;

/// Refresh an assumed-role session this long before AWS says it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long keys read from a Kubernetes Secret are used before being read again.
pub const STATIC_REREAD: Duration = Duration::from_secs(5 * 60);
/// The session length asked of STS: one hour, the longest every role allows (role chaining caps
/// sessions at one hour, and one hour is the default `MaxSessionDuration`).
pub const SESSION_SECONDS: i32 = 3600;
/// ESO's session name for web identity, kept so CloudTrail reads the same.
pub const WEB_IDENTITY_SESSION_NAME: &str = "external-secrets-provider-aws";
/// The session name for `role` and `additionalRoles`.
pub const ASSUME_ROLE_SESSION_NAME: &str = "esox-provider-aws";
/// The ServiceAccount annotation naming the role to assume (IRSA).
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The ServiceAccount annotation overriding the token audience.
pub const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
/// The token audience when the ServiceAccount does not name one.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";

/// Credentials and when to stop using them. Debug never shows the secret parts.
#[derive(Clone)]
pub struct Session {
    pub access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// When AWS stops accepting these (None for long-lived keys).
    pub expires_at: Option<SystemTime>,
    /// When the cache should resolve the chain again.
    pub refresh_at: SystemTime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

impl Session {
    /// Long-lived keys read from a Secret at `now`.
    pub fn from_keys(
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        now: SystemTime,
    ) -> Session {
        Session {
            access_key_id,
            secret_access_key,
            session_token,
            expires_at: None,
            refresh_at: now + STATIC_REREAD,
        }
    }

    /// Temporary credentials that expire at `expires_at`.
    pub fn temporary(
        access_key_id: String,
        secret_access_key: String,
        session_token: String,
        expires_at: SystemTime,
    ) -> Session {
        Session {
            access_key_id,
            secret_access_key,
            session_token: Some(session_token),
            expires_at: Some(expires_at),
            refresh_at: expires_at
                .checked_sub(REFRESH_MARGIN)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }

    /// Whether the cached session can still be used at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now < self.refresh_at
    }

    /// The SDK's view of these credentials.
    pub fn to_sdk(&self) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            self.expires_at,
            "esox",
        )
    }
}

/// The audiences to request a ServiceAccount token for: the annotated one (or STS's default)
/// followed by the store's extra `audiences`, as ESO does.
pub fn token_audiences(annotated: Option<&str>, extra: &[String]) -> Vec<String> {
    let first = annotated
        .filter(|a| !a.is_empty())
        .unwrap_or(DEFAULT_AUDIENCE);
    let mut out = vec![first.to_string()];
    out.extend(extra.iter().filter(|a| !a.is_empty()).cloned());
    out
}

/// Resolve the whole chain once, from the host and STS.
pub async fn resolve(config: &AwsConfig, endpoints: &Endpoints) -> Result<Session, Error> {
    let now = SystemTime::now();
    let mut session = match &config.auth {
        Auth::SecretRef(refs) => {
            let id = read_key(&refs.access_key_id, "accessKeyIDSecretRef")?;
            let secret = read_key(&refs.secret_access_key, "secretAccessKeySecretRef")?;
            let token = match &refs.session_token {
                Some(r) => Some(read_key(r, "sessionTokenSecretRef")?),
                None => None,
            };
            Session::from_keys(id, secret, token, now)
        }
        Auth::Jwt(sa) => web_identity(config, endpoints, sa).await?,
        Auth::Ambient => ambient(config, endpoints, now).await?,
    };
    for role in &config.additional_roles {
        session = assume_role(config, endpoints, &session, role, false).await?;
    }
    if let Some(role) = &config.role {
        session = assume_role(config, endpoints, &session, role, true).await?;
    }
    Ok(session)
}

fn read_key(r: &SecretKeyRef, field: &str) -> Result<String, Error> {
    let path = format!("auth.secretRef.{field}");
    let bytes = host::secret_key(&r.name, &r.key, r.namespace.as_deref()).map_err(|e| match e {
        Error::NotFound => Error::invalid_config(
            path.clone(),
            format!(
                "key {:?} of Secret {:?} does not exist; create it or fix the reference",
                r.key, r.name
            ),
        ),
        Error::InvalidConfig(c) if c.field.is_empty() => Error::invalid_config(&path, c.message),
        other => other,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::invalid_config(
            &path,
            format!("key {:?} of Secret {:?} is not UTF-8 text", r.key, r.name),
        )
    })?;
    // Secrets written with `echo` often end in a newline; AWS keys never contain whitespace.
    Ok(text.trim().to_string())
}

fn sts_client(
    config: &AwsConfig,
    endpoints: &Endpoints,
    credentials: Option<&Session>,
) -> aws_sdk_sts::Client {
    let mut builder = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(config.region.clone()))
        .http_client(aws_smithy_wasm::wasi::WasiHttpClientBuilder::new().build())
        .sleep_impl(aws_smithy_wasm::wasi::WasiSleep)
        .retry_config(crate::client::retry_config(config));
    if let Some(url) = endpoints.for_service(AwsService::Sts) {
        builder = builder.endpoint_url(url);
    }
    if let Some(session) = credentials {
        builder = builder.credentials_provider(session.to_sdk());
    }
    aws_sdk_sts::Client::from_conf(builder.build())
}

async fn web_identity(
    config: &AwsConfig,
    endpoints: &Endpoints,
    sa: &ServiceAccountRef,
) -> Result<Session, Error> {
    let audiences = token_audiences(None, &sa.audiences);
    let mut token = mint(sa, &audiences)?;
    let annotation = |token: &host::SaToken, key: &str| {
        token
            .annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    if let Some(aud) = annotation(&token, AUDIENCE_ANNOTATION)
        && !aud.is_empty()
        && aud != DEFAULT_AUDIENCE
    {
        // The ServiceAccount asks for another audience: mint again with it first.
        let audiences = token_audiences(Some(&aud), &sa.audiences);
        token = mint(sa, &audiences)?;
    }
    let Some(role_arn) = annotation(&token, ROLE_ARN_ANNOTATION).filter(|r| !r.is_empty()) else {
        return Err(Error::invalid_config(
            "auth.jwt.serviceAccountRef",
            format!(
                "an IAM role must be associated with service account {} (annotation {ROLE_ARN_ANNOTATION})",
                sa.name
            ),
        ));
    };
    assume_role_with_web_identity(
        config,
        endpoints,
        &role_arn,
        WEB_IDENTITY_SESSION_NAME,
        token.token,
    )
    .await
}

/// A token for the store's ServiceAccount; a broker refusal about the reference names its path.
fn mint(sa: &ServiceAccountRef, audiences: &[String]) -> Result<host::SaToken, Error> {
    host::service_account_token(&sa.name, sa.namespace.as_deref(), audiences, None).map_err(|e| {
        match e {
            Error::InvalidConfig(c) if c.field.is_empty() => {
                Error::invalid_config("auth.jwt.serviceAccountRef", c.message)
            }
            other => other,
        }
    })
}

async fn assume_role_with_web_identity(
    config: &AwsConfig,
    endpoints: &Endpoints,
    role_arn: &str,
    session_name: &str,
    token: String,
) -> Result<Session, Error> {
    let out = sts_client(config, endpoints, None)
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .web_identity_token(token)
        .duration_seconds(SESSION_SECONDS)
        .send()
        .await
        .map_err(|e| errors::from_sdk("sts:AssumeRoleWithWebIdentity", &e))?;
    session_from_sts(out.credentials(), "sts:AssumeRoleWithWebIdentity")
}

/// Static keys in the controller's environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// optionally `AWS_SESSION_TOKEN`), if both keys are there.
pub fn environment_keys(
    identity: &host::AmbientIdentity,
) -> Option<(String, String, Option<String>)> {
    let id = identity.env("AWS_ACCESS_KEY_ID")?;
    let secret = identity.env("AWS_SECRET_ACCESS_KEY")?;
    Some((
        id.trim().to_string(),
        secret.trim().to_string(),
        identity
            .env("AWS_SESSION_TOKEN")
            .map(|t| t.trim().to_string()),
    ))
}

/// What the controller's ambient identity lacks, in words, for a store with no `auth` that
/// finds nothing usable in it.
pub fn ambient_missing(identity: &host::AmbientIdentity) -> String {
    let mut what = Vec::new();
    match (
        identity.env("AWS_ACCESS_KEY_ID").is_some(),
        identity.env("AWS_SECRET_ACCESS_KEY").is_some(),
    ) {
        (true, false) => what.push("AWS_SECRET_ACCESS_KEY (AWS_ACCESS_KEY_ID is set without it)"),
        (false, true) => what.push("AWS_ACCESS_KEY_ID (AWS_SECRET_ACCESS_KEY is set without it)"),
        _ => what.push("static keys (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"),
    }
    if identity.web_identity.is_some() {
        what.push("a role to assume with its web identity token (AWS_ROLE_ARN)");
    } else {
        what.push("a web identity token (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE)");
    }
    what.push("container credentials (EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI)");
    format!(
        "the store has no auth and the controller's identity has none of: {}; set auth.secretRef or auth.jwt.serviceAccountRef, or give the controller an AWS identity",
        what.join(", ")
    )
}

/// The controller's own identity (a store with no `auth`): static keys from its environment,
/// else its web identity, else its container credentials endpoint.
async fn ambient(
    config: &AwsConfig,
    endpoints: &Endpoints,
    now: SystemTime,
) -> Result<Session, Error> {
    let identity = host::ambient_identity().map_err(|e| match e {
        Error::PermissionDenied(m) => Error::permission_denied(format!(
            "the store has no auth, so it needs the controller's ambient identity, which is not granted to this plugin: {m}"
        )),
        other => other,
    })?;
    if let Some((id, secret, token)) = environment_keys(&identity) {
        return Ok(Session::from_keys(id, secret, token, now));
    }
    if let Some(web) = &identity.web_identity {
        let role = web
            .role_arn
            .as_deref()
            .filter(|r| !r.is_empty())
            .or_else(|| identity.env("AWS_ROLE_ARN"));
        if let Some(role) = role {
            let session_name = identity
                .env("AWS_ROLE_SESSION_NAME")
                .unwrap_or(WEB_IDENTITY_SESSION_NAME);
            return assume_role_with_web_identity(
                config,
                endpoints,
                role,
                session_name,
                web.token.clone(),
            )
            .await;
        }
    }
    if let Some(container) = &identity.container_credentials {
        return container_credentials(container, now).await;
    }
    Err(Error::invalid_config("auth", ambient_missing(&identity)))
}

/// GET the container credentials endpoint (EKS Pod Identity) with its authorization token.
async fn container_credentials(
    endpoint: &host::ContainerCredentials,
    now: SystemTime,
) -> Result<Session, Error> {
    const OPERATION: &str = "container credentials";
    let mut request = http::Request::get(&endpoint.uri);
    if let Some(token) = endpoint.authorization.as_deref().filter(|t| !t.is_empty()) {
        request = request.header("Authorization", token.trim());
    }
    let request = request.body(http::body::Body::empty()).map_err(|_| {
        Error::invalid_config(
            "",
            "the controller's container credentials URI or authorization token is not valid in an HTTP request",
        )
    })?;
    let mut response = http::Client::new()
        .send(request)
        .await
        .map_err(|e| Error::http(OPERATION, &e))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .contents()
        .await
        .map_err(|e| Error::http(OPERATION, &e))?
        .to_vec();
    match status {
        200..=299 => parse_container_credentials(&body, now),
        401 | 403 => Err(Error::permission_denied(format!(
            "{OPERATION}: the endpoint refused the controller's authorization token (HTTP {status})"
        ))),
        429 => Err(Error::throttled(
            None,
            format!("{OPERATION}: the endpoint asked to slow down"),
        )),
        500..=599 => Err(Error::unavailable(format!(
            "{OPERATION}: the endpoint answered HTTP {status}; will retry"
        ))),
        _ => Err(Error::backend(format!(
            "{OPERATION}: the endpoint answered HTTP {status}"
        ))),
    }
}

/// The container credentials endpoint's answer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentialsBody {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

/// Read the container credentials endpoint's JSON (`AccessKeyId`, `SecretAccessKey`, `Token`,
/// `Expiration` in RFC 3339). Errors never quote the body: it holds credentials.
pub fn parse_container_credentials(body: &[u8], now: SystemTime) -> Result<Session, Error> {
    let creds: ContainerCredentialsBody = serde_json::from_slice(body).map_err(|e| {
        Error::backend(format!(
            "container credentials: the endpoint's answer is not credentials (expected JSON with AccessKeyId, SecretAccessKey, Token and Expiration; {} at line {} column {})",
            match e.classify() {
                serde_json::error::Category::Data => "missing or mistyped field",
                _ => "not JSON",
            },
            e.line(),
            e.column()
        ))
    })?;
    let token = creds.token.filter(|t| !t.is_empty());
    match creds.expiration.as_deref().filter(|e| !e.is_empty()) {
        None => Ok(Session::from_keys(
            creds.access_key_id,
            creds.secret_access_key,
            token,
            now,
        )),
        Some(expiration) => {
            let expires_at = aws_smithy_types::DateTime::from_str(
                expiration,
                aws_smithy_types::date_time::Format::DateTime,
            )
            .ok()
            .and_then(|d| SystemTime::try_from(d).ok())
            .ok_or_else(|| {
                Error::backend(
                    "container credentials: the endpoint's Expiration is not an RFC 3339 time",
                )
            })?;
            let mut session = Session::temporary(
                creds.access_key_id,
                creds.secret_access_key,
                String::new(),
                expires_at,
            );
            session.session_token = token;
            Ok(session)
        }
    }
}

async fn assume_role(
    config: &AwsConfig,
    endpoints: &Endpoints,
    from: &Session,
    role: &str,
    with_session_options: bool,
) -> Result<Session, Error> {
    let arn = if role.starts_with("arn:") {
        role.to_string()
    } else {
        role_arn_for_name(config, endpoints, from, role).await?
    };
    let mut request = sts_client(config, endpoints, Some(from))
        .assume_role()
        .role_arn(arn)
        .role_session_name(ASSUME_ROLE_SESSION_NAME)
        .duration_seconds(SESSION_SECONDS);
    if with_session_options {
        if let Some(id) = &config.external_id {
            request = request.external_id(id);
        }
        for tag in &config.session_tags {
            let tag = aws_sdk_sts::types::Tag::builder()
                .key(&tag.key)
                .value(&tag.value)
                .build()
                .map_err(|e| Error::invalid_config("sessionTags", e.to_string()))?;
            request = request.tags(tag);
        }
        for key in &config.transitive_tag_keys {
            request = request.transitive_tag_keys(key);
        }
    }
    let out = request
        .send()
        .await
        .map_err(|e| errors::from_sdk("sts:AssumeRole", &e))?;
    session_from_sts(out.credentials(), "sts:AssumeRole")
}

/// The ARN of role `name` in the account (and partition) of the `from` credentials.
async fn role_arn_for_name(
    config: &AwsConfig,
    endpoints: &Endpoints,
    from: &Session,
    name: &str,
) -> Result<String, Error> {
    let me = sts_client(config, endpoints, Some(from))
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| errors::from_sdk("sts:GetCallerIdentity", &e))?;
    let account = me.account().unwrap_or_default();
    let partition = me.arn().and_then(|a| a.split(':').nth(1)).unwrap_or("aws");
    role_arn(partition, account, name)
}

/// `arn:<partition>:iam::<account>:role/<name>`, refusing an answer without an account.
fn role_arn(partition: &str, account: &str, name: &str) -> Result<String, Error> {
    if account.is_empty() {
        return Err(Error::backend(format!(
            "sts:GetCallerIdentity named no account, so role {name:?} cannot be turned into an ARN; write the role's ARN"
        )));
    }
    Ok(format!("arn:{partition}:iam::{account}:role/{name}"))
}

fn session_from_sts(
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    operation: &str,
) -> Result<Session, Error> {
    let c = credentials
        .ok_or_else(|| Error::backend(format!("{operation} answered without credentials")))?;
    let expires_at = SystemTime::try_from(*c.expiration()).map_err(|_| {
        Error::backend(format!(
            "{operation} answered with an unreadable expiration"
        ))
    })?;
    Ok(Session::temporary(
        c.access_key_id().to_string(),
        c.secret_access_key().to_string(),
        c.session_token().to_string(),
        expires_at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1_800_000_000);

    #[test]
    fn a_role_name_becomes_an_arn_in_the_callers_account_and_partition() {
        assert_eq!(
            role_arn("aws-us-gov", "123456789012", "team-b").unwrap(),
            "arn:aws-us-gov:iam::123456789012:role/team-b"
        );
        assert!(role_arn("aws", "", "team-b").is_err());
    }

    fn at(secs_after_t0: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs_after_t0)
    }

    #[test]
    fn an_assumed_role_session_is_reused_until_five_minutes_before_expiry() {
        let s = Session::temporary("ASIA1".into(), "secret".into(), "token".into(), at(3600));
        assert!(s.is_fresh(at(0)));
        assert!(s.is_fresh(at(3600 - 301)));
        assert!(!s.is_fresh(at(3600 - 300)));
        assert!(!s.is_fresh(at(4000)));
    }

    #[test]
    fn keys_from_a_secret_are_read_again_after_five_minutes() {
        let s = Session::from_keys("AKIA1".into(), "secret".into(), None, at(0));
        assert!(s.is_fresh(at(299)));
        assert!(!s.is_fresh(at(300)));
        assert_eq!(s.expires_at, None);
    }

    #[test]
    fn debug_output_never_shows_the_secret_key_or_token() {
        let s = Session::temporary(
            "ASIA1".into(),
            "wJalrXUtnFEMI".into(),
            "FwoGZXIvYXdz".into(),
            at(3600),
        );
        let text = format!("{s:?}");
        assert!(text.contains("ASIA1"));
        assert!(
            !text.contains("wJalrXUtnFEMI") && !text.contains("FwoGZXIvYXdz"),
            "{text}"
        );
    }

    fn identity(env: &[(&str, &str)], web: bool, container: bool) -> host::AmbientIdentity {
        host::AmbientIdentity {
            web_identity: web.then(|| host::WebIdentity {
                token: "jwt".into(),
                role_arn: None,
            }),
            container_credentials: container.then(|| host::ContainerCredentials {
                uri: "http://169.254.170.23/v1/credentials".into(),
                authorization: Some("auth".into()),
            }),
            environment: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn static_keys_come_from_the_environment_only_when_both_are_set() {
        let both = identity(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIA1"),
                ("AWS_SECRET_ACCESS_KEY", "secret\n"),
                ("AWS_REGION", "eu-west-1"),
            ],
            false,
            false,
        );
        assert_eq!(
            environment_keys(&both),
            Some(("AKIA1".into(), "secret".into(), None))
        );
        let half = identity(&[("AWS_ACCESS_KEY_ID", "AKIA1")], false, false);
        assert_eq!(environment_keys(&half), None);
        let missing = ambient_missing(&half);
        assert!(missing.contains("AWS_SECRET_ACCESS_KEY"), "{missing}");
        assert!(!missing.contains("AKIA1"), "{missing}");
        let none = ambient_missing(&identity(&[], true, false));
        assert!(none.contains("AWS_ROLE_ARN"), "{none}");
        assert!(none.contains("EKS Pod Identity"), "{none}");
    }

    #[test]
    fn container_credentials_parse_with_their_expiration() {
        let s = parse_container_credentials(
            br#"{"AccessKeyId":"ASIA2","SecretAccessKey":"sk","Token":"tok","Expiration":"2027-01-15T08:00:00Z","RoleArn":"arn:aws:iam::1:role/x"}"#,
            at(0),
        )
        .unwrap();
        assert_eq!(s.access_key_id, "ASIA2");
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(s.expires_at, Some(expected));
        assert_eq!(s.refresh_at, expected - REFRESH_MARGIN);
        assert_eq!(s.to_sdk().session_token(), Some("tok"));
        let s = parse_container_credentials(
            br#"{"AccessKeyId":"AKIA3","SecretAccessKey":"sk"}"#,
            at(0),
        )
        .unwrap();
        assert_eq!(s.expires_at, None);
    }

    #[test]
    fn container_credentials_errors_never_quote_the_answer() {
        for body in [
            r#"{"AccessKeyId":"ASIAPLANTED","SecretAccessKey":12}"#,
            r#"{"AccessKeyId":"ASIAPLANTED"}"#,
            "ASIAPLANTED",
            r#"{"AccessKeyId":"ASIAPLANTED","SecretAccessKey":"x","Expiration":"ASIAPLANTED"}"#,
        ] {
            let err = parse_container_credentials(body.as_bytes(), at(0)).unwrap_err();
            assert!(matches!(err, Error::Backend(_)), "{err:?}");
            assert!(!format!("{err:?}").contains("ASIAPLANTED"), "{err:?}");
        }
    }

    #[test]
    fn token_audiences_start_with_the_annotated_or_default_audience() {
        assert_eq!(token_audiences(None, &[]), ["sts.amazonaws.com"]);
        assert_eq!(
            token_audiences(Some("custom"), &["extra".to_string()]),
            ["custom", "extra"]
        );
        assert_eq!(token_audiences(Some(""), &[]), ["sts.amazonaws.com"]);
    }
}
