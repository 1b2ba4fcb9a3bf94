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
    create_key_with(
        store,
        workspace,
        NewKey {
            kind,
            name: None,
            expires_at: None,
        },
        "cli",
        now,
    )
}

/// What a new key is.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub kind: KeyKind,
    /// What it is for, to tell keys apart (at most 100 characters).
    pub name: Option<String>,
    /// It stops working then.
    pub expires_at: Option<i64>,
}

/// Creates a key (recorded in the audit log as done by `actor`).
pub fn create_key_with(
    store: &Store,
    workspace: &WorkspaceId,
    new: NewKey,
    actor: &str,
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
    if new
        .name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control))
    {
        return Err(StoreError::Conflict(
            "a key's name is at most 100 printable characters".into(),
        ));
    }
    if new.expires_at.is_some_and(|e| e <= now) {
        return Err(StoreError::Conflict(
            "a key's expiry must be in the future".into(),
        ));
    }
    let (mut key, secret) = new_key(workspace, new.kind, now)
        .map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    key.name = new.name;
    key.expires_at = new.expires_at;
    store.with(|c| c.create_key(&key, &hash_secret(&secret)))?;
    audit(
        store,
        workspace,
        actor,
        "key.created",
        key.id.as_str(),
        &format!(
            "{} key{}",
            key.kind.as_str(),
            key.name
                .as_deref()
                .map(|n| format!(" `{n}`"))
                .unwrap_or_default()
        ),
        now,
    )?;
    Ok((key, secret))
}

/// Revokes a key: it stops working on every process within a second, and the dashboard
/// sessions it opened end. `false` if the workspace has no such key still working.
pub fn revoke_key(
    store: &Store,
    workspace: &WorkspaceId,
    id: &tenure_core::KeyId,
    actor: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let revoked = store.with(|c| c.revoke_key(workspace, id, now))?;
    if revoked {
        audit(store, workspace, actor, "key.revoked", id.as_str(), "", now)?;
    }
    Ok(revoked)
}

/// Appends an entry to the workspace's audit log (never personal data: ids only).
pub fn audit(
    store: &Store,
    workspace: &WorkspaceId,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    now: i64,
) -> Result<(), StoreError> {
    store.with(|c| {
        c.audit(
            workspace,
            &tenure_store::AuditEntry {
                at: now,
                actor: actor.to_owned(),
                action: action.to_owned(),
                target: target.to_owned(),
                detail: detail.to_owned(),
            },
        )
    })
}

/// Everything stored about customers (a person and those merged into them), for an access
/// request: their customers-table rows and every event as received, oldest first, each
/// with the stored `timestamp` and `receivedAt`.
pub fn customer_export(
    store: &Store,
    workspace: &WorkspaceId,
    customers: &[tenure_core::CustomerId],
) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), StoreError> {
    use serde_json::{Value, json};
    use tenure_core::time::format_instant;
    store.with(|c| {
        let events = c
            .customer_events(workspace, customers, usize::MAX >> 1)?
            .into_iter()
            .rev()
            .map(|e| {
                let mut message: Value = serde_json::from_str(&e.raw).unwrap_or(Value::Null);
                message["timestamp"] = json!(format_instant(e.timestamp));
                message["receivedAt"] = json!(format_instant(e.received_at));
                message
            })
            .collect();
        let mut rows = Vec::new();
        for id in customers {
            if let Some(r) = c.customer_row(workspace, id)? {
                rows.push(json!({
                    "id": r.id,
                    "user_id": r.user_id,
                    "identities": serde_json::from_str::<Value>(&r.identities).unwrap_or(Value::Null),
                    "traits": serde_json::from_str::<Value>(&r.traits).unwrap_or(Value::Null),
                    "first_seen": format_instant(r.first_seen),
                    "merged_into": r.merged_into,
                }));
            }
        }
        Ok((rows, events))
    })
}
