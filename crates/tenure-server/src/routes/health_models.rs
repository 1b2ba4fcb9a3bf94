//! The workspace's health models (docs/health.md, "Models per segment"):
//! `GET /v1/health-models`, `PUT /v1/health-models/{name}`, `DELETE /v1/health-models/{name}`.
//! A change goes through the writer, which sets the models in the engine and reconciles
//! every segment with them, appending the entries and exits that causes. Admin keys only;
//! scoped to the caller's workspace.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use tenure_core::health::AssignedModel;
use tenure_core::time::format_instant;

use crate::AppState;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};
use crate::writer::{OpDone, WorkspaceOp};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/health-models", get(list)).route(
        "/v1/health-models/{name}",
        get(show).put(put).delete(delete),
    )
}

fn invalid(message: String) -> ApiError {
    ApiError::new(Code::InvalidHealthModel, message)
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        Code::HealthModelNotFound,
        format!(
            "no health model `{name}` is stored in this workspace (GET /v1/health-models lists them; the shipped `saas_default` is not stored)"
        ),
    )
}

async fn rows(
    state: &AppState,
    ws: &tenure_core::WorkspaceId,
) -> Result<Vec<tenure_store::HealthModelRow>, ApiError> {
    let (store, ws) = (state.store.clone(), ws.clone());
    tokio::task::spawn_blocking(move || store.with(|c| c.health_models(&ws)))
        .await
        .map_err(|_| ApiError::new(Code::Internal, "read interrupted"))?
        .map_err(Into::into)
}

fn row_json(row: &tenure_store::HealthModelRow) -> Value {
    json!({
        "name": row.name,
        "definition": serde_json::from_str::<Value>(&row.definition).unwrap_or(Value::Null),
        "updated_at": format_instant(row.updated_at),
    })
}

#[utoipa::path(
    get, path = "/v1/health-models", tag = "health",
    responses(
        (status = 200, description = "The stored models and the order they are tried in", body = Value),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<axum::Json<Value>, ApiError> {
    let rows = rows(&state, &caller.workspace).await?;
    // The order models are tried in, as the engine runs them.
    let engine = crate::routes::engine_for(&state, &caller.workspace).await?;
    let order: Vec<String> = engine
        .read()
        .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?
        .health_models()
        .models()
        .map(|m| m.name.clone())
        .collect();
    Ok(axum::Json(json!({
        "models": rows.iter().map(row_json).collect::<Vec<_>>(),
        "order": order,
    })))
}

#[utoipa::path(
    get, path = "/v1/health-models/{name}", tag = "health",
    params(("name" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "The stored model", body = Value),
        (status = 404, description = "`health_model_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(name): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let rows = rows(&state, &caller.workspace).await?;
    let row = rows
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| not_found(&name))?;
    Ok(axum::Json(row_json(row)))
}

#[utoipa::path(
    put, path = "/v1/health-models/{name}", tag = "health",
    params(("name" = String, Path, description = "The model's name")),
    request_body(content = Value, content_type = "application/json", description = "A health model (docs/health.md), with optional `applies_to` and `priority`"),
    responses(
        (status = 200, description = "Stored; the segments it moved (`reconciled`)", body = Value),
        (status = 400, description = "`malformed_json`, `invalid_health_model`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn put(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let mut value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(Code::MalformedJson, format!("body: {e}")))?;
    match value.get("name") {
        None => value["name"] = Value::from(name.clone()),
        Some(Value::String(n)) if *n == name => {}
        Some(other) => {
            return Err(invalid(format!(
                "name: {other} differs from the name in the path (`{name}`)"
            )));
        }
    }
    let model = AssignedModel::parse(&value).map_err(invalid)?;
    let source = value.to_string();
    let done = state
        .ingestor
        .segment(
            caller.workspace.clone(),
            WorkspaceOp::PutHealthModel {
                model: Box::new(model),
                source,
            },
        )
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?;
    match done {
        OpDone::Reconciled { entered, exited } => {
            super::record(
                &state,
                &caller,
                "health_model.saved",
                name.clone(),
                String::new(),
            )
            .await;
            Ok(axum::Json(json!({
                "name": name,
                "definition": value,
                "reconciled": {"entered": entered, "exited": exited},
            })))
        }
        OpDone::Refused(message) => Err(invalid(message)),
        _ => Err(not_found(&name)),
    }
}

#[utoipa::path(
    delete, path = "/v1/health-models/{name}", tag = "health",
    params(("name" = String, Path, description = "The model's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`health_model_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let done = state
        .ingestor
        .segment(
            caller.workspace.clone(),
            WorkspaceOp::DeleteHealthModel { name: name.clone() },
        )
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?;
    match done {
        OpDone::Reconciled { .. } => {
            super::record(&state, &caller, "health_model.deleted", name, String::new()).await;
            Ok(StatusCode::NO_CONTENT)
        }
        OpDone::Refused(message) => Err(invalid(message)),
        _ => Err(not_found(&name)),
    }
}
