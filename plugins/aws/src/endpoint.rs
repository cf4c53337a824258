//! AWS-compatible endpoints (LocalStack and others) chosen by the operator through plugin
//! settings, never by the store manifest: `endpoint` for every service (like
//! `AWS_ENDPOINT_URL`), `endpoint.secretsmanager`, `endpoint.ssm`, `endpoint.acm`,
//! `endpoint.sts` per service.
//! The host adds these origins to the egress allow-list itself.
//!
//! Without overrides, a store reaches the AWS endpoints of its region and service:
//! [`origins`] derives them from the config (the store's `egress`).

use esox_plugin_sdk::Settings;

use crate::config::Service;

/// The origins a store in `region` reading `service` needs: the service's regional endpoint
/// and its FIPS variant, and STS (regional, FIPS, and the global endpoint) for web identity and
/// role assumption. China regions (`cn-*`) are in the `amazonaws.com.cn` domain, which has
/// neither FIPS endpoints nor a global STS.
pub fn origins(region: &str, service: Service) -> Vec<String> {
    let prefix = match service {
        Service::SecretsManager => "secretsmanager",
        Service::ParameterStore => "ssm",
        Service::CertificateManager => "acm",
    };
    if region.starts_with("cn-") {
        return vec![
            format!("https://{prefix}.{region}.amazonaws.com.cn"),
            format!("https://sts.{region}.amazonaws.com.cn"),
        ];
    }
    vec![
        format!("https://{prefix}.{region}.amazonaws.com"),
        format!("https://{prefix}-fips.{region}.amazonaws.com"),
        format!("https://sts.{region}.amazonaws.com"),
        format!("https://sts-fips.{region}.amazonaws.com"),
        "https://sts.amazonaws.com".to_string(),
    ]
}

/// The services the plugin talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsService {
    SecretsManager,
    Ssm,
    Acm,
    Sts,
}

impl AwsService {
    /// The settings key of this service's override.
    pub fn setting(self) -> &'static str {
        match self {
            AwsService::SecretsManager => "endpoint.secretsmanager",
            AwsService::Ssm => "endpoint.ssm",
            AwsService::Acm => "endpoint.acm",
            AwsService::Sts => "endpoint.sts",
        }
    }
}

/// Endpoint overrides, validated once when the client opens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoints {
    all: Option<String>,
    secretsmanager: Option<String>,
    ssm: Option<String>,
    acm: Option<String>,
    sts: Option<String>,
}

/// A setting that is not an http(s) URL.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "plugin setting {key}={value:?} is not an endpoint URL: write http(s)://host[:port], e.g. http://localstack:4566"
)]
pub struct EndpointError {
    pub key: String,
    pub value: String,
}

impl Endpoints {
    /// Read the overrides from the operator's settings.
    pub fn from_settings(settings: &Settings) -> Result<Endpoints, EndpointError> {
        let read = |key: &str| -> Result<Option<String>, EndpointError> {
            match settings.get(key).map(str::trim) {
                None | Some("") => Ok(None),
                Some(url) if is_endpoint_url(url) => {
                    Ok(Some(url.trim_end_matches('/').to_string()))
                }
                Some(url) => Err(EndpointError {
                    key: key.to_string(),
                    value: url.to_string(),
                }),
            }
        };
        Ok(Endpoints {
            all: read("endpoint")?,
            secretsmanager: read(AwsService::SecretsManager.setting())?,
            ssm: read(AwsService::Ssm.setting())?,
            acm: read(AwsService::Acm.setting())?,
            sts: read(AwsService::Sts.setting())?,
        })
    }

    /// The URL to use for `service`, if overridden: the per-service setting wins over `endpoint`.
    pub fn for_service(&self, service: AwsService) -> Option<&str> {
        let specific = match service {
            AwsService::SecretsManager => &self.secretsmanager,
            AwsService::Ssm => &self.ssm,
            AwsService::Acm => &self.acm,
            AwsService::Sts => &self.sts,
        };
        specific.as_deref().or(self.all.as_deref())
    }
}

