//! Wiring: the watches (ExternalSecrets by spec/metadata change; managed Secrets metadata-only
//! and label-filtered; stores), the three controllers, the HTTP endpoints, and shutdown on
//! SIGTERM / Ctrl-C.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::Recorder;
use crate::plugin_policy::PluginPolicy;
use esox_api::{ClusterSecretStore, ExternalSecret, SecretStore};
use esox_plugin_host::PluginHost;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::{self, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::Semaphore;

use crate::backoff::{failure_delay, random_unit};
use crate::context::{Config, Context, Index, es_key};
use crate::external_secret::{managed_selector, reconcile, secret_to_external_secrets};
use crate::health::{Health, PROBE_INTERVAL};
use crate::leader::{Election, LeaderElection};
use crate::metrics::{Metrics, ResultLabels, RuntimeMetrics};
use crate::parking::{Parking, max_in_flight};
use crate::store_clients::{StoreClients, StoreKey};
use crate::stores::{reconcile_cluster_secret_store, reconcile_secret_store};
use crate::target::TargetKind;

/// Where the HTTP endpoints listen.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// `/metrics` (ESO: `:8080`).
    pub metrics_addr: SocketAddr,
    /// `/healthz` and `/readyz` (ESO: `:8082`).
    pub live_addr: SocketAddr,
}

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What the runner needs of each kind it reconciles: its key in the per-object maps, and how
/// a caught panic is reported on the object itself.
pub trait Reconciled: Resource<DynamicType = ()> + Send + Sync + 'static {
    /// controller-runtime's name for this kind's controller (the `controller` label).
    const CONTROLLER: &'static str;
    /// The key of this object's failure count (and, for ExternalSecrets, status and errors).
    fn failure_key(&self) -> String;
    /// Report a caught panic on the object (status and/or event); returns what to do next.
    fn report_panic(
        obj: Arc<Self>,
        ctx: Arc<Context>,
    ) -> futures::future::BoxFuture<'static, Result<Action, crate::Error>>;
}

impl Reconciled for ExternalSecret {
    const CONTROLLER: &'static str = crate::metrics::ES_CONTROLLER;
    fn failure_key(&self) -> String {
        es_key(&self.namespace().unwrap_or_default(), &self.name_any())
    }
    fn report_panic(
        obj: Arc<Self>,
        ctx: Arc<Context>,
    ) -> futures::future::BoxFuture<'static, Result<Action, crate::Error>> {
        Box::pin(crate::external_secret::report_panic(obj, ctx))
    }
}

impl Reconciled for SecretStore {
    const CONTROLLER: &'static str = "secretstore";
    fn failure_key(&self) -> String {
        StoreKey::Namespaced {
            namespace: self.namespace().unwrap_or_default(),
            name: self.name_any(),
        }
        .to_string()
    }
    fn report_panic(
        obj: Arc<Self>,
        ctx: Arc<Context>,
    ) -> futures::future::BoxFuture<'static, Result<Action, crate::Error>> {
        Box::pin(crate::stores::report_panic(obj, ctx))
    }
}

impl Reconciled for ClusterSecretStore {
    const CONTROLLER: &'static str = "clustersecretstore";
    fn failure_key(&self) -> String {
        StoreKey::Cluster {
            name: self.name_any(),
        }
        .to_string()
    }
    fn report_panic(
        obj: Arc<Self>,
        ctx: Arc<Context>,
    ) -> futures::future::BoxFuture<'static, Result<Action, crate::Error>> {
        Box::pin(crate::stores::report_panic(obj, ctx))
    }
}

fn error_policy<K: Reconciled>(obj: Arc<K>, error: &crate::Error, ctx: Arc<Context>) -> Action {
    let id = obj.failure_key();
    tracing::warn!(object = %id, error = %error, "reconcile failed; retrying with backoff");
    Action::requeue(failure_delay(ctx.failed(&id), random_unit()))
}

