//! The audit trail: every change, approval, signature, login and export, with who, when, what,
//! and the state before and after, in the append-only table `audit_log`.
//!
//! Rows are chained: each row's `mac` is HMAC-SHA256, keyed by the service's secret
//! ([`ServiceKey::audit_mac`]), over the row's fields and the previous row's `mac`. Someone who
//! edits, inserts or deletes a row with plain SQL cannot recompute the chain without the key,
//! and [`verify`] finds the first row where it breaks. The newest (seq, mac) is also kept in
//! `audit_head`, so deleting the newest rows is found as well.

#[cfg(test)]
mod tests;

use serde::Serialize;
use sqlx::Row;

use crate::db::{now_ms, Backend, Db, DbError, Tx};
use crate::secret::ServiceKey;
use hmac::Mac;

/// The `prev_mac` of the first row.
const GENESIS: &str = "genesis";

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    /// Account id, `system` or `cli:<user>`.
    pub id: String,
    /// Name shown to the auditor (the account's username, or the same as `id`).
    pub name: String,
}

impl AuditActor {
    /// The service itself (ingest, timers).
    pub fn system() -> AuditActor {
        AuditActor {
            id: "system".into(),
            name: "system".into(),
        }
    }

    /// A `pintu-office` command run on the server by Unix user `user`.
    pub fn cli(user: &str) -> AuditActor {
        AuditActor {
            id: format!("cli:{user}"),
            name: format!("cli:{user}"),
        }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// What was done: `account.create`, `request.approve`, `list.sign`, `login.fail`, ….
    pub action: &'a str,
    /// What it was done to: `account:<id>`, `request:<ref>`, `payload:<id>`, ….
    pub target: String,
    /// State before (JSON), if any.
    pub before: Option<serde_json::Value>,
    /// State after (JSON), if any.
    pub after: Option<serde_json::Value>,
}

impl<'a> Entry<'a> {
    /// An entry with no before/after.
    pub fn new(action: &'a str, target: impl Into<String>) -> Entry<'a> {
        Entry {
            action,
            target: target.into(),
            before: None,
            after: None,
        }
    }

    /// With the state before.
    pub fn before(mut self, value: impl Serialize) -> Self {
        self.before = serde_json::to_value(value).ok();
        self
    }

    /// With the state after.
    pub fn after(mut self, value: impl Serialize) -> Self {
        self.after = serde_json::to_value(value).ok();
        self
    }
}

/// A stored row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Actor id.
    pub actor: String,
    /// Actor name.
    pub actor_name: String,
    /// Action.
    pub action: String,
    /// Target.
    pub target: String,
    /// Before (JSON text).
    pub before_json: Option<String>,
    /// After (JSON text).
    pub after_json: Option<String>,
    /// The previous row's mac.
    pub prev_mac: String,
    /// This row's mac.
    pub mac: String,
}

/// Appends `entry` inside the caller's write transaction, so the change and its record commit
/// together or not at all.
pub async fn record(
    tx: &mut Tx,
    key: &ServiceKey,
    backend: Backend,
    actor: &AuditActor,
    entry: Entry<'_>,
) -> Result<i64, DbError> {
    if backend == Backend::Postgres {
        // Serialises appenders across every instance sharing the database (SQLite's
        // BEGIN IMMEDIATE already does): two would otherwise read the same head.
        sqlx::query("SELECT pg_advisory_xact_lock(7281001)")
            .execute(&mut **tx)
            .await?;
    }
    let head = sqlx::query("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (prev_seq, prev_mac) = match head {
        Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
        None => (0, GENESIS.to_string()),
    };
    let mut row = AuditRow {
        seq: prev_seq + 1,
        at_ms: now_ms(),
        actor: actor.id.clone(),
        actor_name: actor.name.clone(),
        action: entry.action.to_string(),
        target: entry.target,
        before_json: entry.before.map(|v| v.to_string()),
        after_json: entry.after.map(|v| v.to_string()),
        prev_mac,
        mac: String::new(),
    };
    row.mac = mac_of(key, &row);
    sqlx::query(
        "INSERT INTO audit_log (seq, at_ms, actor, actor_name, action, target, before_json, \
         after_json, prev_mac, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(row.seq)
    .bind(row.at_ms)
    .bind(&row.actor)
    .bind(&row.actor_name)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.before_json)
    .bind(&row.after_json)
    .bind(&row.prev_mac)
    .bind(&row.mac)
    .execute(&mut **tx)
    .await?;
    let updated = sqlx::query("UPDATE audit_head SET seq = $1, mac = $2 WHERE id = 1")
        .bind(row.seq)
        .bind(&row.mac)
        .execute(&mut **tx)
        .await?;
    if updated.rows_affected() == 0 {
        sqlx::query("INSERT INTO audit_head (id, seq, mac) VALUES (1, $1, $2)")
            .bind(row.seq)
            .bind(&row.mac)
            .execute(&mut **tx)
            .await?;
    }
    Ok(row.seq)
}

/// Records one entry in a transaction of its own (for events with no other change: a login,
/// an export).
pub async fn record_alone(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    entry: Entry<'_>,
) -> Result<i64, DbError> {
    let mut tx = db.begin_write().await?;
    let seq = record(&mut tx, key, db.backend(), actor, entry).await?;
    tx.commit().await?;
    Ok(seq)
}

/// The mac of a row: HMAC over each field, length-prefixed so no two rows encode alike.
fn mac_of(key: &ServiceKey, row: &AuditRow) -> String {
    let mut mac = key.audit_mac();
    let mut field = |bytes: &[u8]| {
        mac.update(&(bytes.len() as u64).to_be_bytes());
        mac.update(bytes);
    };
    field(&row.seq.to_be_bytes());
    field(&row.at_ms.to_be_bytes());
    field(row.actor.as_bytes());
    field(row.actor_name.as_bytes());
    field(row.action.as_bytes());
    field(row.target.as_bytes());
    for optional in [&row.before_json, &row.after_json] {
        match optional {
            Some(text) => {
                field(b"1");
                field(text.as_bytes());
            }
            None => field(b"0"),
        }
    }
    field(row.prev_mac.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Rows checked.
    pub rows: i64,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// A row's content does not match its mac: edited.
    Edited {
        /// The row.
        seq: i64,
    },
    /// A row's `prev_mac` is not the mac of the row before it, or seqs skip: a row deleted
    /// or inserted before it.
    Broken {
        /// The first row after the break.
        seq: i64,
    },
    /// The newest row is not the one `audit_head` names: rows deleted at the end (or the head
    /// edited).
    Head {
        /// The newest seq in the table.
        table_seq: i64,
        /// The seq the head names.
        head_seq: i64,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Edited { seq } => write!(f, "row {seq} was changed after it was written"),
            Problem::Broken { seq } => {
                write!(
                    f,
                    "the chain breaks before row {seq}: a row was deleted or inserted"
                )
            }
            Problem::Head {
                table_seq,
                head_seq,
            } => write!(
                f,
                "the newest row is {table_seq} but the head names {head_seq}: rows were deleted \
                 at the end, or the head was changed"
            ),
        }
    }
}

/// Checks the whole chain, reading it in pages.
pub async fn verify(db: &Db, key: &ServiceKey) -> Result<Verdict, DbError> {
    let mut prev_seq = 0i64;
    let mut prev_mac = GENESIS.to_string();
    let mut rows = 0i64;
    loop {
        let page = list(db, prev_seq, 1000).await?;
        if page.is_empty() {
            break;
        }
        for row in page {
            rows += 1;
            if row.seq != prev_seq + 1 || row.prev_mac != prev_mac {
                return Ok(Verdict {
                    rows,
                    problem: Some(Problem::Broken { seq: row.seq }),
                });
            }
            if mac_of(key, &row) != row.mac {
                return Ok(Verdict {
                    rows,
                    problem: Some(Problem::Edited { seq: row.seq }),
                });
            }
            prev_seq = row.seq;
            prev_mac = row.mac;
        }
    }
    let head = sqlx::query("SELECT seq, mac FROM audit_head WHERE id = 1")
        .fetch_optional(db.pool())
        .await?;
    let (head_seq, head_mac) = match head {
        Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
        None => (0, GENESIS.to_string()),
    };
    if head_seq != prev_seq || head_mac != prev_mac {
        return Ok(Verdict {
            rows,
            problem: Some(Problem::Head {
                table_seq: prev_seq,
                head_seq,
            }),
        });
    }
    Ok(Verdict {
        rows,
        problem: None,
    })
}

/// Up to `limit` rows after `after_seq`, oldest first.
pub async fn list(db: &Db, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    let rows = sqlx::query(
        "SELECT seq, at_ms, actor, actor_name, action, target, before_json, after_json, \
         prev_mac, mac FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                seq: r.try_get(0)?,
                at_ms: r.try_get(1)?,
                actor: r.try_get(2)?,
                actor_name: r.try_get(3)?,
                action: r.try_get(4)?,
                target: r.try_get(5)?,
                before_json: r.try_get(6)?,
                after_json: r.try_get(7)?,
                prev_mac: r.try_get(8)?,
                mac: r.try_get(9)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}
