//! `tenure keys create | list | revoke` and `tenure audit`: API keys and the audit log of a
//! workspace (docs/security.md). What the CLI does is recorded with the actor `cli`.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;
use tenure_core::KeyId;
use tenure_core::time::{Clock, format_instant};
use tenure_store::{DatabaseUrl, KeyKind, Store};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an API key; the secret is printed once and stored only hashed.
    Create {
        /// Workspace id or name (may be omitted when there is only one).
        #[arg(long)]
        workspace: Option<String>,
        /// `write` (ingest only) or `admin` (everything).
        #[arg(long, value_parser = ["write", "admin"])]
        kind: String,
        /// What the key is for ("website", "ci"…), shown by `keys list`.
        #[arg(long)]
        name: Option<String>,
        /// The key stops working after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List the workspace's keys with their last use (never their secrets).
    List {
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it stops working within a second on every server, and the dashboard
    /// sessions it opened end.
    Revoke {
        /// The key's id (`key_…`, from `keys list`).
        id: String,
        #[arg(long)]
        workspace: Option<String>,
    },
}

pub fn run(database: &DatabaseUrl, command: KeysCommand, clock: &dyn Clock) -> anyhow::Result<()> {
    let store = Store::open(database.clone())?;
    match command {
        KeysCommand::Create {
            workspace,
            kind,
            name,
            expires_in_days,
            json,
        } => {
            let ws = crate::resolve_workspace(&store, workspace.as_deref())?;
            let kind = KeyKind::parse(&kind).context("kind must be write or admin")?;
            let now = clock.now();
            let expires_at = match expires_in_days {
                Some(0) => bail!("--expires-in-days: at least 1"),
                Some(days) => Some(now + i64::from(days) * 86_400_000),
                None => None,
            };
            let new = tenure_server::admin::NewKey {
                kind,
                name,
                expires_at,
            };
            let (key, secret) =
                tenure_server::admin::create_key_with(&store, &ws.id, new, "cli", now)?;
            if json {
                let mut answer = serde_json::to_value(&key)?;
                answer["secret"] = json!(secret);
                println!("{answer}");
            } else {
                println!(
                    "{} key {} for workspace {} ({}):\n\n  {secret}\n\nKeep it safe: it is shown only this once.",
                    kind.as_str(),
                    key.id,
                    ws.id,
                    ws.name
                );
            }
        }
        KeysCommand::List { workspace, json } => {
            let ws = crate::resolve_workspace(&store, workspace.as_deref())?;
            let keys = store.with(|c| c.keys(&ws.id))?;
            if json {
                println!("{}", serde_json::to_string(&keys)?);
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{:<26} {:<6} {:<20} {:<26} STATE",
                    "ID", "KIND", "NAME", "LAST USED"
                )?;
                let now = clock.now();
                for key in keys {
                    let state = match (key.revoked_at, key.expires_at) {
                        (Some(at), _) => format!("revoked {}", format_instant(at)),
                        (None, Some(at)) if at <= now => format!("expired {}", format_instant(at)),
                        (None, Some(at)) => format!("expires {}", format_instant(at)),
                        (None, None) => "active".into(),
                    };
                    writeln!(
                        out,
                        "{:<26} {:<6} {:<20} {:<26} {state}",
                        key.id,
                        key.kind.as_str(),
                        key.name.as_deref().unwrap_or("-"),
                        key.last_used_at.map_or("never".into(), format_instant),
                    )?;
                }
            }
        }
        KeysCommand::Revoke { id, workspace } => {
            let ws = crate::resolve_workspace(&store, workspace.as_deref())?;
            let key =
                KeyId::parse(&id).map_err(|e| anyhow::anyhow!("`{id}` is not a key id: {e}"))?;
            if !tenure_server::admin::revoke_key(&store, &ws.id, &key, "cli", clock.now())? {
                bail!(
                    "no key `{id}` still working in workspace {} (see `tenure keys list`)",
                    ws.id
                );
            }
            println!("revoked {id}: it stops working within a second on every server");
        }
    }
    Ok(())
}

/// `tenure audit`: what admins did in the workspace, newest first.
pub fn audit(
    database: &DatabaseUrl,
    workspace: Option<&str>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let store = Store::open(database.clone())?;
    let ws = crate::resolve_workspace(&store, workspace)?;
    let entries = store.with(|c| c.audit_log(&ws.id, limit))?;
    if json {
        println!("{}", serde_json::to_string(&entries)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for e in entries {
        writeln!(
            out,
            "{}  {:<26} {:<28} {} {}",
            format_instant(e.at),
            e.actor,
            e.action,
            e.target,
            e.detail
        )?;
    }
    Ok(())
}
