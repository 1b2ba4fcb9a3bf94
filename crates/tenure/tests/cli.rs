//! The `tenure` command line, on every backend.
#![allow(clippy::unwrap_used)]

#[path = "../../tenure-server/tests/support/db.rs"]
mod db;

use std::process::{Command, Output};

use db::{TestDb, databases};
use serde_json::{Value, json};

fn tenure(db: &TestDb, args: &[&str]) -> Output {
    let dir = std::env::temp_dir();
    Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .env("TENURE_DATABASE_URL", db.url_text())
        .env("TENURE_LOG", "warn")
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(db::unique("tenure_cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn event_count(db: &TestDb) -> u64 {
    let url = db.url();
    std::thread::spawn(move || {
        let store = tenure_store::Store::open(url).unwrap();
        let ws = store.with(|c| c.workspaces()).unwrap().remove(0);
        store.with(|c| c.event_count(&ws.id)).unwrap()
    })
    .join()
    .unwrap()
}

#[test]
fn workspaces_and_keys_are_created_with_json_output() {
    for db in databases() {
        let out = tenure(&db, &["workspace", "create", "Acme", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ws: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert!(ws["id"].as_str().unwrap().starts_with("ws_"));
        // --workspace may be omitted when there is only one.
        let out = tenure(&db, &["keys", "create", "--kind", "write", "--json"]);
        let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert!(key["secret"].as_str().unwrap().starts_with("tnr_w_"));
        assert_eq!(key["workspace"], ws["id"]);
        let dup = tenure(&db, &["workspace", "create", "Acme"]);
        assert!(!dup.status.success());
        assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
        tenure(&db, &["workspace", "create", "Second"]);
        let ambiguous = tenure(&db, &["keys", "create", "--kind", "admin"]);
        assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("say which with --workspace"));
        let named = tenure(
            &db,
            &[
                "keys",
                "create",
                "--kind",
                "admin",
                "--workspace",
                "Second",
                "--json",
            ],
        );
        assert!(named.status.success());
        let list: Value =
            serde_json::from_str(&stdout(&tenure(&db, &["workspace", "list", "--json"]))).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 2);
        let migrated: Value =
            serde_json::from_str(&stdout(&tenure(&db, &["migrate", "--json"]))).unwrap();
        assert_eq!(
            migrated["applied"],
            json!([]),
            "already migrated by the first command"
        );
        assert_eq!(migrated["database"], db.name());
    }
}

#[test]
fn a_jsonl_import_reports_bad_lines_and_never_duplicates() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "shop"]);
        let file = write_file(
            "events.jsonl",
            concat!(
                "{\"type\":\"identify\",\"userId\":\"c1\",\"traits\":{\"email\":\"c1@x.y\"},\"timestamp\":\"2025-01-01T00:00:00Z\"}\n",
                "{\"type\":\"track\",\"userId\":\"c1\",\"event\":\"Order Completed\",\"properties\":{\"order_id\":\"o1\",\"revenue\":10,\"currency\":\"USD\"},\"receivedAt\":\"2025-01-02T00:00:00Z\"}\n",
                "{\"type\":\"track\",\"userId\":\"c1\",\"event\":\"Order Completed\",\"properties\":{\"order_id\":\"o2\"}}\n",
                "\n",
                "not json\n",
                "{\"type\":\"track\",\"anonymousId\":\"a9\",\"event\":\"Viewed\",\"timestamp\":\"2025-01-01T00:00:00Z\"}\n",
            ),
        );
        let path = file.to_str().unwrap();
        let out = tenure(&db, &["import", path, "--format", "jsonl", "--quiet"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "rejected rows make the exit status 1"
        );
        let report = stdout(&out);
        assert!(
            report.contains("5 rows: 3 stored, 0 already there (skipped), 2 rejected"),
            "{report}"
        );
        assert!(report.contains("line 3 `properties.currency`"), "{report}");
        assert!(report.contains("line 5: not valid JSON"), "{report}");
        assert_eq!(event_count(&db), 3);

        let again = tenure(&db, &["import", path, "--format", "jsonl", "--json"]);
        let report: Value = serde_json::from_str(&stdout(&again)).unwrap();
        assert_eq!(
            (report["stored"].as_u64(), report["duplicates"].as_u64()),
            (Some(0), Some(3)),
            "{}: {report}",
            db.name()
        );
        assert_eq!(
            event_count(&db),
            3,
            "re-running the import stored nothing twice"
        );
    }
}

#[test]
fn a_csv_import_maps_columns_and_is_idempotent() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "saas"]);
        let orders = write_file(
            "orders.csv",
            "customer,order_id,revenue,currency,timestamp\nc1,o1,19.99,USD,2025-03-01T10:00:00Z\nc2,o2,abc,USD,2025-03-02\nc1,o3,5,EUR,2025-03-04\n",
        );
        let path = orders.to_str().unwrap();
        let args = [
            "import",
            path,
            "--format",
            "csv",
            "--kind",
            "orders",
            "--map",
            "user_id=customer",
            "--json",
        ];
        let out = tenure(&db, &args);
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(report["stored"], 2);
        assert_eq!(report["errors"][0]["line"], 3, "the header is line 1");
        assert_eq!(report["errors"][0]["errors"][0]["field"], "revenue");
        let again: Value = serde_json::from_str(&stdout(&tenure(&db, &args))).unwrap();
        assert_eq!(again["stored"], 0);
        assert_eq!(again["duplicates"], 2);

        let subs = write_file(
            "subscriptions.csv",
            "user_id,subscription_id,event,plan,interval,amount,currency,timestamp\nc1,s1,started,pro,month,49,USD,2025-01-01\nc1,s1,cancelled,,,,,2025-02-10\n",
        );
        let out = tenure(
            &db,
            &[
                "import",
                subs.to_str().unwrap(),
                "--format",
                "csv",
                "--kind",
                "subscriptions",
                "--json",
            ],
        );
        assert!(out.status.success(), "{}", stdout(&out));

        let missing = tenure(
            &db,
            &["import", path, "--format", "csv", "--kind", "orders"],
        );
        assert!(String::from_utf8_lossy(&missing.stderr).contains("need a `user_id` column"));
        assert_eq!(event_count(&db), 4);
    }
}

