//! Segments over HTTP (docs/segments.md): `POST/GET /v1/segments`,
//! `GET/PUT/DELETE /v1/segments/{id}`, `POST /v1/segments/preview`,
//! `GET /v1/segments/{id}/members` and `GET /v1/customers/{id}/segments`. Admin keys only;
//! everything is scoped to the caller's workspace. Saving goes through the writer, which
//! stores the definition, backfills it and appends the resulting membership events before
//! answering.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tenure_core::segments::{Definition, SegmentId};
use tenure_core::time::format_instant;
use tenure_core::{CustomerId, LiveWorkspace, WorkspaceId};
use tenure_store::SegmentRow;

use crate::AppState;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};
use crate::routes::ingest::read_json;
use crate::writer::{OpDone, WorkspaceOp};

/// Largest definition body accepted.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/segments", get(list).post(create))
        .route("/v1/segments/preview", post(preview))
        .route("/v1/segments/{id}", get(show).put(update).delete(remove))
        .route("/v1/segments/{id}/members", get(members))
        .route("/v1/customers/{id}/segments", get(customer_segments))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(Code::Internal, "the request was interrupted"))?
}

fn read_engine(
    lock: &RwLock<LiveWorkspace>,
) -> Result<std::sync::RwLockReadGuard<'_, LiveWorkspace>, ApiError> {
    lock.read()
        .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))
}

pub(crate) fn parse_id(text: &str) -> Result<u32, ApiError> {
    SegmentId::parse(text).map(|s| s.0).ok_or_else(|| {
        ApiError::new(
            Code::SegmentNotFound,
            format!("`{text}` is not a segment id (seg_ and a number, e.g. seg_1)"),
        )
    })
}

fn not_found(id: u32) -> ApiError {
    ApiError::new(
        Code::SegmentNotFound,
        format!("no segment {} in this workspace", SegmentId(id)),
    )
}

/// A segment as the API shows it: the stored definition with the live member count.
fn render(row: &SegmentRow, members: usize) -> Value {
    json!({
        "id": SegmentId(row.id).to_string(),
        "name": row.name,
        "version": row.version,
        "members": members,
        "definition": serde_json::from_str::<Value>(&row.definition).unwrap_or(Value::Null),
        "created_at": format_instant(row.created_at),
        "updated_at": format_instant(row.updated_at),
    })
}

/// The stored rows and live counts of a workspace's segments.
pub(crate) async fn load(state: &AppState, ws: &WorkspaceId) -> Result<Vec<Value>, ApiError> {
    let (store, engines, ws) = (state.store.clone(), state.engines.clone(), ws.clone());
    blocking(move || {
        let engine = engines.get(&ws)?;
        let rows = store.with(|c| c.segments(&ws))?;
        let counts = read_engine(&engine)?.segments();
        Ok(rows
            .iter()
            .map(|row| {
                let members = counts
                    .iter()
                    .find(|s| s.id.0 == row.id)
                    .map_or(0, |s| s.members);
                render(row, members)
            })
            .collect())
    })
    .await
}

#[utoipa::path(
    get, path = "/v1/segments", tag = "segments",
    responses(
        (status = 200, description = "The segments with their member counts", body = Value),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<axum::Json<Value>, ApiError> {
    let segments = load(&state, &caller.workspace).await?;
    Ok(axum::Json(json!({ "segments": segments })))
}

#[utoipa::path(
    get, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path, description = "`seg_…`")),
    responses(
        (status = 200, description = "The segment and its definition", body = Value),
        (status = 404, description = "`segment_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let wanted = SegmentId(id).to_string();
    load(&state, &caller.workspace)
        .await?
        .into_iter()
        .find(|s| s["id"] == wanted.as_str())
        .map(axum::Json)
        .ok_or_else(|| not_found(id))
}

/// Today's table of values (`p_alive`, `predicted_clv`, `revenue_percentile`) in the engine
/// before a definition reading it is evaluated: computed now if it is missing or older.
async fn ensure_daily_values(state: &AppState, ws: &WorkspaceId) -> Result<(), ApiError> {
    let engine = crate::routes::engine_for(state, ws).await?;
    let (ingestor, now) = (state.ingestor.clone(), state.clock.now());
    blocking(move || {
        crate::predictions::refresh_daily_values(&engine, &ingestor, now, true)
            .map(|_| ())
            .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))
    })
    .await
}

