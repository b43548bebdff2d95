//! Key files for the operator side: ed25519 signing keys (secret, office only), their public
//! halves (copied into door configs), and the site's card key.
//!
//! Formats are small TOML files so an operator can read what a file is:
//! - `ID.key` (mode 0600): `key_id`, `secret_key` (base64, 32 bytes);
//! - `ID.pub`: `key_id`, `public_key` (base64, 32 bytes) — the same two lines a door's
//!   `[[trust.keys]]` takes as `id` / `public_key`;
//! - card key: 64 hex digits (mode 0600; the doors need a copy, mode 0640 root:pintu).

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::core::card::CardKey;
use crate::core::list::{decode_public_key, is_identifier};
use crate::util::files;

/// Key-file failures.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file's content is wrong.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key id is not usable.
    #[error("key id {0:?} is not valid: use letters, digits, '-', '_' or '.'")]
    BadId(String),
    /// No randomness available.
    #[error("cannot get random bytes from the OS: {0}")]
    Random(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    key_id: String,
    secret_key: String,
}

/// A public key file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyFile {
    /// Key id.
    pub key_id: String,
    /// Base64 ed25519 public key.
    pub public_key: String,
}

fn random32() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Creates `DIR/ID.key` (0600, refusing to overwrite) and `DIR/ID.pub`; returns the public key.
pub fn keygen(dir: &Path, id: &str) -> Result<(PathBuf, PathBuf, PublicKeyFile), KeyError> {
    if !is_identifier(id) {
        return Err(KeyError::BadId(id.to_string()));
    }
    let secret = random32()?;
    let key = SigningKey::from_bytes(&secret);
    let secret_path = dir.join(format!("{id}.key"));
    let public_path = dir.join(format!("{id}.pub"));
    let secret_text = Zeroizing::new(format!(
        "# Pintu list-signing key. SECRET: keep it at the office, never on a door.\nkey_id = \"{id}\"\nsecret_key = \"{}\"\n",
        B64.encode(*secret)
    ));
    files::write_new(&secret_path, secret_text.as_bytes(), 0o600).map_err(|source| {
        KeyError::Io {
            path: secret_path.clone(),
            source,
        }
    })?;
    let public = PublicKeyFile {
        key_id: id.to_string(),
        public_key: B64.encode(key.verifying_key().to_bytes()),
    };
    let public_text = format!(
        "# Pintu list-signing public key: copy into each door's config as [[trust.keys]] id / public_key.\nkey_id = \"{}\"\npublic_key = \"{}\"\n",
        public.key_id, public.public_key
    );
    std::fs::write(&public_path, public_text).map_err(|source| KeyError::Io {
        path: public_path.clone(),
        source,
    })?;
    Ok((secret_path, public_path, public))
}

/// Loads a signing key file; returns its id and key.
pub fn load_signing_key(path: &Path) -> Result<(String, SigningKey), KeyError> {
    let invalid = |message: String| KeyError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?,
    );
    let file: SecretFile = toml::from_str(&text)
        .map_err(|e| invalid(format!("not a Pintu signing key file: {}", e.message())))?;
    let raw = Zeroizing::new(
        B64.decode(file.secret_key.trim())
            .map_err(|_| invalid("secret_key is not base64".into()))?,
    );
    let bytes: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| invalid("secret_key must be 32 bytes".into()))?;
    Ok((file.key_id, SigningKey::from_bytes(&bytes)))
}

/// Loads a public key file.
pub fn load_public_key(path: &Path) -> Result<(String, VerifyingKey), KeyError> {
    let invalid = |message: String| KeyError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: PublicKeyFile = toml::from_str(&text)
        .map_err(|e| invalid(format!("not a Pintu public key file: {}", e.message())))?;
    let key = decode_public_key(&file.public_key).map_err(invalid)?;
    Ok((file.key_id, key))
}

/// Creates a new card key file (0600, refusing to overwrite).
pub fn card_keygen(path: &Path) -> Result<CardKey, KeyError> {
    let key = CardKey::from_bytes(*random32()?);
    let text = Zeroizing::new(format!("{}\n", key.to_hex()));
    files::write_new(path, text.as_bytes(), 0o600).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(key)
}

/// Loads a card key file.
pub fn load_card_key(path: &Path) -> Result<CardKey, KeyError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?,
    );
    CardKey::from_hex(&text).map_err(|message| KeyError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keygen_round_trip_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let (sec, public_path, public) = keygen(dir.path(), "kabid-2026").unwrap();
        assert_eq!(
            std::fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (id, key) = load_signing_key(&sec).unwrap();
        assert_eq!(id, "kabid-2026");
        let (pid, pkey) = load_public_key(&public_path).unwrap();
        assert_eq!(pid, "kabid-2026");
        assert_eq!(pkey, key.verifying_key());
        assert_eq!(public.public_key, B64.encode(pkey.to_bytes()));
        // Never overwrites a key.
        assert!(matches!(
            keygen(dir.path(), "kabid-2026"),
            Err(KeyError::Io { .. })
        ));
        assert!(matches!(
            keygen(dir.path(), "bad id"),
            Err(KeyError::BadId(_))
        ));
    }

    #[test]
    fn card_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.key");
        let k = card_keygen(&path).unwrap();
        assert_eq!(load_card_key(&path).unwrap().to_hex(), k.to_hex());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(card_keygen(&path).is_err());
    }
}
