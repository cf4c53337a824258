//! Conformance checks every first-party plugin must pass, run through the real host on each
//! plugin the binary embeds (`esox_plugins_bundle::PLUGINS`): a new provider gets them without
//! writing a test. What the contract promises users and operators, checked the same way for all:
//!
//! - it describes itself: a lowercase provider name, contract 0.3, a JSON-Schema object for its
//!   config, declared (not inferred) references and client certificate paths that lie inside
//!   that schema;
//! - `validate-config` refuses what it does not understand with `invalid-config`, never quoting
//!   a value from the config (a marker value is planted in every field the schema names, with
//!   the wrong shape, and must never come back in an error).

mod common;

use common::*;
use esox_plugin_host::References;
use esox_provider::ProviderError;
use serde_json::{Value, json};

/// Planted in configs; must never appear in an error.
const MARKER: &str = "s3cr3t-conformance-marker";

/// The embedded first-party plugins' names (the fixtures are not products).
fn embedded_plugins() -> Vec<String> {
    esox_plugins_bundle::PLUGINS
        .iter()
        .map(|(file, _)| {
            file.trim_start_matches("esox_plugin_")
                .trim_end_matches(".wasm")
                .to_string()
        })
        .collect()
}

fn error_text(e: &ProviderError) -> String {
    format!("{e} {e:?}")
}

#[tokio::test]
async fn every_embedded_plugin_describes_itself_and_its_references_lie_in_its_schema() {
    let (host, _) = host_with(test_limits()).await;
    let names = embedded_plugins();
    assert!(
        names.len() >= 4,
        "aws, fake, vault, webhook at least: {names:?}"
    );
    for name in names {
        let plugin = host
            .plugin(&name)
            .unwrap_or_else(|| panic!("{name} loaded"));
        let meta = &plugin.meta;
        assert_eq!(meta.name, name);
        assert!(
            meta.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{name}: provider names are ESO's lowercase spec.provider keys"
        );
        assert_eq!(
            (meta.contract.major, meta.contract.minor),
            (0, 3),
            "{name}: built for contract 0.3"
        );
        let schema: Value = serde_json::from_str(&meta.config_schema)
            .unwrap_or_else(|e| panic!("{name}: config schema is not JSON: {e}"));
        assert_eq!(schema["type"], "object", "{name}: the config is an object");
        let properties = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: the schema names its fields"));
        let References::Declared(paths) = &meta.references else {
            panic!("{name}: a 0.3 plugin declares its references");
        };
        let client_certificates = meta
            .client_certificates
            .iter()
            .flat_map(|c| [&c.certificate, &c.private_key]);
        for path in paths.iter().map(|p| &p.path).chain(client_certificates) {
            // The first step of every declared path is a field of the schema (a typo would
            // grant nothing and silently break the store).
            let first = path.split('.').next().unwrap_or("");
            let first = first.trim_end_matches("[*]");
            assert!(
                properties.contains_key(first),
                "{name}: declared path {:?} starts outside the schema ({:?})",
                path,
                properties.keys().collect::<Vec<_>>()
            );
        }
    }
}

/// The CRDs type `spec.provider.<name>` of some embedded plugins from the plugin's own
/// `schema.json`; the plugin embedded in this build must describe itself with that same schema
/// (a stale `.wasm` or a schema rebuilt by hand would let the API server and the plugin disagree).
#[tokio::test]
async fn the_crds_typed_provider_schemas_are_the_embedded_plugins_own() {
    let (host, _) = host_with(test_limits()).await;
    for (name, text) in esox_api::PLUGIN_SCHEMAS {
        let plugin = host
            .plugin(name)
            .unwrap_or_else(|| panic!("{name} is embedded"));
        let from_plugin: Value = serde_json::from_str(&plugin.meta.config_schema).unwrap();
        let in_crd: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            from_plugin, in_crd,
            "{name}: the CRD and the plugin disagree"
        );
    }
}

#[tokio::test]
async fn validate_config_refuses_the_wrong_shape_without_quoting_a_value() {
    let (host, _) = host_with(test_limits()).await;
    for name in embedded_plugins() {
        let plugin = host.plugin(&name).unwrap();
        let schema: Value = serde_json::from_str(&plugin.meta.config_schema).unwrap();
        // An unknown field holding the marker.
        let unknown = json!({"esoxConformanceUnknownField": MARKER});
        match host.validate_config(&name, &unknown).await {
            Err(e) => assert!(
                !error_text(&e).contains(MARKER),
                "{name}: an error quotes a config value: {e}"
            ),
            Ok(()) => {
                // Accepting it is allowed only for plugins whose schema leaves fields open.
                assert_ne!(
                    schema["additionalProperties"],
                    json!(false),
                    "{name}: accepted a field its schema forbids"
                );
            }
        }
        // Every field the schema names, given the wrong shape with the marker inside.
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (field, spec) in properties {
            let wrong = if spec["type"] == "string" {
                json!({"nested": MARKER})
            } else {
                json!(MARKER)
            };
            let mut config = serde_json::Map::new();
            config.insert(field.clone(), wrong);
            let config = Value::Object(config);
            if let Err(e) = host.validate_config(&name, &config).await {
                assert!(
                    !error_text(&e).contains(MARKER),
                    "{name}: the error about {field:?} quotes its value: {e}"
                );
                assert!(
                    matches!(e, ProviderError::InvalidConfig(_)),
                    "{name}: a malformed {field:?} is invalid-config, not {e:?}"
                );
            }
        }
    }
}
