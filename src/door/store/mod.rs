//! What survives a power cut: the last good signed list (a file, the source of truth) and the sled
//! store built from it — the list cache looked up by card hash, list metadata and the event outbox.
//!
//! - **List swap.** Each applied list gets its own sled tree; a list becomes active by one
//!   in-memory pointer swap (and one metadata batch on disk), so a lookup sees the old list or the
//!   new one, never a mix. The old tree is dropped once no lookup holds it.
//! - **Rebuild.** If sled fails to open, panics while opening, or its cache disagrees with the list
//!   file, the damaged directory is moved aside and the cache is rebuilt from the file.
//! - **Two list files.** Every apply writes the list to [`LIST_FILE`] and then the same bytes to
//!   [`LIST_COPY_FILE`], each atomically. At start a list file that is missing, unreadable or
//!   damaged (does not parse, a signature fails) gives way to the copy if the copy verifies and is
//!   not below the rollback floor; the list file is restored from it. A well-formed list the
//!   config refuses (key removed, another site or door) or below the floor is not damage: the copy
//!   is not tried. A damaged copy next to a good list file is rewritten. Each case is logged and
//!   reported (`list.file_damaged`, reason = what the door did). The sled cache is keyed on the
//!   payload digest, so a list loaded from the copy reuses it.
//! - **Write errors.** A list file that cannot be written ([`StoreError::ListNotStored`]) changes
//!   nothing: the old list stays. A failure after it was replaced (sled, directory fsync) leaves
//!   the file ahead of the cache, and the daemon stops for systemd to restart it: the door never
//!   runs on a mix of two lists.
//! - **Outbox.** Events are keyed by their sequence number. [`Store::append`] does no fsync (the tap
//!   path must not wait on the SD card); callers that promise durability await [`Store::flush`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;
use uuid::Uuid;

use crate::core::card::CardHash;
use crate::core::event::{Event, EventDraft, EventKind};
use crate::core::list::{verify, Accepted, Entry, ListMeta, Rejection, TrustPolicy, VerifiedList};
use crate::util::files;

pub mod chunk;

/// File name of the last good signed list inside the state directory.
pub const LIST_FILE: &str = "list.signed";
/// File name of the second copy of the last good list, written after [`LIST_FILE`] at every
/// apply: a damaged list file falls back to it at start (see [`Store::open`]).
pub const LIST_COPY_FILE: &str = "list.signed.copy";
/// Directory name of the sled store inside the state directory.
pub const STORE_DIR: &str = "store";

