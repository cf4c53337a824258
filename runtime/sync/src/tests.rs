//! Specification tests of the pipeline: an ExternalSecret manifest, the provider's answers and
//! the existing Secret inline; the expected Secret (or decision) inline.

use std::collections::{BTreeMap, BTreeSet};

use esox_api::{ExternalSecret, StoreKind};
use esox_provider::{FindQuery, MetadataPolicy, ProviderError, RemoteRef};

use crate::hash::{ANNOTATION_DATA_HASH, LABEL_CREATED_BY, LABEL_MANAGED};
use crate::*;

fn es(yaml: &str) -> ExternalSecret {
    serde_yaml::from_str(yaml).expect("test manifest parses")
}

fn store(name: &str) -> StoreRef {
    StoreRef {
        kind: StoreKind::SecretStore,
        name: name.into(),
    }
}

fn get(store_name: &str, key: &str) -> ProviderRequest {
    ProviderRequest {
        store: store(store_name),
        op: ProviderOp::GetSecret(RemoteRef::key(key)),
    }
}

fn get_map(store_name: &str, key: &str) -> ProviderRequest {
    ProviderRequest {
        store: store(store_name),
        op: ProviderOp::GetSecretMap(RemoteRef::key(key)),
    }
}

fn value(v: &str) -> Result<Answer, ProviderError> {
    Ok(Answer::Value(v.as_bytes().to_vec()))
}

fn map_answer(entries: &[(&str, &str)]) -> Result<Answer, ProviderError> {
    Ok(Answer::Map(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    ))
}

fn bytes(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn strings(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn written(outcome: Outcome) -> DesiredSecret {
    match outcome.action {
        Action::Write(secret) => secret,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn build_simple(es: &ExternalSecret, answers: Answers) -> Result<Outcome, SyncError> {
    build(es, &answers, &TemplateInputs::default(), None)
}

const DB_ES: &str = r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db, namespace: app, labels: {team: payments}}
spec:
  secretStoreRef: {name: aws}
  data:
    - secretKey: password
      remoteRef: {key: prod/db, property: password}
    - secretKey: username
      remoteRef: {key: prod/db, property: username}
"#;

// ---------------------------------------------------------------- plan

#[test]
fn plan_lists_one_request_per_distinct_remote_ref_in_processing_order() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws, kind: SecretStore}
  data:
    - {secretKey: a, remoteRef: {key: shared}}
    - {secretKey: b, remoteRef: {key: shared}}
    - {secretKey: c, remoteRef: {key: other, version: AWSPREVIOUS}, sourceRef: {storeRef: {name: vault, kind: ClusterSecretStore}}}
  dataFrom:
    - extract: {key: prod/db, metadataPolicy: Fetch}
    - find: {path: /prod, name: {regexp: "^db-"}, tags: {env: prod}}
"#);
    let plan = plan(&es).unwrap();
    assert_eq!(
        plan.requests,
        [
            ProviderRequest {
                store: store("aws"),
                op: ProviderOp::GetSecretMap(RemoteRef {
                    key: "prod/db".into(),
                    metadata_policy: MetadataPolicy::Fetch,
                    ..Default::default()
                }),
            },
            ProviderRequest {
                store: store("aws"),
                op: ProviderOp::GetAllSecrets(FindQuery {
                    name_regexp: Some("^db-".into()),
                    path: Some("/prod".into()),
                    tags: strings(&[("env", "prod")]),
                }),
            },
            get("aws", "shared"),
            ProviderRequest {
                store: StoreRef {
                    kind: StoreKind::ClusterSecretStore,
                    name: "vault".into()
                },
                op: ProviderOp::GetSecret(RemoteRef {
                    key: "other".into(),
                    version: Some("AWSPREVIOUS".into()),
                    ..Default::default()
                }),
            },
        ]
    );
    assert_eq!(plan.stores().len(), 2);
}

#[test]
fn plan_lists_template_sources_once() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom: [{extract: {key: k}}]
  target:
    template:
      templateFrom:
        - configMap: {name: tpl, items: [{key: a}]}
        - configMap: {name: tpl, items: [{key: b}]}
          secret: {name: tpl-secret, items: [{key: c}]}
"#);
    assert_eq!(
        plan(&es).unwrap().template_sources,
        [
            TemplateSource::ConfigMap("tpl".into()),
            TemplateSource::Secret("tpl-secret".into())
        ]
    );
}

