//! Retention metrics: exact aggregates over the engine's customer states, with the
//! conventions of `docs/metrics.md` (one place defines each number; the report, the API and
//! the dashboard all call these functions).
//!
//! A [`Query`] names the period grain, the date range, the filters and the settings. It is
//! parsed from `name=value` pairs, so the CLI flags and the HTTP query parameters are the
//! same words with the same errors. [`Dataset::prepare`] turns the filtered customers into
//! per-customer step functions (MRR under the query's billing policy, in the reporting
//! currency) once; every table is then a data-parallel fold over the prepared customers.

mod activity;
mod cohorts;
mod fold;
mod query;
mod report;
mod subscriptions;
mod transactions;
mod value;
mod voice;

use std::borrow::Cow;
use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::customer::CustomerState;
use crate::money::Currency;
use crate::subscription::{MrrStep, mrr_steps};
use crate::time::{
    MILLIS_PER_DAY, Millis, civil_from_days, day_of, days_from_civil, format_instant,
};

pub use activity::{
    ActivityCohort, ActivityRetention, CohortKind, EventIds, LifecycleRow, ReturnMode,
    StickinessRow, Window, activity_retention, lifecycle, stickiness,
};
pub use cohorts::{CohortCell, CohortRow, CohortTable, RetentionAverage, subscription_cohorts};
pub use query::{ActivityOptions, Filter, PARAMETERS, Query, QueryError, Settings};
pub use report::{Report, Table};
pub use subscriptions::{SubscriptionRow, subscription_metrics};
pub use transactions::{TransactionRow, transaction_metrics};
pub use value::{
    ChannelRow, Concentration, LorenzPoint, ReferralRow, Spend, WhatIf, WhatIfPoint,
    channel_metrics, concentration, referral_share, revenue_by_customer, what_if,
};
pub use voice::{NpsBreakdownRow, Verbatim, VoiceRow, nps_breakdown, verbatims, voice_metrics};

/// A period length for grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grain {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    #[default]
    Month,
    Quarter,
    Year,
}

impl Grain {
    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Year => "year",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            "quarter" => Self::Quarter,
            "year" => Self::Year,
            _ => return None,
        })
    }

    /// The first day (day number) of the period containing `day`.
    /// How many periods from the one containing `first` to the one containing `last`,
    /// counting no further than `cap` (so a huge range costs `cap` steps, not its length).
    pub fn periods_between(self, first: i32, last: i32, cap: usize) -> usize {
        let mut day = self.floor_day(first);
        let mut periods = 0;
        while day <= last && periods < cap {
            periods += 1;
            day = self.next_day(day);
        }
        periods
    }

    pub fn floor_day(self, day: i32) -> i32 {
        match self {
            Self::Day => day,
            // 1970-01-01 was a Thursday: day 4 was a Monday.
            Self::Week => day - (day - 4).rem_euclid(7),
            Self::Month | Self::Quarter | Self::Year => {
                let (y, m, _) = civil_from_days(day);
                let m = match self {
                    Self::Month => m,
                    Self::Quarter => (m - 1) / 3 * 3 + 1,
                    _ => 1,
                };
                days_from_civil(y, m, 1)
            }
        }
    }

    /// The first day of the period after the one starting on `start`.
    pub fn next_day(self, start: i32) -> i32 {
        let months = match self {
            Self::Day => return start + 1,
            Self::Week => return start + 7,
            Self::Month => 1,
            Self::Quarter => 3,
            Self::Year => 12,
        };
        let (y, m, _) = civil_from_days(start);
        let index = y * 12 + (m as i32 - 1) + months;
        days_from_civil(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
    }

    pub fn floor(self, at: Millis) -> Millis {
        i64::from(self.floor_day(day_of(at))) * MILLIS_PER_DAY
    }

    /// Months in one period, for converting monthly amounts (MRR) to per-period ones.
    pub fn months(self) -> f64 {
        match self {
            Self::Day => 12.0 / 365.0,
            Self::Week => 12.0 / 52.0,
            Self::Month => 1.0,
            Self::Quarter => 3.0,
            Self::Year => 12.0,
        }
    }

    /// The period's name: `2026-03-05` (day), `2026-W10` (ISO week), `2026-03`, `2026-Q1`,
    /// `2026`.
    pub fn label(self, start_day: i32) -> String {
        let (y, m, d) = civil_from_days(start_day);
        match self {
            Self::Day => format!("{y:04}-{m:02}-{d:02}"),
            Self::Week => {
                // The ISO year is the year of the week's Thursday.
                let thursday = start_day + 3;
                let (iso_year, _, _) = civil_from_days(thursday);
                let week = (thursday - days_from_civil(iso_year, 1, 1)) / 7 + 1;
                format!("{iso_year:04}-W{week:02}")
            }
            Self::Month => format!("{y:04}-{m:02}"),
            Self::Quarter => format!("{y:04}-Q{}", (m - 1) / 3 + 1),
            Self::Year => format!("{y:04}"),
        }
    }

    /// Parses a period label back to the period's first day (for the cohort filter).
    pub fn parse_label(self, text: &str) -> Option<i32> {
        let num = |s: &str| s.parse::<u32>().ok();
        let day = match self {
            Self::Day => {
                let ms = crate::time::parse_instant(text)?;
                day_of(ms)
            }
            Self::Week => {
                let (y, w) = text.split_once("-W")?;
                let (y, w) = (y.parse::<i32>().ok()?, num(w)?);
                if !(1..=53).contains(&w) {
                    return None;
                }
                let jan4 = days_from_civil(y, 1, 4);
                Self::Week.floor_day(jan4) + 7 * (w as i32 - 1)
            }
            Self::Month => {
                let (y, m) = text.split_once('-')?;
                let m = num(m).filter(|m| (1..=12).contains(m))?;
                days_from_civil(y.parse().ok()?, m, 1)
            }
            Self::Quarter => {
                let (y, q) = text.split_once("-Q")?;
                let q = num(q).filter(|q| (1..=4).contains(q))?;
                days_from_civil(y.parse().ok()?, (q - 1) * 3 + 1, 1)
            }
            Self::Year => days_from_civil(text.parse().ok()?, 1, 1),
        };
        (self.label(day) == text).then_some(day)
    }
}

