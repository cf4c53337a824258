//! The controller's Prometheus metrics, under ESO's names so existing dashboards and alerts
//! keep working (`pkg/controllers/*/metrics`, `docs/api/metrics.md`), plus the plugin host's
//! `esox_plugin_*` metrics.
//!
//! ESO's `externalsecret_sync_calls_error` is a counter without the `_total` suffix; the
//! OpenMetrics encoder appends `_total` to every counter, so it is exported as a gauge that
//! only ever grows, keeping the name users query.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `{name, namespace}` of an ExternalSecret or SecretStore.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub name: String,
    pub namespace: String,
}

/// `{name, namespace, condition, status}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub name: String,
    pub namespace: String,
    pub condition: String,
    pub status: String,
}

/// `{name, condition, status}` of a cluster-scoped store.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterConditionLabels {
    pub name: String,
    pub condition: String,
    pub status: String,
}

/// `{name}` of a cluster-scoped store.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub name: String,
}

/// `{controller}`: `externalsecret`, `secretstore` or `clustersecretstore` (controller-runtime's
/// names for ESO's controllers).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

/// `{controller, result}`: `success`, `error`, `requeue_after` (controller-runtime's values).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub controller: String,
    pub result: String,
}

/// `{name, controller}` of a work queue (both the controller's name, as controller-runtime).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub name: String,
    pub controller: String,
}

/// controller-runtime's `controller_runtime_reconcile_time_seconds` buckets.
const RECONCILE_TIME_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// client-go's work queue duration buckets: 10 ns to 1,000 s, by tens.
fn queue_buckets() -> Histogram {
    Histogram::new((0..12).map(|i| 1e-8 * 10f64.powi(i)))
}

fn reconcile_time() -> Histogram {
    Histogram::new(RECONCILE_TIME_BUCKETS)
}

/// controller-runtime's and client-go's work queue metrics, which ESO's Grafana dashboard
/// and alerts query. esox has no work queue of its own (kube-runtime schedules reconciles);
/// its queue is the reconciles waiting for a sync permit, so `workqueue_depth` counts those,
/// `workqueue_queue_duration_seconds` is the wait for a permit and
/// `workqueue_work_duration_seconds` the reconcile itself.
#[derive(Clone)]
pub struct RuntimeMetrics {
    pub reconcile_total: Family<ResultLabels, Counter>,
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    pub reconcile_panics: Family<ControllerLabels, Counter>,
    pub reconcile_time: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub active_workers: Family<ControllerLabels, Gauge>,
    pub max_concurrent_reconciles: Family<ControllerLabels, Gauge>,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub queue_adds: Family<QueueLabels, Counter>,
    pub queue_retries: Family<QueueLabels, Counter>,
    pub queue_duration: Family<QueueLabels, Histogram, fn() -> Histogram>,
    pub work_duration: Family<QueueLabels, Histogram, fn() -> Histogram>,
}

impl Default for RuntimeMetrics {
    fn default() -> Self {
        RuntimeMetrics {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_panics: Family::default(),
            reconcile_time: Family::new_with_constructor(reconcile_time),
            active_workers: Family::default(),
            max_concurrent_reconciles: Family::default(),
            queue_depth: Family::default(),
            queue_adds: Family::default(),
            queue_retries: Family::default(),
            queue_duration: Family::new_with_constructor(queue_buckets),
            work_duration: Family::new_with_constructor(queue_buckets),
        }
    }
}

impl RuntimeMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            self.reconcile_total.clone(),
        );
        r.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            self.reconcile_errors.clone(),
        );
        r.register(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            self.reconcile_panics.clone(),
        );
        r.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            self.reconcile_time.clone(),
        );
        r.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            self.active_workers.clone(),
        );
        r.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller (0: not limited)",
            self.max_concurrent_reconciles.clone(),
        );
        r.register(
            "workqueue_depth",
            "Current depth of workqueue (esox: reconciles waiting for a sync permit)",
            self.queue_depth.clone(),
        );
        r.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue (esox: reconciles started)",
            self.queue_adds.clone(),
        );
        r.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue (esox: reconciles that failed and back off)",
            self.queue_retries.clone(),
        );
        r.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested (esox: the wait for a sync permit)",
            self.queue_duration.clone(),
        );
        r.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            self.work_duration.clone(),
        );
    }

    /// The labels of one controller.
    pub fn controller(name: &str) -> ControllerLabels {
        ControllerLabels {
            controller: name.into(),
        }
    }

    /// The labels of one controller's queue.
    pub fn queue(name: &str) -> QueueLabels {
        QueueLabels {
            name: name.into(),
            controller: name.into(),
        }
    }
}

tokio::task_local! {
    /// Set when a reconcile ends in a failure it has reported itself (status, event) and will
    /// retry: controller-runtime counts those as `result="error"`, as ESO returns the error.
    static RECONCILE_FAILED: std::cell::Cell<bool>;
}

