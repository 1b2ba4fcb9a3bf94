//! What the churn-risk model sees of a customer: numbers computed from the state as of an
//! instant, from facts stamped at or before it only (a feature of a past cut-off never reads
//! what happened after it).

use serde::{Deserialize, Serialize};

use crate::customer::CustomerState;
use crate::health::model::Metric;
use crate::names::NameTable;
use crate::time::{MILLIS_PER_DAY, Millis, day_of};

/// The features every model has, in this order; then one column per plan and per channel of
/// the [`FeatureSpec`]. `NaN` is "undefined" (never active, no NPS answer, no order).
pub const BASE_FEATURES: [&str; 15] = [
    "recency_days",
    "events_30d",
    "events_90d",
    "active_days_30d",
    "usage_trend_30d",
    "breadth_30d",
    "nps",
    "open_tickets",
    "billing_problems",
    "tenure_days",
    "mrr",
    "subscriber",
    "orders_365d",
    "days_since_order",
    "survey_answers",
];

/// Most plans and channels given their own column; rarer ones are in none.
const MOST_CATEGORIES: usize = 8;

/// The columns of a model beyond [`BASE_FEATURES`]: the plans and acquisition channels it
/// learnt from (the most frequent in its training rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FeatureSpec {
    pub plans: Vec<String>,
    pub channels: Vec<String>,
}

/// Plans and channels seen in training rows, to choose a model's columns.
#[derive(Debug, Clone, Default)]
pub struct CategoryCounts {
    plans: std::collections::HashMap<String, usize>,
    channels: std::collections::HashMap<String, usize>,
}

impl CategoryCounts {
    /// Counts the customer's plan and channel as of `at`.
    pub fn observe(&mut self, state: &CustomerState, at: Millis) {
        if let Some(plan) = plan_at(state, at) {
            *self.plans.entry(plan.to_owned()).or_default() += 1;
        }
        if let Some(channel) = channel_at(state, at) {
            *self.channels.entry(channel.to_owned()).or_default() += 1;
        }
    }

    /// The most frequent plans and channels (at most 8 each), by name.
    pub fn spec(self) -> FeatureSpec {
        let most = |counts: std::collections::HashMap<String, usize>| {
            let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
            counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            counts.truncate(MOST_CATEGORIES);
            let mut names: Vec<String> = counts.into_iter().map(|(n, _)| n).collect();
            names.sort();
            names
        };
        FeatureSpec {
            plans: most(self.plans),
            channels: most(self.channels),
        }
    }
}

impl FeatureSpec {
    /// The plans and channels that are most frequent among `(customer, cut-off)` rows.
    pub fn learn<'a>(rows: impl Iterator<Item = (&'a CustomerState, Millis)>) -> Self {
        let mut counts = CategoryCounts::default();
        for (state, at) in rows {
            counts.observe(state, at);
        }
        counts.spec()
    }

    /// Every column's name, in order.
    pub fn names(&self) -> Vec<String> {
        BASE_FEATURES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(self.plans.iter().map(|p| format!("plan={p}")))
            .chain(self.channels.iter().map(|c| format!("channel={c}")))
            .collect()
    }

    /// The number of columns.
    pub fn columns(&self) -> usize {
        BASE_FEATURES.len() + self.plans.len() + self.channels.len()
    }

    /// Appends the customer's features as of `at` to `out`.
    pub fn extract(
        &self,
        state: &CustomerState,
        names: &NameTable,
        at: Millis,
        out: &mut Vec<f64>,
    ) {
        let today = day_of(at);
        let value = |metric: Metric| metric.value(state, names, at).unwrap_or(f64::NAN);
        let window = |days: u32| Metric::UsageFrequency {
            events: Vec::new(),
            window_days: days,
        };
        // Active days in the last 30: the activity is sorted by day, so a new day is one
        // that differs from the entry before it (no list is built: every customer is scored
        // when a segment on risk is backfilled).
        let from = today - 29;
        let start = state.activity.partition_point(|e| e.day < from);
        let (mut days, mut previous) = (0usize, None);
        for e in state.activity[start..]
            .iter()
            .take_while(|e| e.day <= today)
        {
            if previous != Some(e.day) {
                days += 1;
                previous = Some(e.day);
            }
        }
        // Status and MRR from the subscriptions' kept phases (no replay).
        let statuses = state.subscriptions.iter().map(|s| s.status_at(at));
        let mrr: i64 = statuses.clone().map(|(_, mrr)| mrr).sum();
        let paying = statuses.clone().any(|(status, _)| status.is_paying());
        let year_ago = at - 365 * MILLIS_PER_DAY;
        let orders = state
            .orders
            .iter()
            .filter(|o| o.at > year_ago && o.at <= at)
            .count();
        let last_order = state
            .orders
            .iter()
            .filter(|o| o.at <= at)
            .map(|o| o.at)
            .max();
        let first = state.first_seen.min(at);
        out.extend([
            value(Metric::Recency { events: Vec::new() }),
            value(window(30)),
            value(window(90)),
            days as f64,
            value(Metric::UsageTrend {
                events: Vec::new(),
                window_days: 30,
            }),
            value(Metric::Breadth { window_days: 30 }),
            value(Metric::Nps),
            value(Metric::OpenTickets),
            value(Metric::BillingProblems),
            f64::from(today - day_of(first)),
            mrr as f64 / 100.0,
            if paying { 1.0 } else { 0.0 },
            orders as f64,
            last_order.map_or(f64::NAN, |o| f64::from(today - day_of(o))),
            state.survey_answers.iter().filter(|a| a.at <= at).count() as f64,
        ]);
        let plan = plan_at(state, at);
        out.extend(
            self.plans
                .iter()
                .map(|p| f64::from(u8::from(plan == Some(p.as_str())))),
        );
        let channel = channel_at(state, at);
        out.extend(
            self.channels
                .iter()
                .map(|c| f64::from(u8::from(channel == Some(c.as_str())))),
        );
    }
}

/// The plan of the customer's paying subscription at `at` (the first, if several).
fn plan_at(state: &CustomerState, at: Millis) -> Option<&str> {
    state.plans_at(at).next()
}

/// The acquisition channel, if it was known at `at`.
fn channel_at(state: &CustomerState, at: Millis) -> Option<&str> {
    let known = state.acquisition.channel_at.is_none_or(|t| t <= at);
    state.acquisition.channel.as_deref().filter(|_| known)
}
