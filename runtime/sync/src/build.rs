//! From provider answers to the desired Secret, in ESO's order
//! (`externalsecret_controller_secret.go`, `externalsecret_controller.go`):
//!
//! 1. `dataFrom[]` in order: answer -> rewrite (or key conversion) -> key validation ->
//!    decoding -> NUL-byte check, merged so that a later entry overwrites an earlier one;
//! 2. `data[]` in order: answer -> decoding -> NUL-byte check, overwriting `dataFrom` keys;
//! 3. a NotFound answer skips its entry unless `deletionPolicy: Retain` (then it fails);
//! 4. no data at all: Retain keeps the Secret, Delete deletes it (Owner only), Merge goes on;
//! 5. creation policy, template, existing keys (Merge/CreateOrMerge), ownership labels and the
//!    data hash.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use esox_api::{CreationPolicy, DeletionPolicy, ExternalSecret};
use esox_provider::{ProviderError, SecretMap};

use crate::decode::{decode, strategy_name, violates_null_byte_policy};
use crate::error::reason;
use crate::hash::{ANNOTATION_DATA_HASH, LABEL_CREATED_BY, LABEL_MANAGED, LABEL_MANAGED_VALUE};
use crate::keys::{convert_keys, rewrite_map, validate_keys};
use crate::plan::{ProviderOp, ProviderRequest, data_from_request, data_request};
use crate::redact::cap_detail;
use crate::template::{TemplateInputs, apply_template};
use crate::{SyncError, created_by_label, data_hash};

/// What a provider returned for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The value of a `GetSecret`.
    Value(Vec<u8>),
    /// The map of a `GetSecretMap` or `GetAllSecrets`.
    Map(SecretMap),
}

/// The answer to every planned request.
pub type Answers = HashMap<ProviderRequest, Result<Answer, ProviderError>>;

/// The target Secret as it exists in the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExistingSecret {
    /// Its type (`Opaque`, `kubernetes.io/tls`, ...).
    pub type_: String,
    /// Its data.
    pub data: SecretMap,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Whether it is immutable.
    pub immutable: bool,
    /// Data keys this ExternalSecret wrote last time (from the Secret's managedFields); they are
    /// dropped before merging so that keys gone upstream disappear under Merge policies.
    pub managed_data_keys: BTreeSet<String>,
}

/// The Secret esox should write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredSecret {
    /// Its name (`spec.target.name` or the ExternalSecret's name).
    pub name: String,
    /// Its namespace (the ExternalSecret's).
    pub namespace: String,
    /// Its type: the template's, else the existing Secret's, else `Opaque`.
    pub type_: String,
    /// The complete data the Secret will hold (existing keys included under Merge policies);
    /// [`ANNOTATION_DATA_HASH`] is the hash of exactly this.
    pub data: SecretMap,
    /// The data keys esox itself sets (a subset of `data`).
    pub managed_data_keys: BTreeSet<String>,
    /// Labels esox sets: template/ExternalSecret labels, `managed`, and `created-by` (Owner).
    pub labels: BTreeMap<String, String>,
    /// Annotations esox sets: template/ExternalSecret annotations and the data hash.
    pub annotations: BTreeMap<String, String>,
    /// Finalizers from the template.
    pub finalizers: Vec<String>,
    /// Whether to mark the Secret immutable.
    pub immutable: bool,
    /// Whether the ExternalSecret must be the Secret's controller owner (creationPolicy Owner).
    pub controller_owner: bool,
}

/// What the controller should do with the target Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create or update the Secret.
    Write(DesiredSecret),
    /// No data, deletionPolicy Retain: leave the Secret as it is.
    Retain,
    /// No data, deletionPolicy Delete (under Owner): delete the Secret if it exists.
    Delete {
        /// The Secret to delete.
        name: String,
    },
    /// creationPolicy Merge and the Secret does not exist: nothing to merge into.
    Missing,
    /// creationPolicy None: write nothing.
    Nothing,
}