/// The periods a query covers, oldest first.
#[derive(Debug, Clone)]
pub struct Periods {
    pub grain: Grain,
    /// First day of each period, plus the first day after the last period.
    bounds: Vec<i32>,
    /// The instant the report is evaluated at; values for a period that has not ended yet
    /// are taken at this instant.
    pub as_of: Millis,
}

impl Periods {
    /// The periods from the one containing `from` to the one containing `to`.
    pub fn new(grain: Grain, from: Millis, to: Millis) -> Self {
        let mut day = grain.floor_day(day_of(from));
        let last = day_of(to);
        let mut bounds = vec![day];
        loop {
            day = grain.next_day(day);
            bounds.push(day);
            if day > last {
                break;
            }
        }
        Self {
            grain,
            bounds,
            as_of: to,
        }
    }

    /// The same grain extended `n` periods further back (for trailing averages).
    pub fn extended_back(&self, n: usize) -> Self {
        let mut bounds = self.bounds.clone();
        for _ in 0..n {
            let first = bounds[0];
            let previous = self.grain.floor_day(first - 1);
            bounds.insert(0, previous);
        }
        Self {
            grain: self.grain,
            bounds,
            as_of: self.as_of,
        }
    }

    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn start_day(&self, i: usize) -> i32 {
        self.bounds[i]
    }

    pub fn start(&self, i: usize) -> Millis {
        i64::from(self.bounds[i]) * MILLIS_PER_DAY
    }

    pub fn end(&self, i: usize) -> Millis {
        i64::from(self.bounds[i + 1]) * MILLIS_PER_DAY
    }

    /// The instant a period's closing values are read at: just before its end, or just
    /// after `as_of` for the period still running.
    pub fn close(&self, i: usize) -> Millis {
        self.end(i).min(self.as_of + 1)
    }

    /// Whether the period had ended by `as_of`.
    pub fn complete(&self, i: usize) -> bool {
        self.end(i) <= self.as_of + 1
    }

    pub fn label(&self, i: usize) -> String {
        self.grain.label(self.bounds[i])
    }

    /// The index of the period containing `at`, if it is covered.
    pub fn index_of(&self, at: Millis) -> Option<usize> {
        self.index_of_day(day_of(at))
    }

    pub fn index_of_day(&self, day: i32) -> Option<usize> {
        if day < self.bounds[0] || day >= self.bounds[self.bounds.len() - 1] {
            return None;
        }
        Some(self.bounds.partition_point(|b| *b <= day) - 1)
    }

    /// The row header fields every per-period table carries.
    pub fn header(&self, i: usize) -> PeriodHeader {
        PeriodHeader {
            period: self.label(i),
            period_start: format_instant(self.start(i)),
            period_end: format_instant(self.end(i)),
            complete: self.complete(i),
        }
    }
}

