//! The engine of one workspace: identity resolution and the fold of the log into
//! [`CustomerState`]s.
//!
//! ```text
//!   log (seq order) ──► Engine::apply ──► resolve identities ──► merge customers if needed
//!                                                   │
//!                                                   ▼
//!                                       CustomerState::apply (facts)
//! ```
//!
//! `apply` is deterministic: it never iterates a hash map in a way that affects the result,
//! draws no random numbers and reads no clock. Folding the same log therefore always gives
//! the same state, which is what lets the server rebuild at start and tests compare the
//! incremental state with a rebuild.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::customer::{
    Acquisition, CustomerState, NameId, Order, SubscriptionStatus, SubscriptionView, SurveyAnswer,
    Ticket,
};
use crate::customers::{Customers, Place};
use crate::ids::{CustomerId, Identity, WorkspaceId};
use crate::message::{Message, MessageType};
use crate::seen::SeenIds;
use crate::time::{Millis, format_instant};

/// Event names interned to small integers, in first-seen (log) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameTable {
    names: Vec<String>,
    /// foldhash rather than SipHash: every event folded, and every behaviour condition
    /// evaluated for every customer, looks a name up (the map is never iterated, so its
    /// seed changes nothing).
    ids: foldhash::HashMap<String, NameId>,
}

impl NameTable {
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as NameId;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    pub fn get(&self, name: &str) -> Option<NameId> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: NameId) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
}

/// What applying one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The customer the message now belongs to.
    pub customer: CustomerId,
    /// Customers that were merged into `customer` by this message.
    pub merged: Vec<CustomerId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    workspace: WorkspaceId,
    /// `userId` → the customer's place (also previous ids bound by `alias`). foldhash: every
    /// event folded looks its sender up (the maps are never iterated).
    users: foldhash::HashMap<String, Place>,
    /// `anonymousId` → the customer's place.
    anonymous: foldhash::HashMap<String, Place>,
    /// Every customer at its place, and by id (listing pages through them in id order).
    customers: Customers,
    /// Customers merged away, pointing at the customer that absorbed them.
    merged_into: HashMap<CustomerId, CustomerId>,
    names: NameTable,
    /// Message ids folded so far (a Bloom filter: spares the writer most duplicate lookups).
    seen: SeenIds,
    last_seq: i64,
    events: u64,
    /// Live segment definitions, their counters and timers (`crate::segments`).
    pub(crate) segment_book: crate::segments::SegmentBook,
    /// The workspace's renewal policy: what profiles, health, segments and risk read
    /// subscriptions under, and the default of its reports.
    renewals: crate::customer::Renewals,
}

impl Engine {
    pub fn new(workspace: WorkspaceId) -> Self {
        Self {
            workspace,
            users: Default::default(),
            anonymous: Default::default(),
            customers: Customers::default(),
            merged_into: HashMap::new(),
            names: NameTable::default(),
            seen: SeenIds::default(),
            last_seq: 0,
            events: 0,
            segment_book: crate::segments::SegmentBook::default(),
            renewals: crate::customer::Renewals::default(),
        }
    }

    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// The workspace's renewal policy (docs/metrics.md, "Renewals").
    pub fn renewals(&self) -> crate::customer::Renewals {
        self.renewals
    }

    /// Reads every subscription under a new workspace renewal policy. Statuses and MRR may
    /// change for everyone, so segments are reconciled at the next `due_segment_changes`.
    pub fn set_renewals(&mut self, renewals: crate::customer::Renewals) {
        if self.renewals == renewals {
            return;
        }
        self.renewals = renewals;
        for state in self.customers.iter_mut() {
            state.set_renewals(renewals);
        }
        self.segment_book.reconcile = true;
    }

    /// Sequence number of the last event applied (0 for none).
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    pub fn events_applied(&self) -> u64 {
        self.events
    }

    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    pub fn names(&self) -> &NameTable {
        &self.names
    }

