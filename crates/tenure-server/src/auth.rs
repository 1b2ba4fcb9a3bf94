//! API keys: write keys (ingest only) and admin keys (everything in one workspace).
//!
//! Keys are 160 random bits; only their SHA-256 is stored. A fast hash is enough (and a slow
//! KDF would cost every ingest request): the secret has full entropy, so it cannot be
//! guessed from its hash by trying candidates. Segment SDKs send the write key as the
//! Basic-auth user name with an empty password; `Authorization: Bearer KEY` works too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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

/// Any valid key's caller (write or admin): what ingestion needs.
#[derive(Debug, Clone)]
pub struct AnyKey(pub Caller);

impl axum::extract::FromRequestParts<crate::AppState> for AnyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::AppState,
    ) -> Result<Self, ApiError> {
        Ok(AnyKey(state.keys.check(&parts.headers).await?))
    }
}

/// The caller, once its key is checked.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace: WorkspaceId,
    pub kind: KeyKind,
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
        },
        secret,
    ))
}

/// Checks keys against the store, remembering the keys it has seen.
#[derive(Clone)]
pub struct KeyChecker {
    store: Store,
    known: Arc<RwLock<HashMap<String, ApiKey>>>,
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
        let hash = hash_secret(secret);
        if let Some(key) = self.known.read().ok().and_then(|k| k.get(&hash).cloned()) {
            return Ok(Caller {
                workspace: key.workspace,
                kind: key.kind,
            });
        }
        let store = self.store.clone();
        let lookup = hash.clone();
        let found = tokio::task::spawn_blocking(move || store.with(|c| c.find_key(&lookup)))
            .await
            .map_err(|_| ApiError::new(Code::Internal, "key lookup was interrupted"))??;
        let Some(key) = found else {
            return Err(ApiError::new(
                Code::InvalidKey,
                "the API key is not valid: check for typos, or create one with `tenure keys create`",
            ));
        };
        if let Ok(mut known) = self.known.write() {
            known.insert(hash, key.clone());
        }
        Ok(Caller {
            workspace: key.workspace,
            kind: key.kind,
        })
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
