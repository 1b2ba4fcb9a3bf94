//! HTTP routes, one file per resource, each exposing `router()`.

pub mod customers;
pub mod health;
pub mod health_models;
pub mod health_scores;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod risk;
pub mod segments;
pub mod tasks;
pub mod workspace;

use crate::error::{ApiError, Code};

/// A `limit` query parameter: `default` when absent, else a whole number from 1 to `max`.
pub(crate) fn limit_param(
    text: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match text {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidParameter,
                    format!(
                        "query parameter `limit`: `{text}` must be a whole number from 1 to {max}"
                    ),
                )
            }),
    }
}

/// The workspace's engine, folding its log first if it is not loaded yet (off the async
/// workers).
pub(crate) async fn engine_for(
    state: &crate::AppState,
    workspace: &tenure_core::WorkspaceId,
) -> Result<std::sync::Arc<std::sync::RwLock<tenure_core::LiveWorkspace>>, ApiError> {
    let engines = state.engines.clone();
    let ws = workspace.clone();
    Ok(tokio::task::spawn_blocking(move || engines.get(&ws))
        .await
        .map_err(|_| ApiError::new(Code::Internal, "engine load interrupted"))??)
}

/// Records an admin's action in the workspace's audit log (off the async workers). A failure
/// to record is logged at ERROR: the action itself was done.
pub(crate) async fn record(
    state: &crate::AppState,
    caller: &crate::auth::Caller,
    action: &'static str,
    target: String,
    detail: String,
) {
    let store = state.store.clone();
    let (workspace, actor) = (caller.workspace.clone(), caller.key.to_string());
    let now = state.clock.now();
    let done = tokio::task::spawn_blocking(move || {
        crate::admin::audit(&store, &workspace, &actor, action, &target, &detail, now)
    })
    .await;
    if !matches!(done, Ok(Ok(()))) {
        tracing::error!(
            action,
            "an admin action could not be recorded in the audit log"
        );
    }
}
