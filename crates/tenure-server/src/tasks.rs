//! Long work as tasks: registered, answered at once with an id, run off the request path
//! (and never on the writer), polled with `GET /v1/tasks/{id}` — Meilisearch's model. Churn-risk
//! training is one; broadcasts and backfills will be.
//!
//! ```text
//!  POST /v1/risk/train ─► validate ─► Tasks::start (one per workspace and kind) ─► 202 {task}
//!                                        │
//!                                        └─► blocking thread: work … handle.succeed / fail
//!  GET /v1/tasks/{id} ◄── status, progress, result or error (scoped to the caller's workspace)
//! ```
//!
//! Tasks live in memory: a restart forgets them (the work they did, a stored model, stays).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tenure_core::WorkspaceId;
use tenure_core::time::Millis;

/// Finished tasks kept for polling, at most.
const KEEP_FINISHED: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
}

/// What a client sees of a task.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: String,
    pub kind: &'static str,
    #[serde(skip)]
    pub workspace: WorkspaceId,
    pub status: Status,
    /// What it is doing now, in words.
    pub progress: String,
    #[serde(with = "tenure_core::time::iso")]
    pub started_at: Millis,
    #[serde(with = "tenure_core::time::iso::option")]
    pub finished_at: Option<Millis>,
    /// The answer, once it succeeded.
    pub result: Option<Value>,
    /// The error (`{code, message, type, link}`), once it failed.
    pub error: Option<Value>,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    tasks: BTreeMap<u64, Task>,
    /// The running task of each (workspace, kind).
    running: HashMap<(WorkspaceId, &'static str), u64>,
}

/// Every task of this process.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    registry: Arc<Mutex<Registry>>,
}

/// The running task's side: report progress, then succeed or fail (dropping it unfinished
/// fails the task, so a panic in the work is never "running" forever).
#[derive(Debug)]
pub struct TaskHandle {
    tasks: Tasks,
    number: u64,
    finished: bool,
}

impl Tasks {
    /// Registers a running task, unless one of the same kind is running in the workspace:
    /// then that one is the error.
    pub fn start(
        &self,
        workspace: &WorkspaceId,
        kind: &'static str,
        now: Millis,
    ) -> Result<(Task, TaskHandle), Box<Task>> {
        let mut registry = self.lock();
        if let Some(number) = registry.running.get(&(workspace.clone(), kind))
            && let Some(task) = registry.tasks.get(number)
        {
            return Err(Box::new(task.clone()));
        }
        registry.next += 1;
        let number = registry.next;
        let task = Task {
            id: format!("task_{number}"),
            kind,
            workspace: workspace.clone(),
            status: Status::Running,
            progress: "started".into(),
            started_at: now,
            finished_at: None,
            result: None,
            error: None,
        };
        registry.tasks.insert(number, task.clone());
        registry.running.insert((workspace.clone(), kind), number);
        let handle = TaskHandle {
            tasks: self.clone(),
            number,
            finished: false,
        };
        Ok((task, handle))
    }

    /// A task of the workspace (another workspace's is not found).
    pub fn get(&self, workspace: &WorkspaceId, id: &str) -> Option<Task> {
        let number: u64 = id.strip_prefix("task_")?.parse().ok()?;
        self.lock()
            .tasks
            .get(&number)
            .filter(|t| t.workspace == *workspace)
            .cloned()
    }

    /// The workspace's tasks, newest first.
    pub fn list(&self, workspace: &WorkspaceId) -> Vec<Task> {
        self.lock()
            .tasks
            .values()
            .rev()
            .filter(|t| t.workspace == *workspace)
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding this lock leaves plain data: keep using it.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, number: u64, change: impl FnOnce(&mut Task)) {
        let mut registry = self.lock();
        let Some(task) = registry.tasks.get_mut(&number) else {
            return;
        };
        change(task);
        if task.status != Status::Running {
            let key = (task.workspace.clone(), task.kind);
            registry.running.remove(&key);
            let finished: Vec<u64> = registry
                .tasks
                .iter()
                .filter(|(_, t)| t.status != Status::Running)
                .map(|(n, _)| *n)
                .collect();
            for old in finished
                .iter()
                .take(finished.len().saturating_sub(KEEP_FINISHED))
            {
                registry.tasks.remove(old);
            }
        }
    }
}

impl TaskHandle {
    pub fn progress(&self, text: impl Into<String>) {
        let text = text.into();
        self.tasks.update(self.number, |t| t.progress = text);
    }

    pub fn succeed(mut self, now: Millis, result: Value) {
        self.finished = true;
        self.tasks.update(self.number, |t| {
            t.status = Status::Succeeded;
            t.progress = "done".into();
            t.finished_at = Some(now);
            t.result = Some(result);
        });
    }

    pub fn fail(mut self, now: Millis, error: Value) {
        self.finished = true;
        self.tasks.update(self.number, |t| {
            t.status = Status::Failed;
            t.progress = "failed".into();
            t.finished_at = Some(now);
            t.error = Some(error);
        });
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        if !self.finished {
            let now = jiff::Timestamp::now().as_millisecond();
            self.tasks.update(self.number, |t| {
                t.status = Status::Failed;
                t.progress = "failed".into();
                t.finished_at = Some(now);
                t.error = Some(serde_json::json!({
                    "code": "internal", "type": "system",
                    "message": "the task stopped without an answer (see the server's log)"
                }));
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_task_of_a_kind_runs_per_workspace_and_each_is_seen_only_there() {
        let tasks = Tasks::default();
        let (a, b) = (
            WorkspaceId::parse("ws_a").unwrap(),
            WorkspaceId::parse("ws_b").unwrap(),
        );
        let (first, handle) = tasks.start(&a, "risk_training", 1).unwrap();
        let busy = tasks.start(&a, "risk_training", 2).unwrap_err();
        assert_eq!(busy.id, first.id);
        let (other, other_handle) = tasks.start(&b, "risk_training", 2).unwrap();
        assert!(
            tasks.get(&b, &first.id).is_none(),
            "another workspace's task is not found"
        );
        handle.progress("fitting");
        assert_eq!(tasks.get(&a, &first.id).unwrap().progress, "fitting");
        handle.succeed(3, serde_json::json!({"id": 1}));
        let done = tasks.get(&a, &first.id).unwrap();
        assert_eq!(
            (done.status, done.finished_at),
            (Status::Succeeded, Some(3))
        );
        assert!(tasks.start(&a, "risk_training", 4).is_ok(), "free again");
        drop(other_handle);
        assert_eq!(tasks.get(&b, &other.id).unwrap().status, Status::Failed);
        assert_eq!(tasks.list(&a).len(), 2);
    }
}
