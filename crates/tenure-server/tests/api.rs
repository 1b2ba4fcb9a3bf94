//! The HTTP API against the real application, on every backend.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use common::{TestApp, TestClock, databases};
use serde_json::{Value, json};
use tenure_core::random::Rng;
use tenure_core::time::parse_instant;

#[tokio::test]
async fn health_answers_when_ready() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let response = app
            .client
            .get(format!("{}/health", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["database"], db.name());
        app.stop();
    }
}

#[tokio::test]
async fn a_tracked_event_shows_in_the_customer_profile() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let (status, body) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": "u1", "event": "Order Completed", "messageId": "m1",
                        "properties": {"order_id": "o1", "revenue": 25.5, "currency": "USD"}}),
            )
            .await;
        assert_eq!(status, 200, "{}: {body}", app.backend);
        assert_eq!(body["stored"], 1);
        let (status, profile) = app.get("/v1/customers/u1", &app.admin_key).await;
        assert_eq!(status, 200, "{}: {profile}", app.backend);
        assert_eq!(profile["user_id"], "u1");
        assert_eq!(profile["order_revenue"]["USD"], 2550);
        assert_eq!(profile["event_counts"]["Order Completed"], 1);
        // The cus_ id and the user id find the same customer.
        let (_, by_id) = app
            .get(
                &format!("/v1/customers/{}", profile["id"].as_str().unwrap()),
                &app.admin_key,
            )
            .await;
        assert_eq!(by_id["user_id"], "u1");
        app.stop();
    }
}

#[tokio::test]
async fn a_retried_message_is_stored_once_and_the_answer_says_so() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let message = json!({"userId": "u1", "event": "Clicked", "messageId": "retry-1"});
        let (_, first) = app.post("/v1/track", &app.write_key, &message).await;
        assert_eq!(first["results"][0]["status"], "stored");
        let (status, second) = app.post("/v1/track", &app.write_key, &message).await;
        assert_eq!(status, 200);
        assert_eq!(
            second["results"][0]["status"], "duplicate",
            "{}",
            app.backend
        );
        assert_eq!(second["duplicates"], 1);
        // The same id twice inside one batch, too.
        let (_, batch) = app
            .post(
                "/v1/batch",
                &app.write_key,
                &json!({"batch": [
                    {"type": "track", "userId": "u1", "event": "A", "messageId": "dup-in-batch"},
                    {"type": "track", "userId": "u1", "event": "A", "messageId": "dup-in-batch"},
                ]}),
            )
            .await;
        assert_eq!(batch["stored"], 1);
        assert_eq!(batch["duplicates"], 1);
        assert_eq!(app.event_count().await, 2);
        let (_, profile) = app.get("/v1/customers/u1", &app.admin_key).await;
        assert_eq!(profile["events"], 2, "the engine folded each message once");
        app.stop();
    }
}

#[tokio::test]
async fn a_batch_stores_its_valid_events_and_reports_each_invalid_one() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let (status, body) = app
            .post(
                "/v1/batch",
                &app.write_key,
                &json!({"batch": [
                    {"type": "identify", "userId": "u1", "traits": {"email": "a@b.c"}},
                    {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"order_id": "o", "revenue": "12", "currency": "USD"}},
                    {"type": "purchase", "userId": "u1"},
                    {"type": "track", "userId": "u1", "event": "Viewed"},
                ]}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "invalid_events");
        assert_eq!(
            (body["stored"].as_u64(), body["rejected"].as_u64()),
            (Some(2), Some(2))
        );
        let results = body["results"].as_array().unwrap();
        assert_eq!(results[1]["index"], 1);
        assert_eq!(results[1]["errors"][0]["field"], "properties.revenue");
        assert_eq!(results[2]["errors"][0]["field"], "type");
        assert_eq!(results[3]["status"], "stored");
        assert_eq!(
            app.event_count().await,
            2,
            "{}: nothing of a rejected event is stored",
            app.backend
        );
        app.stop();
    }
}

#[tokio::test]
async fn keys_are_checked_and_scoped() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let event = json!({"userId": "u1", "event": "X"});
        let no_key = app
            .client
            .post(format!("{}/v1/track", app.base))
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(no_key.status(), 401);
        assert!(no_key.headers().contains_key("www-authenticate"));
        let body: Value = no_key.json().await.unwrap();
        assert_eq!(body["error"]["code"], "missing_key");
        let (status, body) = app.post("/v1/track", "tnr_w_not_a_key", &event).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("invalid_key"))
        );
        // Bearer works as well as Basic.
        let bearer = app
            .client
            .post(format!("{}/v1/track", app.base))
            .bearer_auth(&app.write_key)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), 200);
        let (status, body) = app.get("/v1/customers", &app.write_key).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("admin_key_required"))
        );
        let (status, _) = app.get("/v1/customers", &app.admin_key).await;
        assert_eq!(status, 200);
        assert_eq!(
            app.event_count().await,
            1,
            "refused requests stored nothing"
        );
        app.stop();
    }
}