/// Which period a row describes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodHeader {
    pub period: String,
    pub period_start: String,
    /// Exclusive.
    pub period_end: String,
    /// False while the period is still running (its values are as of the report).
    pub complete: bool,
}

/// A customer ready for aggregation.
#[derive(Debug)]
pub struct Prepared<'a> {
    pub state: &'a CustomerState,
    /// Changes of the customer's MRR, in time order; before the first step MRR is 0
    /// (borrowed from the state when the engine's own steps apply to the query).
    pub mrr: Cow<'a, [MrrStep]>,
    /// The first instant the customer paid anything.
    pub first_paid: Option<Millis>,
    /// The first instant the customer became a customer: paid a subscription or completed
    /// an order (`None` when prepared without MRR).
    pub first_customer: Option<Millis>,
    /// An amount of the customer's had no rate to the reporting currency (left out).
    pub missing_rate: bool,
}

impl Prepared<'_> {
    /// MRR and paused flag in force just before `at`.
    pub fn before(&self, at: Millis) -> (i64, bool) {
        let i = self.mrr.partition_point(|s| s.at < at);
        match i {
            0 => (0, false),
            _ => (self.mrr[i - 1].mrr, self.mrr[i - 1].paused),
        }
    }

    /// Whether the customer paid at any instant in `[from, to)`.
    pub fn paid_within(&self, from: Millis, to: Millis) -> bool {
        if self.before(from).0 > 0 {
            return true;
        }
        let i = self.mrr.partition_point(|s| s.at < from);
        self.mrr[i..]
            .iter()
            .take_while(|s| s.at < to)
            .any(|s| s.mrr > 0)
    }

    /// The last instant before `at` at which the customer stopped paying, if they ever did.
    pub fn last_stopped_before(&self, at: Millis) -> Option<Millis> {
        let i = self.mrr.partition_point(|s| s.at < at);
        let steps = &self.mrr[..i];
        steps
            .windows(2)
            .rev()
            .find(|w| w[0].mrr > 0 && w[1].mrr == 0)
            .map(|w| w[1].at)
    }
}

/// Amounts in other currencies than the reporting one, converted with the query's rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrencyInfo {
    /// The reporting currency (the query's, or the most used one).
    pub currency: String,
    /// Rates used: units of the reporting currency per unit of each other currency.
    pub rates: BTreeMap<String, f64>,
    /// Customers left out of money metrics because an amount had no rate.
    pub customers_without_rate: usize,
}

/// The filtered customers of one query, prepared once.
pub struct Dataset<'a> {
    pub customers: Vec<Prepared<'a>>,
    pub currency: CurrencyInfo,
    reporting: Option<Currency>,
    rates: BTreeMap<Currency, f64>,
    policy: crate::subscription::BillingPolicy,
    filter: Option<Filter>,
    with_mrr: bool,
}

