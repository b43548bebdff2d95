//! Crash-safe file writes: a reader (or a restart after power loss) sees the old file or the new
//! one, never a torn mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Prefix of the temp files [`write_atomic`] writes next to their target.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename, fsync the
/// directory (so the rename itself survives a power cut).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_reporting(path, bytes, mode).map_err(|e| e.source)
}

/// [`write_atomic`], saying on failure whether `path` was already replaced. Before the rename
/// (disk full while writing, a failed fsync) `path` is untouched and the temp file is removed;
/// after it (the directory fsync failed) `path` holds the new bytes, which may not survive a
/// power cut.
pub fn write_atomic_reporting(
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<(), AtomicWriteError> {
    let before = |source| AtomicWriteError {
        replaced: false,
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .tempfile_in(dir)
        .map_err(before)?;
    tmp.write_all(bytes).map_err(before)?;
    tmp.as_file().sync_all().map_err(before)?;
    tmp.persist(path).map_err(|e| before(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| AtomicWriteError {
            replaced: true,
            source,
        })
}

/// Why [`write_atomic_reporting`] failed.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct AtomicWriteError {
    /// Whether the target was already replaced by the new bytes.
    pub replaced: bool,
    /// The error.
    pub source: io::Error,
}

/// Whether the file at `path` holds exactly `bytes`, read in small blocks (the file is never held
/// in memory whole). `NotFound` if there is no such file.
pub fn file_equals(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let mut f = File::open(path)?;
    if f.metadata()?.len() != bytes.len() as u64 {
        return Ok(false);
    }
    let mut block = vec![0u8; 64 * 1024];
    let mut at = 0;
    loop {
        let n = match f.read(&mut block) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(at == bytes.len());
        }
        match bytes.get(at..at + n) {
            Some(expected) if expected == &block[..n] => at += n,
            _ => return Ok(false),
        }
    }
}

/// Creates a new file with `mode` (fails if it exists) and writes `bytes`, fsynced.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Reads a file, refusing it (before reading) if it is larger than `max` bytes.
pub fn read_capped(path: &Path, max: usize) -> Result<Vec<u8>, ReadCappedError> {
    let f = File::open(path).map_err(ReadCappedError::Io)?;
    let len = f.metadata().map_err(ReadCappedError::Io)?.len();
    if len > max as u64 {
        return Err(ReadCappedError::TooLarge { size: len, max });
    }
    let mut buf = Vec::with_capacity(len as usize);
    // take() guards against a file that grows while it is read.
    f.take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(ReadCappedError::Io)?;
    if buf.len() > max {
        return Err(ReadCappedError::TooLarge {
            size: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

/// Why [`read_capped`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadCappedError {
    /// The file could not be read.
    #[error("{0}")]
    Io(io::Error),
    /// The file is over the cap.
    #[error("file is {size} bytes, over the {max}-byte cap")]
    TooLarge {
        /// Size seen.
        size: u64,
        /// The cap.
        max: usize,
    },
}

/// Creates a directory (and parents) with `mode` for the directories it creates.
pub fn create_dir_with_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
}

/// A file's identity: its device and inode numbers. A file renamed or swapped in under the same
/// name has another identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl FileId {
    /// The identity of the file `md` describes.
    pub fn of(md: &fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: md.dev(),
            ino: md.ino(),
        }
    }
}

/// Opens a file handed in from outside (the list inbox, `pintud --list`) so that opening can
/// neither block nor be redirected: `O_NONBLOCK` (a FIFO opens at once instead of waiting for a
/// writer), `O_CLOEXEC`, and with `expect` also `O_NOFOLLOW` (a symlink swapped in after the
/// check is refused). The opened file must be a regular file and, with `expect`, the very file
/// (device and inode) that was checked. Returns the file and its size.
pub fn open_regular(path: &Path, expect: Option<FileId>) -> Result<(File, u64), OpenRegularError> {
    use nix::libc;
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if expect.is_some() {
        flags |= libc::O_NOFOLLOW;
    }
    let f = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && expect.is_some() => {
            return Err(OpenRegularError::NotRegular("a symbolic link"))
        }
        Err(e) => return Err(OpenRegularError::Io(e)),
    };
    let md = f.metadata().map_err(OpenRegularError::Io)?;
    let ft = md.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        return Err(OpenRegularError::NotRegular(if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        }));
    }
    if let Some(expected) = expect {
        if FileId::of(&md) != expected {
            return Err(OpenRegularError::Changed);
        }
    }
    Ok((f, md.len()))
}

