//! Segments over HTTP on every backend: definitions saved and backfilled, memberships that
//! follow events and the clock, and a restart that catches up.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{TestApp, TestClock, databases};
use serde_json::{Value, json};
use tenure_core::time::parse_instant;

fn ms(text: &str) -> u64 {
    parse_instant(text).unwrap() as u64
}

fn login(user: &str, at: &str) -> Value {
    json!({"type": "track", "userId": user, "event": "Logged In", "timestamp": at,
           "properties": {"device": "ios"}})
}

/// The customer's segments, by id.
async fn memberships(app: &TestApp, user: &str) -> Vec<String> {
    let (status, body) = app
        .get(&format!("/v1/customers/{user}/segments"), &app.admin_key)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn segments_are_saved_backfilled_and_follow_events_and_time() {
    for db in databases() {
        let clock = Arc::new(AtomicU64::new(ms("2026-03-10T12:00:00Z")));
        let app = TestApp::spawn_with_clock(&db, Arc::new(TestClock(clock.clone()))).await;
        app.post_in_batches(&[
            login("ann", "2026-03-10T09:00:00Z"),
            login("bob", "2026-03-01T09:00:00Z"),
            json!({"type": "identify", "userId": "cat", "traits": {"plan_tier": "pro"}, "timestamp": "2026-03-09T00:00:00Z"}),
        ])
        .await;

        // Validation: the path of the bad node, nothing saved.
        let (status, body) = app
            .post(
                "/v1/segments",
                &app.admin_key,
                &json!({"name": "x", "definition": {"performed": "Logged In", "within_days": 0}}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid_segment");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("definition.within_days"),
            "{body}"
        );
        let (_, list) = app.get("/v1/segments", &app.admin_key).await;
        assert_eq!(list["segments"], json!([]));

        // Preview, then save: the backfill puts ann in.
        let active = json!({"performed": "Logged In", "within_days": 2, "where": [{"property": "device", "op": "eq", "value": "ios"}]});
        let (status, preview) = app
            .post(
                "/v1/segments/preview",
                &app.admin_key,
                &json!({"definition": active}),
            )
            .await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["count"], 1);
        assert_eq!(preview["sample"][0]["user_id"], "ann");
        let (status, created) = app
            .post(
                "/v1/segments",
                &app.admin_key,
                &json!({"name": "Active on iOS", "definition": active}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["id"], "seg_1");
        assert_eq!(created["members"], 1);
        assert_eq!(created["backfill"], json!({"entered": 1, "exited": 0}));
        assert_eq!(memberships(&app, "ann").await, vec!["seg_1"]);
        let (status, dup) = app
            .post(
                "/v1/segments",
                &app.admin_key,
                &json!({"name": "Active on iOS", "definition": active}),
            )
            .await;
        assert_eq!(status, 400, "{dup}");

        // An event puts bob in at once; the entry is an event in his log.
        app.post_in_batches(&[login("bob", "2026-03-10T11:59:00Z")])
            .await;
        assert_eq!(memberships(&app, "bob").await, vec!["seg_1"]);
        let (_, profile) = app.get("/v1/customers/bob", &app.admin_key).await;
        assert_eq!(
            profile["event_counts"]["Segment Entered"], 1,
            "{}",
            profile["event_counts"]
        );
        let (_, members) = app
            .get("/v1/segments/seg_1/members?limit=1", &app.admin_key)
            .await;
        assert_eq!(members["members"], 2);
        assert_eq!(members["data"].as_array().unwrap().len(), 1);
        let after = members["next"].as_str().unwrap();
        let (_, rest) = app
            .get(
                &format!("/v1/segments/seg_1/members?limit=1&after={after}"),
                &app.admin_key,
            )
            .await;
        assert_eq!(rest["data"].as_array().unwrap().len(), 1);
        assert_eq!(rest["next"], Value::Null);

        // Time passes the window's edge (midnight starting 12 March): both leave, stamped
        // at the edge. The writer fires due timers before it folds the next request.
        clock.store(ms("2026-03-12T08:00:00Z"), Ordering::SeqCst);
        app.post_in_batches(&[
            json!({"type": "identify", "userId": "dan", "timestamp": "2026-03-12T08:00:00Z"}),
        ])
        .await;
        assert!(memberships(&app, "ann").await.is_empty());
        let store = app.store.clone();
        let ws = app.workspace.clone();
        let exits: Vec<(String, i64)> = tokio::task::spawn_blocking(move || {
            store.with(|c| c.events_after(&ws, 0, 1000)).unwrap()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.name.as_deref() == Some("Segment Exited"))
        .map(|e| (e.customer.clone(), e.timestamp))
        .collect();
        assert_eq!(exits.len(), 2, "{exits:?}");
        assert!(
            exits
                .iter()
                .all(|(_, at)| *at == ms("2026-03-12T00:00:00Z") as i64),
            "{exits:?}"
        );

        // Edit: a trait condition; the backfill moves cat in. Delete: gone.
        let (status, edited) = app
            .put("/v1/segments/seg_1", &app.admin_key, &json!({"name": "Pro", "definition": {"trait": "plan_tier", "op": "eq", "value": "pro"}}))
            .await;
        assert_eq!(status, 200, "{edited}");
        assert_eq!(edited["version"], 2);
        assert_eq!(edited["backfill"]["entered"], 1);
        assert_eq!(memberships(&app, "cat").await, vec!["seg_1"]);
        assert_eq!(app.delete("/v1/segments/seg_1", &app.admin_key).await, 204);
        assert_eq!(app.delete("/v1/segments/seg_1", &app.admin_key).await, 404);
        assert!(memberships(&app, "cat").await.is_empty());
        let (status, _) = app.get("/v1/segments/seg_1", &app.admin_key).await;
        assert_eq!(status, 404);
        let (status, _) = app.get("/v1/segments", &app.write_key).await;
        assert_eq!(status, 403);
        app.stop();
    }
}

#[tokio::test]
async fn a_restart_catches_up_with_what_time_changed() {
    for db in databases() {
        let clock = Arc::new(AtomicU64::new(ms("2026-05-01T10:00:00Z")));
        let app = TestApp::spawn_with_clock(&db, Arc::new(TestClock(clock.clone()))).await;
        app.post_in_batches(&[login("eve", "2026-05-01T09:00:00Z")])
            .await;
        let (status, body) = app
            .post("/v1/segments", &app.admin_key, &json!({"name": "today", "definition": {"performed": "Logged In", "within_days": 1}}))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(memberships(&app, "eve").await, vec!["seg_1"]);
        app.stop();
        // Three days later the process starts again: the first tick reconciles.
        let later = Arc::new(AtomicU64::new(ms("2026-05-04T10:00:00Z")));
        let again = TestApp::spawn_with_clock(&db, Arc::new(TestClock(later))).await;
        let mut left = false;
        for _ in 0..100 {
            if memberships(&again, "eve").await.is_empty() {
                left = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            left,
            "{}: the restart reconciles memberships with the clock",
            again.backend
        );
        let (_, profile) = again.get("/v1/customers/eve", &again.admin_key).await;
        assert_eq!(profile["event_counts"]["Segment Exited"], 1);
        again.stop();
    }
}

#[tokio::test]
async fn one_workspace_never_sees_another_workspaces_segments() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let (status, _) = app
            .post(
                "/v1/segments",
                &app.admin_key,
                &json!({"name": "all", "definition": {"trait": "x", "op": "not_exists"}}),
            )
            .await;
        assert_eq!(status, 201);
        let store = app.store.clone();
        let other_key = tokio::task::spawn_blocking(move || {
            let ws = tenure_server::admin::create_workspace(&store, "other", 0).unwrap();
            tenure_server::admin::create_key(&store, &ws.id, tenure_store::KeyKind::Admin, 0)
                .unwrap()
                .1
        })
        .await
        .unwrap();
        let (status, _) = app.get("/v1/segments/seg_1", &other_key).await;
        assert_eq!(status, 404);
        let (_, list) = app.get("/v1/segments", &other_key).await;
        assert_eq!(list["segments"], json!([]));
        app.stop();
    }
}

/// A definition that names an alert appends that event with each entry, in the same log;
/// a name that is not an alert event is refused with its path.
#[tokio::test]
async fn an_alert_segment_appends_its_event_with_each_entry() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, "2026-03-10T12:00:00Z").await;
        app.post_in_batches(&[login("ann", "2026-03-10T09:00:00Z")])
            .await;
        let definition =
            json!({"alert": "At Risk Entered", "performed": "Logged In", "within_days": 1});
        let (status, body) = app
            .post(
                "/v1/segments",
                &app.admin_key,
                &json!({"name": "alerting", "definition": definition}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (_, shown) = app.get("/v1/segments/seg_1", &app.admin_key).await;
        assert_eq!(shown["definition"], definition, "{shown}");
        let (_, profile) = app.get("/v1/customers/ann", &app.admin_key).await;
        assert_eq!(profile["event_counts"]["Segment Entered"], 1, "{profile}");
        assert_eq!(profile["event_counts"]["At Risk Entered"], 1, "{profile}");
        // Operator events: the customer was last seen at her login, not at the alert.
        assert_eq!(profile["last_seen"], "2026-03-10T09:00:00.000Z");
        let (status, body) = app
            .post("/v1/segments", &app.admin_key, &json!({"name": "bad", "definition": {"alert": "Churned", "performed": "Logged In"}}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("definition.alert"),
            "{body}"
        );
        app.stop();
    }
}

/// Probability alive, predicted CLV and revenue percentile: read from the day's table,
/// computed when a definition first needs it, shown in the profile, and computed again
/// once the day changes.
#[tokio::test]
async fn segments_on_the_days_values_read_the_days_table() {
    let end = "2026-12-01T00:00:00Z";
    let events = common::demo_events(600, 12, 5, end);
    for db in databases() {
        let clock = Arc::new(AtomicU64::new(ms("2026-12-01T09:00:00Z")));
        let app = TestApp::spawn_with_clock(&db, Arc::new(TestClock(clock.clone()))).await;
        app.post_in_batches(&events).await;
        // No segment reads them yet: no table.
        let (_, profile) = app.get("/v1/customers/user_000001", &app.admin_key).await;
        assert_eq!(profile["predictions"]["segment_values"], Value::Null);

        let fading = json!({"computed": "p_alive", "op": "lt", "value": 0.9});
        let (status, preview) = app
            .post(
                "/v1/segments/preview",
                &app.admin_key,
                &json!({"definition": fading, "sample": 100}),
            )
            .await;
        assert_eq!(status, 200, "{preview}");
        let count = preview["count"].as_u64().unwrap();
        assert!(count > 0, "{preview}");
        // Each member's value is the profile's: the day's table and the order model agree
        // (nothing changed since the table was computed).
        for c in preview["sample"].as_array().unwrap() {
            let (_, p) = app
                .get(
                    &format!("/v1/customers/{}", c["id"].as_str().unwrap()),
                    &app.admin_key,
                )
                .await;
            let values = &p["predictions"]["segment_values"];
            assert_eq!(values["as_of_day"], "2026-12-01T00:00:00.000Z");
            let p_alive = values["values"]["p_alive"].as_f64().unwrap();
            assert!(p_alive < 0.9);
            assert_eq!(
                p_alive,
                p["predictions"]["orders"]["probability_alive"]
                    .as_f64()
                    .unwrap()
            );
        }
        let (status, saved) = app
            .post(
                "/v1/segments",
                &app.admin_key,
                &json!({"name": "Fading buyers", "definition": fading}),
            )
            .await;
        assert_eq!(status, 201, "{saved}");
        assert_eq!(saved["members"].as_u64().unwrap(), count);

        // The top fifth by revenue, as concentration ranks it.
        let top = json!({"computed": "revenue_percentile", "op": "gt", "value": 80});
        let (status, saved) = app
            .post(
                "/v1/segments",
                &app.admin_key,
                &json!({"name": "Top revenue", "definition": top}),
            )
            .await;
        assert_eq!(status, 201, "{saved}");
        let (_, concentration) = app
            .get(
                "/v1/metrics/concentration?to=2026-12-01T09:00:00Z",
                &app.admin_key,
            )
            .await;
        let earning = concentration["data"]["customers"].as_u64().unwrap() as f64;
        let members = saved["members"].as_u64().unwrap() as f64;
        assert!(
            members <= 0.2 * earning + 1.0 && members >= 0.05 * earning,
            "{members} of {earning}"
        );
        let top_customer = concentration["data"]["top_customers"][0]["customer_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, p) = app
            .get(&format!("/v1/customers/{top_customer}"), &app.admin_key)
            .await;
        assert_eq!(
            p["predictions"]["segment_values"]["values"]["revenue_percentile"],
            100.0
        );
        assert!(
            memberships(&app, &top_customer)
                .await
                .contains(&saved["id"].as_str().unwrap().to_owned())
        );

        // A health model may not be chosen by them.
        let (status, body) = app
            .put(
                "/v1/health-models/buyers",
                &app.admin_key,
                &json!({"name": "buyers", "applies_to": fading, "priority": 1, "components": [
                    {"name": "breadth", "weight": 1, "metric": {"kind": "breadth", "window_days": 30},
                     "scale": {"type": "curve", "points": [[0, 0], [5, 100]]}}]}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("p_alive"),
            "{body}"
        );

        // Within the day the table stays; the next day a new one is computed (by the
        // schedule, within a minute of midnight; here by a preview, which needs today's).
        let (_, p) = app.get("/v1/customers/user_000001", &app.admin_key).await;
        assert_eq!(
            p["predictions"]["segment_values"]["as_of_day"],
            "2026-12-01T00:00:00.000Z"
        );
        clock.store(ms("2026-12-02T08:00:00Z"), Ordering::SeqCst);
        let (status, _) = app
            .post(
                "/v1/segments/preview",
                &app.admin_key,
                &json!({"definition": top}),
            )
            .await;
        assert_eq!(status, 200);
        let (_, p) = app.get("/v1/customers/user_000001", &app.admin_key).await;
        assert_eq!(
            p["predictions"]["segment_values"]["as_of_day"],
            "2026-12-02T00:00:00.000Z"
        );
        app.stop();
    }
}
