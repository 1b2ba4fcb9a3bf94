//! Segments: hand-worked memberships and timers, and the property that incremental
//! membership (events + timers) always equals an evaluation from scratch at the same instant.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tenure_core::random::Rng;
use tenure_core::segments::{Definition, SegmentId};
use tenure_core::time::{MILLIS_PER_DAY, Millis, format_instant, parse_instant};
use tenure_core::{CustomerId, Envelope, LiveWorkspace, Message, WorkspaceId};

fn at(text: &str) -> Millis {
    parse_instant(text).unwrap()
}

fn message(value: Value, now: Millis) -> Message {
    Message::parse(
        value,
        None,
        Envelope {
            received_at: now,
            batch_sent_at: None,
        },
    )
    .unwrap()
}

fn track(user: &str, when: Millis, event: &str, properties: Value) -> Value {
    json!({"type": "track", "userId": user, "event": event,
           "timestamp": format_instant(when), "properties": properties})
}

fn engine() -> LiveWorkspace {
    LiveWorkspace::new(WorkspaceId::parse("ws_segments").unwrap())
}

/// What the server's writer does with one incoming message: fire due timers, fold the
/// message, re-evaluate its customer. Returns the membership messages.
fn ingest(engine: &mut LiveWorkspace, m: &Message, now: Millis) -> Vec<(CustomerId, Message)> {
    let mut out = engine.due_segment_changes(now);
    let applied = engine.apply(m);
    out.extend(engine.segment_changes(&[applied.customer], now));
    out
}

fn names(changes: &[(CustomerId, Message)]) -> Vec<(String, String)> {
    changes
        .iter()
        .map(|(_, m)| {
            (
                m.name.clone().unwrap(),
                format_instant(m.timestamp)[..16].to_owned(),
            )
        })
        .collect()
}

fn member(engine: &LiveWorkspace, user: &str, segment: SegmentId) -> bool {
    let c = engine.find(user).unwrap();
    c.segments.iter().any(|(s, _)| *s == segment)
}

#[test]
fn a_window_edge_fires_at_its_exact_midnight() {
    let mut e = engine();
    let s = SegmentId(1);
    let def = Definition::parse(
        &json!({"performed": "Report Exported", "at_least": 2, "within_days": 3}),
    )
    .unwrap();
    let t0 = at("2026-03-01T12:00:00Z");
    assert!(e.define_segment(s, "exporters", def, [], t0).is_empty());
    let m1 = message(
        track(
            "u1",
            at("2026-03-01T09:00:00Z"),
            "Report Exported",
            json!({}),
        ),
        t0,
    );
    assert!(ingest(&mut e, &m1, t0).is_empty(), "one export is not two");
    let t1 = at("2026-03-02T08:00:00Z");
    let m2 = message(
        track(
            "u1",
            at("2026-03-02T07:30:00Z"),
            "Report Exported",
            json!({}),
        ),
        t1,
    );
    assert_eq!(
        names(&ingest(&mut e, &m2, t1)),
        vec![("Segment Entered".into(), "2026-03-02T08:00".into())]
    );
    // The 1 March export leaves the 3-day window (1–3 March) at midnight starting 4 March.
    assert_eq!(e.next_segment_timer(), Some(at("2026-03-04T00:00:00Z")));
    assert!(
        e.due_segment_changes(at("2026-03-03T23:59:59.999Z"))
            .is_empty()
    );
    let exits = e.due_segment_changes(at("2026-03-10T00:00:00Z"));
    assert_eq!(
        names(&exits),
        vec![("Segment Exited".into(), "2026-03-04T00:00".into())],
        "stamped with the edge, not the clock"
    );
    assert!(!member(&e, "u1", s));
    assert_eq!(exits[0].1.received_at, at("2026-03-10T00:00:00Z"));
}

