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
    let integral = horizon
        .dert_rate
        .and_then(|rate| model.dert_integral(rate, c.t));
    forecast_with(model, c, horizon, integral)
}

/// The forecast of one customer given the DERT integral of their T.
fn forecast_with(
    model: &PurchaseModel,
    c: &Rft,
    horizon: &Horizon,
    integral: Option<f64>,
) -> PurchaseForecast {
    // The horizon, then the end of each month of the CLV: one call, so that Pareto/NBD
    // computes P(alive) once for all of them.
    let mut at: Vec<f64> = vec![horizon.units];
    at.extend((1..=horizon.clv_months).map(|m| f64::from(m) * horizon.units_per_month));
    let expected = model.conditional_expected_purchases_at(&at, c);
    let month = |t: f64| {
        let m = (t / horizon.units_per_month).round() as usize;
        expected.get(m).copied().unwrap_or(f64::NAN)
    };
    PurchaseForecast {
        probability_alive: model.probability_alive(c),
        expected_purchases: expected[0],
        clv_per_value: customer_lifetime_value(
            &month,
            1.0,
            horizon.clv_months,
            horizon.monthly_discount,
            horizon.units_per_month,
        ),
        dert: integral.and_then(|j| model.dert_with_integral(c, j)),
    }
}

/// The forecast of every customer, in their order: one computation per distinct
/// (x, t_x, T), the distinct ones in parallel, and DERT's integral once per distinct T
/// (observation lengths are whole days: a few hundred values for any number of customers).
/// Equal to [`forecast`] customer by customer, to the bit.
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
    // A model without DERT answers `None` for every T, at no cost.
    let integrals: std::collections::HashMap<u64, f64> = match horizon.dert_rate {
        Some(rate) => {
            let mut ts: Vec<u64> = customers.iter().map(|c| c.t.to_bits()).collect();
            ts.par_sort_unstable();
            ts.dedup();
            ts.into_par_iter()
                .filter_map(|t| Some((t, model.dert_integral(rate, f64::from_bits(t))?)))
                .collect()
        }
        None => Default::default(),
    };
    let answers: Vec<PurchaseForecast> = distinct
        .par_iter()
        .map(|i| {
            let c = &customers[*i];
            let integral = integrals.get(&c.t.to_bits()).copied();
            forecast_with(model, c, horizon, integral)
        })
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
        // Pareto/NBD customers (CDNOW-like parameters, weeks), observed for whole days.
        let mut rng = crate::random::Rng::new(17);
        let mut customers = Vec::new();
        for _ in 0..3_000 {
            let t = f64::from(190 + rng.below(84) as u32) / 7.0;
            let rate = rng.gamma(0.55, 1.0 / 10.5);
            let mu = rng.gamma(0.6, 1.0 / 12.0);
            let death = rng.exponential(1.0 / mu).min(t);
            let (mut now, mut x, mut t_x) = (0.0, 0.0, 0.0);
            loop {
                now += rng.exponential(1.0 / rate);
                if now > death {
                    break;
                }
                x += 1.0;
                t_x = (now * 7.0).floor() / 7.0;
            }
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
                // And each is the model's own answer, computed the plain way.
                let direct_clv = customer_lifetime_value(
                    &|t| model.conditional_expected_purchases(t, c),
                    1.0,
                    horizon.clv_months,
                    horizon.monthly_discount,
                    horizon.units_per_month,
                );
                assert_eq!(one.clv_per_value.to_bits(), direct_clv.to_bits());
                assert_eq!(
                    one.expected_purchases.to_bits(),
                    model.conditional_expected_purchases(52.0, c).to_bits()
                );
                assert_eq!(
                    one.dert.map(f64::to_bits),
                    model
                        .discounted_expected_residual_transactions(0.0023, c)
                        .map(f64::to_bits)
                );
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
