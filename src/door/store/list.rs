//! The active list and list apply: a verified list is written to the list file and its copy,
//! built into its own sled tree, committed with the rollback floors (the door's and each signing
//! key's) and swapped in as one pointer; the replaced tree is dropped once unused.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;

use super::{cache_for_list, chunk, io_err, read_u64, Store, StoreError, LIST_FILE};
use crate::core::card::CardHash;
use crate::core::event::{EventDraft, EventKind};
use crate::core::list::{verify, Accepted, Entry, ListMeta, Rejection, TrustPolicy, VerifiedList};
use crate::util::files;

pub(super) const META_ACTIVE_TREE: &[u8] = b"active_tree";
pub(super) const META_ACTIVE_DIGEST: &[u8] = b"active_digest";
pub(super) const META_ACTIVE_COUNT: &[u8] = b"active_count";
/// The active list's metadata (JSON [`StoredMeta`]), so a restart need not parse the payload.
pub(super) const META_ACTIVE_META: &[u8] = b"active_meta";
/// The door's overall rollback floor: the highest version it accepted, raised at each commit and
/// lowered only by a signed `reset_list_floor` ([`Store::reset_list_floor`]). Removing a key
/// from the config does not lower it.
pub(super) const META_HIGHEST_VERSION: &[u8] = b"highest_version";
/// Per-key rollback floors: this prefix, then the key's 32 public key bytes; the value is the
/// highest list version that key signed and this door accepted (u64, big-endian).
const META_KEY_FLOOR_PREFIX: &[u8] = b"key_floor/";
/// Set once the per-key floors exist. A store without it has only `highest_version`, which
/// becomes the floor of every key trusted at that start (see [`trusted_floor`]).
const META_KEY_FLOORS: &[u8] = b"key_floors";
/// Tree name prefix of a list cache; the `c1` names the chunk layout ([`chunk`]), so a store
/// written with another layout is rebuilt rather than misread.
const LIST_TREE_PREFIX: &str = "list.c1.v";

/// The list the door decides on: its metadata and its sled tree.
pub struct ActiveList {
    /// Facts about the list.
    pub meta: ListMeta,
    pub(super) tree: sled::Tree,
}

/// What a tap found in the active list, owned: the card's entry, no entry (or no list), or a
/// store that could not be read (the tap then fails closed, `store_error`). The door task and the
/// benchmarks look cards up through this one step.
#[derive(Debug, Clone, PartialEq)]
pub enum CardLookup {
    /// The card's entry (boxed: an entry is large, the other outcomes are not).
    Found(Box<Entry>),
    /// Not in the list, or no list.
    NotFound,
    /// The store could not be read.
    Failed,
}

impl CardLookup {
    /// Looks `card` up in `active` (none: no list), logging a store failure.
    pub fn of(active: Option<&ActiveList>, card: &CardHash) -> CardLookup {
        match active.map(|list| list.lookup(card)) {
            None | Some(Ok(None)) => CardLookup::NotFound,
            Some(Ok(Some(entry))) => CardLookup::Found(Box::new(entry)),
            Some(Err(e)) => {
                tracing::error!("list lookup failed: {e}; denying");
                CardLookup::Failed
            }
        }
    }

    /// The form the core's procedure takes.
    pub fn as_lookup(&self) -> crate::core::procedure::Lookup<'_> {
        use crate::core::procedure::Lookup;
        match self {
            CardLookup::Found(entry) => Lookup::Found(entry),
            CardLookup::NotFound => Lookup::NotFound,
            CardLookup::Failed => Lookup::Failed,
        }
    }

    /// The entry, when found.
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            CardLookup::Found(entry) => Some(entry),
            _ => None,
        }
    }
}

impl ActiveList {
    /// The entry for a card, if the list has one.
    pub fn lookup(&self, card: &CardHash) -> Result<Option<Entry>, StoreError> {
        // The chunk that could hold the card is the last one starting at or before it.
        match self.tree.range(..=card.0).next_back() {
            None => Ok(None),
            Some(item) => {
                let (_, chunk_bytes) = item?;
                chunk::find(&chunk_bytes, card).map_err(StoreError::Corrupt)
            }
        }
    }
}

