//! Subscription revenue per period: MRR, its five movements per customer, logo churn and
//! the ratios built from them (docs/metrics.md, "Subscriptions").

use serde::Serialize;

use super::fold::{Plan, compute};
use super::{Dataset, PeriodHeader, Periods, Prepared, Query, ratio};
use crate::time::{MILLIS_PER_DAY, Millis};

/// One period of subscription metrics. Money is in minor units of the reporting currency,
/// per month; rates are fractions (0.021 = 2.1%); `None` (JSON `null`) means undefined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionRow {
    #[serde(flatten)]
    pub header: PeriodHeader,
    pub mrr_start: i64,
    pub mrr: i64,
    pub new_mrr: i64,
    pub expansion_mrr: i64,
    pub contraction_mrr: i64,
    pub churned_mrr: i64,
    pub reactivation_mrr: i64,
    pub net_new_mrr: i64,
    /// Customers paying or paused at the start of the period.
    pub customers_start: u64,
    /// Customers paying or paused at the end.
    pub customers: u64,
    pub paying_customers: u64,
    pub new_customers: u64,
    pub reactivated_customers: u64,
    pub churned_customers: u64,
    /// Customers who started paying and stopped inside the period (not in the churn rate).
    pub joined_and_churned_customers: u64,
    pub logo_churn_rate: Option<f64>,
    pub smoothed_logo_churn_rate: Option<f64>,
    pub retention_rate: Option<f64>,
    /// Expected customer lifetime in periods: 1 ÷ logo churn rate.
    pub expected_lifetime: Option<f64>,
    pub gross_revenue_retention: Option<f64>,
    pub net_revenue_retention: Option<f64>,
    pub quick_ratio: Option<f64>,
    /// Average MRR per paying customer.
    pub arpa: Option<f64>,
    /// ARPA × months per period × gross margin ÷ logo churn rate; undefined at zero churn.
    pub ltv: Option<f64>,
}

/// Sums for one period, folded over customers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Movements {
    pub mrr_start: i64,
    pub mrr: i64,
    pub new_mrr: i64,
    pub expansion_mrr: i64,
    pub contraction_mrr: i64,
    pub churned_mrr: i64,
    pub reactivation_mrr: i64,
    pub customers_start: u64,
    pub customers: u64,
    pub paying_customers: u64,
    pub new_customers: u64,
    pub reactivated_customers: u64,
    pub churned_customers: u64,
    pub joined_and_churned_customers: u64,
}

impl Movements {
    pub(crate) fn add(&mut self, o: &Self) {
        self.mrr_start += o.mrr_start;
        self.mrr += o.mrr;
        self.new_mrr += o.new_mrr;
        self.expansion_mrr += o.expansion_mrr;
        self.contraction_mrr += o.contraction_mrr;
        self.churned_mrr += o.churned_mrr;
        self.reactivation_mrr += o.reactivation_mrr;
        self.customers_start += o.customers_start;
        self.customers += o.customers;
        self.paying_customers += o.paying_customers;
        self.new_customers += o.new_customers;
        self.reactivated_customers += o.reactivated_customers;
        self.churned_customers += o.churned_customers;
        self.joined_and_churned_customers += o.joined_and_churned_customers;
    }

    pub fn logo_churn_rate(&self) -> Option<f64> {
        ratio(self.churned_customers as f64, self.customers_start as f64)
    }
}

/// How one customer moved between `start` and `close`, added to `m`.
pub(crate) fn classify(
    c: &Prepared,
    start: Millis,
    close: Millis,
    reactivation_window_days: Option<u32>,
    m: &mut Movements,
) {
    let (ms, paused_start) = c.before(start);
    let (me, paused_end) = c.before(close);
    let active_start = ms > 0 || paused_start;
    let active_end = me > 0 || paused_end;
    if active_start {
        m.customers_start += 1;
        m.mrr_start += ms;
    }
    if active_end {
        m.customers += 1;
        m.mrr += me;
    }
    if me > 0 {
        m.paying_customers += 1;
    }
    if active_start && !active_end {
        m.churned_customers += 1;
    }
    match (ms > 0, me > 0) {
        (true, true) if me > ms => m.expansion_mrr += me - ms,
        (true, true) => m.contraction_mrr += ms - me,
        (true, false) if paused_end => m.contraction_mrr += ms,
        (true, false) => m.churned_mrr += ms,
        (false, true) if paused_start => m.expansion_mrr += me,
        (false, true) => {
            let paid_before = c.first_paid.is_some_and(|f| f < start);
            let within_window = || {
                let Some(window) = reactivation_window_days else {
                    return true;
                };
                let stopped = c.last_stopped_before(start);
                let back = c
                    .mrr
                    .iter()
                    .find(|s| s.at >= start && s.mrr > 0)
                    .map_or(close, |s| s.at);
                stopped.is_none_or(|s| back - s <= i64::from(window) * MILLIS_PER_DAY)
            };
            if paid_before && within_window() {
                m.reactivation_mrr += me;
                m.reactivated_customers += 1;
            } else {
                m.new_mrr += me;
                m.new_customers += 1;
            }
        }
        (false, false) => {
            if !active_start && !active_end && c.paid_within(start, close) {
                m.joined_and_churned_customers += 1;
            }
        }
    }
}

