//! ESO's AWS provider as an esox plugin: AWS Secrets Manager and Systems Manager Parameter Store
//! through the AWS SDK for Rust, inside the wasm sandbox (HTTP over wasi:http).
//!
//! The store spec is ESO's `spec.provider.aws` ([`config`]); credentials come only through the
//! host (a Secret's keys, or a ServiceAccount token exchanged at STS) and are cached per store
//! ([`credentials`]); endpoints for LocalStack and other AWS-compatible services are operator
//! settings ([`endpoint`]); AWS errors map to the contract in one place ([`errors`]).

pub mod client;
pub mod config;
pub mod credentials;
pub mod endpoint;
pub mod errors;
pub mod parameterstore;
pub mod secretsmanager;

use esox_plugin_sdk::{
    Capabilities, Error, PluginInfo, Provider, Settings, export_provider, serde_json,
};

use client::AwsClient;
use config::AwsConfig;
use endpoint::Endpoints;

/// The `aws` provider.
pub struct Aws;

impl Provider for Aws {
    type Client = AwsClient;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "aws",
            env!("CARGO_PKG_VERSION"),
            "AWS Secrets Manager and Parameter Store (ESO's aws provider)",
        )
        .capabilities(Capabilities::READ | Capabilities::FIND)
        .config_schema(config_schema())
        .default_egress(["https://*.amazonaws.com", "https://*.amazonaws.com.cn"])
    }

    fn validate_config(config: &serde_json::Value) -> Result<(), Error> {
        AwsConfig::parse(config)
            .map(|_| ())
            .map_err(|e| Error::invalid_config(e.to_string()))
    }

    fn open(config: serde_json::Value, settings: Settings) -> Result<AwsClient, Error> {
        let config = AwsConfig::parse(&config).map_err(|e| Error::invalid_config(e.to_string()))?;
        let endpoints = Endpoints::from_settings(&settings)
            .map_err(|e| Error::invalid_config(e.to_string()))?;
        Ok(AwsClient::new(config, endpoints))
    }
}

/// Compile a `find.name.regexp` (RE2 syntax in ESO; Rust's `regex` is RE2-compatible).
pub(crate) fn compile_regexp(pattern: Option<&str>) -> Result<Option<regex::Regex>, Error> {
    pattern
        .map(|p| {
            regex::Regex::new(p).map_err(|e| {
                Error::invalid_config(format!("find.name.regexp {p:?} is not a valid regexp: {e}"))
            })
        })
        .transpose()
}

/// The JSON Schema of `spec.provider.aws`, as ESO's CRD defines it.
pub fn config_schema() -> serde_json::Value {
    let secret_key_ref = serde_json::json!({
        "type": "object",
        "required": ["name", "key"],
        "properties": {
            "name": {"type": "string"},
            "key": {"type": "string"},
            "namespace": {"type": "string"}
        }
    });
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["service", "region"],
        "properties": {
            "service": {"type": "string", "enum": ["SecretsManager", "ParameterStore"]},
            "region": {"type": "string", "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"},
            "role": {"type": "string"},
            "additionalRoles": {"type": "array", "items": {"type": "string"}},
            "externalID": {"type": "string"},
            "sessionTags": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "value"],
                    "properties": {"key": {"type": "string"}, "value": {"type": "string"}}
                }
            },
            "sessionTagsPolicy": {"type": "string", "enum": ["None"]},
            "transitiveTagKeys": {"type": "array", "items": {"type": "string"}},
            "prefix": {"type": "string"},
            "retrySettings": {
                "type": "object",
                "properties": {
                    "maxRetries": {"type": "integer", "minimum": 0},
                    "retryInterval": {"type": "string"}
                }
            },
            "secretsManager": {
                "type": "object",
                "properties": {
                    "forceDeleteWithoutRecovery": {"type": "boolean"},
                    "recoveryWindowInDays": {"type": "integer"}
                }
            },
            "auth": {
                "type": "object",
                "properties": {
                    "secretRef": {
                        "type": "object",
                        "required": ["accessKeyIDSecretRef", "secretAccessKeySecretRef"],
                        "properties": {
                            "accessKeyIDSecretRef": secret_key_ref,
                            "secretAccessKeySecretRef": secret_key_ref,
                            "sessionTokenSecretRef": secret_key_ref
                        }
                    },
                    "jwt": {
                        "type": "object",
                        "properties": {
                            "serviceAccountRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "namespace": {"type": "string"},
                                    "audiences": {"type": "array", "items": {"type": "string"}}
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

export_provider!(Aws);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_declares_read_and_find_and_the_aws_origins() {
        let info = Aws::info();
        assert_eq!(info.name, "aws");
        assert_eq!(info.capabilities, Capabilities::READ | Capabilities::FIND);
        assert_eq!(
            info.default_egress,
            ["https://*.amazonaws.com", "https://*.amazonaws.com.cn"]
        );
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(schema["properties"]["service"]["enum"][1], "ParameterStore");
    }

    #[test]
    fn an_invalid_find_regexp_is_an_invalid_config_error() {
        assert!(compile_regexp(None).unwrap().is_none());
        assert!(compile_regexp(Some("^db/.*")).unwrap().is_some());
        assert!(matches!(
            compile_regexp(Some("(")),
            Err(Error::InvalidConfig(_))
        ));
    }
}
