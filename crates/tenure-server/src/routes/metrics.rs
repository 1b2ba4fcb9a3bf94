//! `GET /v1/metrics` and `GET /v1/metrics/{table}`: the report's tables as JSON, with the
//! query parameters of `docs/metrics.md` (the same names as `tenure report`'s flags);
//! `PUT /v1/spend` and `GET /v1/spend`: marketing spend per channel and month, for CAC.
//! Admin keys only; every read is scoped to the caller's workspace. `GET /v1/openapi.json`
//! (no key) describes them.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tenure_core::WorkspaceId;
use tenure_core::metrics::{self, Report, Spend, Table};

use crate::AppState;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/metrics", get(all))
        .route("/v1/metrics/clv", get(clv))
        .route("/v1/metrics/{table}", get(one))
        .route("/v1/spend", get(list_spend).put(put_spend))
        .route("/v1/openapi.json", get(openapi))
}

#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "This document", body = Value),
    )
)]
pub(crate) async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
}

type Params = Query<Vec<(String, String)>>;

#[utoipa::path(
    get, path = "/v1/metrics", tag = "metrics",
    responses(
        (status = 200, description = "Every table of the report (docs/metrics.md); the query parameters are listed under components.parameters", body = Value),
        (status = 400, description = "`invalid_parameter`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn all(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Query(params): Params,
) -> Result<axum::Json<Value>, ApiError> {
    // `metric=a,b` selects tables; by default, all of them.
    let mut tables = Vec::new();
    let mut rest = Vec::new();
    for (name, value) in params {
        if name == "metric" {
            for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                tables.push(table(t)?);
            }
        } else {
            rest.push((name, value));
        }
    }
    if tables.is_empty() {
        tables = Table::ALL.to_vec();
    }
    let report = report(&state, &caller.workspace, rest, tables).await?;
    Ok(axum::Json(
        serde_json::to_value(report).unwrap_or(Value::Null),
    ))
}

#[utoipa::path(
    get, path = "/v1/metrics/{table}", tag = "metrics",
    params(("table" = String, Path, description = "A table of the report")),
    responses(
        (status = 200, description = "One table of the report", body = Value),
        (status = 400, description = "`invalid_parameter`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`metric_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn one(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(name): Path<String>,
    Query(params): Params,
) -> Result<axum::Json<Value>, ApiError> {
    let t = table(&name)?;
    let report = report(&state, &caller.workspace, params, vec![t]).await?;
    let mut body = serde_json::to_value(&report).unwrap_or(Value::Null);
    // The table under `data`, with the context every table needs.
    let data = body
        .as_object_mut()
        .and_then(|o| o.remove(t.name()))
        .unwrap_or(Value::Null);
    Ok(axum::Json(json!({
        "metric": t.name(),
        "workspace": report.workspace,
        "as_of": report.as_of,
        "query": report.query,
        "currency": report.currency,
        "customers": report.customers,
        "warnings": report.warnings,
        "data": data,
    })))
}

/// The customer-lifetime models fitted on the workspace's own data and the sum of every
/// customer's predictions (see `predictions.rs`); `null` for a part without enough data.
#[utoipa::path(
    get, path = "/v1/metrics/clv", tag = "metrics",
    responses(
        (status = 200, description = "The purchase and subscription models fitted on the workspace, and the sum of every customer's predictions", body = Value),
    )
)]
pub(crate) async fn clv(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<axum::Json<Value>, ApiError> {
    let now = state.clock.now();
    let ws = caller.workspace.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let engine = state.engines.get(&ws)?;
        let engine = engine
            .read()
            .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
        let orders = state
            .predictions
            .models(&engine, now)
            .map(|m| m.forecast(&engine));
        let subscriptions = state
            .predictions
            .subscription_model(&engine, now)
            .map(|m| m.forecast(&engine, now));
        Ok(json!({
            "metric": "clv",
            "workspace": ws.as_str(),
            "as_of": tenure_core::time::format_instant(now),
            "data": {"orders": orders, "subscriptions": subscriptions},
        }))
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "forecast interrupted"))??;
    Ok(axum::Json(body))
}

