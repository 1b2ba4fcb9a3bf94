//! The dashboard on both backends: the login (admin keys only, the login form's CSRF
//! cookie, no open redirect), every page and what it shows against the API, query
//! parameters in the URL, CSRF on every form, logging out, and workspaces kept apart.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, databases, demo_events};
use serde_json::{Value, json};

const END: &str = "2026-12-01T00:00:00Z";

const PAGES: [&str; 8] = [
    "/dashboard",
    "/dashboard/cohorts",
    "/dashboard/voice",
    "/dashboard/value",
    "/dashboard/at-risk",
    "/dashboard/segments",
    "/dashboard/segments/new",
    "/dashboard/customers/user_000001",
];

/// A browser without a cookie jar: redirects are not followed, cookies are passed by hand.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A count as the pages write it: `1,234`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            assert!(attributes.contains("HttpOnly"), "{text}");
            assert!(attributes.contains("SameSite=Lax"), "{text}");
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        Page {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    /// Opens the login page and logs in with `key`; the redirect's target.
    async fn login(&mut self, key: &str, next: &str) -> Page {
        let page = self
            .get(&format!("/dashboard/login?next={}", percent(next)))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden(&page.body, "csrf");
        self.post(
            "/dashboard/login",
            &[("key", key), ("csrf", &csrf), ("next", next)],
        )
        .await
    }
}

/// The value of a hidden form field.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// The `data-value` of the element whose `data-metric` is `metric`.
fn card_value(body: &str, metric: &str) -> (String, String) {
    let marker = format!("data-metric=\"{metric}\"");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no card {metric}"));
    // Only the element's own opening tag.
    let rest = body[at..].split('>').next().unwrap();
    let attr = |name: &str| {
        let m = format!("{name}=\"");
        rest.find(&m)
            .map(|s| rest[s + m.len()..].split('"').next().unwrap().to_owned())
            .unwrap_or_default()
    };
    (attr("data-period"), attr("data-value"))
}

#[tokio::test]
async fn login_asks_for_an_admin_key_and_guards_its_form() {
    for db in databases() {
        let app = TestApp::spawn_at(&db, END).await;
        let mut browser = Browser::new(&app);

        // Every page sends a visitor to the login page, which brings them back after.
        for path in PAGES {
            let page = browser.get(path).await;
            assert_eq!(page.status, 303, "{path}");
            let location = page.location.unwrap();
            assert!(
                location.starts_with("/dashboard/login?next=%2Fdashboard"),
                "{location}"
            );
        }
        assert_eq!(
            browser.get("/").await.location.as_deref(),
            Some("/dashboard")
        );
        // The assets need no session.
        let css = browser.get("/dashboard/assets/style.css").await;
        assert_eq!(css.status, 200);
        assert!(css.body.contains("--vermillion"));
        assert_eq!(browser.get("/dashboard/assets/app.js").await.status, 200);

        // A form posted without the cookie set with it is refused (login CSRF).
        let mut stranger = Browser::new(&app);
        let page = stranger
            .post(
                "/dashboard/login",
                &[
                    ("key", &app.admin_key),
                    ("csrf", "guess"),
                    ("next", "/dashboard"),
                ],
            )
            .await;
        assert_eq!(
            page.location.as_deref(),
            Some("/dashboard/login?error=form&next=%2Fdashboard")
        );
        assert!(!stranger.cookies.iter().any(|(k, _)| k == "tenure_session"));

        // A wrong key and a write key are refused, each with its message.
        let page = browser.login("tnr_a_nothing", "/dashboard").await;
        let location = page.location.unwrap();
        assert!(location.contains("error=key"), "{location}");
        assert!(
            browser
                .get(&location)
                .await
                .body
                .contains("That key is not valid")
        );
        let page = browser.login(&app.write_key, "/dashboard").await;
        let location = page.location.unwrap();
        assert!(location.contains("error=write"), "{location}");
        assert!(browser.get(&location).await.body.contains("write key"));
        assert!(!browser.cookies.iter().any(|(k, _)| k == "tenure_session"));

        // An admin key opens a session; only a dashboard path is a target afterwards.
        let page = browser.login(&app.admin_key, "https://evil.example/").await;
        assert_eq!(page.location.as_deref(), Some("/dashboard"));
        assert!(browser.cookies.iter().any(|(k, _)| k == "tenure_session"));
        let mut second = Browser::new(&app);
        let page = second
            .login(&app.admin_key, "/dashboard/voice?grain=week")
            .await;
        assert_eq!(
            page.location.as_deref(),
            Some("/dashboard/voice?grain=week")
        );
        // Logged in already, the login page sends straight on.
        let page = second
            .get("/dashboard/login?next=%2Fdashboard%2Fvalue")
            .await;
        assert_eq!(page.location.as_deref(), Some("/dashboard/value"));

        // Logging out needs the session's CSRF token; then the session is over.
        let home = browser.get("/dashboard").await;
        assert_eq!(home.status, 200, "{}", home.body);
        let refused = browser
            .post("/dashboard/logout", &[("csrf", "forged")])
            .await;
        assert_eq!(refused.status, 403);
        assert_eq!(
            browser.get("/dashboard").await.status,
            200,
            "still logged in"
        );
        let csrf = hidden(&home.body, "csrf");
        let page = browser.post("/dashboard/logout", &[("csrf", &csrf)]).await;
        assert_eq!(page.location.as_deref(), Some("/dashboard/login"));
        assert_eq!(browser.get("/dashboard").await.status, 303);
        app.stop();
    }
}