#[test]
fn plan_refuses_entries_without_a_store_and_generators() {
    let no_store =
        es("metadata: {name: x}\nspec:\n  data: [{secretKey: a, remoteRef: {key: k}}]\n");
    assert_eq!(
        plan(&no_store),
        Err(SyncError::NoStore {
            field: "spec.data[0]".into()
        })
    );

    let generator = es(r#"
metadata: {name: x}
spec:
  dataFrom: [{sourceRef: {generatorRef: {kind: Password, name: pw}}}]
"#);
    assert!(matches!(
        plan(&generator),
        Err(SyncError::GeneratorNotSupported { .. })
    ));
}

// ---------------------------------------------------------------- data and dataFrom

#[test]
fn data_entries_become_secret_keys_with_eso_labels_and_hash() {
    let es = es(DB_ES);
    let answers = Answers::from([
        (
            ProviderRequest {
                store: store("aws"),
                op: ProviderOp::GetSecret(RemoteRef {
                    property: Some("password".into()),
                    ..RemoteRef::key("prod/db")
                }),
            },
            value("s3cr3t"),
        ),
        (
            ProviderRequest {
                store: store("aws"),
                op: ProviderOp::GetSecret(RemoteRef {
                    property: Some("username".into()),
                    ..RemoteRef::key("prod/db")
                }),
            },
            value("admin"),
        ),
    ]);
    let secret = written(build_simple(&es, answers).unwrap());
    assert_eq!(secret.name, "db");
    assert_eq!(secret.namespace, "app");
    assert_eq!(secret.type_, "Opaque");
    assert_eq!(
        secret.data,
        bytes(&[("password", "s3cr3t"), ("username", "admin")])
    );
    assert_eq!(secret.labels[LABEL_MANAGED], "true");
    assert_eq!(
        secret.labels[LABEL_CREATED_BY],
        created_by_label("app", "db")
    );
    // No template: the ExternalSecret's own labels are copied.
    assert_eq!(secret.labels["team"], "payments");
    assert_eq!(
        secret.annotations[ANNOTATION_DATA_HASH],
        data_hash(&secret.data)
    );
    assert!(secret.controller_owner);
}

#[test]
fn later_data_from_entries_overwrite_earlier_ones_and_data_wins_over_data_from() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom:
    - extract: {key: first}
    - extract: {key: second}
  data:
    - {secretKey: user, remoteRef: {key: explicit}}
"#);
    let answers = Answers::from([
        (
            get_map("aws", "first"),
            map_answer(&[("user", "from-first"), ("host", "h1"), ("only1", "x")]),
        ),
        (
            get_map("aws", "second"),
            map_answer(&[("user", "from-second"), ("host", "h2")]),
        ),
        (get("aws", "explicit"), value("from-data")),
    ]);
    let secret = written(build_simple(&es, answers).unwrap());
    assert_eq!(
        secret.data,
        bytes(&[("host", "h2"), ("only1", "x"), ("user", "from-data")])
    );
}

#[test]
fn extract_converts_invalid_key_characters_unless_rewritten() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom:
    - extract: {key: plain}
    - extract: {key: unicode, conversionStrategy: Unicode}
    - extract: {key: rewritten}
      rewrite: [{regexp: {source: "/", target: "-"}}]
"#);
    let answers = Answers::from([
        (get_map("aws", "plain"), map_answer(&[("db/user", "u")])),
        (get_map("aws", "unicode"), map_answer(&[("db pass", "p")])),
        (get_map("aws", "rewritten"), map_answer(&[("a/b", "x")])),
    ]);
    let secret = written(build_simple(&es, answers).unwrap());
    assert_eq!(
        secret.data,
        bytes(&[("a-b", "x"), ("db_U0020_pass", "p"), ("db_user", "u")])
    );
}

#[test]
fn a_rewrite_that_leaves_an_invalid_key_is_an_error_with_eso_tip() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom:
    - extract: {key: k}
      rewrite: [{regexp: {source: "^x", target: "y"}}]
"#);
    let answers = Answers::from([(get_map("aws", "k"), map_answer(&[("a/b", "v")]))]);
    let err = build_simple(&es, answers).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error processing spec.dataFrom[0].extract, err: invalid secret keys (TIP: use rewrite or \
         conversionStrategy to change keys): key has invalid character /, only alphanumeric, '-', '.' \
         and '_' are allowed: a/b"
    );
    assert_eq!(
        err.condition_message(),
        "could not get secret data from provider"
    );
}

#[test]
fn find_results_are_keyed_by_secret_name_and_decoded() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom:
    - find: {name: {regexp: "^db"}, decodingStrategy: Base64}
"#);
    let req = ProviderRequest {
        store: store("aws"),
        op: ProviderOp::GetAllSecrets(FindQuery {
            name_regexp: Some("^db".into()),
            ..Default::default()
        }),
    };
    let answers = Answers::from([(req, map_answer(&[("db/one", "b25l"), ("db-two", "dHdv")]))]);
    let secret = written(build_simple(&es, answers).unwrap());
    assert_eq!(secret.data, bytes(&[("db-two", "two"), ("db_one", "one")]));
}