#[tokio::test]
async fn one_workspace_never_reads_another() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let store = app.store.clone();
        let (other_admin, other_write) = tokio::task::spawn_blocking(move || {
            let ws = tenure_server::admin::create_workspace(&store, "other", 1).unwrap();
            let (_, admin) =
                tenure_server::admin::create_key(&store, &ws.id, tenure_store::KeyKind::Admin, 1)
                    .unwrap();
            let (_, write) =
                tenure_server::admin::create_key(&store, &ws.id, tenure_store::KeyKind::Write, 1)
                    .unwrap();
            (admin, write)
        })
        .await
        .unwrap();
        app.post(
            "/v1/identify",
            &app.write_key,
            &json!({"userId": "secret-customer", "traits": {"email": "s@x.y"}}),
        )
        .await;
        app.post(
            "/v1/identify",
            &other_write,
            &json!({"userId": "their-customer"}),
        )
        .await;
        let (status, _) = app.get("/v1/customers/secret-customer", &other_admin).await;
        assert_eq!(status, 404, "{}", app.backend);
        let (_, list) = app.get("/v1/customers", &other_admin).await;
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["user_id"].as_str())
            .collect();
        assert_eq!(ids, vec!["their-customer"]);
        let (_, mine) = app.get("/v1/customers", &app.admin_key).await;
        assert_eq!(mine["data"].as_array().unwrap().len(), 1);
        app.stop();
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        app.post(
            "/v1/track",
            &app.write_key,
            &json!({"userId": "u1", "event": "Before"}),
        )
        .await;
        let before = app.event_count().await;

        let (status, body) = app
            .post_raw("/v1/batch", &app.write_key, b"{\"batch\": [".to_vec())
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("malformed_json"))
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("line 1")
        );

        let (status, body) = app
            .post("/v1/batch", &app.write_key, &json!({"events": []}))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_request"))
        );

        let huge = "x".repeat(600 * 1024);
        let (status, body) = app
            .post(
                "/v1/batch",
                &app.write_key,
                &json!({"batch": [{"type": "track", "userId": "u", "event": huge}]}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (413, Some("payload_too_large"))
        );

        let (status, body) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": "u", "event": "X", "properties": {"blob": "y".repeat(40_000)}}),
            )
            .await;
        assert_eq!(status, 413, "{body}");

        let big_event = json!({"type": "track", "userId": "u", "event": "X", "properties": {"blob": "y".repeat(33_000)}});
        let (status, body) = app
            .post("/v1/batch", &app.write_key, &json!({"batch": [big_event]}))
            .await;
        assert_eq!(status, 400);
        assert!(
            body["results"][0]["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("32 KB")
        );

        let (status, body) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": "u", "event": "X", "timestamp": "2999-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["results"][0]["errors"][0]["field"], "timestamp");

        let (status, _) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": "u", "event": "X", "timestamp": "1970-01-02T00:00:00Z"}),
            )
            .await;
        assert_eq!(status, 400);

        let (status, body) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": ["u"], "event": {"name": "X"}}),
            )
            .await;
        assert_eq!(status, 400);
        let fields: Vec<&str> = body["results"][0]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, vec!["userId", "userId", "event"]);

        let (status, _) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": "u".repeat(256), "event": "X"}),
            )
            .await;
        assert_eq!(status, 400);

        let (status, _) = app
            .post(
                "/v1/identify",
                &app.write_key,
                &json!({"type": "track", "userId": "u", "event": "X"}),
            )
            .await;
        assert_eq!(status, 400, "a track sent to /v1/identify is refused");

        assert_eq!(
            app.event_count().await,
            before,
            "{}: refused input stored nothing",
            app.backend
        );

        // Unicode and long (but legal) strings are stored exactly.
        let text = "naïve café ✓ 日本語 🙂 ".repeat(500);
        let (status, _) = app
            .post(
                "/v1/identify",
                &app.write_key,
                &json!({"userId": "ユーザー🙂", "traits": {"bio": text}}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, profile) = app
            .get(
                "/v1/customers/%E3%83%A6%E3%83%BC%E3%82%B6%E3%83%BC%F0%9F%99%82",
                &app.admin_key,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(profile["traits"]["bio"].as_str(), Some(text.as_str()));
        app.stop();
    }
}

#[tokio::test]
async fn clock_skew_is_corrected_with_the_server_clock() {
    for db in databases() {
        let now = parse_instant("2026-03-01T12:00:00Z").unwrap();
        let clock = TestClock(Arc::new(AtomicU64::new(now as u64)));
        let app = TestApp::spawn_with_clock(&db, Arc::new(clock)).await;
        // The device clock runs one hour fast; the event happened 10 s before sending.
        app.post("/v1/batch", &app.write_key, &json!({
            "sentAt": "2026-03-01T13:00:10Z",
            "batch": [{"type": "track", "userId": "u1", "event": "X", "timestamp": "2026-03-01T13:00:00Z"}],
        }))
        .await;
        let (_, profile) = app.get("/v1/customers/u1", &app.admin_key).await;
        assert_eq!(
            profile["first_seen"], "2026-03-01T11:59:50.000Z",
            "{}",
            app.backend
        );
        app.stop();
    }
}

#[tokio::test]
async fn identify_merges_anonymous_history_over_http() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        app.post(
            "/v1/page",
            &app.write_key,
            &json!({"anonymousId": "anon-1", "name": "Pricing",
            "context": {"campaign": {"source": "newsletter"}}}),
        )
        .await;
        app.post(
            "/v1/track",
            &app.write_key,
            &json!({"anonymousId": "anon-1", "event": "Signed Up"}),
        )
        .await;
        app.post(
            "/v1/identify",
            &app.write_key,
            &json!({"userId": "u1", "anonymousId": "anon-1", "traits": {"email": "u1@x.y"}}),
        )
        .await;
        app.post(
            "/v1/alias",
            &app.write_key,
            &json!({"userId": "u1", "previousId": "legacy-7"}),
        )
        .await;
        let (_, profile) = app.get("/v1/customers/u1", &app.admin_key).await;
        assert_eq!(profile["events"], 4, "{}: {profile}", app.backend);
        assert_eq!(profile["anonymous_ids"], json!(["anon-1"]));
        assert_eq!(profile["aliases"], json!(["legacy-7"]));
        assert_eq!(profile["acquisition"]["channel"], "newsletter");
        let (status, _) = app.get("/v1/customers/legacy-7", &app.admin_key).await;
        assert_eq!(status, 200, "the alias finds the customer");
        app.stop();
    }
}

#[tokio::test]
async fn customers_are_listed_in_pages_with_filters() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let batch: Vec<Value> = (0..25)
            .map(|i| json!({"type": "identify", "userId": format!("u{i:02}"), "traits": {"utm_source": if i % 5 == 0 { "ads" } else { "seo" }}}))
            .collect();
        app.post("/v1/batch", &app.write_key, &json!({"batch": batch}))
            .await;
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let path = if after.is_empty() {
                "/v1/customers?limit=10".to_string()
            } else {
                format!("/v1/customers?limit=10&after={after}")
            };
            let (status, page) = app.get(&path, &app.admin_key).await;
            assert_eq!(status, 200);
            seen.extend(
                page["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["user_id"].as_str().unwrap().to_owned()),
            );
            match page["next"].as_str() {
                Some(next) => after = next.to_owned(),
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen.len(), 25);
        seen.dedup();
        assert_eq!(seen.len(), 25, "pages do not overlap");
        let (_, ads) = app.get("/v1/customers?channel=ads", &app.admin_key).await;
        assert_eq!(ads["data"].as_array().unwrap().len(), 5);
        let (status, body) = app.get("/v1/customers?limit=0", &app.admin_key).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_parameter"))
        );
        let (status, _) = app
            .get("/v1/customers?status=sleeping", &app.admin_key)
            .await;
        assert_eq!(status, 400);
        app.stop();
    }
}

