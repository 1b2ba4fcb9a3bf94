#![allow(clippy::unwrap_used)]
//! Every metric on small businesses whose numbers were worked out by hand (the derivations
//! are in the comments, in minor units: 10000 = $100.00).

use serde_json::{Value, json};
use tenure_core::LiveWorkspace;
use tenure_core::metrics::{Query, Report, Spend, Table, what_if};
use tenure_core::money::Currency;
use tenure_core::time::{Millis, parse_instant};
use tenure_core::{Envelope, Message, WorkspaceId};

fn at(text: &str) -> Millis {
    parse_instant(text).unwrap()
}

fn fold(messages: &[Value]) -> LiveWorkspace {
    let mut engine = LiveWorkspace::new(WorkspaceId::parse("ws_metrics").unwrap());
    let envelope = Envelope {
        received_at: at("2026-06-01T00:00:00Z"),
        batch_sent_at: None,
    };
    for (i, m) in messages.iter().enumerate() {
        let message = Message::parse(m.clone(), None, envelope).unwrap_or_else(|e| panic!("{e:?}"));
        engine.apply(&message);
        engine.advance_to(i as i64 + 1);
    }
    engine
}

fn track(user: &str, when: &str, event: &str, properties: Value) -> Value {
    json!({"type": "track", "userId": user, "event": event, "timestamp": when, "properties": properties})
}

fn start(user: &str, when: &str, sub: &str, interval: &str, amount: f64) -> Value {
    track(
        user,
        when,
        "Subscription Started",
        json!({"subscription_id": sub, "plan": "pro", "interval": interval, "amount": amount, "currency": "USD"}),
    )
}

fn sub_event(user: &str, when: &str, event: &str, sub: &str) -> Value {
    track(user, when, event, json!({"subscription_id": sub}))
}

/// The subscription business of the derivations below.
fn subscriptions() -> Vec<Value> {
    vec![
        // A: $100/month since 2025-12-10, renewed monthly, upgraded to $150 on 02-20.
        start("A", "2025-12-10T00:00:00Z", "a", "month", 100.0),
        sub_event("A", "2026-01-10T00:00:00Z", "Subscription Renewed", "a"),
        sub_event("A", "2026-02-10T00:00:00Z", "Subscription Renewed", "a"),
        track(
            "A",
            "2026-02-20T00:00:00Z",
            "Subscription Changed",
            json!({"subscription_id": "a", "plan": "max", "interval": "month", "amount": 150, "currency": "USD"}),
        ),
        sub_event("A", "2026-03-10T00:00:00Z", "Subscription Renewed", "a"),
        sub_event("A", "2026-04-10T00:00:00Z", "Subscription Renewed", "a"),
        // A refunded order never touches MRR.
        track(
            "A",
            "2026-01-15T00:00:00Z",
            "Order Completed",
            json!({"order_id": "o1", "revenue": 50, "currency": "USD"}),
        ),
        track(
            "A",
            "2026-01-16T00:00:00Z",
            "Order Refunded",
            json!({"order_id": "o1"}),
        ),
        // B: $50/month from 01-05, referred, paid channel; cancels 02-15, paid until 03-05.
        json!({"type": "identify", "userId": "B", "timestamp": "2026-01-05T00:00:00Z", "traits": {"acquisition_channel": "paid"}}),
        track(
            "B",
            "2026-01-05T00:00:00Z",
            "Referral Code Used",
            json!({"code": "R1", "referrer_id": "A"}),
        ),
        start("B", "2026-01-05T00:00:00Z", "b", "month", 50.0),
        sub_event("B", "2026-02-05T00:00:00Z", "Subscription Renewed", "b"),
        sub_event("B", "2026-02-15T00:00:00Z", "Subscription Cancelled", "b"),
        // C: joins 03-03 and is gone by 03-20 (an explicit end): joined and churned in March.
        start("C", "2026-03-03T00:00:00Z", "c", "month", 30.0),
        track(
            "C",
            "2026-03-04T00:00:00Z",
            "Subscription Cancelled",
            json!({"subscription_id": "c", "ends_at": "2026-03-20T00:00:00Z"}),
        ),
        // D: annual $1200 (MRR 10000) since 2025-06-01, paused through February.
        start("D", "2025-06-01T00:00:00Z", "d", "year", 1200.0),
        sub_event("D", "2026-02-01T00:00:00Z", "Subscription Paused", "d"),
        sub_event("D", "2026-03-01T00:00:00Z", "Subscription Resumed", "d"),
        // E: $40/month from 2025-11-01, churns 2026-01-01, comes back 03-15 at $60.
        start("E", "2025-11-01T00:00:00Z", "e1", "month", 40.0),
        sub_event("E", "2025-12-01T00:00:00Z", "Subscription Renewed", "e1"),
        sub_event("E", "2025-12-15T00:00:00Z", "Subscription Cancelled", "e1"),
        start("E", "2026-03-15T00:00:00Z", "e2", "month", 60.0),
        // F: a trial 01-25 → 02-08, then $20/month.
        track(
            "F",
            "2026-01-25T00:00:00Z",
            "Subscription Started",
            json!({"subscription_id": "f", "plan": "pro", "interval": "month", "amount": 20, "currency": "USD", "trial_end": "2026-02-08T00:00:00Z"}),
        ),
        sub_event("F", "2026-03-08T00:00:00Z", "Subscription Renewed", "f"),
        sub_event("F", "2026-04-08T00:00:00Z", "Subscription Renewed", "f"),
        // G: $10/month from 01-02, never renewed: past due from 02-02, churned 30 days later
        // (03-04). Paid channel.
        json!({"type": "identify", "userId": "G", "timestamp": "2026-01-02T00:00:00Z", "traits": {"acquisition_channel": "paid"}}),
        start("G", "2026-01-02T00:00:00Z", "g", "month", 10.0),
        // H: $100/month with $25 off from 04-01.
        track(
            "H",
            "2026-04-01T00:00:00Z",
            "Subscription Started",
            json!({"subscription_id": "h", "plan": "pro", "interval": "month", "amount": 100, "discount": 25, "currency": "USD"}),
        ),
    ]
}

