//! The `ExternalSecret` kind (`external-secrets.io/v1`, also served as `v1beta1`): which remote
//! values to read, from which store, and how to shape the Kubernetes Secret they become.
//!
//! Field names, enums and defaults follow ESO's `apis/externalsecrets/v1/externalsecret_types.go`
//! so ESO manifests apply unchanged. ESO's validating-webhook checks are CEL rules
//! (`x-kubernetes-validations`) on the structs they concern, so the API server itself refuses a
//! bad manifest with a message that says what to change.

// kube's `printcolumn(...)` arguments repeat `type_ = "string"`, which clippy reads as a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::duration::{GO_DURATION_PATTERN, parse_go_duration};
use crate::meta::{DNS1123_SUBDOMAIN, SECRET_KEY};

/// Most `data[]` entries one ExternalSecret may have. ESO has no limit; the API server needs one
/// to bound the cost of the duplicate-`secretKey` CEL rule (quadratic in the list length).
pub const MAX_DATA_ITEMS: u32 = 200;
/// Most `templateFrom[]` entries; bounds the cost of the templateFrom target CEL rule.
pub const MAX_TEMPLATE_FROM_ITEMS: u32 = 100;

/// The refresh interval ESO uses when `spec.refreshInterval` is unset.
pub const DEFAULT_REFRESH_INTERVAL: &str = "1h0m0s";

/// Desired state of an ExternalSecret: where its values come from and what Secret they make.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ExternalSecret",
    namespaced,
    status = "ExternalSecretStatus",
    shortname = "es",
    category = "external-secrets",
    derive = "Default",
    derive = "PartialEq",
    label("external-secrets.io/component", "controller"),
    doc = "ExternalSecret declares which values to read from an external secret store and the Kubernetes Secret they are written to.",
    printcolumn(
        name = "StoreType",
        type_ = "string",
        json_path = ".spec.secretStoreRef.kind"
    ),
    printcolumn(
        name = "Store",
        type_ = "string",
        json_path = ".spec.secretStoreRef.name"
    ),
    printcolumn(
        name = "Refresh Interval",
        type_ = "string",
        json_path = ".spec.refreshInterval"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.refreshTime"),
    selectable = ".spec.secretStoreRef.name",
    selectable = ".spec.secretStoreRef.kind",
    selectable = ".spec.target.name",
    selectable = ".spec.refreshInterval"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.data) && size(self.data) > 0) || (has(self.dataFrom) && size(self.dataFrom) > 0)",
        "message": "either data or dataFrom should be specified"
    },
    {
        "rule": "!has(self.data) || (has(self.target) && has(self.target.deletionPolicy) && self.target.deletionPolicy != 'Retain') || self.data.all(d, self.data.exists_one(e, e.secretKey == d.secretKey))",
        "message": "duplicate secretKey found in data: each secretKey may appear only once when deletionPolicy is Retain"
    }
]))]
pub struct ExternalSecretSpec {
    /// The store to read from, unless an entry overrides it with `sourceRef.storeRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,

    /// The Secret to write and how to own it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {"creationPolicy": "Owner", "deletionPolicy": "Retain"}))]
    pub target: Option<ExternalSecretTarget>,

    /// When to read the values again: `Periodic` (the default when unset), `OnChange`, or
    /// `CreatedOnce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_policy: Option<RefreshPolicy>,

    /// How often to read the values again under `Periodic`, as a Go duration ("1h", "15m").
    /// `0` means sync once. Defaults to `1h0m0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "1h0m0s"), pattern(GO_DURATION_PATTERN))]
    pub refresh_interval: Option<String>,

    /// Restricts when periodic refreshes may happen (modelled, evaluated by the controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<SyncWindows>,

    /// One remote value per Secret key. Processed after `dataFrom`, so it wins on conflicts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_DATA_ITEMS))]
    pub data: Vec<ExternalSecretData>,

    /// Many keys at once: a whole JSON secret (`extract`), a search (`find`), or a generator.
    /// Entries are merged in order; a later entry overwrites an earlier one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<ExternalSecretDataFromRemoteRef>,
}

impl ExternalSecretSpec {
    /// The refresh policy in effect: unset behaves as `Periodic`.
    pub fn refresh_policy(&self) -> RefreshPolicy {
        self.refresh_policy.unwrap_or(RefreshPolicy::Periodic)
    }