/// Random batches (with retries, duplicates and invalid events) through HTTP; then the live
/// engine must equal a fold of the log from scratch, and a restarted server must agree.
#[tokio::test]
async fn the_live_engine_equals_a_rebuild_from_the_log() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let mut rng = Rng::new(99);
        let mut sent: Vec<Value> = Vec::new();
        for _ in 0..30 {
            let mut batch = Vec::new();
            for _ in 0..1 + rng.below(40) {
                // Sometimes resend an earlier message (a retry).
                if !sent.is_empty() && rng.chance(0.15) {
                    batch.push(sent[rng.below(sent.len() as u64) as usize].clone());
                    continue;
                }
                let user = format!("u{}", rng.below(15));
                let anon = format!("a{}", rng.below(15));
                let ts = tenure_core::time::format_instant(
                    parse_instant("2025-01-01").unwrap() + rng.below(400) as i64 * 86_400_000,
                );
                let m = match rng.below(7) {
                    0 => {
                        json!({"type": "identify", "userId": user, "anonymousId": anon, "traits": {"n": rng.below(9)}})
                    }
                    1 => json!({"type": "alias", "userId": user, "previousId": anon}),
                    2 => {
                        json!({"type": "page", "anonymousId": anon, "name": "Home", "context": {"campaign": {"source": format!("src{}", rng.below(3))}}})
                    }
                    3 => {
                        json!({"type": "track", "userId": user, "event": "Subscription Started", "properties": {"subscription_id": "s", "plan": "p", "interval": "month", "amount": rng.below(90), "currency": "USD"}})
                    }
                    4 => {
                        json!({"type": "track", "userId": user, "event": "Subscription Cancelled", "properties": {"subscription_id": "s"}})
                    }
                    5 => {
                        json!({"type": "track", "userId": user, "event": "Order Completed", "properties": {"order_id": format!("o{}", rng.below(30)), "revenue": "bad"}})
                    }
                    _ => {
                        json!({"type": "track", "userId": user, "anonymousId": anon, "event": "Used"})
                    }
                };
                let mut m = m;
                m["timestamp"] = json!(ts);
                m["messageId"] = json!(format!("m{}", sent.len() + batch.len()));
                batch.push(m.clone());
                sent.push(m);
            }
            app.post("/v1/batch", &app.write_key, &json!({"batch": batch}))
                .await;
        }
        let store = app.store.clone();
        let engines_live = {
            let (_, profile_list) = app.get("/v1/customers?limit=1000", &app.admin_key).await;
            profile_list
        };
        let ws = app.workspace.clone();
        let rebuilt = tokio::task::spawn_blocking(move || {
            store
                .with(|c| tenure_server::writer::rebuild(c, &ws))
                .unwrap()
        })
        .await
        .unwrap();
        // Compare the whole folded state, not a summary: a second server on the same
        // database folds the log at start; its engine must equal a rebuild.
        let restarted = TestApp::spawn(&db).await;
        let (_, after_restart) = restarted
            .get("/v1/customers?limit=1000", &restarted.admin_key)
            .await;
        assert_eq!(
            engines_live, after_restart,
            "{}: live state differs from the state folded at restart",
            app.backend
        );
        let live_count = engines_live["data"].as_array().unwrap().len();
        assert_eq!(rebuilt.customer_count(), live_count);
        for c in engines_live["data"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            let (_, mut live_profile) = app
                .get(&format!("/v1/customers/{id}"), &app.admin_key)
                .await;
            // Predictions come from models fitted over the workspace, not from the fold;
            // health is a function of the state compared here and of the request's instant.
            live_profile.as_object_mut().unwrap().remove("predictions");
            live_profile.as_object_mut().unwrap().remove("health");
            let state = rebuilt.find(id).unwrap();
            let now = tenure_core::time::Clock::now(&tenure_server::SystemClock);
            let rebuilt_profile = serde_json::to_value(rebuilt.profile(state, now)).unwrap();
            assert_eq!(
                live_profile, rebuilt_profile,
                "{}: customer {id}",
                app.backend
            );
        }
        restarted.stop();
        app.stop();
    }
}

/// Two servers on one database (a second process, or `tenure import` beside `serve`): the
/// second does not know what the first stored. A message stored by the first and then sent to
/// the second is never stored twice: SQLite answers `duplicate`; PostgreSQL answers a
/// retryable `unavailable` and the retry `duplicate`. The second server's engine stays equal
/// to a fold of the log.
#[tokio::test]
async fn a_message_stored_by_another_process_is_never_stored_twice() {
    for db in databases() {
        let first = TestApp::spawn(&db).await;
        let second = TestApp::spawn(&db).await;
        let message = json!({"userId": "u1", "event": "Paid", "messageId": "shared-1"});
        let (status, _) = first.post("/v1/track", &first.write_key, &message).await;
        assert_eq!(status, 200);
        let (status, body) = second.post("/v1/track", &second.write_key, &message).await;
        match second.backend {
            "sqlite" => assert_eq!(
                (status, body["results"][0]["status"].as_str()),
                (200, Some("duplicate")),
                "{body}"
            ),
            _ => {
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (503, Some("unavailable")),
                    "{body}"
                );
                let (status, body) = second.post("/v1/track", &second.write_key, &message).await;
                assert_eq!(
                    (status, body["results"][0]["status"].as_str()),
                    (200, Some("duplicate")),
                    "{body}"
                );
            }
        }
        assert_eq!(second.event_count().await, 1, "{}", second.backend);
        let (_, profile) = second.get("/v1/customers/u1", &second.admin_key).await;
        assert_eq!(
            profile["events"], 1,
            "{}: the second engine folded the message once",
            second.backend
        );
        second.stop();
        first.stop();
    }
}

/// The customers projection in the database follows identity resolution: the surviving
/// customer's row holds the user id, traits and identities; a merged-away customer's row
/// points at the survivor.
#[tokio::test]
async fn the_customers_table_records_identities_and_merges() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        app.post(
            "/v1/page",
            &app.write_key,
            &json!({"anonymousId": "anon-9", "name": "Home"}),
        )
        .await;
        app.post(
            "/v1/track",
            &app.write_key,
            &json!({"userId": "u9", "event": "Logged In"}),
        )
        .await;
        app.post(
            "/v1/identify",
            &app.write_key,
            &json!({"userId": "u9", "anonymousId": "anon-9", "traits": {"email": "u9@x.y"}}),
        )
        .await;
        let (_, profile) = app.get("/v1/customers/u9", &app.admin_key).await;
        assert_eq!(
            profile["merged_customers"].as_array().unwrap().len(),
            1,
            "{profile}"
        );
        let (store, ws) = (app.store.clone(), app.workspace.clone());
        let winner = tenure_core::CustomerId::parse(profile["id"].as_str().unwrap()).unwrap();
        let loser =
            tenure_core::CustomerId::parse(profile["merged_customers"][0].as_str().unwrap())
                .unwrap();
        let (winner_row, loser_row) = tokio::task::spawn_blocking(move || {
            let w = store
                .with(|c| c.customer_row(&ws, &winner))
                .unwrap()
                .unwrap();
            let l = store
                .with(|c| c.customer_row(&ws, &loser))
                .unwrap()
                .unwrap();
            (w, l)
        })
        .await
        .unwrap();
        assert_eq!(winner_row.user_id.as_deref(), Some("u9"), "{}", app.backend);
        assert!(
            winner_row.traits.contains("u9@x.y") && winner_row.identities.contains("a:anon-9"),
            "{winner_row:?}"
        );
        assert_eq!(
            loser_row.merged_into.as_ref().map(|c| c.as_str()),
            profile["id"].as_str(),
            "{loser_row:?}"
        );
        app.stop();
    }
}

