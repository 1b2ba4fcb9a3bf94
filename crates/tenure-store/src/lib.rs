//! Persistence: the event log, workspaces, API keys and the customers projection, on SQLite
//! (the embedded default) and PostgreSQL, behind one [`Backend`] trait with one behaviour.
//!
//! The interface is synchronous on purpose. Appends go through a single writer thread (see
//! `tenure-server`'s `writer`), which batches them into transactions; reads run on blocking
//! threads. Both backends then share one implementation of everything above them, and the
//! SQLite hot path uses `rusqlite` directly, without an async shim (see
//! `docs/decisions.md`).

mod postgres_backend;
mod sqlite_backend;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tenure_core::metrics::Spend;
use tenure_core::money::Currency;
use tenure_core::{CustomerId, KeyId, LogColumns, Message, WorkspaceId};

pub use postgres_backend::PostgresBackend;
pub use sqlite_backend::SqliteBackend;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL `{0}` is not understood: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", postgres_cause(.0))]
    Postgres(#[from] postgres::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// What a client is told: a conflict says what to do; any other failure is the
    /// server's, logged there with its cause, and never shown to the client (it may name
    /// tables, values or another tenant's data).
    pub fn client_message(&self) -> String {
        match self {
            Self::Conflict(message) => message.clone(),
            _ => "the database refused or failed the write (the cause is in the server's log); nothing of this request was stored, retry it".into(),
        }
    }
}

/// The cause of a PostgreSQL error: the server's message, detail and SQLSTATE code when the
/// database answered (the client's own `Display` says only "db error"), else the client's
/// error and its source.
fn postgres_cause(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(table) = db.table() {
            text.push_str(&format!("; table {table}"));
        }
        return text;
    }
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// `sqlite://path/to.db`, `sqlite:path`, `postgres://…`, `postgresql://…`, or a bare path
    /// (SQLite).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(text.to_owned()));
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
            .unwrap_or(text);
        if path.is_empty() || text.contains("://") && !text.starts_with("sqlite://") {
            return Err(StoreError::BadUrl(text.to_owned()));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Ingest only.
    Write,
    /// Everything in its workspace.
    Admin,
}

impl KeyKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

/// An API key as stored: the secret is only kept as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub workspace: WorkspaceId,
    pub kind: KeyKind,
    pub created_at: i64,
    /// What it is for ("website", "ci"…), to tell keys apart when revoking one.
    pub name: Option<String>,
    /// It stops working at this instant.
    pub expires_at: Option<i64>,
    /// It was revoked at this instant: it no longer works anywhere.
    pub revoked_at: Option<i64>,
    /// Last seen in use (kept to the minute).
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    /// Whether the key works at `now`.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// One entry of the audit log: what an admin did, when, by which key (or `cli`), to what.
/// It never holds personal data (an erased customer appears by their `cus_` id only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: i64,
    /// The key id that did it (`key_…`), or `cli` for the command line.
    pub actor: String,
    /// `key.created`, `key.revoked`, `segment.saved`, `customer.erased`…
    pub action: String,
    /// What it was done to (a key id, a segment id, a `cus_` id…).
    pub target: String,
    /// A short description without personal data.
    pub detail: String,
}

/// One event to append, with the customer it was resolved to.
pub struct NewEvent<'a> {
    pub message: &'a Message,
    pub customer: &'a CustomerId,
}

/// An event as read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub message_id: String,
    pub customer: String,
    pub kind: String,
    pub name: Option<String>,
    pub timestamp: i64,
    pub received_at: i64,
    pub raw: String,
}

impl StoredEvent {
    pub fn message(&self) -> std::result::Result<Message, String> {
        Message::from_log(self.raw.clone(), self.timestamp, self.received_at)
    }
}

/// The customers projection: identity and traits, kept for queries outside the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub id: CustomerId,
    pub user_id: Option<String>,
    /// Identity keys (`u:…`, `a:…`) as a JSON array.
    pub identities: String,
    /// Traits as a JSON object.
    pub traits: String,
    pub first_seen: i64,
    /// Set when this customer was merged into another.
    pub merged_into: Option<CustomerId>,
}

/// Everything one writer transaction changes in one workspace.
pub struct Append<'a> {
    pub workspace: &'a WorkspaceId,
    pub events: Vec<NewEvent<'a>>,
    pub customers: Vec<CustomerRow>,
}

/// What [`Backend::replace_events`] did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    Replaced,
    /// No event with this message id: nothing to replace (append it instead).
    NotFound,
    /// The stored event of this id has another type or identity: left as it is.
    IdentityDiffers,
}

/// The result of appending: the sequence number of every inserted event, or `None` for an
/// event whose message id was already in the log (a concurrent writer got there first).
pub type Appended = Vec<Option<i64>>;

