//! The signed access list, format v1: its wire form, signing, and verification on the door.
//!
//! A list travels as an **envelope** (JSON) holding the exact **payload** bytes (base64) and one or
//! more ed25519 signatures, each naming its key id. Signatures cover
//! [`SIGNING_CONTEXT`] followed by the payload bytes, and the payload is parsed only after enough
//! of them verified: nothing an attacker wrote is interpreted before the signatures are checked.
//! `docs/access-list.md` is the reference for the format; [`verify`] is the door's gate.

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::card::CardHash;
use super::schedule::Window;
use super::text::{bounded, bounded_list, quoted, TEXT_MAX};
use super::visit::{check_visits, Visit};

/// The envelope's `format` string.
pub const ENVELOPE_FORMAT: &str = "pintu.signed-list.v1";
/// The payload's `format` number.
pub const PAYLOAD_FORMAT: u32 = 1;
/// Domain separation: signatures over lists can never be replayed as signatures over anything else.
pub const SIGNING_CONTEXT: &[u8] = b"pintu signed list v1\0";
/// The `doors` value meaning "every door of the site".
pub const ALL_DOORS: &str = "*";

/// What a cardholder is at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Staff with their own access.
    Staff,
    /// Staff allowed to escort visitors.
    Escort,
    /// A visitor badge, bound to an approved visit window.
    Visitor,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Escort => "escort",
            Role::Visitor => "visitor",
        }
    }
}

/// One card's grant in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `HMAC-SHA256(card key, UID)`, 64 hex digits.
    pub card: CardHash,
    /// Holder id from the register (stable, no spaces needed).
    pub holder: String,
    /// Display name for logs and reports.
    pub name: String,
    /// Staff, escort or visitor.
    pub role: Role,
    /// First moment the card opens.
    pub valid_from: Timestamp,
    /// First moment the card no longer opens.
    pub valid_until: Timestamp,
    /// Doors this entry opens; absent means every door the list applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doors: Option<Vec<String>>,
    /// Weekly windows in the list's time zone; empty means at any time of the week.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<Window>,
    /// The approved request this grant comes from (SOP: request form reference).
    pub request_ref: String,
    /// Who approved the request.
    pub approver: String,
}

impl Entry {
    /// Whether this entry names `door` (or names no doors, meaning all).
    pub fn opens_door(&self, door: &str) -> bool {
        match &self.doors {
            None => true,
            Some(doors) => doors.iter().any(|d| d == door || d == ALL_DOORS),
        }
    }
}

/// The signed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Always [`PAYLOAD_FORMAT`].
    pub format: u32,
    /// Site id; a door accepts only lists for its own site.
    pub site: String,
    /// Door ids the list applies to (`"*"` for all doors of the site).
    pub doors: Vec<String>,
    /// Monotonic version; a door accepts only versions above the one it holds.
    pub version: u64,
    /// When the list was signed.
    pub issued_at: Timestamp,
    /// After this the list is stale: doors refuse it and deny with `list_expired`.
    pub expires_at: Timestamp,
    /// IANA time zone for schedules, e.g. `Asia/Jakarta`.
    pub time_zone: String,
    /// The grants.
    pub entries: Vec<Entry>,
}

/// The signed-list file as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Always [`ENVELOPE_FORMAT`].
    pub format: String,
    /// The payload bytes, standard base64.
    pub payload: String,
    /// One signature per signing key.
    pub signatures: Vec<SignatureEntry>,
}

/// One signature in an envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEntry {
    /// Which trusted key made it.
    pub key_id: String,
    /// 64-byte ed25519 signature, standard base64.
    pub signature: String,
}

/// A public key the door trusts, with the id signatures name it by.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// Key id.
    pub id: String,
    /// The ed25519 public key.
    pub key: VerifyingKey,
}

/// What a list must satisfy to be accepted.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    /// Trusted keys (several during a rotation).
    pub keys: Vec<TrustedKey>,
    /// How many distinct trusted keys must have signed.
    pub threshold: usize,
    /// Required site, if checked.
    pub site: Option<String>,
    /// Door that must be covered by the list, if checked.
    pub door: Option<String>,
    /// Largest envelope accepted, in bytes.
    pub max_bytes: usize,
}