#[test]
fn an_inactivity_segment_fills_when_time_passes_and_empties_on_an_event() {
    let mut e = engine();
    let s = SegmentId(2);
    let t0 = at("2026-05-10T10:00:00Z");
    let login = message(
        track("u2", at("2026-05-10T09:00:00Z"), "Logged In", json!({})),
        t0,
    );
    e.apply(&login);
    let def = Definition::parse(&json!({"all": [
        {"performed": "Logged In"},
        {"not_performed": "Logged In", "within_days": 7}
    ]}))
    .unwrap();
    assert!(e.define_segment(s, "dormant", def, [], t0).is_empty());
    // Last login on 10 May: days 10–16 May hold it; on 17 May it is out of the window.
    assert_eq!(e.next_segment_timer(), Some(at("2026-05-17T00:00:00Z")));
    let entered = e.due_segment_changes(at("2026-05-20T00:00:00Z"));
    assert_eq!(
        names(&entered),
        vec![("Segment Entered".into(), "2026-05-17T00:00".into())]
    );
    let t1 = at("2026-05-21T15:00:00Z");
    let again = message(track("u2", t1, "Logged In", json!({})), t1);
    assert_eq!(
        names(&ingest(&mut e, &again, t1)),
        vec![("Segment Exited".into(), "2026-05-21T15:00".into())]
    );
    // Membership events are not the customer's activity.
    let c = e.find("u2").unwrap();
    assert_eq!(c.last_seen, t1);
    assert_eq!(c.active_days.len(), 2);
}

#[test]
fn property_filters_are_counted_from_the_history_when_a_segment_is_defined() {
    let mut e = engine();
    let now = at("2026-04-30T12:00:00Z");
    let mut log = vec![];
    for (user, format, day) in [
        ("a", "pdf", "2026-04-29"),
        ("b", "csv", "2026-04-29"),
        ("c", "pdf", "2026-04-01"),
    ] {
        log.push(message(
            track(
                user,
                at(&format!("{day}T10:00:00Z")),
                "Report Exported",
                json!({"format": format}),
            ),
            now,
        ));
    }
    for m in &log {
        e.apply(m);
    }
    let def = Definition::parse(&json!({"performed": "Report Exported", "where": [{"property": "format", "op": "eq", "value": "pdf"}], "within_days": 7})).unwrap();
    let (count, sample) = e.preview_segment(&def, &log, now, 10);
    assert_eq!(count, 1);
    assert_eq!(sample, vec![e.find("a").unwrap().id.clone()]);
    let entered = e.define_segment(SegmentId(3), "pdf exporters", def, &log, now);
    assert_eq!(entered.len(), 1);
    assert!(member(&e, "a", SegmentId(3)) && !member(&e, "b", SegmentId(3)));
    // A new matching event for b is counted as it arrives.
    let m = message(
        track("b", now, "Report Exported", json!({"format": "pdf"})),
        now,
    );
    assert_eq!(ingest(&mut e, &m, now).len(), 1);
    assert!(member(&e, "b", SegmentId(3)));
    assert_eq!(e.segments()[0].members, 2);
}

#[test]
fn a_merge_carries_counted_occurrences_to_the_surviving_customer() {
    let mut e = engine();
    let now = at("2026-04-30T12:00:00Z");
    let def = Definition::parse(&json!({"performed": "Clicked", "where": [{"property": "x", "op": "exists"}], "at_least": 2})).unwrap();
    e.define_segment(SegmentId(1), "clickers", def, [], now);
    let anon = message(
        json!({"type": "track", "anonymousId": "anon-1", "event": "Clicked", "properties": {"x": 1}, "timestamp": format_instant(now)}),
        now,
    );
    ingest(&mut e, &anon, now);
    let known = message(track("u9", now, "Clicked", json!({"x": 2})), now);
    ingest(&mut e, &known, now);
    assert!(!member(&e, "u9", SegmentId(1)));
    let alias = message(
        json!({"type": "alias", "userId": "u9", "previousId": "anon-1", "timestamp": format_instant(now)}),
        now,
    );
    let changes = ingest(&mut e, &alias, now);
    assert_eq!(names(&changes).len(), 1);
    assert!(member(&e, "u9", SegmentId(1)));
}