/// Run a reconcile with its panics caught: kube-runtime would end the whole process on one,
/// a crash loop for every tenant. A caught panic fails this object only: logged, reported on
/// the object (`Reconciled::report_panic`: status and event), retried with backoff.
fn guarded<K, F, Fut>(
    reconcile: F,
) -> impl Fn(Arc<K>, Arc<Context>) -> futures::future::BoxFuture<'static, Result<Action, crate::Error>>
where
    K: Reconciled,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = Result<Action, crate::Error>> + Send + 'static,
{
    move |obj, ctx| {
        use futures::FutureExt;
        let id = obj.failure_key();
        let (o, c) = (obj.clone(), ctx.clone());
        async move {
            let m = c.metrics.runtime.clone();
            let controller = RuntimeMetrics::controller(K::CONTROLLER);
            let queue = RuntimeMetrics::queue(K::CONTROLLER);
            m.queue_adds.get_or_create(&queue).inc();
            m.active_workers.get_or_create(&controller).inc();
            let started = std::time::Instant::now();
            let (caught, failed) = crate::metrics::watch_failure(
                std::panic::AssertUnwindSafe(reconcile(obj, ctx)).catch_unwind(),
            )
            .await;
            let (result, outcome) = match caught {
                Ok(Ok(action)) if failed => (Ok(action), "error"),
                Ok(Ok(action)) => {
                    let outcome = requeue_outcome(&action);
                    (Ok(action), outcome)
                }
                Ok(Err(e)) => (Err(e), "error"),
                Err(_) => {
                    tracing::error!(object = %id, "reconcile panicked; only this object is affected, retrying with backoff");
                    m.reconcile_panics.get_or_create(&controller).inc();
                    (Box::pin(K::report_panic(o, c)).await, "error")
                }
            };
            let took = started.elapsed().as_secs_f64();
            m.active_workers.get_or_create(&controller).dec();
            m.reconcile_time.get_or_create(&controller).observe(took);
            m.work_duration.get_or_create(&queue).observe(took);
            m.reconcile_total
                .get_or_create(&ResultLabels {
                    controller: K::CONTROLLER.into(),
                    result: outcome.into(),
                })
                .inc();
            if outcome == "error" {
                m.reconcile_errors.get_or_create(&controller).inc();
                m.queue_retries.get_or_create(&queue).inc();
            }
            result
        }
        .boxed()
    }
}

/// controller-runtime's `result` label for a successful reconcile: `requeue_after` when it
/// asked to be looked at again after a while, `success` when it waits for a change. kube's
/// `Action` keeps its delay private; its Debug form is read (a unit test pins it).
fn requeue_outcome(action: &Action) -> &'static str {
    if format!("{action:?}").contains("requeue_after: Some") {
        "requeue_after"
    } else {
        "success"
    }
}

/// What a watch tells the cleanup about objects that went away.
enum Gone<K: Resource<DynamicType = ()>> {
    /// This object was deleted.
    One(ObjectRef<K>),
    /// The watch listed again (after an expired resourceVersion, say): every object not in
    /// this set is gone, deleted while the watch was not looking.
    AllBut(HashSet<ObjectRef<K>>),
}

/// Turns watch events into what is gone: a delete event names one object; a relist (Init,
/// InitApply..., InitDone) names the live set, everything else being gone.
struct GoneTracker<K: Resource<DynamicType = ()>> {
    relist: Option<HashSet<ObjectRef<K>>>,
}

impl<K: Resource<DynamicType = ()>> Default for GoneTracker<K> {
    fn default() -> Self {
        GoneTracker { relist: None }
    }
}

impl<K: Resource<DynamicType = ()>> GoneTracker<K> {
    fn on_event(&mut self, event: &watcher::Event<K>) -> Option<Gone<K>> {
        match event {
            watcher::Event::Delete(object) => Some(Gone::One(ObjectRef::from_obj(object))),
            watcher::Event::Init => {
                self.relist = Some(HashSet::new());
                None
            }
            watcher::Event::InitApply(object) => {
                if let Some(seen) = self.relist.as_mut() {
                    seen.insert(ObjectRef::from_obj(object));
                }
                None
            }
            watcher::Event::InitDone => self.relist.take().map(Gone::AllBut),
            watcher::Event::Apply(_) => None,
        }
    }
}