    /// The refresh interval in effect (`1h` when unset); zero means "sync once". A negative
    /// interval also means "sync once", as in ESO (it refreshes only when the interval is
    /// positive).
    pub fn refresh_interval(&self) -> Result<std::time::Duration, ApiError> {
        let raw = self
            .refresh_interval
            .as_deref()
            .unwrap_or(DEFAULT_REFRESH_INTERVAL);
        match parse_go_duration(raw) {
            Err(crate::duration::DurationError::Negative(_)) => Ok(std::time::Duration::ZERO),
            other => other.map_err(|source| ApiError::Duration {
                field: "spec.refreshInterval",
                source,
            }),
        }
    }

    /// The target settings, with ESO's defaults when `target` is absent.
    pub fn target(&self) -> ExternalSecretTarget {
        self.target.clone().unwrap_or_default()
    }

    /// The creation policy in effect (`Owner` when unset).
    pub fn creation_policy(&self) -> CreationPolicy {
        self.target
            .as_ref()
            .map(|t| t.creation_policy)
            .unwrap_or_default()
    }

    /// The deletion policy in effect (`Retain` when unset).
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.target
            .as_ref()
            .map(|t| t.deletion_policy)
            .unwrap_or_default()
    }
}

impl ExternalSecret {
    /// The name of the Secret this ExternalSecret writes: `spec.target.name`, or its own name.
    pub fn target_secret_name(&self) -> String {
        self.spec
            .target
            .as_ref()
            .and_then(|t| t.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}

/// Which store to read from.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRef {
    /// Name of the SecretStore or ClusterSecretStore.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// `SecretStore` (the default) or `ClusterSecretStore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<StoreKind>,
}

impl SecretStoreRef {
    /// The kind in effect: an empty kind means `SecretStore`.
    pub fn kind(&self) -> StoreKind {
        self.kind.unwrap_or_default()
    }
}

/// The two kinds of store an ExternalSecret can read from.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
pub enum StoreKind {
    /// A namespaced store, in the ExternalSecret's namespace.
    #[default]
    SecretStore,
    /// A cluster-scoped store, subject to its namespace `conditions`.
    ClusterSecretStore,
}

/// How the controller relates to the target Secret.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum CreationPolicy {
    /// Create the Secret and make the ExternalSecret its controller owner.
    #[default]
    Owner,
    /// Create the Secret without an owner reference; it outlives the ExternalSecret.
    Orphan,
    /// Do not create the Secret; merge keys into an existing one.
    Merge,
    /// Do not write a Secret at all.
    None,
    /// Create the Secret if missing, otherwise merge into it; no owner reference.
    CreateOrMerge,
}

/// What happens to the Secret when every remote value is gone.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the Secret; a missing remote value is an error.
    #[default]
    Retain,
    /// Delete the Secret (only under `creationPolicy: Owner`).
    Delete,
    /// Remove the keys this ExternalSecret manages, keep the Secret.
    Merge,
}

/// When an ExternalSecret is read again.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum RefreshPolicy {
    /// Create the Secret once and never update it.
    CreatedOnce,
    /// Re-read every `refreshInterval` (the default).
    #[default]
    Periodic,
    /// Re-read only when the ExternalSecret's spec, labels or annotations change.
    OnChange,
}

/// Time windows that gate periodic refreshes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindows {
    /// `allow`: refresh only inside a window; `deny`: never inside a window.
    pub kind: SyncWindowKind,
    /// The windows, all of the same kind.
    #[schemars(length(min = 1))]
    pub windows: Vec<SyncWindow>,
}

/// Whether sync windows permit or block refreshes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncWindowKind {
    /// Refreshes happen only while a window is open.
    #[default]
    Allow,
    /// Refreshes are blocked while a window is open.
    Deny,
}

/// One window: a cron schedule (UTC) marking its start, open for `duration`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// A 5-field cron expression in UTC, or `@daily`, `@every 1h`, ...
    #[schemars(length(min = 1), pattern(r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every [^\s]+.*|[^\s]+( [^\s]+){4})$"))]
    pub schedule: String,
    /// How long the window stays open (a Go duration).
    #[schemars(pattern(GO_DURATION_PATTERN))]
    pub duration: String,
}

