//! The controller's HTTP endpoints, on two ports as in ESO: `/metrics` (Prometheus text) on
//! the metrics address, `/healthz` and `/readyz` on the liveness address. `/readyz` turns 200
//! once the watch caches have their first full list, so a rollout waits for a warm controller.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Bind both listeners (so a port clash fails start-up) and serve them in the background.
/// Returns the bound addresses (useful with port 0).
pub async fn serve(
    metrics_addr: SocketAddr,
    live_addr: SocketAddr,
    registry: Arc<Registry>,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let metrics = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    crate::metrics::encode(&registry),
                )
            }
        }),
    );
    let live = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "watch caches not synced yet",
                        )
                    }
                }
            }),
        );
    let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on --metrics-addr {metrics_addr}: {e}"))?;
    let live_listener = tokio::net::TcpListener::bind(live_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on --live-addr {live_addr}: {e}"))?;
    let bound = (metrics_listener.local_addr()?, live_listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(metrics_listener, metrics).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(live_listener, live).await {
            tracing::error!(error = %e, "health server stopped");
        }
    });
    Ok(bound)
}
