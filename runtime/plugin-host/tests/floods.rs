//! A flood of header sets leaves the host's memory bounded. Alone in its own test binary, so
//! the process's resident memory is this test's alone (tests in one binary run in parallel).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use esox_plugin_host::{Limits, NoServices, StoreContext};
use esox_provider::RemoteRef;

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test]
async fn a_header_set_flood_keeps_host_memory_bounded() {
    // Time enough that only the handle and header limits can stop the flood.
    let (host, _) = host_with(Limits {
        cpu_time: Duration::from_secs(10),
        call_timeout: Duration::from_secs(20),
        ..test_limits()
    })
    .await;
    let store = store_in(
        &host,
        StoreContext::secret_store("ns", "flood"),
        "hostile",
        serde_json::json!({}),
        egress(&[]),
        Arc::new(NoServices),
    );
    let get = |key: &'static str| {
        let store = &store;
        async move {
            store
                .get_secret(&RemoteRef::key(key))
                .await
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_else(|e| format!("host-error:{e}"))
        }
    };
    // Control and warm-up: small sets are fine, and the instance is in place before measuring.
    assert_eq!(get("headersets:4:4096").await, "made");
    let before = resident_bytes();
    // 4,000 header sets of 127 KiB: ~500 MiB held by the host under wasmtime's defaults
    // (a million handles, 128 KiB per set); 1,024 handles and 16 KiB per set bound it.
    let answer = get("headersets:4000:130000").await;
    let grown = resident_bytes().saturating_sub(before);
    assert_ne!(answer, "made");
    assert!(
        grown < 48 << 20,
        "host RSS grew by {} MiB during the flood ({answer})",
        grown >> 20
    );
    assert_eq!(get("ok").await, "fine");
}