/// Profiles carry a health score under the shipped SaaS model, with its breakdown: a
/// customer using the product every day scores green, one gone quiet for months red.
#[tokio::test]
async fn profiles_carry_a_health_score_with_its_breakdown() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, "2026-01-31T12:00:00Z").await;
        let day = 86_400_000i64;
        let now = parse_instant("2026-01-31T12:00:00Z").unwrap();
        let mut events = Vec::new();
        for d in 0..60 {
            let at = tenure_core::time::format_instant(now - d * day);
            for event in ["Report Viewed", "Dashboard Viewed", "Project Created"] {
                events.push(
                    json!({"type": "track", "userId": "daily", "event": event, "timestamp": at}),
                );
            }
        }
        events.push(
            json!({"type": "track", "userId": "quiet", "event": "Report Viewed",
                           "timestamp": "2025-09-01T00:00:00Z"}),
        );
        for user in ["daily", "quiet"] {
            events.push(json!({"type": "track", "userId": user, "event": "Subscription Started",
                "timestamp": "2025-08-01T00:00:00Z",
                "properties": {"subscription_id": format!("s-{user}"), "plan": "pro", "interval": "year",
                               "amount": 1200, "currency": "USD"}}));
        }
        app.post_in_batches(&events).await;
        let (_, daily) = app.get("/v1/customers/daily", &app.admin_key).await;
        let (_, quiet) = app.get("/v1/customers/quiet", &app.admin_key).await;
        let health = &daily["health"];
        assert_eq!(health["model"], "saas_default", "{}: {daily}", app.backend);
        assert_eq!(health["grade"], "green", "{health}");
        assert_eq!(quiet["health"]["grade"], "red", "{}", quiet["health"]);
        let components = health["components"].as_array().unwrap();
        assert_eq!(components.len(), 7);
        let sum: f64 = components
            .iter()
            .filter_map(|c| c["contribution"].as_f64())
            .sum();
        assert!(
            (sum - health["score"].as_f64().unwrap()).abs() < 1e-9,
            "{health}"
        );
        // 90 events in the last 30 days: the usage component reads them.
        let usage = components.iter().find(|c| c["name"] == "usage").unwrap();
        assert_eq!(usage["value"], 90.0, "{usage}");
        // Steady daily use: the same as a week ago; twelve weekly points ending now.
        assert_eq!(health["trend"]["direction"], "same", "{health}");
        let history = health["history"].as_array().unwrap();
        assert_eq!(history.len(), 12);
        assert_eq!(history[11]["score"], health["score"]);
        assert_eq!(quiet["health"]["trend"]["days"], 7);

        // The workspace's at-risk list: both pay, one is red.
        let (status, overview) = app.get("/v1/health-scores", &app.admin_key).await;
        assert_eq!(status, 200, "{overview}");
        assert_eq!(overview["customers"], 2, "{overview}");
        assert_eq!(
            (overview["red"].clone(), overview["green"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(overview["at_risk"][0]["user_id"], "quiet");
        assert_eq!(overview["at_risk"][0]["reasons"][0]["component"], "usage");
        let (status, body) = app.get("/v1/health-scores?limit=0", &app.admin_key).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`limit`: `0`")
        );
        let (status, _) = app.get("/v1/health-scores", &app.write_key).await;
        assert_eq!(status, 403);

        // A manual override, sent as an event with an admin key: green until it expires,
        // kept in the trail. A write key cannot send one (issue 17: "attacker" set a
        // customer to green with one).
        let override_event = json!({"userId": "quiet", "event": "Health Overridden", "timestamp": "2026-01-30T00:00:00Z",
                    "properties": {"grade": "green", "reason": "renewal signed on a call",
                                   "author": "ana@example.com", "expires_at": "2026-03-01T00:00:00Z"}});
        let (status, refused) = app.post("/v1/track", &app.write_key, &override_event).await;
        assert_eq!(status, 400, "{refused}");
        assert!(
            refused["results"][0]["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("admin key")
        );
        let (status, _) = app.post("/v1/track", &app.admin_key, &override_event).await;
        assert_eq!(status, 200);
        let (_, quiet) = app.get("/v1/customers/quiet", &app.admin_key).await;
        let health = &quiet["health"];
        assert_eq!(health["grade"], "green", "{health}");
        assert_eq!(health["computed_grade"], "red");
        assert_eq!(health["override"]["author"], "ana@example.com");
        assert_eq!(health["overrides"].as_array().unwrap().len(), 1);
        let (_, overview) = app.get("/v1/health-scores", &app.admin_key).await;
        assert_eq!(overview["red"], 0, "{overview}");
        app.stop();
    }
}

/// Profiles carry purchase predictions from BG/NBD and Gamma-Gamma fitted on the workspace's
/// own orders: a frequent, recent buyer is more likely alive, expected to buy more and worth
/// more than one who stopped; a customer without orders has none.
#[tokio::test]
async fn profiles_predict_purchases_from_the_workspaces_own_orders() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, "2026-01-01T00:00:00Z").await;
        let now = parse_instant("2026-01-01T00:00:00Z").unwrap();
        let start = parse_instant("2025-01-01T12:00:00Z").unwrap();
        let day = 86_400_000i64;
        let mut events = Vec::new();
        for i in 0..60i64 {
            let first = start + (i / 2) * day;
            let weeks = match i % 3 {
                0 => (now - first) / (7 * day), // buys every week, up to now
                1 => 8,                         // bought for two months, then stopped
                _ => 0,                         // one order only
            };
            for w in 0..=weeks {
                let revenue = 20 + (i % 5) * 5;
                events.push(json!({"type": "track", "userId": format!("u{i}"), "event": "Order Completed",
                    "timestamp": tenure_core::time::format_instant(first + w * 7 * day),
                    "properties": {"order_id": format!("o{i}-{w}"), "revenue": revenue, "currency": "USD"}}));
            }
        }
        app.post_in_batches(&events).await;
        app.post(
            "/v1/identify",
            &app.write_key,
            &json!({"userId": "no-orders"}),
        )
        .await;

        let predictions = |profile: &Value| profile["predictions"]["orders"].clone();
        let (_, frequent) = app.get("/v1/customers/u0", &app.admin_key).await;
        let (_, lapsed) = app.get("/v1/customers/u1", &app.admin_key).await;
        let (_, single) = app.get("/v1/customers/u2", &app.admin_key).await;
        let (_, none) = app.get("/v1/customers/no-orders", &app.admin_key).await;
        let (f, l, s) = (
            predictions(&frequent),
            predictions(&lapsed),
            predictions(&single),
        );
        assert_eq!(f["fitted_on_customers"], 60, "{}: {f}", app.backend);
        assert_eq!(f["currency"], "USD");
        let alive = |p: &Value| p["probability_alive"].as_f64().unwrap();
        let orders = |p: &Value| p["expected_orders_next_52_weeks"].as_f64().unwrap();
        let clv = |p: &Value| p["predicted_clv_12_months"].as_f64().unwrap();
        assert!(alive(&f) > 0.8 && alive(&l) < 0.3, "{f} {l}");
        assert!(orders(&f) > 10.0 * orders(&l), "{f} {l}");
        assert!(clv(&f) > clv(&l) && clv(&l) >= 0.0, "{f} {l}");
        if f["model"] == "bgnbd" {
            assert_eq!(
                alive(&s),
                1.0,
                "no repeat purchase: alive by the BG/NBD's convention"
            );
        } else {
            assert_eq!(f["model"], "pareto_nbd");
            assert!(alive(&s) < 1.0 && alive(&s) > alive(&l), "{s} {l}");
        }
        assert!(none["predictions"]["orders"].is_null(), "{none}");

        // The workspace's forecast: the kept model has the higher log-likelihood, and each
        // total is the sum of the 60 profiles' predictions.
        let (status, forecast) = app.get("/v1/metrics/clv", &app.admin_key).await;
        assert_eq!(status, 200, "{forecast}");
        let orders = &forecast["data"]["orders"];
        assert_eq!(orders["model"], f["model"], "{orders}");
        let candidates = orders["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 2, "{orders}");
        let best = candidates
            .iter()
            .filter(|c| c["converged"] == true)
            .max_by(|a, b| {
                a["log_likelihood"]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b["log_likelihood"].as_f64().unwrap())
            })
            .unwrap();
        assert_eq!(best["model"], orders["model"]);
        assert_eq!(orders["customers"], 60);
        let (mut alive_sum, mut orders_sum, mut clv_sum) = (0.0, 0.0, 0.0);
        for i in 0..60 {
            let (_, profile) = app
                .get(&format!("/v1/customers/u{i}"), &app.admin_key)
                .await;
            let p = predictions(&profile);
            alive_sum += alive(&p);
            orders_sum += p["expected_orders_next_52_weeks"].as_f64().unwrap();
            clv_sum += clv(&p);
        }
        let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(
            close(&orders["mean_probability_alive"], alive_sum / 60.0),
            "{orders}"
        );
        assert!(
            close(&orders["expected_orders_next_52_weeks"], orders_sum),
            "{orders}"
        );
        assert!(
            close(&orders["predicted_clv_12_months"], clv_sum),
            "{orders}"
        );
        let by_channel = orders["by_channel"].as_array().unwrap();
        let channel_customers: u64 = by_channel
            .iter()
            .map(|c| c["customers"].as_u64().unwrap())
            .sum();
        assert_eq!(channel_customers, 60);
        assert!(
            forecast["data"]["subscriptions"].is_null(),
            "no subscriptions: {forecast}"
        );
        let (status, _) = app.get("/v1/metrics/clv", &app.write_key).await;
        assert_eq!(status, 403, "a write key reads no forecast");
        app.stop();
    }
}