#[test]
fn a_rebuild_reconciles_once_with_the_clock() {
    let mut e = engine();
    let t0 = at("2026-01-05T10:00:00Z");
    let def = || Definition::parse(&json!({"performed": "Ping", "within_days": 1})).unwrap();
    e.define_segment(SegmentId(1), "pinged today", def(), [], t0);
    let mut log = vec![];
    let ping = message(track("u1", t0, "Ping", json!({})), t0);
    log.push(ping.clone());
    log.extend(ingest(&mut e, &ping, t0).into_iter().map(|(_, m)| m));
    // The server stops; a rebuild folds the log with the definition loaded.
    let mut fresh = engine();
    fresh.load_segment(SegmentId(1), "pinged today", 1, def());
    for m in &log {
        fresh.apply(m);
    }
    assert!(
        member(&fresh, "u1", SegmentId(1)),
        "membership is the fold of the log"
    );
    assert_eq!(
        fresh.next_segment_timer(),
        Some(Millis::MIN),
        "reconcile at the first tick"
    );
    let later = at("2026-01-09T00:00:00Z");
    let caught_up = fresh.due_segment_changes(later);
    assert_eq!(
        names(&caught_up),
        vec![("Segment Exited".into(), "2026-01-09T00:00".into())]
    );
    assert_eq!(fresh.next_segment_timer(), None);
}

/// The definitions the property test runs: every kind of condition, windows of 1–5 days.
fn definitions(day0: i32) -> Vec<Value> {
    let date = |d: i32| format_instant(i64::from(day0 + d) * MILLIS_PER_DAY)[..10].to_owned();
    vec![
        json!({"performed": "A", "at_least": 2, "within_days": 3}),
        json!({"all": [{"not_performed": "B", "within_days": 2}, {"trait": "tier", "op": "eq", "value": "pro"}]}),
        json!({"performed": "A", "where": [{"property": "p", "op": "eq", "value": "x"}], "within_days": 2}),
        json!({"any": [{"first_performed": "C", "within_days": 4}, {"last_performed": "B", "before": date(6)}]}),
        json!({"sequence": ["A", "B"], "within_days": 1}),
        json!({"all": [{"computed": "tenure_days", "op": "gte", "value": 3}, {"not": {"computed": "status", "op": "eq", "value": "active"}}]}),
        json!({"computed": "grade", "op": "eq", "value": "red"}),
        json!({"any": [{"computed": "orders", "op": "gte", "value": 2}, {"computed": "mrr", "op": "gt", "value": 0}]}),
        json!({"not": {"performed": "A", "within_days": 1}}),
        json!({"performed": "B", "exactly": 1, "where": [{"property": "p", "op": "ne", "value": "y"}]}),
        json!({"all": [{"computed": "plan", "op": "eq", "value": "team"}, {"last_performed": "C", "since": date(2)}]}),
        json!({"health_band": "red", "for_days": 2}),
        json!({"health_drop": 10, "within_days": 3}),
    ]
}

/// A random message about a random customer, stamped around `now` (late by up to 9 days,
/// or early by up to 6 hours).
fn random_message(rng: &mut Rng, now: Millis, serial: u64) -> Value {
    let users = ["u1", "u2", "u3", "u4", "u5"];
    let user = users[rng.below(users.len() as u64) as usize];
    let when = if rng.chance(0.8) {
        now - (rng.uniform() * rng.uniform() * 9.0 * MILLIS_PER_DAY as f64) as i64
    } else {
        now + (rng.uniform() * 0.25 * MILLIS_PER_DAY as f64) as i64
    };
    let ts = format_instant(when);
    let anon = format!("anon-{}", rng.below(3));
    match rng.below(12) {
        0 => {
            json!({"type": "identify", "userId": user, "traits": {"tier": if rng.chance(0.5) {"pro"} else {"free"}}, "timestamp": ts})
        }
        1 => json!({"type": "track", "userId": user, "event": "Order Completed", "timestamp": ts,
                    "properties": {"order_id": format!("o{serial}"), "revenue": 10, "currency": "USD"}}),
        2 => {
            json!({"type": "track", "userId": user, "event": "Subscription Started", "timestamp": ts,
                    "properties": {"subscription_id": format!("s-{user}"), "plan": if rng.chance(0.5) {"team"} else {"solo"},
                                   "interval": "week", "amount": 30, "currency": "USD"}})
        }
        3 => {
            json!({"type": "track", "userId": user, "event": "Subscription Cancelled", "timestamp": ts,
                    "properties": {"subscription_id": format!("s-{user}")}})
        }
        4 => {
            json!({"type": "track", "anonymousId": anon, "event": "A", "timestamp": ts, "properties": {"p": "x"}})
        }
        5 => json!({"type": "alias", "userId": user, "previousId": anon, "timestamp": ts}),
        6 => {
            json!({"type": "track", "userId": user, "event": "Ticket Opened", "timestamp": ts, "properties": {"ticket_id": format!("t{serial}")}})
        }
        _ => {
            let event = ["A", "B", "C"][rng.below(3) as usize];
            let p = ["x", "y"][rng.below(2) as usize];
            json!({"type": "track", "userId": user, "event": event, "timestamp": ts, "properties": {"p": p}})
        }
    }
}

