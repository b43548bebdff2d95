//! The list inbox: a directory operators drop signed lists into (USB stick copy, scp). The
//! watcher scans it, hands each file that held still to the [list intake](super::intake), and
//! files it under `processed/` or `rejected/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::door::config::Config;
use crate::door::runtime::intake::{Intake, ListIntake};
use crate::util::files;

/// Watches the inbox directory for signed lists (USB stick copy, scp). A file is taken once its
/// size and modification time held still for one scan, so a copy in progress is never read; it is
/// then moved to `processed/` or `rejected/` with a time prefix, and those two keep at most
/// `list.inbox_keep` files and `list.inbox_keep_bytes` bytes each (oldest removed first).
pub(crate) async fn watch_inbox(
    cfg: Arc<Config>,
    intake: Arc<ListIntake>,
    shutdown: CancellationToken,
) {
    let inbox = cfg.inbox.clone();
    // Operators in the daemon's group may drop lists (they are signed); only pintud moves them.
    // Sticky: an operator cannot rename or delete a file another one dropped (swap it for a
    // symlink, say); pintud, the directory's owner, still can.
    for (dir, mode) in [
        (inbox.clone(), 0o1770),
        (inbox.join("processed"), 0o750),
        (inbox.join("rejected"), 0o750),
    ] {
        if let Err(e) = files::create_dir_with_mode(&dir, mode) {
            tracing::error!(inbox = %dir.display(), "cannot create the list inbox: {e}; lists can only arrive at start");
            return;
        }
    }
    secure_inbox_dir(&inbox);
    let mut scanner = InboxScanner::default();
    let mut interval = tokio::time::interval(cfg.poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let ready = scanner.scan(&inbox);
        for (path, stamp) in ready {
            let intake = intake.clone();
            let p = path.clone();
            let id = stamp.id;
            let taken = tokio::task::spawn_blocking(move || intake.take_file(&p, Some(id), false))
                .instrument(tracing::info_span!("inbox", file = %path.display()))
                .await;
            let accepted = match taken {
                Ok(Ok(Intake::Applied)) => true,
                Ok(Ok(Intake::Rejected)) => false,
                // Not the file the scan checked: the next scans look at it afresh.
                Ok(Ok(Intake::Changed)) => continue,
                Ok(Err(e)) => {
                    tracing::error!("store error while applying {}: {e}", path.display());
                    false
                }
                Err(e) => {
                    tracing::error!("list intake task failed: {e}");
                    false
                }
            };
            let dest_dir = inbox.join(if accepted { "processed" } else { "rejected" });
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = dest_dir.join(format!(
                "{}-{name}",
                Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
            ));
            if let Err(e) = std::fs::rename(&path, &dest) {
                tracing::warn!(
                    "cannot move {} to {}: {e}; it is ignored until it changes",
                    path.display(),
                    dest.display()
                );
                scanner.stuck.insert(path, stamp);
                continue;
            }
            let (keep, keep_bytes) = (cfg.inbox_keep, cfg.inbox_keep_bytes);
            match files::prune_dir(&dest_dir, keep, keep_bytes) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    dir = %dest_dir.display(),
                    removed = n,
                    "pruned the oldest inbox files (list.inbox_keep = {keep}, list.inbox_keep_bytes = {keep_bytes})"
                ),
                Err(e) => tracing::warn!(dir = %dest_dir.display(), "cannot prune: {e}"),
            }
        }
    }
}

/// Sets the sticky bit on an inbox pintud owns, and takes away write access for others; an
/// inbox it does not own (a mounted USB stick, a directory root set up) is left as it is, with a
/// warning when it lacks the sticky bit while others than its owner may write to it.
fn secure_inbox_dir(inbox: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = match std::fs::metadata(inbox) {
        Ok(md) => md,
        Err(e) => {
            tracing::warn!(inbox = %inbox.display(), "cannot examine the list inbox: {e}");
            return;
        }
    };
    let mode = md.mode() & 0o7777;
    let wanted = (mode | 0o1000) & !0o002;
    if mode == wanted {
        return;
    }
    if md.uid() == nix::unistd::geteuid().as_raw() {
        match std::fs::set_permissions(inbox, std::fs::Permissions::from_mode(wanted)) {
            Ok(()) => tracing::info!(
                inbox = %inbox.display(),
                "list inbox mode set to {wanted:04o} (was {mode:04o}): sticky, not writable by others"
            ),
            Err(e) => tracing::warn!(
                inbox = %inbox.display(),
                "cannot set the list inbox's mode to {wanted:04o} (is {mode:04o}): {e}"
            ),
        }
    } else if mode & 0o022 != 0 {
        tracing::warn!(
            inbox = %inbox.display(),
            "the list inbox (mode {mode:04o}) is writable by others than its owner but not sticky: one writer can swap another's file; see docs/access-list.md"
        );
    }
}