impl Store {
    /// The list taps are decided on now.
    pub fn active(&self) -> Option<Arc<ActiveList>> {
        self.active.load_full()
    }

    /// What a new list must be above.
    pub fn accepted(&self) -> Accepted {
        let highest = self.highest_version.load(Ordering::SeqCst);
        let digest = self
            .active
            .load()
            .as_ref()
            .filter(|a| a.meta.version == highest)
            .map(|a| a.meta.payload_digest);
        Accepted {
            version: highest,
            payload_digest: digest,
        }
    }

    /// The effective rollback floor: a new list must be above it. The door's overall floor (the
    /// highest version it accepted), the floor of any key the config trusts now
    /// ([`Store::key_floor`]), or the last good list file's version if that is higher and the
    /// file verifies; then raised by each list applied. Survives restarts; removing a key from
    /// the config does not lower it: only a signed `reset_list_floor` does
    /// ([`Store::reset_list_floor`]).
    pub fn highest_version(&self) -> u64 {
        self.highest_version.load(Ordering::SeqCst)
    }

    /// The highest list version `key` signed that this door accepted (0 if none), whatever id
    /// the key had. Kept for keys no longer trusted too, in case they come back.
    pub fn key_floor(&self, key: &VerifyingKey) -> Result<u64, StoreError> {
        Ok(read_u64(&self.meta, &key_floor_record(&key.to_bytes()))?.unwrap_or(0))
    }

    /// Verifies and applies a signed list. On any rejection nothing changes.
    ///
    /// Order: verify; write the list file atomically (it is the source of truth from here on),
    /// then its copy ([`Store::write_list_files`]: a list file that cannot be written is
    /// [`StoreError::ListNotStored`] and changes nothing); build the new tree; commit the
    /// metadata; swap the active pointer; drop the old tree. Any other error leaves the list
    /// file ahead of the active list: the caller must stop rather than carry on.
    pub fn verify_and_apply(
        &self,
        bytes: &[u8],
        policy: &TrustPolicy,
        now: Timestamp,
    ) -> Result<Result<ListMeta, Rejection>, StoreError> {
        // Two lists arriving together are checked and applied one after the other.
        let _one_at_a_time = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let verified = match verify(bytes, policy, Some(self.accepted()), Some(now)) {
            Ok(v) => v,
            Err(rejection) => return Ok(Err(rejection)),
        };
        self.write_list_files(bytes, verified.meta.version)?;
        let tree_name = tree_name(verified.meta.version);
        let tree = self.build_tree(&verified)?;
        self.commit_active(&verified.meta, &tree_name, policy)?;
        let meta = verified.meta.clone();
        let old = self.active.swap(Some(Arc::new(ActiveList {
            meta: verified.meta,
            tree,
        })));
        if let Some(old) = old {
            self.retire(old);
        }
        let wanted = cache_for_list(bytes.len() as u64, self.cache_size, self.cache_size_max);
        if wanted > self.cache_size {
            // sled sizes its cache only when it opens: lookups now miss it more often (tens of
            // µs instead of a few) until pintud restarts.
            tracing::warn!(
                cache_mib = self.cache_size >> 20,
                wanted_mib = wanted >> 20,
                "the new list outgrew the sled cache; restart pintud to resize it"
            );
        }
        Ok(Ok(meta))
    }

