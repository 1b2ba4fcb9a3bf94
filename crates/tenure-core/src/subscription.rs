//! A subscription's life: the facts a customer's subscriptions are folded into, replayed
//! under a billing policy into phases (status and MRR over time), and what a customer's
//! subscriptions say of them at an instant (their [`CustomerStatus`]) or over time (MRR
//! steps).
//!
//! Facts keep their business timestamps; every question takes the instant (or the policy)
//! as an argument, so a late event lands in the right place and time passing needs no event.

use std::borrow::Cow;

use serde::Serialize;

use crate::money::{Currency, Money};
use crate::semantic::{Interval, SubscriptionTerms};
use crate::time::{Millis, add_months};

/// One fact in a subscription's life, kept in business-time order.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionFact {
    pub at: Millis,
    pub kind: FactKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FactKind {
    Started(Terms),
    Changed(Terms),
    Renewed,
    Cancelled { ends_at: Option<Millis> },
    Paused,
    Resumed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Terms {
    pub plan: String,
    pub interval: Interval,
    pub amount: Money,
    /// Amount off per interval.
    pub discount: Option<Money>,
    #[serde(with = "crate::time::iso::option")]
    pub trial_end: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub subscription_id: String,
    pub facts: Vec<SubscriptionFact>,
    /// [`Self::phases`] under the kept policy ([`Self::kept_policy`]), kept with the facts: what
    /// segments, health scores and risk features read at an instant (status, MRR, the
    /// next change) by a binary search instead of a replay of every renewal.
    default_phases: Vec<Phase>,
    /// The workspace's renewal policy, under which the kept phases are computed (the
    /// workspace default of `renewals`; every other setting at Tenure's default).
    pub(crate) renewals: Renewals,
}

/// What a subscription looks like at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionView {
    pub subscription_id: String,
    pub status: SubscriptionStatus,
    pub plan: Option<String>,
    pub interval: Option<Interval>,
    pub amount: Option<Money>,
    /// Recurring amount after discount, normalised to a month, minor units (0 while
    /// trialing or paused).
    pub mrr: i64,
    #[serde(with = "crate::time::iso::option")]
    pub started_at: Option<Millis>,
    #[serde(with = "crate::time::iso::option")]
    pub current_period_end: Option<Millis>,
    #[serde(with = "crate::time::iso::option")]
    pub cancelled_at: Option<Millis>,
    #[serde(with = "crate::time::iso::option")]
    pub ends_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Facts exist but none has started it yet (e.g. a change before its start arrived).
    Unknown,
    Trialing,
    Active,
    /// The paid period ended without a renewal; still counted (and in MRR) until the
    /// policy's past-due days have passed.
    PastDue,
    /// Cancelled, still paid up until `ends_at`.
    Cancelling,
    Paused,
    Ended,
}

impl SubscriptionStatus {
    /// Counts in MRR.
    pub fn is_paying(self) -> bool {
        matches!(self, Self::Active | Self::PastDue | Self::Cancelling)
    }
}

/// When a cancelled subscription stops counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnDate {
    /// At the end of the period already paid for (the default).
    #[default]
    PeriodEnd,
    /// At the moment of cancellation.
    Cancellation,
}

/// How discounts enter MRR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Discounts {
    /// MRR is the amount after discount (the default).
    #[default]
    Apply,
    /// MRR is the list amount.
    Ignore,
}

/// Whether a subscription needs a `Subscription Renewed` for each period.
///
/// Sources differ: a billing system sends a renewal every period (Stripe's paid invoice); a
/// CRM export or many pipelines send only start, change and cancel. Reading the second
/// kind as the first turns every subscription into a churn at its first period end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Renewals {
    /// Implicit for a subscription that has never received a `Subscription Renewed`,
    /// explicit from its first one (the default: reads both kinds of source right).
    #[default]
    Auto,
    /// A subscription renews itself at each period end until cancelled, paused or ended.
    Implicit,
    /// Each period needs its renewal; without one the subscription is past due, then churns
    /// after `past_due_days`.
    Explicit,
}

