//! The ExternalSecret reconciler: the I/O around `esox_sync`.
//!
//! One reconcile: resolve the stores (controller class, ClusterSecretStore namespace
//! conditions, flood gate) -> decide whether a sync is due (`esox_sync::refresh`) and whether
//! the Secret is intact -> read the existing Secret, call the plugins (one batched
//! `get-secrets` per store for `data[]`), read templateFrom objects -> `esox_sync::build` ->
//! server-side apply or delete the Secret -> write status only if it changed -> requeue with
//! jitter, or back off after a failure.
//!
//! When anything fails before the write, the Secret is not touched: the only write happens
//! after `build` succeeded. Never-synced ExternalSecrets take permits from their own pool, so
//! they never queue behind refreshes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{Event, EventType};
use esox_api::{
    ClusterSecretStore, CreationPolicy, ExternalSecret, ExternalSecretStatus, RefreshPolicy,
    SecretStore, SecretStoreSpec, StoreKind,
};
use esox_provider::ProviderError;
use esox_sync::hash::LABEL_MANAGED;
use esox_sync::{
    Action as SyncAction, Answer, Answers, Delete, ExistingSecret, Plan, Precondition, ProviderOp,
    StoreRef, SyncError, TargetMeta, TargetWrite, TemplateInputs, TemplateSource, WritePlan,
    Writer, reason,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::backoff::{failure_delay, jittered, random_unit};
use crate::context::{Context, FIELD_MANAGER, es_key};
use crate::error::Error;
use crate::metrics::ObjectLabels;
use crate::namespace_conditions::{denied_message, namespace_allowed};
use crate::parking::{self, Need, Pool};
use crate::status::{Ready, Synced, external_secret_status, has_condition, store_is_ready};
use crate::store_clients::{CachedClient, StoreKey, store_revision};
use crate::target::{self, TargetKind};

/// Why a sync failed: the short condition message, the detail for the event and the log, and
/// whether retrying without a change can help.
#[derive(Debug)]
struct Failure {
    message: &'static str,
    detail: String,
    retry: bool,
    /// A write conditioned on the target being absent found it present (409): someone created
    /// it after esox looked, or esox wrote without looking (a first sync's create).
    created_meanwhile: bool,
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        Failure {
            message: e.condition_message(),
            retry: e.is_retryable(),
            created_meanwhile: false,
            detail: e.to_string(),
        }
    }
}

impl Failure {
    fn store(detail: String) -> Self {
        Failure {
            message: reason::MSG_ERROR_GET_SECRET_DATA,
            detail,
            retry: true,
            created_meanwhile: false,
        }
    }
    fn kube(message: &'static str, what: &str, e: kube::Error) -> Self {
        Failure {
            message,
            detail: format!("{what}: {e}"),
            retry: true,
            created_meanwhile: false,
        }
    }
}

/// The store key an entry's store reference names, for an ExternalSecret in `namespace`.
pub fn store_key(store: &StoreRef, namespace: &str) -> StoreKey {
    match store.kind {
        StoreKind::SecretStore => StoreKey::Namespaced {
            namespace: namespace.to_string(),
            name: store.name.clone(),
        },
        StoreKind::ClusterSecretStore => StoreKey::Cluster {
            name: store.name.clone(),
        },
    }
}

/// A store as the watch cache holds it: shared, not copied per reconcile (a reconcile waiting
/// for its permits held a deep copy of its store's spec; with 10,000 queued that was most of
/// the controller's peak memory).
#[derive(Clone)]
enum ResolvedStore {
    Namespaced(Arc<SecretStore>),
    Cluster(Arc<ClusterSecretStore>),
}

impl ResolvedStore {
    fn spec(&self) -> &SecretStoreSpec {
        match self {
            ResolvedStore::Namespaced(s) => &s.spec,
            ResolvedStore::Cluster(s) => &s.spec.store,
        }
    }

    fn revision(&self) -> Option<String> {
        match self {
            ResolvedStore::Namespaced(s) => store_revision(s.meta()),
            ResolvedStore::Cluster(s) => store_revision(s.meta()),
        }
    }
}

type ResolvedStores = HashMap<StoreRef, (StoreKey, ResolvedStore)>;

/// Outcome of resolving the stores: usable, or not ours (another controller class).
enum Stores {
    Ready(ResolvedStores),
    NotOurs,
}

