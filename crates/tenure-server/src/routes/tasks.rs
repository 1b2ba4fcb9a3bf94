//! Tasks (long work run in the background, `crate::tasks`): `GET /v1/tasks` (the
//! workspace's, newest first) and `GET /v1/tasks/{id}`. Admin keys only; another
//! workspace's task is not found.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", get(list))
        .route("/v1/tasks/{id}", get(show))
}

#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    responses(
        (status = 200, description = "The workspace's tasks, newest first", body = Value),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        json!({"tasks": state.tasks.list(&caller.workspace)}),
    ))
}

#[utoipa::path(
    get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task: status, times, result or error", body = Value),
        (status = 404, description = "`task_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let task = state.tasks.get(&caller.workspace, &id).ok_or_else(|| {
        ApiError::new(
            Code::TaskNotFound,
            format!(
                "no task `{id}` in this workspace (GET /v1/tasks lists them; a restart forgets finished tasks)"
            ),
        )
    })?;
    Ok(axum::Json(
        serde_json::to_value(task).unwrap_or(Value::Null),
    ))
}