/// The list a door currently holds, for rollback and replay checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Highest version ever accepted.
    pub version: u64,
    /// SHA-256 of that version's payload bytes, when known.
    pub payload_digest: Option<[u8; 32]>,
}

/// Why a list was refused. The door keeps its current list in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Larger than the configured cap (checked before parsing anything).
    #[error("list is {size} bytes, over the {max}-byte cap")]
    Oversize {
        /// Size seen (at least).
        size: usize,
        /// The cap.
        max: usize,
    },
    /// Not a well-formed envelope or payload.
    #[error("malformed list: {}", bounded(.0, TEXT_MAX))]
    Malformed(String),
    /// A format this door does not know.
    #[error("unknown list format {}", bounded(.0, TEXT_MAX))]
    UnknownFormat(String),
    /// No signatures at all.
    #[error("list carries no signature")]
    MissingSignature,
    /// A signature names a key the door does not trust.
    #[error("list is signed by unknown key {}", quoted(.0))]
    UnknownKey(String),
    /// A signature does not verify.
    #[error("signature by key {} is invalid", quoted(.0))]
    BadSignature(String),
    /// Too few distinct trusted keys signed.
    #[error("list has {valid} valid signature(s) from distinct trusted keys; {needed} needed")]
    ThresholdNotMet {
        /// Distinct valid keys.
        valid: usize,
        /// Threshold.
        needed: usize,
    },
    /// The list is for another site.
    #[error(
        "list is for site {}, this door belongs to {}",
        quoted(list),
        quoted(expected)
    )]
    WrongSite {
        /// Site named by the list.
        list: String,
        /// Site of this door.
        expected: String,
    },
    /// The list does not name this door.
    #[error(
        "list applies to doors {}, not to {}",
        bounded_list(doors),
        quoted(door)
    )]
    WrongDoor {
        /// This door.
        door: String,
        /// Doors named by the list.
        doors: Vec<String>,
    },
    /// The list is past its `expires_at`.
    #[error("list expired at {expires_at}")]
    Expired {
        /// Its expiry.
        expires_at: Timestamp,
    },
    /// Older than what the door holds.
    #[error("rollback: list version {version} is not above the current version {current}")]
    Rollback {
        /// Offered version.
        version: u64,
        /// Current version.
        current: u64,
    },
    /// The list the door already holds, again.
    #[error("replay: list version {version} is already the current list")]
    Replay {
        /// The version.
        version: u64,
    },
    /// Same version number as the current list, different content.
    #[error("list version {version} is already in use with different content")]
    SameVersionDifferentBytes {
        /// The version.
        version: u64,
    },
}

impl Rejection {
    /// Stable machine-readable reason for events (`list.rejected`'s `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Oversize { .. } => "oversize",
            Rejection::Malformed(_) => "malformed",
            Rejection::UnknownFormat(_) => "unknown_format",
            Rejection::MissingSignature => "missing_signature",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::ThresholdNotMet { .. } => "threshold_not_met",
            Rejection::WrongSite { .. } => "wrong_site",
            Rejection::WrongDoor { .. } => "wrong_door",
            Rejection::Expired { .. } => "expired",
            Rejection::Rollback { .. } => "rollback",
            Rejection::Replay { .. } => "replay",
            Rejection::SameVersionDifferentBytes { .. } => "same_version_different_bytes",
        }
    }
}

/// A list that passed [`verify`]: its content plus what the door keeps about it.
#[derive(Debug, Clone)]
pub struct VerifiedList {
    /// The parsed payload.
    pub payload: Payload,
    /// Facts about the list without its entries.
    pub meta: ListMeta,
}

