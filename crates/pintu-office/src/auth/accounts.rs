//! Accounts: who may log in, by username or NIP, with which roles. Every change is audited in
//! the same transaction.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::Row;

use super::password;
use super::role::Role;
use crate::audit::{self, AuditActor, Entry};
use crate::db::{new_id, now_ms, Db, DbError};
use crate::secret::ServiceKey;

/// An account as the API shows it (never the password hash or the TOTP secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// NIP, if a civil servant.
    pub nip: Option<String>,
    /// Shown name.
    pub display_name: String,
    /// Roles held.
    pub roles: BTreeSet<Role>,
    /// Disabled accounts cannot log in and their sessions end at once.
    pub disabled: bool,
    /// Whether TOTP is set up.
    pub totp_enabled: bool,
    /// Page language (`id` or `en`).
    pub language: String,
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Login name.
    pub username: String,
    /// NIP (18 digits), optional.
    pub nip: Option<String>,
    /// Shown name.
    pub display_name: String,
    /// Initial password (checked against the policy).
    pub password: String,
    /// Roles.
    pub roles: BTreeSet<Role>,
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field is wrong.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Username or NIP taken.
    #[error("{0} is already used by another account")]
    Taken(&'static str),
    /// No such account.
    #[error("no such account")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        AccountError::Db(DbError::Query(e))
    }
}

/// Checks a username: 3–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn username_problem(name: &str) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !(3..=64).contains(&name.len()) || !ok_chars || !ok_start {
        return Some(
            "3 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
                .into(),
        );
    }
    None
}

/// Checks a NIP: 18 digits.
pub fn nip_problem(nip: &str) -> Option<String> {
    if nip.len() != 18 || !nip.bytes().all(|b| b.is_ascii_digit()) {
        return Some("a NIP has 18 digits".into());
    }
    None
}

/// Creates an account (audited as `account.create` by `by`).
pub async fn create(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    new: NewAccount,
) -> Result<Account, AccountError> {
    let username = new.username.trim().to_string();
    if let Some(message) = username_problem(&username) {
        return Err(AccountError::Invalid {
            field: "username",
            message,
        });
    }
    let nip = new
        .nip
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if let Some(message) = nip.as_deref().and_then(nip_problem) {
        return Err(AccountError::Invalid {
            field: "nip",
            message,
        });
    }
    let display_name =
        crate::input::single_line("display_name", &new.display_name, 120).map_err(|e| {
            AccountError::Invalid {
                field: "display_name",
                message: e.message,
            }
        })?;
    if let Some(message) = password::policy_problem(&new.password, &username) {
        return Err(AccountError::Invalid {
            field: "password",
            message,
        });
    }
    let mut tx = db.begin_write().await?;
    let taken = sqlx::query("SELECT username, nip FROM accounts WHERE username = $1 OR nip = $2")
        .bind(&username)
        .bind(&nip)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = taken {
        let other: String = row.try_get(0)?;
        return Err(AccountError::Taken(if other == username {
            "username"
        } else {
            "NIP"
        }));
    }
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO accounts (id, username, nip, display_name, password_hash, created_at_ms, \
         updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&id)
    .bind(&username)
    .bind(&nip)
    .bind(&display_name)
    .bind(password::hash(&new.password))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for role in &new.roles {
        sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
            .bind(&id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
    }
    let account = Account {
        id: id.clone(),
        username,
        nip,
        display_name,
        roles: new.roles,
        disabled: false,
        totp_enabled: false,
        language: "id".into(),
    };
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.create", format!("account:{id}")).after(&account),
    )
    .await?;
    tx.commit().await?;
    Ok(account)
}

/// The account with this id.
pub async fn get(db: &Db, id: &str) -> Result<Account, AccountError> {
    let row = sqlx::query(
        "SELECT id, username, nip, display_name, disabled, totp_enabled, language FROM accounts \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(AccountError::NotFound)?;
    let roles = roles_of(db, id).await?;
    Ok(Account {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        nip: row.try_get(2)?,
        display_name: row.try_get(3)?,
        roles,
        disabled: row.try_get::<i64, _>(4)? != 0,
        totp_enabled: row.try_get::<i64, _>(5)? != 0,
        language: row.try_get(6)?,
    })
}

/// The roles of account `id` (unknown role names in the table are ignored).
pub async fn roles_of(db: &Db, id: &str) -> Result<BTreeSet<Role>, AccountError> {
    let rows = sqlx::query("SELECT role FROM account_roles WHERE account_id = $1")
        .bind(id)
        .fetch_all(db.pool())
        .await?;
    let mut roles = BTreeSet::new();
    for row in rows {
        if let Ok(role) = row.try_get::<String, _>(0)?.parse() {
            roles.insert(role);
        }
    }
    Ok(roles)
}

/// What a login needs of an account.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Account id.
    pub id: String,
    /// Username.
    pub username: String,
    /// PHC hash.
    pub password_hash: String,
    /// Disabled.
    pub disabled: bool,
    /// Locked until (Unix ms).
    pub locked_until_ms: Option<i64>,
    /// Failed logins in a row.
    pub failed_logins: i64,
    /// TOTP secret (sealed) when enabled.
    pub totp_secret: Option<String>,
}

/// The credentials of the account whose username or NIP is `login`.
pub async fn credentials(db: &Db, login: &str) -> Result<Option<Credentials>, AccountError> {
    let row = sqlx::query(
        "SELECT id, username, password_hash, disabled, locked_until_ms, failed_logins, \
         totp_secret, totp_enabled FROM accounts WHERE username = $1 OR nip = $1",
    )
    .bind(login.trim())
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let totp_enabled = row.try_get::<i64, _>(7)? != 0;
    Ok(Some(Credentials {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        disabled: row.try_get::<i64, _>(3)? != 0,
        locked_until_ms: row.try_get(4)?,
        failed_logins: row.try_get(5)?,
        totp_secret: if totp_enabled { row.try_get(6)? } else { None },
    }))
}

/// Disables or enables an account; disabling ends its sessions in the same transaction.
pub async fn set_disabled(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
    disabled: bool,
) -> Result<(), AccountError> {
    let before = get(db, id).await?;
    let mut tx = db.begin_write().await?;
    let now = now_ms();
    sqlx::query("UPDATE accounts SET disabled = $1, updated_at_ms = $2 WHERE id = $3")
        .bind(i64::from(disabled))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if disabled {
        sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE account_id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    let after = Account {
        disabled,
        ..before.clone()
    };
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new(
            if disabled {
                "account.disable"
            } else {
                "account.enable"
            },
            format!("account:{id}"),
        )
        .before(&before)
        .after(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password (policy checked), clears the lockout and ends the account's sessions.
pub async fn set_password(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
    new_password: &str,
) -> Result<(), AccountError> {
    let account = get(db, id).await?;
    if let Some(message) = password::policy_problem(new_password, &account.username) {
        return Err(AccountError::Invalid {
            field: "password",
            message,
        });
    }
    let mut tx = db.begin_write().await?;
    let now = now_ms();
    sqlx::query(
        "UPDATE accounts SET password_hash = $1, failed_logins = 0, locked_until_ms = NULL, \
         updated_at_ms = $2 WHERE id = $3",
    )
    .bind(password::hash(new_password))
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at_ms = $1 WHERE account_id = $2 AND revoked_at_ms IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.password", format!("account:{id}")),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
