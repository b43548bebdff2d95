//! Import of the sled archive that `pintuctl archive` kept before the archive moved into the
//! office service: every event, read with today's code (`pintu::office::archive`), stored
//! through the same checks and de-duplication as the ingest, so an import can be repeated and
//! can overlap what the ingest already has; then the messages it kept as rejected (and the
//! conflicts it kept), into `ingest_rejected`, each once however often the import runs.

use std::path::Path;

use serde::Serialize;

use pintu::office::archive::RejectedRecord;

use super::store::{store_batch, Message};
use super::{digest, ArchiveError, Stored};
use crate::audit::{self, AuditActor, Entry};
use crate::db::Db;
use crate::secret::ServiceKey;

/// Events stored per write transaction during an import.
const CHUNK: usize = 2000;
/// The instance name import rows carry (`ingest_rejected`, `ingest_problems`).
const INSTANCE: &str = "import";

/// What an import brought in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The site recorded in the sled archive.
    pub site: String,
    /// Events read from the sled archive.
    pub read: u64,
    /// Events new to the database.
    pub imported: u64,
    /// Events the database already had, byte for byte.
    pub duplicates: u64,
    /// Events the database holds a different event for (kept; the sled one is recorded as a
    /// conflict).
    pub conflicts: u64,
    /// Events that failed the checks (kept in `ingest_rejected`).
    pub rejected: u64,
    /// Messages the sled archive had kept as rejected or conflicting, read.
    pub rejected_read: u64,
    /// … of which new to `ingest_rejected` (the rest came with an earlier import).
    pub rejected_imported: u64,
    /// Doors seen.
    pub doors: u64,
}

/// What the sled reader hands over, a chunk at a time.
enum Chunk {
    Events(Vec<Message>),
    Rejected(Vec<RejectedRecord>),
}

/// Stores kept rejected messages in one transaction; returns how many were new. The row id is
/// a digest of the record, so a repeated import adds nothing.
async fn store_rejected(db: &Db, records: &[RejectedRecord]) -> Result<u64, ArchiveError> {
    let mut tx = db.begin_write().await?;
    let mut new = 0;
    for r in records {
        let id = format!(
            "sled-{}",
            digest(format!("{}\n{}\n{}\n{}", r.at, r.topic, r.reason, r.payload).as_bytes())
        );
        let done = sqlx::query(
            "INSERT INTO ingest_rejected (id, at_ms, topic, reason, payload, digest, instance) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(r.at.as_millisecond())
        .bind(&r.topic)
        .bind(&r.reason)
        .bind(&r.payload)
        .bind(digest(r.payload.as_bytes()))
        .bind(INSTANCE)
        .execute(&mut *tx)
        .await?;
        new += done.rows_affected();
    }
    tx.commit().await?;
    Ok(new)
}

/// Imports the sled archive in `dir` (the `--db` of `pintuctl archive`; that service must be
/// stopped: sled allows one process) into the archive of `site`, recorded in the audit trail as
/// done by `actor`. Refuses an archive of another site.
pub async fn import_sled(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    site: &str,
    dir: &Path,
) -> Result<ImportReport, ArchiveError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Chunk, ArchiveError>>(2);
    let path = dir.to_path_buf();
    let wanted = site.to_string();
    // sled is synchronous: it is read on a blocking thread, a chunk at a time.
    let reader = tokio::task::spawn_blocking(move || -> Result<String, ArchiveError> {
        let sled = pintu::office::archive::Archive::open_existing(&path)?;
        let stored = sled.site()?.unwrap_or_default();
        if stored != wanted {
            return Err(ArchiveError::WrongSite {
                path: path.display().to_string(),
                stored,
                wanted,
            });
        }
        let mut chunk = Vec::with_capacity(CHUNK);
        for item in sled.iter_raw() {
            let (door, _seq, payload) = item?;
            chunk.push(Message {
                // The sled archive checked the topic when it stored the event: the door level
                // is the event's own.
                topic: format!("sled:{stored}/{door}/events"),
                payload,
            });
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                if tx.blocking_send(Ok(Chunk::Events(full))).is_err() {
                    return Ok(stored);
                }
            }
        }
        if !chunk.is_empty() && tx.blocking_send(Ok(Chunk::Events(chunk))).is_err() {
            return Ok(stored);
        }
        let mut kept = Vec::with_capacity(CHUNK);
        for record in sled.iter_rejected() {
            kept.push(record?);
            if kept.len() == CHUNK {
                let full = std::mem::replace(&mut kept, Vec::with_capacity(CHUNK));
                if tx.blocking_send(Ok(Chunk::Rejected(full))).is_err() {
                    return Ok(stored);
                }
            }
        }
        if !kept.is_empty() {
            let _ = tx.blocking_send(Ok(Chunk::Rejected(kept)));
        }
        Ok(stored)
    });
    let mut report = ImportReport::default();
    let mut doors = std::collections::BTreeSet::new();
    while let Some(chunk) = rx.recv().await {
        let chunk = match chunk? {
            Chunk::Events(chunk) => chunk,
            Chunk::Rejected(records) => {
                report.rejected_read += records.len() as u64;
                report.rejected_imported += store_rejected(db, &records).await?;
                continue;
            }
        };
        report.read += chunk.len() as u64;
        for s in store_batch(db, site, INSTANCE, &chunk).await? {
            match s {
                Stored::New { door, .. } => {
                    report.imported += 1;
                    doors.insert(door);
                }
                Stored::Duplicate { door, .. } => {
                    report.duplicates += 1;
                    doors.insert(door);
                }
                Stored::Conflict { door, .. } => {
                    report.conflicts += 1;
                    doors.insert(door);
                }
                Stored::Rejected { .. } => report.rejected += 1,
            }
        }
    }
    report.site = reader
        .await
        .map_err(|e| ArchiveError::Task(e.to_string()))??;
    report.doors = doors.len() as u64;
    audit::record_alone(
        db,
        key,
        actor,
        Entry::new("archive.import", format!("sled:{}", dir.display())).after(&report),
    )
    .await?;
    Ok(report)
}