/// The result of one sync: the action, and entries skipped because the provider has no such
/// secret (each becomes a `MissingProviderSecret` event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What to do.
    pub action: Action,
    /// ESO's event messages for skipped NotFound entries.
    pub missing_provider_secrets: Vec<String>,
}

impl Outcome {
    /// ESO's Ready condition (always status True) reason and message for a successful sync.
    pub fn condition(&self) -> (&'static str, &'static str) {
        match self.action {
            Action::Write(_) | Action::Nothing => (reason::SECRET_SYNCED, reason::MSG_SYNCED),
            Action::Retain => (reason::SECRET_SYNCED, reason::MSG_SYNCED_RETAIN),
            Action::Delete { .. } => (reason::SECRET_DELETED, reason::MSG_DELETED),
            Action::Missing => (reason::SECRET_MISSING, reason::MSG_MISSING),
        }
    }
}

fn answer<'a>(
    answers: &'a Answers,
    req: &ProviderRequest,
    field: &str,
) -> Result<&'a Result<Answer, ProviderError>, SyncError> {
    answers.get(req).ok_or_else(|| SyncError::MissingAnswer {
        field: field.to_string(),
    })
}

/// A provider error with its text capped (plugins and backends control it).
fn cap_provider_error(e: &ProviderError) -> ProviderError {
    match e {
        ProviderError::InvalidConfig(m) => {
            ProviderError::InvalidConfig(cap_detail(m.to_string()).into())
        }
        ProviderError::PermissionDenied(m) => {
            ProviderError::PermissionDenied(cap_detail(m.to_string()).into())
        }
        ProviderError::Unavailable(m) => {
            ProviderError::Unavailable(cap_detail(m.to_string()).into())
        }
        ProviderError::Unsupported(m) => {
            ProviderError::Unsupported(cap_detail(m.to_string()).into())
        }
        ProviderError::Throttled {
            message,
            retry_after_ms,
        } => ProviderError::Throttled {
            message: cap_detail(message.to_string()).into(),
            retry_after_ms: *retry_after_ms,
        },
        ProviderError::EgressDenied(m) => {
            ProviderError::EgressDenied(cap_detail(m.to_string()).into())
        }
        ProviderError::Backend(m) => ProviderError::Backend(cap_detail(m.to_string()).into()),
        ProviderError::Internal(m) => ProviderError::Internal(cap_detail(m.to_string()).into()),
        other => other.clone(),
    }
}

