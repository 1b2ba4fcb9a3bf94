//! Values computed once a day for the whole customer base, which segments read as they were
//! at that computation: probability alive and predicted CLV (models fitted on every
//! customer's orders, in `tenure-clv`, by the shell) and the revenue percentile (a rank
//! among all customers). They are frozen because each depends on *other* customers too: a
//! refit or a new rank moves everyone, so the shell computes a new table each UTC day and
//! hands it to the engine, which reconciles every segment at once (docs/segments.md).

use std::collections::HashMap;

use serde::Serialize;

use crate::CustomerId;

/// One customer's values in a day's table.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct CustomerValues {
    /// Probability of still being a customer (BG/NBD or Pareto/NBD); absent without orders
    /// in the model's currency, or without a model.
    pub p_alive: Option<f64>,
    /// Discounted value of the next 12 months of orders, major units of the model's
    /// currency; absent without a spend model.
    pub predicted_clv: Option<f64>,
    /// 0–100: the share of customers with revenue whose revenue is at most this customer's
    /// (100: the top); absent without revenue in the trailing 12 months.
    pub revenue_percentile: Option<f64>,
}

/// A day's table.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DailyValues {
    /// The UTC day the values are as of (their models fitted with data up to its start).
    pub day: i32,
    /// The currency of `predicted_clv`.
    pub currency: Option<String>,
    pub customers: HashMap<CustomerId, CustomerValues>,
}

impl DailyValues {
    pub fn get(&self, id: &CustomerId) -> Option<&CustomerValues> {
        self.customers.get(id)
    }

    /// Sets each customer's `revenue_percentile` from everyone's revenue (customers without
    /// revenue get none): `100 × (customers with revenue ≤ theirs) ÷ customers with revenue`.
    pub fn set_revenue_percentiles(&mut self, revenue: &[(CustomerId, i64)]) {
        let mut positive: Vec<i64> = revenue.iter().map(|(_, r)| *r).filter(|r| *r > 0).collect();
        positive.sort_unstable();
        let n = positive.len() as f64;
        for (id, r) in revenue.iter().filter(|(_, r)| *r > 0) {
            let at_most = positive.partition_point(|x| x <= r) as f64;
            self.customers
                .entry(id.clone())
                .or_default()
                .revenue_percentile = Some(100.0 * at_most / n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_rank_ties_together_and_skip_customers_without_revenue() {
        let id = |s: &str| CustomerId::parse(s).unwrap();
        let revenue = [
            (id("cus_a"), 100),
            (id("cus_b"), 300),
            (id("cus_c"), 300),
            (id("cus_d"), 0),
            (id("cus_e"), 50),
        ];
        let mut table = DailyValues::default();
        table.set_revenue_percentiles(&revenue);
        let p = |s: &str| table.get(&id(s)).and_then(|v| v.revenue_percentile);
        assert_eq!(p("cus_e"), Some(25.0));
        assert_eq!(p("cus_a"), Some(50.0));
        assert_eq!(p("cus_b"), Some(100.0));
        assert_eq!(p("cus_c"), Some(100.0));
        assert_eq!(p("cus_d"), None);
    }
}