impl Renewals {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Implicit => "implicit",
            Self::Explicit => "explicit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "auto" => Self::Auto,
            "implicit" => Self::Implicit,
            "explicit" => Self::Explicit,
            _ => return None,
        })
    }
}

/// The conventions that turn subscription facts into statuses and MRR. The defaults are
/// Tenure's documented conventions (docs/metrics.md); every one is a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BillingPolicy {
    pub churn_date: ChurnDate,
    /// A subscription whose paid period ended without renewal churns this many days after
    /// the period end (at that instant, not retroactively). Only under explicit renewals.
    pub past_due_days: u32,
    pub discounts: Discounts,
    pub renewals: Renewals,
}

impl Default for BillingPolicy {
    fn default() -> Self {
        Self {
            churn_date: ChurnDate::PeriodEnd,
            past_due_days: 30,
            discounts: Discounts::Apply,
            renewals: Renewals::Auto,
        }
    }
}

/// One stretch of a subscription's life during which its status and MRR are constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub from: Millis,
    pub status: SubscriptionStatus,
    pub mrr: i64,
}

/// The state a replay of a subscription's facts has reached.
#[derive(Default, Clone)]
struct Life<'a> {
    terms: Option<&'a Terms>,
    paused: bool,
    started_at: Option<Millis>,
    /// The end of the period paid for. Under implicit renewals, an end that has passed
    /// stands for the next one in the same cycle ([`Self::roll_to`]).
    current_period_end: Option<Millis>,
    /// The start of the billing cycle the period ends count from: a period end is always
    /// this plus a whole number of intervals (anchored, as billing systems do: Jan 31,
    /// Feb 28, Mar 31, never drifting to the 28th).
    cycle_start: Option<Millis>,
    cancelled_at: Option<Millis>,
    ends_at: Option<Millis>,
    /// A `Subscription Renewed` has been seen (makes `Renewals::Auto` explicit).
    renewed: bool,
}

impl<'a> Life<'a> {
    /// Whether the subscription renews itself now under `policy`.
    fn implicit(&self, policy: &BillingPolicy) -> bool {
        match policy.renewals {
            Renewals::Implicit => true,
            Renewals::Explicit => false,
            Renewals::Auto => !self.renewed,
        }
    }

    /// Under implicit renewals, moves a period end that is at or before `at` along its
    /// cycle to the first end after `at`; returns the cycle boundary before it (the last
    /// implicit renewal), if it moved. The cycle runs on through a pause (as a paused
    /// billing subscription's does); a scheduled end stops it.
    fn roll_to(&mut self, at: Millis, policy: &BillingPolicy) -> Option<Millis> {
        if !self.implicit(policy) || self.ends_at.is_some() {
            return None;
        }
        let interval = self.terms?.interval;
        let (start, end) = (self.cycle_start?, self.current_period_end?);
        if end > at {
            return None;
        }
        // A first guess from the longest such interval, then forward to the first end
        // after `at`: a few steps however long the subscription has run.
        let longest = match interval {
            Interval::Day => crate::time::MILLIS_PER_DAY,
            Interval::Week => 7 * crate::time::MILLIS_PER_DAY,
            Interval::Month => 31 * crate::time::MILLIS_PER_DAY,
            Interval::Year => 366 * crate::time::MILLIS_PER_DAY,
        };
        let mut n = u32::try_from((at - start) / longest).unwrap_or(1).max(1);
        while advance_n(start, interval, n) <= at {
            n += 1;
        }
        self.current_period_end = Some(advance_n(start, interval, n));
        Some(advance_n(start, interval, n - 1))
    }

