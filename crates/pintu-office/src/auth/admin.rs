//! What administrators do to accounts (the account administration API calls these), and a
//! user's change of their own password. Every change is one transaction with its audit record
//! (before and after); no change may leave the service without an enabled administrator.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use super::accounts::{self, Account, AccountError, PasswordChange};
use super::role::Role;
use super::session;
use crate::audit::{self, AuditActor, Entry};
use crate::db::{now_ms, Db};
use crate::secret::ServiceKey;

/// A search of the accounts (every part optional).
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Part of the username, the shown name or the NIP (case-insensitive).
    pub text: String,
    /// Only accounts holding this role.
    pub role: Option<Role>,
    /// Only disabled (`Some(true)`) or enabled (`Some(false)`) accounts.
    pub disabled: Option<bool>,
    /// The page starts after this username (keyset paging: stable while accounts change).
    pub after: String,
    /// Page size (1–200).
    pub limit: i64,
}

/// One page of accounts.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The accounts, by username.
    pub accounts: Vec<Account>,
    /// How many accounts match in all.
    pub total: i64,
    /// Pass as `after` for the next page (`None`: this was the last).
    pub next_after: Option<String>,
}

/// `text` as a LIKE pattern, its own `%`, `_` and `\` taken literally (`ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Lists accounts matching `search`, a page at a time, searched and paged in the database.
pub async fn list(db: &Db, search: &Search) -> Result<Page, AccountError> {
    let pattern = if search.text.trim().is_empty() {
        String::new()
    } else {
        like_pattern(&search.text)
    };
    let role = search.role.map(|r| r.as_str()).unwrap_or("");
    let disabled = search.disabled.map(i64::from).unwrap_or(-1);
    let limit = search.limit.clamp(1, 200);
    // One query text for every combination: an empty filter value switches its test off.
    let rows = sqlx::query(
        "SELECT a.id, a.username, a.nip, a.display_name, a.disabled, a.totp_enabled, \
         a.language, a.must_change_password, a.locked_until_ms FROM accounts a \
         WHERE ($1 = '' OR LOWER(a.username) LIKE $1 ESCAPE '\\' \
                OR LOWER(a.display_name) LIKE $1 ESCAPE '\\' OR a.nip LIKE $1 ESCAPE '\\') \
         AND ($2 = '' OR EXISTS (SELECT 1 FROM account_roles r WHERE r.account_id = a.id \
                                 AND r.role = $2)) \
         AND ($3 < 0 OR a.disabled = $3) \
         AND a.username > $4 \
         ORDER BY a.username LIMIT $5",
    )
    .bind(&pattern)
    .bind(role)
    .bind(disabled)
    .bind(&search.after)
    .bind(limit + 1)
    .fetch_all(db.pool())
    .await?;
    let total: i64 = sqlx::query(
        "SELECT COUNT(*) FROM accounts a \
         WHERE ($1 = '' OR LOWER(a.username) LIKE $1 ESCAPE '\\' \
                OR LOWER(a.display_name) LIKE $1 ESCAPE '\\' OR a.nip LIKE $1 ESCAPE '\\') \
         AND ($2 = '' OR EXISTS (SELECT 1 FROM account_roles r WHERE r.account_id = a.id \
                                 AND r.role = $2)) \
         AND ($3 < 0 OR a.disabled = $3)",
    )
    .bind(&pattern)
    .bind(role)
    .bind(disabled)
    .fetch_one(db.pool())
    .await?
    .try_get(0)?;
    let more = rows.len() as i64 > limit;
    let mut page = Vec::new();
    for row in rows.iter().take(limit as usize) {
        let id: String = row.try_get(0)?;
        let roles = accounts::roles_of(db, &id).await?;
        page.push(accounts::from_row(row, roles)?);
    }
    let next_after = if more {
        page.last().map(|a| a.username.clone())
    } else {
        None
    };
    Ok(Page {
        accounts: page,
        total,
        next_after,
    })
}

