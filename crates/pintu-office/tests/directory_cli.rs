//! `pintu-office register import` and `register export`, run as a site administrator would, on
//! both databases: a malformed file refused with file:line:key and left alone, the report, the
//! `imported_into` mark, a second import that changes nothing, the export file's mode.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use pintu_office::db_test;

const REGISTER: &str = r#"# The office register.
site = "kominfo"
time_zone = "Asia/Jakarta"
doors = ["server-1"]
card_key_file = "card.key"

[[holder]]
id = "alice"
name = "Alice"
role = "staff"
cards = ["04A1B2C3"]
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "R-1"
approver = "kabid"

[[badge]]
id = "VB-01"
card = "0A0B0C0D"
"#;

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pintu-office"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run pintu-office")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn config(dir: &Path, url: &str, card_key: bool) -> std::path::PathBuf {
    let path = dir.join("office.toml");
    let key = if card_key {
        "card_key_file = \"card.key\"\n"
    } else {
        ""
    };
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{url}\"\n[security]\nsecret_key_file = \"secret.key\"\n\
             [site]\nname = \"Diskominfo\"\n{key}"
        ),
    )
    .unwrap();
    path
}

db_test!(async fn the_register_is_imported_once_marked_and_exported(t) {
    let dir = tempfile::tempdir().unwrap();
    pintu::office::keys::card_keygen(&dir.path().join("card.key")).unwrap();
    let register = dir.path().join("register.toml");
    let reg = register.to_str().unwrap();

    let cfg = config(dir.path(), &t.url, false);
    assert!(run(&cfg, &["init"]).status.success());
    std::fs::write(&register, REGISTER).unwrap();
    let out = run(&cfg, &["register", "import", reg]);
    assert!(!out.status.success());
    assert!(text(&out).contains("card_key_file"), "{}", text(&out));

    let cfg = config(dir.path(), &t.url, true);
    let bad = REGISTER.replace("role = \"staff\"", "role = \"guest\"");
    std::fs::write(&register, &bad).unwrap();
    let out = run(&cfg, &["register", "import", reg]);
    assert!(!out.status.success());
    assert!(text(&out).contains("register.toml:10: holder[0].role"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&register).unwrap(), bad, "a refused file is not marked");

    std::fs::write(&register, REGISTER).unwrap();
    let out = run(&cfg, &["register", "import", reg]);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("holders      1 added, 0 already there, 0 skipped"), "{report}");
    assert!(report.contains("badges       1 added"), "{report}");
    let marked = std::fs::read_to_string(&register).unwrap();
    assert!(marked.contains("imported_into = \"pintu-office (site kominfo)\""), "{marked}");
    assert!(marked.ends_with(REGISTER), "the rest of the file is kept byte for byte");

    let out = run(&cfg, &["register", "import", "--json", reg]);
    assert!(out.status.success(), "{}", text(&out));
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["holders"], serde_json::json!({"added": 0, "unchanged": 1, "skipped": 0}));
    assert_eq!(std::fs::read_to_string(&register).unwrap(), marked, "marked once");

    let out = run(&cfg, &["register", "export"]);
    assert!(out.status.success(), "{}", text(&out));
    let exported = String::from_utf8(out.stdout).unwrap();
    assert!(exported.contains("cards = [\"04A1B2C3\"]"), "{exported}");
    let backup = dir.path().join("backup.toml");
    let out = run(&cfg, &["register", "export", "--output", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), exported);
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the export holds raw UIDs");

    let out = run(&cfg, &["audit", "verify"]);
    assert!(out.status.success() && text(&out).contains("intact: 4 rows"), "{}", text(&out));
});
