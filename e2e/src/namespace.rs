//! [`TestNamespace`]: a fresh namespace per test, so tests sharing one stack cannot see each
//! other's objects; deleted when the test ends, and the moment a test fails it prints the tail
//! of every process log so the failure explains itself in CI output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use sha2::{Digest, Sha256};

/// Bytes of each process log printed when a test fails.
const LOG_TAIL_BYTES: u64 = 6000;

/// A namespace created for one test. Deleted on drop (the namespace controller then removes its
/// contents in the background); on drop during a panic it first prints every process log tail.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
    admin: kube::Config,
}

/// `<prefix>-<8 hex>`, a valid namespace name (prefix lowercased, invalid characters replaced,
/// cut so the whole name fits in 63 characters).
pub fn unique_name(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha256::new();
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(SEQ.fetch_add(1, Ordering::SeqCst).to_le_bytes());
    hasher.update(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    let suffix = &hex::encode(hasher.finalize())[..8];
    let mut clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    clean.truncate(63 - 9);
    let clean = clean.trim_matches('-');
    if clean.is_empty() {
        format!("t-{suffix}")
    } else {
        format!("{clean}-{suffix}")
    }
}

impl TestNamespace {
    pub(crate) async fn create(admin: kube::Config, prefix: &str) -> anyhow::Result<Self> {
        let name = unique_name(prefix);
        let client = kube::Client::try_from(admin.clone())?;
        let namespaces: Api<Namespace> = Api::all(client);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("esox.dev/e2e".to_owned(), "true".to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(Self { name, admin })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[esox-e2e] test failed in namespace {}; process logs follow",
                self.name
            );
            crate::process::print_log_tails(LOG_TAIL_BYTES);
        }
        // Drop cannot await, and the test's runtime may be shutting down: delete from a thread
        // with a runtime of its own, waiting at most a few seconds.
        let (name, admin) = (self.name.clone(), self.admin.clone());
        let deleter = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(client) = kube::Client::try_from(admin) else {
                    return;
                };
                let namespaces: Api<Namespace> = Api::all(client);
                let params = DeleteParams::background();
                let delete = namespaces.delete(&name, &params);
                let _ = tokio::time::timeout(Duration::from_secs(10), delete).await;
            });
        });
        let _ = deleter.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let a = unique_name("Secret_RoundTrip");
        let b = unique_name("Secret_RoundTrip");
        assert_ne!(a, b);
        assert!(a.starts_with("secret-roundtrip-"), "{a}");
        assert_eq!(a.len(), "secret-roundtrip-".len() + 8);
        let long = unique_name(&"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
        assert!(unique_name("--").starts_with("t-"));
    }
}