/// The workspace's events as `tenure export` writes them, one JSON value per line.
fn export(db: &TestDb, workspace: &str) -> Vec<Value> {
    let out = tenure(db, &["export", "--workspace", workspace]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn import_json(db: &TestDb, args: &[&str]) -> Value {
    let out = tenure(db, args);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Issue 16, item 1: an event of 2025-03-01 with `sentAt` 5 s later was stored at the
/// import instant.
#[test]
fn an_import_keeps_the_times_of_history_and_an_export_round_trips() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "old"]);
        tenure(&db, &["workspace", "create", "new"]);
        let file = write_file(
            "history.jsonl",
            concat!(
                // A library's output: device time and sentAt, no receivedAt.
                "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Logged In\",\"messageId\":\"m1\",\"timestamp\":\"2025-03-01T00:00:00Z\",\"sentAt\":\"2025-03-01T00:00:05Z\"}\n",
                // A receiver's record: the clock-skew correction against its receivedAt.
                "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Logged In\",\"messageId\":\"m2\",\"timestamp\":\"2025-03-02T02:00:00Z\",\"sentAt\":\"2025-03-02T02:00:10Z\",\"receivedAt\":\"2025-03-02T00:00:10Z\"}\n",
                // A Segment archive: timestamp already corrected, originalTimestamp beside it.
                "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Logged In\",\"messageId\":\"m3\",\"timestamp\":\"2025-03-03T00:00:00Z\",\"originalTimestamp\":\"2025-03-03T09:00:00Z\",\"sentAt\":\"2025-03-03T09:00:01Z\",\"receivedAt\":\"2025-03-03T00:00:01Z\"}\n",
                // No timestamp: it happened when it was received.
                "{\"type\":\"identify\",\"userId\":\"u1\",\"messageId\":\"m4\",\"receivedAt\":\"2025-03-04T00:00:00Z\",\"traits\":{\"plan\":\"pro\"}}\n",
            ),
        );
        let report = import_json(
            &db,
            &[
                "import",
                file.to_str().unwrap(),
                "--format",
                "jsonl",
                "--workspace",
                "old",
                "--json",
            ],
        );
        assert_eq!(report["stored"], 4, "{report}");
        let first = export(&db, "old");
        let times: Vec<&str> = first
            .iter()
            .map(|e| e["timestamp"].as_str().unwrap())
            .collect();
        assert_eq!(
            times,
            [
                "2025-03-01T00:00:00.000Z",
                "2025-03-02T00:00:00.000Z",
                "2025-03-03T00:00:00.000Z",
                "2025-03-04T00:00:00.000Z"
            ],
            "{}",
            db.name()
        );
        assert_eq!(first[1]["receivedAt"], "2025-03-02T00:00:10.000Z");

        let exported = write_file(
            "export.jsonl",
            &first.iter().map(|e| format!("{e}\n")).collect::<String>(),
        );
        let report = import_json(
            &db,
            &[
                "import",
                exported.to_str().unwrap(),
                "--format",
                "jsonl",
                "--workspace",
                "new",
                "--json",
            ],
        );
        assert_eq!(report["stored"], 4, "{report}");
        assert_eq!(
            export(&db, "new"),
            first,
            "{}: export → import → export",
            db.name()
        );
    }
}

/// Issue 16, item 2: 5,000 `Logged In` events without ids were stored as 1.
#[test]
fn identical_rows_without_ids_are_distinct_events_and_a_rerun_stores_none_twice() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "app"]);
        let line = "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Logged In\",\"timestamp\":\"2025-03-01T00:00:00Z\"}\n";
        let jsonl = write_file("logins.jsonl", &line.repeat(5));
        let csv = write_file(
            "logins.csv",
            "user_id,event,timestamp\nu1,Logged In,2025-03-01T00:00:00Z\nu1,Logged In,2025-03-01T00:00:00Z\nu1,Logged In,2025-03-01T00:00:00Z\n",
        );
        let jsonl_args = [
            "import",
            jsonl.to_str().unwrap(),
            "--format",
            "jsonl",
            "--json",
        ];
        let csv_args = [
            "import",
            csv.to_str().unwrap(),
            "--format",
            "csv",
            "--kind",
            "events",
            "--json",
        ];
        assert_eq!(import_json(&db, &jsonl_args)["stored"], 5);
        assert_eq!(import_json(&db, &csv_args)["stored"], 3);
        assert_eq!(event_count(&db), 8);
        let again = import_json(&db, &jsonl_args);
        assert_eq!(
            (again["stored"].as_u64(), again["duplicates"].as_u64()),
            (Some(0), Some(5))
        );
        let again = import_json(&db, &csv_args);
        assert_eq!(
            (again["stored"].as_u64(), again["duplicates"].as_u64()),
            (Some(0), Some(3))
        );
        assert_eq!(event_count(&db), 8, "{}", db.name());
    }
}

