//! Server-side sessions. The browser holds a random token in a cookie; the database holds only
//! the token's SHA-256, with the session's CSRF token, expiry and revocation. Every request looks
//! the session up again (with its account), so a revoked session or a disabled account is out
//! at the next request, on every instance sharing the database.
//!
//! A session may be *restricted* ([`Restriction`]): when an administrator chose the account's
//! password, or when the account's roles need a second factor the login did not prove. Such a
//! session reaches only the endpoints that lift the restriction (see [`super::LimitedActor`]).

use std::collections::BTreeSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use sqlx::Row;

use serde::Serialize;

use super::role::{self, Role};
use crate::db::{now_ms, Db, DbError, Tx};

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
    /// Whether the login proved a second factor (or one was enrolled during the session).
    pub second_factor: bool,
    /// Whether the account must change its password before anything else.
    pub must_change_password: bool,
}

/// What a restricted session may only do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restriction {
    /// Change the password an administrator chose (`POST /api/v1/me/password`).
    ChangePassword,
    /// Enrol a second factor (TOTP or a passkey): the account's roles need one.
    EnrolSecondFactor,
}

impl Session {
    /// The restriction in force, if any.
    pub fn restriction(&self) -> Option<Restriction> {
        restriction_for(self.must_change_password, self.second_factor, &self.roles)
    }
}

/// The restriction of a session (the password first, then the second factor). Computed at
/// every request, so a role that needs a second factor, granted during a session opened
/// without one, restricts that session at once.
pub fn restriction_for(
    must_change_password: bool,
    second_factor: bool,
    roles: &BTreeSet<Role>,
) -> Option<Restriction> {
    if must_change_password {
        Some(Restriction::ChangePassword)
    } else if !second_factor && roles.iter().any(|r| role::needs_second_factor(*r)) {
        Some(Restriction::EnrolSecondFactor)
    } else {
        None
    }
}

/// A session as an administrator sees it in a list (never the token or the CSRF token).
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// The session's id: the SHA-256 of its token (the token itself is never stored).
    pub id: String,
    /// Opened (Unix ms).
    pub created_at_ms: i64,
    /// Last request (Unix ms, to the minute).
    pub last_seen_ms: i64,
    /// Ends at the latest (Unix ms).
    pub expires_at_ms: i64,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// Browser at login.
    pub user_agent: Option<String>,
    /// Whether the login proved a second factor.
    pub second_factor: bool,
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

/// Opens a session for `account_id` (`second_factor`: the login proved one); returns the
/// cookie token and the CSRF token.
pub async fn open(
    db: &Db,
    account_id: &str,
    lifetime: Duration,
    client_addr: &str,
    user_agent: &str,
    second_factor: bool,
) -> Result<(String, String), DbError> {
    let token = random_token();
    let csrf = random_token();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO sessions (token_hash, account_id, csrf_token, created_at_ms, last_seen_ms, \
         expires_at_ms, client_addr, user_agent, second_factor) \
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8)",
    )
    .bind(token_hash(&token))
    .bind(account_id)
    .bind(&csrf)
    .bind(now)
    .bind(now + lifetime.as_millis() as i64)
    .bind(pintu_core::text::bounded(client_addr, 64))
    .bind(pintu_core::text::bounded(user_agent, 200))
    .bind(i64::from(second_factor))
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
         s.last_seen_ms, s.second_factor, a.must_change_password FROM sessions s JOIN accounts a ON a.id = s.account_id \
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
        second_factor: row.try_get::<i64, _>(6)? != 0,
        must_change_password: row.try_get::<i64, _>(7)? != 0,
    }))
}

/// Records that this session proved a second factor (it was enrolled during the session).
pub async fn mark_second_factor(tx: &mut Tx, token_hash: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE sessions SET second_factor = 1 WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ends every live session of `account_id` but `except` (a token hash); returns how many.
pub async fn revoke_all_of(
    tx: &mut Tx,
    account_id: &str,
    except: Option<&str>,
) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at_ms = $1 WHERE account_id = $2 AND revoked_at_ms IS NULL \
         AND token_hash <> $3",
    )
    .bind(now_ms())
    .bind(account_id)
    .bind(except.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Ends session `id` (a token hash) of `account_id`; whether there was such a live session.
pub async fn revoke_one_of(tx: &mut Tx, account_id: &str, id: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at_ms = $1 WHERE account_id = $2 AND token_hash = $3 \
         AND revoked_at_ms IS NULL",
    )
    .bind(now_ms())
    .bind(account_id)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The live (not revoked, not expired, not idle) sessions of `account_id`, newest first.
pub async fn list_of(
    db: &Db,
    account_id: &str,
    idle: Duration,
) -> Result<Vec<SessionInfo>, DbError> {
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT token_hash, created_at_ms, last_seen_ms, expires_at_ms, client_addr, user_agent, \
         second_factor FROM sessions WHERE account_id = $1 AND revoked_at_ms IS NULL \
         AND expires_at_ms > $2 AND last_seen_ms > $3 ORDER BY created_at_ms DESC",
    )
    .bind(account_id)
    .bind(now)
    .bind(now - idle.as_millis() as i64)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(SessionInfo {
                id: row.try_get(0)?,
                created_at_ms: row.try_get(1)?,
                last_seen_ms: row.try_get(2)?,
                expires_at_ms: row.try_get(3)?,
                client_addr: row.try_get(4)?,
                user_agent: row.try_get(5)?,
                second_factor: row.try_get::<i64, _>(6)? != 0,
            })
        })
        .collect()
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
