//! The predictions of each workspace (`tenure_core::predictions`), cached per workspace and
//! refitted when the day has changed, or when the engine has folded new events and the fit
//! is [`REFIT_AFTER`] old: a fit takes from a millisecond (BG/NBD) to most of a second
//! (Pareto/NBD on the demo's 1,548 purchasers), and under steady ingest every profile would
//! otherwise pay it. Also the day's table segments read, computed and handed to the writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tenure_core::predictions::{NoModel, OrderModels, SubscriptionModel};
use tenure_core::segments::DailyValues;
use tenure_core::time::{Millis, day_of};
use tenure_core::{LiveWorkspace, WorkspaceId};

/// A fit older than this is redone when the log has moved on (see the module's doc).
pub const REFIT_AFTER: Millis = 5 * 60 * 1000;

#[derive(Default, Clone)]
pub struct PredictionCache {
    fitted: Arc<Mutex<HashMap<WorkspaceId, Attempt<OrderModels>>>>,
    subscriptions: Arc<Mutex<HashMap<WorkspaceId, Attempt<SubscriptionModel>>>>,
}

/// The last fit of a workspace's model, kept even when it failed (too few customers, no
/// convergence), so that a failure is computed and logged once per fit, not on every
/// profile read.
struct Attempt<T> {
    model: Option<Arc<T>>,
    events_at_fit: u64,
    day_at_fit: i32,
    fitted_at: Millis,
}

impl<T> Attempt<T> {
    fn new(model: Option<T>, engine: &LiveWorkspace, now: Millis) -> Self {
        Self {
            model: model.map(Arc::new),
            events_at_fit: engine.events_applied(),
            day_at_fit: day_of(now),
            fitted_at: now,
        }
    }

    /// Fitted today, and on the engine as it is (or less than `REFIT_AFTER` ago).
    fn fresh(&self, engine: &LiveWorkspace, now: Millis) -> bool {
        self.day_at_fit == day_of(now)
            && (self.events_at_fit == engine.events_applied() || now - self.fitted_at < REFIT_AFTER)
    }
}

/// The model, or `None` after logging why a fit failed (too few customers is no news).
fn model_or_log<T>(engine: &LiveWorkspace, model: Result<T, NoModel>) -> Option<T> {
    match model {
        Ok(model) => Some(model),
        Err(NoModel::TooFew(_)) => None,
        Err(why) => {
            tracing::warn!(workspace = %engine.workspace(), "{why}");
            None
        }
    }
}

impl PredictionCache {
    /// Drops the workspace's fitted models (after an erasure: they were fitted on the
    /// erased customer too); the next read fits again.
    pub fn forget(&self, workspace: &WorkspaceId) {
        if let Ok(mut fitted) = self.fitted.lock() {
            fitted.remove(workspace);
        }
        if let Ok(mut fitted) = self.subscriptions.lock() {
            fitted.remove(workspace);
        }
    }

    /// The workspace's models, refitted if the engine or the day moved on since the last fit.
    pub fn models(&self, engine: &LiveWorkspace, now: Millis) -> Option<Arc<OrderModels>> {
        let mut fitted = self.fitted.lock().ok()?;
        if let Some(attempt) = fitted.get(engine.workspace())
            && attempt.fresh(engine, now)
        {
            return attempt.model.clone();
        }
        let attempt = Attempt::new(
            model_or_log(engine, OrderModels::fit(engine, now)),
            engine,
            now,
        );
        let models = attempt.model.clone();
        fitted.insert(engine.workspace().clone(), attempt);
        models
    }
}

impl PredictionCache {
    /// The workspace's subscription retention model, refitted like [`Self::models`].
    pub fn subscription_model(
        &self,
        engine: &LiveWorkspace,
        now: Millis,
    ) -> Option<Arc<SubscriptionModel>> {
        let mut fitted = self.subscriptions.lock().ok()?;
        if let Some(attempt) = fitted.get(engine.workspace())
            && attempt.fresh(engine, now)
        {
            return attempt.model.clone();
        }
        let attempt = Attempt::new(
            model_or_log(engine, SubscriptionModel::fit(engine, now)),
            engine,
            now,
        );
        let model = attempt.model.clone();
        fitted.insert(engine.workspace().clone(), attempt);
        model
    }
}

/// Computes today's table for a workspace whose segments read one (or when `needed`) and
/// hands it to the writer, unless the engine already holds today's: the schedule does it for
/// every loaded workspace once a minute (so within a minute of midnight), a segment's save
/// or preview before it evaluates. The table is computed under a read lock only; the writer
/// then reconciles every segment with it. Blocking. Whether a table was installed.
pub fn refresh_daily_values(
    engine: &std::sync::RwLock<LiveWorkspace>,
    ingestor: &crate::writer::Ingestor,
    now: Millis,
    needed: bool,
) -> Result<bool, crate::writer::WriteError> {
    let (workspace, table) = {
        let Ok(engine) = engine.read() else {
            return Ok(false);
        };
        let wanted = needed || engine.segments_read_daily_values();
        if !wanted || engine.daily_values().is_some_and(|d| d.day == day_of(now)) {
            return Ok(false);
        }
        (engine.workspace().clone(), daily_values(&engine, now))
    };
    ingestor.segment_blocking(
        workspace,
        crate::writer::WorkspaceOp::SetDailyValues {
            values: Arc::new(table),
        },
    )?;
    Ok(true)
}

/// The day's table segments read (`tenure_core::predictions::daily_values`), timed and
/// logged. Blocking.
pub fn daily_values(engine: &LiveWorkspace, now: Millis) -> DailyValues {
    let started = std::time::Instant::now();
    let (table, missing) = tenure_core::predictions::daily_values(engine, now);
    tracing::info!(
        workspace = %engine.workspace(),
        customers = table.customers.len(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        without_order_models = missing.map(|m| m.to_string()),
        "computed the day's values for segments"
    );
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16, item 8: a fit that fails was attempted (and logged) again on every profile
    /// read; the failed attempt is now remembered until the engine or the day moves on.
    #[test]
    fn a_failed_fit_is_remembered_like_a_successful_one() {
        let engine = LiveWorkspace::new(WorkspaceId::parse("ws_fits").unwrap());
        let cache = PredictionCache::default();
        let now = 1_700_000_000_000;
        assert!(cache.subscription_model(&engine, now).is_none());
        assert!(cache.models(&engine, now).is_none());
        let remembered = |map: &Mutex<HashMap<WorkspaceId, Attempt<SubscriptionModel>>>| {
            map.lock()
                .unwrap()
                .get(engine.workspace())
                .is_some_and(|a| a.model.is_none() && a.fresh(&engine, now))
        };
        assert!(remembered(&cache.subscriptions));
        assert!(
            cache
                .fitted
                .lock()
                .unwrap()
                .get(engine.workspace())
                .is_some_and(|a| a.model.is_none())
        );
    }
}
