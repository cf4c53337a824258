//! `esox plugin list` and `esox plugin inspect`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use esox_plugin_host::{PluginMeta, PluginOrigin, References};

use crate::plugins::{self, PluginOptions};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List the embedded plugins and those of --plugin-dir: name, contract, capabilities, sha256.
    List {
        #[command(flatten)]
        plugins: PluginOptions,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read a plugin file and describe it (contract version, capabilities, config schema,
    /// requested egress) without registering it.
    Inspect {
        /// The plugin component (`.wasm`).
        file: PathBuf,
        #[command(flatten)]
        plugins: PluginOptions,
    },
}

pub async fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::List {
            plugins: opts,
            json,
        } => {
            let host = plugins::host(&opts).await?;
            let all = host.plugins();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&all.iter().map(to_json).collect::<Vec<_>>())?
                );
            } else {
                println!(
                    "{:<10} {:<9} {:<9} {:<16} {:<10} SHA256",
                    "NAME", "VERSION", "CONTRACT", "CAPABILITIES", "ORIGIN"
                );
                for m in &all {
                    let origin = match &m.origin {
                        PluginOrigin::Embedded => "embedded".to_string(),
                        PluginOrigin::File(p) => p.display().to_string(),
                    };
                    println!(
                        "{:<10} {:<9} {:<9} {:<16} {:<10} {}",
                        m.name,
                        m.version,
                        m.contract,
                        m.capabilities.join(","),
                        origin,
                        m.sha256
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Inspect {
            file,
            plugins: opts,
        } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let host = plugins::host(&PluginOptions {
                plugin_dir: None,
                ..opts
            })
            .await?;
            let meta = host
                .inspect(PluginOrigin::File(file.clone()), &bytes)
                .await?;
            println!("{}", serde_json::to_string_pretty(&to_json(&meta))?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn to_json(m: &PluginMeta) -> serde_json::Value {
    serde_json::json!({
        "name": m.name,
        "version": m.version,
        "description": m.description,
        "contract": m.contract.to_string(),
        "capabilities": m.capabilities,
        "sha256": m.sha256,
        "origin": match &m.origin { PluginOrigin::Embedded => "embedded".to_string(), PluginOrigin::File(p) => p.display().to_string() },
        "defaultEgress": m.default_egress,
        "references": match &m.references {
            References::Declared(paths) => serde_json::json!(paths
                .iter()
                .map(|p| serde_json::json!({
                    "kind": p.kind.as_str(),
                    "path": p.path,
                    "audiences": p.audiences,
                    "requiredLabels": p.required_labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()),
            References::InferredFromConfig => serde_json::json!(
                "inferred from the store config (contract 0.1: every {name, key} object and serviceAccountRef it names)"
            ),
        },
        "wantsAmbientIdentity": m.wants_ambient_identity,
        "clientCertificates": m
            .client_certificates
            .iter()
            .map(|c| serde_json::json!({"certificate": c.certificate, "privateKey": c.private_key}))
            .collect::<Vec<_>>(),
        "configSchema": serde_json::from_str::<serde_json::Value>(&m.config_schema).unwrap_or(serde_json::Value::Null),
        "loadMillis": m.load_time.as_secs_f64() * 1e3,
        "precompiled": !m.compiled,
    })
}