/// Issue 16, items 3 and 4: an empty timestamp was stamped with the import time; one line
/// of invalid UTF-8 aborted a JSONL file; a byte-order mark broke line 1; a huge line was
/// buffered whole.
#[test]
fn rows_without_time_bad_bytes_and_huge_lines_are_refused_alone() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "shop"]);
        let csv = write_file(
            "orders.csv",
            "\u{feff}user_id,order_id,revenue,currency,timestamp\nc1,o1,10,USD,2025-01-01\nc1,o2,10,USD,\nc1,o3,10,XYZ,2025-01-02\n",
        );
        let args = [
            "import",
            csv.to_str().unwrap(),
            "--format",
            "csv",
            "--kind",
            "orders",
            "--json",
        ];
        let report = import_json(&db, &args);
        assert_eq!(report["stored"], 1, "{report}");
        assert_eq!(report["errors"][0]["line"], 3);
        assert_eq!(report["errors"][0]["errors"][0]["field"], "timestamp");
        assert!(
            report["errors"][0]["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("--default-timestamp"),
            "{report}"
        );
        assert_eq!(
            report["errors"][1]["errors"][0]["field"],
            "properties.currency"
        );
        let mut with_default = args.to_vec();
        with_default.extend(["--default-timestamp", "2025-01-05T00:00:00Z"]);
        let report = import_json(&db, &with_default);
        assert_eq!(
            (report["stored"].as_u64(), report["duplicates"].as_u64()),
            (Some(1), Some(1))
        );

        let mut bytes = b"\xEF\xBB\xBF{\"type\":\"track\",\"userId\":\"c2\",\"event\":\"A\",\"timestamp\":\"2025-01-01T00:00:00Z\"}\n".to_vec();
        bytes.extend_from_slice(b"{\"type\":\"track\",\"userId\":\"c2\",\"event\":\"B\xFF\",\"timestamp\":\"2025-01-01T00:00:00Z\"}\n");
        bytes.extend_from_slice(format!("{{\"type\":\"track\",\"userId\":\"c2\",\"event\":\"C\",\"properties\":{{\"x\":\"{}\"}}}}\n", "y".repeat(1_100_000)).as_bytes());
        bytes.extend_from_slice(b"{\"type\":\"track\",\"userId\":\"c2\",\"event\":\"D\",\"timestamp\":\"2025-01-01T00:00:00Z\"}\n");
        let jsonl = write_file("mixed.jsonl", "");
        std::fs::write(&jsonl, bytes).unwrap();
        let report = import_json(
            &db,
            &[
                "import",
                jsonl.to_str().unwrap(),
                "--format",
                "jsonl",
                "--json",
            ],
        );
        assert_eq!(report["stored"], 2, "{report}");
        let lines: Vec<u64> = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, [2, 3]);
        assert!(
            report["errors"][0]["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not UTF-8")
        );
        assert!(
            report["errors"][1]["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("longer than")
        );
    }
}

