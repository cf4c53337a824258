//! The real-API test harness: every integration test and the demo talk to a real
//! kube-apiserver and a real LocalStack brought up here, never to an imitation.
//!
//! - [`Stack`] starts (or shares) one Kubernetes API + LocalStack with the project's RBAC applied
//!   and hands out clients: admin, the controller's least-privilege identity, and AWS SDK clients.
//! - Two backends behind it ([`Backend`]): `local` runs etcd, kube-apiserver,
//!   kube-controller-manager and LocalStack as host processes (binaries and venv from
//!   [`prereqs`]); `containers` runs k3s and LocalStack through testcontainers.
//! - [`TestNamespace`] isolates each test; [`ManagedProcess`] runs child processes (the `esox`
//!   binary in controller tests) with logs captured and no chance of outliving the test.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let stack = esox_e2e::Stack::shared().await?;
//! let ns = stack.new_namespace("my-test").await?;
//! let client = stack.admin_client();
//! let secrets = stack.secretsmanager_client();
//! # let _ = (ns, client, secrets); Ok(()) }
//! ```

pub mod containers;
pub mod kubeconfig;
pub mod local;
pub mod manifests;
pub mod namespace;
pub mod pki;
pub mod prereqs;
pub mod process;
pub mod stack;
pub mod vault;
pub mod webhook;

/// The ACM SDK the harness builds its clients with, for tests that shape requests.
pub use aws_sdk_acm;
pub use namespace::TestNamespace;
pub use process::{ManagedProcess, SpawnError};
pub use stack::{Backend, Stack};