/// Movements for every period of `periods` (closing values read at each period's close).
pub(crate) struct MovementsPlan {
    bounds: Vec<(Millis, Millis)>,
    reactivation_window_days: Option<u32>,
}

impl MovementsPlan {
    pub(crate) fn new(periods: &Periods, query: &Query) -> Self {
        Self {
            bounds: (0..periods.len())
                .map(|i| (periods.start(i), periods.close(i)))
                .collect(),
            reactivation_window_days: query.settings.reactivation_window_days,
        }
    }
}

impl<'a> Plan<'a> for MovementsPlan {
    type Acc = Vec<Movements>;
    type Output = Vec<Movements>;
    fn empty(&self) -> Self::Acc {
        vec![Movements::default(); self.bounds.len()]
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        if c.mrr.is_empty() {
            return;
        }
        for ((start, close), m) in self.bounds.iter().zip(acc.iter_mut()) {
            classify(c, *start, *close, self.reactivation_window_days, m);
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        acc.iter_mut().zip(&other).for_each(|(x, y)| x.add(y));
    }
    fn finish(&self, acc: Self::Acc) -> Self::Output {
        acc
    }
}

/// The subscription table: one row per period of the query.
pub fn subscription_metrics(data: &Dataset, query: &Query) -> Vec<SubscriptionRow> {
    compute(data, &SubscriptionsPlan::new(query))
}

/// The subscription table's plan: movements over the query's periods and the smoothing
/// window before them.
pub(crate) struct SubscriptionsPlan {
    extended: Periods,
    back: usize,
    rows: usize,
    movements: MovementsPlan,
    months: f64,
    margin: f64,
}

impl SubscriptionsPlan {
    pub(crate) fn new(query: &Query) -> Self {
        let periods = query.periods();
        let back = query.settings.smoothing_periods.saturating_sub(1);
        let extended = periods.extended_back(back);
        Self {
            movements: MovementsPlan::new(&extended, query),
            extended,
            back,
            rows: periods.len(),
            months: query.grain.months(),
            margin: query.settings.gross_margin,
        }
    }
}

impl<'a> Plan<'a> for SubscriptionsPlan {
    type Acc = Vec<Movements>;
    type Output = Vec<SubscriptionRow>;
    fn empty(&self) -> Self::Acc {
        Plan::empty(&self.movements)
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        self.movements.add(acc, c);
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        Plan::merge(&self.movements, acc, other);
    }
    fn finish(&self, all: Self::Acc) -> Self::Output {
        let (back, months, margin) = (self.back, self.months, self.margin);
        (0..self.rows)
            .map(|i| {
                let k = i + back;
                let m = &all[k];
                let churn = m.logo_churn_rate();
                let trailing: Vec<f64> = all[k - back..=k]
                    .iter()
                    .filter_map(Movements::logo_churn_rate)
                    .collect();
                let smoothed = ratio(trailing.iter().sum(), trailing.len() as f64);
                let start = m.mrr_start as f64;
                let arpa = ratio(m.mrr as f64, m.paying_customers as f64);
                SubscriptionRow {
                    header: self.extended.header(k),
                    mrr_start: m.mrr_start,
                    mrr: m.mrr,
                    new_mrr: m.new_mrr,
                    expansion_mrr: m.expansion_mrr,
                    contraction_mrr: m.contraction_mrr,
                    churned_mrr: m.churned_mrr,
                    reactivation_mrr: m.reactivation_mrr,
                    net_new_mrr: m.mrr - m.mrr_start,
                    customers_start: m.customers_start,
                    customers: m.customers,
                    paying_customers: m.paying_customers,
                    new_customers: m.new_customers,
                    reactivated_customers: m.reactivated_customers,
                    churned_customers: m.churned_customers,
                    joined_and_churned_customers: m.joined_and_churned_customers,
                    logo_churn_rate: churn,
                    smoothed_logo_churn_rate: smoothed,
                    retention_rate: churn.map(|c| 1.0 - c),
                    expected_lifetime: churn.and_then(|c| ratio(1.0, c)),
                    gross_revenue_retention: ratio(
                        (m.churned_mrr + m.contraction_mrr) as f64,
                        start,
                    )
                    .map(|x| 1.0 - x),
                    net_revenue_retention: ratio(
                        (m.mrr_start + m.expansion_mrr - m.contraction_mrr - m.churned_mrr) as f64,
                        start,
                    ),
                    quick_ratio: ratio(
                        (m.new_mrr + m.expansion_mrr + m.reactivation_mrr) as f64,
                        (m.contraction_mrr + m.churned_mrr) as f64,
                    ),
                    arpa,
                    ltv: match (arpa, churn) {
                        (Some(a), Some(c)) if c > 0.0 => Some(a * months * margin / c),
                        _ => None,
                    },
                }
            })
            .collect()
    }
}