/// What the door keeps about the active list besides its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct ListMeta {
    /// Site id.
    pub site: String,
    /// Doors it applies to.
    pub doors: Vec<String>,
    /// Version.
    pub version: u64,
    /// Signing time.
    pub issued_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Time zone for schedules.
    pub time_zone: TimeZone,
    /// Number of entries.
    pub entry_count: usize,
    /// SHA-256 of the payload bytes.
    pub payload_digest: [u8; 32],
    /// Key ids whose signatures verified.
    pub signed_by: Vec<String>,
    /// The approved visits (the payload's optional `visits`), kept in memory: they are few, and
    /// the visitor rules need them on every visitor tap.
    pub visits: Vec<Visit>,
}

impl ListMeta {
    /// The current-list facts for the next rollback check.
    pub fn accepted(&self) -> Accepted {
        Accepted {
            version: self.version,
            payload_digest: Some(self.payload_digest),
        }
    }
}

/// Signs `payload` bytes with each key and returns the envelope's JSON bytes.
pub fn sign(payload: &[u8], keys: &[(String, SigningKey)]) -> Vec<u8> {
    sign_envelope(ENVELOPE_FORMAT, SIGNING_CONTEXT, payload, keys)
}

/// Signs `payload` for an envelope of `format` under the domain-separation `context` (lists here,
/// signed commands in `command.rs`: same envelope shape, different contexts).
pub(crate) fn sign_envelope(
    format: &str,
    context: &[u8],
    payload: &[u8],
    keys: &[(String, SigningKey)],
) -> Vec<u8> {
    let message = signing_message(context, payload);
    let envelope = Envelope {
        format: format.to_string(),
        payload: B64.encode(payload),
        signatures: keys
            .iter()
            .map(|(id, key)| SignatureEntry {
                key_id: id.clone(),
                signature: B64.encode(key.sign(&message).to_bytes()),
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&envelope).expect("envelope serializes");
    out.push(b'\n');
    out
}

fn signing_message(context: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(context.len() + payload.len());
    m.extend_from_slice(context);
    m.extend_from_slice(payload);
    m
}

/// SHA-256 of payload bytes.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Verifies a signed list against `policy`, the list currently held and the time.
///
/// Checks, in order: size cap, envelope, signatures and threshold (before the payload is parsed),
/// payload format and content, site, door, expiry (skipped when `now` is `None`, as when the door
/// reloads its own last good list at start) and version against `current`.
pub fn verify(
    bytes: &[u8],
    policy: &TrustPolicy,
    current: Option<Accepted>,
    now: Option<Timestamp>,
) -> Result<VerifiedList, Rejection> {
    if bytes.len() > policy.max_bytes {
        return Err(Rejection::Oversize {
            size: bytes.len(),
            max: policy.max_bytes,
        });
    }
    let (payload_bytes, signed_by) = verify_signatures(bytes, policy)?;
    let (payload, visits) = parse_payload(&payload_bytes)?;
    let time_zone = TimeZone::get(&payload.time_zone).map_err(|_| {
        Rejection::Malformed(format!(
            "time_zone: unknown time zone {:?}",
            payload.time_zone
        ))
    })?;

    if let Some(site) = &policy.site {
        if &payload.site != site {
            return Err(Rejection::WrongSite {
                list: payload.site.clone(),
                expected: site.clone(),
            });
        }
    }
    if let Some(door) = &policy.door {
        if !payload.doors.iter().any(|d| d == door || d == ALL_DOORS) {
            return Err(Rejection::WrongDoor {
                door: door.clone(),
                doors: payload.doors.clone(),
            });
        }
    }
    if let Some(now) = now {
        if payload.expires_at <= now {
            return Err(Rejection::Expired {
                expires_at: payload.expires_at,
            });
        }
    }
    let payload_digest = digest(&payload_bytes);
    if let Some(cur) = current {
        if payload.version < cur.version {
            return Err(Rejection::Rollback {
                version: payload.version,
                current: cur.version,
            });
        }
        if payload.version == cur.version {
            return Err(match cur.payload_digest {
                Some(held) if held == payload_digest => Rejection::Replay {
                    version: payload.version,
                },
                Some(_) => Rejection::SameVersionDifferentBytes {
                    version: payload.version,
                },
                // The content of the held version is not known here: say only what is certain.
                None => Rejection::Rollback {
                    version: payload.version,
                    current: cur.version,
                },
            });
        }
    }
    let meta = ListMeta {
        site: payload.site.clone(),
        doors: payload.doors.clone(),
        version: payload.version,
        issued_at: payload.issued_at,
        expires_at: payload.expires_at,
        time_zone,
        entry_count: payload.entries.len(),
        payload_digest,
        signed_by,
        visits,
    };
    Ok(VerifiedList { payload, meta })
}

/// Just the `format` field of a JSON object, to say which format something that does not parse
/// claims to be.
#[derive(Deserialize)]
struct FormatOnly {
    format: serde_json::Value,
}

/// Checks an envelope's size cap and signatures and returns its payload digest and the key ids
/// that signed, without parsing the payload. For a door reloading its own last good list when
/// its cache already holds that exact payload (matched by digest): the payload was fully
/// verified when it was applied.
pub fn verify_signatures_only(
    bytes: &[u8],
    policy: &TrustPolicy,
) -> Result<([u8; 32], Vec<String>), Rejection> {
    if bytes.len() > policy.max_bytes {
        return Err(Rejection::Oversize {
            size: bytes.len(),
            max: policy.max_bytes,
        });
    }
    let (payload, signed_by) = verify_signatures(bytes, policy)?;
    Ok((digest(&payload), signed_by))
}

/// Checks the envelope and its signatures; returns the payload bytes and the key ids that signed.
fn verify_signatures(
    bytes: &[u8],
    policy: &TrustPolicy,
) -> Result<(Vec<u8>, Vec<String>), Rejection> {
    verify_envelope(bytes, policy, ENVELOPE_FORMAT, SIGNING_CONTEXT)
}

/// How many opening bytes [`check_head`] looks at.
pub const HEAD_BYTES: usize = 4096;

/// The cheap first look at a list or command before it is read on or parsed: a signed envelope
/// is UTF-8 JSON text whose first non-blank character opens an object (`{`) and whose next one
/// opens its first key (`"`). Random bytes, an image, an archive, a blank file fail here, after at
/// most [`HEAD_BYTES`] bytes, so a large file of garbage is refused without being read whole.
/// `head` is the start of the bytes (it may end inside a character).
pub fn check_head(head: &[u8]) -> Result<(), Rejection> {
    let head = &head[..head.len().min(HEAD_BYTES)];
    if let Err(e) = std::str::from_utf8(head) {
        // error_len() is None when the cut ends inside a character: that is fine.
        if e.error_len().is_some() {
            return Err(Rejection::Malformed(format!(
                "not a signed list: byte {} is not UTF-8 text (a signed list is a JSON object)",
                e.valid_up_to()
            )));
        }
    }
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut rest = head.iter().enumerate().filter(|(_, b)| !blank(b));
    match rest.next() {
        None if head.len() < HEAD_BYTES => Err(Rejection::Malformed(
            "not a signed list: it is empty or blank".into(),
        )),
        None => Err(Rejection::Malformed(format!(
            "not a signed list: only blanks in its first {HEAD_BYTES} bytes"
        ))),
        Some((_, b'{')) => match rest.next() {
            None | Some((_, b'"' | b'}')) => Ok(()),
            Some((at, &b)) => Err(Rejection::Malformed(format!(
                "not a signed list: {} at byte {at} where a JSON object's first key starts",
                describe_byte(b)
            ))),
        },
        Some((at, &b)) => Err(Rejection::Malformed(format!(
            "not a signed list: it starts with {} at byte {at}; a signed list is a JSON object starting with '{{'",
            describe_byte(b)
        ))),
    }
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("{:?}", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Checks an envelope of `format` and its signatures under `context`; returns the payload bytes
/// and the key ids that signed. Shared by lists and signed commands.
pub(crate) fn verify_envelope(
    bytes: &[u8],
    policy: &TrustPolicy,
    format: &str,
    context: &[u8],
) -> Result<(Vec<u8>, Vec<String>), Rejection> {
    check_head(bytes)?;
    // One pass over the (possibly tens of MB) envelope, borrowing the payload text. Only when it
    // does not parse is it read again, to tell an unknown format from a malformed envelope.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EnvelopeRef<'a> {
        #[serde(borrow)]
        format: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        payload: std::borrow::Cow<'a, str>,
        signatures: Vec<SignatureEntry>,
    }
    let envelope: EnvelopeRef<'_> = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => {
            let peek: FormatOnly = serde_json::from_slice(bytes).map_err(|_| {
                Rejection::Malformed(format!(
                    "envelope is not a JSON object with a \"format\" field: {e}"
                ))
            })?;
            if peek.format.as_str() != Some(format) {
                return Err(Rejection::UnknownFormat(format!(
                    "{} (expected {format:?})",
                    peek.format
                )));
            }
            return Err(Rejection::Malformed(format!("envelope: {e}")));
        }
    };
    if envelope.format != format {
        return Err(Rejection::UnknownFormat(format!(
            "{:?} (expected {format:?})",
            envelope.format
        )));
    }
    let payload = B64
        .decode(envelope.payload.as_bytes())
        .map_err(|e| Rejection::Malformed(format!("envelope payload is not base64: {e}")))?;
    if envelope.signatures.is_empty() {
        return Err(Rejection::MissingSignature);
    }
    let message = signing_message(context, &payload);
    let mut distinct_keys: HashSet<[u8; 32]> = HashSet::new();
    let mut signed_by = Vec::new();
    for sig in &envelope.signatures {
        let trusted = policy
            .keys
            .iter()
            .find(|k| k.id == sig.key_id)
            .ok_or_else(|| Rejection::UnknownKey(sig.key_id.clone()))?;
        let raw = B64
            .decode(sig.signature.as_bytes())
            .map_err(|_| Rejection::BadSignature(sig.key_id.clone()))?;
        let raw: [u8; 64] = raw
            .try_into()
            .map_err(|_| Rejection::BadSignature(sig.key_id.clone()))?;
        // verify_strict rejects weak keys and non-canonical signatures (malleability).
        trusted
            .key
            .verify_strict(&message, &Signature::from_bytes(&raw))
            .map_err(|_| Rejection::BadSignature(sig.key_id.clone()))?;
        // The same key (by bytes, whatever id it is listed under) counts once.
        if distinct_keys.insert(trusted.key.to_bytes()) {
            signed_by.push(sig.key_id.clone());
        }
    }
    if distinct_keys.len() < policy.threshold {
        return Err(Rejection::ThresholdNotMet {
            valid: distinct_keys.len(),
            needed: policy.threshold,
        });
    }
    Ok((payload, signed_by))
}

/// The payload as it is on the wire: [`Payload`] plus the optional `visits` array.
///
/// `visits` is not a field of [`Payload`] so that every list and every piece of code that builds
/// a [`Payload`] stays as it is; a payload without visits is byte for byte what it was.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadWire {
    format: u32,
    site: String,
    doors: Vec<String>,
    version: u64,
    issued_at: Timestamp,
    expires_at: Timestamp,
    time_zone: String,
    entries: Vec<Entry>,
    #[serde(default)]
    visits: Vec<Visit>,
}

