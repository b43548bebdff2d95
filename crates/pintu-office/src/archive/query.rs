//! What review, report and the console read from the archive while ingest runs: events of a
//! period (paged; by door, by holder), gaps, counters and per-door ranges, problems, rejected
//! messages.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{
    ArchiveError, ArchivedEvent, Counters, DoorRange, Gap, Problem, RejectedMessage, Stats,
};
use crate::db::Db;

/// Most events one page holds.
pub const MAX_PAGE: i64 = 1000;

/// Where a page ends: the next page starts after this event (events are ordered by time, then
/// door, then seq).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Event time (Unix ms).
    pub at_ms: i64,
    /// Door id.
    pub door: String,
    /// Sequence number.
    pub seq: i64,
}

/// Which events: those of `[from_ms, until_ms)`, optionally of one door or one holder, after
/// a cursor, at most `limit` (capped at [`MAX_PAGE`]).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// From (Unix ms, included).
    pub from_ms: i64,
    /// Until (Unix ms, excluded).
    pub until_ms: i64,
    /// Only this door.
    pub door: Option<String>,
    /// Only this holder.
    pub holder: Option<String>,
    /// Start after this event (the previous page's `next`).
    pub after: Option<Cursor>,
    /// Page size.
    pub limit: i64,
}

/// One page of events, and where the next starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// The events, by time, door and seq.
    pub events: Vec<ArchivedEvent>,
    /// The cursor of the next page.
    pub next: Option<Cursor>,
}

const EVENT_COLUMNS: &str =
    "door_id, seq, at_ms, kind, holder, card, event_id, body, received_at_ms";

fn archived(r: &AnyRow) -> Result<ArchivedEvent, sqlx::Error> {
    Ok(ArchivedEvent {
        door: r.try_get(0)?,
        seq: r.try_get(1)?,
        at_ms: r.try_get(2)?,
        kind: r.try_get(3)?,
        holder: r.try_get(4)?,
        card: r.try_get(5)?,
        event_id: r.try_get(6)?,
        body: r.try_get(7)?,
        received_at_ms: r.try_get(8)?,
    })
}

/// One page of events (see [`EventQuery`]).
pub async fn events(db: &Db, q: &EventQuery) -> Result<Page, ArchiveError> {
    let limit = q.limit.clamp(1, MAX_PAGE);
    // Only fixed fragments and placeholders go into the text; every value is bound.
    let mut sql =
        format!("SELECT {EVENT_COLUMNS} FROM door_events WHERE at_ms >= $1 AND at_ms < $2");
    let mut n = 2;
    if q.door.is_some() {
        n += 1;
        sql.push_str(&format!(" AND door_id = ${n}"));
    }
    if q.holder.is_some() {
        n += 1;
        sql.push_str(&format!(" AND holder = ${n}"));
    }
    if q.after.is_some() {
        let (a, d, s) = (n + 1, n + 2, n + 3);
        n += 3;
        sql.push_str(&format!(
            " AND (at_ms > ${a} OR (at_ms = ${a} AND (door_id > ${d} OR (door_id = ${d} AND seq > ${s}))))"
        ));
    }
    sql.push_str(&format!(" ORDER BY at_ms, door_id, seq LIMIT ${}", n + 1));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(q.from_ms)
        .bind(q.until_ms);
    if let Some(door) = &q.door {
        query = query.bind(door.clone());
    }
    if let Some(holder) = &q.holder {
        query = query.bind(holder.clone());
    }
    if let Some(c) = &q.after {
        query = query.bind(c.at_ms).bind(c.door.clone()).bind(c.seq);
    }
    // One more than asked: whether there is a next page.
    let rows = query.bind(limit + 1).fetch_all(db.pool()).await?;
    let mut events = rows.iter().map(archived).collect::<Result<Vec<_>, _>>()?;
    let next = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| Cursor {
            at_ms: e.at_ms,
            door: e.door.clone(),
            seq: e.seq,
        })
    } else {
        None
    };
    Ok(Page { events, next })
}

