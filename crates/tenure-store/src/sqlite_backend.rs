//! SQLite: one file, WAL mode, `synchronous = FULL` so that an acknowledged append survives
//! a crash of the process or the machine.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use tenure_core::{CustomerId, KeyId, LogColumns, Message, WorkspaceId};

use tenure_core::metrics::Spend;

use crate::{
    ApiKey, Append, Appended, AuditEntry, Backend, CustomerRow, HealthModelRow, KeyKind,
    NewRiskModel, Replaced, Result, RiskModelRow, SegmentRow, StoreError, StoredEvent, Workspace,
};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "event log, workspaces, keys, customers",
        r#"
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    kind TEXT NOT NULL CHECK (kind IN ('write', 'admin')),
    secret_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    message_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    user_id TEXT,
    anonymous_id TEXT,
    type TEXT NOT NULL,
    name TEXT,
    timestamp INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    raw TEXT NOT NULL,
    UNIQUE (workspace_id, message_id)
);
CREATE INDEX events_by_workspace ON events (workspace_id, seq);
CREATE TABLE customers (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    customer_id TEXT NOT NULL,
    user_id TEXT,
    identities TEXT NOT NULL,
    traits TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    merged_into TEXT,
    PRIMARY KEY (workspace_id, customer_id)
);
CREATE INDEX customers_by_user ON customers (workspace_id, user_id);
"#,
    ),
    (
        2,
        "marketing spend per channel and month",
        r#"
CREATE TABLE spend (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    channel TEXT NOT NULL,
    month TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, channel, month, currency)
);
"#,
    ),
    (
        3,
        "segment definitions",
        r#"
CREATE TABLE segments (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (workspace_id, id)
);
"#,
    ),
    (
        4,
        "churn-risk models",
        r#"
CREATE TABLE risk_models (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    id INTEGER NOT NULL,
    trained_at INTEGER NOT NULL,
    learner TEXT NOT NULL,
    report TEXT NOT NULL,
    model TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
"#,
    ),
    (
        5,
        "health models",
        r#"
CREATE TABLE health_models (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
"#,
    ),
    (
        6,
        "events by customer",
        r#"
CREATE INDEX events_by_customer ON events (workspace_id, customer_id, timestamp);
"#,
    ),
    (
        7,
        "workspace renewal policy",
        r#"
ALTER TABLE workspaces ADD COLUMN renewals TEXT NOT NULL DEFAULT 'auto';
"#,
    ),
    (
        8,
        "key names, expiry, revocation and last use; the audit log",
        r#"
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_workspace ON audit_log (workspace_id, id);
"#,
    ),
];
pub struct SqliteBackend {
    conn: Connection,
}

impl SqliteBackend {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Reads through a memory map: a rebuild scans the whole log, and copying every page
        // through read(2) cost a third of it.
        conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
        // A page cache of up to 64 MiB (the default is 2 MiB), filled only as pages are
        // used: storing a backfill's events inserts into three indexes at random places,
        // and with the default cache the same pages were read and written again and again
        // (43,830 membership events: 1.63 s with 2 MiB, 0.79 s with 64 MiB).
        conn.pragma_update(None, "cache_size", -65536i64)?;
        Ok(Self { conn })
    }
}

