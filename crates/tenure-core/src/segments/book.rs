//! The live segments of one workspace: definitions, the occurrences their filtered leaves
//! count, and one timer per customer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::customer::CustomerState;
use crate::engine::Engine;
use crate::health::HealthModels;
use crate::ids::{CustomerId, Identity};
use crate::message::{Message, MessageType};
use crate::seen::OWN_PREFIX;
use crate::segments::definition::{Definition, SEGMENT_EVENTS, passes};
use crate::segments::eval::{Subject, holds, next_change};
use crate::segments::{DailyValues, SegmentId};
use crate::time::{Millis, day_of, format_instant};

/// A map keyed by customer id, read once per customer by a backfill: foldhash (seeded per
/// map) instead of SipHash. Customer ids are Tenure's own, derived by hashing.
type CustomerMap<V> = foldhash::HashMap<CustomerId, V>;

/// A defined segment as the engine runs it.
#[derive(Debug, Clone, PartialEq)]
struct Live {
    name: String,
    /// Bumped by every edit; part of the ids of the events it causes.
    version: u32,
    definition: Definition,
    /// Per slot: each customer's matching occurrences per UTC day, sorted by day.
    slots: Vec<CustomerMap<Vec<(i32, u32)>>>,
}

impl Live {
    fn new(name: &str, version: u32, definition: Definition) -> Self {
        Self {
            name: name.to_owned(),
            version,
            slots: vec![CustomerMap::default(); definition.slots.len()],
            definition,
        }
    }

    fn subject_slots<'a>(&'a self, customer: &CustomerId) -> Vec<&'a [(i32, u32)]> {
        self.slots
            .iter()
            .map(|s| s.get(customer).map_or(&[][..], Vec::as_slice))
            .collect()
    }

    /// Counts one occurrence if the message passes a slot's filters.
    fn observe(&mut self, customer: &CustomerId, message: &Message) {
        let Some(event) = message.name.as_deref() else {
            return;
        };
        for (i, (slot_event, filters)) in self.definition.slots.iter().enumerate() {
            if slot_event != event {
                continue;
            }
            let properties = message.properties();
            let pass = filters
                .iter()
                .all(|(key, test)| passes(test, properties.and_then(|p| p.get(key))));
            if pass {
                let days = self.slots[i].entry(customer.clone()).or_default();
                add_day(days, day_of(message.timestamp), 1);
            }
        }
    }
}

fn add_day(days: &mut Vec<(i32, u32)>, day: i32, count: u32) {
    match days.binary_search_by_key(&day, |(d, _)| *d) {
        Ok(i) => days[i].1 += count,
        Err(i) => days.insert(i, (day, count)),
    }
}

/// A trained risk model, shared with the shell; two are the same if they are the same
/// allocation (a model is never changed, only replaced).
#[derive(Clone)]
struct SharedRisk(std::sync::Arc<crate::risk::RiskModel>);

impl PartialEq for SharedRisk {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for SharedRisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A day's table of values, shared with the shell; compared by allocation like a model.
#[derive(Clone)]
struct SharedDaily(std::sync::Arc<DailyValues>);

impl PartialEq for SharedDaily {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for SharedDaily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DailyValues(day {}, {} customers)",
            self.0.day,
            self.0.customers.len()
        )
    }
}

/// What the API lists about a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    pub id: SegmentId,
    pub name: String,
    pub version: u32,
    pub members: usize,
}

/// The segments of a workspace and their timers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SegmentBook {
    live: BTreeMap<SegmentId, Live>,
    /// `(instant, customer)`: re-evaluate the customer's segments at the instant.
    timers: BTreeSet<(Millis, CustomerId)>,
    timer_of: CustomerMap<Millis>,
    /// The health model `health` and `grade` conditions read (the shipped default unless
    /// set).
    health: HealthModels,
    /// The churn-risk model `risk` conditions read (none until one is trained).
    risk: Option<SharedRisk>,
    /// The day's table `p_alive`, `predicted_clv` and `revenue_percentile` read (none until
    /// the shell computes one).
    daily: Option<SharedDaily>,
    /// Set by a rebuild: every customer is evaluated once at the next clock tick.
    reconcile: bool,
}