impl PayloadWire {
    fn into_parts(self) -> (Payload, Vec<Visit>) {
        let payload = Payload {
            format: self.format,
            site: self.site,
            doors: self.doors,
            version: self.version,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            time_zone: self.time_zone,
            entries: self.entries,
        };
        (payload, self.visits)
    }
}

/// The bytes to sign for `payload` with `visits`: the payload's fields in order, then `visits`
/// when there are any. Without visits this is exactly `serde_json::to_vec(payload)`.
pub fn payload_bytes(payload: &Payload, visits: &[Visit]) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(Serialize)]
    struct WithVisits<'a> {
        #[serde(flatten)]
        payload: &'a Payload,
        #[serde(skip_serializing_if = "<[Visit]>::is_empty")]
        visits: &'a [Visit],
    }
    serde_json::to_vec(&WithVisits { payload, visits })
}

/// Parses and checks verified payload bytes.
fn parse_payload(bytes: &[u8]) -> Result<(Payload, Vec<Visit>), Rejection> {
    let unknown = |format: &serde_json::Value| {
        Rejection::UnknownFormat(format!(
            "payload format {format} (expected {PAYLOAD_FORMAT})"
        ))
    };
    // Fast path first; on failure read it again to tell an unknown format from a malformed
    // payload, and then once more with path tracking to say where the problem is.
    let wire: PayloadWire = match serde_json::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => {
            let peek: FormatOnly = serde_json::from_slice(bytes).map_err(|_| {
                Rejection::Malformed(format!(
                    "payload is not a JSON object with a \"format\" field: {e}"
                ))
            })?;
            if peek.format.as_u64() != Some(u64::from(PAYLOAD_FORMAT)) {
                return Err(unknown(&peek.format));
            }
            let de = &mut serde_json::Deserializer::from_slice(bytes);
            let err = match serde_path_to_error::deserialize::<_, PayloadWire>(de) {
                Ok(_) => return Err(Rejection::Malformed("payload: inconsistent parse".into())),
                Err(e) => e,
            };
            return Err(Rejection::Malformed(format!(
                "payload at {}: {}",
                err.path(),
                err.inner()
            )));
        }
    };
    if wire.format != PAYLOAD_FORMAT {
        return Err(unknown(&serde_json::Value::from(wire.format)));
    }
    let (payload, visits) = wire.into_parts();
    check_payload(&payload).map_err(Rejection::Malformed)?;
    check_visits(&payload.entries, &visits).map_err(Rejection::Malformed)?;
    Ok((payload, visits))
}

