//! The pure sync pipeline: an ExternalSecret, the provider answers and the template inputs go
//! in, the desired Secret (or ESO's "no data" decision) comes out. No I/O: the controller does
//! the reading and writing; everything ESO users rely on about *what* ends up in the Secret is
//! decided, and unit-tested, here.
//!
//! - [`plan`]: which provider calls and templateFrom objects one sync needs;
//! - [`build`]: provider answers -> [`Outcome`] (ESO's processing order, key conversion and
//!   validation, decoding, NUL-byte policy, NotFound handling, templates, merge policies, data
//!   hash);
//! - [`refresh`]: whether an ExternalSecret is due and whether its Secret is still intact;
//! - [`write`]: the write plan (ownership, one field manager per ExternalSecret, conditional
//!   create and update, deletes only of its own Secrets with a uid precondition);
//! - [`hash`]: ESO's data-hash, created-by and syncedResourceVersion values, byte-exact;
//! - [`SyncError`] with ESO's condition reasons and messages ([`reason`]).

pub mod build;
pub mod decode;
pub mod error;
pub mod hash;
pub mod keys;
pub mod plan;
mod redact;
pub mod refresh;
pub mod template;
pub mod windows;
pub mod write;

pub use build::{
    Action, Answer, Answers, DesiredSecret, ExistingSecret, Outcome, build, provider_data,
};
pub use error::{SyncError, reason};
pub use hash::{created_by_label, data_hash, synced_resource_version};
pub use plan::{Plan, ProviderOp, ProviderRequest, StoreRef, TemplateSource, plan};
pub use template::{TemplateInputs, validate_secret_template};
pub use write::{
    Apply, Delete, Precondition, TargetMeta, TargetWrite, WritePlan, Writer, check_ownership,
    config_map_manifest, field_manager, keys_to_remove, plan_write, secret_manifest,
};

#[cfg(test)]
mod tests;
