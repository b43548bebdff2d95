//! Config errors: every error names the file, the line and the key (`FILE:LINE: KEY: message`),
//! phase two reports all its errors at once, and `pintud --check-config` says so on the command line.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use pintu::door::config::{Config, ConfigErrors};

use crate::common::{pintud, text, Site, DOOR, SITE};

/// Writes `text` as the site's `pintu.toml` and loads it.
fn load(site: &Site, text: &str) -> (PathBuf, Result<Config, ConfigErrors>) {
    let path = site.path("pintu.toml");
    std::fs::write(&path, text).expect("write config");
    let result = Config::load(&path);
    (path, result)
}

/// The errors of a config that must not load, one display line each.
fn errors(site: &Site, text: &str) -> (PathBuf, Vec<String>) {
    match load(site, text) {
        (_, Ok(_)) => panic!("config was accepted:\n{text}"),
        (path, Err(errors)) => {
            let lines: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
            // The combined display is one error per line, in the same order.
            assert_eq!(errors.to_string(), lines.join("\n"));
            (path, lines)
        }
    }
}

/// The single error of a config that must not load.
fn single_error(site: &Site, text: &str) -> (PathBuf, String) {
    let (path, errors) = errors(site, text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    (path, errors.into_iter().next().unwrap())
}

/// 1-based line of the only line containing `needle` (independent of the code under test).
fn line_of(text: &str, needle: &str) -> usize {
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(hits.len(), 1, "{needle:?} must be on exactly one line");
    hits[0]
}

/// `text` with the only occurrence of `from` replaced by `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

/// Asserts one error, exactly `FILE:LINE: KEY: MESSAGE`, with LINE the line holding `at`.
fn assert_error(site: &Site, text: &str, at: &str, key: &str, message: &str) {
    let (path, error) = single_error(site, text);
    let expected = format!("{}:{}: {key}: {message}", path.display(), line_of(text, at));
    assert_eq!(error, expected);
}

/// Asserts one error starting `FILE:LINE: KEY: ` whose message contains `fragment`.
fn assert_error_contains(site: &Site, text: &str, at: &str, key: &str, fragment: &str) {
    let (path, error) = single_error(site, text);
    let prefix = format!("{}:{}: {key}: ", path.display(), line_of(text, at));
    assert!(
        error.starts_with(&prefix),
        "expected prefix {prefix:?}, got {error:?}"
    );
    assert!(
        error[prefix.len()..].contains(fragment),
        "expected {fragment:?} in {error:?}"
    );
}

#[test]
fn base_config_is_valid() {
    let site = Site::new();
    let (_, cfg) = load(&site, &site.config_text(""));
    let cfg = cfg.expect("the fixture config is valid");
    assert_eq!((cfg.site.as_str(), cfg.door.as_str()), (SITE, DOOR));
    assert_eq!(cfg.trust.threshold, 1);
    assert_eq!(cfg.trust.keys.len(), 1);
    assert_eq!(cfg.unlock_for, std::time::Duration::from_secs(1));
    assert_eq!(cfg.state_dir, site.path("state"), "relative to the file");
}

// --- phase one: TOML and value formats ------------------------------------------------------------

#[test]
fn unknown_top_level_key_is_named_with_its_line() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "state_dir = \"state\"\n",
        "state_dir = \"state\"\ncolour = \"red\"\n",
    );
    assert_error(&site, &text, "colour", "colour", "unknown key");
}

#[test]
fn unknown_key_inside_a_table_is_named_with_its_path_and_line() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "unlock_for = \"1s\"\n",
        "unlock_for = \"1s\"\ncolour = \"red\"\n",
    );
    assert_error(&site, &text, "colour", "door.colour", "unknown key");
}

#[test]
fn unknown_key_inside_an_array_of_tables_is_named_with_its_index() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "backend = \"sim\"\n",
        "backend = \"sim\"\nbeep = true\n",
    );
    assert_error(&site, &text, "beep", "reader[0].beep", "unknown key");
}

#[test]
fn bad_duration_is_explained() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "unlock_for = \"1s\"",
        "unlock_for = \"5x\"",
    );
    assert_error(
        &site,
        &text,
        "unlock_for",
        "door.unlock_for",
        "expected a duration like \"5s\", found \"5x\"",
    );
}

#[test]
fn bad_size_is_explained() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "max_size = \"1MiB\"",
        "max_size = \"lots\"",
    );
    assert_error(
        &site,
        &text,
        "max_size",
        "list.max_size",
        "expected a size like \"64MiB\", found \"lots\"",
    );
}

