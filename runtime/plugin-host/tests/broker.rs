//! The auth broker grants a plugin exactly what its store's config references, and the pool
//! and resource bounds hold against a hostile plugin (contract 0.3 fixture `hostile`).
//!
//! Behind the broker sits a recording [`HostServices`]: it answers every request it receives
//! and remembers it, so each test shows both what the plugin got and that a refused request
//! never reached the services (the API server, in the controller).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use esox_plugin_host::{
    AmbientIdentity, HostConfig, HostServices, Limits, PluginHost, ServiceAccountToken,
    StoreClient, StoreContext, StoreSpec, TokenRequest,
};
use esox_provider::{ProviderError, RemoteRef};
use serde_json::json;

/// Answers everything and records what it was asked.
#[derive(Default)]
struct Recording {
    asked: Mutex<Vec<String>>,
}

impl Recording {
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl HostServices for Recording {
    async fn secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("secret {namespace:?} {name} {key}"));
        Ok(format!("value-of-{name}-{key}").into_bytes())
    }
    async fn labelled_secret_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
        labels: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        self.asked.lock().unwrap().push(format!(
            "secret {namespace:?} {name} {key} labelled {labels:?}"
        ));
        Ok(format!("value-of-{name}-{key}").into_bytes())
    }
    async fn config_map_key(
        &self,
        name: &str,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<String, ProviderError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("configmap {namespace:?} {name} {key}"));
        // A `.crt` key holds a CA certificate, as a caProvider's would.
        if key.ends_with(".crt") {
            return Ok(TEST_CA.to_string());
        }
        Ok(format!("cm-{name}-{key}"))
    }
    async fn service_account_token(
        &self,
        r: TokenRequest,
    ) -> Result<ServiceAccountToken, ProviderError> {
        self.asked.lock().unwrap().push(format!(
            "token {:?} {} {:?} {:?}",
            r.namespace, r.name, r.audiences, r.expiration_seconds
        ));
        Ok(ServiceAccountToken {
            token: format!("jwt-for-{}", r.name),
            expires_at: 0,
            annotations: vec![],
        })
    }
}

async fn get(store: &StoreClient, key: &str) -> String {
    match store.get_secret(&RemoteRef::key(key)).await {
        Ok(v) => String::from_utf8_lossy(&v).into_owned(),
        Err(e) => format!("host-error:{e:?}"),
    }
}

/// A throwaway self-signed CA (public certificate only).
const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIUWYXIjFQuDMjLNkt1QJfuecs3T8swCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMZXNveCB0ZXN0IENBMCAXDTI2MTIwNTE2Mzg1N1oYDzIxMjYx
MTExMTYzODU3WjAXMRUwEwYDVQQDDAxlc294IHRlc3QgQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAARvw5rQFL4rOU2cYMmuszvomkUlh8uWrJpYtSLD6ox29IUR
YgIwasBGEP8FG+ZQJaZ3dVQTDaXJcIalMIdJ93Mao1MwUTAdBgNVHQ4EFgQUJpUN
pDBoM54+tZzzpU7e9aNBWsQwHwYDVR0jBBgwFoAUJpUNpDBoM54+tZzzpU7e9aNB
WsQwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAgYq/x48dS/WI
WlnYA+qF4cGhecbaRWtX87OFZc5zM1ACIH8Sp60WBGJrwwUXR3AtZeRWAr4B2N4q
FmfuBI4SYs5L
-----END CERTIFICATE-----
";

fn hostile_in(
    host: &PluginHost,
    context: StoreContext,
    config: serde_json::Value,
) -> (StoreClient, Arc<Recording>) {
    let services = Arc::new(Recording::default());
    let store = store_in(
        host,
        context,
        "hostile",
        config,
        egress(&[]),
        services.clone(),
    );
    (store, services)
}

fn denied(answer: &str) -> bool {
    answer.starts_with("error:") && answer.contains("PermissionDenied")
}

