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

/// Every metric the reconcilers update.
#[derive(Clone, Default)]
pub struct Metrics {
    pub sync_calls: Family<ObjectLabels, Counter>,
    /// Values served from a store client's coalescing cache instead of the backend.
    pub values_coalesced: Counter,
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
            "The duration time to reconcile the External Secret (seconds)",
            self.es_reconcile_duration.clone(),
        );
        r.register(
            "secretstore_status_condition",
            "The status condition of a specific Secret Store",
            self.ss_condition.clone(),
        );
        r.register(
            "secretstore_reconcile_duration",
            "The duration time to reconcile the Secret Store (seconds)",
            self.ss_reconcile_duration.clone(),
        );
        r.register(
            "clustersecretstore_status_condition",
            "The status condition of a specific Cluster Secret Store",
            self.css_condition.clone(),
        );
        r.register(
            "clustersecretstore_reconcile_duration",
            "The duration time to reconcile the Cluster Secret Store (seconds)",
            self.css_reconcile_duration.clone(),
        );
        r.register(
            "esox_values_coalesced",
            "Values reused from another ExternalSecret's read of the same remote reference within the coalescing window (a backend call saved each)",
            self.values_coalesced.clone(),
        );
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
