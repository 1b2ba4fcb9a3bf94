//! One group of requests committed together (group commit): messages classified, folded
//! under the write lock, appended with their customer rows in one transaction, derived
//! events (segment memberships) appended after; on failure, request by request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use tenure_core::segments::Backfill;
use tenure_core::time::Millis;
use tenure_core::{CustomerId, LiveWorkspace, Message, MessageType, WorkspaceId};
use tenure_store::{Append, Backend, CustomerRow, NewEvent, StoreError};

use super::*;

/// One request's messages, classified before the transaction.
pub(super) struct Planned {
    /// For each message: `Some(customer)` if it is new and was folded, `None` if duplicate.
    customers: Vec<Option<CustomerId>>,
}

/// Engines whose lock a panic poisoned, folded again from the log (their state may hold a
/// half-applied job).
pub(super) fn recover_poisoned(conn: &mut dyn Backend, engines: &Engines) {
    for (ws, lock) in engines.loaded() {
        if !lock.is_poisoned() {
            continue;
        }
        let mut engine = lock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match rebuild(conn, &ws) {
            Ok(fresh) => {
                *engine = fresh;
                drop(engine);
                lock.clear_poison();
            }
            Err(e) => {
                tracing::error!(workspace = %ws, "the engine could not be folded again after a panic (its requests keep failing until a restart): {e}")
            }
        }
    }
}

/// Commits a group of requests together; if that fails for a reason other than a race, each
/// request is tried again alone, so a request the database refuses fails alone instead of
/// failing every request (of every workspace) that shared its commit.
pub(super) fn write_group(
    conn: &mut dyn Backend,
    engines: &Engines,
    group: Vec<WriteRequest>,
    now: Millis,
) {
    if group.len() == 1 {
        return write_requests(conn, engines, group, now);
    }
    let workspaces = group_workspaces(&group);
    match write_group_inner(conn, engines, &group, &workspaces, now) {
        Ok(outcomes) => {
            for (request, outcome) in group.into_iter().zip(outcomes) {
                let _ = request.reply.send(Ok(outcome));
            }
        }
        Err(e @ StoreError::Conflict(_)) => answer_failed(group, &e),
        Err(e) => {
            tracing::warn!(
                requests = group.len(),
                "a group commit failed ({e}); committing its requests one by one"
            );
            for request in group {
                write_requests(conn, engines, vec![request], now);
            }
        }
    }
}

pub(super) fn group_workspaces(group: &[WriteRequest]) -> Vec<WorkspaceId> {
    let mut seen = HashSet::new();
    group
        .iter()
        .filter(|r| seen.insert(r.workspace.clone()))
        .map(|r| r.workspace.clone())
        .collect()
}

pub(super) fn answer_failed(group: Vec<WriteRequest>, e: &StoreError) {
    match e {
        StoreError::Conflict(_) => {
            tracing::warn!("append raced another writer, nothing of this group was stored: {e}")
        }
        _ => tracing::error!("append failed, nothing of this group was stored: {e}"),
    }
    for request in group {
        let _ = request.reply.send(Err(WriteError(e.client_message())));
    }
}

pub(super) fn write_requests(
    conn: &mut dyn Backend,
    engines: &Engines,
    group: Vec<WriteRequest>,
    now: Millis,
) {
    let workspaces = group_workspaces(&group);
    let started = std::time::Instant::now();
    let events: usize = group.iter().map(|r| r.messages.len()).sum();
    let result = write_group_inner(conn, engines, &group, &workspaces, now);
    tracing::debug!(
        requests = group.len(),
        events,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "group committed"
    );
    match result {
        Ok(outcomes) => {
            for (request, outcome) in group.into_iter().zip(outcomes) {
                let _ = request.reply.send(Ok(outcome));
            }
        }
        Err(e) => answer_failed(group, &e),
    }
}