/// One database connection's worth of operations. Every query is scoped to a workspace.
pub trait Backend: Send {
    /// Applies the migrations not yet applied; returns the names of those it applied.
    fn migrate(&mut self) -> Result<Vec<String>>;
    fn create_workspace(&mut self, workspace: &Workspace) -> Result<()>;
    fn workspaces(&mut self) -> Result<Vec<Workspace>>;
    /// The workspace's renewal policy (`auto`, `implicit` or `explicit`; docs/metrics.md),
    /// `None` for no such workspace.
    fn workspace_renewals(&mut self, workspace: &WorkspaceId) -> Result<Option<String>>;
    /// Sets it; `false` for no such workspace.
    fn set_workspace_renewals(&mut self, workspace: &WorkspaceId, renewals: &str) -> Result<bool>;
    fn create_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<()>;
    /// The key with this secret hash, revoked or expired ones included.
    fn find_key(&mut self, secret_hash: &str) -> Result<Option<ApiKey>>;
    /// The workspace's keys, newest first.
    fn keys(&mut self, workspace: &WorkspaceId) -> Result<Vec<ApiKey>>;
    /// Revokes a key of the workspace; `false` if there is no such key not yet revoked.
    fn revoke_key(&mut self, workspace: &WorkspaceId, id: &KeyId, at: i64) -> Result<bool>;
    /// Records that a key was used at `at`.
    fn touch_key(&mut self, id: &KeyId, at: i64) -> Result<()>;
    /// Appends to the workspace's audit log.
    fn audit(&mut self, workspace: &WorkspaceId, entry: &AuditEntry) -> Result<()>;
    /// The workspace's audit log, newest first, at most `limit` entries.
    fn audit_log(&mut self, workspace: &WorkspaceId, limit: usize) -> Result<Vec<AuditEntry>>;
    /// Which of these message ids are already in the workspace's log.
    fn existing_message_ids(
        &mut self,
        workspace: &WorkspaceId,
        ids: &[&str],
    ) -> Result<HashSet<String>>;
    /// Rewrites stored events in place, by message id, in one transaction (`tenure import
    /// --replace`, the repair of events stored wrong): the time, name and text change; the
    /// sequence number and the customer stay. An event is only replaced by one of the same
    /// type and identity (`userId`, `anonymousId`).
    fn replace_events(
        &mut self,
        workspace: &WorkspaceId,
        messages: &[&Message],
    ) -> Result<Vec<Replaced>>;
    /// Appends the events and upserts the customer rows of several workspaces in one
    /// transaction: all of it is committed, or none of it.
    fn append(&mut self, appends: &[Append<'_>]) -> Result<Vec<Appended>>;
    /// Streams the events of a workspace with `seq > after`, in order, to `visit` (the
    /// rebuild's read: one pass, only the columns the fold needs).
    fn scan_log(
        &mut self,
        workspace: &WorkspaceId,
        after: i64,
        visit: &mut dyn FnMut(i64, LogColumns<'_>),
    ) -> Result<()>;
    /// Events of a workspace with `seq > after`, in order, at most `limit`.
    fn events_after(
        &mut self,
        workspace: &WorkspaceId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;
    /// The latest `limit` events of these customers (a customer and those merged into it),
    /// newest first by business timestamp.
    fn customer_events(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;
    fn event_count(&mut self, workspace: &WorkspaceId) -> Result<u64>;
    /// Erases customers (a person and the customers merged into them) in one transaction:
    /// every event stored under them and their rows in the customers projection, rows
    /// merged into them included. Returns how many events went. Sequence numbers are never
    /// reused (SQLite `AUTOINCREMENT`, PostgreSQL sequences).
    fn erase_customers(&mut self, workspace: &WorkspaceId, customers: &[CustomerId])
    -> Result<u64>;
    fn customer_row(
        &mut self,
        workspace: &WorkspaceId,
        id: &CustomerId,
    ) -> Result<Option<CustomerRow>>;
    /// Sets the spend of each (channel, month, currency), replacing an earlier value, in one
    /// transaction.
    fn put_spend(&mut self, workspace: &WorkspaceId, spend: &[Spend]) -> Result<()>;
    fn spend(&mut self, workspace: &WorkspaceId) -> Result<Vec<Spend>>;
    /// The workspace's segment definitions that are not deleted, by id.
    fn segments(&mut self, workspace: &WorkspaceId) -> Result<Vec<SegmentRow>>;
    /// Stores a new definition under the next id (ids are never reused); returns the id.
    fn create_segment(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<u32>;
    /// Replaces a definition; `false` if there is no such (undeleted) segment.
    fn update_segment(
        &mut self,
        workspace: &WorkspaceId,
        id: u32,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<bool>;
    /// Marks a segment deleted; `false` if there is no such (undeleted) segment.
    fn delete_segment(&mut self, workspace: &WorkspaceId, id: u32, at: i64) -> Result<bool>;
    /// Keeps a trained churn-risk model with its report (models are never replaced: the
    /// latest is the one in use); returns its id.
    fn save_risk_model(&mut self, workspace: &WorkspaceId, model: &NewRiskModel) -> Result<i64>;
    /// The latest model, with the model itself.
    fn latest_risk_model(&mut self, workspace: &WorkspaceId) -> Result<Option<RiskModelRow>>;
    /// The latest model's id and training instant, without the model (cheap: to tell
    /// whether a cached model is still the latest, or whether it is due for retraining).
    fn latest_risk_model_key(&mut self, workspace: &WorkspaceId) -> Result<Option<(i64, i64)>>;
    /// The workspace's health models (JSON text), by name.
    fn health_models(&mut self, workspace: &WorkspaceId) -> Result<Vec<HealthModelRow>>;
    /// Stores a health model under its name, replacing one of the same name.
    fn put_health_model(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        definition: &str,
        at: i64,
    ) -> Result<()>;
    /// Removes a health model; `false` if there was none of that name.
    fn delete_health_model(&mut self, workspace: &WorkspaceId, name: &str) -> Result<bool>;
}

/// A stored health model (`definition` is its JSON text, `applies_to` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthModelRow {
    pub name: String,
    pub definition: String,
    pub updated_at: i64,
}

/// A churn-risk model to keep (`report` and `model` are JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRiskModel {
    pub trained_at: i64,
    pub learner: String,
    pub report: String,
    pub model: String,
}

/// A kept churn-risk model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskModelRow {
    pub id: i64,
    pub trained_at: i64,
    pub learner: String,
    pub report: String,
    pub model: String,
}

/// A stored segment definition (`definition` is its JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub id: u32,
    pub name: String,
    pub definition: String,
    pub version: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Opens a connection to the database.
pub fn connect(url: &DatabaseUrl) -> Result<Box<dyn Backend>> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Box::new(SqliteBackend::open(path)?),
        DatabaseUrl::Postgres(url) => Box::new(PostgresBackend::connect(url)?),
    })
}

/// A small pool of connections for reads and administrative writes (the event log's appends
/// go through the writer's own connection).
#[derive(Clone)]
pub struct Store {
    url: DatabaseUrl,
    idle: Arc<Mutex<Vec<Box<dyn Backend>>>>,
}

impl Store {
    /// Connects and applies pending migrations.
    pub fn open(url: DatabaseUrl) -> Result<Self> {
        let mut first = connect(&url)?;
        first.migrate()?;
        Ok(Self {
            url,
            idle: Arc::new(Mutex::new(vec![first])),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A dedicated connection (for the writer).
    pub fn connect(&self) -> Result<Box<dyn Backend>> {
        connect(&self.url)
    }

    /// Runs `f` on a pooled connection. A connection that returned an error is dropped
    /// rather than reused, in case it is broken.
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn Backend) -> Result<R>) -> Result<R> {
        let pooled = self.idle.lock().map_or(None, |mut idle| idle.pop());
        let mut conn = match pooled {
            Some(conn) => conn,
            None => connect(&self.url)?,
        };
        let result = f(conn.as_mut());
        if result.is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < 8
        {
            idle.push(conn);
        }
        result
    }
}

/// A stored spend row back to its domain value.
fn spend_row(channel: String, month: String, currency: String, amount: i64) -> Result<Spend> {
    let currency = Currency::parse(&currency)
        .ok_or_else(|| StoreError::Corrupt(format!("spend currency `{currency}`")))?;
    Ok(Spend {
        channel,
        month,
        amount,
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16, item 8: PostgreSQL failures were logged as "PostgreSQL: db error".
    #[test]
    fn a_postgres_error_says_its_cause() {
        let url = std::env::var("TENURE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut client = match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(c) => c,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED: PostgreSQL not reachable at {url}: {e}");
                return;
            }
            Err(e) => panic!("CI=true but PostgreSQL is not reachable at {url}: {e}"),
        };
        let error = client.batch_execute("SELECT 1 / 0").unwrap_err();
        let text = StoreError::from(error).to_string();
        assert!(text.contains("division by zero"), "{text}");
        assert!(text.contains("SQLSTATE 22012"), "{text}");
        let client_text = StoreError::Postgres(client.batch_execute("SELECT 1 / 0").unwrap_err())
            .client_message();
        assert!(
            !client_text.contains("division"),
            "the cause stays in the log: {client_text}"
        );
    }

    #[test]
    fn database_urls_are_parsed_by_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://t.db").unwrap(),
            DatabaseUrl::Sqlite("t.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:/tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("./tenure.db").unwrap(),
            DatabaseUrl::Sqlite("./tenure.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }
}