#[test]
fn bad_file_mode_is_explained() {
    let site = Site::new();
    let text = edit(&site.config_text(""), "mode = \"0600\"", "mode = \"0999\"");
    assert_error(
        &site,
        &text,
        "mode =",
        "control.mode",
        "expected an octal file mode like \"0660\", found \"0999\"",
    );
}

#[test]
fn wrong_value_type_is_named() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "threshold = 1",
        "threshold = \"two\"",
    );
    assert_error_contains(&site, &text, "threshold", "trust.threshold", "invalid type");
}

#[test]
fn unknown_enum_value_is_named() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "backend = \"sim\"",
        "backend = \"gpio\"",
    );
    assert_error_contains(&site, &text, "backend", "reader[0].backend", "gpio");
}

#[test]
fn missing_required_key_is_named() {
    let site = Site::new();
    let base = site.config_text("");
    let text = edit(&base, "id = \"door-1\"\n", "");
    // The key is absent, so the line is that of its table.
    assert_error_contains(&site, &text, "[door]", "door.id", "missing required key");
}

#[test]
fn invalid_toml_syntax_reports_the_line() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "cache_size = \"4MiB\"",
        "cache_size = \"4MiB",
    );
    let (path, error) = single_error(&site, &text);
    let prefix = format!("{}:{}: ", path.display(), line_of(&text, "cache_size"));
    assert!(
        error.starts_with(&prefix),
        "{error:?} should start with {prefix:?}"
    );
    assert!(error.len() > prefix.len(), "with a message: {error:?}");
    assert!(!error.contains('\n'), "one line: {error:?}");
}

#[test]
fn unreadable_config_file_is_named() {
    let site = Site::new();
    let path = site.path("absent.toml");
    let err = Config::load(&path).unwrap_err();
    assert_eq!(err.0.len(), 1);
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read config file", path.display())),
        "{shown}"
    );
}

// --- phase two: meaning ---------------------------------------------------------------------------

#[test]
fn bad_base64_public_key_is_named_by_index() {
    let site = Site::new();
    let key = B64.encode(site.keys[0].1.verifying_key().to_bytes());
    let text = edit(&site.config_text(""), &key, "not*base64");
    assert_error(
        &site,
        &text,
        "not*base64",
        "trust.keys[0].public_key",
        "expected a base64 ed25519 public key (32 bytes)",
    );
}

#[test]
fn public_key_of_wrong_length_is_named() {
    let site = Site::new();
    let key = B64.encode(site.keys[0].1.verifying_key().to_bytes());
    let text = edit(&site.config_text(""), &key, &B64.encode([1u8; 16]));
    assert_error(
        &site,
        &text,
        "public_key",
        "trust.keys[0].public_key",
        "expected a base64 ed25519 public key of 32 bytes, found 16 bytes",
    );
}

#[test]
fn weak_public_key_is_refused() {
    let site = Site::new();
    let key = B64.encode(site.keys[0].1.verifying_key().to_bytes());
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let text = edit(&site.config_text(""), &key, &B64.encode(identity));
    assert_error(
        &site,
        &text,
        "public_key",
        "trust.keys[0].public_key",
        "weak ed25519 public key (small-order point) refused",
    );
}

fn second_key(site: &Site, id: &str, key_index: usize) -> String {
    format!(
        "\n[[trust.keys]]\nid = \"{id}\"\npublic_key = \"{}\"\n",
        B64.encode(site.keys[key_index].1.verifying_key().to_bytes())
    )
}

#[test]
fn duplicate_key_id_is_refused() {
    let site = Site::new();
    // A different key under an id already used.
    let base = site.config_text("");
    let text = edit(
        &base,
        "\n[list]\n",
        &format!(
            "{}\n[list]\n",
            second_key(&site, "k1", 1).replace("\"k1\"", "\"k1\" # again")
        ),
    );
    assert_error(
        &site,
        &text,
        "# again",
        "trust.keys[1].id",
        "key id \"k1\" is listed twice",
    );
}

#[test]
fn same_public_key_under_two_ids_is_refused() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "\n[list]\n",
        &format!("{}\n[list]\n", second_key(&site, "k1-again", 0)),
    );
    let (path, error) = single_error(&site, &text);
    // The second public_key line: the last line holding "public_key".
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("public_key"))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap();
    assert_eq!(
        error,
        format!(
            "{}:{line}: trust.keys[1].public_key: this public key is already listed under another id",
            path.display()
        )
    );
}

