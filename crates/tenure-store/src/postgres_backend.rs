//! PostgreSQL: the same schema and behaviour as SQLite. Appends are sent as arrays
//! (`unnest`) so that one transaction of many events is one round trip.

use std::collections::{HashMap, HashSet};

use postgres::{Client, NoTls};
use tenure_core::{CustomerId, KeyId, LogColumns, Message, WorkspaceId};

use crate::sqlite_backend::{KEY_COLUMNS, KeyColumns};

fn key_row(r: &postgres::Row) -> KeyColumns {
    KeyColumns {
        id: r.get(0),
        workspace: r.get(1),
        kind: r.get(2),
        created_at: r.get(3),
        name: r.get(4),
        expires_at: r.get(5),
        revoked_at: r.get(6),
        last_used_at: r.get(7),
    }
}
use tenure_core::metrics::Spend;

use crate::{
    ApiKey, Append, Appended, AuditEntry, Backend, CustomerRow, HealthModelRow, NewRiskModel,
    Replaced, Result, RiskModelRow, SegmentRow, StoreError, StoredEvent, Workspace,
};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "event log, workspaces, keys, customers",
        r#"
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    kind TEXT NOT NULL CHECK (kind IN ('write', 'admin')),
    secret_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    message_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    user_id TEXT,
    anonymous_id TEXT,
    type TEXT NOT NULL,
    name TEXT,
    timestamp BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
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
    first_seen BIGINT NOT NULL,
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
    amount_minor BIGINT NOT NULL,
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
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
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
    id BIGINT NOT NULL,
    trained_at BIGINT NOT NULL,
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
    updated_at BIGINT NOT NULL,
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
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_workspace ON audit_log (workspace_id, id);
"#,
    ),
];
pub struct PostgresBackend {
    /// Always `Some` until dropped.
    client: Option<Client>,
}

impl PostgresBackend {
    pub fn connect(url: &str) -> Result<Self> {
        Ok(Self {
            client: Some(Client::connect(url, NoTls)?),
        })
    }

    fn conn(&mut self) -> Result<&mut Client> {
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("PostgreSQL connection already closed".into()))
    }
}

impl Drop for PostgresBackend {
    /// The sync client closes its connection by blocking on its own runtime, which panics
    /// on a thread that drives async tasks. Pooled connections can be dropped on such a
    /// thread (when the last handle to the store goes), so they are closed on a plain one.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = std::thread::Builder::new()
                .name("tenure-pg-close".into())
                .spawn(move || drop(client));
        }
    }
}

