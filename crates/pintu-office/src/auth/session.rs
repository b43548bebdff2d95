//! Server-side sessions. The browser holds a random token in a cookie; the database holds only
//! the token's SHA-256, with the session's CSRF token, expiry and revocation. Every request looks
//! the session up again (with its account), so a revoked session or a disabled account is out
//! at the next request, on every instance sharing the database.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::role::Role;
use crate::db::{now_ms, Db, DbError};

/// A live session and who it belongs to.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie token (hex): the session's key.
    pub token_hash: String,
    /// The account.
    pub account_id: String,
    /// Its username.
    pub username: String,
    /// Its shown name.
    pub display_name: String,
    /// Its roles now.
    pub roles: BTreeSet<Role>,
    /// The token state-changing requests must echo.
    pub csrf_token: String,
    /// When it ends at the latest.
    pub expires_at_ms: i64,
}

/// A fresh random token (32 bytes, base64url).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    B64URL.encode(bytes)
}

/// The stored form of a cookie token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Opens a session for `account_id`; returns the cookie token and the CSRF token.
pub async fn open(
    db: &Db,
    account_id: &str,
    lifetime: Duration,
    client_addr: &str,
    user_agent: &str,
) -> Result<(String, String), DbError> {
    let token = random_token();
    let csrf = random_token();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO sessions (token_hash, account_id, csrf_token, created_at_ms, last_seen_ms, \
         expires_at_ms, client_addr, user_agent) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
    )
    .bind(token_hash(&token))
    .bind(account_id)
    .bind(&csrf)
    .bind(now)
    .bind(now + lifetime.as_millis() as i64)
    .bind(pintu_core::text::bounded(client_addr, 64))
    .bind(pintu_core::text::bounded(user_agent, 200))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((token, csrf))
}

/// The live session of cookie `token`: not expired, not idle longer than `idle`, not revoked,
/// its account not disabled. Marks it seen (at most once a minute, to spare the database).
pub async fn lookup(db: &Db, token: &str, idle: Duration) -> Result<Option<Session>, DbError> {
    let hash = token_hash(token);
    let now = now_ms();
    let row = sqlx::query(
        "SELECT s.account_id, a.username, a.display_name, s.csrf_token, s.expires_at_ms, \
         s.last_seen_ms FROM sessions s JOIN accounts a ON a.id = s.account_id \
         WHERE s.token_hash = $1 AND s.revoked_at_ms IS NULL AND a.disabled = 0 \
         AND s.expires_at_ms > $2 AND s.last_seen_ms > $3",
    )
    .bind(&hash)
    .bind(now)
    .bind(now - idle.as_millis() as i64)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let account_id: String = row.try_get(0)?;
    let last_seen: i64 = row.try_get(5)?;
    if now - last_seen > 60_000 {
        let mut tx = db.begin_write().await?;
        sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let roles = sqlx::query("SELECT role FROM account_roles WHERE account_id = $1")
        .bind(&account_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok()?.parse().ok())
        .collect();
    Ok(Some(Session {
        token_hash: hash,
        account_id,
        username: row.try_get(1)?,
        display_name: row.try_get(2)?,
        roles,
        csrf_token: row.try_get(3)?,
        expires_at_ms: row.try_get(4)?,
    }))
}

/// Ends one session (logout).
pub async fn revoke(db: &Db, token_hash: &str) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE sessions SET revoked_at_ms = $1 WHERE token_hash = $2")
        .bind(now_ms())
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