    /// Writes a verified list to the list file, then to its copy, each atomically (temp file,
    /// fsync, rename, directory fsync).
    ///
    /// - The list file not written (disk full, I/O error): [`StoreError::ListNotStored`];
    ///   nothing changed, the old list stays in force.
    /// - Replaced but its directory fsync failed: [`StoreError::Io`]; the file holds the new
    ///   list and the cache the old one, so the caller must not carry on (pintud stops, and
    ///   the restart loads whichever list the file holds).
    /// - The copy not written: the apply goes on (the list file is the source of truth); a
    ///   `list.file_damaged` notice (`copy_write_failed`) says so, and the next start rewrites
    ///   the copy.
    fn write_list_files(&self, bytes: &[u8], version: u64) -> Result<(), StoreError> {
        let path = &self.list_path;
        files::write_atomic_reporting(path, bytes, 0o640).map_err(|e| match e.replaced {
            false => StoreError::ListNotStored {
                path: path.clone(),
                source: e.source,
            },
            true => io_err(path)(e.source),
        })?;
        if let Err(e) = files::write_atomic(&self.copy_path, bytes, 0o640) {
            let detail = format!(
                "{} not written: {e}; list version {version} is in {LIST_FILE} alone until the next start rewrites the copy",
                self.copy_path.display()
            );
            tracing::error!("{detail}");
            self.notices.lock().unwrap_or_else(|e| e.into_inner()).push(
                EventDraft::new(EventKind::ListFileDamaged)
                    .reason("copy_write_failed")
                    .list_version(Some(version))
                    .detail(detail),
            );
        }
        Ok(())
    }

    /// Events an apply raised besides its outcome (today: a copy of the list file that could
    /// not be written), for the caller to append after `list.applied`.
    pub fn take_notices(&self) -> Vec<EventDraft> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn build_tree(&self, verified: &VerifiedList) -> Result<sled::Tree, StoreError> {
        let name = tree_name(verified.meta.version);
        // A tree of this name can only be a leftover of an interrupted apply: start clean.
        self.db.drop_tree(&name)?;
        let tree = self.db.open_tree(&name)?;
        let mut sorted: Vec<&Entry> = verified.payload.entries.iter().collect();
        sorted.sort_unstable_by_key(|e| e.card);
        // Sorted keys go in in order, which is also sled's cheapest insert pattern.
        for group in sorted.chunks(chunk::ENTRIES_PER_CHUNK * 256) {
            let mut batch = sled::Batch::default();
            for entries in group.chunks(chunk::ENTRIES_PER_CHUNK) {
                batch.insert(&entries[0].card.0, chunk::encode(entries));
            }
            tree.apply_batch(batch)?;
        }
        Ok(tree)
    }

    /// Makes `meta` the active list on disk and raises the rollback floors: the door's and, for
    /// each key that signed it (resolved through `policy`, by public key bytes), that key's.
    pub(super) fn commit_active(
        &self,
        meta: &ListMeta,
        tree_name: &str,
        policy: &TrustPolicy,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(META_ACTIVE_TREE, tree_name.as_bytes());
        batch.insert(META_ACTIVE_DIGEST, &meta.payload_digest[..]);
        batch.insert(
            META_ACTIVE_COUNT,
            &(meta.entry_count as u64).to_be_bytes()[..],
        );
        // The metadata for the start-up fast path; without a zone name, no record (full path).
        match StoredMeta::of(meta).and_then(|m| serde_json::to_vec(&m).ok()) {
            Some(record) => batch.insert(META_ACTIVE_META, record),
            None => batch.remove(META_ACTIVE_META),
        }
        // The rollback floor rises only once the new list is committed, so a failed apply can be
        // retried with the same list.
        let highest = self.highest_version().max(meta.version);
        batch.insert(META_HIGHEST_VERSION, &highest.to_be_bytes()[..]);
        // Every key whose signature counted towards the threshold vouched for this version.
        // Floors only rise (applies run one at a time, so nothing moves between read and write).
        for key in signer_keys(policy, &meta.signed_by) {
            let record = key_floor_record(&key);
            if read_u64(&self.meta, &record)?.unwrap_or(0) < meta.version {
                batch.insert(record, &meta.version.to_be_bytes()[..]);
            }
        }
        self.meta.apply_batch(batch)?;
        self.db.flush()?;
        self.highest_version.fetch_max(highest, Ordering::SeqCst);
        Ok(())
    }

