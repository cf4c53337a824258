//! `spec.provider.aws`: the store configuration as ESO defines it, parsed and validated without
//! contacting AWS. Everything here is pure so it can be unit-tested natively.

use std::time::Duration;

use serde::Deserialize;

/// Why a store configuration was refused. Each message names the field and what to write; none
/// quotes a value it cannot vouch for (the malformed case reports kinds, not values).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// The JSON does not have the shape of `spec.provider.aws`.
    #[error(
        "spec.provider.aws{} is malformed: {message}; see the AWS provider's schema (esox plugin inspect aws)",
        if field.is_empty() { String::new() } else { format!(".{field}") }
    )]
    Malformed { field: String, message: String },
    /// `service` names something this plugin does not serve.
    #[error(
        "spec.provider.aws.service {0:?} is not supported: use SecretsManager, ParameterStore or CertificateManager"
    )]
    UnsupportedService(String),
    /// `region` is empty or not an AWS region name.
    #[error(
        "spec.provider.aws.region {0:?} is not an AWS region: write one such as eu-west-1 or us-gov-west-1"
    )]
    InvalidRegion(String),
    /// A role is neither an ARN nor a role name.
    #[error(
        "spec.provider.aws.{field} {value:?} is neither an IAM role ARN nor a role name: write arn:<partition>:iam::<account>:role/<name>, or a name such as team-b (a role of the account the store's credentials belong to)"
    )]
    InvalidRole { field: String, value: String },
    /// `retrySettings.retryInterval` is not a Go duration.
    #[error("spec.retrySettings.retryInterval {0:?} is not a duration: write e.g. 500ms, 2s or 1m")]
    InvalidRetryInterval(String),
    /// `retrySettings.maxRetries` is negative.
    #[error("spec.retrySettings.maxRetries must be 0 or more, got {0}")]
    InvalidMaxRetries(i64),
    /// Both auth methods, or an incomplete one. `field` is the path under `auth`.
    #[error("spec.provider.aws.{field}: {message}")]
    InvalidAuth { field: String, message: String },
    /// `secretsManager` deletion settings out of range.
    #[error("spec.provider.aws.secretsManager: {0}")]
    InvalidSecretsManager(String),
    /// A session-tags policy this plugin cannot apply.
    #[error("spec.provider.aws.sessionTagsPolicy {0:?} is not one of None, Simple or Custom")]
    UnsupportedSessionTagsPolicy(String),
}

impl ConfigError {
    /// The field this error is about, as a path into `spec.provider.aws`.
    pub fn field(&self) -> String {
        match self {
            ConfigError::Malformed { field, .. } => field.clone(),
            ConfigError::UnsupportedService(_) => "service".into(),
            ConfigError::InvalidRegion(_) => "region".into(),
            ConfigError::InvalidRole { field, .. } => field.clone(),
            ConfigError::InvalidRetryInterval(_) => "retrySettings.retryInterval".into(),
            ConfigError::InvalidMaxRetries(_) => "retrySettings.maxRetries".into(),
            ConfigError::InvalidAuth { field, .. } => field.clone(),
            ConfigError::InvalidSecretsManager(_) => "secretsManager".into(),
            ConfigError::UnsupportedSessionTagsPolicy(_) => "sessionTagsPolicy".into(),
        }
    }
}

impl From<ConfigError> for esox_plugin_sdk::Error {
    fn from(e: ConfigError) -> Self {
        esox_plugin_sdk::Error::invalid_config(e.field(), e.to_string())
    }
}

/// Which AWS service the store reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    SecretsManager,
    ParameterStore,
    /// AWS Certificate Manager: `remoteRef.key` is a certificate ARN (ESO v2.8).
    CertificateManager,
}

/// A reference to one key of a Kubernetes Secret (ESO's `SecretKeySelector`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `auth.secretRef`: static access keys held in Kubernetes Secrets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRefAuth {
    #[serde(rename = "accessKeyIDSecretRef")]
    pub access_key_id: SecretKeyRef,
    #[serde(rename = "secretAccessKeySecretRef")]
    pub secret_access_key: SecretKeyRef,
    #[serde(default, rename = "sessionTokenSecretRef")]
    pub session_token: Option<SecretKeyRef>,
}