#[test]
fn decoding_failures_name_the_entry_strategy_and_key() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  data: [{secretKey: cert, remoteRef: {key: k, decodingStrategy: Base64}}]
"#);
    let answers = Answers::from([(get("aws", "k"), value("not base64!"))]);
    let err = build_simple(&es, answers).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "error processing spec.data[0] (key: k), err: error applying decoding strategy Base64 to data: failure decoding key cert:"
        ),
        "{err}"
    );
}

#[test]
fn auto_decoding_keeps_values_that_are_not_base64() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  data:
    - {secretKey: a, remoteRef: {key: encoded, decodingStrategy: Auto}}
    - {secretKey: b, remoteRef: {key: plain, decodingStrategy: Auto}}
"#);
    let answers = Answers::from([
        (get("aws", "encoded"), value("aGVsbG8=")),
        (get("aws", "plain"), value("hello world")),
    ]);
    let secret = written(build_simple(&es, answers).unwrap());
    assert_eq!(secret.data, bytes(&[("a", "hello"), ("b", "hello world")]));
}

#[test]
fn null_bytes_fail_only_when_the_entry_says_fail() {
    let manifest = |policy: &str| {
        es(&format!(
            r#"
metadata: {{name: db, namespace: app}}
spec:
  secretStoreRef: {{name: aws}}
  data: [{{secretKey: bin, remoteRef: {{key: k, nullBytePolicy: {policy}}}}}]
"#
        ))
    };
    let answers = || Answers::from([(get("aws", "k"), Ok(Answer::Value(vec![1, 0, 2])))]);
    assert_eq!(
        build_simple(&manifest("Fail"), answers()),
        Err(SyncError::NullBytes {
            field: "spec.data[0] (key: k)".into(),
            key: "bin".into()
        })
    );
    let secret = written(build_simple(&manifest("Ignore"), answers()).unwrap());
    assert_eq!(secret.data["bin"], vec![1, 0, 2]);
}

// ---------------------------------------------------------------- NotFound and deletionPolicy

fn es_with_policies(creation: &str, deletion: &str) -> ExternalSecret {
    es(&format!(
        r#"
metadata: {{name: db, namespace: app}}
spec:
  secretStoreRef: {{name: aws}}
  target: {{creationPolicy: {creation}, deletionPolicy: {deletion}}}
  dataFrom: [{{extract: {{key: gone}}}}]
  data: [{{secretKey: kept, remoteRef: {{key: present}}}}]
"#
    ))
}

#[test]
fn not_found_is_an_error_under_retain() {
    let es = es_with_policies("Owner", "Retain");
    let answers = Answers::from([
        (get_map("aws", "gone"), Err(ProviderError::NotFound)),
        (get("aws", "present"), value("v")),
    ]);
    let err = build_simple(&es, answers).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        "error processing spec.dataFrom[0].extract, err: secret not found"
    );
}

#[test]
fn not_found_entries_are_skipped_with_an_event_under_delete_and_merge() {
    for deletion in ["Delete", "Merge"] {
        let es = es_with_policies("Owner", deletion);
        let answers = Answers::from([
            (get_map("aws", "gone"), Err(ProviderError::NotFound)),
            (get("aws", "present"), value("v")),
        ]);
        let outcome = build_simple(&es, answers).unwrap();
        assert_eq!(
            outcome.missing_provider_secrets,
            ["secret does not exist at provider using spec.dataFrom[0]"]
        );
        assert_eq!(written(outcome).data, bytes(&[("kept", "v")]));
    }
}

#[test]
fn other_provider_errors_are_never_skipped() {
    let es = es_with_policies("Owner", "Delete");
    let answers = Answers::from([
        (
            get_map("aws", "gone"),
            Err(ProviderError::PermissionDenied("AccessDenied".into())),
        ),
        (get("aws", "present"), value("v")),
    ]);
    let err = build_simple(&es, answers).unwrap_err();
    assert!(!err.is_not_found());
    assert_eq!(err.reason(), "SecretSyncedError");
}

fn all_gone() -> Answers {
    Answers::from([
        (get_map("aws", "gone"), Err(ProviderError::NotFound)),
        (get("aws", "present"), Err(ProviderError::NotFound)),
    ])
}

#[test]
fn no_data_under_delete_and_owner_deletes_the_secret() {
    let outcome = build_simple(&es_with_policies("Owner", "Delete"), all_gone()).unwrap();
    assert_eq!(outcome.action, Action::Delete { name: "db".into() });
    assert_eq!(
        outcome.condition(),
        (
            "SecretDeleted",
            "secret deleted due to DeletionPolicy=Delete"
        )
    );
    assert_eq!(outcome.missing_provider_secrets.len(), 2);
}