    /// Drops a replaced list's tree once no lookup still holds it.
    fn retire(&self, old: Arc<ActiveList>) {
        let name = tree_name(old.meta.version);
        for _ in 0..200 {
            if Arc::strong_count(&old) == 1 {
                drop(old);
                if let Err(e) = self.db.drop_tree(&name) {
                    tracing::warn!(
                        tree = name,
                        "could not drop the replaced list: {e}; it is dropped at next start"
                    );
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::debug!(
            tree = name,
            "replaced list still in use; it is dropped at next start"
        );
    }

    pub(super) fn drop_stale_trees(&self) -> Result<(), StoreError> {
        let active = self
            .active
            .load()
            .as_ref()
            .map(|a| tree_name(a.meta.version));
        for name in self.db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            // Any list tree but the active one, whatever layout wrote it.
            if name.starts_with("list.") && Some(&name) != active.as_ref() {
                self.db.drop_tree(name.as_bytes())?;
            }
        }
        Ok(())
    }

    /// A signed `reset_list_floor`: the rollback floor becomes `version` (down or up), and no
    /// key's floor stays above it. Durable on return. Returns the floor before.
    pub fn reset_list_floor(&self, version: u64) -> Result<u64, StoreError> {
        let _one_at_a_time = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let before = self.highest_version();
        let mut batch = sled::Batch::default();
        batch.insert(META_HIGHEST_VERSION, &version.to_be_bytes()[..]);
        for item in self.meta.scan_prefix(META_KEY_FLOOR_PREFIX) {
            let (k, v) = item?;
            let floor = v
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(u64::MAX);
            if floor > version {
                batch.insert(k, &version.to_be_bytes()[..]);
            }
        }
        self.meta.apply_batch(batch)?;
        self.db.flush()?;
        self.highest_version.store(version, Ordering::SeqCst);
        Ok(before)
    }

    /// Path of the last good list file.
    pub fn list_path(&self) -> &Path {
        &self.list_path
    }
}

/// What the store keeps of the active list's metadata besides its digest and signers.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StoredMeta {
    pub(super) site: String,
    pub(super) doors: Vec<String>,
    pub(super) version: u64,
    pub(super) issued_at: Timestamp,
    pub(super) expires_at: Timestamp,
    pub(super) time_zone: String,
    pub(super) entry_count: usize,
    pub(super) visits: Vec<crate::core::visit::Visit>,
}

impl StoredMeta {
    pub(super) fn of(meta: &ListMeta) -> Option<StoredMeta> {
        Some(StoredMeta {
            site: meta.site.clone(),
            doors: meta.doors.clone(),
            version: meta.version,
            issued_at: meta.issued_at,
            expires_at: meta.expires_at,
            time_zone: meta.time_zone.iana_name()?.to_string(),
            entry_count: meta.entry_count,
            visits: meta.visits.clone(),
        })
    }
}

/// The `meta` key of `key`'s rollback floor.
fn key_floor_record(key: &[u8; 32]) -> Vec<u8> {
    [META_KEY_FLOOR_PREFIX, &key[..]].concat()
}

/// The public keys behind the key ids that signed a list (as [`ListMeta::signed_by`] names
/// them, one id per distinct key), resolved the way `verify` resolved them.
fn signer_keys(policy: &TrustPolicy, signed_by: &[String]) -> Vec<[u8; 32]> {
    signed_by
        .iter()
        .filter_map(|id| policy.keys.iter().find(|k| k.id == *id))
        .map(|k| k.key.to_bytes())
        .collect()
}

/// The door's rollback floor at start: its overall floor (`highest_version`, the highest version
/// it accepted, lowered only by a signed `reset_list_floor`) or the highest floor of a key
/// trusted now, whichever is higher. Removing a key from the config lowers nothing: an attacker
/// who can edit a config (or a rotation done in a hurry) must not reopen old lists.
///
/// A store written before per-key floors has only `highest_version`. The first start on it
/// makes that the floor of every key trusted now, durably, once.
pub(super) fn trusted_floor(
    db: &sled::Db,
    meta: &sled::Tree,
    policy: &TrustPolicy,
) -> Result<u64, StoreError> {
    // Without keys there is nothing to attach the old floor to: keep it and migrate later.
    if meta.get(META_KEY_FLOORS)?.is_none() && !policy.keys.is_empty() {
        let legacy = read_u64(meta, META_HIGHEST_VERSION)?.unwrap_or(0);
        let mut batch = sled::Batch::default();
        if legacy > 0 {
            for k in &policy.keys {
                let record = key_floor_record(&k.key.to_bytes());
                if read_u64(meta, &record)?.unwrap_or(0) < legacy {
                    batch.insert(record, &legacy.to_be_bytes()[..]);
                }
            }
            tracing::info!(
                floor = legacy,
                keys = policy.keys.len(),
                "rollback floor migrated to per-key floors: every trusted key starts at it"
            );
        }
        batch.insert(META_KEY_FLOORS, &[1u8][..]);
        meta.apply_batch(batch)?;
        db.flush()?;
    }
    let mut floor = read_u64(meta, META_HIGHEST_VERSION)?.unwrap_or(0);
    for k in &policy.keys {
        floor = floor.max(read_u64(meta, &key_floor_record(&k.key.to_bytes()))?.unwrap_or(0));
    }
    Ok(floor)
}

pub(super) fn tree_name(version: u64) -> String {
    format!("{LIST_TREE_PREFIX}{version}")
}

#[cfg(test)]
mod tests {
    use super::super::testing::{holder, Door};
    use super::*;

