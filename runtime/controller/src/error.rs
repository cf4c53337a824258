//! Errors a reconcile returns to the controller runtime (which retries with backoff). Sync
//! failures the user must see are not here: they become status conditions and events.

/// A reconcile failed in a way only a retry can fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing a status failed (API server unavailable, conflict, or RBAC).
    #[error(
        "could not write status: {0}; check the API server and the controller's RBAC (deploy/rbac.yaml)"
    )]
    StatusWrite(#[source] kube::Error),
    /// Reading or writing an object failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// The controller is shutting down (its sync permits are closed).
    #[error("the controller is shutting down: {0}")]
    Task(String),
    /// A reconcile panicked (a bug in esox): caught, so only this object is affected; it is
    /// retried with backoff.
    #[error("internal error while reconciling (a bug in esox; retried with backoff)")]
    Panicked,
}
