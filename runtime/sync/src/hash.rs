//! ESO's hashes, reproduced byte for byte so esox can take over Secrets ESO wrote and ESO can
//! take them back: the `reconcile.external-secrets.io/data-hash` annotation, the
//! `reconcile.external-secrets.io/created-by` label and `status.syncedResourceVersion`.
//!
//! ESO hashes Go's `fmt.Sprintf("%+v", x)` with SHA3-224 (`esutils.ObjectHash`). `%+v` prints
//! maps as `map[k1:v1 k2:v2]` with keys sorted, byte slices as `[1 2 3]`, strings raw, and
//! structs as `{field1:v1 field2:v2}`. The expected values in the tests were produced by Go.

use std::collections::BTreeMap;
use std::fmt::Write;

use esox_api::ExternalSecret;
use sha3::{Digest, Sha3_224};

/// Annotation holding the hash of a managed Secret's data.
pub const ANNOTATION_DATA_HASH: &str = "reconcile.external-secrets.io/data-hash";
/// Label marking Secrets managed by an ExternalSecret (value `"true"`).
pub const LABEL_MANAGED: &str = "reconcile.external-secrets.io/managed";
/// The value of [`LABEL_MANAGED`].
pub const LABEL_MANAGED_VALUE: &str = "true";
/// Label naming the owning ExternalSecret (hash of `ns/name`) under `creationPolicy: Owner`.
pub const LABEL_CREATED_BY: &str = "reconcile.external-secrets.io/created-by";
/// Annotation users bump to force a refresh (mirrored by ClusterExternalSecrets).
pub const ANNOTATION_FORCE_SYNC: &str = "external-secrets.io/force-sync";

pub(crate) fn sha3_224_hex(text: &str) -> String {
    hex_lower(&Sha3_224::digest(text.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Go's `%+v` of a `map[string][]byte`: `map[a:[1 2] b:[]]`, keys sorted by bytes.
fn go_format_byte_map(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut out = String::from("map[");
    for (i, (key, value)) in data.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push_str(":[");
        for (j, byte) in value.iter().enumerate() {
            if j > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{byte}");
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// Go's `%+v` of a `map[string]string`: `map[a:x b:y]`.
fn go_format_string_map(map: &BTreeMap<String, String>) -> String {
    let mut out = String::from("map[");
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push(':');
        out.push_str(value);
    }
    out.push(']');
    out
}

/// The `reconcile.external-secrets.io/data-hash` of a Secret's data, exactly as ESO computes
/// it. A Secret whose annotation differs from this was changed by someone else.
pub fn data_hash(data: &BTreeMap<String, Vec<u8>>) -> String {
    sha3_224_hex(&go_format_byte_map(data))
}

/// The `reconcile.external-secrets.io/created-by` label value for the ExternalSecret
/// `namespace/name`: lets the controller find Secrets it created under an old target name.
pub fn created_by_label(namespace: &str, name: &str) -> String {
    sha3_224_hex(&format!("{namespace}/{name}"))
}

/// `status.syncedResourceVersion` for an ExternalSecret: `<generation>-<hash of its labels and
/// annotations>` (ESO's `ctrlutil.GetResourceVersion`). A change to the spec (generation) or
/// to any label/annotation (e.g. `force-sync`) changes it and forces a refresh.
pub fn synced_resource_version(es: &ExternalSecret) -> String {
    let empty = BTreeMap::new();
    let annotations = es.metadata.annotations.as_ref().unwrap_or(&empty);
    let labels = es.metadata.labels.as_ref().unwrap_or(&empty);
    let meta = format!(
        "{{annotations:{} labels:{}}}",
        go_format_string_map(annotations),
        go_format_string_map(labels)
    );
    format!(
        "{}-{}",
        es.metadata.generation.unwrap_or(0),
        sha3_224_hex(&meta)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn bytes_map(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn data_hash_matches_go_for_a_typical_secret() {
        // Go: fmt.Sprintf("%+v", map[string][]byte{...}) then sha3.Sum224.
        let data = bytes_map(&[
            ("password", b"s3cr3t"),
            ("user", b"admin"),
            ("empty", b""),
            ("b", &[0, 255, 10]),
        ]);
        assert_eq!(
            go_format_byte_map(&data),
            "map[b:[0 255 10] empty:[] password:[115 51 99 114 51 116] user:[97 100 109 105 110]]"
        );
        assert_eq!(
            data_hash(&data),
            "8554d6b93f28b92b26baf9eb2c37d6a95c0c1f24a9073f5ba541fb11"
        );
    }

    #[test]
    fn data_hash_of_no_data_matches_go_for_empty_and_nil_maps() {
        assert_eq!(
            data_hash(&BTreeMap::new()),
            "74a974446e359fb3e6baff9bd0058950e6edd0f040888d9989b0a11b"
        );
    }

    #[test]
    fn data_hash_keeps_non_ascii_keys_and_spaces_raw() {
        let data = bytes_map(&[("a b", b"x y"), ("é", "é".as_bytes())]);
        assert_eq!(
            go_format_byte_map(&data),
            "map[a b:[120 32 121] é:[195 169]]"
        );
        assert_eq!(
            data_hash(&data),
            "361ab7deeae707b60c21f8dc51acc7e9e467e113d00cd4c7c4fa32ca"
        );
    }

    #[test]
    fn created_by_label_is_the_hash_of_namespace_slash_name() {
        assert_eq!(
            created_by_label("app", "db"),
            "d7d26ad99ae83c312acc79ee48ac1e4ea7819cd3ca8505d0823ce06a"
        );
    }

    fn es_with_meta(
        generation: i64,
        annotations: &[(&str, &str)],
        labels: &[(&str, &str)],
    ) -> ExternalSecret {
        let to_map = |e: &[(&str, &str)]| -> Option<BTreeMap<String, String>> {
            (!e.is_empty()).then(|| {
                e.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
        };
        ExternalSecret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("app".into()),
                generation: Some(generation),
                annotations: to_map(annotations),
                labels: to_map(labels),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn synced_resource_version_matches_go_struct_formatting() {
        // Go: %+v of struct{annotations, labels map[string]string}.
        let es = es_with_meta(
            3,
            &[("force-sync", "1700000000")],
            &[("team", "a"), ("app", "db")],
        );
        assert_eq!(
            synced_resource_version(&es),
            "3-401263d30df5966f711a512ba131a0329aad057027ab45e35f619e4b"
        );
    }

    #[test]
    fn synced_resource_version_without_metadata_matches_go_nil_maps() {
        let es = es_with_meta(1, &[], &[]);
        assert_eq!(
            synced_resource_version(&es),
            "1-f47fe3c0b255b6dd8047cdffa772587bb829efe7a1cb70febeda2eb2"
        );
    }

    #[test]
    fn synced_resource_version_changes_with_an_annotation() {
        let before = es_with_meta(1, &[], &[]);
        let after = es_with_meta(1, &[("force-sync", "1")], &[]);
        assert_ne!(
            synced_resource_version(&before),
            synced_resource_version(&after)
        );
    }
}
