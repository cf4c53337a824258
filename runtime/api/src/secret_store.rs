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

    /// Namespaces allowed to use a ClusterSecretStore. Refused on a SecretStore, which serves
    /// only its own namespace (ESO ignores it there).
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
    /// The one provider's name (the plugin to use) and its configuration as JSON. The store's
    /// `spec.retrySettings` travels inside it as `retrySettings` (`{maxRetries, retryInterval}`),
    /// so the plugin applies it (the aws plugin does, as ESO's SDK retryer) or refuses it in
    /// `validate-config`; plugins that have nothing to retry ignore it, as ESO's do.
    pub fn provider_entry(&self) -> Result<(String, serde_json::Value), ApiError> {
        let (name, mut config) = self.provider.provider_entry()?;
        if let (Some(retry), Some(object)) = (&self.retry_settings, config.as_object_mut()) {
            object.insert(
                "retrySettings".into(),
                serde_json::to_value(retry).map_err(ApiError::Serialize)?,
            );
        }
        Ok((name, config))
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

    /// Refuse what the API server accepts but the store cannot use as written, naming the
    /// field: a negative or malformed `refreshInterval`, `conditions` on a SecretStore, a
    /// `namespaceRegexes` entry that is not a regular expression, and label selectors
    /// Kubernetes itself would reject (`In`/`NotIn` without values, `Exists`/`DoesNotExist`
    /// with values, an unknown operator). `cluster` says whether this is a ClusterSecretStore.
    pub fn check(&self, cluster: bool) -> Result<(), ApiError> {
        self.refresh_interval()?;
        if !cluster && !self.conditions.is_empty() {
            return Err(ApiError::InvalidStoreField {
                field: "spec.conditions".into(),
                message: "only a ClusterSecretStore has conditions; a SecretStore serves its own namespace only, so remove them".into(),
            });
        }
        self.check_conditions()
    }

    /// The part of [`SecretStoreSpec::check`] that decides which namespaces may use a
    /// ClusterSecretStore: every `namespaceRegexes` entry compiles, every selector is one
    /// Kubernetes accepts.
    pub fn check_conditions(&self) -> Result<(), ApiError> {
        for (i, c) in self.conditions.iter().enumerate() {
            for (j, pattern) in c.namespace_regexes.iter().enumerate() {
                if let Err(e) = regex::Regex::new(pattern) {
                    return Err(ApiError::InvalidStoreField {
                        field: format!("spec.conditions[{i}].namespaceRegexes[{j}]"),
                        message: format!(
                            "{pattern:?} is not a regular expression: {}",
                            one_line(&e.to_string())
                        ),
                    });
                }
            }
            if let Some(selector) = &c.namespace_selector {
                check_selector(selector, &format!("spec.conditions[{i}].namespaceSelector"))?;
            }
        }
        Ok(())
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

/// The schemas of the embedded providers that are typed by their plugin: each plugin's
/// `schema.json` is both its `config-schema` and this CRD's schema of its key, so the API server
/// and the plugin cannot disagree on the shape. Sorted by name.
pub const PLUGIN_SCHEMAS: [(&str, &str); 3] = [
    (
        "kubernetes",
        include_str!("../../../plugins/kubernetes/schema.json"),
    ),
    ("vault", include_str!("../../../plugins/vault/schema.json")),
    (
        "webhook",
        include_str!("../../../plugins/webhook/schema.json"),
    ),
];

impl JsonSchema for SecretStoreProvider {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretStoreProvider".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let aws = generator.subschema_for::<AwsProvider>();
        let fake = generator.subschema_for::<FakeProvider>();
        let [kubernetes, vault, webhook] = PLUGIN_SCHEMAS.map(|(_, text)| {
            serde_json::from_str::<serde_json::Value>(text).expect("a plugin's schema.json is JSON")
        });
        schemars::json_schema!({
            "description": "The provider and its configuration; exactly one key. The embedded providers (`aws`, `fake`, `kubernetes`, `vault`, `webhook`) are typed as in ESO; any other key names a provider plugin and is passed to it as it is.",
            "type": "object",
            "properties": {
                "aws": aws,
                "fake": fake,
                "kubernetes": kubernetes,
                "vault": vault,
                "webhook": webhook,
            },
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

/// `regex`'s errors span lines (the pattern, a caret, the reason); a condition message is one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Kubernetes' own rules for a label selector (`metav1.LabelSelectorAsSelector`).
fn check_selector(selector: &LabelSelector, field: &str) -> Result<(), ApiError> {
    for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
        let values = e.values.as_deref().unwrap_or_default();
        let problem = match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                Some(format!("operator {} needs at least one value", e.operator))
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                Some(format!("operator {} takes no values", e.operator))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => None,
            other => Some(format!(
                "unknown operator {other:?}: use In, NotIn, Exists or DoesNotExist"
            )),
        };
        if let Some(message) = problem {
            return Err(ApiError::InvalidStoreField {
                field: format!("{field}.matchExpressions[{i}]"),
                message,
            });
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn spec(json: serde_json::Value) -> SecretStoreSpec {
        serde_json::from_value(json).unwrap()
    }

    fn refused(spec: &SecretStoreSpec, cluster: bool) -> String {
        spec.check(cluster).unwrap_err().to_string()
    }

    #[test]
    fn a_store_that_can_be_used_passes() {
        let s = spec(serde_json::json!({
            "provider": {"fake": {"data": []}},
            "refreshInterval": "10m",
            "conditions": [{"namespaceRegexes": ["^team-"], "namespaces": ["a"],
                "namespaceSelector": {"matchExpressions": [
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "team", "operator": "Exists"}]}}]
        }));
        s.check(true).unwrap();
        assert_eq!(
            s.refresh_interval().unwrap(),
            Some(std::time::Duration::from_secs(600))
        );
    }

    #[test]
    fn bad_refresh_intervals_are_refused_not_replaced_by_the_default() {
        for (value, words) in [
            (serde_json::json!(-5), "must not be negative"),
            (serde_json::json!("-5m"), "must not be negative"),
            (serde_json::json!("soon"), "invalid duration"),
        ] {
            let s = spec(
                serde_json::json!({"provider": {"fake": {"data": []}}, "refreshInterval": value}),
            );
            let message = refused(&s, false);
            assert!(
                message.contains("spec.refreshInterval") || message.contains("refreshInterval"),
                "{message}"
            );
            assert!(message.contains(words), "{message}");
        }
        let zero =
            spec(serde_json::json!({"provider": {"fake": {"data": []}}, "refreshInterval": 0}));
        zero.check(false).unwrap();
        assert_eq!(zero.refresh_interval().unwrap(), None);
    }

    #[test]
    fn the_stores_retry_settings_reach_the_plugin_config() {
        let s = spec(serde_json::json!({
            "provider": {"fake": {"data": []}},
            "retrySettings": {"maxRetries": 4, "retryInterval": "2s"}
        }));
        let (name, config) = s.provider_entry().unwrap();
        assert_eq!(name, "fake");
        assert_eq!(
            config["retrySettings"],
            serde_json::json!({"maxRetries": 4, "retryInterval": "2s"})
        );
        let plain = spec(serde_json::json!({"provider": {"fake": {"data": []}}}));
        assert!(
            plain
                .provider_entry()
                .unwrap()
                .1
                .get("retrySettings")
                .is_none()
        );
    }

    #[test]
    fn a_store_is_served_by_its_controller_class_or_any_when_empty() {
        let with = |class: Option<&str>| SecretStoreSpec {
            controller: class.map(str::to_string),
            ..Default::default()
        };
        assert!(with(None).served_by("default"));
        assert!(with(Some("")).served_by("default"));
        assert!(with(Some("default")).served_by("default"));
        assert!(!with(Some("other")).served_by("default"));
        assert!(with(Some("other")).served_by("other"));
    }

    #[test]
    fn conditions_are_refused_on_a_secret_store() {
        let s = spec(
            serde_json::json!({"provider": {"fake": {"data": []}}, "conditions": [{"namespaces": ["a"]}]}),
        );
        s.check(true).unwrap();
        let message = refused(&s, false);
        assert!(
            message.starts_with("spec.conditions: only a ClusterSecretStore"),
            "{message}"
        );
    }

    #[test]
    fn a_namespace_regex_that_does_not_compile_is_refused_by_position() {
        let s = spec(serde_json::json!({"provider": {"fake": {"data": []}},
            "conditions": [{"namespaces": ["a"]}, {"namespaceRegexes": ["^ok$", "team-(a"]}]}));
        let message = refused(&s, true);
        assert!(
            message.starts_with(
                "spec.conditions[1].namespaceRegexes[1]: \"team-(a\" is not a regular expression"
            ),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn selectors_kubernetes_would_reject_are_refused() {
        let cases = [
            (
                "NotIn",
                Some(vec![]),
                "operator NotIn needs at least one value",
            ),
            ("In", None, "operator In needs at least one value"),
            (
                "Exists",
                Some(vec!["x".to_string()]),
                "operator Exists takes no values",
            ),
            (
                "Equals",
                Some(vec!["x".to_string()]),
                "unknown operator \"Equals\": use In, NotIn, Exists or DoesNotExist",
            ),
        ];
        for (operator, values, words) in cases {
            let s = SecretStoreSpec {
                conditions: vec![ClusterSecretStoreCondition {
                    namespace_selector: Some(LabelSelector {
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            key: "env".into(),
                            operator: operator.into(),
                            values,
                        }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let message = refused(&s, true);
            assert_eq!(
                message,
                format!("spec.conditions[0].namespaceSelector.matchExpressions[0]: {words}"),
                "{operator}"
            );
        }
    }
}