/// Subscribers' profiles carry an sBG retention forecast fitted on the workspace's own
/// monthly subscriptions: CLV = current MRR × expected remaining (discounted) months; a
/// customer who churned has none.
#[tokio::test]
async fn profiles_forecast_subscription_retention() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, "2026-01-01T00:00:00Z").await;
        let now = parse_instant("2026-01-01T00:00:00Z").unwrap();
        let start = parse_instant("2025-01-03T00:00:00Z").unwrap();
        let day = 86_400_000i64;
        let mut events = Vec::new();
        for i in 0..60i64 {
            let started = start + (i * 4) * day;
            let sub = |event: &str, at: i64, extra: Value| {
                let mut props = json!({"subscription_id": format!("s{i}"), "plan": "pro", "interval": "month", "amount": 50, "currency": "USD"});
                props
                    .as_object_mut()
                    .unwrap()
                    .extend(extra.as_object().unwrap().clone());
                json!({"type": "track", "userId": format!("u{i}"), "event": event,
                       "timestamp": tenure_core::time::format_instant(at), "properties": props})
            };
            events.push(sub("Subscription Started", started, json!({})));
            // A third cancel in their first month, a third in their third; the rest stay.
            let cancel_month = match i % 3 {
                0 => None,
                1 => Some(0),
                _ => Some(2),
            };
            let mut month = 1;
            loop {
                let renewal = tenure_core::time::add_months(started, month);
                if renewal > now || cancel_month.is_some_and(|c| month > c) {
                    break;
                }
                events.push(sub("Subscription Renewed", renewal, json!({})));
                month += 1;
            }
            if let Some(c) = cancel_month {
                let at = tenure_core::time::add_months(started, c) + 10 * day;
                if at <= now {
                    events.push(sub("Subscription Cancelled", at, json!({})));
                }
            }
        }
        app.post_in_batches(&events).await;
        let (_, loyal) = app.get("/v1/customers/u0", &app.admin_key).await;
        let (_, churned) = app.get("/v1/customers/u1", &app.admin_key).await;
        let p = &loyal["predictions"]["subscription"];
        assert_eq!(p["model"], "sbg", "{}: {loyal}", app.backend);
        assert!(p["fitted_on_subscribers"].as_u64().unwrap() >= 55, "{p}");
        assert_eq!(
            p["renewals"], 11,
            "u0 started 2025-01-03 and paid every month since"
        );
        let months = p["expected_remaining_months"].as_f64().unwrap();
        let retention = p["retention_next_month"].as_f64().unwrap();
        assert!(months > 1.0 && retention > 0.5 && retention < 1.0, "{p}");
        let clv = p["predicted_clv"]["USD"].as_f64().unwrap();
        assert!((clv - 50.0 * months).abs() < 1e-9, "CLV = MRR × DERL: {p}");
        assert!(
            churned["predictions"]["subscription"].is_null(),
            "{churned}"
        );

        // The workspace's forecast sums the current subscribers' profiles.
        let (status, forecast) = app.get("/v1/metrics/clv", &app.admin_key).await;
        assert_eq!(status, 200, "{forecast}");
        let subscriptions = &forecast["data"]["subscriptions"];
        assert_eq!(subscriptions["retention_curve"][0], 1.0, "{subscriptions}");
        let mut current = 0;
        let mut clv_sum = 0.0;
        for i in 0..60 {
            let (_, profile) = app
                .get(&format!("/v1/customers/u{i}"), &app.admin_key)
                .await;
            let p = &profile["predictions"]["subscription"];
            if p.is_object() {
                current += 1;
                clv_sum += p["predicted_clv"]["USD"].as_f64().unwrap();
            }
        }
        assert_eq!(
            subscriptions["current_subscribers"], current,
            "{subscriptions}"
        );
        assert!(current >= 20, "a third of 60 never cancel: {subscriptions}");
        let total = subscriptions["predicted_clv"]["USD"].as_f64().unwrap();
        assert!((total - clv_sum).abs() < 1e-6, "{total} vs {clv_sum}");
        app.stop();
    }
}

/// Issue 16, item 2: two `Logged In` events sent without `messageId` were stored once.
#[tokio::test]
async fn messages_sent_without_ids_over_http_are_distinct_events() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let login = json!({"userId": "u1", "event": "Logged In"});
        for _ in 0..2 {
            let (status, body) = app.post("/v1/track", &app.write_key, &login).await;
            assert_eq!((status, body["stored"].as_u64()), (200, Some(1)), "{body}");
        }
        let (_, batch) = app
            .post(
                "/v1/batch",
                &app.write_key,
                &json!({"batch": [
                    {"type": "track", "userId": "u1", "event": "Logged In"},
                    {"type": "track", "userId": "u1", "event": "Logged In", "messageId": ""},
                ]}),
            )
            .await;
        assert_eq!(batch["stored"], 2, "{batch}");
        let ids: Vec<&str> = batch["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["messageId"].as_str().unwrap())
            .collect();
        assert_ne!(ids[0], ids[1]);
        assert_eq!(app.event_count().await, 4, "{}", app.backend);
        app.stop();
    }
}

