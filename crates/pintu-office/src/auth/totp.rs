//! TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of skew either way), the second
//! factor of accounts whose roles need one. The secret (20 random bytes) is sealed with the
//! service key at rest. Enrolment is two steps: [`start`] stores a new secret (not yet in
//! force) and returns it for the authenticator app; [`confirm`] checks a code from the app and
//! turns TOTP on. A code is accepted once: the step of the last accepted code is stored, and
//! only a later step passes ([`accept`]), also across instances (one conditional UPDATE).

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use totp_rs::{Builder, Totp};
use zeroize::Zeroizing;

use super::accounts::AccountError;
use crate::audit::{self, AuditActor, Entry};
use crate::db::{Db, Tx};
use crate::secret::ServiceKey;

/// The sealing context of TOTP secrets.
const CONTEXT: &str = "totp";

/// What the user copies into the authenticator app.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolment {
    /// The secret, base32 (typed by hand).
    pub secret_base32: String,
    /// The `otpauth://` URI (shown as a QR code by the console).
    pub otpauth_uri: String,
}

/// The generator of `secret` for account `username` at site `issuer`.
fn generator(secret: &[u8], username: &str, issuer: &str) -> Result<Totp, AccountError> {
    // A colon separates issuer and account in the otpauth label; neither may hold one.
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(username.replace(':', "-"))
        .with_issuer(Some(issuer.replace(':', "-")))
        .build()
        .map_err(|e| AccountError::Refused {
            code: "internal",
            message: format!("TOTP: {e}"),
        })
}

/// The step a code matches now (±1 step), if any.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let totp = generator(secret, "x", "x").ok()?;
    totp.check(&code, unix_secs).map(|s| s as i64)
}

/// The code of `secret` at `unix_secs` (tests and the CLI's checks).
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    generator(secret, "x", "x")
        .map(|t| t.generate(unix_secs).to_string())
        .unwrap_or_default()
}

/// Now, Unix seconds.
fn now_secs() -> u64 {
    jiff::Timestamp::now().as_second().max(0) as u64
}

/// Accepts `code` for account `id` whose sealed secret is `sealed` (inside `tx`): it must
/// match a step later than the last accepted one, which it then becomes. `false`: wrong or
/// reused code.
pub async fn accept(
    tx: &mut Tx,
    key: &ServiceKey,
    id: &str,
    sealed: &str,
    code: &str,
) -> Result<bool, AccountError> {
    let secret = key
        .open(CONTEXT, sealed)
        .map_err(|e| AccountError::Refused {
            code: "internal",
            message: format!("TOTP secret: {e}"),
        })?;
    let Some(step) = matching_step(&secret, code, now_secs()) else {
        return Ok(false);
    };
    let done = sqlx::query(
        "UPDATE accounts SET totp_last_step = $1 WHERE id = $2 \
         AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Starts enrolment: a new secret, sealed, stored (not in force until [`confirm`]); audited
/// `account.totp.start`. Refused when TOTP is on already (an administrator resets it).
pub async fn start(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
    issuer: &str,
) -> Result<Enrolment, AccountError> {
    let account = super::accounts::get(db, id).await?;
    if account.totp_enabled {
        return Err(AccountError::Refused {
            code: "totp_enabled",
            message: "TOTP is on already; an administrator can reset it (lost phone)".into(),
        });
    }
    let mut secret = Zeroizing::new([0u8; 20]);
    getrandom::fill(&mut secret[..]).map_err(|e| AccountError::Refused {
        code: "internal",
        message: format!("random source: {e}"),
    })?;
    let totp = generator(&secret[..], &account.username, issuer)?;
    let enrolment = Enrolment {
        secret_base32: totp.secret().to_base32(),
        otpauth_uri: totp.to_url().map_err(|e| AccountError::Refused {
            code: "internal",
            message: format!("TOTP: {e}"),
        })?,
    };
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE accounts SET totp_secret = $1, totp_last_step = NULL, updated_at_ms = $2 \
         WHERE id = $3 AND totp_enabled = 0",
    )
    .bind(key.seal(CONTEXT, &secret[..]))
    .bind(crate::db::now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.totp.start", format!("account:{id}")),
    )
    .await?;
    tx.commit().await?;
    Ok(enrolment)
}

/// Confirms enrolment with a code from the app: TOTP is on from now (audited
/// `account.totp.enable`), and the session `token_hash` counts as having proved it.
pub async fn confirm(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    id: &str,
    token_hash: &str,
    code: &str,
) -> Result<(), AccountError> {
    let mut tx = db.begin_write().await?;
    let row = sqlx::query("SELECT totp_secret, totp_enabled FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AccountError::NotFound)?;
    let sealed: Option<String> = row.try_get(0)?;
    if row.try_get::<i64, _>(1)? != 0 {
        return Err(AccountError::Refused {
            code: "totp_enabled",
            message: "TOTP is on already".into(),
        });
    }
    let Some(sealed) = sealed else {
        return Err(AccountError::Refused {
            code: "totp_not_started",
            message: "start with POST /api/v1/me/totp".into(),
        });
    };
    if !accept(&mut tx, key, id, &sealed, code).await? {
        return Err(AccountError::Invalid {
            field: "code",
            message: "wrong code: check the phone's clock and type the code shown now".into(),
        });
    }
    sqlx::query("UPDATE accounts SET totp_enabled = 1, updated_at_ms = $1 WHERE id = $2")
        .bind(crate::db::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    super::session::mark_second_factor(&mut tx, token_hash).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.totp.enable", format!("account:{id}"))
            .before(json!({ "totp_enabled": false }))
            .after(json!({ "totp_enabled": true })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The sealed secret of account `id` while enrolment is pending (tests read it to make codes).
pub async fn pending_secret(
    db: &Db,
    key: &ServiceKey,
    id: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, AccountError> {
    let row = sqlx::query("SELECT totp_secret FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(AccountError::NotFound)?;
    let Some(sealed) = row.try_get::<Option<String>, _>(0)? else {
        return Ok(None);
    };
    key.open(CONTEXT, &sealed)
        .map(Some)
        .map_err(|e| AccountError::Refused {
            code: "internal",
            message: format!("TOTP secret: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_and_the_neighbours() {
        let secret = [7u8; 20];
        let t = 1_700_000_000;
        let code = code_at(&secret, t);
        assert_eq!(code.len(), 6);
        let step = (t / 30) as i64;
        assert_eq!(matching_step(&secret, &code, t), Some(step));
        assert_eq!(
            matching_step(&secret, &code, t + 30),
            Some(step),
            "one step late"
        );
        assert_eq!(
            matching_step(&secret, &code, t - 30),
            Some(step),
            "one step early"
        );
        assert_eq!(matching_step(&secret, &code, t + 90), None, "too late");
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(&secret, &spaced, t), Some(step));
        assert_eq!(matching_step(&secret, "12345x", t), None);
    }
}
