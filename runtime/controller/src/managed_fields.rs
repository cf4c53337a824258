//! Which data keys of a Secret (or a ConfigMap target) a field manager owns, read from
//! `metadata.managedFields` (`fieldsV1` is `{"f:data": {"f:<key>": {}}}`; a ConfigMap's
//! non-text values are under `f:binaryData`). Under Merge policies only the keys an
//! ExternalSecret wrote itself are dropped when it re-renders.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

/// The `data` (and `binaryData`) keys owned by `manager`.
pub fn managed_data_keys(entries: &[ManagedFieldsEntry], manager: &str) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|e| e.manager.as_deref() == Some(manager))
        .filter_map(|e| e.fields_v1.as_ref())
        .flat_map(|f| {
            ["f:data", "f:binaryData"]
                .into_iter()
                .filter_map(|field| f.0.get(field).and_then(|d| d.as_object()))
        })
        .flat_map(|data| {
            data.keys()
                .filter_map(|k| k.strip_prefix("f:"))
                .map(str::to_string)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
    use serde_json::json;

    fn entry(manager: &str, fields: serde_json::Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_managers_own_data_keys_count() {
        let entries = [
            entry(
                "esox/db",
                json!({"f:data": {"f:password": {}, "f:user": {}}, "f:metadata": {"f:labels": {}}}),
            ),
            entry("kubectl", json!({"f:data": {"f:extra": {}}})),
        ];
        assert_eq!(
            managed_data_keys(&entries, "esox/db"),
            BTreeSet::from(["password".to_string(), "user".to_string()])
        );
        assert_eq!(managed_data_keys(&entries, "esox/other"), BTreeSet::new());
        // A ConfigMap target's binary values.
        let cm = [entry(
            "esox/cm",
            json!({"f:data": {"f:text": {}}, "f:binaryData": {"f:bin": {}}}),
        )];
        assert_eq!(
            managed_data_keys(&cm, "esox/cm"),
            BTreeSet::from(["bin".to_string(), "text".to_string()])
        );
    }
}
