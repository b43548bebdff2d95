//! The `pintu-office` commands, run as a site administrator would: init, check-config, migrate,
//! the first administrator, a lost password, and `audit verify` catching an edit made with plain
//! SQL — on both databases.

use std::path::Path;
use std::process::{Command, Output};

use pintu_office::db_test;

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

/// A config for `url` in `dir` (the key file next to it).
fn config(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("office.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{url}\"\n[security]\nsecret_key_file = \"secret.key\"\n\
             [site]\nname = \"Diskominfo\"\n"
        ),
    )
    .unwrap();
    path
}

db_test!(async fn an_administrator_sets_up_the_office_and_audit_verify_catches_an_edit(t) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &t.url);
    let out = run(&cfg, &["check-config"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("site: Diskominfo"));

    // Without a key, commands that need it say how to make one.
    let out = run(&cfg, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("secret.key"), "{}", text(&out));
    let out = run(&cfg, &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&cfg, &["init"]);
    assert!(!out.status.success() && text(&out).contains("exists already"), "{}", text(&out));

    let out = run(&cfg, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "kopi tubruk pagi hari\n").unwrap();
    let pw_arg = pw.to_str().unwrap();
    let out = run(&cfg, &["account", "create-admin", "--username", "admin", "--name", "Admin Satu", "--password-file", pw_arg]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&pw, "short\n").unwrap();
    let out = run(&cfg, &["account", "reset-password", "admin", "--password-file", pw_arg]);
    assert!(!out.status.success() && text(&out).contains("12"), "{}", text(&out));
    std::fs::write(&pw, "teh manis sore hari\n").unwrap();
    let out = run(&cfg, &["account", "reset-password", "admin", "--password-file", pw_arg]);
    assert!(out.status.success(), "{}", text(&out));

    let out = run(&cfg, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("intact: 2 rows"), "{}", text(&out));
    let out = run(&cfg, &["audit", "export"]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["action"], "account.create");
    assert_eq!(lines[1]["action"], "account.password");
    assert!(lines[0]["actor"].as_str().unwrap().starts_with("cli:"));

    // Someone with SQL access edits a row.
    let db = pintu_office::db::Db::connect(&t.url, 1).await.unwrap();
    sqlx::query("UPDATE audit_log SET after_json = '{}' WHERE seq = 1")
        .execute(db.pool())
        .await
        .unwrap();
    let out = run(&cfg, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("row 1 was changed"), "{}", text(&out));
});

#[test]
fn a_bad_config_is_refused_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("office.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = \"0.0.0.0:8080\"\n[database]\nurl = \"sqlite:///x.db\"\n\
         [security]\nsecret_key_file = \"k\"\n[site]\nname = \"D\"\n",
    )
    .unwrap();
    let out = run(&cfg, &["check-config"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("office.toml:2: server.listen: 0.0.0.0:8080 is not a loopback address"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("o.db").display());
    let cfg = config(dir.path(), &url);
    assert!(run(&cfg, &["init"]).status.success());
    let key = dir.path().join("secret.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&cfg, &["migrate"]);
    assert!(out.status.success(), "migrate needs no key: {}", text(&out));
    let out = run(&cfg, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("mode 0644"), "{}", text(&out));
}

db_test!(async fn serve_archives_the_doors_events_from_the_broker(t) {
    use pintu_testkit::broker::{Broker, BrokerOptions};
    let broker = Broker::start(BrokerOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("office.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ninstance = \"test-1\"\n[database]\nurl = \"{}\"\n[security]\n\
             secret_key_file = \"secret.key\"\n[site]\nid = \"{}\"\nname = \"Diskominfo\"\n\
             [mqtt]\nhost = \"127.0.0.1\"\nport = {}\n",
            t.url,
            pintu_testkit::SITE,
            broker.port()
        ),
    )
    .unwrap();
    assert!(run(&cfg, &["init"]).status.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_pintu-office"))
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("CREDENTIALS_DIRECTORY")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The ingest subscribes with a shared subscription; wait until the broker has it.
    assert!(
        broker.wait_log("$share/pintu-office/", std::time::Duration::from_secs(20)),
        "no shared subscription; broker log:\n{}",
        broker.log()
    );
    let publisher = crate::archive::publisher(&broker);
    for seq in 1..=5 {
        publisher.publish(&crate::archive::topic("door-1"), crate::archive::event("door-1", seq), false);
    }
    let counters = crate::archive::wait_counters(&t.db, "5 events stored", |c| c.stored == 5).await;
    assert_eq!(counters.duplicates, 0);
    // SIGTERM: the service stops cleanly (the ingest acks only what it committed).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = serve.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(serve.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "serve exit {status:?}:\n{log}");
    assert!(log.contains("event ingest starting"), "{log}");
});