/// Issue 16, item 5: values that silently changed meaning.
#[tokio::test]
async fn values_that_would_change_meaning_are_refused_with_their_field() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let field_of = |body: &Value| body["results"][0]["errors"][0]["field"].clone();
        let message_of = |body: &Value| {
            body["results"][0]["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        // An integer beyond 64 bits is read as a float: refused, not rounded into another id.
        let (status, body) = app
            .post_raw(
                "/v1/track",
                &app.write_key,
                br#"{"userId": 123456789012345678901234, "event": "X"}"#.to_vec(),
            )
            .await;
        assert_eq!((status, field_of(&body)), (400, json!("userId")), "{body}");
        assert!(message_of(&body).contains("as a string"), "{body}");
        // Above 2^53 but within 64 bits: kept exactly.
        let (status, _) = app
            .post_raw(
                "/v1/track",
                &app.write_key,
                br#"{"userId": 9007199254740993, "event": "X"}"#.to_vec(),
            )
            .await;
        assert_eq!(status, 200);
        let (status, profile) = app
            .get("/v1/customers/9007199254740993", &app.admin_key)
            .await;
        assert_eq!(
            (status, profile["user_id"].clone()),
            (200, json!("9007199254740993"))
        );

        let (status, body) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": "   ", "event": "X"}),
            )
            .await;
        assert_eq!((status, field_of(&body)), (400, json!("userId")), "{body}");

        let order = |currency: &str, revenue: f64| {
            json!({"userId": "u", "event": "Order Completed",
                   "properties": {"order_id": "o", "revenue": revenue, "currency": currency}})
        };
        let (status, body) = app
            .post("/v1/track", &app.write_key, &order("XYZ", 1.0))
            .await;
        assert_eq!(
            (status, field_of(&body)),
            (400, json!("properties.currency"))
        );
        let (status, body) = app
            .post("/v1/track", &app.write_key, &order("USD", 1e17))
            .await;
        assert_eq!(status, 400);
        assert!(
            message_of(&body).contains("from 0 to 90000000000000.00 USD"),
            "the range is said: {body}"
        );

        let (status, body) = app
            .post(
                "/v1/batch",
                &app.write_key,
                &json!({"batch": [{"type": "track", "userId": "u", "event": "X"}], "context": [1]}),
            )
            .await;
        assert_eq!(status, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`context` must be an object"),
            "{body}"
        );
        assert_eq!(
            app.event_count().await,
            1,
            "{}: only the exact id was stored",
            app.backend
        );
        app.stop();
    }
}

/// Issue 16, item 6: a NUL in a name passed validation, PostgreSQL refused the row and the
/// whole group commit failed, other workspaces' requests included.
#[tokio::test]
async fn control_characters_in_names_are_refused_on_every_backend() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        for (path, body, field) in [
            (
                "/v1/track",
                json!({"userId": "u", "event": "Log\u{0}in"}),
                "event",
            ),
            (
                "/v1/page",
                json!({"userId": "u", "name": "Home\u{0}"}),
                "name",
            ),
            (
                "/v1/screen",
                json!({"userId": "u", "name": "A\u{7}"}),
                "name",
            ),
        ] {
            let (status, answer) = app.post(path, &app.write_key, &body).await;
            assert_eq!(status, 400, "{path}: {answer}");
            assert_eq!(answer["results"][0]["errors"][0]["field"], field);
            assert!(
                answer["results"][0]["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("control character"),
                "{answer}"
            );
        }
        // A NUL inside properties is escaped in the stored JSON and is fine.
        let (status, _) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": "u", "event": "Note", "properties": {"text": "a\u{0}b"}}),
            )
            .await;
        assert_eq!(status, 200, "{}", app.backend);
        app.stop();
    }
}

/// Makes the database refuse any event named `Poison`: a real storage failure on both
/// backends, for the tests of what one failing request does to the others.
fn install_poison_trigger(db: &common::TestDb) {
    match db.url() {
        tenure_store::DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.name = 'Poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned event'); END;",
            )
            .unwrap();
        }
        tenure_store::DatabaseUrl::Postgres(url) => std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN
                   IF NEW.name = 'Poison' THEN RAISE EXCEPTION 'poisoned event'; END IF;
                   RETURN NEW; END $$ LANGUAGE plpgsql;
                 CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison();",
            )
            .unwrap();
        })
        .join()
        .unwrap(),
    }
}

/// Issue 16, items 6 and 8: one request the database refuses failed every request of its
/// group commit (other workspaces' too) with 503, and the answer said "db error".
#[tokio::test]
async fn a_request_the_database_refuses_fails_alone() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        install_poison_trigger(&db);
        let other = {
            let store = app.store.clone();
            tokio::task::spawn_blocking(move || {
                let ws = tenure_server::admin::create_workspace(&store, "other", 0).unwrap();
                tenure_server::admin::create_key(&store, &ws.id, tenure_store::KeyKind::Write, 0)
                    .unwrap()
                    .1
            })
            .await
            .unwrap()
        };
        for round in 0..3 {
            // Many requests at once, so that the writer commits several together.
            let mut requests = Vec::new();
            for i in 0..40 {
                let (key, event) = match i % 20 {
                    0 => (app.write_key.clone(), "Poison"),
                    1 => (other.clone(), "Innocent"),
                    _ => (app.write_key.clone(), "Innocent"),
                };
                let client = app.client.clone();
                let url = format!("{}/v1/track", app.base);
                requests.push(tokio::spawn(async move {
                    let response = client
                        .post(url)
                        .basic_auth(key, Some(""))
                        .json(&json!({"userId": format!("u{i}"), "event": event,
                                      "messageId": format!("r{round}-{i}")}))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    (
                        event,
                        status,
                        response.json::<Value>().await.unwrap_or(Value::Null),
                    )
                }));
            }
            for request in requests {
                let (event, status, body) = request.await.unwrap();
                if event == "Poison" {
                    assert_eq!(status, 503, "{body}");
                    let message = body["error"]["message"].as_str().unwrap_or_default();
                    assert!(
                        !message.contains("db error") && !message.contains("poisoned"),
                        "the cause stays in the server's log: {message}"
                    );
                } else {
                    assert_eq!(
                        status, 200,
                        "{}: an innocent request failed: {body}",
                        app.backend
                    );
                }
            }
        }
        assert_eq!(app.event_count().await, 3 * 36, "{}", app.backend);
        let (_, profile) = app.get("/v1/customers/u2", &app.admin_key).await;
        assert_eq!(
            profile["events"], 3,
            "the engine holds exactly what was stored"
        );
        let (status, _) = app.get("/v1/customers/u0", &app.admin_key).await;
        assert_eq!(
            status, 404,
            "the refused customer was never stored nor kept in memory"
        );
        app.stop();
    }
}

