//! Counters the host keeps about plugins, registered into the controller's Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a plugin call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub plugin: String,
    pub call: String,
    /// `ok`, or the error kind (`not_found`, `unavailable`, `trap`, `timeout`, ...).
    pub status: String,
}

/// ESO's `{provider, call, status}`: the plugin, its contract call (`get-secret`, ...), and
/// `success` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EsoCallLabels {
    pub provider: String,
    pub call: String,
    pub status: String,
}

/// Labels naming a plugin.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
}

/// Labels of a broker denial: the plugin and what it asked for (`secret`, `config_map`,
/// `service_account`, `token_audience`, `token_lifetime`, `ambient_identity`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerLabels {
    pub plugin: String,
    pub kind: String,
}

/// The host's metrics. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct HostMetrics {
    /// `esox_plugin_calls_total{plugin,call,status}`.
    pub calls: Family<CallLabels, Counter>,
    /// `esox_plugin_call_duration_seconds{plugin,call,status}`.
    pub call_duration: Family<CallLabels, Histogram>,
    /// `esox_plugin_egress_denied_total{plugin}`: requests refused by the egress policy.
    pub egress_denied: Family<PluginLabels, Counter>,
    /// `esox_plugin_instances_created_total{plugin}`.
    pub instances_created: Family<PluginLabels, Counter>,
    /// `esox_plugin_instances_discarded_total{plugin}`: after a trap, timeout or limit.
    pub instances_discarded: Family<PluginLabels, Counter>,
    /// `esox_plugin_broker_denied_total{plugin,kind}`: host requests outside the store's grant.
    pub broker_denied: Family<BrokerLabels, Counter>,
    /// `esox_plugin_instances_evicted_total{plugin}`: idle instances dropped (idle timeout,
    /// pool pressure) or recycled after their memory grew past the threshold.
    pub instances_evicted: Family<PluginLabels, Counter>,
    /// `esox_plugin_pool_waits_total{plugin}`: calls that waited for a free instance slot.
    pub pool_waits: Family<PluginLabels, Counter>,
    /// `esox_plugin_log_dropped_total{plugin}`: plugin log lines dropped by the rate limit.
    pub log_dropped: Family<PluginLabels, Counter>,
    /// ESO's `externalsecret_provider_api_calls_count{provider,call,status}`, which its
    /// dashboard and alerts query. Its name has no `_total`, which the OpenMetrics encoder
    /// would add to a counter, so it is a gauge that only grows. `provider` is the plugin's
    /// name (`aws`) and `call` the contract call (`get-secrets`), where ESO names the cloud
    /// service and its API (`AWS/SecretsManager`, `GetSecretValue`).
    pub eso_api_calls: Family<EsoCallLabels, Gauge>,
}

impl Default for HostMetrics {
    fn default() -> Self {
        HostMetrics {
            calls: Family::default(),
            call_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 3.0, 12))
            }),
            egress_denied: Family::default(),
            instances_created: Family::default(),
            instances_discarded: Family::default(),
            broker_denied: Family::default(),
            instances_evicted: Family::default(),
            pool_waits: Family::default(),
            log_dropped: Family::default(),
            eso_api_calls: Family::default(),
        }
    }
}

impl HostMetrics {
    /// Register under `esox_plugin_*`, and ESO's provider call metric under its own name.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "externalsecret_provider_api_calls_count",
            "Number of API calls towards the secret provider",
            self.eso_api_calls.clone(),
        );
        let r = registry.sub_registry_with_prefix("esox_plugin");
        r.register(
            "calls",
            "Plugin calls by plugin, call and outcome",
            self.calls.clone(),
        );
        r.register(
            "call_duration_seconds",
            "Plugin call latency",
            self.call_duration.clone(),
        );
        r.register(
            "egress_denied",
            "Outgoing requests refused by the egress policy",
            self.egress_denied.clone(),
        );
        r.register(
            "instances_created",
            "Plugin instances created",
            self.instances_created.clone(),
        );
        r.register(
            "instances_discarded",
            "Plugin instances discarded after a trap, timeout or limit",
            self.instances_discarded.clone(),
        );
        r.register(
            "broker_denied",
            "Host requests (Secret, ConfigMap, token, identity) refused because the store's config does not grant them",
            self.broker_denied.clone(),
        );
        r.register(
            "instances_evicted",
            "Idle plugin instances dropped (idle timeout, pool pressure, grown memory)",
            self.instances_evicted.clone(),
        );
        r.register(
            "pool_waits",
            "Plugin calls that waited for a free instance slot",
            self.pool_waits.clone(),
        );
        r.register(
            "log_dropped",
            "Plugin log lines dropped by the per-instance rate limit",
            self.log_dropped.clone(),
        );
    }

    /// How many host requests of `plugin` the broker refused, over all kinds.
    pub fn broker_denied_count(&self, plugin: &str) -> u64 {
        [
            "secret",
            "config_map",
            "service_account",
            "token_audience",
            "token_lifetime",
            "ambient_identity",
        ]
        .iter()
        .map(|kind| {
            self.broker_denied
                .get_or_create(&BrokerLabels {
                    plugin: plugin.to_string(),
                    kind: kind.to_string(),
                })
                .get()
        })
        .sum()
    }

    /// How many requests of `plugin` the egress policy refused.
    pub fn egress_denied_count(&self, plugin: &str) -> u64 {
        self.egress_denied
            .get_or_create(&PluginLabels {
                plugin: plugin.to_string(),
            })
            .get()
    }
}
