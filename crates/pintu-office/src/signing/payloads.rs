//! Payloads and their signatures: the exact bytes of a list or door command, checked with the
//! door's own verification when they come in; signatures added in the service (passphrase) or
//! offline (a signature file); the envelope doors verify once k distinct approvers signed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _};
use jiff::Timestamp;
use pintu::core::command::{self, CommandClocks, CommandPayload, CommandPolicy};
use pintu::core::list::{self, Envelope, SignatureEntry, TrustPolicy, TrustedKey};
use pintu::office::offline::{self, PayloadFile, SignatureFile};
use serde::Serialize;
use sqlx::Row;

use super::{vault, PayloadKind, Signer, SigningError};
use crate::audit::{self, AuditActor, Entry};
use crate::db::{new_id, now_ms, DbError};

/// Longest window a non-narrow command may have here: doors apply their own
/// `command_max_lifetime`; the narrow ones (`unlock_once`, resets) are held to 10 minutes by
/// the door's check itself.
const COMMAND_MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// A payload and its signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayloadInfo {
    /// Id.
    pub id: String,
    /// List or command.
    pub kind: PayloadKind,
    /// The site it names.
    pub site: String,
    /// A door's list or a command's door; `None` for the site list.
    pub door: Option<String>,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// A list's version.
    pub list_version: Option<i64>,
    /// What it is, in one line.
    pub summary: String,
    /// The payload's expiry (Unix ms).
    pub expires_at_ms: i64,
    /// Who made it (account id).
    pub created_by: String,
    /// When (Unix ms).
    pub created_at_ms: i64,
    /// `pending`, `published` or `superseded`.
    pub status: String,
    /// When it was published.
    pub published_at_ms: Option<i64>,
    /// Its signatures, oldest first.
    pub signatures: Vec<SignatureInfo>,
}

/// One signature on a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureInfo {
    /// The key.
    pub key_id: String,
    /// Its approver.
    pub account_id: String,
    /// `service` or `offline`.
    pub how: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The signature, base64.
    #[serde(skip)]
    pub signature: String,
}

/// Where a payload stands after a signature was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignOutcome {
    /// The payload.
    pub payload_id: String,
    /// The key that signed.
    pub key_id: String,
    /// Distinct approvers so far.
    pub signatures: usize,
    /// The threshold.
    pub needed: usize,
    /// Whether it can be published.
    pub complete: bool,
}

/// What the door's check of new bytes says about them.
struct Checked {
    site: String,
    list_version: Option<u64>,
    summary: String,
    expires_at: Timestamp,
}

