//! Typed configuration of the first-party providers, `aws` (ESO's `secretstore_aws_types.go`)
//! and `fake` (`secretstore_fake_types.go`). Their schemas go into the store CRDs so the API
//! server checks them; the plugins receive the same values as JSON.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{SecretKeySelector, ServiceAccountSelector};

/// The AWS provider: Secrets Manager or Parameter Store in one region.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsProvider {
    /// Which AWS service holds the secrets.
    pub service: AwsService,
    /// How to get credentials; neither field set means the controller's default credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuth>,
    /// A role ARN to assume (after `additionalRoles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// Role ARNs assumed in order before `role` (role chaining).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_roles: Vec<String>,
    /// External ID for the assumed roles.
    #[serde(
        default,
        rename = "externalID",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// STS session tags for the assumed roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_tags: Vec<AwsTag>,
    /// Deletion behaviour of Secrets Manager (PushSecret only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<AwsSecretsManager>,
    /// Transitive STS session tag keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// `None` (default), `Simple` or `Custom`: automatic `eso*` session tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_tags_policy: Option<AwsSessionTagsPolicy>,
    /// Extra session tags under `sessionTagsPolicy: Custom`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "!('esoNamespace' in self) && !('esoStoreName' in self) && !('esoStoreKind' in self)",
        "message": "customSessionTags cannot contain automatically injected reserved keys: esoNamespace, esoStoreName, esoStoreKind"
    }]))]
    pub custom_session_tags: BTreeMap<String, String>,
    /// Prepended to every key, with no separator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// The AWS services the provider reads.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AwsService {
    /// AWS Secrets Manager.
    #[default]
    SecretsManager,
    /// SSM Parameter Store.
    ParameterStore,
    /// AWS Certificate Manager (ESO v2.8): `remoteRef.key` is a certificate ARN, the value the
    /// PEM bundle of certificate, chain and decrypted private key (exportable certificates).
    CertificateManager,
}

/// STS session-tag policies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AwsSessionTagsPolicy {
    /// No automatic tags.
    #[default]
    None,
    /// `esoNamespace`, `esoStoreName`, `esoStoreKind`.
    Simple,
    /// Those plus `customSessionTags`.
    Custom,
}

/// How the AWS provider authenticates; at most one of the fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.secretRef) && has(self.jwt))",
    "message": "only one of auth.secretRef or auth.jwt can be specified"
}]))]
pub struct AwsAuth {
    /// Static credentials from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<AwsAuthSecretRef>,
    /// A ServiceAccount token exchanged with AssumeRoleWithWebIdentity (IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<AwsJwtAuth>,
}

/// Static AWS credentials held in Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuthSecretRef {
    /// The access key ID.
    #[serde(
        default,
        rename = "accessKeyIDSecretRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id: Option<SecretKeySelector>,
    /// The secret access key.
    #[serde(
        default,
        rename = "secretAccessKeySecretRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_access_key: Option<SecretKeySelector>,
    /// The session token, for temporary credentials.
    #[serde(
        default,
        rename = "sessionTokenSecretRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub session_token: Option<SecretKeySelector>,
}

/// ServiceAccount-token authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsJwtAuth {
    /// The ServiceAccount whose token is used; it must carry `eks.amazonaws.com/role-arn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

/// An STS session tag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsTag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

/// Secrets Manager deletion settings (PushSecret with deletionPolicy Delete).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.forceDeleteWithoutRecovery) && self.forceDeleteWithoutRecovery && has(self.recoveryWindowInDays) && self.recoveryWindowInDays != 0)",
        "message": "forceDeleteWithoutRecovery and recoveryWindowInDays cannot both be set"
    },
    {
        "rule": "!has(self.recoveryWindowInDays) || self.recoveryWindowInDays == 0 || (self.recoveryWindowInDays >= 7 && self.recoveryWindowInDays <= 30)",
        "message": "recoveryWindowInDays must be between 7 and 30 days"
    }
]))]
pub struct AwsSecretsManager {
    /// Delete without a recovery window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_delete_without_recovery: bool,
    /// Days (7 to 30) before a deleted secret is gone for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_window_in_days: Option<i64>,
}

/// The fake provider: static values, for tests and demos.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FakeProvider {
    /// The values it serves.
    pub data: Vec<FakeProviderData>,
    /// What validation reports: 0 Ready, 1 Unknown, 2 Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_result: Option<i32>,
}

/// One fake value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FakeProviderData {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// The version; lookups must match it exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}
