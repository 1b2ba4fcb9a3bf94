#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tenure_core::LiveWorkspace;
use tenure_core::engine::CustomerFilter;
use tenure_core::random::Rng;
use tenure_core::subscription::CustomerStatus;
use tenure_core::time::{MILLIS_PER_DAY, Millis, parse_instant};
use tenure_core::{Envelope, Message, WorkspaceId};

fn ws() -> WorkspaceId {
    WorkspaceId::parse("ws_test").unwrap()
}

fn at(text: &str) -> Millis {
    parse_instant(text).unwrap()
}

fn msg(value: Value) -> Message {
    let envelope = Envelope {
        received_at: at("2026-01-01T00:00:00Z"),
        batch_sent_at: None,
    };
    Message::parse(value, None, envelope).unwrap_or_else(|e| panic!("{e:?}"))
}

fn fold(messages: &[Value]) -> LiveWorkspace {
    let mut engine = LiveWorkspace::new(ws());
    for (i, m) in messages.iter().enumerate() {
        engine.apply(&msg(m.clone()));
        engine.advance_to(i as i64 + 1);
    }
    engine
}

#[test]
fn identify_merges_the_anonymous_history_into_the_customer() {
    let engine = fold(&[
        json!({"type": "page", "anonymousId": "a1", "name": "Home", "timestamp": "2025-01-01T00:00:00Z",
               "context": {"campaign": {"source": "Newsletter"}}}),
        json!({"type": "track", "userId": "u1", "event": "Logged In", "timestamp": "2025-01-02T00:00:00Z"}),
        json!({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "x@y.z"}, "timestamp": "2025-01-03T00:00:00Z"}),
    ]);
    assert_eq!(engine.customer_count(), 1);
    let c = engine.find("u1").unwrap();
    assert_eq!(c.event_total, 3);
    assert_eq!(c.active_days.len(), 2);
    assert_eq!(c.merged.len(), 1, "the anonymous profile was merged");
    assert_eq!(c.acquisition.channel.as_deref(), Some("newsletter"));
    assert_eq!(c.first_seen, at("2025-01-01T00:00:00Z"));
    // The merged-away id still finds the customer.
    assert_eq!(engine.find(c.merged[0].as_str()).unwrap().id, c.id);
}

#[test]
fn an_anonymous_profile_becomes_the_user_when_identified_first_time() {
    let engine = fold(&[
        json!({"type": "track", "anonymousId": "a1", "event": "Viewed", "timestamp": "2025-01-01T00:00:00Z"}),
        json!({"type": "identify", "userId": "u1", "anonymousId": "a1", "timestamp": "2025-01-02T00:00:00Z"}),
        json!({"type": "track", "userId": "u1", "event": "Viewed", "timestamp": "2025-01-03T00:00:00Z"}),
    ]);
    assert_eq!(engine.customer_count(), 1);
    let c = engine.find("u1").unwrap();
    assert_eq!(c.event_total, 3);
    assert!(c.merged.is_empty());
}

#[test]
fn an_anonymous_id_already_identified_as_someone_else_is_not_merged() {
    // A shared device: u2 logs in on a browser that u1 used.
    let engine = fold(&[
        json!({"type": "identify", "userId": "u1", "anonymousId": "a1"}),
        json!({"type": "identify", "userId": "u2", "anonymousId": "a1"}),
    ]);
    assert_eq!(engine.customer_count(), 2);
}

#[test]
fn alias_merges_a_previous_user_id() {
    let engine = fold(&[
        json!({"type": "track", "userId": "old@example.com", "event": "Order Completed",
               "properties": {"order_id": "o1", "revenue": 10, "currency": "USD"}}),
        json!({"type": "track", "userId": "u42", "event": "Logged In"}),
        json!({"type": "alias", "userId": "u42", "previousId": "old@example.com"}),
        json!({"type": "track", "userId": "old@example.com", "event": "Logged In"}),
    ]);
    assert_eq!(engine.customer_count(), 1);
    let c = engine.find("u42").unwrap();
    assert_eq!(c.orders.len(), 1);
    assert_eq!(c.event_total, 4);
    let profile = engine.profile(c, at("2026-01-01T00:00:00Z"));
    assert_eq!(profile.aliases, vec!["old@example.com".to_string()]);
}

fn sub(event: &str, ts: &str, extra: Value) -> Value {
    let mut props = json!({"subscription_id": "s1"});
    if let (Value::Object(p), Value::Object(e)) = (&mut props, extra) {
        p.extend(e);
    }
    json!({"type": "track", "userId": "u1", "event": event, "timestamp": ts, "properties": props})
}