    fn apply(&mut self, fact: &'a SubscriptionFact, policy: &BillingPolicy) {
        let rolled_from = self.roll_to(fact.at, policy);
        match &fact.kind {
            FactKind::Started(t) => {
                // A second start (re-subscription under the same id) opens a new life.
                self.terms = Some(t);
                self.paused = false;
                self.started_at = Some(fact.at);
                self.cancelled_at = None;
                self.ends_at = None;
                let paid_from = t.trial_end.filter(|e| *e > fact.at).unwrap_or(fact.at);
                self.cycle_start = Some(paid_from);
                self.current_period_end = Some(advance(paid_from, t.interval));
            }
            FactKind::Changed(t) => {
                self.terms = Some(t);
                if self.current_period_end.is_none() {
                    self.cycle_start = Some(fact.at);
                    self.current_period_end = Some(advance(fact.at, t.interval));
                }
            }
            FactKind::Renewed => {
                if let (Some(t), Some(end)) = (self.terms, self.current_period_end) {
                    match rolled_from {
                        // The first renewal of a subscription that renewed itself: it pays
                        // for the period of the cycle's boundary nearest to it (just after
                        // the boundary: this period; just before: the next). The cycle
                        // keeps its anchor.
                        Some(previous) if fact.at - previous <= end - fact.at => {}
                        Some(_) => {
                            let start = self.cycle_start.unwrap_or(end);
                            let mut n = 1;
                            while advance_n(start, t.interval, n) <= end {
                                n += 1;
                            }
                            self.current_period_end = Some(advance_n(start, t.interval, n));
                        }
                        None => {
                            let from = end.max(fact.at);
                            self.cycle_start = Some(from);
                            self.current_period_end = Some(advance(from, t.interval));
                        }
                    }
                }
                self.renewed = true;
                self.cancelled_at = None;
                self.ends_at = None;
            }
            FactKind::Cancelled { ends_at } => {
                self.cancelled_at = Some(fact.at);
                let in_trial = self
                    .terms
                    .and_then(|t| t.trial_end)
                    .is_some_and(|e| e > fact.at);
                let end = if in_trial || policy.churn_date == ChurnDate::Cancellation {
                    Some(fact.at)
                } else {
                    ends_at.or(self.current_period_end)
                };
                self.ends_at = Some(end.unwrap_or(fact.at).max(fact.at));
            }
            FactKind::Paused => self.paused = true,
            FactKind::Resumed => self.paused = false,
        }
    }

    /// The instant an unrenewed, uncancelled subscription churns for non-payment (never
    /// while it renews itself).
    fn past_due_end(&self, policy: &BillingPolicy) -> Option<Millis> {
        if self.ends_at.is_some() || self.paused || self.implicit(policy) {
            return None;
        }
        let end = self.current_period_end?;
        Some(end + i64::from(policy.past_due_days) * crate::time::MILLIS_PER_DAY)
    }

    fn status(&self, at: Millis, policy: &BillingPolicy) -> (SubscriptionStatus, i64) {
        let Some(t) = self.terms else {
            return (SubscriptionStatus::Unknown, 0);
        };
        let ended = self.ends_at.is_some_and(|e| e <= at)
            || self.past_due_end(policy).is_some_and(|e| e <= at);
        let trialing = t.trial_end.is_some_and(|e| e > at);
        let status = if ended {
            SubscriptionStatus::Ended
        } else if self.paused {
            SubscriptionStatus::Paused
        } else if trialing {
            SubscriptionStatus::Trialing
        } else if self.cancelled_at.is_some() {
            SubscriptionStatus::Cancelling
        } else if self.current_period_end.is_some_and(|e| e <= at) && !self.implicit(policy) {
            SubscriptionStatus::PastDue
        } else {
            SubscriptionStatus::Active
        };
        let mrr = if status.is_paying() {
            let discount = match policy.discounts {
                Discounts::Apply => t.discount.map_or(0, |d| d.minor),
                Discounts::Ignore => 0,
            };
            t.interval.monthly(t.amount.minor - discount)
        } else {
            0
        };
        (status, mrr)
    }