/// One archived event.
pub async fn event(db: &Db, door: &str, seq: i64) -> Result<Option<ArchivedEvent>, ArchiveError> {
    let row = sqlx::query(
        "SELECT door_id, seq, at_ms, kind, holder, card, event_id, body, received_at_ms \
         FROM door_events WHERE door_id = $1 AND seq = $2",
    )
    .bind(door)
    .bind(seq)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.as_ref().map(archived).transpose()?)
}

/// Every open gap, by door and seq.
pub async fn gaps(db: &Db) -> Result<Vec<Gap>, ArchiveError> {
    let rows = sqlx::query(
        "SELECT door_id, seq_from, seq_to, note, found_at_ms FROM ingest_gaps \
         ORDER BY door_id, seq_from",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Gap {
                door: r.try_get(0)?,
                from: r.try_get(1)?,
                to: r.try_get(2)?,
                note: r.try_get(3)?,
                found_at_ms: r.try_get(4)?,
            })
        })
        .collect()
}

/// The counters and every door's range.
pub async fn stats(db: &Db) -> Result<Stats, ArchiveError> {
    let c = sqlx::query(
        "SELECT received, stored, duplicates, conflicts, rejected FROM ingest_counters \
         WHERE id = 1",
    )
    .fetch_optional(db.pool())
    .await?;
    let counters = match c {
        Some(r) => Counters {
            received: r.try_get(0)?,
            stored: r.try_get(1)?,
            duplicates: r.try_get(2)?,
            conflicts: r.try_get(3)?,
            rejected: r.try_get(4)?,
        },
        None => Counters::default(),
    };
    let rows = sqlx::query(
        "SELECT door_id, events, first_seq, highest_seq, last_seen_ms FROM ingest_doors \
         ORDER BY door_id",
    )
    .fetch_all(db.pool())
    .await?;
    let doors = rows
        .iter()
        .map(|r| {
            Ok(DoorRange {
                door: r.try_get(0)?,
                events: r.try_get(1)?,
                first: r.try_get(2)?,
                last: r.try_get(3)?,
                last_seen_ms: r.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Stats { counters, doors })
}

/// The newest problems (`kind` `conflict` or `session_lost`; `None`: all), at most `limit`.
pub async fn problems(
    db: &Db,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<Problem>, ArchiveError> {
    let rows = sqlx::query(
        "SELECT id, kind, door_id, seq, topic, kept_digest, other_digest, other_body, detail, \
         instance, found_at_ms FROM ingest_problems WHERE ($1 = '' OR kind = $1) \
         ORDER BY found_at_ms DESC, id LIMIT $2",
    )
    .bind(kind.unwrap_or(""))
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Problem {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                door: r.try_get(2)?,
                seq: r.try_get(3)?,
                topic: r.try_get(4)?,
                kept_digest: r.try_get(5)?,
                other_digest: r.try_get(6)?,
                other_body: r.try_get(7)?,
                detail: r.try_get(8)?,
                instance: r.try_get(9)?,
                found_at_ms: r.try_get(10)?,
            })
        })
        .collect()
}

/// The newest rejected messages, at most `limit`.
pub async fn rejected(db: &Db, limit: i64) -> Result<Vec<RejectedMessage>, ArchiveError> {
    let rows = sqlx::query(
        "SELECT id, at_ms, topic, reason, payload, digest, instance FROM ingest_rejected \
         ORDER BY at_ms DESC, id LIMIT $1",
    )
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RejectedMessage {
                id: r.try_get(0)?,
                at_ms: r.try_get(1)?,
                topic: r.try_get(2)?,
                reason: r.try_get(3)?,
                payload: r.try_get(4)?,
                digest: r.try_get(5)?,
                instance: r.try_get(6)?,
            })
        })
        .collect()
}
