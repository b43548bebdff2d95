//! The approver's key vault, without the database: how an ed25519 secret key is sealed under a
//! passphrase and opened again, the passphrase policy, and key ids.
//!
//! Sealing: a 32-byte key is derived from the passphrase with Argon2id (its parameters and a
//! random salt are recorded next to the ciphertext, so they can be raised later: a key sealed
//! with weaker parameters is sealed again at its next unlock); the secret is sealed with
//! XChaCha20-Poly1305, the associated data binding it to the account, the key id and the public
//! key. The result is wrapped once more with the service key ([`ServiceKey::seal`]), so a copy of
//! the database alone does not even allow guessing passphrases offline, and a damaged record is
//! told apart from a wrong passphrase.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secret::ServiceKey;

/// The sealed record's version.
const SEALED_VERSION: u32 = 1;
/// Prefix of the associated data (and the service-key wrapping context).
const AAD_PREFIX: &str = "pintu-office approver key v1";
/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// Longest passphrase accepted (Argon2 takes any length; this bounds the work an input costs).
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// RFC 9106's second recommended choice (64 MiB, 3 passes), with one lane: about a quarter
    /// of a second here, once per signature.
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Whether these are below `wanted` in any dimension (then the key is sealed again).
    pub fn weaker_than(&self, wanted: &KdfParams) -> bool {
        self.m_kib < wanted.m_kib || self.t < wanted.t || self.p < wanted.p
    }
}

/// The recorded derivation (`kdf` in the JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    /// Always `argon2id`.
    alg: String,
    /// Argon2 version (19 = 0x13).
    version: u32,
    m_kib: u32,
    t: u32,
    p: u32,
    /// Random, 16 bytes, base64.
    salt: String,
}

/// What `approver_keys.sealed_secret` holds (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    v: u32,
    kdf: Kdf,
    /// Always `xchacha20poly1305`.
    aead: String,
    /// 24 bytes, base64.
    nonce: String,
    /// Always `service-key`: `ciphertext` is wrapped with the service key.
    wrap: String,
    /// The AEAD ciphertext (secret and tag), wrapped with the service key.
    ciphertext: String,
}

/// Why a sealed key did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The passphrase is not the one it was sealed with.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The record was edited, belongs to another account or key, or was sealed by another
    /// service key.
    #[error("the sealed key is damaged or does not belong to this account and key")]
    Damaged,
}

/// What binds a sealed key to its place: the account, the key id and the public key.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// Account id.
    pub account_id: &'a str,
    /// Key id.
    pub key_id: &'a str,
    /// Public key, base64.
    pub public_key: &'a str,
}