#[test]
fn mrr_follows_trial_change_pause_and_cancellation_at_period_end() {
    let terms = |plan: &str, amount: f64, interval: &str| json!({"plan": plan, "amount": amount, "interval": interval, "currency": "USD"});
    let mut started = terms("pro", 100.0, "month");
    started["trial_end"] = json!("2025-01-15T00:00:00Z");
    let engine = fold(&[
        sub("Subscription Started", "2025-01-01T00:00:00Z", started),
        sub(
            "Subscription Changed",
            "2025-03-01T00:00:00Z",
            terms("pro-annual", 1200.0, "year"),
        ),
        sub("Subscription Paused", "2025-05-01T00:00:00Z", json!({})),
        sub("Subscription Resumed", "2025-06-01T00:00:00Z", json!({})),
        // Arrives late in the log but happened before the pause: still lands in order.
        sub("Subscription Renewed", "2025-02-15T00:00:00Z", json!({})),
        sub(
            "Subscription Cancelled",
            "2025-07-01T00:00:00Z",
            json!({"ends_at": "2025-08-15T00:00:00Z"}),
        ),
    ]);
    let c = engine.find("u1").unwrap();
    let mrr = |ts: &str| c.mrr_at(at(ts)).values().sum::<i64>();
    assert_eq!(mrr("2025-01-10T00:00:00Z"), 0, "trial is 0");
    assert_eq!(mrr("2025-01-20T00:00:00Z"), 10_000);
    assert_eq!(
        mrr("2025-03-02T00:00:00Z"),
        10_000,
        "annual 1200 = 100/month"
    );
    assert_eq!(mrr("2025-05-15T00:00:00Z"), 0, "paused is 0");
    assert_eq!(
        mrr("2025-07-15T00:00:00Z"),
        10_000,
        "cancelled, paid until ends_at"
    );
    assert_eq!(mrr("2025-08-16T00:00:00Z"), 0);
    let history: Vec<i64> = c.mrr_history().into_iter().map(|(_, v)| v).collect();
    assert_eq!(history, vec![10_000, 0, 10_000, 0]);
    let profile = engine.profile(c, at("2025-09-01T00:00:00Z"));
    assert_eq!(profile.status, CustomerStatus::Churned);
}

#[test]
fn cancellation_without_end_date_ends_at_the_end_of_the_paid_period() {
    let terms = json!({"plan": "pro", "amount": 50, "interval": "month", "currency": "USD"});
    let engine = fold(&[
        sub("Subscription Started", "2025-01-10T00:00:00Z", terms),
        sub("Subscription Renewed", "2025-02-10T00:00:00Z", json!({})),
        sub("Subscription Cancelled", "2025-02-20T00:00:00Z", json!({})),
    ]);
    let c = engine.find("u1").unwrap();
    let view = &c.subscriptions_at(at("2025-03-01T00:00:00Z"))[0];
    assert_eq!(view.ends_at, Some(at("2025-03-10T00:00:00Z")));
    assert_eq!(view.mrr, 5_000);
    assert_eq!(c.subscriptions_at(at("2025-03-10T00:00:00Z"))[0].mrr, 0);
}

#[test]
fn refunds_reduce_order_revenue_and_duplicate_orders_count_once() {
    let order = |id: &str, ts: &str| {
        json!({"type": "track", "userId": "u1", "event": "Order Completed", "timestamp": ts,
               "properties": {"order_id": id, "revenue": 40.5, "currency": "EUR"}})
    };
    let mut duplicate = order("o1", "2025-01-01T00:00:00Z");
    duplicate["messageId"] = json!("another-message-same-order");
    let engine = fold(&[
        order("o1", "2025-01-01T00:00:00Z"),
        duplicate,
        order("o2", "2025-02-01T00:00:00Z"),
        json!({"type": "track", "userId": "u1", "event": "Order Refunded", "timestamp": "2025-02-03T00:00:00Z",
               "properties": {"order_id": "o2", "revenue": 10, "currency": "EUR"}}),
    ]);
    let c = engine.find("u1").unwrap();
    assert_eq!(c.orders.len(), 2);
    let revenue: i64 = c
        .order_revenue_until(at("2026-01-01T00:00:00Z"))
        .values()
        .sum();
    assert_eq!(revenue, 4050 + 4050 - 1000);
    let before_refund: i64 = c
        .order_revenue_until(at("2025-02-02T00:00:00Z"))
        .values()
        .sum();
    assert_eq!(before_refund, 8100);
}