#[tokio::test]
async fn every_page_shows_the_apis_numbers() {
    let events = demo_events(1500, 18, 7, END);
    for db in databases() {
        let app = TestApp::spawn_at(&db, END).await;
        app.post_in_batches(&events).await;
        let mut browser = Browser::new(&app);
        assert_eq!(
            browser.login(&app.admin_key, "/dashboard").await.status,
            303
        );

        // Before a model is trained the at-risk page says how to train one.
        let page = browser.get("/dashboard/at-risk").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("tenure risk train"), "{}", page.body);
        let (status, body) = app.train_risk(&app.admin_key, &json!({})).await;
        assert_eq!(status, 200, "{body}");

        for path in PAGES {
            let page = browser.get(path).await;
            assert_eq!(page.status, 200, "{path} ({}): {}", app.backend, page.body);
            assert!(page.body.starts_with("<!DOCTYPE html>"), "{path}");
            assert!(
                !page.body.contains("class=\"error\""),
                "{path}: {}",
                page.body
            );
        }

        // The headline cards carry the API's exact values, for the default query and for a
        // period and filter given in the URL.
        for query in ["", "?grain=week", "?grain=quarter&channel=organic"] {
            let page = browser.get(&format!("/dashboard{query}")).await;
            assert_eq!(page.status, 200, "{query}");
            for (metric, table, field) in [
                ("subscriptions.mrr", "subscriptions", "mrr"),
                (
                    "subscriptions.logo_churn_rate",
                    "subscriptions",
                    "logo_churn_rate",
                ),
                (
                    "subscriptions.net_revenue_retention",
                    "subscriptions",
                    "net_revenue_retention",
                ),
                ("subscriptions.ltv", "subscriptions", "ltv"),
                ("voice.nps", "voice", "nps"),
                ("referrals.referral_share", "referrals", "referral_share"),
            ] {
                let (period, shown) = card_value(&page.body, metric);
                let (_, api) = app
                    .get(&format!("/v1/metrics/{table}{query}"), &app.admin_key)
                    .await;
                let row = api["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["period"] == period.as_str())
                    .unwrap_or_else(|| panic!("{metric}: no period {period}"));
                assert_eq!(shown, row[field].to_string(), "{metric} {query}");
            }
        }
        let (_, health) = app.get("/v1/health-scores?limit=1", &app.admin_key).await;
        let page = browser.get("/dashboard").await;
        for grade in ["red", "yellow", "green"] {
            assert!(
                page.body.contains(&format!(
                    "data-grade=\"{grade}\" data-count=\"{}\"",
                    health[grade]
                )),
                "{grade}"
            );
        }

        // A bad parameter is the API's message, on the page, with its status.
        let page = browser.get("/dashboard/cohorts?grain=fortnight").await;
        assert_eq!(page.status, 400);
        assert!(page.body.contains("grain"), "{}", page.body);
        let page = browser.get("/dashboard/at-risk?colour=red").await;
        assert_eq!(page.status, 400);
        assert!(page.body.contains("colour"), "{}", page.body);

        // The what-if slider's value reaches the projection.
        let page = browser.get("/dashboard/value?churn_change=-30").await;
        let (_, shown) = card_value(&page.body, "what_if.revenue_difference");
        let (_, api) = app
            .get("/v1/metrics/what_if?churn_change=-30", &app.admin_key)
            .await;
        assert_eq!(shown, api["data"]["revenue_difference"].to_string());

        // The at-risk list is the API's ranking by revenue at risk, each row a link.
        let (_, ranking) = app
            .get(
                "/v1/risk/customers?sort=expected_loss&limit=50",
                &app.admin_key,
            )
            .await;
        let page = browser.get("/dashboard/at-risk").await;
        let first = ranking["data"][0]["customer_id"].as_str().unwrap();
        let first_row = page.body.find("data-customer=").unwrap();
        assert!(page.body[first_row..].starts_with(&format!("data-customer=\"{first}\"")));
        assert!(
            page.body
                .contains(&format!("href=\"/dashboard/customers/{first}\""))
        );
        let page = browser
            .get("/dashboard/at-risk?grade=red&sort=probability")
            .await;
        assert_eq!(page.status, 200);

        // The customer page: the profile, predictions and the timeline from the log.
        let page = browser.get(&format!("/dashboard/customers/{first}")).await;
        let (_, profile) = app
            .get(&format!("/v1/customers/{first}"), &app.admin_key)
            .await;
        let risk = profile["predictions"]["risk"]["probability"]
            .as_f64()
            .unwrap();
        assert!(page.body.contains(&format!("{:.1}%", risk * 100.0)));
        assert!(page.body.contains("id=\"timeline\""));
        assert!(
            page.body.contains("Subscription Started"),
            "the timeline lists the log's events"
        );
        let page = browser.get("/dashboard/customers/nobody").await;
        assert_eq!(page.status, 404);
        assert!(page.body.contains("no customer `nobody`"));
        app.stop();
    }
}