/// Content rules serde cannot express. Errors name the entry index and holder.
pub fn check_payload(p: &Payload) -> Result<(), String> {
    if p.site.is_empty() {
        return Err("site is empty".into());
    }
    if p.doors.is_empty() {
        return Err("doors is empty: a list must name the doors it applies to (or \"*\")".into());
    }
    if p.expires_at <= p.issued_at {
        return Err(format!(
            "expires_at {} is not after issued_at {}",
            p.expires_at, p.issued_at
        ));
    }
    let mut seen: HashSet<CardHash> = HashSet::with_capacity(p.entries.len());
    for (i, e) in p.entries.iter().enumerate() {
        let at = || format!("entries[{i}] (holder {:?})", e.holder);
        if e.holder.is_empty() {
            return Err(format!("entries[{i}]: holder is empty"));
        }
        if e.valid_until <= e.valid_from {
            return Err(format!(
                "{}: valid_until {} is not after valid_from {}",
                at(),
                e.valid_until,
                e.valid_from
            ));
        }
        if let Some(doors) = &e.doors {
            if doors.is_empty() {
                return Err(format!(
                    "{}: doors is empty (omit it to mean every door)",
                    at()
                ));
            }
        }
        for w in &e.schedule {
            w.validate().map_err(|m| format!("{}: {m}", at()))?;
        }
        if !seen.insert(e.card) {
            return Err(format!(
                "{}: card {} appears in more than one entry",
                at(),
                e.card
            ));
        }
    }
    Ok(())
}

/// Ids for sites, doors and readers: safe in MQTT topics, file names and logs.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Decodes a base64 ed25519 public key.
pub fn decode_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|_| "expected a base64 ed25519 public key (32 bytes)".to_string())?;
    let arr: [u8; 32] = bytes.try_into().map_err(|v: Vec<u8>| {
        format!(
            "expected a base64 ed25519 public key of 32 bytes, found {} bytes",
            v.len()
        )
    })?;
    let key =
        VerifyingKey::from_bytes(&arr).map_err(|_| "not a valid ed25519 public key".to_string())?;
    if key.is_weak() {
        return Err("weak ed25519 public key (small-order point) refused".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests;