impl Binding<'_> {
    fn aad(&self) -> String {
        format!(
            "{AAD_PREFIX}\0{}\0{}\0{}",
            self.account_id, self.key_id, self.public_key
        )
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // A failing OS random source leaves no safe way on; it is not an input error.
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

fn derive(
    passphrase: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, OpenError> {
    let params =
        Params::new(params.m_kib, params.t, params.p, Some(32)).map_err(|_| OpenError::Damaged)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
        .map_err(|_| OpenError::Damaged)?;
    Ok(key)
}

/// A new random signing key.
pub fn generate() -> SigningKey {
    let secret = Zeroizing::new(random::<32>());
    SigningKey::from_bytes(&secret)
}

/// The public half of `key`, base64 (a `.pub` file's `public_key`).
pub fn public_b64(key: &SigningKey) -> String {
    B64.encode(key.verifying_key().to_bytes())
}

/// Seals `key` under `passphrase` with `params`, bound to `binding`: the JSON to store.
/// Slow on purpose (Argon2id): call it off the async runtime's threads.
pub fn seal(
    service: &ServiceKey,
    key: &SigningKey,
    passphrase: &str,
    params: KdfParams,
    binding: Binding<'_>,
) -> String {
    let salt = random::<16>();
    let nonce = random::<24>();
    let kek = derive(passphrase, &salt, params).expect("checked Argon2 parameters");
    let aad = binding.aad();
    let secret = Zeroizing::new(key.to_bytes());
    let inner = XChaCha20Poly1305::new((&*kek).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &secret[..],
                aad: aad.as_bytes(),
            },
        )
        .expect("XChaCha20-Poly1305 encrypts 32 bytes");
    let sealed = Sealed {
        v: SEALED_VERSION,
        kdf: Kdf {
            alg: "argon2id".into(),
            version: 0x13,
            m_kib: params.m_kib,
            t: params.t,
            p: params.p,
            salt: B64.encode(salt),
        },
        aead: "xchacha20poly1305".into(),
        nonce: B64.encode(nonce),
        wrap: "service-key".into(),
        ciphertext: service.seal(&aad, &inner),
    };
    serde_json::to_string(&sealed).expect("the sealed record serializes")
}

/// The parameters `sealed` was made with.
pub fn params_of(sealed: &str) -> Result<KdfParams, OpenError> {
    let s: Sealed = serde_json::from_str(sealed).map_err(|_| OpenError::Damaged)?;
    Ok(KdfParams {
        m_kib: s.kdf.m_kib,
        t: s.kdf.t,
        p: s.kdf.p,
    })
}

/// Opens what [`seal`] made with the same passphrase and binding. The key returned zeroizes
/// itself when dropped. Slow on purpose (Argon2id).
pub fn open(
    service: &ServiceKey,
    sealed: &str,
    passphrase: &str,
    binding: Binding<'_>,
) -> Result<SigningKey, OpenError> {
    let s: Sealed = serde_json::from_str(sealed).map_err(|_| OpenError::Damaged)?;
    if s.v != SEALED_VERSION
        || s.kdf.alg != "argon2id"
        || s.kdf.version != 0x13
        || s.aead != "xchacha20poly1305"
        || s.wrap != "service-key"
    {
        return Err(OpenError::Damaged);
    }
    let aad = binding.aad();
    // The service key's layer first: if it does not open, the record was changed (or moved to
    // another account or key); a passphrase has nothing to do with it.
    let inner = service
        .open(&aad, &s.ciphertext)
        .map_err(|_| OpenError::Damaged)?;
    let salt = B64.decode(&s.kdf.salt).map_err(|_| OpenError::Damaged)?;
    let nonce = B64.decode(&s.nonce).map_err(|_| OpenError::Damaged)?;
    if nonce.len() != 24 {
        return Err(OpenError::Damaged);
    }
    let params = KdfParams {
        m_kib: s.kdf.m_kib,
        t: s.kdf.t,
        p: s.kdf.p,
    };
    let kek = derive(passphrase, &salt, params)?;
    let secret = Zeroizing::new(
        XChaCha20Poly1305::new((&*kek).into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &inner,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| OpenError::WrongPassphrase)?,
    );
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
        secret
            .as_slice()
            .try_into()
            .map_err(|_| OpenError::Damaged)?,
    );
    let key = SigningKey::from_bytes(&bytes);
    if public_b64(&key) != binding.public_key {
        return Err(OpenError::Damaged);
    }
    Ok(key)
}

/// Why a passphrase is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassphraseProblem {
    /// Too short.
    #[error("the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")]
    TooShort,
    /// Too long.
    #[error("the passphrase must be at most {MAX_PASSPHRASE_BYTES} bytes")]
    TooLong,
    /// It contains the username, NIP or name.
    #[error("the passphrase must not contain the username, NIP or name")]
    Personal,
    /// One character repeated, or too few different characters.
    #[error("the passphrase must have at least 5 different characters")]
    Repetitive,
    /// The same as the login password.
    #[error("the passphrase must differ from the login password")]
    SameAsPassword,
}

/// The account facts a passphrase is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Personal<'a> {
    /// Username.
    pub username: &'a str,
    /// NIP, if any.
    pub nip: Option<&'a str>,
    /// Display name.
    pub display_name: &'a str,
}

/// Checks `passphrase` against the policy (length, not personal, not repetitive). The check
/// against the login password is [`same_as_password`].
pub fn check_passphrase(passphrase: &str, who: Personal<'_>) -> Result<(), PassphraseProblem> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(PassphraseProblem::TooShort);
    }
    if passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(PassphraseProblem::TooLong);
    }
    let lower = passphrase.to_lowercase();
    let personal = [Some(who.username), who.nip]
        .into_iter()
        .flatten()
        .chain(who.display_name.split_whitespace())
        .map(str::to_lowercase)
        // Short name parts ("S.", "Hj") would refuse too much.
        .filter(|part| part.chars().count() >= 4);
    for part in personal {
        if lower.contains(&part) {
            return Err(PassphraseProblem::Personal);
        }
    }
    let mut distinct: Vec<char> = passphrase.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err(PassphraseProblem::Repetitive);
    }
    Ok(())
}