/// Issue 16, item 1: a corrected re-import was answered "duplicate" and the damage stayed.
#[test]
fn an_import_with_replace_repairs_events_stored_wrong() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "shop"]);
        let wrong = write_file(
            "wrong.jsonl",
            "{\"type\":\"track\",\"userId\":\"c1\",\"event\":\"Order Completed\",\"messageId\":\"o1\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"properties\":{\"order_id\":\"o1\",\"revenue\":10,\"currency\":\"USD\"}}\n",
        );
        let right = write_file(
            "right.jsonl",
            concat!(
                "{\"type\":\"track\",\"userId\":\"c1\",\"event\":\"Order Completed\",\"messageId\":\"o1\",\"timestamp\":\"2025-03-01T00:00:00Z\",\"properties\":{\"order_id\":\"o1\",\"revenue\":12,\"currency\":\"USD\"}}\n",
                "{\"type\":\"track\",\"userId\":\"c1\",\"event\":\"Order Completed\",\"messageId\":\"o2\",\"timestamp\":\"2025-03-02T00:00:00Z\",\"properties\":{\"order_id\":\"o2\",\"revenue\":5,\"currency\":\"USD\"}}\n",
            ),
        );
        let hijack = write_file(
            "hijack.jsonl",
            "{\"type\":\"track\",\"userId\":\"c9\",\"event\":\"Order Completed\",\"messageId\":\"o1\",\"timestamp\":\"2025-03-01T00:00:00Z\",\"properties\":{\"order_id\":\"o1\",\"revenue\":1,\"currency\":\"USD\"}}\n",
        );
        import_json(
            &db,
            &[
                "import",
                wrong.to_str().unwrap(),
                "--format",
                "jsonl",
                "--json",
            ],
        );
        let plain = import_json(
            &db,
            &[
                "import",
                right.to_str().unwrap(),
                "--format",
                "jsonl",
                "--json",
            ],
        );
        assert_eq!(
            (plain["stored"].as_u64(), plain["duplicates"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            export(&db, "shop")[0]["timestamp"],
            "2026-01-01T00:00:00.000Z",
            "without --replace the stored event stays"
        );

        let repaired = import_json(
            &db,
            &[
                "import",
                right.to_str().unwrap(),
                "--format",
                "jsonl",
                "--replace",
                "--json",
            ],
        );
        assert_eq!(
            (
                repaired["replaced"].as_u64(),
                repaired["stored"].as_u64(),
                repaired["duplicates"].as_u64()
            ),
            (Some(2), Some(0), Some(0)),
            "{}: {repaired}",
            db.name()
        );
        let events = export(&db, "shop");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["timestamp"], "2025-03-01T00:00:00.000Z");
        assert_eq!(events[0]["properties"]["revenue"], 12);

        let refused = import_json(
            &db,
            &[
                "import",
                hijack.to_str().unwrap(),
                "--format",
                "jsonl",
                "--replace",
                "--json",
            ],
        );
        assert_eq!(refused["rejected"], 1, "{refused}");
        assert_eq!(refused["errors"][0]["errors"][0]["field"], "messageId");
        assert_eq!(
            export(&db, "shop")[0]["userId"],
            "c1",
            "another identity never replaces an event"
        );

        // The engine folds the repaired log: c1's revenue is 12 + 5.
        let out = tenure(&db, &["report", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `tenure demo --no-serve` in `dir` with a small business; its JSON summary.
fn small_demo(dir: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args([
            "demo",
            "--customers",
            "150",
            "--months",
            "12",
            "--seed",
            "3",
            "--end",
            "2026-01-01",
            "--no-serve",
        ])
        .env("TENURE_LOG", "warn")
        .env_remove("TENURE_DATABASE_URL")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn the_demo_loads_a_business_and_exits_with_no_serve() {
    let dir = std::env::temp_dir().join(db::unique("tenure_demo"));
    std::fs::create_dir_all(&dir).unwrap();
    let summary = small_demo(&dir);
    assert_eq!(summary["customers"], 150);
    assert!(summary["events"].as_u64().unwrap() > 5_000);
    assert!(dir.join("tenure-demo.db").exists());
    // Same seed, same business (the default database is recreated on each run).
    let second = small_demo(&dir);
    assert_eq!(second["events"], summary["events"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[path = "../../../tests/support/reference_data.rs"]
mod reference_data;

use reference_data::path as shared_data;

fn clv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["clv", "fit"])
        .args(args)
        .env("TENURE_LOG", "warn")
        .output()
        .unwrap()
}

/// The CDNOW sample as a CSV: customer, date (YYYYMMDD), value.
fn cdnow_csv(name: &str) -> std::path::PathBuf {
    let raw = std::fs::read_to_string(shared_data("cdnow/CDNOW_sample.txt")).unwrap();
    let mut csv = String::from("customer_id,date,value\n");
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        csv.push_str(&format!("{},{},{}\n", f[1], f[2], f[4]));
    }
    write_file(name, &csv)
}

#[test]
fn clv_fit_reads_a_transactions_file_like_lifetimes_users_have() {
    if !reference_data::available("clv_fit_reads_a_transactions_file_like_lifetimes_users_have") {
        return;
    }
    let file = cdnow_csv("cdnow.csv");
    let path = file.to_str().unwrap();
    let out = clv(&[
        path,
        "--model",
        "bgnbd",
        "--value-column",
        "value",
        "--calibration-end",
        "1997-09-30",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["customers_fitted"], 2357);
    let params: Vec<f64> = report["fit"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    // FHL 2005: r = 0.2426, α = 4.4137, a = 0.7930, b = 2.4262 (from the rounded summary).
    for (got, want) in params.iter().zip([0.2426, 4.4137, 0.7930, 2.4262]) {
        assert!((got - want).abs() / want < 1e-3, "{params:?}");
    }
    let holdout = &report["holdout"];
    assert_eq!(
        holdout["actual_repeat_purchases"], 1882.0,
        "weeks 40–78 of the CDNOW sample"
    );
    assert!(holdout["predicted_repeat_purchases"].as_f64().unwrap() > 1500.0);
    assert_eq!(holdout["by_frequency"].as_array().unwrap().len(), 8);

    let gg = clv(&[
        path,
        "--model",
        "gg",
        "--value-column",
        "value",
        "--calibration-end",
        "1997-09-30",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&stdout(&gg)).unwrap();
    assert!(
        (report["fit"]["parameters"][0]["value"].as_f64().unwrap() - 6.25).abs() < 0.05,
        "{report}"
    );

    let missing = clv(&[path, "--model", "gg"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--value-column"));
    let wrong = clv(&[path, "--model", "bgnbd", "--date-column", "day"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no column `day`"));
    let bad = write_file("bad.csv", "customer_id,date\n1,2025-01-01\n2,someday\n");
    let out = clv(&[bad.to_str().unwrap(), "--model", "bgnbd"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3: `someday` is not a date"));
}

#[test]
fn clv_fit_predicts_every_customer_with_clv_and_dert() {
    if !reference_data::available("clv_fit_predicts_every_customer_with_clv_and_dert") {
        return;
    }
    let file = cdnow_csv("cdnow-predict.csv");
    let predictions = file.with_file_name("cdnow-predictions.csv");
    let out = clv(&[
        file.to_str().unwrap(),
        "--model",
        "pnbd",
        "--value-column",
        "value",
        "--calibration-end",
        "1997-09-30",
        "--clv-months",
        "24",
        "--predictions",
        predictions.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let totals = &report["predictions"];
    assert_eq!(totals["horizon_months"], 24);
    // The holdout is predicted per customer from (x, t_x, T); on CDNOW the Pareto/NBD
    // predicts 1,665.5 of the 1,882 repeat purchases of weeks 40–78 (as `lifetimes` does).
    let holdout = &report["holdout"];
    let ratio = holdout["predicted_repeat_purchases"].as_f64().unwrap()
        / holdout["actual_repeat_purchases"].as_f64().unwrap();
    assert!((0.85..1.0).contains(&ratio), "{holdout}");

    let table = std::fs::read_to_string(&predictions).unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "customer_id,frequency,recency,T,monetary_value,probability_alive,expected_purchases,expected_value,clv,dert,dert_clv"
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 2357);
    let column = |i: usize| -> Vec<f64> { rows.iter().map(|r| r[i].parse().unwrap()).collect() };
    let (alive, expected, values, dert) = (column(5), column(6), column(8), column(9));
    assert!(alive.iter().all(|p| (0.0..=1.0).contains(p)));
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs();
    assert!(close(
        sum(&expected),
        totals["expected_purchases"].as_f64().unwrap()
    ));
    assert!(close(sum(&values), totals["clv_total"].as_f64().unwrap()));
    assert!(close(sum(&dert), totals["dert_total"].as_f64().unwrap()));
    // DERT counts every future purchase: more than the next 24 months, discounted or not.
    assert!(
        rows.iter()
            .zip(&dert)
            .zip(&expected)
            .all(|((_, d), e)| d > &(e * 0.9))
    );
    // The paper's customer (x = 2, t_x = 30.43, T = 38.86) is customer 0001 of the sample.
    assert_eq!(rows[0][0], "0001");
    assert_eq!(rows[0][1], "2");

    let bad = clv(&[
        file.to_str().unwrap(),
        "--model",
        "pnbd",
        "--discount-rate",
        "-0.5",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("--discount-rate -0.5 must be a monthly rate")
    );
}

#[test]
fn clv_fit_sbg_projects_cohort_retention() {
    if !reference_data::available("clv_fit_sbg_projects_cohort_retention") {
        return;
    }
    let out = clv(&[
        shared_data("sbg/fader_hardie_2007.csv").to_str().unwrap(),
        "--model",
        "sbg",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["cohorts"], json!(["regular_alive", "highend_alive"]));
    assert_eq!(report["fit"]["converged"], true);
    let survival = report["projection"][12]["survival"].as_f64().unwrap();
    // Both cohorts pooled: between the regular (17.3%) and high-end (39.4%) shares at year 12.
    assert!(survival > 0.17 && survival < 0.40, "{survival}");
}

/// `tenure COMMAND ARGS` in `dir` with nothing configured: (success, stdout, stderr).
fn in_dir(dir: &std::path::Path, command: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .arg(command)
        .args(args)
        .env("TENURE_LOG", "warn")
        .env_remove("TENURE_DATABASE_URL")
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        stdout(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A small demo has too little history for the risk model: the demo says so and goes on;
/// `tenure risk` says how to train; training with a longer horizon works, and the riskiest
/// customers are listed with reasons, as text and JSON.
#[test]
fn risk_is_trained_reported_and_listed_on_a_demo() {
    let dir = std::env::temp_dir().join(db::unique("tenure_risk"));
    std::fs::create_dir_all(&dir).unwrap();
    let summary = small_demo(&dir);
    assert_eq!(summary["risk"], Value::Null, "{summary}");
    let risk = |args: &[&str]| in_dir(&dir, "risk", args);
    let (ok, _, err) = risk(&["report"]);
    assert!(!ok && err.contains("run `tenure risk train`"), "{err}");
    let (ok, _, err) = risk(&["train", "--at", "2026-01-01"]);
    assert!(!ok && err.contains("not enough history"), "{err}");
    let (ok, _, err) = risk(&["train", "--at", "soon"]);
    assert!(!ok && err.contains("--at `soon` is not a date"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args([
            "demo",
            "--customers",
            "1500",
            "--months",
            "18",
            "--seed",
            "7",
        ])
        .args(["--end", "2026-01-01", "--no-serve"])
        .env("TENURE_LOG", "warn")
        .env_remove("TENURE_DATABASE_URL")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text, err) = risk(&["train", "--at", "2026-01-01", "--horizon-days", "60"]);
    assert!(ok, "{err}");
    for expected in [
        "churn within 60 days",
        "Kept: ",
        "recency only (baseline)",
        "gain over the baseline",
        "Calibration",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    let (ok, json_text, err) = risk(&["report", "--json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(report["options"]["horizon_days"], 60);
    let (ok, json_text, err) = risk(&["customers", "--limit", "3", "--json"]);
    assert!(ok, "{err}");
    let ranked: Value = serde_json::from_str(&json_text).unwrap();
    let data = ranked["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert!(
        data.iter()
            .all(|d| !d["prediction"]["reasons"].as_array().unwrap().is_empty())
    );
    let (ok, text, err) = risk(&["customers", "--limit", "3"]);
    assert!(ok, "{err}");
    assert!(
        text.contains("expected to churn within 60 days") && text.lines().count() == 5,
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `tenure apply` stores health models (and segments) from a file, checking everything
/// first; `tenure health` then scores with them.
#[test]
fn apply_loads_health_models_and_segments_from_a_file() {
    let dir = std::env::temp_dir().join(db::unique("tenure_apply"));
    std::fs::create_dir_all(&dir).unwrap();
    small_demo(&dir);
    let onboarding = json!({"name": "onboarding", "priority": 10,
        "applies_to": {"computed": "tenure_days", "op": "lt", "value": 30},
        "components": [{"name": "breadth", "weight": 1,
            "metric": {"kind": "breadth", "window_days": 30},
            "scale": {"type": "curve", "points": [[0, 0], [5, 100]]}}]});
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        json!({"health_models": [onboarding, {"name": "x", "components": []}]}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = in_dir(&dir, "apply", &[bad.to_str().unwrap()]);
    assert!(
        !ok && err.contains("health_models[1]") && err.contains("components"),
        "{err}"
    );
    let file = dir.join("models.json");
    std::fs::write(&file, json!({"health_models": [onboarding],
        "segments": [{"name": "red", "definition": {"computed": "grade", "op": "eq", "value": "red"}}]}).to_string()).unwrap();
    let (ok, text, err) = in_dir(&dir, "apply", &[file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        text.contains("health model onboarding: stored") && text.contains("segment seg_12 red"),
        "{text}"
    );
    let (ok, json_text, err) = in_dir(&dir, "health", &["--at", "2025-12-31", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(v["model"], "onboarding + saas_default");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn health_lists_the_at_risk_customers_of_the_demo() {
    let dir = std::env::temp_dir().join(db::unique("tenure_health"));
    std::fs::create_dir_all(&dir).unwrap();
    small_demo(&dir);
    let health = |args: &[&str]| in_dir(&dir, "health", args);
    let (ok, json_text, err) = health(&["--at", "2025-12-31", "--limit", "5", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&json_text).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap();
    assert!(n("customers") > 20, "{v}");
    assert_eq!(n("red") + n("yellow") + n("green"), n("customers"));
    let at_risk = v["at_risk"].as_array().unwrap();
    assert_eq!(at_risk.len() as u64, n("red").min(5));
    let scores: Vec<f64> = at_risk
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] <= w[1]),
        "lowest first: {scores:?}"
    );
    assert!(scores.iter().all(|s| *s < 40.0));
    for c in at_risk {
        let reasons = c["reasons"].as_array().unwrap();
        assert!(!reasons.is_empty() && reasons.len() <= 2, "{c}");
    }
    let (ok, text, err) = health(&["--at", "2025-12-31"]);
    assert!(ok, "{err}");
    assert!(
        text.contains("current customers") && text.contains("red "),
        "{text}"
    );
    let (ok, _, err) = health(&["--at", "someday"]);
    assert!(!ok && err.contains("--at `someday` is not a date"), "{err}");
}

#[test]
fn report_follows_the_demo_and_prints_every_table_as_text_json_and_csv() {
    let dir = std::env::temp_dir().join(db::unique("tenure_report"));
    std::fs::create_dir_all(&dir).unwrap();
    small_demo(&dir);
    let report = |args: &[&str]| in_dir(&dir, "report", args);
    // Straight after the demo, with nothing configured, the report reads the demo database.
    let (ok, text, err) = report(&["--to", "2025-12-31"]);
    assert!(ok, "{err}");
    assert!(err.contains("demo database"), "{err}");
    for heading in [
        "Subscriptions — 2025-12",
        "Logo churn",
        "average lifetime",
        "Cohorts",
        "NPS",
        "referral share",
        "top 20%",
    ] {
        assert!(text.contains(heading), "missing `{heading}` in:\n{text}");
    }
    let (ok, json_text, err) = report(&[
        "--json",
        "--to",
        "2025-12-31",
        "--metric",
        "subscriptions,voice",
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&json_text).unwrap();
    let rows = v["subscriptions"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[11]["period"], "2025-12");
    for r in rows {
        let n = |k: &str| r[k].as_i64().unwrap();
        assert_eq!(
            n("mrr"),
            n("mrr_start") + n("new_mrr") + n("expansion_mrr") + n("reactivation_mrr")
                - n("contraction_mrr")
                - n("churned_mrr"),
            "MRR reconciles in {}",
            r["period"]
        );
    }
    assert!(v.get("voice").is_some() && v.get("cohorts").is_none());
    let (ok, csv, err) = report(&[
        "--csv",
        "--to",
        "2025-12-31",
        "--metric",
        "subscriptions,cohorts",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "# subscriptions");
    assert!(lines[1].starts_with("period,"), "{}", lines[1]);
    assert!(lines[1].contains(",logo_churn_rate,") && lines[1].contains(",net_revenue_retention,"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("2025-")).count(),
        12 + 78,
        "12 periods + 78 cohort cells"
    );
    // Bad options name themselves, and nothing is printed to stdout.
    let (ok, out, err) = report(&["--grain", "fortnight", "--churn-change", "abc"]);
    assert!(!ok && out.is_empty());
    assert!(
        err.contains("--grain") && err.contains("--churn-change"),
        "{err}"
    );
    let (ok, _, err) = report(&["--metric", "churnz"]);
    assert!(!ok && err.contains("no metric `churnz`"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn spend_imports_validate_every_row_and_feed_cac() {
    for db in databases() {
        assert!(
            tenure(&db, &["workspace", "create", "Acme"])
                .status
                .success()
        );
        let bad = write_file(
            "spend.csv",
            "channel,month,amount,currency\npaid,2026-01,100,USD\npaid,January,5,USD\nsocial,2026-02,-3,USD\n",
        );
        let out = tenure(&db, &["spend", "import", bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("line 3: month") && err.contains("line 4: amount"),
            "{err}"
        );
        let listed = tenure(&db, &["spend", "list", "--json"]);
        assert_eq!(stdout(&listed).trim(), "[]", "a bad file stores nothing");
        let good = write_file(
            "spend.csv",
            "month,channel,currency,amount\n2026-01,Paid,USD,100.50\n",
        );
        assert!(
            tenure(&db, &["spend", "import", good.to_str().unwrap()])
                .status
                .success()
        );
        let listed: Value =
            serde_json::from_str(&stdout(&tenure(&db, &["spend", "list", "--json"]))).unwrap();
        assert_eq!(
            listed,
            json!([{"channel": "paid", "month": "2026-01", "amount": 10050, "currency": "USD"}])
        );
    }
}

#[test]
fn segments_are_listed_applied_previewed_and_deleted_on_the_demo() {
    let dir = std::env::temp_dir().join(db::unique("tenure_segments"));
    std::fs::create_dir_all(&dir).unwrap();
    let demo = small_demo(&dir);
    assert_eq!(demo["segments"], 11);
    let segments = |args: &[&str]| in_dir(&dir, "segments", args);
    let (ok, text, err) = segments(&["list", "--json"]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 11, "{list}");

    // A bad file names the item and the path of the bad node; nothing is saved.
    let file = dir.join("segments.json");
    std::fs::write(&file, r#"[{"name": "ok", "definition": {"computed": "orders", "op": "gte", "value": 0}},
                              {"name": "bad", "definition": {"any": [{"performed": "Report Viewed", "at_most": -1}]}}]"#).unwrap();
    let (ok, _, err) = segments(&["apply", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("segments.json[1]: definition.any[0].at_most"),
        "{err}"
    );

    // Apply, then the saved membership equals a preview of the same definition.
    let definition = r#"{"all": [{"performed": "Report Viewed", "at_least": 3}, {"computed": "nps_category", "op": "ne", "value": "detractor"}]}"#;
    std::fs::write(
        &file,
        format!(r#"{{"name": "Readers", "definition": {definition}}}"#),
    )
    .unwrap();
    let (ok, text, err) = segments(&["apply", file.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let applied: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(applied[0]["id"], "seg_12");
    assert_eq!(applied[0]["created"], true);
    let (ok, text, err) = segments(&["preview", file.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let preview: Value = serde_json::from_str(&text).unwrap();
    let (ok, text, err) = segments(&["show", "seg_12", "--json", "--members", "3"]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shown["members"], preview["count"]);
    assert!(preview["count"].as_u64().unwrap() > 0, "{preview}");
    assert_eq!(applied[0]["entered"], preview["count"]);
    assert_eq!(shown["first_members"].as_array().unwrap().len(), 3);
    // Applying again updates it in place.
    let (ok, text, _) = segments(&["apply", file.to_str().unwrap(), "--json"]);
    assert!(ok);
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again[0]["created"], false);
    assert_eq!(again[0]["entered"], 0);

    let (ok, _, err) = segments(&["delete", "seg_12"]);
    assert!(ok, "{err}");
    let (ok, _, err) = segments(&["delete", "seg_12"]);
    assert!(!ok && err.contains("no segment seg_12"), "{err}");
}

/// Lines meant to break an importer: invalid UTF-8, stray byte-order marks, NUL and other
/// control characters, huge and fractional numbers, deep nesting, over-long lines, CRLF,
/// wrong types, and the ids of events already stored with other contents.
fn adversarial_jsonl(rng: &mut tenure_core::random::Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..300 {
        let line: Vec<u8> = match rng.below(16) {
            // Odd encodings: a line saved as UTF-16 (NULs between the bytes), and Latin-1.
            14 => "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"X\"}"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect(),
            15 => b"{\"type\":\"track\",\"userId\":\"Ren\xe9\",\"event\":\"X\",\"timestamp\":\"2025-01-01T00:00:00Z\"}".to_vec(),
            0 => b"{\"type\":\"track\",\"userId\":\"u\xff\",\"event\":\"X\",\"timestamp\":\"2025-01-01T00:00:00Z\"}".to_vec(),
            1 => "\u{feff}{\"type\":\"track\",\"userId\":\"u\",\"event\":\"X\"}".as_bytes().to_vec(),
            2 => json!({"type": "track", "userId": "u", "event": "A\u{0}B", "timestamp": "2025-01-01T00:00:00Z"}).to_string().into_bytes(),
            3 => b"{\"type\":\"track\",\"userId\":123456789012345678901234567890,\"event\":\"X\",\"timestamp\":\"2025-01-01T00:00:00Z\"}".to_vec(),
            4 => format!("{{\"type\":\"track\",\"userId\":\"u\",\"event\":\"X\",\"properties\":{}1{}}}", "[".repeat(300), "]".repeat(300)).into_bytes(),
            5 => format!("{{\"x\":\"{}\"}}", "z".repeat(1_200_000)).into_bytes(),
            6 => b"{\"type\":\"track\",\"userId\":\"u\",\"event\":\"X\",\"timestamp\":\"2025-01-01T00:00:00Z\"}\r".to_vec(),
            7 => json!({"type": "track", "userId": "c1", "event": "Order Completed", "messageId": "o1", "timestamp": "2030-01-01T00:00:00Z",
                        "properties": {"order_id": "o1", "revenue": 99999, "currency": "USD"}}).to_string().into_bytes(),
            8 => json!({"type": "identify", "userId": "c1", "messageId": "id1", "traits": {"email": "evil@x.y"}, "timestamp": "2025-01-01T00:00:00Z"}).to_string().into_bytes(),
            9 => json!({"type": "track", "userId": "u", "event": "Order Completed", "timestamp": "2025-01-01T00:00:00Z",
                        "properties": {"order_id": "o", "revenue": 1e300, "currency": "XYZ"}}).to_string().into_bytes(),
            10 => json!([1, 2, 3]).to_string().into_bytes(),
            11 => vec![0u8, 1, 2, 0xc3, 0x28, b'{'],
            12 => json!({"type": "page", "anonymousId": "   ", "name": "\u{7}", "timestamp": "soon"}).to_string().into_bytes(),
            _ => json!({"type": "track", "userId": format!("ok{i}"), "event": "Fine", "timestamp": "2025-02-01T00:00:00Z"}).to_string().into_bytes(),
        };
        out.extend_from_slice(&line);
        out.extend_from_slice(if rng.chance(0.2) { b"\r\n" } else { b"\n" });
    }
    out
}

fn adversarial_csv(rng: &mut tenure_core::random::Rng) -> Vec<u8> {
    let mut out = b"user_id,order_id,revenue,currency,timestamp\n".to_vec();
    for i in 0..300 {
        let row: Vec<u8> = match rng.below(9) {
            0 => b"c\xff,o,1,USD,2025-01-01".to_vec(),
            1 => b"c1,o1,99999,USD,2030-01-01".to_vec(),
            2 => format!("c{i},o{i},1e400,USD,2025-01-01").into_bytes(),
            3 => format!("c{i},o{i},1,XYZ,2025-01-01").into_bytes(),
            4 => format!("c{i},o{i},1,USD,").into_bytes(),
            5 => format!("c{i},o{i},1,USD").into_bytes(),
            6 => format!("\"c{i}\u{0}\",o{i},1,USD,2025-01-01").into_bytes(),
            7 => format!("   ,o{i},1,USD,2025-01-01").into_bytes(),
            _ => format!("c{i},o{i},{}.5,USD,2025-01-0{}", i, 1 + i % 9).into_bytes(),
        };
        out.extend_from_slice(&row);
        out.push(b'\n');
    }
    out
}

/// Issue 16: a property test of the importers on generated adversarial files. The import
/// never crashes, names the line of every refusal, and leaves every stored event as it was.
#[test]
fn adversarial_files_never_crash_an_import_nor_change_what_is_stored() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "shop"]);
        let good = write_file(
            "good.jsonl",
            concat!(
                "{\"type\":\"identify\",\"userId\":\"c1\",\"messageId\":\"id1\",\"traits\":{\"email\":\"c1@x.y\"},\"timestamp\":\"2025-01-01T00:00:00Z\"}\n",
                "{\"type\":\"track\",\"userId\":\"c1\",\"event\":\"Order Completed\",\"messageId\":\"o1\",\"timestamp\":\"2025-01-02T00:00:00Z\",\"properties\":{\"order_id\":\"o1\",\"revenue\":10,\"currency\":\"USD\"}}\n",
            ),
        );
        import_json(
            &db,
            &[
                "import",
                good.to_str().unwrap(),
                "--format",
                "jsonl",
                "--json",
            ],
        );
        let before = export(&db, "shop");
        for seed in 0..3u64 {
            let mut rng = tenure_core::random::Rng::new(seed);
            for (format, bytes, lines) in [
                ("jsonl", adversarial_jsonl(&mut rng), 300u64),
                ("csv", adversarial_csv(&mut rng), 301),
            ] {
                let file = write_file(&format!("adversarial.{format}"), "");
                std::fs::write(&file, bytes).unwrap();
                let mut args = vec![
                    "import",
                    file.to_str().unwrap(),
                    "--format",
                    format,
                    "--json",
                ];
                if format == "csv" {
                    args.extend(["--kind", "orders"]);
                }
                let out = tenure(&db, &args);
                assert!(
                    matches!(out.status.code(), Some(0 | 1)),
                    "{} seed {seed} {format}: {:?} {}",
                    db.name(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
                for row in report["errors"].as_array().unwrap() {
                    let line = row["line"].as_u64().unwrap();
                    assert!((1..=lines + 1).contains(&line), "{format}: line {line}");
                    for e in row["errors"].as_array().unwrap() {
                        assert!(!e["message"].as_str().unwrap().is_empty(), "{row}");
                    }
                }
                assert!(
                    report["rejected"].as_u64().unwrap() > 0,
                    "{format}: {report}"
                );
                let after = export(&db, "shop");
                for event in &before {
                    assert!(
                        after.contains(event),
                        "{} seed {seed} {format}: a stored event changed: {event}",
                        db.name()
                    );
                }
            }
        }
    }
}

/// Issue 16, item 9: `tenure workspace set --renewals` changes what `tenure report` reads.
#[test]
fn the_workspace_renewal_policy_is_set_from_the_command_line() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "crm"]);
        // A source without renewals: one subscription started, nothing else.
        let file = write_file(
            "subs.csv",
            "user_id,subscription_id,event,plan,interval,amount,currency,timestamp\nc1,s1,started,pro,month,10,USD,2025-01-05\n",
        );
        let out = tenure(
            &db,
            &[
                "import",
                file.to_str().unwrap(),
                "--format",
                "csv",
                "--kind",
                "subscriptions",
                "--quiet",
            ],
        );
        assert!(out.status.success(), "{}", stdout(&out));
        let churned = |db: &TestDb| -> u64 {
            let out = tenure(
                db,
                &[
                    "report",
                    "--json",
                    "--metric",
                    "subscriptions",
                    "--from",
                    "2025-01-01",
                    "--to",
                    "2025-06-30",
                ],
            );
            let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
            report["subscriptions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["churned_customers"].as_u64().unwrap())
                .sum()
        };
        assert_eq!(churned(&db), 0, "auto: it renews itself");
        let bad = tenure(&db, &["workspace", "set", "--renewals", "never"]);
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stderr).contains("auto, implicit or explicit"));
        let set = tenure(
            &db,
            &["workspace", "set", "--renewals", "explicit", "--json"],
        );
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
        assert_eq!(
            churned(&db),
            1,
            "{}: explicit: past due in February, churned in March",
            db.name()
        );
    }
}

/// Issue 17, item 9 from the command line: export, then erase, for good.
#[test]
fn a_customer_is_exported_and_erased_from_the_command_line() {
    for db in databases() {
        tenure(&db, &["workspace", "create", "shop"]);
        let file = write_file(
            "people.jsonl",
            concat!(
                "{\"type\":\"identify\",\"userId\":\"gone\",\"messageId\":\"g1\",\"traits\":{\"email\":\"gone@x.y\"},\"timestamp\":\"2025-01-01T00:00:00Z\"}\n",
                "{\"type\":\"track\",\"userId\":\"stays\",\"event\":\"A\",\"messageId\":\"s1\",\"timestamp\":\"2025-01-01T00:00:00Z\"}\n",
            ),
        );
        tenure(
            &db,
            &[
                "import",
                file.to_str().unwrap(),
                "--format",
                "jsonl",
                "--quiet",
            ],
        );
        let export = tenure(&db, &["customers", "export", "gone"]);
        assert!(
            stdout(&export).contains("gone@x.y"),
            "{}",
            String::from_utf8_lossy(&export.stderr)
        );
        let erased = tenure(&db, &["customers", "erase", "gone", "--json"]);
        let erased: Value = serde_json::from_str(&stdout(&erased)).unwrap();
        assert_eq!(erased["events"], 1);
        assert_eq!(event_count(&db), 1);
        let again = tenure(&db, &["customers", "erase", "gone"]);
        assert!(!again.status.success());
        let audit = tenure(&db, &["audit", "--json"]);
        let audit: Value = serde_json::from_str(&stdout(&audit)).unwrap();
        assert_eq!(audit[0]["action"], "customer.erased");
        assert_eq!(audit[0]["actor"], "cli");
    }
}
