//! `CustomerState`: everything Tenure knows about one customer, as a fold of the log.
//!
//! The state records facts with their business timestamps (a subscription's starts,
//! changes, cancellations; orders; refunds; answers), never conclusions that depend on
//! "now". Questions such as "what is the MRR on a date?" or "is this subscription active?"
//! are answered by functions that take the instant as an argument, so a late event for a
//! closed period lands in the right place and time passing needs no event.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::active_months::{ActiveMonths, month_of_day};
use crate::ids::CustomerId;
use crate::message::{Message, MessageType};
use crate::money::{Currency, Money};
use crate::names::NameId;
use crate::semantic::{Interval, OPERATOR_EVENTS, Semantic};
use crate::subscription::{
    DefaultMrr, FactKind, Renewals, Subscription, SubscriptionFact, SubscriptionStatus,
    SubscriptionView, terms,
};
use crate::time::{Millis, add_months, day_of};

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerState {
    pub id: CustomerId,
    pub user_id: Option<String>,
    /// Every identity key (`u:…`, `a:…`) that resolves to this customer.
    pub identities: Vec<String>,
    /// Customers merged into this one by `alias` or `identify`.
    pub merged: Vec<CustomerId>,
    pub traits: Map<String, Value>,
    pub first_seen: Millis,
    pub last_seen: Millis,
    /// UTC days with at least one track / page / screen call, sorted, unique.
    pub active_days: Vec<i32>,
    /// Events per name, sorted by name id.
    pub event_counts: Vec<(NameId, u32)>,
    /// Named events (track, page, screen) per UTC day, sorted by (day, name).
    pub activity: Vec<DayCount>,
    /// The months of `activity`, as a bit set (an index for monthly retention).
    pub active_months: ActiveMonths,
    pub event_total: u32,
    pub orders: Vec<Order>,
    pub refunds: Vec<Refund>,
    pub subscriptions: Vec<Subscription>,
    /// The subscriptions' MRR as steps under the kept policy (Tenure's defaults with the
    /// workspace's renewals, [`Subscription::kept_policy`]), in their own
    /// currency: kept up to date with every subscription fact, so that a report with the
    /// default settings does not replay every subscription of every customer.
    pub default_mrr: DefaultMrr,
    /// The currency this customer counts for when a report picks its reporting currency:
    /// their first subscription's, else their first order's (kept with the facts).
    pub main_currency: Option<Currency>,
    /// The segments the customer is in, with when they entered, sorted by segment (the
    /// fold of `Segment Entered` / `Segment Exited`).
    pub segments: Vec<(crate::ids::SegmentId, Millis)>,
    /// Manual health overrides, in time order (each `Health Overridden` event).
    pub health_overrides: Vec<crate::semantic::HealthOverride>,
    /// When a survey was shown, sorted.
    pub surveys_shown: Vec<Millis>,
    pub survey_answers: Vec<SurveyAnswer>,
    pub tickets: Vec<Ticket>,
    pub acquisition: Acquisition,
    pub groups: Vec<String>,
    /// The workspace's renewal policy: new subscriptions keep their phases under it.
    renewals: Renewals,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub order_id: String,
    #[serde(with = "crate::time::iso")]
    pub at: Millis,
    pub revenue: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refund {
    pub order_id: String,
    #[serde(with = "crate::time::iso")]
    pub at: Millis,
    /// `None`: the whole order.
    pub amount: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyAnswer {
    pub survey_id: String,
    #[serde(with = "crate::time::iso")]
    pub at: Millis,
    /// 10: an NPS question (0–10); 5: a CSAT question (1–5).
    pub scale: u8,
    /// `None`: the question was skipped.
    pub score: Option<u8>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    pub ticket_id: String,
    #[serde(with = "crate::time::iso::option")]
    pub opened_at: Option<Millis>,
    #[serde(with = "crate::time::iso::option")]
    pub resolved_at: Option<Millis>,
}

/// Where the customer came from. The earliest-stamped source wins (first touch); a referral
/// code or an explicit `referred_by` trait marks the customer as referred.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Acquisition {
    pub channel: Option<String>,
    /// When the channel was observed (for first-touch ordering).
    #[serde(skip)]
    pub channel_at: Option<Millis>,
    pub referred_by: Option<String>,
    pub referral_code: Option<String>,
}

impl CustomerState {
    pub fn new(id: CustomerId, at: Millis) -> Self {
        Self {
            id,
            user_id: None,
            identities: Vec::new(),
            merged: Vec::new(),
            traits: Map::new(),
            first_seen: at,
            last_seen: at,
            active_days: Vec::new(),
            event_counts: Vec::new(),
            activity: Vec::new(),
            active_months: ActiveMonths::default(),
            default_mrr: DefaultMrr::default(),
            main_currency: None,
            segments: Vec::new(),
            health_overrides: Vec::new(),
            event_total: 0,
            orders: Vec::new(),
            refunds: Vec::new(),
            subscriptions: Vec::new(),
            surveys_shown: Vec::new(),
            survey_answers: Vec::new(),
            tickets: Vec::new(),
            acquisition: Acquisition::default(),
            groups: Vec::new(),
            renewals: Renewals::default(),
        }
    }

    /// Reads subscriptions under the workspace's renewal policy from now on (every kept
    /// subscription view and MRR step recomputed).
    pub fn set_renewals(&mut self, renewals: Renewals) {
        self.renewals = renewals;
        if self.subscriptions.iter().any(|s| s.renewals != renewals) {
            for subscription in &mut self.subscriptions {
                subscription.set_renewals(renewals);
            }
            self.default_mrr = DefaultMrr::of(&self.subscriptions);
        }
    }

    /// Folds one message (already resolved to this customer) into the state.
    /// `name` is the interned event name for track / page / screen calls.
    pub fn apply(&mut self, message: &Message, name: Option<NameId>) {
        let at = message.timestamp;
        let operator = message.kind == MessageType::Track
            && message
                .name
                .as_deref()
                .is_some_and(|n| OPERATOR_EVENTS.contains(&n));
        // What people or Tenure did about the customer does not make them seen.
        if !operator {
            self.first_seen = self.first_seen.min(at);
            self.last_seen = self.last_seen.max(at);
        }
        self.event_total += 1;
        if let Some(campaign) = &message.campaign_source {
            self.observe_channel(campaign, at);
        }
        match message.kind {
            MessageType::Identify => {
                if let Some(traits) = message.traits() {
                    self.apply_traits(traits, at);
                }
            }
            MessageType::Group => {
                if let Some(group) = &message.group_id
                    && !self.groups.contains(group)
                {
                    self.groups.push(group.clone());
                }
            }
            MessageType::Alias => {}
            MessageType::Track | MessageType::Page | MessageType::Screen => {
                // What people did *about* the customer is not the customer's activity.
                if !operator {
                    insert_sorted_unique(&mut self.active_days, day_of(at));
                }
                if let Some(name) = name {
                    self.count_event(name);
                    if !operator {
                        add_activity(&mut self.activity, day_of(at), name, 1);
                        self.index_active_month(day_of(at));
                    }
                }
                if message.kind == MessageType::Track {
                    let event = message.name.as_deref().unwrap_or_default();
                    // Validated on the way in; a stored event that no longer parses (rules
                    // changed) still counts as activity but adds no typed facts.
                    // Properties are read only for events whose meaning needs them (a stored
                    // custom event is never parsed beyond its top-level fields).
                    let properties = if Semantic::is_known(event) {
                        message.properties()
                    } else {
                        None
                    };
                    if let Ok(semantic) = Semantic::parse(event, properties) {
                        self.apply_semantic(semantic, at);
                    }
                }
            }
        }
    }

    fn count_event(&mut self, name: NameId) {
        match self.event_counts.binary_search_by_key(&name, |(n, _)| *n) {
            Ok(i) => self.event_counts[i].1 += 1,
            Err(i) => self.event_counts.insert(i, (name, 1)),
        }
    }

    /// What [`Self::apply`] does with a `Segment Entered` / `Segment Exited` track of this
    /// customer (an operator event: counted, not activity), without reading its properties.
    pub(crate) fn apply_membership(
        &mut self,
        at: Millis,
        name: NameId,
        segment: crate::ids::SegmentId,
        entered: bool,
    ) {
        self.event_total += 1;
        self.count_event(name);
        self.apply_semantic(Semantic::SegmentMembership { segment, entered }, at);
    }

    fn apply_traits(&mut self, traits: &Map<String, Value>, at: Millis) {
        for (key, value) in traits {
            self.traits.insert(key.clone(), value.clone());
        }
        for key in ["acquisition_channel", "utm_source", "heard_about_us"] {
            if let Some(channel) = traits.get(key).and_then(Value::as_str) {
                self.observe_channel(channel, at);
                break;
            }
        }
        if let Some(referrer) = traits.get("referred_by").and_then(Value::as_str) {
            self.acquisition.referred_by = Some(referrer.to_owned());
            self.acquisition.channel = Some("referral".into());
            self.acquisition.channel_at = Some(at);
        }
    }

    fn observe_channel(&mut self, channel: &str, at: Millis) {
        if self.acquisition.referred_by.is_some() {
            return;
        }
        let earlier = self.acquisition.channel_at.is_none_or(|seen| at < seen);
        if earlier {
            self.acquisition.channel = Some(channel.trim().to_ascii_lowercase());
            self.acquisition.channel_at = Some(at);
        }
    }

    fn apply_semantic(&mut self, semantic: Semantic, at: Millis) {
        match semantic {
            Semantic::OrderCompleted { order_id, revenue } => {
                // The same order reported twice (under two message ids) counts once.
                if !self.orders.iter().any(|o| o.order_id == order_id) {
                    let i = self.orders.partition_point(|o| o.at <= at);
                    self.orders.insert(
                        i,
                        Order {
                            order_id,
                            at,
                            revenue,
                        },
                    );
                    self.main_currency = self.first_currency();
                }
            }
            Semantic::OrderRefunded { order_id, amount } => {
                let i = self.refunds.partition_point(|r| r.at <= at);
                self.refunds.insert(
                    i,
                    Refund {
                        order_id,
                        at,
                        amount,
                    },
                );
            }
            Semantic::SubscriptionStarted(t) => {
                self.subscription_fact(t.subscription_id.clone(), at, FactKind::Started(terms(t)))
            }
            Semantic::SubscriptionChanged(t) => {
                self.subscription_fact(t.subscription_id.clone(), at, FactKind::Changed(terms(t)))
            }
            Semantic::SubscriptionRenewed { subscription_id } => {
                self.subscription_fact(subscription_id, at, FactKind::Renewed)
            }
            Semantic::SubscriptionCancelled {
                subscription_id,
                ends_at,
            } => self.subscription_fact(subscription_id, at, FactKind::Cancelled { ends_at }),
            Semantic::SubscriptionPaused { subscription_id } => {
                self.subscription_fact(subscription_id, at, FactKind::Paused)
            }
            Semantic::SubscriptionResumed { subscription_id } => {
                self.subscription_fact(subscription_id, at, FactKind::Resumed)
            }
            Semantic::SurveyShown { .. } => {
                let i = self.surveys_shown.partition_point(|t| *t <= at);
                self.surveys_shown.insert(i, at);
            }
            Semantic::SurveyResponded {
                survey_id,
                scale,
                score,
                comment,
            } => {
                let i = self.survey_answers.partition_point(|a| a.at <= at);
                self.survey_answers.insert(
                    i,
                    SurveyAnswer {
                        survey_id,
                        at,
                        scale,
                        score,
                        comment,
                    },
                );
            }
            Semantic::TicketOpened { ticket_id } => {
                let t = self.ticket(ticket_id);
                t.opened_at = Some(t.opened_at.map_or(at, |o| o.min(at)));
            }
            Semantic::TicketResolved { ticket_id } => {
                let t = self.ticket(ticket_id);
                t.resolved_at = Some(t.resolved_at.map_or(at, |r| r.max(at)));
            }
            Semantic::ReferralCodeUsed { code, referrer_id } => {
                self.acquisition.referral_code = Some(code);
                if referrer_id.is_some() {
                    self.acquisition.referred_by = referrer_id;
                }
                self.acquisition.channel = Some("referral".into());
                self.acquisition.channel_at = Some(at);
            }
            Semantic::HealthOverridden(o) => {
                let o = crate::semantic::HealthOverride { at, ..o };
                let i = self.health_overrides.partition_point(|h| h.at <= at);
                self.health_overrides.insert(i, o);
            }
            Semantic::SegmentMembership { segment, entered } => {
                match (
                    self.segments.binary_search_by_key(&segment, |(s, _)| *s),
                    entered,
                ) {
                    (Err(i), true) => self.segments.insert(i, (segment, at)),
                    (Ok(i), false) => {
                        self.segments.remove(i);
                    }
                    _ => {}
                }
            }
            Semantic::SignedUp
            | Semantic::TrialStarted
            | Semantic::TrialEnded
            | Semantic::Custom => {}
        }
    }

    fn subscription_fact(&mut self, subscription_id: String, at: Millis, kind: FactKind) {
        let fact = SubscriptionFact { at, kind };
        match self
            .subscriptions
            .iter_mut()
            .find(|s| s.subscription_id == subscription_id)
        {
            Some(sub) => sub.insert_fact(fact),
            None => {
                self.subscriptions
                    .push(Subscription::new(subscription_id, fact, self.renewals))
            }
        }
        self.default_mrr = DefaultMrr::of(&self.subscriptions);
        self.main_currency = self.first_currency();
    }

    fn ticket(&mut self, ticket_id: String) -> &mut Ticket {
        let i = match self.tickets.iter().position(|t| t.ticket_id == ticket_id) {
            Some(i) => i,
            None => {
                self.tickets.push(Ticket {
                    ticket_id,
                    opened_at: None,
                    resolved_at: None,
                });
                self.tickets.len() - 1
            }
        };
        &mut self.tickets[i]
    }

    /// Folds another customer (merged by identity resolution) into this one. This
    /// customer's traits win where both have a value.
    pub fn absorb(&mut self, other: CustomerState) {
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        for (k, v) in other.traits {
            self.traits.entry(k).or_insert(v);
        }
        for day in other.active_days {
            insert_sorted_unique(&mut self.active_days, day);
        }
        for (name, count) in other.event_counts {
            match self.event_counts.binary_search_by_key(&name, |(n, _)| *n) {
                Ok(i) => self.event_counts[i].1 += count,
                Err(i) => self.event_counts.insert(i, (name, count)),
            }
        }
        for entry in other.activity {
            add_activity(&mut self.activity, entry.day, entry.name, entry.count);
        }
        self.active_months = ActiveMonths::from_days(self.activity.iter().map(|e| e.day));
        self.event_total += other.event_total;
        for order in other.orders {
            if !self.orders.iter().any(|o| o.order_id == order.order_id) {
                let i = self.orders.partition_point(|o| o.at <= order.at);
                self.orders.insert(i, order);
            }
        }
        for refund in other.refunds {
            let i = self.refunds.partition_point(|r| r.at <= refund.at);
            self.refunds.insert(i, refund);
        }
        for sub in other.subscriptions {
            match self
                .subscriptions
                .iter_mut()
                .find(|s| s.subscription_id == sub.subscription_id)
            {
                Some(mine) => sub.facts.into_iter().for_each(|f| mine.insert_fact(f)),
                None => self.subscriptions.push(sub),
            }
        }
        self.default_mrr = DefaultMrr::of(&self.subscriptions);
        self.main_currency = self.first_currency();
        for o in other.health_overrides {
            let i = self.health_overrides.partition_point(|h| h.at <= o.at);
            self.health_overrides.insert(i, o);
        }
        for shown in other.surveys_shown {
            let i = self.surveys_shown.partition_point(|t| *t <= shown);
            self.surveys_shown.insert(i, shown);
        }
        for answer in other.survey_answers {
            let i = self.survey_answers.partition_point(|a| a.at <= answer.at);
            self.survey_answers.insert(i, answer);
        }
        for ticket in other.tickets {
            let mine = self.ticket(ticket.ticket_id);
            mine.opened_at = match (mine.opened_at, ticket.opened_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            mine.resolved_at = match (mine.resolved_at, ticket.resolved_at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        let theirs = other.acquisition;
        if self.acquisition.referred_by.is_none() && theirs.referred_by.is_some() {
            self.acquisition = theirs;
        } else if self.acquisition.referred_by.is_none()
            && let (Some(at), Some(channel)) = (theirs.channel_at, theirs.channel)
        {
            self.observe_channel(&channel, at);
        }
        for group in other.groups {
            if !self.groups.contains(&group) {
                self.groups.push(group);
            }
        }
        // `other.segments` is dropped on purpose: memberships are the winner's, and the
        // engine re-evaluates the merged customer (docs/segments.md, "Merges").
        self.merged.push(other.id);
        self.merged.extend(other.merged);
    }

    /// Whether the trait's value, as text, equals `value`. Numbers and booleans compare as
    /// JSON: `seats:3` matches 3.
    pub fn trait_equals(&self, key: &str, value: &str) -> bool {
        match self.traits.get(key) {
            Some(Value::String(s)) => s == value,
            Some(other) => value.parse::<Value>().ok().as_ref() == Some(other),
            None => false,
        }
    }

    /// The plan of the subscription that started or changed last (business time).
    pub fn latest_plan(&self) -> Option<&str> {
        self.subscriptions
            .iter()
            .flat_map(|s| s.facts.iter())
            .filter_map(|f| match &f.kind {
                FactKind::Started(t) | FactKind::Changed(t) => Some((f.at, t.plan.as_str())),
                _ => None,
            })
            .max_by_key(|(at, _)| *at)
            .map(|(_, plan)| plan)
    }

    /// Subscriptions as of `at`.
    pub fn subscriptions_at(&self, at: Millis) -> Vec<SubscriptionView> {
        self.subscriptions.iter().map(|s| s.view_at(at)).collect()
    }

    /// Where the customer stands at `at` (what the profile's `status` says), from the
    /// subscriptions' kept phases.
    pub fn status_at(&self, at: Millis) -> crate::subscription::CustomerStatus {
        crate::subscription::status_from(self.subscriptions.iter().map(|s| s.status_at(at).0))
    }

    /// MRR at `at` in one currency, minor units (what [`Self::mrr_at`] gives for it), from
    /// the subscriptions' kept phases.
    pub fn mrr_in(&self, currency: Currency, at: Millis) -> i64 {
        self.subscriptions
            .iter()
            .filter(|s| {
                s.terms_at(at)
                    .is_some_and(|t| t.amount.currency == currency)
            })
            .map(|s| s.status_at(at).1)
            .sum()
    }

    /// The plans of the subscriptions paying or trialing at `at`.
    pub fn plans_at(&self, at: Millis) -> impl Iterator<Item = &str> {
        self.subscriptions
            .iter()
            .filter(move |s| {
                let status = s.status_at(at).0;
                status.is_paying() || status == SubscriptionStatus::Trialing
            })
            .filter_map(move |s| s.terms_at(at).map(|t| t.plan.as_str()))
    }

    /// How many subscriptions are past due at `at`.
    pub fn past_due_at(&self, at: Millis) -> usize {
        self.subscriptions
            .iter()
            .filter(|s| s.status_at(at).0 == SubscriptionStatus::PastDue)
            .count()
    }

    /// The first instant after `at` at which a subscription's status or MRR changes.
    pub fn next_subscription_change(&self, at: Millis) -> Option<Millis> {
        self.subscriptions
            .iter()
            .filter_map(|s| s.next_change_after(at))
            .min()
    }

    /// Whether any subscription pays at `at` (MRR > 0 under the default billing policy),
    /// from the steps kept with the facts when they apply (no replay).
    pub fn paying_at(&self, at: Millis) -> bool {
        if self.subscriptions.is_empty() {
            return false;
        }
        if self.default_mrr.currency.is_some() {
            let steps = &self.default_mrr.steps;
            let i = steps.partition_point(|s| s.at <= at);
            return i > 0 && steps[i - 1].mrr > 0;
        }
        self.mrr_at(at).values().any(|m| *m > 0)
    }

    /// Monthly recurring revenue at `at`, per currency, in minor units.
    pub fn mrr_at(&self, at: Millis) -> BTreeMap<Currency, i64> {
        let mut mrr = BTreeMap::new();
        for view in self.subscriptions_at(at) {
            if let Some(amount) = view.amount {
                *mrr.entry(amount.currency).or_insert(0) += view.mrr;
            }
        }
        mrr.retain(|_, v| *v != 0);
        mrr
    }

    /// The customer's MRR history: each instant at which the total MRR (summed over
    /// subscriptions in the subscriptions' currency) changed, with the new value.
    pub fn mrr_history(&self) -> Vec<(Millis, i64)> {
        let mut points: Vec<Millis> = self
            .subscriptions
            .iter()
            .flat_map(Subscription::change_points)
            .collect();
        points.sort_unstable();
        points.dedup();
        let mut history: Vec<(Millis, i64)> = Vec::new();
        for at in points {
            let total: i64 = self.subscriptions.iter().map(|s| s.view_at(at).mrr).sum();
            if history
                .last()
                .map_or(total != 0, |(_, last)| *last != total)
            {
                history.push((at, total));
            }
        }
        history
    }

    /// Purchases as the customer-base models count them: one per UTC day with at least one
    /// order (values added), in day order, with the first order's currency. Orders in
    /// another currency are left out (the models need one unit of value).
    pub fn purchase_days(&self) -> Option<(Currency, Vec<(i32, i64)>)> {
        let currency = self.orders.first()?.revenue.currency;
        let mut days: Vec<(i32, i64)> = Vec::new();
        for order in self
            .orders
            .iter()
            .filter(|o| o.revenue.currency == currency)
        {
            let day = day_of(order.at);
            match days.last_mut() {
                Some((last, value)) if *last == day => *value += order.revenue.minor,
                _ => days.push((day, order.revenue.minor)),
            }
        }
        Some((currency, days))
    }

    /// The customer's first monthly subscription as a contract for retention models: the
    /// instant it started being paid, the whole months it then stayed paid without a break
    /// (renewals), and how many whole months had passed by `now` (the observation).
    /// `None` without a monthly subscription paid by `now`.
    pub fn first_monthly_tenure(&self, now: Millis) -> Option<(Millis, u32, u32)> {
        let first = self
            .subscriptions
            .iter()
            .filter_map(|s| {
                let (at, terms) = s.facts.iter().find_map(|f| match &f.kind {
                    FactKind::Started(t) => Some((f.at, t)),
                    _ => None,
                })?;
                (terms.interval == Interval::Month)
                    .then_some((at.max(terms.trial_end.unwrap_or(at)), s))
            })
            .min_by_key(|(paid_from, _)| *paid_from)?;
        let (paid_from, subscription) = first;
        if paid_from > now {
            return None;
        }
        let paying = |at: Millis| subscription.view_at(at).status.is_paying();
        let mut observed = 0;
        while add_months(paid_from, observed as i32 + 1) <= now {
            observed += 1;
        }
        let renewals = (1..=observed)
            .take_while(|k| paying(add_months(paid_from, *k as i32)))
            .count() as u32;
        Some((paid_from, renewals, observed))
    }

    /// Net revenue from orders (completed minus refunded) up to `at`, per currency.
    pub fn order_revenue_until(&self, at: Millis) -> BTreeMap<Currency, i64> {
        let mut revenue = BTreeMap::new();
        for order in self.orders.iter().take_while(|o| o.at <= at) {
            *revenue.entry(order.revenue.currency).or_insert(0) += order.revenue.minor;
        }
        for refund in self.refunds.iter().take_while(|r| r.at <= at) {
            let Some(order) = self.orders.iter().find(|o| o.order_id == refund.order_id) else {
                continue;
            };
            let amount = refund
                .amount
                .map_or(order.revenue.minor, |a| a.minor.min(order.revenue.minor));
            *revenue.entry(order.revenue.currency).or_insert(0) -= amount;
        }
        revenue
    }

    pub fn open_tickets(&self) -> usize {
        self.tickets
            .iter()
            .filter(|t| t.opened_at.is_some() && t.resolved_at.is_none())
            .count()
    }

    /// The most recent answered score, if any.
    pub fn latest_score(&self) -> Option<u8> {
        self.survey_answers.iter().rev().find_map(|a| a.score)
    }
}

/// How many times a named event happened on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    pub day: i32,
    pub name: NameId,
    pub count: u32,
}

impl CustomerState {
    fn first_currency(&self) -> Option<Currency> {
        self.subscriptions
            .first()
            .and_then(Subscription::currency)
            .or_else(|| self.orders.first().map(|o| o.revenue.currency))
    }

    /// Keeps `active_months` in step with a day just added to `activity`.
    fn index_active_month(&mut self, day: i32) {
        if !self.active_months.insert_month(month_of_day(day)) {
            // Earlier than every month so far (a late event): rebuild from the activity.
            self.active_months = ActiveMonths::from_days(self.activity.iter().map(|e| e.day));
        }
    }
}

fn add_activity(activity: &mut Vec<DayCount>, day: i32, name: NameId, count: u32) {
    let key = (day, name);
    match activity.last_mut() {
        Some(last) if (last.day, last.name) == key => last.count += count,
        Some(last) if (last.day, last.name) < key => activity.push(DayCount { day, name, count }),
        None => activity.push(DayCount { day, name, count }),
        Some(_) => match activity.binary_search_by_key(&key, |e| (e.day, e.name)) {
            Ok(i) => activity[i].count += count,
            Err(i) => activity.insert(i, DayCount { day, name, count }),
        },
    }
}

fn insert_sorted_unique(days: &mut Vec<i32>, day: i32) {
    if days.last().is_some_and(|last| *last < day) {
        days.push(day);
    } else if let Err(i) = days.binary_search(&day) {
        days.insert(i, day);
    }
}
