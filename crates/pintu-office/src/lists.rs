//! Signed lists from the database: the one place where the directory (who may open which door)
//! meets the signing (who must approve). [`prepare`] builds the site's next list from the
//! database with `pintuctl`'s own list builder and stores it as a payload for the approvers to
//! sign; once k of them have signed and it is published, [`record_published`] moves the
//! register's list version up, so the next list is built above it.

use jiff::Timestamp;
use pintu::core::list;
use sqlx::Row;

use crate::audit::AuditActor;
use crate::db::{Db, DbError};
use crate::directory::{self, DirectoryError};
use crate::secret::ServiceKey;
use crate::signing::{PayloadInfo, PayloadKind, Signer, SigningError};

/// Why a list could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The directory could not give the register (no site imported, no card key …).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The signing refused the payload.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The list could not be encoded.
    #[error("cannot encode the list: {0}")]
    Encode(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ListError {
    fn from(e: sqlx::Error) -> Self {
        ListError::Db(DbError::Query(e))
    }
}

/// The next version: above the register's recorded version and every list ever stored for
/// signature (pending ones are superseded by the new one).
async fn next_version(db: &Db, recorded: u64) -> Result<u64, ListError> {
    let row = sqlx::query("SELECT MAX(list_version) FROM payloads WHERE kind = 'list'")
        .fetch_one(db.pool())
        .await?;
    let stored: Option<i64> = row.try_get(0)?;
    let stored = stored.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Ok(recorded.max(stored) + 1)
}

/// Builds the site's next list from the database and stores it for signature, made by
/// `created_by` (account id). `card_key_file`: `[site] card_key_file`.
pub async fn prepare(
    db: &Db,
    key: &ServiceKey,
    signer: &Signer,
    card_key_file: Option<&std::path::Path>,
    created_by: &str,
) -> Result<PayloadInfo, ListError> {
    let card_key = directory::load_card_key(card_key_file)?;
    let register = directory::register::snapshot(db, key).await?;
    let version = next_version(db, register.register.list.version).await?;
    let (payload, visits) = register
        .build_list(&card_key, version, Timestamp::now())
        .map_err(DirectoryError::from)?;
    let bytes =
        list::payload_bytes(&payload, &visits).map_err(|e| ListError::Encode(e.to_string()))?;
    Ok(signer
        .create_payload(PayloadKind::List, None, &bytes, created_by)
        .await?)
}

/// After payload `payload_id` was published: a list's version becomes the register's recorded
/// version.
pub async fn record_published(
    db: &Db,
    key: &ServiceKey,
    signer: &Signer,
    actor: &AuditActor,
    payload_id: &str,
) -> Result<(), ListError> {
    let info = signer.payload(payload_id).await?;
    if let (PayloadKind::List, Some(version)) = (info.kind, info.list_version) {
        let version = u64::try_from(version).unwrap_or(0);
        match directory::register::record_list_version(db, key, actor, version).await {
            // A site that never imported a register has no version to move (lists made from
            // outside bytes only).
            Ok(()) | Err(DirectoryError::NoSite) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
