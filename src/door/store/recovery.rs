//! Loading the last good list at start ([`Store::open`]): the sled cache is reused when it holds
//! exactly the list file's payload and rebuilt otherwise; a damaged list file gives way to its
//! copy, a damaged copy is rewritten, and every case is logged and reported as an event.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::list::{
    tree_name, ActiveList, StoredMeta, META_ACTIVE_COUNT, META_ACTIVE_DIGEST, META_ACTIVE_META,
    META_ACTIVE_TREE,
};
use super::{chunk, read_u64, OpenReport, Store, StoreError, LIST_FILE};
use crate::core::event::{EventDraft, EventKind};
use crate::core::list::{verify, ListMeta, Rejection, TrustPolicy};
use crate::util::files;

impl Store {
    /// Loads the last good list: [`LIST_FILE`], or its copy ([`LIST_COPY_FILE`]) when the list
    /// file is damaged, and keeps the two files equal. Every damage found is logged and reported
    /// as a `list.file_damaged` event.
    ///
    /// The copy is tried only when the list file is missing, unreadable or damaged (it does not
    /// parse, or a signature does not verify) and the copy holds other bytes. A well-formed list
    /// refused by the config (its key removed, another site or door) or older than the rollback
    /// floor is not a damaged file: the copy is not tried (it would be the same list, or an
    /// older one), and the door starts without a list as before.
    pub(super) fn load_list_file(
        &self,
        policy: &TrustPolicy,
        report: &mut OpenReport,
    ) -> Result<(), StoreError> {
        let fault = match read_list(&self.list_path) {
            Err(fault) => fault,
            Ok(bytes) => match self.load_list_bytes(&bytes, &self.list_path, policy, report)? {
                Loaded::Active => {
                    self.check_copy(&bytes, report);
                    return Ok(());
                }
                Loaded::BelowFloor => return Ok(()),
                Loaded::Refused(why) => {
                    // Same bytes in the copy: not damage but the config (a key replaced under
                    // the same id, a lower size cap); the copy would be refused the same way.
                    let same = matches!(files::file_equals(&self.copy_path, &bytes), Ok(true));
                    if !is_damage(&why) || same {
                        tracing::error!(file = %self.list_path.display(), "last good list no longer verifies: {why}; starting without a list");
                        report.events.push(
                            EventDraft::new(EventKind::ListRejected)
                                .reason(why.code())
                                .detail(format!(
                                    "stored list {} no longer verifies: {why}",
                                    self.list_path.display()
                                )),
                        );
                        return Ok(());
                    }
                    ListFault::Rejected(why)
                }
            },
        };
        self.fall_back_to_copy(fault, policy, report)
    }

    /// The list file is missing or damaged (`fault`): use the copy if it verifies and is not
    /// below the rollback floor, and restore the list file from it. Otherwise the door starts
    /// without a list.
    fn fall_back_to_copy(
        &self,
        fault: ListFault,
        policy: &TrustPolicy,
        report: &mut OpenReport,
    ) -> Result<(), StoreError> {
        let copy_fault = match read_list(&self.copy_path) {
            Err(copy_fault) => copy_fault,
            Ok(bytes) => match self.load_list_bytes(&bytes, &self.copy_path, policy, report)? {
                Loaded::Active => {
                    self.restore_from_copy(&fault, &bytes, report);
                    return Ok(());
                }
                Loaded::BelowFloor => ListFault::BelowFloor,
                Loaded::Refused(why) => ListFault::Rejected(why),
            },
        };
        // What the store remembers of the list it last had (the cache itself is not signed,
        // so it is never used without a list file).
        let held = match self.meta.get(META_ACTIVE_DIGEST)? {
            None => None,
            Some(_) => Some(
                self.meta
                    .get(META_ACTIVE_META)?
                    .and_then(|r| serde_json::from_slice::<StoredMeta>(&r).ok())
                    .map(|m| m.version),
            ),
        };
        // A store rebuilt at this start cannot say whether the door had a list.
        let store_lost = report
            .events
            .iter()
            .any(|e| e.kind == EventKind::StoreRebuilt);
        if matches!(
            (&fault, &copy_fault, held, store_lost),
            (ListFault::Missing, ListFault::Missing, None, false)
        ) {
            // Neither file and no trace of a list in the store: a door that never had one.
            return Ok(());
        }
        let held_text = match (held, store_lost) {
            (Some(Some(v)), _) => format!(" (the store last held list version {v})"),
            (Some(None), _) => " (the store held a list)".into(),
            (None, true) => " (the store was lost too: the door may have had a list)".into(),
            (None, false) => String::new(),
        };
        let detail = format!(
                "{} {fault}; {} {copy_fault}{held_text}; starting without a list: taps are denied (no_list) until a list is delivered",
                self.list_path.display(),
                self.copy_path.display(),
            );
        tracing::error!("no good copy of the last good list: {detail}");
        report.events.push(
            EventDraft::new(EventKind::ListFileDamaged)
                .reason("no_good_copy")
                .list_version(held.flatten())
                .detail(detail),
        );
        Ok(())
    }