/// `{"name": …, "definition": {…}}`, checked: the name, the definition, and that no other
/// live segment has the name.
async fn read_definition(
    state: &AppState,
    ws: &WorkspaceId,
    body: Result<Bytes, BytesRejection>,
    editing: Option<u32>,
) -> Result<(String, Definition, String), ApiError> {
    let value = read_json(body, BODY_LIMIT)?;
    let bad = |m: String| ApiError::new(Code::InvalidSegment, m);
    let Value::Object(map) = &value else {
        return Err(bad(
            "the body must be an object: {\"name\": …, \"definition\": {…}}".into(),
        ));
    };
    if let Some(k) = map
        .keys()
        .find(|k| !["name", "definition"].contains(&k.as_str()))
    {
        return Err(bad(format!(
            "`{k}` is not a field of a segment (name, definition)"
        )));
    }
    let name = match map.get("name").and_then(Value::as_str).map(str::trim) {
        Some(n) if !n.is_empty() && n.chars().count() <= 200 => n.to_owned(),
        Some(_) => return Err(bad("name: must be 1 to 200 characters".into())),
        None => return Err(bad("name: required, a string".into())),
    };
    let source = map
        .get("definition")
        .ok_or_else(|| bad("definition: required (docs/segments.md)".into()))?;
    let definition = Definition::parse(source).map_err(bad)?;
    let (store, ws) = (state.store.clone(), ws.clone());
    let rows = blocking(move || Ok(store.with(|c| c.segments(&ws))?)).await?;
    if let Some(other) = rows
        .iter()
        .find(|r| r.name == name && Some(r.id) != editing)
    {
        return Err(bad(format!(
            "name: segment {} is already called `{name}`",
            SegmentId(other.id)
        )));
    }
    Ok((name, definition, source.to_string()))
}

pub(crate) async fn save(
    state: &AppState,
    ws: &WorkspaceId,
    id: Option<u32>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let (name, definition, source) = read_definition(state, ws, body, id).await?;
    if definition.reads_daily_values() {
        ensure_daily_values(state, ws).await?;
    }
    let done = state
        .ingestor
        .segment(
            ws.clone(),
            WorkspaceOp::Save {
                id,
                name,
                definition,
                source,
            },
        )
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?;
    let OpDone::Saved {
        id,
        entered,
        exited,
    } = done
    else {
        return Err(not_found(id.unwrap_or(0)));
    };
    let wanted = SegmentId(id).to_string();
    let mut segment = load(state, ws)
        .await?
        .into_iter()
        .find(|s| s["id"] == wanted.as_str())
        .ok_or_else(|| not_found(id))?;
    segment["backfill"] = json!({"entered": entered, "exited": exited});
    Ok(segment)
}

