//! The live segments of one workspace: definitions, the models their conditions read, and
//! one timer per customer; defining, previewing and evaluating them, and the changes events
//! and time make (what is counted per definition is in `counters.rs`, the events segments
//! append in `events.rs`).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use crate::customer::CustomerState;
use crate::customer_table::Place;
use crate::engine::{Applied, Engine};
use crate::health::HealthModels;
use crate::ids::CustomerId;
use crate::ids::SegmentId;
use crate::message::{Message, MessageType};
use crate::names::NameTable;
use crate::segments::DailyValues;
use crate::segments::definition::Definition;
use crate::segments::eval::{Subject, holds, next_change};
use crate::segments::timers::Timers;
use crate::time::{Millis, day_of, format_instant};

use super::counters::{Live, add_day, slots_passed};
pub use super::events::{Backfill, BackfillChunk};
use super::events::{alert_message, has_sender, intern_in_log_order, membership_message, sender};

/// A trained risk model, shared with the shell; two are the same if they are the same
/// allocation (a model is never changed, only replaced).
#[derive(Clone)]
pub(crate) struct SharedRisk(pub(crate) std::sync::Arc<dyn crate::risk::ChurnRisk>);

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
pub(crate) struct SharedDaily(pub(crate) std::sync::Arc<DailyValues>);

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
    /// Per customer: re-evaluate its segments at this instant.
    timers: Timers,
    /// The health model `health` and `grade` conditions read (the shipped default unless
    /// set).
    pub(crate) health: HealthModels,
    /// The churn-risk model `risk` conditions read (none until one is trained).
    pub(crate) risk: Option<SharedRisk>,
    /// The day's table `p_alive`, `predicted_clv` and `revenue_percentile` read (none until
    /// the shell computes one).
    pub(crate) daily: Option<SharedDaily>,
    /// Set by a rebuild: every customer is evaluated once at the next clock tick.
    pub(crate) reconcile: bool,
}

impl SegmentBook {
    fn health(&self) -> &HealthModels {
        &self.health
    }

    fn risk(&self) -> Option<&dyn crate::risk::ChurnRisk> {
        self.risk.as_ref().map(|r| r.0.as_ref())
    }

    fn daily(&self) -> Option<&DailyValues> {
        self.daily.as_ref().map(|d| d.0.as_ref())
    }

    /// What a condition reads for a customer (`slots`: its filtered leaves' counts).
    fn subject<'a>(
        &'a self,
        state: &'a CustomerState,
        names: &'a NameTable,
        slots: &'a [&'a [(i32, u32)]],
    ) -> Subject<'a> {
        Subject {
            state,
            names,
            health: self.health(),
            risk: self.risk(),
            daily: self.daily(),
            slots,
        }
    }
}

impl SegmentBook {
    /// Folds one message into the engine, then follows its merges and counts it for the
    /// filtered leaves that want it: what [`LiveWorkspace::apply`] does.
    pub(crate) fn fold(&mut self, engine: &mut Engine, message: &Message) -> Applied {
        let applied = engine.apply(message);
        for (loser, winner) in &applied.merged_places {
            self.merge(*loser, *winner);
        }
        self.observe(engine.place(&applied.customer), message);
        applied
    }

    /// Counts an event for the filtered leaves that want it (`place`: its customer's).
    pub(crate) fn observe(&mut self, place: Option<Place>, message: &Message) {
        if message.kind != MessageType::Track || self.live.values().all(|l| l.slots.is_empty()) {
            return;
        }
        let Some(place) = place else {
            return;
        };
        for live in self.live.values_mut() {
            if !live.slots.is_empty() {
                live.observe(place, message);
            }
        }
    }

    /// Moves what segments counted for `loser` to `winner` (a merge; the loser's place is
    /// empty from now on) and drops the loser's timer.
    pub(crate) fn merge(&mut self, loser: Place, winner: Place) {
        for live in self.live.values_mut() {
            for slot in &mut live.slots {
                if let Some(days) = slot.remove(&loser) {
                    let target = slot.entry(winner).or_default();
                    for (day, count) in days {
                        add_day(target, day, count);
                    }
                }
            }
        }
        self.timers.set(loser, None);
    }
}

/// The result of evaluating every segment for one customer.
struct Verdict {
    /// `(segment, now a member)` where that differs from the customer's state.
    changes: Vec<(SegmentId, bool)>,
    next: Option<Millis>,
}

/// What a backfill found for one customer (read only, in parallel): a membership change,
/// its alert, and a timer earlier than the one the customer has.
struct Outcome {
    place: Place,
    /// `Some(entered)` when the membership changes.
    change: Option<bool>,
    /// Boxed: alerts are rare.
    alert: Option<Box<Message>>,
    next: Option<Millis>,
}

