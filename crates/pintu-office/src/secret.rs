//! The service's secret key: 32 random bytes in a root-only file (hex). Two keys are derived
//! from it, each for one purpose: one seals data at rest (card UIDs, TOTP secrets) with
//! XChaCha20-Poly1305, one keys the audit chain's HMAC.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// A problem with the secret key file or with sealed data.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read or written.
    #[error("secret key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file's content is not 64 hex digits.
    #[error("secret key file {0}: expected 64 hex digits (32 bytes); create one with `pintu-office init`")]
    Format(PathBuf),
    /// Group or others may read the file.
    #[error("secret key file {path} has mode {mode:04o}: group and others must have no access (chmod 0600)")]
    Mode {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file exists already (init refuses to overwrite it).
    #[error(
        "secret key file {0} exists already; it is not replaced (every sealed value depends on it)"
    )]
    Exists(PathBuf),
    /// Sealed data did not open: wrong key, or edited.
    #[error("sealed value does not open with this service's key (edited, or another site's key)")]
    Open,
}

/// The derived keys.
#[derive(Clone)]
pub struct ServiceKey {
    seal: Zeroizing<[u8; 32]>,
    audit: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKey(..)")
    }
}

impl ServiceKey {
    /// Reads the key: from systemd's credentials directory when the service runs under
    /// `LoadCredential=` (the credential named after the file's name), else the file itself.
    /// Refuses a file that group or others may read.
    pub fn load(path: &Path) -> Result<ServiceKey, SecretError> {
        if let (Some(dir), Some(name)) =
            (std::env::var_os("CREDENTIALS_DIRECTORY"), path.file_name())
        {
            let credential = Path::new(&dir).join(name);
            if credential.exists() {
                return Self::load_file(&credential);
            }
        }
        Self::load_file(path)
    }

    fn load_file(path: &Path) -> Result<ServiceKey, SecretError> {
        let io = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Mode {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), &mut bytes[..])
            .map_err(|_| SecretError::Format(path.to_path_buf()))?;
        Ok(ServiceKey::from_bytes(&bytes))
    }

    /// Writes a new random key to `path` (mode 0600); refuses to replace an existing file.
    pub fn create(path: &Path) -> Result<ServiceKey, SecretError> {
        let io = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..]).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    SecretError::Exists(path.to_path_buf())
                } else {
                    io(e)
                }
            })?;
        let mut text = hex::encode(&bytes[..]);
        text.push('\n');
        let written = file
            .write_all(text.as_bytes())
            .and_then(|_| file.sync_all());
        text.zeroize();
        written.map_err(io)?;
        Ok(ServiceKey::from_bytes(&bytes))
    }

    /// The keys derived from 32 secret bytes (also for tests).
    pub fn from_bytes(secret: &[u8; 32]) -> ServiceKey {
        let derive = |label: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
            mac.update(label);
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(&mac.finalize().into_bytes());
            out
        };
        ServiceKey {
            seal: derive(b"pintu-office seal v1"),
            audit: derive(b"pintu-office audit v1"),
        }
    }

    /// Seals `plain` for storage; `context` (e.g. `card-uid`) binds it to its use, so a value
    /// copied into another column does not open. Output: base64 of nonce ‖ ciphertext.
    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let cipher = XChaCha20Poly1305::new((&*self.seal).into());
        let mut nonce = [0u8; 24];
        // A failing OS random source leaves no safe way on; it is not an input error.
        getrandom::fill(&mut nonce).expect("the OS random source works");
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length we store");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// Opens what [`seal`](Self::seal) made with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| SecretError::Open)?;
        if bytes.len() < 24 + 16 {
            return Err(SecretError::Open);
        }
        let (nonce, body) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new((&*self.seal).into());
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SecretError::Open)
    }

    /// A fresh HMAC-SHA256 keyed for the audit chain.
    pub fn audit_mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.audit[..]).expect("any key length")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_context_and_key() {
        let key = ServiceKey::from_bytes(&[7; 32]);
        let sealed = key.seal("card-uid", b"04A1B2C3");
        assert_eq!(&key.open("card-uid", &sealed).unwrap()[..], b"04A1B2C3");
        assert!(matches!(key.open("totp", &sealed), Err(SecretError::Open)));
        let other = ServiceKey::from_bytes(&[8; 32]);
        assert!(matches!(
            other.open("card-uid", &sealed),
            Err(SecretError::Open)
        ));
        assert!(matches!(
            key.open("card-uid", "AAAA"),
            Err(SecretError::Open)
        ));
        assert_ne!(
            sealed,
            key.seal("card-uid", b"04A1B2C3"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn the_key_file_is_created_root_only_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let made = ServiceKey::create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = ServiceKey::load(&path).unwrap();
        assert_eq!(
            &loaded.open("x", &made.seal("x", b"same")).unwrap()[..],
            b"same"
        );
        assert!(matches!(
            ServiceKey::create(&path),
            Err(SecretError::Exists(_))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ServiceKey::load(&path),
            Err(SecretError::Mode { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not hex\n").unwrap();
        assert!(matches!(
            ServiceKey::load(&path),
            Err(SecretError::Format(_))
        ));
    }
}