#[test]
fn threshold_above_the_key_count_is_refused() {
    let site = Site::new();
    let text = edit(&site.config_text(""), "threshold = 1", "threshold = 3");
    assert_error(
        &site,
        &text,
        "threshold",
        "trust.threshold",
        "3 signatures required but only 1 keys are trusted",
    );
}

#[test]
fn threshold_zero_is_refused() {
    let site = Site::new();
    let text = edit(&site.config_text(""), "threshold = 1", "threshold = 0");
    assert_error(
        &site,
        &text,
        "threshold",
        "trust.threshold",
        "must be at least 1",
    );
}

#[test]
fn unreadable_card_key_file_is_named() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "card_key_file = \"card.key\"",
        "card_key_file = \"missing.key\"",
    );
    assert_error_contains(
        &site,
        &text,
        "card_key_file",
        "trust.card_key_file",
        &format!("cannot read {}", site.path("missing.key").display()),
    );
}

#[test]
fn bad_card_key_content_is_named() {
    let site = Site::new();
    std::fs::write(site.path("card.key"), "not a hex key\n").unwrap();
    assert_error_contains(
        &site,
        &site.config_text(""),
        "card_key_file",
        "trust.card_key_file",
        "card key is not hex",
    );
    std::fs::write(site.path("card.key"), "abcd\n").unwrap();
    assert_error_contains(
        &site,
        &site.config_text(""),
        "card_key_file",
        "trust.card_key_file",
        "card key must be 32 bytes (64 hex digits), found 2",
    );
}

#[test]
fn duplicate_reader_name_is_refused() {
    let site = Site::new();
    let text = site.config_text(
        "\n[[reader]]\nname = \"entry\" # twice\nrole = \"exit\"\nbackend = \"sim\"\n",
    );
    assert_error(
        &site,
        &text,
        "# twice",
        "reader[1].name",
        "reader name \"entry\" is used twice",
    );
}

#[test]
fn unlock_for_out_of_range_is_refused() {
    let site = Site::new();
    for value in ["20m", "10ms"] {
        let text = edit(
            &site.config_text(""),
            "unlock_for = \"1s\"",
            &format!("unlock_for = \"{value}\""),
        );
        assert_error(
            &site,
            &text,
            "unlock_for",
            "door.unlock_for",
            "must be between 100ms and 10m",
        );
    }
}

#[test]
fn invalid_site_id_is_refused() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "site = \"site-a\"",
        "site = \"site a/b\"",
    );
    assert_error(
        &site,
        &text,
        "site =",
        "site",
        "\"site a/b\" is not a valid id: use letters, digits, '-', '_' or '.' (1-64 chars)",
    );
}

#[test]
fn all_phase_two_errors_are_reported_at_once() {
    let site = Site::new();
    let mut text = site.config_text("");
    text = edit(&text, "site = \"site-a\"", "site = \"bad site\"");
    text = edit(&text, "unlock_for = \"1s\"", "unlock_for = \"1h\"");
    text = edit(&text, "threshold = 1", "threshold = 0");
    text = edit(
        &text,
        "card_key_file = \"card.key\"",
        "card_key_file = \"gone.key\"",
    );
    let (path, errors) = errors(&site, &text);
    let at =
        |needle: &str, key: &str| format!("{}:{}: {key}: ", path.display(), line_of(&text, needle));
    let expected = [
        at("site =", "site"),
        at("threshold", "trust.threshold"),
        at("card_key_file", "trust.card_key_file"),
        at("unlock_for", "door.unlock_for"),
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for prefix in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(&prefix)),
            "no error starting {prefix:?} in {errors:#?}"
        );
    }
}

// --- through the binary ---------------------------------------------------------------------------