/// The Kubernetes Secret to write.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.deletionPolicy) && self.deletionPolicy == 'Delete' && has(self.creationPolicy) && self.creationPolicy in ['Merge', 'None', 'CreateOrMerge'])",
        "message": "deletionPolicy=Delete must not be used when the controller doesn't own the secret. Please set creationPolicy=Owner"
    },
    {
        "rule": "!(has(self.deletionPolicy) && self.deletionPolicy == 'Merge' && has(self.creationPolicy) && self.creationPolicy == 'None')",
        "message": "deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret to merge with"
    },
    {
        "rule": "(has(self.manifest) && !(self.manifest.apiVersion == 'v1' && self.manifest.kind == 'Secret')) || !has(self.template) || !has(self.template.templateFrom) || self.template.templateFrom.all(t, !has(t.target) || t.target.lowerAscii() in ['', 'data', 'annotations', 'labels'])",
        "message": "templateFrom target is not allowed when targeting a Secret, must be one of \"Data\", \"Annotations\" or \"Labels\""
    }
]))]
pub struct ExternalSecretTarget {
    /// Name of the Secret; defaults to the ExternalSecret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: Option<String>,
    /// How to create and own the Secret. Defaults to `Owner`.
    #[serde(default)]
    pub creation_policy: CreationPolicy,
    /// What to do when every remote value is gone. Defaults to `Retain`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// A blueprint for the Secret: type, metadata, templated data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
    /// Render into another kind instead of a Secret (ESO's generic targets). Only with the
    /// controller's `--unsafe-allow-generic-targets`, else refused with ESO's error. esox writes
    /// `apiVersion: v1`, `kind: ConfigMap` (UTF-8 values in `data`, others in `binaryData`);
    /// other kinds are refused (Ready=False, "invalid generic target"), never written as a
    /// Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestReference>,
    /// Make the Secret immutable: once created, only its metadata can change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
}

/// The kind to render into instead of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestReference {
    /// apiVersion of the target resource, e.g. `v1`.
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// Kind of the target resource, e.g. `ConfigMap`.
    #[schemars(length(min = 1))]
    pub kind: String,
}

/// The Secret blueprint: ESO's `ExternalSecretTemplate`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.type) || self.type != 'bootstrap.kubernetes.io/token'",
        "message": "template.type=\"bootstrap.kubernetes.io/token\" is not allowed"
    },
    {
        "rule": "!has(self.type) || self.type != 'kubernetes.io/service-account-token' || !has(self.metadata) || !has(self.metadata.annotations) || !('kubernetes.io/service-account.name' in self.metadata.annotations)",
        "message": "template.type=\"kubernetes.io/service-account-token\" with annotation \"kubernetes.io/service-account.name\" is not allowed"
    },
    {
        "rule": "!has(self.type) || self.type != 'kubernetes.io/service-account-token' || !has(self.templateFrom) || !self.templateFrom.exists(t, has(t.target) && t.target.lowerAscii() == 'annotations')",
        "message": "template.type=\"kubernetes.io/service-account-token\" with templateFrom target=\"Annotations\" is not allowed"
    }
]))]
pub struct ExternalSecretTemplate {
    /// The Secret's type; empty keeps the existing type (or `Opaque` for a new Secret).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The template engine; only `v2` exists.
    #[serde(default)]
    pub engine_version: TemplateEngineVersion,
    /// Labels, annotations and finalizers for the Secret, each value a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// `Replace` (default): only templated keys; `Merge`: templated keys over provider keys.
    #[serde(default)]
    pub merge_policy: TemplateMergePolicy,
    /// Secret key -> template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Templates kept in ConfigMaps, Secrets or literals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_TEMPLATE_FROM_ITEMS))]
    pub template_from: Vec<TemplateFrom>,
}

/// Template engine versions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TemplateEngineVersion {
    /// Go text/template with sprig and ESO's functions.
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// How templated data combines with the provider's data.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TemplateMergePolicy {
    /// Only templated keys are written (unless there is no data template at all).
    #[default]
    Replace,
    /// Provider keys are written too, templated keys win.
    Merge,
}

/// Labels, annotations and finalizers of the templated Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Annotations; each value is a template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels; each value is a template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Finalizers to put on the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// One source of templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFrom {
    /// Templates read from keys of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,
    /// Templates read from keys of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,
    /// Where the result goes: `Data` (default), `Annotations` or `Labels` (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Data"), length(max = 253))]
    pub target: Option<String>,
    /// An inline template that renders a YAML map of key: value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// How to decode rendered values (modelled; ESO v2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_decoding_strategy: Option<DecodingStrategy>,
}