    /// The copy is in use after the list file was found damaged (`fault`): writes the list file
    /// again from it and reports.
    fn restore_from_copy(&self, fault: &ListFault, bytes: &[u8], report: &mut OpenReport) {
        let version = self.active().map(|a| a.meta.version);
        let restored = match files::write_atomic(&self.list_path, bytes, 0o640) {
            Ok(()) => format!("{LIST_FILE} restored from it"),
            Err(e) => format!(
                "{LIST_FILE} could not be restored from it ({e}); the copy is used again at the next start"
            ),
        };
        let detail = format!(
            "{} {fault}; using the last good list from {} (version {}); {restored}",
            self.list_path.display(),
            self.copy_path.display(),
            version.unwrap_or_default(),
        );
        tracing::error!("list file damaged: {detail}");
        report.events.push(
            EventDraft::new(EventKind::ListFileDamaged)
                .reason("restored_from_copy")
                .list_version(version)
                .detail(detail),
        );
    }

    /// Keeps the copy equal to the list file in use (`bytes`), comparing block by block. A
    /// missing copy (a door upgraded from a version without it) is written and logged; a
    /// damaged or different one (an apply cut short between the two files) is rewritten and
    /// reported. A copy that cannot be written is reported and does not stop the door.
    fn check_copy(&self, bytes: &[u8], report: &mut OpenReport) {
        let copy = self.copy_path.display();
        let fault = match files::file_equals(&self.copy_path, bytes) {
            Ok(true) => return,
            Ok(false) => Some(match std::fs::metadata(&self.copy_path) {
                Ok(m) if m.len() != bytes.len() as u64 => format!(
                    "differs from {LIST_FILE} ({} bytes, {LIST_FILE} has {})",
                    m.len(),
                    bytes.len()
                ),
                _ => format!("differs from {LIST_FILE}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!("cannot be read: {e}")),
        };
        let version = self.active().map(|a| a.meta.version);
        let draft = match (fault, files::write_atomic(&self.copy_path, bytes, 0o640)) {
            (None, Ok(())) => {
                tracing::info!(file = %copy, "wrote the second copy of the last good list");
                return;
            }
            (Some(fault), Ok(())) => {
                let detail = format!("{copy} {fault}; rewritten from {LIST_FILE}");
                tracing::warn!("copy of the last good list damaged: {detail}");
                EventDraft::new(EventKind::ListFileDamaged)
                    .reason("copy_rewritten")
                    .detail(detail)
            }
            (fault, Err(e)) => {
                let detail = format!(
                    "{copy} {}; writing it from {LIST_FILE} failed: {e}; the door runs on {LIST_FILE} alone",
                    fault.as_deref().unwrap_or("is missing")
                );
                tracing::error!("copy of the last good list not written: {detail}");
                EventDraft::new(EventKind::ListFileDamaged)
                    .reason("copy_write_failed")
                    .detail(detail)
            }
        };
        report.events.push(draft.list_version(version));
    }

    /// Loads a stored list (the bytes of `file`: the list file or its copy) into the active slot,
    /// reusing the sled cache if it holds the same payload. Reports a cache rebuild and a
    /// rollback refusal; a list that does not verify is returned for the caller to judge.
    fn load_list_bytes(
        &self,
        bytes: &[u8],
        file: &Path,
        policy: &TrustPolicy,
        report: &mut OpenReport,
    ) -> Result<Loaded, StoreError> {
        // Fast path: the signatures still verify and the cache holds exactly this payload.
        if let Some(meta) = self.cached_meta(bytes, policy)? {
            let version = meta.version;
            if self.refuse_rollback(version, file, report) {
                return Ok(Loaded::BelowFloor);
            }
            self.highest_version.fetch_max(version, Ordering::SeqCst);
            let tree = self.db.open_tree(tree_name(version))?;
            tracing::debug!(version, file = %file.display(), "list loaded from the cache (signatures verified)");
            self.active.store(Some(Arc::new(ActiveList { meta, tree })));
            return Ok(Loaded::Active);
        }
        // Expiry is not checked here: an expired list still loads, and taps are denied with
        // `list_expired` (the door says why, instead of claiming it has no list).
        let verified = match verify(bytes, policy, None, None) {
            Ok(v) => v,
            Err(why) => return Ok(Loaded::Refused(why)),
        };
        let version = verified.meta.version;
        if self.refuse_rollback(version, file, report) {
            return Ok(Loaded::BelowFloor);
        }
        self.highest_version.fetch_max(version, Ordering::SeqCst);
        let tree_name = tree_name(version);
        let cached_digest = self.meta.get(META_ACTIVE_DIGEST)?;
        let cached_tree = self.meta.get(META_ACTIVE_TREE)?;
        let cached_count = read_u64(&self.meta, META_ACTIVE_COUNT)?;
        let matches = cached_digest.as_deref() == Some(&verified.meta.payload_digest[..])
            && cached_tree.as_deref() == Some(tree_name.as_bytes())
            && cached_count == Some(verified.meta.entry_count as u64)
            && self
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == tree_name.as_bytes());
        let tree = self.db.open_tree(&tree_name)?;
        if !matches || tree.len() != verified.meta.entry_count.div_ceil(chunk::ENTRIES_PER_CHUNK) {
            tracing::warn!(
                version,
                entries = verified.meta.entry_count,
                "list cache missing or out of date; rebuilding it from {}",
                file.display()
            );
            report.events.push(
                EventDraft::new(EventKind::StoreRebuilt)
                    .reason("cache_rebuilt")
                    .list_version(Some(version))
                    .detail(format!("list cache rebuilt from {}", file.display())),
            );
            let tree = self.build_tree(&verified)?;
            self.commit_active(&verified.meta, &tree_name, policy)?;
            self.active.store(Some(Arc::new(ActiveList {
                meta: verified.meta,
                tree,
            })));
        } else {
            // A cache written before the metadata record existed: add it for the next start.
            if self.meta.get(META_ACTIVE_META)?.is_none() {
                if let Some(record) =
                    StoredMeta::of(&verified.meta).and_then(|m| serde_json::to_vec(&m).ok())
                {
                    self.meta.insert(META_ACTIVE_META, record)?;
                }
            }
            self.active.store(Some(Arc::new(ActiveList {
                meta: verified.meta,
                tree,
            })));
        }
        Ok(Loaded::Active)
    }

    /// The active list's metadata from the store, if the list file's signatures verify and the
    /// cache holds exactly its payload (same digest, tree and chunk count). Anything else, or a
    /// stored record that does not fit this door, means the full verification path.
    fn cached_meta(
        &self,
        bytes: &[u8],
        policy: &TrustPolicy,
    ) -> Result<Option<ListMeta>, StoreError> {
        let Ok((digest, signed_by)) = crate::core::list::verify_signatures_only(bytes, policy)
        else {
            return Ok(None);
        };
        if self.meta.get(META_ACTIVE_DIGEST)?.as_deref() != Some(&digest[..]) {
            return Ok(None);
        }
        let Some(record) = self.meta.get(META_ACTIVE_META)? else {
            return Ok(None);
        };
        let Ok(stored) = serde_json::from_slice::<StoredMeta>(&record) else {
            return Ok(None);
        };
        let name = tree_name(stored.version);
        let count_ok = read_u64(&self.meta, META_ACTIVE_COUNT)? == Some(stored.entry_count as u64);
        let tree_ok = self.meta.get(META_ACTIVE_TREE)?.as_deref() == Some(name.as_bytes())
            && self
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == name.as_bytes());
        if !count_ok || !tree_ok {
            return Ok(None);
        }
        // Not `len()`: that walks (and caches) the whole tree, megabytes at 100k entries. A tree
        // is complete before the metadata names it (`commit_active`), so a cheap look at its
        // ends is enough to catch a tree that is not there.
        let tree = self.db.open_tree(&name)?;
        if (stored.entry_count > 0) != tree.last()?.is_some() {
            return Ok(None);
        }
        // The door's config may have changed since the list was applied.
        let site_ok = policy.site.as_ref().is_none_or(|s| *s == stored.site);
        let door_ok = policy.door.as_ref().is_none_or(|d| {
            stored
                .doors
                .iter()
                .any(|x| x == d || x == crate::core::list::ALL_DOORS)
        });
        let Ok(time_zone) = jiff::tz::TimeZone::get(&stored.time_zone) else {
            return Ok(None);
        };
        if !site_ok || !door_ok {
            return Ok(None);
        }
        Ok(Some(ListMeta {
            site: stored.site,
            doors: stored.doors,
            version: stored.version,
            issued_at: stored.issued_at,
            expires_at: stored.expires_at,
            time_zone,
            entry_count: stored.entry_count,
            payload_digest: digest,
            signed_by,
            visits: stored.visits,
        }))
    }

    /// Refuses a stored list older than the rollback floor (an SD card edit, a stale backup):
    /// using it would re-open cards revoked since. The door starts without a list instead.
    fn refuse_rollback(&self, version: u64, file: &Path, report: &mut OpenReport) -> bool {
        let highest = self.highest_version.load(Ordering::SeqCst);
        if version >= highest {
            return false;
        }
        let why = Rejection::Rollback {
            version,
            current: highest,
        };
        tracing::error!(file = %file.display(), "stored list refused: {why}; starting without a list (deliver the current list again)");
        report.events.push(
            EventDraft::new(EventKind::ListRejected)
                .reason(why.code())
                .list_version(Some(version))
                .detail(format!("stored list {} refused: {why}", file.display())),
        );
        true
    }
}

/// What became of a stored list offered to [`Store::load_list_bytes`].
enum Loaded {
    /// It is the active list.
    Active,
    /// It verifies but is older than the rollback floor (already reported).
    BelowFloor,
    /// It does not verify under the current config.
    Refused(Rejection),
}

/// What is wrong with a stored list file; displayed after the file's path.
#[derive(Debug)]
enum ListFault {
    Missing,
    Unreadable(std::io::Error),
    Rejected(Rejection),
    BelowFloor,
}

impl std::fmt::Display for ListFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListFault::Missing => write!(f, "is missing"),
            ListFault::Unreadable(e) => write!(f, "cannot be read: {e}"),
            ListFault::Rejected(why) if is_damage(why) => {
                write!(f, "is damaged ({}): {why}", why.code())
            }
            ListFault::Rejected(why) => write!(f, "is refused ({}): {why}", why.code()),
            ListFault::BelowFloor => write!(f, "is older than the rollback floor"),
        }
    }
}

