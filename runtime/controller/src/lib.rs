//! The esox reconcilers: ExternalSecret, SecretStore and ClusterSecretStore against the
//! Kubernetes API. This crate does I/O only; what a Secret contains and when it is due is
//! decided by `esox_sync` ("I/O at the edges, decisions in the middle").
//!
//! - [`run`]: watches, three controllers, `/metrics`, `/healthz`, `/readyz`.
//! - [`external_secret`]: one ExternalSecret sync (plugins, server-side apply, status, events).
//! - [`stores`]: store validation through the plugin, Ready condition, capabilities.
//! - [`services`]: the plugin auth broker against the API server, under namespace rules.
//! - Pure helpers with unit tests: [`backoff`], [`status`], [`namespace_conditions`],
//!   [`managed_fields`], [`store_clients::has_referent_refs`].

pub mod backoff;
pub mod coalesce;
pub mod context;
pub mod error;
pub mod events;
pub mod external_secret;
pub mod fairness;
pub mod health;
pub mod http;
pub mod leader;
pub mod managed_fields;
pub mod metrics;
pub mod namespace_conditions;
pub mod parking;
pub mod plugin_policy;
pub mod rate_limit;
mod runner;
pub mod services;
pub mod status;
pub mod store_clients;
pub mod stores;
pub mod target;

pub use context::{Config, FIELD_MANAGER, SyncEvents};
pub use error::Error;
/// Go duration parsing (`5m`, `1h30m`), as the CRDs and ESO's flags use it.
pub use esox_api::duration::parse_go_duration;
pub use leader::LeaderElection;
pub use runner::{HttpConfig, kube_client, run, shutdown_signal};
