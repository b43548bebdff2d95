//! Offline signing files: a payload the office service exports for an approver who signs with a
//! key file instead of a passphrase in the service (`pintuctl sign --key KEY PAYLOADFILE`), and
//! the signature file that comes back. `pintuctl` and `pintu-office` share this one definition
//! of both formats (`docs/signing.md`).
//!
//! The signer does not take the file's word for what it signs: [`describe`] reads the payload
//! bytes as the kind the file names (a list or a door command), and the kind chooses the signing
//! context, so a command cannot be passed off as a list, and the SHA-256 in the header must match
//! the bytes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::command::{self, CommandPayload};
use crate::core::list;

/// The payload file's `format`.
pub const PAYLOAD_FILE_FORMAT: &str = "pintu.payload-to-sign.v1";
/// The signature file's `format`.
pub const SIGNATURE_FILE_FORMAT: &str = "pintu.payload-signature.v1";
/// Largest payload file read (a list of 100,000 entries is about 35 MB).
pub const MAX_PAYLOAD_FILE_BYTES: usize = 128 << 20;
/// Largest signature file read.
pub const MAX_SIGNATURE_FILE_BYTES: usize = 16 << 10;

/// What a payload is: it decides the signing context and the envelope format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// A signed access list.
    List,
    /// A signed door command.
    Command,
    /// A request's decision statement (`pintu_core::workflow::DecisionStatement`): an
    /// approver with an offline key approves or rejects a request by signing it. Never a
    /// payload of the service's k-of-n signing: it is uploaded with the request's step.
    Decision,
}

impl PayloadKind {
    /// `list` or `command`.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::List => "list",
            PayloadKind::Command => "command",
            PayloadKind::Decision => "decision",
        }
    }

    /// The kind named `text`.
    pub fn parse(text: &str) -> Option<PayloadKind> {
        match text {
            "list" => Some(PayloadKind::List),
            "command" => Some(PayloadKind::Command),
            "decision" => Some(PayloadKind::Decision),
            _ => None,
        }
    }

    /// The domain-separation prefix of its signatures (the door's).
    pub fn context(self) -> &'static [u8] {
        match self {
            PayloadKind::List => list::SIGNING_CONTEXT,
            PayloadKind::Command => command::COMMAND_SIGNING_CONTEXT,
            // The statement starts with its own domain tag line; its signature covers exactly
            // its bytes, as when the service signs it with the approver's sealed key.
            PayloadKind::Decision => b"",
        }
    }

    /// Its envelope's `format`.
    pub fn envelope_format(self) -> &'static str {
        match self {
            PayloadKind::List => list::ENVELOPE_FORMAT,
            PayloadKind::Command => command::COMMAND_ENVELOPE_FORMAT,
            // A decision has no envelope: its signature is stored with the request's step.
            PayloadKind::Decision => crate::core::workflow::DECISION_TAG,
        }
    }
}

/// What is wrong with an offline signing file.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// Not the JSON of this format.
    #[error("not a Pintu {what} file: {message}")]
    Format {
        /// `payload` or `signature`.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The payload does not match the SHA-256 its header names.
    #[error("the payload's SHA-256 is {actual}, the header says {header}: the file was changed")]
    Digest {
        /// From the header.
        header: String,
        /// Of the bytes.
        actual: String,
    },
    /// The bytes are not the kind the header names.
    #[error("the payload is not a valid {kind}: {message}")]
    Payload {
        /// The kind named.
        kind: &'static str,
        /// Why.
        message: String,
    },
}

/// A payload exported for offline signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadFile {
    /// Always [`PAYLOAD_FILE_FORMAT`].
    pub format: String,
    /// The service's payload id (the signature names it).
    pub payload_id: String,
    /// List or command.
    pub kind: PayloadKind,
    /// One line saying what it is (informational: the signer reads the bytes).
    pub summary: String,
    /// SHA-256 of the payload bytes, hex.
    pub sha256: String,
    /// The exact bytes to sign, standard base64.
    pub payload: String,
}

impl PayloadFile {
    /// The file for `bytes`.
    pub fn new(payload_id: &str, kind: PayloadKind, summary: &str, bytes: &[u8]) -> PayloadFile {
        PayloadFile {
            format: PAYLOAD_FILE_FORMAT.into(),
            payload_id: payload_id.into(),
            kind,
            summary: summary.into(),
            sha256: sha256_hex(bytes),
            payload: B64.encode(bytes),
        }
    }

