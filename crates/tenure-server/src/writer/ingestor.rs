//! The writer thread and its handle: requests queued, taken a group at a time, and the
//! timer thread that wakes it when a segment timer is due.

use std::sync::Arc;

use tenure_core::time::Clock;
use tenure_core::{Message, WorkspaceId};
use tenure_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::*;

/// The handle through which everything appends to the log.
#[derive(Clone)]
pub struct Ingestor {
    pub(super) sender: mpsc::Sender<Job>,
}

/// Longest the timer thread sleeps without looking at the timers again (only matters if
/// the clock jumps; a new earlier timer wakes it at once).
pub(super) const MAX_TIMER_SLEEP: std::time::Duration = std::time::Duration::from_secs(60);

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
        op: WorkspaceOp,
    ) -> Result<OpDone, WriteError> {
        self.ask(|reply| {
            Job::Segment(OpRequest {
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
        op: WorkspaceOp,
    ) -> Result<OpDone, WriteError> {
        self.ask_blocking(|reply| {
            Job::Segment(OpRequest {
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
