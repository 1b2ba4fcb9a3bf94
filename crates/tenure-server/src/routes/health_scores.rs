//! `GET /v1/health-scores`: the workspace's current customers by health grade and the
//! at-risk list (red, lowest score first, with the components that cost the most points),
//! under the workspace's health models (docs/health.md). Admin keys only; scoped to the caller's
//! workspace.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/health-scores", get(overview))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Params {
    /// How many red customers to list, 1–1000 (default 20).
    limit: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/health-scores", tag = "health",
    params(Params),
    responses(
        (status = 200, description = "Current customers by grade and the at-risk list", body = Value),
        (status = 400, description = "`invalid_parameter`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn overview(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Query(params): Query<Params>,
) -> Result<axum::Json<Value>, ApiError> {
    let limit = crate::routes::limit_param(params.limit.as_deref(), 20, 1000)?;
    Ok(axum::Json(
        document(&state, &caller.workspace, limit).await?,
    ))
}

/// Counts by grade and the `limit` lowest red customers: the endpoint's body, which the
/// dashboard draws too.
pub(crate) async fn document(
    state: &AppState,
    workspace: &tenure_core::WorkspaceId,
    limit: usize,
) -> Result<Value, ApiError> {
    let now = state.clock.now();
    let ws = workspace.clone();
    let engines = state.engines.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let engine = engines.get(&ws)?;
        let engine = engine
            .read()
            .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
        let overview = engine.health_models().overview(
            engine.customers_by_place(),
            engine.names(),
            now,
            limit,
        );
        Ok(serde_json::to_value(overview).unwrap_or(Value::Null))
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "health scoring interrupted"))??;
    Ok(body)
}
