//! `tenure customers erase | export`: a customer's right to be forgotten and to see what is
//! held about them (docs/security.md, "Erasure and export").

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use tenure_core::time::Clock;
use tenure_server::writer::{OpDone, WorkspaceOp};
use tenure_store::DatabaseUrl;

#[derive(Subcommand)]
pub enum CustomersCommand {
    /// Erase a customer (a cus_ id or a user id) and those merged into them: their events
    /// and rows, everywhere, for good. The audit log keeps the cus_ id and the count.
    Erase {
        id: String,
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print everything held about a customer as JSON: their rows and every event.
    Export {
        id: String,
        #[arg(long)]
        workspace: Option<String>,
    },
}

pub fn run(
    database: &DatabaseUrl,
    command: CustomersCommand,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let core = tenure_server::Core::open(database)?;
    let result = match command {
        CustomersCommand::Erase {
            id,
            workspace,
            json,
        } => {
            let ws = crate::resolve_workspace(&core.store, workspace.as_deref())?;
            let done = core.ingestor.segment_blocking(
                ws.id.clone(),
                WorkspaceOp::EraseCustomer {
                    customer: id.clone(),
                },
            )?;
            let OpDone::Erased { customer, events } = done else {
                bail!(
                    "no customer `{id}` in workspace {} (give a cus_… id or a user id)",
                    ws.id
                );
            };
            tenure_server::admin::audit(
                &core.store,
                &ws.id,
                "cli",
                "customer.erased",
                customer.as_str(),
                &format!("{events} events"),
                clock.now(),
            )?;
            if json {
                println!("{}", json!({"erased": customer, "events": events}));
            } else {
                println!(
                    "erased {customer}: {events} events; a running `tenure serve` forgets them after a restart"
                );
            }
            Ok(())
        }
        CustomersCommand::Export { id, workspace } => {
            let ws = crate::resolve_workspace(&core.store, workspace.as_deref())?;
            let ids = {
                let engine = core.engines.get(&ws.id)?;
                let engine = engine
                    .read()
                    .map_err(|_| anyhow::anyhow!("engine lock poisoned"))?;
                let Some(state) = engine.find(&id) else {
                    bail!("no customer `{id}` in workspace {}", ws.id);
                };
                std::iter::once(state.id.clone())
                    .chain(state.merged.iter().cloned())
                    .collect::<Vec<_>>()
            };
            let (rows, events) = tenure_server::admin::customer_export(&core.store, &ws.id, &ids)?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"customer": ids[0], "customer_rows": rows, "events": events})
                )?
            );
            Ok(())
        }
    };
    core.close();
    result
}