/// Reconcile one ExternalSecret (the controller runtime runs each reconcile on its own task).
pub async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    if es.finalizers().iter().any(|f| f == ESO_FINALIZER) {
        Box::pin(release_eso_finalizer(&ctx, &es)).await?;
        if es.meta().deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
    }
    if es.meta().deletion_timestamp.is_some() {
        // Owned Secrets go with Kubernetes garbage collection (deletionPolicy Delete is only
        // valid under Owner); every other policy keeps the Secret.
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let namespace = es.namespace().unwrap_or_default();
    let name = es.name_any();
    let id = es_key(&namespace, &name);
    let labels = ObjectLabels {
        name: name.clone(),
        namespace: namespace.clone(),
    };
    let old_status = effective_status(&ctx, &id, &es);

    let plan = match esox_sync::plan(&es) {
        Ok(p) => p,
        Err(e) => return Box::pin(fail(&ctx, &es, &id, old_status.as_ref(), e.into())).await,
    };
    let keys: Vec<StoreKey> = plan
        .stores()
        .into_iter()
        .map(|s| store_key(s, &namespace))
        .collect();
    let target = es.target_secret_name();
    let me = ObjectRef::from_obj(&*es);
    ctx.index.apply(&me, &namespace, &target, &keys);

    let stores = match Box::pin(resolve_stores(&ctx, &plan, &namespace)).await {
        Ok(Stores::Ready(s)) => s,
        Ok(Stores::NotOurs) => return Ok(Action::await_change()),
        Err(f) => return Box::pin(fail(&ctx, &es, &id, old_status.as_ref(), f)).await,
    };
    let kind = match TargetKind::of(&es, ctx.config.allow_generic_targets) {
        Ok(kind) => kind,
        // Never written as a Secret instead; retrying cannot help, so not retried (ESO neither).
        Err(detail) => {
            let f = Failure {
                message: reason::MSG_INVALID_GENERIC_TARGET,
                detail,
                retry: false,
                created_meanwhile: false,
            };
            return Box::pin(fail(&ctx, &es, &id, old_status.as_ref(), f)).await;
        }
    };

    let es_now = with_status(&es, old_status.clone());
    let now = Timestamp::now();
    let never_synced = old_status
        .as_ref()
        .and_then(|s| s.synced_resource_version.as_deref())
        .unwrap_or("")
        .is_empty();
    let pool = if never_synced {
        Pool::FirstSyncs
    } else {
        Pool::Refreshes
    };
    let floor = ctx.config.min_refresh_interval;
    let due = esox_sync::refresh::should_refresh_with_floor(&es_now, now, floor);
    // Not due: only the Secret is looked at, under the namespace's and the global share.
    let intact = if due {
        false
    } else {
        // Taken now, or parked until they are (parking.rs): reconciled again then.
        let Some(_permits) = parking::permits(&ctx.parking, &me, Need::look(&namespace, pool))?
        else {
            return Ok(Action::await_change());
        };
        Box::pin(secret_intact(&ctx, &es_now, &namespace, &target, kind)).await?
    };
    if intact {
        // Nothing to read: keep the status (repairing a stale failure condition) and requeue.
        let current_ok = old_status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == reason::READY))
            .is_some_and(|c| c.status == "True");
        if !current_ok {
            let ready = Ready::ok(reason::SECRET_SYNCED, reason::MSG_SYNCED);
            let synced = Synced {
                synced_resource_version: esox_sync::synced_resource_version(&es),
                secret_name: target.clone(),
                refreshed: false,
            };
            let status = external_secret_status(old_status.as_ref(), &ready, Some(&synced), now);
            Box::pin(write_status(&ctx, &es, &id, old_status.as_ref(), status)).await?;
        }
        ctx.metrics.set_es_condition(&name, &namespace, true);
        return Ok(requeue_after_success(
            &es,
            effective_status(&ctx, &id, &es).as_ref(),
            floor,
        ));
    }

    // A sync: a share of each store it reads first, then the namespace's, then a global
    // permit, always in this order (stores sorted), so waiting on a slow store holds nothing
    // other tenants need (see fairness.rs). Taken now, or parked until they are, outside the
    // controller's slots (parking.rs): reconciled again then.
    let Some(_permits) = parking::permits(&ctx.parking, &me, Need::sync(keys, &namespace, pool))?
    else {
        return Ok(Action::await_change());
    };

    ctx.metrics.sync_calls.get_or_create(&labels).inc();
    // Boxed, like every large step here: a reconcile waiting for its permits is then a few
    // hundred bytes, not the ~19 KB of the whole sync's state (10,000 queued reconciles held
    // 191 MB at start-up before this; heaptrack, esox-bench N=10,000).
    let result = Box::pin(sync(
        &ctx,
        &es,
        &plan,
        &stores,
        &namespace,
        (&target, kind),
        old_status.as_ref(),
    ))
    .await;
    ctx.metrics
        .es_reconcile_duration
        .get_or_create(&labels)
        .set(started.elapsed().as_nanos() as f64); // nanoseconds, as ESO
    match result {
        Ok(ready) => {
            let synced = Synced {
                synced_resource_version: esox_sync::synced_resource_version(&es),
                secret_name: target.clone(),
                refreshed: true,
            };
            let status = external_secret_status(
                old_status.as_ref(),
                &ready,
                Some(&synced),
                Timestamp::now(),
            );
            Box::pin(write_status(
                &ctx,
                &es,
                &id,
                old_status.as_ref(),
                status.clone(),
            ))
            .await?;
            ctx.succeeded(&id);
            ctx.last_errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            ctx.metrics.set_es_condition(&name, &namespace, true);
            tracing::debug!(externalsecret = %id, secret = %target, reason = %ready.reason, "synced");
            Ok(requeue_after_success(&es, Some(&status), floor))
        }
        Err(f) => Box::pin(fail(&ctx, &es, &id, old_status.as_ref(), f)).await,
    }
}

/// The finalizer ESO (0.20 and later) puts on every ExternalSecret it reconciles. esox uses
/// none (see docs/operations.md), and nothing else would ever remove it: deleting such an
/// ExternalSecret, or its namespace, would hang in Terminating after a switch from ESO.
pub const ESO_FINALIZER: &str = "externalsecrets.external-secrets.io/externalsecret-cleanup";

