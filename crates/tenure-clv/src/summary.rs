//! From a transaction log to the per-customer summaries the models take, with the
//! conventions of `lifetimes.utils.summary_data_from_transaction_data`:
//!
//! - transactions of a customer on the same day are one purchase (values added);
//! - the first purchase starts the customer's clock and is not a repeat purchase;
//! - x = repeat purchases up to the calibration end (inclusive), t_x = time from the first
//!   to the last of them, T = time from the first purchase to the calibration end;
//! - mean value = mean of the repeat purchases' values (0 when x = 0);
//! - customers whose first purchase is after the calibration end are left out;
//! - with a holdout end, purchases after the calibration end and up to it are counted
//!   (`holdout_x`, `holdout_value`) over `holdout_duration`.
//!
//! Times are in the caller's unit (`unit_days`: 1 for days, 7 for weeks, 365.25 / 12 for
//! months). Input is a list of (customer index, day number, value); sorting 10 million of
//! them takes about a second.

use serde::Serialize;

/// One purchase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Transaction {
    /// The caller's index for the customer (map external ids to 0..n).
    pub customer: u32,
    /// Days since any fixed epoch (the same for every transaction).
    pub day: i32,
    /// Its value (any currency unit; 0 when values are not used).
    pub value: f64,
}

/// A customer's calibration summary (and holdout counts), in the caller's time unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CustomerSummary {
    /// The caller's index for the customer.
    pub customer: u32,
    /// Repeat purchases up to the calibration end (`frequency` in `lifetimes`).
    pub x: f64,
    /// Time from the first to the last repeat purchase (`recency`).
    pub t_x: f64,
    /// Time from the first purchase to the calibration end (`T`).
    pub t: f64,
    /// Mean value of the repeat purchases (`monetary_value`; 0 without repeats).
    pub mean_value: f64,
    /// Value of the first purchase.
    pub first_value: f64,
    /// Purchases in the holdout.
    pub holdout_x: f64,
    /// Their total value.
    pub holdout_value: f64,
    /// Length of the holdout (same for every customer).
    pub holdout_duration: f64,
}

/// Summarises transactions (reordered in place) for calibration up to `calibration_end`
/// and, optionally, a holdout up to `holdout_end` (both day numbers, inclusive).
pub fn summarize(
    transactions: &mut [Transaction],
    calibration_end: i32,
    holdout_end: Option<i32>,
    unit_days: f64,
) -> Vec<CustomerSummary> {
    transactions.sort_unstable_by_key(|t| (t.customer, t.day));
    let holdout_end = holdout_end.unwrap_or(calibration_end);
    let mut out = Vec::new();
    let mut i = 0;
    while i < transactions.len() {
        let customer = transactions[i].customer;
        let mut j = i;
        while j < transactions.len() && transactions[j].customer == customer {
            j += 1;
        }
        if let Some(summary) =
            summarize_customer(&transactions[i..j], calibration_end, holdout_end, unit_days)
        {
            out.push(summary);
        }
        i = j;
    }
    out
}

fn summarize_customer(
    transactions: &[Transaction],
    calibration_end: i32,
    holdout_end: i32,
    unit_days: f64,
) -> Option<CustomerSummary> {
    // Purchases: one per distinct day, values added.
    let mut days: Vec<(i32, f64)> = Vec::with_capacity(transactions.len());
    for t in transactions {
        match days.last_mut() {
            Some((day, value)) if *day == t.day => *value += t.value,
            _ => days.push((t.day, t.value)),
        }
    }
    let (first_day, first_value) = *days.first()?;
    if first_day > calibration_end {
        return None;
    }
    let repeat: Vec<&(i32, f64)> = days
        .iter()
        .skip(1)
        .filter(|(d, _)| *d <= calibration_end)
        .collect();
    let holdout: Vec<&(i32, f64)> = days
        .iter()
        .filter(|(d, _)| *d > calibration_end && *d <= holdout_end)
        .collect();
    let x = repeat.len() as f64;
    let last_day = repeat.last().map_or(first_day, |(d, _)| *d);
    let mean_value = if repeat.is_empty() {
        0.0
    } else {
        repeat.iter().map(|(_, v)| v).sum::<f64>() / x
    };
    Some(CustomerSummary {
        customer: transactions[0].customer,
        x,
        t_x: f64::from(last_day - first_day) / unit_days,
        t: f64::from(calibration_end - first_day) / unit_days,
        mean_value,
        first_value,
        holdout_x: holdout.len() as f64,
        holdout_value: holdout.iter().map(|(_, v)| v).sum(),
        holdout_duration: f64::from(holdout_end - calibration_end) / unit_days,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            days_from_civil(1997, 9, 30) - days_from_civil(1997, 1, 1),
            272
        );
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn same_day_purchases_merge_and_the_first_is_not_a_repeat() {
        let mut t = vec![
            Transaction {
                customer: 0,
                day: 10,
                value: 5.0,
            },
            Transaction {
                customer: 0,
                day: 17,
                value: 2.0,
            },
            Transaction {
                customer: 0,
                day: 17,
                value: 3.0,
            },
            Transaction {
                customer: 0,
                day: 31,
                value: 9.0,
            },
            Transaction {
                customer: 0,
                day: 50,
                value: 1.0,
            },
            Transaction {
                customer: 1,
                day: 40,
                value: 4.0,
            },
        ];
        let s = summarize(&mut t, 38, Some(52), 7.0);
        assert_eq!(s.len(), 1, "customer 1 starts after the calibration end");
        let c = s[0];
        assert_eq!((c.x, c.t_x, c.t), (2.0, 3.0, 4.0));
        assert_eq!(c.mean_value, 7.0);
        assert_eq!(
            (c.holdout_x, c.holdout_value, c.holdout_duration),
            (1.0, 1.0, 2.0)
        );
    }
}
