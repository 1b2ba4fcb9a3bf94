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

use std::collections::HashMap;

use crate::customer::CustomerState;
use crate::customer_table::{CustomerTable, Place};
use crate::ids::{CustomerId, Identity, WorkspaceId};
use crate::message::{Message, MessageType};
use crate::names::NameTable;
use crate::seen::SeenIds;
use crate::subscription::{CustomerStatus, SubscriptionStatus, customer_status};
use crate::time::Millis;

/// What applying one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The customer the message now belongs to.
    pub customer: CustomerId,
    /// CustomerTable that were merged into `customer` by this message.
    pub merged: Vec<CustomerId>,
    /// The same merges as (loser, winner) places, the loser's taken before it left.
    pub merged_places: Vec<(Place, Place)>,
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
    customers: CustomerTable,
    /// CustomerTable merged away, pointing at the customer that absorbed them.
    merged_into: HashMap<CustomerId, CustomerId>,
    names: NameTable,
    /// Message ids folded so far (a Bloom filter: spares the writer most duplicate lookups).
    seen: SeenIds,
    last_seq: i64,
    events: u64,
    /// The merges of the message being applied, as (loser, winner) places taken before the
    /// loser left its place: returned in [`Applied`], empty between messages.
    merges: Vec<(Place, Place)>,
    /// The workspace's renewal policy: what profiles, health, segments and risk read
    /// subscriptions under, and the default of its reports.
    renewals: crate::subscription::Renewals,
}

impl Engine {
    pub fn new(workspace: WorkspaceId) -> Self {
        Self {
            workspace,
            users: Default::default(),
            anonymous: Default::default(),
            customers: CustomerTable::default(),
            merged_into: HashMap::new(),
            names: NameTable::default(),
            seen: SeenIds::default(),
            last_seq: 0,
            events: 0,
            merges: Vec::new(),
            renewals: crate::subscription::Renewals::default(),
        }
    }

    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// The workspace's renewal policy (docs/metrics.md, "Renewals").
    pub fn renewals(&self) -> crate::subscription::Renewals {
        self.renewals
    }

    /// Reads every subscription under a new workspace renewal policy (statuses and MRR may
    /// change for everyone); `false` if it was already the policy.
    pub fn set_renewals(&mut self, renewals: crate::subscription::Renewals) -> bool {
        if self.renewals == renewals {
            return false;
        }
        self.renewals = renewals;
        for state in self.customers.iter_mut() {
            state.set_renewals(renewals);
        }
        true
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
        self.events += 1;
        Applied {
            customer,
            merged,
            merged_places: std::mem::take(&mut self.merges),
        }
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
        segment: crate::ids::SegmentId,
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
    pub(crate) fn customers_for_backfill(&mut self) -> (&mut CustomerTable, &mut NameTable) {
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
        let Some(winner_place) = self.customers.place(winner) else {
            return;
        };
        // Whatever is kept by place (a segment's counters, a timer) moves while the loser
        // still has its place.
        if let Some(loser_place) = self.customers.place(loser) {
            self.merges.push((loser_place, winner_place));
        }
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

    /// CustomerTable in id order, after the cursor.
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
