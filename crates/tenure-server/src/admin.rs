//! Administrative actions shared by the CLI and the API: workspaces and keys.

use tenure_core::WorkspaceId;
use tenure_store::{ApiKey, KeyKind, Store, StoreError, Workspace};

use crate::auth::{hash_secret, new_key};

pub fn create_workspace(store: &Store, name: &str, now: i64) -> Result<Workspace, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(StoreError::Conflict(
            "a workspace name is 1–100 characters".into(),
        ));
    }
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    let workspace = Workspace {
        id: WorkspaceId::from_random(random),
        name: name.to_owned(),
        created_at: now,
    };
    store.with(|c| c.create_workspace(&workspace))?;
    Ok(workspace)
}

/// Creates a key; returns its record and the secret (shown once, stored only hashed).
pub fn create_key(
    store: &Store,
    workspace: &WorkspaceId,
    kind: KeyKind,
    now: i64,
) -> Result<(ApiKey, String), StoreError> {
    let exists = store
        .with(|c| c.workspaces())?
        .iter()
        .any(|w| &w.id == workspace);
    if !exists {
        return Err(StoreError::Conflict(format!(
            "no workspace `{workspace}`: list them with `tenure workspace list`"
        )));
    }
    let (key, secret) = new_key(workspace, kind, now)
        .map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    store.with(|c| c.create_key(&key, &hash_secret(&secret)))?;
    Ok((key, secret))
}
