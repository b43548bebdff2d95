//! The approvers' keys in the database: creation (a new key retires the old one), the `.pub`
//! export doors take, and the unlock at the moment of signing with its throttle on wrong
//! passphrases.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::vault::{self, Binding, OpenError, Personal};
use super::{blocking, Account, Signer, SigningError};
use crate::audit::{self, AuditActor, Entry};
use crate::db::now_ms;

/// An approver's key, as stored (the secret stays sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverKey {
    /// The key id doors know it by.
    pub key_id: String,
    /// Its account.
    pub account_id: String,
    /// ed25519 public key, base64.
    pub public_key: String,
    /// When it was made (Unix ms).
    pub created_at_ms: i64,
    /// When a newer key replaced it.
    pub retired_at_ms: Option<i64>,
    /// Held by the approver offline (only its public half is here): it signs with
    /// `pintuctl sign`, never with a passphrase in the service.
    pub held_offline: bool,
}

/// A key row with its sealed secret.
pub(crate) struct StoredKey {
    pub key: ApproverKey,
    pub sealed: String,
}

fn key_of(row: &sqlx::any::AnyRow) -> Result<StoredKey, sqlx::Error> {
    let sealed: String = row.try_get(5)?;
    Ok(StoredKey {
        key: ApproverKey {
            key_id: row.try_get(0)?,
            account_id: row.try_get(1)?,
            public_key: row.try_get(2)?,
            created_at_ms: row.try_get(3)?,
            retired_at_ms: row.try_get(4)?,
            held_offline: sealed.is_empty(),
        },
        sealed,
    })
}

impl Signer {
    /// Makes a new signing key for `account_id`, sealed under `passphrase` (checked against the
    /// policy and the login password); any key the account had is retired. `actor` is who asked
    /// (the approver, or an administrator on their behalf).
    pub async fn create_key(
        &self,
        account_id: &str,
        passphrase: &str,
        actor: &AuditActor,
    ) -> Result<ApproverKey, SigningError> {
        let account = self.account(account_id).await?;
        vault::check_passphrase(
            passphrase,
            Personal {
                username: &account.username,
                nip: account.nip.as_deref(),
                display_name: &account.display_name,
            },
        )?;
        let (phrase, hash) = (passphrase.to_string(), account.password_hash.clone());
        let phrase = zeroize::Zeroizing::new(phrase);
        let (same, phrase) =
            blocking(move || (vault::same_as_password(&phrase, &hash), phrase)).await?;
        if same {
            return Err(vault::PassphraseProblem::SameAsPassword.into());
        }
        let key_id = self.next_key_id(&account).await?;
        let signing = vault::generate();
        let public_key = vault::public_b64(&signing);
        let (service, params) = (self.key.clone(), self.policy.kdf);
        let (id2, acc2, pub2) = (key_id.clone(), account.id.clone(), public_key.clone());
        let sealed = blocking(move || {
            let binding = Binding {
                account_id: &acc2,
                key_id: &id2,
                public_key: &pub2,
            };
            vault::seal(&service, &signing, &phrase, params, binding)
        })
        .await?;
        self.store_key(&account, key_id, public_key, sealed, actor)
            .await
    }

