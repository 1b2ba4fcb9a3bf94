//! `tenure segments …`: list, show, preview, apply and delete segment definitions on a
//! database (docs/segments.md). With a server running on the same database, use the API
//! instead: the server's engine only learns of definitions saved through it.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tenure_core::segments::{Definition, SegmentId};
use tenure_core::time::{Clock, format_instant};
use tenure_core::{LiveWorkspace, WorkspaceId};
use tenure_server::Core;
use tenure_server::writer::{OpDone, WorkspaceOp};
use tenure_store::{DatabaseUrl, Store};

#[derive(Subcommand)]
pub enum SegmentsCommand {
    /// The segments with their member counts now.
    List(Common),
    /// One segment: its definition and first members.
    Show {
        /// `seg_…`
        id: String,
        /// How many members to list.
        #[arg(long, default_value_t = 20)]
        members: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Who a definition would hold now, without saving it. FILE holds
    /// `{"name": …, "definition": {…}}` or the definition alone.
    Preview {
        file: std::path::PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Create or update segments from FILE: one `{"name": …, "definition": {…}}` or an
    /// array of them; a segment with the same name is updated. Each is backfilled.
    Apply {
        file: std::path::PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a segment.
    Delete {
        id: String,
        #[command(flatten)]
        common: Common,
    },
}

/// The flags every workspace command shares (`tenure segments …`, `tenure risk …`).
#[derive(Args)]
pub struct Common {
    /// Workspace id or name (may be omitted when there is one).
    #[arg(long)]
    pub workspace: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// The workspace's engine with memberships brought up to `now` in memory (what a
/// running server's first tick would append; nothing is written).
fn current_engine(store: &Store, ws: &WorkspaceId, now: i64) -> anyhow::Result<LiveWorkspace> {
    let mut engine = store
        .with(|c| tenure_server::writer::rebuild(c, ws))
        .context("loading the workspace's events")?;
    engine.due_segment_changes(now);
    Ok(engine)
}

fn read_file(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// One `{"name", "definition"}` or an array of them, each checked; `origin` names the
/// source in errors (`segments.json[1]: definition.any[0]…`).
pub fn parse_items(
    value: Value,
    origin: &str,
) -> anyhow::Result<Vec<(String, Definition, String)>> {
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    let mut parsed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{origin}[{i}]");
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .with_context(|| format!("{at}: needs a \"name\""))?;
        let source = item
            .get("definition")
            .with_context(|| format!("{at}: needs a \"definition\" (docs/segments.md)"))?;
        let definition = Definition::parse(source).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        parsed.push((name.to_owned(), definition, source.to_string()));
    }
    Ok(parsed)
}

/// Saves checked definitions through the writer (a segment with the same name is updated),
/// each backfilled; what each one did.
pub fn save(
    core: &Core,
    ws: &WorkspaceId,
    parsed: Vec<(String, Definition, String)>,
) -> anyhow::Result<Vec<Value>> {
    let existing = core.store.with(|c| c.segments(ws))?;
    let mut results = Vec::new();
    for (name, definition, source) in parsed {
        let id = existing.iter().find(|r| r.name == name).map(|r| r.id);
        if definition.reads_daily_values() {
            // Backfilled against today's table of values (docs/segments.md).
            use tenure_core::time::Clock;
            let engine = core.engines.get(ws)?;
            let now = tenure_server::SystemClock.now();
            tenure_server::predictions::refresh_daily_values(&engine, &core.ingestor, now, true)
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        }
        let done = core
            .ingestor
            .segment_blocking(
                ws.clone(),
                WorkspaceOp::Save {
                    id,
                    name: name.clone(),
                    definition,
                    source,
                },
            )
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        if let OpDone::Saved {
            id: saved,
            entered,
            exited,
        } = done
        {
            results.push(
                json!({"id": SegmentId(saved), "name": name, "created": id.is_none(),
                                "entered": entered, "exited": exited}),
            );
        }
    }
    Ok(results)
}

fn parse_id(text: &str) -> anyhow::Result<SegmentId> {
    SegmentId::parse(text)
        .with_context(|| format!("`{text}` is not a segment id (seg_ and a number, e.g. seg_1)"))
}

pub fn run(
    database: &DatabaseUrl,
    command: SegmentsCommand,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let now = clock.now();
    match command {
        SegmentsCommand::List(common) => {
            let store = Store::open(database.clone())?;
            let ws = crate::resolve_workspace(&store, common.workspace.as_deref())?;
            let engine = current_engine(&store, &ws.id, now)?;
            let rows = store.with(|c| c.segments(&ws.id))?;
            let infos = engine.segments();
            let list: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let members = infos.iter().find(|i| i.id.0 == r.id).map_or(0, |i| i.members);
                    json!({"id": SegmentId(r.id), "name": r.name, "version": r.version, "members": members,
                           "updated_at": format_instant(r.updated_at)})
                })
                .collect();
            if common.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!(
                    "No segments in {} yet: write one (docs/segments.md) and run `tenure segments apply FILE`.",
                    ws.name
                );
            } else {
                println!(
                    "Segments of {} ({} customers, {}):",
                    ws.name,
                    engine.customer_count(),
                    format_instant(now)
                );
                for s in &list {
                    println!(
                        "  {:<8} {:>8} members  {}",
                        s["id"].as_str().unwrap_or(""),
                        s["members"],
                        s["name"].as_str().unwrap_or("")
                    );
                }
            }
        }
        SegmentsCommand::Show {
            id,
            members,
            common,
        } => {
            let id = parse_id(&id)?;
            let store = Store::open(database.clone())?;
            let ws = crate::resolve_workspace(&store, common.workspace.as_deref())?;
            let engine = current_engine(&store, &ws.id, now)?;
            let row = store
                .with(|c| c.segments(&ws.id))?
                .into_iter()
                .find(|r| r.id == id.0)
                .with_context(|| {
                    format!(
                        "no segment {id} in {} (see `tenure segments list`)",
                        ws.name
                    )
                })?;
            let count = engine
                .segments()
                .iter()
                .find(|i| i.id == id)
                .map_or(0, |i| i.members);
            let page: Vec<Value> = engine
                .segment_members(id, None, members)
                .iter()
                .map(|(c, at)| json!({"id": c.id, "user_id": c.user_id, "entered_at": format_instant(*at)}))
                .collect();
            let definition: Value = serde_json::from_str(&row.definition).unwrap_or(Value::Null);
            if common.json {
                let body = json!({"id": id, "name": row.name, "version": row.version, "members": count,
                                  "definition": definition, "first_members": page});
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                println!(
                    "{id} {} (version {}): {count} members",
                    row.name, row.version
                );
                println!("{}", serde_json::to_string_pretty(&definition)?);
                for m in &page {
                    println!(
                        "  {}  {}  since {}",
                        m["id"].as_str().unwrap_or(""),
                        m["user_id"].as_str().unwrap_or("-"),
                        m["entered_at"].as_str().unwrap_or("")
                    );
                }
            }
        }
        SegmentsCommand::Preview { file, common } => {
            let value = read_file(&file)?;
            let source = value.get("definition").unwrap_or(&value);
            let definition = Definition::parse(source)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let store = Store::open(database.clone())?;
            let ws = crate::resolve_workspace(&store, common.workspace.as_deref())?;
            let engine = current_engine(&store, &ws.id, now)?;
            let history =
                store.with(|c| tenure_server::writer::segment_history(c, &ws.id, &definition))?;
            let (count, sample) = engine.preview_segment(&definition, &history, now, 10);
            if common.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"count": count, "sample": sample}))?
                );
            } else {
                println!(
                    "{count} of {} customers match now; for example:",
                    engine.customer_count()
                );
                for id in sample {
                    println!("  {id}");
                }
            }
        }
        SegmentsCommand::Apply { file, common } => {
            // Every item is checked before anything is saved.
            let parsed = parse_items(read_file(&file)?, &file.display().to_string())?;
            let core = Core::open(database)?;
            let ws = crate::resolve_workspace(&core.store, common.workspace.as_deref())?;
            let results = save(&core, &ws.id, parsed)?;
            core.close();
            if common.json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in &results {
                    println!(
                        "{} {} {}: {} entered, {} left",
                        if r["created"] == true {
                            "created"
                        } else {
                            "updated"
                        },
                        r["id"].as_str().unwrap_or(""),
                        r["name"].as_str().unwrap_or(""),
                        r["entered"],
                        r["exited"]
                    );
                }
            }
        }
        SegmentsCommand::Delete { id, common } => {
            let id = parse_id(&id)?;
            let core = Core::open(database)?;
            let ws = crate::resolve_workspace(&core.store, common.workspace.as_deref())?;
            let done = core
                .ingestor
                .segment_blocking(ws.id.clone(), WorkspaceOp::Delete { id: id.0 })
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            core.close();
            if done != OpDone::Deleted {
                bail!(
                    "no segment {id} in {} (see `tenure segments list`)",
                    ws.name
                );
            }
            if common.json {
                println!("{}", json!({"deleted": id}));
            } else {
                println!("deleted {id}");
            }
        }
    }
    Ok(())
}
