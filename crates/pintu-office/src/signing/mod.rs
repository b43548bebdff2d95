//! Approvals are signatures (`docs/signing.md`).
//!
//! Each approver's ed25519 key is made in the service and stored only sealed under a key derived
//! from that approver's passphrase ([`vault`]); it is opened only at the moment of signing and
//! zeroized after. A list or door command to sign is a **payload**: its exact bytes are stored
//! once, and approvers add signatures over those bytes, signing in the service with their
//! passphrase or offline with `pintuctl sign` (a payload file out, a signature file back). When
//! k distinct approvers (the doors' `trust.threshold`, `[site] threshold`) have signed, the
//! payload is complete: its envelope is exactly what a door verifies, and it is published on the
//! site broker (lists retained on the site or door list topic, commands on the door's command
//! topic) or exported as a file for a door's inbox.
//!
//! Layout: [`vault`] (sealing, the passphrase policy, key ids; no database), [`api`] (the HTTP
//! routes), `keys` (the
//! approvers' keys: creation, rotation, `.pub` export, the unlock with its throttle), `payloads`
//! (payloads, signatures, envelopes, the offline files), `publish` (the broker and the file).
//! Every change is recorded in the audit trail in the transaction that makes it.

pub mod api;
mod keys;
mod payloads;
mod publish;
pub mod vault;

use std::time::Duration;

use sqlx::Row;

use crate::audit::AuditActor;
use crate::db::{Db, DbError};
use crate::secret::ServiceKey;

pub use keys::ApproverKey;
pub use payloads::{PayloadInfo, SignOutcome, SignatureInfo};
pub use pintu::office::offline::PayloadKind;
pub use publish::Published;
pub use vault::{KdfParams, PassphraseProblem};

/// How the signing service behaves (from the config's `[site]` and defaults).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Distinct approvers a payload needs (`[site] threshold`, the doors' `trust.threshold`).
    pub threshold: usize,
    /// Wrong passphrases an account may try within [`Policy::throttle_window`].
    pub max_wrong_passphrases: u32,
    /// The throttle's window.
    pub throttle_window: Duration,
    /// Argon2id parameters for keys sealed from now on (older keys are sealed again with these
    /// at their next unlock when theirs are weaker).
    pub kdf: KdfParams,
}

impl Policy {
    /// The defaults for `threshold`: 5 wrong passphrases per 15 minutes, [`KdfParams::DEFAULT`].
    pub fn new(threshold: usize) -> Policy {
        Policy {
            threshold: threshold.max(1),
            max_wrong_passphrases: 5,
            throttle_window: Duration::from_secs(15 * 60),
            kdf: KdfParams::DEFAULT,
        }
    }
}

