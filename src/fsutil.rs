//! Crash-safe file writes: a reader (or a restart after power loss) sees the old file or the new
//! one, never a torn mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename, fsync the
/// directory (so the rename itself survives a power cut).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
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
