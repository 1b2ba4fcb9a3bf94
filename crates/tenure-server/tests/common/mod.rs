//! Test harness: the real `Application` on port 0, on a fresh database per test, for each
//! backend (see `support/db.rs`).
#![allow(dead_code, clippy::unwrap_used)]

#[path = "../support/db.rs"]
mod db;
pub use db::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tenure_core::WorkspaceId;
use tenure_core::time::{Clock, Millis};
use tenure_server::{Application, Settings, SystemClock};
use tenure_store::{KeyKind, Store};

/// A clock the test can move.
#[derive(Clone)]
pub struct TestClock(pub Arc<AtomicU64>);

impl Clock for TestClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst) as Millis
    }
}

pub struct TestApp {
    pub base: String,
    pub workspace: WorkspaceId,
    pub admin_key: String,
    pub write_key: String,
    pub store: Store,
    pub client: reqwest::Client,
    pub backend: &'static str,
    pub server: tokio::task::JoinHandle<()>,
}

impl TestApp {
    pub async fn spawn(db: &TestDb) -> TestApp {
        Self::spawn_with_clock(db, Arc::new(SystemClock)).await
    }

    /// The application with its clock stopped at `instant` (RFC 3339).
    pub async fn spawn_at(db: &TestDb, instant: &str) -> TestApp {
        let now = tenure_core::time::parse_instant(instant).unwrap();
        Self::spawn_with_clock(
            db,
            Arc::new(TestClock(Arc::new(AtomicU64::new(now as u64)))),
        )
        .await
    }

    pub async fn spawn_with_clock(db: &TestDb, clock: Arc<dyn Clock>) -> TestApp {
        Self::spawn_with(db, clock, Default::default()).await
    }

    /// The application with these connection and timeout limits.
    pub async fn spawn_with_limits(db: &TestDb, limits: tenure_server::serve::Limits) -> TestApp {
        Self::spawn_with(db, Arc::new(SystemClock), limits).await
    }

    pub async fn spawn_with(
        db: &TestDb,
        clock: Arc<dyn Clock>,
        limits: tenure_server::serve::Limits,
    ) -> TestApp {
        let url = db.url();
        let (store, workspace, admin_key, write_key) = tokio::task::spawn_blocking(move || {
            let store = Store::open(url).unwrap();
            let existing = store.with(|c| c.workspaces()).unwrap();
            let ws = match existing.into_iter().next() {
                Some(ws) => ws,
                None => tenure_server::admin::create_workspace(&store, "test", 0).unwrap(),
            };
            let (_, admin) =
                tenure_server::admin::create_key(&store, &ws.id, KeyKind::Admin, 0).unwrap();
            let (_, write) =
                tenure_server::admin::create_key(&store, &ws.id, KeyKind::Write, 0).unwrap();
            (store, ws.id, admin, write)
        })
        .await
        .unwrap();
        let settings = Settings {
            database: db.url(),
            listen: "127.0.0.1:0".parse().unwrap(),
            clock,
            // The schedule is tested through `retrain_due`; a test server trains on demand.
            risk_retrain_days: None,
            limits,
        };
        let app = Application::build(settings).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let server = tokio::spawn(async move {
            let _ = app.run_until_stopped().await;
        });
        TestApp {
            base,
            workspace,
            admin_key,
            write_key,
            store,
            client: reqwest::Client::new(),
            backend: db.name(),
            server,
        }
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .basic_auth(key, Some(""))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, key: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .basic_auth(key, Some(""))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends messages as `/v1/batch` requests of 400 (within the 500 KB limit); each must be
    /// stored whole.
    pub async fn post_in_batches(&self, messages: &[Value]) {
        for chunk in messages.chunks(400) {
            let (status, body) = self
                .post(
                    "/v1/batch",
                    &self.write_key,
                    &serde_json::json!({"batch": chunk}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }

    /// A request with the admin-style bearer key and an optional JSON body: status and
    /// the JSON answer (`Null` when there is none).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, key, None).await
    }

    pub async fn put(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, key, Some(body)).await
    }

    pub async fn delete_json(&self, path: &str, key: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, key, None).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> u16 {
        self.send(reqwest::Method::DELETE, path, key, None).await.0
    }

    /// `POST /v1/risk/train`, then polls its task until it finishes: the answer's status and
    /// body when it is refused at once, else `(200, result)` or `(status of its error, error)`.
    pub async fn train_risk(&self, key: &str, options: &Value) -> (u16, Value) {
        let (status, accepted) = self.post("/v1/risk/train", key, options).await;
        if status != 202 {
            return (status, accepted);
        }
        let id = accepted["task"]["id"].as_str().unwrap().to_owned();
        let started = std::time::Instant::now();
        loop {
            let (_, task) = self.get(&format!("/v1/tasks/{id}"), key).await;
            match task["status"].as_str() {
                Some("succeeded") => return (200, task["result"].clone()),
                Some("failed") => {
                    let code = task["error"]["code"].as_str().unwrap_or("").to_owned();
                    let status = match code.as_str() {
                        "not_enough_history" => 422,
                        "invalid_request" => 400,
                        _ => 500,
                    };
                    return (status, serde_json::json!({"error": task["error"]}));
                }
                _ => {
                    assert!(
                        started.elapsed() < std::time::Duration::from_secs(300),
                        "training did not finish: {task}"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
    }

    pub async fn event_count(&self) -> u64 {
        let store = self.store.clone();
        let ws = self.workspace.clone();
        tokio::task::spawn_blocking(move || store.with(|c| c.event_count(&ws)).unwrap())
            .await
            .unwrap()
    }

    pub fn stop(self) {
        self.server.abort();
    }

    /// A second workspace with an admin key (for tests that one never sees the other).
    pub async fn other_workspace_key(&self) -> String {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let ws = tenure_server::admin::create_workspace(&store, "other", 0).unwrap();
            tenure_server::admin::create_key(&store, &ws.id, KeyKind::Admin, 0)
                .unwrap()
                .1
        })
        .await
        .unwrap()
    }
}

/// The demo business's events: `customers` over `months` ending at `end` (RFC 3339).
pub fn demo_events(customers: usize, months: u32, seed: u64, end: &str) -> Vec<Value> {
    let business = tenure_core::demo::DemoBusiness::new(tenure_core::demo::DemoConfig {
        customers,
        months,
        seed,
        end: tenure_core::time::parse_instant(end).unwrap(),
    });
    business.customers().flat_map(|c| c.events).collect()
}