/// Incremental membership equals evaluation from scratch: the same log folded into a
/// fresh engine, the definitions backfilled, every customer evaluated at the same instant.
fn check(
    incremental: &LiveWorkspace,
    log: &[Message],
    defined: &[(SegmentId, Value)],
    now: Millis,
    context: &str,
) {
    let mut scratch = engine();
    for m in log {
        scratch.apply(m);
    }
    for (id, def) in defined {
        scratch.define_segment(*id, "s", Definition::parse(def).unwrap(), log, now);
    }
    let inc: Vec<&CustomerId> = incremental.customers().map(|c| &c.id).collect();
    let fresh: Vec<&CustomerId> = scratch.customers().map(|c| &c.id).collect();
    assert_eq!(inc, fresh, "{context}: the same customers");
    for c in incremental.customers() {
        let fresh_state = scratch.find(c.id.as_str()).unwrap();
        for (id, def) in defined {
            let expected = scratch.evaluate_segment(*id, fresh_state, now).unwrap();
            let actual = c.segments.iter().any(|(s, _)| s == id);
            assert_eq!(
                actual,
                expected,
                "{context}: customer {} in {id} ({def}) at {}",
                c.id,
                format_instant(now)
            );
        }
    }
}

/// Runs random streams against a set of definitions; returns (membership changes, of which
/// fired by timers).
fn run_streams(
    all: &[Value],
    late: impl Fn(u64) -> usize,
    seeds: std::ops::Range<u64>,
    start: Millis,
) -> (usize, usize) {
    let mut changes_seen = 0usize;
    let mut timer_changes = 0usize;
    for seed in seeds {
        let mut rng = Rng::new(seed);
        let mut e = engine();
        let mut now = start;
        let mut log: Vec<Message> = Vec::new();
        let mut defined: Vec<(SegmentId, Value)> = Vec::new();
        // The first definitions exist from the start; the last `late` are added mid-stream
        // (step 80) and backfilled from the log.
        let early = all.len() - late(seed);
        for (i, def) in all.iter().take(early).enumerate() {
            let id = SegmentId(i as u32 + 1);
            e.define_segment(id, "s", Definition::parse(def).unwrap(), &log, now);
            defined.push((id, def.clone()));
        }
        let mut membership_log: Vec<(CustomerId, Message)> = Vec::new();
        // Everything in log order, membership events included.
        let mut full_log: Vec<Message> = Vec::new();
        for step in 0..160u64 {
            if step == 80 {
                for (i, def) in all.iter().enumerate().skip(early) {
                    let id = SegmentId(i as u32 + 1);
                    let backfill = e
                        .define_segment(id, "s", Definition::parse(def).unwrap(), &log, now)
                        .messages(&e);
                    full_log.extend(backfill.iter().map(|(_, m)| m.clone()));
                    membership_log.extend(backfill);
                    defined.push((id, def.clone()));
                }
            }
            if rng.chance(0.35) {
                // Time passes: minutes to days, sometimes landing exactly on a midnight.
                let step_ms = if rng.chance(0.2) {
                    (now / MILLIS_PER_DAY + 1) * MILLIS_PER_DAY - now
                } else {
                    (rng.exponential(0.6) * MILLIS_PER_DAY as f64) as i64 + 1
                };
                now += step_ms;
                let fired = e.due_segment_changes(now);
                timer_changes += fired.len();
                full_log.extend(fired.iter().map(|(_, m)| m.clone()));
                membership_log.extend(fired);
            } else {
                let m = message(random_message(&mut rng, now, seed * 1000 + step), now);
                log.push(m.clone());
                // As the writer logs them: due timers' changes, the event, what it changed.
                let due = e.due_segment_changes(now);
                let applied = e.apply(&m);
                let caused = e.segment_changes(&[applied.customer], now);
                full_log.extend(due.iter().map(|(_, m)| m.clone()));
                full_log.push(m.clone());
                full_log.extend(caused.iter().map(|(_, m)| m.clone()));
                membership_log.extend(due);
                membership_log.extend(caused);
            }
            if step % 20 == 19 {
                check(&e, &log, &defined, now, &format!("seed {seed} step {step}"));
            }
        }
        now += 3 * MILLIS_PER_DAY;
        let fired = e.due_segment_changes(now);
        full_log.extend(fired.iter().map(|(_, m)| m.clone()));
        membership_log.extend(fired);
        check(&e, &log, &defined, now, &format!("seed {seed} end"));
        // Memberships are the fold of the log: replaying it, membership events included,
        // into an engine with no definitions gives the same memberships, entry times too,
        // and the same state in every other respect (the engine folds its own membership
        // events by a direct path, `apply_membership`; a rebuild folds them through `apply`).
        let mut replayed = engine();
        for m in &full_log {
            replayed.apply(m);
        }
        assert_eq!(replayed.events_applied(), e.events_applied(), "seed {seed}");
        for c in e.customers() {
            let again = replayed.find(c.id.as_str()).unwrap();
            assert_eq!(
                again.segments, c.segments,
                "seed {seed}: {} replayed from the log",
                c.id
            );
            assert_eq!(again, c, "seed {seed}: {} replayed from the log", c.id);
        }
        for (_, m) in &membership_log {
            assert!(
                m.timestamp <= m.received_at,
                "a change is never stamped after it was found"
            );
        }
        changes_seen += membership_log.len();
    }
    (changes_seen, timer_changes)
}