/// Why [`open_regular`] refused a file.
#[derive(Debug, thiserror::Error)]
pub enum OpenRegularError {
    /// The file could not be opened or examined.
    #[error("{0}")]
    Io(io::Error),
    /// What is there is not a regular file.
    #[error("not a regular file: {0}")]
    NotRegular(&'static str),
    /// Another file took the checked one's place.
    #[error("the file was replaced after it was checked")]
    Changed,
}

/// Reads `f` (whose size is `len`) up to `max` bytes, but first only its opening `head` bytes,
/// which `check_head` may refuse: garbage is turned away after a few KiB instead of after the
/// whole file is in memory.
pub fn read_capped_checked<E>(
    f: File,
    len: u64,
    max: usize,
    head: usize,
    check_head: impl FnOnce(&[u8]) -> Result<(), E>,
) -> Result<Result<Vec<u8>, E>, ReadCappedError> {
    if len > max as u64 {
        return Err(ReadCappedError::TooLarge { size: len, max });
    }
    // take() guards against a file that grows while it is read.
    let mut r = f.take(max as u64 + 1);
    let mut buf = Vec::with_capacity(head.min(len as usize));
    (&mut r)
        .take(head as u64)
        .read_to_end(&mut buf)
        .map_err(ReadCappedError::Io)?;
    if let Err(e) = check_head(&buf) {
        return Ok(Err(e));
    }
    buf.reserve_exact((len as usize).saturating_sub(buf.len()));
    r.read_to_end(&mut buf).map_err(ReadCappedError::Io)?;
    if buf.len() > max {
        return Err(ReadCappedError::TooLarge {
            size: buf.len() as u64,
            max,
        });
    }
    Ok(Ok(buf))
}

/// Removes the oldest entries of `dir` (by name: inbox archives carry a time prefix) until at
/// most `keep_files` remain and they total at most `keep_bytes`; the newest is always kept.
/// Returns how many were removed.
pub fn prune_dir(dir: &Path, keep_files: usize, keep_bytes: u64) -> io::Result<usize> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        // lstat: a symlink is removed as a link, never followed.
        let Ok(md) = entry.metadata() else { continue };
        if md.is_dir() {
            continue;
        }
        files.push((entry.file_name(), md.len()));
    }
    files.sort();
    let mut total: u64 = files.iter().map(|(_, len)| len).sum();
    let mut count = files.len();
    let mut removed = 0;
    for (name, len) in files {
        if count <= 1 || (count <= keep_files && total <= keep_bytes) {
            break;
        }
        match fs::remove_file(dir.join(&name)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        count -= 1;
        total = total.saturating_sub(len);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_regular_refuses_fifos_symlinks_and_swapped_files_without_blocking() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        // Would block forever without O_NONBLOCK (no writer).
        assert!(matches!(
            open_regular(&fifo, None),
            Err(OpenRegularError::NotRegular("a FIFO"))
        ));
        let file = dir.path().join("list");
        fs::write(&file, b"{}").expect("file");
        let id = FileId::of(&fs::symlink_metadata(&file).expect("lstat"));
        let (_, len) = open_regular(&file, Some(id)).expect("the checked file");
        assert_eq!(len, 2);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(matches!(
            open_regular(&link, Some(id)),
            Err(OpenRegularError::NotRegular("a symbolic link"))
        ));
        // Without an expected identity (`pintud --list`) a symlink is followed.
        assert!(open_regular(&link, None).is_ok());
        let other = dir.path().join("other");
        fs::write(&other, b"{}").expect("file");
        fs::rename(&other, &file).expect("swap");
        assert!(matches!(
            open_regular(&file, Some(id)),
            Err(OpenRegularError::Changed)
        ));
    }

    #[test]
    fn read_capped_checked_stops_after_the_head() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f");
        fs::write(&path, vec![b'x'; 100_000]).expect("file");
        let (f, len) = open_regular(&path, None).expect("open");
        let mut seen = 0;
        let r = read_capped_checked(f, len, 1 << 20, 16, |h: &[u8]| {
            seen = h.len();
            Err("no")
        })
        .expect("read");
        assert_eq!((r, seen), (Err("no"), 16));
        let (f, len) = open_regular(&path, None).expect("open");
        let all = read_capped_checked(f, len, 1 << 20, 16, |_| Ok::<_, ()>(()))
            .expect("read")
            .expect("checked");
        assert_eq!(all.len(), 100_000);
        let (f, len) = open_regular(&path, None).expect("open");
        assert!(matches!(
            read_capped_checked(f, len, 1000, 16, |_| Ok::<_, ()>(())),
            Err(ReadCappedError::TooLarge { .. })
        ));
    }

    #[test]
    fn prune_dir_removes_the_oldest_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("dir");
        for (name, len) in [("1-a", 10), ("2-b", 10), ("3-c", 10), ("4-d", 50)] {
            fs::write(dir.path().join(name), vec![0; len]).expect("file");
        }
        let names = || {
            let mut n: Vec<String> = fs::read_dir(dir.path())
                .expect("dir")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        assert_eq!(prune_dir(dir.path(), 3, 1000).expect("prune"), 1);
        assert_eq!(names(), ["2-b", "3-c", "4-d"]);
        assert_eq!(prune_dir(dir.path(), 3, 60).expect("prune"), 1);
        assert_eq!(names(), ["3-c", "4-d"]);
        // The newest stays even when it alone is over the byte bound.
        assert_eq!(prune_dir(dir.path(), 3, 1).expect("prune"), 1);
        assert_eq!(names(), ["4-d"]);
    }
}
