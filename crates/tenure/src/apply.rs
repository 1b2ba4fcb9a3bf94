//! `tenure apply FILE`: store health models (and segments) from a file, through the writer,
//! so every segment is reconciled with them (docs/health.md, "Models per segment").
//!
//! FILE holds one health model, an array of them, or
//! `{"health_models": [...], "segments": [...]}` (segments as `tenure segments apply` takes
//! them). Everything is checked before anything is stored. With a server running on the
//! same database, use the API instead: the server's engine only learns of changes made
//! through it.

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use tenure_core::health::AssignedModel;
use tenure_server::Core;
use tenure_server::writer::{OpDone, WorkspaceOp};
use tenure_store::DatabaseUrl;

#[derive(Args)]
pub struct ApplyArgs {
    file: std::path::PathBuf,
    /// Workspace id or name (may be omitted when there is one).
    #[arg(long)]
    workspace: Option<String>,
    #[arg(long)]
    json: bool,
}

/// The health models of the file, each checked; errors name the item.
fn health_models(items: Vec<Value>, origin: &str) -> anyhow::Result<Vec<(AssignedModel, Value)>> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            AssignedModel::parse(&item)
                .map(|m| (m, item))
                .map_err(|e| anyhow::anyhow!("{origin}[{i}]: {e}"))
        })
        .collect()
}

pub fn run(database: &DatabaseUrl, args: ApplyArgs) -> anyhow::Result<()> {
    let origin = args.file.display().to_string();
    let text =
        std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {origin}"))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{origin} is not JSON"))?;
    let (models, segments) = match value {
        Value::Object(mut map)
            if map.contains_key("health_models") || map.contains_key("segments") =>
        {
            let list = |v: Option<Value>, key: &str| -> anyhow::Result<Vec<Value>> {
                match v {
                    None => Ok(Vec::new()),
                    Some(Value::Array(items)) => Ok(items),
                    Some(_) => bail!("{origin}: `{key}` must be an array"),
                }
            };
            let models = list(map.remove("health_models"), "health_models")?;
            let segments = list(map.remove("segments"), "segments")?;
            if let Some(other) = map.keys().next() {
                bail!("{origin}: unknown key `{other}` (health_models, segments)");
            }
            (
                health_models(models, &format!("{origin}: health_models"))?,
                segments,
            )
        }
        Value::Array(items) => (health_models(items, &origin)?, Vec::new()),
        one => (health_models(vec![one], &origin)?, Vec::new()),
    };
    let segments = if segments.is_empty() {
        Vec::new()
    } else {
        crate::segments::parse_items(Value::Array(segments), &format!("{origin}: segments"))?
    };
    let core = Core::open(database)?;
    let ws = crate::resolve_workspace(&core.store, args.workspace.as_deref())?;
    let mut results = Vec::new();
    for (model, source) in models {
        let name = model.model.name.clone();
        let done = core.ingestor.segment_blocking(
            ws.id.clone(),
            WorkspaceOp::PutHealthModel {
                model: Box::new(model),
                source: source.to_string(),
            },
        )?;
        match done {
            OpDone::Reconciled { entered, exited } => results.push(
                json!({"health_model": name, "segments_entered": entered, "segments_exited": exited}),
            ),
            OpDone::Refused(message) => {
                core.close();
                bail!("{origin}: health model `{name}`: {message}");
            }
            other => {
                core.close();
                bail!("{origin}: health model `{name}`: unexpected {other:?}");
            }
        }
    }
    let saved = crate::segments::save(&core, &ws.id, segments)?;
    core.close();
    results.extend(saved);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            if let Some(name) = r["health_model"].as_str() {
                println!(
                    "health model {name}: stored; segments reconciled ({} entered, {} left)",
                    r["segments_entered"], r["segments_exited"]
                );
            } else {
                println!(
                    "segment {} {}: {} entered, {} left",
                    r["id"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or(""),
                    r["entered"],
                    r["exited"]
                );
            }
        }
    }
    Ok(())
}