/// Decodes and NUL-checks every value of a map (ESO's `DecodeMap` + `validateFetchedSecretMap`).
fn decode_map(
    field: &str,
    strategy: Option<esox_api::DecodingStrategy>,
    policy: Option<esox_api::NullBytePolicy>,
    map: SecretMap,
) -> Result<SecretMap, SyncError> {
    let strategy = strategy.unwrap_or_default();
    let mut out = SecretMap::new();
    for (key, value) in map {
        let value = decode(strategy, value).map_err(|message| SyncError::Decode {
            field: field.to_string(),
            strategy: strategy_name(strategy).to_string(),
            key: cap_detail(key.clone()),
            message: cap_detail(message),
        })?;
        if violates_null_byte_policy(policy.unwrap_or_default(), &value) {
            return Err(SyncError::NullBytes {
                field: field.to_string(),
                key: cap_detail(key),
            });
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// The data of `spec.dataFrom[index]`, or `None` when skipped as NotFound.
fn data_from_entry(
    es: &ExternalSecret,
    index: usize,
    answers: &Answers,
) -> Result<Option<SecretMap>, SyncError> {
    let entry = &es.spec.data_from[index];
    let req = data_from_request(es, index)?;
    let (field, conversion, decoding, null_bytes) = match (&req.op, &entry.find, &entry.extract) {
        (ProviderOp::GetAllSecrets(_), Some(f), _) => (
            format!("spec.dataFrom[{index}].find"),
            f.conversion_strategy,
            f.decoding_strategy,
            f.null_byte_policy,
        ),
        (_, _, Some(e)) => (
            format!("spec.dataFrom[{index}].extract"),
            e.conversion_strategy,
            e.decoding_strategy,
            e.null_byte_policy,
        ),
        _ => {
            return Err(SyncError::InvalidSpec(format!(
                "spec.dataFrom[{index}]: set extract or find"
            )));
        }
    };
    let map = match answer(answers, &req, &field)? {
        Ok(Answer::Map(map)) => map.clone(),
        Ok(Answer::Value(_)) => {
            return Err(SyncError::UnexpectedAnswer {
                field,
                expected: "a map",
                got: "a single value",
            });
        }
        Err(ProviderError::NotFound) if es.spec.deletion_policy() != DeletionPolicy::Retain => {
            return Ok(None);
        }
        Err(e) => {
            return Err(SyncError::Provider {
                field,
                source: cap_provider_error(e),
            });
        }
    };
    let mut map = if entry.rewrite.is_empty() {
        let strategy = conversion.unwrap_or_default();
        convert_keys(strategy, map).map_err(|key| SyncError::KeyCollision {
            field: field.clone(),
            strategy: format!("{strategy:?}"),
            key: cap_detail(key),
        })?
    } else {
        rewrite_map(&entry.rewrite, map).map_err(|(index, message)| SyncError::Rewrite {
            field: field.clone(),
            index,
            message: cap_detail(message),
        })?
    };
    validate_keys(&mut map).map_err(|message| SyncError::InvalidKey {
        field: field.clone(),
        message: cap_detail(message),
    })?;
    decode_map(&field, decoding, null_bytes, map).map(Some)
}

/// The value of `spec.data[index]`, or `None` when skipped as NotFound.
fn data_entry(
    es: &ExternalSecret,
    index: usize,
    answers: &Answers,
) -> Result<Option<Vec<u8>>, SyncError> {
    let entry = &es.spec.data[index];
    let req = data_request(es, index)?;
    let field = format!("spec.data[{index}] (key: {})", entry.remote_ref.key);
    let value = match answer(answers, &req, &field)? {
        Ok(Answer::Value(value)) => value.clone(),
        Ok(Answer::Map(_)) => {
            return Err(SyncError::UnexpectedAnswer {
                field,
                expected: "a single value",
                got: "a map",
            });
        }
        Err(ProviderError::NotFound) if es.spec.deletion_policy() != DeletionPolicy::Retain => {
            return Ok(None);
        }
        Err(e) => {
            return Err(SyncError::Provider {
                field,
                source: cap_provider_error(e),
            });
        }
    };
    let strategy = entry.remote_ref.decoding_strategy.unwrap_or_default();
    let value = decode(strategy, value).map_err(|message| SyncError::Decode {
        field: field.clone(),
        strategy: strategy_name(strategy).to_string(),
        key: entry.secret_key.clone(),
        message: cap_detail(message),
    })?;
    if violates_null_byte_policy(
        entry.remote_ref.null_byte_policy.unwrap_or_default(),
        &value,
    ) {
        return Err(SyncError::NullBytes {
            field,
            key: entry.secret_key.clone(),
        });
    }
    Ok(Some(value))
}

/// ESO's `GetProviderSecretData`: the merged provider data and the skipped-entry events.
pub fn provider_data(
    es: &ExternalSecret,
    answers: &Answers,
) -> Result<(SecretMap, Vec<String>), SyncError> {
    let mut data = SecretMap::new();
    let mut missing = Vec::new();
    for index in 0..es.spec.data_from.len() {
        match data_from_entry(es, index, answers)? {
            Some(map) => data.extend(map),
            None => missing.push(format!(
                "secret does not exist at provider using spec.dataFrom[{index}]"
            )),
        }
    }
    for index in 0..es.spec.data.len() {
        match data_entry(es, index, answers)? {
            Some(value) => {
                data.insert(es.spec.data[index].secret_key.clone(), value);
            }
            None => missing.push(format!(
                "secret does not exist at provider using spec.dataFrom[{index}] (key={})",
                es.spec.data[index].remote_ref.key
            )),
        }
    }
    Ok((data, missing))
}

/// Builds the outcome of syncing `es` from the provider `answers` (one per planned request),
/// the templateFrom `inputs`, and the target Secret if it exists.
pub fn build(
    es: &ExternalSecret,
    answers: &Answers,
    inputs: &TemplateInputs,
    existing: Option<&ExistingSecret>,
) -> Result<Outcome, SyncError> {
    let (data, missing_provider_secrets) = provider_data(es, answers)?;
    let name = es.target_secret_name();
    let creation = es.spec.creation_policy();
    let outcome = |action| {
        Ok(Outcome {
            action,
            missing_provider_secrets: missing_provider_secrets.clone(),
        })
    };

    if data.is_empty() {
        match es.spec.deletion_policy() {
            DeletionPolicy::Delete if creation != CreationPolicy::Owner => {
                return Err(SyncError::DeleteRequiresOwner {
                    secret: name,
                    policy: format!("{creation:?}"),
                });
            }
            DeletionPolicy::Delete => return outcome(Action::Delete { name }),
            DeletionPolicy::Retain => return outcome(Action::Retain),
            DeletionPolicy::Merge => {}
        }
    }
    match (creation, existing) {
        (CreationPolicy::None, _) => return outcome(Action::Nothing),
        (CreationPolicy::Merge, None) => return outcome(Action::Missing),
        _ => {}
    }

    let target = es.spec.target();
    let mut desired = DesiredSecret {
        name,
        namespace: es.metadata.namespace.clone().unwrap_or_default(),
        immutable: target.immutable,
        controller_owner: creation == CreationPolicy::Owner,
        ..Default::default()
    };

    if let (true, Some(existing)) = (target.immutable, existing) {
        // An existing immutable target keeps its data and type; only its metadata is updated
        // (Kubernetes allows that), so the template's labels, annotations and finalizers stay
        // applied instead of being dropped from esox's apply on the next refresh.
        let rendered = apply_template(es, &data, inputs)?;
        desired.type_ = existing.type_.clone();
        desired.data = existing.data.clone();
        desired.managed_data_keys = existing.managed_data_keys.clone();
        desired.labels = rendered.labels;
        desired.annotations = rendered.annotations;
        desired.finalizers = rendered.finalizers;
    } else {
        let rendered = apply_template(es, &data, inputs)?;
        let keep_existing = matches!(
            creation,
            CreationPolicy::Merge | CreationPolicy::CreateOrMerge
        );
        if let (true, Some(existing)) = (keep_existing, existing) {
            desired.data = existing
                .data
                .iter()
                .filter(|(k, _)| !existing.managed_data_keys.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
        desired.managed_data_keys = rendered.data.keys().cloned().collect();
        desired.data.extend(rendered.data);
        desired.type_ = rendered
            .type_
            .or_else(|| existing.map(|e| e.type_.clone()).filter(|t| !t.is_empty()))
            .unwrap_or_else(|| "Opaque".to_string());
        desired.labels = rendered.labels;
        desired.annotations = rendered.annotations;
        desired.finalizers = rendered.finalizers;
    }

    if let Some(existing) = existing
        && existing.immutable
        && existing.data != desired.data
    {
        return Err(SyncError::Immutable {
            secret: desired.name,
        });
    }

    if desired.controller_owner {
        let namespace = es.metadata.namespace.as_deref().unwrap_or_default();
        let es_name = es.metadata.name.as_deref().unwrap_or_default();
        desired.labels.insert(
            LABEL_CREATED_BY.to_string(),
            created_by_label(namespace, es_name),
        );
    } else {
        desired.labels.remove(LABEL_CREATED_BY);
    }
    desired
        .labels
        .insert(LABEL_MANAGED.to_string(), LABEL_MANAGED_VALUE.to_string());
    desired
        .annotations
        .insert(ANNOTATION_DATA_HASH.to_string(), data_hash(&desired.data));
    outcome(Action::Write(desired))
}