/// Run a reconcile, saying whether it marked itself failed ([`mark_failed`]).
pub async fn watch_failure<F: std::future::Future>(fut: F) -> (F::Output, bool) {
    RECONCILE_FAILED
        .scope(std::cell::Cell::new(false), async move {
            let out = fut.await;
            (out, RECONCILE_FAILED.with(|c| c.get()))
        })
        .await
}

/// The running reconcile failed and retries (see [`watch_failure`]); outside one, nothing.
pub fn mark_failed() {
    let _ = RECONCILE_FAILED.try_with(|c| c.set(true));
}

/// A reconcile waiting for its sync permits: one in `workqueue_depth` while it lives, and its
/// wait in `workqueue_queue_duration_seconds` when dropped.
pub struct Waiting<'a> {
    metrics: &'a RuntimeMetrics,
    started: std::time::Instant,
}

impl<'a> Waiting<'a> {
    pub fn new(metrics: &'a RuntimeMetrics) -> Self {
        metrics
            .queue_depth
            .get_or_create(&RuntimeMetrics::queue(ES_CONTROLLER))
            .inc();
        Waiting {
            metrics,
            started: std::time::Instant::now(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let queue = RuntimeMetrics::queue(ES_CONTROLLER);
        self.metrics.queue_depth.get_or_create(&queue).dec();
        self.metrics
            .queue_duration
            .get_or_create(&queue)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// controller-runtime's name for ESO's ExternalSecret controller.
pub const ES_CONTROLLER: &str = "externalsecret";

/// Every metric the reconcilers update.
#[derive(Clone, Default)]
pub struct Metrics {
    /// controller-runtime's and the work queue's metrics.
    pub runtime: RuntimeMetrics,
    pub sync_calls: Family<ObjectLabels, Counter>,
    /// Values served from a store client's coalescing cache instead of the backend.
    pub values_coalesced: Counter,
    /// First syncs whose create found the target already there (then read and synced again).
    pub unread_create_conflicts: Counter,
    /// Reconciles that found their sync permits taken and parked (parking.rs).
    pub reconciles_parked: Counter,
    /// Permits held for a parked ExternalSecret that no reconcile came to take.
    pub parked_permits_unclaimed: Counter,
    pub sync_calls_error: Family<ObjectLabels, Gauge>,
    pub es_condition: Family<ConditionLabels, Gauge>,
    pub es_reconcile_duration: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    pub ss_condition: Family<ConditionLabels, Gauge>,
    pub ss_reconcile_duration: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    pub css_condition: Family<ClusterConditionLabels, Gauge>,
    pub css_reconcile_duration: Family<ClusterLabels, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    /// Register the controller's metrics (and the plugin host's) in a new registry.
    pub fn registry(&self, host: &esox_plugin_host::HostMetrics) -> Arc<Registry> {
        let mut r = Registry::default();
        r.register(
            "externalsecret_sync_calls",
            "Total number of the External Secret sync calls",
            self.sync_calls.clone(),
        );
        r.register(
            "externalsecret_sync_calls_error",
            "Total number of the External Secret sync errors",
            self.sync_calls_error.clone(),
        );
        r.register(
            "externalsecret_status_condition",
            "The status condition of a specific External Secret",
            self.es_condition.clone(),
        );
        r.register(
            "externalsecret_reconcile_duration",
            "The duration time to reconcile the External Secret",
            self.es_reconcile_duration.clone(),
        );
        r.register(
            "secretstore_status_condition",
            "The status condition of a specific Secret Store",
            self.ss_condition.clone(),
        );
        r.register(
            "secretstore_reconcile_duration",
            "The duration time to reconcile the Secret Store",
            self.ss_reconcile_duration.clone(),
        );
        r.register(
            "clustersecretstore_status_condition",
            "The status condition of a specific Cluster Secret Store",
            self.css_condition.clone(),
        );
        r.register(
            "clustersecretstore_reconcile_duration",
            "The duration time to reconcile the Cluster Secret Store",
            self.css_reconcile_duration.clone(),
        );
        r.register(
            "esox_values_coalesced",
            "Values reused from another ExternalSecret's read of the same remote reference within the coalescing window (a backend call saved each)",
            self.values_coalesced.clone(),
        );
        r.register(
            "esox_first_sync_create_conflicts",
            "First syncs that wrote their target without reading it and found it already there (each then read it and synced again)",
            self.unread_create_conflicts.clone(),
        );
        r.register(
            "esox_reconciles_parked",
            "ExternalSecret reconciles whose sync permits were taken: they waited outside the controller's slots and were reconciled again once the permits were theirs",
            self.reconciles_parked.clone(),
        );
        r.register(
            "esox_parked_permits_unclaimed",
            "Sync permits taken for a parked ExternalSecret that no reconcile came to take within 30 s (released then)",
            self.parked_permits_unclaimed.clone(),
        );
        self.runtime.register(&mut r);
        host.register(&mut r);
        Arc::new(r)
    }

    /// ESO sets the gauge of the current status to 1 and of the other statuses to 0.
    pub fn set_es_condition(&self, name: &str, namespace: &str, ready: bool) {
        for (status, value) in [("True", ready), ("False", !ready)] {
            let labels = ConditionLabels {
                name: name.into(),
                namespace: namespace.into(),
                condition: "Ready".into(),
                status: status.into(),
            };
            self.es_condition
                .get_or_create(&labels)
                .set(i64::from(value));
        }
    }

    /// Remove every series of a deleted ExternalSecret.
    pub fn forget_external_secret(&self, name: &str, namespace: &str) {
        let labels = ObjectLabels {
            name: name.into(),
            namespace: namespace.into(),
        };
        self.sync_calls.remove(&labels);
        self.sync_calls_error.remove(&labels);
        self.es_reconcile_duration.remove(&labels);
        for status in ["True", "False"] {
            self.es_condition.remove(&ConditionLabels {
                name: name.into(),
                namespace: namespace.into(),
                condition: "Ready".into(),
                status: status.into(),
            });
        }
    }

    /// Remove every series of a deleted store (`namespace` None: a ClusterSecretStore).
    pub fn forget_store(&self, namespace: Option<&str>, name: &str) {
        for status in ["True", "False"] {
            match namespace {
                Some(ns) => {
                    self.ss_condition.remove(&ConditionLabels {
                        name: name.into(),
                        namespace: ns.into(),
                        condition: "Ready".into(),
                        status: status.into(),
                    });
                }
                None => {
                    self.css_condition.remove(&ClusterConditionLabels {
                        name: name.into(),
                        condition: "Ready".into(),
                        status: status.into(),
                    });
                }
            }
        }
        match namespace {
            Some(ns) => {
                self.ss_reconcile_duration.remove(&ObjectLabels {
                    name: name.into(),
                    namespace: ns.into(),
                });
            }
            None => {
                self.css_reconcile_duration
                    .remove(&ClusterLabels { name: name.into() });
            }
        }
    }

    /// The store's Ready gauge, by kind.
    pub fn set_store_condition(&self, namespace: Option<&str>, name: &str, ready: bool) {
        for (status, value) in [("True", ready), ("False", !ready)] {
            match namespace {
                Some(ns) => {
                    let labels = ConditionLabels {
                        name: name.into(),
                        namespace: ns.into(),
                        condition: "Ready".into(),
                        status: status.into(),
                    };
                    self.ss_condition
                        .get_or_create(&labels)
                        .set(i64::from(value));
                }
                None => {
                    let labels = ClusterConditionLabels {
                        name: name.into(),
                        condition: "Ready".into(),
                        status: status.into(),
                    };
                    self.css_condition
                        .get_or_create(&labels)
                        .set(i64::from(value));
                }
            }
        }
    }
}

/// The registry in Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_carry_esos_names() {
        let m = Metrics::default();
        let labels = ObjectLabels {
            name: "db".into(),
            namespace: "team".into(),
        };
        m.sync_calls.get_or_create(&labels).inc();
        m.sync_calls_error.get_or_create(&labels).inc();
        m.set_es_condition("db", "team", true);
        let text = encode(&m.registry(&esox_plugin_host::HostMetrics::default()));
        assert!(
            text.contains(r#"externalsecret_sync_calls_total{name="db",namespace="team"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"externalsecret_sync_calls_error{name="db",namespace="team"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"externalsecret_status_condition{name="db",namespace="team",condition="Ready",status="True"} 1"#), "{text}");
        assert!(text.contains(r#"externalsecret_status_condition{name="db",namespace="team",condition="Ready",status="False"} 0"#), "{text}");
    }

    #[test]
    fn a_deleted_objects_series_are_removed_and_no_others() {
        let m = Metrics::default();
        for name in ["db", "keep"] {
            let labels = ObjectLabels {
                name: name.into(),
                namespace: "team".into(),
            };
            m.sync_calls.get_or_create(&labels).inc();
            m.sync_calls_error.get_or_create(&labels).inc();
            m.es_reconcile_duration.get_or_create(&labels).set(1.0);
            m.set_es_condition(name, "team", true);
            m.set_store_condition(Some("team"), name, true);
            m.ss_reconcile_duration.get_or_create(&labels).set(1.0);
            m.set_store_condition(None, name, false);
            m.css_reconcile_duration
                .get_or_create(&ClusterLabels { name: name.into() })
                .set(1.0);
        }
        m.forget_external_secret("db", "team");
        m.forget_store(Some("team"), "db");
        m.forget_store(None, "db");
        let text = encode(&m.registry(&esox_plugin_host::HostMetrics::default()));
        assert!(!text.contains(r#"name="db""#), "{text}");
        assert_eq!(text.matches(r#"name="keep""#).count(), 11, "{text}");
    }
}