impl SegmentBook {
    fn set_timer(&mut self, customer: &CustomerId, at: Option<Millis>) {
        if let Some(old) = self.timer_of.remove(customer) {
            self.timers.remove(&(old, customer.clone()));
        }
        if let Some(at) = at {
            self.timers.insert((at, customer.clone()));
            self.timer_of.insert(customer.clone(), at);
        }
    }

    /// Sets many customers' timers at once (a backfill). When they are thousands and an
    /// eighth or more of the timers, the set is rebuilt from the per-customer map in one
    /// sorted pass: removing and inserting each entry of a set ordered by (instant, id
    /// string) cost about 1 µs per customer, most of a backfill over a million customers
    /// whose definition wakes everyone (health, tenure). Fewer go one at a time, which is
    /// then cheaper than re-sorting every timer.
    fn set_timers(&mut self, updates: Vec<(CustomerId, Millis)>) {
        if updates.len() < 4_096 || updates.len() < self.timer_of.len() / 8 {
            for (customer, at) in updates {
                self.set_timer(&customer, Some(at));
            }
            return;
        }
        for (customer, at) in updates {
            self.timer_of.insert(customer, at);
        }
        let mut all: Vec<(Millis, CustomerId)> = self
            .timer_of
            .iter()
            .map(|(customer, at)| (*at, customer.clone()))
            .collect();
        all.par_sort_unstable();
        self.timers = all.into_iter().collect();
    }

    fn health(&self) -> &HealthModels {
        &self.health
    }

    fn risk(&self) -> Option<&crate::risk::RiskModel> {
        self.risk.as_ref().map(|r| r.0.as_ref())
    }

    fn daily(&self) -> Option<&DailyValues> {
        self.daily.as_ref().map(|d| d.0.as_ref())
    }
}

/// The result of evaluating every segment for one customer.
struct Verdict {
    /// `(segment, now a member)` where that differs from the customer's state.
    changes: Vec<(SegmentId, bool)>,
    next: Option<Millis>,
}