/// `auth.jwt.serviceAccountRef`: IRSA-style web identity.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct JwtAuth {
    service_account_ref: Option<ServiceAccountRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuth {
    #[serde(default)]
    secret_ref: Option<SecretRefAuth>,
    #[serde(default)]
    jwt: Option<JwtAuth>,
}

/// How the plugin gets its first credentials. The SDK's default chain is never used (it would
/// reach for the instance metadata endpoint, which the sandbox does not offer): a store with no
/// `auth` uses the controller's ambient identity, as the host hands it over.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    SecretRef(SecretRefAuth),
    Jwt(ServiceAccountRef),
    /// No `auth`: the controller's own identity (ESO's IRSA / EKS Pod Identity setups).
    Ambient,
}

/// One STS session tag.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct SessionTag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRetrySettings {
    #[serde(default)]
    max_retries: Option<i64>,
    #[serde(default)]
    retry_interval: Option<String>,
}

/// `retrySettings`, mapped onto the SDK's standard retryer.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// Attempts after the first one (ESO: 3 when only `retryInterval` is given).
    pub max_retries: u32,
    /// A fixed backoff between attempts, if given.
    pub retry_interval: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSecretsManager {
    #[serde(default)]
    force_delete_without_recovery: bool,
    #[serde(default)]
    recovery_window_in_days: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    service: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    additional_roles: Vec<String>,
    #[serde(default, rename = "externalID")]
    external_id: Option<String>,
    #[serde(default)]
    session_tags: Vec<SessionTag>,
    #[serde(default)]
    session_tags_policy: Option<String>,
    #[serde(default)]
    custom_session_tags: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    transitive_tag_keys: Vec<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    retry_settings: Option<RawRetrySettings>,
    #[serde(default)]
    secrets_manager: Option<RawSecretsManager>,
    #[serde(default)]
    auth: Option<RawAuth>,
}

/// ESO's `sessionTagsPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionTagsPolicy {
    /// The listed `sessionTags`, as given.
    #[default]
    None,
    /// `esoNamespace` (the ExternalSecret's namespace), `esoStoreName`, `esoStoreKind`.
    Simple,
    /// Those plus `customSessionTags`.
    Custom,
}

