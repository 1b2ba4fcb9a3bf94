//! Kill -9 the server while clients send batches; every acknowledged event must be in the
//! log exactly once after a restart, and every batch must be all-or-nothing.
#![allow(clippy::unwrap_used)]

#[path = "../../tenure-server/tests/support/db.rs"]
mod db;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use db::{TestDb, databases};
use serde_json::{Value, json};
use tenure_store::Store;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(db: &TestDb, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("TENURE_DATABASE_URL", db.url_text())
        .env("TENURE_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} did not become healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_exactly_once() {
    for db in databases() {
        let url = db.url();
        let (store, write_key) = tokio::task::spawn_blocking(move || {
            let store = Store::open(url).unwrap();
            let ws = tenure_server::admin::create_workspace(&store, "crash", 0).unwrap();
            let (_, key) =
                tenure_server::admin::create_key(&store, &ws.id, tenure_store::KeyKind::Write, 0)
                    .unwrap();
            (store, key)
        })
        .await
        .unwrap();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut server = start_server(&db, port);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        wait_healthy(&client, &base).await;

        // batch id -> (size, acknowledged)
        let batches: Arc<Mutex<HashMap<String, (usize, bool)>>> = Arc::default();
        let mut senders = Vec::new();
        for sender in 0..4 {
            let (client, base, key, batches) = (
                client.clone(),
                base.clone(),
                write_key.clone(),
                batches.clone(),
            );
            senders.push(tokio::spawn(async move {
                for n in 0..10_000 {
                    let batch_id = format!("s{sender}-b{n}");
                    let size = 20 + (n % 30);
                    let events: Vec<Value> = (0..size)
                        .map(|i| json!({"type": "track", "userId": format!("u{}", i % 7), "event": "Crash Test",
                                        "messageId": format!("{batch_id}-e{i}"), "properties": {"batch": batch_id, "i": i}}))
                        .collect();
                    batches.lock().unwrap().insert(batch_id.clone(), (size, false));
                    let sent = client.post(format!("{base}/v1/batch")).basic_auth(&key, Some("")).json(&json!({"batch": events})).send().await;
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            batches.lock().unwrap().insert(batch_id, (size, true));
                        }
                        _ => return,
                    }
                }
            }));
        }
        // Let the clients get going, then pull the plug mid-stream.
        let deadline = Instant::now() + Duration::from_secs(30);
        while batches
            .lock()
            .unwrap()
            .values()
            .filter(|(_, acked)| *acked)
            .count()
            < 60
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        for s in senders {
            let _ = s.await;
        }

        // Restart: the server must come up on the log as it was left.
        let mut restarted = start_server(&db, port);
        wait_healthy(&client, &base).await;
        let ws = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                store.with(|c| c.workspaces()).unwrap().remove(0).id
            })
            .await
            .unwrap()
        };
        let events = {
            let (store, ws) = (store.clone(), ws.clone());
            tokio::task::spawn_blocking(move || {
                store.with(|c| c.events_after(&ws, 0, 10_000_000)).unwrap()
            })
            .await
            .unwrap()
        };
        let mut per_batch: HashMap<String, usize> = HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for e in &events {
            assert!(
                ids.insert(e.message_id.clone()),
                "{}: {} stored twice",
                db.name(),
                e.message_id
            );
            let message = e.message().unwrap();
            let batch = message.properties().unwrap()["batch"]
                .as_str()
                .unwrap()
                .to_owned();
            *per_batch.entry(batch).or_default() += 1;
        }
        let batches = batches.lock().unwrap();
        let acked = batches.values().filter(|(_, a)| *a).count();
        assert!(
            acked >= 60,
            "{}: only {acked} batches acknowledged before the kill",
            db.name()
        );
        for (batch, (size, was_acked)) in batches.iter() {
            let stored = per_batch.get(batch).copied().unwrap_or(0);
            if *was_acked {
                assert_eq!(
                    stored,
                    *size,
                    "{}: acknowledged batch {batch} lost events",
                    db.name()
                );
            } else {
                assert!(
                    stored == 0 || stored == *size,
                    "{}: batch {batch} half-written ({stored} of {size})",
                    db.name()
                );
            }
        }
        eprintln!(
            "{}: {acked} batches acknowledged before kill -9, {} events in the log after restart",
            db.name(),
            events.len()
        );
        restarted.kill().unwrap();
        restarted.wait().unwrap();
    }
}
