//! After `pintu-office register import` marks a register `imported_into`, the office database is
//! the one source of truth: every `pintuctl` command that writes the register is retired with a
//! message naming what replaces it, and leaves the file byte for byte as it was; the read-only
//! commands still work on it.

use std::process::{Command, Output};

use crate::common::text;

const REGISTER: &str = r#"imported_into = "pintu-office (site site-a)"
site = "site-a"
time_zone = "Asia/Jakarta"
doors = ["door-1"]
card_key_file = "card.key"

[list]
version = 3

[[holder]]
id = "alice"
name = "Alice"
role = "staff"
cards = ["04A1B2C3D4E5F6"]
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "REQ-1"
approver = "kabid"

[[badge]]
id = "VB-01"
card = "62E3086CED"
"#;

fn pintuctl(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pintuctl"))
        .args(args)
        .env("PINTU_REGISTER", dir.join("register.toml"))
        .env("PINTU_OPERATOR", "ani")
        .env_remove("PINTU_OFFICE")
        .current_dir(dir)
        .output()
        .expect("run pintuctl")
}

#[test]
fn writing_commands_are_retired_once_the_register_is_imported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let register = dir.path().join("register.toml");
    std::fs::write(&register, REGISTER).expect("write register");
    let key = dir.path().join("card.key");
    let made = pintuctl(
        dir.path(),
        &["card-key", "--out", &key.display().to_string()],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let retired: &[(&[&str], &str)] = &[
        (
            &[
                "holder",
                "add",
                "--id",
                "bob",
                "--name",
                "Bob",
                "--role",
                "staff",
                "--valid-until",
                "2099-01-01",
                "--request-ref",
                "R",
                "--approver",
                "kabid",
            ],
            "POST /api/v1/holders",
        ),
        (
            &["holder", "edit", "alice", "--name", "Alicia"],
            "PATCH /api/v1/holders/ID",
        ),
        (
            &[
                "holder",
                "remove",
                "alice",
                "--reason",
                "left",
                "--request-ref",
                "R",
            ],
            "POST /api/v1/holders/ID/revoke",
        ),
        (
            &[
                "card",
                "revoke",
                "--card",
                "04A1B2C3D4E5F6",
                "--reason",
                "lost",
                "--request-ref",
                "R",
            ],
            "POST /api/v1/cards/CARD/revoke",
        ),
        (
            &[
                "enroll",
                "--register",
                "register.toml",
                "--holder",
                "alice",
                "--timeout",
                "1s",
            ],
            "POST /api/v1/holders/ID/cards",
        ),
        (
            &["badge", "add", "--id", "VB-02", "--card", "62E3086CEE"],
            "POST /api/v1/badges",
        ),
        (
            &[
                "badge",
                "remove",
                "VB-01",
                "--reason",
                "lost",
                "--request-ref",
                "R",
            ],
            "POST /api/v1/badges/LABEL/revoke",
        ),
        (
            &[
                "visit",
                "issue",
                "--visitor",
                "Dewi",
                "--badge",
                "VB-01",
                "--until",
                "2099-01-01",
                "--host",
                "alice",
                "--request-ref",
                "V",
                "--approver",
                "kabid",
            ],
            "visit requests",
        ),
        (&["visit", "end", "V-2026-0001"], "visit requests"),
        (
            &["publish", "--out", "list.json", "--key", "none.key"],
            "signing and publishing",
        ),
    ];
    for (args, instead) in retired {
        let out = pintuctl(dir.path(), args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "pintuctl {args:?} should be retired");
        for expected in [
            "imported into pintu-office (site site-a)",
            instead,
            "docs/operator.md",
        ] {
            assert!(
                err.contains(expected),
                "pintuctl {args:?}: no {expected:?} in:\n{err}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&register).expect("read register"),
            REGISTER,
            "pintuctl {args:?} changed the register"
        );
    }
    for args in [&["list", "holders"][..], &["show", "holder", "alice"]] {
        let out = pintuctl(dir.path(), args);
        assert!(
            out.status.success(),
            "pintuctl {args:?} reads: {}",
            text(&out.stderr)
        );
    }
}
