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
