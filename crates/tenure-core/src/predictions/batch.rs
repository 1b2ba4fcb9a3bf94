//! What a purchase model predicts for each customer, for many customers at once.
//!
//! The per-customer answers (P(alive), expected purchases, CLV, DERT) are a function of
//! (x, t_x, T) alone, and the expensive one (DERT: a numerical integral per customer under
//! Pareto/NBD) costs the same for every customer. Customers with the same (x, t_x, T) —
//! everyone who bought once on the same day, most of a real base — share one answer, and
//! the distinct ones are computed in parallel. CLV is linear in the value of a purchase, so
//! it is computed per unit of value and scaled per customer.

use rayon::prelude::*;
use tenure_clv::bgnbd::Rft;
use tenure_clv::clv::customer_lifetime_value;
use tenure_clv::purchases::PurchaseModel;

/// What the forecasts cover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizon {
    /// Expected purchases are counted over this many time units.
    pub units: f64,
    /// CLV counts this many months of purchases …
    pub clv_months: u32,
    /// … discounted at this rate a month …
    pub monthly_discount: f64,
    /// … in a time unit of which a month holds this many.
    pub units_per_month: f64,
    /// DERT at this continuous discount rate per time unit, when asked for.
    pub dert_rate: Option<f64>,
}

/// One customer's forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurchaseForecast {
    pub probability_alive: f64,
    /// Purchases expected over [`Horizon::units`].
    pub expected_purchases: f64,
    /// The CLV of purchases worth 1 each: × the expected value of a purchase is the CLV.
    pub clv_per_value: f64,
    /// Discounted expected residual transactions (`None`: not asked for, or the model has
    /// none, or it could not be computed).
    pub dert: Option<f64>,
}

/// The forecast of one customer.
pub fn forecast(model: &PurchaseModel, c: &Rft, horizon: &Horizon) -> PurchaseForecast {
    PurchaseForecast {
        probability_alive: model.probability_alive(c),
        expected_purchases: model.conditional_expected_purchases(horizon.units, c),
        clv_per_value: customer_lifetime_value(
            &|t| model.conditional_expected_purchases(t, c),
            1.0,
            horizon.clv_months,
            horizon.monthly_discount,
            horizon.units_per_month,
        ),
        dert: horizon
            .dert_rate
            .and_then(|rate| model.discounted_expected_residual_transactions(rate, c)),
    }
}

/// The forecast of every customer, in their order: one computation per distinct
/// (x, t_x, T), the distinct ones in parallel. Equal to [`forecast`] customer by customer,
/// to the bit.
pub fn forecast_all(
    model: &PurchaseModel,
    customers: &[Rft],
    horizon: &Horizon,
) -> Vec<PurchaseForecast> {
    let key = |c: &Rft| (c.x.to_bits(), c.t_x.to_bits(), c.t.to_bits());
    let mut order: Vec<usize> = (0..customers.len()).collect();
    order.par_sort_unstable_by_key(|i| key(&customers[*i]));
    let mut distinct: Vec<usize> = Vec::new();
    let mut answer_of = vec![0usize; customers.len()];
    for (k, i) in order.iter().enumerate() {
        if k == 0 || key(&customers[order[k - 1]]) != key(&customers[*i]) {
            distinct.push(*i);
        }
        answer_of[*i] = distinct.len() - 1;
    }
    let answers: Vec<PurchaseForecast> = distinct
        .par_iter()
        .map(|i| forecast(model, &customers[*i], horizon))
        .collect();
    answer_of.into_iter().map(|a| answers[a]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_clv::purchases::PurchaseModelKind;

    /// Batched answers (shared by equal histories, computed in parallel) are the single
    /// customer's answers to the bit, whatever the order of the customers.
    #[test]
    fn a_batch_equals_one_customer_at_a_time() {
        let mut customers = Vec::new();
        for i in 0..400u32 {
            let x = f64::from(i % 5);
            let t = 20.0 + f64::from(i % 13);
            let t_x = if x == 0.0 {
                0.0
            } else {
                t * f64::from(i % 7) / 7.0
            };
            customers.push(Rft { x, t_x, t });
        }
        let horizon = Horizon {
            units: 52.0,
            clv_months: 12,
            monthly_discount: 0.01,
            units_per_month: 4.345,
            dert_rate: Some(0.0023),
        };
        for kind in [PurchaseModelKind::Bgnbd, PurchaseModelKind::ParetoNbd] {
            let (model, fit) = PurchaseModel::fit(kind, &customers);
            assert!(fit.converged, "{kind:?}");
            let batch = forecast_all(&model, &customers, &horizon);
            assert_eq!(batch.len(), customers.len());
            for (c, b) in customers.iter().zip(&batch) {
                let one = forecast(&model, c, &horizon);
                assert_eq!(
                    one.probability_alive.to_bits(),
                    b.probability_alive.to_bits()
                );
                assert_eq!(
                    one.expected_purchases.to_bits(),
                    b.expected_purchases.to_bits()
                );
                assert_eq!(one.clv_per_value.to_bits(), b.clv_per_value.to_bits());
                assert_eq!(one.dert.map(f64::to_bits), b.dert.map(f64::to_bits));
            }
            assert!(batch.iter().any(|b| b.probability_alive < 0.9));
        }
    }
}
