//! Liveness and readiness probes, and the table of pods.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// How long `/readyz` waits for the database before it says not ready, well inside a load
/// balancer's health-check timeout.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /readyz`: the database answers within [`READY_WITHIN`].
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(READY_WITHIN, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
        Err(_) => {
            tracing::warn!("readiness check failed: the database did not answer within 1s");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// `GET /pods`: every pod of the platform and which one this is (docs/architecture.md,
/// Pods), so an integrator can find the host a credential belongs to.
pub async fn pods(State(state): State<AppState>) -> Json<Value> {
    let s = &state.settings;
    Json(json!({"pod": s.pod_id, "pods": s.pod_table()}))
}