    /// The file's bytes (pretty JSON and a newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a payload file serializes");
        out.push(b'\n');
        out
    }

    /// Reads a file; returns it and the payload bytes, checked against the header's SHA-256.
    pub fn parse(bytes: &[u8]) -> Result<(PayloadFile, Vec<u8>), OfflineError> {
        let format = |message: String| OfflineError::Format {
            what: "payload",
            message,
        };
        let file: PayloadFile = serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
        if file.format != PAYLOAD_FILE_FORMAT {
            return Err(format(format!(
                "format {:?} (expected {PAYLOAD_FILE_FORMAT:?})",
                file.format
            )));
        }
        let payload = B64
            .decode(file.payload.as_bytes())
            .map_err(|_| format("payload is not base64".into()))?;
        let actual = sha256_hex(&payload);
        if !actual.eq_ignore_ascii_case(&file.sha256) {
            return Err(OfflineError::Digest {
                header: file.sha256.clone(),
                actual,
            });
        }
        Ok((file, payload))
    }
}

/// A signature made offline, to upload to the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// Always [`SIGNATURE_FILE_FORMAT`].
    pub format: String,
    /// The payload it signs.
    pub payload_id: String,
    /// SHA-256 of the payload bytes signed, hex.
    pub sha256: String,
    /// The signing key's id.
    pub key_id: String,
    /// The signing key's public half, standard base64.
    pub public_key: String,
    /// The ed25519 signature over the kind's context and the payload bytes, standard base64.
    pub signature: String,
}

impl SignatureFile {
    /// The file's bytes (pretty JSON and a newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a signature file serializes");
        out.push(b'\n');
        out
    }

    /// Reads a file.
    pub fn parse(bytes: &[u8]) -> Result<SignatureFile, OfflineError> {
        let format = |message: String| OfflineError::Format {
            what: "signature",
            message,
        };
        let file: SignatureFile =
            serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
        if file.format != SIGNATURE_FILE_FORMAT {
            return Err(format(format!(
                "format {:?} (expected {SIGNATURE_FILE_FORMAT:?})",
                file.format
            )));
        }
        Ok(file)
    }
}

/// The bytes an ed25519 signature of `kind` covers: its context, then the payload (what the
/// door verifies).
pub fn signing_message(kind: PayloadKind, payload: &[u8]) -> Vec<u8> {
    let context = kind.context();
    let mut m = Vec::with_capacity(context.len() + payload.len());
    m.extend_from_slice(context);
    m.extend_from_slice(payload);
    m
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads `payload` as a `kind` and says in one line what it is: what the signer is shown, and
/// the check that the bytes are what the header claims.
pub fn describe(kind: PayloadKind, payload: &[u8]) -> Result<String, OfflineError> {
    let bad = |message: String| OfflineError::Payload {
        kind: kind.as_str(),
        message,
    };
    match kind {
        PayloadKind::List => {
            // Read loosely (the optional `visits` is not a field of list::Payload); the door's
            // full check runs when the service takes the payload.
            #[derive(Deserialize)]
            struct Head {
                format: u32,
                site: String,
                doors: Vec<String>,
                version: u64,
                expires_at: jiff::Timestamp,
                entries: Vec<serde::de::IgnoredAny>,
                #[serde(default)]
                visits: Vec<serde::de::IgnoredAny>,
            }
            let head: Head = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
            if head.format != list::PAYLOAD_FORMAT {
                return Err(bad(format!("payload format {}", head.format)));
            }
            Ok(format!(
                "list version {} for site {}, doors {}: {} entries, {} visit(s), expires {}",
                head.version,
                head.site,
                head.doors.join(","),
                head.entries.len(),
                head.visits.len(),
                head.expires_at
            ))
        }
        PayloadKind::Command => {
            let c: CommandPayload =
                serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
            if c.format != command::COMMAND_PAYLOAD_FORMAT {
                return Err(bad(format!("payload format {}", c.format)));
            }
            Ok(format!(
                "command {} for site {}, doors {}, ordered by {}, valid {} to {} (id {})",
                c.command.name(),
                c.site,
                c.doors.join(","),
                c.operator,
                c.issued_at,
                c.expires_at,
                c.id
            ))
        }
        PayloadKind::Decision => {
            let text = std::str::from_utf8(payload).map_err(|e| bad(e.to_string()))?;
            let mut lines = text.lines();
            if lines.next() != Some(crate::core::workflow::DECISION_TAG) {
                return Err(bad(format!(
                    "the first line is not {}",
                    crate::core::workflow::DECISION_TAG
                )));
            }
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                    .unwrap_or("?")
            };
            Ok(format!(
                "decision {} on request {} ({} for {}, doors {}), note {}, key {}",
                field("decision"),
                field("reference"),
                field("kind"),
                field("subject_name"),
                field("doors"),
                field("text"),
                field("key_id")
            ))
        }
    }
}