/// Do what ESO's finalizer stood for, then remove it: on a deleted ExternalSecret with
/// `deletionPolicy: Delete`, its Secret goes if this ExternalSecret controls it (uid
/// precondition); then the finalizer is removed with a JSON patch that tests it is still at
/// that position, so a concurrent change of the list is never clobbered.
async fn release_eso_finalizer(ctx: &Context, es: &ExternalSecret) -> Result<(), Error> {
    let namespace = es.namespace().unwrap_or_default();
    if es.meta().deletion_timestamp.is_some()
        && es.spec.deletion_policy() == esox_api::DeletionPolicy::Delete
    {
        // A generic target esox may not write was never written: nothing to delete.
        if let Ok(kind) = TargetKind::of(es, ctx.config.allow_generic_targets) {
            let target = es.target_secret_name();
            if let Some(meta) = target::read_meta(&ctx.client, kind, &namespace, &target).await?
                && meta
                    .controller_owner
                    .as_ref()
                    .is_some_and(|o| Some(&o.uid) == es.metadata.uid.as_ref())
            {
                let delete = Delete {
                    name: target,
                    uid: meta.uid,
                };
                target::delete_exactly(&ctx.client, kind, &namespace, &delete).await?;
            }
        }
    }
    let Some(index) = es.finalizers().iter().position(|f| f == ESO_FINALIZER) else {
        return Ok(());
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": ESO_FINALIZER},
        {"op": "remove", "path": format!("/metadata/finalizers/{index}")},
    ]))
    .map_err(|e| Error::Task(e.to_string()))?;
    let api = Api::<ExternalSecret>::namespaced(ctx.client.clone(), &namespace);
    match api
        .patch(
            &es.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(externalsecret = %format!("{namespace}/{}", es.name_any()), "removed ESO's cleanup finalizer (esox uses none)");
            Ok(())
        }
        // Gone, or the list changed since it was read: the next event brings it again.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The newer of the cached ExternalSecret's status and the status esox last wrote: the watch
/// cache can lag behind esox's own writes, and a stale status would sync twice.
fn effective_status(ctx: &Context, id: &str, es: &ExternalSecret) -> Option<ExternalSecretStatus> {
    let written = ctx
        .statuses
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned();
    match (es.status.clone(), written) {
        (Some(seen), Some((uid, w))) if Some(&uid) == es.metadata.uid.as_ref() => {
            let t = |s: &ExternalSecretStatus| s.refresh_time.as_ref().map(|t| t.0);
            if t(&w) > t(&seen) {
                Some(w)
            } else {
                Some(seen)
            }
        }
        (None, Some((uid, w))) if Some(&uid) == es.metadata.uid.as_ref() => Some(w),
        (seen, _) => seen,
    }
}

fn with_status(es: &ExternalSecret, status: Option<ExternalSecretStatus>) -> ExternalSecret {
    let mut es = es.clone();
    es.status = status;
    es
}

/// After a sync or a skip: Periodic looks again when the rest of the interval has passed
/// (spread by ±10 %); the other policies wait for a change (of the ExternalSecret, its Secret
/// or its store).
fn requeue_after_success(
    es: &ExternalSecret,
    status: Option<&ExternalSecretStatus>,
    floor: Duration,
) -> Action {
    if es.spec.refresh_policy() != RefreshPolicy::Periodic {
        return Action::await_change();
    }
    let es = with_status(es, status.cloned());
    match esox_sync::refresh::requeue_after_with_floor(&es, Timestamp::now(), floor) {
        None => Action::await_change(),
        Some(d) => {
            Action::requeue(jittered(d, random_unit()).max(std::time::Duration::from_millis(100)))
        }
    }
}

async fn resolve_stores(ctx: &Context, plan: &Plan, namespace: &str) -> Result<Stores, Failure> {
    let mut out = HashMap::new();
    for store in plan.stores() {
        let key = store_key(store, namespace);
        let (spec, status, kind) = match store.kind {
            StoreKind::SecretStore => {
                let found = ctx
                    .secret_stores
                    .get(&ObjectRef::new(&store.name).within(namespace));
                let Some(s) = found else {
                    return Err(Failure::store(format!(
                        "SecretStore {:?} not found in namespace {namespace:?}: create it or fix spec.secretStoreRef",
                        store.name
                    )));
                };
                let status = s.status.clone();
                (ResolvedStore::Namespaced(s), status, "SecretStore")
            }
            StoreKind::ClusterSecretStore => {
                let Some(s) = ctx.cluster_secret_stores.get(&ObjectRef::new(&store.name)) else {
                    return Err(Failure::store(format!(
                        "ClusterSecretStore {:?} not found: create it or fix spec.secretStoreRef",
                        store.name
                    )));
                };
                if !s.spec.conditions.is_empty() {
                    if let Err(e) = s.spec.check_conditions() {
                        // Also without the flood gate: an unusable condition never decides
                        // access.
                        return Err(Failure::store(format!(
                            "ClusterSecretStore {:?} cannot be used: {e}",
                            store.name
                        )));
                    }
                    let ns = Api::<Namespace>::all(ctx.client.clone())
                        .get(namespace)
                        .await
                        .map_err(|e| {
                            Failure::kube(
                                reason::MSG_ERROR_GET_SECRET_DATA,
                                &format!("reading namespace {namespace}"),
                                e,
                            )
                        })?;
                    let labels = ns.metadata.labels.unwrap_or_default();
                    if !namespace_allowed(&s.spec.conditions, namespace, &labels) {
                        return Err(Failure {
                            retry: false,
                            created_meanwhile: false,
                            ..Failure::store(denied_message(&store.name, namespace))
                        });
                    }
                }
                let status = s.status.clone();
                (ResolvedStore::Cluster(s), status, "ClusterSecretStore")
            }
        };
        if !spec.spec().served_by(&ctx.config.controller_class) {
            return Ok(Stores::NotOurs);
        }
        if ctx.config.enable_flood_gate && !store_is_ready(status.as_ref()) {
            return Err(Failure::store(format!(
                "{kind} {:?} is not ready",
                store.name
            )));
        }
        out.insert(store.clone(), (key, spec));
    }
    Ok(Stores::Ready(out))
}