    fn tree_names(store: &Store) -> Vec<String> {
        store
            .db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .filter(|n| n.starts_with("list."))
            .collect()
    }

    #[test]
    fn apply_raises_the_door_floor_and_the_signers_floor_only() {
        let door = Door::new();
        let (store, _) = door.open();
        assert_eq!(store.highest_version(), 0);
        door.apply(&store, &door.list_signed_by(3, 2, 1));
        assert_eq!(store.highest_version(), 3);
        let (k1, k2) = (
            door.keys[0].1.verifying_key(),
            door.keys[1].1.verifying_key(),
        );
        assert_eq!(store.key_floor(&k2).expect("floor"), 3, "k2 signed v3");
        assert_eq!(store.key_floor(&k1).expect("floor"), 0, "k1 signed nothing");
        door.apply(&store, &door.list_signed_by(5, 2, 0));
        assert_eq!(store.key_floor(&k1).expect("floor"), 5);
        assert_eq!(
            store.key_floor(&k2).expect("floor"),
            3,
            "floors move per signer"
        );
    }

    #[test]
    fn floors_and_the_active_list_survive_a_restart() {
        let door = Door::new();
        {
            let (store, _) = door.open();
            door.apply(&store, &door.list(4, 3));
        }
        let (store, _) = door.open();
        assert_eq!(store.highest_version(), 4);
        let k1 = door.keys[0].1.verifying_key();
        assert_eq!(store.key_floor(&k1).expect("floor"), 4);
        assert_eq!(holder(&store, &door, 2).as_deref(), Some("h2-v4"));
        let accepted = store.accepted();
        assert_eq!(accepted.version, 4);
        assert!(
            accepted.payload_digest.is_some(),
            "the active list is at the floor"
        );
    }

    #[test]
    fn a_version_at_or_below_the_floor_is_refused_and_changes_nothing() {
        let door = Door::new();
        let (store, _) = door.open();
        door.apply(&store, &door.list(2, 2));
        let file_before = std::fs::read(store.list_path()).expect("list file");
        for version in [1, 2] {
            let outcome = store
                .verify_and_apply(&door.list(version, 5), &door.policy(), Timestamp::now())
                .expect("store");
            assert!(outcome.is_err(), "v{version} must be refused");
        }
        assert_eq!(store.highest_version(), 2);
        assert_eq!(store.active().expect("active").meta.entry_count, 2);
        assert_eq!(
            std::fs::read(store.list_path()).expect("list file"),
            file_before
        );
    }

