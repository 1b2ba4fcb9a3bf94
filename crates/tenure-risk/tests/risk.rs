//! The churn-risk model on the demo business: trained on its own history with a time-based
//! holdout, it must beat the recency-only baseline by a clear margin; predictions come with
//! reasons and round-trip through the stored format.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tenure_core::demo::{DemoBusiness, DemoConfig};
use tenure_core::time::parse_instant;
use tenure_core::{Envelope, LiveWorkspace, Message, WorkspaceId};
use tenure_risk::RiskModel;
use tenure_risk::training::{TrainingError, TrainingOptions, train};

fn demo(customers: usize, months: u32, seed: u64) -> (LiveWorkspace, i64) {
    let end = parse_instant("2026-12-01").unwrap();
    let business = DemoBusiness::new(DemoConfig {
        customers,
        months,
        seed,
        end,
    });
    let envelope = Envelope {
        received_at: end + 1,
        batch_sent_at: None,
    };
    let mut engine = LiveWorkspace::new(WorkspaceId::parse("ws_demo").unwrap());
    for customer in business.customers() {
        for event in &customer.events {
            engine.apply(&Message::parse(event.clone(), None, envelope).unwrap());
        }
    }
    (engine, end)
}

#[test]
fn on_the_demo_the_model_beats_recency_by_a_clear_margin() {
    // Seeds 1, 2, 3 and 7 (3,000 customers) gave gains of 0.21, 0.09, 0.08 and 0.11, the
    // demo's own seed 42 (2,000) 0.07-0.09; the holdout has 14-36 churners, so an AUC's
    // standard error is about 0.04: 0.05 is a clear margin, not noise.
    let (engine, now) = demo(3000, 24, 7);
    let states: Vec<_> = engine.customers().collect();
    let model = train(&states, engine.names(), now, &TrainingOptions::default()).unwrap();
    let r = &model.report;
    let kept = r.candidates.iter().find(|c| c.learner == r.kept).unwrap();
    assert!(
        r.auc_gain_over_recency >= 0.05 && kept.holdout.auc >= 0.65,
        "kept {:?}: holdout AUC {:.3}, recency {:.3}",
        r.kept,
        kept.holdout.auc,
        r.recency_baseline.auc
    );
    assert!((kept.holdout.auc - r.recency_baseline.auc - r.auc_gain_over_recency).abs() < 1e-12);
    // Time-based: the training cut-offs' horizons end by the holdout cut-off, which is one
    // horizon before the end of the data.
    assert_eq!(r.holdout.cutoffs, ["2026-10-31"]);
    assert_eq!(r.validation.cutoffs, ["2026-10-01"]);
    assert_eq!(r.fit.cutoffs.len(), 7);
    assert!(r.fit.cutoffs.iter().all(|c| c.as_str() < "2026-10-01"));
    // Top-decile lift of the kept model: the riskiest tenth churns well above the base rate.
    assert!(
        kept.holdout.top_decile.lift >= 2.0,
        "{:?}",
        kept.holdout.top_decile
    );
    // Usage features carry the signal the demo puts in (usage fades before a cancellation).
    let top: Vec<&str> = r.importance[..5]
        .iter()
        .map(|f| f.feature.as_str())
        .collect();
    assert!(
        top.iter()
            .any(|f| f.starts_with("events_") || *f == "usage_trend_30d"),
        "{top:?}"
    );

    // Every current customer has a prediction; the riskiest have reasons that raise the risk,
    // most first; the stored model predicts the same.
    let stored = RiskModel::from_json(&model.to_json()).unwrap();
    let mut predicted = 0;
    for state in &states {
        let Some(p) = model.predict(state, engine.names(), now) else {
            assert!(stored.predict(state, engine.names(), now).is_none());
            continue;
        };
        predicted += 1;
        assert!((0.0..=1.0).contains(&p.probability));
        assert_eq!(stored.predict(state, engine.names(), now), Some(p.clone()));
        assert!(p.reasons.len() <= 3);
        assert!(p.reasons.iter().all(|r| r.contribution > 0.0));
        assert!(
            p.reasons
                .windows(2)
                .all(|w| w[0].contribution >= w[1].contribution)
        );
        if p.probability > 0.2 {
            assert!(!p.reasons.is_empty(), "{p:?}");
        }
    }
    assert!(predicted > 1000, "{predicted}");
}

/// A row reads nothing stamped after its cut-off: features computed on the whole log equal
/// those computed on an engine that only folded the events up to the cut-off.
#[test]
fn features_at_a_cutoff_do_not_read_the_future() {
    use tenure_core::risk::features::FeatureSpec;
    let end = parse_instant("2026-12-01").unwrap();
    let cut = parse_instant("2026-06-15").unwrap() - 1;
    let business = DemoBusiness::new(DemoConfig {
        customers: 400,
        months: 18,
        seed: 3,
        end,
    });
    let envelope = Envelope {
        received_at: end + 1,
        batch_sent_at: None,
    };
    let mut full = LiveWorkspace::new(WorkspaceId::parse("ws_demo").unwrap());
    let mut before = LiveWorkspace::new(WorkspaceId::parse("ws_demo").unwrap());
    for customer in business.customers() {
        for event in &customer.events {
            let message = Message::parse(event.clone(), None, envelope).unwrap();
            full.apply(&message);
            if message.timestamp <= cut {
                before.apply(&message);
            }
        }
    }
    let spec = FeatureSpec::learn(full.customers().map(|s| (s, cut)));
    assert!(!spec.plans.is_empty() && !spec.channels.is_empty());
    let mut compared = 0;
    for state in before.customers() {
        let later = full.find(state.id.as_str()).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        spec.extract(state, before.names(), cut, &mut a);
        spec.extract(later, full.names(), cut, &mut b);
        let same = a
            .iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
        assert!(same, "{}: {a:?} vs {b:?} ({:?})", state.id, spec.names());
        assert_eq!(
            tenure_risk::training::standing(state, cut),
            tenure_risk::training::standing(later, cut)
        );
        compared += 1;
    }
    assert!(compared > 200, "{compared}");
}

