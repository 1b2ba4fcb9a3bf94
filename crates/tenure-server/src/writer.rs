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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tenure_core::health::{AssignedModel, HealthModels};
use tenure_core::segments::{Backfill, Definition, SegmentId};
use tenure_core::time::{Clock, Millis};
use tenure_core::{CustomerId, LiveWorkspace, Message, MessageType, WorkspaceId};
use tenure_store::{Append, Backend, CustomerRow, NewEvent, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

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

/// A change to a workspace's segment definitions (docs/segments.md).
#[derive(Debug, Clone)]
pub enum SegmentOp {
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
        model: Arc<tenure_core::risk::RiskModel>,
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

/// What a [`SegmentOp`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentDone {
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

struct SegmentRequest {
    workspace: WorkspaceId,
    op: SegmentOp,
    reply: oneshot::Sender<Result<SegmentDone, WriteError>>,
}

/// What the writer thread does, one at a time.
enum Job {
    Append(WriteRequest),
    Segment(SegmentRequest),
    /// Fire the segment timers that are due.
    Tick,
    /// Panics while holding the workspace's engine (tests of panic containment).
    #[cfg(test)]
    Panic(WorkspaceId),
}

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
    fn next_timer(&self) -> Option<Millis> {
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

/// Messages handed from the reading thread to the folding thread at a time.
const REBUILD_CHUNK: usize = 4096;

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
fn readable_health_models(
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
) -> Result<Option<Arc<tenure_core::risk::RiskModel>>, StoreError> {
    Ok(conn.latest_risk_model(workspace)?.and_then(|row| {
        tenure_core::risk::RiskModel::from_json(&row.model)
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
        engine.set_risk_model(risk);
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

/// The handle through which everything appends to the log.
#[derive(Clone)]
pub struct Ingestor {
    sender: mpsc::Sender<Job>,
}

/// Longest the timer thread sleeps without looking at the timers again (only matters if
/// the clock jumps; a new earlier timer wakes it at once).
const MAX_TIMER_SLEEP: std::time::Duration = std::time::Duration::from_secs(60);

impl Ingestor {
    /// Starts the writer thread on its own connection, and the timer thread that wakes it
    /// when a segment timer is due.
    pub fn start(
        store: &Store,
        engines: Engines,
        clock: Arc<dyn Clock>,
    ) -> Result<(Ingestor, std::thread::JoinHandle<()>), StoreError> {
        let mut conn = store.connect()?;
        let (sender, mut receiver) = mpsc::channel::<Job>(1024);
        let (wake, woken) = std::sync::mpsc::channel::<()>();
        let writer_clock = clock.clone();
        let writer_engines = engines.clone();
        let handle = std::thread::Builder::new()
            .name("tenure-writer".into())
            .spawn(move || {
                let (engines, clock) = (writer_engines, writer_clock);
                let mut pending: Option<Job> = None;
                loop {
                    let job = match pending.take() {
                        Some(job) => job,
                        None => match receiver.blocking_recv() {
                            Some(job) => job,
                            None => break,
                        },
                    };
                    // A panic in one job must not stop ingestion for good: its callers get an
                    // error (their answer channels are dropped), the engines it held are
                    // folded again from the log, and the writer takes the next job.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
                        Job::Append(first) => {
                            let mut group = vec![first];
                            let mut events = group[0].messages.len();
                            while events < MAX_GROUP_EVENTS {
                                match receiver.try_recv() {
                                    Ok(Job::Append(next)) => {
                                        events += next.messages.len();
                                        group.push(next);
                                    }
                                    Ok(other) => {
                                        pending = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            write_group(conn.as_mut(), &engines, group, clock.now());
                        }
                        Job::Segment(request) => {
                            let result =
                                segment_job(conn.as_mut(), &engines, &request, clock.now());
                            let _ = request.reply.send(result.map_err(|e| {
                                tracing::error!(workspace = %request.workspace, "a segment or model change failed: {e}");
                                WriteError(e.client_message())
                            }));
                        }
                        Job::Tick => tick(conn.as_mut(), &engines, clock.now()),
                        #[cfg(test)]
                        Job::Panic(ws) => {
                            let lock = engines.get(&ws).ok();
                            let _held = lock.as_ref().map(|l| l.write());
                            panic!("a job panicked while holding {ws}'s engine");
                        }
                    }));
                    if let Err(panic) = ran {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        tracing::error!(panic = %what, "the writer panicked in a job; its requests were answered with an error, nothing of it was stored, and the engines it held are folded again from the log");
                        recover_poisoned(conn.as_mut(), &engines);
                    }
                    // Timers may have moved: let the timer thread look again.
                    let _ = wake.send(());
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        let ticks = sender.downgrade();
        std::thread::Builder::new()
            .name("tenure-timers".into())
            .spawn(move || {
                loop {
                    let now = clock.now();
                    let sleep = match engines.next_timer() {
                        Some(at) if at <= now => {
                            let Some(sender) = ticks.upgrade() else {
                                return;
                            };
                            if sender.blocking_send(Job::Tick).is_err() {
                                return;
                            }
                            // Wait for the writer to have fired it before looking again.
                            match woken.recv() {
                                Ok(()) => continue,
                                Err(_) => return,
                            }
                        }
                        Some(at) => {
                            std::time::Duration::from_millis((at - now) as u64).min(MAX_TIMER_SLEEP)
                        }
                        None => MAX_TIMER_SLEEP,
                    };
                    match woken.recv_timeout(sleep) {
                        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    while woken.try_recv().is_ok() {}
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the timer thread: {e}")))?;
        Ok((Ingestor { sender }, handle))
    }

    /// Whether the writer thread still takes jobs (it stops only when every handle is
    /// dropped; a panic in a job is contained, see `Ingestor::start`).
    pub fn is_running(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends a job to the writer and waits for its answer.
    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, WriteError>>) -> Job,
    ) -> Result<T, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(job(reply))
            .await
            .map_err(|_| WriteError("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| WriteError("the writer stopped before answering".into()))?
    }

    /// The same, from a thread that is not async.
    fn ask_blocking<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, WriteError>>) -> Job,
    ) -> Result<T, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .blocking_send(job(reply))
            .map_err(|_| WriteError("the writer has stopped".into()))?;
        answer
            .blocking_recv()
            .map_err(|_| WriteError("the writer stopped before answering".into()))?
    }

    /// Saves or deletes a segment definition; answers once its backfill is committed.
    pub async fn segment(
        &self,
        workspace: WorkspaceId,
        op: SegmentOp,
    ) -> Result<SegmentDone, WriteError> {
        self.ask(|reply| {
            Job::Segment(SegmentRequest {
                workspace,
                op,
                reply,
            })
        })
        .await
    }

    /// The same, from a thread that is not async (the CLI).
    pub fn segment_blocking(
        &self,
        workspace: WorkspaceId,
        op: SegmentOp,
    ) -> Result<SegmentDone, WriteError> {
        self.ask_blocking(|reply| {
            Job::Segment(SegmentRequest {
                workspace,
                op,
                reply,
            })
        })
    }

    /// Appends messages to a workspace's log; answers once they are committed.
    pub async fn append(
        &self,
        workspace: WorkspaceId,
        messages: Vec<Message>,
    ) -> Result<Vec<Outcome>, WriteError> {
        self.ask(|reply| {
            Job::Append(WriteRequest {
                workspace,
                messages,
                reply,
            })
        })
        .await
    }

    /// The same, from a thread that is not async (the CLI's import and the demo loader).
    pub fn append_blocking(
        &self,
        workspace: WorkspaceId,
        messages: Vec<Message>,
    ) -> Result<Vec<Outcome>, WriteError> {
        self.ask_blocking(|reply| {
            Job::Append(WriteRequest {
                workspace,
                messages,
                reply,
            })
        })
    }
}

/// One request's messages, classified before the transaction.
struct Planned {
    /// For each message: `Some(customer)` if it is new and was folded, `None` if duplicate.
    customers: Vec<Option<CustomerId>>,
}

/// Engines whose lock a panic poisoned, folded again from the log (their state may hold a
/// half-applied job).
fn recover_poisoned(conn: &mut dyn Backend, engines: &Engines) {
    for (ws, lock) in engines.loaded() {
        if !lock.is_poisoned() {
            continue;
        }
        let mut engine = lock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match rebuild(conn, &ws) {
            Ok(fresh) => {
                *engine = fresh;
                drop(engine);
                lock.clear_poison();
            }
            Err(e) => {
                tracing::error!(workspace = %ws, "the engine could not be folded again after a panic (its requests keep failing until a restart): {e}")
            }
        }
    }
}

/// Commits a group of requests together; if that fails for a reason other than a race, each
/// request is tried again alone, so a request the database refuses fails alone instead of
/// failing every request (of every workspace) that shared its commit.
fn write_group(conn: &mut dyn Backend, engines: &Engines, group: Vec<WriteRequest>, now: Millis) {
    if group.len() == 1 {
        return write_requests(conn, engines, group, now);
    }
    let workspaces = group_workspaces(&group);
    match write_group_inner(conn, engines, &group, &workspaces, now) {
        Ok(outcomes) => {
            for (request, outcome) in group.into_iter().zip(outcomes) {
                let _ = request.reply.send(Ok(outcome));
            }
        }
        Err(e @ StoreError::Conflict(_)) => answer_failed(group, &e),
        Err(e) => {
            tracing::warn!(
                requests = group.len(),
                "a group commit failed ({e}); committing its requests one by one"
            );
            for request in group {
                write_requests(conn, engines, vec![request], now);
            }
        }
    }
}

fn group_workspaces(group: &[WriteRequest]) -> Vec<WorkspaceId> {
    let mut seen = HashSet::new();
    group
        .iter()
        .filter(|r| seen.insert(r.workspace.clone()))
        .map(|r| r.workspace.clone())
        .collect()
}

fn answer_failed(group: Vec<WriteRequest>, e: &StoreError) {
    match e {
        StoreError::Conflict(_) => {
            tracing::warn!("append raced another writer, nothing of this group was stored: {e}")
        }
        _ => tracing::error!("append failed, nothing of this group was stored: {e}"),
    }
    for request in group {
        let _ = request.reply.send(Err(WriteError(e.client_message())));
    }
}

fn write_requests(
    conn: &mut dyn Backend,
    engines: &Engines,
    group: Vec<WriteRequest>,
    now: Millis,
) {
    let workspaces = group_workspaces(&group);
    let started = std::time::Instant::now();
    let events: usize = group.iter().map(|r| r.messages.len()).sum();
    let result = write_group_inner(conn, engines, &group, &workspaces, now);
    tracing::debug!(
        requests = group.len(),
        events,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "group committed"
    );
    match result {
        Ok(outcomes) => {
            for (request, outcome) in group.into_iter().zip(outcomes) {
                let _ = request.reply.send(Ok(outcome));
            }
        }
        Err(e) => answer_failed(group, &e),
    }
}

fn write_group_inner(
    conn: &mut dyn Backend,
    engines: &Engines,
    group: &[WriteRequest],
    workspaces: &[WorkspaceId],
    now: Millis,
) -> Result<Vec<Vec<Outcome>>, StoreError> {
    let locks: Vec<(WorkspaceId, Arc<RwLock<LiveWorkspace>>)> = workspaces
        .iter()
        .map(|ws| Ok((ws.clone(), engines.get(ws)?)))
        .collect::<Result<_, StoreError>>()?;
    let poisoned = || StoreError::Corrupt("engine lock poisoned".into());
    let mut guards = Vec::with_capacity(locks.len());
    for (ws, lock) in &locks {
        guards.push((ws, lock.write().map_err(|_| poisoned())?));
    }

    // Which message ids are already in the log, per workspace. Only ids the engine may have
    // seen need a lookup; the others are certainly new.
    let phase = std::time::Instant::now();
    let mut known: HashMap<&WorkspaceId, HashSet<String>> = HashMap::new();
    for (ws, engine) in &guards {
        let maybe: Vec<&str> = group
            .iter()
            .filter(|r| &r.workspace == *ws)
            .flat_map(|r| r.messages.iter().map(|m| m.message_id.as_str()))
            .filter(|id| engine.may_have_seen(id))
            .collect();
        let found = if maybe.is_empty() {
            HashSet::new()
        } else {
            conn.existing_message_ids(ws, &maybe)?
        };
        known.insert(*ws, found);
    }
    tracing::debug!(
        check_ms = phase.elapsed().as_secs_f64() * 1000.0,
        "duplicate check"
    );
    let phase = std::time::Instant::now();

    // Segment timers due by now fire first, at their own instants, so that what the new
    // events change is judged against memberships that are up to date.
    // They go first in the log too: a rebuild must fold them before any merge the new
    // events cause, as the engine just did.
    let mut due: HashMap<&WorkspaceId, Vec<(CustomerId, Message)>> = HashMap::new();
    for (ws, engine) in guards.iter_mut() {
        let fired = engine.due_segment_changes(now);
        if !fired.is_empty() {
            due.insert(*ws, fired);
        }
    }
    let mut derived: HashMap<&WorkspaceId, Vec<(CustomerId, Message)>> = HashMap::new();

    // Fold the new messages, in request order.
    let mut planned = Vec::with_capacity(group.len());
    let mut touched: HashMap<&WorkspaceId, Vec<CustomerId>> = HashMap::new();
    let mut merged_away: HashMap<&WorkspaceId, Vec<(CustomerId, CustomerId)>> = HashMap::new();
    for request in group {
        let Some((_, engine)) = guards.iter_mut().find(|(ws, _)| **ws == request.workspace) else {
            return Err(StoreError::Corrupt("workspace engine missing".into()));
        };
        let seen = known.entry(&request.workspace).or_default();
        let mut customers = Vec::with_capacity(request.messages.len());
        for message in &request.messages {
            if !seen.insert(message.message_id.clone()) {
                customers.push(None);
                continue;
            }
            let applied = engine.apply(message);
            let is_new = engine
                .find(applied.customer.as_str())
                .is_some_and(|c| c.event_total == 1);
            let identity_change = matches!(
                message.kind,
                MessageType::Identify | MessageType::Alias | MessageType::Group
            ) || !applied.merged.is_empty();
            if is_new || identity_change {
                touched
                    .entry(&request.workspace)
                    .or_default()
                    .push(applied.customer.clone());
            }
            for loser in &applied.merged {
                merged_away
                    .entry(&request.workspace)
                    .or_default()
                    .push((loser.clone(), applied.customer.clone()));
            }
            customers.push(Some(applied.customer));
        }
        planned.push(Planned { customers });
    }

    // Every customer an event touched is re-evaluated against every segment at `now`.
    for (ws, engine) in guards.iter_mut() {
        let customers: Vec<CustomerId> = group
            .iter()
            .zip(&planned)
            .filter(|(r, _)| &r.workspace == *ws)
            .flat_map(|(_, p)| p.customers.iter().flatten().cloned())
            .collect();
        let changes = engine.segment_changes(&customers, now);
        if !changes.is_empty() {
            derived.entry(*ws).or_default().extend(changes);
        }
    }
    tracing::debug!(fold_ms = phase.elapsed().as_secs_f64() * 1000.0, "fold");
    let mut appends: Vec<Append<'_>> = workspaces
        .iter()
        .map(|ws| {
            let engine = guards.iter().find(|(w, _)| *w == ws).map(|(_, e)| &**e);
            Append {
                workspace: ws,
                events: Vec::new(),
                customers: customer_rows(engine, touched.get(ws), merged_away.get(ws)),
            }
        })
        .collect();
    for append in &mut appends {
        for (customer, message) in due.get(append.workspace).into_iter().flatten() {
            append.events.push(NewEvent { message, customer });
        }
    }
    for (request, plan) in group.iter().zip(&planned) {
        let Some(append) = appends
            .iter_mut()
            .find(|a| *a.workspace == request.workspace)
        else {
            continue;
        };
        for (message, customer) in request.messages.iter().zip(&plan.customers) {
            if let Some(customer) = customer {
                append.events.push(NewEvent { message, customer });
            }
        }
    }
    // Membership changes go after the events that caused them (their own order kept).
    for append in &mut appends {
        for (customer, message) in derived.get(append.workspace).into_iter().flatten() {
            append.events.push(NewEvent { message, customer });
        }
    }

    let fold_done = std::time::Instant::now();
    let committed = conn.append(&appends);
    tracing::debug!(
        append_ms = fold_done.elapsed().as_secs_f64() * 1000.0,
        "append"
    );
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            // The engines hold events that are not in the log: fold the log again.
            for (ws, engine) in guards.iter_mut() {
                match rebuild(conn, ws) {
                    Ok(fresh) => **engine = fresh,
                    Err(re) => {
                        tracing::error!(workspace = %ws, "rebuilding the engine after a failed append failed too: {re}")
                    }
                }
            }
            return Err(e);
        }
    };

    // Sequence numbers per workspace, in the order the events were appended.
    let mut seqs: HashMap<&WorkspaceId, std::vec::IntoIter<Option<i64>>> = workspaces
        .iter()
        .zip(committed)
        .map(|(ws, s)| (ws, s.into_iter()))
        .collect();
    // The fired timers' events come first: their numbers are no request's.
    for (ws, engine) in guards.iter_mut() {
        let fired = due.get(*ws).map_or(0, Vec::len);
        if let Some(rest) = seqs.get_mut(*ws)
            && let Some(last) = rest.by_ref().take(fired).flatten().max()
        {
            engine.advance_to(last);
        }
    }
    let mut raced = HashSet::new();
    let mut outcomes = Vec::with_capacity(group.len());
    for (request, plan) in group.iter().zip(planned) {
        let mut out = Vec::with_capacity(plan.customers.len());
        for customer in plan.customers {
            out.push(match customer {
                None => Outcome::Duplicate,
                Some(customer) => match seqs
                    .get_mut(&request.workspace)
                    .and_then(Iterator::next)
                    .flatten()
                {
                    Some(seq) => {
                        if let Some((_, engine)) =
                            guards.iter_mut().find(|(ws, _)| **ws == request.workspace)
                        {
                            engine.advance_to(seq);
                        }
                        Outcome::Stored { seq, customer }
                    }
                    None => {
                        // Another process stored this message id between our check and our
                        // insert: the engine folded it once too many.
                        raced.insert(request.workspace.clone());
                        Outcome::Duplicate
                    }
                },
            });
        }
        outcomes.push(out);
    }
    // What is left are the numbers of the membership events the new events caused.
    for (ws, engine) in guards.iter_mut() {
        if let Some(rest) = seqs.get_mut(ws)
            && let Some(last) = rest.flatten().max()
        {
            engine.advance_to(last);
        }
    }
    for (ws, engine) in guards.iter_mut() {
        if raced.contains(*ws) {
            **engine = rebuild(conn, ws)?;
        }
    }
    Ok(outcomes)
}

/// Appends membership events the engine has already applied; on failure folds the log
/// again, so that the engine never holds an event the database does not.
fn append_derived(
    conn: &mut dyn Backend,
    ws: &WorkspaceId,
    engine: &mut LiveWorkspace,
    derived: &[(CustomerId, Message)],
) -> Result<(), StoreError> {
    if derived.is_empty() {
        return Ok(());
    }
    let append = Append {
        workspace: ws,
        events: derived
            .iter()
            .map(|(customer, message)| NewEvent { message, customer })
            .collect(),
        customers: Vec::new(),
    };
    match conn.append(std::slice::from_ref(&append)) {
        Ok(seqs) => {
            if let Some(last) = seqs.into_iter().flatten().flatten().max() {
                engine.advance_to(last);
            }
            Ok(())
        }
        Err(e) => {
            match rebuild(conn, ws) {
                Ok(fresh) => *engine = fresh,
                Err(re) => {
                    tracing::error!(workspace = %ws, "rebuilding the engine after a failed append failed too: {re}")
                }
            }
            Err(e)
        }
    }
}

/// How many customers' membership events of a backfill are built and stored at a time:
/// a backfill over a million customers never holds all its events at once.
const BACKFILL_CHUNK: usize = 20_000;

/// Appends a backfill's events (already folded into the engine), a chunk per transaction.
/// If one fails, the engine is folded again from the log, which then holds the chunks
/// before it; the next tick's reconcile appends what the failure left out.
fn append_backfill(
    conn: &mut dyn Backend,
    ws: &WorkspaceId,
    engine: &mut LiveWorkspace,
    backfill: &Backfill,
) -> Result<(), StoreError> {
    for chunk in backfill.chunks(BACKFILL_CHUNK) {
        let messages = chunk.messages(engine);
        append_derived(conn, ws, engine, &messages)?;
    }
    Ok(())
}

/// Fires every due segment timer of every loaded workspace.
fn tick(conn: &mut dyn Backend, engines: &Engines, now: Millis) {
    for (ws, lock) in engines.loaded() {
        let Ok(mut engine) = lock.write() else {
            continue;
        };
        let due = engine.due_segment_changes(now);
        if let Err(e) = append_derived(conn, &ws, &mut engine, &due) {
            tracing::error!(workspace = %ws, "segment changes could not be stored (they are recomputed from the log): {e}");
        }
    }
}

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

fn segment_job(
    conn: &mut dyn Backend,
    engines: &Engines,
    request: &SegmentRequest,
    now: Millis,
) -> Result<SegmentDone, StoreError> {
    let ws = &request.workspace;
    let lock = engines.get(ws)?;
    match &request.op {
        SegmentOp::PutHealthModel { .. } | SegmentOp::DeleteHealthModel { .. } => {
            health_model_job(conn, &lock, ws, &request.op, now)
        }
        SegmentOp::SetRiskModel { model } => {
            let model = model.clone();
            reconcile_after(conn, &lock, ws, now, move |engine| {
                engine.set_risk_model(Some(model))
            })
        }
        SegmentOp::EraseCustomer { customer } => {
            let mut engine = lock
                .write()
                .map_err(|_| StoreError::Corrupt("engine lock poisoned".into()))?;
            let Some(state) = engine.find(customer) else {
                return Ok(SegmentDone::NotFound);
            };
            let id = state.id.clone();
            let mut ids = vec![id.clone()];
            ids.extend(state.merged.iter().cloned());
            let events = conn.erase_customers(ws, &ids)?;
            // Nothing of them stays in memory: the engine is the log folded again.
            *engine = rebuild(conn, ws)?;
            Ok(SegmentDone::Erased {
                customer: id,
                events,
            })
        }
        SegmentOp::SetRenewals { renewals } => {
            conn.set_workspace_renewals(ws, renewals.as_str())?;
            let renewals = *renewals;
            reconcile_after(conn, &lock, ws, now, move |engine| {
                engine.set_renewals(renewals)
            })
        }
        SegmentOp::SetDailyValues { values } => {
            let values = values.clone();
            reconcile_after(conn, &lock, ws, now, move |engine| {
                engine.set_daily_values(values)
            })
        }
        SegmentOp::Delete { id } => {
            if !conn.delete_segment(ws, *id, now)? {
                return Ok(SegmentDone::NotFound);
            }
            let mut engine = lock
                .write()
                .map_err(|_| StoreError::Corrupt("engine lock poisoned".into()))?;
            engine.remove_segment(SegmentId(*id));
            Ok(SegmentDone::Deleted)
        }
        SegmentOp::Save {
            id,
            name,
            definition,
            source,
        } => {
            let id = match id {
                Some(id) => {
                    if !conn.update_segment(ws, *id, name, source, now)? {
                        return Ok(SegmentDone::NotFound);
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
            Ok(SegmentDone::Saved {
                id,
                entered: backfill.entered(),
                exited: backfill.exited(),
            })
        }
    }
}

/// A health model stored or deleted: the new set is checked before anything is written, set
/// in the engine, and every segment reconciled with it (the changes appended).
fn health_model_job(
    conn: &mut dyn Backend,
    lock: &RwLock<LiveWorkspace>,
    ws: &WorkspaceId,
    op: &SegmentOp,
    now: Millis,
) -> Result<SegmentDone, StoreError> {
    let mut models = readable_health_models(conn, ws)?;
    let models = match op {
        // Checked before it is written: it must not make a second default.
        SegmentOp::PutHealthModel { model, source } => {
            models.retain(|m| m.model.name != model.model.name);
            models.push((**model).clone());
            let models = match HealthModels::new(models) {
                Ok(models) => models,
                Err(e) => return Ok(SegmentDone::Refused(e)),
            };
            conn.put_health_model(ws, &model.model.name, source, now)?;
            models
        }
        // Removing one never makes the rest inconsistent, and even one that no longer
        // parses can be deleted.
        SegmentOp::DeleteHealthModel { name } => {
            if !conn.delete_health_model(ws, name)? {
                return Ok(SegmentDone::NotFound);
            }
            models.retain(|m| m.model.name != *name);
            HealthModels::new(models).unwrap_or_default()
        }
        _ => return Ok(SegmentDone::NotFound),
    };
    reconcile_after(conn, lock, ws, now, move |engine| {
        engine.set_health_models(models)
    })
}

/// Applies a change that can move every customer's memberships (new health or risk
/// models): timers due under the old state first, then everyone reconciled under the new
/// one, the changes appended.
fn reconcile_after(
    conn: &mut dyn Backend,
    lock: &RwLock<LiveWorkspace>,
    ws: &WorkspaceId,
    now: Millis,
    change: impl FnOnce(&mut LiveWorkspace),
) -> Result<SegmentDone, StoreError> {
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
    Ok(SegmentDone::Reconciled { entered, exited })
}

fn customer_rows(
    engine: Option<&LiveWorkspace>,
    touched: Option<&Vec<CustomerId>>,
    merged: Option<&Vec<(CustomerId, CustomerId)>>,
) -> Vec<CustomerRow> {
    let Some(engine) = engine else {
        return Vec::new();
    };
    let mut rows: Vec<CustomerRow> = Vec::new();
    let mut done = HashSet::new();
    for id in touched.into_iter().flatten() {
        let Some(state) = engine.find(id.as_str()) else {
            continue;
        };
        if !done.insert(state.id.clone()) {
            continue;
        }
        rows.push(CustomerRow {
            id: state.id.clone(),
            user_id: state.user_id.clone(),
            identities: serde_json::to_string(&state.identities).unwrap_or_else(|_| "[]".into()),
            traits: serde_json::to_string(&state.traits).unwrap_or_else(|_| "{}".into()),
            first_seen: state.first_seen,
            merged_into: None,
        });
    }
    for (loser, winner) in merged.into_iter().flatten() {
        if done.insert(loser.clone()) {
            rows.push(CustomerRow {
                id: loser.clone(),
                user_id: None,
                identities: "[]".into(),
                traits: "{}".into(),
                first_seen: 0,
                merged_into: Some(winner.clone()),
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tenure_core::Envelope;

    fn message(id: &str) -> Message {
        Message::parse(
            json!({"type": "track", "userId": "u1", "event": "Logged In", "messageId": id}),
            None,
            Envelope {
                received_at: 1_700_000_000_000,
                batch_sent_at: None,
            },
        )
        .unwrap()
    }

    /// Issue 16, item 7: a panic in the writer stopped ingestion for good.
    #[test]
    fn a_panic_in_a_job_is_contained_and_the_engine_is_folded_again() {
        let dir = std::env::temp_dir().join(format!("tenure_writer_panic_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(tenure_store::DatabaseUrl::Sqlite(dir.join("t.db"))).unwrap();
        let ws = crate::admin::create_workspace(&store, "w", 0).unwrap().id;
        let engines = Engines::new(store.clone());
        let (ingestor, writer) =
            Ingestor::start(&store, engines.clone(), Arc::new(crate::SystemClock)).unwrap();
        ingestor
            .append_blocking(ws.clone(), vec![message("m1")])
            .unwrap();

        let (reply, answer) = oneshot::channel::<Result<(), WriteError>>();
        drop(reply);
        ingestor
            .sender
            .blocking_send(Job::Panic(ws.clone()))
            .unwrap();
        assert!(answer.blocking_recv().is_err());

        let outcome = ingestor.append_blocking(ws.clone(), vec![message("m2")]);
        assert!(
            matches!(outcome.as_deref(), Ok([Outcome::Stored { .. }])),
            "{outcome:?}"
        );
        assert!(ingestor.is_running());
        let engine = engines.get(&ws).unwrap();
        let engine = engine.read().expect("the poisoned lock was recovered");
        assert_eq!(engine.find("u1").map(|c| c.event_total), Some(2));
        drop(engine);
        drop(ingestor);
        writer.join().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
