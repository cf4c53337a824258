//! The operator's say over plugins: settings per plugin (endpoints, ...) and egress grants.
//! Parsed once from the command line (or config) and used by both the controller and the CLI.

use std::collections::BTreeMap;

use anyhow::Context;

use crate::{EgressPolicy, PluginMeta, PluginOrigin};

/// Operator settings and egress grants, by plugin name.
#[derive(Debug, Clone, Default)]
pub struct PluginPolicy {
    settings: BTreeMap<String, Vec<(String, String)>>,
    egress: BTreeMap<String, Vec<String>>,
}

/// Environment variables ESO's AWS provider reads for endpoint overrides, mapped to the aws
/// plugin's settings so ESO deployments keep working unchanged.
const AWS_ENV_SETTINGS: &[(&str, &str)] = &[
    ("AWS_ENDPOINT_URL", "endpoint"),
    ("AWS_SECRETSMANAGER_ENDPOINT", "endpoint.secretsmanager"),
    ("AWS_SSM_ENDPOINT", "endpoint.ssm"),
    ("AWS_STS_ENDPOINT", "endpoint.sts"),
];

impl PluginPolicy {
    /// Parse `PLUGIN:KEY=VALUE` settings and `PLUGIN=ORIGIN` grants (plus ESO's AWS endpoint environment variables).
    pub fn parse(plugin_settings: &[String], plugin_egress: &[String]) -> anyhow::Result<Self> {
        let mut policy = PluginPolicy::default();
        for (var, key) in AWS_ENV_SETTINGS {
            if let Ok(value) = std::env::var(var)
                && !value.is_empty()
            {
                policy
                    .settings
                    .entry("aws".into())
                    .or_default()
                    .push((key.to_string(), value));
            }
        }
        for s in plugin_settings {
            let (plugin, kv) = s
                .split_once(':')
                .with_context(|| format!("--plugin-setting {s:?}: expected PLUGIN:KEY=VALUE"))?;
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--plugin-setting {s:?}: expected PLUGIN:KEY=VALUE"))?;
            let entry = policy.settings.entry(plugin.to_string()).or_default();
            entry.retain(|(existing, _)| existing != k); // flags override the environment
            entry.push((k.to_string(), v.to_string()));
        }
        for g in plugin_egress {
            let (plugin, origin) = g
                .split_once('=')
                .with_context(|| format!("--plugin-egress {g:?}: expected PLUGIN=ORIGIN"))?;
            crate::EgressRule::parse(origin).with_context(|| format!("--plugin-egress {g:?}"))?;
            policy
                .egress
                .entry(plugin.to_string())
                .or_default()
                .push(origin.to_string());
        }
        Ok(policy)
    }

    /// The operator's settings for a plugin.
    pub fn settings(&self, plugin: &str) -> Vec<(String, String)> {
        self.settings.get(plugin).cloned().unwrap_or_default()
    }

    /// The egress policy for a store using this plugin.
    pub fn egress(&self, meta: &PluginMeta) -> anyhow::Result<EgressPolicy> {
        let granted = self.egress.get(&meta.name).cloned().unwrap_or_default();
        Ok(crate::egress::policy_for_store(
            meta.origin == PluginOrigin::Embedded,
            &meta.default_egress,
            &self.settings(&meta.name),
            &granted,
        )?)
    }
}
