//! The day's table segments read (`p_alive`, `predicted_clv`, `revenue_percentile`,
//! docs/segments.md): each customer's probability alive and predicted 12-month CLV under the
//! order models fitted now on every customer's orders, and their percentile by revenue over
//! the trailing 12 months, counted as `concentration` counts it.

use std::collections::HashMap;

use super::NoModel;
use super::orders::OrderModels;
use crate::customer::CustomerState;
use crate::engine::Engine;
use crate::metrics::{Dataset, Query, revenue_by_customer};
use crate::segments::{CustomerValues, DailyValues};
use crate::time::{Millis, day_of};

/// The day's table, and why the order models could not be fitted (then the table has
/// revenue percentiles only).
pub fn daily_values(engine: &Engine, now: Millis) -> (DailyValues, Option<NoModel>) {
    let customers: Vec<&CustomerState> = engine.customers().collect();
    let mut table = DailyValues {
        day: day_of(now),
        currency: None,
        customers: HashMap::new(),
    };
    let missing = match OrderModels::fit(engine, now) {
        Ok(models) => {
            table.currency = Some(models.currency.as_str().to_owned());
            table.customers = models
                .predict_all(&customers)
                .into_iter()
                .map(|(c, p)| {
                    (
                        c.id.clone(),
                        CustomerValues {
                            p_alive: Some(p.probability_alive),
                            predicted_clv: p.predicted_clv_12_months,
                            revenue_percentile: None,
                        },
                    )
                })
                .collect();
            None
        }
        Err(why) => Some(why),
    };
    if let Ok(query) = Query::parse(std::iter::empty::<(&str, &str)>(), now)
        .map(|q| q.with_workspace_renewals(engine.renewals()))
    {
        let data = Dataset::prepare(&customers, &query);
        table.set_revenue_percentiles(&revenue_by_customer(&data, &query));
    }
    (table, missing)
}