#[tokio::test]
async fn the_segment_editor_previews_and_saves_only_with_the_sessions_token() {
    let events = demo_events(1500, 18, 7, END);
    for db in databases() {
        let app = TestApp::spawn_at(&db, END).await;
        app.post_in_batches(&events).await;
        let mut browser = Browser::new(&app);
        browser.login(&app.admin_key, "/dashboard").await;
        let page = browser.get("/dashboard/segments").await;
        assert!(
            page.body.contains("No segments yet"),
            "the empty state says what to do"
        );
        let editor = browser.get("/dashboard/segments/new").await;
        let csrf = hidden(&editor.body, "csrf");
        let definition = r#"{"computed": "status", "op": "eq", "value": "active"}"#;

        // Without the token nothing is saved.
        let page = browser
            .post(
                "/dashboard/segments/edit",
                &[
                    ("csrf", "forged"),
                    ("name", "Active"),
                    ("definition", definition),
                    ("action", "save"),
                ],
            )
            .await;
        assert_eq!(page.status, 403);
        let (_, listed) = app.get("/v1/segments", &app.admin_key).await;
        assert_eq!(listed["segments"].as_array().unwrap().len(), 0);

        // A preview counts what the API counts, and saves nothing.
        let page = browser
            .post(
                "/dashboard/segments/edit",
                &[
                    ("csrf", &csrf),
                    ("name", "Active"),
                    ("definition", definition),
                    ("action", "preview"),
                ],
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let (_, preview) = app
            .post(
                "/v1/segments/preview",
                &app.admin_key,
                &json!({"definition": serde_json::from_str::<Value>(definition).unwrap()}),
            )
            .await;
        let count = preview["count"].as_u64().unwrap();
        assert!(count > 0);
        assert!(
            page.body
                .contains(&format!("data-field=\"preview.count\">{}<", grouped(count))),
            "{}",
            page.body
        );
        let (_, listed) = app.get("/v1/segments", &app.admin_key).await;
        assert_eq!(listed["segments"].as_array().unwrap().len(), 0);

        // A bad definition is shown in the editor, which keeps what was typed.
        let page = browser
            .post(
                "/dashboard/segments/edit",
                &[
                    ("csrf", &csrf),
                    ("name", "Broken"),
                    ("definition", r#"{"computed": "mood"}"#),
                    ("action", "save"),
                ],
            )
            .await;
        assert_eq!(page.status, 400);
        assert!(page.body.contains("mood"), "{}", page.body);
        assert!(page.body.contains("value=\"Broken\""));

        // Saving backfills through the writer and opens the segment's page.
        let page = browser
            .post(
                "/dashboard/segments/edit",
                &[
                    ("csrf", &csrf),
                    ("name", "Active"),
                    ("definition", definition),
                    ("action", "save"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let location = page.location.unwrap();
        let (_, listed) = app.get("/v1/segments", &app.admin_key).await;
        let saved = &listed["segments"][0];
        assert_eq!(
            location,
            format!("/dashboard/segments/{}", saved["id"].as_str().unwrap())
        );
        assert_eq!(saved["members"].as_u64().unwrap(), count);
        let page = browser.get(&location).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("id=\"members\""));
        let page = browser.get("/dashboard/segments").await;
        assert!(page.body.contains(&format!("data-members=\"{count}\"")));
        // The segment filters the overview like the API's `segment` parameter.
        let page = browser
            .get(&format!(
                "/dashboard?segment={}",
                saved["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(page.status, 200);
        app.stop();
    }
}

#[tokio::test]
async fn a_session_sees_only_its_own_workspace() {
    let events = demo_events(1500, 18, 7, END);
    for db in databases() {
        let app = TestApp::spawn_at(&db, END).await;
        app.post_in_batches(&events).await;
        let other = app.other_workspace_key().await;
        let mut browser = Browser::new(&app);
        browser.login(&other, "/dashboard").await;
        // The other workspace has no customers: the demo's are nowhere on its pages.
        let page = browser.get("/dashboard").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("No subscriptions yet"), "{}", page.body);
        let page = browser.get("/dashboard/customers/user_000001").await;
        assert_eq!(page.status, 404);
        let page = browser.get("/dashboard/value").await;
        assert!(
            !page.body.contains("user_0000"),
            "no customer of another workspace"
        );
        let page = browser.get("/dashboard/voice").await;
        assert!(page.body.contains("No surveys yet"));
        app.stop();
    }
}

/// Issue 17, item 8: the login accepted an empty CSRF token when the cookie and the field
/// were both empty, and the session cookie lacked `Secure` behind HTTPS.
#[tokio::test]
async fn an_empty_csrf_token_is_refused_and_cookies_are_secure_behind_https() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let body = format!("key={}&csrf=&next=%2Fdashboard", app.admin_key);
        let response = client
            .post(format!("{}/dashboard/login", app.base))
            .header("cookie", "tenure_login_csrf=")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.contains("error=form"), "{location}");
        assert!(
            !response
                .headers()
                .get_all("set-cookie")
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("tenure_session=")),
            "no session from an empty token"
        );
        let cookie_of = |proto: Option<&'static str>| {
            let mut request = client.get(format!("{}/dashboard/login", app.base));
            if let Some(proto) = proto {
                request = request.header("x-forwarded-proto", proto);
            }
            async move {
                let response = request.send().await.unwrap();
                response.headers()["set-cookie"]
                    .to_str()
                    .unwrap()
                    .to_owned()
            }
        };
        let secure = |cookie: String| cookie.split("; ").any(|a| a == "Secure");
        assert!(secure(cookie_of(Some("https")).await));
        assert!(!secure(cookie_of(None).await));
        app.stop();
    }
}

/// Issue 17, item 6: a revoked admin key's dashboard sessions stayed valid.
#[tokio::test]
async fn revoking_an_admin_key_ends_its_dashboard_sessions() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        let (_, created) = app
            .post(
                "/v1/keys",
                &app.admin_key,
                &json!({"kind": "admin", "name": "ana"}),
            )
            .await;
        let secret = created["secret"].as_str().unwrap().to_owned();
        let mut browser = Browser::new(&app);
        let page = browser.login(&secret, "/dashboard/segments").await;
        assert_eq!(page.location.as_deref(), Some("/dashboard/segments"));
        assert_eq!(browser.get("/dashboard/segments").await.status, 200);
        let id = created["id"].as_str().unwrap();
        assert_eq!(
            app.delete(&format!("/v1/keys/{id}"), &app.admin_key).await,
            204
        );
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let page = browser.get("/dashboard/segments").await;
        assert_eq!(page.status, 303, "{}: the session ended", app.backend);
        assert!(page.location.unwrap().starts_with("/dashboard/login"));
        app.stop();
    }
}
