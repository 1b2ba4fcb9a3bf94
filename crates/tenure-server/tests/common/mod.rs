//! Test harness: the real `Application` on port 0, on a fresh database per test, for each
//! backend. PostgreSQL tests run against the server at `TENURE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each creates and drops its own database.
//! Without a reachable server they are skipped with a message, except under `CI=true`,
//! where a missing server is a failure.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tenure_core::WorkspaceId;
use tenure_core::time::{Clock, Millis};
use tenure_server::{Application, Settings, SystemClock};
use tenure_store::{DatabaseUrl, KeyKind, Store};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A fresh, empty database that is removed when dropped.
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub fn url(&self) -> DatabaseUrl {
        match self {
            TestDb::Sqlite(path) => DatabaseUrl::Sqlite(path.clone()),
            TestDb::Postgres { admin_url, name } => {
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                DatabaseUrl::Postgres(format!("{base}/{name}"))
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            TestDb::Sqlite(_) => "sqlite",
            TestDb::Postgres { .. } => "postgres",
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            TestDb::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // The sync client must not run on an async thread.
                let _ = std::thread::spawn(move || {
                    if let Ok(mut c) = postgres::Client::connect(&admin_url, postgres::NoTls) {
                        let _ = c
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                    }
                })
                .join();
            }
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("TENURE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Every backend this machine can test: SQLite always, PostgreSQL when reachable.
pub fn databases() -> Vec<TestDb> {
    let dir = std::env::temp_dir().join(unique("tenure_test"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut dbs = vec![TestDb::Sqlite(dir.join("tenure.db"))];
    let admin_url = postgres_admin_url();
    let name = unique("tenure_t").to_lowercase();
    let created = {
        let (admin_url, name) = (admin_url.clone(), name.clone());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin_url, postgres::NoTls)?;
            c.batch_execute(&format!("CREATE DATABASE {name}"))
        })
        .join()
        .unwrap()
    };
    match created {
        Ok(()) => dbs.push(TestDb::Postgres { admin_url, name }),
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but PostgreSQL at {admin_url} is not usable: {e}");
            }
            eprintln!(
                "SKIPPED PostgreSQL tests: no server at {admin_url} ({e}); set TENURE_TEST_POSTGRES to run them"
            );
        }
    }
    dbs
}

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

    pub async fn spawn_with_clock(db: &TestDb, clock: Arc<dyn Clock>) -> TestApp {
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

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
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
}