impl SegmentBook {
    /// The live segments, in id order, with their member counts.
    pub fn segments(&self, engine: &Engine) -> Vec<SegmentInfo> {
        let mut members: HashMap<SegmentId, usize> = HashMap::new();
        for c in engine.customers_by_place() {
            for (s, _) in &c.segments {
                *members.entry(*s).or_default() += 1;
            }
        }
        self.live
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
        self.live.get(&id).map(|l| l.name.as_str())
    }

    /// One page of a segment's members, in customer id order, after the cursor.
    pub fn segment_members<'e>(
        &self,
        engine: &'e Engine,
        id: SegmentId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Vec<(&'e CustomerState, Millis)> {
        engine
            .customers_after(after)
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
        if self.reconcile {
            return Some(Millis::MIN);
        }
        self.timers.first().map(|(at, _)| at)
    }

    /// Whether a live segment reads the day's table (`p_alive`, `predicted_clv`,
    /// `revenue_percentile`): the shell keeps today's table set while one does.
    pub fn segments_read_daily_values(&self) -> bool {
        self.live
            .values()
            .any(|l| l.definition.reads_daily_values())
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
        self.live.insert(id, Live::new(name, version, definition));
        self.reconcile = true;
    }

    /// Defines (or redefines) a segment and backfills it: `history` is every logged event
    /// the definition's filtered leaves need (its [`Definition::slots`] events; none when
    /// it has no filters). Every customer's membership is brought in line with the
    /// definition at `now`, already folded into the states; the returned [`Backfill`] says
    /// who entered and left, and builds the `Segment Entered` / `Segment Exited` events
    /// that say so, which the caller appends to the log.
    pub fn define_segment<'m>(
        &mut self,
        engine: &mut Engine,
        id: SegmentId,
        name: &str,
        definition: Definition,
        history: impl IntoIterator<Item = &'m Message>,
        now: Millis,
    ) -> Backfill {
        let version = self.live.get(&id).map_or(1, |l| l.version + 1);
        let live = self.live_with_history(engine, name, version, definition, history);
        self.live.insert(id, live);
        let stamp = format_instant(now);
        // In parallel over the table, each customer on its own (read only): whether its
        // membership changes (and the alert, built from the state before), and whether its
        // timer must move earlier. A stale, earlier timer costs one needless evaluation; a
        // missing one would be wrong: the earlier of the two is kept. Most customers need
        // nothing, and cost no allocation.
        let (book, names) = (&*self, engine.names());
        let live = &book.live[&id];
        let timers = book.timers.by_place();
        let outcomes: Vec<Outcome> = engine
            .par_customers_by_place()
            .filter_map(|(place, c)| {
                let c = c?;
                let slots = live.subject_slots(place);
                let subject = book.subject(c, names, &slots);
                let member = holds(&live.definition.condition, &subject, now);
                let was = c.segments.binary_search_by_key(&id, |(s, _)| *s).is_ok();
                let next = next_change(&live.definition.condition, &subject, now)
                    .filter(|n| *n > now && timers.get(place.index()).is_none_or(|t| n < t));
                let change = (was != member && has_sender(c)).then_some(member);
                let alert = (change == Some(true))
                    .then(|| {
                        let identity = sender(c)?;
                        alert_message(
                            c,
                            (id, live),
                            (book.health(), names),
                            (&identity, true),
                            (now, &stamp),
                            now,
                            "definition",
                        )
                    })
                    .flatten()
                    .map(Box::new);
                (change.is_some() || next.is_some()).then_some(Outcome {
                    place,
                    change,
                    alert,
                    next,
                })
            })
            .collect();
        // Each place's change, the alerts by place, and the timers that move.
        let mut changed = vec![None; engine.place_count()];
        let mut alerts = Vec::new();
        let mut timer_updates = Vec::new();
        for o in outcomes {
            if let Some(entered) = o.change {
                changed[o.place.index()] = Some(entered);
            }
            if let Some(alert) = o.alert {
                alerts.push((o.place, *alert));
            }
            if let Some(at) = o.next {
                timer_updates.push((o.place, at));
            }
        }
        let changes = self.in_id_order(engine, &changed);
        let (customers, names) = engine.customers_for_backfill();
        let name_ids = intern_in_log_order(names, &changes, &alerts);
        // In parallel again, the memberships folded into the states (folding inside the
        // evaluating pass would need the names before anyone is evaluated); then the
        // alerts, through `apply`, in log order.
        if !changes.is_empty() {
            customers.par_zip_mut(&changed).for_each(|(c, entered)| {
                let (Some(c), Some(entered)) = (c, *entered) else {
                    return;
                };
                if let Some(name) = name_ids[usize::from(!entered)] {
                    c.apply_membership(now, name, id, entered);
                }
            });
        }
        for (place, _) in &changes {
            if let Ok(i) = alerts.binary_search_by_key(place, |(p, _)| *p) {
                self.fold(engine, &alerts[i].1);
            }
        }
        engine.count_own_events(changes.len());
        self.timers.set_many(timer_updates);
        Backfill {
            segment: id,
            version,
            name: name.to_owned(),
            at: (now, stamp),
            changes,
            alerts,
        }
    }

    /// The places with a change (`changed`, by place: whether it entered) in customer id
    /// order, the order their events go to the log: stored in that order they extend the
    /// log's per-customer index at its end, where at random places a million events took
    /// three times as long (docs/benchmarks.md). Few changes are sorted by id; many are
    /// picked out of a walk of the id index, which costs tens of ms on a million customers
    /// whatever the count.
    fn in_id_order(&self, engine: &Engine, changed: &[Option<bool>]) -> Vec<(Place, bool)> {
        let change = |place: Place| {
            let entered = changed.get(place.index()).copied().flatten()?;
            Some((place, entered))
        };
        let count = changed.iter().filter(|c| c.is_some()).count();
        if count * 16 >= changed.len() {
            return engine
                .places_in_id_order()
                .filter_map(|(_, place)| change(place))
                .collect();
        }
        let mut changes: Vec<(Place, bool)> = (0..changed.len())
            .filter_map(|i| change(Place::at(i)))
            .collect();
        let id = |place: Place| engine.customer_at(place).map(|c| &c.id);
        changes.par_sort_unstable_by(|a, b| id(a.0).cmp(&id(b.0)));
        changes
    }

    /// Forgets a segment. Memberships are dropped from the state without events (the
    /// segment no longer exists for anything to react to). `false` if it was not defined.
    pub fn remove_segment(&mut self, engine: &mut Engine, id: SegmentId) -> bool {
        if self.live.remove(&id).is_none() {
            return false;
        }
        for c in engine.customers_mut() {
            c.segments.retain(|(s, _)| *s != id);
        }
        true
    }

    /// Counts and a sample (the members with the smallest ids) of who a definition would
    /// hold at `now`, without saving it.
    pub fn preview_segment<'m>(
        &self,
        engine: &Engine,
        definition: &Definition,
        history: impl IntoIterator<Item = &'m Message>,
        now: Millis,
        sample: usize,
    ) -> (usize, Vec<CustomerId>) {
        let live = self.live_with_history(engine, "", 0, definition.clone(), history);
        let book = self;
        let members: Vec<bool> = engine
            .par_customers_by_place()
            .map(|(place, c)| {
                c.is_some_and(|c| {
                    let slots = live.subject_slots(place);
                    let subject = book.subject(c, engine.names(), &slots);
                    holds(&live.definition.condition, &subject, now)
                })
            })
            .collect();
        let count = members.iter().filter(|m| **m).count();
        let sample = engine
            .places_in_id_order()
            .filter(|(_, place)| members.get(place.index()).copied().unwrap_or(false))
            .map(|(id, _)| id.clone())
            .take(sample)
            .collect();
        (count, sample)
    }

    /// Whether the customer is in the segment by its definition at `now`, evaluated from
    /// the state (what the property test compares the incremental membership with).
    pub fn evaluate_segment(
        &self,
        engine: &Engine,
        id: SegmentId,
        customer: &CustomerState,
        now: Millis,
    ) -> Option<bool> {
        let live = self.live.get(&id)?;
        let slots = engine
            .place(&customer.id)
            .map(|p| live.subject_slots(p))
            .unwrap_or_default();
        let subject = self.subject(customer, engine.names(), &slots);
        Some(holds(&live.definition.condition, &subject, now))
    }

    /// A definition ready to run, its filtered leaves counted from `history` (logged
    /// events, resolved to today's customers; in parallel, then grouped by customer).
    fn live_with_history<'m>(
        &self,
        engine: &Engine,
        name: &str,
        version: u32,
        definition: Definition,
        history: impl IntoIterator<Item = &'m Message>,
    ) -> Live {
        let mut live = Live::new(name, version, definition);
        if live.slots.is_empty() {
            return live;
        }
        let history: Vec<&Message> = history
            .into_iter()
            .filter(|m| m.kind == MessageType::Track)
            .collect();
        let definition = &live.definition;
        let mut counted: Vec<(usize, Place, i32)> = history
            .par_iter()
            .flat_map_iter(|message| {
                let day = day_of(message.timestamp);
                engine.owner_of(message).into_iter().flat_map(move |place| {
                    slots_passed(definition, message).map(move |i| (i, place, day))
                })
            })
            .collect();
        counted.par_sort_unstable();
        for group in counted.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (slot, place, _) = group[0];
            let mut days: Vec<(i32, u32)> = Vec::new();
            for (_, _, day) in group {
                match days.last_mut() {
                    Some((d, n)) if d == day => *n += 1,
                    _ => days.push((*day, 1)),
                }
            }
            live.slots[slot].insert(place, days);
        }
        live
    }

    /// Re-evaluates every segment for these customers (those an event just touched) at
    /// `now`, resets their timers, and returns the membership messages to append.
    pub fn segment_changes(
        &mut self,
        engine: &mut Engine,
        customers: &[CustomerId],
        now: Millis,
    ) -> Vec<(CustomerId, Message)> {
        if self.live.is_empty() {
            return Vec::new();
        }
        let mut messages = Vec::new();
        let mut done = std::collections::HashSet::new();
        for id in customers {
            let Some(place) = engine
                .find(id.as_str())
                .and_then(|state| engine.place(&state.id))
            else {
                continue;
            };
            if !done.insert(place) {
                continue;
            }
            self.settle(engine, place, now, now, "event", &mut messages);
        }
        messages
    }

    /// Fires every timer due by `now`, each at its own instant and in time order (a timer
    /// that fires may set the next one, due by `now` too). After a rebuild, first
    /// evaluates every customer at `now`.
    pub fn due_segment_changes(
        &mut self,
        engine: &mut Engine,
        now: Millis,
    ) -> Vec<(CustomerId, Message)> {
        let mut messages = Vec::new();
        if self.reconcile {
            self.reconcile = false;
            self.timers.clear();
            let live: Vec<SegmentId> = self.live.keys().copied().collect();
            // Memberships of segments that no longer exist are dropped.
            for c in engine.customers_mut() {
                c.segments.retain(|(s, _)| live.binary_search(s).is_ok());
            }
            if !live.is_empty() {
                // Every customer at once: the verdicts in parallel (read only), then their
                // messages folded and the timers set, in customer id order (the order the
                // log stores fastest).
                let mut verdicts: Vec<Option<Verdict>> = engine
                    .par_customers_by_place()
                    .map(|(place, c)| c.map(|c| self.verdict_of(engine, c, place, now)))
                    .collect();
                let order: Vec<Place> = engine.places_in_id_order().map(|(_, p)| p).collect();
                for place in order {
                    if let Some(verdict) = verdicts[place.index()].take() {
                        self.commit(engine, (place, verdict), (now, now, "start"), &mut messages);
                    }
                }
            }
            return messages;
        }
        while let Some((at, place)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.set(place, None);
            self.settle(engine, place, at, now, "timer", &mut messages);
        }
        messages
    }

    /// Evaluates every segment for one customer at `at`; appends the messages for what
    /// changed (applied), and sets the customer's next timer.
    fn settle(
        &mut self,
        engine: &mut Engine,
        place: Place,
        at: Millis,
        now: Millis,
        cause: &str,
        messages: &mut Vec<(CustomerId, Message)>,
    ) {
        let Some(verdict) = engine
            .customer_at(place)
            .map(|c| self.verdict_of(engine, c, place, at))
        else {
            return;
        };
        self.commit(engine, (place, verdict), (at, now, cause), messages);
    }

    /// Appends (and applies) the messages of a verdict reached at `at` (evaluated at `now`,
    /// for `cause`), and sets the customer's next timer.
    fn commit(
        &mut self,
        engine: &mut Engine,
        (place, verdict): (Place, Verdict),
        (at, now, cause): (Millis, Millis, &str),
        messages: &mut Vec<(CustomerId, Message)>,
    ) {
        let stamp = format_instant(at);
        for (segment, member) in verdict.changes {
            let (Some(state), Some(live)) = (engine.customer_at(place), self.live.get(&segment))
            else {
                continue;
            };
            let Some(identity) = sender(state) else {
                continue;
            };
            let customer = state.id.clone();
            let membership = membership_message(
                (segment, live.version, &live.name),
                (&customer, &identity, member),
                (at, &stamp),
                now,
                cause,
            );
            let alert = alert_message(
                state,
                (segment, live),
                (self.health(), engine.names()),
                (&identity, member),
                (at, &stamp),
                now,
                cause,
            );
            engine.apply_membership(&customer, &membership, segment, member);
            messages.push((customer.clone(), membership));
            if let Some(alert) = alert {
                self.fold(engine, &alert);
                messages.push((customer, alert));
            }
        }
        self.timers.set(place, verdict.next);
    }

    fn verdict_of(
        &self,
        engine: &Engine,
        state: &CustomerState,
        place: Place,
        at: Millis,
    ) -> Verdict {
        let mut changes = Vec::new();
        let mut next: Option<Millis> = None;
        for (id, live) in &self.live {
            let slots = live.subject_slots(place);
            let subject = self.subject(state, engine.names(), &slots);
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
