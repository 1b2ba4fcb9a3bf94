//! One workspace, live: the fold of its log ([`Engine`]) with the segments kept up to date
//! over it and the models they read (health, churn risk, the day's values).
//!
//! ```text
//!   message ──► LiveWorkspace::apply ──► Engine::apply (identity, CustomerState)
//!                                   └──► SegmentBook: merges moved, filtered leaves counted
//! ```
//!
//! The engine below knows nothing of segments or scores; this is where the two meet, so
//! the fold is folded only through here (the engine is reachable read-only, by `Deref`, for
//! everything that reads customers). Segment operations (define, preview, changes, timers)
//! are in `segments/book.rs`, the profile in `profile.rs`.

use std::ops::Deref;
use std::sync::Arc;

use crate::customer::CustomerState;
use crate::engine::{Applied, Engine};
use crate::health::HealthModels;
use crate::ids::{CustomerId, SegmentId, WorkspaceId};
use crate::message::Message;
use crate::risk::ChurnRisk;
use crate::segments::{Backfill, DailyValues, Definition, SegmentBook, SegmentInfo};
use crate::subscription::Renewals;
use crate::time::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveWorkspace {
    pub(crate) engine: Engine,
    /// Live segment definitions, their counters and timers, and the models conditions read.
    pub(crate) segments: SegmentBook,
}

impl Deref for LiveWorkspace {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl LiveWorkspace {
    pub fn new(workspace: WorkspaceId) -> Self {
        Self {
            engine: Engine::new(workspace),
            segments: SegmentBook::default(),
        }
    }

    /// The fold of the log, read only.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Folds one event from the log (in log order): the engine resolves and folds it, then
    /// what segments keep by customer follows the merges it made, and the event is counted
    /// by the filtered leaves that want it.
    pub fn apply(&mut self, message: &Message) -> Applied {
        self.segments.fold(&mut self.engine, message)
    }

    /// Records the sequence number of the last event applied.
    pub fn advance_to(&mut self, seq: i64) {
        self.engine.advance_to(seq);
    }

    /// Reads every subscription under a new workspace renewal policy. Statuses and MRR may
    /// change for everyone, so segments are reconciled at the next `due_segment_changes`.
    pub fn set_renewals(&mut self, renewals: Renewals) {
        if self.engine.set_renewals(renewals) {
            self.segments.reconcile = true;
        }
    }

    /// The workspace's health models: what profiles, the health overview and the `health`
    /// and `grade` conditions read.
    pub fn health_models(&self) -> &HealthModels {
        &self.segments.health
    }

    /// Replaces the health models. Every customer's health may change, so segments reading
    /// it are reconciled at the next `due_segment_changes` (as after a rebuild).
    pub fn set_health_models(&mut self, models: HealthModels) {
        self.segments.health = models;
        self.segments.reconcile = true;
    }

    /// The churn-risk model segments read, if any.
    pub fn risk_model(&self) -> Option<&Arc<dyn ChurnRisk>> {
        self.segments.risk.as_ref().map(|r| &r.0)
    }

    /// Replaces the churn-risk model: every customer's risk may change, so segments are
    /// reconciled at the next `due_segment_changes`.
    pub fn set_risk_model(&mut self, model: Option<Arc<dyn ChurnRisk>>) {
        self.segments.risk = model.map(crate::segments::SharedRisk);
        self.segments.reconcile = true;
    }

    /// The day's table of values segments read, if one was set.
    pub fn daily_values(&self) -> Option<&Arc<DailyValues>> {
        self.segments.daily.as_ref().map(|d| &d.0)
    }

    /// Replaces the day's table: every customer's values may change, so segments are
    /// reconciled at the next `due_segment_changes`.
    pub fn set_daily_values(&mut self, values: Arc<DailyValues>) {
        self.segments.daily = Some(crate::segments::SharedDaily(values));
        self.segments.reconcile = true;
    }

    // The segments (segments/book.rs has what each does).

    /// The live segments, in id order, with their member counts.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments.segments(&self.engine)
    }

    pub fn segment_name(&self, id: SegmentId) -> Option<&str> {
        self.segments.segment_name(id)
    }

    pub fn segment_members(
        &self,
        id: SegmentId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Vec<(&CustomerState, Millis)> {
        self.segments
            .segment_members(&self.engine, id, after, limit)
    }

    pub fn next_segment_timer(&self) -> Option<Millis> {
        self.segments.next_segment_timer()
    }

    pub fn segments_read_daily_values(&self) -> bool {
        self.segments.segments_read_daily_values()
    }

    pub fn load_segment(
        &mut self,
        id: SegmentId,
        name: &str,
        version: u32,
        definition: Definition,
    ) {
        self.segments.load_segment(id, name, version, definition);
    }

    pub fn define_segment<'m>(
        &mut self,
        id: SegmentId,
        name: &str,
        definition: Definition,
        history: impl IntoIterator<Item = &'m Message>,
        now: Millis,
    ) -> Backfill {
        self.segments
            .define_segment(&mut self.engine, id, name, definition, history, now)
    }

    pub fn remove_segment(&mut self, id: SegmentId) -> bool {
        self.segments.remove_segment(&mut self.engine, id)
    }

    pub fn preview_segment<'m>(
        &self,
        definition: &Definition,
        history: impl IntoIterator<Item = &'m Message>,
        now: Millis,
        sample: usize,
    ) -> (usize, Vec<CustomerId>) {
        self.segments
            .preview_segment(&self.engine, definition, history, now, sample)
    }

    pub fn evaluate_segment(
        &self,
        id: SegmentId,
        customer: &CustomerState,
        now: Millis,
    ) -> Option<bool> {
        self.segments
            .evaluate_segment(&self.engine, id, customer, now)
    }

    pub fn segment_changes(
        &mut self,
        customers: &[CustomerId],
        now: Millis,
    ) -> Vec<(CustomerId, Message)> {
        self.segments
            .segment_changes(&mut self.engine, customers, now)
    }

    pub fn due_segment_changes(&mut self, now: Millis) -> Vec<(CustomerId, Message)> {
        self.segments.due_segment_changes(&mut self.engine, now)
    }
}
