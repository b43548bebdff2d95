//! The list cache's on-disk layout: entries sorted by card hash and packed into chunks, one sled
//! value per chunk keyed by the chunk's first card hash.
//!
//! A lookup is one sled range step (`..=hash`, last) and a binary search inside the chunk, and
//! only the matching entry is decoded. Packing keeps the tree ~30 times smaller than one key per
//! card, which makes applying a list cheaper and lookups more often served from sled's cache.
//!
//! Chunk value layout (little-endian):
//! `u16 n` · `n × [u8; 32]` sorted card hashes · `(n + 1) × u32` entry offsets · entry bytes
//! (each entry is a postcard-encoded [`StoredEntry`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::core::card::CardHash;
use crate::core::list::{Entry, Role};
use crate::core::schedule::{Days, MinuteOfDay, Window};

/// Entries per chunk: small enough that decoding stays cheap, large enough to shrink the tree.
pub const ENTRIES_PER_CHUNK: usize = 32;

/// An entry as stored, without its card hash (the chunk holds it) and with compact times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredEntry {
    holder: String,
    name: String,
    role: Role,
    valid_from: (i64, i32),
    valid_until: (i64, i32),
    doors: Option<Vec<String>>,
    /// (days bitmask, from minute, until minute).
    schedule: Vec<(u8, u16, u16)>,
    request_ref: String,
    approver: String,
}

fn pack_time(t: Timestamp) -> (i64, i32) {
    (t.as_second(), t.subsec_nanosecond())
}

fn unpack_time((s, ns): (i64, i32)) -> Result<Timestamp, String> {
    Timestamp::new(s, ns).map_err(|e| format!("bad stored time: {e}"))
}

impl StoredEntry {
    fn from_entry(e: &Entry) -> Self {
        StoredEntry {
            holder: e.holder.clone(),
            name: e.name.clone(),
            role: e.role,
            valid_from: pack_time(e.valid_from),
            valid_until: pack_time(e.valid_until),
            doors: e.doors.clone(),
            schedule: e
                .schedule
                .iter()
                .map(|w| (w.days.bits(), w.from.minutes(), w.until.minutes()))
                .collect(),
            request_ref: e.request_ref.clone(),
            approver: e.approver.clone(),
        }
    }

    fn into_entry(self, card: CardHash) -> Result<Entry, String> {
        let schedule = self
            .schedule
            .into_iter()
            .map(|(days, from, until)| {
                Ok(Window {
                    days: Days::from_bits(days),
                    from: MinuteOfDay::from_minutes(from).ok_or("bad stored schedule time")?,
                    until: MinuteOfDay::from_minutes(until).ok_or("bad stored schedule time")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Entry {
            card,
            holder: self.holder,
            name: self.name,
            role: self.role,
            valid_from: unpack_time(self.valid_from)?,
            valid_until: unpack_time(self.valid_until)?,
            doors: self.doors,
            schedule,
            request_ref: self.request_ref,
            approver: self.approver,
        })
    }
}

/// Packs entries (already sorted by card hash, at most [`ENTRIES_PER_CHUNK`]) into one value.
pub fn encode(entries: &[&Entry]) -> Vec<u8> {
    debug_assert!(entries.windows(2).all(|w| w[0].card < w[1].card));
    let n = entries.len();
    let bodies: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| postcard::to_allocvec(&StoredEntry::from_entry(e)).expect("entry encodes"))
        .collect();
    let body_len: usize = bodies.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(2 + n * 36 + 4 + body_len);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.card.0);
    }
    let mut offset = 0u32;
    for body in &bodies {
        out.extend_from_slice(&offset.to_le_bytes());
        offset += body.len() as u32;
    }
    out.extend_from_slice(&offset.to_le_bytes());
    for body in bodies {
        out.extend_from_slice(&body);
    }
    out
}

/// Finds `card` in a chunk and decodes its entry.
pub fn find(chunk: &[u8], card: &CardHash) -> Result<Option<Entry>, String> {
    let damaged = || "damaged list chunk".to_string();
    let n = u16::from_le_bytes(
        chunk
            .get(..2)
            .ok_or_else(damaged)?
            .try_into()
            .map_err(|_| damaged())?,
    ) as usize;
    let hashes = chunk.get(2..2 + n * 32).ok_or_else(damaged)?;
    let offsets_at = 2 + n * 32;
    let body_at = offsets_at + (n + 1) * 4;
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match hashes[mid * 32..mid * 32 + 32].cmp(&card.0[..]) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => {
                let offset = |i: usize| -> Result<usize, String> {
                    let at = offsets_at + i * 4;
                    let raw = chunk.get(at..at + 4).ok_or_else(damaged)?;
                    Ok(u32::from_le_bytes(raw.try_into().map_err(|_| damaged())?) as usize)
                };
                let body = chunk
                    .get(body_at + offset(mid)?..body_at + offset(mid + 1)?)
                    .ok_or_else(damaged)?;
                let stored: StoredEntry =
                    postcard::from_bytes(body).map_err(|e| format!("damaged list entry: {e}"))?;
                return stored.into_entry(*card).map(Some);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(card: [u8; 32], i: usize) -> Entry {
        Entry {
            card: CardHash(card),
            holder: format!("h{i}"),
            name: format!("Holder {i}"),
            role: if i % 3 == 0 {
                Role::Visitor
            } else {
                Role::Staff
            },
            valid_from: Timestamp::new(1_700_000_000 + i as i64, 123).unwrap(),
            valid_until: Timestamp::new(1_800_000_000, 0).unwrap(),
            doors: (i % 2 == 0).then(|| vec!["door-1".to_string()]),
            schedule: if i % 4 == 0 {
                serde_json::from_str(r#"[{"days":["mon","sun"],"from":"22:00","until":"24:00"}]"#)
                    .unwrap()
            } else {
                vec![]
            },
            request_ref: format!("REQ-{i}"),
            approver: "kabid".into(),
        }
    }

    proptest! {
        /// Every entry packed into a chunk is found, unchanged; any other hash is not.
        #[test]
        fn round_trip(cards in proptest::collection::btree_set(any::<[u8; 32]>(), 1..=ENTRIES_PER_CHUNK), probe in any::<[u8; 32]>()) {
            let entries: Vec<Entry> = cards.iter().enumerate().map(|(i, c)| entry(*c, i)).collect();
            let refs: Vec<&Entry> = entries.iter().collect();
            let chunk = encode(&refs);
            for e in &entries {
                let found = find(&chunk, &e.card).unwrap();
                prop_assert_eq!(found.as_ref(), Some(e));
            }
            if !cards.contains(&probe) {
                prop_assert_eq!(find(&chunk, &CardHash(probe)).unwrap(), None);
            }
        }

        /// Damaged bytes give an error or a miss, never a panic.
        #[test]
        fn damaged_chunk_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), probe in any::<[u8; 32]>()) {
            let _ = find(&bytes, &CardHash(probe));
        }
    }
}