/// The derivations read this business as a billing source (every period needs its
/// renewal: G churns for not paying), so they run under `renewals=explicit`; a parameter
/// given by the test wins. The default `auto` is tested on its own below.
fn query(params: &[(&str, &str)]) -> Query {
    let mut pairs = vec![("from", "2026-01-01"), ("to", "2026-04-30")];
    if !params.iter().any(|(k, _)| *k == "renewals") {
        pairs.push(("renewals", "explicit"));
    }
    pairs.extend_from_slice(params);
    Query::parse(pairs, at("2026-05-15T00:00:00Z")).unwrap()
}

fn report(engine: &LiveWorkspace, q: &Query, table: Table) -> Value {
    serde_json::to_value(Report::build(engine, q, &[], &[table])).unwrap()
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap_or_else(|| panic!("{a} is not a number"));
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn mrr_movements_reconcile_and_match_the_hand_derivation() {
    let engine = fold(&subscriptions());
    let r = report(&engine, &query(&[]), Table::Subscriptions);
    let rows = r["subscriptions"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    // period, start, new, expansion, contraction, churned, reactivation, end
    let expected = [
        ("2026-01", 24000, 6000, 0, 0, 4000, 0, 26000),
        ("2026-02", 26000, 2000, 5000, 10000, 0, 0, 23000),
        ("2026-03", 23000, 0, 10000, 0, 6000, 6000, 33000),
        ("2026-04", 33000, 7500, 0, 0, 0, 0, 40500),
    ];
    for (row, e) in rows.iter().zip(expected) {
        assert_eq!(row["period"], e.0);
        let got = [
            "mrr_start",
            "new_mrr",
            "expansion_mrr",
            "contraction_mrr",
            "churned_mrr",
            "reactivation_mrr",
            "mrr",
        ]
        .map(|k| row[k].as_i64().unwrap());
        assert_eq!(got, [e.1, e.2, e.3, e.4, e.5, e.6, e.7], "{}", e.0);
        assert_eq!(e.1 + e.2 + e.3 + e.6 - e.4 - e.5, e.7, "reconciles");
    }
    // Logos: customers (paying or paused) at start, churned, joined-and-churned.
    let logos = |i: usize| {
        [
            "customers_start",
            "churned_customers",
            "joined_and_churned_customers",
            "new_customers",
            "reactivated_customers",
        ]
        .map(|k| rows[i][k].as_u64().unwrap())
    };
    assert_eq!(logos(0), [3, 1, 0, 2, 0]); // E churns; B and G are new
    assert_eq!(logos(1), [4, 0, 0, 1, 0]); // F converts from trial; D pauses (not churn)
    assert_eq!(logos(2), [5, 2, 1, 0, 1]); // B and G churn; C joins and leaves; E is back
    close(&rows[0]["logo_churn_rate"], 1.0 / 3.0);
    close(&rows[2]["logo_churn_rate"], 0.4);
    close(&rows[0]["net_revenue_retention"], 20000.0 / 24000.0);
    close(&rows[1]["gross_revenue_retention"], 1.0 - 10000.0 / 26000.0);
    close(&rows[2]["net_revenue_retention"], 27000.0 / 23000.0);
    close(&rows[2]["quick_ratio"], 16000.0 / 6000.0);
    close(&rows[0]["arpa"], 26000.0 / 4.0);
    close(&rows[0]["ltv"], 6500.0 * 3.0);
    close(&rows[0]["expected_lifetime"], 3.0);
    // Zero churn: lifetime and LTV are undefined, never 0.
    close(&rows[1]["logo_churn_rate"], 0.0);
    assert!(rows[1]["ltv"].is_null());
    assert!(rows[1]["expected_lifetime"].is_null());
    // Six-period smoothing reaches back into 2025 (Aug–Dec: no churn).
    close(&rows[0]["smoothed_logo_churn_rate"], (1.0 / 3.0) / 6.0);
    close(
        &rows[2]["smoothed_logo_churn_rate"],
        (1.0 / 3.0 + 0.4) / 6.0,
    );
    assert!(rows.iter().all(|r| r["complete"] == true));
}

/// Issue 16, item 9: a source that sends only start, change and cancel was read as mass
/// churn. G never renewed: under `explicit` it churns in March; under the default `auto`
/// (no renewal ever seen for it) and under `implicit` it renews itself, and nothing else
/// in this business changes (every other subscription is renewed on its period ends, or
/// ends before it would need a renewal).
#[test]
fn renewal_policies_read_a_source_without_renewals() {
    let engine = fold(&subscriptions());
    let movements = |params: &[(&str, &str)]| {
        let r = report(&engine, &query(params), Table::Subscriptions);
        r["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                ["churned_mrr", "mrr", "churned_customers"].map(|k| row[k].as_i64().unwrap())
            })
            .collect::<Vec<_>>()
    };
    let explicit = movements(&[("renewals", "explicit")]);
    assert_eq!(explicit[2], [6000, 33000, 2], "B and G churn in March");
    for policy in ["auto", "implicit"] {
        let got = movements(&[("renewals", policy)]);
        assert_eq!(got[2], [5000, 34000, 1], "{policy}: only B churns in March");
        assert_eq!(got[3], [0, 41500, 0], "{policy}: G still pays in April");
        assert_eq!(
            got[..2],
            explicit[..2],
            "{policy}: January and February unchanged"
        );
    }
    // The engine's own view (profiles, segments, health) follows the default, auto.
    let g = engine.find("G").unwrap();
    let view = g.subscriptions[0].view_at(at("2026-05-15T00:00:00Z"));
    assert_eq!(
        view.status,
        tenure_core::subscription::SubscriptionStatus::Active
    );
    assert_eq!(view.current_period_end, Some(at("2026-06-02T00:00:00Z")));
    assert!(Query::parse(vec![("renewals", "sometimes")], 0).is_err());
}

/// A self-renewing subscription's first `Subscription Renewed` pays for the period of the
/// cycle boundary nearest to it, and from then on each period needs one (auto).
#[test]
fn the_first_renewal_of_a_self_renewing_subscription_keeps_its_cycle() {
    let engine = fold(&[
        start("R", "2026-01-10T00:00:00Z", "r", "month", 10.0),
        // Three months without renewals, then a billing source starts sending them: one
        // hour after the 04-10 boundary pays for 04-10 → 05-10.
        sub_event("R", "2026-04-10T01:00:00Z", "Subscription Renewed", "r"),
    ]);
    let r = &engine.find("R").unwrap().subscriptions[0];
    assert_eq!(
        r.view_at(at("2026-04-20T00:00:00Z")).current_period_end,
        Some(at("2026-05-10T00:00:00Z"))
    );
    use tenure_core::subscription::SubscriptionStatus::{Active, Ended, PastDue};
    assert_eq!(r.view_at(at("2026-03-20T00:00:00Z")).status, Active);
    // Now explicit: no renewal for 05-10, so past due, then churned 30 days later.
    assert_eq!(r.view_at(at("2026-05-20T00:00:00Z")).status, PastDue);
    assert_eq!(r.view_at(at("2026-06-10T00:00:00Z")).status, Ended);
}

/// Implicit periods keep the cycle's day (no drift to the 28th), run on through a pause,
/// and a cancellation ends the subscription at the end of the period it falls in.
#[test]
fn implicit_periods_are_anchored_and_run_through_a_pause() {
    let engine = fold(&[
        start("S", "2026-01-31T00:00:00Z", "s", "month", 10.0),
        sub_event("S", "2026-04-10T00:00:00Z", "Subscription Paused", "s"),
        sub_event("S", "2026-05-05T00:00:00Z", "Subscription Cancelled", "s"),
    ]);
    let s = &engine.find("S").unwrap().subscriptions[0];
    let end_at = |when: &str| s.view_at(at(when)).current_period_end;
    assert_eq!(
        end_at("2026-02-15T00:00:00Z"),
        Some(at("2026-02-28T00:00:00Z"))
    );
    assert_eq!(
        end_at("2026-03-15T00:00:00Z"),
        Some(at("2026-03-31T00:00:00Z"))
    );
    assert_eq!(
        end_at("2026-04-05T00:00:00Z"),
        Some(at("2026-04-30T00:00:00Z"))
    );
    use tenure_core::subscription::SubscriptionStatus::{Ended, Paused};
    let view = s.view_at(at("2026-05-20T00:00:00Z"));
    assert_eq!(
        (view.status, view.ends_at),
        (Paused, Some(at("2026-05-31T00:00:00Z")))
    );
    assert_eq!(s.view_at(at("2026-05-31T00:00:00Z")).status, Ended);
}

#[test]
fn settings_move_churn_and_discounts_as_documented() {
    let engine = fold(&subscriptions());
    let get = |params: &[(&str, &str)], i: usize, key: &str| {
        report(&engine, &query(params), Table::Subscriptions)["subscriptions"][i][key].clone()
    };
    // Churn at cancellation: B leaves in February (02-15) instead of March.
    assert_eq!(
        get(&[("churn_date", "cancellation")], 1, "churned_mrr"),
        5000
    );
    assert_eq!(
        get(&[("churn_date", "cancellation")], 2, "churned_mrr"),
        1000
    );
    // No past-due grace: G churns at its period end (02-02).
    assert_eq!(get(&[("past_due_days", "0")], 1, "churned_mrr"), 1000);
    // List prices: H's discount is ignored.
    assert_eq!(get(&[("discounts", "ignore")], 3, "new_mrr"), 10000);
    // E comes back 73 days after leaving: outside a 30-day window it is new business.
    assert_eq!(
        get(&[("reactivation_window_days", "30")], 2, "reactivation_mrr"),
        0
    );
    assert_eq!(
        get(&[("reactivation_window_days", "30")], 2, "new_mrr"),
        6000
    );
    assert_eq!(
        get(&[("reactivation_window_days", "90")], 2, "reactivation_mrr"),
        6000
    );
    // Filters: B's referral code makes it a referral customer; the paid channel is G.
    assert_eq!(get(&[("channel", "paid")], 0, "new_mrr"), 1000);
    assert_eq!(get(&[("channel", "referral")], 0, "new_mrr"), 5000);
    assert_eq!(get(&[("channel", "paid")], 0, "mrr_start"), 0);
    // The plan filter uses the latest plan: only A moved to `max`.
    assert_eq!(get(&[("plan", "max")], 3, "mrr"), 15000);
}

#[test]
fn cohorts_by_first_paid_period() {
    let engine = fold(&subscriptions());
    let r = report(&engine, &query(&[]), Table::Cohorts);
    let rows = r["cohorts"]["rows"].as_array().unwrap();
    let sizes: Vec<u64> = rows
        .iter()
        .map(|r| r["customers"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [2, 1, 1, 1]); // Jan: B, G; Feb: F; Mar: C; Apr: H
    assert_eq!(rows[0]["initial_mrr"], 6000);
    let logo = |c: usize| -> Vec<f64> {
        rows[c]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|cell| cell["logo_retention"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(logo(0), [1.0, 1.0, 0.0, 0.0]);
    assert_eq!(logo(1), [1.0, 1.0, 1.0]);
    assert_eq!(logo(2), [0.0, 0.0]);
    let avg = r["cohorts"]["average"].as_array().unwrap();
    close(&avg[0]["logo_retention"], 4.0 / 5.0);
    close(&avg[0]["net_mrr_retention"], 15500.0 / 18500.0);
    close(&avg[1]["logo_retention"], 3.0 / 4.0);
    close(&avg[2]["logo_retention"], 1.0 / 3.0);
    // Empty cohorts are not averaged: from July 2025, four of the ten cohorts are empty.
    let r = report(&engine, &query(&[("from", "2025-07-01")]), Table::Cohorts);
    let rows = r["cohorts"]["rows"].as_array().unwrap();
    let non_empty = rows.iter().filter(|r| r["customers"] != 0).count();
    assert_eq!(rows.len(), 10);
    assert_eq!(r["cohorts"]["average"][0]["cohorts"], non_empty as u64);
    assert_eq!(non_empty, 6); // Nov (E), Dec (A), Jan, Feb, Mar, Apr
}

#[test]
fn a_running_period_is_marked_and_its_cells_are_not_averaged() {
    let engine = fold(&subscriptions());
    let q = Query::parse([("from", "2026-03-01")], at("2026-04-20T00:00:00Z")).unwrap();
    let r = report(&engine, &q, Table::Cohorts);
    assert_eq!(r["cohorts"]["rows"][1]["cells"][0]["complete"], false);
    // April's cohort is still running: the age-0 average is March's alone (C: 0 of 1).
    assert_eq!(r["cohorts"]["average"][0]["cohorts"], 1);
    let subs = report(&engine, &q, Table::Subscriptions);
    assert_eq!(subs["subscriptions"][1]["complete"], false);
    // Values of the running period are read at the report instant: H (04-01) is in.
    assert_eq!(subs["subscriptions"][1]["new_mrr"], 7500);
}

#[test]
fn a_late_event_changes_its_own_closed_period_only() {
    let mut events = subscriptions();
    let before = report(&fold(&events), &query(&[]), Table::Subscriptions);
    // A late event: F cancelled on 02-01, during its trial (a trial cancellation ends at
    // once), arriving after the report above.
    events.push(sub_event(
        "F",
        "2026-02-01T00:00:00Z",
        "Subscription Cancelled",
        "f",
    ));
    let after = report(&fold(&events), &query(&[]), Table::Subscriptions);
    let (b, a) = (&before["subscriptions"], &after["subscriptions"]);
    assert_eq!(a[0], b[0], "January is untouched");
    assert_eq!(b[1]["new_mrr"], 2000);
    assert_eq!(a[1]["new_mrr"], 0, "F never converts");
}

fn activity_business() -> Vec<Value> {
    let viewed = |u: &str, d: &str| track(u, &format!("{d}T12:00:00Z"), "Report Viewed", json!({}));
    vec![
        viewed("X1", "2026-01-05"),
        viewed("X1", "2026-02-10"),
        viewed("X1", "2026-04-02"),
        viewed("X2", "2026-01-20"),
        viewed("X2", "2026-03-03"),
        viewed("X2", "2026-03-03"),
        viewed("X3", "2026-02-14"),
        viewed("X3", "2026-02-15"),
        // Other events do not count when the query names one.
        track("X3", "2026-03-01T00:00:00Z", "Logged In", json!({})),
    ]
}

fn retention(engine: &LiveWorkspace, params: &[(&str, &str)]) -> Vec<Vec<u64>> {
    let mut p = vec![("event", "Report Viewed")];
    p.extend_from_slice(params);
    returned(&report(engine, &query(&p), Table::Activity))
}

/// The activity table's returning customers, cohort by cohort.
fn returned(report: &Value) -> Vec<Vec<u64>> {
    report["activity"]["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["returned"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn activity_retention_in_every_mode() {
    let engine = fold(&activity_business());
    // First-time calendar cohorts: Jan {X1, X2}, Feb {X3}.
    assert_eq!(
        retention(&engine, &[]),
        [vec![2, 1, 1, 1], vec![1, 0, 0], vec![0, 0], vec![0]]
    );
    assert_eq!(
        retention(&engine, &[("mode", "on_or_after")]),
        [vec![2, 2, 2, 1], vec![1, 0, 0], vec![0, 0], vec![0]]
    );
    // Two views in an interval to count: only X2's March.
    assert_eq!(
        retention(&engine, &[("min_occurrences", "2")])[0],
        [2, 0, 1, 0]
    );
    // Recurring: Jan {X1, X2}, Feb {X1, X3}, Mar {X2}, Apr {X1}.
    assert_eq!(
        retention(&engine, &[("cohort_kind", "recurring")]),
        [vec![2, 1, 1, 1], vec![2, 0, 1], vec![1, 0], vec![1]]
    );
    // Rolling months from each first day: X1 (Jan 5) back in [Feb 5, Mar 5) and
    // [Mar 5, Apr 5); X2 (Jan 20) in [Feb 20, Mar 20).
    assert_eq!(
        retention(&engine, &[("window", "rolling")])[0],
        [2, 2, 1, 0]
    );
    let r = report(
        &engine,
        &query(&[("event", "Report Viewed")]),
        Table::Activity,
    );
    close(&r["activity"]["average"][1], 1.0 / 3.0); // Jan 1 of 2 + Feb 0 of 1
}

#[test]
fn lifecycle_and_stickiness() {
    let engine = fold(&activity_business());
    let q = query(&[("event", "Report Viewed")]);
    let r = report(&engine, &q, Table::Lifecycle);
    let stages: Vec<[u64; 4]> = r["lifecycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            ["new", "returning", "resurrecting", "dormant"].map(|k| row[k].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        stages,
        [[2, 0, 0, 0], [1, 1, 0, 1], [0, 0, 1, 2], [0, 0, 1, 1]]
    );
    let r = report(&engine, &q, Table::Stickiness);
    let feb = &r["stickiness"][1];
    assert_eq!(feb["active_customers"], 2);
    assert_eq!(feb["customers_by_active_days"][0], 1);
    assert_eq!(feb["customers_by_active_days"][1], 1);
    close(&feb["mean_active_days"], 1.5);
}

#[test]
fn transactions_per_period() {
    let order = |u: &str, d: &str, id: &str, revenue: f64| {
        track(
            u,
            &format!("{d}T10:00:00Z"),
            "Order Completed",
            json!({"order_id": id, "revenue": revenue, "currency": "USD"}),
        )
    };
    let engine = fold(&[
        order("P1", "2026-01-03", "1", 10.0),
        order("P1", "2026-01-20", "2", 30.0),
        order("P1", "2026-03-05", "3", 20.0),
        track(
            "P1",
            "2026-02-02T00:00:00Z",
            "Order Refunded",
            json!({"order_id": "2", "revenue": 5, "currency": "USD"}),
        ),
        order("P2", "2025-12-01", "4", 50.0),
        order("P2", "2026-02-10", "5", 25.0),
        order("P3", "2026-02-11", "6", 40.0),
    ]);
    let r = report(&engine, &query(&[]), Table::Transactions);
    let rows = r["transactions"].as_array().unwrap();
    let ints = |i: usize| {
        [
            "orders",
            "order_revenue",
            "refunds",
            "net_revenue",
            "purchasers",
            "new_purchasers",
            "repeat_purchasers",
            "new_customer_revenue",
            "existing_customer_revenue",
        ]
        .map(|k| rows[i][k].as_i64().unwrap())
    };
    assert_eq!(ints(0), [2, 4000, 0, 4000, 1, 1, 1, 4000, 0]);
    assert_eq!(ints(1), [2, 6500, 500, 6000, 2, 1, 1, 4000, 2500]);
    assert_eq!(ints(2), [1, 2000, 0, 2000, 1, 0, 1, 0, 2000]);
    close(&rows[1]["repeat_purchase_rate"], 0.5);
    close(&rows[1]["average_order_value"], 3250.0);
    close(&rows[0]["purchase_frequency"], 2.0);
    assert!(rows[3]["average_order_value"].is_null());
}

#[test]
fn nps_csat_and_response_rate() {
    let shown = |u: &str| {
        track(
            u,
            "2026-01-10T00:00:00Z",
            "Survey Shown",
            json!({"survey_id": "nps"}),
        )
    };
    let answer = |u: &str, d: &str, props: Value| track(u, d, "Survey Responded", props);
    let engine = fold(&[
        shown("V1"),
        shown("V2"),
        shown("V3"),
        shown("V4"),
        shown("V5"),
        answer(
            "V1",
            "2026-01-11T02:00:00Z",
            json!({"survey_id": "nps", "score": 10, "comment": "Love it"}),
        ),
        answer(
            "V2",
            "2026-01-11T00:00:00Z",
            json!({"survey_id": "nps", "score": 6, "comment": "Slow"}),
        ),
        answer("V3", "2026-01-11T00:00:00Z", json!({"survey_id": "nps"})),
        answer(
            "V4",
            "2026-01-12T00:00:00Z",
            json!({"survey_id": "nps", "score": 8}),
        ),
        answer(
            "V1",
            "2026-02-11T00:00:00Z",
            json!({"survey_id": "csat", "scale": 5, "score": 5}),
        ),
        answer(
            "V2",
            "2026-02-11T00:00:00Z",
            json!({"survey_id": "csat", "scale": 5, "score": 3}),
        ),
    ]);
    let r = report(&engine, &query(&[]), Table::Voice);
    let jan = &r["voice"][0];
    let counts = [
        "surveys_shown",
        "responses",
        "nps_responses",
        "nps_skipped",
        "promoters",
        "passives",
        "detractors",
    ]
    .map(|k| jan[k].as_u64().unwrap());
    assert_eq!(counts, [5, 4, 3, 1, 1, 1, 1]);
    close(&jan["nps"], 0.0);
    close(&jan["response_rate"], 0.8);
    let feb = &r["voice"][1];
    close(&feb["csat"], 0.5);
    assert!(feb["nps"].is_null(), "no NPS answers: undefined");
    assert!(feb["response_rate"].is_null(), "nothing shown in February");
    let r = report(&engine, &query(&[]), Table::Verbatims);
    let v = r["verbatims"].as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["category"], "promoter");
    assert_eq!(v[1]["comment"], "Slow");
    assert_eq!(v[1]["category"], "detractor");
}

#[test]
fn referral_share_and_channel_economics() {
    let engine = fold(&subscriptions());
    let r = report(&engine, &query(&[]), Table::Referrals);
    let jan = &r["referrals"][0];
    // New in January: B (referred) and G. A's refunded January order does not make it new:
    // it had already paid in December.
    assert_eq!(jan["new_customers"], 2);
    assert_eq!(jan["referred_customers"], 1);
    close(&jan["referral_share"], 0.5);
    let spend = [Spend {
        channel: "Paid".into(),
        month: "2026-01".into(),
        amount: 30000,
        currency: Currency::parse("USD").unwrap(),
    }];
    let q = query(&[]);
    let r = serde_json::to_value(Report::build(&engine, &q, &spend, &[Table::Channels])).unwrap();
    let channels = r["channels"].as_array().unwrap();
    // B's referral code makes it a referral customer; G alone stays on the paid channel.
    let paid = channels.iter().find(|c| c["channel"] == "paid").unwrap();
    assert_eq!(paid["new_customers"], 1);
    assert_eq!(paid["spend"], 30000);
    close(&paid["cac"], 30000.0);
    close(&paid["new_arpa"], 1000.0);
    close(&paid["cac_payback_months"], 30.0);
    // G: active at the start of Feb and Mar, churned in March: 1 of 2.
    close(&paid["logo_churn_rate"], 0.5);
}

#[test]
fn revenue_concentration_top_share_lorenz_and_gini() {
    let mut events = Vec::new();
    for (i, revenue) in [100.0, 200.0, 300.0, 400.0, 1000.0].iter().enumerate() {
        events.push(track(
            &format!("K{i}"),
            "2026-02-01T00:00:00Z",
            "Order Completed",
            json!({"order_id": format!("k{i}"), "revenue": revenue, "currency": "USD"}),
        ));
    }
    // A whole year of $100 MRR earns exactly $1200.
    events.push(start("S", "2025-05-01T00:00:00Z", "s", "month", 100.0));
    for m in 6..=12 {
        events.push(sub_event(
            "S",
            &format!("2025-{m:02}-01T00:00:00Z"),
            "Subscription Renewed",
            "s",
        ));
    }
    for m in 1..=4 {
        events.push(sub_event(
            "S",
            &format!("2026-{m:02}-01T00:00:00Z"),
            "Subscription Renewed",
            "s",
        ));
    }
    let engine = fold(&events);
    let r = report(&engine, &query(&[]), Table::Concentration);
    let c = &r["concentration"];
    assert_eq!(c["window_start"], "2025-05-01T00:00:00.000Z");
    let top: Vec<i64> = c["top_customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["revenue"].as_i64().unwrap())
        .collect();
    assert_eq!(top, [120000, 100000, 40000, 30000, 20000, 10000]);
    // Six customers: the top 20% is two (rounded up): 2200 of 3200.
    close(&c["top_20_share"], 2200.0 / 3200.0);
    // Gini from the ascending values 100, 200, 300, 400, 1000, 1200:
    // 2 Σ i·x_i / (n Σx) − (n + 1)/n.
    let sum_ix = 100.0 + 400.0 + 900.0 + 1600.0 + 5000.0 + 7200.0;
    close(&c["gini"], 2.0 * sum_ix / (6.0 * 3200.0) - 7.0 / 6.0);
    let lorenz = c["lorenz"].as_array().unwrap();
    assert_eq!(lorenz.len(), 21);
    close(&lorenz[0]["revenue_share"], 0.0);
    close(&lorenz[20]["revenue_share"], 1.0);
    // Half the customers (the three smallest) earn 600 of 3200.
    close(&lorenz[10]["revenue_share"], 600.0 / 3200.0);
}

#[test]
fn what_if_projects_customers_and_revenue() {
    let engine = fold(&subscriptions());
    let q = query(&[("churn_change", "-50"), ("horizon", "3")]);
    let rows = tenure_core::metrics::subscription_metrics(
        &tenure_core::metrics::Dataset::prepare(&engine.customers().collect::<Vec<_>>(), &q),
        &q,
    );
    let w = what_if(&rows, &q);
    let churn = (1.0 / 3.0 + 0.4) / 6.0; // April's smoothed rate: Nov–Apr
    assert!((w.baseline_churn_rate.unwrap() - churn).abs() < 1e-12);
    assert!((w.scenario_churn_rate.unwrap() - churn / 2.0).abs() < 1e-12);
    // Inflow: new + reactivated per period over the report's complete periods (up to six):
    // Jan B+G, Feb F, Mar E, Apr H = 5 / 4.
    assert!((w.inflow_per_period - 5.0 / 4.0).abs() < 1e-12);
    let n1 = 5.0 * (1.0 - churn) + 5.0 / 4.0;
    assert!((w.baseline[0].customers - n1).abs() < 1e-9);
    let arpa = 40500.0 / 5.0;
    assert!((w.baseline[0].mrr - n1 * arpa).abs() < 1e-6);
    assert!(w.revenue_difference > 0.0, "less churn, more revenue");
}

/// Monthly "any event" activity retention and lifecycle read the state's month index; a
/// named event set reads bit sets from the activity list; more than 64 periods count
/// occurrences per period. On random customers (events out of order, identities merged by
/// alias), all three give the same cells.
#[test]
fn activity_fast_paths_equal_the_per_period_counts() {
    let mut rng = tenure_core::random::Rng::derive(5, 5);
    let names = ["Page Viewed", "Report Viewed", "Export Completed"];
    let base = at("2021-01-01T00:00:00Z");
    let day = 86_400_000i64;
    let mut messages = Vec::new();
    for c in 0..150 {
        for _ in 0..rng.below(25) {
            let when = base + (rng.uniform() * 1_400.0) as i64 * day + 3_600_000;
            let event = names[rng.below(3) as usize];
            let user = if c % 10 == 0 {
                format!("anon{c}")
            } else {
                format!("c{c}")
            };
            let mut m = track(
                &user,
                &tenure_core::time::format_instant(when),
                event,
                json!({}),
            );
            if user.starts_with("anon") {
                m.as_object_mut().unwrap().remove("userId");
                m["anonymousId"] = json!(user);
            }
            messages.push(m);
        }
        if c % 10 == 0 {
            // The anonymous visitor turns out to be a known customer.
            messages.push(json!({"type": "alias", "previousId": format!("anon{c}"), "userId": format!("c{}", c + 1),
                                 "timestamp": "2023-06-01T00:00:00Z"}));
        }
    }
    // Out of order: the log's order is not time order.
    for i in (1..messages.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        messages.swap(i, j);
    }
    let engine = fold(&messages);
    let every_name: Vec<(&str, &str)> = names.iter().map(|n| ("event", *n)).collect();
    let cells = |params: &[(&str, &str)], to: &str, table: Table| -> Value {
        let mut p = vec![("from", "2021-01-01"), ("to", to)];
        p.extend_from_slice(params);
        let q = Query::parse(p, at("2025-06-01T00:00:00Z")).unwrap();
        report(&engine, &q, table)
    };
    for (mode, kind) in [
        ("on", "first_time"),
        ("on_or_after", "first_time"),
        ("on", "recurring"),
        ("on_or_after", "recurring"),
    ] {
        let options = [("mode", mode), ("cohort_kind", kind)];
        let with_names: Vec<(&str, &str)> = options.iter().chain(&every_name).copied().collect();
        // 48 months: month index (any event) and bit sets (every name).
        let indexed = returned(&cells(&options, "2024-12-31", Table::Activity));
        let scanned = returned(&cells(&with_names, "2024-12-31", Table::Activity));
        // 84 months: per-period counts.
        let counted = returned(&cells(&options, "2027-12-31", Table::Activity));
        assert_eq!(indexed, scanned, "{mode} {kind}");
        assert!(
            indexed.iter().flatten().sum::<u64>() > 100,
            "a matrix with something in it"
        );
        for (c, row) in indexed.iter().enumerate() {
            // Cohort c's cells within the 48 months are the same in the longer matrix, except
            // "on or after", which also counts returns after month 48.
            if mode == "on" {
                assert_eq!(row[..], counted[c][..row.len()], "{mode} {kind} cohort {c}");
            }
            assert_eq!(row[0], counted[c][0], "{mode} {kind} cohort {c}");
        }
    }
    let lifecycle = |params: &[(&str, &str)]| {
        cells(params, "2024-12-31", Table::Lifecycle)["lifecycle"].clone()
    };
    assert_eq!(lifecycle(&[]), lifecycle(&every_name));
    let long = cells(&[], "2027-12-31", Table::Lifecycle)["lifecycle"].clone();
    let short = lifecycle(&[]);
    assert_eq!(
        short.as_array().unwrap()[..],
        long.as_array().unwrap()[..short.as_array().unwrap().len()]
    );
}
