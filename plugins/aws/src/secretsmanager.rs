//! Reads from AWS Secrets Manager with ESO's semantics: versions as stages or `uuid/<id>`,
//! SecretString else SecretBinary, tags for `metadataPolicy: Fetch`, and `find` by name, tags
//! and path, batched with BatchGetSecretValue (up to 20 secrets a call).

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use esox_plugin_sdk::{Error, FindQuery, SecretMap};

use crate::errors;

/// BatchGetSecretValue takes at most this many ids in `SecretIdList`.
pub const BATCH_LIMIT: usize = 20;

/// How a `remoteRef.version` is sent to GetSecretValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    /// `VersionStage`: `AWSCURRENT` (the default), `AWSPREVIOUS` or a custom label.
    Stage(String),
    /// `VersionId`, written `uuid/<id>` in the manifest.
    Id(String),
}

/// ESO's choice: no version means `AWSCURRENT`; `uuid/<id>` is a VersionId; anything else a stage.
pub fn version_selector(version: Option<&str>) -> VersionSelector {
    match version {
        None | Some("") => VersionSelector::Stage("AWSCURRENT".to_string()),
        Some(v) => match v.strip_prefix("uuid/") {
            Some(id) => VersionSelector::Id(id.to_string()),
            None => VersionSelector::Stage(v.to_string()),
        },
    }
}

/// Whether a version reads what BatchGetSecretValue returns (the current version).
pub fn is_current(version: Option<&str>) -> bool {
    version_selector(version) == VersionSelector::Stage("AWSCURRENT".to_string())
}

/// The value of a secret: SecretString if set, else the raw SecretBinary.
fn payload(
    string: Option<&str>,
    binary: Option<&aws_smithy_types::Blob>,
    id: &str,
) -> Result<Vec<u8>, Error> {
    match (string, binary) {
        (Some(s), _) => Ok(s.as_bytes().to_vec()),
        (None, Some(b)) => Ok(b.as_ref().to_vec()),
        (None, None) => Err(Error::backend(format!(
            "invalid secret received. no secret string nor binary for key: {id}"
        ))),
    }
}

/// GetSecretValue for one secret id (prefix already applied).
pub async fn get_value(client: &Client, id: &str, version: Option<&str>) -> Result<Vec<u8>, Error> {
    let request = client.get_secret_value().secret_id(id);
    let request = match version_selector(version) {
        VersionSelector::Stage(stage) => request.version_stage(stage),
        VersionSelector::Id(version_id) => request.version_id(version_id),
    };
    let out = request
        .send()
        .await
        .map_err(|e| errors::from_sdk("secretsmanager:GetSecretValue", &e))?;
    payload(out.secret_string(), out.secret_binary(), id)
}

/// The secret's tags as a JSON object (`metadataPolicy: Fetch`), from DescribeSecret.
pub async fn get_tags(client: &Client, id: &str) -> Result<Vec<u8>, Error> {
    let out = client
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| errors::from_sdk("secretsmanager:DescribeSecret", &e))?;
    let tags: serde_json::Map<String, serde_json::Value> = out
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), serde_json::Value::from(t.value()?))))
        .collect();
    Ok(serde_json::Value::Object(tags).to_string().into_bytes())
}

/// The current values of many secret ids with as few BatchGetSecretValue calls as possible.
/// Ids the answer does not account for are absent from the map (the caller falls back to
/// GetSecretValue for them). An `Err` means a batch call itself failed, for example because the
/// policy lacks `secretsmanager:BatchGetSecretValue`.
pub async fn batch_current(
    client: &Client,
    ids: &[String],
) -> Result<HashMap<String, Result<Vec<u8>, Error>>, Error> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(BATCH_LIMIT) {
        let mut next_token = None;
        loop {
            let out = client
                .batch_get_secret_value()
                .set_secret_id_list(Some(chunk.to_vec()))
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| errors::from_sdk("secretsmanager:BatchGetSecretValue", &e))?;
            for entry in out.secret_values() {
                let Some(id) = chunk.iter().find(|id| {
                    Some(id.as_str()) == entry.name() || Some(id.as_str()) == entry.arn()
                }) else {
                    continue;
                };
                found.insert(
                    id.clone(),
                    payload(entry.secret_string(), entry.secret_binary(), id),
                );
            }
            for error in out.errors() {
                let Some(id) = error.secret_id() else {
                    continue;
                };
                found.insert(
                    id.to_string(),
                    Err(errors::classify(
                        "secretsmanager:BatchGetSecretValue",
                        errors::Failure::Service,
                        error.error_code(),
                        error.message(),
                        None,
                    )),
                );
            }
            next_token = out.next_token().map(str::to_string);
            if next_token.is_none() {
                break;
            }
        }
    }
    Ok(found)
}