/// Whether the target is as esox left it, reading its data only when its resourceVersion is
/// not the one esox last wrote.
async fn secret_intact(
    ctx: &Context,
    es: &ExternalSecret,
    namespace: &str,
    target: &str,
    kind: TargetKind,
) -> Result<bool, Error> {
    if es.spec.creation_policy() == CreationPolicy::Orphan {
        return Ok(true);
    }
    let key = kind.write_key(target);
    if ctx.secret_unchanged_since_write(namespace, &key) {
        return Ok(true);
    }
    let current = target::read(&ctx.client, kind, namespace, target, &es.name_any()).await?;
    let valid = esox_sync::refresh::secret_is_valid(es, current.as_ref().map(|c| &c.existing));
    if valid && let Some(c) = current {
        ctx.remember_write(namespace, &key, c.meta.resource_version);
    }
    Ok(valid)
}

/// The longest a build may take, templates included (each render has its own, shorter
/// deadline; this bounds the whole Secret).
const BUILD_TIMEOUT: Duration = Duration::from_secs(30);

/// `esox_sync::build` on the blocking pool, at most one per core at a time: a heavy template
/// cannot stall the async workers, and a panic in it fails this ExternalSecret only.
async fn build_off_workers(
    ctx: &Context,
    es: &ExternalSecret,
    answers: Answers,
    inputs: TemplateInputs,
    existing: Option<ExistingSecret>,
) -> Result<esox_sync::Outcome, Failure> {
    let _permit = ctx
        .builds
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Failure {
            message: reason::MSG_ERROR_UPDATE_SECRET,
            detail: "the controller is shutting down".into(),
            retry: true,
            created_meanwhile: false,
        })?;
    let es = es.clone();
    let task = tokio::task::spawn_blocking(move || {
        esox_sync::build(&es, &answers, &inputs, existing.as_ref())
    });
    match tokio::time::timeout(BUILD_TIMEOUT, task).await {
        Ok(Ok(outcome)) => Ok(outcome?),
        Ok(Err(join)) => {
            tracing::error!(
                panic = join.is_panic(),
                "building a Secret failed inside esox; only this ExternalSecret is affected"
            );
            Err(Failure {
                message: reason::MSG_ERROR_UPDATE_SECRET,
                detail: "esox failed while building the Secret (an internal error, logged by the controller); the existing Secret is untouched".into(),
                retry: true,
                created_meanwhile: false,
            })
        }
        Err(_) => Err(Failure {
            message: reason::MSG_ERROR_UPDATE_SECRET,
            detail: format!(
                "building the Secret took longer than {BUILD_TIMEOUT:?}; the existing Secret is untouched"
            ),
            retry: true,
            created_meanwhile: false,
        }),
    }
}

/// Whether a sync may write its target without reading it first: a first sync (nothing in the
/// status says esox or ESO ever synced it) under a policy that creates the target. The write
/// is then a create (conditioned on absence); if the target exists after all, the create
/// conflicts and the sync runs again, reading first. At start-up with N new ExternalSecrets
/// this saves N reads: a quarter of the API requests of a first sync.
fn may_create_without_reading(es: &ExternalSecret, old: Option<&ExternalSecretStatus>) -> bool {
    let never_synced = old.is_none_or(|s| {
        s.synced_resource_version
            .as_deref()
            .unwrap_or("")
            .is_empty()
            && s.binding.as_ref().is_none_or(|b| b.name.is_empty())
    });
    never_synced
        && matches!(
            es.spec.creation_policy(),
            CreationPolicy::Owner | CreationPolicy::Orphan
        )
}

/// Read everything, build, write. Returns the Ready condition of a successful sync.
async fn sync(
    ctx: &Context,
    es: &ExternalSecret,
    plan: &Plan,
    stores: &ResolvedStores,
    namespace: &str,
    target: (&str, TargetKind),
    old_status: Option<&ExternalSecretStatus>,
) -> Result<Ready, Failure> {
    if may_create_without_reading(es, old_status) {
        match Box::pin(sync_once(
            ctx, es, plan, stores, namespace, target, old_status, false,
        ))
        .await
        {
            Err(f) if f.created_meanwhile => {
                ctx.metrics.unread_create_conflicts.inc();
            }
            other => return other,
        }
    }
    Box::pin(sync_once(
        ctx, es, plan, stores, namespace, target, old_status, true,
    ))
    .await
}

