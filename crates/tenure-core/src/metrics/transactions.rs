//! Orders per period: repeat purchase rate, purchase frequency, average order value, and
//! the spend of new versus existing customers (docs/metrics.md, "Transactions").

use serde::Serialize;

use super::fold::{Plan, compute};
use super::{Conversion, Dataset, PeriodHeader, Periods, Prepared, Query, ratio};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransactionRow {
    #[serde(flatten)]
    pub header: PeriodHeader,
    pub orders: u64,
    /// Completed orders' revenue, minor units of the reporting currency.
    pub order_revenue: i64,
    /// Refunds made in the period (of orders of any period).
    pub refunds: i64,
    pub net_revenue: i64,
    /// Customers with at least one order in the period.
    pub purchasers: u64,
    /// Purchasers whose first order ever was in the period.
    pub new_purchasers: u64,
    /// Purchasers with two or more orders by the end of the period.
    pub repeat_purchasers: u64,
    pub repeat_purchase_rate: Option<f64>,
    /// Orders per purchaser.
    pub purchase_frequency: Option<f64>,
    pub average_order_value: Option<f64>,
    pub new_customer_revenue: i64,
    pub existing_customer_revenue: i64,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Sums {
    orders: u64,
    revenue: i64,
    refunds: i64,
    purchasers: u64,
    new_purchasers: u64,
    repeat_purchasers: u64,
    new_revenue: i64,
}

pub fn transaction_metrics(data: &Dataset, query: &Query) -> Vec<TransactionRow> {
    compute(data, &TransactionsPlan::new(data, query))
}

pub(crate) struct TransactionsPlan {
    periods: Periods,
    conversion: Conversion,
}

impl TransactionsPlan {
    pub(crate) fn new(data: &Dataset, query: &Query) -> Self {
        Self {
            periods: query.periods(),
            conversion: data.conversion(),
        }
    }
}

impl<'a> Plan<'a> for TransactionsPlan {
    type Acc = Vec<Sums>;
    type Output = Vec<TransactionRow>;
    fn empty(&self) -> Self::Acc {
        vec![Sums::default(); self.periods.len()]
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        let periods = &self.periods;
        let orders = &c.state.orders;
        if orders.is_empty() {
            return;
        }
        let first = periods.index_of(orders[0].at);
        let mut seen = 0u64;
        let mut last_period = None;
        for order in orders {
            seen += 1;
            let Some(i) = periods.index_of(order.at) else {
                continue;
            };
            if order.at > periods.as_of {
                continue;
            }
            let value = self
                .conversion
                .convert(order.revenue.currency, order.revenue.minor)
                .unwrap_or(0);
            let s = &mut acc[i];
            s.orders += 1;
            s.revenue += value;
            if first == Some(i) {
                s.new_revenue += value;
            }
            if last_period != Some(i) {
                s.purchasers += 1;
                if first == Some(i) {
                    s.new_purchasers += 1;
                }
                last_period = Some(i);
            }
            // Counted once per period, when the purchaser's running total reaches
            // two (or already had).
            let next_in_same = orders
                .get(seen as usize)
                .is_some_and(|o| periods.index_of(o.at) == Some(i) && o.at <= periods.as_of);
            if !next_in_same && seen >= 2 {
                s.repeat_purchasers += 1;
            }
        }
        for refund in &c.state.refunds {
            let Some(i) = periods.index_of(refund.at) else {
                continue;
            };
            if refund.at > periods.as_of {
                continue;
            }
            let Some(order) = orders.iter().find(|o| o.order_id == refund.order_id) else {
                continue;
            };
            let minor = refund
                .amount
                .map_or(order.revenue.minor, |a| a.minor.min(order.revenue.minor));
            acc[i].refunds += self
                .conversion
                .convert(order.revenue.currency, minor)
                .unwrap_or(0);
        }
    }
    fn merge(&self, a: &mut Self::Acc, b: Self::Acc) {
        for (x, y) in a.iter_mut().zip(&b) {
            x.orders += y.orders;
            x.revenue += y.revenue;
            x.refunds += y.refunds;
            x.purchasers += y.purchasers;
            x.new_purchasers += y.new_purchasers;
            x.repeat_purchasers += y.repeat_purchasers;
            x.new_revenue += y.new_revenue;
        }
    }
    fn finish(&self, sums: Self::Acc) -> Self::Output {
        let periods = &self.periods;
        sums.iter()
            .enumerate()
            .map(|(i, s)| TransactionRow {
                header: periods.header(i),
                orders: s.orders,
                order_revenue: s.revenue,
                refunds: s.refunds,
                net_revenue: s.revenue - s.refunds,
                purchasers: s.purchasers,
                new_purchasers: s.new_purchasers,
                repeat_purchasers: s.repeat_purchasers,
                repeat_purchase_rate: ratio(s.repeat_purchasers as f64, s.purchasers as f64),
                purchase_frequency: ratio(s.orders as f64, s.purchasers as f64),
                average_order_value: ratio(s.revenue as f64, s.orders as f64),
                new_customer_revenue: s.new_revenue,
                existing_customer_revenue: s.revenue - s.new_revenue,
            })
            .collect()
    }
}
