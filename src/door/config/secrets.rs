//! Secret files (card key, MQTT password, TLS client key), read from systemd credentials when
//! pintud runs under systemd and from their paths otherwise.

use std::path::{Path, PathBuf};

/// The environment variable systemd sets to the service's credentials directory
/// (`LoadCredential=`).
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Reads a secret file (card key, MQTT password, TLS client key). Under systemd the files are
/// root-only and the unit passes each as a credential named after the file
/// (`LoadCredential=card.key:/etc/pintu/card.key`): when `$CREDENTIALS_DIRECTORY` holds a
/// non-empty credential of the path's file name, that is read instead of the path. Elsewhere
/// (a by-hand run, `--check-config` as root) the path is read. docs/install.md, "Secrets".
pub fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let dir = std::env::var_os(CREDENTIALS_DIRECTORY).map(PathBuf::from);
    read_secret_in(path, dir.as_deref())
}

/// [`read_secret`] with the credentials directory given (`None`: not under systemd).
pub fn read_secret_in(path: &Path, credentials: Option<&Path>) -> Result<Vec<u8>, String> {
    let dir = credentials.filter(|d| !d.as_os_str().is_empty());
    let (Some(dir), Some(name)) = (dir, path.file_name()) else {
        return std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    };
    let credential = dir.join(name);
    match std::fs::read(&credential) {
        Ok(bytes) if !bytes.is_empty() => return Ok(bytes),
        // An empty credential holds no secret: the path decides (and its error says why).
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot read credential {}: {e}",
                credential.display()
            ))
        }
    }
    std::fs::read(path).map_err(|e| {
        let name = name.to_string_lossy();
        format!(
            "cannot read {}: {e}; under systemd no credential {name:?} was loaded either \
             ({} has none): keep the file root:root 0600 and give the unit \
             LoadCredential={name}:{} (docs/install.md, \"Secrets\")",
            path.display(),
            dir.display(),
            path.display()
        )
    })
}
