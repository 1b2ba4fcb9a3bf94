//! Each workspace's churn-risk model (docs/risk.md): trained on demand (`POST /v1/risk/train`,
//! `tenure risk train`) and on a schedule, kept in the store (every model with its report;
//! the latest is the one in use), and cached here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tenure_core::time::{Clock, MILLIS_PER_DAY, Millis};
use tenure_core::{LiveWorkspace, WorkspaceId};
use tenure_risk::RiskModel;
use tenure_risk::training::{DatasetBuilder, TrainingError, TrainingOptions};
use tenure_store::{NewRiskModel, Store, StoreError};

use crate::writer::{Engines, Ingestor, OpDone, WorkspaceOp, WriteError};

/// Hands a kept model to the workspace's engine through the writer: segments on `risk` are
/// reconciled with it (their entries and exits appended). Returns how many moved.
pub async fn install(
    ingestor: &Ingestor,
    workspace: &WorkspaceId,
    model: Arc<RiskModel>,
) -> Result<OpDone, WriteError> {
    ingestor
        .segment(workspace.clone(), WorkspaceOp::SetRiskModel { model })
        .await
}

/// The same, from a thread that is not async.
pub fn install_blocking(
    ingestor: &Ingestor,
    workspace: &WorkspaceId,
    model: Arc<RiskModel>,
) -> Result<OpDone, WriteError> {
    ingestor.segment_blocking(workspace.clone(), WorkspaceOp::SetRiskModel { model })
}

#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error(transparent)]
    Training(#[from] TrainingError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("engine lock poisoned")]
    Poisoned,
}

/// A kept model and its id.
pub type KeptModel = (i64, Arc<RiskModel>);

/// The latest model of each workspace, checked against the store on every use (one cheap
/// query), so a model trained by `tenure risk train` in another process is picked up.
#[derive(Clone)]
pub struct RiskModels {
    store: Store,
    cache: Arc<Mutex<HashMap<WorkspaceId, KeptModel>>>,
}

impl RiskModels {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Arc::default(),
        }
    }

    /// The workspace's latest model and its id; `None` before the first training. Blocking.
    pub fn latest(&self, workspace: &WorkspaceId) -> Result<Option<KeptModel>, StoreError> {
        let Some((id, _)) = self.store.with(|c| c.latest_risk_model_key(workspace))? else {
            return Ok(None);
        };
        if let Some(hit) = self.cache.lock().ok().and_then(|c| {
            c.get(workspace)
                .filter(|(cached, _)| *cached == id)
                .cloned()
        }) {
            return Ok(Some(hit));
        }
        let Some(row) = self.store.with(|c| c.latest_risk_model(workspace))? else {
            return Ok(None);
        };
        let model = Arc::new(RiskModel::from_json(&row.model).map_err(StoreError::Corrupt)?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(workspace.clone(), (row.id, model.clone()));
        }
        Ok(Some((row.id, model)))
    }
}

/// Customers per slice while the rows are built: the engine is read-locked for one slice
/// at a time, so ingest waits for a slice, never for the whole training.
const SLICE: usize = 2_000;

/// Trains on the engine's customers as of `now` and keeps the model; returns its id. The
/// rows are built a slice of customers at a time, each under a short read lock (two passes:
/// counting, then the rows); the learners fit with no lock held. Blocking.
pub fn train_and_keep(
    store: &Store,
    engine: &RwLock<LiveWorkspace>,
    workspace: &WorkspaceId,
    now: Millis,
    options: &TrainingOptions,
) -> Result<(i64, RiskModel), RiskError> {
    let mut builder = DatasetBuilder::new(now, options)?;
    for counting in [true, false] {
        let mut after: Option<tenure_core::CustomerId> = None;
        loop {
            let engine = engine.read().map_err(|_| RiskError::Poisoned)?;
            let slice: Vec<_> = engine.customers_after(after.as_ref()).take(SLICE).collect();
            let Some(last) = slice.last() else {
                break;
            };
            after = Some(last.id.clone());
            if counting {
                builder.count(&slice);
            } else {
                builder.add(&slice, engine.names());
            }
        }
        if counting {
            builder.end_counting();
        }
    }
    let model = builder.finish()?.fit()?;
    let id = keep(store, workspace, &model)?;
    Ok((id, model))
}

/// Stores a trained model (with its report); returns its id.
pub fn keep(store: &Store, workspace: &WorkspaceId, model: &RiskModel) -> Result<i64, StoreError> {
    let row = NewRiskModel {
        trained_at: model.trained_at,
        learner: serde_json::to_value(model.report.kept)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        report: serde_json::to_string(&model.report).unwrap_or_default(),
        model: model.to_json(),
    };
    store.with(|c| c.save_risk_model(workspace, &row))
}

/// What one scheduled pass did for a workspace.
#[derive(Debug)]
pub enum Retrained {
    /// Trained and kept (the caller hands it to the engine with [`install_blocking`]).
    Trained(i64, Arc<RiskModel>),
    /// Not enough history (or another failure): tried again after the interval.
    Failed(RiskError),
}

