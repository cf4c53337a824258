//! What an ExternalSecret needs from the outside world before its Secret can be built: the
//! provider requests (per store) and the ConfigMaps/Secrets its templates read.
//!
//! The controller performs the plan (calling plugins, reading objects) and hands the results to
//! [`crate::build`]. Identical requests appear once, so two entries reading the same remote
//! key cost one call.

use std::collections::BTreeSet;

use esox_api::{
    ExternalSecret, ExternalSecretDataRemoteRef, ExternalSecretFind, SecretStoreRef, StoreKind,
};
use esox_provider::{FindQuery, MetadataPolicy, RemoteRef};

use crate::SyncError;

/// A store, as an ExternalSecret entry names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreRef {
    /// `SecretStore` (in the ExternalSecret's namespace) or `ClusterSecretStore`.
    pub kind: StoreKind,
    /// The store's name.
    pub name: String,
}

/// One provider call, in ESO's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderOp {
    /// One value (`data[]`): answered with [`crate::Answer::Value`].
    GetSecret(RemoteRef),
    /// A JSON object's top-level keys (`dataFrom[].extract`): answered with [`crate::Answer::Map`].
    GetSecretMap(RemoteRef),
    /// Every secret matching a query (`dataFrom[].find`): answered with [`crate::Answer::Map`].
    GetAllSecrets(FindQuery),
}

/// A provider call against one store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderRequest {
    /// Which store.
    pub store: StoreRef,
    /// Which call.
    pub op: ProviderOp,
}

/// An object in the ExternalSecret's namespace that `templateFrom` reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateSource {
    /// A ConfigMap, by name.
    ConfigMap(String),
    /// A Secret, by name.
    Secret(String),
}

/// Everything one sync of an ExternalSecret needs, deduplicated and in spec order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Provider calls, each once.
    pub requests: Vec<ProviderRequest>,
    /// ConfigMaps and Secrets to read for templateFrom, each once.
    pub template_sources: Vec<TemplateSource>,
}

impl Plan {
    /// The distinct stores this plan reads from.
    pub fn stores(&self) -> BTreeSet<&StoreRef> {
        self.requests.iter().map(|r| &r.store).collect()
    }
}

fn store_for(
    spec_store: Option<&SecretStoreRef>,
    entry_store: Option<&SecretStoreRef>,
    field: &str,
) -> Result<StoreRef, SyncError> {
    let store = entry_store
        .filter(|s| !s.name.is_empty())
        .or(spec_store.filter(|s| !s.name.is_empty()))
        .ok_or_else(|| SyncError::NoStore {
            field: field.to_string(),
        })?;
    Ok(StoreRef {
        kind: store.kind(),
        name: store.name.clone(),
    })
}

/// ESO's `remoteRef` in the provider vocabulary (empty strings mean unset, as in Go).
pub fn remote_ref(r: &ExternalSecretDataRemoteRef) -> RemoteRef {
    RemoteRef {
        key: r.key.clone(),
        property: r.property.clone().filter(|p| !p.is_empty()),
        version: r.version.clone().filter(|v| !v.is_empty()),
        metadata_policy: match r.metadata_policy {
            Some(esox_api::MetadataPolicy::Fetch) => MetadataPolicy::Fetch,
            _ => MetadataPolicy::None,
        },
    }
}

/// ESO's `find` in the provider vocabulary.
pub fn find_query(f: &ExternalSecretFind) -> FindQuery {
    FindQuery {
        name_regexp: f
            .name
            .as_ref()
            .and_then(|n| n.regexp.clone())
            .filter(|r| !r.is_empty()),
        path: f.path.clone().filter(|p| !p.is_empty()),
        tags: f.tags.clone(),
    }
}

/// The request for `spec.dataFrom[index]`.
pub(crate) fn data_from_request(
    es: &ExternalSecret,
    index: usize,
) -> Result<ProviderRequest, SyncError> {
    let field = format!("spec.dataFrom[{index}]");
    let entry = &es.spec.data_from[index];
    let source = entry.source_ref.as_ref();
    if source.is_some_and(|s| s.generator_ref.is_some()) {
        return Err(SyncError::GeneratorNotSupported { field });
    }
    let store = store_for(
        es.spec.secret_store_ref.as_ref(),
        source.and_then(|s| s.store_ref.as_ref()),
        &field,
    )?;
    let op = if let Some(find) = &entry.find {
        ProviderOp::GetAllSecrets(find_query(find))
    } else if let Some(extract) = &entry.extract {
        ProviderOp::GetSecretMap(remote_ref(extract))
    } else {
        return Err(SyncError::InvalidSpec(format!(
            "{field}: set one of extract, find or sourceRef.generatorRef"
        )));
    };
    Ok(ProviderRequest { store, op })
}

/// The request for `spec.data[index]`.
pub(crate) fn data_request(
    es: &ExternalSecret,
    index: usize,
) -> Result<ProviderRequest, SyncError> {
    let field = format!("spec.data[{index}]");
    let entry = &es.spec.data[index];
    let source = entry.source_ref.as_ref();
    if source.is_some_and(|s| s.generator_ref.is_some() && s.store_ref.is_none()) {
        return Err(SyncError::GeneratorNotSupported { field });
    }
    let store = store_for(
        es.spec.secret_store_ref.as_ref(),
        source.and_then(|s| s.store_ref.as_ref()),
        &field,
    )?;
    Ok(ProviderRequest {
        store,
        op: ProviderOp::GetSecret(remote_ref(&entry.remote_ref)),
    })
}

/// Lists what syncing `es` needs: provider calls (deduplicated, `dataFrom` first, then
/// `data`, as ESO processes them) and the templateFrom ConfigMaps/Secrets.
pub fn plan(es: &ExternalSecret) -> Result<Plan, SyncError> {
    crate::windows::check(es.spec.sync_windows.as_ref()).map_err(SyncError::InvalidSpec)?;
    let mut plan = Plan::default();
    let mut push = |req: ProviderRequest| {
        if !plan.requests.contains(&req) {
            plan.requests.push(req);
        }
    };
    for index in 0..es.spec.data_from.len() {
        push(data_from_request(es, index)?);
    }
    for index in 0..es.spec.data.len() {
        push(data_request(es, index)?);
    }
    let template_from = es
        .spec
        .target
        .as_ref()
        .and_then(|t| t.template.as_ref())
        .map(|t| t.template_from.as_slice())
        .unwrap_or_default();
    for tf in template_from {
        let sources = [
            tf.config_map
                .as_ref()
                .map(|c| TemplateSource::ConfigMap(c.name.clone())),
            tf.secret
                .as_ref()
                .map(|s| TemplateSource::Secret(s.name.clone())),
        ];
        for source in sources.into_iter().flatten() {
            if !plan.template_sources.contains(&source) {
                plan.template_sources.push(source);
            }
        }
    }
    Ok(plan)
}
