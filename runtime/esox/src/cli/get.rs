//! `esox get`: run a SecretStore manifest's provider locally and print one value.
//!
//! A debugging tool for store configs and plugins: no cluster, the same plugin, sandbox and
//! egress rules as the controller. The value goes to stdout and nowhere else.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use esox_plugin_host::{HostServices, StoreClient, StoreContext, StoreSpec};

use super::secrets_file::{LocalServices, NoCluster};
use esox_provider::{MetadataPolicy, RemoteRef};

use crate::plugins::{self, PluginOptions};

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// A SecretStore or ClusterSecretStore manifest (YAML or JSON).
    #[arg(long)]
    pub store: PathBuf,
    /// The remote key.
    #[arg(long)]
    pub key: String,
    /// A property of a JSON value (ESO semantics: `name.first`, `friends.1.first`).
    #[arg(long)]
    pub property: Option<String>,
    /// A version or stage (`AWSPREVIOUS`, `uuid/<id>`, ...).
    #[arg(long)]
    pub version: Option<String>,
    /// Print the store's metadata (tags) instead of the value (ESO's metadataPolicy Fetch).
    #[arg(long)]
    pub metadata: bool,
    /// Values for the Secrets/ConfigMaps the store references (e.g. auth.secretRef), as
    /// `secrets: {NAME: {KEY: VALUE}}` YAML. Without it, such references are refused.
    #[arg(long)]
    pub secrets_file: Option<PathBuf>,
    #[command(flatten)]
    pub plugins: PluginOptions,
}

/// The provider name and config of a store manifest: `spec.provider` has exactly one key.
pub fn provider_of_manifest(
    text: &str,
) -> anyhow::Result<(String, serde_json::Value, StoreContext)> {
    let doc: serde_json::Value =
        serde_yaml::from_str(text).context("the store manifest is not valid YAML")?;
    let kind = doc["kind"].as_str().unwrap_or_default();
    if kind != "SecretStore" && kind != "ClusterSecretStore" {
        anyhow::bail!("the manifest is a {kind:?}, expected a SecretStore or ClusterSecretStore");
    }
    let name = doc["metadata"]["name"].as_str().unwrap_or("unnamed");
    let context = if kind == "SecretStore" {
        StoreContext::secret_store(
            doc["metadata"]["namespace"].as_str().unwrap_or("default"),
            name,
        )
    } else {
        StoreContext::cluster_secret_store(name, None)
    };
    let provider = doc["spec"]["provider"]
        .as_object()
        .context("the store has no spec.provider")?;
    let mut entries = provider.iter();
    match (entries.next(), entries.next()) {
        (Some((plugin, config)), None) => Ok((plugin.clone(), config.clone(), context)),
        (None, _) => {
            anyhow::bail!("spec.provider is empty: name one provider, e.g. `fake:` or `aws:`")
        }
        (Some(_), Some(_)) => anyhow::bail!(
            "spec.provider names several providers ({}); a store uses exactly one",
            provider.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Open the store a manifest describes, locally: the same plugin, sandbox and egress rules as
/// the controller; references resolve from `secrets_file` (none without it). Returns the
/// provider's name and the store client.
pub async fn open_local_store(
    store: &Path,
    secrets_file: Option<&Path>,
    options: &PluginOptions,
) -> anyhow::Result<(String, StoreClient)> {
    let text = std::fs::read_to_string(store)
        .with_context(|| format!("cannot read {}", store.display()))?;
    let (plugin, config, context) =
        provider_of_manifest(&text).with_context(|| store.display().to_string())?;
    let host = plugins::host(options).await?;
    let policy = options.policy()?;
    let meta = host
        .plugin(&plugin)
        .map(|p| p.meta.clone())
        .with_context(|| {
            format!("no plugin provides spec.provider.{plugin} (see `esox plugin list`)")
        })?;
    let services: Arc<dyn HostServices> = match secrets_file {
        Some(path) => Arc::new(LocalServices::from_file(path)?),
        None => Arc::new(NoCluster),
    };
    let client = host.open_store(StoreSpec {
        context,
        plugin: plugin.clone(),
        config,
        settings: policy.settings(&plugin),
        egress: policy.egress(&meta)?,
        services,
        ambient: policy.ambient(&meta),
        api_audience_tokens: policy.api_audience_allowed(&meta),
    })?;
    Ok((plugin, client))
}

pub async fn run(args: GetArgs) -> anyhow::Result<ExitCode> {
    let (plugin, store) =
        open_local_store(&args.store, args.secrets_file.as_deref(), &args.plugins).await?;
    let remote = RemoteRef {
        key: args.key.clone(),
        property: args.property.clone(),
        version: args.version.clone(),
        metadata_policy: if args.metadata {
            MetadataPolicy::Fetch
        } else {
            MetadataPolicy::None
        },
    };
    match store.get_secret(&remote).await {
        Ok(value) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&value)?;
            if std::io::IsTerminal::is_terminal(&out) {
                out.write_all(b"\n")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("esox: {plugin}: get-secret (key {:?}): {e}", args.key);
            Ok(ExitCode::from(2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_manifest_names_exactly_one_provider() {
        let ok = "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: s}\nspec:\n  provider:\n    fake:\n      data: []\n";
        let (plugin, config, context) = provider_of_manifest(ok).unwrap();
        assert_eq!(
            (plugin.as_str(), context.to_string().as_str()),
            ("fake", "SecretStore/default/s")
        );
        assert_eq!(config, serde_json::json!({"data": []}));

        let two = ok.replace("      data: []\n", "      data: []\n    aws: {}\n");
        assert!(
            provider_of_manifest(&two)
                .unwrap_err()
                .to_string()
                .contains("several providers")
        );
        let none = "kind: SecretStore\nspec:\n  provider: {}\n";
        assert!(
            provider_of_manifest(none)
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
        let es = "kind: ExternalSecret\nspec: {}\n";
        assert!(
            provider_of_manifest(es)
                .unwrap_err()
                .to_string()
                .contains("expected a SecretStore")
        );
    }
}