    /// `false` if no message with this id was ever folded into this engine; `true` if one
    /// may have been (check the log to be sure).
    pub fn may_have_seen(&self, message_id: &str) -> bool {
        self.seen.may_contain(message_id)
    }

    /// Records that the log has been folded up to sequence number `seq`.
    pub fn advance_to(&mut self, seq: i64) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// Folds one event from the log. Events are applied in log order.
    pub fn apply(&mut self, message: &Message) -> Applied {
        self.seen.insert(&message.message_id);
        let (customer, merged) = self.resolve(message);
        let name = match message.kind {
            MessageType::Track => Some(
                self.names
                    .intern(message.name.as_deref().unwrap_or_default()),
            ),
            MessageType::Page => Some(
                self.names
                    .intern(&format!("page:{}", message.name.as_deref().unwrap_or(""))),
            ),
            MessageType::Screen => Some(
                self.names
                    .intern(&format!("screen:{}", message.name.as_deref().unwrap_or(""))),
            ),
            _ => None,
        };
        if let Some(state) = self.customers.get_mut(&customer) {
            state.apply(message, name);
        }
        self.observe_for_segments(&customer, message);
        self.events += 1;
        Applied { customer, merged }
    }

    /// Folds a membership event Tenure built for one of its customers: what [`Self::apply`]
    /// does with it (a rebuild folds the same message through `apply`; the property test in
    /// tests/segments.rs compares the two), without resolving its identity or reading its
    /// properties. A backfill folds one per member.
    ///
    /// Its id is Tenure's own (not held by the seen filter), and no segment counts it (a
    /// definition cannot name `Segment Entered` / `Segment Exited`), so neither is touched.
    pub(crate) fn apply_membership(
        &mut self,
        customer: &CustomerId,
        message: &Message,
        segment: crate::segments::SegmentId,
        entered: bool,
    ) {
        let name = self
            .names
            .intern(message.name.as_deref().unwrap_or_default());
        if let Some(state) = self.customers.get_mut(customer) {
            state.apply_membership(message.timestamp, name, segment, entered);
        }
        self.events += 1;
    }

    /// For a backfill: every place mutably, in place order, beside the name table (to
    /// intern the names of what it folds, in log order). The caller counts what it folds
    /// with [`Self::count_own_events`].
    pub(crate) fn customers_for_backfill(&mut self) -> (&mut Customers, &mut NameTable) {
        (&mut self.customers, &mut self.names)
    }

    /// Counts events folded directly into customers' states (a backfill's memberships).
    pub(crate) fn count_own_events(&mut self, count: usize) {
        self.events += count as u64;
    }

