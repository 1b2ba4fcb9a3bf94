//! Clients posting prepared `/v1/batch` bodies to a server, shared by the ingest and hostile
//! benchmarks: `concurrency` tasks take the next body in turn until there is none left (or
//! `until` has passed), each answer must be 200, and every request's latency is returned,
//! sorted.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub async fn post_batches(
    client: &reqwest::Client,
    (base, key): (&str, &str),
    bodies: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    concurrency: usize,
    until: Option<Instant>,
) -> Vec<Duration> {
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, bodies, next, base, key) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            base.to_owned(),
            key.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while until.is_none_or(|u| Instant::now() < u) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let response = client
                    .post(format!("{base}/v1/batch"))
                    .basic_auth(&key, Some(""))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    response.status(),
                    200,
                    "{}",
                    response.text().await.unwrap_or_default()
                );
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    latencies
}
