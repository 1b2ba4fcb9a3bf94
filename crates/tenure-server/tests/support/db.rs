//! A fresh database per test, for each backend. PostgreSQL tests run against the server at
//! `TENURE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`); each test
//! creates and drops its own database. Without a reachable server they are skipped with a
//! message, except under `CI=true`, where a missing server is a failure.
//!
//! Shared by the server's and the binary's tests (`#[path]`-included).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use tenure_store::DatabaseUrl;

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

    /// The URL as the CLI takes it (`--database` / `TENURE_DATABASE_URL`).
    pub fn url_text(&self) -> String {
        match self.url() {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => url,
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