/// Why a signing operation was refused or failed. [`SigningError::code`] is stable for the API.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No such account.
    #[error("no account {0:?}")]
    NoAccount(String),
    /// The account is disabled.
    #[error("account {0:?} is disabled")]
    AccountDisabled(String),
    /// The account does not hold the approver role (any more): its signatures do not count.
    #[error("account {0:?} is not an approver: its signature does not count")]
    NotApprover(String),
    /// The passphrase does not meet the policy.
    #[error("{0}")]
    Passphrase(#[from] PassphraseProblem),
    /// The account has no active key.
    #[error("account {0:?} has no signing key: create one first")]
    NoKey(String),
    /// The account's key is held offline: it signs with `pintuctl sign`.
    #[error("key {0:?} is held offline by its approver: sign the exported payload with `pintuctl sign` and upload the signature")]
    KeyHeldOffline(String),
    /// A public key that is not a usable ed25519 key.
    #[error("public key: {0}")]
    InvalidPublicKey(String),
    /// The passphrase does not open the account's key.
    #[error("wrong passphrase for the signing key of {account:?}; {remaining} more wrong attempt(s) allowed in the next minutes")]
    WrongPassphrase {
        /// The account.
        account: String,
        /// Wrong attempts left in the window.
        remaining: u32,
    },
    /// Too many wrong passphrases lately.
    #[error("too many wrong passphrases for {account:?}: try again in {retry_after_s} s")]
    Throttled {
        /// The account.
        account: String,
        /// Seconds until the oldest counted attempt leaves the window.
        retry_after_s: i64,
    },
    /// The stored key does not open with the service key: edited, or from another site.
    #[error("the sealed signing key {0:?} is damaged (edited, or sealed by another service key)")]
    SealedKeyDamaged(String),
    /// No such payload.
    #[error("no payload {0:?}")]
    NoPayload(String),
    /// The payload is no longer waiting for signatures.
    #[error("payload {id} is {status}, not pending")]
    NotPending {
        /// The payload.
        id: String,
        /// Its status.
        status: String,
    },
    /// The payload is past its expiry: doors would refuse it.
    #[error("payload {0} has expired: doors would refuse it; make a new one")]
    Expired(String),
    /// The account signed this payload already.
    #[error("{account:?} has signed payload {payload} already: one approver counts once")]
    AlreadySigned {
        /// The account.
        account: String,
        /// The payload.
        payload: String,
    },
    /// An offline signature names a key the service does not know.
    #[error("key {0:?} is not a registered approver key")]
    UnknownKey(String),
    /// An offline signature by a retired key.
    #[error("key {0:?} is retired: sign with the approver's current key")]
    KeyRetired(String),
    /// The signature does not verify over the payload's bytes.
    #[error("the signature by {0:?} does not verify over this payload's bytes")]
    BadSignature(String),
    /// A signature file is for other bytes than the payload's.
    #[error("the signature file is for other bytes (sha256 {file}) than payload {payload} (sha256 {stored})")]
    OtherBytes {
        /// The payload.
        payload: String,
        /// From the file.
        file: String,
        /// Of the stored bytes.
        stored: String,
    },
    /// Fewer distinct approvers than the threshold.
    #[error("payload {id} has {have} of the {need} signatures it needs")]
    NotComplete {
        /// The payload.
        id: String,
        /// Distinct approvers so far.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// The bytes are not a payload doors would accept.
    #[error("not a valid {kind}: {message}")]
    InvalidPayload {
        /// List or command.
        kind: &'static str,
        /// Why.
        message: String,
    },
    /// A list whose version is not above the newest published one.
    #[error("list version {version} is not above the newest published version {published}: doors would refuse it as a rollback")]
    StaleVersion {
        /// The new list's version.
        version: u64,
        /// The newest published.
        published: u64,
    },
    /// A door command without a broker: doors take commands only on their command topic.
    #[error("a door command is published on the broker only (doors take no commands from files): configure [mqtt]")]
    NoBroker,
    /// An offline file is malformed.
    #[error(transparent)]
    Offline(#[from] pintu::office::offline::OfflineError),
    /// The broker could not be reached: nothing changed.
    #[error("nothing was published: {0}")]
    Broker(#[source] pintu::office::client::OfficeError),
    /// Recorded as published, but the broker did not acknowledge it.
    #[error("payload {id} is recorded as published, but the broker did not acknowledge it ({source}): publish it again")]
    NotAcknowledged {
        /// The payload.
        id: String,
        /// The cause.
        source: pintu::office::client::OfficeError,
    },
    /// A file could not be written.
    #[error("writing {}: {source}", .path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The Argon2 worker did not finish (a panic).
    #[error("the key derivation worker failed: {0}")]
    Worker(String),
}

impl From<sqlx::Error> for SigningError {
    fn from(e: sqlx::Error) -> Self {
        SigningError::Db(DbError::Query(e))
    }
}

impl SigningError {
    /// A stable machine-readable code (the API's `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            SigningError::Db(_) | SigningError::Worker(_) => "internal",
            SigningError::NoAccount(_) => "no_account",
            SigningError::AccountDisabled(_) => "account_disabled",
            SigningError::NotApprover(_) => "not_approver",
            SigningError::Passphrase(_) => "weak_passphrase",
            SigningError::NoKey(_) => "no_key",
            SigningError::KeyHeldOffline(_) => "key_held_offline",
            SigningError::InvalidPublicKey(_) => "invalid_public_key",
            SigningError::WrongPassphrase { .. } => "wrong_passphrase",
            SigningError::Throttled { .. } => "throttled",
            SigningError::SealedKeyDamaged(_) => "sealed_key_damaged",
            SigningError::NoPayload(_) => "no_payload",
            SigningError::NotPending { .. } => "not_pending",
            SigningError::Expired(_) => "expired",
            SigningError::AlreadySigned { .. } => "already_signed",
            SigningError::UnknownKey(_) => "unknown_key",
            SigningError::KeyRetired(_) => "key_retired",
            SigningError::BadSignature(_) => "bad_signature",
            SigningError::OtherBytes { .. } => "other_bytes",
            SigningError::NotComplete { .. } => "not_complete",
            SigningError::InvalidPayload { .. } => "invalid_payload",
            SigningError::StaleVersion { .. } => "stale_version",
            SigningError::Offline(_) => "bad_file",
            SigningError::NoBroker => "no_broker",
            SigningError::Broker(_) => "broker_unreachable",
            SigningError::NotAcknowledged { .. } => "not_acknowledged",
            SigningError::Write { .. } => "write_failed",
        }
    }
}

/// The signing service: the database, the service key and the policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Signer {
    db: Db,
    key: ServiceKey,
    policy: Policy,
}

impl Signer {
    /// The service over `db`, sealing with `key`.
    pub fn new(db: Db, key: ServiceKey, policy: Policy) -> Signer {
        Signer { db, key, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// What the service needs to know of an account.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: String,
    pub username: String,
    pub nip: Option<String>,
    pub display_name: String,
    pub password_hash: String,
}

impl Account {
    /// The account as the actor of an audit entry.
    pub fn actor(&self) -> AuditActor {
        AuditActor {
            id: self.id.clone(),
            name: self.username.clone(),
        }
    }
}

impl Signer {
    /// The account `id`, refused when missing or disabled.
    pub(crate) async fn account(&self, id: &str) -> Result<Account, SigningError> {
        let row = sqlx::query(
            "SELECT username, nip, display_name, password_hash, disabled FROM accounts \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| SigningError::NoAccount(id.to_string()))?;
        if row.try_get::<i64, _>(4)? != 0 {
            return Err(SigningError::AccountDisabled(id.to_string()));
        }
        Ok(Account {
            id: id.to_string(),
            username: row.try_get(0)?,
            nip: row.try_get(1)?,
            display_name: row.try_get(2)?,
            password_hash: row.try_get(3)?,
        })
    }
}

impl Signer {
    /// Refuses an account that does not hold the approver role: a signature counts only while
    /// its signer is an approver (a key of someone moved to another post no longer signs).
    pub(crate) async fn require_approver(&self, account: &Account) -> Result<(), SigningError> {
        let row =
            sqlx::query("SELECT 1 FROM account_roles WHERE account_id = $1 AND role = 'approver'")
                .bind(&account.id)
                .fetch_optional(self.db.pool())
                .await?;
        match row {
            Some(_) => Ok(()),
            None => Err(SigningError::NotApprover(account.id.clone())),
        }
    }
}

/// Runs Argon2 work off the async runtime's threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SigningError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SigningError::Worker(e.to_string()))
}