#[test]
fn no_data_under_delete_without_owner_is_an_error_that_is_not_retried() {
    let err = build_simple(&es_with_policies("Orphan", "Delete"), all_gone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to delete secret db: creationPolicy=Orphan is not Owner"
    );
    assert_eq!(err.condition_message(), "could not delete secret");
    assert!(!err.is_retryable());
}

#[test]
fn an_empty_find_under_retain_keeps_the_secret() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom: [{find: {path: /nothing}}]
"#);
    let req = ProviderRequest {
        store: store("aws"),
        op: ProviderOp::GetAllSecrets(FindQuery {
            path: Some("/nothing".into()),
            ..Default::default()
        }),
    };
    let outcome = build_simple(&es, Answers::from([(req, map_answer(&[]))])).unwrap();
    assert_eq!(outcome.action, Action::Retain);
    assert_eq!(
        outcome.condition(),
        (
            "SecretSynced",
            "secret retained due to DeletionPolicy=Retain"
        )
    );
}

#[test]
fn no_data_under_merge_deletion_removes_the_managed_keys() {
    let es = es_with_policies("Merge", "Merge");
    let existing = ExistingSecret {
        type_: "Opaque".into(),
        data: bytes(&[("kept", "old"), ("theirs", "t")]),
        managed_data_keys: BTreeSet::from(["kept".to_string()]),
        ..Default::default()
    };
    let secret = written(
        build(
            &es,
            &all_gone(),
            &TemplateInputs::default(),
            Some(&existing),
        )
        .unwrap(),
    );
    assert_eq!(secret.data, bytes(&[("theirs", "t")]));
    assert!(secret.managed_data_keys.is_empty());
}

// ---------------------------------------------------------------- creation policies

fn one_key_answers() -> Answers {
    Answers::from([
        (get_map("aws", "gone"), map_answer(&[("fresh", "new")])),
        (get("aws", "present"), value("v")),
    ])
}

#[test]
fn merge_creation_without_a_secret_reports_missing() {
    let outcome = build_simple(&es_with_policies("Merge", "Retain"), one_key_answers()).unwrap();
    assert_eq!(outcome.action, Action::Missing);
    assert_eq!(
        outcome.condition(),
        (
            "SecretMissing",
            "secret will not be created due to CreationPolicy=Merge"
        )
    );
}

#[test]
fn merge_creation_keeps_foreign_keys_and_drops_keys_it_managed_before() {
    let existing = ExistingSecret {
        type_: "kubernetes.io/tls".into(),
        data: bytes(&[
            ("tls.crt", "cert"),
            ("kept", "old"),
            ("removed-upstream", "x"),
        ]),
        managed_data_keys: BTreeSet::from(["kept".to_string(), "removed-upstream".to_string()]),
        ..Default::default()
    };
    let es = es_with_policies("Merge", "Retain");
    let secret = written(
        build(
            &es,
            &one_key_answers(),
            &TemplateInputs::default(),
            Some(&existing),
        )
        .unwrap(),
    );
    assert_eq!(
        secret.data,
        bytes(&[("fresh", "new"), ("kept", "v"), ("tls.crt", "cert")])
    );
    assert_eq!(
        secret.managed_data_keys,
        BTreeSet::from(["fresh".to_string(), "kept".to_string()])
    );
    assert_eq!(secret.type_, "kubernetes.io/tls");
    assert_eq!(
        secret.annotations[ANNOTATION_DATA_HASH],
        data_hash(&secret.data)
    );
    assert!(!secret.controller_owner);
    assert!(!secret.labels.contains_key(LABEL_CREATED_BY));
}

#[test]
fn owner_creation_replaces_all_existing_data() {
    let existing = ExistingSecret {
        data: bytes(&[("foreign", "x")]),
        ..Default::default()
    };
    let es = es_with_policies("Owner", "Retain");
    let secret = written(
        build(
            &es,
            &one_key_answers(),
            &TemplateInputs::default(),
            Some(&existing),
        )
        .unwrap(),
    );
    assert_eq!(secret.data, bytes(&[("fresh", "new"), ("kept", "v")]));
}

#[test]
fn none_creation_writes_nothing_but_reports_synced() {
    let outcome = build_simple(&es_with_policies("None", "Retain"), one_key_answers()).unwrap();
    assert_eq!(outcome.action, Action::Nothing);
    assert_eq!(outcome.condition(), ("SecretSynced", "secret synced"));
}

