use std::path::Path;

use super::*;

const MINIMAL: &str = r#"
[database]
url = "sqlite:///var/lib/pintu-office/office.db"
[security]
secret_key_file = "secret.key"
[site]
name = "Diskominfo"
"#;

fn load(text: &str) -> Result<Settings, ConfigErrors> {
    Settings::from_text(Path::new("/etc/pintu-office/office.toml"), text)
}

#[test]
fn a_minimal_file_gets_safe_defaults() {
    let s = load(MINIMAL).unwrap();
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    assert!(s.plain_http_allowed());
    assert_eq!(
        s.security.secret_key_file,
        Path::new("/etc/pintu-office/secret.key")
    );
    assert_eq!(s.site.threshold, 1);
    assert_eq!(s.workflow, Chain::full());
    assert!(s.mqtt.is_none());
}

#[test]
fn the_example_config_loads() {
    let text = include_str!("../../../../config/office.example.toml");
    let s = load(text).unwrap();
    assert_eq!(s.site.threshold, 2);
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[server]\nlisten = \"0.0.0.0:80\"\n",
            "office.toml:2: server.listen: 0.0.0.0:80 is not a loopback address",
        ),
        (
            "[server]\nlisten = \"nope\"\n",
            "server.listen: expected an address",
        ),
        (
            "[server]\ncert_file = \"c.pem\"\n",
            "server.key_file: cert_file needs key_file",
        ),
        (
            "[server]\npublic_origins = [\"https://x.example/path\"]\n",
            "server.public_origins",
        ),
        (
            "[server]\nbogus = 1\n",
            "office.toml:2: server.bogus: unknown key",
        ),
    ];
    for (extra, want) in cases {
        let text = format!("{extra}{MINIMAL}");
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    let err = load(&MINIMAL.replace("sqlite:///var", "mysql://var"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("database.url"), "{err}");
    let err = load(&MINIMAL.replace("name = \"Diskominfo\"", "name = \"D\"\nthreshold = 0"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("site.threshold: expected 1 to 16"), "{err}");
}

#[test]
fn a_shorter_sop_chain_is_read_from_toml_and_a_bad_one_named() {
    let short = format!(
        "{MINIMAL}\n[[workflow.steps]]\nstep = \"approve\"\nrole = \"approver\"\nsla = \"3 menit\"\n\
         [[workflow.steps]]\nstep = \"fulfil\"\nrole = \"helpdesk\"\nsla = \"1 hari\"\n\
         [[workflow.steps]]\nstep = \"inform\"\nrole = \"helpdesk\"\nsla = \"1 hari\"\n"
    );
    let s = load(&short).unwrap();
    assert_eq!(s.workflow.steps().len(), 3);
    assert_eq!(
        s.workflow.steps()[0].sla,
        std::time::Duration::from_secs(180)
    );
    let bad = short.replace("sla = \"3 menit\"", "sla = \"tiga menit\"");
    let err = load(&bad).unwrap_err().to_string();
    assert!(err.contains("office.toml:") && err.contains("sla"), "{err}");
    let no_approve = format!(
        "{MINIMAL}\n[[workflow.steps]]\nstep = \"fulfil\"\nrole = \"helpdesk\"\nsla = \"1 hari\"\n"
    );
    let err = load(&no_approve).unwrap_err().to_string();
    assert!(err.contains("workflow.steps"), "{err}");
}

#[test]
fn the_throttle_limits_are_read_with_defaults_and_checked() {
    let s = load(MINIMAL).unwrap();
    assert_eq!(s.security.address_max_failures, 10);
    assert_eq!(
        s.security.address_window,
        std::time::Duration::from_secs(900)
    );
    assert_eq!(s.security.max_wrong_passphrases, 5);
    assert_eq!(
        s.security.passphrase_window,
        std::time::Duration::from_secs(900)
    );
    let tuned = MINIMAL.replace(
        "secret_key_file = \"secret.key\"",
        "secret_key_file = \"secret.key\"\naddress_max_failures = 3\naddress_window = \"1h\"\n\
         max_wrong_passphrases = 2\npassphrase_window = \"30m\"",
    );
    let s = load(&tuned).unwrap();
    assert_eq!(s.security.address_max_failures, 3);
    assert_eq!(
        s.security.address_window,
        std::time::Duration::from_secs(3600)
    );
    assert_eq!(s.security.max_wrong_passphrases, 2);
    assert_eq!(
        s.security.passphrase_window,
        std::time::Duration::from_secs(1800)
    );
    for (line, key) in [
        (
            "address_max_failures = 0",
            "security.address_max_failures: must be at least 1",
        ),
        (
            "max_wrong_passphrases = 0",
            "security.max_wrong_passphrases: must be at least 1",
        ),
        (
            "passphrase_window = \"0s\"",
            "security.passphrase_window: must be at least 1 s",
        ),
    ] {
        let text = MINIMAL.replace(
            "secret_key_file = \"secret.key\"",
            &format!("secret_key_file = \"secret.key\"\n{line}"),
        );
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.contains(key) && err.contains("office.toml:"),
            "{line}: {err}"
        );
    }
}
