//! Card identifiers: the raw UID a reader sees, and the keyed hash the list and store carry.
//!
//! The raw UID never leaves the reader layer: lists, the store and events carry
//! `HMAC-SHA256(site card key, UID bytes)`, so a stolen list or SD card does not hand out
//! cloneable UIDs. Events and logs show only a short prefix of that hash ([`CardHash::masked`]).

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Longest UID accepted (ISO 14443 triple-size UIDs are 10 bytes; leave room for other readers).
pub const MAX_UID_LEN: usize = 16;

/// A card's raw UID as read from a reader.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Uid(Vec<u8>);

/// Why a UID string was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    /// No hex digits at all.
    #[error("empty card UID")]
    Empty,
    /// A character that is neither a hex digit nor a separator.
    #[error("card UID has an invalid character {0:?} (expected hex digits, optionally separated by ':' '-' or spaces)")]
    InvalidChar(char),
    /// An odd number of hex digits.
    #[error("card UID has an odd number of hex digits")]
    OddLength,
    /// More than [`MAX_UID_LEN`] bytes.
    #[error("card UID is {0} bytes long; at most {MAX_UID_LEN} are accepted")]
    TooLong(usize),
}

impl Uid {
    /// Wraps raw UID bytes; fails when empty or longer than [`MAX_UID_LEN`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, UidError> {
        match bytes.len() {
            0 => Err(UidError::Empty),
            n if n > MAX_UID_LEN => Err(UidError::TooLong(n)),
            _ => Ok(Uid(bytes.to_vec())),
        }
    }

    /// The UID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Upper-case hex without separators, the form the register uses.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(&self.0)
    }
}

impl FromStr for Uid {
    type Err = UidError;

    /// Parses hex such as `04A1B2C3D4E5F6`, `04:a1:b2:c3` or `04 A1 B2 C3`.
    fn from_str(s: &str) -> Result<Self, UidError> {
        let mut digits = String::with_capacity(s.len());
        for c in s.trim().chars() {
            match c {
                ':' | '-' | ' ' => {}
                c if c.is_ascii_hexdigit() => digits.push(c),
                c => return Err(UidError::InvalidChar(c)),
            }
        }
        if digits.is_empty() {
            return Err(UidError::Empty);
        }
        if digits.len() % 2 != 0 {
            return Err(UidError::OddLength);
        }
        let bytes = hex::decode(&digits).map_err(|_| UidError::OddLength)?;
        Uid::from_bytes(&bytes)
    }
}

impl fmt::Debug for Uid {
    // Debug output ends up in logs: never print the full UID there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({} bytes)", self.0.len())
    }
}

/// The site's secret key for hashing UIDs (32 bytes), shared by `pintuctl` and the doors.
#[derive(Clone)]
pub struct CardKey(Zeroizing<[u8; 32]>);

impl CardKey {
    /// Wraps 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        CardKey(Zeroizing::new(bytes))
    }

    /// Parses the key file form: 64 hex digits, surrounding white space ignored.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = hex::decode(text).map_err(|e| format!("card key is not hex: {e}"))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|v: Vec<u8>| {
            format!(
                "card key must be 32 bytes (64 hex digits), found {}",
                v.len()
            )
        })?;
        Ok(CardKey::from_bytes(arr))
    }

    /// The key file form (64 lower-case hex digits).
    pub fn to_hex(&self) -> String {
        hex::encode(*self.0)
    }

    /// The keyed hash of a UID.
    pub fn hash(&self, uid: &Uid) -> CardHash {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&*self.0).expect("HMAC accepts any key length");
        mac.update(uid.as_bytes());
        CardHash(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for CardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardKey(<secret>)")
    }
}

/// `HMAC-SHA256(card key, UID)`: how lists, the store and events identify a card.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardHash(pub [u8; 32]);

impl CardHash {
    /// Short, non-reversible form for events and logs: `c:` and the first 8 hex digits.
    pub fn masked(&self) -> String {
        format!("c:{}", hex::encode(&self.0[..4]))
    }

    /// Full lower-case hex (64 digits), the list's wire form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the 64-hex-digit wire form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(CardHash(out))
    }
}

impl fmt::Debug for CardHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for CardHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl serde::Serialize for CardHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for CardHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CardHash::from_hex(&s).ok_or_else(|| {
            serde::de::Error::custom("card must be 64 hex digits (HMAC-SHA256 of the UID)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_parses_common_forms() {
        let a: Uid = "04A1B2C3D4E5F6".parse().unwrap();
        let b: Uid = "04:a1:b2:c3:d4:e5:f6".parse().unwrap();
        let c: Uid = " 04 A1 B2 C3 D4 E5 F6 ".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_hex(), "04A1B2C3D4E5F6");
    }

    #[test]
    fn uid_rejects_bad_input() {
        assert_eq!("".parse::<Uid>(), Err(UidError::Empty));
        assert_eq!("0g".parse::<Uid>(), Err(UidError::InvalidChar('g')));
        assert_eq!("123".parse::<Uid>(), Err(UidError::OddLength));
        assert_eq!("00".repeat(17).parse::<Uid>(), Err(UidError::TooLong(17)));
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let k1 = CardKey::from_bytes([1; 32]);
        let k2 = CardKey::from_bytes([2; 32]);
        let uid: Uid = "04A1B2C3".parse().unwrap();
        assert_eq!(k1.hash(&uid), k1.hash(&uid));
        assert_ne!(k1.hash(&uid), k2.hash(&uid));
        let h = k1.hash(&uid);
        assert_eq!(CardHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(h.masked().len(), 10);
        assert!(!format!("{uid:?}").contains("A1"));
    }

    #[test]
    fn card_key_hex_round_trip_and_errors() {
        let k = CardKey::from_bytes([7; 32]);
        let k2 = CardKey::from_hex(&format!("{}\n", k.to_hex())).unwrap();
        assert_eq!(k.to_hex(), k2.to_hex());
        assert!(CardKey::from_hex("abcd").unwrap_err().contains("32 bytes"));
        assert!(CardKey::from_hex("zz").unwrap_err().contains("not hex"));
    }
}