    /// Instants after the last applied fact at which the status may change by itself.
    fn scheduled(&self, policy: &BillingPolicy) -> [Option<Millis>; 4] {
        [
            self.terms.and_then(|t| t.trial_end),
            self.ends_at,
            self.current_period_end,
            self.past_due_end(policy),
        ]
    }
}

impl Subscription {
    pub(crate) fn new(subscription_id: String, fact: SubscriptionFact, renewals: Renewals) -> Self {
        let mut subscription = Self {
            subscription_id,
            facts: vec![fact],
            default_phases: Vec::new(),
            renewals,
        };
        subscription.default_phases = subscription.phases(&subscription.kept_policy());
        subscription
    }

    /// The policy the kept phases follow: Tenure's defaults with the workspace's renewals.
    /// Profiles, health, segments and risk read the subscription under it.
    pub fn kept_policy(&self) -> BillingPolicy {
        BillingPolicy {
            renewals: self.renewals,
            ..BillingPolicy::default()
        }
    }

    /// Follows a new workspace renewal policy (the kept phases recomputed).
    pub(crate) fn set_renewals(&mut self, renewals: Renewals) {
        if self.renewals != renewals {
            self.renewals = renewals;
            self.default_phases = self.phases(&self.kept_policy());
        }
    }

    /// The whole life under the default policy (as [`Self::phases`] gives it, kept).
    pub fn default_phases(&self) -> &[Phase] {
        &self.default_phases
    }