fn is_endpoint_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split('/').next().unwrap_or("");
            !host.is_empty() && !host.contains(char::is_whitespace) && !host.contains('@')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn origins_follow_the_region_and_service() {
        assert_eq!(
            origins("eu-west-1", Service::SecretsManager),
            [
                "https://secretsmanager.eu-west-1.amazonaws.com",
                "https://secretsmanager-fips.eu-west-1.amazonaws.com",
                "https://sts.eu-west-1.amazonaws.com",
                "https://sts-fips.eu-west-1.amazonaws.com",
                "https://sts.amazonaws.com",
            ]
        );
        assert_eq!(
            origins("us-gov-west-1", Service::ParameterStore),
            [
                "https://ssm.us-gov-west-1.amazonaws.com",
                "https://ssm-fips.us-gov-west-1.amazonaws.com",
                "https://sts.us-gov-west-1.amazonaws.com",
                "https://sts-fips.us-gov-west-1.amazonaws.com",
                "https://sts.amazonaws.com",
            ]
        );
        assert_eq!(
            origins("eu-west-1", Service::CertificateManager)[..2],
            [
                "https://acm.eu-west-1.amazonaws.com",
                "https://acm-fips.eu-west-1.amazonaws.com",
            ]
        );
        assert_eq!(
            origins("cn-northwest-1", Service::SecretsManager),
            [
                "https://secretsmanager.cn-northwest-1.amazonaws.com.cn",
                "https://sts.cn-northwest-1.amazonaws.com.cn",
            ]
        );
    }

    #[test]
    fn origins_stay_within_the_default_egress() {
        let within = |origin: &str| {
            let host = origin.strip_prefix("https://").unwrap();
            host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
        };
        for region in ["us-east-1", "eu-central-2", "cn-north-1", "ap-southeast-7"] {
            for service in [Service::SecretsManager, Service::ParameterStore] {
                for origin in origins(region, service) {
                    assert!(within(&origin), "{origin}");
                }
            }
        }
        assert_eq!(
            crate::DEFAULT_EGRESS,
            ["https://*.amazonaws.com", "https://*.amazonaws.com.cn"]
        );
    }

    #[test]
    fn no_settings_means_the_real_aws_endpoints() {
        let e = Endpoints::from_settings(&settings(&[])).unwrap();
        assert_eq!(e.for_service(AwsService::SecretsManager), None);
        assert_eq!(e.for_service(AwsService::Sts), None);
    }

    #[test]
    fn endpoint_applies_to_every_service() {
        let e =
            Endpoints::from_settings(&settings(&[("endpoint", "http://127.0.0.1:4566/")])).unwrap();
        for s in [
            AwsService::SecretsManager,
            AwsService::Ssm,
            AwsService::Acm,
            AwsService::Sts,
        ] {
            assert_eq!(e.for_service(s), Some("http://127.0.0.1:4566"));
        }
    }

    #[test]
    fn a_per_service_endpoint_wins_over_the_global_one() {
        let e = Endpoints::from_settings(&settings(&[
            ("endpoint", "http://localstack:4566"),
            ("endpoint.sts", "https://sts.internal.example"),
        ]))
        .unwrap();
        assert_eq!(
            e.for_service(AwsService::Sts),
            Some("https://sts.internal.example")
        );
        assert_eq!(
            e.for_service(AwsService::Ssm),
            Some("http://localstack:4566")
        );
    }

    #[test]
    fn endpoints_that_are_not_http_urls_are_refused_naming_the_setting() {
        let err = Endpoints::from_settings(&settings(&[("endpoint.ssm", "localstack:4566")]))
            .unwrap_err();
        assert_eq!(
            err,
            EndpointError {
                key: "endpoint.ssm".into(),
                value: "localstack:4566".into()
            }
        );
        assert!(Endpoints::from_settings(&settings(&[("endpoint", "http://")])).is_err());
        assert!(Endpoints::from_settings(&settings(&[("endpoint", "http://user@host")])).is_err());
    }
}