/// Signs the payload of `file` (its bytes: `payload`) with `key` named `key_id`.
pub fn sign_file(
    file: &PayloadFile,
    payload: &[u8],
    key_id: &str,
    key: &SigningKey,
) -> SignatureFile {
    let signature = key.sign(&signing_message(file.kind, payload));
    SignatureFile {
        format: SIGNATURE_FILE_FORMAT.into(),
        payload_id: file.payload_id.clone(),
        sha256: sha256_hex(payload),
        key_id: key_id.into(),
        public_key: B64.encode(key.verifying_key().to_bytes()),
        signature: B64.encode(signature.to_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    fn list_bytes() -> Vec<u8> {
        br#"{"format":1,"site":"s","doors":["*"],"version":7,"issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-02-01T00:00:00Z","time_zone":"Asia/Jakarta","entries":[]}"#.to_vec()
    }

    #[test]
    fn a_payload_file_round_trips_and_its_signature_verifies_under_the_kind_context() {
        let bytes = list_bytes();
        let file = PayloadFile::new("p1", PayloadKind::List, "x", &bytes);
        let (back, payload) = PayloadFile::parse(&file.to_bytes()).unwrap();
        assert_eq!(back, file);
        assert_eq!(payload, bytes);
        assert!(describe(PayloadKind::List, &payload)
            .unwrap()
            .starts_with("list version 7 for site s"));
        let key = SigningKey::from_bytes(&[3; 32]);
        let sig = sign_file(&back, &payload, "k", &key);
        let sig = SignatureFile::parse(&sig.to_bytes()).unwrap();
        let raw: [u8; 64] = B64.decode(&sig.signature).unwrap().try_into().unwrap();
        let mut message = list::SIGNING_CONTEXT.to_vec();
        message.extend_from_slice(&bytes);
        key.verifying_key()
            .verify(&message, &ed25519_dalek::Signature::from_bytes(&raw))
            .unwrap();
    }

    #[test]
    fn a_changed_payload_or_a_list_posing_as_a_command_is_refused() {
        let file = PayloadFile::new("p1", PayloadKind::List, "x", &list_bytes());
        let mut edited = file.clone();
        edited.payload = B64.encode(b"{}");
        assert!(matches!(
            PayloadFile::parse(&edited.to_bytes()),
            Err(OfflineError::Digest { .. })
        ));
        assert!(matches!(
            describe(PayloadKind::Command, &list_bytes()),
            Err(OfflineError::Payload { .. })
        ));
        assert!(matches!(
            PayloadFile::parse(b"not json"),
            Err(OfflineError::Format { .. })
        ));
    }

    #[test]
    fn a_decision_statement_is_described_from_its_bytes_and_signed_as_they_are() {
        let statement = b"pintu-request-decision-v1\nreference \"REQ-2026-0001\"\n\
            decision \"reject\"\nkey_id \"kabid-2026\"\n";
        let what = describe(PayloadKind::Decision, statement).unwrap();
        assert!(
            what.starts_with("decision \"reject\" on request \"REQ-2026-0001\""),
            "{what}"
        );
        // A list is not a decision, and a decision is not a list.
        assert!(describe(PayloadKind::Decision, &list_bytes()).is_err());
        assert!(describe(PayloadKind::List, statement).is_err());
        // The statement carries its own domain tag: the signature covers exactly its bytes.
        assert_eq!(signing_message(PayloadKind::Decision, statement), statement);
        assert_eq!(PayloadKind::parse("decision"), Some(PayloadKind::Decision));
    }
}