/// The scheduled retraining, one pass: every loaded workspace whose latest model is older
/// than `every_days` (or that has none) is trained now. A workspace that failed (not enough
/// history yet) is not tried again for `every_days` either: `attempts` remembers when.
pub fn retrain_due(
    store: &Store,
    engines: &Engines,
    now: Millis,
    every_days: u32,
    options: &TrainingOptions,
    attempts: &mut HashMap<WorkspaceId, Millis>,
) -> Vec<(WorkspaceId, Retrained)> {
    let every = i64::from(every_days) * MILLIS_PER_DAY;
    let mut done = Vec::new();
    for (workspace, engine) in engines.loaded() {
        let latest = store
            .with(|c| c.latest_risk_model_key(&workspace))
            .ok()
            .flatten()
            .map(|(_, trained_at)| trained_at);
        let last = latest
            .into_iter()
            .chain(attempts.get(&workspace).copied())
            .max();
        if last.is_some_and(|t| now - t < every) {
            continue;
        }
        if engine.read().map(|e| e.customer_count()).unwrap_or(0) == 0 {
            continue;
        }
        attempts.insert(workspace.clone(), now);
        let outcome = match train_and_keep(store, &engine, &workspace, now, options) {
            Ok((id, model)) => Retrained::Trained(id, Arc::new(model)),
            Err(e) => Retrained::Failed(e),
        };
        done.push((workspace, outcome));
    }
    done
}

/// Models kept since each loaded engine's was installed, e.g. by `tenure risk train` in
/// another process on the same database: the workspaces whose latest stored model is not the
/// one their segments read, with that model (to hand over with [`install_blocking`]).
pub fn stored_but_not_installed(
    models: &RiskModels,
    engines: &Engines,
) -> Vec<(WorkspaceId, Arc<RiskModel>)> {
    let mut out = Vec::new();
    for (workspace, engine) in engines.loaded() {
        let Ok(Some((_, latest))) = models.latest(&workspace) else {
            continue;
        };
        let installed = engine
            .read()
            .ok()
            .and_then(|e| e.risk_model().map(|m| m.trained_at()));
        if installed != Some(latest.trained_at) {
            out.push((workspace, latest));
        }
    }
    out
}

/// How often the schedule looks for models stored by another process.
const SYNC_EVERY: Duration = Duration::from_secs(60);
/// How often it looks for models to retrain.
const RETRAIN_CHECK_EVERY: Duration = Duration::from_secs(3600);

/// Starts the schedule: every minute, a model another process stored (`tenure risk train`)
/// is handed to the engine, so segments on `risk` read it, and a workspace whose segments
/// read the day's values gets the new day's table; and, with `every_days` > 0, models
/// older than that are retrained (checked hourly). It holds the writer's handle only weakly
/// (`alive`, owned by the application's state): once the application stops, the writer can
/// finish and the schedule ends at its next wake-up.
pub fn start_schedule(
    store: Store,
    engines: Engines,
    clock: Arc<dyn Clock>,
    every_days: u32,
    alive: Weak<Ingestor>,
) {
    let spawned = std::thread::Builder::new()
        .name("tenure-risk".into())
        .spawn(move || {
            let mut attempts = HashMap::new();
            let options = TrainingOptions::default();
            let models = RiskModels::new(store.clone());
            let mut last_retrain_check = std::time::Instant::now();
            loop {
                std::thread::sleep(SYNC_EVERY);
                let Some(ingestor) = alive.upgrade() else {
                    return;
                };
                for (workspace, model) in stored_but_not_installed(&models, &engines) {
                    tracing::info!(%workspace, "installing a risk model stored by another process");
                    if let Err(e) = install_blocking(&ingestor, &workspace, model) {
                        tracing::error!(%workspace, error = %e, "stored risk model not installed");
                    }
                }
                // A new day's table of values for the segments that read one.
                for (workspace, engine) in engines.loaded() {
                    if let Err(e) = crate::predictions::refresh_daily_values(&engine, &ingestor, clock.now(), false) {
                        tracing::error!(%workspace, error = %e, "the day's values not installed");
                    }
                }
                if every_days == 0 || last_retrain_check.elapsed() < RETRAIN_CHECK_EVERY {
                    continue;
                }
                last_retrain_check = std::time::Instant::now();
                for (workspace, outcome) in retrain_due(
                    &store,
                    &engines,
                    clock.now(),
                    every_days,
                    &options,
                    &mut attempts,
                ) {
                    match outcome {
                        Retrained::Trained(id, model) => {
                            tracing::info!(%workspace, model = id, "risk model retrained");
                            if let Err(e) = install_blocking(&ingestor, &workspace, model) {
                                tracing::error!(%workspace, error = %e, "retrained risk model not installed");
                            }
                        }
                        Retrained::Failed(e) => {
                            tracing::warn!(%workspace, error = %e, "risk model not retrained")
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the risk retraining schedule");
    }
}
