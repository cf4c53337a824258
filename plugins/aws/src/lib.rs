//! Spike: the AWS SDK on wasm32-wasip2.
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use esox_plugin_sdk::{
    Error, PluginInfo, Provider, RemoteRef, SecretClient, Settings, export_provider, serde_json,
};

struct Aws;
struct AwsClient {
    sm: aws_sdk_secretsmanager::Client,
    _ssm: aws_sdk_ssm::Client,
    _sts: aws_sdk_sts::Client,
}

impl Provider for Aws {
    type Client = AwsClient;
    fn info() -> PluginInfo {
        PluginInfo::new("aws", env!("CARGO_PKG_VERSION"), "AWS")
    }
    fn open(_config: serde_json::Value, _settings: Settings) -> Result<AwsClient, Error> {
        let creds = Credentials::new("a", "b", None, None, "esox");
        let sm = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds.clone())
            .http_client(aws_smithy_wasm::wasi::WasiHttpClientBuilder::new().build())
            .sleep_impl(aws_smithy_wasm::wasi::WasiSleep)
            .build();
        let ssm = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .credentials_provider(creds.clone())
            .http_client(aws_smithy_wasm::wasi::WasiHttpClientBuilder::new().build())
            .sleep_impl(aws_smithy_wasm::wasi::WasiSleep)
            .build();
        let sts = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .http_client(aws_smithy_wasm::wasi::WasiHttpClientBuilder::new().build())
            .sleep_impl(aws_smithy_wasm::wasi::WasiSleep)
            .build();
        Ok(AwsClient {
            sm: aws_sdk_secretsmanager::Client::from_conf(sm),
            _ssm: aws_sdk_ssm::Client::from_conf(ssm),
            _sts: aws_sdk_sts::Client::from_conf(sts),
        })
    }
}

impl SecretClient for AwsClient {
    fn get_secret(&self, remote: &RemoteRef) -> Result<Vec<u8>, Error> {
        esox_plugin_sdk::block_on(async {
            let out = self
                .sm
                .get_secret_value()
                .secret_id(&remote.key)
                .send()
                .await
                .map_err(|e| Error::unavailable(format!("{e}")))?;
            Ok(out.secret_string().unwrap_or_default().as_bytes().to_vec())
        })
    }
}

export_provider!(Aws);
