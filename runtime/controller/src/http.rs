//! The controller's HTTP endpoints, on two ports as in ESO: `/metrics` (Prometheus text) on
//! the metrics address, `/healthz` and `/readyz` on the liveness address, answered from
//! [`Health`](crate::health::Health): 200 with the list of checks, or 503 with the failing
//! ones marked `[-]`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::health::Health;

fn answer(result: Result<String, String>) -> (StatusCode, String) {
    match result {
        Ok(text) => (StatusCode::OK, text),
        Err(text) => (StatusCode::SERVICE_UNAVAILABLE, text),
    }
}

/// Bind both listeners (so a port clash fails start-up) and serve them in the background.
/// Returns the bound addresses (useful with port 0).
pub async fn serve(
    metrics_addr: SocketAddr,
    live_addr: SocketAddr,
    registry: Arc<Registry>,
    health: Arc<Health>,
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
    let (h1, h2) = (health.clone(), health);
    let live = Router::new()
        .route(
            "/healthz",
            get(move || {
                let health = h1.clone();
                async move { answer(health.liveness(Instant::now())) }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let health = h2.clone();
                async move { answer(health.readiness(Instant::now())) }
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