/// Replaces the roles of account `id` (audited `account.roles`, before and after).
pub async fn set_roles(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
    roles: BTreeSet<Role>,
) -> Result<Account, AccountError> {
    let before = accounts::get(db, id).await?;
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM account_roles WHERE account_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for role in &roles {
        sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
            .bind(id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE accounts SET updated_at_ms = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let admin = Role::Administrator;
    if before.roles.contains(&admin) && !roles.contains(&admin) && !before.disabled {
        accounts::ensure_an_administrator(&mut tx).await?;
    }
    let after = Account {
        roles,
        ..before.clone()
    };
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.roles", format!("account:{id}"))
            .before(&before)
            .after(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Lifts a lockout (audited `account.unlock`).
pub async fn unlock(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
) -> Result<(), AccountError> {
    let before = accounts::get(db, id).await?;
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE accounts SET failed_logins = 0, locked_until_ms = NULL, updated_at_ms = $1 \
         WHERE id = $2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.unlock", format!("account:{id}"))
            .before(json!({ "locked_until_ms": before.locked_until_ms }))
            .after(json!({ "locked_until_ms": null })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes an account's second factors — TOTP and every passkey — (a lost phone or key;
/// audited `account.second_factor.reset`) and ends its sessions: its next login may only
/// enrol a new one.
pub async fn reset_second_factor(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
) -> Result<(), AccountError> {
    let before = accounts::get(db, id).await?;
    let passkeys = super::passkey::count(db, id).await?;
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE accounts SET totp_secret = NULL, totp_enabled = 0, totp_last_step = NULL, \
         updated_at_ms = $1 WHERE id = $2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM passkeys WHERE account_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let ended = session::revoke_all_of(&mut tx, id, None).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.second_factor.reset", format!("account:{id}"))
            .before(json!({ "totp_enabled": before.totp_enabled, "passkeys": passkeys }))
            .after(json!({ "totp_enabled": false, "passkeys": 0, "sessions_ended": ended })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An administrator sets another account's password: its sessions end, its lockout is lifted
/// and its next login may only change the password (audited `account.password.reset`).
pub async fn reset_password(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
    new_password: &str,
) -> Result<(), AccountError> {
    accounts::set_password_as(
        db,
        key,
        by,
        id,
        new_password,
        PasswordChange {
            action: "account.password.reset",
            must_change: true,
            keep_session: None,
        },
    )
    .await
}

/// A user changes their own password, giving the current one: their other sessions end, this
/// one (`token_hash`) stays (audited `account.password.change`).
pub async fn change_own_password(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
    token_hash: &str,
    current: &str,
    new_password: &str,
) -> Result<(), AccountError> {
    let row = sqlx::query("SELECT password_hash FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(AccountError::NotFound)?;
    let hash: String = row.try_get(0)?;
    if !super::password::verify(current, &hash) {
        return Err(AccountError::Invalid {
            field: "current_password",
            message: "wrong current password".into(),
        });
    }
    if current == new_password {
        return Err(AccountError::Invalid {
            field: "new_password",
            message: "choose a password other than the current one".into(),
        });
    }
    accounts::set_password_as(
        db,
        key,
        by,
        id,
        new_password,
        PasswordChange {
            action: "account.password.change",
            must_change: false,
            keep_session: Some(token_hash),
        },
    )
    .await
}

/// Ends one session (`Some(session id)`) or all sessions of account `id` (audited
/// `session.revoke`); returns how many ended.
pub async fn revoke_sessions(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
    one: Option<&str>,
) -> Result<u64, AccountError> {
    accounts::get(db, id).await?;
    let mut tx = db.begin_write().await?;
    let ended = match one {
        Some(session_id) => {
            if !session::revoke_one_of(&mut tx, id, session_id).await? {
                return Err(AccountError::Refused {
                    code: "not_found",
                    message: "no such live session of this account".into(),
                });
            }
            1
        }
        None => session::revoke_all_of(&mut tx, id, None).await?,
    };
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("session.revoke", format!("account:{id}"))
            .after(json!({ "session": one, "ended": ended })),
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn search_text_is_taken_literally() {
        assert_eq!(like_pattern(" Budi "), "%budi%");
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
