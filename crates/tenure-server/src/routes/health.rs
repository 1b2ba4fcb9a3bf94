//! `GET /health`: answers 200 once the server is ready (engines loaded, writer running).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({"status": "ok", "database": state.store.url().backend_name()}))
}