pub(super) fn write_group_inner(
    conn: &mut dyn Backend,
    engines: &Engines,
    group: &[WriteRequest],
    workspaces: &[WorkspaceId],
    now: Millis,
) -> Result<Vec<Vec<Outcome>>, StoreError> {
    let locks: Vec<(WorkspaceId, Arc<RwLock<LiveWorkspace>>)> = workspaces
        .iter()
        .map(|ws| Ok((ws.clone(), engines.get(ws)?)))
        .collect::<Result<_, StoreError>>()?;
    let poisoned = || StoreError::Corrupt("engine lock poisoned".into());
    let mut guards = Vec::with_capacity(locks.len());
    for (ws, lock) in &locks {
        guards.push((ws, lock.write().map_err(|_| poisoned())?));
    }

    // Which message ids are already in the log, per workspace. Only ids the engine may have
    // seen need a lookup; the others are certainly new.
    let phase = std::time::Instant::now();
    let mut known: HashMap<&WorkspaceId, HashSet<String>> = HashMap::new();
    for (ws, engine) in &guards {
        let maybe: Vec<&str> = group
            .iter()
            .filter(|r| &r.workspace == *ws)
            .flat_map(|r| r.messages.iter().map(|m| m.message_id.as_str()))
            .filter(|id| engine.may_have_seen(id))
            .collect();
        let found = if maybe.is_empty() {
            HashSet::new()
        } else {
            conn.existing_message_ids(ws, &maybe)?
        };
        known.insert(*ws, found);
    }
    tracing::debug!(
        check_ms = phase.elapsed().as_secs_f64() * 1000.0,
        "duplicate check"
    );
    let phase = std::time::Instant::now();

    // Segment timers due by now fire first, at their own instants, so that what the new
    // events change is judged against memberships that are up to date.
    // They go first in the log too: a rebuild must fold them before any merge the new
    // events cause, as the engine just did.
    let mut due: HashMap<&WorkspaceId, Vec<(CustomerId, Message)>> = HashMap::new();
    for (ws, engine) in guards.iter_mut() {
        let fired = engine.due_segment_changes(now);
        if !fired.is_empty() {
            due.insert(*ws, fired);
        }
    }
    let mut derived: HashMap<&WorkspaceId, Vec<(CustomerId, Message)>> = HashMap::new();

    // Fold the new messages, in request order.
    let mut planned = Vec::with_capacity(group.len());
    let mut touched: HashMap<&WorkspaceId, Vec<CustomerId>> = HashMap::new();
    let mut merged_away: HashMap<&WorkspaceId, Vec<(CustomerId, CustomerId)>> = HashMap::new();
    for request in group {
        let Some((_, engine)) = guards.iter_mut().find(|(ws, _)| **ws == request.workspace) else {
            return Err(StoreError::Corrupt("workspace engine missing".into()));
        };
        let seen = known.entry(&request.workspace).or_default();
        let mut customers = Vec::with_capacity(request.messages.len());
        for message in &request.messages {
            if !seen.insert(message.message_id.clone()) {
                customers.push(None);
                continue;
            }
            let applied = engine.apply(message);
            let is_new = engine
                .find(applied.customer.as_str())
                .is_some_and(|c| c.event_total == 1);
            let identity_change = matches!(
                message.kind,
                MessageType::Identify | MessageType::Alias | MessageType::Group
            ) || !applied.merged.is_empty();
            if is_new || identity_change {
                touched
                    .entry(&request.workspace)
                    .or_default()
                    .push(applied.customer.clone());
            }
            for loser in &applied.merged {
                merged_away
                    .entry(&request.workspace)
                    .or_default()
                    .push((loser.clone(), applied.customer.clone()));
            }
            customers.push(Some(applied.customer));
        }
        planned.push(Planned { customers });
    }

    // Every customer an event touched is re-evaluated against every segment at `now`.
    for (ws, engine) in guards.iter_mut() {
        let customers: Vec<CustomerId> = group
            .iter()
            .zip(&planned)
            .filter(|(r, _)| &r.workspace == *ws)
            .flat_map(|(_, p)| p.customers.iter().flatten().cloned())
            .collect();
        let changes = engine.segment_changes(&customers, now);
        if !changes.is_empty() {
            derived.entry(*ws).or_default().extend(changes);
        }
    }
    tracing::debug!(fold_ms = phase.elapsed().as_secs_f64() * 1000.0, "fold");
    let mut appends: Vec<Append<'_>> = workspaces
        .iter()
        .map(|ws| {
            let engine = guards.iter().find(|(w, _)| *w == ws).map(|(_, e)| &**e);
            Append {
                workspace: ws,
                events: Vec::new(),
                customers: customer_rows(engine, touched.get(ws), merged_away.get(ws)),
            }
        })
        .collect();
    for append in &mut appends {
        for (customer, message) in due.get(append.workspace).into_iter().flatten() {
            append.events.push(NewEvent { message, customer });
        }
    }
    for (request, plan) in group.iter().zip(&planned) {
        let Some(append) = appends
            .iter_mut()
            .find(|a| *a.workspace == request.workspace)
        else {
            continue;
        };
        for (message, customer) in request.messages.iter().zip(&plan.customers) {
            if let Some(customer) = customer {
                append.events.push(NewEvent { message, customer });
            }
        }
    }
    // Membership changes go after the events that caused them (their own order kept).
    for append in &mut appends {
        for (customer, message) in derived.get(append.workspace).into_iter().flatten() {
            append.events.push(NewEvent { message, customer });
        }
    }

    let fold_done = std::time::Instant::now();
    let committed = conn.append(&appends);
    tracing::debug!(
        append_ms = fold_done.elapsed().as_secs_f64() * 1000.0,
        "append"
    );
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            // The engines hold events that are not in the log: fold the log again.
            for (ws, engine) in guards.iter_mut() {
                match rebuild(conn, ws) {
                    Ok(fresh) => **engine = fresh,
                    Err(re) => {
                        tracing::error!(workspace = %ws, "rebuilding the engine after a failed append failed too: {re}")
                    }
                }
            }
            return Err(e);
        }
    };

    // Sequence numbers per workspace, in the order the events were appended.
    let mut seqs: HashMap<&WorkspaceId, std::vec::IntoIter<Option<i64>>> = workspaces
        .iter()
        .zip(committed)
        .map(|(ws, s)| (ws, s.into_iter()))
        .collect();
    // The fired timers' events come first: their numbers are no request's.
    for (ws, engine) in guards.iter_mut() {
        let fired = due.get(*ws).map_or(0, Vec::len);
        if let Some(rest) = seqs.get_mut(*ws)
            && let Some(last) = rest.by_ref().take(fired).flatten().max()
        {
            engine.advance_to(last);
        }
    }
    let mut raced = HashSet::new();
    let mut outcomes = Vec::with_capacity(group.len());
    for (request, plan) in group.iter().zip(planned) {
        let mut out = Vec::with_capacity(plan.customers.len());
        for customer in plan.customers {
            out.push(match customer {
                None => Outcome::Duplicate,
                Some(customer) => match seqs
                    .get_mut(&request.workspace)
                    .and_then(Iterator::next)
                    .flatten()
                {
                    Some(seq) => {
                        if let Some((_, engine)) =
                            guards.iter_mut().find(|(ws, _)| **ws == request.workspace)
                        {
                            engine.advance_to(seq);
                        }
                        Outcome::Stored { seq, customer }
                    }
                    None => {
                        // Another process stored this message id between our check and our
                        // insert: the engine folded it once too many.
                        raced.insert(request.workspace.clone());
                        Outcome::Duplicate
                    }
                },
            });
        }
        outcomes.push(out);
    }
    // What is left are the numbers of the membership events the new events caused.
    for (ws, engine) in guards.iter_mut() {
        if let Some(rest) = seqs.get_mut(ws)
            && let Some(last) = rest.flatten().max()
        {
            engine.advance_to(last);
        }
    }
    for (ws, engine) in guards.iter_mut() {
        if raced.contains(*ws) {
            **engine = rebuild(conn, ws)?;
        }
    }
    Ok(outcomes)
}

