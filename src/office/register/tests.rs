//! Unit tests of the register: edits keep comments, refusals name the item.

use super::*;

const TEXT: &str = r#"# The test register.
site = "s"
time_zone = "Asia/Jakarta"
doors = ["d"]
card_key_file = "card.key"

[[holder]]
id = "alice"   # staff since 2020
name = "Alice"
role = "staff"
cards = ["04A1B2C3"]  # badge 17
valid_from = 2025-01-01
valid_until = 2030-01-01
request_ref = "R-1"
approver = "kabid"
"#;

fn loaded() -> LoadedRegister {
    let path = PathBuf::from("register.toml");
    LoadedRegister {
        register: parse_toml(&path, TEXT).unwrap(),
        text: TEXT.into(),
        path,
    }
}

fn uid(s: &str) -> Uid {
    s.parse().unwrap()
}

fn visitor() -> NewHolder {
    NewHolder {
        name: "Vera".into(),
        unit: None,
        role: Role::Visitor,
        valid_from: Some("2026-01-05T08:00:00".into()),
        valid_until: "2026-01-05T17:00:00+07:00".into(),
        request_ref: "VIS-9".into(),
        approver: "kasi".into(),
    }
}

#[test]
fn adds_a_card_to_a_holder_keeping_comments() {
    let mut reg = loaded();
    let change = reg.enroll("alice", &uid("0A:0B:0C:0D"), None).unwrap();
    assert_eq!(change, Enrolled::CardAdded { cards: 2 });
    assert!(reg
        .text
        .contains(r#"cards = ["04A1B2C3", "0A0B0C0D"]  # badge 17"#));
    assert!(reg.text.starts_with("# The test register.\n"));
    assert!(reg.text.contains("# staff since 2020"));
    assert_eq!(reg.register.holders[0].cards.len(), 2);
    // Again: nothing to do.
    let again = reg.enroll("alice", &uid("0a0b0c0d"), None).unwrap();
    assert_eq!(again, Enrolled::AlreadyEnrolled);
}

#[test]
fn creates_a_holder() {
    let mut reg = loaded();
    let change = reg
        .enroll("vera", &uid("DEADBEEF"), Some(&visitor()))
        .unwrap();
    assert_eq!(change, Enrolled::HolderCreated);
    let h = &reg.register.holders[1];
    assert_eq!((h.id.as_str(), h.role), ("vera", Role::Visitor));
    assert_eq!(h.cards, vec!["DEADBEEF".to_string()]);
    assert!(reg.text.contains("# Added by `pintuctl enroll` on "));
    assert!(reg.text.contains("valid_from = 2026-01-05T08:00:00\n"));
    let key = CardKey::from_bytes([1; 32]);
    let payload = reg.build_payload(&key, 1, Timestamp::now()).unwrap();
    assert_eq!(payload.entries.len(), 2);
}

#[test]
fn refuses_a_card_held_by_someone_else_and_unknown_holders() {
    let mut reg = loaded();
    let e = reg.enroll("vera", &uid("04A1B2C3"), Some(&visitor()));
    let msg = e.unwrap_err().to_string();
    assert!(
        msg.contains("holder[0].cards[0]") && msg.contains("already held by \"alice\""),
        "{msg}"
    );
    let e = reg.enroll("nobody", &uid("01020304"), None).unwrap_err();
    assert!(e.to_string().contains("no holder \"nobody\""), "{e}");
    let e = reg
        .enroll("alice", &uid("01020304"), Some(&visitor()))
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(reg.text, TEXT, "a refused enrollment changes nothing");
}

/// Issue 16: a blank approver (in the file, or given to an edit) is refused, naming the
/// file, line and key; it is never signed into a list.
#[test]
fn a_blank_approver_is_refused_naming_file_line_and_key() {
    let text = TEXT.replace("approver = \"kabid\"", "approver = \"  \"");
    let path = PathBuf::from("register.toml");
    let reg = LoadedRegister {
        register: parse_toml(&path, &text).unwrap(),
        text,
        path,
    };
    let e = reg.check().unwrap_err().to_string();
    assert!(
        e.starts_with("register.toml:15: holder[0].approver: holder alice: the approver is empty"),
        "{e}"
    );

    let mut reg = loaded();
    let edit = HolderEdit {
        valid_until: Some("2031-01-01".into()),
        request_ref: Some("R-2".into()),
        approver: Some(String::new()),
        ..HolderEdit::default()
    };
    let e = reg.edit_holder("alice", &edit).unwrap_err().to_string();
    assert!(e.contains("holder alice: the approver is empty"), "{e}");
    let mut new = visitor();
    new.approver = " ".into();
    let e = reg
        .enroll("vera", &uid("01020304"), Some(&new))
        .unwrap_err();
    assert!(e.to_string().contains("the approver is empty"), "{e}");
    assert_eq!(reg.text, TEXT, "a refused edit changes nothing");
}
