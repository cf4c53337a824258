//! ESO's `webhook` provider as an esox plugin: secrets from simple HTTP APIs.
//!
//! The store spec is ESO's `spec.provider.webhook` ([`config`]). `url`, `body`, `headers` and
//! `result.jsonPath` are Go templates rendered with the controller's engine ([`template`]) over
//! `.remoteRef.{key,property,version,namespace}` and, for each `secrets[]` entry,
//! `.<name>.<key>`: keys of a Kubernetes Secret read through the host. The answer is read with
//! ESO's rules ([`response`]): the raw body, or the value `result.jsonPath` selects
//! ([`jsonpath`], PaesslerAG/jsonpath's dialect).
//!
//! TLS trust is the host's: it trusts the CA at `caProvider` and the inline `caBundle` for the
//! store's requests. The origin a store calls derives from `url` when its scheme and authority
//! are not templated; the operator grants it (the plugin has no default egress).

pub mod client;
pub mod config;
pub mod jsonpath;
pub mod response;
pub mod template;

use esox_plugin_sdk::{
    Capabilities, Error, PluginInfo, Provider, Reference, Settings, StoreContext, export_provider,
    serde_json,
};

use client::WebhookClient;
use config::WebhookConfig;

/// The `webhook` provider.
pub struct Webhook;

impl Provider for Webhook {
    type Client = WebhookClient;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "webhook",
            env!("CARGO_PKG_VERSION"),
            "Secrets from simple HTTP APIs: Go-templated requests, JSONPath results (ESO's webhook provider)",
        )
        .capabilities(Capabilities::READ)
        .config_schema(config_schema())
        .references(references())
    }

    fn validate_config(config: &serde_json::Value) -> Result<(), Error> {
        WebhookConfig::parse(config)
            .map(|_| ())
            .map_err(Error::from)
    }

    /// The origin of `url` when it is fixed; none when the scheme or host is templated (the
    /// operator's grants then decide alone).
    fn egress(config: &serde_json::Value, _settings: &Settings) -> Result<Vec<String>, Error> {
        let config = WebhookConfig::parse(config)?;
        Ok(config.origin().into_iter().collect())
    }

    fn open(
        config: serde_json::Value,
        _settings: Settings,
        store: &StoreContext,
    ) -> Result<WebhookClient, Error> {
        WebhookClient::new(WebhookConfig::parse(&config)?, store)
    }
}

/// Where `spec.provider.webhook` references Kubernetes objects: the Secrets templates read
/// (a reference without `key` grants the whole Secret, as ESO reads all of its keys; as ESO,
/// only Secrets labelled `external-secrets.io/type: webhook`, so a Secret's owner opts it in
/// to being sent to a webhook) and the CA the host trusts for the store's TLS.
pub fn references() -> Vec<Reference> {
    vec![
        Reference::secret_key("secrets[*].secretRef")
            .requiring_label("external-secrets.io/type", "webhook"),
        Reference::ca_provider("caProvider"),
    ]
}

/// The JSON Schema of `spec.provider.webhook`: ESO's fields and constraints. The same file is the
/// CRDs' schema of this key (`runtime/api` includes it), so the API server and the plugin
/// agree on the shape by construction.
pub const CONFIG_SCHEMA: &str = include_str!("../schema.json");

/// [`CONFIG_SCHEMA`], parsed.
pub fn config_schema() -> serde_json::Value {
    serde_json::from_str(CONFIG_SCHEMA).expect("schema.json is JSON")
}

export_provider!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn info_declares_read_references_and_no_default_egress() {
        let info = Webhook::info();
        assert_eq!(info.name, "webhook");
        assert_eq!(info.capabilities, Capabilities::READ);
        assert!(info.default_egress.is_empty());
        assert!(!info.wants_ambient_identity);
        let paths: Vec<&str> = info.references.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["secrets[*].secretRef", "caProvider"]);
        // As ESO, only Secrets their owner labelled for webhooks are read (the host checks).
        assert_eq!(
            info.references[0].required_labels,
            [(
                "external-secrets.io/type".to_string(),
                "webhook".to_string()
            )]
        );
        assert!(info.references[1].required_labels.is_empty());
        assert!(matches!(
            info.references[1].kind,
            esox_plugin_sdk::ReferenceKind::CaProvider
        ));
        // Every declared path exists in the schema.
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        assert!(schema["properties"]["secrets"]["items"]["properties"]["secretRef"].is_object());
        assert!(schema["properties"]["caProvider"].is_object());
    }

    #[test]
    fn egress_is_the_url_origin_when_it_is_fixed() {
        let s = Settings::default();
        let fixed = json!({"url": "https://vault.example.com:8200/v1/{{ .remoteRef.key }}"});
        assert_eq!(
            Webhook::egress(&fixed, &s).unwrap(),
            ["https://vault.example.com:8200"]
        );
        let templated = json!({"url": "https://{{ .remoteRef.key }}/x"});
        assert!(Webhook::egress(&templated, &s).unwrap().is_empty());
        let bad = json!({"url": "https://x", "auth": {"ntlm": {}}});
        assert!(matches!(
            Webhook::egress(&bad, &s),
            Err(Error::InvalidConfig(c)) if c.field == "auth.ntlm"
        ));
    }

    #[test]
    fn validate_config_reports_fields() {
        assert!(
            Webhook::validate_config(&json!({"url": "https://x/{{ .remoteRef.key }}"})).is_ok()
        );
        assert!(matches!(
            Webhook::validate_config(&json!({"url": "https://x", "timeout": "soon"})),
            Err(Error::InvalidConfig(c)) if c.field == "timeout"
        ));
    }
}
