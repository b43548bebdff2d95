//! One batch of messages stored in one write transaction: events inserted once by
//! `(door, seq)`, duplicates and conflicts told apart by digest, per-door ranges and gaps kept
//! current, counters bumped. The caller acknowledges the batch only after this returned.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::check::{check, digest, payload_text, Checked};
use super::{ArchiveError, Counters, Stored};
use crate::db::{new_id, now_ms, Backend, Db, Tx};

/// Serialises the ingest's write transactions across every instance sharing a PostgreSQL
/// database (SQLite's `BEGIN IMMEDIATE` already does): per-door ranges and gaps are read and
/// written in the same transaction.
const INGEST_LOCK: i64 = 7_281_006;

/// Gap note: the gap lies before the first event archived for the door.
pub(super) const BEFORE_FIRST: &str = "before the first archived event";
/// Gap note: the event after the gap is a `store.rebuilt` with reason `seq_resumed`.
pub(super) const SEQ_RESUMED: &str =
    "the door lost its store and resumed numbering (store.rebuilt seq_resumed follows)";

/// One message as received.
#[derive(Debug, Clone)]
pub struct Message {
    /// The topic it came on (`{prefix}/{site}/{door}/events`).
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A door's range as this batch sees it.
struct DoorState {
    events: i64,
    first: i64,
    highest: i64,
    /// Changed by this batch (written back at the end).
    dirty: bool,
}

/// Events per multi-row `INSERT` (10 parameters each: well under both engines' limits).
const INSERT_ROWS: usize = 100;

/// Stores `messages` (received for `site` by ingest `instance`) in one write transaction and
/// returns what became of each, in order. Nothing is stored when it fails.
///
/// The events go in with a few multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` (one round
/// trip per hundred events, not one per event); then each message is settled in order: new
/// (ranges and gaps follow it), duplicate or conflict (against the archived digest), rejected.
pub async fn store_batch(
    db: &Db,
    site: &str,
    instance: &str,
    messages: &[Message],
) -> Result<Vec<Stored>, ArchiveError> {
    let now = now_ms();
    let checked: Vec<Result<Checked, String>> = messages
        .iter()
        .map(|m| check(site, &m.topic, &m.payload, now))
        .collect();
    // The first message of each (door, seq) in the batch is the one offered to the database;
    // a later one is settled against what that left archived.
    let mut first_of: HashMap<(&str, i64), usize> = HashMap::new();
    let mut offered: Vec<&Checked> = Vec::new();
    for (i, c) in checked.iter().enumerate() {
        if let Ok(c) = c {
            if let std::collections::hash_map::Entry::Vacant(v) =
                first_of.entry((c.door.as_str(), c.seq))
            {
                v.insert(i);
                offered.push(c);
            }
        }
    }

    let mut tx = db.begin_write().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(INGEST_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    let mut inserted: HashSet<(String, i64)> = HashSet::new();
    for chunk in offered.chunks(INSERT_ROWS) {
        inserted.extend(insert_events(&mut tx, chunk, now).await?);
    }
    // What is archived under each (door, seq) of the batch: its digest.
    let mut archived: HashMap<(String, i64), String> = HashMap::new();
    let mut doors: HashMap<String, DoorState> = HashMap::new();
    let mut counts = Counters::default();
    let mut out = Vec::with_capacity(messages.len());
    for (i, (m, c)) in messages.iter().zip(&checked).enumerate() {
        counts.received += 1;
        let c = match c {
            Ok(c) => c,
            Err(reason) => {
                sqlx::query(
                    "INSERT INTO ingest_rejected (id, at_ms, topic, reason, payload, digest, \
                     instance) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(new_id())
                .bind(now)
                .bind(&m.topic)
                .bind(reason)
                .bind(payload_text(&m.payload))
                .bind(digest(&m.payload))
                .bind(instance)
                .execute(&mut *tx)
                .await?;
                counts.rejected += 1;
                out.push(Stored::Rejected {
                    reason: reason.clone(),
                });
                continue;
            }
        };
        let key = (c.door.clone(), c.seq);
        let first = first_of.get(&(c.door.as_str(), c.seq)) == Some(&i);
        if first && inserted.contains(&key) {
            archived.insert(key, c.digest.clone());
            counts.stored += 1;
            out.push(new_event(&mut tx, &mut doors, c, now).await?);
            continue;
        }
        let kept = match archived.get(&key) {
            Some(d) => d.clone(),
            None => {
                let d: String =
                    sqlx::query("SELECT digest FROM door_events WHERE door_id = $1 AND seq = $2")
                        .bind(&c.door)
                        .bind(c.seq)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                archived.insert(key, d.clone());
                d
            }
        };
        // A door republishes an event byte for byte: anything else under an archived
        // (door, seq) is a conflict, not a duplicate.
        if kept == c.digest {
            counts.duplicates += 1;
            out.push(Stored::Duplicate {
                door: c.door.clone(),
                seq: c.seq,
            });
        } else {
            counts.conflicts += 1;
            sqlx::query(
                "INSERT INTO ingest_problems (id, kind, door_id, seq, topic, kept_digest, \
                 other_digest, other_body, detail, instance, found_at_ms) \
                 VALUES ($1, 'conflict', $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(new_id())
            .bind(&c.door)
            .bind(c.seq)
            .bind(&m.topic)
            .bind(&kept)
            .bind(&c.digest)
            .bind(&c.body)
            .bind(format!(
                "another event (id {}) arrived as {}#{}, which holds a different one; the \
                 first is kept",
                c.event_id, c.door, c.seq
            ))
            .bind(instance)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            out.push(Stored::Conflict {
                door: c.door.clone(),
                seq: c.seq,
            });
        }
    }
    for (door, s) in doors.iter().filter(|(_, s)| s.dirty) {
        sqlx::query(
            "INSERT INTO ingest_doors (door_id, events, first_seq, highest_seq, last_seen_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (door_id) DO UPDATE SET \
             events = excluded.events, first_seq = excluded.first_seq, \
             highest_seq = excluded.highest_seq, last_seen_ms = excluded.last_seen_ms",
        )
        .bind(door)
        .bind(s.events)
        .bind(s.first)
        .bind(s.highest)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE ingest_counters SET received = received + $1, stored = stored + $2, \
         duplicates = duplicates + $3, conflicts = conflicts + $4, rejected = rejected + $5 \
         WHERE id = 1",
    )
    .bind(counts.received)
    .bind(counts.stored)
    .bind(counts.duplicates)
    .bind(counts.conflicts)
    .bind(counts.rejected)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(out)
}

/// Inserts `events` in one statement, skipping those whose (door, seq) is archived; returns
/// the (door, seq) of those inserted.
async fn insert_events(
    tx: &mut Tx,
    events: &[&Checked],
    now: i64,
) -> Result<Vec<(String, i64)>, ArchiveError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // Only placeholders go into the text; every value is bound.
    let mut sql = String::from(
        "INSERT INTO door_events (door_id, seq, at_ms, kind, holder, card, event_id, body, \
         digest, received_at_ms) VALUES ",
    );
    for i in 0..events.len() {
        let b = i * 10;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for k in 1..=10 {
            if k > 1 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", b + k));
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (door_id, seq) DO NOTHING RETURNING door_id, seq");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for c in events {
        q = q
            .bind(c.door.clone())
            .bind(c.seq)
            .bind(c.at_ms)
            .bind(c.kind.clone())
            .bind(c.holder.clone())
            .bind(c.card.clone())
            .bind(c.event_id.clone())
            .bind(c.body.clone())
            .bind(c.digest.clone())
            .bind(now);
    }
    let rows = q.fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect()
}

/// A new event: its door's range grows; a gap opens before it, or it fills one.
async fn new_event(
    tx: &mut Tx,
    doors: &mut HashMap<String, DoorState>,
    c: &Checked,
    now: i64,
) -> Result<Stored, ArchiveError> {
    if !doors.contains_key(&c.door) {
        let state = load_door(tx, &c.door).await?;
        doors.insert(c.door.clone(), state);
    }
    let Some(state) = doors.get_mut(&c.door) else {
        return Err(ArchiveError::Task("door state vanished".into()));
    };
    let mut gap = None;
    let mut filled = false;
    if c.seq > state.highest + 1 {
        let note = if state.highest == 0 {
            Some(BEFORE_FIRST)
        } else if c.resumes_seq {
            Some(SEQ_RESUMED)
        } else {
            None
        };
        insert_gap(tx, &c.door, state.highest + 1, c.seq - 1, note, now).await?;
        gap = Some((state.highest + 1, c.seq - 1));
    } else if c.seq < state.highest {
        filled = fill_gap(tx, &c.door, c.seq).await?;
    }
    state.events += 1;
    state.first = if state.events == 1 {
        c.seq
    } else {
        state.first.min(c.seq)
    };
    state.highest = state.highest.max(c.seq);
    state.dirty = true;
    Ok(Stored::New {
        door: c.door.clone(),
        seq: c.seq,
        gap,
        filled,
    })
}

async fn load_door(tx: &mut Tx, door: &str) -> Result<DoorState, ArchiveError> {
    let row =
        sqlx::query("SELECT events, first_seq, highest_seq FROM ingest_doors WHERE door_id = $1")
            .bind(door)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(match row {
        Some(r) => DoorState {
            events: r.try_get(0)?,
            first: r.try_get(1)?,
            highest: r.try_get(2)?,
            dirty: false,
        },
        None => DoorState {
            events: 0,
            first: 0,
            highest: 0,
            dirty: false,
        },
    })
}

async fn insert_gap(
    tx: &mut Tx,
    door: &str,
    from: i64,
    to: i64,
    note: Option<&str>,
    found_at_ms: i64,
) -> Result<(), ArchiveError> {
    sqlx::query(
        "INSERT INTO ingest_gaps (door_id, seq_from, seq_to, note, found_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(door)
    .bind(from)
    .bind(to)
    .bind(note)
    .bind(found_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A late event `seq` of `door` arrived: the gap holding it shrinks, splits in two or closes.
/// False when no gap held it (it cannot happen: the event was new and below the highest).
async fn fill_gap(tx: &mut Tx, door: &str, seq: i64) -> Result<bool, ArchiveError> {
    let row = sqlx::query(
        "SELECT seq_from, seq_to, note, found_at_ms FROM ingest_gaps \
         WHERE door_id = $1 AND seq_from <= $2 AND seq_to >= $2",
    )
    .bind(door)
    .bind(seq)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let (from, to): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let note: Option<String> = row.try_get(2)?;
    let found: i64 = row.try_get(3)?;
    sqlx::query("DELETE FROM ingest_gaps WHERE door_id = $1 AND seq_from = $2")
        .bind(door)
        .bind(from)
        .execute(&mut **tx)
        .await?;
    // "Before the first archived event" stays true of the lower part only; the event after the
    // upper part is still the one that explained it.
    let before_first = note.as_deref() == Some(BEFORE_FIRST);
    if from < seq {
        let lower = note.as_deref().filter(|_| before_first);
        insert_gap(tx, door, from, seq - 1, lower, found).await?;
    }
    if seq < to {
        let upper = note.as_deref().filter(|_| !before_first);
        insert_gap(tx, door, seq + 1, to, upper, found).await?;
    }
    Ok(true)
}
