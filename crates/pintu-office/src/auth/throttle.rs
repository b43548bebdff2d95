//! Login throttling and lockout. Every attempt is a row of `login_attempts` (in the database,
//! so every instance sharing it counts the same attempts):
//! - per client address: `security.address_max_failures` failures within
//!   `security.address_window` and the address gets 429 with `Retry-After` until the oldest of
//!   them leaves the window;
//! - per account: `security.max_failed_logins` failures in a row lock it for
//!   `security.lockout` (columns `failed_logins`, `locked_until_ms`; audited `account.lock`;
//!   an administrator can unlock);
//! - per unknown login name: the same count over `login_attempts`, so that "locked" is said of
//!   names that exist and names that do not alike (the answer does not reveal accounts).

use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use crate::audit::{self, AuditActor, Entry};
use crate::db::{new_id, now_ms, Db, DbError};
use crate::secret::ServiceKey;

/// Attempts older than this are deleted (they count for nothing any more).
const KEEP: i64 = 24 * 3600 * 1000;

/// How an attempt ended, as stored in `login_attempts.success`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Wrong login name, password or second-factor code.
    Failed = 0,
    /// A session was opened.
    Succeeded = 1,
    /// Refused because the account (or name) was locked: counts for the address, not again
    /// for the name (the lock does not extend itself).
    WhileLocked = 2,
}

/// Seconds until `addr` may try again, when it has failed `max_failures` times within `window`.
pub async fn address_wait(
    db: &Db,
    addr: &str,
    max_failures: u32,
    window: Duration,
) -> Result<Option<u64>, DbError> {
    if addr.is_empty() {
        return Ok(None);
    }
    let window = window.as_millis() as i64;
    let now = now_ms();
    let row = sqlx::query(
        "SELECT COUNT(*), MIN(at_ms) FROM login_attempts WHERE client_addr = $1 \
         AND success <> 1 AND at_ms > $2",
    )
    .bind(addr)
    .bind(now - window)
    .fetch_one(db.pool())
    .await?;
    let count: i64 = row.try_get(0)?;
    if count < i64::from(max_failures) {
        return Ok(None);
    }
    let oldest: i64 = row.try_get::<Option<i64>, _>(1)?.unwrap_or(now);
    let wait_ms = (oldest + window - now).max(1000);
    Ok(Some((wait_ms as u64).div_ceil(1000)))
}

/// Records an attempt (and forgets attempts older than a day).
pub async fn record(db: &Db, login: &str, addr: &str, outcome: Outcome) -> Result<(), DbError> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO login_attempts (id, at_ms, login, client_addr, success) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(now)
    .bind(login)
    .bind(addr)
    .bind(outcome as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM login_attempts WHERE at_ms < $1")
        .bind(now - KEEP)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Until when an unknown login name counts as locked: `max` failures within `lockout`, the
/// lock running from the newest of them, like an account's.
pub async fn unknown_name_locked_until(
    db: &Db,
    login: &str,
    max: u32,
    lockout: Duration,
) -> Result<Option<i64>, DbError> {
    let now = now_ms();
    let lockout = lockout.as_millis() as i64;
    let row = sqlx::query(
        "SELECT COUNT(*), MAX(at_ms) FROM login_attempts WHERE login = $1 AND success = 0 \
         AND at_ms > $2",
    )
    .bind(login)
    .bind(now - lockout)
    .fetch_one(db.pool())
    .await?;
    let count: i64 = row.try_get(0)?;
    let newest: Option<i64> = row.try_get(1)?;
    Ok(match newest {
        Some(newest) if count >= i64::from(max) => Some(newest + lockout),
        _ => None,
    })
}

/// Counts a failed login of account `id`; at `max` in a row locks it for `lockout` (audited
/// `account.lock`). Returns the lock's end when this failure locked it.
pub async fn account_failed(
    db: &Db,
    key: &ServiceKey,
    id: &str,
    max: u32,
    lockout: Duration,
) -> Result<Option<i64>, DbError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let failed: i64 = sqlx::query("SELECT failed_logins FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let mut locked = None;
    if failed >= i64::from(max) {
        let until = now_ms() + lockout.as_millis() as i64;
        sqlx::query(
            "UPDATE accounts SET failed_logins = 0, locked_until_ms = $1, updated_at_ms = $2 \
             WHERE id = $3",
        )
        .bind(until)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            key,
            db.backend(),
            &AuditActor::system(),
            Entry::new("account.lock", format!("account:{id}"))
                .before(json!({ "failed_logins": failed - 1, "locked_until_ms": null }))
                .after(json!({ "failed_logins": 0, "locked_until_ms": until })),
        )
        .await?;
        locked = Some(until);
    }
    tx.commit().await?;
    Ok(locked)
}

/// A successful login clears the count of failures.
pub async fn account_succeeded(db: &Db, id: &str) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE accounts SET failed_logins = 0 WHERE id = $1 AND failed_logins <> 0")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