    /// Finds (or creates) the customer a message belongs to, merging customers when the
    /// message proves two of them are one person.
    ///
    /// Rules (Segment's identity semantics):
    /// - `userId` known → that customer. An anonymous profile under the same `anonymousId`
    ///   with no user id of its own is merged into it.
    /// - `userId` new, `anonymousId` known and not yet identified → the anonymous profile
    ///   becomes this user.
    /// - `alias(previousId → userId)`: the profile known under `previousId` (as a user id or
    ///   an anonymous id) and the one under `userId` are one customer.
    /// - Otherwise a new customer, with an id derived from its first identity.
    fn resolve(&mut self, message: &Message) -> (CustomerId, Vec<CustomerId>) {
        let at = message.timestamp;
        let mut merged = Vec::new();
        // Borrowed: owned identities are built only when one is bound or created (rare);
        // the common case, a known customer, allocates nothing.
        let user = message.user_id.as_deref();
        let anon = message.anonymous_id.as_deref();

        if message.kind == MessageType::Alias
            && let (Some(user), Some(previous)) = (user, &message.previous_id)
        {
            let user = Identity::User(user.to_owned());
            let as_user = Identity::User(previous.clone());
            let as_anon = Identity::Anonymous(previous.clone());
            let known_previous = self.lookup(&as_user).or_else(|| self.lookup(&as_anon));
            let target = match (self.lookup(&user), known_previous) {
                (Some(current), Some(prev)) => {
                    if current != prev {
                        self.merge(&prev, &current);
                        merged.push(prev);
                    }
                    current
                }
                (None, Some(prev)) => {
                    self.attach_user(&prev, &user);
                    prev
                }
                (Some(current), None) => current,
                (None, None) => self.create(&user, at),
            };
            for identity in [as_user, as_anon] {
                self.bind_if_free(&identity, &target);
            }
            if let Some(anon) = anon {
                self.bind_if_free(&Identity::Anonymous(anon.to_owned()), &target);
            }
            return (target, merged);
        }

        let unidentified = |engine: &Self, id: &CustomerId| {
            engine
                .customers
                .get(id)
                .is_some_and(|c| c.user_id.is_none())
        };
        let by_anon = anon.and_then(|a| self.id_at(self.anonymous.get(a)));
        let target = match user {
            Some(user) => match (self.id_at(self.users.get(user)), by_anon) {
                (Some(current), Some(anonymous)) if current != anonymous => {
                    if unidentified(self, &anonymous) {
                        self.merge(&anonymous, &current);
                        merged.push(anonymous);
                    }
                    current
                }
                (Some(current), _) => current,
                (None, Some(anonymous)) if unidentified(self, &anonymous) => {
                    self.attach_user(&anonymous, &Identity::User(user.to_owned()));
                    anonymous
                }
                (None, _) => self.create(&Identity::User(user.to_owned()), at),
            },
            None => match (by_anon, anon) {
                (Some(anonymous), _) => anonymous,
                (None, Some(anon)) => self.create(&Identity::Anonymous(anon.to_owned()), at),
                // Messages are validated to carry one of the two ids.
                (None, None) => self.create(&Identity::Anonymous(String::new()), at),
            },
        };
        if let Some(anon) = anon
            && !self.anonymous.contains_key(anon)
        {
            self.bind_if_free(&Identity::Anonymous(anon.to_owned()), &target);
        }
        (target, merged)
    }

    fn lookup(&self, identity: &Identity) -> Option<CustomerId> {
        match identity {
            Identity::User(id) => self.id_at(self.users.get(id.as_str())),
            Identity::Anonymous(id) => self.id_at(self.anonymous.get(id.as_str())),
        }
    }

    /// The id of the customer at a place an identity map gave.
    fn id_at(&self, place: Option<&Place>) -> Option<CustomerId> {
        Some(self.customers.at(*place?)?.id.clone())
    }

    fn identity_map(
        &mut self,
        identity: &Identity,
    ) -> (&mut foldhash::HashMap<String, Place>, String) {
        match identity {
            Identity::User(id) => (&mut self.users, id.clone()),
            Identity::Anonymous(id) => (&mut self.anonymous, id.clone()),
        }
    }

    fn create(&mut self, identity: &Identity, at: Millis) -> CustomerId {
        let id = CustomerId::derive(&self.workspace, identity);
        // A derived id can only repeat if its identity was bound before and merged away;
        // the customer then lives on under the absorbing id.
        if let Some(winner) = self.merged_into.get(&id) {
            let winner = winner.clone();
            self.bind_if_free(identity, &winner);
            return winner;
        }
        let mut state = CustomerState::new(id.clone(), at);
        state.set_renewals(self.renewals);
        if let Identity::User(user) = identity {
            state.user_id = Some(user.clone());
        }
        self.customers.insert(state);
        self.bind_if_free(identity, &id);
        id
    }

    fn attach_user(&mut self, customer: &CustomerId, user: &Identity) {
        if let (Some(state), Identity::User(user_id)) = (self.customers.get_mut(customer), user)
            && state.user_id.is_none()
        {
            state.user_id = Some(user_id.clone());
        }
        self.bind_if_free(user, customer);
    }