#[test]
fn incremental_membership_always_equals_evaluation_from_scratch() {
    let start = at("2026-02-01T00:00:00Z");
    let all = definitions((start / MILLIS_PER_DAY) as i32);
    let (changes, timers) = run_streams(&all, |_| 2, 0..40, start);
    assert!(
        changes > 1000,
        "the streams exercise memberships: {changes}"
    );
    assert!(timers > 200, "and timers: {timers}");
}

/// Each definition alone, so that no other definition's timer re-evaluates its customers
/// and hides a missing one (health and tenure wake every customer at each midnight).
#[test]
fn each_definition_alone_keeps_its_own_timers() {
    let start = at("2026-02-01T00:00:00Z");
    for def in definitions((start / MILLIS_PER_DAY) as i32) {
        // Even seeds define it at the start, odd ones mid-stream.
        let (changes, _) = run_streams(
            std::slice::from_ref(&def),
            |seed| (seed % 2) as usize,
            100..112,
            start,
        );
        // A definition nobody ever enters or leaves would check nothing.
        assert!(changes > 0, "the streams never moved {def}");
    }
}

/// A customer who stops using the product turns red; the alert segment (red for 3 days)
/// takes them in at the first midnight when the grade has been red at that instant and at
/// the same time on the two days before, and not on a day's dip.
#[test]
fn a_health_alert_waits_for_the_band_to_hold() {
    let mut e = engine();
    let start = at("2026-01-01T00:00:00Z");
    let mut log = Vec::new();
    for d in 0..40 {
        for event in ["Report Viewed", "Dashboard Viewed", "Project Created"] {
            let when = start + d * MILLIS_PER_DAY + 3_600_000;
            log.push(message(track("fading", when, event, json!({})), when));
            e.apply(log.last().unwrap());
        }
    }
    let quiet = start + 40 * MILLIS_PER_DAY;
    let alert = Definition::parse(
        &json!({"health_band": "red", "for_days": 3, "alert": "At Risk Entered"}),
    )
    .unwrap();
    let drop =
        Definition::parse(&json!({"health_drop": 30, "within_days": 7, "alert": "Health Changed"}))
            .unwrap();
    let seen_before = e.find("fading").unwrap().last_seen;
    e.define_segment(SegmentId(1), "red for 3 days", alert, [], quiet);
    e.define_segment(SegmentId(2), "dropped 30 in a week", drop, [], quiet);
    let model = tenure_core::health::HealthModel::saas_default();
    let c = e.find("fading").unwrap().clone();
    let red = |t: Millis| model.grade(&c, e.names(), t).1 == Some(tenure_core::health::Grade::Red);
    let score = |t: Millis| model.grade(&c, e.names(), t).0.unwrap();
    // The expected instants, from the health model itself, day by day.
    let days: Vec<Millis> = (0..120).map(|d| quiet + d * MILLIS_PER_DAY).collect();
    let expected_alert = days
        .iter()
        .copied()
        .find(|t| (0..3).all(|k| red(t - k * MILLIS_PER_DAY)))
        .unwrap();
    let expected_drop = days
        .iter()
        .copied()
        .find(|t| score(t - 7 * MILLIS_PER_DAY) - score(*t) >= 30.0)
        .unwrap();
    assert!(expected_alert > quiet && expected_drop > quiet);
    let alert_score = score(expected_alert);
    let changes = e.due_segment_changes(quiet + 200 * MILLIS_PER_DAY);
    let entered = |s: &str| {
        changes
            .iter()
            .find(|(_, m)| {
                m.name.as_deref() == Some("Segment Entered")
                    && m.properties().unwrap()["segment_name"] == s
            })
            .map(|(_, m)| m.timestamp)
    };
    assert_eq!(
        entered("red for 3 days"),
        Some(expected_alert),
        "{}",
        format_instant(expected_alert)
    );
    assert_eq!(
        entered("dropped 30 in a week"),
        Some(expected_drop),
        "{}",
        format_instant(expected_drop)
    );
    // Each entry also raised its alert event, at the same instant, with the health then;
    // the exit of the drop alert raised none.
    let alerts: Vec<(&str, Millis, Value)> = changes
        .iter()
        .filter(|(_, m)| {
            matches!(
                m.name.as_deref(),
                Some("At Risk Entered" | "Health Changed")
            )
        })
        .map(|(_, m)| {
            (
                m.name.as_deref().unwrap(),
                m.timestamp,
                Value::Object(m.properties().unwrap().clone()),
            )
        })
        .collect();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(
        (alerts.iter().find(|a| a.0 == "At Risk Entered").unwrap().1),
        expected_alert
    );
    let risk = &alerts.iter().find(|a| a.0 == "At Risk Entered").unwrap().2;
    assert_eq!(risk["health_grade"], "red");
    assert_eq!(risk["segment_id"], "seg_1");
    assert!((risk["health_score"].as_f64().unwrap() - alert_score).abs() < 1e-9);
    let changed = alerts.iter().find(|a| a.0 == "Health Changed").unwrap();
    assert_eq!(changed.1, expected_drop);
    // Alerts are operator events: not the customer's activity.
    assert_eq!(e.find("fading").unwrap().last_seen, seen_before);
    // Once the score stops falling the drop alert ends; red holds.
    assert!(member(&e, "fading", SegmentId(1)));
    assert!(!member(&e, "fading", SegmentId(2)));
    // Replaying the log (alerts included) into a fresh engine gives the same memberships.
    let mut replay = engine();
    for m in log.iter().chain(changes.iter().map(|(_, m)| m)) {
        replay.apply(m);
    }
    let a = e.find("fading").unwrap();
    let b = replay.find("fading").unwrap();
    assert_eq!(a.segments, b.segments);

    // Only the two alert events are accepted, and the error says where.
    for bad in [json!("At Risk"), json!(3)] {
        let err = Definition::parse(&json!({"health_band": "red", "for_days": 3, "alert": bad}))
            .unwrap_err();
        assert!(
            err.starts_with("definition.alert:") && err.contains("`At Risk Entered`"),
            "{err}"
        );
    }
}