/// The envelope doors read: the payload and the signatures, in the shape `pintu::core::list`
/// signs (pretty JSON and a newline).
pub(crate) fn envelope_bytes(
    kind: PayloadKind,
    payload: &[u8],
    signatures: &[(String, String)],
) -> Vec<u8> {
    let envelope = Envelope {
        format: kind.envelope_format().into(),
        payload: B64.encode(payload),
        signatures: signatures
            .iter()
            .map(|(key_id, signature)| SignatureEntry {
                key_id: key_id.clone(),
                signature: signature.clone(),
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&envelope).expect("an envelope serializes");
    out.push(b'\n');
    out
}

/// Runs the door's own verification over `bytes` (signed here by a throwaway key), so nothing
/// is put up for signature that a door would refuse for its content.
fn check(
    kind: PayloadKind,
    door: Option<&str>,
    bytes: &[u8],
    now: Timestamp,
) -> Result<Checked, SigningError> {
    let invalid = |message: String| SigningError::InvalidPayload {
        kind: kind.as_str(),
        message,
    };
    if kind == PayloadKind::Decision {
        return Err(invalid(
            "a request's decision is signed at its step (POST /api/v1/requests/{id}/steps), \
             not put up for k-of-n signature"
                .into(),
        ));
    }
    let probe = vault::generate();
    let signature = B64.encode(
        probe
            .sign(&offline::signing_message(kind, bytes))
            .to_bytes(),
    );
    let envelope = envelope_bytes(kind, bytes, &[("probe".into(), signature)]);
    let trust = TrustPolicy {
        keys: vec![TrustedKey {
            id: "probe".into(),
            key: probe.verifying_key(),
        }],
        threshold: 1,
        site: None,
        door: door.map(str::to_string),
        max_bytes: usize::MAX,
    };
    let summary = offline::describe(kind, bytes).map_err(|e| invalid(e.to_string()))?;
    match kind {
        PayloadKind::List => {
            let verified = list::verify(&envelope, &trust, None, Some(now))
                .map_err(|r| invalid(r.to_string()))?;
            Ok(Checked {
                site: verified.meta.site,
                list_version: Some(verified.meta.version),
                summary,
                expires_at: verified.meta.expires_at,
            })
        }
        PayloadKind::Command => {
            if door.is_none() {
                return Err(invalid(
                    "a command goes to one door's command topic: name the door".into(),
                ));
            }
            let payload: CommandPayload =
                serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
            let policy = CommandPolicy {
                trust,
                max_lifetime: COMMAND_MAX_LIFETIME,
                list_trust: None,
            };
            // Its window is checked at its own issue time; expiry against now below.
            let at = CommandClocks {
                trusted: payload.issued_at,
                wall: payload.issued_at,
            };
            command::verify_at(&envelope, &policy, at).map_err(|r| invalid(r.to_string()))?;
            if payload.expires_at <= now {
                return Err(invalid(format!("it expired at {}", payload.expires_at)));
            }
            Ok(Checked {
                site: payload.site,
                list_version: None,
                summary,
                expires_at: payload.expires_at,
            })
        }
        PayloadKind::Decision => Err(invalid("not a payload".into())),
    }
}

impl Signer {
    /// Stores `bytes` (a list payload or a command payload, exactly as they will be signed) for
    /// signature. `door`: a door's list or a command's door; `None` for the site list. A list
    /// must be above every published version; it supersedes the pending lists for the same
    /// target.
    pub async fn create_payload(
        &self,
        kind: PayloadKind,
        door: Option<&str>,
        bytes: &[u8],
        created_by: &str,
    ) -> Result<PayloadInfo, SigningError> {
        let account = self.account(created_by).await?;
        let checked = check(kind, door, bytes, Timestamp::now())?;
        let id = new_id();
        let now = now_ms();
        let sha256 = offline::sha256_hex(bytes);
        let version = checked.list_version.map(|v| v as i64);
        let mut tx = self.db.begin_write().await?;
        let mut superseded: Vec<String> = Vec::new();
        if let Some(version) = version {
            let row = sqlx::query(
                "SELECT MAX(list_version) FROM payloads WHERE kind = 'list' AND status = 'published'",
            )
            .fetch_one(&mut *tx)
            .await?;
            let published: Option<i64> = row.try_get(0)?;
            if let Some(published) = published.filter(|p| version <= *p) {
                return Err(SigningError::StaleVersion {
                    version: version as u64,
                    published: published as u64,
                });
            }
            let rows = match door {
                Some(door) => {
                    sqlx::query(
                        "SELECT id FROM payloads WHERE kind = 'list' AND status = 'pending' \
                         AND door_id = $1",
                    )
                    .bind(door)
                    .fetch_all(&mut *tx)
                    .await?
                }
                None => {
                    sqlx::query(
                        "SELECT id FROM payloads WHERE kind = 'list' AND status = 'pending' \
                         AND door_id IS NULL",
                    )
                    .fetch_all(&mut *tx)
                    .await?
                }
            };
            for row in rows {
                let old: String = row.try_get(0)?;
                sqlx::query("UPDATE payloads SET status = 'superseded' WHERE id = $1")
                    .bind(&old)
                    .execute(&mut *tx)
                    .await?;
                superseded.push(old);
            }
        }
        sqlx::query(
            "INSERT INTO payloads (id, kind, site, door_id, body_b64, body_sha256, list_version, \
             summary, expires_at_ms, created_by, created_at_ms, status, published_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', NULL)",
        )
        .bind(&id)
        .bind(kind.as_str())
        .bind(&checked.site)
        .bind(door)
        .bind(B64.encode(bytes))
        .bind(&sha256)
        .bind(version)
        .bind(&checked.summary)
        .bind(checked.expires_at.as_millisecond())
        .bind(&account.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            &self.key,
            self.db.backend(),
            &account.actor(),
            Entry::new("payload.create", format!("payload:{id}")).after(serde_json::json!({
                "kind": kind.as_str(),
                "site": checked.site,
                "door": door,
                "sha256": sha256,
                "list_version": version,
                "summary": checked.summary,
                "superseded": superseded,
            })),
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        self.payload(&id).await
    }

    /// The payload `id` with its signatures.
    pub async fn payload(&self, id: &str) -> Result<PayloadInfo, SigningError> {
        Ok(self.load(id).await?.0)
    }

    /// Payloads waiting for signatures, oldest first.
    pub async fn pending(&self) -> Result<Vec<PayloadInfo>, SigningError> {
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM payloads WHERE status = 'pending' ORDER BY created_at_ms, id",
        )
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.payload(&id).await?);
        }
        Ok(out)
    }

    /// The payload, its bytes and its signatures.
    pub(crate) async fn load(&self, id: &str) -> Result<(PayloadInfo, Vec<u8>), SigningError> {
        let row = sqlx::query(
            "SELECT kind, site, door_id, body_b64, body_sha256, list_version, summary, \
             expires_at_ms, created_by, created_at_ms, status, published_at_ms \
             FROM payloads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| SigningError::NoPayload(id.to_string()))?;
        let kind: String = row.try_get(0)?;
        let damaged = |what: &str| {
            SigningError::Db(DbError::Query(sqlx::Error::Protocol(format!(
                "payload {id}: stored {what} is not valid"
            ))))
        };
        let kind = PayloadKind::parse(&kind).ok_or_else(|| damaged("kind"))?;
        let body: String = row.try_get(3)?;
        let bytes = B64.decode(body).map_err(|_| damaged("body"))?;
        let signatures = sqlx::query(
            "SELECT key_id, account_id, how, at_ms, signature FROM signatures \
             WHERE payload_id = $1 ORDER BY at_ms, key_id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(SignatureInfo {
                key_id: r.try_get(0)?,
                account_id: r.try_get(1)?,
                how: r.try_get(2)?,
                at_ms: r.try_get(3)?,
                signature: r.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let info = PayloadInfo {
            id: id.to_string(),
            kind,
            site: row.try_get(1)?,
            door: row.try_get(2)?,
            sha256: row.try_get(4)?,
            list_version: row.try_get(5)?,
            summary: row.try_get(6)?,
            expires_at_ms: row.try_get(7)?,
            created_by: row.try_get(8)?,
            created_at_ms: row.try_get(9)?,
            status: row.try_get(10)?,
            published_at_ms: row.try_get(11)?,
            signatures,
        };
        Ok((info, bytes))
    }

    /// Refuses a payload that can take no more signatures.
    fn ensure_open(info: &PayloadInfo) -> Result<(), SigningError> {
        if info.status != "pending" {
            return Err(SigningError::NotPending {
                id: info.id.clone(),
                status: info.status.clone(),
            });
        }
        if info.expires_at_ms <= now_ms() {
            return Err(SigningError::Expired(info.id.clone()));
        }
        Ok(())
    }

    /// Signs payload `payload_id` as `account_id`, unlocking the account's key with
    /// `passphrase` for this one signature. The same account counts once.
    pub async fn sign_with_passphrase(
        &self,
        payload_id: &str,
        account_id: &str,
        passphrase: &str,
    ) -> Result<SignOutcome, SigningError> {
        let account = self.account(account_id).await?;
        self.require_approver(&account).await?;
        let (info, bytes) = self.load(payload_id).await?;
        Self::ensure_open(&info)?;
        if info.signatures.iter().any(|s| s.account_id == account.id) {
            return Err(SigningError::AlreadySigned {
                account: account.id,
                payload: info.id,
            });
        }
        let target = format!("payload:{}", info.id);
        let (key, signing) = self.unlock(&account, passphrase, &target).await?;
        let signature = B64.encode(
            signing
                .sign(&offline::signing_message(info.kind, &bytes))
                .to_bytes(),
        );
        // The secret is gone (zeroized) before anything else is awaited.
        drop(signing);
        self.store_signature(
            &info,
            &key.key_id,
            &account.id,
            &signature,
            "service",
            &account.actor(),
        )
        .await
    }

    /// Adds a signature made offline, after checking it over the payload's bytes with the
    /// registered public key: the key is found by `public_key` when given, else by `key_id`.
    /// `uploader` is who brought it in.
    pub async fn add_offline_signature(
        &self,
        payload_id: &str,
        key_id: &str,
        public_key: Option<&str>,
        signature: &str,
        uploader: &AuditActor,
    ) -> Result<SignOutcome, SigningError> {
        let (info, bytes) = self.load(payload_id).await?;
        Self::ensure_open(&info)?;
        let target = format!("payload:{}", info.id);
        let refuse = |reason: &'static str, account: String, error: SigningError| async move {
            self.record_fail_as(uploader, &target, reason, &account, key_id)
                .await?;
            Err::<SignOutcome, _>(error)
        };
        // The public key names the key when given (the key id in a signature file is the
        // label of the approver's key file); the envelope uses the registered id.
        let found = match public_key {
            Some(public) => self.key_by_public(public).await?,
            None => self.key(key_id).await?,
        };
        let Some(key) = found else {
            return refuse(
                "unknown_key",
                String::new(),
                SigningError::UnknownKey(key_id.into()),
            )
            .await;
        };
        if key.retired_at_ms.is_some() {
            return refuse(
                "key_retired",
                key.account_id,
                SigningError::KeyRetired(key_id.into()),
            )
            .await;
        }
        let account = self.account(&key.account_id).await?;
        if let Err(e) = self.require_approver(&account).await {
            return refuse("not_approver", account.id, e).await;
        }
        let verified = list::decode_public_key(&key.public_key)
            .ok()
            .zip(
                B64.decode(signature.trim())
                    .ok()
                    .and_then(|raw| <[u8; 64]>::try_from(raw).ok()),
            )
            .is_some_and(|(public, raw)| {
                public
                    .verify_strict(
                        &offline::signing_message(info.kind, &bytes),
                        &Signature::from_bytes(&raw),
                    )
                    .is_ok()
            });
        if !verified {
            return refuse(
                "bad_signature",
                account.id,
                SigningError::BadSignature(key_id.into()),
            )
            .await;
        }
        if info.signatures.iter().any(|s| s.account_id == account.id) {
            return Err(SigningError::AlreadySigned {
                account: account.id,
                payload: info.id,
            });
        }
        self.store_signature(
            &info,
            &key.key_id,
            &account.id,
            signature.trim(),
            "offline",
            uploader,
        )
        .await
    }

    /// Stores a checked signature with its audit entry; one approver counts once.
    async fn store_signature(
        &self,
        info: &PayloadInfo,
        key_id: &str,
        account_id: &str,
        signature: &str,
        how: &str,
        actor: &AuditActor,
    ) -> Result<SignOutcome, SigningError> {
        let mut tx = self.db.begin_write().await?;
        // Checked again inside the write transaction: another instance may have published,
        // superseded or signed meanwhile.
        let status: String = sqlx::query("SELECT status FROM payloads WHERE id = $1")
            .bind(&info.id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if status != "pending" {
            return Err(SigningError::NotPending {
                id: info.id.clone(),
                status,
            });
        }
        let signed =
            sqlx::query("SELECT 1 FROM signatures WHERE payload_id = $1 AND account_id = $2")
                .bind(&info.id)
                .bind(account_id)
                .fetch_optional(&mut *tx)
                .await?;
        if signed.is_some() {
            return Err(SigningError::AlreadySigned {
                account: account_id.into(),
                payload: info.id.clone(),
            });
        }
        sqlx::query(
            "INSERT INTO signatures (payload_id, key_id, account_id, signature, how, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&info.id)
        .bind(key_id)
        .bind(account_id)
        .bind(signature)
        .bind(how)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let count: i64 =
            sqlx::query("SELECT COUNT(DISTINCT account_id) FROM signatures WHERE payload_id = $1")
                .bind(&info.id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        let needed = self.policy.threshold;
        let outcome = SignOutcome {
            payload_id: info.id.clone(),
            key_id: key_id.into(),
            signatures: count as usize,
            needed,
            complete: count as usize >= needed,
        };
        audit::record(
            &mut tx,
            &self.key,
            self.db.backend(),
            actor,
            Entry::new("payload.sign", format!("payload:{}", info.id)).after(serde_json::json!({
                "key": key_id,
                "account": account_id,
                "how": how,
                "sha256": info.sha256,
                "signatures": outcome.signatures,
                "needed": needed,
            })),
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(outcome)
    }

    /// The signed envelope of a complete payload: exactly what doors verify.
    pub async fn envelope(&self, payload_id: &str) -> Result<Vec<u8>, SigningError> {
        let (info, bytes) = self.load(payload_id).await?;
        self.envelope_of(&info, &bytes)
    }

    pub(crate) fn envelope_of(
        &self,
        info: &PayloadInfo,
        bytes: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        let mut accounts: Vec<&str> = info
            .signatures
            .iter()
            .map(|s| s.account_id.as_str())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        if accounts.len() < self.policy.threshold {
            return Err(SigningError::NotComplete {
                id: info.id.clone(),
                have: accounts.len(),
                need: self.policy.threshold,
            });
        }
        let signatures: Vec<(String, String)> = info
            .signatures
            .iter()
            .map(|s| (s.key_id.clone(), s.signature.clone()))
            .collect();
        Ok(envelope_bytes(info.kind, bytes, &signatures))
    }

    /// The offline-signing file of a pending payload (`pintuctl sign --key KEY FILE`), audited
    /// as `payload.export`.
    pub async fn export_offline(
        &self,
        payload_id: &str,
        actor: &AuditActor,
    ) -> Result<Vec<u8>, SigningError> {
        let (info, bytes) = self.load(payload_id).await?;
        Self::ensure_open(&info)?;
        let file = PayloadFile::new(&info.id, info.kind, &info.summary, &bytes);
        audit::record_alone(
            &self.db,
            &self.key,
            actor,
            Entry::new("payload.export", format!("payload:{}", info.id))
                .after(serde_json::json!({ "sha256": info.sha256 })),
        )
        .await?;
        Ok(file.to_bytes())
    }

    /// Imports a signature file written by `pintuctl sign`: it must be for this payload's
    /// bytes, then it is checked as [`Signer::add_offline_signature`] checks.
    pub async fn import_signature_file(
        &self,
        file: &[u8],
        uploader: &AuditActor,
    ) -> Result<SignOutcome, SigningError> {
        let file = SignatureFile::parse(file)?;
        let (info, _) = self.load(&file.payload_id).await?;
        if !file.sha256.eq_ignore_ascii_case(&info.sha256) {
            self.record_fail_as(
                uploader,
                &format!("payload:{}", info.id),
                "other_bytes",
                "",
                &file.key_id,
            )
            .await?;
            return Err(SigningError::OtherBytes {
                payload: info.id,
                file: file.sha256,
                stored: info.sha256,
            });
        }
        self.add_offline_signature(
            &file.payload_id,
            &file.key_id,
            Some(&file.public_key),
            &file.signature,
            uploader,
        )
        .await
    }
}
