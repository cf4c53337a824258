//! Reads from AWS Systems Manager Parameter Store with ESO's semantics: GetParameter with
//! decryption, `version` appended as `name:version`, tags for `metadataPolicy: Fetch`, and `find`
//! by path (GetParametersByPath) or tags (DescribeParameters). Values of many parameters are
//! fetched with GetParameters, up to 10 names a call.

use std::collections::HashMap;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterStringFilter, ResourceTypeForTagging};
use esox_plugin_sdk::{Error, FindQuery, SecretMap};

use crate::errors;

/// GetParameters takes at most this many names.
pub const BATCH_LIMIT: usize = 10;

/// The name GetParameter is asked for: the prefix, the key, and `:version` if any (a version
/// number or a label, as Parameter Store's selector syntax reads them).
pub fn parameter_name(prefix: &str, key: &str, version: Option<&str>) -> String {
    match version {
        Some(v) if !v.is_empty() => format!("{prefix}{key}:{v}"),
        _ => format!("{prefix}{key}"),
    }
}

/// GetParameter with decryption.
pub async fn get_value(client: &Client, name: &str) -> Result<Vec<u8>, Error> {
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| errors::from_sdk("ssm:GetParameter", &e))?;
    out.parameter()
        .and_then(|p| p.value())
        .map(|v| v.as_bytes().to_vec())
        .ok_or_else(|| {
            Error::backend(format!(
                "invalid secret received. parameter value is nil for key: {name}"
            ))
        })
}

/// The parameter's tags as a JSON object (`metadataPolicy: Fetch`).
pub async fn get_tags(client: &Client, name: &str) -> Result<Vec<u8>, Error> {
    let out = client
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .send()
        .await
        .map_err(|e| errors::from_sdk("ssm:ListTagsForResource", &e))?;
    let tags: serde_json::Map<String, serde_json::Value> = out
        .tag_list()
        .iter()
        .map(|t| (t.key().to_string(), serde_json::Value::from(t.value())))
        .collect();
    Ok(serde_json::Value::Object(tags).to_string().into_bytes())
}

/// Values of many parameter names (no version selectors) with GetParameters. Names missing from
/// the answer are absent from the map; names AWS lists as invalid are not-found.
pub async fn batch(
    client: &Client,
    names: &[String],
) -> Result<HashMap<String, Result<Vec<u8>, Error>>, Error> {
    let mut found = HashMap::new();
    for chunk in names.chunks(BATCH_LIMIT) {
        let out = client
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| errors::from_sdk("ssm:GetParameters", &e))?;
        for p in out.parameters() {
            let Some(name) = chunk
                .iter()
                .find(|n| Some(n.as_str()) == p.name() || Some(n.as_str()) == p.arn())
            else {
                continue;
            };
            if let Some(value) = p.value() {
                found.insert(name.clone(), Ok(value.as_bytes().to_vec()));
            }
        }
        for invalid in out.invalid_parameters() {
            found.insert(invalid.clone(), Err(Error::NotFound));
        }
    }
    Ok(found)
}

/// ESO's `dataFrom.find` for Parameter Store. Keys are parameter names.
///
/// - tags: DescribeParameters with `tag:<key>` filters (and the path, recursive), then values;
/// - otherwise GetParametersByPath (path defaults to `/`, recursive, decrypted), falling back to
///   DescribeParameters when the policy lacks `ssm:GetParametersByPath`, as ESO does.
pub async fn find(client: &Client, query: &FindQuery) -> Result<SecretMap, Error> {
    let matcher = crate::compile_regexp(query.name_regexp.as_deref())?;
    let matches = |name: &str| matcher.as_ref().is_none_or(|m| m.is_match(name));
    if query.tags.is_empty() && matcher.is_none() && query.path.is_none() {
        return Err(Error::invalid_config(
            "",
            "find needs name.regexp, path or tags",
        ));
    }
    if !query.tags.is_empty() {
        let names = describe_names(client, query, &matches).await?;
        return values_of(client, &names).await;
    }
    let path = query.path.clone().unwrap_or_else(|| "/".to_string());
    let mut data = SecretMap::new();
    let mut next_token = None;
    loop {
        let result = client
            .get_parameters_by_path()
            .path(&path)
            .recursive(true)
            .with_decryption(true)
            .set_next_token(next_token)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                let err = errors::from_sdk("ssm:GetParametersByPath", &e);
                if matches!(err, Error::PermissionDenied(_)) {
                    let names = describe_names(client, query, &matches).await?;
                    return values_of(client, &names).await;
                }
                return Err(err);
            }
        };
        for p in out.parameters() {
            let (Some(name), Some(value)) = (p.name(), p.value()) else {
                continue;
            };
            if matches(name) {
                data.push((name.to_string(), value.as_bytes().to_vec()));
            }
        }
        next_token = out.next_token().map(str::to_string);
        if next_token.is_none() {
            break;
        }
    }
    Ok(data)
}

async fn describe_names(
    client: &Client,
    query: &FindQuery,
    matches: &impl Fn(&str) -> bool,
) -> Result<Vec<String>, Error> {
    let mut filters = Vec::new();
    for (key, value) in &query.tags {
        filters.push(
            ParameterStringFilter::builder()
                .key(format!("tag:{key}"))
                .option("Equals")
                .values(value)
                .build()
                .map_err(|e| Error::backend(format!("ssm filter: {e}")))?,
        );
    }
    if let Some(path) = &query.path {
        filters.push(
            ParameterStringFilter::builder()
                .key("Path")
                .option("Recursive")
                .values(path)
                .build()
                .map_err(|e| Error::backend(format!("ssm filter: {e}")))?,
        );
    }
    let mut names = Vec::new();
    let mut next_token = None;
    loop {
        let out = client
            .describe_parameters()
            .set_parameter_filters(Some(filters.clone()))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| errors::from_sdk("ssm:DescribeParameters", &e))?;
        names.extend(
            out.parameters()
                .iter()
                .filter_map(|p| p.name())
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

async fn values_of(client: &Client, names: &[String]) -> Result<SecretMap, Error> {
    let mut batch = batch(client, names).await.unwrap_or_default();
    let mut data = SecretMap::new();
    for name in names {
        let value = match batch.remove(name) {
            Some(v) => v,
            None => get_value(client, name).await,
        };
        data.push((name.clone(), value?));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_prepended_without_a_separator() {
        assert_eq!(
            parameter_name("/prod", "/db/password", None),
            "/prod/db/password"
        );
        assert_eq!(parameter_name("app-", "token", None), "app-token");
    }

    #[test]
    fn a_version_or_label_is_appended_after_a_colon() {
        assert_eq!(
            parameter_name("", "/db/password", Some("3")),
            "/db/password:3"
        );
        assert_eq!(
            parameter_name("", "/db/password", Some("stable")),
            "/db/password:stable"
        );
        assert_eq!(parameter_name("", "/db/password", Some("")), "/db/password");
    }
}
