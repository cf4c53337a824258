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
    ambient: NameGrants,
    api_audience: NameGrants,
}

/// Which plugins get a grant by name (the controller's own identity; API-audience tokens).
#[derive(Debug, Clone, Default)]
enum NameGrants {
    /// The default: some embedded plugins, so ESO's stores work unchanged.
    #[default]
    Default,
    /// Exactly these plugins (by name; an embedded or file plugin alike). Empty: none.
    Only(BTreeSet<String>),
}

impl NameGrants {
    /// Plugin names (repeatable or comma-separated) or `none`; nothing given keeps the default.
    fn parse(flag: &str, plugins: &[String]) -> anyhow::Result<Option<Self>> {
        if plugins.is_empty() {
            return Ok(None);
        }
        let names: BTreeSet<String> = plugins
            .iter()
            .flat_map(|p| p.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if names.contains("none") && names.len() > 1 {
            anyhow::bail!("{flag}: `none` cannot be combined with plugin names");
        }
        Ok(Some(NameGrants::Only(
            names.into_iter().filter(|n| n != "none").collect(),
        )))
    }

    fn allows(&self, meta: &PluginMeta, by_default: &[&str]) -> bool {
        match self {
            NameGrants::Default => {
                meta.origin == PluginOrigin::Embedded && by_default.contains(&meta.name.as_str())
            }
            NameGrants::Only(names) => names.contains(&meta.name),
        }
    }
}

/// The embedded plugins that get the controller's identity unless the operator says otherwise.
const AMBIENT_BY_DEFAULT: &[&str] = &["aws"];

/// The embedded plugins that may ask for ServiceAccount tokens with the API server's own
/// audience (a reference without `audiences`, as in ESO's examples) unless the operator says
/// otherwise: their ESO providers mint exactly that token.
const API_AUDIENCE_BY_DEFAULT: &[&str] = &["kubernetes", "vault"];

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
        if let Some(grants) = NameGrants::parse("--plugin-ambient-identity", plugins)? {
            self.ambient = grants;
        }
        Ok(self)
    }

    /// Set which plugins may ask for ServiceAccount tokens with the API server's own audience
    /// (a reference that names no `audiences`): plugin names, or `none`. Without a call, the
    /// embedded `kubernetes` and `vault` plugins may, as ESO's providers do.
    pub fn with_api_audience_tokens(mut self, plugins: &[String]) -> anyhow::Result<Self> {
        if let Some(grants) = NameGrants::parse("--plugin-api-audience-tokens", plugins)? {
            self.api_audience = grants;
        }
        Ok(self)
    }

    /// Whether a plugin's stores may get tokens with the API server's own audience.
    pub fn api_audience_allowed(&self, meta: &PluginMeta) -> bool {
        self.api_audience.allows(meta, API_AUDIENCE_BY_DEFAULT)
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
        meta.wants_ambient_identity && self.ambient.allows(meta, AMBIENT_BY_DEFAULT)
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
            contract: "0.3.0".parse().unwrap(),
            capabilities: vec!["read"],
            config_schema: "{}".into(),
            default_egress: vec!["https://*.amazonaws.com".into()],
            references: References::Declared(vec![]),
            wants_ambient_identity: wants,
            client_certificates: Vec::new(),
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

    #[test]
    fn api_audience_tokens_default_to_the_embedded_kubernetes_and_vault_plugins() {
        let policy = PluginPolicy::parse(&[], &[]).unwrap();
        assert!(policy.api_audience_allowed(&meta("vault", PluginOrigin::Embedded, false)));
        assert!(policy.api_audience_allowed(&meta("kubernetes", PluginOrigin::Embedded, false)));
        assert!(!policy.api_audience_allowed(&meta("aws", PluginOrigin::Embedded, false)));
        assert!(
            !policy.api_audience_allowed(&meta(
                "vault",
                PluginOrigin::File("vault.wasm".into()),
                false
            )),
            "a file plugin that takes the vault name is not the embedded one"
        );
        let none = PluginPolicy::parse(&[], &[])
            .unwrap()
            .with_api_audience_tokens(&["none".into()])
            .unwrap();
        assert!(!none.api_audience_allowed(&meta("vault", PluginOrigin::Embedded, false)));
        let only = PluginPolicy::parse(&[], &[])
            .unwrap()
            .with_api_audience_tokens(&["kubernetes".into()])
            .unwrap();
        assert!(only.api_audience_allowed(&meta("kubernetes", PluginOrigin::Embedded, false)));
        assert!(!only.api_audience_allowed(&meta("vault", PluginOrigin::Embedded, false)));
        assert!(
            PluginPolicy::parse(&[], &[])
                .unwrap()
                .with_api_audience_tokens(&["none".into(), "vault".into()])
                .is_err()
        );
    }
}