/// A file as the inbox scan saw it: size and modification time (a copy in progress changes
/// them) and identity (the file opened later must be this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: SystemTime,
    id: files::FileId,
}

/// Inbox scanning state between scans.
#[derive(Default)]
struct InboxScanner {
    /// Files seen in the previous scan.
    pending: HashMap<PathBuf, Stamp>,
    /// Files handled but not movable (read-only medium): skipped until they change.
    stuck: HashMap<PathBuf, Stamp>,
}

impl InboxScanner {
    /// One scan: returns files whose size and mtime are unchanged since the previous scan.
    fn scan(&mut self, inbox: &Path) -> Vec<(PathBuf, Stamp)> {
        let mut ready = Vec::new();
        let mut seen = HashMap::new();
        let entries = match std::fs::read_dir(inbox) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(inbox = %inbox.display(), "cannot read the list inbox: {e}");
                return ready;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Hidden and partial files are copies in progress (scp, rsync, our own temp files).
            if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
                continue;
            }
            // lstat: a symlink is never followed. Directories hold the archives (`processed/`,
            // `rejected/`); anything else that is not a regular file (a symlink, a FIFO) is
            // handed to the intake like a file, which refuses it by name (`not_a_file`) instead
            // of leaving it unexplained in the inbox.
            let Ok(md) = entry.metadata() else { continue };
            if md.is_dir() {
                continue;
            }
            let stamp = Stamp {
                len: md.len(),
                modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                id: files::FileId::of(&md),
            };
            let path = entry.path();
            if self.stuck.get(&path) == Some(&stamp) {
                continue;
            }
            if self.pending.get(&path) == Some(&stamp) {
                ready.push((path, stamp));
            } else {
                seen.insert(path, stamp);
            }
        }
        self.pending = seen;
        ready.sort_by(|a, b| a.0.cmp(&b.0));
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn names(ready: &[(PathBuf, Stamp)]) -> Vec<String> {
        ready
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn append(path: &Path, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn a_file_is_ready_once_it_held_still_for_one_scan() {
        let dir = tempfile::tempdir().unwrap();
        let mut scanner = InboxScanner::default();
        append(&dir.path().join("b.list"), b"one");
        append(&dir.path().join("a.list"), b"one");
        assert!(scanner.scan(dir.path()).is_empty(), "first seen: not yet");
        // A copy still in progress: b grows between scans.
        append(&dir.path().join("b.list"), b"two");
        assert_eq!(names(&scanner.scan(dir.path())), ["a.list"]);
        // a was handed on (the watcher moves it away); b held still now.
        assert_eq!(names(&scanner.scan(dir.path())), ["b.list"]);
        // Ready files come in name order, whatever order the directory lists them in.
        let dir = tempfile::tempdir().unwrap();
        let mut scanner = InboxScanner::default();
        for name in ["d.list", "b.list", "c.list", "a.list"] {
            append(&dir.path().join(name), b"one");
        }
        scanner.scan(dir.path());
        let all = names(&scanner.scan(dir.path()));
        assert_eq!(all, ["a.list", "b.list", "c.list", "d.list"]);
    }

    #[test]
    fn hidden_partial_files_and_directories_are_not_lists() {
        let dir = tempfile::tempdir().unwrap();
        for name in [".hidden", "copy.tmp", "copy.part"] {
            append(&dir.path().join(name), b"x");
        }
        std::fs::create_dir(dir.path().join("processed")).unwrap();
        let mut scanner = InboxScanner::default();
        assert!(scanner.scan(dir.path()).is_empty());
        assert!(scanner.scan(dir.path()).is_empty());
    }

    #[test]
    fn a_symlink_or_fifo_is_handed_on_for_the_intake_to_refuse_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.list")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("fifo.list"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let mut scanner = InboxScanner::default();
        assert!(scanner.scan(dir.path()).is_empty());
        assert_eq!(names(&scanner.scan(dir.path())), ["fifo.list", "link.list"]);
    }

    #[test]
    fn a_file_that_cannot_be_moved_is_skipped_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.list");
        append(&path, b"one");
        let mut scanner = InboxScanner::default();
        scanner.scan(dir.path());
        let ready = scanner.scan(dir.path());
        assert_eq!(names(&ready), ["a.list"]);
        // The watcher could not move it (read-only medium).
        scanner.stuck.insert(ready[0].0.clone(), ready[0].1);
        assert!(scanner.scan(dir.path()).is_empty());
        assert!(scanner.scan(dir.path()).is_empty());
        append(&path, b"two");
        assert!(scanner.scan(dir.path()).is_empty(), "changed: seen afresh");
        assert_eq!(names(&scanner.scan(dir.path())), ["a.list"]);
    }

    #[test]
    fn a_missing_inbox_scans_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut scanner = InboxScanner::default();
        assert!(scanner.scan(&dir.path().join("gone")).is_empty());
    }
}
