//! The ceiling a SQLite figure is compared with, measured in the same run: the rows Tenure
//! stored, exported to CSV and loaded by the `sqlite3` shell into an empty copy of the log
//! (same schema and indexes, same pragmas: WAL, `synchronous = FULL`), in one transaction.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use tenure_store::{DatabaseUrl, Store};

/// The columns of the `events` table a load fills.
pub const COLUMNS: &str = "workspace_id, message_id, customer_id, user_id, anonymous_id, type, name, timestamp, received_at, raw";

/// Loads the rows of `source` (a Tenure SQLite database) into a fresh database in `dir`
/// with the shell's bulk path; returns (rows, seconds of the load).
pub fn sqlite_ceiling(source: &Path, dir: &Path) -> Option<(usize, f64)> {
    let csv = dir.join("ceiling-rows.csv");
    let export = Command::new("sqlite3")
        .args([
            "-csv",
            // The aborted server's last connection may be checkpointing the WAL.
            "-cmd",
            ".timeout 30000",
            source.to_str()?,
            &format!("SELECT {COLUMNS} FROM events ORDER BY seq"),
        ])
        .output()
        .ok()?;
    if !export.status.success() || export.stdout.is_empty() {
        println!(
            "sqlite3 export failed: {}",
            String::from_utf8_lossy(&export.stderr)
        );
        return None;
    }
    std::fs::write(&csv, &export.stdout).ok()?;
    let target = dir.join("ceiling.db");
    Store::open(DatabaseUrl::Sqlite(target.clone()))
        .ok()?
        .with(|c| {
            c.create_workspace(&tenure_store::Workspace {
                id: tenure_core::WorkspaceId::parse("ws_bench").unwrap(),
                name: "bench".into(),
                created_at: 0,
            })
        })
        .ok()?;
    // Same pragmas as Tenure (WAL, synchronous FULL); `.import` runs in one transaction.
    let script = format!(
        "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\nPRAGMA foreign_keys=OFF;\nCREATE TEMP TABLE staging ({COLUMNS});\n.mode csv\n.import {} staging\nBEGIN;\nINSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM staging;\nCOMMIT;\n",
        csv.display()
    );
    let t = Instant::now();
    // Dot-commands are read from standard input, one per line.
    let mut child = Command::new("sqlite3")
        .arg(&target)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    std::io::Write::write_all(child.stdin.as_mut()?, script.as_bytes()).ok()?;
    drop(child.stdin.take());
    let out = child.wait_with_output().ok()?;
    let seconds = t.elapsed().as_secs_f64();
    if !out.status.success() {
        println!(
            "sqlite3 import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let count = Command::new("sqlite3")
        .arg(&target)
        .arg("SELECT count(*) FROM events")
        .output()
        .ok()?;
    let rows: u64 = String::from_utf8_lossy(&count.stdout).trim().parse().ok()?;
    Some((rows as usize, seconds))
}