/// Follow a watch's health: an error marks it failing (it retries with backoff), any event
/// marks it recovered, the end of its first full list marks it synced.
fn observed<K>(
    stream: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    name: &'static str,
    health: Arc<Health>,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
{
    stream.inspect(move |event| match event {
        Ok(e) => {
            health.watch_ok(name);
            if matches!(e, watcher::Event::InitDone) && health.synced(name) {
                tracing::info!("watch caches synced; ready");
            }
        }
        Err(watcher::Error::WatchError(status)) if status.code == 410 => {
            tracing::info!(
                watch = name,
                "watch resume version expired (410 Gone); listing again"
            );
        }
        Err(e) => {
            health.watch_failed(name, &e.to_string(), Instant::now());
            tracing::warn!(watch = name, error = %e, "watch failed; retrying with backoff");
        }
    })
}

/// Retry delays of a failed watch: 0.5 s doubling to at most 8 s, jittered (±25 %), back to
/// 0.5 s after any event. kube-runtime's default (0.8 s to 30 s, reset only after two quiet
/// minutes) left the controller deaf for over a minute after an API server restart
/// (e2e_recovery measured 62-84 s); reconnecting every 8 s at worst is still light on a
/// struggling API server.
#[derive(Debug, Default)]
pub struct WatchBackoff {
    failures: u32,
}

/// The most a failed watch waits before it tries again.
pub const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(8);

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let base = Duration::from_millis(500)
            .saturating_mul(1u32 << self.failures.min(5))
            .min(WATCH_BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        Some(base.mul_f64(0.75 + random_unit() / 2.0))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Whether a watch error is 410 Gone (the resume version expired): the watcher lists again by
/// itself on its next poll, so there is nothing to wait for.
fn expired<T>(result: &Result<T, watcher::Error>) -> bool {
    matches!(result, Err(watcher::Error::WatchError(status)) if status.code == 410)
}

/// A watch as the controller runs it: its health followed ([`observed`]), a 410 Gone answered
/// by an immediate relist (client-go does the same), other errors retried with
/// [`WatchBackoff`].
fn resilient<K>(
    stream: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    name: &'static str,
    health: Arc<Health>,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
{
    observed(stream, name, health)
        .filter(|r| futures::future::ready(!expired(r)))
        .backoff(WatchBackoff::default())
}

/// The objects a channel receives, as a trigger stream.
fn received<K: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|o| (Ok(o), rx)) },
    )
}

