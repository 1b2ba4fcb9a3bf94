//! The single writer: every append to the log goes through it.
//!
//! ```text
//!  HTTP handlers / import / demo ──WriteRequest──► mpsc ──► writer thread
//!                                                            │ 1. take every queued request (group commit)
//!                                                            │ 2. drop messages already in the log (messageId)
//!                                                            │ 3. fold the new ones into the engines (write lock held)
//!                                                            │ 4. append events + customer rows in ONE transaction
//!                                                            │ 5. commit; on failure rebuild the engines from the log
//!                                                            ▼ 6. release the lock, answer every request
//! ```
//!
//! Holding the engine's write lock until the commit means no reader ever sees an event that
//! is not durable, and an answer is sent only after its events are committed. If the commit
//! fails, the engines are rebuilt from the log, so the in-memory state never holds an event
//! the database does not.

mod group;
mod ingestor;
mod jobs;
mod rebuild;
mod registry;
#[cfg(test)]
mod tests;

use group::*;
pub use ingestor::Ingestor;
pub use jobs::segment_history;
use jobs::*;
use rebuild::*;
pub use rebuild::{
    rebuild, stored_health_models, stored_renewals, stored_risk_model, stored_segments,
};
pub use registry::Engines;

use std::sync::Arc;

use serde::Serialize;
use tenure_core::health::AssignedModel;
use tenure_core::segments::Definition;
use tenure_core::{CustomerId, Message, WorkspaceId};
use tokio::sync::oneshot;

/// Most events committed in one transaction.
const MAX_GROUP_EVENTS: usize = 20_000;

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    Stored {
        seq: i64,
        #[serde(rename = "customerId")]
        customer: CustomerId,
    },
    /// A message with this `messageId` is already in the log; it was not stored again.
    Duplicate,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("the events could not be committed: {0}")]
pub struct WriteError(pub String);

struct WriteRequest {
    workspace: WorkspaceId,
    messages: Vec<Message>,
    reply: oneshot::Sender<Result<Vec<Outcome>, WriteError>>,
}

/// A change to a workspace that is not an event: its segment definitions (docs/segments.md),
/// health models, risk model, day's values, renewal policy, or an erasure. Each goes through
/// the writer like an append, because each can move segment memberships.
#[derive(Debug, Clone)]
pub enum WorkspaceOp {
    /// Create (`id: None`) or replace a definition; `source` is its JSON text as stored.
    Save {
        id: Option<u32>,
        name: String,
        definition: Definition,
        source: String,
    },
    Delete {
        id: u32,
    },
    /// Store (or replace, by name) a health model; every segment reading health is
    /// reconciled with the new models (docs/health.md).
    PutHealthModel {
        model: Box<AssignedModel>,
        source: String,
    },
    DeleteHealthModel {
        name: String,
    },
    /// Use a newly trained churn-risk model; every segment reading risk is reconciled.
    SetRiskModel {
        model: Arc<tenure_risk::RiskModel>,
    },
    /// Use a new day's table of values (`p_alive`, `predicted_clv`, `revenue_percentile`,
    /// docs/segments.md); every segment is reconciled with it.
    SetDailyValues {
        values: Arc<tenure_core::segments::DailyValues>,
    },
    /// Store the workspace's renewal policy and read every subscription under it; every
    /// segment is reconciled (docs/metrics.md, "Renewals").
    SetRenewals {
        renewals: tenure_core::subscription::Renewals,
    },
    /// Erase a customer (an id or a user id) and those merged into them: their events and
    /// rows go in one transaction, then the engine folds the log again (docs/security.md).
    EraseCustomer {
        customer: String,
    },
}

/// What a [`WorkspaceOp`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpDone {
    /// Saved and backfilled: how many customers entered and left it.
    Saved {
        id: u32,
        entered: usize,
        exited: usize,
    },
    Deleted,
    NotFound,
    /// The health or risk models changed: how many segment entries and exits that caused.
    Reconciled {
        entered: usize,
        exited: usize,
    },
    /// The change would leave the models inconsistent (two defaults); nothing was stored.
    Refused(String),
    /// A customer was erased: their id and how many events went.
    Erased {
        customer: CustomerId,
        events: u64,
    },
}

struct OpRequest {
    workspace: WorkspaceId,
    op: WorkspaceOp,
    reply: oneshot::Sender<Result<OpDone, WriteError>>,
}

/// What the writer thread does, one at a time.
enum Job {
    Append(WriteRequest),
    Segment(OpRequest),
    /// Fire the segment timers that are due.
    Tick,
    /// Panics while holding the workspace's engine (tests of panic containment).
    #[cfg(test)]
    Panic(WorkspaceId),
}
