//! The `SecretStore` (namespaced) and `ClusterSecretStore` (cluster-scoped) kinds: where secrets
//! live and how to reach them.
//!
//! Both kinds share one spec, as in ESO (`apis/externalsecrets/v1/secretstore_types.go`).
//! `spec.provider` holds exactly one provider; its name selects the plugin and its value is the
//! plugin's configuration. First-party providers (`aws`, `fake`) have typed schemas so
//! `kubectl explain` and server-side validation work; any other key is preserved as it is,
//! because a third-party plugin validates its own configuration.

// kube's `printcolumn(...)` arguments repeat `type_ = "string"`, which clippy reads as a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::duration::parse_go_duration;
use crate::meta::DNS1123_LABEL;
use crate::provider::{AwsProvider, FakeProvider};

/// Desired state of a SecretStore: which provider, configured how, used by which controller.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "SecretStore",
    namespaced,
    status = "SecretStoreStatus",
    shortname = "ss",
    category = "external-secrets",
    derive = "Default",
    derive = "PartialEq",
    label("external-secrets.io/component", "controller"),
    doc = "SecretStore is a namespaced location of external secrets and the credentials to read them; ExternalSecrets in the same namespace reference it.",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Capabilities",
        type_ = "string",
        json_path = ".status.capabilities"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreSpec {
    /// Selects the controller that serves this store (think ingressClassName); empty means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,

    /// The provider and its configuration. Exactly one provider may be set.
    pub provider: SecretStoreProvider,

    /// Retries of provider calls (used by the aws provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<RetrySettings>,

    /// How often the store is validated again: integer seconds or a Go duration string.
    /// Empty or 0 uses the controller's default (5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<IntOrString>,

    /// Namespaces allowed to use a ClusterSecretStore (ignored on a SecretStore).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

/// Desired state of a ClusterSecretStore: the same fields as a SecretStore.
///
/// A separate struct only because the CRD derive makes one kind per spec type; it flattens the
/// shared [`SecretStoreSpec`] and dereferences to it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ClusterSecretStore",
    status = "SecretStoreStatus",
    shortname = "css",
    category = "external-secrets",
    derive = "Default",
    derive = "PartialEq",
    label("external-secrets.io/component", "controller"),
    doc = "ClusterSecretStore is a cluster-wide location of external secrets; ExternalSecrets in any namespace its conditions allow can reference it.",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Capabilities",
        type_ = "string",
        json_path = ".status.capabilities"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    )
)]
pub struct ClusterSecretStoreSpec {
    /// The shared store spec.
    #[serde(flatten)]
    pub store: SecretStoreSpec,
}

impl std::ops::Deref for ClusterSecretStoreSpec {
    type Target = SecretStoreSpec;
    fn deref(&self) -> &SecretStoreSpec {
        &self.store
    }
}

impl From<SecretStoreSpec> for ClusterSecretStoreSpec {
    fn from(store: SecretStoreSpec) -> Self {
        ClusterSecretStoreSpec { store }
    }
}

impl SecretStoreSpec {
    /// The one provider's name (the plugin to use) and its configuration as JSON.
    pub fn provider_entry(&self) -> Result<(String, serde_json::Value), ApiError> {
        self.provider.provider_entry()
    }

    /// The store refresh interval, or `None` when unset or 0 (use the controller default).
    pub fn refresh_interval(&self) -> Result<Option<std::time::Duration>, ApiError> {
        let d = match &self.refresh_interval {
            None => return Ok(None),
            Some(IntOrString::Int(secs)) if *secs < 0 => {
                return Err(ApiError::NegativeRefreshInterval(*secs));
            }
            Some(IntOrString::Int(secs)) => {
                std::time::Duration::from_secs(u64::from(secs.unsigned_abs()))
            }
            Some(IntOrString::String(s)) => {
                parse_go_duration(s).map_err(|source| ApiError::Duration {
                    field: "spec.refreshInterval",
                    source,
                })?
            }
        };
        Ok((!d.is_zero()).then_some(d))
    }

