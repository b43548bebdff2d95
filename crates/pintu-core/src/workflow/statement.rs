//! The decision statement: the exact bytes an approver signs when they approve or reject a
//! request, so that the decision is the approver's signature and not only a database row.
//!
//! The statement names everything the decision is about (the site, the request and its content,
//! the decision with its note or reason, the approver and their key, the time) and a digest of
//! the steps that led to it, so the signature also covers the path (who disposed, who verified,
//! with what notes). The office builds it from its rows when the approver signs, and again when
//! anyone verifies; the same rows always give the same bytes.
//!
//! # Encoding (`pintu-request-decision-v1`)
//!
//! UTF-8 text, one field per line, each line ending in `\n` (no `\r`), in this fixed order:
//!
//! ```text
//! pintu-request-decision-v1
//! site "<site>"
//! request_id "<id>"
//! reference "<REQ-2026-0042>"
//! kind "<staff_access|visit|removal|server_custody>"
//! unit "<unit>"
//! subject_name "<name>"
//! subject_nip "<nip>" | null
//! doors ["<door>", ...]            (in the request's order; [] when none)
//! window_from_ms <integer> | null
//! window_until_ms <integer> | null
//! reason "<the requester's reason>"
//! letter_sha256 "<64 lowercase hex>" | null
//! decision "approve" | "reject"
//! text "<the approver's note (approve) or reason (reject)>"
//! approver "<account id>"
//! key_id "<key id>"
//! signed_at_ms <integer>
//! history_sha256 "<64 lowercase hex>"
//! ```
//!
//! A string is written between double quotes with `"` as `\"`, `\` as `\\`, line feed as `\n`,
//! carriage return as `\r`, tab as `\t` and every other character below U+0020 (and U+007F) as
//! `\u` with four lowercase hex digits; everything else is written as itself. So each field is
//! exactly one line and no text can forge another field. Integers are decimal, `-` when negative.
//!
//! `history_sha256` is SHA-256 over [`HISTORY_TAG`] and a line per earlier step, oldest first
//! (see [`history_sha256`]). The first line is the domain tag: these bytes can never be taken for
//! a list or a door command, whose signing messages start with other contexts.

use sha2::{Digest, Sha256};

use super::names::RequestKind;
use super::request::{Action, Decision, StepRecord};

/// The first line of a decision statement: what the bytes are, and the version of this format.
pub const DECISION_TAG: &str = "pintu-request-decision-v1";

/// The first line hashed into [`history_sha256`].
pub const HISTORY_TAG: &str = "pintu-request-history-v1";

/// What an approver signs when deciding a request. Build it with the request's stored content;
/// [`DecisionStatement::to_bytes`] gives the signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionStatement {
    /// The site (the office's `[site] name`).
    pub site: String,
    /// The request's id.
    pub request_id: String,
    /// Its human reference (`REQ-2026-0042`).
    pub reference: String,
    /// What it asks for.
    pub kind: RequestKind,
    /// The requesting unit.
    pub unit: String,
    /// The person it is about.
    pub subject_name: String,
    /// Their NIP, if any.
    pub subject_nip: Option<String>,
    /// The doors asked for, in the request's order.
    pub doors: Vec<String>,
    /// Start of the window (Unix ms), if bounded.
    pub window_from_ms: Option<i64>,
    /// End of the window (Unix ms), if bounded.
    pub window_until_ms: Option<i64>,
    /// The requester's reason.
    pub reason: String,
    /// The attached letter's SHA-256 (hex), if any.
    pub letter_sha256: Option<String>,
    /// Approve or reject.
    pub decision: Decision,
    /// The approver's note (approve) or reason (reject).
    pub text: String,
    /// The approver's account id.
    pub approver: String,
    /// The key that signs.
    pub key_id: String,
    /// When the approver signed (Unix ms).
    pub signed_at_ms: i64,
    /// [`history_sha256`] of the steps before the decision.
    pub history_sha256: String,
}

impl DecisionStatement {
    /// The canonical bytes (the module documentation gives the format).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512);
        out.push_str(DECISION_TAG);
        out.push('\n');
        let mut field = |name: &str, value: String| {
            out.push_str(name);
            out.push(' ');
            out.push_str(&value);
            out.push('\n');
        };
        field("site", quote(&self.site));
        field("request_id", quote(&self.request_id));
        field("reference", quote(&self.reference));
        field("kind", quote(self.kind.as_str()));
        field("unit", quote(&self.unit));
        field("subject_name", quote(&self.subject_name));
        field("subject_nip", opt_quote(self.subject_nip.as_deref()));
        let doors: Vec<String> = self.doors.iter().map(|d| quote(d)).collect();
        field("doors", format!("[{}]", doors.join(", ")));
        field("window_from_ms", opt_int(self.window_from_ms));
        field("window_until_ms", opt_int(self.window_until_ms));
        field("reason", quote(&self.reason));
        field("letter_sha256", opt_quote(self.letter_sha256.as_deref()));
        field("decision", quote(decision_name(self.decision)));
        field("text", quote(&self.text));
        field("approver", quote(&self.approver));
        field("key_id", quote(&self.key_id));
        field("signed_at_ms", self.signed_at_ms.to_string());
        field("history_sha256", quote(&self.history_sha256));
        out.into_bytes()
    }

    /// SHA-256 of [`DecisionStatement::to_bytes`], hex.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.to_bytes()))
    }
}

