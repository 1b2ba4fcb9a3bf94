//! The churn-risk model (docs/risk.md): `POST /v1/risk/train` trains it now on the
//! workspace's history, `GET /v1/risk/model` gives the model in use with its evaluation
//! report, `GET /v1/risk/customers` the current customers most likely to churn, with their
//! reasons. Admin keys only; scoped to the caller's workspace.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tenure_core::risk::training::{TrainingError, TrainingOptions};
use tenure_core::time::format_instant;

use crate::AppState;
use crate::error::{ApiError, Code};
use crate::risk::{RiskError, train_and_keep};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/risk/train", post(train))
        .route("/v1/risk/model", get(model))
        .route("/v1/risk/customers", get(customers))
}

/// Optional training options; the defaults otherwise.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainBody {
    horizon_days: Option<u32>,
    cutoffs: Option<u32>,
    spacing_days: Option<u32>,
}

impl From<RiskError> for ApiError {
    fn from(e: RiskError) -> Self {
        match e {
            RiskError::Training(t @ TrainingError::NotEnoughHistory { .. }) => {
                ApiError::new(Code::NotEnoughHistory, t.to_string())
            }
            RiskError::Training(t @ TrainingError::Options(_)) => {
                ApiError::new(Code::InvalidRequest, t.to_string())
            }
            RiskError::Training(t) => ApiError::new(Code::Internal, t.to_string()),
            RiskError::Store(s) => s.into(),
            RiskError::Poisoned => ApiError::new(Code::Internal, "engine lock poisoned"),
        }
    }
}

fn not_trained() -> ApiError {
    ApiError::new(
        Code::RiskModelNotFound,
        "no churn-risk model has been trained in this workspace yet: POST /v1/risk/train (or run `tenure risk train`)",
    )
}

async fn train(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let caller = state.keys.check(&headers).await?;
    caller.require_admin()?;
    let body: TrainBody = if body.iter().all(u8::is_ascii_whitespace) {
        TrainBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(Code::InvalidRequest, format!("training options: {e}")))?
    };
    let defaults = TrainingOptions::default();
    let options = TrainingOptions {
        horizon_days: body.horizon_days.unwrap_or(defaults.horizon_days),
        cutoffs: body.cutoffs.unwrap_or(defaults.cutoffs),
        spacing_days: body.spacing_days.unwrap_or(defaults.spacing_days),
        max_rows: defaults.max_rows,
    };
    let now = state.clock.now();
    let ws = caller.workspace.clone();
    let (engines, store) = (state.engines.clone(), state.store.clone());
    let (id, model) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let engine = engines.get(&ws)?;
        Ok(train_and_keep(&store, &engine, &ws, now, &options)?)
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "training interrupted"))??;
    // Segments on `risk` now read the new model.
    let model = std::sync::Arc::new(model);
    let reconciled =
        match crate::risk::install(&state.ingestor, &caller.workspace, model.clone()).await {
            Ok(crate::writer::SegmentDone::Reconciled { entered, exited }) => {
                json!({"entered": entered, "exited": exited})
            }
            Ok(_) => Value::Null,
            Err(e) => return Err(ApiError::new(Code::Unavailable, e.to_string())),
        };
    Ok((
        StatusCode::CREATED,
        axum::Json(
            json!({"id": id, "trained_at": format_instant(now), "report": model.report,
                          "segments_reconciled": reconciled}),
        ),
    ))
}

async fn model(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, ApiError> {
    let caller = state.keys.check(&headers).await?;
    caller.require_admin()?;
    let ws = caller.workspace.clone();
    let risk = state.risk.clone();
    let latest = tokio::task::spawn_blocking(move || risk.latest(&ws))
        .await
        .map_err(|_| ApiError::new(Code::Internal, "model load interrupted"))??;
    let (id, model) = latest.ok_or_else(not_trained)?;
    Ok(axum::Json(json!({
        "id": id,
        "trained_at": format_instant(model.trained_at),
        "learner": model.report.kept,
        "horizon_days": model.horizon_days,
        "features": model.features.names(),
        "report": model.report,
    })))
}

#[derive(Debug, Deserialize)]
struct CustomersParams {
    limit: Option<String>,
}

async fn customers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<CustomersParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let caller = state.keys.check(&headers).await?;
    caller.require_admin()?;
    let limit = crate::routes::limit_param(params.limit.as_deref(), 20, 1000)?;
    let now = state.clock.now();
    let ws = caller.workspace.clone();
    let (engines, risk) = (state.engines.clone(), state.risk.clone());
    let body = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let (id, model) = risk.latest(&ws)?.ok_or_else(not_trained)?;
        let engine = engines.get(&ws)?;
        let engine = engine
            .read()
            .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
        let ranked = model.riskiest(engine.customers(), engine.names(), now, limit);
        let health = engine.health_models();
        let data: Vec<Value> = ranked
            .top
            .into_iter()
            .map(|(state, prediction)| {
                let (score, grade) = health.grade(state, engine.names(), now);
                json!({
                    "customer_id": state.id,
                    "user_id": state.user_id,
                    "probability": prediction.probability,
                    "mrr": state.mrr_at(now),
                    "health": {"score": score, "grade": grade},
                    "reasons": prediction.reasons,
                })
            })
            .collect();
        Ok(json!({
            "model": id,
            "as_of": format_instant(now),
            "horizon_days": model.horizon_days,
            "current_customers": ranked.current_customers,
            "expected_churners": ranked.expected_churners,
            "data": data,
        }))
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "risk ranking interrupted"))??;
    Ok(axum::Json(body))
}