/// One attempt of [`sync`]; `read` false writes as if the target were absent.
#[allow(clippy::too_many_arguments)]
async fn sync_once(
    ctx: &Context,
    es: &ExternalSecret,
    plan: &Plan,
    stores: &ResolvedStores,
    namespace: &str,
    (target, kind): (&str, TargetKind),
    old_status: Option<&ExternalSecretStatus>,
    read: bool,
) -> Result<Ready, Failure> {
    let current = if read {
        target::read(&ctx.client, kind, namespace, target, &es.name_any())
            .await
            .map_err(|e| {
                Failure::kube(
                    reason::MSG_ERROR_UPDATE_SECRET,
                    &format!("reading {} {namespace}/{target}", kind.name()),
                    e,
                )
            })?
    } else {
        None
    };
    let (current_meta, existing) = match current {
        Some(c) => (Some(c.meta), Some(c.existing)),
        None => (None, None),
    };
    // Refused before any provider is called.
    esox_sync::check_ownership(&Writer::of(es), current_meta.as_ref())?;

    let reuse = crate::coalesce::reuse_for(ctx.config.coalesce_window, es, old_status);
    let answers = fetch(ctx, plan, stores, namespace, reuse).await;
    let inputs = template_inputs(ctx, plan, namespace).await?;
    let outcome = build_off_workers(ctx, es, answers, inputs, existing.clone()).await?;

    for message in &outcome.missing_provider_secrets {
        publish(
            ctx,
            es,
            EventType::Normal,
            reason::EVENT_MISSING_PROVIDER_SECRET,
            message,
        )
        .await;
    }
    let previous = previous_target(ctx, es, namespace, target, kind, old_status).await?;
    let write = esox_sync::plan_write(
        es,
        &outcome,
        existing.as_ref(),
        current_meta.as_ref(),
        previous.as_ref(),
    )?;
    let (reason_, message) = write.condition(&outcome);
    execute(ctx, es, namespace, kind, &outcome, write).await?;
    Ok(Ready::ok(reason_, message))
}

/// Under Owner, a changed `target.name` leaves the old Secret behind: its metadata, for the
/// write plan to decide whether this ExternalSecret created it (ESO's orphan cleanup).
async fn previous_target(
    ctx: &Context,
    es: &ExternalSecret,
    namespace: &str,
    target: &str,
    kind: TargetKind,
    old: Option<&ExternalSecretStatus>,
) -> Result<Option<TargetMeta>, Failure> {
    if es.spec.creation_policy() != CreationPolicy::Owner {
        return Ok(None);
    }
    let Some(previous) = old
        .and_then(|s| s.binding.as_ref())
        .map(|b| b.name.clone())
        .filter(|n| !n.is_empty() && n != target)
    else {
        return Ok(None);
    };
    target::read_meta(&ctx.client, kind, namespace, &previous)
        .await
        .map_err(|e| {
            Failure::kube(
                reason::MSG_ERROR_DELETE_ORPHANED,
                &format!(
                    "reading the previous target {} {namespace}/{previous}",
                    kind.name()
                ),
                e,
            )
        })
}

/// A resourceVersion no existing object has: an apply carrying it creates the Secret when it
/// is absent (a create ignores the version) and fails with a conflict when someone created it
/// meanwhile. Verified against the real API server by the e2e suite
/// (`conditional_writes_esox_relies_on_hold_on_the_real_api_server`).
pub const ABSENT_RESOURCE_VERSION: &str = "1";

/// Carry out a write plan: delete the previous target, then write or delete the target, each
/// conditional (resourceVersion or uid) so that a concurrent writer gets a conflict instead of
/// being overwritten; events and the remembered resourceVersion follow each write.
async fn execute(
    ctx: &Context,
    es: &ExternalSecret,
    namespace: &str,
    kind: TargetKind,
    outcome: &esox_sync::Outcome,
    plan: WritePlan,
) -> Result<(), Failure> {
    let client = &ctx.client;
    let what_kind = kind.name();
    if let Some(previous) = &plan.delete_previous
        && let Err(e) = target::delete_exactly(client, kind, namespace, previous).await
    {
        return Err(Failure::kube(
            reason::MSG_ERROR_DELETE_ORPHANED,
            &format!(
                "deleting the previous target {what_kind} {namespace}/{}",
                previous.name
            ),
            e,
        ));
    }
    match plan.target {
        TargetWrite::Apply(apply) => {
            let what = format!("writing {what_kind} {namespace}/{}", apply.name);
            let mut body = kind.manifest(apply.manifest);
            body["metadata"]["resourceVersion"] = json!(match &apply.precondition {
                Precondition::Absent => ABSENT_RESOURCE_VERSION,
                Precondition::ResourceVersion(rv) => rv.as_str(),
            });
            let mut written = target::apply(
                client,
                kind,
                namespace,
                &apply.name,
                &apply.field_manager,
                body,
            )
            .await
            .map_err(|e| write_failure(&what, &apply.precondition, e))?;
            if let SyncAction::Write(desired) = &outcome.action {
                let mut extra = apply.remove_keys.clone();
                if apply.remove_other_keys {
                    extra.extend(esox_sync::keys_to_remove(desired, written.keys.iter()));
                }
                extra.retain(|k| written.keys.contains(k));
                if !extra.is_empty() {
                    written = target::remove_keys(
                        client,
                        kind,
                        namespace,
                        &apply.name,
                        written.resource_version.as_deref(),
                        &extra,
                    )
                    .await
                    .map_err(|e| {
                        write_failure(&what, &Precondition::ResourceVersion(String::new()), e)
                    })?;
                }
            }
            if let Some(rv) = written.resource_version {
                ctx.remember_write(namespace, &kind.write_key(&apply.name), rv);
            }
            if let Some((reason_, note)) = apply.event
                && ctx.config.sync_events.on_success()
            {
                publish(ctx, es, EventType::Normal, reason_, &kind_note(kind, note)).await;
            }
        }
        TargetWrite::Delete(delete) => {
            target::delete_exactly(client, kind, namespace, &delete)
                .await
                .map_err(|e| {
                    Failure::kube(
                        reason::MSG_ERROR_DELETE_SECRET,
                        &format!("deleting {what_kind} {namespace}/{}", delete.name),
                        e,
                    )
                })?;
            publish(
                ctx,
                es,
                EventType::Normal,
                reason::EVENT_DELETED,
                &kind_note(kind, "secret deleted"),
            )
            .await;
            ctx.forget_write(namespace, &kind.write_key(&delete.name));
        }
        TargetWrite::KeepForeign { name } => {
            publish(
                ctx,
                es,
                EventType::Warning,
                esox_sync::write::EVENT_FOREIGN_KEPT,
                &format!(
                    "the provider has no data and deletionPolicy is Delete, but {what_kind} {namespace}/{name} was neither created nor owned by this ExternalSecret: left as it is"
                ),
            )
            .await;
        }
        TargetWrite::Nothing => {}
    }
    Ok(())
}