/// Reads a stored list file.
fn read_list(path: &Path) -> Result<Vec<u8>, ListFault> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ListFault::Missing,
        _ => ListFault::Unreadable(e),
    })
}

/// Whether a stored list's rejection says its bytes are damaged (so another copy may do
/// better), rather than that the config refuses a well-formed list (an unknown key, too few
/// keys, another site or door), which would refuse any copy of the same list too.
fn is_damage(why: &Rejection) -> bool {
    matches!(
        why,
        Rejection::Oversize { .. }
            | Rejection::Malformed(_)
            | Rejection::UnknownFormat(_)
            | Rejection::MissingSignature
            | Rejection::BadSignature(_)
    )
}

/// Removes temp files an atomic write left behind when pintud was killed or lost power (up to
/// the size of a list each, on a small SD card). Only pintud writes here, and it holds the
/// state directory's lock.
pub(super) fn remove_stale_temp_files(state_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(files::TEMP_PREFIX));
        if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %entry.path().display(), "removed a temp file left by an interrupted write")
                }
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), "cannot remove a temp file left by an interrupted write: {e}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{holder, reasons, Door};
    use super::super::LIST_COPY_FILE;
    use super::*;

    /// A door whose store holds list v2 (3 cards) in its files and its cache, closed.
    fn door_with_v2() -> (Door, Vec<u8>, ListMeta) {
        let door = Door::new();
        let bytes = door.list(2, 3);
        let (store, _) = door.open();
        let meta = door.apply(&store, &bytes);
        drop(store);
        (door, bytes, meta)
    }

    fn list_file(door: &Door) -> std::path::PathBuf {
        door.state_dir().join(LIST_FILE)
    }

    fn copy_file(door: &Door) -> std::path::PathBuf {
        door.state_dir().join(LIST_COPY_FILE)
    }

    #[test]
    fn a_restart_reuses_the_cache_and_gives_the_same_metadata() {
        let (door, _, applied) = door_with_v2();
        let (store, report) = door.open();
        assert!(report.events.is_empty(), "{:?}", report.events);
        let active = store.active().expect("active");
        assert_eq!(active.meta.version, applied.version);
        assert_eq!(active.meta.payload_digest, applied.payload_digest);
        assert_eq!(active.meta.signed_by, applied.signed_by);
        assert_eq!(active.meta.expires_at, applied.expires_at);
        assert_eq!(holder(&store, &door, 0).as_deref(), Some("h0-v2"));
    }

    #[test]
    fn a_cache_without_its_metadata_record_is_used_and_the_record_written_back() {
        let (door, _, _) = door_with_v2();
        {
            let (store, _) = door.open();
            store.meta.remove(META_ACTIVE_META).expect("remove");
            store.flush_blocking().expect("flush");
        }
        let (store, report) = door.open();
        assert!(
            reasons(&report, EventKind::StoreRebuilt).is_empty(),
            "no rebuild"
        );
        assert!(store.meta.get(META_ACTIVE_META).expect("get").is_some());
        assert_eq!(holder(&store, &door, 2).as_deref(), Some("h2-v2"));
    }

    #[test]
    fn a_cache_missing_a_chunk_is_rebuilt_from_the_list_file() {
        let door = Door::new();
        let n = chunk::ENTRIES_PER_CHUNK + 1;
        {
            let (store, _) = door.open();
            door.apply(&store, &door.list(1, n));
            let active = store.active().expect("active");
            let (first, _) = active.tree.first().expect("first").expect("chunk");
            active.tree.remove(first).expect("remove");
            // The metadata record goes too, so the start takes the full check.
            store.meta.remove(META_ACTIVE_META).expect("remove");
            store.flush_blocking().expect("flush");
        }
        let (store, report) = door.open();
        assert_eq!(reasons(&report, EventKind::StoreRebuilt), ["cache_rebuilt"]);
        for i in [0, n - 1] {
            assert_eq!(holder(&store, &door, i), Some(format!("h{i}-v1")));
        }
    }

    #[test]
    fn a_damaged_list_file_is_restored_from_the_copy_and_the_cache_kept() {
        let (door, bytes, _) = door_with_v2();
        std::fs::write(list_file(&door), &bytes[..bytes.len() / 2]).expect("truncate");
        let (store, report) = door.open();
        assert_eq!(
            reasons(&report, EventKind::ListFileDamaged),
            ["restored_from_copy"]
        );
        assert!(
            reasons(&report, EventKind::StoreRebuilt).is_empty(),
            "same payload digest: the cache stays"
        );
        assert_eq!(std::fs::read(list_file(&door)).expect("list file"), bytes);
        assert_eq!(store.active().expect("active").meta.version, 2);
    }

    #[test]
    fn a_different_copy_is_rewritten_and_a_missing_one_written_quietly() {
        let (door, bytes, _) = door_with_v2();
        std::fs::write(copy_file(&door), b"not a list").expect("damage copy");
        let (store, report) = door.open();
        assert_eq!(
            reasons(&report, EventKind::ListFileDamaged),
            ["copy_rewritten"]
        );
        assert_eq!(std::fs::read(copy_file(&door)).expect("copy"), bytes);
        drop(store);
        std::fs::remove_file(copy_file(&door)).expect("remove copy");
        let (_store, report) = door.open();
        assert!(report.events.is_empty(), "{:?}", report.events);
        assert_eq!(std::fs::read(copy_file(&door)).expect("copy"), bytes);
    }

    #[test]
    fn a_list_below_the_floor_is_refused_at_start_without_trying_the_copy() {
        let (door, _, _) = door_with_v2();
        {
            let (store, _) = door.open();
            store.reset_list_floor(10).expect("reset");
        }
        let (store, report) = door.open();
        assert!(store.active().is_none());
        assert_eq!(reasons(&report, EventKind::ListRejected), ["rollback"]);
        assert!(reasons(&report, EventKind::ListFileDamaged).is_empty());
    }

    #[test]
    fn a_list_for_another_door_is_refused_not_taken_for_damage() {
        let (door, _, _) = door_with_v2();
        let mut policy = door.policy();
        policy.door = Some("door-2".into());
        let (store, report) = Store::open(&door.options(), &policy).expect("open");
        assert!(store.active().is_none());
        assert_eq!(reasons(&report, EventKind::ListRejected), ["wrong_door"]);
        assert!(reasons(&report, EventKind::ListFileDamaged).is_empty());
    }

    #[test]
    fn damage_is_what_another_copy_could_fix() {
        let damage = [
            Rejection::Malformed("x".into()),
            Rejection::UnknownFormat("x".into()),
            Rejection::MissingSignature,
            Rejection::BadSignature("k1".into()),
        ];
        assert!(damage.iter().all(is_damage));
        let refusals = [
            Rejection::UnknownKey("k9".into()),
            Rejection::Rollback {
                version: 1,
                current: 2,
            },
        ];
        assert!(!refusals.iter().any(is_damage));
        assert_eq!(
            ListFault::Rejected(Rejection::MissingSignature).to_string(),
            format!(
                "is damaged (missing_signature): {}",
                Rejection::MissingSignature
            )
        );
        assert_eq!(
            ListFault::Rejected(Rejection::UnknownKey("k9".into())).to_string(),
            format!(
                "is refused (unknown_key): {}",
                Rejection::UnknownKey("k9".into())
            )
        );
        assert_eq!(ListFault::Missing.to_string(), "is missing");
    }

    #[test]
    fn only_temp_files_of_interrupted_writes_are_removed() {
        let door = Door::new();
        let dir = door.state_dir();
        let temp = dir.join(format!("{}list", files::TEMP_PREFIX));
        let temp_dir = dir.join(format!("{}dir", files::TEMP_PREFIX));
        let other = dir.join("notes.txt");
        std::fs::write(&temp, b"half a list").expect("write");
        std::fs::create_dir(&temp_dir).expect("mkdir");
        std::fs::write(&other, b"keep").expect("write");
        remove_stale_temp_files(dir);
        assert!(!temp.exists());
        assert!(temp_dir.is_dir(), "only files");
        assert!(other.exists());
    }
}
