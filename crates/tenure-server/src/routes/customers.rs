//! `GET /v1/customers` (paginated, filtered) and `GET /v1/customers/{id}` (the folded
//! profile). Admin keys only; every read is scoped to the caller's workspace.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenure_core::CustomerId;
use tenure_core::engine::CustomerFilter;
use tenure_core::subscription::CustomerStatus;
use tenure_core::time::{format_instant, parse_instant};

use crate::AppState;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", get(list))
        .route("/v1/customers/{id}", get(show).delete(erase))
        .route("/v1/customers/{id}/export", get(export))
}

/// Erases the customer everywhere Tenure keeps them (docs/security.md, "Erasure"). The audit
/// log keeps the `cus_` id and the count of events, nothing personal.
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "A `cus_` id or a userId")),
    responses(
        (status = 200, description = "Erased: the customer's id and how many events went", body = Value),
        (status = 404, description = "`customer_not_found`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn erase(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let done = state
        .ingestor
        .segment(
            caller.workspace.clone(),
            crate::writer::WorkspaceOp::EraseCustomer {
                customer: id.clone(),
            },
        )
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?;
    let crate::writer::OpDone::Erased { customer, events } = done else {
        return Err(not_found(&id));
    };
    // The cached models were fitted on them too.
    state.predictions.forget(&caller.workspace);
    super::record(
        &state,
        &caller,
        "customer.erased",
        customer.to_string(),
        format!("{events} events"),
    )
    .await;
    Ok(axum::Json(json!({"erased": customer, "events": events})))
}

/// Everything Tenure holds about the customer (an access request): the profile as the API
/// shows it, the customers-table rows, and every stored event, as received
/// (docs/security.md, "Export").
#[utoipa::path(get, path = "/v1/customers/{id}/export", tag = "customers",
    params(("id" = String, Path, description = "A `cus_` id or a userId")),
    responses(
        (status = 200, description = "The profile and every event of the customer", body = Value),
        (status = 404, description = "`customer_not_found`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn export(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let profile = profile_document(&state, &caller.workspace, &id).await?;
    let ids: Vec<CustomerId> = {
        let engine = crate::routes::engine_for(&state, &caller.workspace).await?;
        let engine = engine
            .read()
            .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
        let state = engine.find(&id).ok_or_else(|| not_found(&id))?;
        std::iter::once(state.id.clone())
            .chain(state.merged.iter().cloned())
            .collect()
    };
    let (store, ws) = (state.store.clone(), caller.workspace.clone());
    let (rows, events) =
        tokio::task::spawn_blocking(move || crate::admin::customer_export(&store, &ws, &ids))
            .await
            .map_err(|_| ApiError::new(Code::Internal, "export interrupted"))??;
    Ok(axum::Json(json!({
        "profile": profile,
        "customer_rows": rows,
        "events": events,
    })))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        Code::CustomerNotFound,
        format!("no customer `{id}` in this workspace (give a cus_… id or a userId)"),
    )
}

const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Page size, 1–1000 (default 50).
    limit: Option<usize>,
    /// The cursor: the last id of the previous page (`next`).
    after: Option<String>,
    /// Only customers acquired through this channel.
    channel: Option<String>,
    /// Only customers on this plan now.
    plan: Option<String>,
    /// `lead`, `trialing`, `active`, `paused` or `churned`.
    status: Option<String>,
    /// Only customers seen at or after this instant (ISO 8601).
    seen_since: Option<String>,
    /// `key:value`: the trait's value, as text, equals `value`.
    r#trait: Option<String>,
}

#[derive(Debug, Serialize)]
struct CustomerSummary {
    id: CustomerId,
    user_id: Option<String>,
    email: Option<Value>,
    status: CustomerStatus,
    channel: Option<String>,
    first_seen: String,
    last_seen: String,
    events: u32,
    mrr: std::collections::BTreeMap<String, i64>,
}

fn bad(param: &str, message: String) -> ApiError {
    ApiError::new(
        Code::InvalidParameter,
        format!("query parameter `{param}`: {message}"),
    )
}