#[test]
fn values_of_the_day_are_read_from_the_days_table_until_the_next_one() {
    use std::sync::Arc;
    use tenure_core::segments::{CustomerValues, DailyValues};
    let mut e = engine();
    let t0 = at("2026-05-10T10:00:00Z");
    for user in ["u1", "u2", "u3"] {
        let identify = json!({"type": "identify", "userId": user,
                              "timestamp": format_instant(t0 - 3_600_000), "traits": {}});
        e.apply(&message(identify, t0));
    }
    let ids: std::collections::HashMap<&str, CustomerId> = ["u1", "u2", "u3"]
        .into_iter()
        .map(|u| (u, e.find(u).unwrap().id.clone()))
        .collect();
    let id = |user: &str| ids[user].clone();
    let table = |day: i32, values: &[(&str, Option<f64>, Option<f64>)]| DailyValues {
        day,
        currency: Some("USD".into()),
        customers: values
            .iter()
            .map(|(u, p, pct)| {
                let v = CustomerValues {
                    p_alive: *p,
                    predicted_clv: Some(12.5),
                    revenue_percentile: *pct,
                };
                (id(u), v)
            })
            .collect(),
    };
    let day0 = tenure_core::time::day_of(t0);
    let fading = SegmentId(7);
    let top = SegmentId(8);
    let def = |v: Value| Definition::parse(&v).unwrap();
    // Before any table there are no values: nobody is in, and the shell is told to compute one.
    assert!(
        e.define_segment(
            fading,
            "fading",
            def(json!({"computed": "p_alive", "op": "lt", "value": 0.5})),
            [],
            t0
        )
        .is_empty()
    );
    assert!(e.segments_read_daily_values());
    let first = table(
        day0,
        &[("u1", Some(0.2), Some(95.0)), ("u2", Some(0.8), Some(40.0))],
    );
    e.set_daily_values(Arc::new(first));
    let changes = e.due_segment_changes(t0);
    assert_eq!(
        names(&changes),
        vec![("Segment Entered".into(), "2026-05-10T10:00".into())]
    );
    for (_, m) in &changes {
        e.apply(m);
    }
    assert!(member(&e, "u1", fading) && !member(&e, "u2", fading));
    let entered = e.define_segment(
        top,
        "top revenue",
        def(json!({"computed": "revenue_percentile", "op": "gte", "value": 80})),
        [],
        t0,
    );
    assert_eq!(entered.len(), 1);
    for (_, m) in &entered.messages(&e) {
        e.apply(m);
    }
    // The values are frozen until the next table: no timer, nothing changes with time.
    assert_eq!(e.next_segment_timer(), None);
    assert!(e.due_segment_changes(at("2026-05-10T23:59:59Z")).is_empty());
    // The next day's table moves everyone at once, at the instant it is set.
    let midnight = at("2026-05-11T00:00:00Z");
    e.set_daily_values(Arc::new(table(
        day0 + 1,
        &[
            ("u1", Some(0.9), Some(70.0)),
            ("u2", Some(0.1), None),
            ("u3", Some(0.3), Some(85.0)),
        ],
    )));
    let changes = e.due_segment_changes(midnight);
    let mut got: Vec<(String, String, u32)> = changes
        .iter()
        .map(|(c, m)| {
            let user = e
                .customers()
                .find(|s| &s.id == c)
                .unwrap()
                .user_id
                .clone()
                .unwrap();
            let segment = m.properties().unwrap()["segment_id"]
                .as_str()
                .unwrap()
                .trim_start_matches("seg_")
                .parse()
                .unwrap();
            (user, m.name.clone().unwrap(), segment)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("u1".into(), "Segment Exited".into(), 7),
            ("u1".into(), "Segment Exited".into(), 8),
            ("u2".into(), "Segment Entered".into(), 7),
            ("u3".into(), "Segment Entered".into(), 7),
            ("u3".into(), "Segment Entered".into(), 8),
        ]
    );
    assert!(changes.iter().all(|(_, m)| m.timestamp == midnight));
}

