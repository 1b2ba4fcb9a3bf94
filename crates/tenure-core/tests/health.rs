//! Health scores on hand-computed customers, the model format's errors, and the default
//! model on the demo business: customers about to churn score lower.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tenure_core::demo::{DemoBusiness, DemoConfig};
use tenure_core::health::{Grade, HealthModel, Scale};
use tenure_core::time::{Millis, add_months, format_instant, parse_instant};
use tenure_core::{Envelope, LiveWorkspace, Message, WorkspaceId};

fn at(text: &str) -> Millis {
    parse_instant(text).unwrap()
}

fn fold(messages: &[Value]) -> LiveWorkspace {
    let mut engine = LiveWorkspace::new(WorkspaceId::parse("ws_health").unwrap());
    let envelope = Envelope {
        received_at: at("2026-06-01T00:00:00Z"),
        batch_sent_at: None,
    };
    for m in messages {
        engine.apply(&Message::parse(m.clone(), None, envelope).unwrap());
    }
    engine
}

fn track(user: &str, when: &str, event: &str, properties: Value) -> Value {
    json!({"type": "track", "userId": user, "event": event, "timestamp": when, "properties": properties})
}

#[test]
fn scales_map_values_as_documented() {
    let curve = Scale::Curve {
        points: vec![[0.0, 0.0], [4.0, 40.0], [12.0, 80.0]],
    };
    assert_eq!(curve.score(-3.0), 0.0);
    assert_eq!(curve.score(2.0), 20.0);
    assert_eq!(curve.score(8.0), 60.0);
    assert_eq!(curve.score(100.0), 80.0);
    let steps = Scale::Thresholds {
        steps: vec![[0.0, 10.0], [7.0, 60.0], [9.0, 100.0]],
    };
    assert_eq!(steps.score(6.0), 10.0);
    assert_eq!(steps.score(7.0), 60.0);
    assert_eq!(steps.score(10.0), 100.0);
    assert_eq!(steps.score(-1.0), 10.0, "below the first step: its score");
}

