//! Passkeys (WebAuthn, with webauthn-rs): offered only when the service is served over HTTPS
//! and `server.public_origins` names its origin (the relying-party id is that origin's host —
//! a DNS name; browsers refuse WebAuthn on a bare IP address). A passkey counts as the second
//! factor: the login is the password first, then the passkey ceremony.
//!
//! A ceremony's state (its challenge) never leaves the server: it is sealed with the service
//! key into `webauthn_ceremonies`, expires after [`CEREMONY_TTL`], and is taken once — the
//! row is deleted when a finish request reads it, whether the ceremony then succeeds or not
//! ([`take_ceremony`]). Any instance sharing the database can finish what another started.

use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use sqlx::Row;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use super::accounts::AccountError;
use crate::audit::{self, AuditActor, Entry};
use crate::db::{new_id, now_ms, Db};
use crate::secret::ServiceKey;

/// How long a ceremony may take (the browser's prompt included).
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);
/// The sealing context of ceremony states.
const CONTEXT: &str = "webauthn";

/// Which ceremony.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Adding a passkey to an account.
    Register,
    /// Proving one at login.
    Login,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::Login => "login",
        }
    }
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// Id (for removal).
    pub id: String,
    /// The name its owner gave it.
    pub name: String,
    /// Added (Unix ms).
    pub created_at_ms: i64,
    /// Last used at login (Unix ms).
    pub last_used_ms: Option<i64>,
}

fn refused(code: &'static str, message: impl Into<String>) -> AccountError {
    AccountError::Refused {
        code,
        message: message.into(),
    }
}

/// The relying party of a service with these origins, if passkeys are offered (`https` and
/// at least one public origin with a host name). The first origin names the relying party;
/// the others are allowed when they share its host.
pub fn relying_party(https: bool, origins: &[String], site: &str) -> Option<Webauthn> {
    if !https {
        return None;
    }
    let first = Url::parse(origins.first()?).ok()?;
    let rp_id = first.domain()?.to_string();
    let mut builder = WebauthnBuilder::new(&rp_id, &first).ok()?.rp_name(site);
    let others: Vec<Url> = origins[1..]
        .iter()
        .filter_map(|o| Url::parse(o).ok())
        .filter(|u| u.domain() == Some(rp_id.as_str()))
        .collect();
    for other in &others {
        builder = builder.append_allowed_origin(other);
    }
    builder.build().ok()
}