    fn bind_if_free(&mut self, identity: &Identity, customer: &CustomerId) {
        if self.lookup(identity).is_some() {
            return;
        }
        let Some(place) = self.customers.place(customer) else {
            return;
        };
        if let Some(state) = self.customers.at_mut(place) {
            state.identities.push(identity.key());
        }
        let (map, id) = self.identity_map(identity);
        map.insert(id, place);
    }

    fn merge(&mut self, loser: &CustomerId, winner: &CustomerId) {
        // What segments counted for the loser moves while it still has its place.
        self.merge_for_segments(loser, winner);
        let Some(winner_place) = self.customers.place(winner) else {
            return;
        };
        let Some(state) = self.customers.remove(loser) else {
            return;
        };
        for key in &state.identities {
            let identity = match key.split_at(2) {
                ("u:", id) => Identity::User(id.to_owned()),
                (_, id) => Identity::Anonymous(id.to_owned()),
            };
            let (map, id) = self.identity_map(&identity);
            map.insert(id, winner_place);
        }
        // Anything that pointed at the loser now points at the winner.
        for target in self.merged_into.values_mut() {
            if target == loser {
                *target = winner.clone();
            }
        }
        self.merged_into.insert(loser.clone(), winner.clone());
        if let Some(w) = self.customers.get_mut(winner) {
            w.identities.extend(state.identities.iter().cloned());
            if w.user_id.is_none() {
                w.user_id = state.user_id.clone();
            }
            w.absorb(state);
        }
    }

    /// A customer by id (following merges) or by user id.
    pub fn find(&self, key: &str) -> Option<&CustomerState> {
        if let Ok(id) = CustomerId::parse(key) {
            let id = self.merged_into.get(&id).unwrap_or(&id);
            if let Some(state) = self.customers.get(id) {
                return Some(state);
            }
        }
        self.customers.at(*self.users.get(key)?)
    }

    /// Every customer, in id order.
    pub fn customers(&self) -> impl Iterator<Item = &CustomerState> {
        self.customers.in_id_order()
    }

    /// Every customer, in place (first-seen) order: the table as it lies in memory, faster
    /// to walk than id order (docs/benchmarks.md). For passes whose result does not depend
    /// on the order (a report's folds, scoring everyone).
    pub fn customers_by_place(&self) -> impl Iterator<Item = &CustomerState> {
        self.customers.by_place()
    }

    /// A live customer's place (the dense index timers and backfills use).
    pub fn place(&self, id: &CustomerId) -> Option<Place> {
        self.customers.place(id)
    }

    /// Every live customer's id and place, in id order.
    pub(crate) fn places_in_id_order(&self) -> impl Iterator<Item = (&CustomerId, Place)> {
        self.customers.places_in_id_order()
    }

    /// The customer at a place, unless it was merged away.
    pub fn customer_at(&self, place: Place) -> Option<&CustomerState> {
        self.customers.at(place)
    }

    /// Every place with its customer (`None` where one was merged away), in place order,
    /// for data-parallel work: what `collect` gathers has one entry per place, in order.
    pub(crate) fn par_customers_by_place(
        &self,
    ) -> impl rayon::iter::ParallelIterator<Item = (Place, Option<&CustomerState>)> {
        self.customers.par_by_place()
    }

    /// How many places there are: one past the last (merged-away customers counted).
    pub(crate) fn place_count(&self) -> usize {
        self.customers.places()
    }

    pub(crate) fn customers_mut(&mut self) -> impl Iterator<Item = &mut CustomerState> {
        self.customers.iter_mut()
    }

    /// Customers in id order, after the cursor.
    pub fn customers_after(
        &self,
        after: Option<&CustomerId>,
    ) -> impl Iterator<Item = &CustomerState> {
        self.customers.after(after)
    }