    #[test]
    fn reset_list_floor_lowers_the_door_and_every_key_floor_above_it() {
        let door = Door::new();
        let (store, _) = door.open();
        door.apply(&store, &door.list_signed_by(6, 1, 1));
        door.apply(&store, &door.list_signed_by(9, 1, 0));
        assert_eq!(store.reset_list_floor(5).expect("reset"), 9);
        assert_eq!(store.highest_version(), 5);
        for (_, key) in &door.keys {
            assert_eq!(store.key_floor(&key.verifying_key()).expect("floor"), 5);
        }
        // The active list (v9) is now above the floor, so the floor carries no digest.
        assert_eq!(store.accepted().payload_digest, None);
        door.apply(&store, &door.list(7, 1));
        assert_eq!(store.highest_version(), 7);
        drop(store);
        let (store, _) = door.open();
        assert_eq!(store.highest_version(), 7, "the reset is durable");
    }

    #[test]
    fn a_store_with_only_the_door_floor_gives_it_to_every_trusted_key_once() {
        let door = Door::new();
        let (store, _) = door.open();
        door.apply(&store, &door.list(8, 1));
        // As written by a version without per-key floors.
        store.meta.remove(META_KEY_FLOORS).expect("remove");
        for item in store.meta.scan_prefix(META_KEY_FLOOR_PREFIX) {
            let (k, _) = item.expect("record");
            store.meta.remove(k).expect("remove");
        }
        let both = door.policy_of(2);
        assert_eq!(
            trusted_floor(&store.db, &store.meta, &both).expect("floor"),
            8
        );
        let k2 = door.keys[1].1.verifying_key();
        assert_eq!(store.key_floor(&k2).expect("floor"), 8);
        assert!(store.meta.get(META_KEY_FLOORS).expect("get").is_some());
        // Migrated once: the door floor lowered afterwards does not re-seed the keys.
        store
            .meta
            .insert(META_HIGHEST_VERSION, &1u64.to_be_bytes()[..])
            .expect("insert");
        assert_eq!(
            trusted_floor(&store.db, &store.meta, &both).expect("floor"),
            8
        );
        assert_eq!(
            trusted_floor(&store.db, &store.meta, &door.policy_of(0)).expect("floor"),
            1,
            "without trusted keys only the door floor counts"
        );
    }

    #[test]
    fn the_replaced_tree_is_dropped_and_stale_trees_go_at_open() {
        let door = Door::new();
        let (store, _) = door.open();
        door.apply(&store, &door.list(1, 2));
        door.apply(&store, &door.list(2, 2));
        assert_eq!(tree_names(&store), vec![tree_name(2)]);
        // A tree left by an apply cut short, and one of an older chunk layout.
        store.db.open_tree(tree_name(3)).expect("tree");
        store.db.open_tree("list.v1").expect("tree");
        drop(store);
        let (store, _) = door.open();
        assert_eq!(tree_names(&store), vec![tree_name(2)]);
        assert_eq!(holder(&store, &door, 1).as_deref(), Some("h1-v2"));
    }

    #[test]
    fn build_tree_chunks_the_sorted_entries() {
        let door = Door::new();
        let (store, _) = door.open();
        let n = chunk::ENTRIES_PER_CHUNK * 2 + 1;
        let meta = door.apply(&store, &door.list(1, n));
        assert_eq!(meta.entry_count, n);
        let active = store.active().expect("active");
        assert_eq!(active.tree.len(), 3);
        for i in 0..n {
            assert_eq!(holder(&store, &door, i), Some(format!("h{i}-v1")));
        }
        assert_eq!(holder(&store, &door, n), None);
    }

    #[test]
    fn stored_meta_round_trips_and_needs_a_zone_name() {
        let door = Door::new();
        let (store, _) = door.open();
        let meta = door.apply(&store, &door.list(3, 1));
        let stored = StoredMeta::of(&meta).expect("named zone");
        assert_eq!(
            (
                stored.version,
                stored.entry_count,
                stored.time_zone.as_str()
            ),
            (3, 1, "Asia/Jakarta")
        );
        let record = store
            .meta
            .get(META_ACTIVE_META)
            .expect("get")
            .expect("record");
        let back: StoredMeta = serde_json::from_slice(&record).expect("json");
        assert_eq!(
            (back.site, back.doors),
            (meta.site.clone(), meta.doors.clone())
        );
        let mut unnamed = meta;
        unnamed.time_zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(7));
        assert!(StoredMeta::of(&unnamed).is_none());
    }
}