    /// Whether this store is served by a controller of class `class` (empty means any).
    pub fn served_by(&self, class: &str) -> bool {
        match self.controller.as_deref() {
            None | Some("") => true,
            Some(c) => c == class,
        }
    }
}

/// The provider configuration: typed first-party providers, anything else preserved.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SecretStoreProvider {
    /// AWS Secrets Manager / Parameter Store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsProvider>,
    /// Static in-memory values, for tests and demos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake: Option<FakeProvider>,
    /// Every other provider, by name, with its configuration as the plugin will receive it.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl SecretStoreProvider {
    /// The one provider's name and its configuration as JSON; zero or several is an error.
    pub fn provider_entry(&self) -> Result<(String, serde_json::Value), ApiError> {
        let mut entries: Vec<(String, serde_json::Value)> = Vec::new();
        if let Some(aws) = &self.aws {
            entries.push((
                "aws".into(),
                serde_json::to_value(aws).map_err(ApiError::Serialize)?,
            ));
        }
        if let Some(fake) = &self.fake {
            entries.push((
                "fake".into(),
                serde_json::to_value(fake).map_err(ApiError::Serialize)?,
            ));
        }
        for (name, value) in &self.other {
            if !value.is_null() {
                entries.push((name.clone(), value.clone()));
            }
        }
        match entries.len() {
            0 => Err(ApiError::NoProvider),
            1 => Ok(entries.remove(0)),
            _ => Err(ApiError::SeveralProviders(
                entries.into_iter().map(|(n, _)| n).collect(),
            )),
        }
    }
}

impl JsonSchema for SecretStoreProvider {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretStoreProvider".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let aws = generator.subschema_for::<AwsProvider>();
        let fake = generator.subschema_for::<FakeProvider>();
        schemars::json_schema!({
            "description": "The provider and its configuration; exactly one key. `aws` and `fake` are typed; any other key names a provider plugin and is passed to it as it is.",
            "type": "object",
            "properties": { "aws": aws, "fake": fake },
            "minProperties": 1,
            "maxProperties": 1,
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

/// Retries of provider calls.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySettings {
    /// How many times to retry a failed call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    /// A fixed delay between retries (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<String>,
}

/// A rule for which namespaces may use a ClusterSecretStore; any matching rule allows.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreCondition {
    /// Namespaces whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 63), pattern(DNS1123_LABEL)))]
    pub namespaces: Vec<String>,
    /// Namespaces whose name matches one of these regular expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_regexes: Vec<String>,
}

/// Observed state of a store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    /// The Ready condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<SecretStoreCondition>,
    /// `ReadOnly`, `WriteOnly` or `ReadWrite` (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
}

/// A store status condition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreCondition {
    /// `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// `Valid`, `InvalidProviderConfig`, `ValidationUnknown`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// Store condition reasons and messages, ESO's exact strings
/// (`pkg/controllers/secretstore/common.go`, `secretstore_types.go`).
pub mod store_reason {
    /// Ready=True: the store was validated.
    pub const VALID: &str = "Valid";
    /// Ready=False: the provider config is invalid.
    pub const INVALID_PROVIDER_CONFIG: &str = "InvalidProviderConfig";
    /// Ready=False: the store config is invalid.
    pub const INVALID_STORE: &str = "InvalidStoreConfiguration";
    /// Ready=False: validation failed.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    /// Ready=True: validation status unknown (e.g. referent auth).
    pub const VALIDATION_UNKNOWN: &str = "ValidationUnknown";
    /// Message for Valid.
    pub const MSG_STORE_VALIDATED: &str = "store validated";
    /// Message when the client cannot be created.
    pub const MSG_UNABLE_CREATE_CLIENT: &str = "unable to create client";
    /// Message when validation fails.
    pub const MSG_UNABLE_VALIDATE_STORE: &str = "unable to validate store";
    /// Message for ValidationUnknown.
    pub const MSG_VALIDATION_UNKNOWN: &str = "could not determine validation status";
}