fn table(name: &str) -> Result<Table, ApiError> {
    Table::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
        ApiError::new(
            Code::MetricNotFound,
            format!("no metric `{name}`; the metrics are: {}", names.join(", ")),
        )
    })
}

fn bad_query(errors: Vec<metrics::QueryError>) -> ApiError {
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    ApiError::new(Code::InvalidParameter, text.join("; "))
}

/// The report's `tables` for a workspace under the query parameters of docs/metrics.md: what
/// `GET /v1/metrics` answers and the dashboard draws.
pub(crate) async fn report(
    state: &AppState,
    workspace: &WorkspaceId,
    params: Vec<(String, String)>,
    tables: Vec<Table>,
) -> Result<Report, ApiError> {
    let now = state.clock.now();
    let query = metrics::Query::parse(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), now)
        .map_err(bad_query)?;
    let engines = state.engines.clone();
    let store = state.store.clone();
    let ws = workspace.clone();
    // Loading the engine, reading spend and the aggregation itself are blocking work.
    tokio::task::spawn_blocking(move || -> Result<Report, ApiError> {
        let spend = store.with(|conn| conn.spend(&ws))?;
        let engine = engines.get(&ws)?;
        let engine = engine
            .read()
            .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
        if let Some(segment) = query.filter.segment
            && engine.segment_name(segment).is_none()
        {
            return Err(ApiError::new(
                Code::SegmentNotFound,
                format!("query parameter `segment`: no segment {segment} in this workspace"),
            ));
        }
        let query = query.with_workspace_renewals(engine.renewals());
        Ok(Report::build(&engine, &query, &spend, &tables))
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "report interrupted"))?
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct SpendBody {
    spend: Vec<SpendRow>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct SpendRow {
    /// The acquisition channel, as customers' `channel` names it.
    channel: String,
    /// `YYYY-MM`.
    month: String,
    /// In major units.
    amount: f64,
    /// ISO 4217.
    currency: String,
}

/// Validates every row first: one bad row stores nothing, and the error names each.
#[utoipa::path(
    put, path = "/v1/spend", tag = "metrics",
    request_body(content = SpendBody, description = "Marketing spend per channel and month (replaces the rows it names)"),
    responses(
        (status = 200, description = "Stored", body = Value),
        (status = 400, description = "`malformed_json`, `invalid_request`: every bad row named", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn put_spend(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let parsed: SpendBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            Code::InvalidRequest,
            format!(
                "expected {{\"spend\": [{{\"channel\", \"month\": \"YYYY-MM\", \"amount\", \"currency\"}}]}}: {e}"
            ),
        )
    })?;
    let mut rows = Vec::with_capacity(parsed.spend.len());
    let mut errors = Vec::new();
    for (i, row) in parsed.spend.iter().enumerate() {
        match Spend::parse(&row.channel, &row.month, row.amount, &row.currency) {
            Ok(s) => rows.push(s),
            Err((field, message)) => errors.push(format!("spend[{i}].{field}: {message}")),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::new(
            Code::InvalidParameter,
            format!("nothing was stored: {}", errors.join("; ")),
        ));
    }
    let store = state.store.clone();
    let ws: WorkspaceId = caller.workspace.clone();
    let count = rows.len();
    tokio::task::spawn_blocking(move || store.with(|conn| conn.put_spend(&ws, &rows)))
        .await
        .map_err(|_| ApiError::new(Code::Internal, "spend write interrupted"))??;
    Ok(axum::Json(json!({"success": true, "stored": count})))
}

#[utoipa::path(
    get, path = "/v1/spend", tag = "metrics",
    responses(
        (status = 200, description = "The stored spend rows", body = Value),
    )
)]
pub(crate) async fn list_spend(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<axum::Json<Value>, ApiError> {
    let store = state.store.clone();
    let ws = caller.workspace.clone();
    let spend = tokio::task::spawn_blocking(move || store.with(|conn| conn.spend(&ws)))
        .await
        .map_err(|_| ApiError::new(Code::Internal, "spend read interrupted"))??;
    Ok(axum::Json(json!({"data": spend})))
}