    /// [`Self::phases`] under `policy`: the kept ones under the default policy, a replay
    /// under any other.
    pub fn phases_under(&self, policy: &BillingPolicy) -> std::borrow::Cow<'_, [Phase]> {
        if *policy == self.kept_policy() {
            std::borrow::Cow::Borrowed(&self.default_phases)
        } else {
            std::borrow::Cow::Owned(self.phases(policy))
        }
    }

    /// Status and MRR at `at` under the default policy: what [`Self::view_at`] says, from
    /// the kept phases (no replay, no allocation).
    pub fn status_at(&self, at: Millis) -> (SubscriptionStatus, i64) {
        let i = self.default_phases.partition_point(|p| p.from <= at);
        match i.checked_sub(1).map(|k| self.default_phases[k]) {
            Some(phase) => (phase.status, phase.mrr),
            None => (SubscriptionStatus::Unknown, 0),
        }
    }

    /// The terms in force at `at`: the latest start or change stamped by then.
    pub fn terms_at(&self, at: Millis) -> Option<&Terms> {
        let end = self.facts.partition_point(|f| f.at <= at);
        self.facts[..end].iter().rev().find_map(|f| match &f.kind {
            FactKind::Started(t) | FactKind::Changed(t) => Some(t),
            _ => None,
        })
    }

    /// The first instant after `at` at which the status or MRR changes under the default
    /// policy (a fact stamped later, a trial or period end, a scheduled cancellation).
    pub fn next_change_after(&self, at: Millis) -> Option<Millis> {
        let i = self.default_phases.partition_point(|p| p.from <= at);
        self.default_phases.get(i).map(|p| p.from)
    }

    /// Replays the facts up to `at` (inclusive) and describes the subscription then, under
    /// the default [`BillingPolicy`].
    pub fn view_at(&self, at: Millis) -> SubscriptionView {
        self.view_at_with(at, &self.kept_policy())
    }

    pub fn view_at_with(&self, at: Millis, policy: &BillingPolicy) -> SubscriptionView {
        let mut life = Life::default();
        for fact in self.facts.iter().take_while(|f| f.at <= at) {
            life.apply(fact, policy);
        }
        let (status, mrr) = life.status(at, policy);
        // The period a self-renewing subscription is in at `at`.
        life.roll_to(at, policy);
        let t = life.terms;
        let ends_at = match status {
            SubscriptionStatus::Ended if life.ends_at.is_none_or(|e| e > at) => {
                life.past_due_end(policy)
            }
            _ => life.ends_at,
        };
        SubscriptionView {
            subscription_id: self.subscription_id.clone(),
            status,
            plan: t.map(|t| t.plan.clone()),
            interval: t.map(|t| t.interval),
            amount: t.map(|t| t.amount),
            mrr,
            started_at: life.started_at,
            current_period_end: life.current_period_end,
            cancelled_at: life.cancelled_at,
            ends_at,
        }
    }

    /// The whole life as a step function: each instant the status or MRR changes, with the
    /// new values (the first phase starts at the first fact). One pass over the facts.
    pub fn phases(&self, policy: &BillingPolicy) -> Vec<Phase> {
        let mut phases: Vec<Phase> = Vec::new();
        let mut push = |at: Millis, (status, mrr): (SubscriptionStatus, i64)| {
            if phases
                .last()
                .is_none_or(|p| p.status != status || p.mrr != mrr)
            {
                phases.push(Phase {
                    from: at,
                    status,
                    mrr,
                });
            }
        };
        let mut life = Life::default();
        let mut i = 0;
        while i < self.facts.len() {
            let at = self.facts[i].at;
            while i < self.facts.len() && self.facts[i].at == at {
                life.apply(&self.facts[i], policy);
                i += 1;
            }
            push(at, life.status(at, policy));
            let next = self.facts.get(i).map_or(Millis::MAX, |f| f.at);
            // Scheduled changes before the next fact, in time order (no allocation: this
            // runs once per fact for every customer in every report).
            let mut pending = life.scheduled(policy);
            pending.sort_unstable_by_key(|t| t.unwrap_or(Millis::MAX));
            for t in pending.into_iter().flatten() {
                if t > at && t < next {
                    push(t, life.status(t, policy));
                }
            }
        }
        phases
    }

    /// The currency of the subscription's latest terms.
    pub fn currency(&self) -> Option<Currency> {
        self.facts.iter().rev().find_map(|f| match &f.kind {
            FactKind::Started(t) | FactKind::Changed(t) => Some(t.amount.currency),
            _ => None,
        })
    }

    /// Every instant at which this subscription's MRR may change under the default policy
    /// (facts, trial ends and scheduled ends), sorted.
    pub(crate) fn change_points(&self) -> impl Iterator<Item = Millis> + '_ {
        self.default_phases.iter().map(|p| p.from)
    }

    pub(crate) fn insert_fact(&mut self, fact: SubscriptionFact) {
        // Stable for equal instants: log order breaks ties.
        let at = self.facts.partition_point(|f| f.at <= fact.at);
        self.facts.insert(at, fact);
        self.default_phases = self.phases(&self.kept_policy());
    }
}

/// `n` intervals after `from`, each month counted from `from` itself (so the day of the
/// month is kept where the month has it).
fn advance_n(from: Millis, interval: Interval, n: u32) -> Millis {
    let n_i64 = i64::from(n);
    match interval {
        Interval::Day => from + n_i64 * crate::time::MILLIS_PER_DAY,
        Interval::Week => from + 7 * n_i64 * crate::time::MILLIS_PER_DAY,
        Interval::Month => add_months(from, i32::try_from(n).unwrap_or(i32::MAX)),
        Interval::Year => add_months(
            from,
            i32::try_from(n.saturating_mul(12)).unwrap_or(i32::MAX),
        ),
    }
}