#[test]
fn immutable_secret_whose_data_would_change_is_an_error() {
    let mut es = es_with_policies("Owner", "Retain");
    let existing = ExistingSecret {
        data: bytes(&[("fresh", "old")]),
        immutable: true,
        ..Default::default()
    };
    let err = build(
        &es,
        &one_key_answers(),
        &TemplateInputs::default(),
        Some(&existing),
    )
    .unwrap_err();
    assert_eq!(
        err.condition_message(),
        "could not update secret, target is immutable"
    );
    assert!(!err.is_retryable());

    // With target.immutable the existing data is left alone, so nothing fails.
    es.spec.target.as_mut().unwrap().immutable = true;
    let secret = written(
        build(
            &es,
            &one_key_answers(),
            &TemplateInputs::default(),
            Some(&existing),
        )
        .unwrap(),
    );
    assert_eq!(secret.data, bytes(&[("fresh", "old")]));
    assert!(secret.immutable);
}

// ---------------------------------------------------------------- templates

fn templated(template_yaml: &str) -> ExternalSecret {
    es(&format!(
        r#"
metadata: {{name: db, namespace: app, labels: {{team: payments}}}}
spec:
  secretStoreRef: {{name: aws}}
  dataFrom: [{{extract: {{key: creds}}}}]
  target:
    template:
{}
"#,
        template_yaml
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    ))
}

fn creds() -> Answers {
    Answers::from([(
        get_map("aws", "creds"),
        map_answer(&[("username", "admin"), ("password", "s3cr3t")]),
    )])
}

#[test]
fn template_data_replaces_provider_keys_by_default() {
    let es = templated(
        r#"type: kubernetes.io/basic-auth
data:
  dsn: "postgres://{{ .username }}:{{ .password }}@db"
metadata:
  labels: {app: "{{ .username }}"}
  annotations: {note: static}"#,
    );
    let secret = written(build_simple(&es, creds()).unwrap());
    assert_eq!(secret.type_, "kubernetes.io/basic-auth");
    assert_eq!(secret.data, bytes(&[("dsn", "postgres://admin:s3cr3t@db")]));
    assert_eq!(secret.labels["app"], "admin");
    assert_eq!(secret.annotations["note"], "static");
    // With a template the ExternalSecret's own labels are not copied.
    assert!(!secret.labels.contains_key("team"));
}

#[test]
fn merge_policy_keeps_provider_keys_and_template_wins() {
    let es = templated(
        r#"mergePolicy: Merge
data:
  password: "{{ .password | upper }}""#,
    );
    let secret = written(build_simple(&es, creds()).unwrap());
    assert_eq!(
        secret.data,
        bytes(&[("password", "S3CR3T"), ("username", "admin")])
    );
}

#[test]
fn a_template_with_only_metadata_keeps_provider_keys() {
    let es = templated("metadata:\n  labels: {a: b}");
    let secret = written(build_simple(&es, creds()).unwrap());
    assert_eq!(
        secret.data,
        bytes(&[("password", "s3cr3t"), ("username", "admin")])
    );
    assert_eq!(secret.labels["a"], "b");
}

#[test]
fn template_from_config_map_values_and_keys_and_values_then_data_wins() {
    let es = templated(
        r#"templateFrom:
  - configMap:
      name: tpl
      items:
        - {key: config.yaml}
        - {key: pairs, templateAs: KeysAndValues}
  - literal: "extra: '{{ .username }}-lit'"
  - target: Annotations
    literal: "owner: '{{ .username }}'"
  - target: labels
    secret: {name: tpl-secret, items: [{key: tier}]}
data:
  extra: overridden"#,
    );
    let inputs = TemplateInputs {
        config_maps: BTreeMap::from([(
            "tpl".to_string(),
            strings(&[
                ("config.yaml", "user: {{ .username }}\n"),
                ("pairs", "a: '{{ .password }}'\nb: plain"),
            ]),
        )]),
        secrets: BTreeMap::from([(
            "tpl-secret".to_string(),
            bytes(&[("tier", "gold-{{ .username }}")]),
        )]),
    };
    let secret = written(build(&es, &creds(), &inputs, None).unwrap());
    assert_eq!(
        secret.data,
        bytes(&[
            ("a", "s3cr3t"),
            ("b", "plain"),
            ("config.yaml", "user: admin\n"),
            ("extra", "overridden")
        ])
    );
    assert_eq!(secret.annotations["owner"], "admin");
    assert_eq!(secret.labels["tier"], "gold-admin");
}

#[test]
fn template_from_a_missing_config_map_or_key_is_an_error() {
    let es = templated("templateFrom:\n  - configMap: {name: tpl, items: [{key: absent}]}");
    let err = build(&es, &creds(), &TemplateInputs::default(), None).unwrap_err();
    assert_eq!(
        err,
        SyncError::TemplateSourceMissing {
            kind: "configmap",
            name: "tpl".into()
        }
    );
    assert_eq!(err.condition_message(), "could not update secret");

    let inputs = TemplateInputs {
        config_maps: BTreeMap::from([("tpl".to_string(), strings(&[("other", "x")]))]),
        ..Default::default()
    };
    let err = build(&es, &creds(), &inputs, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not apply template: error fetching templateFrom data: error in configmap tpl: missing key absent"
    );
}

