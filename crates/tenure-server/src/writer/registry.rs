//! The live workspaces of every workspace, each folded from its log the first time it is
//! asked for.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tenure_core::time::Millis;
use tenure_core::{LiveWorkspace, WorkspaceId};
use tenure_store::{Store, StoreError};

use super::*;

/// The engines of all workspaces, loaded lazily from the log.
#[derive(Clone)]
pub struct Engines {
    store: Store,
    map: Arc<RwLock<HashMap<WorkspaceId, Arc<RwLock<LiveWorkspace>>>>>,
}

impl Engines {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            map: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The engine of a workspace, folding its log first if it is not loaded yet. Blocking.
    pub fn get(&self, workspace: &WorkspaceId) -> Result<Arc<RwLock<LiveWorkspace>>, StoreError> {
        if let Some(engine) = self.map.read().ok().and_then(|m| m.get(workspace).cloned()) {
            return Ok(engine);
        }
        let engine = self.store.with(|conn| rebuild(conn, workspace))?;
        let mut map = self
            .map
            .write()
            .map_err(|_| StoreError::Corrupt("engine map lock poisoned".into()))?;
        Ok(map
            .entry(workspace.clone())
            .or_insert_with(|| Arc::new(RwLock::new(engine)))
            .clone())
    }

    /// The engines loaded so far.
    pub(crate) fn loaded(&self) -> Vec<(WorkspaceId, Arc<RwLock<LiveWorkspace>>)> {
        self.map
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The earliest segment timer of any loaded engine.
    pub(super) fn next_timer(&self) -> Option<Millis> {
        self.loaded()
            .iter()
            .filter_map(|(_, e)| e.read().ok().and_then(|e| e.next_segment_timer()))
            .min()
    }

    /// Loads every workspace's engine (at start, so the first request is not slow).
    pub fn load_all(&self) -> Result<usize, StoreError> {
        let workspaces = self.store.with(|conn| conn.workspaces())?;
        for ws in &workspaces {
            self.get(&ws.id)?;
        }
        Ok(workspaces.len())
    }
}
