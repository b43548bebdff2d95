//! pintuctl as the operator uses it: keys, signing a register, verifying lists, and the control
//! commands against a running door.

use std::os::unix::fs::PermissionsExt;

use crate::common::{pintuctl, text, Pintud, Site};

fn ok(args: &[&str]) -> String {
    ok_out(pintuctl(args))
}

fn ok_out(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "pintuctl failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

const REGISTER: &str = r#"# Register for the test site.
site = "site-a"
time_zone = "Asia/Jakarta"
doors = ["door-1"]
card_key_file = "card.key"
list_valid_for = "7days"

[list]
version = 0  # bumped by pintuctl sign

[[holder]]
id = "alice"
name = "Alice"
role = "staff"
cards = ["04A1B2C3D4E5F6"]
valid_from = 2025-01-01
valid_until = 2035-01-01
request_ref = "REQ-1"
approver = "kabid"
schedule = [{ days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], from = "00:00", until = "24:00" }]

[[holder]]
id = "vis-1"
name = "Visitor One"
role = "visitor"
cards = ["0A0B0C0D"]
valid_from = "2025-01-01T08:00:00"
valid_until = "2025-01-01T17:00:00+07:00"
request_ref = "VIS-1"
approver = "kabid"
"#;

/// `pintuctl sign` of the site dir's register with its `office` key into `OUT.signed`.
fn sign(d: &str, out: &str) -> std::process::Output {
    pintuctl(&[
        "sign",
        "--register",
        &format!("{d}/register.toml"),
        "--key",
        &format!("{d}/office.key"),
        "--out",
        &format!("{d}/{out}.signed"),
    ])
}

/// A site dir with a fresh signing key (`office`), card key and register.
fn office() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("path").to_string();
    ok(&["keygen", "--id", "office", "--dir", &d]);
    ok(&["card-key", "--out", &format!("{d}/card.key")]);
    std::fs::write(format!("{d}/register.toml"), REGISTER).expect("register");
    (dir, d)
}

