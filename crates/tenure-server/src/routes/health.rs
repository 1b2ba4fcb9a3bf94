//! Health endpoints.
//!
//! - `GET /health/live`: the process answers HTTP (liveness: restart it if this fails).
//! - `GET /health` and `GET /health/ready`: the server can take events (readiness): the
//!   writer is running and the database answers. 503 with the failing part named otherwise,
//!   so a load balancer stops sending ingest to a server that would only fail it.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;

/// Readiness, at `/health` (what load balancers probe by default) and `/health/ready` (the
/// annotated handler's; the OpenAPI document copies it to the other).
pub(crate) const READY_ROUTES: [&str; 2] = ["/health/ready", "/health"];

pub fn router() -> Router<AppState> {
    let mut router = Router::new().route("/health/live", get(live));
    for path in READY_ROUTES {
        router = router.route(path, get(ready));
    }
    router
}

#[utoipa::path(
    get, path = "/health/live", tag = "health",
    responses(
        (status = 200, description = "The process answers (liveness)", body = Value),
    )
)]
pub(crate) async fn live() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

/// How long the database may take to answer a readiness probe.
const DATABASE_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

#[utoipa::path(
    get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready: the writer runs and the database answers", body = Value),
        (status = 503, description = "Not ready: which part is not (`writer`, `database`)", body = Value),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, axum::Json<Value>) {
    let writer = state.ingestor.is_running();
    let store = state.store.clone();
    let probe = tokio::task::spawn_blocking(move || store.with(|c| c.workspaces()).map(|_| ()));
    let database = match tokio::time::timeout(DATABASE_PROBE, probe).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => {
            tracing::warn!("readiness: the database did not answer: {e}");
            Err("unreachable")
        }
        Ok(Err(_)) => Err("probe failed"),
        Err(_) => Err("no answer within 5 s"),
    };
    let ok = writer && database.is_ok();
    let body = json!({
        "status": if ok { "ok" } else { "unavailable" },
        "database": state.store.url().backend_name(),
        "checks": {
            "writer": if writer { "running" } else { "stopped" },
            "database_reachable": match database { Ok(()) => "ok", Err(why) => why },
        },
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}
