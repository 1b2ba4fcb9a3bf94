//! The demo business's documented generating process is recovered from Tenure's folded
//! state: churn of monthly subscriptions matches the hidden per-customer hazards, referral
//! share matches its parameter, and referred customers churn less.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use tenure_core::demo::{DemoBusiness, DemoConfig};
use tenure_core::semantic::Interval;
use tenure_core::subscription::FactKind;
use tenure_core::time::{Millis, add_months, parse_instant};
use tenure_core::{Envelope, LiveWorkspace, Message, WorkspaceId};

struct Exposure {
    /// Monthly billing periods at risk (the open last period counts by its elapsed share).
    periods: f64,
    churned: u32,
}

/// Periods at risk and churns of a customer's paid monthly subscriptions, from the folded
/// facts only.
fn monthly_exposure(state: &tenure_core::customer::CustomerState, end: Millis) -> Exposure {
    let mut exposure = Exposure {
        periods: 0.0,
        churned: 0,
    };
    for sub in &state.subscriptions {
        let Some((started_at, terms)) = sub.facts.iter().find_map(|f| match &f.kind {
            FactKind::Started(t) => Some((f.at, t.clone())),
            _ => None,
        }) else {
            continue;
        };
        if terms.interval != Interval::Month {
            continue;
        }
        let paid_from = terms.trial_end.unwrap_or(started_at);
        let cancelled_in_trial = sub
            .facts
            .iter()
            .any(|f| matches!(f.kind, FactKind::Cancelled { .. }) && f.at < paid_from);
        if cancelled_in_trial || paid_from > end {
            continue;
        }
        let renewals = sub
            .facts
            .iter()
            .filter(|f| matches!(f.kind, FactKind::Renewed))
            .count();
        let cancellations = sub
            .facts
            .iter()
            .filter(|f| matches!(f.kind, FactKind::Cancelled { .. }))
            .count() as u32;
        let last_start = add_months(paid_from, renewals as i32);
        let last_end = add_months(last_start, 1);
        let elapsed = ((end.min(last_end) - last_start) as f64 / (last_end - last_start) as f64)
            .clamp(0.0, 1.0);
        exposure.periods += renewals as f64 + elapsed;
        exposure.churned += cancellations;
    }
    exposure
}

#[test]
fn the_generating_process_is_recovered_from_the_folded_state() {
    let end = parse_instant("2026-01-01").unwrap();
    let business = DemoBusiness::new(DemoConfig {
        customers: 1500,
        months: 24,
        seed: 11,
        end,
    });
    let envelope = Envelope {
        received_at: end + 1,
        batch_sent_at: None,
    };
    let mut engine = LiveWorkspace::new(WorkspaceId::parse("ws_demo").unwrap());
    let mut truth = HashMap::new();
    for customer in business.customers() {
        for event in customer.events.iter().cloned() {
            engine.apply(&Message::parse(event, None, envelope).unwrap());
        }
        truth.insert(
            customer.user_id.clone(),
            (
                customer.monthly_churn_hazard,
                customer.referred_by.is_some(),
            ),
        );
    }
    assert_eq!(
        engine.customer_count(),
        1500,
        "anonymous visits merged into their customers"
    );

    let (mut observed, mut expected, mut variance) = (0.0, 0.0, 0.0);
    let mut by_referral: HashMap<bool, (f64, f64)> = HashMap::new();
    let mut referred = 0;
    for state in engine.customers() {
        let user = state.user_id.as_deref().unwrap();
        let (hazard, was_referred) = truth[user];
        let measured_referral = state.acquisition.channel.as_deref() == Some("referral");
        assert_eq!(
            measured_referral, was_referred,
            "{user}: acquisition channel"
        );
        assert_eq!(state.acquisition.referred_by.is_some(), was_referred);
        referred += usize::from(measured_referral);
        let e = monthly_exposure(state, end);
        observed += f64::from(e.churned);
        expected += hazard * e.periods;
        variance += hazard * (1.0 - hazard) * e.periods;
        let entry = by_referral.entry(was_referred).or_default();
        entry.0 += f64::from(e.churned);
        entry.1 += e.periods;
    }
    let sd = variance.sqrt();
    eprintln!(
        "monthly churns: observed {observed}, expected from hidden hazards {expected:.1} ± {sd:.1}"
    );
    assert!(expected > 200.0, "enough churn to test: {expected}");
    assert!(
        (observed - expected).abs() < 3.5 * sd,
        "observed {observed} churns, the generator's hazards expect {expected:.1} ± {sd:.1}"
    );

    let share = referred as f64 / 1500.0;
    let se = (0.15 * 0.85 / 1500.0f64).sqrt();
    assert!((share - 0.15).abs() < 3.5 * se, "referral share {share}");

    let rate = |r: bool| by_referral[&r].0 / by_referral[&r].1;
    eprintln!(
        "referral share {share:.3}; monthly churn referred {:.4} vs others {:.4}",
        rate(true),
        rate(false)
    );
    assert!(
        rate(true) < rate(false) * 0.85,
        "referred customers churn less: {} vs {}",
        rate(true),
        rate(false)
    );
}