#[test]
fn keys_and_values_refuses_non_string_values_like_go() {
    let es = templated("templateFrom:\n  - literal: \"port: 5432\"");
    let err = build_simple(&es, creds()).unwrap_err();
    assert!(err.to_string().contains("is not a string"), "{err}");
}

#[test]
fn template_from_values_decoding_strategy_decodes_rendered_values() {
    let es =
        templated("templateFrom:\n  - literal: \"bin: aGk=\"\n    valuesDecodingStrategy: Base64");
    let secret = written(build_simple(&es, creds()).unwrap());
    assert_eq!(secret.data, bytes(&[("bin", "hi")]));
}

#[test]
fn a_template_error_is_reported_with_the_key() {
    let es = templated("data:\n  x: \"{{ .missing }}\"");
    let err = build_simple(&es, creds()).unwrap_err();
    assert!(err.to_string().starts_with("could not apply template: could not execute template: unable to execute template at key x"), "{err}");
    assert_eq!(err.condition_message(), "could not update secret");
}

#[test]
fn privileged_templates_are_refused_by_the_controller_too() {
    let es = templated("type: bootstrap.kubernetes.io/token");
    assert!(matches!(
        build_simple(&es, creds()),
        Err(SyncError::InvalidTemplate(_))
    ));
    let es = templated(
        "type: kubernetes.io/service-account-token\nmetadata:\n  annotations: {kubernetes.io/service-account.name: admin}",
    );
    assert!(matches!(
        build_simple(&es, creds()),
        Err(SyncError::InvalidTemplate(_))
    ));
    let es = templated("templateFrom:\n  - target: metadata.ownerReferences\n    literal: 'a: b'");
    assert!(matches!(
        build_simple(&es, creds()),
        Err(SyncError::InvalidTemplate(_))
    ));
}

#[test]
fn rewrite_transform_uses_the_template_engine() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom:
    - extract: {key: creds}
      rewrite: [{transform: {template: "db_{{ .value | upper }}"}}]
"#);
    let secret = written(build_simple(&es, creds()).unwrap());
    assert_eq!(
        secret.data,
        bytes(&[("db_PASSWORD", "s3cr3t"), ("db_USERNAME", "admin")])
    );
}

#[test]
fn a_missing_answer_is_reported_as_a_controller_bug() {
    let es = es(DB_ES);
    assert!(matches!(
        build_simple(&es, Answers::new()),
        Err(SyncError::MissingAnswer { .. })
    ));
}

// ---------------------------------------------------------------- value-free errors

/// A value that must never appear in an error, and its base64.
const SECRET: &str = "hunter2-DISTINCTIVE";
const SECRET_B64: &str = "aHVudGVyMi1ESVNUSU5DVElWRQ==";

fn assert_value_free(err: &SyncError) {
    let text = err.to_string();
    for leak in [SECRET, SECRET_B64, "hunter2", "DISTINCTIVE"] {
        assert!(!text.contains(leak), "error leaks {leak:?}: {text}");
    }
    assert!(text.len() < 2048, "error detail is not capped: {text}");
}

fn secret_creds() -> Answers {
    Answers::from([(
        get_map("aws", "creds"),
        map_answer(&[("username", "admin"), ("password", SECRET)]),
    )])
}

#[test]
fn keys_and_values_literal_rendering_a_scalar_does_not_quote_it() {
    let es = templated("templateFrom:\n  - literal: \"{{ .password }}\"");
    let err = build_simple(&es, secret_creds()).unwrap_err();
    assert_value_free(&err);
    assert!(
        err.to_string().ends_with(
            "could not unmarshal template to 'map[string][]byte': the template rendered a string, not a map of keys to values"
        ),
        "{err}"
    );
}

#[test]
fn keys_and_values_yaml_errors_do_not_quote_the_output() {
    // Invalid YAML, a duplicate key and a list, each built from the secret value.
    for literal in [
        "\"a: [{{ .password }}\\nb: c\"",
        "\"{{ .password }}: x\\n{{ .password }}: y\"",
        "\"- {{ .password }}\"",
    ] {
        let es = templated(&format!("templateFrom:\n  - literal: {literal}"));
        let err = build_simple(&es, secret_creds()).unwrap_err();
        assert_value_free(&err);
        assert!(
            err.to_string()
                .contains("could not unmarshal template to 'map[string][]byte': "),
            "{err}"
        );
    }
    let es = templated("templateFrom:\n  - literal: \"a: [{{ .password }}\\nb: c\"");
    let err = build_simple(&es, secret_creds()).unwrap_err();
    assert!(err.to_string().contains("at line"), "{err}");
}