/// A backfill's events: in customer order, each membership followed by its alert, the same
/// whether built at once or a few customers at a time (as the writer stores them), and
/// counted as entries and exits; an edit that drops customers exits them.
#[test]
fn a_backfill_builds_its_events_in_customer_order_in_any_chunks() {
    let mut e = engine();
    let now = at("2026-06-01T12:00:00Z");
    for (i, user) in ["u1", "u2", "u3", "u4", "u5"].iter().enumerate() {
        let when = now - (i as i64 + 1) * 3_600_000;
        e.apply(&message(track(user, when, "Exported", json!({})), now));
        if i % 2 == 0 {
            e.apply(&message(track(user, when, "Exported", json!({})), now));
        }
    }
    let def = |v: Value| Definition::parse(&v).unwrap();
    let backfill = e.define_segment(
        SegmentId(4),
        "exporters",
        def(json!({"performed": "Exported", "alert": "At Risk Entered"})),
        [],
        now,
    );
    assert_eq!(
        (backfill.entered(), backfill.exited(), backfill.len()),
        (5, 0, 10)
    );
    let all = backfill.messages(&e);
    let chunked: Vec<(CustomerId, Message)> = backfill
        .chunks(2)
        .flat_map(|chunk| chunk.messages(&e))
        .collect();
    assert_eq!(all, chunked);
    let ids: Vec<&CustomerId> = all.iter().step_by(2).map(|(c, _)| c).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "customer order");
    for pair in all.chunks(2) {
        assert_eq!(pair[0].1.name.as_deref(), Some("Segment Entered"));
        assert_eq!(pair[1].1.name.as_deref(), Some("At Risk Entered"));
        assert_eq!(pair[0].0, pair[1].0);
        assert!(pair[0].1.message_id.starts_with("tenure:"));
        assert_eq!(pair[0].1.timestamp, now);
    }
    assert!((1..=5).all(|i| member(&e, &format!("u{i}"), SegmentId(4))));
    // The edit keeps u1, u3 and u5 (two exports each) and exits the others, without alerts.
    let edit = e.define_segment(
        SegmentId(4),
        "exporters",
        def(json!({"performed": "Exported", "at_least": 2, "alert": "At Risk Entered"})),
        [],
        now + 1,
    );
    assert_eq!((edit.entered(), edit.exited(), edit.len()), (0, 2, 2));
    assert!(
        edit.messages(&e)
            .iter()
            .all(|(_, m)| m.name.as_deref() == Some("Segment Exited")
                && m.message_id.contains(".v2:"))
    );
    assert!(member(&e, "u1", SegmentId(4)) && !member(&e, "u2", SegmentId(4)));
}

