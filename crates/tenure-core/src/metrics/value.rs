//! Acquisition and value: referral share, retention / NPS / LTV / CAC by acquisition
//! channel, revenue concentration and the what-if projection (docs/metrics.md).

use std::collections::BTreeMap;

use serde::Serialize;

use super::fold::{Plan, compute};
use super::subscriptions::{Movements, classify};
use super::{Conversion, Dataset, PeriodHeader, Periods, Prepared, Query, SubscriptionRow, ratio};
use crate::money::Currency;
use crate::time::{Millis, add_months, format_instant};

/// Marketing spend on one channel in one calendar month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spend {
    pub channel: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Minor units.
    pub amount: i64,
    pub currency: Currency,
}

impl Spend {
    /// A spend row from its parts, as the API and the CSV import receive them; the error
    /// says which part is wrong.
    pub fn parse(
        channel: &str,
        month: &str,
        amount: f64,
        currency: &str,
    ) -> Result<Self, (&'static str, String)> {
        let channel = channel.trim().to_ascii_lowercase();
        if channel.is_empty() {
            return Err(("channel", "must not be empty".into()));
        }
        let month = month.trim();
        if super::Grain::Month.parse_label(month).is_none() {
            return Err(("month", format!("`{month}` is not a month (YYYY-MM)")));
        }
        let currency = Currency::parse(currency.trim())
            .ok_or_else(|| ("currency", format!("`{currency}` is not an ISO 4217 code")))?;
        if !amount.is_finite() || amount < 0.0 {
            return Err(("amount", format!("{amount} is not an amount ≥ 0")));
        }
        let money = crate::money::Money::from_decimal(amount, currency)
            .ok_or_else(|| ("amount", format!("{amount} is out of range")))?;
        Ok(Self {
            channel,
            month: month.to_owned(),
            amount: money.minor,
            currency,
        })
    }