    /// The place of the customer a logged message belongs to now (following merges),
    /// without creating one.
    pub(crate) fn owner_of(&self, message: &Message) -> Option<Place> {
        message
            .user_id
            .as_deref()
            .and_then(|u| self.users.get(u))
            .or_else(|| {
                message
                    .anonymous_id
                    .as_deref()
                    .and_then(|a| self.anonymous.get(a))
            })
            .copied()
            .filter(|p| self.customers.at(*p).is_some())
    }

    /// One page of customers matching `filter`, in id order, after the cursor.
    pub fn list(
        &self,
        filter: &CustomerFilter,
        after: Option<&CustomerId>,
        limit: usize,
        now: Millis,
    ) -> Vec<&CustomerState> {
        self.customers_after(after)
            .filter(|c| filter.matches(c, now))
            .take(limit)
            .collect()
    }

    /// The segments the customer is in, with their names.
    pub fn memberships(&self, state: &CustomerState) -> Vec<SegmentMembership> {
        state
            .segments
            .iter()
            .map(|(id, at)| SegmentMembership {
                id: *id,
                name: self.segment_name(*id).map(str::to_owned),
                entered_at: format_instant(*at),
            })
            .collect()
    }

    /// The customer as the profile API shows it, evaluated at `now`.
    pub fn profile(&self, state: &CustomerState, now: Millis) -> CustomerProfile {
        let subscriptions = state.subscriptions_at(now);
        let mrr = state
            .mrr_at(now)
            .into_iter()
            .map(|(c, v)| (c.as_str().to_owned(), v))
            .collect();
        let revenue = state
            .order_revenue_until(now)
            .into_iter()
            .map(|(c, v)| (c.as_str().to_owned(), v))
            .collect();
        let mut event_counts: Vec<(String, u32)> = state
            .event_counts
            .iter()
            .map(|(n, c)| (self.names.name(*n).to_owned(), *c))
            .collect();
        event_counts.sort();
        let status = customer_status(&subscriptions);
        CustomerProfile {
            id: state.id.clone(),
            user_id: state.user_id.clone(),
            anonymous_ids: state
                .identities
                .iter()
                // An alias's previous id is bound both ways (its kind is unknown); show it once,
                // as an alias.
                .filter_map(|k| k.strip_prefix("a:"))
                .filter(|a| {
                    !state
                        .identities
                        .iter()
                        .any(|k| k.strip_prefix("u:") == Some(*a))
                })
                .map(str::to_owned)
                .collect(),
            aliases: state
                .identities
                .iter()
                .filter_map(|k| k.strip_prefix("u:"))
                .filter(|u| Some(*u) != state.user_id.as_deref())
                .map(str::to_owned)
                .collect(),
            merged_customers: state.merged.clone(),
            traits: state.traits.clone(),
            first_seen: format_instant(state.first_seen),
            last_seen: format_instant(state.last_seen),
            status,
            events: state.event_total,
            active_days: state.active_days.len(),
            event_counts: event_counts.into_iter().collect(),
            acquisition: state.acquisition.clone(),
            mrr,
            mrr_history: state
                .mrr_history()
                .into_iter()
                .map(|(at, v)| MrrPoint {
                    at: format_instant(at),
                    mrr: v,
                })
                .collect(),
            subscriptions,
            orders: state.orders.clone(),
            order_revenue: revenue,
            surveys_shown: state.surveys_shown.len(),
            survey_answers: state.survey_answers.clone(),
            tickets: state.tickets.clone(),
            open_tickets: state.open_tickets(),
            groups: state.groups.clone(),
            segments: self.memberships(state),
        }
    }
}

/// Where a customer stands with the business at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    /// Never subscribed.
    Lead,
    Trialing,
    /// Paying (including cancelled but still paid up).
    Active,
    Paused,
    /// Subscribed once; nothing active now.
    Churned,
}

impl CustomerStatus {
    /// The name the API uses (`lead`, `trialing`, `active`, `paused`, `churned`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Churned => "churned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "lead" => Self::Lead,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "paused" => Self::Paused,
            "churned" => Self::Churned,
            _ => return None,
        })
    }
}

