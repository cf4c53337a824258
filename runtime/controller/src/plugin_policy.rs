//! The operator's say over plugins: settings per plugin (endpoints, ...), egress grants and who
//! may use the controller's own identity. Parsed once from the command line and used by both
//! the controller and the CLI; the plugin host only enforces what this decides.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;

use esox_plugin_host::{
    AmbientIdentity, AmbientSource, EgressGrant, EgressRule, PluginMeta, PluginOrigin,
};

/// Operator settings and grants (egress, ambient identity), by plugin name.
#[derive(Debug, Clone, Default)]
pub struct PluginPolicy {
    settings: BTreeMap<String, Vec<(String, String)>>,
    egress: BTreeMap<String, Vec<String>>,
    ambient: AmbientGrants,
}

/// Which plugins may use the controller's own identity.
#[derive(Debug, Clone, Default)]
enum AmbientGrants {
    /// The default: the embedded `aws` plugin (so ESO's zero-config AWS stores work unchanged).
    #[default]
    Default,
    /// Exactly these plugins (by name; an embedded or file plugin alike). Empty: none.
    Only(BTreeSet<String>),
}

/// The embedded plugins that get the controller's identity unless the operator says otherwise.
const AMBIENT_BY_DEFAULT: &[&str] = &["aws"];

/// Environment variables ESO's AWS provider reads for endpoint overrides, mapped to the aws
/// plugin's settings so ESO deployments keep working unchanged.
const AWS_ENV_SETTINGS: &[(&str, &str)] = &[
    ("AWS_ENDPOINT_URL", "endpoint"),
    ("AWS_SECRETSMANAGER_ENDPOINT", "endpoint.secretsmanager"),
    ("AWS_SSM_ENDPOINT", "endpoint.ssm"),
    ("AWS_ACM_ENDPOINT", "endpoint.acm"),
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
            EgressRule::parse(origin).with_context(|| format!("--plugin-egress {g:?}"))?;
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

    /// Set which plugins may use the controller's own identity: plugin names, or `none`.
    /// Without a call, only the embedded `aws` plugin may.
    pub fn with_ambient_identity(mut self, plugins: &[String]) -> anyhow::Result<Self> {
        if plugins.is_empty() {
            return Ok(self);
        }
        let names: BTreeSet<String> = plugins
            .iter()
            .flat_map(|p| p.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if names.contains("none") && names.len() > 1 {
            anyhow::bail!("--plugin-ambient-identity: `none` cannot be combined with plugin names");
        }
        self.ambient = AmbientGrants::Only(names.into_iter().filter(|n| n != "none").collect());
        Ok(self)
    }

    /// What the operator grants a store's plugin to reach; the store's own origins are derived
    /// from its config within it (see [`EgressGrant::policy`]).
    pub fn egress(&self, meta: &PluginMeta) -> anyhow::Result<EgressGrant> {
        let granted = self.egress.get(&meta.name).cloned().unwrap_or_default();
        Ok(EgressGrant::new(
            meta.origin == PluginOrigin::Embedded,
            &meta.default_egress,
            &self.settings(&meta.name),
            &granted,
        )?)
    }

    /// Whether a plugin may use the controller's own identity (and the plugin asks for it).
    pub fn ambient_allowed(&self, meta: &PluginMeta) -> bool {
        meta.wants_ambient_identity
            && match &self.ambient {
                AmbientGrants::Default => {
                    meta.origin == PluginOrigin::Embedded
                        && AMBIENT_BY_DEFAULT.contains(&meta.name.as_str())
                }
                AmbientGrants::Only(names) => names.contains(&meta.name),
            }
    }

    /// The controller's identity for a plugin's stores, if granted.
    pub fn ambient(&self, meta: &PluginMeta) -> Option<AmbientSource> {
        self.ambient_allowed(meta)
            .then(AmbientIdentity::process_source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esox_plugin_host::References;

    fn meta(name: &str, origin: PluginOrigin, wants: bool) -> PluginMeta {
        PluginMeta {
            name: name.into(),
            version: "1.0.0".into(),
            description: String::new(),
            contract: "0.2.0".parse().unwrap(),
            capabilities: vec!["read"],
            config_schema: "{}".into(),
            default_egress: vec!["https://*.amazonaws.com".into()],
            references: References::Declared(vec![]),
            wants_ambient_identity: wants,
            sha256: String::new(),
            origin,
            compiled: false,
            load_time: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn only_the_embedded_aws_plugin_gets_the_controllers_identity_by_default() {
        let policy = PluginPolicy::parse(&[], &[]).unwrap();
        assert!(policy.ambient_allowed(&meta("aws", PluginOrigin::Embedded, true)));
        assert!(
            !policy.ambient_allowed(&meta("aws", PluginOrigin::File("aws.wasm".into()), true)),
            "a file plugin that takes the aws name is not the embedded one"
        );
        assert!(!policy.ambient_allowed(&meta("vault", PluginOrigin::Embedded, true)));
        assert!(
            !policy.ambient_allowed(&meta("aws", PluginOrigin::Embedded, false)),
            "a plugin that does not ask gets nothing"
        );
    }

    #[test]
    fn the_operator_names_who_gets_the_identity_or_none() {
        let granted = PluginPolicy::parse(&[], &[])
            .unwrap()
            .with_ambient_identity(&["mine".into()])
            .unwrap();
        assert!(granted.ambient_allowed(&meta("mine", PluginOrigin::File("m.wasm".into()), true)));
        assert!(!granted.ambient_allowed(&meta("aws", PluginOrigin::Embedded, true)));
        let none = PluginPolicy::parse(&[], &[])
            .unwrap()
            .with_ambient_identity(&["none".into()])
            .unwrap();
        assert!(!none.ambient_allowed(&meta("aws", PluginOrigin::Embedded, true)));
        assert!(
            PluginPolicy::parse(&[], &[])
                .unwrap()
                .with_ambient_identity(&["none,aws".into()])
                .is_err()
        );
    }
}
