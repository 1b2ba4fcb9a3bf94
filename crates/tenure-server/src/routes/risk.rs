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
use tenure_core::time::format_instant;
use tenure_risk::training::{TrainingError, TrainingOptions};

use crate::AppState;
use crate::auth::AdminKey;
use crate::error::{ApiError, Code};
use crate::risk::{RiskError, train_and_keep};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/risk/train", post(train))
        .route("/v1/risk/model", get(model))
        .route("/v1/risk/customers", get(customers))
}

/// Optional training options; the defaults otherwise.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrainBody {
    /// Churn within this many days is predicted (default 90).
    horizon_days: Option<u32>,
    /// How many past cut-offs give training rows.
    cutoffs: Option<u32>,
    /// Days between cut-offs.
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

/// Validates the options, then trains in the background: answers `202` with the task
/// (`GET /v1/tasks/{id}` gives its progress, then the model's id and report, or the error).
/// One training per workspace at a time; another while it runs is `409 task_running`.
#[utoipa::path(
    post, path = "/v1/risk/train", tag = "risk",
    request_body(content = TrainBody, description = "Optional training options (an empty body: the defaults)"),
    responses(
        (status = 202, description = "Training started: the task (GET /v1/tasks/{id})", body = Value),
        (status = 400, description = "`malformed_json`, `invalid_request`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`task_running`: a training is already running", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn train(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    body: axum::body::Bytes,
) -> Result<(StatusCode, HeaderMap, axum::Json<Value>), ApiError> {
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
    options
        .validate()
        .map_err(|e| ApiError::from(RiskError::Training(e)))?;
    let now = state.clock.now();
    let ws = caller.workspace.clone();
    let (task, handle) = state
        .tasks
        .start(&ws, "risk_training", now)
        .map_err(|running| {
            ApiError::new(
                Code::TaskRunning,
                format!(
                    "a training is already running in this workspace: {} (GET /v1/tasks/{}); wait for it to finish",
                    running.id, running.id
                ),
            )
        })?;
    let job_state = state.clone();
    tokio::spawn(async move {
        let state = job_state;
        handle.progress("building rows from the history and fitting the learners");
        let (engines, store) = (state.engines.clone(), state.store.clone());
        let trained_ws = ws.clone();
        let trained = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
            let engine = engines.get(&trained_ws)?;
            Ok(train_and_keep(&store, &engine, &trained_ws, now, &options)?)
        })
        .await
        .unwrap_or_else(|_| Err(ApiError::new(Code::Internal, "training interrupted")));
        let (id, model) = match trained {
            Ok(done) => done,
            Err(e) => return handle.fail(state.clock.now(), e.body()),
        };
        handle.progress("installing the model in the segments");
        // Segments on `risk` now read the new model.
        let model = std::sync::Arc::new(model);
        let reconciled = match crate::risk::install(&state.ingestor, &ws, model.clone()).await {
            Ok(crate::writer::OpDone::Reconciled { entered, exited }) => {
                json!({"entered": entered, "exited": exited})
            }
            Ok(_) => Value::Null,
            Err(e) => {
                let error = ApiError::new(Code::Unavailable, e.to_string()).body();
                return handle.fail(state.clock.now(), error);
            }
        };
        handle.succeed(
            state.clock.now(),
            json!({"id": id, "trained_at": format_instant(now), "report": model.report,
                   "segments_reconciled": reconciled}),
        );
    });
    let mut headers = HeaderMap::new();
    if let Ok(location) = format!("/v1/tasks/{}", task.id).parse() {
        headers.insert(axum::http::header::LOCATION, location);
    }
    Ok((
        StatusCode::ACCEPTED,
        headers,
        axum::Json(json!({"task": task})),
    ))
}

#[utoipa::path(
    get, path = "/v1/risk/model", tag = "risk",
    responses(
        (status = 200, description = "The model in use and its evaluation report", body = Value),
        (status = 404, description = "`risk_model_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn model(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<axum::Json<Value>, ApiError> {
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

/// The ranking's parameters: `limit` (1–1000, 20), `sort` (`probability`, or
/// `expected_loss`: probability × MRR, the revenue expected to leave), and filters on the
/// latest `plan`, the acquisition `channel` and the health `grade`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RankingParams {
    /// 1–1000 (default 20).
    pub limit: Option<String>,
    /// `probability` (default) or `expected_loss` (probability × MRR).
    pub sort: Option<String>,
    /// Only customers whose latest plan is this one.
    pub plan: Option<String>,
    /// Only customers acquired through this channel.
    pub channel: Option<String>,
    /// Only customers of this health grade (`red`, `yellow`, `green`).
    pub grade: Option<String>,
}

/// How the current customers are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RankBy {
    Probability,
    ExpectedLoss,
}