/// A customer on 2026-03-31: 6 views in March (days 20–31), 2 in the 30 days before, a
/// ticket open, NPS 8, last seen 2026-03-25; a second customer has only an old event.
#[test]
fn the_default_model_scores_a_customer_as_worked_out_by_hand() {
    let mut m = vec![];
    for d in ["2026-03-02", "2026-03-05"] {
        m.push(track(
            "A",
            &format!("{d}T10:00:00Z"),
            "Report Viewed",
            json!({}),
        ));
    }
    for (d, e) in [
        ("2026-03-20", "Report Viewed"),
        ("2026-03-21", "Report Viewed"),
        ("2026-03-22", "Project Created"),
        ("2026-03-23", "Report Viewed"),
        ("2026-03-24", "Export Completed"),
        ("2026-03-25", "Report Viewed"),
    ] {
        m.push(track("A", &format!("{d}T10:00:00Z"), e, json!({})));
    }
    m.push(track(
        "A",
        "2026-03-10T00:00:00Z",
        "Ticket Opened",
        json!({"ticket_id": "t1"}),
    ));
    m.push(track(
        "A",
        "2026-03-12T00:00:00Z",
        "Survey Responded",
        json!({"survey_id": "nps", "score": 8}),
    ));
    m.push(track(
        "B",
        "2025-10-01T00:00:00Z",
        "Report Viewed",
        json!({}),
    ));
    let engine = fold(&m);
    let now = at("2026-03-31T12:00:00Z");
    let model = HealthModel::saas_default();
    let a = model.score(engine.find("A").unwrap(), engine.names(), now);
    let by = |name: &str| {
        a.components
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .clone()
    };
    // The window of 30 days ending 03-31 starts 03-02: both early views count too, so 8
    // of the views, the ticket and the survey (named events) are in it: 10 occurrences.
    // Usage: 10 → 40 + (80 − 40)·(10 − 4)/8 = 70.
    assert_eq!(by("usage").value, Some(10.0));
    assert!((by("usage").score.unwrap() - 70.0).abs() < 1e-9);
    // Trend: the 30 days before (01-31 – 03-01) had nothing: undefined, left out.
    assert_eq!(by("usage_trend").value, None);
    assert_eq!(by("usage_trend").contribution, None);
    // Recency: the last named event was on 03-25: 6 days → 100 − 10·6/7.
    assert_eq!(by("recency").value, Some(6.0));
    assert!((by("recency").score.unwrap() - (100.0 - 60.0 / 7.0)).abs() < 1e-9);
    // Breadth: Report Viewed, Project Created, Export Completed, Ticket Opened, Survey
    // Responded = 5 → 100.
    assert_eq!(by("breadth").value, Some(5.0));
    assert_eq!(by("breadth").score, Some(100.0));
    // NPS 8 → 60; one open ticket → 70; no subscription past due → 100.
    assert_eq!(by("nps").score, Some(60.0));
    assert_eq!(by("open_tickets").score, Some(70.0));
    assert_eq!(by("billing").score, Some(100.0));
    // Weights that counted: 30 + 20 + 10 + 10 + 5 + 5 = 80 (the trend's 20 left out).
    let expected = (30.0 * 70.0
        + 20.0 * (100.0 - 60.0 / 7.0)
        + 10.0 * 100.0
        + 10.0 * 60.0
        + 5.0 * 70.0
        + 5.0 * 100.0)
        / 80.0;
    assert!((a.score.unwrap() - expected).abs() < 1e-9, "{a:?}");
    let sum: f64 = a.components.iter().filter_map(|c| c.contribution).sum();
    assert!(
        (sum - a.score.unwrap()).abs() < 1e-9,
        "contributions add up to the score"
    );
    assert_eq!(a.grade, Some(Grade::Green), "{expected:.1} ≥ 70");

    // B: nothing in 30 days, last seen 181 days ago, no NPS, no tickets.
    let b = model.score(engine.find("B").unwrap(), engine.names(), now);
    assert_eq!(b.grade, Some(Grade::Red), "{b:?}");
}

