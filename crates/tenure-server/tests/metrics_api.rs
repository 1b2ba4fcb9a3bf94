//! `GET /v1/metrics`, `/v1/metrics/{table}` and `/v1/spend` against the real application, on
//! every backend.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, databases};
use serde_json::{Value, json};

fn track(user: &str, when: &str, event: &str, properties: Value) -> Value {
    json!({"type": "track", "userId": user, "event": event, "timestamp": when,
           "properties": properties, "messageId": format!("{user}-{event}-{when}")})
}

/// B: $50/month from 01-05, cancels 02-15 (churns 03-05); G: $10/month from 01-02, never
/// renewed (churns 30 days after its period end, 03-04); P: a paid-search customer who
/// answers NPS 10.
fn business() -> Vec<Value> {
    let sub = |u: &str, when: &str, amount: f64| {
        track(
            u,
            when,
            "Subscription Started",
            json!({"subscription_id": u, "plan": "pro", "interval": "month", "amount": amount, "currency": "USD"}),
        )
    };
    vec![
        json!({"type": "identify", "userId": "G", "timestamp": "2026-01-02T00:00:00Z",
               "traits": {"acquisition_channel": "paid_search"}, "messageId": "id-G"}),
        sub("B", "2026-01-05T00:00:00Z", 50.0),
        track(
            "B",
            "2026-02-05T00:00:00Z",
            "Subscription Renewed",
            json!({"subscription_id": "B"}),
        ),
        track(
            "B",
            "2026-02-15T00:00:00Z",
            "Subscription Cancelled",
            json!({"subscription_id": "B"}),
        ),
        sub("G", "2026-01-02T00:00:00Z", 10.0),
        track(
            "G",
            "2026-01-20T00:00:00Z",
            "Survey Responded",
            json!({"survey_id": "nps", "score": 10}),
        ),
    ]
}

#[tokio::test]
async fn metrics_tables_answer_with_documented_names_and_numbers() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, "2026-04-15T00:00:00Z").await;
        app.post_in_batches(&business()).await;
        let (status, body) = app
            .get(
                // G never renews: read as a billing source (explicit), it churns in March.
                "/v1/metrics/subscriptions?from=2026-01-01&to=2026-03-31&renewals=explicit",
                &app.admin_key,
            )
            .await;
        assert_eq!(status, 200, "{}: {body}", app.backend);
        assert_eq!(body["metric"], "subscriptions");
        assert_eq!(body["currency"]["currency"], "USD");
        let rows = body["data"].as_array().unwrap();
        let periods: Vec<&str> = rows.iter().map(|r| r["period"].as_str().unwrap()).collect();
        assert_eq!(periods, ["2026-01", "2026-02", "2026-03"]);
        assert_eq!(rows[0]["new_mrr"], 6000);
        assert_eq!(rows[0]["new_customers"], 2);
        assert_eq!(rows[2]["churned_mrr"], 6000, "B and G churn in March");
        assert_eq!(rows[2]["logo_churn_rate"], 1.0);
        assert!(
            rows[1]["ltv"].is_null(),
            "no churn in February: LTV undefined"
        );
        // Under the default, auto, G has never been renewed, so it renews itself.
        let (_, auto) = app
            .get(
                "/v1/metrics/subscriptions?from=2026-01-01&to=2026-03-31",
                &app.admin_key,
            )
            .await;
        assert_eq!(
            auto["data"][2]["churned_mrr"], 5000,
            "only B churns: {auto}"
        );

        // Several tables at once; only those asked for.
        let (status, body) = app
            .get(
                "/v1/metrics?metric=voice,referrals&from=2026-01-01&to=2026-03-31",
                &app.admin_key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["voice"][0]["promoters"], 1);
        assert_eq!(body["referrals"][0]["new_customers"], 2);
        assert!(body.get("subscriptions").is_none());
        app.stop();
    }
}

#[tokio::test]
async fn bad_metric_requests_are_refused_with_what_was_wrong() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let (status, body) = app.get("/v1/metrics/churnz", &app.admin_key).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "metric_not_found");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("subscriptions")
        );
        let (status, body) = app
            .get(
                "/v1/metrics/subscriptions?grain=fortnight&gross_margin=2",
                &app.admin_key,
            )
            .await;
        assert_eq!(status, 400);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("`grain`") && message.contains("`gross_margin`"),
            "{message}"
        );
        let (status, _) = app.get("/v1/metrics", &app.write_key).await;
        assert_eq!(status, 403, "a write key cannot read metrics");
        app.stop();
    }
}

