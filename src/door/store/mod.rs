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
//!
//! One file per concern, each an `impl Store` block over the fields declared here:
//! - `list.rs`: the active list, applying a new one, the rollback floors (door and per key).
//! - `recovery.rs`: loading the last good list at start: cache reuse or rebuild, the copy
//!   fallback, damaged or refused files.
//! - `outbox.rs`: event numbering and its reservation file, the outbox, the journal of
//!   delivered events and the events set aside.
//! - `commands.rs`: command ids already seen (replay protection).
//! - `snapshot.rs`: the procedure's records (presence saved by change, the time floor) and the
//!   lockdown, kept across restarts.
//! - [`chunk`]: the encoding of the list cache's records.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use arc_swap::ArcSwapOption;
use jiff::Timestamp;

use crate::core::event::{EventDraft, EventKind};
use crate::core::list::TrustPolicy;
use crate::util::files;

pub mod chunk;
mod commands;
mod list;
mod outbox;
mod recovery;
mod snapshot;
#[cfg(test)]
mod testing;

use self::list::{trusted_floor, META_HIGHEST_VERSION};
pub use self::list::{ActiveList, CardLookup};
use self::outbox::{resume_numbering, SeqState};
use self::recovery::remove_stale_temp_files;
pub use self::snapshot::LoadedProcedure;

/// File name of the last good signed list inside the state directory.
pub const LIST_FILE: &str = "list.signed";
/// File name of the second copy of the last good list, written after [`LIST_FILE`] at every
/// apply: a damaged list file falls back to it at start (see [`Store::open`]).
pub const LIST_COPY_FILE: &str = "list.signed.copy";
/// Directory name of the sled store inside the state directory.
pub const STORE_DIR: &str = "store";
/// File (outside sled) recording that every sequence number issued is below its value, so a lost
/// or rebuilt store never reuses a number the office system has already seen.
pub const SEQ_RESERVATION_FILE: &str = "seq.reserved";
/// Delivered events kept for `pintuctl events` (oldest dropped first).
pub const JOURNAL_MAX: usize = 10_000;

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
    /// The procedure's records: one per occupant, the alarm, the time floor (`snapshot.rs`).
    procedure: sled::Tree,
    /// Bytes written for events and procedure records since open ([`Store::bytes_written`]).
    written: AtomicU64,
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
        let seq_file = opts.state_dir.join(SEQ_RESERVATION_FILE);
        let (seq, seq_floor) = resume_numbering(&meta, &outbox, &seq_file, &mut report)?;
        // Whatever is in the outbox at open was read back from disk.
        let durable_seq = seq.next - 1;
        let outbox_len = outbox.len() as u64;
        let journal = db.open_tree("journal")?;
        let commands_seen = db.open_tree("commands.seen")?;
        let set_aside = db.open_tree("outbox.set_aside")?;
        let procedure = db.open_tree(snapshot::PROCEDURE_TREE)?;
        let store = Store {
            _dir_lock: dir_lock,
            highest_version: AtomicU64::new(trusted_floor(&db, &meta, policy)?),
            seq: Mutex::new(seq),
            seq_file,
            apply_lock: Mutex::new(()),
            outbox_len: AtomicU64::new(outbox_len),
            journal_len: AtomicU64::new(journal.len() as u64),
            seq_floor: AtomicU64::new(seq_floor),
            journal,
            commands_seen,
            procedure,
            written: AtomicU64::new(0),
            set_aside_len: AtomicU64::new(set_aside.len() as u64),
            set_aside,
            delivery_refused: Mutex::new(None),
            durable_seq: AtomicU64::new(durable_seq),
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

#[cfg(test)]
mod tests {
    use super::testing::Door;
    use super::*;

    #[test]
    fn the_cache_fits_the_list_within_its_bounds() {
        let (floor, ceiling) = (32 << 20, 512 << 20);
        assert_eq!(cache_for_list(0, floor, ceiling), floor);
        assert_eq!(
            cache_for_list(40 << 20, floor, ceiling),
            floor,
            "small lists stay at the floor"
        );
        assert_eq!(cache_for_list(400 << 20, floor, ceiling), 300 << 20);
        assert_eq!(cache_for_list(4 << 30, floor, ceiling), ceiling);
        assert_eq!(
            cache_for_list(4 << 30, floor, floor),
            floor,
            "a fixed cache"
        );
    }

    #[test]
    fn one_store_per_state_directory() {
        let door = Door::new();
        let (_store, _) = door.open();
        match Store::open(&door.options(), &door.policy()) {
            Err(StoreError::Locked(dir)) => assert_eq!(dir, door.state_dir()),
            Err(e) => panic!("expected Locked, got {e}"),
            Ok(_) => panic!("a second store opened the same state directory"),
        }
    }

    #[test]
    fn stored_numbers_are_eight_bytes_big_endian() {
        assert_eq!(u64_from_key(&7u64.to_be_bytes()).expect("u64"), 7);
        assert!(matches!(
            u64_from_key(b"short"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