/// Appends membership events the engine has already applied; on failure folds the log
/// again, so that the engine never holds an event the database does not.
pub(super) fn append_derived(
    conn: &mut dyn Backend,
    ws: &WorkspaceId,
    engine: &mut LiveWorkspace,
    derived: &[(CustomerId, Message)],
) -> Result<(), StoreError> {
    if derived.is_empty() {
        return Ok(());
    }
    let append = Append {
        workspace: ws,
        events: derived
            .iter()
            .map(|(customer, message)| NewEvent { message, customer })
            .collect(),
        customers: Vec::new(),
    };
    match conn.append(std::slice::from_ref(&append)) {
        Ok(seqs) => {
            if let Some(last) = seqs.into_iter().flatten().flatten().max() {
                engine.advance_to(last);
            }
            Ok(())
        }
        Err(e) => {
            match rebuild(conn, ws) {
                Ok(fresh) => *engine = fresh,
                Err(re) => {
                    tracing::error!(workspace = %ws, "rebuilding the engine after a failed append failed too: {re}")
                }
            }
            Err(e)
        }
    }
}

/// How many customers' membership events of a backfill are built and stored at a time:
/// a backfill over a million customers never holds all its events at once.
pub(super) const BACKFILL_CHUNK: usize = 20_000;

/// Appends a backfill's events (already folded into the engine), a chunk per transaction.
/// If one fails, the engine is folded again from the log, which then holds the chunks
/// before it; the next tick's reconcile appends what the failure left out.
pub(super) fn append_backfill(
    conn: &mut dyn Backend,
    ws: &WorkspaceId,
    engine: &mut LiveWorkspace,
    backfill: &Backfill,
) -> Result<(), StoreError> {
    for chunk in backfill.chunks(BACKFILL_CHUNK) {
        let messages = chunk.messages(engine);
        append_derived(conn, ws, engine, &messages)?;
    }
    Ok(())
}