/// Issue 16, item 7: `/health` must say whether the server can take events.
#[tokio::test]
async fn health_separates_liveness_from_readiness() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let (status, ready) = app.get("/health/ready", &app.admin_key).await;
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["checks"]["writer"], "running");
        assert_eq!(ready["checks"]["database_reachable"], "ok");
        let (status, live) = app.get("/health/live", &app.admin_key).await;
        assert_eq!((status, live["status"].clone()), (200, json!("ok")));
        app.stop();
    }
}

/// Issue 16, item 10: what the browser and mobile libraries send — short endpoints,
/// `text/plain`, `writeKey` in the body, gzip bodies, a CORS preflight — is accepted, and
/// another encoding is refused with a clear error.
#[tokio::test]
async fn what_the_browser_and_mobile_libraries_send_is_accepted() {
    use std::io::Write;
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let post = |path: &str, headers: &[(&str, &str)], body: Vec<u8>| {
            let mut request = app.client.post(format!("{}{path}", app.base)).body(body);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        // The browser library: text/plain, the key in the body (and in each batched event).
        let track = json!({"type": "track", "userId": "b1", "event": "Viewed", "writeKey": app.write_key,
                           "messageId": "ajs-1"});
        let (status, body) = post(
            "/v1/t",
            &[("content-type", "text/plain")],
            track.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{}: {body}", app.backend);
        let batch = json!({"writeKey": app.write_key, "sentAt": "2026-01-01T00:00:00Z", "batch": [
            {"type": "page", "anonymousId": "a1", "name": "Home", "writeKey": app.write_key, "messageId": "ajs-2"},
            {"type": "identify", "anonymousId": "a1", "userId": "b1", "writeKey": app.write_key, "messageId": "ajs-3"},
        ]});
        let (status, body) = post(
            "/v1/b",
            &[("content-type", "text/plain")],
            batch.to_string().into_bytes(),
        )
        .await;
        assert_eq!((status, body["stored"].as_u64()), (200, Some(2)), "{body}");
        // The key is the credential, never data: no stored event holds it.
        let store = app.store.clone();
        let ws = app.workspace.clone();
        let raws: Vec<String> = tokio::task::spawn_blocking(move || {
            store
                .with(|c| c.events_after(&ws, 0, 100))
                .unwrap()
                .into_iter()
                .map(|e| e.raw)
                .collect()
        })
        .await
        .unwrap();
        assert_eq!(raws.len(), 3);
        assert!(
            raws.iter()
                .all(|r| !r.contains("writeKey") && !r.contains(&app.write_key)),
            "{raws:?}"
        );
        let (status, _) = post(
            "/v1/t",
            &[],
            json!({"userId": "b1", "event": "X", "writeKey": "tnr_w_wrong"})
                .to_string()
                .into_bytes(),
        )
        .await;
        assert_eq!(status, 401);

        // Gzip bodies (server and mobile libraries), with the key as Basic auth.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json!({"batch": [{"type": "track", "userId": "m1", "event": "Opened App", "messageId": "gz-1"}]}).to_string().as_bytes()).unwrap();
        let compressed = gz.finish().unwrap();
        let auth = format!("Basic {}", base64_key(&app.write_key));
        let (status, body) = post(
            "/v1/batch",
            &[
                ("content-encoding", "gzip"),
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            compressed,
        )
        .await;
        assert_eq!((status, body["stored"].as_u64()), (200, Some(1)), "{body}");
        let (status, body) = post(
            "/v1/batch",
            &[("content-encoding", "br"), ("authorization", &auth)],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (415, json!("unsupported_encoding")),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`br` is not supported")
        );
        let (status, _) = post(
            "/v1/batch",
            &[("content-encoding", "gzip"), ("authorization", &auth)],
            b"not gzip".to_vec(),
        )
        .await;
        assert_eq!(status, 415);

        // The preflight a browser sends before posting with an Authorization header.
        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, format!("{}/v1/t", app.base))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{}", preflight.status());
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
        // Settings for `cdnURL` pointed at Tenure: everything goes back to this host.
        let (status, settings) = app
            .get(&format!("/v1/projects/{}/settings", app.write_key), "")
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            settings["integrations"]["Segment.io"]["apiHost"],
            format!("{}/v1", app.base.trim_start_matches("http://"))
        );
        assert_eq!(app.event_count().await, 4, "{}", app.backend);
        app.stop();
    }
}

fn base64_key(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
}

/// Issue 17, item 5: a write key forged `Segment Entered` / `Segment Exited` and pre-stored
/// Tenure's predictable membership ids; an admin key may send operator events only.
#[tokio::test]
async fn tenure_s_own_events_and_ids_cannot_be_sent() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        for key in [&app.write_key, &app.admin_key] {
            let (status, body) = app
                .post(
                    "/v1/batch",
                    key,
                    &json!({"batch": [
                        {"type": "track", "userId": "u", "event": "Segment Entered", "properties": {"segment_id": "seg_1"}},
                        {"type": "track", "userId": "u", "event": "Points Earned"},
                        {"type": "track", "userId": "u", "event": "Logged In", "messageId": "tenure:seg_1.v1:cus_x:in:1"},
                        {"type": "track", "userId": "u", "event": "Logged In"},
                    ]}),
                )
                .await;
            assert_eq!(status, 400, "{body}");
            let fields: Vec<&str> = body["results"].as_array().unwrap()[..3]
                .iter()
                .map(|r| r["errors"][0]["field"].as_str().unwrap())
                .collect();
            assert_eq!(fields, ["event", "event", "messageId"], "{body}");
            assert_eq!(body["stored"], 1, "the innocent event is stored");
        }
        let (_, profile) = app.get("/v1/customers/u", &app.admin_key).await;
        assert!(
            profile["event_counts"]["Segment Entered"].is_null(),
            "{profile}"
        );
        app.stop();
    }
}

/// Issue 17, item 2: 20,000 sockets sending half a request exhausted the file descriptors;
/// `/health` and ingest stopped answering.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_the_server_keeps_answering() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for db in databases() {
        let limits = tenure_server::serve::Limits {
            max_connections: 16,
            header_read_timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        };
        let app = TestApp::spawn_with_limits(&db, limits).await;
        let address = app.base.trim_start_matches("http://").to_owned();
        // Four times more stalled sockets than the server takes at once.
        let mut stalled = Vec::new();
        for _ in 0..64 {
            let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
            socket
                .write_all(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Le")
                .await
                .unwrap();
            stalled.push(socket);
        }
        // A real request still gets through while they are there.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let response = client
            .post(format!("{}/v1/track", app.base))
            .basic_auth(&app.write_key, Some(""))
            .json(&json!({"userId": "u1", "event": "Logged In", "messageId": "m1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", app.backend);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // The server closed the stalled sockets (end of stream, or a reset).
        for socket in stalled.iter_mut() {
            let mut buffer = [0u8; 256];
            let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                loop {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {} // a 408 answer before the close
                    }
                }
            })
            .await;
            assert!(closed.is_ok(), "a stalled socket stayed open");
        }
        // An idle keep-alive connection (one full request, then nothing) is closed too.
        let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
        idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut buffer = [0u8; 1024];
            loop {
                match idle.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => answer.extend_from_slice(&buffer[..n]),
                }
            }
        })
        .await;
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
        assert!(closed.is_ok(), "an idle keep-alive connection stayed open");
        app.stop();
    }
}

