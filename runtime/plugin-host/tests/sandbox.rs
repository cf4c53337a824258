//! Hostile plugins cannot stop, crash or take over the host: every misbehaviour is stopped by
//! the limit meant for it, reported with a message naming that limit, and followed by a normal
//! call on the same store that succeeds.

mod common;

use common::*;
use esox_plugin_host::PluginOrigin;
use esox_provider::{ProviderError, RemoteRef};

async fn get(store: &esox_plugin_host::StoreClient, key: &str) -> Result<Vec<u8>, ProviderError> {
    store.get_secret(&RemoteRef::key(key)).await
}

/// A store on the hostile fixture with no egress.
fn hostile(host: &esox_plugin_host::PluginHost) -> esox_plugin_host::StoreClient {
    store(host, "hostile", serde_json::json!({}), egress(&[]))
}

async fn assert_still_serves(store: &esox_plugin_host::StoreClient) {
    assert_eq!(
        get(store, "ok").await.unwrap(),
        b"fine",
        "the call after the hostile one must succeed"
    );
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_cpu_budget() {
    let (host, _cache) = host_with(test_limits()).await;
    let store = hostile(&host);
    let err = get(&store, "spin").await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Internal(m) if m.contains("CPU budget")),
        "{err:?}"
    );
    assert_still_serves(&store).await;
}

#[tokio::test]
async fn unbounded_memory_growth_is_stopped_by_the_memory_cap() {
    let (host, _cache) = host_with(test_limits()).await;
    let store = hostile(&host);
    let err = get(&store, "hog").await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Internal(m) if m.contains("memory limit of 32 MiB")),
        "{err:?}"
    );
    assert_still_serves(&store).await;
}

#[tokio::test]
async fn a_panic_is_a_trap_that_discards_the_instance_and_nothing_else() {
    let (host, _cache) = host_with(test_limits()).await;
    let store = hostile(&host);
    assert_eq!(get(&store, "calls").await.unwrap(), b"1");
    assert_eq!(
        get(&store, "calls").await.unwrap(),
        b"2",
        "instances are reused between calls"
    );
    let err = get(&store, "panic").await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Internal(m) if m.contains("plugin crashed")),
        "{err:?}"
    );
    assert_eq!(
        get(&store, "calls").await.unwrap(),
        b"1",
        "the trapped instance was replaced by a fresh one"
    );
    assert_still_serves(&store).await;
}

#[tokio::test]
async fn an_oversized_response_is_refused() {
    let limits = test_limits();
    let (max, budget) = (limits.max_response_bytes, limits.copy_budget());
    let (host, _cache) = host_with(limits).await;
    let store = hostile(&host);

    // Exactly the limit passes.
    let value = store
        .get_secret(&RemoteRef::key(format!("bytes:{max}")))
        .await
        .unwrap();
    assert_eq!(value.len(), max);

    // Past the limit but within the copy budget: copied, measured exactly, refused.
    let err = get(&store, &format!("bytes:{}", max + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Internal(m) if m.contains(&format!("{} bytes", max + 1))),
        "{err:?}"
    );

    // Past the copy budget (4 MiB): refused before the host allocates for it.
    assert!(4 << 20 > budget);
    let err = get(&store, "huge").await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Internal(m) if m.contains("nothing of it was copied")),
        "{err:?}"
    );
    assert_still_serves(&store).await;
}

#[tokio::test]
async fn waiting_on_host_io_forever_is_stopped_by_the_call_timeout() {
    let (host, _cache) = host_with(test_limits()).await;
    let store = hostile(&host);
    let err = get(&store, "sleep").await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Unavailable(m) if m.contains("timed out")),
        "{err:?}"
    );
    assert_still_serves(&store).await;
}

/// A one-shot HTTP server on loopback that answers 204 to whatever comes.
async fn tiny_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    port
}

#[tokio::test]
async fn egress_reaches_only_the_allow_list_and_denials_are_counted() {
    let (host, _cache) = host_with(test_limits()).await;
    let port = tiny_server().await;
    let allowed = format!("http://127.0.0.1:{port}");
    let store = store(
        &host,
        "hostile",
        serde_json::json!({}),
        egress(&[allowed.as_str()]),
    );

    // Positive control: the allowed origin is reachable through the policy.
    assert_eq!(
        get(&store, &format!("get:{allowed}/x")).await.unwrap(),
        b"status:204"
    );
    assert_eq!(host.metrics().egress_denied_count("hostile"), 0);

    // Another port on the same host, another host, and the cloud metadata endpoint: denied.
    for url in [
        format!("http://127.0.0.1:{}/x", port.wrapping_add(1)),
        "https://example.com/".to_string(),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string(),
    ] {
        assert_eq!(
            get(&store, &format!("get:{url}")).await.unwrap(),
            b"error:denied",
            "{url}"
        );
    }
    assert_eq!(host.metrics().egress_denied_count("hostile"), 3);
    assert_still_serves(&store).await;
}