#[test]
fn rewrite_merge_errors_do_not_quote_the_value() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom:
    - extract: {key: creds}
      rewrite: [{merge: {strategy: Extract}}]
"#);
    for bad in [
        format!("\"{SECRET}\""),
        SECRET.to_string(),
        format!("{{\"a\": {SECRET}}}"),
    ] {
        let answers = Answers::from([(
            get_map("aws", "creds"),
            map_answer(&[("password", bad.as_str())]),
        )]);
        let err = build_simple(&es, answers).unwrap_err();
        assert_value_free(&err);
        assert!(
            err.to_string().contains(
                "failed rewrite operation[0]: merge failed with failed to unmarshal JSON of key \"password\": "
            ),
            "{err}"
        );
    }
}

#[test]
fn base64_decoding_errors_name_an_offset_not_the_value() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  data: [{secretKey: pw, remoteRef: {key: k, decodingStrategy: Base64}}]
  dataFrom: [{extract: {key: creds, decodingStrategy: Base64URL}}]
"#);
    let answers = Answers::from([
        (get("aws", "k"), value(SECRET)),
        (get_map("aws", "creds"), map_answer(&[("password", "aGk=")])),
    ]);
    let err = build_simple(&es, answers).unwrap_err();
    assert_value_free(&err);
    assert!(
        err.to_string()
            .ends_with("failure decoding key pw: illegal base64 data at input byte 7"),
        "{err}"
    );

    let es = es_data_from_decoding("Base64URL");
    let answers = Answers::from([(
        get_map("aws", "creds"),
        map_answer(&[("password", "hunter2=DISTINCTIVE")]),
    )]);
    let err = build_simple(&es, answers).unwrap_err();
    assert_value_free(&err);
    assert!(
        err.to_string()
            .contains("failure decoding key password: illegal base64 data at input byte"),
        "{err}"
    );

    // valuesDecodingStrategy on rendered template values.
    let es = templated(
        "templateFrom:\n  - literal: \"pw: '{{ .password }}'\"\n    valuesDecodingStrategy: Base64",
    );
    let err = build_simple(&es, secret_creds()).unwrap_err();
    assert_value_free(&err);
    assert!(
        err.to_string()
            .contains("illegal base64 data at input byte 7"),
        "{err}"
    );
}

fn es_data_from_decoding(strategy: &str) -> ExternalSecret {
    es(&format!(
        r#"
metadata: {{name: db, namespace: app}}
spec:
  secretStoreRef: {{name: aws}}
  dataFrom: [{{extract: {{key: creds, decodingStrategy: {strategy}}}}}]
"#
    ))
}

#[test]
fn long_error_details_are_capped() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  data: [{secretKey: pw, remoteRef: {key: k}}]
"#);
    let answers = Answers::from([(
        get("aws", "k"),
        Err(ProviderError::Backend(("x".repeat(100_000)).into())),
    )]);
    let err = build_simple(&es, answers).unwrap_err();
    assert!(err.to_string().len() < 2048, "{}", err.to_string().len());
    assert!(err.to_string().ends_with("(truncated)"), "{err}");
}

#[test]
fn egress_denied_is_retried_like_permission_denied() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  data: [{secretKey: pw, remoteRef: {key: k}}]
"#);
    for e in [
        ProviderError::EgressDenied("example.com".into()),
        ProviderError::Throttled {
            message: "slow down".into(),
            retry_after_ms: Some(5),
        },
        ProviderError::Backend("boom".into()),
    ] {
        let answers = Answers::from([(get("aws", "k"), Err(e.clone()))]);
        let err = build_simple(&es, answers).unwrap_err();
        assert!(err.is_retryable(), "{e:?}");
        assert!(!err.is_not_found());
    }
}