#[test]
fn check_config_accepts_a_good_file() {
    let site = Site::new();
    let path = site.write_config("");
    let out = pintud(&["--check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("OK"), "{stdout}");
    assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    assert!(
        !site.state_dir().exists(),
        "checking a config does not create the state dir"
    );
}

#[test]
fn check_config_rejects_a_bad_file_with_exit_2_and_the_error_on_stderr() {
    let site = Site::new();
    let text_ = edit(
        &site.config_text(""),
        "unlock_for = \"1s\"",
        "unlock_for = \"5x\"",
    );
    let path = site.path("pintu.toml");
    std::fs::write(&path, &text_).unwrap();
    let out = pintud(&["--check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let expected = format!(
        "{}:{}: door.unlock_for: expected a duration like \"5s\", found \"5x\"",
        path.display(),
        line_of(&text_, "unlock_for")
    );
    assert!(
        stderr.lines().any(|l| l == expected),
        "expected line {expected:?} in stderr:\n{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn demo_config_validates() {
    let path = repo_file("config/demo.toml");
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.trust.keys.len(), 1);
    let out = pintud(&["--check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

#[test]
fn example_config_validates_when_its_card_key_exists() {
    let example = repo_file("config/pintu.example.toml");
    if !example.exists() {
        eprintln!("skipped: {} does not exist yet", example.display());
        return;
    }
    let original = std::fs::read_to_string(&example).expect("read example");

    // As shipped: the only acceptable problem is the card key file, absent on this machine.
    if let Err(errors) = Config::load(&example) {
        for e in &errors.0 {
            assert_eq!(
                e.key, "trust.card_key_file",
                "the example config has an error other than its card key file: {e}"
            );
        }
    }

    // In a temp dir without its card key file: the error names trust.card_key_file.
    let site = Site::new();
    let mut doc: toml_edit::DocumentMut = original.parse().expect("example is TOML");
    doc["trust"]["card_key_file"] = toml_edit::value("no-such-card.key");
    let (path, errors) = errors(&site, &doc.to_string());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(&format!("{}:", path.display()))
            && errors[0].contains(": trust.card_key_file: "),
        "{errors:#?}"
    );

    // With a card key file present, it validates.
    doc["trust"]["card_key_file"] = toml_edit::value("card.key");
    let (_, result) = load(&site, &doc.to_string());
    result.unwrap_or_else(|e| panic!("example config with a card key:\n{e}"));
}

#[test]
fn missing_required_top_level_key_is_named() {
    let site = Site::new();
    let text = edit(&site.config_text(""), "state_dir = \"state\"\n", "");
    let (path, error) = single_error(&site, &text);
    // A top-level key has no line of its own to point at.
    assert_eq!(
        error,
        format!("{}: state_dir: missing required key", path.display())
    );
}

// --- reader backends -------------------------------------------------------------------------------

#[test]
fn serial_and_pcsc_readers_get_their_settings_and_defaults() {
    use pintu::door::config::{PcscSettings, ReaderBackend, SerialProtocol, UidFormat};
    let site = Site::new();
    let text = site.config_text(
        "\n[[reader]]\nname = \"uart\"\nrole = \"exit\"\nbackend = \"serial\"\nport = \"/dev/ttyAMA0\"\nprotocol = \"em4100\"\n\n[[reader]]\nname = \"usb\"\nbackend = \"pcsc\"\npcsc_reader = \"ACR122\"\n\n[[reader]]\nname = \"wiegand\"\nbackend = \"serial\"\nport = \"/dev/ttyUSB0\"\nbaud = 115200\nprotocol = \"ascii-line\"\nuid_format = \"decimal\"\nhold = \"250ms\"\n",
    );
    let (_, cfg) = load(&site, &text);
    let cfg = cfg.expect("valid readers");
    assert_eq!(cfg.readers.len(), 4);
    match &cfg.readers[1].backend {
        ReaderBackend::Serial(s) => {
            assert_eq!(s.port, std::path::PathBuf::from("/dev/ttyAMA0"));
            assert_eq!(
                (s.baud, s.protocol, s.uid_format),
                (9600, SerialProtocol::Em4100, UidFormat::Hex)
            );
            assert_eq!(s.hold, std::time::Duration::from_secs(1));
        }
        other => panic!("expected a serial reader, got {other:?}"),
    }
    assert_eq!(
        cfg.readers[2].backend,
        ReaderBackend::Pcsc(PcscSettings {
            reader_pattern: Some("ACR122".into())
        })
    );
    match &cfg.readers[3].backend {
        ReaderBackend::Serial(s) => {
            assert_eq!(
                (s.baud, s.protocol, s.uid_format),
                (115200, SerialProtocol::AsciiLine, UidFormat::Decimal)
            );
            assert_eq!(s.hold, std::time::Duration::from_millis(250));
        }
        other => panic!("expected a serial reader, got {other:?}"),
    }
}

#[test]
fn serial_reader_without_port_or_protocol_names_both() {
    let site = Site::new();
    let text = site.config_text("\n[[reader]]\nname = \"uart\"\nbackend = \"serial\"\n");
    let (path, errors) = errors(&site, &text);
    let line = line_of(&text, "backend = \"serial\"");
    assert_eq!(
        errors,
        vec![
            format!("{}:{line}: reader[1].backend: a serial reader needs `protocol` (\"em4100\" or \"ascii-line\")", path.display()),
            format!("{}:{line}: reader[1].backend: a serial reader needs `port` (e.g. \"/dev/ttyAMA0\")", path.display()),
        ]
    );
}

#[test]
fn backend_specific_keys_on_the_wrong_backend_are_refused() {
    let site = Site::new();
    let text = site
        .config_text("\n[[reader]]\nname = \"usb\"\nbackend = \"pcsc\"\nport = \"/dev/ttyS0\"\n");
    assert_error(
        &site,
        &text,
        "port = \"/dev/ttyS0\"",
        "reader[1].port",
        "only for serial readers",
    );
    let text = site.config_text(
        "\n[[reader]]\nname = \"uart\"\nbackend = \"serial\"\nport = \"/dev/ttyS0\"\nprotocol = \"em4100\"\nuid_format = \"hex\"\n",
    );
    assert_error(
        &site,
        &text,
        "uid_format = \"hex\"",
        "reader[1].uid_format",
        "only for ascii-line readers",
    );
    let text =
        site.config_text("\n[[reader]]\nname = \"sim2\"\nbackend = \"sim\"\npcsc_reader = \"x\"\n");
    assert_error(
        &site,
        &text,
        "pcsc_reader = \"x\"",
        "reader[1].pcsc_reader",
        "only for pcsc readers",
    );
}

#[test]
fn unknown_serial_protocol_is_named() {
    let site = Site::new();
    let text = site.config_text(
        "\n[[reader]]\nname = \"uart\"\nbackend = \"serial\"\nport = \"/dev/ttyS0\"\nprotocol = \"wiegand26\"\n",
    );
    assert_error_contains(
        &site,
        &text,
        "protocol = \"wiegand26\"",
        "reader[1].protocol",
        "unknown variant `wiegand26`",
    );
}

// --- GPIO lock and inputs --------------------------------------------------------------------------

/// The base config with `[lock]`/`[inputs]` text placed before the readers.
/// The site's config with `gpio` sections; a declared test bench, since the site's reader is
/// simulated and a real lock next to it is refused otherwise (issue 15 item 2).
fn with_gpio(site: &Site, gpio: &str) -> String {
    edit(
        &edit(
            &site.config_text(""),
            "unlock_for = \"1s\"",
            "unlock_for = \"1s\"\nbench = true",
        ),
        "[[reader]]",
        &format!("{gpio}\n[[reader]]"),
    )
}

/// Issue 15 item 2: a real lock next to a simulated reader or simulated inputs would let the
/// control socket open a real door; refused at file:line:key unless `[door] bench = true`.
#[test]
fn a_real_lock_with_simulated_readers_or_inputs_is_refused_unless_bench() {
    let site = Site::new();
    let lock = "[lock]\nbackend = \"gpiocdev\"\npin = 17\n\n";
    let text = edit(
        &site.config_text(""),
        "[[reader]]",
        &format!("{lock}[[reader]]"),
    );
    assert_error_contains(
        &site,
        &text,
        "backend = \"sim\"",
        "reader[0].backend",
        "reader \"entry\" is simulated next to a real lock",
    );
    // A real reader, but simulated inputs named explicitly.
    let real_reader = edit(&text, "backend = \"sim\"", "backend = \"pcsc\"");
    let (_, cfg) = load(&site, &real_reader);
    let cfg = cfg.expect("a real lock with a real reader and no inputs is a door");
    assert!(!cfg.bench);
    let sim_inputs = edit(
        &real_reader,
        "[[reader]]",
        "[inputs]\nbackend = \"sim\"\n\n[[reader]]",
    );
    assert_error_contains(
        &site,
        &sim_inputs,
        "backend = \"sim\"",
        "inputs.backend",
        "simulated inputs next to a real lock",
    );
    // No reader at all: the stand-in simulated reader counts too.
    let no_reader = text.replace(
        "[[reader]]\nname = \"entry\"\nrole = \"entry\"\nbackend = \"sim\"\n",
        "",
    );
    assert!(!no_reader.contains("[[reader]]"));
    assert_error_contains(
        &site,
        &no_reader,
        "backend = \"gpiocdev\"",
        "lock.backend",
        "a real lock needs at least one real [[reader]]",
    );
    // The explicit bench setting allows it.
    let bench = edit(
        &text,
        "unlock_for = \"1s\"",
        "unlock_for = \"1s\"\nbench = true",
    );
    let (_, cfg) = load(&site, &bench);
    assert!(cfg.expect("a declared bench").bench);
}

#[test]
fn gpio_lock_and_inputs_get_their_settings() {
    use pintu::core::doorstate::LockType;
    use pintu::door::config::{GpioBackend, GpioLine, Level, LockHardware, Pull};
    let site = Site::new();
    let text = with_gpio(
        &site,
        "[lock]\nbackend = \"gpiocdev\"\ntype = \"fail-safe\"\npin = 17\nrelay_active = \"low\"\n\n[inputs]\nbackend = \"gpiocdev\"\ncontact_pin = 27\nexit_pin = 22\ndebounce = \"50ms\"\n",
    );
    let (_, cfg) = load(&site, &text);
    let cfg = cfg.expect("valid GPIO config");
    assert_eq!(
        cfg.lock,
        LockHardware::Gpiocdev {
            chip: "/dev/gpiochip0".into(),
            line: GpioLine {
                pin: 17,
                active: Level::Low
            }
        }
    );
    assert_eq!(cfg.lock_type, LockType::FailSafe);
    assert_eq!(cfg.inputs.backend, GpioBackend::Gpiocdev);
    assert_eq!(
        cfg.inputs.contact,
        Some(GpioLine {
            pin: 27,
            active: Level::High
        })
    );
    assert_eq!(
        cfg.inputs.exit,
        Some(GpioLine {
            pin: 22,
            active: Level::Low
        })
    );
    assert_eq!(
        (cfg.inputs.pull, cfg.inputs.debounce),
        (Pull::Up, std::time::Duration::from_millis(50))
    );
    assert!(cfg.door_settings.relock_on_close);
}

#[test]
fn gpio_pins_must_be_on_the_header_and_used_once() {
    let site = Site::new();
    let text = with_gpio(&site, "[lock]\nbackend = \"rpi-pal\"\npin = 40\n");
    assert_error(
        &site,
        &text,
        "pin = 40",
        "lock.pin",
        "GPIO 40 is not a usable BCM pin on the 40-pin header (use 2 to 27)",
    );
    let text = with_gpio(&site, "[lock]\nbackend = \"rpi-pal\"\npin = 17\n\n[inputs]\nbackend = \"rpi-pal\"\ncontact_pin = 17\n");
    assert_error(
        &site,
        &text,
        "contact_pin = 17",
        "inputs.contact_pin",
        "GPIO 17 is already used by lock.pin",
    );
}

#[test]
fn gpio_keys_that_do_not_fit_the_backend_are_refused() {
    let site = Site::new();
    let text = with_gpio(&site, "[lock]\nbackend = \"gpiocdev\"\n");
    assert_error(
        &site,
        &text,
        "backend = \"gpiocdev\"",
        "lock.backend",
        "a GPIO lock needs `pin` (the BCM number driving the relay)",
    );
    let text = with_gpio(&site, "[lock]\npin = 17\n");
    assert_error(
        &site,
        &text,
        "pin = 17",
        "lock.pin",
        "only for a GPIO lock backend (rpi-pal or gpiocdev)",
    );
    let text = with_gpio(&site, "[inputs]\ncontact_pin = 27\n");
    assert_error_contains(
        &site,
        &text,
        "contact_pin = 27",
        "inputs.contact_pin",
        "set, but inputs.backend is sim",
    );
    let text = edit(
        &site.config_text(""),
        "unlock_for = \"1s\"",
        "unlock_for = \"1s\"\nheld_open_prealarm = \"30s\"\nheld_open_alarm = \"10s\"",
    );
    assert_error(
        &site,
        &text,
        "held_open_alarm",
        "door.held_open_alarm",
        "must not be shorter than door.held_open_prealarm",
    );
}

#[test]
fn mqtt_section_defaults_and_errors() {
    let site = Site::new();
    let base = site.config_text("\n[mqtt]\nhost = \"broker.example\"\ninsecure = true\n");
    let (_, cfg) = load(&site, &base);
    let mqtt = cfg.expect("valid").mqtt.expect("mqtt configured");
    assert_eq!(mqtt.port, 1883);
    assert_eq!(mqtt.client_id, format!("pintu-{SITE}-{DOOR}"));
    assert_eq!(mqtt.topic_prefix, "pintu");
    assert_eq!(mqtt.inflight, 100);
    assert!(mqtt.tls.is_none() && mqtt.credentials.is_none());
    assert!(mqtt.insecure);

    // Plain TCP only when asked for by name (issue 15 item 9); the error names [mqtt] host.
    assert_error_contains(
        &site,
        &edit(&base, "insecure = true\n", ""),
        "host = ",
        "mqtt.host",
        "set `insecure = true`",
    );

    assert_error_contains(
        &site,
        &edit(
            &base,
            "host = \"broker.example\"",
            "host = \"broker.example\"\ntopic_prefix = \"pintu/#\"",
        ),
        "topic_prefix",
        "mqtt.topic_prefix",
        "not a usable topic prefix",
    );
    assert_error_contains(
        &site,
        &edit(
            &base,
            "host = \"broker.example\"",
            "host = \"broker.example\"\npassword_file = \"nope.txt\"\nusername = \"door\"",
        ),
        "password_file",
        "mqtt.password_file",
        "cannot read",
    );
    assert_error_contains(
        &site,
        &edit(
            &base,
            "host = \"broker.example\"",
            "host = \"broker.example\"\ninflight = 0",
        ),
        "inflight",
        "mqtt.inflight",
        "between 1 and 1000",
    );
    assert_error_contains(
        &site,
        &format!("{base}\n[mqtt.tls]\nca_file = \"card.key\"\nclient_cert_file = \"card.key\"\n"),
        "client_cert_file",
        "mqtt.tls.client_cert_file",
        "needs client_key_file too",
    );
    // TLS switches the default port; a password file is read and trimmed.
    std::fs::write(site.path("pw"), "s3cret\n").expect("pw");
    let (_, cfg) = load(
        &site,
        &format!(
            "{}\n[mqtt.tls]\nca_file = \"card.key\"\n",
            edit(
                &base,
                "host = \"broker.example\"",
                "host = \"broker.example\"\nusername = \"door\"\npassword_file = \"pw\""
            )
        ),
    );
    let mqtt = cfg.expect("valid").mqtt.expect("mqtt");
    assert_eq!(mqtt.port, 8883);
    assert_eq!(mqtt.credentials, Some(("door".into(), "s3cret".into())));
    // An unknown key is named.
    assert_error_contains(
        &site,
        &edit(
            &base,
            "host = \"broker.example\"",
            "host = \"broker.example\"\nqos = 2",
        ),
        "qos",
        "mqtt.qos",
        "unknown key",
    );
}

#[test]
fn visits_flood_and_clock_sections() {
    let site = Site::new();
    let base = site.config_text(
        "\n[visits]\nescort_window = \"15s\"\nanti_passback = \"hard\"\nescort_roles = [\"escort\"]\n\n[visits.escort_window_by_role]\nescort = \"20s\"\n\n[flood]\nmax_failures = 3\n\n[clock]\nvisitors_when_untrusted = true\n",
    );
    let (_, cfg) = load(&site, &base);
    let p = cfg.expect("valid").procedure;
    assert_eq!(p.escort.window, std::time::Duration::from_secs(15));
    assert_eq!(
        p.escort.role_windows,
        vec![(
            pintu::core::list::Role::Escort,
            std::time::Duration::from_secs(20)
        )]
    );
    assert_eq!(p.anti_passback, pintu::core::presence::AntiPassback::Hard);
    assert_eq!(p.flood.max_failures, 3);
    assert!(p.visitors_when_clock_untrusted);

    assert_error(
        &site,
        &edit(
            &base,
            "escort_roles = [\"escort\"]",
            "escort_roles = [\"escort\", \"visitor\"]",
        ),
        "escort_roles",
        "visits.escort_roles",
        "a visitor never escorts",
    );
    assert_error(
        &site,
        &edit(&base, "escort_window = \"15s\"", "escort_window = \"20m\""),
        "escort_window = ",
        "visits.escort_window",
        "must be between 1s and 10m",
    );
    assert_error_contains(
        &site,
        &edit(
            &base,
            "anti_passback = \"hard\"",
            "anti_passback = \"strict\"",
        ),
        "anti_passback",
        "visits.anti_passback",
        "unknown variant",
    );
}

// --- [trust] command_keys, [clock] max_ahead_of_signed (issue 15 items 4 and 5) -----------------

/// A `[[trust.command_keys]]` block for the site's key `key_index` under `id`.
fn command_key(site: &Site, id: &str, key_index: usize) -> String {
    format!(
        "\n[[trust.command_keys]]\nid = \"{id}\"\npublic_key = \"{}\"\n",
        B64.encode(site.keys[key_index].1.verifying_key().to_bytes())
    )
}

#[test]
fn command_keys_default_to_the_list_keys_and_can_be_their_own() {
    let site = Site::new();
    let (_, cfg) = load(&site, &site.config_text(""));
    let cfg = cfg.expect("valid");
    assert_eq!(cfg.command_trust.keys.len(), 1);
    assert_eq!(cfg.command_trust.keys[0].id, "k1");
    assert_eq!(cfg.command_trust.threshold, cfg.trust.threshold);
    assert_eq!(
        cfg.procedure.clock_max_ahead,
        std::time::Duration::from_secs(3600)
    );

    let text = edit(
        &site.config_text(""),
        "\n[list]\n",
        &format!("{}\n[list]\n", command_key(&site, "ops", 1)),
    );
    let (_, cfg) = load(&site, &text);
    let cfg = cfg.expect("valid");
    assert_eq!(cfg.command_trust.keys.len(), 1);
    assert_eq!(cfg.command_trust.keys[0].id, "ops");
    assert_eq!(cfg.command_trust.threshold, 1);
    assert_eq!(cfg.trust.keys[0].id, "k1", "the list keys are unchanged");
}

#[test]
fn a_command_key_id_naming_another_list_key_is_refused() {
    let site = Site::new();
    // "k1" is the list key k1; here it would name the site's second key.
    let text = edit(
        &site.config_text(""),
        "\n[list]\n",
        &format!(
            "{}\n[list]\n",
            command_key(&site, "k1", 1).replace("public_key", "public_key  ")
        ),
    );
    assert_error_contains(
        &site,
        &text,
        "public_key  ",
        "trust.command_keys[0].public_key",
        "use one id per key",
    );
}

#[test]
fn command_threshold_above_the_command_keys_is_refused() {
    let site = Site::new();
    let text = edit(
        &site.config_text(""),
        "\n[list]\n",
        &format!(
            "{}command_threshold = 2\n[list]\n",
            command_key(&site, "ops", 1)
        ),
    );
    // `command_threshold` follows the array of tables, so TOML puts it in the last
    // command key's table: write it in [trust] instead.
    let text = text.replace("command_threshold = 2\n", "");
    let text = edit(
        &text,
        "card_key_file = \"card.key\"\n",
        "card_key_file = \"card.key\"\ncommand_threshold = 2\n",
    );
    assert_error(
        &site,
        &text,
        "command_threshold = 2",
        "trust.command_threshold",
        "2 signatures required but only 1 command keys are trusted",
    );
}

#[test]
fn max_ahead_of_signed_out_of_range_is_refused() {
    let site = Site::new();
    let text = site.config_text("\n[clock]\nmax_ahead_of_signed = \"10s\"\n");
    assert_error(
        &site,
        &text,
        "max_ahead_of_signed",
        "clock.max_ahead_of_signed",
        "must be between 1m and 400days",
    );
}

/// Issue 24 item 2: `[visits] presence_expiry`: a duration or "off"; unset, 12 h on a door
/// without an exit reader and off on a door with one.
#[test]
fn presence_expiry_defaults_by_door_and_is_checked() {
    use std::time::Duration;
    let site = Site::new();
    let (_, cfg) = load(&site, &site.config_text(""));
    assert_eq!(
        cfg.expect("valid").procedure.presence_expiry,
        Some(Duration::from_secs(12 * 3600)),
        "the fixture door has only an entry reader"
    );
    let exit = "\n[[reader]]\nname = \"exit\"\nrole = \"exit\"\nbackend = \"sim\"\n";
    let (_, cfg) = load(&site, &site.config_text(exit));
    assert_eq!(cfg.expect("valid").procedure.presence_expiry, None);
    let set = |v: &str| site.config_text(&format!("\n[visits]\npresence_expiry = {v}\n"));
    let (_, cfg) = load(&site, &set("\"90m\""));
    assert_eq!(
        cfg.expect("valid").procedure.presence_expiry,
        Some(Duration::from_secs(5400))
    );
    let (_, cfg) = load(&site, &set("\"off\""));
    assert_eq!(cfg.expect("valid").procedure.presence_expiry, None);
    assert_error(
        &site,
        &set("\"10s\""),
        "presence_expiry",
        "visits.presence_expiry",
        "must be between 1m and 30days, or \"off\"",
    );
    assert_error_contains(
        &site,
        &set("\"soon\""),
        "presence_expiry",
        "visits.presence_expiry",
        "expected a duration like \"12h\", or \"off\"",
    );
}
