use super::*;
use serde_json::json;
use tenure_core::Envelope;
use tenure_store::Store;

fn message(id: &str) -> Message {
    Message::parse(
        json!({"type": "track", "userId": "u1", "event": "Logged In", "messageId": id}),
        None,
        Envelope {
            received_at: 1_700_000_000_000,
            batch_sent_at: None,
        },
    )
    .unwrap()
}

/// Issue 16, item 7: a panic in the writer stopped ingestion for good.
#[test]
fn a_panic_in_a_job_is_contained_and_the_engine_is_folded_again() {
    let dir = std::env::temp_dir().join(format!("tenure_writer_panic_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(tenure_store::DatabaseUrl::Sqlite(dir.join("t.db"))).unwrap();
    let ws = crate::admin::create_workspace(&store, "w", 0).unwrap().id;
    let engines = Engines::new(store.clone());
    let (ingestor, writer) =
        Ingestor::start(&store, engines.clone(), Arc::new(crate::SystemClock)).unwrap();
    ingestor
        .append_blocking(ws.clone(), vec![message("m1")])
        .unwrap();

    let (reply, answer) = oneshot::channel::<Result<(), WriteError>>();
    drop(reply);
    ingestor
        .sender
        .blocking_send(Job::Panic(ws.clone()))
        .unwrap();
    assert!(answer.blocking_recv().is_err());

    let outcome = ingestor.append_blocking(ws.clone(), vec![message("m2")]);
    assert!(
        matches!(outcome.as_deref(), Ok([Outcome::Stored { .. }])),
        "{outcome:?}"
    );
    assert!(ingestor.is_running());
    let engine = engines.get(&ws).unwrap();
    let engine = engine.read().expect("the poisoned lock was recovered");
    assert_eq!(engine.find("u1").map(|c| c.event_total), Some(2));
    drop(engine);
    drop(ingestor);
    writer.join().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
