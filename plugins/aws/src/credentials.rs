//! Where the plugin's AWS credentials come from and how long they are kept.
//!
//! The chain follows ESO: base credentials from `auth.secretRef` (read through the host) or from
//! `auth.jwt.serviceAccountRef` (a TokenRequest token exchanged at STS
//! AssumeRoleWithWebIdentity for the ServiceAccount's `eks.amazonaws.com/role-arn`), then each of
//! `additionalRoles` assumed in order, then `role` with the external ID and session tags.
//!
//! Only the end of the chain is cached, in the client (one per store), until
//! [`REFRESH_MARGIN`] before it expires: STS is called about once an hour per store, not per
//! reconcile. Static keys from a Secret are re-read through the host every [`STATIC_REREAD`] so a
//! rotated key is picked up without AWS calls.

use std::time::{Duration, SystemTime};

use aws_sdk_secretsmanager::config::Credentials;
use esox_plugin_sdk::{Error, host};

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
    let bytes = host::secret_key(&r.name, &r.key, r.namespace.as_deref()).map_err(|e| match e {
        Error::NotFound => Error::invalid_config(format!(
            "auth.secretRef.{field}: key {:?} of Secret {:?} does not exist; create it or fix the reference",
            r.key, r.name
        )),
        other => other,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::invalid_config(format!(
            "auth.secretRef.{field}: key {:?} of Secret {:?} is not UTF-8 text",
            r.key, r.name
        ))
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
    let namespace = sa.namespace.as_deref();
    let audiences = token_audiences(None, &sa.audiences);
    let mut token = host::service_account_token(&sa.name, namespace, &audiences, None)?;
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
        token = host::service_account_token(&sa.name, namespace, &audiences, None)?;
    }
    let Some(role_arn) = annotation(&token, ROLE_ARN_ANNOTATION).filter(|r| !r.is_empty()) else {
        return Err(Error::invalid_config(format!(
            "an IAM role must be associated with service account {} (annotation {ROLE_ARN_ANNOTATION})",
            sa.name
        )));
    };
    let out = sts_client(config, endpoints, None)
        .assume_role_with_web_identity()
        .role_arn(&role_arn)
        .role_session_name(WEB_IDENTITY_SESSION_NAME)
        .web_identity_token(token.token)
        .duration_seconds(SESSION_SECONDS)
        .send()
        .await
        .map_err(|e| errors::from_sdk("sts:AssumeRoleWithWebIdentity", &e))?;
    session_from_sts(out.credentials(), "sts:AssumeRoleWithWebIdentity")
}

async fn assume_role(
    config: &AwsConfig,
    endpoints: &Endpoints,
    from: &Session,
    role: &str,
    with_session_options: bool,
) -> Result<Session, Error> {
    let mut request = sts_client(config, endpoints, Some(from))
        .assume_role()
        .role_arn(role)
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
                .map_err(|e| Error::invalid_config(format!("sessionTags: {e}")))?;
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

fn session_from_sts(
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    operation: &str,
) -> Result<Session, Error> {
    let c = credentials
        .ok_or_else(|| Error::internal(format!("{operation} answered without credentials")))?;
    let expires_at = SystemTime::try_from(*c.expiration()).map_err(|_| {
        Error::internal(format!(
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