#[test]
fn a_bad_model_is_refused_with_the_component_and_field() {
    let err = |json: &str| HealthModel::parse(json).unwrap_err();
    assert!(err("{}").contains("not a health model"));
    assert!(err(r#"{"name": "m", "components": []}"#).contains("at least one component"));
    let one = |component: &str| format!(r#"{{"name": "m", "components": [{component}]}}"#);
    let e = err(&one(
        r#"{"name": "usage", "metric": {"kind": "usage_frequency", "window_days": 0}, "scale": {"type": "curve", "points": [[0, 0]]}, "weight": 1}"#,
    ));
    assert!(
        e.contains("components[0] (`usage`).metric.window_days"),
        "{e}"
    );
    let e = err(&one(
        r#"{"name": "nps", "metric": {"kind": "nps"}, "scale": {"type": "curve", "points": [[5, 0], [1, 100]]}, "weight": 1}"#,
    ));
    assert!(e.contains("scale.points: values must increase"), "{e}");
    let e = err(&one(
        r#"{"name": "nps", "metric": {"kind": "nps"}, "scale": {"type": "thresholds", "steps": [[0, 140]]}, "weight": 1}"#,
    ));
    assert!(e.contains("scores between 0 and 100"), "{e}");
    let e = err(&one(
        r#"{"name": "nps", "metric": {"kind": "nps"}, "scale": {"type": "thresholds", "steps": [[0, 40]]}, "weight": 0}"#,
    ));
    assert!(e.contains("weight: must be a number > 0"), "{e}");
    let e = err(&one(
        r#"{"name": "x", "metric": {"kind": "vibes"}, "scale": {"type": "curve", "points": [[0, 0]]}, "weight": 1}"#,
    ));
    assert!(e.contains("vibes"), "{e}");
    // The shipped model round-trips through its own format.
    let text = serde_json::to_string(&HealthModel::saas_default()).unwrap();
    assert_eq!(
        HealthModel::parse(&text).unwrap(),
        HealthModel::saas_default()
    );
}

/// On the demo business, scored 2025-10-01 from the events up to then: the subscribers who
/// cancel within the next 30 days (whose usage fades, docs/demo.md) score lower than those
/// who stay — measured as the AUC of the score (the chance that a staying customer scores
/// above a churning one) and the gap in mean score.
#[test]
fn on_the_demo_customers_about_to_churn_score_lower() {
    let end = parse_instant("2026-01-01").unwrap();
    let cutoff = add_months(end, -3);
    let business = DemoBusiness::new(DemoConfig {
        customers: 3000,
        months: 24,
        seed: 7,
        end,
    });
    let envelope = Envelope {
        received_at: end + 1,
        batch_sent_at: None,
    };
    let mut before = LiveWorkspace::new(WorkspaceId::parse("ws_demo").unwrap());
    let mut churners = std::collections::HashSet::new();
    for customer in business.customers() {
        for event in &customer.events {
            let message = Message::parse(event.clone(), None, envelope).unwrap();
            if message.timestamp <= cutoff {
                before.apply(&message);
            } else if message.timestamp <= cutoff + 30 * 86_400_000
                && message.name.as_deref() == Some("Subscription Cancelled")
            {
                churners.insert(customer.user_id.clone());
            }
        }
    }
    let model = HealthModel::saas_default();
    let (mut churning, mut staying) = (Vec::new(), Vec::new());
    for state in before.customers() {
        if state.mrr_at(cutoff).values().all(|m| *m == 0) {
            continue;
        }
        let full = model.score(state, before.names(), cutoff);
        assert_eq!(
            model.grade(state, before.names(), cutoff),
            (full.score, full.grade),
            "the quick score is the full one"
        );
        let Some(score) = full.score else {
            continue;
        };
        if state.user_id.as_ref().is_some_and(|u| churners.contains(u)) {
            churning.push(score);
        } else {
            staying.push(score);
        }
    }
    assert!(
        churning.len() >= 30 && staying.len() >= 500,
        "{} churners, {} staying",
        churning.len(),
        staying.len()
    );
    let pairs = (churning.len() * staying.len()) as f64;
    let wins: f64 = staying
        .iter()
        .map(|s| {
            churning
                .iter()
                .map(|c| {
                    if s > c {
                        1.0
                    } else if s == c {
                        0.5
                    } else {
                        0.0
                    }
                })
                .sum::<f64>()
        })
        .sum();
    let auc = wins / pairs;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (churn, stay) = (mean(&churning), mean(&staying));
    assert!(
        // Seed 7 gives AUC 0.711 (49 churners; chance is 0.5, its standard error here ≈ 0.065)
        // and a 9.3-point gap.
        auc >= 0.65 && stay - churn >= 5.0,
        "AUC {auc:.3}; mean health: churners {churn:.1} ({}), staying {stay:.1} ({})",
        churning.len(),
        staying.len()
    );
}

/// The score is computed from the facts as of each instant, so history and trend need no
/// stored scores: a customer who stopped using the product two weeks ago trends down.
#[test]
fn history_and_trend_come_from_the_facts_as_of_each_instant() {
    use tenure_core::health::Direction;
    let day = 86_400_000i64;
    let now = at("2026-03-31T12:00:00Z");
    let mut m = vec![];
    for d in 14..90 {
        let when = tenure_core::time::format_instant(now - d * day);
        for e in ["Report Viewed", "Dashboard Viewed"] {
            m.push(track("fading", &when, e, json!({})));
        }
    }
    let engine = fold(&m);
    let state = engine.find("fading").unwrap();
    let model = HealthModel::saas_default();
    let models = tenure_core::health::HealthModels::single(model.clone());
    let trend = models.trend(state, engine.names(), now, 14);
    let earlier = model
        .score(state, engine.names(), now - 14 * day)
        .score
        .unwrap();
    let current = model.score(state, engine.names(), now).score.unwrap();
    assert_eq!(trend.previous_score, Some(earlier));
    assert!(earlier - current >= 5.0, "{earlier} → {current}");
    assert_eq!(trend.direction, Direction::Down);
    let history = models.history(state, engine.names(), now, 12, 7);
    assert_eq!(history.len(), 12);
    assert_eq!(history.last().unwrap().at, now, "oldest first, ending now");
    assert_eq!(history.last().unwrap().score, Some(current));
    assert_eq!(
        history[10].score,
        Some(
            model
                .score(state, engine.names(), now - 7 * day)
                .score
                .unwrap()
        )
    );
}

/// The overview counts current customers only (paying now, or an order in the last year)
/// and lists the red ones, lowest first, with the components that cost the most.
#[test]
fn the_overview_lists_current_customers_at_risk_with_reasons() {
    let sub = |user: &str, when: &str| {
        track(
            user,
            when,
            "Subscription Started",
            json!({"subscription_id": format!("s-{user}"), "plan": "pro",
            "interval": "year", "amount": 1200, "currency": "USD"}),
        )
    };
    let mut m = vec![
        sub("busy", "2026-01-01T00:00:00Z"),
        sub("silent", "2026-01-01T00:00:00Z"),
    ];
    for d in 1..=30 {
        let when = format!("2026-03-{d:02}T09:00:00Z");
        for e in ["Report Viewed", "Dashboard Viewed", "Project Created"] {
            m.push(track("busy", &when, e, json!({})));
        }
    }
    m.push(track(
        "silent",
        "2026-01-02T00:00:00Z",
        "Report Viewed",
        json!({}),
    ));
    m.push(track(
        "gone",
        "2026-03-01T00:00:00Z",
        "Report Viewed",
        json!({}),
    ));
    let engine = fold(&m);
    let now = at("2026-03-31T12:00:00Z");
    let overview = tenure_core::health::HealthModels::default().overview(
        engine.customers(),
        engine.names(),
        now,
        10,
    );
    assert_eq!(
        overview.customers, 2,
        "`gone` never paid nor ordered: {overview:?}"
    );
    assert_eq!((overview.red, overview.green), (1, 1), "{overview:?}");
    let silent = &overview.at_risk[0];
    assert_eq!(silent.user_id.as_deref(), Some("silent"));
    // Nothing in 30 days and last seen 88 days ago: usage, recency and breadth score 0;
    // NPS and trend are undefined, so 70 of the weights count (usage 30, recency 20,
    // breadth 10, tickets 5, billing 5) and usage loses 30/70 × 100 points.
    let reasons: Vec<&str> = silent
        .reasons
        .iter()
        .map(|r| r.component.as_str())
        .collect();
    assert_eq!(reasons, ["usage", "recency"], "{silent:?}");
    assert!(
        (silent.reasons[0].points_lost - 100.0 * 30.0 / 70.0).abs() < 1e-9,
        "{silent:?}"
    );
}

/// A `Health Overridden` event sets the grade (and optionally the score) until it expires;
/// the computed score stays visible; a later override replaces an earlier one.
#[test]
fn a_manual_override_applies_until_it_expires() {
    let overridden = |when: &str, grade: &str, expires: &str, score: Option<f64>| {
        let mut props = json!({"grade": grade, "reason": "renewal signed on a call", "author": "ana@example.com",
                               "expires_at": expires});
        if let Some(s) = score {
            props["score"] = json!(s);
        }
        track("A", when, "Health Overridden", props)
    };
    let m = vec![
        track("A", "2025-10-01T00:00:00Z", "Report Viewed", json!({})),
        overridden(
            "2026-03-01T00:00:00Z",
            "green",
            "2026-04-01T00:00:00Z",
            Some(85.0),
        ),
        overridden(
            "2026-03-20T00:00:00Z",
            "yellow",
            "2026-03-25T00:00:00Z",
            None,
        ),
    ];
    let engine = fold(&m);
    let state = engine.find("A").unwrap();
    let model = HealthModel::saas_default();
    let score_at = |when: &str| model.score(state, engine.names(), at(when));
    let before = score_at("2026-02-15T00:00:00Z");
    assert!(before.manual_override.is_none());
    assert_eq!(before.grade, Some(Grade::Red));
    let during = score_at("2026-03-10T00:00:00Z");
    assert_eq!(
        (during.grade, during.score),
        (Some(Grade::Green), Some(85.0))
    );
    assert_eq!(
        during.computed_grade,
        Some(Grade::Red),
        "the model's own view stays visible"
    );
    assert_eq!(
        during.manual_override.as_ref().unwrap().author,
        "ana@example.com"
    );
    // The later override, without a score: its grade, the computed score.
    let later = score_at("2026-03-22T00:00:00Z");
    assert_eq!(later.grade, Some(Grade::Yellow));
    assert_eq!(later.score, later.computed_score);
    // It expired on 03-25 and replaced the first: back to the model.
    let after = score_at("2026-03-26T00:00:00Z");
    assert!(after.manual_override.is_none());
    assert_eq!(after.grade, after.computed_grade);
    assert_eq!(
        state.health_overrides.len(),
        2,
        "both kept: the audit trail"
    );
}

#[test]
fn a_bad_override_event_names_each_field() {
    use tenure_core::semantic::Semantic;
    let props = json!({"grade": "purple", "score": 140, "author": "ana"});
    let errors = Semantic::parse("Health Overridden", props.as_object()).unwrap_err();
    let fields: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
    for field in [
        "properties.grade",
        "properties.score",
        "properties.reason",
        "properties.expires_at",
    ] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} missing from {fields:?}"
        );
    }
}