#[test]
fn a_hostile_template_fails_on_its_output_limit() {
    let es = templated("data:\n  x: '{{ range 64 }}{{ repeat 16777216 \"x\" }}{{ end }}'");
    let err = build_simple(&es, creds()).unwrap_err();
    assert!(
        err.to_string()
            .contains("template exceeded its output limit of 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn an_existing_immutable_target_keeps_its_data_and_its_template_metadata() {
    let mut es = templated(
        "metadata:\n  labels: {tier: db}\n  annotations: {owner: '{{ .username }}'}\ndata:\n  dsn: '{{ .username }}:{{ .password }}'",
    );
    es.spec.target.as_mut().unwrap().immutable = true;
    let existing = ExistingSecret {
        type_: "Opaque".into(),
        data: bytes(&[("dsn", "old:old")]),
        immutable: true,
        ..Default::default()
    };
    let secret =
        written(build(&es, &creds(), &TemplateInputs::default(), Some(&existing)).unwrap());
    // Data and type stay as they were: the Secret cannot change them.
    assert_eq!(secret.data, bytes(&[("dsn", "old:old")]));
    assert_eq!(secret.type_, "Opaque");
    assert!(secret.immutable);
    // The template's metadata is still applied, so a refresh does not strip it.
    assert_eq!(secret.labels.get("tier").map(String::as_str), Some("db"));
    assert_eq!(
        secret.annotations.get("owner").map(String::as_str),
        Some("admin")
    );
}

// ---------------------------------------------------------------- fields the compatibility table names

#[test]
fn a_generator_in_data_is_refused_before_any_read() {
    let generator = es(r#"
metadata: {name: x}
spec:
  secretStoreRef: {name: aws}
  data: [{secretKey: a, remoteRef: {key: k}, sourceRef: {generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: pw}}}]
"#);
    let err = plan(&generator).unwrap_err();
    assert!(
        matches!(&err, SyncError::GeneratorNotSupported { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("spec.data[0]"), "{err}");
}

#[test]
fn extract_passes_property_and_version_and_a_data_from_store_override_to_its_store() {
    let es = es(r#"
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: aws}
  dataFrom:
    - extract: {key: creds, property: nested, version: v2}
      sourceRef: {storeRef: {name: vault, kind: ClusterSecretStore}}
    - extract: {key: other}
      sourceRef: {storeRef: {name: local}}
"#);
    assert_eq!(
        plan(&es).unwrap().requests,
        [
            ProviderRequest {
                store: StoreRef {
                    kind: StoreKind::ClusterSecretStore,
                    name: "vault".into()
                },
                op: ProviderOp::GetSecretMap(RemoteRef {
                    key: "creds".into(),
                    property: Some("nested".into()),
                    version: Some("v2".into()),
                    ..Default::default()
                }),
            },
            get_map("local", "other"),
        ]
    );
}

#[test]
fn null_byte_policy_applies_to_extract_and_find_values() {
    for (entry, req) in [
        (
            "extract: {key: k, nullBytePolicy: Fail}",
            get_map("aws", "k"),
        ),
        (
            "find: {name: {regexp: k}, nullBytePolicy: Fail}",
            ProviderRequest {
                store: store("aws"),
                op: ProviderOp::GetAllSecrets(FindQuery {
                    name_regexp: Some("k".into()),
                    ..Default::default()
                }),
            },
        ),
    ] {
        let manifest = |e: &str| {
            es(&format!(
                "metadata: {{name: db, namespace: app}}\nspec:\n  secretStoreRef: {{name: aws}}\n  dataFrom: [{{{e}}}]\n"
            ))
        };
        let answers = || {
            Answers::from([(
                req.clone(),
                Ok(Answer::Map(BTreeMap::from([(
                    "bin".to_string(),
                    vec![1, 0, 2],
                )]))),
            )])
        };
        let err = build_simple(&manifest(entry), answers()).unwrap_err();
        assert!(
            matches!(err, SyncError::NullBytes { .. }),
            "{entry}: {err:?}"
        );
        let ignored = entry.replace("Fail", "Ignore");
        let secret = written(build_simple(&manifest(&ignored), answers()).unwrap());
        assert_eq!(secret.data["bin"], vec![1, 0, 2]);
    }
}

#[test]
fn merge_priority_policy_strict_fails_on_a_missing_priority_key_and_ignore_skips_it() {
    let manifest = |policy: &str| {
        es(&format!(
            r#"
metadata: {{name: db, namespace: app}}
spec:
  secretStoreRef: {{name: aws}}
  dataFrom:
    - extract: {{key: creds}}
      rewrite: [{{merge: {{strategy: Extract, conflictPolicy: Ignore, priority: [absent, b], priorityPolicy: {policy}}}}}]
"#
        ))
    };
    let answers = || {
        Answers::from([(
            get_map("aws", "creds"),
            map_answer(&[("a", r#"{"x": "1"}"#), ("b", r#"{"x": "2"}"#)]),
        )])
    };
    let err = build_simple(&manifest("Strict"), answers()).unwrap_err();
    assert!(err.to_string().contains("\"absent\""), "{err}");
    let secret = written(build_simple(&manifest("IgnoreNotFound"), answers()).unwrap());
    // b has priority over a.
    assert_eq!(secret.data, bytes(&[("x", "2")]));
}

#[test]
fn template_finalizers_are_put_on_the_secret() {
    let es = templated("metadata:\n  finalizers: [example.com/keep]");
    let secret = written(build_simple(&es, creds()).unwrap());
    assert_eq!(secret.finalizers, ["example.com/keep"]);
}