/// Whether `passphrase` is the login password whose PHC string is `password_hash` (a hash
/// that does not parse counts as different).
pub fn same_as_password(passphrase: &str, password_hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(password_hash) {
        Ok(hash) => Argon2::default()
            .verify_password(passphrase.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// The key id of an account's key made in `year`: the username made safe for a list key id
/// (lower case; anything but letters, digits, `-`, `_`, `.` becomes `-`), then the year, then
/// `-N` from the second key of that year on (`n` = 1, 2, …). Always a valid
/// [`pintu::core::list::is_identifier`].
pub fn key_id(username: &str, year: i16, n: u32) -> String {
    let mut base: String = username
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let base_trimmed = base.trim_matches('-').to_string();
    base = if base_trimmed.is_empty() {
        "approver".into()
    } else {
        base_trimmed
    };
    // Room for "-YYYY-NNNN" within the 64-character limit.
    base.truncate(48);
    if n <= 1 {
        format!("{base}-{year}")
    } else {
        format!("{base}-{year}-{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn binding<'a>(account: &'a str, id: &'a str, public: &'a str) -> Binding<'a> {
        Binding {
            account_id: account,
            key_id: id,
            public_key: public,
        }
    }

    #[test]
    fn a_sealed_key_opens_with_its_passphrase_and_binding_only() {
        let service = ServiceKey::from_bytes(&[1; 32]);
        let key = generate();
        let public = public_b64(&key);
        let b = binding("acc-1", "budi-2026", &public);
        let sealed = seal(&service, &key, "correct horse battery", FAST, b);
        assert_eq!(params_of(&sealed).unwrap(), FAST);
        let opened = open(&service, &sealed, "correct horse battery", b).unwrap();
        assert_eq!(opened.to_bytes(), key.to_bytes());
        assert_eq!(
            open(&service, &sealed, "correct horse batterY", b).unwrap_err(),
            OpenError::WrongPassphrase
        );
        // Moved to another account or key id: damaged, whatever the passphrase.
        for other in [
            binding("acc-2", "budi-2026", &public),
            binding("acc-1", "budi-2027", &public),
        ] {
            assert_eq!(
                open(&service, &sealed, "correct horse battery", other).unwrap_err(),
                OpenError::Damaged
            );
        }
        let other_service = ServiceKey::from_bytes(&[2; 32]);
        assert_eq!(
            open(&other_service, &sealed, "correct horse battery", b).unwrap_err(),
            OpenError::Damaged
        );
        assert!(!sealed.contains(&B64.encode(key.to_bytes())));
    }

    #[test]
    fn every_edit_of_the_record_is_damage_not_a_wrong_passphrase() {
        let service = ServiceKey::from_bytes(&[1; 32]);
        let key = generate();
        let public = public_b64(&key);
        let b = binding("a", "k", &public);
        let sealed = seal(&service, &key, "correct horse battery", FAST, b);
        let mut record: serde_json::Value = serde_json::from_str(&sealed).unwrap();
        let ct = record["ciphertext"].as_str().unwrap().to_string();
        let mut raw = B64.decode(&ct).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        record["ciphertext"] = B64.encode(raw).into();
        assert_eq!(
            open(&service, &record.to_string(), "correct horse battery", b).unwrap_err(),
            OpenError::Damaged
        );
        assert_eq!(
            open(&service, "{}", "correct horse battery", b).unwrap_err(),
            OpenError::Damaged
        );
    }

    #[test]
    fn passphrase_policy() {
        let who = Personal {
            username: "budi",
            nip: Some("199001012015011001"),
            display_name: "Budi Santoso",
        };
        assert_eq!(
            check_passphrase("short", who),
            Err(PassphraseProblem::TooShort)
        );
        assert_eq!(
            check_passphrase("Budi-the-approver", who),
            Err(PassphraseProblem::Personal)
        );
        assert_eq!(
            check_passphrase("my santoso key!!", who),
            Err(PassphraseProblem::Personal)
        );
        assert_eq!(
            check_passphrase("x199001012015011001", who),
            Err(PassphraseProblem::Personal)
        );
        assert_eq!(
            check_passphrase("aaaaaaaaaaaaaaaa", who),
            Err(PassphraseProblem::Repetitive)
        );
        assert_eq!(
            check_passphrase(&"long enough ".repeat(100), who),
            Err(PassphraseProblem::TooLong)
        );
        assert_eq!(check_passphrase("pohon mangga di halaman", who), Ok(()));
    }

    #[test]
    fn the_login_password_is_not_a_passphrase() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let hash = Argon2::default()
            .hash_password(b"login password 1", &salt)
            .unwrap()
            .to_string();
        assert!(same_as_password("login password 1", &hash));
        assert!(!same_as_password("another phrase", &hash));
        assert!(!same_as_password("login password 1", "not a phc string"));
    }

    #[test]
    fn key_ids_are_valid_list_key_ids() {
        assert_eq!(key_id("budi", 2026, 1), "budi-2026");
        assert_eq!(key_id("Budi Santoso", 2026, 2), "budi-santoso-2026-2");
        assert_eq!(key_id("  ", 2026, 1), "approver-2026");
        for name in ["x".repeat(200), "ä ö ü".into(), "a/b+c".into()] {
            let id = key_id(&name, 2026, 9999);
            assert!(pintu::core::list::is_identifier(&id), "{id}");
        }
    }
}
