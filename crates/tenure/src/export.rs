//! `tenure export`: a workspace's event log as JSONL (Segment messages), in log order, as
//! Segment's archives write them: `timestamp` is the clock-skew-corrected event time,
//! `originalTimestamp` the time the sender stated (or the corrected time when it stated
//! none), `receivedAt` the time Tenure received it. Re-importing the file into an empty
//! workspace stores the same events at the same instants, and exporting that workspace gives
//! the same file (message ids make a re-import idempotent).

use std::io::Write;

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use tenure_core::time::format_instant;
use tenure_store::{DatabaseUrl, Store};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Workspace id or name (may be omitted when there is only one).
    #[arg(long)]
    workspace: Option<String>,
    /// Write here instead of standard output.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

pub fn run(database: &DatabaseUrl, args: ExportArgs) -> anyhow::Result<()> {
    let store = Store::open(database.clone())?;
    let ws = crate::resolve_workspace(&store, args.workspace.as_deref())?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut after = 0;
    let mut count = 0u64;
    loop {
        let page = store.with(|c| c.events_after(&ws.id, after, 10_000))?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.seq;
        for event in &page {
            let mut message: Value = serde_json::from_str(&event.raw)
                .with_context(|| format!("stored event {} is not JSON", event.seq))?;
            if let Some(object) = message.as_object_mut() {
                // With `originalTimestamp` beside it, an importer takes `timestamp` as
                // already corrected (docs/ingestion.md, "Files are history").
                if !object.contains_key("originalTimestamp") {
                    let original = object
                        .get("timestamp")
                        .filter(|t| t.is_string())
                        .cloned()
                        .unwrap_or_else(|| format_instant(event.timestamp).into());
                    object.insert("originalTimestamp".into(), original);
                }
                object.insert("timestamp".into(), format_instant(event.timestamp).into());
                object.insert(
                    "receivedAt".into(),
                    format_instant(event.received_at).into(),
                );
                object.insert("messageId".into(), event.message_id.clone().into());
            }
            serde_json::to_writer(&mut out, &message)?;
            out.write_all(b"\n")?;
            count += 1;
        }
    }
    out.flush()?;
    eprintln!("exported {count} events of workspace {}", ws.id);
    Ok(())
}