/// An event note about the target: ESO's for a Secret ("secret created"), the same words
/// about a ConfigMap ("configmap created").
fn kind_note(kind: TargetKind, secret_note: &str) -> String {
    match kind {
        TargetKind::Secret => secret_note.to_string(),
        TargetKind::ConfigMap => secret_note.replacen("secret", "configmap", 1),
    }
}

/// A failed Secret write; a conflict means another writer got there between esox's read and
/// its write, so the next attempt reads again.
fn write_failure(what: &str, precondition: &Precondition, e: kube::Error) -> Failure {
    match &e {
        kube::Error::Api(s) if s.code == 409 => Failure {
            message: reason::MSG_ERROR_UPDATE_SECRET,
            detail: match precondition {
                Precondition::Absent => format!(
                    "{what}: the Secret was created by someone else after esox found it absent; esox reads it again and retries"
                ),
                Precondition::ResourceVersion(_) => format!(
                    "{what}: the Secret changed after esox read it; esox reads it again and retries"
                ),
            },
            retry: true,
            created_meanwhile: matches!(precondition, Precondition::Absent),
        },
        _ => Failure::kube(reason::MSG_ERROR_UPDATE_SECRET, what, e),
    }
}

/// Call the plugins for every planned request: per store, all `data[]` values in one batched
/// `get-secrets` (values younger than `reuse` from the client's coalescing cache), the maps one
/// call each.
async fn fetch(
    ctx: &Context,
    plan: &Plan,
    stores: &ResolvedStores,
    namespace: &str,
    reuse: Duration,
) -> Answers {
    let mut answers = Answers::new();
    let mut by_store: BTreeMap<&StoreRef, Vec<&esox_sync::ProviderRequest>> = BTreeMap::new();
    for req in &plan.requests {
        by_store.entry(&req.store).or_default().push(req);
    }
    let calls = by_store.into_iter().map(|(store, reqs)| async move {
        let mut out: Vec<(esox_sync::ProviderRequest, Result<Answer, ProviderError>)> = Vec::new();
        let client = match stores.get(store) {
            Some((key, store)) => ctx.stores.client(
                key,
                store.spec(),
                store.revision().as_deref(),
                Some(namespace),
            ),
            None => Err(ProviderError::Internal(
                format!("store {:?} was not resolved (a controller bug)", store.name).into(),
            )),
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                for r in reqs {
                    out.push(((*r).clone(), Err(e.clone())));
                }
                return out;
            }
        };
        let gets: Vec<&esox_sync::ProviderRequest> = reqs
            .iter()
            .copied()
            .filter(|r| matches!(r.op, ProviderOp::GetSecret(_)))
            .collect();
        if !gets.is_empty() {
            let refs: Vec<esox_provider::RemoteRef> = gets
                .iter()
                .filter_map(|r| match &r.op {
                    ProviderOp::GetSecret(rr) => Some(rr.clone()),
                    _ => None,
                })
                .collect();
            let values = get_secrets_coalesced(ctx, &client, &refs, reuse).await;
            for (req, value) in gets.into_iter().zip(values) {
                out.push((req.clone(), value.map(Answer::Value)));
            }
        }
        for req in reqs {
            let answer = match &req.op {
                ProviderOp::GetSecret(_) => continue,
                ProviderOp::GetSecretMap(r) => client.get_secret_map(r).await.map(Answer::Map),
                ProviderOp::GetAllSecrets(q) => client.get_all_secrets(q).await.map(Answer::Map),
            };
            out.push((req.clone(), answer));
        }
        out
    });
    for results in futures::future::join_all(calls).await {
        answers.extend(results);
    }
    answers
}

