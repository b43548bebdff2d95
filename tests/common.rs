//! Shared fixtures: the support kit (`pintu-testkit`: a site, a running pintud, pintuctl runs,
//! a broker), re-exported, and what only the tests need (a tiny disk, decision tables).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub use pintu_testkit::{pintuctl, pintud, sign_with, text, Pintud, Site, DOOR, SITE};

/// A tmpfs of a given size (root only: `mount` fails otherwise), unmounted (lazily) on drop. For
/// disk-full tests: fill it, and writes under it fail with `ENOSPC`.
pub struct TinyDisk {
    path: PathBuf,
    // The mount point, when the disk made its own (removed after the unmount).
    _dir: Option<tempfile::TempDir>,
}

impl TinyDisk {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `"8m"`) on a new temp dir; `None` when
    /// not root.
    pub fn mount(size: &str) -> Option<TinyDisk> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut disk = TinyDisk::mount_at(dir.path(), size)?;
        disk._dir = Some(dir);
        Some(disk)
    }

    /// Mounts a tmpfs of `size` on `path`, an existing directory; `None` when not root.
    pub fn mount_at(path: &Path, size: &str) -> Option<TinyDisk> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs as root failed");
        Some(TinyDisk {
            path: path.to_path_buf(),
            _dir: None,
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills the disk: writes zeros until the file system says it is full. Returns the filler
    /// file (remove it to free the space).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.path.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        path
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A tap's decision and deny reason, as compared in the tables of tests.
pub fn decision(door: &Pintud, uid: &str) -> (String, Option<String>) {
    let t = door.tap(uid);
    (t.decision, t.reason)
}

/// The expected [`decision`] of a granted tap.
pub fn grant() -> (String, Option<String>) {
    ("grant".into(), None)
}

/// The expected [`decision`] of a tap denied for `reason`.
pub fn deny(reason: &str) -> (String, Option<String>) {
    ("deny".into(), Some(reason.into()))
}
