//! The SecretStore and ClusterSecretStore reconcilers: validate the store through its plugin
//! (configuration first, then the plugin's own `validate`), write the Ready condition and the
//! capabilities, and look again after the store's refresh interval.
//!
//! Stores of another controller class are left alone. An ExternalSecret is re-triggered when a
//! store it uses changes, through the ExternalSecret controller's store watch.

use std::sync::Arc;
use std::time::Instant;

use crate::events::EventType;
use esox_api::store_reason as r;
use esox_api::{ClusterSecretStore, SecretStore, SecretStoreSpec, SecretStoreStatus};
use esox_plugin_host::Validation;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::backoff::{failure_delay, jittered, random_unit};
use crate::context::{Context, FIELD_MANAGER};
use crate::error::Error;
use crate::metrics::{ClusterLabels, ObjectLabels};
use crate::status::{Ready, capabilities, store_is_ready, store_status};
use crate::store_clients::{StoreKey, store_revision};

/// What validating a store found: its Ready condition, its capabilities, and the error text
/// behind a failure (for the store's Warning event, as ESO records it; never a value).
async fn validate(
    ctx: &Context,
    key: &StoreKey,
    spec: &SecretStoreSpec,
    revision: Option<&str>,
) -> (Ready, Option<String>, Option<String>) {
    // What the API server accepts but the store cannot use: refused with the field named.
    if let Err(e) = spec.check(matches!(key, StoreKey::Cluster { .. })) {
        tracing::info!(store = %key, error = %e, "store spec refused");
        let message = e.to_string();
        return (
            Ready::failed(r::INVALID_STORE, &message),
            None,
            Some(message),
        );
    }
    let (plugin, config) = match spec.provider_entry() {
        Ok(entry) => entry,
        Err(e) => {
            tracing::info!(store = %key, error = %e, "store configuration refused");
            return (
                Ready::failed(r::INVALID_PROVIDER_CONFIG, r::MSG_UNABLE_CREATE_CLIENT),
                None,
                Some(e.to_string()),
            );
        }
    };
    let caps = ctx
        .stores
        .host()
        .plugin(&plugin)
        .map(|p| capabilities(&p.meta.capabilities));
    if let Err(e) = ctx.stores.host().validate_config(&plugin, &config).await {
        tracing::info!(store = %key, error = %e, "store configuration refused by the plugin");
        return (
            Ready::failed(r::INVALID_PROVIDER_CONFIG, r::MSG_UNABLE_CREATE_CLIENT),
            caps,
            Some(e.to_string()),
        );
    }
    let client = match ctx.stores.client(key, spec, revision, None) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(store = %key, error = %e, "cannot open a plugin client for the store");
            return (
                Ready::failed(r::INVALID_PROVIDER_CONFIG, r::MSG_UNABLE_CREATE_CLIENT),
                caps,
                Some(e.to_string()),
            );
        }
    };
    match client.validate().await {
        Ok(Validation::Ready) => (Ready::ok(r::VALID, r::MSG_STORE_VALIDATED), caps, None),
        Ok(Validation::Unknown) => (
            Ready::ok(r::VALIDATION_UNKNOWN, r::MSG_VALIDATION_UNKNOWN),
            caps,
            None,
        ),
        Err(e) => {
            tracing::info!(store = %key, error = %e, "store validation failed");
            (
                Ready::failed(r::INVALID_PROVIDER_CONFIG, r::MSG_UNABLE_VALIDATE_STORE),
                caps,
                Some(e.to_string()),
            )
        }
    }
}

/// The event a store reconcile records: a Warning with ESO's reason and the error text on
/// every failed validation (failures back off, so this is bounded), a Normal `Valid` when the
/// store becomes valid. ESO also records `Valid` on every successful refresh; esox records it
/// on the transition only, which saves a write per store per refresh interval.
pub(crate) struct StoreEvent {
    type_: EventType,
    reason: String,
    note: String,
}

fn store_event(ready: &Ready, detail: Option<String>, became_ready: bool) -> Option<StoreEvent> {
    match detail {
        // The recorder cuts the note to the API's 1 KiB.
        Some(note) if !ready.status => Some(StoreEvent {
            type_: EventType::Warning,
            reason: ready.reason.clone(),
            note,
        }),
        _ if ready.status && became_ready => Some(StoreEvent {
            type_: EventType::Normal,
            reason: ready.reason.clone(),
            note: ready.message.clone(),
        }),
        _ => None,
    }
}

