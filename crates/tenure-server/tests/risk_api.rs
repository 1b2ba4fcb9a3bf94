//! The churn-risk API on both backends: training on a demo business's history, the kept
//! model and its report, the riskiest customers with reasons, the prediction in the profile,
//! errors, keys and workspaces; and the scheduled retraining.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{TestApp, TestClock, databases, demo_events};
use serde_json::{Value, json};
use tenure_core::time::{MILLIS_PER_DAY, parse_instant};

const END: &str = "2026-12-01T00:00:00Z";

#[tokio::test]
async fn train_then_read_the_model_the_riskiest_and_each_profile() {
    let events = demo_events(1500, 18, 7, END);
    for db in databases() {
        let clock = Arc::new(AtomicU64::new(parse_instant(END).unwrap() as u64));
        let app = TestApp::spawn_with_clock(&db, Arc::new(TestClock(clock.clone()))).await;
        app.post_in_batches(&events).await;

        // Nothing trained yet: a 404 that says how to train, and no risk in profiles.
        let (status, body) = app.get("/v1/risk/model", &app.admin_key).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "risk_model_not_found");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/v1/risk/train")
        );
        let (_, profile) = app.get("/v1/customers/user_000001", &app.admin_key).await;
        assert_eq!(profile["predictions"]["risk"], Value::Null);
        let (status, _) = app.get("/v1/risk/customers", &app.admin_key).await;
        assert_eq!(status, 404);

        // A segment on risk is empty while there is no model.
        let (status, body) = app
            .post("/v1/segments", &app.admin_key, &json!({"name": "risky", "definition": {"computed": "risk", "op": "gt", "value": 0.05}}))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["backfill"]["entered"], 0, "{body}");

        // Bad options and keys.
        let (status, body) = app
            .post("/v1/risk/train", &app.admin_key, &json!({"horizon": 30}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("horizon"),
            "{body}"
        );
        let (status, _) = app
            .post(
                "/v1/risk/train",
                &app.admin_key,
                &json!({"horizon_days": 0}),
            )
            .await;
        assert_eq!(status, 400);
        let (status, _) = app.post("/v1/risk/train", &app.write_key, &json!({})).await;
        assert_eq!(status, 403);
        // Issue 17, item 3: `cutoffs: 1000000` ran 47 s and answered a 12 MB error.
        let (status, body) = app
            .post(
                "/v1/risk/train",
                &app.admin_key,
                &json!({"cutoffs": 1_000_000}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("cutoffs up to 24") && message.len() < 300,
            "{message}"
        );

        // Train.
        // (A 60-day horizon: this small business has too few churners in 30 days.)
        let (status, trained) = app
            .train_risk(&app.admin_key, &json!({"horizon_days": 60}))
            .await;
        assert_eq!(status, 200, "{trained}");
        assert_eq!(trained["id"], 1);
        let report = &trained["report"];
        assert_eq!(report["holdout"]["cutoffs"], json!(["2026-10-01"]));
        assert_eq!(report["options"]["horizon_days"], 60);
        assert!(
            report["holdout"]["churned"].as_u64().unwrap() >= 10,
            "{report}"
        );
        let kept = report["kept"].as_str().unwrap().to_owned();
        let candidates = report["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 2);
        let kept_auc = candidates
            .iter()
            .find(|c| c["learner"] == kept.as_str())
            .unwrap()["holdout"]["auc"]
            .as_f64()
            .unwrap();
        let gain = report["auc_gain_over_recency"].as_f64().unwrap();
        let recency = report["recency_baseline"]["auc"].as_f64().unwrap();
        assert!((kept_auc - recency - gain).abs() < 1e-9);

        // Training handed the model to the segments: the risky ones entered, exactly those
        // the ranking puts above the threshold.
        let entered = trained["segments_reconciled"]["entered"].as_u64().unwrap();
        let (_, all) = app
            .get("/v1/risk/customers?limit=1000", &app.admin_key)
            .await;
        let above = all["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["probability"].as_f64().unwrap() > 0.05)
            .count() as u64;
        assert!(
            entered > 0 && entered == above,
            "{entered} entered, {above} above"
        );
        let (_, members) = app
            .get("/v1/segments/seg_1/members?limit=1", &app.admin_key)
            .await;
        assert_eq!(members["members"], above);

        // The model in use is that one, with the same report.
        let (status, model) = app.get("/v1/risk/model", &app.admin_key).await;
        assert_eq!(status, 200, "{model}");
        assert_eq!(model["id"], 1);
        assert_eq!(model["learner"], kept.as_str());
        assert_eq!(&model["report"], report);
        assert!(
            model["features"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "recency_days")
        );

        // The riskiest, most first, each with reasons that raise the risk; a bad limit.
        let (status, ranked) = app.get("/v1/risk/customers?limit=5", &app.admin_key).await;
        assert_eq!(status, 200, "{ranked}");
        let data = ranked["data"].as_array().unwrap();
        assert_eq!(data.len(), 5);
        let p: Vec<f64> = data
            .iter()
            .map(|d| d["probability"].as_f64().unwrap())
            .collect();
        assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
        assert!(ranked["current_customers"].as_u64().unwrap() > 500);
        for d in data {
            let reasons = d["reasons"].as_array().unwrap();
            assert!(!reasons.is_empty(), "{d}");
            assert!(
                reasons
                    .iter()
                    .all(|r| r["contribution"].as_f64().unwrap() > 0.0)
            );
        }
        let (status, _) = app.get("/v1/risk/customers?limit=0", &app.admin_key).await;
        assert_eq!(status, 400);

        // The riskiest customer's profile carries the same prediction.
        let top = data[0]["customer_id"].as_str().unwrap();
        let (_, profile) = app
            .get(&format!("/v1/customers/{top}"), &app.admin_key)
            .await;
        let risk = &profile["predictions"]["risk"];
        assert_eq!(risk["model"], 1, "{risk}");
        assert_eq!(risk["probability"], data[0]["probability"]);
        assert_eq!(risk["reasons"], data[0]["reasons"]);
        assert_eq!(risk["horizon_days"], 60);

        // As time passes the prediction moves with the state (nothing is stored).
        clock.fetch_add(20 * MILLIS_PER_DAY as u64, Ordering::SeqCst);
        let (_, later) = app
            .get(&format!("/v1/customers/{top}"), &app.admin_key)
            .await;
        assert_ne!(
            later["predictions"]["risk"]["probability"],
            risk["probability"]
        );

        // Another workspace sees no model.
        let other = app.other_workspace_key().await;
        let (status, _) = app.get("/v1/risk/model", &other).await;
        assert_eq!(status, 404);
        let (status, body) = app.train_risk(&other, &json!({"horizon_days": 60})).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "not_enough_history");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("current customers")
        );

        // The schedule (every 7 days): model 1 is fresh an hour later; eight days later the
        // workspace is retrained; `other` has no customers and is never tried.
        let store = app.store.clone();
        let now = parse_instant(END).unwrap() + 20 * MILLIS_PER_DAY;
        let passes = tokio::task::spawn_blocking(move || {
            let engines = tenure_server::writer::Engines::new(store.clone());
            engines.load_all().unwrap();
            let mut attempts = std::collections::HashMap::new();
            let mut pass = |at: i64| {
                let options = tenure_risk::training::TrainingOptions {
                    horizon_days: 60,
                    ..Default::default()
                };
                tenure_server::risk::retrain_due(&store, &engines, at, 7, &options, &mut attempts)
                    .into_iter()
                    .map(|(ws, outcome)| match outcome {
                        tenure_server::risk::Retrained::Trained(id, _) => format!("{ws}:{id}"),
                        tenure_server::risk::Retrained::Failed(e) => format!("{ws}:{e}"),
                    })
                    .collect::<Vec<_>>()
            };
            let trained = parse_instant(END).unwrap();
            let passes = vec![pass(trained + 3_600_000), pass(now), pass(now + 3_600_000)];
            // These engines were loaded with model 1; the schedule stored model 2 without
            // handing it to them (as `tenure risk train` in another process would): it is
            // found, and once installed nothing is left to do.
            let models = tenure_server::risk::RiskModels::new(store.clone());
            let pending = tenure_server::risk::stored_but_not_installed(&models, &engines);
            assert_eq!(pending.len(), 1, "{pending:?}");
            assert_eq!(pending[0].1.trained_at, now);
            let (ws, model) = pending.into_iter().next().unwrap();
            engines
                .get(&ws)
                .unwrap()
                .write()
                .unwrap()
                .set_risk_model(Some(model));
            assert!(tenure_server::risk::stored_but_not_installed(&models, &engines).is_empty());
            passes
        })
        .await
        .unwrap();
        let ws = app.workspace.to_string();
        assert!(passes[0].is_empty(), "{passes:?}");
        assert_eq!(passes[1], vec![format!("{ws}:2")]);
        assert!(passes[2].is_empty(), "{passes:?}");
        let (_, model) = app.get("/v1/risk/model", &app.admin_key).await;
        assert_eq!(model["id"], 2);
        app.stop();
    }
}