/// Stores a ceremony's state; returns its id.
pub async fn store_ceremony(
    db: &Db,
    key: &ServiceKey,
    kind: Kind,
    account_id: &str,
    name: Option<&str>,
    state: &impl Serialize,
) -> Result<String, AccountError> {
    let json = serde_json::to_vec(state).map_err(|e| refused("internal", e.to_string()))?;
    let id = new_id();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    // Stale ceremonies go with each new one.
    sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at_ms < $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO webauthn_ceremonies (id, kind, account_id, name, state_sealed, \
         created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(kind.as_str())
    .bind(account_id)
    .bind(name)
    .bind(key.seal(CONTEXT, &json))
    .bind(now)
    .bind(now + CEREMONY_TTL.as_millis() as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A ceremony taken back: its account, the name given (registration) and its state.
#[derive(Debug)]
pub struct Taken<S> {
    /// The account.
    pub account_id: String,
    /// The passkey's name (registration).
    pub name: Option<String>,
    /// The state.
    pub state: S,
}

/// Takes ceremony `id` of `kind`: deletes it and returns its state, or refuses (unknown,
/// used already, expired, or of the other kind) with `ceremony_unknown`.
pub async fn take_ceremony<S: DeserializeOwned>(
    db: &Db,
    key: &ServiceKey,
    kind: Kind,
    id: &str,
) -> Result<Taken<S>, AccountError> {
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(
        "SELECT account_id, name, state_sealed, expires_at_ms, kind FROM webauthn_ceremonies \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let gone = || {
        refused(
            "ceremony_unknown",
            "this passkey ceremony is unknown, used or expired; start again",
        )
    };
    let Some(row) = row else { return Err(gone()) };
    let deleted = sqlx::query("DELETE FROM webauthn_ceremonies WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    // Two finish requests at once: the second one's DELETE waits for the first to commit and
    // then finds nothing.
    if deleted.rows_affected() != 1 {
        return Err(gone());
    }
    tx.commit().await?;
    let expires: i64 = row.try_get(3)?;
    let stored_kind: String = row.try_get(4)?;
    if expires < now_ms() || stored_kind != kind.as_str() {
        return Err(gone());
    }
    let sealed: String = row.try_get(2)?;
    let json = key.open(CONTEXT, &sealed).map_err(|_| gone())?;
    let state = serde_json::from_slice(&json).map_err(|_| gone())?;
    Ok(Taken {
        account_id: row.try_get(0)?,
        name: row.try_get(1)?,
        state,
    })
}

/// The text form of a credential id (as stored in `passkeys.credential_id`).
fn credential_key(id: &CredentialID) -> String {
    match serde_json::to_value(id) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The stored passkeys of an account.
async fn passkeys_of(db: &Db, account_id: &str) -> Result<Vec<(String, Passkey)>, AccountError> {
    let rows = sqlx::query("SELECT id, passkey_json FROM passkeys WHERE account_id = $1")
        .bind(account_id)
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let json: String = row.try_get(1)?;
        if let Ok(passkey) = serde_json::from_str::<Passkey>(&json) {
            out.push((row.try_get(0)?, passkey));
        }
    }
    Ok(out)
}

/// How many passkeys an account has.
pub async fn count(db: &Db, account_id: &str) -> Result<i64, AccountError> {
    let row = sqlx::query("SELECT COUNT(*) FROM passkeys WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get(0)?)
}

/// The passkeys of an account, oldest first.
pub async fn list(db: &Db, account_id: &str) -> Result<Vec<PasskeyInfo>, AccountError> {
    let rows = sqlx::query(
        "SELECT id, name, created_at_ms, last_used_ms FROM passkeys WHERE account_id = $1 \
         ORDER BY created_at_ms",
    )
    .bind(account_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PasskeyInfo {
                id: row.try_get(0)?,
                name: row.try_get(1)?,
                created_at_ms: row.try_get(2)?,
                last_used_ms: row.try_get(3)?,
            })
        })
        .collect()
}

/// Starts adding a passkey named `name` to the account; returns the ceremony id and the
/// options for `navigator.credentials.create()`.
pub async fn start_registration(
    db: &Db,
    key: &ServiceKey,
    rp: &Webauthn,
    account: &super::accounts::Account,
    name: &str,
) -> Result<(String, CreationChallengeResponse), AccountError> {
    let name = crate::input::single_line("name", name, 60).map_err(|e| AccountError::Invalid {
        field: "name",
        message: e.message,
    })?;
    let user = Uuid::parse_str(&account.id).unwrap_or_else(|_| Uuid::new_v4());
    let exclude: Vec<CredentialID> = passkeys_of(db, &account.id)
        .await?
        .iter()
        .map(|(_, p)| p.cred_id().clone())
        .collect();
    let (options, state): (CreationChallengeResponse, PasskeyRegistration) = rp
        .start_passkey_registration(
            user,
            &account.username,
            &account.display_name,
            Some(exclude),
        )
        .map_err(|e| refused("passkey_refused", e.to_string()))?;
    let id = store_ceremony(db, key, Kind::Register, &account.id, Some(&name), &state).await?;
    Ok((id, options))
}

/// Finishes adding a passkey (ceremony of `account_id` only); audited `account.passkey.add`;
/// the session `token_hash` counts as having proved a second factor.
#[allow(clippy::too_many_arguments)]
pub async fn finish_registration(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    rp: &Webauthn,
    account_id: &str,
    token_hash: &str,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<PasskeyInfo, AccountError> {
    let taken: Taken<PasskeyRegistration> =
        take_ceremony(db, key, Kind::Register, ceremony).await?;
    if taken.account_id != account_id {
        return Err(refused(
            "ceremony_unknown",
            "this passkey ceremony is unknown, used or expired; start again",
        ));
    }
    let passkey = rp
        .finish_passkey_registration(credential, &taken.state)
        .map_err(|e| refused("passkey_refused", format!("passkey not accepted: {e}")))?;
    let credential_id = credential_key(passkey.cred_id());
    let json = serde_json::to_string(&passkey).map_err(|e| refused("internal", e.to_string()))?;
    let info = PasskeyInfo {
        id: new_id(),
        name: taken.name.unwrap_or_else(|| "passkey".into()),
        created_at_ms: now_ms(),
        last_used_ms: None,
    };
    let mut tx = db.begin_write().await?;
    let taken_by = sqlx::query("SELECT account_id FROM passkeys WHERE credential_id = $1")
        .bind(&credential_id)
        .fetch_optional(&mut *tx)
        .await?;
    if taken_by.is_some() {
        return Err(AccountError::Taken("passkey"));
    }
    sqlx::query(
        "INSERT INTO passkeys (id, account_id, credential_id, name, passkey_json, \
         created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&info.id)
    .bind(account_id)
    .bind(&credential_id)
    .bind(&info.name)
    .bind(&json)
    .bind(info.created_at_ms)
    .execute(&mut *tx)
    .await?;
    super::session::mark_second_factor(&mut tx, token_hash).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.passkey.add", format!("account:{account_id}")).after(&info),
    )
    .await?;
    tx.commit().await?;
    Ok(info)
}

/// Starts the passkey step of a login (the password already checked); `None` when the
/// account has no passkey.
pub async fn start_login(
    db: &Db,
    key: &ServiceKey,
    rp: &Webauthn,
    account_id: &str,
) -> Result<Option<(String, RequestChallengeResponse)>, AccountError> {
    let passkeys: Vec<Passkey> = passkeys_of(db, account_id)
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if passkeys.is_empty() {
        return Ok(None);
    }
    let (options, state): (RequestChallengeResponse, PasskeyAuthentication) = rp
        .start_passkey_authentication(&passkeys)
        .map_err(|e| refused("passkey_refused", e.to_string()))?;
    let id = store_ceremony(db, key, Kind::Login, account_id, None, &state).await?;
    Ok(Some((id, options)))
}

/// Finishes the passkey step of a login; returns the account id. The credential's counter is
/// kept up to date.
pub async fn finish_login(
    db: &Db,
    key: &ServiceKey,
    rp: &Webauthn,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> Result<String, AccountError> {
    let taken: Taken<PasskeyAuthentication> = take_ceremony(db, key, Kind::Login, ceremony).await?;
    let result = rp
        .finish_passkey_authentication(credential, &taken.state)
        .map_err(|e| refused("passkey_refused", format!("passkey not accepted: {e}")))?;
    let stored = passkeys_of(db, &taken.account_id).await?;
    let mut tx = db.begin_write().await?;
    for (id, mut passkey) in stored {
        if passkey.update_credential(&result).is_some() {
            let json =
                serde_json::to_string(&passkey).map_err(|e| refused("internal", e.to_string()))?;
            sqlx::query("UPDATE passkeys SET passkey_json = $1, last_used_ms = $2 WHERE id = $3")
                .bind(json)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(taken.account_id)
}

/// Removes passkey `id` of `account_id` (audited `account.passkey.remove`).
pub async fn remove(
    db: &Db,
    key: &ServiceKey,
    by: &AuditActor,
    account_id: &str,
    id: &str,
) -> Result<(), AccountError> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(AccountError::NotFound);
    }
    audit::record(
        &mut tx,
        key,
        db.backend(),
        by,
        Entry::new("account.passkey.remove", format!("account:{account_id}"))
            .before(json!({ "passkey": id })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
