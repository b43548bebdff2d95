//! The outbox: events numbered without gaps and kept until the broker acknowledges them, then
//! journaled (bounded) for `pintuctl events`; events that cannot be delivered on their own are
//! set aside. Numbering survives a lost store through a reservation file outside sled.

use std::path::Path;
use std::sync::atomic::Ordering;

use jiff::Timestamp;
use uuid::Uuid;

use super::{io_err, read_u64, u64_from_key, OpenReport, Store, StoreError, JOURNAL_MAX};
use crate::core::event::{Event, EventDraft, EventKind};
use crate::util::files;

/// Highest sequence number ever removed from the outbox (by a publisher), so numbering never
/// restarts below it when the outbox is empty.
const META_SEQ_FLOOR: &[u8] = b"seq_floor";
/// Set once the outbox numbering has been initialised in this sled store; its absence next to a
/// reservation file means the store was lost and numbering must resume above the reservation.
const META_SEQ_TRACKED: &[u8] = b"seq_tracked";
/// Sequence numbers reserved per file write (one fsync per this many events).
const SEQ_BLOCK: u64 = 10_000;

impl Store {
    /// Numbers a draft and appends it to the outbox (not yet fsynced: see [`Store::flush`]).
    pub fn append(&self, draft: EventDraft, now: Timestamp) -> Result<Event, StoreError> {
        let mut state = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let seq = state.next;
        if seq >= state.reserved {
            // Once per SEQ_BLOCK events: one small fsynced write, after the relay was driven.
            write_reservation(&self.seq_file, seq + SEQ_BLOCK)?;
            state.reserved = seq + SEQ_BLOCK;
        }
        let event = draft.into_event(Uuid::new_v4(), seq, now, &self.site, &self.door);
        let bytes = serde_json::to_vec(&event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let written = 8 + bytes.len() as u64;
        self.outbox.insert(seq.to_be_bytes(), bytes)?;
        self.written.fetch_add(written, Ordering::Relaxed);
        state.next = seq + 1;
        drop(state);
        self.outbox_len.fetch_add(1, Ordering::Relaxed);
        self.appended.notify_one();
        Ok(event)
    }

    /// Makes everything appended so far durable. Concurrent callers share one fsync.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let upto = self.last_appended();
        self.db.flush_async().await?;
        self.durable_seq.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    /// Blocking [`Store::flush`], for shutdown paths and tests.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        let upto = self.last_appended();
        self.db.flush()?;
        self.durable_seq.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    fn last_appended(&self) -> u64 {
        self.seq.lock().unwrap_or_else(|e| e.into_inner()).next - 1
    }

    /// Woken after each append; the publisher waits on it (single waiter).
    pub fn appended(&self) -> &tokio::sync::Notify {
        &self.appended
    }

    /// Whether events were appended that are not yet known durable.
    pub fn has_unflushed(&self) -> bool {
        self.last_appended() > self.durable_seq.load(Ordering::SeqCst)
    }

    /// Up to `limit` durable outbox events with seq at or above `from`, oldest first, as the JSON
    /// bytes stored (published as they are). Events not yet flushed are never returned: an event
    /// the office has seen must never be lost by a power cut at the door.
    pub fn outbox_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let durable = self.durable_seq.load(Ordering::SeqCst);
        let mut out = Vec::with_capacity(limit.min(1024));
        if from > durable {
            return Ok(out);
        }
        for item in self
            .outbox
            .range(from.to_be_bytes()..=durable.to_be_bytes())
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            out.push((u64_from_key(&k)?, v.to_vec()));
        }
        Ok(out)
    }

    /// Lowest seq still in the outbox.
    pub fn outbox_first(&self) -> Result<Option<u64>, StoreError> {
        match self.outbox.first()? {
            Some((k, _)) => Ok(Some(u64_from_key(&k)?)),
            None => Ok(None),
        }
    }

    /// Events waiting in the outbox.
    pub fn outbox_depth(&self) -> u64 {
        self.outbox_len.load(Ordering::Relaxed)
    }

    /// The broker acknowledged event `seq`: it leaves the outbox for the journal (not fsynced: if
    /// a power cut undoes this, the event is published again, and the office de-duplicates).
    pub fn acknowledge(&self, seq: u64) -> Result<(), StoreError> {
        let key = seq.to_be_bytes();
        let Some(bytes) = self.outbox.remove(key)? else {
            return Ok(());
        };
        self.outbox_len.fetch_sub(1, Ordering::Relaxed);
        if self.journal.insert(key, bytes)?.is_none() {
            self.journal_len.fetch_add(1, Ordering::Relaxed);
        }
        // Numbering must never restart below a number the office has seen.
        if self.seq_floor.fetch_max(seq, Ordering::Relaxed) < seq {
            self.meta.insert(META_SEQ_FLOOR, &seq.to_be_bytes())?;
        }
        while self.journal_len.load(Ordering::Relaxed) > JOURNAL_MAX as u64 {
            if self.journal.pop_min()?.is_none() {
                break;
            }
            self.journal_len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Event `seq` cannot be delivered on its own: it leaves the outbox for the `outbox.set_aside`
    /// tree (kept, not deleted) so that delivery goes on with the next one. Returns its bytes,
    /// or `None` if it was no longer in the outbox.
    pub fn set_aside(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let key = seq.to_be_bytes();
        let Some(bytes) = self.outbox.remove(key)? else {
            return Ok(None);
        };
        self.outbox_len.fetch_sub(1, Ordering::Relaxed);
        if self.set_aside.insert(key, bytes.clone())?.is_none() {
            self.set_aside_len.fetch_add(1, Ordering::Relaxed);
        }
        // As for a delivered event: numbering never restarts below it.
        if self.seq_floor.fetch_max(seq, Ordering::Relaxed) < seq {
            self.meta.insert(META_SEQ_FLOOR, &seq.to_be_bytes())?;
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Events set aside so far ([`Store::set_aside`]).
    pub fn set_aside_count(&self) -> u64 {
        self.set_aside_len.load(Ordering::Relaxed)
    }

    /// The seqs of the events set aside, oldest first (at most `limit`).
    pub fn set_aside_seqs(&self, limit: usize) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for item in self.set_aside.iter().take(limit) {
            let (k, _) = item?;
            out.push(u64_from_key(&k)?);
        }
        Ok(out)
    }

    /// Why the broker refuses every event, while it does (the MQTT link sets and clears it).
    pub fn delivery_refused(&self) -> Option<String> {
        self.delivery_refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets or clears [`Store::delivery_refused`].
    pub fn set_delivery_refused(&self, why: Option<String>) {
        *self
            .delivery_refused
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// The newest `limit` events, delivered or not, oldest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut raw: Vec<(u64, sled::IVec)> = Vec::with_capacity(limit.min(1024) * 2);
        for tree in [&self.outbox, &self.journal] {
            for item in tree.iter().rev().take(limit) {
                let (k, v) = item?;
                raw.push((u64_from_key(&k)?, v));
            }
        }
        raw.sort_by_key(|(seq, _)| *seq);
        raw.dedup_by_key(|(seq, _)| *seq);
        let skip = raw.len().saturating_sub(limit);
        raw.into_iter()
            .skip(skip)
            .map(|(_, v)| {
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }
}

/// Outbox numbering: the next number, and the reservation it must stay below.
pub(super) struct SeqState {
    pub(super) next: u64,
    reserved: u64,
}

fn read_reservation(path: &Path) -> Result<u64, StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().unwrap_or_else(|_| {
            // Never a reason to keep the door from starting; numbering then follows the store.
            tracing::error!(
                "{}: damaged sequence reservation {text:?}; ignoring it",
                path.display()
            );
            0
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn write_reservation(path: &Path, value: u64) -> Result<(), StoreError> {
    files::write_atomic(path, format!("{value}\n").as_bytes(), 0o640).map_err(io_err(path))
}

/// Where numbering resumes at open, with the seq floor: above the newest event in the outbox
/// and the highest seq ever removed from it; when this sled store has not tracked numbering
/// before (new, lost or rebuilt), also at or above the reservation file, so no number the
/// office may have seen is issued again. Reserves the next block before returning.
pub(super) fn resume_numbering(
    meta: &sled::Tree,
    outbox: &sled::Tree,
    seq_file: &Path,
    report: &mut OpenReport,
) -> Result<(SeqState, u64), StoreError> {
    let last_seq = match outbox.last()? {
        Some((k, _)) => u64_from_key(&k)?,
        None => 0,
    };
    let seq_floor = read_u64(meta, META_SEQ_FLOOR)?.unwrap_or(0);
    let reserved_before = read_reservation(seq_file)?;
    let mut next_seq = last_seq.max(seq_floor) + 1;
    if meta.get(META_SEQ_TRACKED)?.is_none() {
        if reserved_before > next_seq {
            tracing::warn!(
                resume_at = reserved_before,
                "event numbering resumes above the last reservation: the store was replaced"
            );
            report.events.push(
            EventDraft::new(EventKind::StoreRebuilt)
                .reason("seq_resumed")
                .detail(format!("event numbering resumes at {reserved_before}; events between the last delivered one and this may be lost")),
        );
        }
        next_seq = next_seq.max(reserved_before);
        meta.insert(META_SEQ_TRACKED, &[1u8][..])?;
    }
    let reserved = next_seq + SEQ_BLOCK;
    write_reservation(seq_file, reserved)?;
    Ok((
        SeqState {
            next: next_seq,
            reserved,
        },
        seq_floor,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{reasons, Door};
    use super::super::SEQ_RESERVATION_FILE;
    use super::*;

    fn draft(n: u64) -> EventDraft {
        EventDraft::new(EventKind::DoorClosed).detail(format!("event {n}"))
    }

    fn append(store: &Store, n: u64) -> u64 {
        store
            .append(draft(n), Timestamp::now())
            .expect("append")
            .seq
    }

    fn seqs(batch: &[(u64, Vec<u8>)]) -> Vec<u64> {
        batch.iter().map(|(seq, _)| *seq).collect()
    }

    fn reservation(door: &Door) -> String {
        std::fs::read_to_string(door.state_dir().join(SEQ_RESERVATION_FILE)).expect("reservation")
    }

    /// A sled store of its own, for the numbering at open.
    fn sled_trees() -> (sled::Db, sled::Tree, sled::Tree) {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let meta = db.open_tree("meta").expect("meta");
        let outbox = db.open_tree("outbox").expect("outbox");
        (db, meta, outbox)
    }

    #[test]
    fn only_flushed_events_leave_the_outbox_from_the_seq_asked_and_up_to_the_limit() {
        let door = Door::new();
        let (store, _) = door.open();
        for n in 1..=5 {
            append(&store, n);
        }
        assert!(store.has_unflushed());
        assert!(
            store.outbox_from(1, 10).expect("read").is_empty(),
            "nothing leaves before it is on disk"
        );
        store.flush_blocking().expect("flush");
        assert!(!store.has_unflushed());
        assert_eq!(
            seqs(&store.outbox_from(1, 10).expect("read")),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(seqs(&store.outbox_from(2, 2).expect("read")), [2, 3]);
        assert!(store.outbox_from(6, 10).expect("read").is_empty());
        append(&store, 6);
        assert_eq!(seqs(&store.outbox_from(5, 10).expect("read")), [5]);
        let (_, bytes) = &store.outbox_from(3, 1).expect("read")[0];
        let event: Event = serde_json::from_slice(bytes).expect("stored as event JSON");
        assert_eq!((event.seq, event.detail.as_deref()), (3, Some("event 3")));
    }

    #[test]
    fn acknowledged_events_move_to_the_journal_once_in_any_order() {
        let door = Door::new();
        let (store, _) = door.open();
        for n in 1..=4 {
            append(&store, n);
        }
        store.flush_blocking().expect("flush");
        store.acknowledge(2).expect("ack");
        store.acknowledge(2).expect("ack again");
        store.acknowledge(99).expect("ack unknown");
        assert_eq!(store.outbox_depth(), 3);
        assert_eq!(store.outbox_first().expect("first"), Some(1));
        assert_eq!(seqs(&store.outbox_from(1, 10).expect("read")), [1, 3, 4]);
        store.acknowledge(1).expect("ack");
        assert_eq!(store.outbox_first().expect("first"), Some(3));
        let recent: Vec<u64> = store
            .recent_events(10)
            .expect("recent")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(
            recent,
            [1, 2, 3, 4],
            "the journal and the outbox read as one"
        );
        assert_eq!(store.journal_len.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn numbering_resumes_above_events_already_removed_when_the_outbox_is_empty() {
        let door = Door::new();
        {
            let (store, _) = door.open();
            for n in 1..=3 {
                append(&store, n);
            }
            store.flush_blocking().expect("flush");
            store.acknowledge(1).expect("ack");
            store.acknowledge(3).expect("ack");
            store.set_aside(2).expect("set aside");
            assert_eq!(store.outbox_depth(), 0);
            store.flush_blocking().expect("flush");
        }
        let (store, _) = door.open();
        assert_eq!(store.outbox_first().expect("first"), None);
        assert_eq!(
            append(&store, 4),
            4,
            "the seq floor, not the reservation, says 4"
        );
    }

    #[test]
    fn set_aside_keeps_the_bytes_and_counts_each_event_once() {
        let door = Door::new();
        let (store, _) = door.open();
        for n in 1..=3 {
            append(&store, n);
        }
        store.flush_blocking().expect("flush");
        let bytes = store.set_aside(2).expect("set aside").expect("was there");
        let event: Event = serde_json::from_slice(&bytes).expect("event JSON");
        assert_eq!(event.seq, 2);
        assert_eq!(store.set_aside(2).expect("again"), None);
        store.set_aside(3).expect("set aside");
        assert_eq!(store.set_aside_count(), 2);
        assert_eq!(store.set_aside_seqs(1).expect("seqs"), [2]);
        assert_eq!(store.set_aside_seqs(10).expect("seqs"), [2, 3]);
        assert_eq!(seqs(&store.outbox_from(1, 10).expect("read")), [1]);
    }

    #[test]
    fn the_journal_keeps_the_newest_events_only() {
        let door = Door::new();
        let (store, _) = door.open();
        let total = JOURNAL_MAX as u64 + 3;
        for n in 1..=total {
            append(&store, n);
            store.acknowledge(n).expect("ack");
        }
        assert_eq!(store.journal.len(), JOURNAL_MAX);
        let oldest = store.journal.first().expect("first").expect("entry").0;
        assert_eq!(u64_from_key(&oldest).expect("seq"), 4);
    }

    #[test]
    fn a_block_of_numbers_is_reserved_on_disk_before_it_is_used() {
        let door = Door::new();
        let (store, _) = door.open();
        assert_eq!(reservation(&door), format!("{}\n", 1 + SEQ_BLOCK));
        for n in 1..=3 {
            append(&store, n);
        }
        assert_eq!(
            reservation(&door),
            format!("{}\n", 1 + SEQ_BLOCK),
            "no write per event"
        );
        // The block runs out at 4: that append reserves the next block first.
        store.seq.lock().expect("seq").reserved = 4;
        assert_eq!(append(&store, 4), 4);
        assert_eq!(reservation(&door), format!("{}\n", 4 + SEQ_BLOCK));
        assert_eq!(store.seq.lock().expect("seq").reserved, 4 + SEQ_BLOCK);
    }

    #[test]
    fn a_new_sled_store_resumes_at_the_reservation_and_says_so() {
        let door = Door::new();
        let file = door.state_dir().join(SEQ_RESERVATION_FILE);
        std::fs::write(&file, "500\n").expect("write");
        let (_db, meta, outbox) = sled_trees();
        let mut report = OpenReport::default();
        let (seq, floor) = resume_numbering(&meta, &outbox, &file, &mut report).expect("resume");
        assert_eq!((seq.next, seq.reserved, floor), (500, 500 + SEQ_BLOCK, 0));
        assert_eq!(
            reasons(&report, EventKind::StoreRebuilt),
            ["seq_resumed"],
            "the gap is reported"
        );
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            format!("{}\n", 500 + SEQ_BLOCK)
        );
    }

    #[test]
    fn a_tracked_store_follows_its_outbox_and_floor_not_the_reservation() {
        let door = Door::new();
        let file = door.state_dir().join(SEQ_RESERVATION_FILE);
        let (_db, meta, outbox) = sled_trees();
        let mut report = OpenReport::default();
        let (seq, _) = resume_numbering(&meta, &outbox, &file, &mut report).expect("first");
        assert_eq!(seq.next, 1, "a fresh door starts at 1");
        assert!(report.events.is_empty());
        outbox
            .insert(7u64.to_be_bytes(), &b"{}"[..])
            .expect("insert");
        meta.insert(META_SEQ_FLOOR, &9u64.to_be_bytes()[..])
            .expect("insert");
        let (seq, floor) = resume_numbering(&meta, &outbox, &file, &mut report).expect("again");
        assert_eq!((seq.next, floor), (10, 9));
        assert!(report.events.is_empty(), "{:?}", report.events);
    }

    #[test]
    fn a_damaged_or_missing_reservation_reads_as_none() {
        let door = Door::new();
        let file = door.state_dir().join(SEQ_RESERVATION_FILE);
        assert_eq!(read_reservation(&file).expect("missing"), 0);
        std::fs::write(&file, "12x\n").expect("write");
        assert_eq!(read_reservation(&file).expect("damaged"), 0);
        write_reservation(&file, 42).expect("write");
        assert_eq!(read_reservation(&file).expect("read"), 42);
    }

    #[test]
    fn delivery_refused_is_set_and_cleared() {
        let door = Door::new();
        let (store, _) = door.open();
        assert_eq!(store.delivery_refused(), None);
        store.set_delivery_refused(Some("not authorised".into()));
        assert_eq!(store.delivery_refused().as_deref(), Some("not authorised"));
        store.set_delivery_refused(None);
        assert_eq!(store.delivery_refused(), None);
    }
}
