//! Health models over the API on both backends: stored, listed, used by profiles and the
//! overview, reconciling segments that read health, refused when wrong, kept across a
//! restart.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, databases};
use serde_json::{Value, json};
use tenure_core::time::{format_instant, parse_instant};

const NOW: &str = "2026-03-01T12:00:00Z";

fn daily_use() -> Vec<Value> {
    let now = parse_instant(NOW).unwrap();
    (1..60)
        .map(|d| {
            json!({"type": "track", "userId": "daily", "event": "Report Viewed",
                   "timestamp": format_instant(now - d * 86_400_000)})
        })
        .collect()
}

fn breadth_only(name: &str) -> Value {
    json!({"name": name, "components": [{"name": "breadth", "weight": 1,
        "metric": {"kind": "breadth", "window_days": 30},
        "scale": {"type": "curve", "points": [[0, 0], [5, 100]]}}]})
}

#[tokio::test]
async fn health_models_are_stored_used_and_reconcile_segments() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, NOW).await;
        app.post_in_batches(&daily_use()).await;
        let (status, _) = app
            .post("/v1/segments", &app.admin_key, &json!({"name": "green", "definition": {"computed": "grade", "op": "eq", "value": "green"}}))
            .await;
        assert_eq!(status, 201);
        let (_, profile) = app.get("/v1/customers/daily", &app.admin_key).await;
        assert_eq!(profile["health"]["model"], "saas_default");
        assert_eq!(profile["health"]["grade"], "green", "{}", profile["health"]);
        let (_, list) = app.get("/v1/health-models", &app.admin_key).await;
        assert_eq!(list, json!({"models": [], "order": ["saas_default"]}));

        // A default model that only counts breadth: one kind of event scores 20, red. The
        // segment on the grade is reconciled at once: an exit.
        let (status, body) = app
            .put(
                "/v1/health-models/breadth",
                &app.admin_key,
                &breadth_only("breadth"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["reconciled"], json!({"entered": 0, "exited": 1}));
        let (_, profile) = app.get("/v1/customers/daily", &app.admin_key).await;
        assert_eq!(profile["health"]["model"], "breadth");
        assert_eq!(profile["health"]["grade"], "red");
        assert_eq!(profile["segments"], json!([]));
        let (_, overview) = app.get("/v1/health-scores", &app.admin_key).await;
        assert_eq!(overview["model"], "breadth", "{overview}");

        // Refused, each with the field at fault; nothing changes.
        let mut reads_health = breadth_only("x");
        reads_health["applies_to"] = json!({"computed": "grade", "op": "eq", "value": "red"});
        for (path, body, expected) in [
            (
                "/v1/health-models/x",
                reads_health,
                "applies_to: cannot read health",
            ),
            (
                "/v1/health-models/x",
                breadth_only("y"),
                "differs from the name in the path",
            ),
            (
                "/v1/health-models/x",
                json!({"components": []}),
                "components",
            ),
            (
                "/v1/health-models/second",
                breadth_only("second"),
                "both apply to every customer",
            ),
        ] {
            let (status, err) = app.put(path, &app.admin_key, &body).await;
            assert_eq!(status, 400, "{err}");
            assert_eq!(err["error"]["code"], "invalid_health_model");
            let message = err["error"]["message"].as_str().unwrap();
            assert!(message.contains(expected), "{expected}: {message}");
        }
        let (status, _) = app
            .put("/v1/health-models/x", &app.write_key, &breadth_only("x"))
            .await;
        assert_eq!(status, 403);
        assert_eq!(
            app.delete("/v1/health-models/nope", &app.admin_key).await,
            404
        );
        let (_, list) = app.get("/v1/health-models", &app.admin_key).await;
        assert_eq!(list["order"], json!(["breadth"]));
        assert_eq!(list["models"][0]["definition"], breadth_only("breadth"));

        // Kept across a restart (an hour later).
        app.stop();
        let again = TestApp::spawn_at(&db, "2026-03-01T13:00:00Z").await;
        let (_, profile) = again.get("/v1/customers/daily", &again.admin_key).await;
        assert_eq!(profile["health"]["model"], "breadth");

        // Deleted: the shipped model again, and the customer back in the segment.
        assert_eq!(
            again
                .delete("/v1/health-models/breadth", &again.admin_key)
                .await,
            204
        );
        let (_, profile) = again.get("/v1/customers/daily", &again.admin_key).await;
        assert_eq!(profile["health"]["model"], "saas_default");
        assert_eq!(
            profile["segments"][0]["id"], "seg_1",
            "{}",
            profile["segments"]
        );
        again.stop();
    }
}
