//! API keys: write keys (ingest only) and admin keys (everything in one workspace).
//!
//! Keys are 160 random bits; only their SHA-256 is stored. A fast hash is enough (and a slow
//! KDF would cost every ingest request): the secret has full entropy, so it cannot be
//! guessed from its hash by trying candidates. Segment SDKs send the write key as the
//! Basic-auth user name with an empty password; `Authorization: Bearer KEY` works too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tenure_core::{KeyId, WorkspaceId};
use tenure_store::{ApiKey, KeyKind, Store};

use crate::error::{ApiError, Code};

/// An admin key's caller: a handler that takes one cannot run without an admin key of the
/// workspace it then works in (`Caller::workspace`). Missing or wrong key: `401`; a write
/// key: `403`.
#[derive(Debug, Clone)]
pub struct AdminKey(pub Caller);

impl axum::extract::FromRequestParts<crate::AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::AppState,
    ) -> Result<Self, ApiError> {
        let caller = state.keys.check(&parts.headers).await?;
        caller.require_admin()?;
        Ok(AdminKey(caller))
    }
}

/// The caller, once its key is checked.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace: WorkspaceId,
    pub kind: KeyKind,
    /// The key used (the actor in the audit log).
    pub key: KeyId,
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.kind {
            KeyKind::Admin => Ok(()),
            KeyKind::Write => Err(ApiError::new(
                Code::AdminKeyRequired,
                "this endpoint needs an admin key; a write key can only send events",
            )),
        }
    }
}

pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key: its record and the secret, which is shown once and never stored.
pub fn new_key(
    workspace: &WorkspaceId,
    kind: KeyKind,
    now: i64,
) -> Result<(ApiKey, String), getrandom::Error> {
    let mut id = [0u8; 10];
    getrandom::fill(&mut id)?;
    let mut secret = [0u8; 20];
    getrandom::fill(&mut secret)?;
    let prefix = match kind {
        KeyKind::Write => "tnr_w_",
        KeyKind::Admin => "tnr_a_",
    };
    let secret = format!("{prefix}{}", tenure_core::ids::base32(&secret));
    Ok((
        ApiKey {
            id: KeyId::from_random(id),
            workspace: workspace.clone(),
            kind,
            created_at: now,
            name: None,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        },
        secret,
    ))
}

/// How long a key read from the store is trusted before it is read again: revoking a key
/// takes effect within this on every process that shares the database.
const RECHECK: Duration = Duration::from_secs(1);
/// A key's last use is written at most this often (in milliseconds).
const LAST_USE_EVERY: i64 = 60_000;

#[derive(Clone)]
struct Known {
    key: ApiKey,
    read: Instant,
}

/// Checks keys against the store, remembering each for [`RECHECK`].
#[derive(Clone)]
pub struct KeyChecker {
    store: Store,
    known: Arc<RwLock<HashMap<String, Known>>>,
}

impl KeyChecker {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            known: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    pub async fn check(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.check_secret(&secret_from_headers(headers)?).await
    }

    /// Checks a key given as text (the dashboard's login form).
    pub async fn check_secret(&self, secret: &str) -> Result<Caller, ApiError> {
        self.check_hash(hash_secret(secret)).await
    }

    /// Checks a key by the hash of its secret (a dashboard session keeps only that).
    pub async fn check_hash(&self, hash: String) -> Result<Caller, ApiError> {
        let cached = self
            .known
            .read()
            .ok()
            .and_then(|k| k.get(&hash).cloned())
            .filter(|k| k.read.elapsed() < RECHECK);
        let key = match cached {
            Some(known) => known.key,
            None => self.read(hash).await?,
        };
        let now = jiff::Timestamp::now().as_millisecond();
        if key.revoked_at.is_some() {
            return Err(ApiError::new(
                Code::InvalidKey,
                "this API key was revoked: use another (`tenure keys list` shows them)",
            ));
        }
        if !key.is_valid_at(now) {
            return Err(ApiError::new(
                Code::InvalidKey,
                "this API key has expired: create a new one with `tenure keys create`",
            ));
        }
        Ok(Caller {
            workspace: key.workspace,
            kind: key.kind,
            key: key.id,
        })
    }

    /// Reads a key from the store (and records its use, at most once a minute).
    async fn read(&self, hash: String) -> Result<ApiKey, ApiError> {
        let store = self.store.clone();
        let lookup = hash.clone();
        let found = tokio::task::spawn_blocking(move || {
            store.with(|c| {
                let found = c.find_key(&lookup)?;
                let now = jiff::Timestamp::now().as_millisecond();
                if let Some(key) = &found
                    && key.is_valid_at(now)
                    && key.last_used_at.is_none_or(|t| now - t >= LAST_USE_EVERY)
                {
                    c.touch_key(&key.id, now)?;
                }
                Ok(found)
            })
        })
        .await
        .map_err(|_| ApiError::new(Code::Internal, "key lookup was interrupted"))??;
        let Some(key) = found else {
            if let Ok(mut known) = self.known.write() {
                known.remove(&hash);
            }
            return Err(ApiError::new(
                Code::InvalidKey,
                "the API key is not valid: check for typos, or create one with `tenure keys create`",
            ));
        };
        if let Ok(mut known) = self.known.write() {
            if known.len() > 100_000 {
                known.retain(|_, k| k.read.elapsed() < RECHECK);
            }
            known.insert(
                hash,
                Known {
                    key: key.clone(),
                    read: Instant::now(),
                },
            );
        }
        Ok(key)
    }
}

fn secret_from_headers(headers: &HeaderMap) -> Result<String, ApiError> {
    let missing = || {
        ApiError::new(
            Code::MissingKey,
            "no API key: send it as the Basic-auth user name (as Segment libraries do) or as `Authorization: Bearer KEY`",
        )
    };
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::new(Code::InvalidKey, "the Authorization header is not text"))?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(missing)?;
    let secret = if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| {
                ApiError::new(
                    Code::InvalidKey,
                    "the Basic credentials are not valid base64",
                )
            })?;
        let text = String::from_utf8(decoded)
            .map_err(|_| ApiError::new(Code::InvalidKey, "the Basic credentials are not UTF-8"))?;
        text.split_once(':')
            .map_or(text.clone(), |(user, _)| user.to_owned())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else {
        return Err(missing());
    };
    if secret.is_empty() {
        return Err(missing());
    }
    Ok(secret)
}