impl<'a> Dataset<'a> {
    /// Prepares customers for every table.
    pub fn prepare(customers: &[&'a CustomerState], query: &Query) -> Self {
        Self::prepare_with(customers, query, true, true)
    }

    /// Prepares customers; without `with_mrr`, MRR step functions are left empty (enough for
    /// activity, transactions and voice, which never read them).
    pub fn prepare_for(customers: &[&'a CustomerState], query: &Query, with_mrr: bool) -> Self {
        Self::prepare_with(customers, query, with_mrr, true)
    }

    /// As [`Self::prepare_for`]; without `needs_money` (and without MRR) the reporting
    /// currency is not looked for (activity tables).
    pub fn prepare_with(
        customers: &[&'a CustomerState],
        query: &Query,
        with_mrr: bool,
        needs_money: bool,
    ) -> Self {
        let mut data = Self::frame(customers, query, with_mrr, needs_money);
        data.customers = customers
            .par_iter()
            .filter_map(|c| data.prepare_one(c))
            .collect();
        data.currency.customers_without_rate =
            data.customers.iter().filter(|p| p.missing_rate).count();
        data
    }

    /// The query's reporting currency, rates and settings, with no customer prepared yet:
    /// [`Self::prepare_one`] prepares them one at a time (the report does it inside its
    /// single pass, so the prepared customers are never all held at once).
    pub(crate) fn frame(
        customers: &[&'a CustomerState],
        query: &Query,
        with_mrr: bool,
        needs_money: bool,
    ) -> Self {
        let reporting = query.settings.currency.or_else(|| {
            // Activity tables never read money; skip the pass.
            if with_mrr || needs_money {
                most_used_currency(customers)
            } else {
                None
            }
        });
        let rates = query.settings.rates.clone();
        Self {
            customers: Vec::new(),
            currency: CurrencyInfo {
                currency: reporting.map_or_else(|| "USD".to_owned(), |c| c.as_str().to_owned()),
                rates: rates
                    .iter()
                    .map(|(c, r)| (c.as_str().to_owned(), *r))
                    .collect(),
                customers_without_rate: 0,
            },
            reporting,
            rates,
            policy: query.settings.policy,
            // An empty filter must not read the states: activity tables then touch each
            // state once, in their own pass.
            filter: (!query.filter.is_empty()).then(|| query.filter.clone()),
            with_mrr,
        }
    }

    /// The customer prepared for the tables, or `None` when the query's filters leave them
    /// out.
    pub(crate) fn prepare_one(&self, c: &'a CustomerState) -> Option<Prepared<'a>> {
        if self.filter.as_ref().is_some_and(|f| !f.matches(c)) {
            return None;
        }
        if !self.with_mrr {
            return Some(Prepared {
                state: c,
                mrr: Cow::Borrowed(&[]),
                first_paid: None,
                first_customer: None,
                missing_rate: false,
            });
        }
        let mut missing_rate = false;
        let cached = &c.default_mrr;
        let mrr = if c.subscriptions.is_empty() {
            Cow::Borrowed(&[][..])
        } else if c.subscriptions[0].kept_policy() == self.policy
            && cached.currency.is_some()
            && (self.reporting.is_none() || cached.currency == self.reporting)
        {
            // The engine keeps these steps with the facts: no replay.
            Cow::Borrowed(cached.steps.as_slice())
        } else {
            Cow::Owned(mrr_steps(
                &c.subscriptions,
                &self.policy,
                |currency, minor| {
                    self.convert(currency, minor).or_else(|| {
                        missing_rate = true;
                        None
                    })
                },
            ))
        };
        let first_paid = mrr.iter().find(|s| s.mrr > 0).map(|s| s.at);
        let first_order = c.orders.first().map(|o| o.at);
        let first_customer = match (first_paid, first_order) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Some(Prepared {
            state: c,
            mrr,
            first_paid,
            first_customer,
            missing_rate,
        })
    }

    /// An amount in the reporting currency, minor units; `None` without a rate.
    pub fn convert(&self, currency: Currency, minor: i64) -> Option<i64> {
        convert(self.reporting, &self.rates, currency, minor)
    }

    /// The conversion to the reporting currency, for a table's plan to own.
    pub(crate) fn conversion(&self) -> Conversion {
        Conversion {
            reporting: self.reporting,
            rates: self.rates.clone(),
        }
    }
}

/// Amounts to the reporting currency ([`Dataset::convert`]).
#[derive(Debug, Clone)]
pub(crate) struct Conversion {
    reporting: Option<Currency>,
    rates: BTreeMap<Currency, f64>,
}

impl Conversion {
    pub(crate) fn convert(&self, currency: Currency, minor: i64) -> Option<i64> {
        convert(self.reporting, &self.rates, currency, minor)
    }
}

fn convert(
    reporting: Option<Currency>,
    rates: &BTreeMap<Currency, f64>,
    currency: Currency,
    minor: i64,
) -> Option<i64> {
    let Some(reporting) = reporting else {
        return Some(minor);
    };
    if currency == reporting {
        return Some(minor);
    }
    let rate = rates.get(&currency)?;
    let units = minor as f64 / 10f64.powi(currency.exponent() as i32);
    Some((units * rate * 10f64.powi(reporting.exponent() as i32)).round() as i64)
}

/// The currency most customers pay in: each customer counts once, with the currency of their
/// first subscription (else their first order).
fn most_used_currency(customers: &[&CustomerState]) -> Option<Currency> {
    let counts = customers
        .par_iter()
        .fold(BTreeMap::<Currency, usize>::new, |mut counts, c| {
            if let Some(currency) = c.main_currency {
                *counts.entry(currency).or_default() += 1;
            }
            counts
        })
        .reduce(BTreeMap::new, |mut a, b| {
            for (k, v) in b {
                *a.entry(k).or_default() += v;
            }
            a
        });
    counts
        .into_iter()
        .max_by_key(|(c, n)| (*n, std::cmp::Reverse(*c)))
        .map(|(c, _)| c)
}

/// A ratio that is undefined (not 0) when its denominator is 0.
pub(crate) fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator != 0.0).then(|| numerator / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_instant;

    fn day(text: &str) -> i32 {
        day_of(parse_instant(text).unwrap())
    }

    #[test]
    fn periods_are_calendar_aligned() {
        let d = day("2026-02-18");
        assert_eq!(Grain::Month.floor_day(d), day("2026-02-01"));
        assert_eq!(Grain::Quarter.floor_day(d), day("2026-01-01"));
        assert_eq!(Grain::Year.floor_day(d), day("2026-01-01"));
        // 2026-02-18 is a Wednesday; its ISO week starts Monday the 16th.
        assert_eq!(Grain::Week.floor_day(d), day("2026-02-16"));
        assert_eq!(Grain::Month.next_day(day("2026-12-01")), day("2027-01-01"));
        assert_eq!(
            Grain::Quarter.next_day(day("2026-10-01")),
            day("2027-01-01")
        );
    }

    #[test]
    fn labels_round_trip() {
        // 2021-01-04 is the Monday of ISO week 2021-W01; 2020-12-28 is in 2020-W53.
        assert_eq!(Grain::Week.label(day("2021-01-04")), "2021-W01");
        assert_eq!(Grain::Week.label(day("2020-12-28")), "2020-W53");
        for grain in [
            Grain::Day,
            Grain::Week,
            Grain::Month,
            Grain::Quarter,
            Grain::Year,
        ] {
            assert_eq!(Grain::parse(grain.name()), Some(grain));
            let start = grain.floor_day(day("2026-05-20"));
            let label = grain.label(start);
            assert_eq!(grain.parse_label(&label), Some(start), "{label}");
        }
        assert_eq!(Grain::Month.parse_label("2026-13"), None);
        assert_eq!(Grain::Quarter.parse_label("2026-Q5"), None);
    }

    /// The engine's cached MRR steps and each subscription's kept phases (default policy)
    /// stay equal to a replay of the subscriptions, whatever order the facts arrive in and
    /// when customers merge; and what segments and health read from the phases (status,
    /// MRR, plans, past due, the next change) equals what the replayed views say.
    #[test]
    fn cached_mrr_steps_equal_a_replay() {
        use crate::message::{Envelope, Message};
        use serde_json::json;
        let mut rng = crate::random::Rng::derive(21, 4);
        let mut engine =
            crate::engine::Engine::new(crate::ids::WorkspaceId::parse("ws_mrr").unwrap());
        let envelope = Envelope {
            received_at: parse_instant("2026-06-01T00:00:00Z").unwrap(),
            batch_sent_at: None,
        };
        let base = parse_instant("2024-01-01T00:00:00Z").unwrap();
        let mut messages = Vec::new();
        for c in 0..60 {
            let user = if c % 7 == 0 {
                format!("a{c}")
            } else {
                format!("u{c}")
            };
            for s in 0..1 + rng.below(2) {
                let sub = format!("s{c}-{s}");
                let start = base + (rng.uniform() * 300.0) as i64 * MILLIS_PER_DAY;
                let mut facts = vec![("Subscription Started", start)];
                if rng.chance(0.3) {
                    facts.push(("Subscription Changed", start + 50 * MILLIS_PER_DAY));
                }
                for k in 1..rng.below(14) as i32 {
                    facts.push(("Subscription Renewed", crate::time::add_months(start, k)));
                }
                if rng.chance(0.3) {
                    facts.push(("Subscription Paused", start + 40 * MILLIS_PER_DAY));
                }
                if rng.chance(0.5) {
                    let end = facts.last().map_or(start, |f| f.1) + 5 * MILLIS_PER_DAY;
                    facts.push(("Subscription Cancelled", end));
                }
                let trial = rng.chance(0.3);
                for (event, at) in facts {
                    let changed = event == "Subscription Changed";
                    let mut m = json!({"type": "track", "event": event, "timestamp": format_instant(at),
                        "properties": {"subscription_id": sub, "plan": if changed { "q" } else { "p" },
                                       "interval": "month", "amount": 10 + 5 * s, "currency": "USD"}});
                    if trial && event == "Subscription Started" {
                        m["properties"]["trial_end"] =
                            json!(format_instant(at + 14 * MILLIS_PER_DAY));
                    }
                    if user.starts_with('a') {
                        m["anonymousId"] = json!(user);
                    } else {
                        m["userId"] = json!(user);
                    }
                    messages.push(m);
                }
            }
            if c % 7 == 0 {
                messages.push(
                    json!({"type": "alias", "previousId": user, "userId": format!("u{}", c + 1),
                                     "timestamp": "2025-01-01T00:00:00Z"}),
                );
            }
        }
        for i in (1..messages.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            messages.swap(i, j);
        }
        for m in messages {
            engine.apply(&Message::parse(m, None, envelope).unwrap());
        }
        let mut compared = 0;
        // What the instants compared covered: a changed plan, a trial, past due, a next change.
        let mut seen = [false; 4];
        for state in engine.customers().filter(|s| !s.subscriptions.is_empty()) {
            let replay = mrr_steps(
                &state.subscriptions,
                &crate::subscription::BillingPolicy::default(),
                |_, minor| Some(minor),
            );
            assert_eq!(state.default_mrr.steps, replay, "{}", state.id);
            let first = state
                .subscriptions
                .first()
                .and_then(|s| s.currency())
                .or_else(|| state.orders.first().map(|o| o.revenue.currency));
            assert_eq!(state.main_currency, first);
            let policy = crate::subscription::BillingPolicy::default();
            for sub in &state.subscriptions {
                assert_eq!(
                    sub.default_phases(),
                    &sub.phases(&policy)[..],
                    "{}",
                    state.id
                );
            }
            for day in (0..900).step_by(3) {
                let at = base + day * MILLIS_PER_DAY + (day % 5) * 3_600_000;
                let here = format!("{} at {}", state.id, format_instant(at));
                assert_eq!(
                    state.paying_at(at),
                    state.mrr_at(at).values().any(|m| *m > 0),
                    "{here}"
                );
                let views = state.subscriptions_at(at);
                for (sub, view) in state.subscriptions.iter().zip(&views) {
                    assert_eq!(sub.status_at(at), (view.status, view.mrr), "{here}");
                    assert_eq!(
                        sub.terms_at(at).map(|t| &t.plan),
                        view.plan.as_ref(),
                        "{here}"
                    );
                }
                assert_eq!(
                    state.status_at(at),
                    crate::subscription::customer_status(&views),
                    "{here}"
                );
                let usd = Currency::parse("USD").unwrap();
                let mrr = state.mrr_at(at).get(&usd).copied().unwrap_or(0);
                assert_eq!(state.mrr_in(usd, at), mrr, "{here}");
                let plans: Vec<&str> = views
                    .iter()
                    .filter(|v| {
                        v.status.is_paying()
                            || v.status == crate::subscription::SubscriptionStatus::Trialing
                    })
                    .filter_map(|v| v.plan.as_deref())
                    .collect();
                assert_eq!(state.plans_at(at).collect::<Vec<_>>(), plans, "{here}");
                seen[0] |= plans.contains(&"q");
                seen[1] |= state.status_at(at) == crate::subscription::CustomerStatus::Trialing;
                let past_due = views
                    .iter()
                    .filter(|v| v.status == crate::subscription::SubscriptionStatus::PastDue)
                    .count();
                assert_eq!(state.past_due_at(at), past_due, "{here}");
                seen[2] |= past_due > 0;
                // The next change: the replayed views are as now just before it (and
                // halfway to it), and one differs at it.
                let now = |t: Millis| {
                    let state = state.subscriptions.iter();
                    state
                        .map(|s| (s.view_at(t).status, s.view_at(t).mrr))
                        .collect::<Vec<_>>()
                };
                if let Some(next) = state.next_subscription_change(at) {
                    seen[3] = true;
                    assert!(next > at, "{here}");
                    assert_eq!(now(next - 1), now(at), "{here}");
                    assert_eq!(now(at + (next - at) / 2), now(at), "{here}");
                    assert_ne!(now(next), now(at), "{here}: {}", format_instant(next));
                }
            }
            assert!(!replay.is_empty());
            compared += 1;
        }
        assert!(compared > 40, "{compared}");
        assert_eq!(seen, [true; 4], "plan change, trial, past due, next change");
    }

    #[test]
    fn the_running_period_closes_at_as_of() {
        let to = parse_instant("2026-03-10T12:00:00Z").unwrap();
        let periods = Periods::new(Grain::Month, parse_instant("2026-01-15").unwrap(), to);
        assert_eq!(periods.len(), 3);
        assert_eq!(periods.label(0), "2026-01");
        assert!(periods.complete(1));
        assert!(!periods.complete(2));
        assert_eq!(periods.close(2), to + 1);
        let back = periods.extended_back(2);
        assert_eq!(back.label(0), "2025-11");
        assert_eq!(back.len(), 5);
    }
}
