//! The checks a message must pass to be archived, without I/O: the same as the sled archive's
//! (`pintu::office::archive`): not oversize, JSON with the event head, schema v1, the door of
//! the topic, the archive's site; plus what the database needs (a seq that fits, a time).

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use pintu::core::event::EVENT_SCHEMA;
use pintu::mqtt::topics;

use super::MAX_EVENT_BYTES;

/// The fields an event must have to be archived, and those the archive indexes. The rest is
/// kept as received.
#[derive(Deserialize)]
struct Head {
    schema: String,
    id: String,
    seq: u64,
    site: String,
    door: String,
    #[serde(default)]
    time: Option<jiff::Timestamp>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    holder: Option<String>,
    #[serde(default)]
    card: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// An event that passed the checks, with what the archive indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Door id (the topic's and the event's).
    pub door: String,
    /// Sequence number (1 ..= i64::MAX).
    pub seq: i64,
    /// The event's id.
    pub event_id: String,
    /// The event's time, Unix ms (the receive time when the event has none).
    pub at_ms: i64,
    /// Event kind (empty when missing).
    pub kind: String,
    /// Holder id.
    pub holder: Option<String>,
    /// Masked card id.
    pub card: Option<String>,
    /// The payload as text, exactly as received.
    pub body: String,
    /// SHA-256 of the payload, hex.
    pub digest: String,
    /// A `store.rebuilt` with reason `seq_resumed`: the door lost its store and resumed its
    /// numbering, so a gap before it is explained.
    pub resumes_seq: bool,
}

/// SHA-256 of `bytes`, hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks one message received on `topic` for the archive of `site`; `Err` is the reason it
/// is rejected (kept with the message in `ingest_rejected`).
pub fn check(site: &str, topic: &str, payload: &[u8], received_ms: i64) -> Result<Checked, String> {
    if payload.len() > MAX_EVENT_BYTES {
        return Err("oversize".into());
    }
    let head: Head = serde_json::from_slice(payload).map_err(|e| format!("malformed: {e}"))?;
    if head.schema != EVENT_SCHEMA {
        return Err(format!("unknown schema {:?}", head.schema));
    }
    if topics::door_of(topic) != Some(head.door.as_str()) {
        return Err(format!("door {:?} does not match the topic", head.door));
    }
    if head.site != site {
        return Err(format!(
            "site {:?} is not the archive's {site:?}",
            head.site
        ));
    }
    let seq = i64::try_from(head.seq)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| format!("seq {} out of range (a door numbers from 1)", head.seq))?;
    // JSON that parsed is UTF-8 (serde_json refuses anything else), so this never rejects.
    let body = std::str::from_utf8(payload)
        .map_err(|e| format!("malformed: {e}"))?
        .to_string();
    let kind = head.kind.unwrap_or_default();
    let resumes_seq = kind == "store.rebuilt" && head.reason.as_deref() == Some("seq_resumed");
    Ok(Checked {
        door: head.door,
        seq,
        event_id: head.id,
        at_ms: head.time.map_or(received_ms, |t| t.as_millisecond()),
        kind,
        holder: head.holder,
        card: head.card,
        digest: digest(payload),
        body,
        resumes_seq,
    })
}

/// A rejected payload as text for inspection: at most [`MAX_EVENT_BYTES`], bytes that are not
/// UTF-8 replaced, NUL replaced (PostgreSQL text cannot hold it).
pub fn payload_text(payload: &[u8]) -> String {
    String::from_utf8_lossy(&payload[..payload.len().min(MAX_EVENT_BYTES)])
        .replace('\0', "\u{fffd}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(door: &str, seq: u64) -> serde_json::Value {
        serde_json::json!({
            "schema": EVENT_SCHEMA, "id": "00000000-0000-0000-0000-000000000001", "seq": seq,
            "time": "2026-05-04T01:00:00Z", "site": "s", "door": door, "kind": "access.granted",
            "holder": "h1", "card": "c:0a1b",
        })
    }

    #[test]
    fn an_event_passes_with_what_the_archive_indexes() {
        let bytes = event("a", 7).to_string();
        let c = check("s", "pintu/s/a/events", bytes.as_bytes(), 5).expect("accepted");
        assert_eq!(
            (c.door.as_str(), c.seq, c.kind.as_str()),
            ("a", 7, "access.granted")
        );
        assert_eq!(c.at_ms, 1_777_856_400_000);
        assert_eq!(c.holder.as_deref(), Some("h1"));
        assert_eq!(c.body, bytes);
        assert_eq!(c.digest, digest(bytes.as_bytes()));
        assert!(!c.resumes_seq);
    }

    #[test]
    fn every_check_of_the_sled_archive_stays() {
        let t = "pintu/s/a/events";
        let reason = |payload: &[u8], topic: &str| check("s", topic, payload, 0).unwrap_err();
        assert!(reason(b"not json", t).starts_with("malformed"));
        let mut v = event("a", 1);
        v["schema"] = "pintu.event.v0".into();
        assert!(reason(v.to_string().as_bytes(), t).starts_with("unknown schema"));
        assert!(
            reason(event("b", 1).to_string().as_bytes(), t).contains("does not match the topic")
        );
        let mut v = event("a", 1);
        v["site"] = "other".into();
        assert!(reason(v.to_string().as_bytes(), t).contains("is not the archive's"));
        assert!(reason(event("a", 0).to_string().as_bytes(), t).contains("out of range"));
        assert!(reason(event("a", u64::MAX).to_string().as_bytes(), t).contains("out of range"));
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(reason(&big, t), "oversize");
    }

    #[test]
    fn a_seq_resumed_rebuild_is_recognised_and_a_missing_time_is_the_receive_time() {
        let mut v = event("a", 9);
        v["kind"] = "store.rebuilt".into();
        v["reason"] = "seq_resumed".into();
        v.as_object_mut().map(|o| o.remove("time"));
        let c = check("s", "pintu/s/a/events", v.to_string().as_bytes(), 42).expect("accepted");
        assert!(c.resumes_seq);
        assert_eq!(c.at_ms, 42);
    }

    #[test]
    fn rejected_payloads_are_kept_as_text() {
        assert_eq!(payload_text(b"a\0b\xff"), "a\u{fffd}b\u{fffd}");
    }
}