impl Backend for SqliteBackend {
    fn migrate(&mut self) -> Result<Vec<String>> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )?;
        let mut applied = Vec::new();
        for (version, name, sql) in MIGRATIONS {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let done: Option<i64> = tx
                .query_row(
                    "SELECT version FROM schema_migrations WHERE version = ?1",
                    [version],
                    |r| r.get(0),
                )
                .optional()?;
            if done.is_none() {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, strftime('%s','now') * 1000)",
                    params![version, name],
                )?;
                applied.push(format!("{version}: {name}"));
            }
            tx.commit()?;
        }
        Ok(applied)
    }

    fn create_workspace(&mut self, ws: &Workspace) -> Result<()> {
        let inserted = self.conn.execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![ws.id.as_str(), ws.name, ws.created_at],
        )?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a workspace named `{}` already exists",
                ws.name
            )));
        }
        Ok(())
    }

    fn workspace_renewals(&mut self, workspace: &WorkspaceId) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT renewals FROM workspaces WHERE id = ?1",
                [workspace.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_workspace_renewals(&mut self, workspace: &WorkspaceId, renewals: &str) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE workspaces SET renewals = ?2 WHERE id = ?1",
            params![workspace.as_str(), renewals],
        )? > 0)
    }

    fn workspaces(&mut self) -> Result<Vec<Workspace>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, created_at FROM workspaces ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (id, name, created_at) = row?;
            let id = WorkspaceId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Workspace {
                id,
                name,
                created_at,
            })
        })
        .collect()
    }

    fn create_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO api_keys (id, workspace_id, kind, secret_hash, created_at, name, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![key.id.as_str(), key.workspace.as_str(), key.kind.as_str(), secret_hash, key.created_at, key.name, key.expires_at],
        )?;
        Ok(())
    }

    fn find_key(&mut self, secret_hash: &str) -> Result<Option<ApiKey>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?1"
        ))?;
        let row = stmt.query_row([secret_hash], key_columns).optional()?;
        row.map(KeyColumns::into_key).transpose()
    }

    fn keys(&mut self, workspace: &WorkspaceId) -> Result<Vec<ApiKey>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = ?1 ORDER BY created_at DESC, id"
        ))?;
        let rows = stmt.query_map([workspace.as_str()], key_columns)?;
        rows.map(|r| r?.into_key()).collect()
    }

    fn revoke_key(&mut self, workspace: &WorkspaceId, id: &KeyId, at: i64) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE api_keys SET revoked_at = ?3 WHERE workspace_id = ?1 AND id = ?2 AND revoked_at IS NULL",
            params![workspace.as_str(), id.as_str(), at],
        )? > 0)
    }

    fn touch_key(&mut self, id: &KeyId, at: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
            params![id.as_str(), at],
        )?;
        Ok(())
    }

    fn audit(&mut self, workspace: &WorkspaceId, e: &AuditEntry) -> Result<()> {
        self.conn.execute(
            "INSERT INTO audit_log (workspace_id, at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![workspace.as_str(), e.at, e.actor, e.action, e.target, e.detail],
        )?;
        Ok(())
    }

    fn audit_log(&mut self, workspace: &WorkspaceId, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, actor, action, target, detail FROM audit_log WHERE workspace_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![workspace.as_str(), limit as i64], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                actor: r.get(1)?,
                action: r.get(2)?,
                target: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn existing_message_ids(
        &mut self,
        workspace: &WorkspaceId,
        ids: &[&str],
    ) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE workspace_id = ?1 AND message_id = ?2")?;
        let mut found = HashSet::new();
        for id in ids {
            if stmt.exists(params![workspace.as_str(), id])? {
                found.insert((*id).to_owned());
            }
        }
        Ok(found)
    }

    fn replace_events(
        &mut self,
        workspace: &WorkspaceId,
        messages: &[&Message],
    ) -> Result<Vec<Replaced>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(messages.len());
        {
            let mut update = tx.prepare_cached(
                "UPDATE events SET name = ?3, timestamp = ?4, received_at = ?5, raw = ?6
                 WHERE workspace_id = ?1 AND message_id = ?2 AND type = ?7
                   AND user_id IS ?8 AND anonymous_id IS ?9",
            )?;
            let mut exists = tx.prepare_cached(
                "SELECT 1 FROM events WHERE workspace_id = ?1 AND message_id = ?2",
            )?;
            for m in messages {
                let changed = update.execute(params![
                    workspace.as_str(),
                    m.message_id,
                    m.name,
                    m.timestamp,
                    m.received_at,
                    m.raw_json(),
                    m.kind.as_str(),
                    m.user_id,
                    m.anonymous_id,
                ])?;
                results.push(if changed > 0 {
                    Replaced::Replaced
                } else if exists.exists(params![workspace.as_str(), m.message_id])? {
                    Replaced::IdentityDiffers
                } else {
                    Replaced::NotFound
                });
            }
        }
        tx.commit()?;
        Ok(results)
    }

    fn append(&mut self, appends: &[Append<'_>]) -> Result<Vec<Appended>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(appends.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (workspace_id, message_id, customer_id, user_id, anonymous_id, type, name, timestamp, received_at, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING RETURNING seq",
            )?;
            let mut upsert = tx.prepare_cached(
                "INSERT INTO customers (workspace_id, customer_id, user_id, identities, traits, first_seen, merged_into)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (workspace_id, customer_id) DO UPDATE SET user_id = excluded.user_id,
                   identities = excluded.identities, traits = excluded.traits,
                   first_seen = excluded.first_seen, merged_into = excluded.merged_into",
            )?;
            for append in appends {
                let ws = append.workspace.as_str();
                let mut seqs = Vec::with_capacity(append.events.len());
                for e in &append.events {
                    let m = e.message;
                    let seq: Option<i64> = insert
                        .query_row(
                            params![
                                ws,
                                m.message_id,
                                e.customer.as_str(),
                                m.user_id,
                                m.anonymous_id,
                                m.kind.as_str(),
                                m.name,
                                m.timestamp,
                                m.received_at,
                                m.raw_json()
                            ],
                            |r| r.get(0),
                        )
                        .optional()?;
                    seqs.push(seq);
                }
                for c in &append.customers {
                    upsert.execute(params![
                        ws,
                        c.id.as_str(),
                        c.user_id,
                        c.identities,
                        c.traits,
                        c.first_seen,
                        c.merged_into.as_ref().map(CustomerId::as_str)
                    ])?;
                }
                results.push(seqs);
            }
        }
        tx.commit()?;
        Ok(results)
    }

    fn scan_log(
        &mut self,
        workspace: &WorkspaceId,
        after: i64,
        visit: &mut dyn FnMut(i64, LogColumns<'_>),
    ) -> Result<()> {
        let sql = "SELECT seq, message_id, type, name, user_id, anonymous_id, timestamp, received_at, raw FROM events
             WHERE workspace_id = ?1 AND seq > ?2 ORDER BY seq";
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![workspace.as_str(), after])?;
        while let Some(row) = rows.next()? {
            let kind = row
                .get_ref(2)?
                .as_str()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            visit(
                row.get(0)?,
                LogColumns {
                    message_id: row.get(1)?,
                    kind,
                    name: row.get(3)?,
                    user_id: row.get(4)?,
                    anonymous_id: row.get(5)?,
                    timestamp: row.get(6)?,
                    received_at: row.get(7)?,
                    raw: row.get(8)?,
                },
            );
        }
        Ok(())
    }

    fn events_after(
        &mut self,
        workspace: &WorkspaceId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, message_id, customer_id, type, name, timestamp, received_at, raw FROM events
             WHERE workspace_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![workspace.as_str(), after, limit as i64],
            stored_event,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn customer_events(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let ids: Vec<&str> = customers.iter().map(CustomerId::as_str).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, message_id, customer_id, type, name, timestamp, received_at, raw FROM events
             WHERE workspace_id = ?1 AND customer_id IN (SELECT value FROM json_each(?2))
             ORDER BY timestamp DESC, seq DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![workspace.as_str(), ids, limit as i64], stored_event)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn erase_customers(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> Result<u64> {
        let ids: Vec<&str> = customers.iter().map(CustomerId::as_str).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let events = tx.execute(
            "DELETE FROM events WHERE workspace_id = ?1 AND customer_id IN (SELECT value FROM json_each(?2))",
            params![workspace.as_str(), ids],
        )?;
        tx.execute(
            "DELETE FROM customers WHERE workspace_id = ?1 AND (customer_id IN (SELECT value FROM json_each(?2)) OR merged_into IN (SELECT value FROM json_each(?2)))",
            params![workspace.as_str(), ids],
        )?;
        tx.commit()?;
        Ok(events as u64)
    }

    fn event_count(&mut self, workspace: &WorkspaceId) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM events WHERE workspace_id = ?1",
            [workspace.as_str()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    fn put_spend(&mut self, workspace: &WorkspaceId, spend: &[Spend]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO spend (workspace_id, channel, month, currency, amount_minor)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (workspace_id, channel, month, currency)
                 DO UPDATE SET amount_minor = excluded.amount_minor",
            )?;
            for s in spend {
                stmt.execute(rusqlite::params![
                    workspace.as_str(),
                    s.channel,
                    s.month,
                    s.currency.as_str(),
                    s.amount
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn segments(&mut self, workspace: &WorkspaceId) -> Result<Vec<SegmentRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, definition, version, created_at, updated_at FROM segments
             WHERE workspace_id = ?1 AND deleted_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([workspace.as_str()], |r| {
            Ok(SegmentRow {
                id: r.get(0)?,
                name: r.get(1)?,
                definition: r.get(2)?,
                version: r.get(3)?,
                created_at: r.get(4)?,
                updated_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn create_segment(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<u32> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: u32 = tx.query_row(
            "SELECT COALESCE(MAX(id), 0) + 1 FROM segments WHERE workspace_id = ?1",
            [workspace.as_str()],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO segments (workspace_id, id, name, definition, version, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
            params![workspace.as_str(), id, name, definition, at],
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn update_segment(
        &mut self,
        workspace: &WorkspaceId,
        id: u32,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE segments SET name = ?3, definition = ?4, version = version + 1, updated_at = ?5
             WHERE workspace_id = ?1 AND id = ?2 AND deleted_at IS NULL",
            params![workspace.as_str(), id, name, definition, at],
        )?;
        Ok(n == 1)
    }

    fn save_risk_model(&mut self, workspace: &WorkspaceId, model: &NewRiskModel) -> Result<i64> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: i64 = tx.query_row(
            "SELECT COALESCE(MAX(id), 0) + 1 FROM risk_models WHERE workspace_id = ?1",
            [workspace.as_str()],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO risk_models (workspace_id, id, trained_at, learner, report, model)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                workspace.as_str(),
                id,
                model.trained_at,
                model.learner,
                model.report,
                model.model
            ],
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn latest_risk_model(&mut self, workspace: &WorkspaceId) -> Result<Option<RiskModelRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, trained_at, learner, report, model FROM risk_models
                 WHERE workspace_id = ?1 ORDER BY id DESC LIMIT 1",
                [workspace.as_str()],
                |r| {
                    Ok(RiskModelRow {
                        id: r.get(0)?,
                        trained_at: r.get(1)?,
                        learner: r.get(2)?,
                        report: r.get(3)?,
                        model: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn latest_risk_model_key(&mut self, workspace: &WorkspaceId) -> Result<Option<(i64, i64)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, trained_at FROM risk_models WHERE workspace_id = ?1
                 ORDER BY id DESC LIMIT 1",
                [workspace.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn health_models(&mut self, workspace: &WorkspaceId) -> Result<Vec<HealthModelRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, definition, updated_at FROM health_models
             WHERE workspace_id = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([workspace.as_str()], |r| {
            Ok(HealthModelRow {
                name: r.get(0)?,
                definition: r.get(1)?,
                updated_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn put_health_model(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO health_models (workspace_id, name, definition, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (workspace_id, name) DO UPDATE
             SET definition = excluded.definition, updated_at = excluded.updated_at",
            params![workspace.as_str(), name, definition, at],
        )?;
        Ok(())
    }

    fn delete_health_model(&mut self, workspace: &WorkspaceId, name: &str) -> Result<bool> {
        let n = self.conn.execute(
            "DELETE FROM health_models WHERE workspace_id = ?1 AND name = ?2",
            params![workspace.as_str(), name],
        )?;
        Ok(n == 1)
    }

    fn delete_segment(&mut self, workspace: &WorkspaceId, id: u32, at: i64) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE segments SET deleted_at = ?3
             WHERE workspace_id = ?1 AND id = ?2 AND deleted_at IS NULL",
            params![workspace.as_str(), id, at],
        )?;
        Ok(n == 1)
    }

    fn spend(&mut self, workspace: &WorkspaceId) -> Result<Vec<Spend>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT channel, month, currency, amount_minor FROM spend
             WHERE workspace_id = ?1 ORDER BY month, channel, currency",
        )?;
        let rows = stmt.query_map([workspace.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.map(|row| {
            let (channel, month, currency, amount) = row?;
            crate::spend_row(channel, month, currency, amount)
        })
        .collect()
    }

    fn customer_row(
        &mut self,
        workspace: &WorkspaceId,
        id: &CustomerId,
    ) -> Result<Option<CustomerRow>> {
        let row = self
            .conn
            .query_row(
                "SELECT user_id, identities, traits, first_seen, merged_into FROM customers WHERE workspace_id = ?1 AND customer_id = ?2",
                params![workspace.as_str(), id.as_str()],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(user_id, identities, traits, first_seen, merged)| {
            let merged_into = merged
                .map(|m| CustomerId::parse(&m))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(CustomerRow {
                id: id.clone(),
                user_id,
                identities,
                traits,
                first_seen,
                merged_into,
            })
        })
        .transpose()
    }
}

/// The columns of a key, in the order [`KeyColumns`] reads them (both backends).
pub(crate) const KEY_COLUMNS: &str =
    "id, workspace_id, kind, created_at, name, expires_at, revoked_at, last_used_at";

/// A key's row, before its ids are parsed.
pub(crate) struct KeyColumns {
    pub id: String,
    pub workspace: String,
    pub kind: String,
    pub created_at: i64,
    pub name: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

fn key_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyColumns> {
    Ok(KeyColumns {
        id: r.get(0)?,
        workspace: r.get(1)?,
        kind: r.get(2)?,
        created_at: r.get(3)?,
        name: r.get(4)?,
        expires_at: r.get(5)?,
        revoked_at: r.get(6)?,
        last_used_at: r.get(7)?,
    })
}

impl KeyColumns {
    pub(crate) fn into_key(self) -> Result<ApiKey> {
        let corrupt = |e: String| StoreError::Corrupt(e);
        let kind = self.kind;
        Ok(ApiKey {
            id: KeyId::parse(&self.id).map_err(|e| corrupt(e.to_string()))?,
            workspace: WorkspaceId::parse(&self.workspace).map_err(|e| corrupt(e.to_string()))?,
            kind: KeyKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("unknown key kind `{kind}`")))?,
            created_at: self.created_at,
            name: self.name,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// A row of `SELECT seq, message_id, customer_id, type, name, timestamp, received_at, raw`.
fn stored_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get(0)?,
        message_id: r.get(1)?,
        customer: r.get(2)?,
        kind: r.get(3)?,
        name: r.get(4)?,
        timestamp: r.get(5)?,
        received_at: r.get(6)?,
        raw: r.get(7)?,
    })
}
