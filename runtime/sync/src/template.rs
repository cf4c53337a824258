//! ESO's template semantics (`externalsecret_controller_template.go`,
//! `pkg/controllers/templating`, `runtime/template/v2`): which keys, labels and annotations a
//! templated Secret gets. Rendering itself is `esox-template`'s job.
//!
//! Order, as in ESO: provider keys (only with `mergePolicy: Merge`, or when there is neither
//! `data` nor `templateFrom`), then each `templateFrom` entry (configMap, secret, literal), then
//! `template.data` (which wins), then templated labels and annotations. Without a template the
//! provider data is copied and the ExternalSecret's own labels and annotations go onto the
//! Secret.

use std::collections::BTreeMap;

use esox_api::{
    DecodingStrategy, ExternalSecret, ExternalSecretTemplate, TemplateFrom, TemplateMergePolicy,
    TemplateScope, TemplateTarget,
};
use esox_provider::SecretMap;

use crate::SyncError;
use crate::decode::{decode, strategy_name};
use crate::redact::{cap_detail, yaml_error, yaml_kind};

/// The ConfigMaps and Secrets that `templateFrom` reads, as the controller fetched them from
/// the ExternalSecret's namespace. A name absent here does not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateInputs {
    /// ConfigMap name -> its `data`.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secret name -> its `data`.
    pub secrets: BTreeMap<String, SecretMap>,
}

/// What a template (or its absence) contributes to the Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub data: SecretMap,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub finalizers: Vec<String>,
    pub type_: Option<String>,
}

impl Rendered {
    fn apply(&mut self, target: TemplateTarget, key: String, value: Vec<u8>) {
        match target {
            TemplateTarget::Data => {
                self.data.insert(key, value);
            }
            TemplateTarget::Labels => {
                self.labels
                    .insert(key, String::from_utf8_lossy(&value).into_owned());
            }
            TemplateTarget::Annotations => {
                self.annotations
                    .insert(key, String::from_utf8_lossy(&value).into_owned());
            }
        }
    }
}

const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const BOOTSTRAP_TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";