impl AwsConfig {
    /// Apply the session tag policy for the store this client serves (ESO's
    /// `buildSessionTags`): under Simple or Custom the tags become `customSessionTags` (Custom
    /// only, empty keys and values skipped) plus `esoNamespace`, `esoStoreName` and
    /// `esoStoreKind`, sorted by key; `namespace` is the ExternalSecret's (the store's for a
    /// SecretStore, the referent one for a ClusterSecretStore, empty when validating one alone).
    pub fn apply_session_tag_policy(
        &mut self,
        namespace: &str,
        store_name: &str,
        store_kind: &str,
    ) {
        let mut tags = std::collections::BTreeMap::new();
        match self.session_tags_policy {
            SessionTagsPolicy::None => return,
            SessionTagsPolicy::Simple => {}
            SessionTagsPolicy::Custom => {
                for (k, v) in &self.custom_session_tags {
                    if !k.is_empty() && !v.is_empty() {
                        tags.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        tags.insert("esoNamespace".to_string(), namespace.to_string());
        tags.insert("esoStoreName".to_string(), store_name.to_string());
        tags.insert("esoStoreKind".to_string(), store_kind.to_string());
        self.session_tags = tags
            .into_iter()
            .map(|(key, value)| SessionTag { key, value })
            .collect();
    }
}

/// A validated `spec.provider.aws`.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsConfig {
    pub service: Service,
    pub region: String,
    /// Assumed last, with the external ID and session tags.
    pub role: Option<String>,
    /// Assumed in order before `role` (role chaining).
    pub additional_roles: Vec<String>,
    pub external_id: Option<String>,
    pub session_tags: Vec<SessionTag>,
    /// `sessionTagsPolicy`: with Simple or Custom the session tags are replaced, when the
    /// client opens, by esoNamespace/esoStoreName/esoStoreKind (and `customSessionTags`).
    pub session_tags_policy: SessionTagsPolicy,
    pub custom_session_tags: std::collections::BTreeMap<String, String>,
    pub transitive_tag_keys: Vec<String>,
    /// Prepended to every key, with no separator.
    pub prefix: String,
    pub retry: Option<RetrySettings>,
    pub auth: Auth,
}

impl AwsConfig {
    /// Parse and validate `spec.provider.aws`.
    pub fn parse(value: &serde_json::Value) -> Result<AwsConfig, ConfigError> {
        let raw: RawConfig =
            esox_plugin_sdk::config::from_value(value).map_err(|e| ConfigError::Malformed {
                field: e.field,
                message: e.message,
            })?;
        let service = match raw.service.as_str() {
            "SecretsManager" => Service::SecretsManager,
            "ParameterStore" => Service::ParameterStore,
            "CertificateManager" => Service::CertificateManager,
            other => return Err(ConfigError::UnsupportedService(other.to_string())),
        };
        if !is_region(&raw.region) {
            return Err(ConfigError::InvalidRegion(raw.region));
        }
        let role = raw.role.filter(|r| !r.is_empty());
        if let Some(role) = &role {
            check_role("role", role)?;
        }
        for (i, role) in raw.additional_roles.iter().enumerate() {
            check_role(&format!("additionalRoles[{i}]"), role)?;
        }
        let session_tags_policy = match raw.session_tags_policy.as_deref() {
            None | Some("") | Some("None") => SessionTagsPolicy::None,
            Some("Simple") => SessionTagsPolicy::Simple,
            Some("Custom") => SessionTagsPolicy::Custom,
            Some(other) => {
                return Err(ConfigError::UnsupportedSessionTagsPolicy(other.to_string()));
            }
        };
        let retry = raw.retry_settings.map(parse_retry).transpose()?;
        if let Some(sm) = &raw.secrets_manager {
            if sm.force_delete_without_recovery && sm.recovery_window_in_days != 0 {
                return Err(ConfigError::InvalidSecretsManager(
                    "forceDeleteWithoutRecovery and recoveryWindowInDays are mutually exclusive: set one".into(),
                ));
            }
            if sm.recovery_window_in_days != 0 && !(7..=30).contains(&sm.recovery_window_in_days) {
                return Err(ConfigError::InvalidSecretsManager(format!(
                    "recoveryWindowInDays must be between 7 and 30, got {}",
                    sm.recovery_window_in_days
                )));
            }
        }
        let auth = parse_auth(raw.auth.unwrap_or_default())?;
        Ok(AwsConfig {
            service,
            region: raw.region,
            role,
            additional_roles: raw.additional_roles,
            external_id: raw.external_id.filter(|e| !e.is_empty()),
            session_tags: raw.session_tags,
            session_tags_policy,
            custom_session_tags: raw.custom_session_tags,
            transitive_tag_keys: raw.transitive_tag_keys,
            prefix: raw.prefix.unwrap_or_default(),
            retry,
            auth,
        })
    }

    /// Whether a credential reference leaves its namespace open, so that on a
    /// ClusterSecretStore it resolves per ExternalSecret (ESO's "referent" auth).
    pub fn is_referent(&self) -> bool {
        match &self.auth {
            Auth::SecretRef(s) => {
                s.access_key_id.namespace.is_none()
                    || s.secret_access_key.namespace.is_none()
                    || s.session_token
                        .as_ref()
                        .is_some_and(|t| t.namespace.is_none())
            }
            Auth::Jwt(sa) => sa.namespace.is_none(),
            Auth::Ambient => false,
        }
    }
}

fn parse_auth(raw: RawAuth) -> Result<Auth, ConfigError> {
    let jwt = raw.jwt.and_then(|j| j.service_account_ref);
    match (raw.secret_ref, jwt) {
        (Some(_), Some(_)) => Err(ConfigError::InvalidAuth {
            field: "auth".into(),
            message: "set either secretRef or jwt.serviceAccountRef, not both".into(),
        }),
        (None, None) => Ok(Auth::Ambient),
        (Some(s), None) => {
            for (field, r) in [
                ("accessKeyIDSecretRef", Some(&s.access_key_id)),
                ("secretAccessKeySecretRef", Some(&s.secret_access_key)),
                ("sessionTokenSecretRef", s.session_token.as_ref()),
            ] {
                if let Some(r) = r
                    && (r.name.is_empty() || r.key.is_empty())
                {
                    return Err(ConfigError::InvalidAuth {
                        field: format!("auth.secretRef.{field}"),
                        message: "needs both name and key".into(),
                    });
                }
            }
            Ok(Auth::SecretRef(s))
        }
        (None, Some(sa)) => {
            if sa.name.is_empty() {
                return Err(ConfigError::InvalidAuth {
                    field: "auth.jwt.serviceAccountRef.name".into(),
                    message: "must name a ServiceAccount".into(),
                });
            }
            Ok(Auth::Jwt(sa))
        }
    }
}

fn parse_retry(raw: RawRetrySettings) -> Result<RetrySettings, ConfigError> {
    let max_retries = match raw.max_retries {
        None => 3,
        Some(n) if n < 0 => return Err(ConfigError::InvalidMaxRetries(n)),
        Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
    };
    let retry_interval = match raw.retry_interval.as_deref() {
        None | Some("") => None,
        Some(s) => {
            Some(parse_go_duration(s).ok_or_else(|| ConfigError::InvalidRetryInterval(s.into()))?)
        }
    };
    Ok(RetrySettings {
        max_retries,
        retry_interval,
    })
}

/// Whether `role` is a bare IAM role name (`team-b`), as ESO's docs write it: 1-64 characters
/// of letters, digits and `+=,.@_-`. The plugin turns it into the ARN of that role in the
/// account of the credentials it assumes it from (sts:GetCallerIdentity).
pub fn is_role_name(role: &str) -> bool {
    (1..=64).contains(&role.len())
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn check_role(field: &str, role: &str) -> Result<(), ConfigError> {
    // arn:partition:iam::account:role/path/name; partitions: aws, aws-cn, aws-us-gov, ...
    let parts: Vec<&str> = role.splitn(6, ':').collect();
    let arn = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len();
    if arn || is_role_name(role) {
        Ok(())
    } else {
        Err(ConfigError::InvalidRole {
            field: field.to_string(),
            value: role.to_string(),
        })
    }
}

/// Whether `region` has the shape of an AWS region (`us-east-1`, `us-gov-west-1`,
/// `cn-northwest-1`, `eu-isoe-west-1`). The SDK's endpoint rules accept any host label, which
/// would let a typo reach the network as a DNS failure; this catches it at apply time.
pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|_| parts[parts.len() - 1].len() <= 2)
}

/// Parse a Go `time.Duration` string (`1h2m3.5s`, `500ms`, `250us`), as ESO's CRD carries them.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret_ref_auth() -> serde_json::Value {
        json!({"secretRef": {
            "accessKeyIDSecretRef": {"name": "awssm-secret", "key": "access-key"},
            "secretAccessKeySecretRef": {"name": "awssm-secret", "key": "secret-access-key"}
        }})
    }