#[utoipa::path(
    get, path = "/v1/risk/customers", tag = "risk",
    params(RankingParams),
    responses(
        (status = 200, description = "The current customers most likely to churn, with reasons", body = Value),
        (status = 400, description = "`invalid_parameter`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`risk_model_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn customers(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    params: Result<Query<RankingParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::new(
            Code::InvalidParameter,
            format!(
                "{} (the parameters are limit, sort, plan, channel, grade)",
                e.body_text()
            ),
        )
    })?;
    Ok(axum::Json(
        ranking(&state, &caller.workspace, &params).await?,
    ))
}

/// A customer's MRR now, minor units (amounts in several currencies are added unconverted:
/// a workspace billing in one currency has one).
fn mrr_now(state: &tenure_core::customer::CustomerState, now: tenure_core::time::Millis) -> i64 {
    state.mrr_at(now).values().sum()
}

/// The current customers most likely to churn (or with the most revenue expected to leave),
/// with their reasons: the body of `GET /v1/risk/customers`, which the dashboard draws.
pub(crate) async fn ranking(
    state: &AppState,
    workspace: &tenure_core::WorkspaceId,
    params: &RankingParams,
) -> Result<Value, ApiError> {
    let bad = |name: &str, message: String| {
        ApiError::new(
            Code::InvalidParameter,
            format!("query parameter `{name}`: {message}"),
        )
    };
    let limit = crate::routes::limit_param(params.limit.as_deref(), 20, 1000)?;
    let by = match params.sort.as_deref() {
        None | Some("probability") => RankBy::Probability,
        Some("expected_loss") => RankBy::ExpectedLoss,
        Some(other) => {
            return Err(bad(
                "sort",
                format!("`{other}`: expected probability or expected_loss"),
            ));
        }
    };
    let grade = match params.grade.as_deref().filter(|g| !g.is_empty()) {
        None => None,
        Some("red") => Some(tenure_core::health::Grade::Red),
        Some("yellow") => Some(tenure_core::health::Grade::Yellow),
        Some("green") => Some(tenure_core::health::Grade::Green),
        Some(other) => {
            return Err(bad(
                "grade",
                format!("`{other}`: expected red, yellow or green"),
            ));
        }
    };
    let filter = tenure_core::engine::CustomerFilter {
        channel: params.channel.clone().filter(|c| !c.is_empty()),
        plan: params.plan.clone().filter(|p| !p.is_empty()),
        ..Default::default()
    };
    let now = state.clock.now();
    let ws = workspace.clone();
    let (engines, risk) = (state.engines.clone(), state.risk.clone());
    tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let (id, model) = risk.latest(&ws)?.ok_or_else(not_trained)?;
        let engine = engines.get(&ws)?;
        let engine = engine
            .read()
            .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
        let health = engine.health_models();
        let names = engine.names();
        let candidates = engine.customers().filter(|c| {
            filter.matches(c, now)
                && grade.is_none_or(|g| health.grade(c, names, now).1 == Some(g))
        });
        let ranked = match by {
            RankBy::Probability => model.riskiest(candidates, names, now, limit),
            RankBy::ExpectedLoss => model.ranked_by(candidates, names, now, limit, |p, c| {
                p * mrr_now(c, now) as f64
            }),
        };
        let data: Vec<Value> = ranked
            .top
            .into_iter()
            .map(|(state, prediction)| {
                let (score, grade) = health.grade(state, names, now);
                let trend = health.trend(state, names, now, 7);
                json!({
                    "customer_id": state.id,
                    "user_id": state.user_id,
                    "email": state.traits.get("email"),
                    "plan": state.latest_plan(),
                    "channel": state.acquisition.channel,
                    "probability": prediction.probability,
                    "mrr": state.mrr_at(now),
                    "expected_loss": prediction.probability * mrr_now(state, now) as f64,
                    "health": {"score": score, "grade": grade, "trend": trend},
                    "reasons": prediction.reasons,
                })
            })
            .collect();
        Ok(json!({
            "model": id,
            "as_of": format_instant(now),
            "horizon_days": model.horizon_days,
            "sort": match by { RankBy::Probability => "probability", RankBy::ExpectedLoss => "expected_loss" },
            "current_customers": ranked.current_customers,
            "expected_churners": ranked.expected_churners,
            "data": data,
        }))
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "risk ranking interrupted"))?
}
