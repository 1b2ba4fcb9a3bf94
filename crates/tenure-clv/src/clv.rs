//! Customer lifetime value: a purchase model × the Gamma-Gamma spend model, discounted with
//! the convention of `lifetimes.utils._customer_lifetime_value` so results compare:
//!
//! CLV = Σ_{m=1}^{months} E[value] · (E[Y(m·u)] − E[Y((m−1)·u)]) / (1 + d)^m
//!
//! where E[Y(t)] is the expected number of purchases in the next t time units, u the number of
//! time units in a month (`lifetimes`: 30 for days, 4.345 for weeks, 1 for months) and d the
//! monthly discount rate.

/// Time units per month in `lifetimes`' convention.
pub fn units_per_month(unit_days: f64) -> f64 {
    if (unit_days - 1.0).abs() < 1e-9 {
        30.0
    } else if (unit_days - 7.0).abs() < 1e-9 {
        4.345
    } else {
        30.0 / unit_days
    }
}

/// Discounted value of a customer's expected purchases over `months` months.
/// `expected_purchases(t)` is E[Y(t)] for the customer (cumulative, in time units).
pub fn customer_lifetime_value(
    expected_purchases: &dyn Fn(f64) -> f64,
    expected_value: f64,
    months: u32,
    monthly_discount: f64,
    units_per_month: f64,
) -> f64 {
    let mut value = 0.0;
    let mut previous = 0.0;
    for m in 1..=months {
        let cumulative = expected_purchases(f64::from(m) * units_per_month);
        value += expected_value * (cumulative - previous) / (1.0 + monthly_discount).powi(m as i32);
        previous = cumulative;
    }
    value
}