/// Models per segment: an onboarding model for the first 30 days, the shipped one after.
/// The switch happens at the instant tenure reaches 30 days, and a segment on the grade
/// follows it exactly (its timer includes the instant the model changes).
#[test]
fn an_onboarding_model_scores_the_first_30_days_and_segments_follow_the_switch() {
    use tenure_core::health::{AssignedModel, HealthModels};
    use tenure_core::segments::{Definition, SegmentId};
    let onboarding = AssignedModel::parse(&json!({
        "name": "onboarding",
        "applies_to": {"computed": "tenure_days", "op": "lt", "value": 30},
        "components": [{"name": "breadth", "weight": 1,
                        "metric": {"kind": "breadth", "window_days": 30},
                        "scale": {"type": "curve", "points": [[0, 0], [5, 100]]}}]
    }))
    .unwrap();
    let models = HealthModels::new(vec![onboarding]).unwrap();
    let names: Vec<&str> = models.models().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["onboarding", "saas_default"]);

    // One kind of event every day: breadth 1 (onboarding: 20, red); the shipped model
    // sees daily use and scores it green.
    let start = at("2026-01-01T10:00:00Z");
    let mut m = Vec::new();
    for d in 0..60 {
        let when = format_instant(start + d * 86_400_000);
        m.push(track("daily", &when, "Report Viewed", json!({})));
    }
    let mut engine = fold(&m);
    let day20 = start + 20 * 86_400_000;
    engine.set_health_models(models.clone());
    // Setting models reconciles every segment at the next tick (none are defined yet).
    assert!(engine.due_segment_changes(day20).is_empty());
    let green =
        Definition::parse(&json!({"computed": "grade", "op": "eq", "value": "green"})).unwrap();
    let changes = engine.define_segment(SegmentId(1), "green", green, [], day20);
    assert!(changes.is_empty(), "red while onboarding: {changes:?}");
    let state = engine.find("daily").unwrap().clone();
    assert_eq!(
        models.model_for(&state, engine.names(), day20).name,
        "onboarding"
    );
    assert_eq!(
        models.grade(&state, engine.names(), day20).1,
        Some(Grade::Red)
    );
    let switch = state.first_seen + 30 * 86_400_000;
    assert_eq!(
        models.model_for(&state, engine.names(), switch - 1).name,
        "onboarding"
    );
    assert_eq!(
        models.model_for(&state, engine.names(), switch).name,
        "saas_default"
    );
    assert_eq!(
        models.grade(&state, engine.names(), switch).1,
        Some(Grade::Green)
    );
    let entered = engine.due_segment_changes(day20 + 20 * 86_400_000);
    let stamps: Vec<(String, i64)> = entered
        .iter()
        .map(|(_, m)| (m.name.clone().unwrap(), m.timestamp))
        .collect();
    assert_eq!(stamps, vec![("Segment Entered".to_owned(), switch)]);
    // The profile's view: the same model, and its history switches too.
    let history = models.history(&state, engine.names(), switch + 7 * 86_400_000, 3, 7);
    assert_eq!(history[0].grade, Some(Grade::Red));
    assert_eq!(history[2].grade, Some(Grade::Green));
}