impl Engine {
    /// The live segments, in id order, with their member counts.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let mut members: HashMap<SegmentId, usize> = HashMap::new();
        for c in self.customers() {
            for (s, _) in &c.segments {
                *members.entry(*s).or_default() += 1;
            }
        }
        self.segment_book
            .live
            .iter()
            .map(|(id, l)| SegmentInfo {
                id: *id,
                name: l.name.clone(),
                version: l.version,
                members: members.get(id).copied().unwrap_or(0),
            })
            .collect()
    }

    /// The name of a live segment.
    pub fn segment_name(&self, id: SegmentId) -> Option<&str> {
        self.segment_book.live.get(&id).map(|l| l.name.as_str())
    }

    /// One page of a segment's members, in customer id order, after the cursor.
    pub fn segment_members(
        &self,
        id: SegmentId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Vec<(&CustomerState, Millis)> {
        self.customers_after(after)
            .filter_map(|c| {
                c.segments
                    .binary_search_by_key(&id, |(s, _)| *s)
                    .ok()
                    .map(|i| (c, c.segments[i].1))
            })
            .take(limit)
            .collect()
    }

    /// The instant of the earliest timer, if any (the shell sleeps until then).
    pub fn next_segment_timer(&self) -> Option<Millis> {
        if self.segment_book.reconcile {
            return Some(Millis::MIN);
        }
        self.segment_book.timers.first().map(|(at, _)| *at)
    }

    /// The workspace's health models: what profiles, the health overview and the `health`
    /// and `grade` conditions read.
    pub fn health_models(&self) -> &HealthModels {
        &self.segment_book.health
    }

    /// The churn-risk model segments read, if any.
    pub fn risk_model(&self) -> Option<&std::sync::Arc<crate::risk::RiskModel>> {
        self.segment_book.risk.as_ref().map(|r| &r.0)
    }

    /// Whether a live segment reads the day's table (`p_alive`, `predicted_clv`,
    /// `revenue_percentile`): the shell keeps today's table set while one does.
    pub fn segments_read_daily_values(&self) -> bool {
        self.segment_book
            .live
            .values()
            .any(|l| l.definition.reads_daily_values())
    }

    /// The day's table of values segments read, if one was set.
    pub fn daily_values(&self) -> Option<&std::sync::Arc<DailyValues>> {
        self.segment_book.daily.as_ref().map(|d| &d.0)
    }

    /// Replaces the day's table: every customer's values may change, so segments are
    /// reconciled at the next `due_segment_changes`.
    pub fn set_daily_values(&mut self, values: std::sync::Arc<DailyValues>) {
        self.segment_book.daily = Some(SharedDaily(values));
        self.segment_book.reconcile = true;
    }

    /// Replaces the churn-risk model: every customer's risk may change, so segments are
    /// reconciled at the next `due_segment_changes`.
    pub fn set_risk_model(&mut self, model: Option<std::sync::Arc<crate::risk::RiskModel>>) {
        self.segment_book.risk = model.map(SharedRisk);
        self.segment_book.reconcile = true;
    }

    /// Replaces the health models. Every customer's health may change, so segments reading
    /// it are reconciled at the next `due_segment_changes` (as after a rebuild).
    pub fn set_health_models(&mut self, models: HealthModels) {
        self.segment_book.health = models;
        self.segment_book.reconcile = true;
    }

    /// Installs a definition without evaluating anyone (a rebuild loads the definitions
    /// before folding the log, so that filtered leaves see every event; the first tick
    /// then reconciles every customer).
    pub fn load_segment(
        &mut self,
        id: SegmentId,
        name: &str,
        version: u32,
        definition: Definition,
    ) {
        self.segment_book
            .live
            .insert(id, Live::new(name, version, definition));
        self.segment_book.reconcile = true;
    }

    /// Defines (or redefines) a segment and backfills it: `history` is every logged event
    /// the definition's filtered leaves need (its [`Definition::slots`] events; none when
    /// it has no filters). Every customer's membership is brought in line with the
    /// definition at `now`, already folded into the states; the returned [`Backfill`] holds
    /// the `Segment Entered` / `Segment Exited` events that say so, which the caller
    /// appends to the log.
    pub fn define_segment<'m>(
        &mut self,
        id: SegmentId,
        name: &str,
        definition: Definition,
        history: impl IntoIterator<Item = &'m Message>,
        now: Millis,
    ) -> Backfill {
        let version = self.segment_book.live.get(&id).map_or(1, |l| l.version + 1);
        let live = self.live_with_history(name, version, definition, history);
        self.segment_book.live.insert(id, live);
        let stamp = format_instant(now);
        // In parallel, each customer on its own (read only): whether it changes (then under
        // which identity the event is sent, and its alert, built from the state before),
        // and whether its timer must move earlier. Most customers need neither, and cost no
        // allocation. The membership events themselves are built only when the caller
        // stores them.
        let (customers, names, book) = self.customers_for_backfill();
        let live = &book.live[&id];
        type Action = (usize, Option<Change>, Option<(CustomerId, Millis)>);
        let actions: Vec<Action> = customers
            .par_iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c: &CustomerState = c;
                let slots = live.subject_slots(&c.id);
                let subject = Subject {
                    state: c,
                    names,
                    health: book.health(),
                    risk: book.risk(),
                    daily: book.daily(),
                    slots: &slots,
                };
                let member = holds(&live.definition.condition, &subject, now);
                let was = c.segments.binary_search_by_key(&id, |(s, _)| *s).is_ok();
                // A stale, earlier timer costs one needless evaluation; a missing one would
                // be wrong: keep the earlier of the two.
                let next = next_change(&live.definition.condition, &subject, now)
                    .filter(|n| *n > now)
                    .filter(|n| book.timer_of.get(&c.id).is_none_or(|t| n < t))
                    .map(|n| (c.id.clone(), n));
                let change = (was != member)
                    .then(|| sender(c))
                    .flatten()
                    .map(|identity| {
                        let alert = alert_message(
                            c,
                            (id, live),
                            (book, names),
                            (&identity, member),
                            (now, &stamp),
                            now,
                            "definition",
                        );
                        Change {
                            customer: c.id.clone(),
                            identity,
                            entered: member,
                            alert: alert.map(Box::new),
                        }
                    });
                (change.is_some() || next.is_some()).then_some((i, change, next))
            })
            .collect();
        // Names are interned in the order the log shows them (a rebuild numbers them so):
        // each change's membership, then its alert.
        let mut folds = vec![None; customers.len()];
        let mut changes =
            Vec::with_capacity(actions.iter().filter(|(_, c, _)| c.is_some()).count());
        let mut timers = Vec::new();
        let mut name_ids = [None; 2];
        for (i, change, next) in actions {
            if let Some(change) = change {
                let direction = usize::from(!change.entered);
                let name = match name_ids[direction] {
                    Some(name) => name,
                    None => *name_ids[direction].insert(names.intern(SEGMENT_EVENTS[direction])),
                };
                folds[i] = Some((name, change.entered));
                if let Some(event) = change.alert.as_ref().and_then(|a| a.name.as_deref()) {
                    names.intern(event);
                }
                changes.push(change);
            }
            timers.extend(next);
        }
        // In parallel again, the memberships folded into the states; then the alerts,
        // through `apply`, in customer order.
        customers
            .into_par_iter()
            .zip(folds.into_par_iter())
            .for_each(|(c, fold)| {
                if let Some((name, entered)) = fold {
                    c.apply_membership(now, name, id, entered);
                }
            });
        for change in &changes {
            if let Some(alert) = &change.alert {
                self.apply(alert);
            }
        }
        self.count_own_events(changes.len());
        self.segment_book.set_timers(timers);
        Backfill {
            segment: id,
            version,
            name: name.to_owned(),
            at: (now, stamp),
            changes,
        }
    }

    /// Forgets a segment. Memberships are dropped from the state without events (the
    /// segment no longer exists for anything to react to). `false` if it was not defined.
    pub fn remove_segment(&mut self, id: SegmentId) -> bool {
        if self.segment_book.live.remove(&id).is_none() {
            return false;
        }
        for c in self.customers_mut() {
            c.segments.retain(|(s, _)| *s != id);
        }
        true
    }

    /// Counts and a sample of who a definition would hold at `now`, without saving it.
    pub fn preview_segment<'m>(
        &self,
        definition: &Definition,
        history: impl IntoIterator<Item = &'m Message>,
        now: Millis,
        sample: usize,
    ) -> (usize, Vec<CustomerId>) {
        let live = self.live_with_history("", 0, definition.clone(), history);
        let health = self.segment_book.health();
        let members: Vec<CustomerId> = self
            .customers_vec()
            .par_iter()
            .filter(|c| {
                let slots = live.subject_slots(&c.id);
                let subject = Subject {
                    state: c,
                    names: self.names(),
                    health,
                    risk: self.segment_book.risk(),
                    daily: self.segment_book.daily(),
                    slots: &slots,
                };
                holds(&live.definition.condition, &subject, now)
            })
            .map(|c| c.id.clone())
            .collect();
        let count = members.len();
        (count, members.into_iter().take(sample).collect())
    }

    /// Whether the customer is in the segment by its definition at `now`, evaluated from
    /// the state (what the property test compares the incremental membership with).
    pub fn evaluate_segment(
        &self,
        id: SegmentId,
        customer: &CustomerState,
        now: Millis,
    ) -> Option<bool> {
        let live = self.segment_book.live.get(&id)?;
        let health = self.segment_book.health();
        let slots = live.subject_slots(&customer.id);
        let subject = Subject {
            state: customer,
            names: self.names(),
            health,
            risk: self.segment_book.risk(),
            daily: self.segment_book.daily(),
            slots: &slots,
        };
        Some(holds(&live.definition.condition, &subject, now))
    }

    /// Counts an event for the filtered leaves that want it (called by `apply`).
    pub(crate) fn observe_for_segments(&mut self, customer: &CustomerId, message: &Message) {
        if message.kind != MessageType::Track {
            return;
        }
        for live in self.segment_book.live.values_mut() {
            if !live.slots.is_empty() {
                live.observe(customer, message);
            }
        }
    }

    /// Moves what segments counted for `loser` to `winner` (called by a merge).
    pub(crate) fn merge_for_segments(&mut self, loser: &CustomerId, winner: &CustomerId) {
        for live in self.segment_book.live.values_mut() {
            for slot in &mut live.slots {
                if let Some(days) = slot.remove(loser) {
                    let target = slot.entry(winner.clone()).or_default();
                    for (day, count) in days {
                        add_day(target, day, count);
                    }
                }
            }
        }
        self.segment_book.set_timer(loser, None);
    }

    /// A definition ready to run, its filtered leaves counted from `history` (logged
    /// events, resolved to today's customers).
    fn live_with_history<'m>(
        &self,
        name: &str,
        version: u32,
        definition: Definition,
        history: impl IntoIterator<Item = &'m Message>,
    ) -> Live {
        let mut live = Live::new(name, version, definition);
        if !live.slots.is_empty() {
            for message in history {
                if message.kind == MessageType::Track
                    && let Some(customer) = self.owner_of(message)
                {
                    live.observe(&customer, message);
                }
            }
        }
        live
    }

    /// Re-evaluates every segment for these customers (those an event just touched) at
    /// `now`, resets their timers, and returns the membership messages to append.
    pub fn segment_changes(
        &mut self,
        customers: &[CustomerId],
        now: Millis,
    ) -> Vec<(CustomerId, Message)> {
        if self.segment_book.live.is_empty() {
            return Vec::new();
        }
        let mut messages = Vec::new();
        let mut done = std::collections::HashSet::new();
        for id in customers {
            let Some(state) = self.find(id.as_str()) else {
                continue;
            };
            let id = state.id.clone();
            if !done.insert(id.clone()) {
                continue;
            }
            self.settle(&id, now, now, "event", &mut messages);
        }
        messages
    }

    /// Fires every timer due by `now`, each at its own instant and in time order (a timer
    /// that fires may set the next one, due by `now` too). After a rebuild, first
    /// evaluates every customer at `now`.
    pub fn due_segment_changes(&mut self, now: Millis) -> Vec<(CustomerId, Message)> {
        let mut messages = Vec::new();
        if self.segment_book.reconcile {
            self.segment_book.reconcile = false;
            self.segment_book.timers.clear();
            self.segment_book.timer_of.clear();
            let live: Vec<SegmentId> = self.segment_book.live.keys().copied().collect();
            // Memberships of segments that no longer exist are dropped.
            for c in self.customers_mut() {
                c.segments.retain(|(s, _)| live.binary_search(s).is_ok());
            }
            if !live.is_empty() {
                // Every customer at once: the verdicts in parallel (read only), then their
                // messages folded and the timers set, in customer order.
                let verdicts: Vec<(CustomerId, Verdict)> = self
                    .customers_vec()
                    .par_iter()
                    .map(|c| (c.id.clone(), self.verdict_of(c, now)))
                    .collect();
                for (id, verdict) in verdicts {
                    self.commit(&id, verdict, now, now, "start", &mut messages);
                }
            }
            return messages;
        }
        while let Some((at, customer)) = self.segment_book.timers.first().cloned() {
            if at > now {
                break;
            }
            self.segment_book.set_timer(&customer, None);
            if self
                .find(customer.as_str())
                .is_some_and(|c| c.id == customer)
            {
                self.settle(&customer, at, now, "timer", &mut messages);
            }
        }
        messages
    }

    /// Evaluates every segment for one customer at `at`; appends the messages for what
    /// changed (applied), and sets the customer's next timer.
    fn settle(
        &mut self,
        customer: &CustomerId,
        at: Millis,
        now: Millis,
        cause: &str,
        messages: &mut Vec<(CustomerId, Message)>,
    ) {
        let Some(verdict) = self.find(customer.as_str()).map(|c| self.verdict_of(c, at)) else {
            return;
        };
        self.commit(customer, verdict, at, now, cause, messages);
    }

    /// Appends (and applies) the messages of a verdict reached at `at`, and sets the
    /// customer's next timer.
    fn commit(
        &mut self,
        customer: &CustomerId,
        verdict: Verdict,
        at: Millis,
        now: Millis,
        cause: &str,
        messages: &mut Vec<(CustomerId, Message)>,
    ) {
        let stamp = format_instant(at);
        for (segment, member) in verdict.changes {
            let (Some(state), Some(live)) = (
                self.customer(customer),
                self.segment_book.live.get(&segment),
            ) else {
                continue;
            };
            let Some(identity) = sender(state) else {
                continue;
            };
            let membership = membership_message(
                (segment, live.version, &live.name),
                (customer, &identity, member),
                (at, &stamp),
                now,
                cause,
            );
            let alert = alert_message(
                state,
                (segment, live),
                (&self.segment_book, self.names()),
                (&identity, member),
                (at, &stamp),
                now,
                cause,
            );
            self.apply_membership(customer, &membership, segment, member);
            messages.push((customer.clone(), membership));
            if let Some(alert) = alert {
                self.apply(&alert);
                messages.push((customer.clone(), alert));
            }
        }
        self.segment_book.set_timer(customer, verdict.next);
    }

    fn verdict_of(&self, state: &CustomerState, at: Millis) -> Verdict {
        let health = self.segment_book.health();
        let mut changes = Vec::new();
        let mut next: Option<Millis> = None;
        for (id, live) in &self.segment_book.live {
            let slots = live.subject_slots(&state.id);
            let subject = Subject {
                state,
                names: self.names(),
                health,
                risk: self.segment_book.risk(),
                daily: self.segment_book.daily(),
                slots: &slots,
            };
            let member = holds(&live.definition.condition, &subject, at);
            let was = state.segments.binary_search_by_key(id, |(s, _)| *s).is_ok();
            if member != was {
                changes.push((*id, member));
            }
            let n = next_change(&live.definition.condition, &subject, at);
            debug_assert!(n.is_none_or(|n| n > at), "a timer must lie ahead");
            if let Some(n) = n.filter(|n| *n > at) {
                next = Some(next.map_or(n, |m| m.min(n)));
            }
        }
        Verdict { changes, next }
    }
}