#[utoipa::path(
    post, path = "/v1/segments", tag = "segments",
    request_body(content = Value, content_type = "application/json", description = "`{\"name\", \"definition\"}` (docs/segments.md)"),
    responses(
        (status = 201, description = "Created and backfilled: who entered", body = Value),
        (status = 400, description = "`malformed_json`, `invalid_segment`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let segment = save(&state, &caller.workspace, None, body).await?;
    let id = segment["id"].as_str().unwrap_or_default().to_owned();
    super::record(&state, &caller, "segment.created", id, String::new()).await;
    Ok((StatusCode::CREATED, axum::Json(segment)))
}

#[utoipa::path(
    put, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path, description = "`seg_…`")),
    request_body(content = Value, content_type = "application/json", description = "`{\"name\", \"definition\"}`"),
    responses(
        (status = 200, description = "Replaced and backfilled: who entered and left", body = Value),
        (status = 400, description = "`malformed_json`, `invalid_segment`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`segment_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let segment = save(&state, &caller.workspace, Some(id), body).await?;
    let target = SegmentId(id).to_string();
    super::record(&state, &caller, "segment.changed", target, String::new()).await;
    Ok(axum::Json(segment))
}

#[utoipa::path(
    delete, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path, description = "`seg_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`segment_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    match state
        .ingestor
        .segment(caller.workspace.clone(), WorkspaceOp::Delete { id })
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?
    {
        OpDone::Deleted => {
            let target = SegmentId(id).to_string();
            super::record(&state, &caller, "segment.deleted", target, String::new()).await;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(not_found(id)),
    }
}

#[utoipa::path(
    post, path = "/v1/segments/preview", tag = "segments",
    request_body(content = Value, content_type = "application/json", description = "`{\"definition\"}`: who it would hold now, without saving it"),
    responses(
        (status = 200, description = "The count and a sample of members", body = Value),
        (status = 400, description = "`malformed_json`, `invalid_segment`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn preview(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let value = read_json(body, BODY_LIMIT)?;
    Ok(axum::Json(
        preview_document(&state, &caller.workspace, &value).await?,
    ))
}

/// `{"definition": {…}, "sample": n}` evaluated now: the count and a sample of members,
/// without saving anything.
pub(crate) async fn preview_document(
    state: &AppState,
    workspace: &WorkspaceId,
    value: &Value,
) -> Result<Value, ApiError> {
    let bad = |m: String| ApiError::new(Code::InvalidSegment, m);
    let source = value
        .get("definition")
        .ok_or_else(|| bad("definition: required (docs/segments.md)".into()))?;
    let definition = Definition::parse(source).map_err(bad)?;
    if definition.reads_daily_values() {
        ensure_daily_values(state, workspace).await?;
    }
    let sample = match value.get("sample") {
        None => 10,
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= 100)
            .ok_or_else(|| bad("sample: a whole number from 0 to 100".into()))?
            as usize,
    };
    let now = state.clock.now();
    let (store, engines, ws) = (
        state.store.clone(),
        state.engines.clone(),
        workspace.clone(),
    );
    blocking(move || {
        let engine = engines.get(&ws)?;
        let history = store.with(|c| crate::writer::segment_history(c, &ws, &definition))?;
        let engine = read_engine(&engine)?;
        let (count, ids) = engine.preview_segment(&definition, &history, now, sample);
        let sample: Vec<Value> = ids
            .iter()
            .filter_map(|id| engine.find(id.as_str()))
            .map(|c| json!({"id": c.id, "user_id": c.user_id, "email": c.traits.get("email")}))
            .collect();
        Ok(json!({"count": count, "customers": engine.customer_count(), "sample": sample, "at": format_instant(now)}))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MemberParams {
    /// Page size, 1–1000 (default 100).
    limit: Option<String>,
    /// The cursor: the last customer id of the previous page.
    after: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/segments/{id}/members", tag = "segments",
    params(("id" = String, Path, description = "`seg_…`"), MemberParams),
    responses(
        (status = 200, description = "One page of members, in customer id order", body = Value),
        (status = 400, description = "`invalid_parameter`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`segment_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn members(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
    Query(params): Query<MemberParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let limit = crate::routes::limit_param(params.limit.as_deref(), 50, 1000)?;
    let after = params
        .after
        .as_deref()
        .map(CustomerId::parse)
        .transpose()
        .map_err(|e| {
            ApiError::new(
                Code::InvalidParameter,
                format!("query parameter `after`: {e}"),
            )
        })?;
    Ok(axum::Json(
        members_document(&state, &caller.workspace, id, after, limit).await?,
    ))
}

/// A page of a segment's members (by customer id, after `after`), with when each entered.
pub(crate) async fn members_document(
    state: &AppState,
    workspace: &WorkspaceId,
    id: u32,
    after: Option<CustomerId>,
    limit: usize,
) -> Result<Value, ApiError> {
    let (engines, ws) = (state.engines.clone(), workspace.clone());
    blocking(move || {
        let engine: Arc<RwLock<LiveWorkspace>> = engines.get(&ws)?;
        let engine = read_engine(&engine)?;
        let Some(info) = engine.segments().into_iter().find(|s| s.id.0 == id) else {
            return Err(not_found(id));
        };
        let page = engine.segment_members(SegmentId(id), after.as_ref(), limit + 1);
        let more = page.len() > limit;
        let data: Vec<Value> = page
            .iter()
            .take(limit)
            .map(|(c, entered)| {
                json!({"id": c.id, "user_id": c.user_id, "email": c.traits.get("email"),
                       "entered_at": format_instant(*entered)})
            })
            .collect();
        let next = if more {
            page.get(limit - 1).map(|(c, _)| c.id.to_string())
        } else {
            None
        };
        Ok(json!({"segment": info.id, "members": info.members, "data": data, "next": next}))
    })
    .await
}

#[utoipa::path(
    get, path = "/v1/customers/{id}/segments", tag = "segments",
    params(("id" = String, Path, description = "A `cus_` id or a userId")),
    responses(
        (status = 200, description = "The segments the customer is in", body = Value),
        (status = 404, description = "`customer_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn customer_segments(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let (engines, ws) = (state.engines.clone(), caller.workspace.clone());
    let body = blocking(move || {
        let engine = engines.get(&ws)?;
        let engine = read_engine(&engine)?;
        let customer = engine.find(&id).ok_or_else(|| {
            ApiError::new(
                Code::CustomerNotFound,
                format!("no customer `{id}` in this workspace (give a cus_… id or a userId)"),
            )
        })?;
        let data = engine.memberships(customer);
        Ok(json!({"customer": customer.id, "data": data}))
    })
    .await?;
    Ok(axum::Json(body))
}