/// Where a templateFrom result is written, for Secret targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateTarget {
    /// The Secret's data.
    Data,
    /// The Secret's annotations.
    Annotations,
    /// The Secret's labels.
    Labels,
}

impl TemplateFrom {
    /// The target of this entry, case-insensitively as ESO reads it; an unknown target (only
    /// meaningful for generic manifests, which esox does not render) is an error.
    pub fn target(&self) -> Result<TemplateTarget, ApiError> {
        match self.target.as_deref().unwrap_or("") {
            t if t.is_empty() || t.eq_ignore_ascii_case("data") => Ok(TemplateTarget::Data),
            t if t.eq_ignore_ascii_case("annotations") => Ok(TemplateTarget::Annotations),
            t if t.eq_ignore_ascii_case("labels") => Ok(TemplateTarget::Labels),
            other => Err(ApiError::TemplateTarget(other.to_string())),
        }
    }
}

/// A ConfigMap or Secret holding templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// The name of the ConfigMap/Secret, in the ExternalSecret's namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// The keys to use as templates.
    pub items: Vec<TemplateRefItem>,
}

/// One key of a template ConfigMap/Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    /// The key holding the template.
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: String,
    /// `Values` (default): the key's value is a template for the same key;
    /// `KeysAndValues`: the template renders a YAML map of keys and values.
    #[serde(default)]
    pub template_as: TemplateScope,
}

/// How a template item is interpreted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TemplateScope {
    /// Render the value; the key stays.
    #[default]
    Values,
    /// Render, then parse the output as a YAML map of keys and values.
    KeysAndValues,
}

/// One Secret key read from one remote value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// The key in the Kubernetes Secret.
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub secret_key: String,
    /// Which remote value (and which part of it) to read.
    pub remote_ref: ExternalSecretDataRemoteRef,
    /// Read from another store than `spec.secretStoreRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreSourceRef>,
}

/// Where a remote value lives and how to turn it into bytes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataRemoteRef {
    /// The key in the provider.
    pub key: String,
    /// `None` (default) reads the value; `Fetch` reads its tags/labels as a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_policy: Option<MetadataPolicy>,
    /// A property inside a JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// A version or stage of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How to make keys safe for a Secret (`dataFrom.extract` only): `Default` or `Unicode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ConversionStrategy>,
    /// How to decode values: `None` (default), `Base64`, `Base64URL`, `Auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,
    /// Whether a value containing a NUL byte is accepted (`Ignore`, default) or fails (`Fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// Value or metadata.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum MetadataPolicy {
    /// Read the value.
    #[default]
    None,
    /// Read the metadata (tags/labels) as a JSON object.
    Fetch,
}

/// How keys returned by a provider are made safe for a Secret.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConversionStrategy {
    /// Replace each invalid character with `_`.
    #[default]
    Default,
    /// Replace each invalid character with `_U<hex code point>_`.
    Unicode,
}

/// How values returned by a provider are decoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum DecodingStrategy {
    /// Try Base64, then Base64URL, else keep the value as it is.
    Auto,
    /// Standard Base64 (padded).
    Base64,
    /// URL-safe Base64 (padded).
    #[serde(rename = "Base64URL")]
    Base64Url,
    /// Keep the value as it is (the default).
    #[default]
    None,
}

/// What to do with values that contain NUL bytes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum NullBytePolicy {
    /// Accept them (the default).
    #[default]
    Ignore,
    /// Fail the sync.
    Fail,
}

/// Many keys from one source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.extract) && has(self.find)) && !((has(self.extract) || has(self.find)) && has(self.sourceRef) && has(self.sourceRef.generatorRef))",
        "message": "extract, find, or generatorRef cannot be set at the same time"
    },
    {
        "rule": "has(self.extract) || has(self.find) || has(self.sourceRef)",
        "message": "either extract, find, or sourceRef must be set to dataFrom"
    }
]))]
pub struct ExternalSecretDataFromRemoteRef {
    /// Read one JSON object and use its top-level keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<ExternalSecretDataRemoteRef>,
    /// Read every secret matching a name regexp, path and/or tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<ExternalSecretFind>,
    /// Rewrite the keys, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<ExternalSecretRewrite>,
    /// Another store, or a generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreGeneratorSourceRef>,
}

