//! `esox push` and `esox delete`: write or delete one value through a SecretStore manifest's
//! provider, locally (ESO's PushSecret and DeleteSecret calls, one at a time).
//!
//! For seeding a backend, and for trying a plugin's write path before a PushSecret relies on
//! it: the same plugin, sandbox and egress rules as the controller. The value is read from a
//! file or stdin and never printed.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use esox_provider::PushRef;

use super::get::open_local_store;
use crate::plugins::PluginOptions;

/// Where a value is written, in ESO's terms: a PushSecret's `remoteRef` and metadata.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// A SecretStore or ClusterSecretStore manifest (YAML or JSON).
    #[arg(long)]
    pub store: PathBuf,
    /// The remote key (ESO's `remoteRef.remoteKey`).
    #[arg(long)]
    pub key: String,
    /// Write (or delete) this property of a JSON object, keeping the others
    /// (ESO's `remoteRef.property`).
    #[arg(long)]
    pub property: Option<String>,
    /// The provider's push metadata (ESO's `data[].metadata`), as JSON or YAML.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Values for the Secrets/ConfigMaps the store references (e.g. auth.tokenSecretRef), as
    /// `secrets: {NAME: {KEY: VALUE}}` YAML. Without it, such references are refused.
    #[arg(long)]
    pub secrets_file: Option<PathBuf>,
    #[command(flatten)]
    pub plugins: PluginOptions,
}

impl Target {
    fn push_ref(&self) -> anyhow::Result<PushRef> {
        let metadata = match &self.metadata {
            None => None,
            Some(text) => {
                let doc: serde_json::Value =
                    serde_yaml::from_str(text).context("--metadata is neither JSON nor YAML")?;
                Some(doc.to_string())
            }
        };
        Ok(PushRef {
            remote_key: self.key.clone(),
            property: self.property.clone(),
            metadata,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub target: Target,
    /// Read the value from this file (default: stdin).
    #[arg(long)]
    pub value_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: Target,
}

pub async fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let remote = args.target.push_ref()?;
    let value = match &args.value_file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => {
            let mut value = Vec::new();
            std::io::stdin()
                .read_to_end(&mut value)
                .context("cannot read the value from stdin")?;
            value
        }
    };
    let (plugin, store) = open_local_store(
        &args.target.store,
        args.target.secrets_file.as_deref(),
        &args.target.plugins,
    )
    .await?;
    match store.push_secret(&remote, &value).await {
        Ok(()) => {
            eprintln!("esox: {plugin}: pushed {}", describe(&remote));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("esox: {plugin}: push-secret ({}): {e}", describe(&remote));
            Ok(ExitCode::from(2))
        }
    }
}

pub async fn delete(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let remote = args.target.push_ref()?;
    let (plugin, store) = open_local_store(
        &args.target.store,
        args.target.secrets_file.as_deref(),
        &args.target.plugins,
    )
    .await?;
    match store.delete_secret(&remote).await {
        Ok(()) => {
            eprintln!("esox: {plugin}: deleted {}", describe(&remote));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("esox: {plugin}: delete-secret ({}): {e}", describe(&remote));
            Ok(ExitCode::from(2))
        }
    }
}

/// `key "k"` or `key "k", property "p"`: names only, never the value.
fn describe(remote: &PushRef) -> String {
    match &remote.property {
        Some(p) => format!("key {:?}, property {p:?}", remote.remote_key),
        None => format!("key {:?}", remote.remote_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn metadata_is_passed_as_json_whether_written_as_json_or_yaml() {
        let cli = crate::cli::Cli::try_parse_from([
            "esox",
            "push",
            "--store",
            "s.yaml",
            "--key",
            "app/db",
            "--property",
            "password",
            "--metadata",
            "apiVersion: kubernetes.external-secrets.io/v1alpha1\nkind: PushSecretMetadata\nspec: {labels: {team: a}}",
        ])
        .unwrap();
        let crate::cli::Command::Push(args) = cli.command else {
            panic!("not push")
        };
        let remote = args.target.push_ref().unwrap();
        assert_eq!(remote.remote_key, "app/db");
        assert_eq!(remote.property.as_deref(), Some("password"));
        let metadata: serde_json::Value =
            serde_json::from_str(remote.metadata.as_deref().unwrap()).unwrap();
        assert_eq!(metadata["spec"]["labels"]["team"], "a");
        assert_eq!(
            describe(&remote),
            "key \"app/db\", property \"password\"",
            "names only"
        );
        let bad = crate::cli::Cli::try_parse_from([
            "esox",
            "delete",
            "--store",
            "s.yaml",
            "--key",
            "k",
            "--metadata",
            "{not: [closed",
        ])
        .unwrap();
        let crate::cli::Command::Delete(args) = bad.command else {
            panic!("not delete")
        };
        assert!(args.target.push_ref().is_err());
    }
}