impl Backend for PostgresBackend {
    fn migrate(&mut self) -> Result<Vec<String>> {
        let mut applied = Vec::new();
        let mut tx = self.conn()?.transaction()?;
        // Serialises concurrent `tenure` processes migrating the same database.
        tx.execute("SELECT pg_advisory_xact_lock(7365001)", &[])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )?;
        for (version, name, sql) in MIGRATIONS {
            let done = tx.query_opt(
                "SELECT version FROM schema_migrations WHERE version = $1",
                &[version],
            )?;
            if done.is_none() {
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, (extract(epoch from now()) * 1000)::bigint)",
                    &[version, name],
                )?;
                applied.push(format!("{version}: {name}"));
            }
        }
        tx.commit()?;
        Ok(applied)
    }

    fn create_workspace(&mut self, ws: &Workspace) -> Result<()> {
        let inserted = self.conn()?.execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&ws.id.as_str(), &ws.name, &ws.created_at],
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
            .conn()?
            .query_opt(
                "SELECT renewals FROM workspaces WHERE id = $1",
                &[&workspace.as_str()],
            )?
            .map(|r| r.get(0)))
    }

    fn set_workspace_renewals(&mut self, workspace: &WorkspaceId, renewals: &str) -> Result<bool> {
        Ok(self.conn()?.execute(
            "UPDATE workspaces SET renewals = $2 WHERE id = $1",
            &[&workspace.as_str(), &renewals],
        )? > 0)
    }

    fn workspaces(&mut self) -> Result<Vec<Workspace>> {
        self.conn()?
            .query(
                "SELECT id, name, created_at FROM workspaces ORDER BY created_at, id",
                &[],
            )?
            .into_iter()
            .map(|r| {
                let id: String = r.get(0);
                let id = WorkspaceId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok(Workspace {
                    id,
                    name: r.get(1),
                    created_at: r.get(2),
                })
            })
            .collect()
    }

    fn create_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO api_keys (id, workspace_id, kind, secret_hash, created_at, name, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&key.id.as_str(), &key.workspace.as_str(), &key.kind.as_str(), &secret_hash, &key.created_at, &key.name, &key.expires_at],
        )?;
        Ok(())
    }

    fn find_key(&mut self, secret_hash: &str) -> Result<Option<ApiKey>> {
        let row = self.conn()?.query_opt(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1"),
            &[&secret_hash],
        )?;
        row.map(|r| key_row(&r).into_key()).transpose()
    }

    fn keys(&mut self, workspace: &WorkspaceId) -> Result<Vec<ApiKey>> {
        let rows = self.conn()?.query(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY created_at DESC, id"
            ),
            &[&workspace.as_str()],
        )?;
        rows.iter().map(|r| key_row(r).into_key()).collect()
    }

    fn revoke_key(&mut self, workspace: &WorkspaceId, id: &KeyId, at: i64) -> Result<bool> {
        Ok(self.conn()?.execute(
            "UPDATE api_keys SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL",
            &[&workspace.as_str(), &id.as_str(), &at],
        )? > 0)
    }

    fn touch_key(&mut self, id: &KeyId, at: i64) -> Result<()> {
        self.conn()?.execute(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1",
            &[&id.as_str(), &at],
        )?;
        Ok(())
    }

    fn audit(&mut self, workspace: &WorkspaceId, e: &AuditEntry) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO audit_log (workspace_id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&workspace.as_str(), &e.at, &e.actor, &e.action, &e.target, &e.detail],
        )?;
        Ok(())
    }

    fn audit_log(&mut self, workspace: &WorkspaceId, limit: usize) -> Result<Vec<AuditEntry>> {
        let rows = self.conn()?.query(
            "SELECT at, actor, action, target, detail FROM audit_log WHERE workspace_id = $1 ORDER BY id DESC LIMIT $2",
            &[&workspace.as_str(), &(limit as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at: r.get(0),
                actor: r.get(1),
                action: r.get(2),
                target: r.get(3),
                detail: r.get(4),
            })
            .collect())
    }

    fn existing_message_ids(
        &mut self,
        workspace: &WorkspaceId,
        ids: &[&str],
    ) -> Result<HashSet<String>> {
        let rows = self.conn()?.query(
            // One index probe per id. The plainer `message_id = ANY($2)` is planned as a scan
            // of the whole workspace while the table's statistics are stale (a table that
            // grew fast and was not analyzed yet), and got slower with every batch.
            "SELECT m.id FROM unnest($2::text[]) AS m(id) CROSS JOIN LATERAL \
             (SELECT 1 FROM events e WHERE e.workspace_id = $1 AND e.message_id = m.id LIMIT 1) AS found",
            &[&workspace.as_str(), &ids],
        )?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    fn replace_events(
        &mut self,
        workspace: &WorkspaceId,
        messages: &[&Message],
    ) -> Result<Vec<Replaced>> {
        let mut tx = self.conn()?.transaction()?;
        let update = tx.prepare(
            "UPDATE events SET name = $3, timestamp = $4, received_at = $5, raw = $6
             WHERE workspace_id = $1 AND message_id = $2 AND type = $7
               AND user_id IS NOT DISTINCT FROM $8 AND anonymous_id IS NOT DISTINCT FROM $9",
        )?;
        let exists =
            tx.prepare("SELECT 1 FROM events WHERE workspace_id = $1 AND message_id = $2")?;
        let mut results = Vec::with_capacity(messages.len());
        for m in messages {
            let changed = tx.execute(
                &update,
                &[
                    &workspace.as_str(),
                    &m.message_id,
                    &m.name,
                    &m.timestamp,
                    &m.received_at,
                    &m.raw_json(),
                    &m.kind.as_str(),
                    &m.user_id,
                    &m.anonymous_id,
                ],
            )?;
            results.push(if changed > 0 {
                Replaced::Replaced
            } else if tx
                .query_opt(&exists, &[&workspace.as_str(), &m.message_id])?
                .is_some()
            {
                Replaced::IdentityDiffers
            } else {
                Replaced::NotFound
            });
        }
        tx.commit()?;
        Ok(results)
    }

    fn append(&mut self, appends: &[Append<'_>]) -> Result<Vec<Appended>> {
        let mut tx = self.conn()?.transaction()?;
        let insert = tx.prepare(
            // No `ON CONFLICT DO NOTHING` here: speculative insertion cost ~25% of the append,
            // and the writer has already filtered out ids in the log. A duplicate can only
            // slip in from another process writing the same database between that check and
            // this insert; the unique constraint then fails the transaction, the writer
            // rebuilds its engine and the client gets a retryable `unavailable` (its retry is
            // recognised as a duplicate).
            "INSERT INTO events (workspace_id, message_id, customer_id, user_id, anonymous_id, type, name, timestamp, received_at, raw)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[])
             RETURNING message_id, seq",
        )?;
        let upsert = tx.prepare(
            "INSERT INTO customers (workspace_id, customer_id, user_id, identities, traits, first_seen, merged_into)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (workspace_id, customer_id) DO UPDATE SET user_id = excluded.user_id,
               identities = excluded.identities, traits = excluded.traits,
               first_seen = excluded.first_seen, merged_into = excluded.merged_into",
        )?;
        let mut results = Vec::with_capacity(appends.len());
        for append in appends {
            let ws = append.workspace.as_str();
            let events = &append.events;
            let message_ids: Vec<&str> = events
                .iter()
                .map(|e| e.message.message_id.as_str())
                .collect();
            let customers: Vec<&str> = events.iter().map(|e| e.customer.as_str()).collect();
            let user_ids: Vec<Option<&str>> = events
                .iter()
                .map(|e| e.message.user_id.as_deref())
                .collect();
            let anonymous_ids: Vec<Option<&str>> = events
                .iter()
                .map(|e| e.message.anonymous_id.as_deref())
                .collect();
            let kinds: Vec<&str> = events.iter().map(|e| e.message.kind.as_str()).collect();
            let names: Vec<Option<&str>> =
                events.iter().map(|e| e.message.name.as_deref()).collect();
            let timestamps: Vec<i64> = events.iter().map(|e| e.message.timestamp).collect();
            let received: Vec<i64> = events.iter().map(|e| e.message.received_at).collect();
            let raws: Vec<String> = events.iter().map(|e| e.message.raw_json()).collect();
            let rows = tx.query(
                &insert,
                &[
                    &ws,
                    &message_ids,
                    &customers,
                    &user_ids,
                    &anonymous_ids,
                    &kinds,
                    &names,
                    &timestamps,
                    &received,
                    &raws,
                ],
            )
            .map_err(|e| {
                if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                    StoreError::Conflict(
                        "another process stored some of these message ids at the same moment; nothing of this request was stored, retry it".into(),
                    )
                } else {
                    e.into()
                }
            })?;
            let mut seqs: HashMap<String, i64> =
                rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
            results.push(message_ids.iter().map(|id| seqs.remove(*id)).collect());
            for c in &append.customers {
                tx.execute(
                    &upsert,
                    &[
                        &ws,
                        &c.id.as_str(),
                        &c.user_id,
                        &c.identities,
                        &c.traits,
                        &c.first_seen,
                        &c.merged_into.as_ref().map(CustomerId::as_str),
                    ],
                )?;
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
        use postgres::fallible_iterator::FallibleIterator;
        let ws = workspace.as_str();
        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&ws, &after];
        let sql = "SELECT seq, message_id, type, name, user_id, anonymous_id, timestamp, received_at, raw FROM events
             WHERE workspace_id = $1 AND seq > $2 ORDER BY seq";
        let mut rows = self.conn()?.query_raw(sql, params)?;
        while let Some(row) = rows.next()? {
            visit(
                row.get(0),
                LogColumns {
                    message_id: row.get(1),
                    kind: row.get(2),
                    name: row.get(3),
                    user_id: row.get(4),
                    anonymous_id: row.get(5),
                    timestamp: row.get(6),
                    received_at: row.get(7),
                    raw: row.get(8),
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
        let rows = self.conn()?.query(
            "SELECT seq, message_id, customer_id, type, name, timestamp, received_at, raw FROM events
             WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&workspace.as_str(), &after, &(limit as i64)],
        )?;
        Ok(rows.iter().map(stored_event).collect())
    }

    fn customer_events(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let ids: Vec<&str> = customers.iter().map(CustomerId::as_str).collect();
        let rows = self.conn()?.query(
            "SELECT seq, message_id, customer_id, type, name, timestamp, received_at, raw FROM events
             WHERE workspace_id = $1 AND customer_id = ANY($2)
             ORDER BY timestamp DESC, seq DESC LIMIT $3",
            &[&workspace.as_str(), &ids, &(limit as i64)],
        )?;
        Ok(rows.iter().map(stored_event).collect())
    }

    fn erase_customers(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> Result<u64> {
        let ids: Vec<&str> = customers.iter().map(CustomerId::as_str).collect();
        let mut tx = self.conn()?.transaction()?;
        let events = tx.execute(
            "DELETE FROM events WHERE workspace_id = $1 AND customer_id = ANY($2)",
            &[&workspace.as_str(), &ids],
        )?;
        tx.execute(
            "DELETE FROM customers WHERE workspace_id = $1 AND (customer_id = ANY($2) OR merged_into = ANY($2))",
            &[&workspace.as_str(), &ids],
        )?;
        tx.commit()?;
        Ok(events)
    }

    fn event_count(&mut self, workspace: &WorkspaceId) -> Result<u64> {
        let n: i64 = self
            .conn()?
            .query_one(
                "SELECT count(*) FROM events WHERE workspace_id = $1",
                &[&workspace.as_str()],
            )?
            .get(0);
        Ok(n as u64)
    }

    fn put_spend(&mut self, workspace: &WorkspaceId, spend: &[Spend]) -> Result<()> {
        let mut tx = self.conn()?.transaction()?;
        let stmt = tx.prepare(
            "INSERT INTO spend (workspace_id, channel, month, currency, amount_minor)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (workspace_id, channel, month, currency)
             DO UPDATE SET amount_minor = excluded.amount_minor",
        )?;
        for s in spend {
            tx.execute(
                &stmt,
                &[
                    &workspace.as_str(),
                    &s.channel,
                    &s.month,
                    &s.currency.as_str(),
                    &s.amount,
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn segments(&mut self, workspace: &WorkspaceId) -> Result<Vec<SegmentRow>> {
        self.conn()?
            .query(
                "SELECT id, name, definition, version, created_at, updated_at FROM segments
                 WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY id",
                &[&workspace.as_str()],
            )?
            .into_iter()
            .map(|r| {
                Ok(SegmentRow {
                    id: u32::try_from(r.get::<_, i64>(0))
                        .map_err(|_| StoreError::Corrupt("segment id out of range".into()))?,
                    name: r.get(1),
                    definition: r.get(2),
                    version: u32::try_from(r.get::<_, i64>(3)).unwrap_or(u32::MAX),
                    created_at: r.get(4),
                    updated_at: r.get(5),
                })
            })
            .collect()
    }

    fn create_segment(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<u32> {
        let mut tx = self.conn()?.transaction()?;
        // Serialises id assignment per workspace across processes.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('tenure.segments.' || $1))",
            &[&workspace.as_str()],
        )?;
        let id: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(id), 0) + 1 FROM segments WHERE workspace_id = $1",
                &[&workspace.as_str()],
            )?
            .get(0);
        tx.execute(
            "INSERT INTO segments (workspace_id, id, name, definition, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 1, $5, $5)",
            &[&workspace.as_str(), &id, &name, &definition, &at],
        )?;
        tx.commit()?;
        u32::try_from(id).map_err(|_| StoreError::Corrupt("segment id out of range".into()))
    }

    fn update_segment(
        &mut self,
        workspace: &WorkspaceId,
        id: u32,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE segments SET name = $3, definition = $4, version = version + 1, updated_at = $5
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
            &[&workspace.as_str(), &i64::from(id), &name, &definition, &at],
        )?;
        Ok(n == 1)
    }

    fn save_risk_model(&mut self, workspace: &WorkspaceId, model: &NewRiskModel) -> Result<i64> {
        let mut tx = self.conn()?.transaction()?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('tenure.risk_models.' || $1))",
            &[&workspace.as_str()],
        )?;
        let id: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(id), 0) + 1 FROM risk_models WHERE workspace_id = $1",
                &[&workspace.as_str()],
            )?
            .get(0);
        tx.execute(
            "INSERT INTO risk_models (workspace_id, id, trained_at, learner, report, model)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &workspace.as_str(),
                &id,
                &model.trained_at,
                &model.learner,
                &model.report,
                &model.model,
            ],
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn latest_risk_model(&mut self, workspace: &WorkspaceId) -> Result<Option<RiskModelRow>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT id, trained_at, learner, report, model FROM risk_models
                 WHERE workspace_id = $1 ORDER BY id DESC LIMIT 1",
                &[&workspace.as_str()],
            )?
            .map(|r| RiskModelRow {
                id: r.get(0),
                trained_at: r.get(1),
                learner: r.get(2),
                report: r.get(3),
                model: r.get(4),
            }))
    }

    fn latest_risk_model_key(&mut self, workspace: &WorkspaceId) -> Result<Option<(i64, i64)>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT id, trained_at FROM risk_models WHERE workspace_id = $1
                 ORDER BY id DESC LIMIT 1",
                &[&workspace.as_str()],
            )?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn health_models(&mut self, workspace: &WorkspaceId) -> Result<Vec<HealthModelRow>> {
        Ok(self
            .conn()?
            .query(
                "SELECT name, definition, updated_at FROM health_models
                 WHERE workspace_id = $1 ORDER BY name",
                &[&workspace.as_str()],
            )?
            .into_iter()
            .map(|r| HealthModelRow {
                name: r.get(0),
                definition: r.get(1),
                updated_at: r.get(2),
            })
            .collect())
    }

    fn put_health_model(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO health_models (workspace_id, name, definition, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, name) DO UPDATE
             SET definition = excluded.definition, updated_at = excluded.updated_at",
            &[&workspace.as_str(), &name, &definition, &at],
        )?;
        Ok(())
    }

    fn delete_health_model(&mut self, workspace: &WorkspaceId, name: &str) -> Result<bool> {
        let n = self.conn()?.execute(
            "DELETE FROM health_models WHERE workspace_id = $1 AND name = $2",
            &[&workspace.as_str(), &name],
        )?;
        Ok(n == 1)
    }

    fn delete_segment(&mut self, workspace: &WorkspaceId, id: u32, at: i64) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE segments SET deleted_at = $3
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
            &[&workspace.as_str(), &i64::from(id), &at],
        )?;
        Ok(n == 1)
    }

    fn spend(&mut self, workspace: &WorkspaceId) -> Result<Vec<Spend>> {
        self.conn()?
            .query(
                "SELECT channel, month, currency, amount_minor FROM spend
                 WHERE workspace_id = $1 ORDER BY month, channel, currency",
                &[&workspace.as_str()],
            )?
            .into_iter()
            .map(|r| crate::spend_row(r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    fn customer_row(
        &mut self,
        workspace: &WorkspaceId,
        id: &CustomerId,
    ) -> Result<Option<CustomerRow>> {
        let row = self.conn()?.query_opt(
            "SELECT user_id, identities, traits, first_seen, merged_into FROM customers WHERE workspace_id = $1 AND customer_id = $2",
            &[&workspace.as_str(), &id.as_str()],
        )?;
        row.map(|r| {
            let merged: Option<String> = r.get(4);
            let merged_into = merged
                .map(|m| CustomerId::parse(&m))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(CustomerRow {
                id: id.clone(),
                user_id: r.get(0),
                identities: r.get(1),
                traits: r.get(2),
                first_seen: r.get(3),
                merged_into,
            })
        })
        .transpose()
    }
}

/// A row of `SELECT seq, message_id, customer_id, type, name, timestamp, received_at, raw`.
fn stored_event(r: &postgres::Row) -> StoredEvent {
    StoredEvent {
        seq: r.get(0),
        message_id: r.get(1),
        customer: r.get(2),
        kind: r.get(3),
        name: r.get(4),
        timestamp: r.get(5),
        received_at: r.get(6),
        raw: r.get(7),
    }
}
