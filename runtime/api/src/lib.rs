//! Types of the external-secrets.io API that esox serves, and the CustomResourceDefinitions
//! generated from them.
//!
//! - [`ExternalSecret`], [`SecretStore`], [`ClusterSecretStore`]: `external-secrets.io/v1`
//!   (storage). The same schema is also served as `v1beta1` (deprecated), with conversion
//!   `None`, because ESO's quick-start manifests still use `v1beta1`.
//! - [`crds`] / [`crds_yaml`] / [`write_crds`]: the CRDs, committed under `crds/` and checked
//!   for drift by a test in this crate.
//!
//! ESO's admission-webhook checks are CEL rules in the schemas, so esox needs no webhook.

pub mod crd;
pub mod duration;
pub mod external_secret;
pub mod meta;
pub mod provider;
pub mod secret_store;

pub use crd::{CRD_FILES, crd_files, crds, crds_yaml, write_crds};
pub use external_secret::*;
pub use meta::{SecretKeySelector, ServiceAccountSelector};
pub use provider::*;
pub use secret_store::*;

/// The API group served.
pub const GROUP: &str = "external-secrets.io";

/// Errors from reading API objects: values the schema lets through but that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `spec.provider` is empty.
    #[error("spec.provider has no provider: set exactly one provider, e.g. spec.provider.aws")]
    NoProvider,
    /// `spec.provider` names more than one provider.
    #[error("spec.provider sets several providers ({}): keep exactly one", .0.join(", "))]
    SeveralProviders(Vec<String>),
    /// A typed provider config could not be turned into JSON (a bug, not a user error).
    #[error("could not serialise the provider configuration: {0}")]
    Serialize(#[source] serde_json::Error),
    /// A duration field is not a usable Go duration.
    #[error("{field}: {source}")]
    Duration {
        /// The field, e.g. `spec.refreshInterval`.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: duration::DurationError,
    },
    /// A store's integer refresh interval is negative.
    #[error(
        "invalid spec.refreshInterval {0}: must not be negative; use seconds or a duration such as \"5m\""
    )]
    NegativeRefreshInterval(i32),
    /// A templateFrom target is not one a Secret can take.
    #[error(
        "templateFrom target={0:?} is not allowed when targeting a Secret, must be one of \"Data\", \"Annotations\" or \"Labels\""
    )]
    TemplateTarget(String),
    /// A store field the API server accepted but that cannot be used as written.
    #[error("{field}: {message}")]
    InvalidStoreField {
        /// The field, e.g. `spec.conditions[0].namespaceRegexes[1]`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}