#[test]
fn listing_filters_by_channel_plan_and_status() {
    let engine = fold(&[
        json!({"type": "identify", "userId": "a", "traits": {"utm_source": "ads"}}),
        json!({"type": "identify", "userId": "b", "traits": {"referred_by": "a"}}),
        sub(
            "Subscription Started",
            "2025-01-01T00:00:00Z",
            json!({"plan": "pro", "amount": 10, "interval": "month", "currency": "USD"}),
        ),
    ]);
    let now = at("2025-01-10T00:00:00Z");
    let referral = CustomerFilter {
        channel: Some("referral".into()),
        ..Default::default()
    };
    assert_eq!(engine.list(&referral, None, 10, now).len(), 1);
    let pro = CustomerFilter {
        plan: Some("pro".into()),
        ..Default::default()
    };
    let on_pro = engine.list(&pro, None, 10, now);
    assert_eq!(on_pro.len(), 1);
    assert_eq!(on_pro[0].user_id.as_deref(), Some("u1"));
    let leads = CustomerFilter {
        status: Some(CustomerStatus::Lead),
        ..Default::default()
    };
    assert_eq!(engine.list(&leads, None, 10, now).len(), 2);
    // Pagination: pages are disjoint and cover everything.
    let first = engine.list(&CustomerFilter::default(), None, 2, now);
    let second = engine.list(&CustomerFilter::default(), Some(&first[1].id), 2, now);
    assert_eq!(first.len() + second.len(), 3);
    assert!(second.iter().all(|c| first.iter().all(|f| f.id != c.id)));
}

/// A random stream with identities that collide, merges, out-of-order timestamps and every
/// kind of semantic event.
fn random_stream(rng: &mut Rng, len: usize) -> Vec<Value> {
    let base = at("2025-01-01T00:00:00Z");
    (0..len)
        .map(|i| {
            let ts = tenure_core::time::format_instant(base + rng.below(300) as Millis * MILLIS_PER_DAY);
            let user = format!("u{}", rng.below(8));
            let anon = format!("a{}", rng.below(8));
            let sub_id = format!("s{}", rng.below(3));
            let mut m = match rng.below(12) {
                0 => json!({"type": "identify", "userId": user, "anonymousId": anon, "traits": {"plan": rng.below(3), "utm_source": format!("c{}", rng.below(3))}}),
                1 => json!({"type": "alias", "userId": user, "previousId": if rng.chance(0.5) { anon } else { format!("u{}", rng.below(8)) }}),
                2 => json!({"type": "page", "anonymousId": anon, "name": "Home"}),
                3 => json!({"type": "track", "userId": user, "event": "Subscription Started", "properties": {"subscription_id": sub_id, "plan": "p", "interval": if rng.chance(0.5) {"month"} else {"year"}, "amount": rng.below(500), "currency": "USD"}}),
                4 => json!({"type": "track", "userId": user, "event": "Subscription Cancelled", "properties": {"subscription_id": sub_id}}),
                5 => json!({"type": "track", "userId": user, "event": "Subscription Renewed", "properties": {"subscription_id": sub_id}}),
                6 => json!({"type": "track", "userId": user, "event": "Order Completed", "properties": {"order_id": format!("o{}", rng.below(20)), "revenue": rng.below(100), "currency": "USD"}}),
                7 => json!({"type": "track", "userId": user, "event": "Survey Responded", "properties": {"survey_id": "nps", "score": rng.below(11)}}),
                8 => json!({"type": "track", "userId": user, "event": "Ticket Opened", "properties": {"ticket_id": format!("t{}", rng.below(5))}}),
                9 => json!({"type": "group", "userId": user, "groupId": format!("g{}", rng.below(3))}),
                10 => json!({"type": "track", "anonymousId": anon, "event": "Referral Code Used", "properties": {"code": "X", "referrer_id": user}}),
                _ => json!({"type": "track", "userId": user, "anonymousId": anon, "event": format!("Feature {}", rng.below(4))}),
            };
            m["timestamp"] = json!(ts);
            m["messageId"] = json!(format!("m{i}"));
            m
        })
        .collect()
}

#[test]
fn an_engine_resumed_midway_equals_a_fold_of_the_whole_stream() {
    let mut rng = Rng::new(2026);
    for round in 0..200 {
        let len = 1 + rng.below(120) as usize;
        let stream = random_stream(&mut rng, len);
        // Incremental: folded up to a random point, copied (the state a process hands on;
        // there is no serialised snapshot yet), then the rest folded into the copy.
        let mut live = LiveWorkspace::new(ws());
        let cut = rng.below(stream.len() as u64 + 1) as usize;
        for (i, m) in stream[..cut].iter().enumerate() {
            live.apply(&msg(m.clone()));
            live.advance_to(i as i64 + 1);
        }
        let mut restored = live.clone();
        for (i, m) in stream.iter().enumerate().skip(cut) {
            restored.apply(&msg(m.clone()));
            restored.advance_to(i as i64 + 1);
        }
        let rebuilt = fold(&stream);
        assert_eq!(restored, rebuilt, "round {round}");
        // Every identity resolves to a live customer, and each customer's events add up.
        let total: u32 = rebuilt.customers().map(|c| c.event_total).sum();
        assert_eq!(
            total as usize,
            stream.len(),
            "round {round}: events lost or double-counted in merges"
        );
    }
}