/// A search across the store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretFind {
    /// A root path to search under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A regular expression (RE2) on the secret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,
    /// Tags the secret must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// How to make names safe as Secret keys: `Default` or `Unicode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ConversionStrategy>,
    /// How to decode values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,
    /// Whether values with NUL bytes are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// A name filter for `find`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindName {
    /// An RE2 regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
}

/// One key rewrite step; exactly one of its fields is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct ExternalSecretRewrite {
    /// Merge the JSON objects of several values into one (`strategy` Extract or JSON,
    /// `priority`, `conflictPolicy`), as ESO does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<RewriteMerge>,
    /// Go `regexp.ReplaceAllString(key, target)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,
    /// A template whose `.value` is the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
}

/// Regular-expression rewrite.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteRegexp {
    /// The RE2 expression.
    pub source: String,
    /// The replacement, with `$1` / `${name}` references.
    pub target: String,
}

/// Template rewrite.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteTransform {
    /// The template; `.value` is the key.
    pub template: String,
}

/// Merge rewrite (ESO v0.18.1+).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteMerge {
    /// The target key (required with strategy JSON).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub into: String,
    /// Key priority for conflicts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<String>,
    /// `Strict` (default) or `IgnoreNotFound`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_policy: Option<RewriteMergePriorityPolicy>,
    /// `Error` (default) or `Ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_policy: Option<RewriteMergeConflictPolicy>,
    /// `Extract` (default) or `JSON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RewriteMergeStrategy>,
}

/// What to do when a priority key is missing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RewriteMergePriorityPolicy {
    /// Fail.
    #[default]
    Strict,
    /// Skip it.
    IgnoreNotFound,
}

/// What to do on a key conflict.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RewriteMergeConflictPolicy {
    /// Fail.
    #[default]
    Error,
    /// Keep the first.
    Ignore,
}

/// How values are merged.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RewriteMergeStrategy {
    /// Merge the keys of each JSON value.
    #[default]
    Extract,
    /// Merge into one JSON document under `into`.
    #[serde(rename = "JSON")]
    Json,
}

/// Overrides the store of a `data[]` entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct StoreSourceRef {
    /// The store to read this entry from.
    #[serde(default, rename = "storeRef", skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,
    /// Deprecated and not implemented in `data[]` (by ESO either); accepted so manifests apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// Overrides the store of a `dataFrom[]` entry, or points it at a generator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend(
    "minProperties" = 1,
    "maxProperties" = 1,
    "x-kubernetes-validations" = [{
        "rule": "has(self.storeRef) || has(self.generatorRef)",
        "message": "generatorRef or storeRef must be set when using sourceRef in dataFrom"
    }]
))]
pub struct StoreGeneratorSourceRef {
    /// The store to read this entry from.
    #[serde(default, rename = "storeRef", skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,
    /// A generator producing the values (modelled; generators are not implemented by esox yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// A generator resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRef {
    /// Defaults to `generators.external-secrets.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generators.external-secrets.io/v1alpha1"))]
    pub api_version: Option<String>,
    /// The generator kind.
    #[schemars(extend("enum" = [
        "ACRAccessToken", "BeyondtrustWorkloadCredentialsDynamicSecret", "ClusterGenerator",
        "CloudsmithAccessToken", "ECRAuthorizationToken", "Fake", "GCRAccessToken",
        "GithubAccessToken", "GitlabDeployToken", "QuayAccessToken", "Password", "SSHKey",
        "STSSessionToken", "UUID", "VaultDynamicSecret", "Webhook", "Grafana", "MFA"
    ]))]
    pub kind: String,
    /// The generator's name.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
}

/// Observed state of an ExternalSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// When the values were last read and the Secret written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<Time>,
    /// `<generation>-<hash of labels and annotations>` of the last synced ExternalSecret; a
    /// change forces a refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// Ready (and ESO's metrics-only Deleted) conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ExternalSecretCondition>,
    /// servicebinding.io reference to the written Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
}

/// A servicebinding.io Provisioned Service reference.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct Binding {
    /// The Secret's name.
    #[serde(default)]
    pub name: String,
}

/// A status condition, as ESO writes it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretCondition {
    /// `Ready` or `Deleted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason (see `esox_sync::reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}
