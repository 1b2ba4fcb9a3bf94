//! The workspace's API keys and audit log (docs/security.md): `GET /v1/keys` (with last
//! use; secrets are never shown again), `POST /v1/keys` (`{"kind", "name", "expires_in_days"}`:
//! the secret once), `DELETE /v1/keys/{id}` (revoked on every process within a second, the
//! dashboard sessions it opened end), `GET /v1/audit` (what admins did, newest first).
//! Admin keys only.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};
use tenure_core::KeyId;
use tenure_store::KeyKind;

use crate::AppState;
use crate::admin::NewKey;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", get(list).post(create))
        .route("/v1/keys/{id}", delete(revoke))
        .route("/v1/audit", get(audit_log))
}

#[utoipa::path(
    get, path = "/v1/keys", tag = "keys",
    responses(
        (status = 200, description = "The workspace's keys with their last use (never their secrets)", body = Value),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<axum::Json<Value>, ApiError> {
    let store = state.store.clone();
    let keys = tokio::task::spawn_blocking(move || store.with(|c| c.keys(&caller.workspace)))
        .await
        .map_err(|_| ApiError::new(Code::Internal, "key listing interrupted"))??;
    Ok(axum::Json(json!({"keys": keys})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// `write` (ingestion only) or `admin` (everything in the workspace).
    kind: String,
    /// What the key is for, shown in listings and the audit log.
    name: Option<String>,
    /// The key stops working after this many days (at least 1).
    expires_in_days: Option<u32>,
}

#[utoipa::path(
    post, path = "/v1/keys", tag = "keys",
    request_body(content = CreateBody, description = "The kind of key, an optional name and lifetime"),
    responses(
        (status = 201, description = "The key and its secret, shown this once", body = Value),
        (status = 400, description = "`invalid_request`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let invalid = |m: String| ApiError::new(Code::InvalidRequest, m);
    let body: CreateBody = serde_json::from_slice(&body).map_err(|e| {
        invalid(format!(
            "expected {{\"kind\": \"write\" | \"admin\", \"name\": \"…\", \"expires_in_days\": N}}: {e}"
        ))
    })?;
    let kind = KeyKind::parse(&body.kind)
        .ok_or_else(|| invalid(format!("kind: `{}` is not write or admin", body.kind)))?;
    let now = jiff::Timestamp::now().as_millisecond();
    let expires_at = match body.expires_in_days {
        Some(0) => return Err(invalid("expires_in_days: at least 1".into())),
        Some(days) => Some(now + i64::from(days) * 86_400_000),
        None => None,
    };
    let store = state.store.clone();
    let new = NewKey {
        kind,
        name: body.name,
        expires_at,
    };
    let (key, secret) = tokio::task::spawn_blocking(move || {
        crate::admin::create_key_with(&store, &caller.workspace, new, caller.key.as_str(), now)
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "key creation interrupted"))?
    .map_err(|e| match e {
        tenure_store::StoreError::Conflict(m) => invalid(m),
        other => other.into(),
    })?;
    let mut answer = serde_json::to_value(&key).unwrap_or(Value::Null);
    answer["secret"] = json!(secret);
    Ok((StatusCode::CREATED, axum::Json(answer)))
}

#[utoipa::path(
    delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked (on every process within a second)"),
        (status = 404, description = "`key_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || {
        ApiError::new(
            Code::KeyNotFound,
            format!("no key `{id}` still working in this workspace (GET /v1/keys lists them)"),
        )
    };
    let key_id = KeyId::parse(&id).map_err(|_| not_found())?;
    let store = state.store.clone();
    let now = jiff::Timestamp::now().as_millisecond();
    let revoked = tokio::task::spawn_blocking(move || {
        crate::admin::revoke_key(&store, &caller.workspace, &key_id, caller.key.as_str(), now)
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "revocation interrupted"))??;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// How many entries, 1–1000 (default 100).
    limit: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/audit", tag = "keys",
    params(AuditQuery),
    responses(
        (status = 200, description = "The audit log, newest first", body = Value),
        (status = 400, description = "`invalid_parameter`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn audit_log(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let limit = super::limit_param(q.limit.as_deref(), 100, 1000)?;
    let store = state.store.clone();
    let entries =
        tokio::task::spawn_blocking(move || store.with(|c| c.audit_log(&caller.workspace, limit)))
            .await
            .map_err(|_| ApiError::new(Code::Internal, "audit read interrupted"))??;
    Ok(axum::Json(json!({"entries": entries})))
}
