//! `esox render`: render an ExternalSecret offline and print the Secret it would produce.
//!
//! For checking templates in a pipeline without a cluster or a backend. The remote values come
//! from VALUES.json and are served by the real `fake` plugin through the real plugin host, so
//! properties, maps and `find` behave as they do in a cluster; the ExternalSecret then goes
//! through the same pure pipeline (`esox-sync`) the controller uses. Store references are not
//! resolved: every entry reads from VALUES.json.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use esox_api::ExternalSecret;
use esox_plugin_host::{EgressGrant, NoServices, StoreContext, StoreSpec};
use esox_sync::{Answer, Answers, ProviderOp, TargetWrite, TemplateInputs};

use crate::plugins::{self, PluginOptions};

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The ExternalSecret manifest (YAML or JSON).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Remote values: a JSON object mapping each remote key to its value, a string or an object
    /// (an object stands for a JSON secret, so `property` and `dataFrom.extract` work).
    #[arg(long)]
    pub values: PathBuf,
    /// ConfigMaps and Secrets that `templateFrom` reads:
    /// `{"configMaps": {"NAME": {"KEY": "VALUE"}}, "secrets": {"NAME": {"KEY": "VALUE"}}}`.
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    #[command(flatten)]
    pub plugins: PluginOptions,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inputs {
    #[serde(default)]
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    secrets: BTreeMap<String, BTreeMap<String, String>>,
}

pub async fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let es: ExternalSecret = serde_yaml::from_str(&text)
        .with_context(|| format!("{} is not a valid ExternalSecret", args.file.display()))?;
    let values: BTreeMap<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(&args.values)
            .with_context(|| format!("cannot read {}", args.values.display()))?,
    )
    .with_context(|| {
        format!(
            "{}: expected a JSON object of remote key -> value",
            args.values.display()
        )
    })?;
    let inputs: Inputs = match &args.inputs {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .with_context(|| {
            format!(
                "{}: expected {{\"configMaps\": ..., \"secrets\": ...}}",
                p.display()
            )
        })?,
        None => Inputs::default(),
    };

    let plan = esox_sync::plan(&es).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data: Vec<serde_json::Value> = values
        .iter()
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            serde_json::json!({"key": key, "value": value})
        })
        .collect();
    let host = plugins::host(&args.plugins).await?;
    let store = host.open_store(StoreSpec {
        context: StoreContext::cluster_secret_store(
            &format!("render/{}", args.values.display()),
            None,
        ),
        plugin: "fake".into(),
        config: serde_json::json!({ "data": data }),
        settings: vec![],
        egress: EgressGrant::default(),
        services: Arc::new(NoServices),
        ambient: None,
        api_audience_tokens: false,
    })?;
    let mut answers = Answers::new();
    for request in &plan.requests {
        let answer = match &request.op {
            ProviderOp::GetSecret(r) => store.get_secret(r).await.map(Answer::Value),
            ProviderOp::GetSecretMap(r) => store.get_secret_map(r).await.map(Answer::Map),
            ProviderOp::GetAllSecrets(q) => store.get_all_secrets(q).await.map(Answer::Map),
        };
        answers.insert(request.clone(), answer);
    }
    let template_inputs = TemplateInputs {
        config_maps: inputs.config_maps,
        secrets: inputs
            .secrets
            .into_iter()
            .map(|(name, data)| {
                (
                    name,
                    data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect(),
                )
            })
            .collect(),
    };
    for source in &plan.template_sources {
        let (kind, name, present) = match source {
            esox_sync::TemplateSource::ConfigMap(n) => {
                ("ConfigMap", n, template_inputs.config_maps.contains_key(n))
            }
            esox_sync::TemplateSource::Secret(n) => {
                ("Secret", n, template_inputs.secrets.contains_key(n))
            }
        };
        if !present {
            anyhow::bail!("templateFrom reads {kind} {name:?}: give its data with --inputs");
        }
    }
    // What the controller writes with --unsafe-allow-generic-targets: a ConfigMap target is
    // rendered as the ConfigMap, other kinds are refused with the controller's message.
    let kind = esox_controller::target::TargetKind::of(&es, true)
        .map_err(|why| anyhow::anyhow!("invalid generic target: {why}"))?;
    let outcome = esox_sync::build(&es, &answers, &template_inputs, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The same write plan, and so the same Secret object, the controller applies.
    let plan = esox_sync::plan_write(&es, &outcome, None, None, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match plan.target {
        TargetWrite::Apply(apply) => {
            print!("{}", serde_yaml::to_string(&kind.manifest(apply.manifest))?);
            for message in outcome.missing_provider_secrets {
                eprintln!("note: {message}");
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("esox: no Secret would be written: {:?}", outcome.action);
            Ok(ExitCode::from(3))
        }
    }
}