#[test]
fn assigned_models_are_refused_with_the_field_at_fault() {
    use tenure_core::health::{AssignedModel, HealthModels};
    let model = |extra: Value| {
        let mut v = json!({"name": "m", "components": [{"name": "nps", "weight": 1,
            "metric": {"kind": "nps"}, "scale": {"type": "thresholds", "steps": [[0, 10], [9, 100]]}}]});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        AssignedModel::parse(&v)
    };
    let err = model(json!({"applies_to": {"computed": "grade", "op": "eq", "value": "red"}}))
        .unwrap_err();
    assert!(err.contains("applies_to: cannot read health"), "{err}");
    let err = model(json!({"applies_to": {"performed": "Order Completed", "where": [{"property": "total", "op": "gt", "value": 5}]}}))
        .unwrap_err();
    assert!(err.contains("applies_to: property filters"), "{err}");
    let err = model(json!({"applies_to": {"computed": "tenure_days", "op": "lt", "value": -1, "within_days": 3}})).unwrap_err();
    assert!(err.starts_with("applies_to"), "{err}");
    let err = model(json!({"priority": "high"})).unwrap_err();
    assert!(err.contains("priority"), "{err}");
    let err = model(json!({"colour": "red"})).unwrap_err();
    assert!(err.contains("colour"), "{err}");
    let (a, b) = (
        model(json!({})).unwrap(),
        model(json!({"name": "n"})).unwrap(),
    );
    let err = HealthModels::new(vec![a, b]).unwrap_err();
    assert!(err.contains("both apply to every customer"), "{err}");
}