/// `get-secrets` for `refs`, taking values younger than `reuse` from the client's cache and
/// asking the plugin, in one batch, only for the rest (see coalesce.rs).
async fn get_secrets_coalesced(
    ctx: &Context,
    client: &CachedClient,
    refs: &[esox_provider::RemoteRef],
    reuse: Duration,
) -> Vec<Result<Vec<u8>, ProviderError>> {
    let started = std::time::Instant::now();
    let cached = client.values.lookup(refs, started, reuse);
    let missing: Vec<usize> = (0..refs.len()).filter(|&i| cached[i].is_none()).collect();
    let hits = (refs.len() - missing.len()) as u64;
    if hits > 0 {
        ctx.metrics.values_coalesced.inc_by(hits);
    }
    let mut out: Vec<Option<Result<Vec<u8>, ProviderError>>> =
        cached.into_iter().map(|v| v.map(Ok)).collect();
    if !missing.is_empty() {
        let wanted: Vec<esox_provider::RemoteRef> =
            missing.iter().map(|&i| refs[i].clone()).collect();
        let fetched = client.get_secrets(&wanted).await;
        for (i, value) in missing.into_iter().zip(fetched) {
            if let Ok(bytes) = &value {
                client
                    .values
                    .insert(&refs[i], started, bytes, ctx.config.coalesce_window);
            }
            out[i] = Some(value);
        }
    }
    out.into_iter()
        .map(|v| {
            v.unwrap_or_else(|| {
                Err(ProviderError::Internal(
                    "a coalesced read lost a value (a controller bug)".into(),
                ))
            })
        })
        .collect()
}

/// The ConfigMaps and Secrets templateFrom reads; absent ones are left out (`build` says so).
async fn template_inputs(
    ctx: &Context,
    plan: &Plan,
    namespace: &str,
) -> Result<TemplateInputs, Failure> {
    let mut inputs = TemplateInputs::default();
    for source in &plan.template_sources {
        match source {
            TemplateSource::ConfigMap(name) => {
                let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
                    .get_opt(name)
                    .await
                    .map_err(|e| {
                        Failure::kube(
                            reason::MSG_ERROR_UPDATE_SECRET,
                            &format!("reading ConfigMap {namespace}/{name}"),
                            e,
                        )
                    })?;
                if let Some(cm) = cm {
                    inputs
                        .config_maps
                        .insert(name.clone(), cm.data.unwrap_or_default());
                }
            }
            TemplateSource::Secret(name) => {
                let s = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
                    .get_opt(name)
                    .await
                    .map_err(|e| {
                        Failure::kube(
                            reason::MSG_ERROR_UPDATE_SECRET,
                            &format!("reading Secret {namespace}/{name}"),
                            e,
                        )
                    })?;
                if let Some(s) = s {
                    inputs.secrets.insert(
                        name.clone(),
                        s.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0))
                            .collect(),
                    );
                }
            }
        }
    }
    Ok(inputs)
}

/// Write the status if it differs from what is there, and remember it.
async fn write_status(
    ctx: &Context,
    es: &ExternalSecret,
    id: &str,
    old: Option<&ExternalSecretStatus>,
    status: ExternalSecretStatus,
) -> Result<(), Error> {
    if old == Some(&status) {
        return Ok(());
    }
    let api =
        Api::<ExternalSecret>::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    let patch = Patch::Apply(json!({
        "apiVersion": ExternalSecret::api_version(&()),
        "kind": ExternalSecret::kind(&()),
        "status": status,
    }));
    api.patch_status(
        &es.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &patch,
    )
    .await
    .map_err(Error::StatusWrite)?;
    if let Some(uid) = es.metadata.uid.clone() {
        ctx.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), (uid, status));
    }
    Ok(())
}

/// Record a failed sync: Ready=False (status written only if it changed), one UpdateFailed
/// event per distinct error, the error metric, and a backoff (none when only a change helps).
async fn fail(
    ctx: &Context,
    es: &ExternalSecret,
    id: &str,
    old: Option<&ExternalSecretStatus>,
    mut failure: Failure,
) -> Result<Action, Error> {
    let namespace = es.namespace().unwrap_or_default();
    let name = es.name_any();
    failure.detail = capped(failure.detail);
    tracing::warn!(externalsecret = %id, error = %failure.detail, retry = failure.retry, "sync failed; the Secret was left as it was");
    let ready = Ready::failed(reason::SECRET_SYNCED_ERROR, failure.message);
    if !has_condition(old, &ready) {
        let status = external_secret_status(old, &ready, None, Timestamp::now());
        write_status(ctx, es, id, old, status).await?;
    }
    let repeated = ctx
        .last_errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.to_string(), failure.detail.clone())
        == Some(failure.detail.clone());
    if !repeated {
        publish(
            ctx,
            es,
            EventType::Warning,
            reason::EVENT_UPDATE_FAILED,
            &failure.detail,
        )
        .await;
    }
    ctx.metrics
        .sync_calls_error
        .get_or_create(&ObjectLabels {
            name: name.clone(),
            namespace: namespace.clone(),
        })
        .inc();
    ctx.metrics.set_es_condition(&name, &namespace, false);
    if failure.retry {
        crate::metrics::mark_failed();
        Ok(Action::requeue(failure_delay(
            ctx.failed(id),
            random_unit(),
        )))
    } else {
        Ok(Action::await_change())
    }
}

/// A reconcile of this ExternalSecret panicked (caught by the runner): say so on the object,
/// Ready=False and an UpdateFailed event, and back off. The Secret was not touched after the
/// panic, and the message names no value.
pub async fn report_panic(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let id = es_key(&es.namespace().unwrap_or_default(), &es.name_any());
    let old = effective_status(&ctx, &id, &es);
    fail(
        &ctx,
        &es,
        &id,
        old.as_ref(),
        Failure {
            message: reason::MSG_ERROR_UPDATE_SECRET,
            detail: "esox failed internally while syncing this ExternalSecret (a bug: the controller's log has the details); the existing Secret is untouched and esox retries with backoff".into(),
            retry: true,
            created_meanwhile: false,
        },
    )
    .await
}

