//! Folding a workspace's log into a fresh `LiveWorkspace`, with what it stores beside the
//! log: segment definitions, health models, the renewal policy, the risk model.

use std::sync::Arc;

use tenure_core::health::{AssignedModel, HealthModels};
use tenure_core::segments::{Definition, SegmentId};
use tenure_core::{LiveWorkspace, Message, WorkspaceId};
use tenure_store::{Backend, StoreError};

/// Messages handed from the reading thread to the folding thread at a time.
pub(super) const REBUILD_CHUNK: usize = 4096;

/// The workspace's stored segment definitions, parsed. A definition that no longer parses
/// (the language changed) is skipped with an error in the log, not fatal.
pub fn stored_segments(
    conn: &mut dyn Backend,
    workspace: &WorkspaceId,
) -> Result<Vec<(tenure_store::SegmentRow, Definition)>, StoreError> {
    Ok(conn
        .segments(workspace)?
        .into_iter()
        .filter_map(|row| {
            let parsed = serde_json::from_str(&row.definition)
                .map_err(|e| e.to_string())
                .and_then(|v| Definition::parse(&v));
            match parsed {
                Ok(d) => Some((row, d)),
                Err(e) => {
                    tracing::error!(workspace = %workspace, segment = row.id, "stored segment definition cannot be read: {e}");
                    None
                }
            }
        })
        .collect())
}

/// The workspace's stored health models, parsed (the shipped default when none are stored).
/// A model that no longer parses is skipped with an error in the log, not fatal.
pub fn stored_health_models(
    conn: &mut dyn Backend,
    workspace: &WorkspaceId,
) -> Result<HealthModels, StoreError> {
    let models = readable_health_models(conn, workspace)?;
    Ok(HealthModels::new(models).unwrap_or_else(|e| {
        tracing::error!(workspace = %workspace, "stored health models are inconsistent, using the shipped model: {e}");
        HealthModels::default()
    }))
}

/// The stored health models that parse (one that does not is logged and left out).
pub(super) fn readable_health_models(
    conn: &mut dyn Backend,
    workspace: &WorkspaceId,
) -> Result<Vec<AssignedModel>, StoreError> {
    Ok(conn
        .health_models(workspace)?
        .into_iter()
        .filter_map(|row| {
            let parsed = serde_json::from_str(&row.definition)
                .map_err(|e| e.to_string())
                .and_then(|v| AssignedModel::parse(&v));
            match parsed {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(workspace = %workspace, model = row.name, "stored health model cannot be read: {e}");
                    None
                }
            }
        })
        .collect())
}

/// The workspace's renewal policy as stored (the default, `auto`, when it cannot be read).
pub fn stored_renewals(
    conn: &mut dyn Backend,
    workspace: &WorkspaceId,
) -> Result<tenure_core::subscription::Renewals, StoreError> {
    let text = conn.workspace_renewals(workspace)?;
    Ok(text
        .as_deref()
        .and_then(|t| {
            let parsed = tenure_core::subscription::Renewals::parse(t);
            if parsed.is_none() {
                tracing::error!(workspace = %workspace, "stored renewal policy `{t}` cannot be read, using auto");
            }
            parsed
        })
        .unwrap_or_default())
}

/// The workspace's latest churn-risk model, if one was trained and can be read.
pub fn stored_risk_model(
    conn: &mut dyn Backend,
    workspace: &WorkspaceId,
) -> Result<Option<Arc<tenure_risk::RiskModel>>, StoreError> {
    Ok(conn.latest_risk_model(workspace)?.and_then(|row| {
        tenure_risk::RiskModel::from_json(&row.model)
            .map_err(|e| tracing::error!(workspace = %workspace, model = row.id, "stored risk model cannot be read: {e}"))
            .ok()
            .map(Arc::new)
    }))
}

/// Folds a workspace's whole log into a fresh engine, with its segment definitions loaded
/// first (so filtered leaves count every logged event); the first tick then reconciles
/// memberships with the clock.
///
/// Two threads: one reads and decodes rows, the other folds them, so a rebuild uses both
/// cores (reading + decoding and folding each take about half the time).
pub fn rebuild(
    conn: &mut dyn Backend,
    workspace: &WorkspaceId,
) -> Result<LiveWorkspace, StoreError> {
    let segments = stored_segments(conn, workspace)?;
    let health = stored_health_models(conn, workspace)?;
    let risk = stored_risk_model(conn, workspace)?;
    let renewals = stored_renewals(conn, workspace)?;
    let (chunks, incoming) = std::sync::mpsc::sync_channel::<Vec<(i64, Message)>>(8);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut chunk = Vec::with_capacity(REBUILD_CHUNK);
            let mut stopped = false;
            let read = conn.scan_log(workspace, 0, &mut |seq, columns| match Message::from_log_columns(columns) {
                Ok(message) => {
                    chunk.push((seq, message));
                    if chunk.len() == REBUILD_CHUNK && !stopped {
                        stopped = chunks.send(std::mem::replace(&mut chunk, Vec::with_capacity(REBUILD_CHUNK))).is_err();
                    }
                }
                Err(e) => tracing::error!(seq, workspace = %workspace, "event in the log cannot be read: {e}"),
            });
            if !chunk.is_empty() && !stopped {
                let _ = chunks.send(chunk);
            }
            read
        });
        let mut engine = LiveWorkspace::new(workspace.clone());
        // Before any event: subscriptions keep their phases under it as they are folded.
        engine.set_renewals(renewals);
        engine.set_health_models(health);
        engine.set_risk_model(risk.map(|m| m as Arc<dyn tenure_core::risk::ChurnRisk>));
        for (row, definition) in segments {
            engine.load_segment(SegmentId(row.id), &row.name, row.version, definition);
        }
        for chunk in incoming {
            for (seq, message) in &chunk {
                engine.apply(message);
                engine.advance_to(*seq);
            }
        }
        match reader.join() {
            Ok(read) => read.map(|()| {
                // Before the first reconcile, or segments on the day's values would empty
                // and fill again (docs/segments.md). The engine is not shared yet.
                if engine.segments_read_daily_values() {
                    let now = tenure_core::time::Clock::now(&crate::SystemClock);
                    engine
                        .set_daily_values(Arc::new(crate::predictions::daily_values(&engine, now)));
                }
                engine
            }),
            Err(_) => Err(StoreError::Corrupt("the log reader panicked".into())),
        }
    })
}