    /// Registers a key the approver holds offline (made with `pintuctl keygen`, used with
    /// `pintuctl sign`): only its public half (`public_key`, base64, as in the `.pub` file) is
    /// stored, under a key id derived from the account like any other. Like a new service key,
    /// it retires the account's current key: an approver signs one way at a time.
    pub async fn register_public_key(
        &self,
        account_id: &str,
        public_key: &str,
        actor: &AuditActor,
    ) -> Result<ApproverKey, SigningError> {
        let account = self.account(account_id).await?;
        let key = pintu::core::list::decode_public_key(public_key)
            .map_err(SigningError::InvalidPublicKey)?;
        let public_key =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.to_bytes());
        let key_id = self.next_key_id(&account).await?;
        // No sealed secret: the key is held offline.
        self.store_key(&account, key_id, public_key, String::new(), actor)
            .await
    }

    /// The account's next key id: username and year, `-2`, `-3`, … for more keys that year.
    /// Picked before sealing (the seal binds it); a race for the same id fails on the primary
    /// key and changes nothing.
    async fn next_key_id(&self, account: &Account) -> Result<String, SigningError> {
        let year = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .year();
        let mut n = 1;
        loop {
            let id = vault::key_id(&account.username, year, n);
            let taken = sqlx::query("SELECT 1 FROM approver_keys WHERE id = $1")
                .bind(&id)
                .fetch_optional(self.db.pool())
                .await?;
            if taken.is_none() {
                return Ok(id);
            }
            n += 1;
        }
    }

    /// Retires the account's keys and stores the new one, audited.
    async fn store_key(
        &self,
        account: &Account,
        key_id: String,
        public_key: String,
        sealed: String,
        actor: &AuditActor,
    ) -> Result<ApproverKey, SigningError> {
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        let retired: Vec<String> = sqlx::query(
            "SELECT id FROM approver_keys WHERE account_id = $1 AND retired_at_ms IS NULL",
        )
        .bind(&account.id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        sqlx::query(
            "UPDATE approver_keys SET retired_at_ms = $1 WHERE account_id = $2 \
             AND retired_at_ms IS NULL",
        )
        .bind(now)
        .bind(&account.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO approver_keys (id, account_id, public_key, sealed_secret, \
             created_at_ms, retired_at_ms) VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&key_id)
        .bind(&account.id)
        .bind(&public_key)
        .bind(&sealed)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let made = ApproverKey {
            key_id,
            account_id: account.id.clone(),
            public_key,
            created_at_ms: now,
            retired_at_ms: None,
            held_offline: sealed.is_empty(),
        };
        audit::record(
            &mut tx,
            &self.key,
            self.db.backend(),
            actor,
            Entry::new("signing.key.create", format!("key:{}", made.key_id)).after(
                serde_json::json!({
                    "account": made.account_id,
                    "public_key": made.public_key,
                    "held_offline": made.held_offline,
                    "kdf": vault::params_of(&sealed).ok(),
                    "retired": retired,
                }),
            ),
        )
        .await?;
        tx.commit().await.map_err(crate::db::DbError::from)?;
        Ok(made)
    }

    /// The account's current key, if any.
    pub async fn active_key(&self, account_id: &str) -> Result<Option<ApproverKey>, SigningError> {
        Ok(self.active_stored(account_id).await?.map(|k| k.key))
    }

    pub(crate) async fn active_stored(
        &self,
        account_id: &str,
    ) -> Result<Option<StoredKey>, SigningError> {
        let sql = "SELECT id, account_id, public_key, created_at_ms, retired_at_ms, sealed_secret \
                   FROM approver_keys WHERE account_id = $1 AND retired_at_ms IS NULL";
        let row = sqlx::query(sql)
            .bind(account_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(key_of).transpose()?)
    }

    /// The key `key_id`, retired or not.
    pub async fn key(&self, key_id: &str) -> Result<Option<ApproverKey>, SigningError> {
        let row = sqlx::query(
            "SELECT id, account_id, public_key, created_at_ms, retired_at_ms, sealed_secret \
             FROM approver_keys WHERE id = $1",
        )
        .bind(key_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(key_of).transpose()?.map(|k| k.key))
    }

    /// The key whose public half is `public_key` (base64), retired or not.
    pub async fn key_by_public(
        &self,
        public_key: &str,
    ) -> Result<Option<ApproverKey>, SigningError> {
        let Ok(key) = pintu::core::list::decode_public_key(public_key) else {
            return Ok(None);
        };
        let canonical =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.to_bytes());
        let row = sqlx::query(
            "SELECT id, account_id, public_key, created_at_ms, retired_at_ms, sealed_secret \
             FROM approver_keys WHERE public_key = $1",
        )
        .bind(canonical)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(key_of).transpose()?.map(|k| k.key))
    }

    /// Every key, oldest first (what doors' `[[trust.keys]]` should hold, retired ones until
    /// their lists are gone).
    pub async fn all_keys(&self) -> Result<Vec<ApproverKey>, SigningError> {
        let rows = sqlx::query(
            "SELECT id, account_id, public_key, created_at_ms, retired_at_ms, sealed_secret \
             FROM approver_keys ORDER BY created_at_ms, id",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(key_of)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|k| k.key)
            .collect())
    }

    /// The `.pub` file of `key_id` (today's format: what a door's `[[trust.keys]]` takes as
    /// `id` / `public_key`).
    pub async fn public_key_file(&self, key_id: &str) -> Result<String, SigningError> {
        let key = self
            .key(key_id)
            .await?
            .ok_or_else(|| SigningError::UnknownKey(key_id.to_string()))?;
        Ok(format!(
            "# Pintu list-signing public key: copy into each door's config as [[trust.keys]] id / public_key.\nkey_id = \"{}\"\npublic_key = \"{}\"\n",
            key.key_id, key.public_key
        ))
    }

    /// Opens `account`'s current key with `passphrase`, counting the attempt against the
    /// throttle first (so concurrent attempts cannot exceed it) and forgetting it when the
    /// passphrase was right. A wrong passphrase is audited (`signing.fail`). The key returned
    /// zeroizes itself when dropped; the caller signs and drops it at once.
    pub(crate) async fn unlock(
        &self,
        account: &Account,
        passphrase: &str,
        target: &str,
    ) -> Result<(ApproverKey, SigningKey), SigningError> {
        let stored = self
            .active_stored(&account.id)
            .await?
            .ok_or_else(|| SigningError::NoKey(account.id.clone()))?;
        if stored.key.held_offline {
            return Err(SigningError::KeyHeldOffline(stored.key.key_id));
        }
        let attempt = self.count_attempt(account, target).await?;
        let (service, sealed) = (self.key.clone(), stored.sealed.clone());
        let (key_id, public) = (stored.key.key_id.clone(), stored.key.public_key.clone());
        let account_id = account.id.clone();
        let phrase = zeroize::Zeroizing::new(passphrase.to_string());
        let wanted = self.policy.kdf;
        let opened = blocking(move || {
            let binding = Binding {
                account_id: &account_id,
                key_id: &key_id,
                public_key: &public,
            };
            let key = vault::open(&service, &sealed, &phrase, binding)?;
            // Parameters raised since it was sealed: seal it again with the new ones.
            let resealed = match vault::params_of(&sealed) {
                Ok(old) if old.weaker_than(&wanted) => {
                    Some(vault::seal(&service, &key, &phrase, wanted, binding))
                }
                _ => None,
            };
            Ok::<_, OpenError>((key, resealed))
        })
        .await?;
        match opened {
            Ok((key, resealed)) => {
                let mut tx = self.db.begin_write().await?;
                sqlx::query("DELETE FROM signing_attempts WHERE id = $1")
                    .bind(&attempt)
                    .execute(&mut *tx)
                    .await?;
                if let Some(sealed) = resealed {
                    sqlx::query("UPDATE approver_keys SET sealed_secret = $1 WHERE id = $2")
                        .bind(&sealed)
                        .bind(&stored.key.key_id)
                        .execute(&mut *tx)
                        .await?;
                    audit::record(
                        &mut tx,
                        &self.key,
                        self.db.backend(),
                        &account.actor(),
                        Entry::new("signing.key.reseal", format!("key:{}", stored.key.key_id))
                            .after(serde_json::json!({ "kdf": wanted })),
                    )
                    .await?;
                }
                tx.commit().await.map_err(crate::db::DbError::from)?;
                Ok((stored.key, key))
            }
            Err(OpenError::WrongPassphrase) => {
                let remaining = self
                    .policy
                    .max_wrong_passphrases
                    .saturating_sub(self.attempts_in_window(&account.id).await? as u32);
                self.record_fail(account, target, "wrong_passphrase", &stored.key.key_id)
                    .await?;
                Err(SigningError::WrongPassphrase {
                    account: account.id.clone(),
                    remaining,
                })
            }
            Err(OpenError::Damaged) => {
                self.record_fail(account, target, "sealed_key_damaged", &stored.key.key_id)
                    .await?;
                Err(SigningError::SealedKeyDamaged(stored.key.key_id))
            }
        }
    }

    /// Refuses when the account has used up its wrong tries in the window; otherwise writes an
    /// attempt row (removed again when the passphrase is right) and returns its id.
    async fn count_attempt(&self, account: &Account, target: &str) -> Result<String, SigningError> {
        let now = now_ms();
        let since = now - self.policy.throttle_window.as_millis() as i64;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM signing_attempts WHERE account_id = $1 AND at_ms <= $2")
            .bind(&account.id)
            .bind(since)
            .execute(&mut *tx)
            .await?;
        let row =
            sqlx::query("SELECT COUNT(*), MIN(at_ms) FROM signing_attempts WHERE account_id = $1")
                .bind(&account.id)
                .fetch_one(&mut *tx)
                .await?;
        let count: i64 = row.try_get(0)?;
        if count >= i64::from(self.policy.max_wrong_passphrases) {
            let oldest: Option<i64> = row.try_get(1)?;
            let retry_after_s = (((oldest.unwrap_or(now) - since).max(0) + 999) / 1000).max(1);
            drop(tx);
            self.record_fail(account, target, "throttled", "").await?;
            return Err(SigningError::Throttled {
                account: account.id.clone(),
                retry_after_s,
            });
        }
        let id = crate::db::new_id();
        sqlx::query("INSERT INTO signing_attempts (id, account_id, at_ms) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(&account.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await.map_err(crate::db::DbError::from)?;
        Ok(id)
    }

    async fn attempts_in_window(&self, account_id: &str) -> Result<i64, SigningError> {
        let since = now_ms() - self.policy.throttle_window.as_millis() as i64;
        let row = sqlx::query(
            "SELECT COUNT(*) FROM signing_attempts WHERE account_id = $1 AND at_ms > $2",
        )
        .bind(account_id)
        .bind(since)
        .fetch_one(self.db.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Records a refused signing attempt (`signing.fail`) on its own: the attempt changed
    /// nothing else.
    pub(crate) async fn record_fail(
        &self,
        actor: &Account,
        target: &str,
        reason: &str,
        key_id: &str,
    ) -> Result<(), SigningError> {
        self.record_fail_as(&actor.actor(), target, reason, &actor.id, key_id)
            .await
    }

    pub(crate) async fn record_fail_as(
        &self,
        actor: &AuditActor,
        target: &str,
        reason: &str,
        account_id: &str,
        key_id: &str,
    ) -> Result<(), SigningError> {
        audit::record_alone(
            &self.db,
            &self.key,
            actor,
            Entry::new("signing.fail", target).after(serde_json::json!({
                "reason": reason,
                "account": account_id,
                "key": key_id,
            })),
        )
        .await?;
        Ok(())
    }
}
