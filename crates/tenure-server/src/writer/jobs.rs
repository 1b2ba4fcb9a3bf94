//! The writer's jobs besides appends: a segment saved or deleted (with its backfill), health
//! and risk models, the day's values, the renewal policy and erasures, each reconciling the
//! segments it moves.

use std::collections::HashSet;
use std::sync::RwLock;

use tenure_core::health::HealthModels;
use tenure_core::segments::{Definition, SegmentId};
use tenure_core::time::Millis;
use tenure_core::{LiveWorkspace, Message, WorkspaceId};
use tenure_store::{Backend, StoreError};

use super::*;

/// Logged events a definition's filtered leaves count (none without filters).
pub fn segment_history(
    conn: &mut dyn Backend,
    ws: &WorkspaceId,
    definition: &Definition,
) -> Result<Vec<Message>, StoreError> {
    let events: HashSet<&str> = definition.slots.iter().map(|(e, _)| e.as_str()).collect();
    let mut history = Vec::new();
    if events.is_empty() {
        return Ok(history);
    }
    conn.scan_log(ws, 0, &mut |_, columns| {
        if columns.kind == "track"
            && columns.name.as_deref().is_some_and(|n| events.contains(n))
            && let Ok(m) = Message::from_log_columns(columns)
        {
            history.push(m);
        }
    })?;
    Ok(history)
}

pub(super) fn segment_job(
    conn: &mut dyn Backend,
    engines: &Engines,
    request: &OpRequest,
    now: Millis,
) -> Result<OpDone, StoreError> {
    let ws = &request.workspace;
    let lock = engines.get(ws)?;
    match &request.op {
        WorkspaceOp::PutHealthModel { .. } | WorkspaceOp::DeleteHealthModel { .. } => {
            health_model_job(conn, &lock, ws, &request.op, now)
        }
        WorkspaceOp::SetRiskModel { model } => {
            let model = model.clone();
            reconcile_after(conn, &lock, ws, now, move |engine| {
                engine.set_risk_model(Some(model as Arc<dyn tenure_core::risk::ChurnRisk>))
            })
        }
        WorkspaceOp::EraseCustomer { customer } => {
            let mut engine = lock
                .write()
                .map_err(|_| StoreError::Corrupt("engine lock poisoned".into()))?;
            let Some(state) = engine.find(customer) else {
                return Ok(OpDone::NotFound);
            };
            let id = state.id.clone();
            let mut ids = vec![id.clone()];
            ids.extend(state.merged.iter().cloned());
            let events = conn.erase_customers(ws, &ids)?;
            // Nothing of them stays in memory: the engine is the log folded again.
            *engine = rebuild(conn, ws)?;
            Ok(OpDone::Erased {
                customer: id,
                events,
            })
        }
        WorkspaceOp::SetRenewals { renewals } => {
            conn.set_workspace_renewals(ws, renewals.as_str())?;
            let renewals = *renewals;
            reconcile_after(conn, &lock, ws, now, move |engine| {
                engine.set_renewals(renewals)
            })
        }
        WorkspaceOp::SetDailyValues { values } => {
            let values = values.clone();
            reconcile_after(conn, &lock, ws, now, move |engine| {
                engine.set_daily_values(values)
            })
        }
        WorkspaceOp::Delete { id } => {
            if !conn.delete_segment(ws, *id, now)? {
                return Ok(OpDone::NotFound);
            }
            let mut engine = lock
                .write()
                .map_err(|_| StoreError::Corrupt("engine lock poisoned".into()))?;
            engine.remove_segment(SegmentId(*id));
            Ok(OpDone::Deleted)
        }
        WorkspaceOp::Save {
            id,
            name,
            definition,
            source,
        } => {
            let id = match id {
                Some(id) => {
                    if !conn.update_segment(ws, *id, name, source, now)? {
                        return Ok(OpDone::NotFound);
                    }
                    *id
                }
                None => conn.create_segment(ws, name, source, now)?,
            };
            let history = segment_history(conn, ws, definition)?;
            let mut engine = lock
                .write()
                .map_err(|_| StoreError::Corrupt("engine lock poisoned".into()))?;
            // Timers due first, so the backfill starts from memberships that are current.
            let due = engine.due_segment_changes(now);
            append_derived(conn, ws, &mut engine, &due)?;
            let backfill =
                engine.define_segment(SegmentId(id), name, definition.clone(), &history, now);
            append_backfill(conn, ws, &mut engine, &backfill)?;
            Ok(OpDone::Saved {
                id,
                entered: backfill.entered(),
                exited: backfill.exited(),
            })
        }
    }
}

/// A health model stored or deleted: the new set is checked before anything is written, set
/// in the engine, and every segment reconciled with it (the changes appended).
pub(super) fn health_model_job(
    conn: &mut dyn Backend,
    lock: &RwLock<LiveWorkspace>,
    ws: &WorkspaceId,
    op: &WorkspaceOp,
    now: Millis,
) -> Result<OpDone, StoreError> {
    let mut models = readable_health_models(conn, ws)?;
    let models = match op {
        // Checked before it is written: it must not make a second default.
        WorkspaceOp::PutHealthModel { model, source } => {
            models.retain(|m| m.model.name != model.model.name);
            models.push((**model).clone());
            let models = match HealthModels::new(models) {
                Ok(models) => models,
                Err(e) => return Ok(OpDone::Refused(e)),
            };
            conn.put_health_model(ws, &model.model.name, source, now)?;
            models
        }
        // Removing one never makes the rest inconsistent, and even one that no longer
        // parses can be deleted.
        WorkspaceOp::DeleteHealthModel { name } => {
            if !conn.delete_health_model(ws, name)? {
                return Ok(OpDone::NotFound);
            }
            models.retain(|m| m.model.name != *name);
            HealthModels::new(models).unwrap_or_default()
        }
        _ => return Ok(OpDone::NotFound),
    };
    reconcile_after(conn, lock, ws, now, move |engine| {
        engine.set_health_models(models)
    })
}

/// Applies a change that can move every customer's memberships (new health or risk
/// models): timers due under the old state first, then everyone reconciled under the new
/// one, the changes appended.
pub(super) fn reconcile_after(
    conn: &mut dyn Backend,
    lock: &RwLock<LiveWorkspace>,
    ws: &WorkspaceId,
    now: Millis,
    change: impl FnOnce(&mut LiveWorkspace),
) -> Result<OpDone, StoreError> {
    let mut engine = lock
        .write()
        .map_err(|_| StoreError::Corrupt("engine lock poisoned".into()))?;
    let mut derived = engine.due_segment_changes(now);
    let before = derived.len();
    change(&mut engine);
    derived.extend(engine.due_segment_changes(now));
    let count = |name: &str| {
        derived[before..]
            .iter()
            .filter(|(_, m)| m.name.as_deref() == Some(name))
            .count()
    };
    let (entered, exited) = (count("Segment Entered"), count("Segment Exited"));
    append_derived(conn, ws, &mut engine, &derived)?;
    Ok(OpDone::Reconciled { entered, exited })
}