/// ESO's `ValidateSecretTemplate`, re-run by the controller because a manifest may predate the
/// CRD's CEL rules.
pub fn validate_secret_template(template: &ExternalSecretTemplate) -> Result<(), SyncError> {
    let targets: Vec<TemplateTarget> = template
        .template_from
        .iter()
        .map(|tf| {
            tf.target()
                .map_err(|e| SyncError::InvalidTemplate(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    match template.type_.as_deref() {
        Some(BOOTSTRAP_TOKEN_TYPE) => {
            return Err(SyncError::InvalidTemplate(format!(
                "template.type={BOOTSTRAP_TOKEN_TYPE:?} is not allowed"
            )));
        }
        Some(SA_TOKEN_TYPE) => {
            if template
                .metadata
                .as_ref()
                .is_some_and(|m| m.annotations.contains_key(SA_NAME_ANNOTATION))
            {
                return Err(SyncError::InvalidTemplate(format!(
                    "template.type={SA_TOKEN_TYPE:?} with annotation {SA_NAME_ANNOTATION:?} is not allowed"
                )));
            }
            if targets.contains(&TemplateTarget::Annotations) {
                return Err(SyncError::InvalidTemplate(format!(
                    "template.type={SA_TOKEN_TYPE:?} with templateFrom target=\"Annotations\" is not allowed"
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

fn render(name: &str, src: &str, data: &SecretMap) -> Result<Vec<u8>, String> {
    esox_template::render_bytes(name, src, data)
        .map_err(|e| format!("unable to execute template at key {name}: {e}"))
}

fn decode_rendered(
    strategy: Option<DecodingStrategy>,
    key: &str,
    value: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let strategy = strategy.unwrap_or_default();
    decode(strategy, value).map_err(|e| {
        format!(
            "failed to decode rendered template value for key {key} with {}: {e}",
            strategy_name(strategy)
        )
    })
}

/// `KeysAndValues`: render, then read the output as a YAML map of string keys to string values
/// (Go's YAML->JSON->`map[string]string`, so numbers and booleans are refused).
fn keys_and_values(
    name: &str,
    src: &str,
    data: &SecretMap,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let out = render(name, src, data)?;
    // Parse to a generic value first: serde's typed errors quote what they refused, and the
    // output is built from secret values (`literal: "{{ .password }}"`).
    let parsed: serde_yaml::Value = serde_yaml::from_slice(&out).map_err(|e| {
        format!(
            "could not unmarshal template to 'map[string][]byte': {}",
            yaml_error(&e)
        )
    })?;
    let mapping = match parsed {
        serde_yaml::Value::Mapping(m) => m,
        serde_yaml::Value::Null => serde_yaml::Mapping::new(),
        other => {
            return Err(format!(
                "could not unmarshal template to 'map[string][]byte': the template rendered {}, not a map of keys to values",
                yaml_kind(&other)
            ));
        }
    };
    let mut pairs = Vec::new();
    for (key, value) in mapping {
        let key = match key {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(
                    "could not unmarshal template to 'map[string][]byte': keys must be strings"
                        .into(),
                );
            }
        };
        let value = match value {
            serde_yaml::Value::String(s) => s.into_bytes(),
            serde_yaml::Value::Null => Vec::new(),
            _ => {
                return Err(format!(
                    "could not unmarshal template to 'map[string][]byte': value of {key:?} is not a string (quote it)"
                ));
            }
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn apply_template_from(
    tf: &TemplateFrom,
    data: &SecretMap,
    inputs: &TemplateInputs,
    out: &mut Rendered,
) -> Result<(), SyncError> {
    let target = tf
        .target()
        .map_err(|e| SyncError::InvalidTemplate(e.to_string()))?;
    let fail = |message: String| SyncError::Template {
        message: cap_detail(format!("error fetching templateFrom data: {message}")),
    };
    let mut items: Vec<(String, Vec<u8>, TemplateScope)> = Vec::new();
    if let Some(cm) = &tf.config_map {
        let source =
            inputs
                .config_maps
                .get(&cm.name)
                .ok_or_else(|| SyncError::TemplateSourceMissing {
                    kind: "configmap",
                    name: cm.name.clone(),
                })?;
        for item in &cm.items {
            let value = source.get(&item.key).ok_or_else(|| {
                fail(format!(
                    "error in configmap {}: missing key {}",
                    cm.name, item.key
                ))
            })?;
            items.push((
                item.key.clone(),
                value.clone().into_bytes(),
                item.template_as,
            ));
        }
    }
    if let Some(secret) = &tf.secret {
        let source =
            inputs
                .secrets
                .get(&secret.name)
                .ok_or_else(|| SyncError::TemplateSourceMissing {
                    kind: "secret",
                    name: secret.name.clone(),
                })?;
        for item in &secret.items {
            let value = source.get(&item.key).ok_or_else(|| {
                fail(format!(
                    "error in secret {}: missing key {}",
                    secret.name, item.key
                ))
            })?;
            items.push((item.key.clone(), value.clone(), item.template_as));
        }
    }
    if let Some(literal) = &tf.literal {
        items.push((
            "literal".to_string(),
            literal.clone().into_bytes(),
            TemplateScope::KeysAndValues,
        ));
    }
    for (key, src, scope) in items {
        let src = String::from_utf8_lossy(&src).into_owned();
        match scope {
            TemplateScope::Values => {
                let value = render(&key, &src, data).map_err(fail)?;
                let value =
                    decode_rendered(tf.values_decoding_strategy, &key, value).map_err(fail)?;
                out.apply(target, key, value);
            }
            TemplateScope::KeysAndValues => {
                for (k, v) in keys_and_values(&key, &src, data).map_err(fail)? {
                    let v = decode_rendered(tf.values_decoding_strategy, &k, v).map_err(fail)?;
                    out.apply(target, k, v);
                }
            }
        }
    }
    Ok(())
}

fn render_map(
    map: &BTreeMap<String, String>,
    target: TemplateTarget,
    data: &SecretMap,
    out: &mut Rendered,
) -> Result<(), SyncError> {
    for (key, src) in map {
        let value = render(key, src, data).map_err(|message| SyncError::Template {
            message: cap_detail(format!("could not execute template: {message}")),
        })?;
        out.apply(target, key.clone(), value);
    }
    Ok(())
}

/// What the Secret gets from `provider_data` under the ExternalSecret's template (or lack of).
pub(crate) fn apply_template(
    es: &ExternalSecret,
    provider_data: &SecretMap,
    inputs: &TemplateInputs,
) -> Result<Rendered, SyncError> {
    let Some(template) = es.spec.target.as_ref().and_then(|t| t.template.as_ref()) else {
        return Ok(Rendered {
            data: provider_data.clone(),
            labels: es.metadata.labels.clone().unwrap_or_default(),
            annotations: es.metadata.annotations.clone().unwrap_or_default(),
            finalizers: Vec::new(),
            type_: None,
        });
    };
    validate_secret_template(template)?;
    let metadata = template.metadata.clone().unwrap_or_default();
    let mut out = Rendered {
        type_: template.type_.clone().filter(|t| !t.is_empty()),
        finalizers: metadata.finalizers.clone(),
        ..Default::default()
    };
    let no_data_templates = template.data.is_empty() && template.template_from.is_empty();
    if template.merge_policy == TemplateMergePolicy::Merge || no_data_templates {
        out.data
            .extend(provider_data.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for tf in &template.template_from {
        apply_template_from(tf, provider_data, inputs, &mut out)?;
    }
    render_map(
        &template.data,
        TemplateTarget::Data,
        provider_data,
        &mut out,
    )?;
    render_map(
        &metadata.labels,
        TemplateTarget::Labels,
        provider_data,
        &mut out,
    )?;
    render_map(
        &metadata.annotations,
        TemplateTarget::Annotations,
        provider_data,
        &mut out,
    )?;
    Ok(out)
}
