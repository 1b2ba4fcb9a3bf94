//! Every route of the router, walked with no key, a write key, another workspace's admin
//! key, a wrong key and a revoked key (issue 17, item 7). The routes are read from the source, so a route
//! added later is walked without anyone remembering to add it here. A route that is neither
//! public, nor ingestion, nor the dashboard (session-only) must refuse all but an admin key
//! of its workspace, and no answer to another workspace may carry this workspace's data.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, databases};
use serde_json::{Value, json};

/// The customer's user id, used in probed paths (an answer may echo it back).
const MARKER: &str = "walk-secret";
/// Data the probes never send: an answer that holds it leaked it.
const CANARY: &str = "leak-canary";

/// Every path literal in the server's routing code.
fn routes() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut files = vec![format!("{root}/lib.rs")];
    for dir in ["routes", "dashboard", "dashboard/pages"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path.display().to_string());
            }
        }
    }
    let mut paths = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for literal in text.split('"').skip(1).step_by(2) {
            let route_like = ["/v1/", "/dashboard", "/health"]
                .iter()
                .any(|p| literal.starts_with(p))
                || literal == "/";
            let clean = literal
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-_.{}".contains(c))
                && !literal.contains("{}");
            if route_like && clean {
                paths.insert(literal.to_owned());
            }
        }
    }
    assert!(paths.len() > 40, "{paths:?}");
    paths.into_iter().collect()
}

#[derive(Debug, PartialEq)]
enum Kind {
    Public,
    Ingest,
    Dashboard,
    Admin,
}

fn kind(path: &str) -> Kind {
    // The browser library's settings are authenticated by the write key in their path.
    const PUBLIC: [&str; 8] = [
        "/v1/projects/{write_key}/settings",
        "/",
        "/health",
        "/health/live",
        "/health/ready",
        "/dashboard/login",
        "/v1/m",
        "/v1/openapi.json",
    ];
    const INGEST: [&str; 15] = [
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/import",
        "/v1/i",
        "/v1/t",
        "/v1/p",
        "/v1/s",
        "/v1/g",
        "/v1/a",
        "/v1/b",
    ];
    if PUBLIC.contains(&path) || path.starts_with("/dashboard/assets/") {
        Kind::Public
    } else if INGEST.contains(&path) {
        Kind::Ingest
    } else if path.starts_with("/dashboard") {
        Kind::Dashboard
    } else {
        Kind::Admin
    }
}

#[tokio::test]
async fn every_route_refuses_the_wrong_caller_and_never_leaks_another_workspace() {
    for db in databases() {
        let app = TestApp::spawn(&db).await;
        // This workspace's data, named so that any leak shows.
        let (status, _) = app
            .post(
                "/v1/identify",
                &app.write_key,
                &json!({"userId": MARKER, "traits": {"email": format!("{CANARY}@example.com")}}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, segment) = app
            .post(
                "/v1/segments",
                &app.admin_key,
                &json!({"name": format!("{CANARY}-segment"), "definition": {"trait": "email", "op": "exists"}}),
            )
            .await;
        assert_eq!(status, 201, "{segment}");
        let segment_id = segment["id"].as_str().unwrap().to_owned();
        let (_, task) = app.post("/v1/risk/train", &app.admin_key, &json!({})).await;
        let task_id = task["task"]["id"].as_str().unwrap_or("task_1").to_owned();
        let other_admin = app.other_workspace_key().await;
        let (_, revoked) = app
            .post(
                "/v1/keys",
                &app.admin_key,
                &json!({"kind": "admin", "name": "leaked"}),
            )
            .await;
        let revoked_secret = revoked["secret"].as_str().unwrap().to_owned();
        let revoked_id = revoked["id"].as_str().unwrap();
        assert_eq!(
            app.delete(&format!("/v1/keys/{revoked_id}"), &app.admin_key)
                .await,
            204
        );

        let fill = |path: &str| {
            path.replace("{write_key}", &app.write_key)
                .replace("{table}", "subscriptions")
                .replace("{name}", &format!("{MARKER}-model"))
                .replace(
                    "{id}",
                    if path.contains("segments") {
                        &segment_id
                    } else if path.contains("tasks") {
                        &task_id
                    } else {
                        MARKER
                    },
                )
        };
        // Unauthenticated probes come from many loopback addresses, so that the
        // failed-authentication throttle (30 a minute per address) is not what answers.
        let clients: Vec<reqwest::Client> = (2..=250u8)
            .map(|n| {
                reqwest::Client::builder()
                    .local_address(std::net::IpAddr::from([127, 0, 0, n]))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap()
            })
            .collect();
        let mut probe = 0usize;
        let mut walked = 0;
        for path in routes() {
            let url = format!("{}{}", app.base, fill(&path));
            for method in ["GET", "POST", "PUT", "DELETE"] {
                for (who, key) in [
                    ("no key", None),
                    ("a wrong key", Some("tnr_a_wrongwrongwrongwrongwrong")),
                    ("a revoked key", Some(revoked_secret.as_str())),
                    ("a write key", Some(app.write_key.as_str())),
                    ("another workspace's admin key", Some(other_admin.as_str())),
                ] {
                    probe += 1;
                    let client = &clients[probe % clients.len()];
                    let mut request = client
                        .request(method.parse().unwrap(), &url)
                        .header("content-type", "application/json")
                        .body("{}");
                    if let Some(key) = key {
                        request = request.bearer_auth(key);
                    }
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap_or_default();
                    let what = format!("{} {method} {path} with {who}: {status}", app.backend);
                    assert!(status != 500, "{what}: {body}");
                    let ours = app.workspace.as_str();
                    assert!(
                        !body.contains(CANARY) && !body.contains(ours),
                        "{what} leaked this workspace's data: {body}"
                    );
                    if status == 405 || status == 404 && kind(&path) == Kind::Public {
                        continue;
                    }
                    walked += 1;
                    match (kind(&path), who) {
                        (Kind::Public, _) => {}
                        (Kind::Dashboard, _) => assert!(
                            matches!(status, 303 | 403),
                            "{what}: the dashboard takes a session, never a key"
                        ),
                        (_, "no key" | "a wrong key" | "a revoked key") => {
                            assert_eq!(status, 401, "{what}: {body}")
                        }
                        (Kind::Admin, "a write key") => {
                            assert_eq!(status, 403, "{what}: {body}")
                        }
                        (Kind::Ingest, "a write key") => {
                            assert!(status != 401 && status != 403, "{what}: {body}")
                        }
                        _ => {}
                    }
                }
            }
        }
        assert!(walked > 200, "{walked} probes answered");
        let (status, _) = app
            .get("/v1/projects/tnr_w_wrongwrongwrong/settings", "")
            .await;
        assert_eq!(
            status, 401,
            "the settings need a valid write key in their path"
        );
        // Another workspace's admin key changed nothing here.
        let (status, kept) = app
            .get(&format!("/v1/segments/{segment_id}"), &app.admin_key)
            .await;
        assert_eq!(status, 200, "{kept}");
        let (status, customer) = app
            .get(&format!("/v1/customers/{MARKER}"), &app.admin_key)
            .await;
        assert_eq!(status, 200, "{customer}");
        let _: Value = customer;
        app.stop();
    }
}
