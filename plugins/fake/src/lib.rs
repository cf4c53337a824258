//! ESO's `fake` provider as an esox plugin: the values live in the store manifest itself.
//!
//! For tests, demos and trying esox without a cloud account. Behaviour follows ESO's fake
//! provider (docs/eso-compat.md): entries are looked up by key *and* version (both must match; no
//! version means the entry without one), `property` uses ESO's JSON semantics and a missing
//! property is `not-found`, `find` supports `name` only and returns each matching key's highest
//! version, and `validationResult` (0 Ready, 1 Unknown, 2 Error) drives `validate`.

use esox_plugin_sdk::{
    Capabilities, Error, FindQuery, PluginInfo, Provider, RemoteRef, SecretClient, SecretMap,
    Settings, StoreContext, Validation, export_provider, json, serde_json,
};
use serde::Deserialize;

/// `spec.provider.fake`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FakeConfig {
    #[serde(default)]
    data: Vec<FakeEntry>,
    #[serde(default)]
    validation_result: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FakeEntry {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    version: String,
    /// Deprecated in ESO but still accepted: a map rendered as a JSON object value.
    #[serde(default)]
    value_map: Option<std::collections::BTreeMap<String, String>>,
}

struct Fake;

struct FakeClient {
    config: FakeConfig,
}

impl Provider for Fake {
    type Client = FakeClient;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "fake",
            env!("CARGO_PKG_VERSION"),
            "Values from the store manifest (ESO's fake provider), for tests and demos",
        )
        .capabilities(Capabilities::READ | Capabilities::FIND)
        .config_schema(serde_json::json!({
            "type": "object",
            "properties": {
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key"],
                        "properties": {
                            "key": {"type": "string"},
                            "value": {"type": "string"},
                            "version": {"type": "string"},
                            "valueMap": {"type": "object", "additionalProperties": {"type": "string"}}
                        }
                    }
                },
                "validationResult": {"type": "integer", "enum": [0, 1, 2]}
            }
        }))
    }

    fn validate_config(config: &serde_json::Value) -> Result<(), Error> {
        let config = parse(config)?;
        for (pos, entry) in config.data.iter().enumerate() {
            if entry.key.is_empty() {
                return Err(Error::invalid_config(
                    format!("data[{pos}].key"),
                    "must be set",
                ));
            }
            if entry.value.is_empty() && entry.value_map.is_none() {
                return Err(Error::invalid_config(
                    format!("data[{pos}]"),
                    "at least one of value and valueMap must be set",
                ));
            }
        }
        Ok(())
    }

    fn open(
        config: serde_json::Value,
        _settings: Settings,
        _store: &StoreContext,
    ) -> Result<FakeClient, Error> {
        Ok(FakeClient {
            config: parse(&config)?,
        })
    }
}

fn parse(config: &serde_json::Value) -> Result<FakeConfig, Error> {
    // The config holds values: its errors name fields and never quote what they hold.
    Ok(esox_plugin_sdk::config::from_value(config)?)
}

impl FakeEntry {
    fn value(&self) -> Vec<u8> {
        match &self.value_map {
            Some(map) if self.value.is_empty() => serde_json::to_vec(map).unwrap_or_default(),
            _ => self.value.clone().into_bytes(),
        }
    }
}

impl FakeClient {
    fn entry(&self, remote: &RemoteRef) -> Option<&FakeEntry> {
        let version = remote.version.as_deref().unwrap_or("");
        self.config
            .data
            .iter()
            .find(|e| e.key == remote.key && e.version == version)
    }
}

impl SecretClient for FakeClient {
    fn validate(&self) -> Result<Validation, Error> {
        match self.config.validation_result {
            None | Some(0) => Ok(Validation::Ready),
            Some(1) => Ok(Validation::Unknown),
            Some(_) => Err(Error::backend("unable to validate")),
        }
    }

    fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        let entry = self.entry(remote).ok_or(Error::NotFound)?;
        self.select_property(entry.value(), remote)
    }

    /// ESO's fake provider answers a missing property with "not found", unlike real backends.
    fn select_property(&self, value: Vec<u8>, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        match &remote.property {
            None => Ok(value),
            Some(p) => json::property(&value, p).map_err(|_| Error::NotFound),
        }
    }

    fn get_all_secrets(&self, query: &FindQuery) -> Result<SecretMap, Error> {
        let Some(pattern) = &query.name_regexp else {
            return Err(Error::unsupported(
                "the fake provider can only find by name",
            ));
        };
        let matcher = regex::Regex::new(pattern).map_err(|e| {
            Error::invalid_config("", format!("find.name.regexp is not a valid regexp: {e}"))
        })?;
        // Highest version (string order, as ESO compares them) of each matching key.
        let mut latest: std::collections::BTreeMap<&str, &FakeEntry> = Default::default();
        for entry in self.config.data.iter().filter(|e| matcher.is_match(&e.key)) {
            match latest.get(entry.key.as_str()) {
                Some(seen) if seen.version >= entry.version => {}
                _ => {
                    latest.insert(&entry.key, entry);
                }
            }
        }
        Ok(latest
            .into_iter()
            .map(|(k, e)| (k.to_string(), e.value()))
            .collect())
    }
}

export_provider!(Fake);