fn advance(from: Millis, interval: Interval) -> Millis {
    match interval {
        Interval::Day => from + crate::time::MILLIS_PER_DAY,
        Interval::Week => from + 7 * crate::time::MILLIS_PER_DAY,
        Interval::Month => add_months(from, 1),
        Interval::Year => add_months(from, 12),
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

pub fn customer_status(subscriptions: &[SubscriptionView]) -> CustomerStatus {
    status_from(subscriptions.iter().map(|v| v.status))
}

/// Where a customer stands, from the status of each of their subscriptions at one instant.
pub fn status_from(statuses: impl Iterator<Item = SubscriptionStatus>) -> CustomerStatus {
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

/// One step of a customer's MRR: from `at` on, the customer pays `mrr` (reporting currency,
/// minor units) and, when `mrr` is 0, `paused` says whether a paused subscription remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MrrStep {
    pub at: Millis,
    pub mrr: i64,
    pub paused: bool,
}

/// The customer's MRR as a step function over all subscriptions, converted by `convert`
/// (a subscription in a currency without a rate contributes nothing).
pub fn mrr_steps(
    subscriptions: &[Subscription],
    policy: &BillingPolicy,
    mut convert: impl FnMut(Currency, i64) -> Option<i64>,
) -> Vec<MrrStep> {
    let mut steps: Vec<MrrStep> = Vec::new();
    // Most customers have one subscription: its phases are the steps.
    if let [only] = subscriptions {
        let currency = only.currency();
        for phase in only.phases_under(policy).iter() {
            let mrr = match currency {
                Some(c) if phase.mrr != 0 => convert(c, phase.mrr).unwrap_or(0),
                _ => 0,
            };
            push_step(
                &mut steps,
                phase.from,
                mrr,
                phase.status == SubscriptionStatus::Paused,
            );
        }
        return steps;
    }
    let lives: Vec<(Cow<'_, [Phase]>, Option<Currency>)> = subscriptions
        .iter()
        .map(|s| (s.phases_under(policy), s.currency()))
        .collect();
    let mut points: Vec<Millis> = lives
        .iter()
        .flat_map(|(p, _)| p.iter().map(|p| p.from))
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut cursors = vec![0usize; lives.len()];
    for at in points {
        let mut mrr = 0i64;
        let mut paused = false;
        for (k, (phases, currency)) in lives.iter().enumerate() {
            while cursors[k] < phases.len() && phases[cursors[k]].from <= at {
                cursors[k] += 1;
            }
            let Some(phase) = cursors[k].checked_sub(1).map(|i| phases[i]) else {
                continue;
            };
            if phase.status == SubscriptionStatus::Paused {
                paused = true;
            }
            if phase.mrr != 0
                && let Some(currency) = currency
            {
                mrr += convert(*currency, phase.mrr).unwrap_or(0);
            }
        }
        push_step(&mut steps, at, mrr, paused);
    }
    steps
}

/// Appends a step when MRR or the paused flag changes (before the first step: 0, not paused).
fn push_step(steps: &mut Vec<MrrStep>, at: Millis, mrr: i64, paused: bool) {
    let paused = paused && mrr == 0;
    let same = steps
        .last()
        .map_or(mrr == 0 && !paused, |s| s.mrr == mrr && s.paused == paused);
    if !same {
        steps.push(MrrStep { at, mrr, paused });
    }
}

pub(crate) fn terms(t: SubscriptionTerms) -> Terms {
    Terms {
        plan: t.plan,
        interval: t.interval,
        amount: t.amount,
        discount: t.discount,
        trial_end: t.trial_end,
    }
}

/// A customer's MRR steps under the default billing policy, when all their subscriptions
/// are in one currency (`currency`); `None` for a customer without subscriptions, or whose
/// subscriptions are in several currencies (a report then replays them itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultMrr {
    pub currency: Option<Currency>,
    pub steps: Vec<MrrStep>,
}

impl DefaultMrr {
    pub(crate) fn of(subscriptions: &[Subscription]) -> Self {
        let mut currencies = subscriptions.iter().filter_map(Subscription::currency);
        let Some(currency) = currencies.next() else {
            return Self::default();
        };
        if currencies.any(|c| c != currency) {
            return Self::default();
        }
        Self {
            currency: Some(currency),
            steps: mrr_steps(
                subscriptions,
                &subscriptions
                    .first()
                    .map_or_else(BillingPolicy::default, Subscription::kept_policy),
                |_, minor| Some(minor),
            ),
        }
    }
}
