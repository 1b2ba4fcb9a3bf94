//! The caller's workspace and its settings: `GET /v1/workspace`, `PUT /v1/workspace`
//! (`{"renewals": "auto" | "implicit" | "explicit"}`, docs/metrics.md, "Renewals"). A change
//! goes through the writer, which reads every subscription under the new policy and
//! reconciles every segment, appending the entries and exits that causes. Admin keys only.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use tenure_core::subscription::Renewals;

use crate::AppState;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};
use crate::writer::{OpDone, WorkspaceOp};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/workspace", get(show).put(update))
}

#[utoipa::path(
    get, path = "/v1/workspace", tag = "workspace",
    responses(
        (status = 200, description = "The workspace and its settings", body = Value),
    )
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<axum::Json<Value>, ApiError> {
    let engine = super::engine_for(&state, &caller.workspace).await?;
    let renewals = engine
        .read()
        .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?
        .renewals();
    Ok(axum::Json(json!({
        "id": caller.workspace,
        "settings": {"renewals": renewals.as_str()},
    })))
}

#[utoipa::path(
    put, path = "/v1/workspace", tag = "workspace",
    request_body(content = Value, content_type = "application/json", description = "`{\"renewals\": \"auto\" | \"implicit\" | \"explicit\"}`"),
    responses(
        (status = 200, description = "Stored; the segments it moved", body = Value),
        (status = 400, description = "`malformed_json`, `invalid_request`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let invalid = |message: String| ApiError::new(Code::InvalidRequest, message);
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("expected {{\"renewals\": \"auto\"}}: {e}")))?;
    let Some(settings) = value.as_object() else {
        return Err(invalid(
            "expected an object of settings: {\"renewals\": \"explicit\"}".into(),
        ));
    };
    if let Some(unknown) = settings.keys().find(|k| k.as_str() != "renewals") {
        return Err(invalid(format!(
            "`{unknown}` is not a workspace setting; the settings are: renewals"
        )));
    }
    let text = settings
        .get("renewals")
        .and_then(Value::as_str)
        .unwrap_or("");
    let renewals = Renewals::parse(text).ok_or_else(|| {
        invalid(format!(
            "renewals: `{text}` is not a renewal policy: expected auto, implicit or explicit"
        ))
    })?;
    let done = state
        .ingestor
        .segment(
            caller.workspace.clone(),
            WorkspaceOp::SetRenewals { renewals },
        )
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?;
    let (entered, exited) = match done {
        OpDone::Reconciled { entered, exited } => (entered, exited),
        _ => (0, 0),
    };
    let target = caller.workspace.to_string();
    let detail = format!("renewals = {}", renewals.as_str());
    super::record(
        &state,
        &caller,
        "workspace.settings_changed",
        target,
        detail,
    )
    .await;
    Ok(axum::Json(json!({
        "id": caller.workspace,
        "settings": {"renewals": renewals.as_str()},
        "segments_reconciled": {"entered": entered, "exited": exited},
    })))
}