/// Breadth counts distinct names in the window, also past the first 128 names interned
/// (the fast path keeps a bit per name below 128, a list above), and nothing outside it.
#[test]
fn breadth_counts_distinct_names_past_the_first_hundred_and_twenty_eight() {
    let mut m = vec![track("old", "2026-01-01T10:00:00Z", "Ancient", json!({}))];
    for i in 0..140 {
        m.push(track(
            "A",
            "2026-03-20T10:00:00Z",
            &format!("E{i}"),
            json!({}),
        ));
        // Twice each, and a third time for the names past 128: counted once.
        m.push(track(
            "A",
            "2026-03-21T10:00:00Z",
            &format!("E{i}"),
            json!({}),
        ));
        if i >= 130 {
            m.push(track(
                "A",
                "2026-03-22T10:00:00Z",
                &format!("E{i}"),
                json!({}),
            ));
        }
    }
    m.push(track("A", "2026-01-02T10:00:00Z", "Ancient", json!({})));
    let engine = fold(&m);
    let a = engine.find("A").unwrap();
    let breadth = tenure_core::health::Metric::Breadth { window_days: 30 };
    let now = at("2026-03-31T12:00:00Z");
    assert_eq!(breadth.value(a, engine.names(), now), Some(140.0));
    // Seen from the 21st: only that day is in a 1-day window.
    assert_eq!(
        breadth.value(a, engine.names(), at("2026-03-21T23:00:00Z")),
        Some(140.0)
    );
    let one_day = tenure_core::health::Metric::Breadth { window_days: 1 };
    assert_eq!(
        one_day.value(a, engine.names(), at("2026-03-22T01:00:00Z")),
        Some(10.0)
    );
}