pub(crate) fn customer_status(subscriptions: &[SubscriptionView]) -> CustomerStatus {
    status_from(subscriptions.iter().map(|v| v.status))
}

/// Where a customer stands, from the status of each of their subscriptions at one instant.
pub(crate) fn status_from(statuses: impl Iterator<Item = SubscriptionStatus>) -> CustomerStatus {
    use SubscriptionStatus as S;
    // `all_unknown` stays true without subscriptions: a lead either way.
    let (mut paying, mut trialing, mut paused, mut all_unknown) = (false, false, false, true);
    for status in statuses {
        paying |= status.is_paying();
        trialing |= status == S::Trialing;
        paused |= status == S::Paused;
        all_unknown &= status == S::Unknown;
    }
    if paying {
        CustomerStatus::Active
    } else if trialing {
        CustomerStatus::Trialing
    } else if paused {
        CustomerStatus::Paused
    } else if all_unknown {
        CustomerStatus::Lead
    } else {
        CustomerStatus::Churned
    }
}

/// Filters for listing customers.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub channel: Option<String>,
    pub plan: Option<String>,
    pub status: Option<CustomerStatus>,
    pub seen_since: Option<Millis>,
    /// `(trait, value)`: the trait's value, as text, equals `value`.
    pub trait_equals: Option<(String, String)>,
}

impl CustomerFilter {
    pub fn matches(&self, c: &CustomerState, now: Millis) -> bool {
        if let Some(channel) = &self.channel
            && c.acquisition.channel.as_deref() != Some(channel.as_str())
        {
            return false;
        }
        if let Some(since) = self.seen_since
            && c.last_seen < since
        {
            return false;
        }
        if let Some((key, value)) = &self.trait_equals
            && !c.trait_equals(key, value)
        {
            return false;
        }
        if self.plan.is_none() && self.status.is_none() {
            return true;
        }
        let subscriptions = c.subscriptions_at(now);
        if let Some(plan) = &self.plan {
            let on_plan = subscriptions.iter().any(|s| {
                s.plan.as_deref() == Some(plan.as_str())
                    && matches!(
                        s.status,
                        SubscriptionStatus::Active
                            | SubscriptionStatus::PastDue
                            | SubscriptionStatus::Cancelling
                            | SubscriptionStatus::Trialing
                    )
            });
            if !on_plan {
                return false;
            }
        }
        self.status
            .is_none_or(|status| customer_status(&subscriptions) == status)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MrrPoint {
    pub at: String,
    pub mrr: i64,
}

/// The folded state of a customer as the API returns it. Money is in minor units.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerProfile {
    pub id: CustomerId,
    pub user_id: Option<String>,
    pub anonymous_ids: Vec<String>,
    pub aliases: Vec<String>,
    pub merged_customers: Vec<CustomerId>,
    pub traits: Map<String, Value>,
    pub first_seen: String,
    pub last_seen: String,
    pub status: CustomerStatus,
    pub events: u32,
    pub active_days: usize,
    pub event_counts: BTreeMap<String, u32>,
    pub acquisition: Acquisition,
    /// Current MRR per currency, minor units.
    pub mrr: BTreeMap<String, i64>,
    pub mrr_history: Vec<MrrPoint>,
    pub subscriptions: Vec<SubscriptionView>,
    pub orders: Vec<Order>,
    /// Completed minus refunded order revenue per currency, minor units.
    pub order_revenue: BTreeMap<String, i64>,
    pub surveys_shown: usize,
    pub survey_answers: Vec<SurveyAnswer>,
    pub tickets: Vec<Ticket>,
    pub open_tickets: usize,
    pub groups: Vec<String>,
    /// The segments the customer is in now.
    pub segments: Vec<SegmentMembership>,
}

/// One segment a customer is in.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentMembership {
    pub id: crate::segments::SegmentId,
    pub name: Option<String>,
    pub entered_at: String,
}