/// The decision an action takes, with its note or reason; `None` for every other action.
pub fn decision_of(action: &Action) -> Option<(Decision, &str)> {
    match action {
        Action::Approve { note } => Some((Decision::Approved, note)),
        Action::Reject { reason } => Some((Decision::Rejected, reason)),
        _ => None,
    }
}

/// The wire name of a decision in a statement: the action's name, `approve` or `reject`.
pub fn decision_name(decision: Decision) -> &'static str {
    match decision {
        Decision::Approved => "approve",
        Decision::Rejected => "reject",
    }
}

/// SHA-256 (hex) over the steps taken before the decision, oldest first: the line
/// [`HISTORY_TAG`], then per step `n action role from to at_ms "account" "text"` (`n` from 1,
/// names as on the wire, `at_ms` Unix ms, strings quoted as in the statement, `""` for an action
/// without text), each line ending in `\n`.
pub fn history_sha256(steps: &[StepRecord]) -> String {
    let mut text = String::from(HISTORY_TAG);
    text.push('\n');
    for (i, s) in steps.iter().enumerate() {
        let body = s.action.text().map(|(_, t)| t).unwrap_or("");
        text.push_str(&format!(
            "{} {} {} {} {} {} {} {}\n",
            i + 1,
            s.action.kind().as_str(),
            s.role.as_str(),
            s.from.as_str(),
            s.to.as_str(),
            s.at.as_millisecond(),
            quote(&s.account),
            quote(body),
        ));
    }
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `text` between double quotes, escaped so it stays on one line (module docs).
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn opt_quote(text: Option<&str>) -> String {
    text.map_or_else(|| "null".to_owned(), quote)
}

fn opt_int(n: Option<i64>) -> String {
    n.map_or_else(|| "null".to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::workflow::{Role, Stage};

    fn statement() -> DecisionStatement {
        DecisionStatement {
            site: "Diskominfo".into(),
            request_id: "r1".into(),
            reference: "REQ-2026-0001".into(),
            kind: RequestKind::StaffAccess,
            unit: "Bidang Aplikasi".into(),
            subject_name: "Budi Santoso".into(),
            subject_nip: Some("198501012010011001".into()),
            doors: vec!["server-1".into(), "lobby".into()],
            window_from_ms: Some(1_000),
            window_until_ms: None,
            reason: "Pemeliharaan".into(),
            letter_sha256: None,
            decision: Decision::Approved,
            text: String::new(),
            approver: "a-kabid".into(),
            key_id: "kabid-2026".into(),
            signed_at_ms: 1_765_000_000_000,
            history_sha256: history_sha256(&[]),
        }
    }

    #[test]
    fn the_encoding_is_exactly_the_documented_one() {
        let text = String::from_utf8(statement().to_bytes()).expect("utf-8");
        let want = format!(
            "pintu-request-decision-v1\n\
             site \"Diskominfo\"\n\
             request_id \"r1\"\n\
             reference \"REQ-2026-0001\"\n\
             kind \"staff_access\"\n\
             unit \"Bidang Aplikasi\"\n\
             subject_name \"Budi Santoso\"\n\
             subject_nip \"198501012010011001\"\n\
             doors [\"server-1\", \"lobby\"]\n\
             window_from_ms 1000\n\
             window_until_ms null\n\
             reason \"Pemeliharaan\"\n\
             letter_sha256 null\n\
             decision \"approve\"\n\
             text \"\"\n\
             approver \"a-kabid\"\n\
             key_id \"kabid-2026\"\n\
             signed_at_ms 1765000000000\n\
             history_sha256 \"{}\"\n",
            history_sha256(&[])
        );
        assert_eq!(text, want);
    }

    #[test]
    fn strings_are_quoted_onto_one_line() {
        let table = [
            ("", "\"\""),
            ("plain", "\"plain\""),
            ("a \"b\"", "\"a \\\"b\\\"\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("two\nlines", "\"two\\nlines\""),
            ("cr\r tab\t", "\"cr\\r tab\\t\""),
            ("esc\u{1b}del\u{7f}", "\"esc\\u001bdel\\u007f\""),
            ("Kepala Bidang — café", "\"Kepala Bidang — café\""),
        ];
        for (input, want) in table {
            assert_eq!(quote(input), want, "{input:?}");
        }
    }

    #[test]
    fn text_cannot_forge_a_field() {
        // A note that tries to end its line and start another field stays one quoted line.
        let mut s = statement();
        s.text = "ok\"\nkey_id \"someone-else".into();
        let text = String::from_utf8(s.to_bytes()).expect("utf-8");
        assert_eq!(text.lines().count(), 19);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("key_id ")).count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn every_field_changes_the_bytes() {
        let base = statement();
        type Change = Box<dyn Fn(&mut DecisionStatement)>;
        let changes: Vec<(&str, Change)> = vec![
            ("site", Box::new(|s| s.site.push('x'))),
            ("request_id", Box::new(|s| s.request_id.push('x'))),
            ("reference", Box::new(|s| s.reference.push('x'))),
            ("kind", Box::new(|s| s.kind = RequestKind::Visit)),
            ("unit", Box::new(|s| s.unit.push('x'))),
            ("subject_name", Box::new(|s| s.subject_name.push('x'))),
            ("subject_nip", Box::new(|s| s.subject_nip = None)),
            ("doors", Box::new(|s| s.doors.reverse())),
            ("window_from_ms", Box::new(|s| s.window_from_ms = None)),
            ("window_until_ms", Box::new(|s| s.window_until_ms = Some(0))),
            ("reason", Box::new(|s| s.reason.push('x'))),
            (
                "letter",
                Box::new(|s| s.letter_sha256 = Some("ab".repeat(32))),
            ),
            ("decision", Box::new(|s| s.decision = Decision::Rejected)),
            ("text", Box::new(|s| s.text.push('x'))),
            ("approver", Box::new(|s| s.approver.push('x'))),
            ("key_id", Box::new(|s| s.key_id.push('x'))),
            ("signed_at_ms", Box::new(|s| s.signed_at_ms += 1)),
            ("history", Box::new(|s| s.history_sha256 = "00".repeat(32))),
        ];
        for (name, change) in changes {
            let mut s = base.clone();
            change(&mut s);
            assert_ne!(s.to_bytes(), base.to_bytes(), "{name}");
            assert_ne!(s.sha256(), base.sha256(), "{name}");
        }
        assert_eq!(statement().to_bytes(), base.to_bytes(), "deterministic");
    }

    fn record(n: i64, action: Action, account: &str) -> StepRecord {
        StepRecord {
            account: account.into(),
            role: Role::Head,
            action,
            from: Stage::Submitted,
            to: Stage::Disposed,
            at: Timestamp::from_millisecond(n).expect("in range"),
        }
    }

    #[test]
    fn the_history_digest_covers_each_step() {
        let steps = vec![
            record(1, Action::Dispose { note: "ok".into() }, "kadis"),
            record(
                2,
                Action::Verify {
                    note: String::new(),
                },
                "koord",
            ),
        ];
        let base = history_sha256(&steps);
        assert_eq!(base.len(), 64);
        assert_eq!(base, history_sha256(&steps.clone()), "deterministic");
        assert_ne!(base, history_sha256(&steps[..1]), "a step less");
        let mut edited = steps.clone();
        edited[0].action = Action::Dispose { note: "ok!".into() };
        assert_ne!(base, history_sha256(&edited), "a note");
        let mut edited = steps.clone();
        edited[1].account = "kadis".into();
        assert_ne!(base, history_sha256(&edited), "an actor");
        let mut edited = steps.clone();
        edited[1].at = Timestamp::from_millisecond(3).expect("in range");
        assert_ne!(base, history_sha256(&edited), "a time");
        let mut swapped = steps.clone();
        swapped.swap(0, 1);
        assert_ne!(base, history_sha256(&swapped), "the order");
        // The empty history is the tag alone.
        assert_eq!(
            history_sha256(&[]),
            hex::encode(Sha256::digest(b"pintu-request-history-v1\n"))
        );
    }

    #[test]
    fn only_approve_and_reject_are_decisions() {
        assert_eq!(
            decision_of(&Action::Approve { note: "n".into() }),
            Some((Decision::Approved, "n"))
        );
        assert_eq!(
            decision_of(&Action::Reject { reason: "r".into() }),
            Some((Decision::Rejected, "r"))
        );
        assert_eq!(decision_of(&Action::Inform), None);
        assert_eq!(decision_of(&Action::Verify { note: "v".into() }), None);
    }
}