/// Record a store's event; a failure to publish is logged, not fatal.
async fn publish<K>(ctx: &Context, store: &K, event: Option<StoreEvent>)
where
    K: Resource<DynamicType = ()>,
{
    let Some(e) = event else { return };
    let event = crate::events::Event {
        type_: e.type_,
        reason: e.reason,
        note: Some(e.note),
        action: "Validate".into(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &store.object_ref(&())).await {
        tracing::debug!(error = %err, "could not publish a store event");
    }
}

/// The common part of both store kinds: validate, and say which status to write (only when
/// it changed) and when to look again.
async fn reconcile_store(
    ctx: &Context,
    key: StoreKey,
    spec: &SecretStoreSpec,
    revision: Option<&str>,
    old: Option<&SecretStoreStatus>,
) -> (Action, Option<SecretStoreStatus>, Option<StoreEvent>) {
    if !spec.served_by(&ctx.config.controller_class) {
        return (Action::await_change(), None, None);
    }
    let (ready, caps, detail) = validate(ctx, &key, spec, revision).await;
    let event = store_event(&ready, detail, !store_is_ready(old));
    let status = store_status(old, &ready, caps, k8s_openapi::jiff::Timestamp::now());
    let changed = (old != Some(&status)).then_some(status);
    if changed.is_some() {
        tracing::info!(store = %key, ready = ready.status, reason = %ready.reason, "store status changed");
    }
    let (namespace, name) = match &key {
        StoreKey::Namespaced { namespace, name } => (Some(namespace.as_str()), name.as_str()),
        StoreKey::Cluster { name } => (None, name.as_str()),
    };
    ctx.metrics
        .set_store_condition(namespace, name, ready.status);
    let id = key.to_string();
    if !ready.status {
        // ESO returns the validation error: controller-runtime counts it as an error.
        crate::metrics::mark_failed();
    }
    let action = if ready.status {
        ctx.succeeded(&id);
        let interval = spec
            .refresh_interval()
            .ok()
            .flatten()
            .unwrap_or(ctx.config.store_requeue_interval);
        Action::requeue(jittered(interval, random_unit()))
    } else {
        Action::requeue(failure_delay(ctx.failed(&id), random_unit()))
    };
    (action, changed, event)
}

fn status_patch<K: Resource<DynamicType = ()>>(
    status: &SecretStoreStatus,
) -> Patch<serde_json::Value> {
    Patch::Apply(json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    }))
}

/// Reconcile a SecretStore.
pub async fn reconcile_secret_store(
    store: Arc<SecretStore>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = store.namespace().unwrap_or_default();
    let name = store.name_any();
    let key = StoreKey::Namespaced {
        namespace: namespace.clone(),
        name: name.clone(),
    };
    if store.meta().deletion_timestamp.is_some() {
        ctx.stores.forget(&key);
        return Ok(Action::await_change());
    }
    let api = Api::<SecretStore>::namespaced(ctx.client.clone(), &namespace);
    let (action, status, event) = reconcile_store(
        &ctx,
        key,
        &store.spec,
        store_revision(store.meta()).as_deref(),
        store.status.as_ref(),
    )
    .await;
    publish(&ctx, store.as_ref(), event).await;
    if let Some(status) = status {
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(&name, &pp, &status_patch::<SecretStore>(&status))
            .await
            .map_err(Error::StatusWrite)?;
    }
    ctx.metrics
        .ss_reconcile_duration
        .get_or_create(&ObjectLabels {
            name: store.name_any(),
            namespace,
        })
        .set(started.elapsed().as_nanos() as f64); // nanoseconds, as ESO
    Ok(action)
}

/// Reconcile a ClusterSecretStore.
pub async fn reconcile_cluster_secret_store(
    store: Arc<ClusterSecretStore>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let name = store.name_any();
    let key = StoreKey::Cluster { name: name.clone() };
    if store.meta().deletion_timestamp.is_some() {
        ctx.stores.forget(&key);
        return Ok(Action::await_change());
    }
    let api = Api::<ClusterSecretStore>::all(ctx.client.clone());
    let (action, status, event) = reconcile_store(
        &ctx,
        key,
        &store.spec,
        store_revision(store.meta()).as_deref(),
        store.status.as_ref(),
    )
    .await;
    publish(&ctx, store.as_ref(), event).await;
    if let Some(status) = status {
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(&name, &pp, &status_patch::<ClusterSecretStore>(&status))
            .await
            .map_err(Error::StatusWrite)?;
    }
    ctx.metrics
        .css_reconcile_duration
        .get_or_create(&ClusterLabels {
            name: store.name_any(),
        })
        .set(started.elapsed().as_nanos() as f64); // nanoseconds, as ESO
    Ok(action)
}

/// A reconcile of this store panicked (caught by the runner): a Warning event on the store
/// says so; the error backs it off like any other failure.
pub async fn report_panic<K>(store: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
{
    let event = StoreEvent {
        type_: EventType::Warning,
        reason: "InternalError".into(),
        note: "esox failed internally while validating this store (a bug: the controller's log has the details); it retries with backoff"
            .into(),
    };
    publish(&ctx, store.as_ref(), Some(event)).await;
    Err(Error::Panicked)
}