    #[test]
    fn a_minimal_secrets_manager_store_with_secret_ref_auth_parses() {
        let config = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "eu-west-1", "auth": secret_ref_auth()
        }))
        .unwrap();
        assert_eq!(config.service, Service::SecretsManager);
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.prefix, "");
        assert_eq!(config.retry, None);
        let Auth::SecretRef(s) = &config.auth else {
            panic!("expected secretRef auth")
        };
        assert_eq!(s.access_key_id.key, "access-key");
        assert!(s.session_token.is_none());
        assert!(config.is_referent());
    }

    #[test]
    fn the_full_eso_spec_parses_roles_tags_prefix_and_retries() {
        let config = AwsConfig::parse(&json!({
            "service": "ParameterStore",
            "region": "us-gov-west-1",
            "role": "arn:aws-us-gov:iam::123456789012:role/reader",
            "additionalRoles": ["arn:aws:iam::111111111111:role/hop"],
            "externalID": "ext-1",
            "sessionTags": [{"key": "team", "value": "payments"}],
            "transitiveTagKeys": ["team"],
            "prefix": "/prod/",
            "retrySettings": {"maxRetries": 5, "retryInterval": "1.5s"},
            "auth": {"jwt": {"serviceAccountRef": {"name": "esox", "namespace": "ops", "audiences": ["extra"]}}}
        }))
        .unwrap();
        assert_eq!(config.service, Service::ParameterStore);
        assert_eq!(
            config.role.as_deref(),
            Some("arn:aws-us-gov:iam::123456789012:role/reader")
        );
        assert_eq!(
            config.additional_roles,
            ["arn:aws:iam::111111111111:role/hop"]
        );
        assert_eq!(config.external_id.as_deref(), Some("ext-1"));
        assert_eq!(
            config.session_tags,
            [SessionTag {
                key: "team".into(),
                value: "payments".into()
            }]
        );
        assert_eq!(config.transitive_tag_keys, ["team"]);
        assert_eq!(config.prefix, "/prod/");
        assert_eq!(
            config.retry,
            Some(RetrySettings {
                max_retries: 5,
                retry_interval: Some(Duration::from_millis(1500))
            })
        );
        assert_eq!(
            config.auth,
            Auth::Jwt(ServiceAccountRef {
                name: "esox".into(),
                namespace: Some("ops".into()),
                audiences: vec!["extra".into()]
            })
        );
        assert!(!config.is_referent());
    }

    #[test]
    fn retry_settings_with_only_an_interval_default_to_three_retries_as_in_eso() {
        let config = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1", "auth": secret_ref_auth(),
            "retrySettings": {"retryInterval": "10s"}
        }))
        .unwrap();
        assert_eq!(
            config.retry,
            Some(RetrySettings {
                max_retries: 3,
                retry_interval: Some(Duration::from_secs(10))
            })
        );
    }

    #[test]
    fn unknown_services_are_refused_by_name() {
        let acm = AwsConfig::parse(&json!({
            "service": "CertificateManager", "region": "us-east-1", "auth": secret_ref_auth()
        }))
        .unwrap();
        assert_eq!(acm.service, Service::CertificateManager);
        for service in ["certificatemanager", "secretsmanager", ""] {
            let err = AwsConfig::parse(&json!({
                "service": service, "region": "us-east-1", "auth": secret_ref_auth()
            }))
            .unwrap_err();
            assert_eq!(err, ConfigError::UnsupportedService(service.into()));
        }
    }

    #[test]
    fn regions_are_checked_for_shape() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-northwest-1",
            "eu-isoe-west-1",
            "ap-southeast-7",
        ] {
            assert!(is_region(good), "{good} should be accepted");
        }
        for bad in [
            "",
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-1a",
            "us--1",
            "eu-west-100",
            "a-b-1",
        ] {
            assert!(!is_region(bad), "{bad} should be refused");
        }
        let err = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "eu-wst1", "auth": secret_ref_auth()
        }))
        .unwrap_err();
        assert_eq!(err, ConfigError::InvalidRegion("eu-wst1".into()));
    }

    #[test]
    fn role_arns_are_checked() {
        let err = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1", "auth": secret_ref_auth(),
            "role": "reader/with:colon"
        }))
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidRole {
                field: "role".into(),
                value: "reader/with:colon".into()
            }
        );
        // A bare role name, as ESO's docs write it, is accepted (resolved in the account).
        let ok = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1", "auth": secret_ref_auth(),
            "role": "team-b", "additionalRoles": ["hop.1@x"]
        }))
        .unwrap();
        assert_eq!(ok.role.as_deref(), Some("team-b"));
        assert!(!is_role_name(&"r".repeat(65)) && !is_role_name(""));
        let err = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1", "auth": secret_ref_auth(),
            "additionalRoles": ["arn:aws:iam::1:role/ok", "arn:aws:iam::1:user/bob"]
        }))
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidRole {
                field: "additionalRoles[1]".into(),
                value: "arn:aws:iam::1:user/bob".into()
            }
        );
    }

    #[test]
    fn missing_auth_means_the_ambient_identity() {
        let config =
            AwsConfig::parse(&json!({"service": "SecretsManager", "region": "us-east-1"})).unwrap();
        assert_eq!(config.auth, Auth::Ambient);
        assert!(!config.is_referent());
        let config = AwsConfig::parse(
            &json!({"service": "SecretsManager", "region": "us-east-1", "auth": {}}),
        )
        .unwrap();
        assert_eq!(config.auth, Auth::Ambient);
    }

    #[test]
    fn malformed_configs_name_the_field_and_never_quote_the_value() {
        let err = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1",
            "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": "s", "key": "id"},
                "secretAccessKeySecretRef": {"name": 12345, "key": "AKIAPLANTEDVALUE"}
            }}
        }))
        .unwrap_err();
        assert_eq!(err.field(), "auth.secretRef.secretAccessKeySecretRef.name");
        let text = err.to_string();
        assert!(!text.contains("12345"), "{text}");
        let err = AwsConfig::parse(&json!({"service": "SecretsManager", "region": "us-east-1",
            "sessionTags": [{"key": "k", "value": 987654}]}))
        .unwrap_err();
        assert_eq!(err.field(), "sessionTags[0].value");
        assert!(!err.to_string().contains("987654"), "{err}");
        let sdk: esox_plugin_sdk::Error = err.into();
        assert_eq!(sdk.config_field(), Some("sessionTags[0].value"));
    }

    #[test]
    fn both_auth_methods_at_once_are_refused() {
        let mut auth = secret_ref_auth();
        auth["jwt"] = json!({"serviceAccountRef": {"name": "sa"}});
        let err = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1", "auth": auth
        }))
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidAuth { message, .. } if message.contains("not both"))
        );
    }

    #[test]
    fn a_secret_ref_without_a_key_is_refused_naming_the_field() {
        let err = AwsConfig::parse(&json!({
            "service": "SecretsManager", "region": "us-east-1",
            "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": "s", "key": "id"},
                "secretAccessKeySecretRef": {"name": "s"}
            }}
        }))
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidAuth {
                field: "auth.secretRef.secretAccessKeySecretRef".into(),
                message: "needs both name and key".into()
            }
        );
    }

    #[test]
    fn secrets_manager_deletion_settings_follow_eso_rules() {
        let base = |sm: serde_json::Value| {
            AwsConfig::parse(&json!({
                "service": "SecretsManager", "region": "us-east-1", "auth": secret_ref_auth(),
                "secretsManager": sm
            }))
        };
        assert!(base(json!({"recoveryWindowInDays": 7})).is_ok());
        assert!(base(json!({"forceDeleteWithoutRecovery": true})).is_ok());
        assert!(matches!(
            base(json!({"recoveryWindowInDays": 6})),
            Err(ConfigError::InvalidSecretsManager(_))
        ));
        assert!(matches!(
            base(json!({"recoveryWindowInDays": 10, "forceDeleteWithoutRecovery": true})),
            Err(ConfigError::InvalidSecretsManager(_))
        ));
    }

    #[test]
    fn session_tag_policies_build_esos_tags_for_the_store() {
        let parse = |policy: &str| {
            AwsConfig::parse(&json!({
                "service": "SecretsManager", "region": "us-east-1", "auth": secret_ref_auth(),
                "role": "arn:aws:iam::1:role/r",
                "sessionTags": [{"key": "team", "value": "a"}],
                "sessionTagsPolicy": policy,
                "customSessionTags": {"cost": "42", "empty": ""}
            }))
        };
        let tags = |c: &AwsConfig| -> Vec<(String, String)> {
            c.session_tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect()
        };
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut none = parse("None").unwrap();
        none.apply_session_tag_policy("ns", "s", "SecretStore");
        assert_eq!(tags(&none), pairs(&[("team", "a")]));
        let mut simple = parse("Simple").unwrap();
        simple.apply_session_tag_policy("apps", "shared", "ClusterSecretStore");
        assert_eq!(
            tags(&simple),
            pairs(&[
                ("esoNamespace", "apps"),
                ("esoStoreKind", "ClusterSecretStore"),
                ("esoStoreName", "shared")
            ])
        );
        let mut custom = parse("Custom").unwrap();
        custom.apply_session_tag_policy("apps", "s", "SecretStore");
        assert_eq!(
            tags(&custom),
            pairs(&[
                ("cost", "42"),
                ("esoNamespace", "apps"),
                ("esoStoreKind", "SecretStore"),
                ("esoStoreName", "s")
            ])
        );
        assert_eq!(
            parse("Fancy").unwrap_err(),
            ConfigError::UnsupportedSessionTagsPolicy("Fancy".into())
        );
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("ten seconds"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