/// A watch of `api` through a reflector cache: the trigger stream for `Controller::for_stream`
/// and the cache it fills. Deletions, and objects missing from a relist, go to `gone`. Every
/// object the watch applies or deletes also goes to `touched`, if given, once the cache holds
/// it: a reconcile it triggers elsewhere reads the cache no older than the event (a separate
/// watch could fire first, and after an API server restart it did: an ExternalSecret
/// re-synced from its store's old spec and nothing triggered it again).
fn cached<K>(
    api: Api<K>,
    name: &'static str,
    health: Arc<Health>,
    gone: tokio::sync::mpsc::UnboundedSender<Gone<K>>,
    touched: Option<tokio::sync::mpsc::UnboundedSender<K>>,
) -> (
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    reflector::Store<K>,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let mut tracker = GoneTracker::default();
    // Nothing reads these objects' managedFields (esox reads a Secret's, from a GET): dropped
    // before they reach the cache, they are a large share of each cached ExternalSecret.
    let events = resilient(watcher(api, watcher::Config::default()), name, health)
        .modify(|object| object.managed_fields_mut().clear());
    let trigger = reflector(writer, events)
        .inspect(move |event| {
            // Deleted objects never reach a reconcile (applied_objects drops them): whatever
            // is kept per object is freed through `gone`.
            if let Ok(event) = event
                && let Some(g) = tracker.on_event(event)
            {
                let _ = gone.send(g);
            }
            if let (Some(touched), Ok(event)) = (&touched, event) {
                match event {
                    watcher::Event::Apply(o)
                    | watcher::Event::InitApply(o)
                    | watcher::Event::Delete(o) => {
                        let _ = touched.send(o.clone());
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
        })
        .applied_objects();
    (trigger, reader)
}

/// Free what the controller keeps about objects that are gone, as the watches report them.
fn spawn_cleanup(
    ctx: Arc<Context>,
    mut external_secrets: tokio::sync::mpsc::UnboundedReceiver<Gone<ExternalSecret>>,
    mut secret_stores: tokio::sync::mpsc::UnboundedReceiver<Gone<SecretStore>>,
    mut cluster_stores: tokio::sync::mpsc::UnboundedReceiver<Gone<ClusterSecretStore>>,
) {
    let c = ctx.clone();
    tokio::spawn(async move {
        while let Some(gone) = external_secrets.recv().await {
            match gone {
                Gone::One(es) => {
                    c.forget_external_secret(&es);
                    tracing::debug!(externalsecret = %es, "deleted; forgotten");
                }
                Gone::AllBut(live) => {
                    let n = c.forget_all_but(&live);
                    if n > 0 {
                        tracing::info!(
                            forgotten = n,
                            "ExternalSecrets deleted while the watch was relisting; forgotten"
                        );
                    }
                }
            }
        }
    });
    let c = ctx.clone();
    tokio::spawn(async move {
        while let Some(gone) = secret_stores.recv().await {
            match gone {
                Gone::One(s) => c.forget_store(&StoreKey::Namespaced {
                    namespace: s.namespace.unwrap_or_default(),
                    name: s.name,
                }),
                Gone::AllBut(live) => {
                    let live: HashSet<StoreKey> = live
                        .into_iter()
                        .map(|s| StoreKey::Namespaced {
                            namespace: s.namespace.unwrap_or_default(),
                            name: s.name,
                        })
                        .collect();
                    forget_stores_but(&c, &live, |k| matches!(k, StoreKey::Namespaced { .. }));
                }
            }
        }
    });
    tokio::spawn(async move {
        while let Some(gone) = cluster_stores.recv().await {
            match gone {
                Gone::One(s) => ctx.forget_store(&StoreKey::Cluster { name: s.name }),
                Gone::AllBut(live) => {
                    let live: HashSet<StoreKey> = live
                        .into_iter()
                        .map(|s| StoreKey::Cluster { name: s.name })
                        .collect();
                    forget_stores_but(&ctx, &live, |k| matches!(k, StoreKey::Cluster { .. }));
                }
            }
        }
    });
}

fn forget_stores_but(ctx: &Context, live: &HashSet<StoreKey>, kind: impl Fn(&StoreKey) -> bool) {
    for key in ctx.stores.keys() {
        if kind(&key) && !live.contains(&key) {
            ctx.forget_store(&key);
        }
    }
}

/// Probe the API server (`GET /version`) every [`PROBE_INTERVAL`] for `/readyz`.
fn spawn_probe(client: kube::Client, health: Arc<Health>) {
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(PROBE_INTERVAL, client.apiserver_version()).await {
                Ok(Ok(_)) => health.probe_ok(Instant::now()),
                Ok(Err(e)) => health.probe_failed(&e.to_string()),
                Err(_) => health.probe_failed("no answer within 10s"),
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    });
}

/// Run the controller until SIGTERM or Ctrl-C.
pub async fn run(
    client: kube::Client,
    host: PluginHost,
    policy: PluginPolicy,
    config: Config,
    http: HttpConfig,
    leader_election: Option<LeaderElection>,
) -> anyhow::Result<()> {
    let ns = config.namespace.clone();
    let wc = watcher::Config::default;
    let mut watches = vec![
        "ExternalSecret",
        "SecretStore",
        "ClusterSecretStore",
        "Secret",
    ];
    // ConfigMap targets (ESO's generic targets) are watched only when the operator allows them.
    if config.allow_generic_targets {
        watches.push("ConfigMap");
    }
    let health = Arc::new(Health::new(&watches));
    spawn_probe(client.clone(), health.clone());
    let metrics = Metrics::default();
    let registry = metrics.registry(host.metrics());
    let permits = config.concurrency.max(1);
    health.set_standby(leader_election.is_some());
    let (metrics_addr, live_addr) =
        crate::http::serve(http.metrics_addr, http.live_addr, registry, health.clone()).await?;
    tracing::info!(%metrics_addr, %live_addr, namespace = ns.as_deref().unwrap_or("(all)"), class = %config.controller_class, concurrency = permits, leader_election = leader_election.is_some(), "esox controller starting");

    // With leader election, nothing is watched or written until this replica leads.
    let mut election = None;
    if let Some(le) = &leader_election {
        let mut joined = Election::join(client.clone(), le).await?;
        tracing::info!(lease = %format!("{}/{}", le.namespace, le.name), identity = %le.identity, "leader election: standing by until this replica holds the lease");
        tokio::select! {
            led = joined.leading() => led?,
            _ = shutdown_signal() => {
                tracing::info!("shutdown requested while standing by");
                joined.release(Duration::from_secs(5)).await;
                return Ok(());
            }
        }
        tracing::info!(identity = %le.identity, "leader election: leading; starting the controllers");
        health.set_standby(false);
        election = Some(joined);
    }
    let (es_gone, es_gone_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ss_gone, ss_gone_rx) = tokio::sync::mpsc::unbounded_channel();
    let (css_gone, css_gone_rx) = tokio::sync::mpsc::unbounded_channel();

    // A deleted or changed store frees its plugin clients (and their instances) at once.
    let stores = Arc::new(StoreClients::new(host.clone(), policy, client.clone()));
    // A store's changes trigger the ExternalSecrets that use it from the store's own cached
    // watch, after the cache holds them (see `cached`).
    let (ss_touched, ss_touched_rx) = tokio::sync::mpsc::unbounded_channel();
    let (css_touched, css_touched_rx) = tokio::sync::mpsc::unbounded_channel();
    let (trigger, reader) = cached(
        api::<SecretStore>(&client, ns.as_deref()),
        "SecretStore",
        health.clone(),
        ss_gone,
        Some(ss_touched),
    );
    let ss_controller = Controller::for_stream(trigger, reader);
    let (trigger, reader) = cached(
        Api::<ClusterSecretStore>::all(client.clone()),
        "ClusterSecretStore",
        health.clone(),
        css_gone,
        Some(css_touched),
    );
    let css_controller = Controller::for_stream(trigger, reader);

    // Every ExternalSecret event triggers a reconcile, including esox's own status writes; those
    // end in the cheap "not due, Secret intact" path without API calls or writes.
    let (trigger, reader) = cached(
        api::<ExternalSecret>(&client, ns.as_deref()),
        "ExternalSecret",
        health.clone(),
        es_gone,
        None,
    );
    let es_controller = Controller::for_stream(trigger, reader);

    // Reconciles waiting for sync permits park outside kube-runtime's slots (parking.rs), so
    // its limit on reconciles in flight holds only reconciles that are working.
    let (parking, woken) = Parking::new(
        permits,
        config.concurrency_per_store,
        config.concurrency_per_namespace,
        &metrics,
    );
    let es_controller = es_controller
        .with_config(
            kube::runtime::controller::Config::default().concurrency(max_in_flight(permits)),
        )
        .reconcile_on(futures::stream::unfold(woken, |mut woken| async move {
            woken.recv().await.map(|es| (es, woken))
        }));
    let ctx = Arc::new(Context {
        client: client.clone(),
        stores,
        secret_stores: ss_controller.store(),
        cluster_secret_stores: css_controller.store(),
        index: Index::default(),
        metrics,
        recorder: Recorder::new(client.clone(), Context::reporter()),
        parking,
        builds: Arc::new(Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
        failures: Default::default(),
        written: Default::default(),
        last_errors: Default::default(),
        statuses: Default::default(),
        observed: Default::default(),
        config,
    });

    // ExternalSecret reconciles in flight; store reconciles are not limited (0).
    for (controller, max) in [
        (crate::metrics::ES_CONTROLLER, max_in_flight(permits) as i64),
        ("secretstore", 0),
        ("clustersecretstore", 0),
    ] {
        let runtime = &ctx.metrics.runtime;
        runtime
            .max_concurrent_reconciles
            .get_or_create(&RuntimeMetrics::controller(controller))
            .set(max);
        // Present from the start, as controller-runtime's are.
        runtime
            .active_workers
            .get_or_create(&RuntimeMetrics::controller(controller))
            .set(0);
        runtime
            .queue_depth
            .get_or_create(&RuntimeMetrics::queue(controller))
            .set(0);
        // Every result at 0 from the start, as controller-runtime does, so the dashboard's
        // error-rate panels show 0 rather than "No data".
        for result in ["success", "error", "requeue", "requeue_after"] {
            let _ = runtime
                .reconcile_total
                .get_or_create(&ResultLabels {
                    controller: controller.into(),
                    result: result.into(),
                })
                .get();
        }
    }

    spawn_cleanup(ctx.clone(), es_gone_rx, ss_gone_rx, css_gone_rx);

    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    // Managed Secrets: metadata only (no values held in memory), filtered by the managed label.
    // Metadata only: `Api<PartialObjectMeta<_>>` makes metadata-only requests.
    let secrets = watcher(
        api::<PartialObjectMeta<Secret>>(&client, ns.as_deref()),
        wc().labels(&managed_selector()),
    );
    // ConfigMaps esox writes (generic targets): the same metadata-only, label-filtered watch,
    // so that drift is repaired as for Secrets; nothing is watched without the flag.
    let c4 = ctx.clone();
    let config_maps = if ctx.config.allow_generic_targets {
        resilient(
            watcher(
                api::<PartialObjectMeta<ConfigMap>>(&client, ns.as_deref()),
                wc().labels(&managed_selector()),
            ),
            "ConfigMap",
            health.clone(),
        )
        .touched_objects()
        .boxed()
    } else {
        futures::stream::pending().boxed()
    };
    let es_controller = es_controller
        .watches_stream(
            resilient(secrets, "Secret", health.clone()).touched_objects(),
            move |s: PartialObjectMeta<Secret>| {
                let ns = s.namespace().unwrap_or_default();
                c1.observe_secret(&ns, &s.name_any(), s.resource_version());
                secret_to_external_secrets(&c1, &ns, &s.name_any(), s.owner_references())
            },
        )
        .watches_stream(config_maps, move |c: PartialObjectMeta<ConfigMap>| {
            let ns = c.namespace().unwrap_or_default();
            c4.observe_target(
                TargetKind::ConfigMap,
                &ns,
                &c.name_any(),
                c.resource_version(),
            );
            secret_to_external_secrets(&c4, &ns, &c.name_any(), c.owner_references())
        })
        .watches_stream(received(ss_touched_rx), move |s: SecretStore| {
            c2.index.users_of(&StoreKey::Namespaced {
                namespace: s.namespace().unwrap_or_default(),
                name: s.name_any(),
            })
        })
        .watches_stream(received(css_touched_rx), move |s: ClusterSecretStore| {
            c3.index.users_of(&StoreKey::Cluster { name: s.name_any() })
        })
        .shutdown_on_signal()
        .run(guarded(reconcile), error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "ExternalSecret controller event");
            }
        });
    let ss = ss_controller
        .shutdown_on_signal()
        .run(guarded(reconcile_secret_store), error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "SecretStore controller event");
            }
        });
    let css = css_controller
        .shutdown_on_signal()
        .run(
            guarded(reconcile_cluster_secret_store),
            error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "ClusterSecretStore controller event");
            }
        });
    let controllers = async {
        futures::join!(es_controller, ss, css);
    };
    let lost = async {
        match election.as_mut() {
            Some(e) => e.lost().await,
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        _ = controllers => {}
        _ = lost => {
            // Another replica may already be writing: stop at once rather than write beside it.
            tracing::error!("leader election: this replica lost the lease; exiting so that only the new leader writes");
            std::process::exit(1);
        }
    }
    tracing::info!("esox controller stopped");
    if let Some(e) = election {
        e.release(Duration::from_secs(5)).await;
    }
    Ok(())
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return futures::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// An API client from `--kubeconfig` (and `--context`), else the usual inference: `$KUBECONFIG`,
/// `~/.kube/config`, then the in-cluster ServiceAccount. `rate_limit` (`--client-qps`,
/// `--client-burst`) caps requests per second on the client side; `None`, the default, leaves
/// fairness to the API server's priority and fairness.
pub async fn kube_client(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
    rate_limit: Option<crate::rate_limit::RateLimitLayer>,
) -> anyhow::Result<kube::Client> {
    use anyhow::Context as _;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .context("loading the kubeconfig")?,
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found and not running in a cluster; pass --kubeconfig")?,
    };
    let builder =
        kube::client::ClientBuilder::try_from(config).context("building the Kubernetes client")?;
    Ok(match rate_limit {
        Some(layer) => builder.with_layer(&layer).build(),
        None => builder.build(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn es(name: &str) -> ExternalSecret {
        ExternalSecret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                ..Default::default()
            },
            spec: Default::default(),
            status: None,
        }
    }

    #[test]
    fn deletes_name_one_object_and_a_relist_names_the_live_set() {
        let mut t = GoneTracker::<ExternalSecret>::default();
        assert!(t.on_event(&watcher::Event::Apply(es("a"))).is_none());
        match t.on_event(&watcher::Event::Delete(es("a"))) {
            Some(Gone::One(r)) => assert_eq!(r, ObjectRef::from_obj(&es("a"))),
            _ => panic!("a delete names its object"),
        }
        assert!(t.on_event(&watcher::Event::Init).is_none());
        assert!(t.on_event(&watcher::Event::InitApply(es("b"))).is_none());
        assert!(t.on_event(&watcher::Event::InitApply(es("c"))).is_none());
        match t.on_event(&watcher::Event::InitDone) {
            Some(Gone::AllBut(live)) => assert_eq!(
                live,
                HashSet::from([ObjectRef::from_obj(&es("b")), ObjectRef::from_obj(&es("c"))])
            ),
            _ => panic!("the end of a relist names the live set"),
        }
        assert!(
            t.on_event(&watcher::Event::InitDone).is_none(),
            "an InitDone without its Init names nothing"
        );
    }

    #[test]
    fn watch_retries_grow_to_eight_seconds_and_start_over_after_an_event() {
        use kube::runtime::utils::Backoff;
        let mut b = WatchBackoff::default();
        let delays: Vec<Duration> = (0..10).map(|_| b.next().unwrap()).collect();
        assert!(delays[0] <= Duration::from_millis(625), "{delays:?}");
        assert!(
            delays.iter().all(|d| *d <= WATCH_BACKOFF_MAX.mul_f64(1.25)),
            "{delays:?}"
        );
        assert!(delays[9] >= WATCH_BACKOFF_MAX.mul_f64(0.75), "{delays:?}");
        b.reset();
        assert!(b.next().unwrap() <= Duration::from_millis(625));
    }

    #[test]
    fn requeue_outcomes_are_read_from_the_action() {
        assert_eq!(
            requeue_outcome(&Action::requeue(Duration::from_secs(5))),
            "requeue_after"
        );
        assert_eq!(requeue_outcome(&Action::await_change()), "success");
    }

    #[test]
    fn only_410_gone_skips_the_backoff() {
        let gone = kube::core::Status {
            code: 410,
            ..Default::default()
        };
        let other = kube::core::Status {
            code: 500,
            ..Default::default()
        };
        assert!(expired::<()>(&Err(watcher::Error::WatchError(Box::new(
            gone
        )))));
        assert!(!expired::<()>(&Err(watcher::Error::WatchError(Box::new(
            other
        )))));
        assert!(!expired::<()>(&Ok(())));
    }

    #[test]
    fn an_empty_relist_means_everything_is_gone() {
        let mut t = GoneTracker::<ExternalSecret>::default();
        t.on_event(&watcher::Event::Init);
        match t.on_event(&watcher::Event::InitDone) {
            Some(Gone::AllBut(live)) => assert!(live.is_empty()),
            _ => panic!(),
        }
    }
}
