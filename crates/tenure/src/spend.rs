//! `tenure spend import FILE.csv` / `tenure spend list`: marketing spend per channel and
//! month, for CAC, CAC payback and LTV : CAC (`docs/metrics.md`).

use anyhow::Context;
use clap::Subcommand;
use tenure_core::metrics::Spend;
use tenure_store::{DatabaseUrl, Store};

#[derive(Subcommand)]
pub enum SpendCommand {
    /// Load a CSV with the columns channel, month (YYYY-MM), amount, currency. A row for a
    /// (channel, month, currency) already stored replaces it. Any bad row stores nothing.
    Import {
        file: std::path::PathBuf,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Print the stored spend.
    List {
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(database: &DatabaseUrl, command: SpendCommand) -> anyhow::Result<()> {
    let store = Store::open(database.clone())?;
    store.with(|c| c.migrate().map(|_| ()))?;
    match command {
        SpendCommand::Import { file, workspace } => {
            let ws = crate::resolve_workspace(&store, workspace.as_deref())?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rows = parse_csv(&text).map_err(|errors| {
                anyhow::anyhow!(
                    "{}: nothing was stored:\n{}",
                    file.display(),
                    errors.join("\n")
                )
            })?;
            store.with(|c| c.put_spend(&ws.id, &rows))?;
            println!("stored {} spend rows for workspace {}", rows.len(), ws.id);
        }
        SpendCommand::List { workspace, json } => {
            let ws = crate::resolve_workspace(&store, workspace.as_deref())?;
            let rows = store.with(|c| c.spend(&ws.id))?;
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!("{:<8} {:<16} {:>14} CURRENCY", "MONTH", "CHANNEL", "AMOUNT");
                for r in rows {
                    println!(
                        "{:<8} {:<16} {:>14.2} {}",
                        r.month,
                        r.channel,
                        r.amount as f64 / 10f64.powi(r.currency.exponent() as i32),
                        r.currency.as_str()
                    );
                }
            }
        }
    }
    Ok(())
}

/// Rows with line-numbered errors (line 1 is the header), read with the same CSV reader as
/// `tenure import` (quoted fields, embedded commas).
fn parse_csv(text: &str) -> Result<Vec<Spend>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = match reader.headers() {
        Ok(h) if !h.is_empty() => h.clone(),
        _ => {
            return Err(vec![
                "the file is empty: expected a header channel,month,amount,currency".into(),
            ]);
        }
    };
    let find = |name: &str| header.iter().position(|c| c.eq_ignore_ascii_case(name));
    let (Some(ch), Some(mo), Some(am), Some(cu)) = (
        find("channel"),
        find("month"),
        find("amount"),
        find("currency"),
    ) else {
        let names: Vec<&str> = header.iter().collect();
        return Err(vec![format!(
            "line 1: the header `{}` must name the columns channel, month, amount, currency",
            names.join(",")
        )]);
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let cell = |k: usize| record.get(k).unwrap_or("");
        let amount = match cell(am).parse::<f64>() {
            Ok(a) => a,
            Err(_) => {
                errors.push(format!(
                    "line {line}: amount: `{}` is not a number",
                    cell(am)
                ));
                continue;
            }
        };
        match Spend::parse(cell(ch), cell(mo), amount, cell(cu)) {
            Ok(s) => rows.push(s),
            Err((field, message)) => errors.push(format!("line {line}: {field}: {message}")),
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push("no spend rows after the header".into());
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}