/// One customer's change in a [`Backfill`].
#[derive(Debug, Clone)]
struct Change {
    customer: CustomerId,
    identity: Identity,
    entered: bool,
    /// Boxed: alerts are rare, and a change is held per member.
    alert: Option<Box<Message>>,
}

/// What defining a segment changed, already folded into the engine: per customer whose
/// membership changed, its `Segment Entered` / `Segment Exited` event (and the alert, if the
/// definition names one). The events are built when asked for, so that a backfill over a
/// million customers holds a few words per member rather than a million messages; the
/// writer builds and stores them a chunk at a time.
#[derive(Debug, Clone)]
pub struct Backfill {
    segment: SegmentId,
    version: u32,
    name: String,
    /// The instant every event is stamped with, and it formatted.
    at: (Millis, String),
    changes: Vec<Change>,
}

impl Backfill {
    /// How many customers entered the segment.
    pub fn entered(&self) -> usize {
        self.changes.iter().filter(|c| c.entered).count()
    }

    /// How many customers left it.
    pub fn exited(&self) -> usize {
        self.changes.len() - self.entered()
    }

    /// How many events there are to append (memberships and alerts).
    pub fn len(&self) -> usize {
        self.changes.len() + self.changes.iter().filter(|c| c.alert.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The events to append, in customer order (a membership, then its alert), built
    /// `chunk` customers at a time in parallel.
    pub fn message_chunks(
        &self,
        chunk: usize,
    ) -> impl Iterator<Item = Vec<(CustomerId, Message)>> + '_ {
        self.changes.chunks(chunk.max(1)).map(|changes| {
            changes
                .par_iter()
                .flat_map_iter(|c| {
                    let membership = membership_message(
                        (self.segment, self.version, &self.name),
                        (&c.customer, &c.identity, c.entered),
                        (self.at.0, &self.at.1),
                        self.at.0,
                        "definition",
                    );
                    std::iter::once((c.customer.clone(), membership))
                        .chain(c.alert.iter().map(|a| (c.customer.clone(), (**a).clone())))
                })
                .collect()
        })
    }

    /// Every event to append, in customer order.
    pub fn messages(&self) -> Vec<(CustomerId, Message)> {
        self.message_chunks(usize::MAX).flatten().collect()
    }
}

/// The identity Tenure's events about the customer are sent under (none for a customer
/// with neither a user id nor an anonymous id).
fn sender(state: &CustomerState) -> Option<Identity> {
    match &state.user_id {
        Some(user) => Some(Identity::User(user.clone())),
        None => state
            .identities
            .iter()
            .find_map(|k| k.strip_prefix("a:"))
            .map(|anon| Identity::Anonymous(anon.to_owned())),
    }
}

/// The `Segment Entered` / `Segment Exited` event of the customer, stamped `at` (`stamp`:
/// `at` formatted). Its id names the segment's version, the customer, the direction and the
/// instant, so the same change is never logged twice.
fn membership_message(
    (segment, version, name): (SegmentId, u32, &str),
    (customer, identity, entered): (&CustomerId, &Identity, bool),
    (at, stamp): (Millis, &str),
    now: Millis,
    cause: &str,
) -> Message {
    Message::tenure_track_text(
        membership_id(segment, version, customer, entered, at),
        identity,
        if entered {
            "Segment Entered"
        } else {
            "Segment Exited"
        },
        (at, stamp),
        now,
        &[
            ("segment_id", &segment.to_string()),
            ("segment_name", name),
            ("cause", cause),
        ],
    )
}

fn membership_id(
    segment: SegmentId,
    version: u32,
    customer: &CustomerId,
    entered: bool,
    at: Millis,
) -> String {
    format!(
        "{OWN_PREFIX}{segment}.v{version}:{customer}:{}:{at}",
        if entered { "in" } else { "out" }
    )
}

/// On an entry, the definition's alert event, if it names one, with the health score and
/// grade of the state at `at`.
fn alert_message(
    state: &CustomerState,
    (segment, live): (SegmentId, &Live),
    (book, names): (&SegmentBook, &crate::engine::NameTable),
    (identity, entered): (&Identity, bool),
    (at, stamp): (Millis, &str),
    now: Millis,
    cause: &str,
) -> Option<Message> {
    let event = live.definition.alert.filter(|_| entered)?;
    let mut properties = Map::new();
    properties.insert("segment_id".into(), Value::from(segment.to_string()));
    properties.insert("segment_name".into(), Value::from(live.name.as_str()));
    properties.insert("cause".into(), Value::from(cause));
    let (score, grade) = book.health().grade(state, names, at);
    properties.insert("health_score".into(), serde_json::json!(score));
    properties.insert("health_grade".into(), serde_json::json!(grade));
    let id = membership_id(segment, live.version, &state.id, entered, at);
    Some(Message::tenure_track_stamped(
        format!("{id}:alert"),
        identity,
        event,
        (at, stamp),
        now,
        properties,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bulk path of `set_timers` leaves the book as setting each timer would.
    #[test]
    fn many_timers_at_once_equal_one_at_a_time() {
        let id = |i: usize| CustomerId::parse(&format!("cus_{i}")).unwrap();
        let mut one = SegmentBook::default();
        let mut bulk = SegmentBook::default();
        for i in 0..3_000 {
            one.set_timer(&id(i), Some(1_000 + (i % 7) as Millis));
            bulk.set_timer(&id(i), Some(1_000 + (i % 7) as Millis));
        }
        // Earlier timers for some known customers and for new ones: past the threshold.
        let updates: Vec<(CustomerId, Millis)> =
            (1_000..6_000).map(|i| (id(i), (i % 5) as Millis)).collect();
        for (c, at) in &updates {
            one.set_timer(c, Some(*at));
        }
        bulk.set_timers(updates);
        assert_eq!(bulk.timers, one.timers);
        assert_eq!(bulk.timer_of, one.timer_of);
        assert_eq!(bulk.timers.len(), 6_000);
    }
}