#[tokio::test]
async fn a_required_label_is_checked_before_a_secret_is_read() {
    let (host, _) = host_with(test_limits()).await;
    // `labelled.secretRef` requires `esox.test/use: hostile`: the services are asked to check
    // it (the controller's refuse a Secret without it, runtime/esox/tests/e2e_webhook.rs).
    let (store, services) = hostile_in(
        &host,
        StoreContext::secret_store("team-a", "s"),
        json!({"labelled": {"secretRef": {"name": "hook", "key": "token"}}}),
    );
    assert_eq!(
        get(&store, "secret:hook:token").await,
        "value-of-hook-token"
    );
    assert_eq!(
        services.asked(),
        vec![r#"secret None hook token labelled [("esox.test/use", "hostile")]"#.to_string()]
    );
    // The same key also referenced where no label is required: read as any reference.
    let (store, services) = hostile_in(
        &host,
        StoreContext::secret_store("team-a", "s2"),
        json!({"labelled": {"secretRef": {"name": "hook", "key": "token"}},
               "auth": {"secretRef": {"name": "hook", "key": "token"}}}),
    );
    assert_eq!(
        get(&store, "secret:hook:token").await,
        "value-of-hook-token"
    );
    assert_eq!(services.asked(), vec!["secret None hook token".to_string()]);
    // Services that cannot see labels refuse such a read rather than skip the check.
    let store = store_in(
        &host,
        StoreContext::secret_store("team-a", "s3"),
        "hostile",
        json!({"labelled": {"secretRef": {"name": "hook", "key": "token"}}}),
        egress(&[]),
        Arc::new(esox_plugin_host::NoServices),
    );
    let answer = get(&store, "secret:hook:token").await;
    assert!(
        denied(&answer) && answer.contains("esox.test/use=hostile"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_store_reads_only_the_secret_keys_its_config_references() {
    let (host, _) = host_with(test_limits()).await;
    let (store, services) = hostile_in(
        &host,
        StoreContext::secret_store("team-a", "s"),
        json!({"auth": {"secretRef": {"name": "creds", "key": "token"}},
               "unrelated": {"name": "db", "key": "password"}}),
    );
    assert_eq!(
        get(&store, "secret:creds:token").await,
        "value-of-creds-token"
    );
    assert_eq!(
        get(&store, "secret:creds:token:team-a").await,
        "value-of-creds-token",
        "the store's own namespace may be spelled out"
    );
    for refused in [
        "secret:db:password",             // in the config, but not at a declared path
        "secret:creds:other-key",         // another key of the referenced Secret
        "secret:admin-token:token",       // an unreferenced Secret in the store's namespace
        "secret:creds:token:kube-system", // the same name in another namespace
        "cm:creds:token",                 // a secret-key reference grants no ConfigMap
    ] {
        let answer = get(&store, refused).await;
        assert!(denied(&answer), "{refused}: {answer}");
    }
    assert_eq!(
        services.asked(),
        vec![
            "secret None creds token".to_string(),
            "secret Some(\"team-a\") creds token".to_string()
        ],
        "refused requests never reach the API server"
    );
    assert_eq!(host.metrics().broker_denied_count("hostile"), 5);
}

#[tokio::test]
async fn a_cluster_store_cannot_reach_other_namespaces_than_it_names() {
    let (host, _) = host_with(test_limits()).await;
    let (store, services) = hostile_in(
        &host,
        StoreContext::cluster_secret_store("css", Some("app")),
        json!({"auth": {"secretRef": {"name": "creds", "key": "token", "namespace": "infra"}}}),
    );
    assert_eq!(
        get(&store, "secret:creds:token:infra").await,
        "value-of-creds-token"
    );
    for refused in [
        "secret:creds:token:kube-system",
        "secret:creds:token", // referent: the ExternalSecret's namespace, not named
        "secret:creds:token:app", // the same, spelled out
        "secret:sh.helm.release.v1.prod.v1:release:prod",
    ] {
        let answer = get(&store, refused).await;
        assert!(denied(&answer), "{refused}: {answer}");
    }
    assert_eq!(services.asked().len(), 1);
}

#[tokio::test]
async fn ca_provider_references_grant_their_kind_only() {
    let (host, _) = host_with(test_limits()).await;
    let (store, _) = hostile_in(
        &host,
        StoreContext::secret_store("ns", "s"),
        json!({"auth": {"caProvider": {"type": "ConfigMap", "name": "ca", "key": "ca.crt"}}}),
    );
    assert_eq!(get(&store, "cm:ca:ca.crt").await, TEST_CA);
    assert!(denied(&get(&store, "secret:ca:ca.crt").await));
    // The host itself trusts that CA for this store's TLS (and only for this store).
    assert_eq!(store.egress_policy().unwrap().trust().len(), 1);
}

#[tokio::test]
async fn an_inline_ca_bundle_wins_over_the_ca_provider_beside_it() {
    use base64::Engine as _;
    let (host, _) = host_with(test_limits()).await;
    let bundle = base64::engine::general_purpose::STANDARD.encode(TEST_CA);
    // The caProvider names a key that holds no certificate: were it read, the store would be
    // refused. ESO uses the caBundle alone when both are set.
    let (store, services) = hostile_in(
        &host,
        StoreContext::secret_store("ns", "s"),
        json!({"auth": {
            "caBundle": bundle,
            "caProvider": {"type": "ConfigMap", "name": "ca", "key": "not-a-cert"}
        }}),
    );
    let answer = get(&store, "store").await;
    assert!(
        answer.contains("secret-store") && !answer.contains("caProvider"),
        "{answer}"
    );
    assert_eq!(store.egress_policy().unwrap().trust().len(), 1);
    assert!(
        services.asked().iter().all(|a| !a.starts_with("configmap")),
        "the caProvider was read: {:?}",
        services.asked()
    );
}

#[tokio::test]
async fn a_ca_that_is_not_a_certificate_refuses_the_store_naming_the_field() {
    let (host, _) = host_with(test_limits()).await;
    // An inline caBundle beside the declared caProvider path: base64 of "not a pem".
    let (store, _) = hostile_in(
        &host,
        StoreContext::secret_store("ns", "s"),
        json!({"auth": {"caBundle": "bm90IGEgcGVt"}}),
    );
    let answer = get(&store, "value").await;
    assert!(
        answer.contains("auth.caBundle") && answer.contains("holds no PEM certificate"),
        "{answer}"
    );
    let (store, _) = hostile_in(
        &host,
        StoreContext::secret_store("ns", "s"),
        json!({"auth": {"caProvider": {"type": "ConfigMap", "name": "ca", "key": "not-a-cert"}}}),
    );
    let answer = get(&store, "value").await;
    assert!(answer.contains("auth.caProvider"), "{answer}");
    // Without any CA the store trusts the public roots only.
    let (store, _) = hostile_in(&host, StoreContext::secret_store("ns", "s"), json!({}));
    let _ = get(&store, "value").await;
    assert!(store.egress_policy().unwrap().trust().is_empty());
}

#[tokio::test]
async fn tokens_need_a_referenced_account_granted_audiences_and_a_bounded_lifetime() {
    let (host, _) = host_with(test_limits()).await;
    let (store, services) = hostile_in(
        &host,
        StoreContext::secret_store("ns", "s"),
        json!({"auth": {"serviceAccountRef": {"name": "app-sa", "audiences": ["vault"]}}}),
    );
    assert_eq!(
        get(&store, "token:app-sa:-:hostile-aud:-").await,
        "jwt-for-app-sa"
    );
    assert_eq!(
        get(&store, "token:app-sa:-:vault,hostile-aud:900").await,
        "jwt-for-app-sa"
    );
    for refused in [
        "token:app-sa:-::-",                      // no audience
        "token:cluster-admin:-:hostile-aud:-",    // an unreferenced ServiceAccount
        "token:app-sa:kube-system:hostile-aud:-", // the same name elsewhere
        "token:app-sa:-:sts.amazonaws.com:-",     // an audience outside the grant
        "token:app-sa:-:hostile-aud:31536000",    // a year
    ] {
        let answer = get(&store, refused).await;
        assert!(denied(&answer), "{refused}: {answer}");
    }
    assert_eq!(
        services.asked(),
        vec![
            "token None app-sa [\"hostile-aud\"] Some(3600)".to_string(),
            "token None app-sa [\"vault\", \"hostile-aud\"] Some(900)".to_string(),
        ],
        "no lifetime asked: the cap (1 h by default); refused requests never reach the API server"
    );
}

#[tokio::test]
async fn a_token_for_the_api_servers_own_audience_needs_the_operators_grant() {
    let (host, _) = host_with(test_limits()).await;
    let config = json!({"auth": {"serviceAccountRef": {"name": "app-sa"}}});
    let (without, _) = hostile_in(&host, StoreContext::secret_store("ns", "s"), config.clone());
    let answer = get(&without, "token:app-sa:-::-").await;
    assert!(
        denied(&answer) && answer.contains("--plugin-api-audience-tokens"),
        "{answer}"
    );
    let services = Arc::new(Recording::default());
    let granted = host
        .open_store(StoreSpec {
            context: StoreContext::secret_store("ns", "s2"),
            plugin: "hostile".into(),
            config,
            settings: vec![],
            egress: egress(&[]),
            services: services.clone(),
            ambient: None,
            api_audience_tokens: true,
        })
        .unwrap();
    assert_eq!(get(&granted, "token:app-sa:-::-").await, "jwt-for-app-sa");
    // The grant is about audiences only: other ServiceAccounts stay out of reach.
    assert!(denied(&get(&granted, "token:cluster-admin:-::-").await));
    assert_eq!(
        services.asked(),
        vec!["token None app-sa [] Some(3600)".to_string()],
        "an empty audience list: the API server's own audience"
    );
}

#[tokio::test]
async fn the_controllers_identity_is_given_only_when_the_operator_grants_it() {
    let (host, _) = host_with(test_limits()).await;
    let (without, _) = hostile_in(&host, StoreContext::secret_store("ns", "s"), json!({}));
    assert!(denied(&get(&without, "ambient").await));

    let source: esox_plugin_host::AmbientSource = Arc::new(|| {
        AmbientIdentity::from_env(|k| (k == "AWS_REGION").then(|| "eu-west-1".to_string()))
    });
    let granted = host
        .open_store(StoreSpec {
            context: StoreContext::secret_store("ns", "s2"),
            plugin: "hostile".into(),
            config: json!({}),
            settings: vec![],
            egress: egress(&[]),
            services: Arc::new(Recording::default()),
            ambient: Some(source),
            api_audience_tokens: false,
        })
        .unwrap();
    assert_eq!(get(&granted, "ambient").await, "ok");
}

#[tokio::test]
async fn the_plugin_is_told_which_store_it_serves() {
    let (host, _) = host_with(test_limits()).await;
    let (store, _) = hostile_in(
        &host,
        StoreContext::cluster_secret_store("shared", Some("team-b")),
        json!({}),
    );
    let answer = get(&store, "store").await;
    assert!(
        answer.contains("cluster-secret-store")
            && answer.contains("shared")
            && answer.contains("team-b"),
        "{answer}"
    );
}

#[tokio::test]
async fn error_messages_are_cut_to_4_kib_and_a_huge_one_is_refused_before_it_is_copied() {
    // The default 64 MiB of plugin memory, so the plugin can make its 60 MiB message.
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..test_limits()
    };
    let budget = limits.copy_budget();
    let (host, _) = host_with(limits).await;
    let (store, _) = hostile_in(&host, StoreContext::secret_store("ns", "s"), json!({}));

    // Within the copy budget: copied, then cut to 4 KiB.
    let err = store
        .get_secret(&RemoteRef::key("error:100000"))
        .await
        .unwrap_err();
    let ProviderError::Backend(m) = &err else {
        panic!("{err:?}")
    };
    assert!(m.len() <= 4096 + 32 && m.len() >= 4096, "{} bytes", m.len());

    // Past it: refused before the host copies any of it, naming the budget.
    let err = store
        .get_secret(&RemoteRef::key("bigerror"))
        .await
        .unwrap_err();
    let ProviderError::Internal(m) = &err else {
        panic!("{err:?}")
    };
    assert!(
        m.contains(&format!("more than {budget} bytes")) && m.contains("nothing of it was copied"),
        "{m}"
    );
    assert!(m.len() < 512, "{} bytes", m.len());
    assert_eq!(get(&store, "ok").await, "fine");

    // A client that cannot open fails every entry of a batch with the same bounded error.
    let (broken, _) = hostile_in(
        &host,
        StoreContext::secret_store("ns", "broken"),
        json!({"bigOpenError": true}),
    );
    let many: Vec<RemoteRef> = (0..200).map(|i| RemoteRef::key(format!("k{i}"))).collect();
    let answers = broken.get_secrets(&many).await;
    assert_eq!(answers.len(), 200);
    for answer in answers {
        assert!(
            matches!(&answer, Err(ProviderError::Internal(m)) if m.contains("nothing of it was copied")),
            "{:?}",
            answer.map_err(|e| e.to_string().len())
        );
    }
}

#[tokio::test]
async fn a_host_call_past_the_copy_budget_is_refused() {
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..test_limits()
    };
    let budget = limits.copy_budget();
    let (host, _) = host_with(limits).await;
    let (store, _) = hostile_in(&host, StoreContext::secret_store("ns", "s"), json!({}));
    assert_eq!(get(&store, "log:1000").await, "logged");
    let err = store
        .get_secret(&RemoteRef::key(format!("log:{}", budget + 1)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Internal(m) if m.contains("nothing of it was copied")),
        "{err:?}"
    );
    assert_eq!(get(&store, "ok").await, "fine");
}

#[tokio::test]
async fn a_map_that_repeats_a_key_is_refused() {
    let (host, _) = host_with(test_limits()).await;
    let (store, _) = hostile_in(&host, StoreContext::secret_store("ns", "s"), json!({}));
    let err = store
        .get_secret_map(&RemoteRef::key("dupmap"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Internal(m) if m.contains("twice")),
        "{err:?}"
    );
}

#[tokio::test]
async fn handle_and_header_floods_are_stopped() {
    let (host, _) = host_with(test_limits()).await;
    let (store, _) = hostile_in(&host, StoreContext::secret_store("ns", "s"), json!({}));
    // Control: a modest number of each is fine.
    assert_eq!(get(&store, "handles:10").await, "made");
    assert_eq!(get(&store, "headers:1024").await, "made");
    // A million handles: the resource table's cap (1,024) stops it; a header set of 1 MiB:
    // the field size limit (16 KiB) does. Either way the call fails and the store serves on.
    let handles = get(&store, "handles:1000000").await;
    assert_ne!(handles, "made", "{handles}");
    let headers = get(&store, "headers:1048576").await;
    assert_ne!(headers, "made", "{headers}");
    assert_eq!(get(&store, "ok").await, "fine");
}

#[tokio::test]
async fn six_hundred_stores_of_one_namespace_leave_room_for_the_others() {
    let host = host_from(HostConfig {
        limits: Limits {
            instances_per_namespace: 8,
            acquire_timeout: Duration::from_millis(500),
            call_timeout: Duration::from_secs(2),
            ..test_limits()
        },
        max_instances: 48,
        ..Default::default()
    })
    .await;
    // A tenant opens 600 stores and keeps every one busy (each call sleeps until the call
    // timeout stops it).
    let tenant: Vec<Arc<StoreClient>> = (0..600)
        .map(|i| {
            Arc::new(
                hostile_in(
                    &host,
                    StoreContext::secret_store("tenant", &format!("s{i}")),
                    json!({}),
                )
                .0,
            )
        })
        .collect();
    let busy: Vec<_> = tenant
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move { get(&s, "sleep").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile another namespace's store syncs.
    let (other, _) = hostile_in(&host, StoreContext::secret_store("other", "s"), json!({}));
    for _ in 0..5 {
        assert_eq!(get(&other, "ok").await, "fine");
    }
    let mut waited_out = 0;
    for b in busy {
        let answer = b.await.unwrap();
        assert!(answer.starts_with("host-error:Unavailable"), "{answer}");
        if answer.contains("their share of the pool") {
            waited_out += 1;
        }
    }
    assert!(
        waited_out >= 500,
        "all but the namespace's 8 instances waited for a slot and gave up: {waited_out}"
    );
}

#[tokio::test]
async fn idle_instances_of_other_stores_are_evicted_when_the_pool_is_full() {
    let host = host_from(HostConfig {
        limits: test_limits(),
        max_instances: 12, // 4 slots for stores after the reserve
        ..Default::default()
    })
    .await;
    let stores: Vec<StoreClient> = (0..20)
        .map(|i| {
            hostile_in(
                &host,
                StoreContext::secret_store(&format!("ns{i}"), "s"),
                json!({}),
            )
            .0
        })
        .collect();
    // Each store leaves an idle instance behind; the fifth onwards must evict the oldest.
    for s in &stores {
        assert_eq!(get(s, "ok").await, "fine");
    }
    assert!(
        host.metrics()
            .instances_evicted
            .get_or_create(&esox_plugin_host::metrics::PluginLabels {
                plugin: "hostile".into()
            })
            .get()
            >= 16
    );
}