#[test]
fn keygen_writes_an_owner_only_secret_and_never_overwrites() {
    let (_dir, d) = office();
    let mode = |p: &str| std::fs::metadata(p).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode(&format!("{d}/office.key")), 0o600);
    assert_eq!(mode(&format!("{d}/card.key")), 0o600);
    let public = std::fs::read_to_string(format!("{d}/office.pub")).expect("pub");
    assert!(public.contains("key_id = \"office\""));
    let again = pintuctl(&["keygen", "--id", "office", "--dir", &d]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("office.key"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn sign_bumps_the_register_version_and_verify_accepts_the_list() {
    let (_dir, d) = office();
    let out = ok_out(sign(&d, "list"));
    assert!(out.contains("version 1, 2 entries"), "{out}");
    let register = std::fs::read_to_string(format!("{d}/register.toml")).expect("register");
    assert!(
        register.contains("version = 1  # bumped by pintuctl sign"),
        "comments kept:\n{register}"
    );
    assert!(register.starts_with("# Register for the test site."));

    let summary = ok(&[
        "verify",
        &format!("{d}/list.signed"),
        "--pubkey",
        &format!("{d}/office.pub"),
    ]);
    assert!(summary.contains(": OK"), "{summary}");
    assert!(summary.contains("version     1"));
    assert!(
        summary.contains("entries     2 (staff 1, escort 0, visitor 1)"),
        "{summary}"
    );
    assert!(summary.contains("signed by   office"));

    // The list never carries a raw UID.
    let list = std::fs::read_to_string(format!("{d}/list.signed")).expect("list");
    let envelope: pintu::core::list::Envelope = serde_json::from_str(&list).expect("envelope");
    let payload = envelope.payload;
    use base64::Engine as _;
    let payload = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(payload)
            .expect("b64"),
    )
    .expect("utf8");
    assert!(
        !payload.to_uppercase().contains("04A1B2C3D4E5F6")
            && !payload.to_uppercase().contains("0A0B0C0D")
    );
    // Local register times are in the site's zone: 08:00 WIB is 01:00 UTC.
    assert!(
        payload.contains("\"valid_from\":\"2025-01-01T01:00:00Z\""),
        "{payload}"
    );

    let second = ok_out(sign(&d, "list2"));
    assert!(second.contains("version 2"), "{second}");
}

#[test]
fn verify_says_exactly_what_is_wrong() {
    let (_dir, d) = office();
    ok_out(sign(&d, "list"));
    // Rollback against a door already holding version 5.
    let out = pintuctl(&[
        "verify",
        &format!("{d}/list.signed"),
        "--pubkey",
        &format!("{d}/office.pub"),
        "--current-version",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains(
            "REJECTED (rollback): rollback: list version 1 is not above the current version 5"
        ),
        "{}",
        text(&out.stdout)
    );

    // Another key: unknown.
    ok(&["keygen", "--id", "stranger", "--dir", &d]);
    let out = pintuctl(&[
        "verify",
        &format!("{d}/list.signed"),
        "--pubkey",
        &format!("{d}/stranger.pub"),
    ]);
    assert!(
        text(&out.stdout)
            .contains("REJECTED (unknown_key): list is signed by unknown key \"office\""),
        "{}",
        text(&out.stdout)
    );

    // Tampered payload: bad signature.
    let list = std::fs::read_to_string(format!("{d}/list.signed")).expect("list");
    let mut env: pintu::core::list::Envelope = serde_json::from_str(&list).expect("envelope");
    env.payload = env.payload.replacen("e", "f", 1);
    std::fs::write(
        format!("{d}/bad.signed"),
        serde_json::to_vec(&env).expect("json"),
    )
    .expect("write");
    let out = pintuctl(&[
        "verify",
        &format!("{d}/bad.signed"),
        "--pubkey",
        &format!("{d}/office.pub"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("REJECTED (bad_signature)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn register_errors_name_the_file_line_and_key() {
    let (_dir, d) = office();
    let bad = REGISTER.replace("cards = [\"0A0B0C0D\"]", "cards = [\"0A0B0C0DZZ\"]");
    std::fs::write(format!("{d}/register.toml"), &bad).expect("register");
    let out = sign(&d, "list");
    assert!(!out.status.success());
    let line = bad
        .lines()
        .position(|l| l.contains("0A0B0C0DZZ"))
        .expect("line")
        + 1;
    let expected =
        format!("register.toml:{line}: holder[1].cards[0]: card UID has an invalid character 'Z'");
    assert!(
        text(&out.stderr).contains(&expected),
        "expected {expected:?} in {}",
        text(&out.stderr)
    );
    assert!(
        !std::path::Path::new(&format!("{d}/list.signed")).exists(),
        "nothing written on error"
    );
    assert!(
        std::fs::read_to_string(format!("{d}/register.toml"))
            .expect("reg")
            .contains("version = 0"),
        "version not bumped on error"
    );

    let dup = REGISTER.replace(
        "cards = [\"0A0B0C0D\"]",
        "cards = [\"04:A1:B2:C3:D4:E5:F6\"]",
    );
    std::fs::write(format!("{d}/register.toml"), &dup).expect("register");
    let out = sign(&d, "list");
    assert!(
        text(&out.stderr)
            .contains("holder[1].cards[0]: card 04:A1:B2:C3:D4:E5:F6 is also held by \"alice\""),
        "{}",
        text(&out.stderr)
    );

    let unknown = REGISTER.replace(
        "approver = \"kabid\"\n\"#",
        "approver = \"kabid\"\nfavourite_colour = \"blue\"\n\"#",
    );
    let unknown = format!("{unknown}favourite_colour = \"blue\"\n");
    std::fs::write(format!("{d}/register.toml"), &unknown).expect("register");
    let out = sign(&d, "list");
    assert!(
        text(&out.stderr).contains("holder[1].favourite_colour: unknown key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn hash_prints_the_keyed_hash_and_its_masked_form() {
    let (_dir, d) = office();
    let out = ok(&[
        "hash",
        "04A1B2C3D4E5F6",
        "--card-key",
        &format!("{d}/card.key"),
    ]);
    let key = pintu::office::keys::load_card_key(std::path::Path::new(&format!("{d}/card.key")))
        .expect("card key");
    let hash = key.hash(&"04A1B2C3D4E5F6".parse().expect("uid"));
    assert_eq!(out.trim(), format!("{}  {}", hash.to_hex(), hash.masked()));
}

#[test]
fn tap_status_and_events_through_pintuctl() {
    let site = Site::new();
    let config = site.write_config("");
    let list = site.sign(&site.payload(
        1,
        vec![site.entry(
            "04A1B2C3D4E5F6",
            "alice",
            "2025-01-01T00:00:00Z",
            "2035-01-01T00:00:00Z",
        )],
    ));
    std::fs::write(site.path("l.signed"), list).expect("list");
    let _door = Pintud::start(
        &config,
        &site.socket(),
        &["--list", site.path("l.signed").to_str().expect("path")],
    );
    let cfg = config.to_str().expect("path");

    let granted = ok(&["--config", cfg, "tap", "04A1B2C3D4E5F6"]);
    assert!(granted.starts_with("entry: GRANT"), "{granted}");
    assert!(granted.contains("(alice)"));
    let denied = ok(&[
        "--socket",
        site.socket().to_str().expect("path"),
        "tap",
        "0102",
    ]);
    assert!(
        denied.contains("DENY") && denied.contains("unknown_card"),
        "{denied}"
    );

    let status = ok(&["--config", cfg, "status"]);
    assert!(
        status.contains("list       version 1 (1 entries)"),
        "{status}"
    );
    assert!(
        status.contains("lock       Released") || status.contains("lock       Secured"),
        "{status}"
    );
    let events = ok(&["--config", cfg, "events", "-n", "3", "--json"]);
    let parsed: Vec<pintu::core::event::Event> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("event json"))
        .collect();
    assert_eq!(parsed.len(), 3);
    assert_eq!(
        parsed.last().map(|e| e.kind.as_str()),
        Some("access.denied")
    );

    let refused = pintuctl(&["--config", cfg, "tap", "nothex"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("the door refused: card UID has an invalid character"),
        "{}",
        text(&refused.stderr)
    );

    let missing = pintuctl(&["--socket", "/nonexistent/pintu.sock", "status"]);
    assert!(
        text(&missing.stderr)
            .contains("cannot connect to the control socket /nonexistent/pintu.sock"),
        "{}",
        text(&missing.stderr)
    );

    // Issue 16: the door-local commands take their door flags after the command too.
    let status = ok(&["status", "--config", cfg]);
    assert!(status.contains("list       version 1"), "{status}");
    let who = ok(&["who", "--socket", site.socket().to_str().expect("path")]);
    assert!(who.contains("Holder alice (alice)"), "{who}");
    let missing = pintuctl(&["status", "--socket", "/nonexistent/pintu.sock"]);
    assert!(
        text(&missing.stderr).contains("/nonexistent/pintu.sock"),
        "{}",
        text(&missing.stderr)
    );
}

/// Issue 15 item 12: a signed list (with the register's card hashes) and a signed command are
/// written owner-only, like the keys (they were 0644).
#[test]
fn signed_list_and_command_files_are_written_owner_only() {
    let (_dir, d) = office();
    ok_out(sign(&d, "list"));
    ok(&[
        "command",
        "lockdown",
        "--allow-role",
        "staff",
        "--site",
        "site-a",
        "--door",
        "door-1",
        "--operator",
        "ani",
        "--key",
        &format!("{d}/office.key"),
        "--out",
        &format!("{d}/cmd.json"),
    ]);
    let mode = |p: &str| std::fs::metadata(p).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode(&format!("{d}/list.signed")), 0o600);
    assert_eq!(mode(&format!("{d}/cmd.json")), 0o600);
}

/// Issue 15 item 12: an event's fields carry text from outside (here an inbox file name with a
/// terminal escape sequence in it); `pintuctl events` shows control characters escaped instead
/// of sending them to the operator's terminal.
#[test]
fn pintuctl_events_shows_control_characters_escaped() {
    let site = Site::new();
    let config = site.write_config("");
    let door = Pintud::start(&config, &site.socket(), &[]);
    let name = "evil\u{1b}]0;owned\u{7}\u{1b}[2J.signed";
    std::fs::create_dir_all(site.inbox()).expect("inbox");
    std::fs::write(site.inbox().join(name), b"not a list").expect("inbox file");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !door
        .events()
        .iter()
        .any(|e| e.kind.as_str() == "list.rejected")
    {
        assert!(std::time::Instant::now() < deadline, "{}", door.log_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let cfg = config.to_str().expect("path");
    let shown = ok(&["--config", cfg, "events", "-n", "5"]);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
    assert!(shown.contains("evil\\u{1b}]0;owned\\u{7}"), "{shown:?}");
}

/// Issue 15 item 11: `pintud --list FILE` with no FILE used to log a warning and start a door
/// without a list. It is a mistake in the command line: exit code 2, saying which file.
#[test]
fn pintud_with_a_missing_list_file_exits_2() {
    let site = Site::new();
    let config = site.write_config("");
    let missing = site.path("no-such-list.signed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pintud"))
        .arg("--config")
        .arg(&config)
        .arg("--list")
        .arg(&missing)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pintud");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pintud started without its --list file");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--list") && stderr.contains("no-such-list.signed"),
        "{stderr}"
    );
    assert!(
        !site.socket().exists(),
        "no control socket: nothing started"
    );
}
/// Issue 15 items 4-6: `pintuctl command` makes the floor resets, and refuses what doors refuse
/// (`"*"`, a window over 10 minutes) for them and for `unlock-once`.
#[test]
fn command_makes_the_floor_resets_and_refuses_what_doors_refuse() {
    use base64::Engine as _;
    use pintu::core::command::{Action, COMMAND_ENVELOPE_FORMAT};
    let (_dir, d) = office();
    let key = format!("{d}/office.key");
    let base = |action: &[&str], door: &str, valid: &str, out: &str| {
        let mut args: Vec<String> = vec!["command".into()];
        args.extend(action.iter().map(|a| a.to_string()));
        for a in [
            "--site",
            "site-a",
            "--door",
            door,
            "--operator",
            "kabid",
            "--key",
            &key,
            "--valid",
            valid,
            "--out",
            &format!("{d}/{out}.json"),
        ] {
            args.push(a.into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pintuctl(&args)
    };
    for (action, want) in [
        (&["reset-time-floor"][..], Action::ResetTimeFloor {}),
        (
            &["reset-list-floor", "--version", "41"][..],
            Action::ResetListFloor { version: 41 },
        ),
    ] {
        ok_out(base(action, "door-1", "5m", "reset"));
        let envelope: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{d}/reset.json")).expect("written"))
                .expect("json");
        assert_eq!(envelope["format"], COMMAND_ENVELOPE_FORMAT);
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().expect("payload"))
            .expect("base64");
        let payload: pintu::core::command::CommandPayload =
            serde_json::from_slice(&payload).expect("payload");
        assert_eq!(payload.command, want);
        assert_eq!(payload.doors, ["door-1"]);
    }
    for (action, door, valid, fragment) in [
        (&["reset-time-floor"][..], "*", "5m", "must name each door"),
        (
            &["reset-list-floor", "--version", "1"][..],
            "door-1",
            "11m",
            "at most 10m",
        ),
        (
            &["unlock-once", "--reason", "vendor"][..],
            "*",
            "5m",
            "must name each door",
        ),
    ] {
        let out = base(action, door, valid, "refused");
        assert!(!out.status.success(), "{action:?} {door} {valid}");
        assert!(
            text(&out.stderr).contains(fragment),
            "{}",
            text(&out.stderr)
        );
        assert!(!std::path::Path::new(&format!("{d}/refused.json")).exists());
    }
}

/// Runs pintuctl with its standard output on a pipe whose reader is already gone, as in
/// `pintuctl list holders | head -1` once `head` has its line.
fn pintuctl_into_closed_pipe(args: &[&str], dir: &str) -> std::process::Output {
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    drop(reader);
    std::process::Command::new(env!("CARGO_BIN_EXE_pintuctl"))
        .args(args)
        .current_dir(dir)
        .env("PINTU_REGISTER", format!("{dir}/register.toml"))
        .stdout(std::process::Stdio::from(writer))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run pintuctl")
}

/// Issue 16: `pintuctl list holders | head -1` and `pintuctl completions bash | head -1`
/// panicked (exit 101) when the reader closed the pipe. Every command ends quietly with exit 0.
#[test]
fn a_closed_pipe_ends_quietly_with_exit_0() {
    let (_dir, d) = office();
    ok_out(sign(&d, "list"));
    for args in [
        &["list", "holders"][..],
        &["list", "holders", "--json"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["show", "holder", "alice"],
        &["hash", "04A1B2C3D4E5F6", "--card-key", "card.key"],
        &["verify", "list.signed", "--pubkey", "office.pub"],
        &["--help"],
        &["holder", "--help"],
    ] {
        let out = pintuctl_into_closed_pipe(args, &d);
        assert_eq!(
            out.status.code(),
            Some(0),
            "pintuctl {args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "pintuctl {args:?} said: {}",
            text(&out.stderr)
        );
    }
    // A closed pipe is not taken for success where the command itself failed.
    let out = pintuctl_into_closed_pipe(&["show", "holder", "nobody"], &d);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

/// Issue 16: a non-UTF-8 argument was refused without saying which one.
#[test]
fn a_non_utf8_argument_is_named() {
    use std::os::unix::ffi::OsStrExt as _;
    let (_dir, d) = office();
    let name = std::ffi::OsStr::from_bytes(b"B\xffudi");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pintuctl"))
        .args(["holder", "add", "--register"])
        .arg(format!("{d}/register.toml"))
        .args(["--id", "budi", "--name"])
        .arg(name)
        .args(["--role", "staff", "--valid-until", "2030-01-01"])
        .args(["--request-ref", "R", "--approver", "A"])
        .output()
        .expect("run pintuctl");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid UTF-8 in argument 8 \"B\\xFFudi\" (after --name)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{d}/register.toml")).expect("register"),
        REGISTER
    );
}

/// Issue 16: the README's `pintuctl keygen --dir keys/` failed without `mkdir -p keys`.
#[test]
fn keygen_creates_a_missing_key_directory_owner_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("office/keys");
    let out = ok(&[
        "keygen",
        "--id",
        "k1",
        "--dir",
        keys.to_str().expect("path"),
    ]);
    assert!(out.contains("k1.key"), "{out}");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("dir").permissions().mode() & 0o777;
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(mode(&dir.path().join("office")), 0o700);
    assert_eq!(mode(&keys.join("k1.key")), 0o600);
}

/// Issue 16: `sign --out /missing/dir/x` raised the register's version before failing
/// (publish checked first, sign did not).
#[test]
fn sign_to_a_missing_directory_leaves_the_version_unchanged() {
    let (_dir, d) = office();
    let out = pintuctl(&[
        "sign",
        "--register",
        &format!("{d}/register.toml"),
        "--key",
        &format!("{d}/office.key"),
        "--out",
        &format!("{d}/missing/dir/list.signed"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("missing/dir does not exist"),
        "{}",
        text(&out.stderr)
    );
    let register = std::fs::read_to_string(format!("{d}/register.toml")).expect("register");
    assert_eq!(register, REGISTER, "the version is unchanged");
    // The next list is still version 1.
    assert!(ok_out(sign(&d, "list")).contains("version 1,"));
}

/// Issue 16: door flags are the door-local commands'; office commands do not take them.
#[test]
fn office_commands_do_not_take_door_flags() {
    let (_dir, d) = office();
    let reg = format!("{d}/register.toml");
    let out = pintuctl(&["list", "holders", "--register", &reg, "--socket", "/x.sock"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unexpected argument '--socket'"),
        "{}",
        text(&out.stderr)
    );
    // Before the command, they are accepted (for the door-local commands) and change nothing.
    let listed = ok(&["--socket", "/x.sock", "list", "holders", "--register", &reg]);
    assert!(listed.contains("alice"), "{listed}");
}