/// ESO's `dataFrom.find` for Secrets Manager. Keys are secret names.
///
/// - tags and/or path: BatchGetSecretValue with `tag-key`/`tag-value`/`name` filters, then the
///   name regexp on the results;
/// - name regexp alone: ListSecrets, then the matches' values with BatchGetSecretValue.
pub async fn find(client: &Client, query: &FindQuery) -> Result<SecretMap, Error> {
    let matcher = crate::compile_regexp(query.name_regexp.as_deref())?;
    let matches = |name: &str| matcher.as_ref().is_none_or(|m| m.is_match(name));
    if query.tags.is_empty() && query.path.is_none() {
        if matcher.is_none() {
            return Err(Error::invalid_config(
                "",
                "find needs name.regexp, path or tags",
            ));
        }
        let names = list_names(client, &matches).await?;
        return values_of(client, &names).await;
    }
    let mut filters = Vec::new();
    for (key, value) in &query.tags {
        filters.push(
            Filter::builder()
                .key(FilterNameStringType::TagKey)
                .values(key)
                .build(),
        );
        filters.push(
            Filter::builder()
                .key(FilterNameStringType::TagValue)
                .values(value)
                .build(),
        );
    }
    if let Some(path) = &query.path {
        filters.push(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(path)
                .build(),
        );
    }
    let mut data = SecretMap::new();
    let mut next_token = None;
    loop {
        let out = client
            .batch_get_secret_value()
            .set_filters(Some(filters.clone()))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| errors::from_sdk("secretsmanager:BatchGetSecretValue", &e))?;
        for entry in out.secret_values() {
            let Some(name) = entry.name() else { continue };
            if !matches(name) {
                continue;
            }
            data.push((
                name.to_string(),
                payload(entry.secret_string(), entry.secret_binary(), name)?,
            ));
        }
        next_token = out.next_token().map(str::to_string);
        if next_token.is_none() {
            break;
        }
    }
    Ok(data)
}

async fn list_names(
    client: &Client,
    matches: &impl Fn(&str) -> bool,
) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    let mut next_token = None;
    loop {
        let out = client
            .list_secrets()
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| errors::from_sdk("secretsmanager:ListSecrets", &e))?;
        names.extend(
            out.secret_list()
                .iter()
                .filter_map(|s| s.name())
                .filter(|n| matches(n))
                .map(str::to_string),
        );
        next_token = out.next_token().map(str::to_string);
        if next_token.is_none() {
            break;
        }
    }
    Ok(names)
}

/// Current values of named secrets: batched, falling back to one call each.
async fn values_of(client: &Client, names: &[String]) -> Result<SecretMap, Error> {
    let mut batch = batch_current(client, names).await.unwrap_or_default();
    let mut data = SecretMap::new();
    for name in names {
        let value = match batch.remove(name) {
            Some(v) => v,
            None => get_value(client, name, None).await,
        };
        data.push((name.clone(), value?));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_version_reads_the_awscurrent_stage() {
        assert_eq!(
            version_selector(None),
            VersionSelector::Stage("AWSCURRENT".into())
        );
        assert_eq!(
            version_selector(Some("")),
            VersionSelector::Stage("AWSCURRENT".into())
        );
    }

    #[test]
    fn stages_are_sent_as_version_stage() {
        assert_eq!(
            version_selector(Some("AWSPREVIOUS")),
            VersionSelector::Stage("AWSPREVIOUS".into())
        );
        assert_eq!(
            version_selector(Some("blue")),
            VersionSelector::Stage("blue".into())
        );
    }

    #[test]
    fn uuid_prefixed_versions_are_sent_as_version_id() {
        assert_eq!(
            version_selector(Some("uuid/0b5c4a52-5f1d-4b1e-9f5e-0d2d3c1e2a11")),
            VersionSelector::Id("0b5c4a52-5f1d-4b1e-9f5e-0d2d3c1e2a11".into())
        );
    }

    #[test]
    fn only_the_current_version_can_be_batched() {
        assert!(is_current(None));
        assert!(is_current(Some("AWSCURRENT")));
        assert!(!is_current(Some("AWSPREVIOUS")));
        assert!(!is_current(Some("uuid/abc")));
    }

    #[test]
    fn secret_string_wins_then_binary_then_an_error_naming_the_key() {
        let blob = aws_smithy_types::Blob::new(vec![0u8, 159, 146, 150]);
        assert_eq!(payload(Some("text"), None, "k").unwrap(), b"text");
        assert_eq!(
            payload(None, Some(&blob), "k").unwrap(),
            vec![0u8, 159, 146, 150]
        );
        assert!(matches!(
            payload(None, None, "db/creds").unwrap_err(),
            Error::Backend(m) if m == "invalid secret received. no secret string nor binary for key: db/creds"
        ));
    }
}