    /// The first instant of the spend's month.
    pub fn month_start(&self) -> Option<Millis> {
        super::Grain::Month
            .parse_label(&self.month)
            .map(|d| i64::from(d) * crate::time::MILLIS_PER_DAY)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferralRow {
    #[serde(flatten)]
    pub header: PeriodHeader,
    /// Customers who first paid or ordered in the period.
    pub new_customers: u64,
    /// Of those, referred (a referral code, `referred_by`, or the `referral` channel).
    pub referred_customers: u64,
    pub referral_share: Option<f64>,
}

fn referred(c: &super::Prepared) -> bool {
    let a = &c.state.acquisition;
    a.referred_by.is_some() || a.referral_code.is_some() || a.channel.as_deref() == Some("referral")
}

pub fn referral_share(data: &Dataset, query: &Query) -> Vec<ReferralRow> {
    compute(data, &ReferralsPlan::new(query))
}

pub(crate) struct ReferralsPlan {
    periods: Periods,
}

impl ReferralsPlan {
    pub(crate) fn new(query: &Query) -> Self {
        Self {
            periods: query.periods(),
        }
    }
}

impl<'a> Plan<'a> for ReferralsPlan {
    /// (new customers, of whom referred) per period.
    type Acc = Vec<(u64, u64)>;
    type Output = Vec<ReferralRow>;
    fn empty(&self) -> Self::Acc {
        vec![(0, 0); self.periods.len()]
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        if let Some(first) = c.first_customer.filter(|t| *t <= self.periods.as_of)
            && let Some(i) = self.periods.index_of(first)
        {
            acc[i].0 += 1;
            if referred(c) {
                acc[i].1 += 1;
            }
        }
    }
    fn merge(&self, a: &mut Self::Acc, b: Self::Acc) {
        a.iter_mut().zip(&b).for_each(|(x, y)| {
            x.0 += y.0;
            x.1 += y.1
        });
    }
    fn finish(&self, counts: Self::Acc) -> Self::Output {
        counts
            .iter()
            .enumerate()
            .map(|(i, (new, referred))| ReferralRow {
                header: self.periods.header(i),
                new_customers: *new,
                referred_customers: *referred,
                referral_share: ratio(*referred as f64, *new as f64),
            })
            .collect()
    }
}

/// One acquisition channel over the query's range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelRow {
    pub channel: String,
    /// Customers who first paid or ordered within the range.
    pub new_customers: u64,
    /// Customers paying or paused at the end of the range.
    pub customers: u64,
    /// Churned ÷ active at start, pooled over the range's periods.
    pub logo_churn_rate: Option<f64>,
    pub retention_rate: Option<f64>,
    pub arpa: Option<f64>,
    /// ARPA × months per period × gross margin ÷ logo churn rate.
    pub ltv: Option<f64>,
    pub nps: Option<f64>,
    pub nps_responses: u64,
    /// Spend in the range's months, minor units (`None` without spend data).
    pub spend: Option<i64>,
    /// Spend ÷ new paying customers.
    pub cac: Option<f64>,
    /// Average first MRR of the range's new paying customers.
    pub new_arpa: Option<f64>,
    /// CAC ÷ (new ARPA × gross margin), in months.
    pub cac_payback_months: Option<f64>,
    pub ltv_to_cac: Option<f64>,
}

#[derive(Default, Clone)]
pub(crate) struct ChannelSums {
    new_customers: u64,
    movements: Vec<Movements>,
    promoters: u64,
    detractors: u64,
    answered: u64,
}

pub fn channel_metrics(data: &Dataset, query: &Query, spend: &[Spend]) -> Vec<ChannelRow> {
    compute(data, &ChannelsPlan::new(data, query, spend))
}

pub(crate) struct ChannelsPlan {
    periods: Periods,
    n: usize,
    window: Option<u32>,
    from: Millis,
    to: Millis,
    months: f64,
    margin: f64,
    /// Spend in the range's months per channel, reporting currency.
    spend_by: BTreeMap<String, i64>,
}

impl ChannelsPlan {
    pub(crate) fn new(data: &Dataset, query: &Query, spend: &[Spend]) -> Self {
        let periods = query.periods();
        let (from, to) = (periods.start(0), periods.as_of);
        let mut spend_by: BTreeMap<String, i64> = BTreeMap::new();
        for s in spend {
            let Some(start) = s.month_start() else {
                continue;
            };
            if start >= super::Grain::Month.floor(from) && start <= to {
                *spend_by.entry(s.channel.to_ascii_lowercase()).or_default() +=
                    data.convert(s.currency, s.amount).unwrap_or(0);
            }
        }
        Self {
            n: periods.len(),
            periods,
            window: query.settings.reactivation_window_days,
            from,
            to,
            months: query.grain.months(),
            margin: query.settings.gross_margin,
            spend_by,
        }
    }
}

impl<'a> Plan<'a> for ChannelsPlan {
    type Acc = BTreeMap<&'a str, ChannelSums>;
    type Output = Vec<ChannelRow>;
    fn empty(&self) -> Self::Acc {
        BTreeMap::new()
    }
    fn add(&self, map: &mut Self::Acc, c: &Prepared<'a>) {
        let (periods, n, window, from, to) =
            (&self.periods, self.n, self.window, self.from, self.to);
        // Borrowed: a String per customer was a tenth of this table's time.
        let channel = c.state.acquisition.channel.as_deref().unwrap_or("unknown");
        let sums = map.entry(channel).or_insert_with(|| ChannelSums {
            movements: vec![Movements::default(); n],
            ..ChannelSums::default()
        });
        if c.first_customer.is_some_and(|t| t >= from && t <= to) {
            sums.new_customers += 1;
        }
        if !c.mrr.is_empty() {
            for (i, m) in sums.movements.iter_mut().enumerate() {
                classify(c, periods.start(i), periods.close(i), window, m);
            }
        }
        for a in &c.state.survey_answers {
            if a.scale == 10
                && a.at >= from
                && a.at <= to
                && let Some(s) = a.score
            {
                sums.answered += 1;
                if s >= 9 {
                    sums.promoters += 1;
                } else if s <= 6 {
                    sums.detractors += 1;
                }
            }
        }
    }
    fn merge(&self, a: &mut Self::Acc, b: Self::Acc) {
        for (k, v) in b {
            match a.get_mut(k) {
                None => {
                    a.insert(k, v);
                }
                Some(x) => {
                    x.new_customers += v.new_customers;
                    x.answered += v.answered;
                    x.promoters += v.promoters;
                    x.detractors += v.detractors;
                    for (p, q) in x.movements.iter_mut().zip(&v.movements) {
                        p.add(q);
                    }
                }
            }
        }
    }
    fn finish(&self, by: Self::Acc) -> Self::Output {
        let (months, margin, spend_by) = (self.months, self.margin, &self.spend_by);
        by.into_iter()
            .map(|(channel, s)| {
                let churned: u64 = s.movements.iter().map(|m| m.churned_customers).sum();
                let start: u64 = s.movements.iter().map(|m| m.customers_start).sum();
                let last = s.movements.last().copied().unwrap_or_default();
                let churn = ratio(churned as f64, start as f64);
                let arpa = ratio(last.mrr as f64, last.paying_customers as f64);
                let new_paying: u64 = s.movements.iter().map(|m| m.new_customers).sum();
                let new_mrr: i64 = s.movements.iter().map(|m| m.new_mrr).sum();
                let new_arpa = ratio(new_mrr as f64, new_paying as f64);
                let ltv = match (arpa, churn) {
                    (Some(a), Some(c)) if c > 0.0 => Some(a * months * margin / c),
                    _ => None,
                };
                let spent = spend_by.get(channel).copied();
                let cac = spent.and_then(|x| ratio(x as f64, new_paying as f64));
                ChannelRow {
                    new_customers: s.new_customers,
                    customers: last.customers,
                    logo_churn_rate: churn,
                    retention_rate: churn.map(|c| 1.0 - c),
                    arpa,
                    ltv,
                    nps: ratio(
                        100.0 * (s.promoters as f64 - s.detractors as f64),
                        s.answered as f64,
                    ),
                    nps_responses: s.answered,
                    spend: spent,
                    cac,
                    new_arpa,
                    cac_payback_months: match (cac, new_arpa) {
                        (Some(c), Some(a)) if a > 0.0 => Some(c / (a * margin)),
                        _ => None,
                    },
                    ltv_to_cac: match (ltv, cac) {
                        (Some(l), Some(c)) if c > 0.0 => Some(l / c),
                        _ => None,
                    },
                    channel: channel.to_owned(),
                }
            })
            .collect()
    }
}

/// How revenue is spread over customers in the trailing 12 months.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Concentration {
    pub window_start: String,
    pub window_end: String,
    /// Customers with revenue in the window.
    pub customers: u64,
    /// Minor units: subscription revenue (MRR over time) plus orders net of refunds.
    pub revenue: i64,
    /// Share of revenue from the top 20% of customers (rounded up to whole customers).
    pub top_20_share: Option<f64>,
    pub gini: Option<f64>,
    /// 21 points: the bottom x% of customers earn y% of revenue.
    pub lorenz: Vec<LorenzPoint>,
    pub top_customers: Vec<TopCustomer>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LorenzPoint {
    pub customers_share: f64,
    pub revenue_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopCustomer {
    pub customer_id: String,
    pub user_id: Option<String>,
    pub revenue: i64,
}

/// Revenue of one customer in `[from, to)`: MRR accrued day by day (each calendar month
/// earns exactly its MRR) plus orders net of refunds.
fn revenue_in(c: &Prepared, data: &Conversion, from: Millis, to: Millis, months: &[Millis]) -> i64 {
    let mut total = 0.0;
    let (mut at, mut mrr) = (from, c.before(from).0);
    let i = c.mrr.partition_point(|s| s.at < from);
    for step in c.mrr[i..].iter().take_while(|s| s.at < to) {
        total += accrued(mrr, at, step.at, months);
        at = step.at;
        mrr = step.mrr;
    }
    total += accrued(mrr, at, to, months);
    let mut orders = 0i64;
    for o in c.state.orders.iter().filter(|o| o.at >= from && o.at < to) {
        orders += data
            .convert(o.revenue.currency, o.revenue.minor)
            .unwrap_or(0);
    }
    for r in c.state.refunds.iter().filter(|r| r.at >= from && r.at < to) {
        if let Some(o) = c.state.orders.iter().find(|o| o.order_id == r.order_id) {
            let minor = r
                .amount
                .map_or(o.revenue.minor, |a| a.minor.min(o.revenue.minor));
            orders -= data.convert(o.revenue.currency, minor).unwrap_or(0);
        }
    }
    total.round() as i64 + orders
}

pub fn concentration(data: &Dataset, query: &Query) -> Concentration {
    compute(data, &ConcentrationPlan::new(data, query))
}

/// Every customer's revenue over the 12 months ending at `query.to`, exactly as
/// `concentration` counts it (customers without revenue left out): what the revenue
/// percentile of segments ranks (`segments::DailyValues`).
pub fn revenue_by_customer(data: &Dataset, query: &Query) -> Vec<(crate::CustomerId, i64)> {
    let plan = ConcentrationPlan::new(data, query);
    use rayon::prelude::*;
    data.customers
        .par_iter()
        .filter_map(|c| {
            let r = revenue_in(c, &plan.conversion, plan.from, plan.to, &plan.months);
            (r > 0).then(|| (c.state.id.clone(), r))
        })
        .collect()
}

pub(crate) struct ConcentrationPlan {
    from: Millis,
    to: Millis,
    months: Vec<Millis>,
    conversion: Conversion,
}

impl ConcentrationPlan {
    pub(crate) fn new(data: &Dataset, query: &Query) -> Self {
        let to = query.to + 1;
        let from = add_months(to, -12);
        Self {
            from,
            to,
            months: month_starts(from, to),
            conversion: data.conversion(),
        }
    }
}

impl<'a> Plan<'a> for ConcentrationPlan {
    /// Customers with revenue in the window, with it.
    type Acc = Vec<(i64, &'a crate::customer::CustomerState)>;
    type Output = Concentration;
    fn empty(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        let r = revenue_in(c, &self.conversion, self.from, self.to, &self.months);
        if r > 0 {
            acc.push((r, c.state));
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        acc.extend(other);
    }
    fn finish(&self, revenue: Self::Acc) -> Concentration {
        concentration_of(revenue, self.from, self.to)
    }
}

/// Concentration of the customers' revenues (ties in customer id order).
fn concentration_of(
    customers: Vec<(i64, &crate::customer::CustomerState)>,
    from: Millis,
    to: Millis,
) -> Concentration {
    // The shares need only the amounts, sorted (ties do not matter): no customer ids are
    // compared, except among the few at the top.
    let mut ascending: Vec<i64> = customers.iter().map(|(r, _)| *r).collect();
    ascending.sort_unstable();
    let n = ascending.len();
    let total: i64 = ascending.iter().sum();
    let top = n.div_ceil(5);
    let top_sum: i64 = ascending[n - top..].iter().sum();
    let threshold = n.checked_sub(10).map_or(i64::MIN, |i| ascending[i]);
    let mut leaders: Vec<(i64, &crate::customer::CustomerState)> = customers
        .into_iter()
        .filter(|(r, _)| *r >= threshold)
        .collect();
    leaders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let mut cumulative = Vec::with_capacity(n + 1);
    cumulative.push(0i64);
    for r in &ascending {
        cumulative.push(cumulative[cumulative.len() - 1] + r);
    }
    let lorenz = (0..=20)
        .map(|k| {
            let x = k as f64 / 20.0;
            // Linear between customers.
            let pos = x * n as f64;
            let j = (pos.floor() as usize).min(n);
            let frac = pos - j as f64;
            let base = cumulative[j] as f64;
            let next = if j < n {
                ascending[j] as f64 * frac
            } else {
                0.0
            };
            LorenzPoint {
                customers_share: x,
                revenue_share: if total > 0 {
                    (base + next) / total as f64
                } else {
                    0.0
                },
            }
        })
        .collect();
    let gini = (n > 0 && total > 0).then(|| {
        let weighted: f64 = ascending
            .iter()
            .enumerate()
            .map(|(i, r)| (i as f64 + 1.0) * *r as f64)
            .sum();
        2.0 * weighted / (n as f64 * total as f64) - (n as f64 + 1.0) / n as f64
    });
    Concentration {
        window_start: format_instant(from),
        window_end: format_instant(to),
        customers: n as u64,
        revenue: total,
        top_20_share: ratio(top_sum as f64, total as f64),
        gini,
        lorenz,
        top_customers: leaders
            .iter()
            .take(10)
            .map(|(r, state)| TopCustomer {
                customer_id: state.id.to_string(),
                user_id: state.user_id.clone(),
                revenue: *r,
            })
            .collect(),
    }
}

/// `mrr` earned over `[from, to)`: within each calendar month, the fraction of the month.
/// `months` are the month starts of the concentration window and the one after it (from
/// [`month_starts`]), so no calendar arithmetic runs per customer.
fn accrued(mrr: i64, from: Millis, to: Millis, months: &[Millis]) -> f64 {
    if mrr == 0 || to <= from {
        return 0.0;
    }
    let mut total = 0.0;
    let first = months.partition_point(|m| *m <= from).saturating_sub(1);
    for bounds in months[first..].windows(2) {
        let (start, end) = (bounds[0], bounds[1]);
        if start >= to {
            break;
        }
        let (at, until) = (from.max(start), end.min(to));
        if until > at {
            total += mrr as f64 * (until - at) as f64 / (end - start) as f64;
        }
    }
    total
}

/// The first instant of every calendar month from the one containing `from` to the first
/// one starting at or after `to`.
fn month_starts(from: Millis, to: Millis) -> Vec<Millis> {
    let grain = super::Grain::Month;
    let mut months = vec![grain.floor(from)];
    while months[months.len() - 1] < to {
        let last = months[months.len() - 1];
        months.push(
            i64::from(grain.next_day(crate::time::day_of(last))) * crate::time::MILLIS_PER_DAY,
        );
    }
    months
}

/// The what-if projection: a baseline from the observed churn and inflow, and the same with
/// churn changed by `churn_change` percent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatIf {
    /// The smoothed logo churn rate of the last complete period.
    pub baseline_churn_rate: Option<f64>,
    pub scenario_churn_rate: Option<f64>,
    /// Average new + reactivated customers per period over the smoothing window.
    pub inflow_per_period: f64,
    pub arpa: Option<f64>,
    pub baseline: Vec<WhatIfPoint>,
    pub scenario: Vec<WhatIfPoint>,
    /// Scenario minus baseline at the horizon: cumulative revenue, minor units.
    pub revenue_difference: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatIfPoint {
    /// Periods after the last one of the report.
    pub period: usize,
    pub customers: f64,
    pub mrr: f64,
    /// Revenue from the start of the projection to the end of this period, minor units.
    pub cumulative_revenue: f64,
}

pub fn what_if(rows: &[SubscriptionRow], query: &Query) -> WhatIf {
    let complete: Vec<&SubscriptionRow> = rows.iter().filter(|r| r.header.complete).collect();
    let last = complete.last().copied().or(rows.last());
    let churn = last.and_then(|r| r.smoothed_logo_churn_rate);
    let window = query.settings.smoothing_periods.min(complete.len()).max(1);
    let recent = &complete[complete.len().saturating_sub(window)..];
    let inflow = if recent.is_empty() {
        0.0
    } else {
        recent
            .iter()
            .map(|r| (r.new_customers + r.reactivated_customers) as f64)
            .sum::<f64>()
            / recent.len() as f64
    };
    let now = rows.last();
    let customers = now.map_or(0.0, |r| r.paying_customers as f64);
    let arpa = now.and_then(|r| r.arpa);
    let scenario_churn = churn.map(|c| (c * (1.0 + query.churn_change / 100.0)).clamp(0.0, 1.0));
    let months = query.grain.months();
    let project = |rate: Option<f64>| -> Vec<WhatIfPoint> {
        let rate = rate.unwrap_or(0.0);
        let a = arpa.unwrap_or(0.0);
        let mut n = customers;
        let mut cumulative = 0.0;
        (1..=query.horizon)
            .map(|period| {
                n = n * (1.0 - rate) + inflow;
                cumulative += n * a * months;
                WhatIfPoint {
                    period,
                    customers: n,
                    mrr: n * a,
                    cumulative_revenue: cumulative,
                }
            })
            .collect()
    };
    let baseline = project(churn);
    let scenario = project(scenario_churn);
    let difference = match (baseline.last(), scenario.last()) {
        (Some(b), Some(s)) => s.cumulative_revenue - b.cumulative_revenue,
        _ => 0.0,
    };
    WhatIf {
        baseline_churn_rate: churn,
        scenario_churn_rate: scenario_churn,
        inflow_per_period: inflow,
        arpa,
        baseline,
        scenario,
        revenue_difference: difference,
    }
}