/// The longest error detail esox logs or keeps (events carry at most 1,000 characters of it).
const MAX_DETAIL: usize = 2048;

/// `detail` cut to [`MAX_DETAIL`] bytes at a character boundary, saying so.
fn capped(mut detail: String) -> String {
    if detail.len() > MAX_DETAIL {
        let mut end = MAX_DETAIL;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push_str(" … (truncated)");
    }
    detail
}

/// Publish an event about the ExternalSecret; a failure to publish is logged, not fatal.
async fn publish(ctx: &Context, es: &ExternalSecret, type_: EventType, reason_: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason_.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &es.object_ref(&())).await {
        tracing::debug!(externalsecret = %es.name_any(), error = %e, "could not publish event");
    }
}

/// Map a managed Secret's watch event to the ExternalSecrets that write it.
pub fn secret_to_external_secrets(
    ctx: &Context,
    namespace: &str,
    name: &str,
    owners: &[OwnerReference],
) -> Vec<ObjectRef<ExternalSecret>> {
    let mut refs = ctx.index.writers_of(namespace, name);
    for o in owners {
        if o.kind == "ExternalSecret" {
            let r = ObjectRef::new(&o.name).within(namespace);
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
    refs
}

/// The label selector of the managed-Secret watch: only Secrets esox (or ESO) manages.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED}={}", esox_sync::hash::LABEL_MANAGED_VALUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_api::{ExternalSecretSpec, ExternalSecretTarget};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn es(
        name: &str,
        creation: CreationPolicy,
        policy: Option<RefreshPolicy>,
        interval: &str,
    ) -> ExternalSecret {
        ExternalSecret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                ..Default::default()
            },
            spec: ExternalSecretSpec {
                refresh_policy: policy,
                refresh_interval: Some(interval.into()),
                target: Some(ExternalSecretTarget {
                    creation_policy: creation,
                    ..Default::default()
                }),
                ..Default::default()
            },
            status: None,
        }
    }

    #[test]
    fn only_first_syncs_of_creating_policies_write_without_reading() {
        use esox_api::{Binding, ExternalSecretStatus};
        let owner = es("a", CreationPolicy::Owner, None, "1h");
        assert!(may_create_without_reading(&owner, None));
        assert!(may_create_without_reading(
            &es("a", CreationPolicy::Orphan, None, "1h"),
            None
        ));
        // Merge needs the Secret it merges into; None writes nothing.
        for policy in [CreationPolicy::Merge, CreationPolicy::None] {
            assert!(!may_create_without_reading(
                &es("a", policy, None, "1h"),
                None
            ));
        }
        // A failed first sync (conditions only) is still a first sync.
        let failed = ExternalSecretStatus {
            conditions: vec![Default::default()],
            ..Default::default()
        };
        assert!(may_create_without_reading(&owner, Some(&failed)));
        // Anything that says it synced before (esox or ESO) reads first.
        let synced = ExternalSecretStatus {
            synced_resource_version: Some("1-abc".into()),
            ..Default::default()
        };
        assert!(!may_create_without_reading(&owner, Some(&synced)));
        let bound = ExternalSecretStatus {
            binding: Some(Binding { name: "a".into() }),
            ..Default::default()
        };
        assert!(!may_create_without_reading(&owner, Some(&bound)));
    }

    #[test]
    fn error_details_are_capped_at_a_character_boundary() {
        assert_eq!(capped("short".into()), "short");
        let long = "é".repeat(MAX_DETAIL);
        let cut = capped(long);
        assert!(
            cut.len() <= MAX_DETAIL + " … (truncated)".len(),
            "{}",
            cut.len()
        );
        assert!(cut.ends_with(" … (truncated)"));
    }

    #[test]
    fn store_references_resolve_namespaced_or_cluster_wide() {
        let ss = StoreRef {
            kind: StoreKind::SecretStore,
            name: "aws".into(),
        };
        assert_eq!(
            store_key(&ss, "team"),
            StoreKey::Namespaced {
                namespace: "team".into(),
                name: "aws".into()
            }
        );
        let css = StoreRef {
            kind: StoreKind::ClusterSecretStore,
            name: "shared".into(),
        };
        assert_eq!(
            store_key(&css, "team"),
            StoreKey::Cluster {
                name: "shared".into()
            }
        );
    }

    #[test]
    fn only_periodic_refreshes_with_an_interval_are_requeued_by_timer() {
        let never = Action::await_change();
        assert_eq!(
            requeue_after_success(
                &es(
                    "a",
                    CreationPolicy::Owner,
                    Some(RefreshPolicy::OnChange),
                    "1h"
                ),
                None,
                Duration::ZERO
            ),
            never
        );
        assert_eq!(
            requeue_after_success(
                &es(
                    "a",
                    CreationPolicy::Owner,
                    Some(RefreshPolicy::CreatedOnce),
                    "1h"
                ),
                None,
                Duration::ZERO
            ),
            never
        );
        assert_eq!(
            requeue_after_success(
                &es("a", CreationPolicy::Owner, None, "0"),
                None,
                Duration::ZERO
            ),
            never
        );
        assert_ne!(
            requeue_after_success(
                &es("a", CreationPolicy::Owner, None, "1h"),
                None,
                Duration::ZERO
            ),
            never
        );
    }
}
