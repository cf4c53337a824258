//! ESO's AWS provider as an esox plugin: AWS Secrets Manager, Systems Manager Parameter Store and
//! Certificate Manager through the AWS SDK for Rust, inside the wasm sandbox (HTTP over
//! wasi:http).
//!
//! The store spec is ESO's `spec.provider.aws` ([`config`]); credentials come only through the
//! host (a Secret's keys, a ServiceAccount token exchanged at STS, or for a store with no
//! `auth` the controller's ambient identity) and are cached per store ([`credentials`]); the
//! origins a store needs derive from its region and service ([`endpoint::origins`]); endpoints
//! for LocalStack and other AWS-compatible services are operator settings ([`endpoint`]); AWS
//! errors map to the contract in one place ([`errors`]).

pub mod certificatemanager;
pub mod client;
pub mod config;
pub mod credentials;
pub mod endpoint;
pub mod errors;
pub mod parameterstore;
pub mod secretsmanager;

use esox_plugin_sdk::{
    Capabilities, Error, PluginInfo, Provider, Reference, Settings, StoreContext, export_provider,
    serde_json,
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
            "AWS Secrets Manager, Parameter Store and Certificate Manager (ESO's aws provider)",
        )
        .capabilities(Capabilities::READ | Capabilities::FIND)
        .config_schema(config_schema())
        .default_egress(DEFAULT_EGRESS)
        .references(references())
        .ambient_identity(true)
    }

    fn validate_config(config: &serde_json::Value) -> Result<(), Error> {
        AwsConfig::parse(config).map(|_| ()).map_err(Error::from)
    }

    fn egress(config: &serde_json::Value, _settings: &Settings) -> Result<Vec<String>, Error> {
        // Endpoint settings (LocalStack) are granted by the host from the settings themselves.
        let config = AwsConfig::parse(config)?;
        Ok(endpoint::origins(&config.region, config.service))
    }

    fn open(
        config: serde_json::Value,
        settings: Settings,
        store: &StoreContext,
    ) -> Result<AwsClient, Error> {
        let mut config = AwsConfig::parse(&config)?;
        let namespace = store
            .namespace
            .as_deref()
            .or(store.referent_namespace.as_deref())
            .unwrap_or_default();
        let kind = if store.is_cluster_store() {
            "ClusterSecretStore"
        } else {
            "SecretStore"
        };
        config.apply_session_tag_policy(namespace, &store.name, kind);
        let endpoints = Endpoints::from_settings(&settings)
            .map_err(|e| Error::invalid_config("", e.to_string()))?;
        Ok(AwsClient::new(config, endpoints, store.clone()))
    }
}

/// Every origin the plugin may reach: the ceiling of what [`endpoint::origins`] answers.
pub const DEFAULT_EGRESS: [&str; 2] = ["https://*.amazonaws.com", "https://*.amazonaws.com.cn"];

/// Where `spec.provider.aws` references Kubernetes objects: the Secret keys of static
/// credentials and the ServiceAccount of IRSA-style web identity. The ServiceAccount's tokens
/// are for STS (`sts.amazonaws.com`); an audience named by the ServiceAccount's
/// `eks.amazonaws.com/audience` annotation must also be listed in the reference's `audiences`.
pub fn references() -> Vec<Reference> {
    vec![
        Reference::secret_key("auth.secretRef.accessKeyIDSecretRef"),
        Reference::secret_key("auth.secretRef.secretAccessKeySecretRef"),
        Reference::secret_key("auth.secretRef.sessionTokenSecretRef"),
        Reference::service_account(
            "auth.jwt.serviceAccountRef",
            [credentials::DEFAULT_AUDIENCE],
        ),
    ]
}

/// Compile a `find.name.regexp` (RE2 syntax in ESO; Rust's `regex` is RE2-compatible).
pub(crate) fn compile_regexp(pattern: Option<&str>) -> Result<Option<regex::Regex>, Error> {
    pattern
        .map(|p| {
            regex::Regex::new(p).map_err(|e| {
                Error::invalid_config(
                    "",
                    format!("find.name.regexp {p:?} is not a valid regexp: {e}"),
                )
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
            "service": {"type": "string", "enum": ["SecretsManager", "ParameterStore", "CertificateManager"]},
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
            "sessionTagsPolicy": {"type": "string", "enum": ["None", "Simple", "Custom"]},
            "customSessionTags": {"type": "object", "additionalProperties": {"type": "string"}},
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
        assert!(info.wants_ambient_identity);
    }

    #[test]
    fn info_declares_every_kubernetes_reference_of_the_schema() {
        let info = Aws::info();
        let paths: Vec<&str> = info.references.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "auth.secretRef.accessKeyIDSecretRef",
                "auth.secretRef.secretAccessKeySecretRef",
                "auth.secretRef.sessionTokenSecretRef",
                "auth.jwt.serviceAccountRef",
            ]
        );
        let sa = &info.references[3];
        assert!(matches!(
            sa.kind,
            esox_plugin_sdk::ReferenceKind::ServiceAccount
        ));
        assert_eq!(sa.audiences, ["sts.amazonaws.com"]);
        // Every declared path exists in the schema.
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        for path in paths {
            let mut node = &schema;
            for part in path.split('.') {
                node = &node["properties"][part];
            }
            assert!(node.is_object(), "{path} is not in the schema");
        }
    }

    #[test]
    fn egress_is_derived_from_the_region_and_service() {
        let config = serde_json::json!({"service": "ParameterStore", "region": "eu-west-1"});
        let origins = Aws::egress(&config, &Settings::default()).unwrap();
        assert!(origins.contains(&"https://ssm.eu-west-1.amazonaws.com".to_string()));
        assert!(!origins.iter().any(|o| o.contains("secretsmanager")));
        let bad = serde_json::json!({"service": "SecretsManager", "region": "nowhere"});
        assert!(matches!(
            Aws::egress(&bad, &Settings::default()),
            Err(Error::InvalidConfig(c)) if c.field == "region"
        ));
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