/// One address cannot hold every connection slot: past its share, its connections are
/// closed at once while another address is still served.
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for db in databases() {
        let limits = tenure_server::serve::Limits {
            max_connections_per_address: 4,
            ..Default::default()
        };
        let app = TestApp::spawn_with_limits(&db, limits).await;
        let address: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
            socket
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            held.push(socket);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut fifth = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut buffer = [0u8; 64];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), fifth.read(&mut buffer)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "{}: the fifth connection of one address is closed at once",
            app.backend
        );
        let other = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .unwrap();
        let response = other
            .get(format!("{}/health/live", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "another address is served");
        drop(held);
        app.stop();
    }
}

/// Issue 17, item 4: 3,500 wrong keys a second were checked without a limit.
#[tokio::test]
async fn an_address_that_keeps_failing_authentication_is_refused_for_a_while() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let from = |address: &str| {
            reqwest::Client::builder()
                .local_address(address.parse::<std::net::IpAddr>().unwrap())
                .build()
                .unwrap()
        };
        let (attacker, neighbour) = (from("127.0.0.1"), from("127.0.0.2"));
        let post = |client: &reqwest::Client, key: &str| {
            client
                .post(format!("{}/v1/track", app.base))
                .basic_auth(key, Some(""))
                .json(&json!({"userId": "u", "event": "X"}))
                .send()
        };
        let mut statuses = Vec::new();
        for i in 0..40 {
            let response = post(&attacker, &format!("tnr_w_guess{i}")).await.unwrap();
            statuses.push(response.status().as_u16());
        }
        assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
        assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
        let refused = post(&attacker, &app.write_key).await.unwrap();
        assert_eq!(refused.status(), 429, "the address waits out its window");
        assert!(refused.headers().contains_key("retry-after"));
        let other = post(&neighbour, &app.write_key).await.unwrap();
        assert_eq!(
            other.status(),
            200,
            "{}: another address is not touched",
            app.backend
        );
        app.stop();
    }
}

/// Issue 17, items 6 and 10: keys could not be listed nor revoked (a deleted key kept
/// working until a restart), and admin actions left no trail.
#[tokio::test]
async fn keys_are_listed_revoked_everywhere_within_a_second_and_audited() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let (status, created) = app
            .post(
                "/v1/keys",
                &app.admin_key,
                &json!({"kind": "write", "name": "website", "expires_in_days": 30}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let (id, secret) = (
            created["id"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        );
        assert!(created["expires_at"].is_number());
        let track = json!({"userId": "u", "event": "Logged In"});
        assert_eq!(app.post("/v1/track", &secret, &track).await.0, 200);
        let (_, listed) = app.get("/v1/keys", &app.admin_key).await;
        let mine = listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .unwrap()
            .clone();
        assert_eq!(mine["name"], "website");
        assert!(mine["last_used_at"].is_number(), "{mine}");
        assert!(
            !listed.to_string().contains(&secret),
            "a secret is never listed"
        );

        // Revoked through another server on the same database: refused here within a second.
        let other_server = TestApp::spawn(&db).await;
        let status = other_server
            .delete(&format!("/v1/keys/{id}"), &other_server.admin_key)
            .await;
        assert_eq!(status, 204);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (status, refused) = app.post("/v1/track", &secret, &track).await;
        assert_eq!(status, 401, "{}: {refused}", app.backend);
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("revoked")
        );
        assert_eq!(
            app.delete(&format!("/v1/keys/{id}"), &app.admin_key).await,
            404,
            "revoked once"
        );
        let (_, audit) = app.get("/v1/audit", &app.admin_key).await;
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(&actions[..2], ["key.revoked", "key.created"], "{audit}");
        assert_eq!(audit["entries"][0]["target"], id.as_str());
        other_server.stop();
        app.stop();
    }
}

/// Issue 17, item 9: a business must honour deletion and access requests.
#[tokio::test]
async fn a_customer_is_exported_then_erased_for_good_on_every_backend() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        app.post_in_batches(&[
            json!({"type": "identify", "anonymousId": "anon-9", "traits": {"email": "erase-me@example.com"}, "messageId": "e1"}),
            json!({"type": "track", "anonymousId": "anon-9", "event": "Viewed", "messageId": "e2"}),
            json!({"type": "identify", "anonymousId": "anon-9", "userId": "erase-me", "messageId": "e3"}),
            json!({"type": "track", "userId": "erase-me", "event": "Order Completed", "messageId": "e4",
                   "properties": {"order_id": "o1", "revenue": 10, "currency": "USD"}}),
            json!({"type": "track", "userId": "keep-me", "event": "Viewed", "messageId": "k1"}),
        ])
        .await;
        let (status, export) = app
            .get("/v1/customers/erase-me/export", &app.admin_key)
            .await;
        assert_eq!(status, 200, "{export}");
        assert_eq!(export["events"].as_array().unwrap().len(), 4, "{export}");
        assert!(export.to_string().contains("erase-me@example.com"));
        let (status, _) = app
            .get("/v1/customers/erase-me/export", &app.write_key)
            .await;
        assert_eq!(status, 403);

        let (status, erased) = app
            .delete_json("/v1/customers/erase-me", &app.admin_key)
            .await;
        assert_eq!(status, 200, "{erased}");
        assert_eq!(erased["events"], 4);
        let (status, _) = app.get("/v1/customers/erase-me", &app.admin_key).await;
        assert_eq!(status, 404);
        assert_eq!(app.get("/v1/customers/anon-9", &app.admin_key).await.0, 404);
        assert_eq!(
            app.get("/v1/customers/keep-me", &app.admin_key).await.0,
            200
        );
        assert_eq!(app.event_count().await, 1);
        let (_, audit) = app.get("/v1/audit", &app.admin_key).await;
        assert_eq!(audit["entries"][0]["action"], "customer.erased");
        assert!(
            !audit.to_string().contains("erase-me"),
            "no personal data in the audit log"
        );
        app.stop();

        // A restart folds the log again: they do not come back; sequence numbers only grow.
        let app = TestApp::spawn(&db).await;
        assert_eq!(
            app.get("/v1/customers/erase-me", &app.admin_key).await.0,
            404
        );
        let (_, stored) = app
            .post(
                "/v1/track",
                &app.write_key,
                &json!({"userId": "new", "event": "X", "messageId": "n1"}),
            )
            .await;
        assert!(
            stored["results"][0]["seq"].as_i64().unwrap() > 5,
            "{stored}"
        );
        app.stop();
    }
}