#[tokio::test]
async fn a_store_without_egress_reaches_nothing() {
    let (host, _cache) = host_with(test_limits()).await;
    let port = tiny_server().await;
    let store = hostile(&host);
    let answer = get(&store, &format!("get:http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    // The host denies before connecting (the counter below). The plugin usually sees the
    // denial itself; under load the guest can still be finishing the (empty) request body when
    // the host has already failed the request, and then wstd reports the body stream's error
    // ("connection reset") first. Either way nothing was reached. (Known SDK race, noted.)
    assert!(
        answer == b"error:denied" || answer == b"error:connection reset",
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(host.metrics().egress_denied_count("hostile"), 1);
}

#[tokio::test]
async fn stores_never_share_instances() {
    let (host, _cache) = host_with(test_limits()).await;
    let a = hostile(&host);
    let b = hostile(&host);
    assert_eq!(get(&a, "calls").await.unwrap(), b"1");
    assert_eq!(get(&a, "calls").await.unwrap(), b"2");
    assert_eq!(
        get(&b, "calls").await.unwrap(),
        b"1",
        "store b has its own instance"
    );
    assert!(matches!(
        get(&a, "spin").await,
        Err(ProviderError::Internal(_))
    ));
    assert_eq!(
        get(&b, "calls").await.unwrap(),
        b"2",
        "a trap in store a does not touch store b"
    );
}

#[tokio::test]
async fn a_new_instance_never_sees_what_an_earlier_one_left_in_its_slot() {
    // One instance slot in the whole pool, so store b's instance runs in the very memory,
    // tables and stack store a's instance used. Both ways of resetting a slot are checked:
    // pages kept resident and restored in place (the default), and pages returned to the OS.
    for keep_resident_bytes in [esox_plugin_host::KEEP_RESIDENT_DEFAULT, 0] {
        let host = host_from(esox_plugin_host::HostConfig {
            limits: esox_plugin_host::Limits {
                instances_per_store: 1,
                calls_per_instance: 2,
                ..test_limits()
            },
            max_instances: 1,
            keep_resident_bytes,
            ..Default::default()
        })
        .await;
        let a = hostile(&host);
        assert_eq!(get(&a, "plant:tenant-a-value").await.unwrap(), b"planted");
        assert_eq!(
            get(&a, "seek:tenant-a-value").await.unwrap(),
            b"found",
            "control: an instance sees what it planted itself"
        );
        // That was a's instance's second call, so it has been recycled and the slot is free.
        let b = hostile(&host);
        assert_eq!(
            get(&b, "seek:tenant-a-value").await.unwrap(),
            b"absent",
            "keep_resident_bytes = {keep_resident_bytes}: store b's fresh instance saw store a's data"
        );
    }
}

#[tokio::test]
async fn a_plugin_built_for_an_unsupported_contract_is_refused_before_instantiation() {
    let (host, _cache) = host_with(test_limits()).await;
    let bytes = std::fs::read(wasm("esox_fixture_future_contract.wasm")).unwrap();
    let err = host
        .load(PluginOrigin::File("future.wasm".into()), &bytes)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("esox:provider@9.0.0") && err.contains("0.1.x"),
        "{err}"
    );
    assert!(host.plugin("from the future").is_none());
    // The host still loads and runs good plugins afterwards.
    let store = hostile(&host);
    assert_still_serves(&store).await;
}

#[tokio::test]
async fn a_core_module_is_not_a_plugin() {
    let (host, _cache) = host_with(test_limits()).await;
    let err = host
        .load(PluginOrigin::File("core.wasm".into()), b"\0asm\x01\0\0\0")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a WebAssembly component"), "{err}");
}

#[tokio::test]
async fn precompiled_artefacts_are_reused_and_tampered_ones_are_not_trusted() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("wasm");
    let config = || esox_plugin_host::HostConfig {
        limits: test_limits(),
        cache_dir: Some(dir.clone()),
        max_instances: 8,
        ..Default::default()
    };
    let bytes = std::fs::read(wasm("esox_plugin_fake.wasm")).unwrap();

    // Mapped from the artefact file, not copied: its code is file-backed (cache.rs).
    let mapped = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .any(|l| l.contains(dir.to_str().unwrap()) && l.ends_with(".cwasm"))
    };
    let host = esox_plugin_host::PluginHost::new(config()).unwrap();
    let first = host.load(PluginOrigin::Embedded, &bytes).await.unwrap();
    assert!(first.compiled, "the first load compiles");
    assert!(
        mapped(),
        "a fresh compile is swapped for its mapped artefact"
    );
    drop(host);
    assert!(!mapped(), "unmapped with the host");
    let host = esox_plugin_host::PluginHost::new(config()).unwrap();
    let second = host.load(PluginOrigin::Embedded, &bytes).await.unwrap();
    assert!(
        !second.compiled,
        "the second load uses the precompiled artefact"
    );
    assert!(mapped(), "the precompiled artefact is mapped");
    drop(host);

    // Corrupt the artefact: it must be recompiled, not deserialized.
    let artefact = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .unwrap();
    let mut content = std::fs::read(&artefact).unwrap();
    let mid = content.len() / 2;
    content[mid] ^= 0xff;
    std::fs::write(&artefact, content).unwrap();
    let third = esox_plugin_host::PluginHost::new(config())
        .unwrap()
        .load(PluginOrigin::Embedded, &bytes)
        .await
        .unwrap();
    assert!(third.compiled, "a tampered artefact is recompiled");
}