/// The metrics engine's logo churn over a year equals, within sampling error, what the
/// generator's hidden hazards predict for the customers it counted at each month's start.
/// The generator draws one decision per billing period (monthly hazard h, annual
/// 1 − (1 − 0.8h)^12), cancels at a uniform instant inside the period and churns at its end.
/// So a customer whose period [s, e) ends in the month churns in it with certainty if it had
/// already cancelled by the month's start, and otherwise with probability
/// p·f / (1 − p·(1 − f)), f = (e − month start) ÷ (e − s): the decision is still to come.
#[test]
fn the_metrics_engine_measures_the_churn_the_generator_used() {
    use tenure_core::metrics::{Query, Report, Table};

    let end = parse_instant("2026-01-01").unwrap();
    let business = DemoBusiness::new(DemoConfig {
        customers: 3000,
        months: 24,
        seed: 5,
        end,
    });
    let envelope = Envelope {
        received_at: end + 1,
        batch_sent_at: None,
    };
    let mut engine = LiveWorkspace::new(WorkspaceId::parse("ws_demo").unwrap());
    let mut hazard = HashMap::new();
    for customer in business.customers() {
        for event in customer.events.iter().cloned() {
            engine.apply(&Message::parse(event, None, envelope).unwrap());
        }
        hazard.insert(customer.user_id.clone(), customer.monthly_churn_hazard);
    }
    let query = Query::parse([("from", "2025-01-01"), ("to", "2025-12-31")], end).unwrap();
    let report = Report::build(&engine, &query, &[], &[Table::Subscriptions]);
    let rows = report.subscriptions.unwrap();
    assert_eq!(rows.len(), 12);
    let observed: u64 = rows.iter().map(|r| r.churned_customers).sum();

    let (mut expected, mut variance, mut certain) = (0.0, 0.0, 0u64);
    for month in 0..12 {
        let start = add_months(parse_instant("2025-01-01").unwrap(), month);
        let next = add_months(start, 1);
        for state in engine.customers() {
            let h = hazard[state.user_id.as_deref().unwrap()];
            for view in state.subscriptions_at(start - 1) {
                use tenure_core::subscription::SubscriptionStatus as S;
                if !(view.status.is_paying() || view.status == S::Paused) {
                    continue;
                }
                let Some(e) = view.ends_at.or(view.current_period_end) else {
                    continue;
                };
                if e < start || e >= next {
                    continue;
                }
                if view.cancelled_at.is_some() {
                    certain += 1;
                    continue;
                }
                let (p, months) = match view.interval {
                    Some(Interval::Month) => (h, 1),
                    Some(Interval::Year) => (1.0 - (1.0 - h * 0.8f64).powi(12), 12),
                    _ => continue,
                };
                let s = add_months(e, -months);
                let f = (e - start) as f64 / (e - s) as f64;
                let q = p * f / (1.0 - p * (1.0 - f));
                expected += q;
                variance += q * (1.0 - q);
            }
        }
    }
    let sd = variance.sqrt();
    let predicted = expected + certain as f64;
    eprintln!(
        "logo churns in 2025: measured {observed}, predicted {predicted:.1} ± {sd:.1} ({certain} already cancelling)"
    );
    assert!(observed > 200, "enough churn to test: {observed}");
    assert!(
        (observed as f64 - predicted).abs() < 3.5 * sd,
        "measured {observed} churns; the generator predicts {predicted:.1} ± {sd:.1}"
    );
}
