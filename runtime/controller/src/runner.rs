//! Wiring: the watches (ExternalSecrets by spec/metadata change; managed Secrets metadata-only
//! and label-filtered; stores), the three controllers, the HTTP endpoints, and shutdown on
//! SIGTERM / Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::plugin_policy::PluginPolicy;
use esox_api::{ClusterSecretStore, ExternalSecret, SecretStore};
use esox_plugin_host::PluginHost;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::{self, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::Semaphore;

use crate::backoff::{failure_delay, random_unit};
use crate::context::{Config, Context, Index};
use crate::external_secret::{managed_selector, reconcile, secret_to_external_secrets};
use crate::metrics::Metrics;
use crate::store_clients::{StoreClients, StoreKey};
use crate::stores::{reconcile_cluster_secret_store, reconcile_secret_store};

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

fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &crate::Error,
    ctx: Arc<Context>,
) -> Action {
    let id = ObjectRef::from_obj(&*obj).to_string();
    tracing::warn!(object = %id, error = %error, "reconcile failed; retrying with backoff");
    Action::requeue(failure_delay(ctx.failed(&id), random_unit()))
}

/// Run a reconcile with its panics caught: kube-runtime would end the whole process on one,
/// a crash loop for every tenant. A caught panic fails this object only (logged, retried with
/// backoff by `error_policy`).
fn guarded<K, F, Fut>(
    reconcile: F,
) -> impl Fn(Arc<K>, Arc<Context>) -> futures::future::BoxFuture<'static, Result<Action, crate::Error>>
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = Result<Action, crate::Error>> + Send + 'static,
{
    move |obj, ctx| {
        use futures::FutureExt;
        let id = ObjectRef::from_obj(&*obj).to_string();
        std::panic::AssertUnwindSafe(reconcile(obj, ctx))
            .catch_unwind()
            .map(move |r| {
                r.unwrap_or_else(|_| {
                    tracing::error!(object = %id, "reconcile panicked; only this object is affected, retrying with backoff");
                    Err(crate::Error::Panicked)
                })
            })
            .boxed()
    }
}

/// Counts the watch caches whose first full list is in; when all are, marks the controller
/// ready and logs it once.
///
/// Readiness is taken from the watch streams themselves, not from `Store::wait_until_ready`:
/// kube-runtime's store readiness keeps one waker, so a second task waiting on it can steal the
/// wake-up from the controller's own runner (or be left waiting forever itself).
struct CachesSynced {
    pending: AtomicUsize,
    ready: Arc<AtomicBool>,
}

impl CachesSynced {
    fn new(caches: usize, ready: Arc<AtomicBool>) -> Self {
        Self {
            pending: AtomicUsize::new(caches),
            ready,
        }
    }

    fn one_synced(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ready.store(true, Ordering::Release);
            tracing::info!("watch caches synced; ready");
        }
    }
}

/// A watch of `api` through a reflector cache: the trigger stream for `Controller::for_stream`
/// and the cache it fills. Reports to `synced` once, at the end of the first full list.
fn cached<K>(
    api: Api<K>,
    synced: Arc<CachesSynced>,
    on_delete: impl Fn(&K) + Send + 'static,
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
    let first_list = AtomicBool::new(true);
    let trigger = reflector(writer, watcher(api, watcher::Config::default()))
        .inspect(move |event| {
            if matches!(event, Ok(watcher::Event::InitDone))
                && first_list.swap(false, Ordering::AcqRel)
            {
                synced.one_synced();
            }
            // Deleted objects never reach a reconcile (applied_objects drops them): whatever
            // is kept per object is freed here.
            if let Ok(watcher::Event::Delete(object)) = event {
                on_delete(object);
            }
        })
        .applied_objects();
    (trigger, reader)
}

/// Run the controller until SIGTERM or Ctrl-C.
pub async fn run(
    client: kube::Client,
    host: PluginHost,
    policy: PluginPolicy,
    config: Config,
    http: HttpConfig,
) -> anyhow::Result<()> {
    let ns = config.namespace.clone();
    let wc = watcher::Config::default;
    let ready = Arc::new(AtomicBool::new(false));
    let synced = Arc::new(CachesSynced::new(3, ready.clone()));

    // A deleted or changed store frees its plugin clients (and their instances) at once.
    let stores = Arc::new(StoreClients::new(host.clone(), policy, client.clone()));
    let forget = stores.clone();
    let (trigger, reader) = cached(
        api::<SecretStore>(&client, ns.as_deref()),
        synced.clone(),
        move |s: &SecretStore| {
            forget.forget(&StoreKey::Namespaced {
                namespace: s.namespace().unwrap_or_default(),
                name: s.name_any(),
            })
        },
    );
    let ss_controller = Controller::for_stream(trigger, reader);
    let forget = stores.clone();
    let (trigger, reader) = cached(
        Api::<ClusterSecretStore>::all(client.clone()),
        synced.clone(),
        move |s: &ClusterSecretStore| forget.forget(&StoreKey::Cluster { name: s.name_any() }),
    );
    let css_controller = Controller::for_stream(trigger, reader);

    // Every ExternalSecret event triggers a reconcile, including esox's own status writes; those
    // end in the cheap "not due, Secret intact" path without API calls or writes.
    let (trigger, reader) = cached(
        api::<ExternalSecret>(&client, ns.as_deref()),
        synced,
        |_: &ExternalSecret| {},
    );
    let es_controller = Controller::for_stream(trigger, reader);

    let metrics = Metrics::default();
    let registry = metrics.registry(host.metrics());
    let permits = config.concurrency.max(1);
    let ctx = Arc::new(Context {
        client: client.clone(),
        stores,
        secret_stores: ss_controller.store(),
        cluster_secret_stores: css_controller.store(),
        index: Index::default(),
        metrics,
        recorder: Recorder::new(client.clone(), Context::reporter()),
        first_syncs: Semaphore::new(permits),
        refreshes: Semaphore::new(permits),
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

    let (metrics_addr, live_addr) =
        crate::http::serve(http.metrics_addr, http.live_addr, registry, ready.clone()).await?;
    tracing::info!(%metrics_addr, %live_addr, namespace = ns.as_deref().unwrap_or("(all)"), class = %ctx.config.controller_class, concurrency = permits, "esox controller starting");

    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    // Managed Secrets: metadata only (no values held in memory), filtered by the managed label.
    let es_controller = es_controller
        .watches(
            api::<PartialObjectMeta<Secret>>(&client, ns.as_deref()),
            wc().labels(&managed_selector()),
            move |s: PartialObjectMeta<Secret>| {
                let ns = s.namespace().unwrap_or_default();
                c1.observe_secret(&ns, &s.name_any(), s.resource_version());
                secret_to_external_secrets(&c1, &ns, &s.name_any(), s.owner_references())
            },
        )
        .watches(
            api::<SecretStore>(&client, ns.as_deref()),
            wc(),
            move |s: SecretStore| {
                c2.index.users_of(&StoreKey::Namespaced {
                    namespace: s.namespace().unwrap_or_default(),
                    name: s.name_any(),
                })
            },
        )
        .watches(
            Api::<ClusterSecretStore>::all(client.clone()),
            wc(),
            move |s: ClusterSecretStore| {
                c3.index.users_of(&StoreKey::Cluster { name: s.name_any() })
            },
        )
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
    futures::join!(es_controller, ss, css);
    tracing::info!("esox controller stopped");
    Ok(())
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