/// Whether few or most customers change, a backfill's events come in customer id order
/// (few are sorted by id, many are picked out of the id index: both paths), and the
/// restart's reconcile commits in that order too.
#[test]
fn backfills_and_reconciles_are_in_customer_order_whatever_their_size() {
    let now = at("2026-06-01T12:00:00Z");
    // 200 customers, of whom 5 did "Rare" and the others "Common".
    let business = || {
        let mut e = engine();
        for i in 0..200 {
            let event = if i % 40 == 7 { "Rare" } else { "Common" };
            let m = track(&format!("u{i}"), now - 1_000, event, json!({}));
            e.apply(&message(m, now));
        }
        e
    };
    let performed = |event: &str| Definition::parse(&json!({ "performed": event })).unwrap();
    let in_order = |messages: &[(CustomerId, Message)]| {
        let ids: Vec<&CustomerId> = messages.iter().map(|(c, _)| c).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        ids == sorted
    };
    let mut e = business();
    for (id, event, members, path) in [
        (1, "Rare", 5, "few: sorted by id"),
        (2, "Common", 195, "many: walked in id order"),
    ] {
        let backfill = e.define_segment(SegmentId(id), event, performed(event), [], now);
        let messages = backfill.messages(&e);
        assert_eq!(messages.len(), members, "{path}");
        assert!(in_order(&messages), "{path}");
    }
    // A restart: the rare segment loaded again from scratch, everyone reconciled.
    let mut restarted = business();
    restarted.load_segment(SegmentId(1), "Rare", 1, performed("Rare"));
    let changes = restarted.due_segment_changes(now + 1);
    assert_eq!(changes.len(), 5);
    assert!(in_order(&changes), "reconcile: in id order");
}