/// One page of the workspace's customers, in id order, filtered.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(ListParams),
    responses(
        (status = 200, description = "`data`: customer summaries; `next`: the cursor of the next page", body = Value),
        (status = 400, description = "`invalid_parameter`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(bad(
            "limit",
            format!("{limit} is out of range 1–{MAX_LIMIT}"),
        ));
    }
    let after = params
        .after
        .as_deref()
        .map(CustomerId::parse)
        .transpose()
        .map_err(|e| bad("after", e.to_string()))?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            CustomerStatus::parse(s).ok_or_else(|| {
                bad(
                    "status",
                    format!("`{s}`: expected lead, trialing, active, paused or churned"),
                )
            })
        })
        .transpose()?;
    let seen_since = params
        .seen_since
        .as_deref()
        .map(|s| {
            parse_instant(s)
                .ok_or_else(|| bad("seen_since", format!("`{s}` is not an ISO-8601 date")))
        })
        .transpose()?;
    let trait_equals = params
        .r#trait
        .as_deref()
        .map(|t| {
            t.split_once(':')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| bad("trait", format!("`{t}`: expected key:value")))
        })
        .transpose()?;
    let filter = CustomerFilter {
        channel: params.channel,
        plan: params.plan,
        status,
        seen_since,
        trait_equals,
    };
    let now = state.clock.now();
    let engine = crate::routes::engine_for(&state, &caller.workspace).await?;
    let engine = engine
        .read()
        .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
    let page = engine.list(&filter, after.as_ref(), limit + 1, now);
    let more = page.len() > limit;
    let data: Vec<CustomerSummary> = page
        .iter()
        .take(limit)
        .map(|c| {
            let profile = engine.profile(c, now);
            CustomerSummary {
                id: c.id.clone(),
                user_id: c.user_id.clone(),
                email: c.traits.get("email").cloned(),
                status: profile.status,
                channel: c.acquisition.channel.clone(),
                first_seen: format_instant(c.first_seen),
                last_seen: format_instant(c.last_seen),
                events: c.event_total,
                mrr: profile.mrr,
            }
        })
        .collect();
    let next = if more {
        data.last().map(|c| c.id.to_string())
    } else {
        None
    };
    Ok(axum::Json(json!({"data": data, "next": next})))
}

/// The customer's profile: identities, traits, status, MRR, subscriptions, orders, answers,
/// tickets, segments, health, risk and predictions.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "A `cus_` id or a userId")),
    responses(
        (status = 200, description = "The profile (docs/api.md)", body = Value),
        (status = 404, description = "`customer_not_found`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn show(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        profile_document(&state, &caller.workspace, &id).await?,
    ))
}

/// The folded profile with health (breakdown, trend, history, overrides) and predictions:
/// the body of `GET /v1/customers/{id}`, which the dashboard's customer page draws.
pub(crate) async fn profile_document(
    state: &AppState,
    workspace: &tenure_core::WorkspaceId,
    id: &str,
) -> Result<Value, ApiError> {
    let risk_model = {
        let (risk, ws) = (state.risk.clone(), workspace.clone());
        tokio::task::spawn_blocking(move || risk.latest(&ws))
            .await
            .map_err(|_| ApiError::new(Code::Internal, "model load interrupted"))??
    };
    let engine = crate::routes::engine_for(state, workspace).await?;
    let engine = engine
        .read()
        .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
    let customer = engine.find(id).ok_or_else(|| {
        ApiError::new(
            Code::CustomerNotFound,
            format!("no customer `{id}` in this workspace (give a cus_… id or a userId)"),
        )
    })?;
    let now = state.clock.now();
    let profile = engine.profile(customer, now);
    let mut body = serde_json::to_value(profile).unwrap_or(Value::Null);
    // Predictions from models fitted on the workspace's own data (null where there is not
    // enough of it, or the customer has no orders / no current first subscription).
    let orders = state
        .predictions
        .models(&engine, now)
        .and_then(|m| m.predict(customer));
    let subscription = state
        .predictions
        .subscription_model(&engine, now)
        .and_then(|m| m.predict(customer, now));
    // Health under the workspace's models (the shipped SaaS model unless others are
    // stored, docs/health.md): breakdown, 7-day trend and weekly history over 12 weeks.
    let models = engine.health_models();
    let mut health =
        serde_json::to_value(models.score(customer, engine.names(), now)).unwrap_or(Value::Null);
    health["trend"] =
        serde_json::to_value(models.trend(customer, engine.names(), now, 7)).unwrap_or(Value::Null);
    health["history"] = serde_json::to_value(models.history(customer, engine.names(), now, 12, 7))
        .unwrap_or(Value::Null);
    // Every manual override, newest first: the audit trail (each one an event in the log).
    health["overrides"] =
        serde_json::to_value(customer.health_overrides.iter().rev().collect::<Vec<_>>())
            .unwrap_or(Value::Null);
    body["health"] = health;

    // Churn risk under the workspace's latest model (docs/risk.md): null before the first
    // training, and for a customer who is not current (or has already cancelled).
    let risk = risk_model.and_then(|(model_id, model)| {
        let prediction = model.predict(customer, engine.names(), now)?;
        let mut value = serde_json::to_value(prediction).ok()?;
        value["model"] = json!(model_id);
        Some(value)
    });
    // What segments on p_alive, predicted_clv and revenue_percentile read: the day's table
    // (docs/segments.md), null while no segment needs one.
    let daily = engine.daily_values().map(|table| {
        json!({
            "as_of_day": tenure_core::time::format_instant(i64::from(table.day) * tenure_core::time::MILLIS_PER_DAY),
            "currency": table.currency,
            "values": table.get(&customer.id).copied().unwrap_or_default(),
        })
    });
    body["predictions"] = json!({
        "orders": serde_json::to_value(orders).unwrap_or(Value::Null),
        "subscription": serde_json::to_value(subscription).unwrap_or(Value::Null),
        "risk": risk,
        "segment_values": daily,
    });
    Ok(body)
}