#[tokio::test]
async fn spend_feeds_cac_and_a_bad_row_stores_nothing() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, "2026-04-15T00:00:00Z").await;
        app.post_in_batches(&business()).await;
        let put = |body: Value| {
            let app = &app;
            async move {
                let response = app
                    .client
                    .put(format!("{}/v1/spend", app.base))
                    .bearer_auth(&app.admin_key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        let (status, body) = put(json!({"spend": [
            {"channel": "paid_search", "month": "2026-01", "amount": 300, "currency": "USD"},
            {"channel": "social", "month": "2026-13", "amount": 5, "currency": "USD"},
        ]}))
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("spend[1].month")
        );
        let (_, listed) = app.get("/v1/spend", &app.admin_key).await;
        assert_eq!(listed["data"], json!([]), "nothing stored");

        let (status, body) = put(json!({"spend": [
            {"channel": "Paid_Search", "month": "2026-01", "amount": 300, "currency": "USD"}]}))
        .await;
        assert_eq!(status, 200, "{body}");
        // A second PUT of the same month replaces it.
        put(json!({"spend": [{"channel": "paid_search", "month": "2026-01", "amount": 200, "currency": "USD"}]})).await;
        let (_, listed) = app.get("/v1/spend", &app.admin_key).await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        assert_eq!(listed["data"][0]["amount"], 20000);

        let (status, body) = app
            .get(
                "/v1/metrics/channels?from=2026-01-01&to=2026-03-31",
                &app.admin_key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let paid = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == "paid_search")
            .unwrap()
            .clone();
        // G is the channel's one new paying customer, at 1000 MRR: CAC 20000, payback 20.
        assert_eq!(paid["spend"], 20000);
        assert_eq!(paid["cac"], 20000.0);
        assert_eq!(paid["cac_payback_months"], 20.0);
        app.stop();
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_parameter_and_table_the_code_accepts() {
    let db = databases().remove(0);
    let app = TestApp::spawn(&db).await;
    let response = app
        .client
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let spec: Value = response.json().await.unwrap();
    let operation = &spec["paths"]["/v1/metrics/{table}"]["get"];
    let mut documented: Vec<&str> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let mut accepted = tenure_core::metrics::PARAMETERS.to_vec();
    documented.sort_unstable();
    accepted.sort_unstable();
    assert_eq!(documented, accepted);
    let tables: Vec<&str> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "table")
        .unwrap()["schema"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let names: Vec<&str> = tenure_core::metrics::Table::ALL
        .iter()
        .map(|t| t.name())
        .collect();
    assert_eq!(tables, names);
    app.stop();
}

/// Issue 16, item 9: the workspace default of the renewal policy, for reports, profiles,
/// health and segments alike, kept across a restart.
#[tokio::test]
async fn the_workspace_renewal_policy_drives_reports_and_profiles() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, "2026-04-15T00:00:00Z").await;
        app.post_in_batches(&business()).await;
        let march_churn = |body: &Value| body["data"][2]["churned_mrr"].clone();
        let path = "/v1/metrics/subscriptions?from=2026-01-01&to=2026-03-31";
        let (_, auto) = app.get(path, &app.admin_key).await;
        assert_eq!(march_churn(&auto), 5000, "auto: G renews itself");
        let (_, g) = app.get("/v1/customers/G", &app.admin_key).await;
        assert_eq!(g["subscriptions"][0]["status"], "active", "{g}");

        let (status, _) = app
            .put(
                "/v1/workspace",
                &app.write_key,
                &json!({"renewals": "explicit"}),
            )
            .await;
        assert_eq!(status, 403);
        let (status, bad) = app
            .put(
                "/v1/workspace",
                &app.admin_key,
                &json!({"renewals": "sometimes"}),
            )
            .await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            bad["error"]["message"]
                .as_str()
                .unwrap()
                .contains("auto, implicit or explicit")
        );
        let (status, set) = app
            .put(
                "/v1/workspace",
                &app.admin_key,
                &json!({"renewals": "explicit"}),
            )
            .await;
        assert_eq!(
            (status, set["settings"]["renewals"].clone()),
            (200, json!("explicit")),
            "{set}"
        );

        let (_, explicit) = app.get(path, &app.admin_key).await;
        assert_eq!(
            march_churn(&explicit),
            6000,
            "{}: the workspace default applies",
            app.backend
        );
        let (_, asked) = app
            .get(&format!("{path}&renewals=auto"), &app.admin_key)
            .await;
        assert_eq!(march_churn(&asked), 5000, "a query's own renewals wins");
        let (_, g) = app.get("/v1/customers/G", &app.admin_key).await;
        assert_eq!(g["subscriptions"][0]["status"], "ended", "{g}");
        app.stop();

        // A restart folds the log under the stored policy.
        let app = TestApp::spawn_at(&db, "2026-04-15T00:00:00Z").await;
        let (_, shown) = app.get("/v1/workspace", &app.admin_key).await;
        assert_eq!(shown["settings"]["renewals"], "explicit");
        let (_, again) = app.get(path, &app.admin_key).await;
        assert_eq!(march_churn(&again), 6000, "{}", app.backend);
        app.stop();
    }
}