#[test]
fn too_little_history_is_refused_with_what_is_missing() {
    let (engine, now) = demo(60, 24, 5);
    let states: Vec<_> = engine.customers().collect();
    let err = train(&states, engine.names(), now, &TrainingOptions::default()).unwrap_err();
    assert!(
        matches!(err, TrainingError::NotEnoughHistory { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("current customers") && text.contains("at least 100 rows"),
        "{text}"
    );
    let bad = TrainingOptions {
        horizon_days: 0,
        ..TrainingOptions::default()
    };
    assert!(matches!(
        train(&states, engine.names(), now, &bad),
        Err(TrainingError::Options(_))
    ));
}

/// A segment on risk is exact: as days pass (the features read whole days, dated facts and
/// orders) the memberships kept by timers equal an evaluation from scratch at every instant
/// checked, including instants just before and on midnights; retraining (a new model)
/// reconciles everyone.
#[test]
fn a_segment_on_risk_follows_time_exactly() {
    use std::sync::Arc;
    use tenure_core::segments::{Definition, SegmentId};
    let (mut engine, now) = demo(2000, 24, 42);
    let model = {
        let states: Vec<_> = engine.customers().collect();
        Arc::new(train(&states, engine.names(), now, &TrainingOptions::default()).unwrap())
    };
    // The threshold: the 95th percentile of today's probabilities.
    let mut p: Vec<f64> = engine
        .customers()
        .filter_map(|s| model.probability(s, engine.names(), now))
        .collect();
    p.sort_by(f64::total_cmp);
    let threshold = p[p.len() * 95 / 100];
    engine.set_risk_model(Some(model.clone()));
    assert!(engine.due_segment_changes(now).is_empty());
    let definition = json!({"computed": "risk", "op": "gt", "value": threshold});
    let changes = engine.define_segment(
        SegmentId(1),
        "riskiest",
        Definition::parse(&definition).unwrap(),
        [],
        now,
    );
    assert!(changes.len() >= 40, "{}", changes.len());
    let scratch = |engine: &LiveWorkspace, at: i64| -> Vec<String> {
        engine
            .customers()
            .filter(|s| {
                model
                    .probability(s, engine.names(), at)
                    .is_some_and(|p| p > threshold)
            })
            .map(|s| s.id.to_string())
            .collect()
    };
    let kept = |engine: &LiveWorkspace| -> Vec<String> {
        engine
            .customers()
            .filter(|s| s.segments.iter().any(|(id, _)| *id == SegmentId(1)))
            .map(|s| s.id.to_string())
            .collect()
    };
    assert_eq!(kept(&engine), scratch(&engine, now));
    let day = 86_400_000;
    let mut moved = 0;
    for at in [
        now + 1,
        now + day - 1,
        now + day,
        now + 3 * day + 5,
        now + 9 * day,
        now + 40 * day,
    ] {
        let changes = engine.due_segment_changes(at);
        moved += changes.len();
        assert_eq!(kept(&engine), scratch(&engine, at), "at {at}");
    }
    assert!(moved > 0, "time passing moved nobody");
    // Without a model nobody has a risk: the segment empties at the next tick.
    engine.set_risk_model(None);
    engine.due_segment_changes(now + 41 * day);
    assert!(kept(&engine).is_empty());
}

/// Rows built a slice of customers at a time (what the server does, releasing its lock
/// between slices) are the rows built at once: the same report, to the last bit.
#[test]
fn rows_built_in_slices_train_the_same_model() {
    use tenure_risk::training::DatasetBuilder;
    let (engine, now) = demo(2000, 24, 42);
    let states: Vec<_> = engine.customers().collect();
    let options = TrainingOptions::default();
    let whole = train(&states, engine.names(), now, &options).unwrap();
    let mut builder = DatasetBuilder::new(now, &options).unwrap();
    for slice in states.chunks(333) {
        builder.count(slice);
    }
    builder.end_counting();
    for slice in states.chunks(333) {
        builder.add(slice, engine.names());
    }
    let sliced = builder.finish().unwrap().fit().unwrap();
    assert_eq!(sliced.report, whole.report);
    // Sampling (a small `max_rows`) keeps the same customers whatever the slices.
    let small = TrainingOptions {
        max_rows: 5_000,
        ..options
    };
    let sampled = train(&states, engine.names(), now, &small).map(|m| m.report);
    let mut builder = DatasetBuilder::new(now, &small).unwrap();
    for slice in states.chunks(500) {
        builder.count(slice);
    }
    builder.end_counting();
    for slice in states.chunks(500) {
        builder.add(slice, engine.names());
    }
    let sliced = builder.finish().and_then(|d| d.fit()).map(|m| m.report);
    assert_eq!(sliced, sampled);
    // (Sampled to about 5,000 of the 7,140 rows, this small business has too few churners
    // left in validation: the same refusal either way.)
    assert!(
        matches!(&sampled, Err(TrainingError::NotEnoughHistory { rows, .. }) if *rows < 937),
        "{sampled:?}"
    );
}