/// Fires every due segment timer of every loaded workspace.
pub(super) fn tick(conn: &mut dyn Backend, engines: &Engines, now: Millis) {
    for (ws, lock) in engines.loaded() {
        let Ok(mut engine) = lock.write() else {
            continue;
        };
        let due = engine.due_segment_changes(now);
        if let Err(e) = append_derived(conn, &ws, &mut engine, &due) {
            tracing::error!(workspace = %ws, "segment changes could not be stored (they are recomputed from the log): {e}");
        }
    }
}

pub(super) fn customer_rows(
    engine: Option<&LiveWorkspace>,
    touched: Option<&Vec<CustomerId>>,
    merged: Option<&Vec<(CustomerId, CustomerId)>>,
) -> Vec<CustomerRow> {
    let Some(engine) = engine else {
        return Vec::new();
    };
    let mut rows: Vec<CustomerRow> = Vec::new();
    let mut done = HashSet::new();
    for id in touched.into_iter().flatten() {
        let Some(state) = engine.find(id.as_str()) else {
            continue;
        };
        if !done.insert(state.id.clone()) {
            continue;
        }
        rows.push(CustomerRow {
            id: state.id.clone(),
            user_id: state.user_id.clone(),
            identities: serde_json::to_string(&state.identities).unwrap_or_else(|_| "[]".into()),
            traits: serde_json::to_string(&state.traits).unwrap_or_else(|_| "{}".into()),
            first_seen: state.first_seen,
            merged_into: None,
        });
    }
    for (loser, winner) in merged.into_iter().flatten() {
        if done.insert(loser.clone()) {
            rows.push(CustomerRow {
                id: loser.clone(),
                user_id: None,
                identities: "[]".into(),
                traits: "{}".into(),
                first_seen: 0,
                merged_into: Some(winner.clone()),
            });
        }
    }
    rows
}