const META_ACTIVE_TREE: &[u8] = b"active_tree";
const META_ACTIVE_DIGEST: &[u8] = b"active_digest";
const META_ACTIVE_COUNT: &[u8] = b"active_count";
/// The active list's metadata (JSON [`StoredMeta`]), so a restart need not parse the payload.
const META_ACTIVE_META: &[u8] = b"active_meta";
/// The door's overall rollback floor: the highest version it accepted, raised at each commit and
/// lowered only by a signed `reset_list_floor` ([`Store::reset_list_floor`]). Removing a key
/// from the config does not lower it.
const META_HIGHEST_VERSION: &[u8] = b"highest_version";
/// Per-key rollback floors: this prefix, then the key's 32 public key bytes; the value is the
/// highest list version that key signed and this door accepted (u64, big-endian).
const META_KEY_FLOOR_PREFIX: &[u8] = b"key_floor/";
/// Set once the per-key floors exist. A store without it has only `highest_version`, which
/// becomes the floor of every key trusted at that start (see [`trusted_floor`]).
const META_KEY_FLOORS: &[u8] = b"key_floors";
/// Highest sequence number ever removed from the outbox (by a publisher), so numbering never
/// restarts below it when the outbox is empty.
const META_SEQ_FLOOR: &[u8] = b"seq_floor";
/// Set once the outbox numbering has been initialised in this sled store; its absence next to a
/// reservation file means the store was lost and numbering must resume above the reservation.
const META_SEQ_TRACKED: &[u8] = b"seq_tracked";
/// Tree name prefix of a list cache; the `c1` names the chunk layout ([`chunk`]), so a store
/// written with another layout is rebuilt rather than misread.
const LIST_TREE_PREFIX: &str = "list.c1.v";
/// File (outside sled) recording that every sequence number issued is below its value, so a lost
/// or rebuilt store never reuses a number the office system has already seen.
pub const SEQ_RESERVATION_FILE: &str = "seq.reserved";
/// Presence and the trusted-time floor (the procedure's snapshot, JSON).
const META_PROCEDURE: &[u8] = b"procedure";
/// Lockdown in force: the admitted role's name.
const META_LOCKDOWN: &[u8] = b"lockdown";
/// Delivered events kept for `pintuctl events` (oldest dropped first).
pub const JOURNAL_MAX: usize = 10_000;
/// Sequence numbers reserved per file write (one fsync per this many events).
const SEQ_BLOCK: u64 = 10_000;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error.
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// A file operation failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A stored value could not be decoded.
    #[error("store: damaged record: {0}")]
    Corrupt(String),
    /// Another process holds the state directory.
    #[error("{0} is in use: is another pintud running with the same state_dir?")]
    Locked(PathBuf),
    /// A verified list could not be written to the list file (disk full, I/O error). Nothing
    /// changed: the file, the cache and the active list are the old ones.
    #[error("cannot write {path}; the list was not applied and the current list stays")]
    ListNotStored {
        /// The list file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The list the door decides on: its metadata and its sled tree.
pub struct ActiveList {
    /// Facts about the list.
    pub meta: ListMeta,
    tree: sled::Tree,
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

/// Settings for opening the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// State directory (holds the list file and the sled directory).
    pub state_dir: PathBuf,
    /// sled page cache in bytes: the floor. The store raises it to fit the last good list's
    /// cache, up to [`StoreOptions::cache_size_max`] (see [`cache_for_list`]).
    pub cache_size: u64,
    /// Ceiling for the automatic cache sizing; equal to `cache_size` for a fixed cache.
    pub cache_size_max: u64,
    /// Site id stamped on events.
    pub site: String,
    /// Door id stamped on events.
    pub door: String,
}

impl StoreOptions {
    /// The options a door's validated config gives (pintud, and its failure reporter).
    pub fn for_config(cfg: &crate::door::config::Config) -> StoreOptions {
        StoreOptions {
            state_dir: cfg.state_dir.clone(),
            cache_size: cfg.cache_size,
            cache_size_max: cfg.cache_size_max,
            site: cfg.site.clone(),
            door: cfg.door.clone(),
        }
    }
}

/// The door's durable state.
pub struct Store {
    // Held for the store's lifetime: one daemon per state directory.
    _dir_lock: nix::fcntl::Flock<std::fs::File>,
    db: sled::Db,
    meta: sled::Tree,
    outbox: sled::Tree,
    active: ArcSwapOption<ActiveList>,
    highest_version: AtomicU64,
    // Seq allocation and insert happen under one lock so the outbox never has a gap a reader
    // could observe before the lower seq lands.
    seq: Mutex<SeqState>,
    apply_lock: Mutex<()>,
    seq_file: PathBuf,
    outbox_len: AtomicU64,
    /// Events already published and acknowledged, kept (bounded) for `pintuctl events`.
    journal: sled::Tree,
    /// Highest seq removed from the outbox (mirrors `META_SEQ_FLOOR`).
    seq_floor: AtomicU64,
    /// Entries in `journal` (sled's `len` walks the tree).
    journal_len: AtomicU64,
    /// Command ids already received, with their expiry (replay protection).
    commands_seen: sled::Tree,
    /// Events the MQTT link could not deliver on their own (too large, refused for that message),
    /// moved out of the outbox so the next ones can go; kept, never deleted (`docs/mqtt.md`).
    set_aside: sled::Tree,
    /// Entries in `set_aside`.
    set_aside_len: AtomicU64,
    /// Why the broker refuses every event, while it does (in memory; the link sets it).
    delivery_refused: Mutex<Option<String>>,
    /// Highest seq known to be on disk: only these may leave the door.
    durable_seq: AtomicU64,
    /// Woken on every append (the publisher waits on it).
    appended: tokio::sync::Notify,
    list_path: PathBuf,
    /// The second copy of the last good list ([`LIST_COPY_FILE`]).
    copy_path: PathBuf,
    /// Events raised by an apply besides its outcome (a copy that could not be written), for
    /// the caller to append ([`Store::take_notices`]).
    notices: Mutex<Vec<EventDraft>>,
    /// sled's page cache as opened, and the ceiling the configuration allows.
    cache_size: u64,
    cache_size_max: u64,
    site: String,
    door: String,
}

/// What happened while opening, for the daemon to log and emit as events.
#[derive(Debug, Default)]
pub struct OpenReport {
    /// Events to append once the store is open (store rebuilt, list file problems).
    pub events: Vec<EventDraft>,
}

impl Store {
    /// Opens (or creates) the store and loads the last good list, rebuilding the cache when needed.
    ///
    /// `policy` verifies the list file again: a file that no longer verifies (damaged, or its keys
    /// were removed from the config) is not used, and the door starts without a list.
    pub fn open(
        opts: &StoreOptions,
        policy: &TrustPolicy,
    ) -> Result<(Store, OpenReport), StoreError> {
        let mut report = OpenReport::default();
        files::create_dir_with_mode(&opts.state_dir, 0o750).map_err(io_err(&opts.state_dir))?;
        let dir_lock = lock_state_dir(&opts.state_dir)?;
        let sled_dir = opts.state_dir.join(STORE_DIR);
        // The larger of the list file and its copy: start-up may fall back to the copy.
        let list_len = [LIST_FILE, LIST_COPY_FILE]
            .iter()
            .filter_map(|name| std::fs::metadata(opts.state_dir.join(name)).ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0);
        let cache_size = cache_for_list(list_len, opts.cache_size, opts.cache_size_max);
        if cache_size > opts.cache_size {
            tracing::info!(
                cache_mib = cache_size >> 20,
                list_mib = list_len >> 20,
                "sled cache raised above store.cache_size to fit the list (store.cache_size_max caps it)"
            );
        }
        let db = match open_sled(&sled_dir, cache_size) {
            Ok(db) => db,
            // Lock contention is not damage: never move a live store aside.
            Err(why) if why.contains("could not acquire lock") => {
                return Err(StoreError::Locked(sled_dir))
            }
            Err(why) => {
                let aside = opts.state_dir.join(format!(
                    "{STORE_DIR}.damaged-{}",
                    Timestamp::now().as_second()
                ));
                tracing::error!(store = %sled_dir.display(), moved_to = %aside.display(), "store failed to open ({why}); rebuilding from the list file");
                std::fs::rename(&sled_dir, &aside).map_err(io_err(&sled_dir))?;
                report.events.push(
                    EventDraft::new(EventKind::StoreRebuilt)
                        .reason("open_failed")
                        .detail(format!(
                            "store failed to open ({why}); moved to {}",
                            aside.display()
                        )),
                );
                open_sled(&sled_dir, cache_size).map_err(|why| {
                    StoreError::Corrupt(format!("fresh store failed to open: {why}"))
                })?
            }
        };
        let meta = db.open_tree("meta")?;
        let outbox = db.open_tree("outbox")?;
        let last_seq = match outbox.last()? {
            Some((k, _)) => u64_from_key(&k)?,
            None => 0,
        };
        let seq_floor = read_u64(&meta, META_SEQ_FLOOR)?.unwrap_or(0);
        let seq_file = opts.state_dir.join(SEQ_RESERVATION_FILE);
        let reserved_before = read_reservation(&seq_file)?;
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
        write_reservation(&seq_file, reserved)?;
        let outbox_len = outbox.len() as u64;
        let journal = db.open_tree("journal")?;
        let commands_seen = db.open_tree("commands.seen")?;
        let set_aside = db.open_tree("outbox.set_aside")?;
        let store = Store {
            _dir_lock: dir_lock,
            highest_version: AtomicU64::new(trusted_floor(&db, &meta, policy)?),
            seq: Mutex::new(SeqState {
                next: next_seq,
                reserved,
            }),
            seq_file,
            apply_lock: Mutex::new(()),
            outbox_len: AtomicU64::new(outbox_len),
            journal_len: AtomicU64::new(journal.len() as u64),
            seq_floor: AtomicU64::new(seq_floor),
            journal,
            commands_seen,
            set_aside_len: AtomicU64::new(set_aside.len() as u64),
            set_aside,
            delivery_refused: Mutex::new(None),
            // Whatever is in the outbox at open was read back from disk.
            durable_seq: AtomicU64::new(next_seq - 1),
            appended: tokio::sync::Notify::new(),
            db,
            meta,
            outbox,
            active: ArcSwapOption::empty(),
            list_path: opts.state_dir.join(LIST_FILE),
            copy_path: opts.state_dir.join(LIST_COPY_FILE),
            notices: Mutex::new(Vec::new()),
            cache_size,
            cache_size_max: opts.cache_size_max,
            site: opts.site.clone(),
            door: opts.door.clone(),
        };
        remove_stale_temp_files(&opts.state_dir);
        store.load_list_file(policy, &mut report)?;
        store.drop_stale_trees()?;
        Ok((store, report))
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

    /// Loads the last good list: [`LIST_FILE`], or its copy ([`LIST_COPY_FILE`]) when the list
    /// file is damaged, and keeps the two files equal. Every damage found is logged and reported
    /// as a `list.file_damaged` event.
    ///
    /// The copy is tried only when the list file is missing, unreadable or damaged (it does not
    /// parse, or a signature does not verify) and the copy holds other bytes. A well-formed list
    /// refused by the config (its key removed, another site or door) or older than the rollback
    /// floor is not a damaged file: the copy is not tried (it would be the same list, or an
    /// older one), and the door starts without a list as before.
    fn load_list_file(
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

    fn build_tree(&self, verified: &VerifiedList) -> Result<sled::Tree, StoreError> {
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
    fn commit_active(
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

    fn drop_stale_trees(&self) -> Result<(), StoreError> {
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
        self.outbox.insert(seq.to_be_bytes(), bytes)?;
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

    /// Records a command id before the command is carried out; `false` if it was seen before.
    /// Durable on return, so a crash right after cannot let the same command fire again.
    ///
    /// An id is kept while its command's window is not below the trusted-time floor `floor`
    /// (such a command is refused as expired anyway); `forever` ids (the floor resets, checked
    /// against the wall clock) are never forgotten. Newer commands do not make older ids go.
    pub fn remember_command(
        &self,
        id: Uuid,
        expires_at: Timestamp,
        floor: Option<Timestamp>,
        forever: bool,
    ) -> Result<bool, StoreError> {
        let keep_until = if forever {
            i64::MAX
        } else {
            expires_at.as_second()
        };
        let fresh = self
            .commands_seen
            .compare_and_swap(
                id.as_bytes(),
                None::<&[u8]>,
                Some(&keep_until.to_be_bytes()[..]),
            )?
            .is_ok();
        if fresh {
            if let Some(floor) = floor {
                let horizon = floor.as_second();
                for item in self.commands_seen.iter() {
                    let (k, v) = item?;
                    let exp = v
                        .as_ref()
                        .try_into()
                        .map(i64::from_be_bytes)
                        .unwrap_or(i64::MAX);
                    if exp < horizon {
                        self.commands_seen.remove(k)?;
                    }
                }
            }
            self.db.flush()?;
        }
        Ok(fresh)
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

    /// The persisted procedure snapshot (who is inside, the time floor), if any.
    pub fn procedure_snapshot(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(META_PROCEDURE)?.map(|v| v.to_vec()))
    }

    /// Stores the procedure snapshot; durable with the next flush (a tap's acknowledgement
    /// waits for it).
    pub fn save_procedure_snapshot(&self, bytes: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(META_PROCEDURE, bytes)?;
        Ok(())
    }

    /// The lockdown in force (its admitted role), if any; survives restarts.
    pub fn lockdown(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .get(META_LOCKDOWN)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets or clears the lockdown, durably.
    pub fn set_lockdown(&self, role: Option<&str>) -> Result<(), StoreError> {
        match role {
            Some(r) => self.meta.insert(META_LOCKDOWN, r.as_bytes())?,
            None => self.meta.remove(META_LOCKDOWN)?,
        };
        self.db.flush()?;
        Ok(())
    }

    /// Events waiting in the outbox.
    pub fn outbox_depth(&self) -> u64 {
        self.outbox_len.load(Ordering::Relaxed)
    }

    /// Path of the last good list file.
    pub fn list_path(&self) -> &Path {
        &self.list_path
    }
}

/// What the store keeps of the active list's metadata besides its digest and signers.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMeta {
    site: String,
    doors: Vec<String>,
    version: u64,
    issued_at: Timestamp,
    expires_at: Timestamp,
    time_zone: String,
    entry_count: usize,
    visits: Vec<crate::core::visit::Visit>,
}

impl StoredMeta {
    fn of(meta: &ListMeta) -> Option<StoredMeta> {
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

/// Outbox numbering: the next number, and the reservation it must stay below.
struct SeqState {
    next: u64,
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
fn trusted_floor(
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
fn remove_stale_temp_files(state_dir: &Path) {
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

fn tree_name(version: u64) -> String {
    format!("{LIST_TREE_PREFIX}{version}")
}

fn read_u64(tree: &sled::Tree, key: &[u8]) -> Result<Option<u64>, StoreError> {
    match tree.get(key)? {
        None => Ok(None),
        Some(v) => u64_from_key(&v).map(Some),
    }
}

fn u64_from_key(bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

/// Takes an exclusive lock on `state_dir/pintud.lock`, held until the store is dropped.
fn lock_state_dir(state_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, StoreError> {
    let path = state_dir.join("pintud.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| StoreError::Locked(state_dir.to_path_buf()))
}

/// The sled page cache for a door whose signed list file is `list_len` bytes: enough for the
/// whole list cache to stay in memory, within `[floor, ceiling]`.
///
/// The list cache takes about 175 bytes per entry in sled against about 400 bytes per entry in
/// the list file; sled's in-memory pages are larger than on disk, and a cache only just big
/// enough still evicts (measured at 1M entries: 128 MiB gives p99 47 µs, 256 MiB 4.5 µs), so
/// the cache is three quarters of the list file. Lists up to ~40k entries stay at the floor.
pub fn cache_for_list(list_len: u64, floor: u64, ceiling: u64) -> u64 {
    let wanted = list_len / 4 * 3;
    wanted.min(ceiling).max(floor)
}

/// Opens sled, turning panics on damaged files into errors.
fn open_sled(dir: &Path, cache_size: u64) -> Result<sled::Db, String> {
    // sled releases its directory lock only when its background flusher, which holds the last
    // reference, has stopped: a store dropped a moment ago (a restart in the same process) may
    // still hold it. Our own `pintud.lock` already excludes a second pintud, so waiting a little
    // is safe; a lock still held after that is reported as such.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match open_sled_once(dir, cache_size) {
            Err(why)
                if why.contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn open_sled_once(dir: &Path, cache_size: u64) -> Result<sled::Db, String> {
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_size)
        .mode(sled::Mode::LowSpace);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open())) {
        Ok(Ok(db)) => match db
            .open_tree("meta")
            .and_then(|m| m.get(META_HIGHEST_VERSION))
        {
            Ok(_) => Ok(db),
            Err(e) => Err(e.to_string()),
        },
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("sled panicked while opening".into()),
    }
}
