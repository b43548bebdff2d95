//! The systemd side of a door (issue 15, items 3, 7 and 13): the unit's sandbox score, secrets
//! passed as credentials (`LoadCredential=` → `$CREDENTIALS_DIRECTORY`), `--safe-state` without
//! secrets, and `pintud --report-failure` (pintud-failed.service) against a real Mosquitto.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{decision, grant, text, Pintud, Site};
use crate::mqtt::{mqtt_section, topic};
use pintu_testkit::broker::{Broker, BrokerOptions, Client, ClientOptions};

/// `systemd-analyze security --offline=true systemd/pintud.service` before issue 15.
const SCORE_BEFORE: f64 = 1.9;
/// The score now (RELIABILITY.md); the test fails if the unit's exposure ever rises above it.
const SCORE_MAX: f64 = 1.3;

fn unit_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name)
}

fn systemd_analyze() -> Option<PathBuf> {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The overall exposure `systemd-analyze security` prints for a unit file.
fn exposure(analyze: &Path, unit: &Path) -> f64 {
    let out = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .expect("run systemd-analyze security");
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level for"))
        .unwrap_or_else(|| panic!("no overall score: {stdout}{}", text(&out.stderr)));
    // "→ Overall exposure level for pintud.service: 1.3 OK 🙂"
    let score = line
        .rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("cannot parse the score in {line:?}"));
    score
}

/// Item 13: the shipped unit's sandbox, as systemd scores it, never gets worse than today's.
#[test]
fn unit_security_exposure_does_not_rise() {
    let Some(analyze) = systemd_analyze() else {
        eprintln!("systemd-analyze not installed: skipping the unit's security score");
        return;
    };
    let score = exposure(&analyze, &unit_path("pintud.service"));
    eprintln!("pintud.service exposure {score} (before issue 15: {SCORE_BEFORE})");
    assert!(
        score <= SCORE_MAX,
        "systemd-analyze security scores pintud.service {score}, above {SCORE_MAX}: a hardening \
         setting was lost (run `systemd-analyze security --offline=true systemd/pintud.service`)"
    );
    let unit = std::fs::read_to_string(unit_path("pintud.service")).expect("unit");
    for line in [
        "SystemCallFilter=~@privileged @resources",
        "IPAddressDeny=any",
        "SocketBindDeny=any",
        "RemoveIPC=yes",
        "PrivateIPC=yes",
        "MemoryMax=",
        "TasksMax=",
        "LoadCredential=card.key:/etc/pintu/card.key",
        "OnFailure=pintud-failed.service",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(line)),
            "pintud.service lacks {line}"
        );
    }
    let reporter = exposure(&analyze, &unit_path("pintud-failed.service"));
    assert!(
        reporter <= SCORE_MAX,
        "pintud-failed.service scores {reporter}"
    );
}

/// Items 7 and 13: both units pass `systemd-analyze verify` together (OnFailure= resolves, every
/// setting parses on this systemd), with this build's pintud at their ExecStart paths.
#[test]
fn units_verify_with_the_failure_reporter() {
    let Some(analyze) = systemd_analyze() else {
        eprintln!("systemd-analyze not installed: skipping");
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let mut paths = Vec::new();
    for name in ["pintud.service", "pintud-failed.service"] {
        let unit = std::fs::read_to_string(unit_path(name)).expect("unit");
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            unit.replace("/usr/bin/pintud", env!("CARGO_BIN_EXE_pintud")),
        )
        .expect("write unit");
        paths.push(path);
    }
    let reporter = std::fs::read_to_string(&paths[1]).expect("unit");
    assert!(reporter.contains("--report-failure"));
    let out = Command::new(analyze)
        .arg("verify")
        .args(&paths)
        .output()
        .expect("run systemd-analyze verify");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success() && all.trim().is_empty(),
        "systemd-analyze verify: {all}"
    );
}

/// A site whose secrets are not at their configured paths (as for the `pintu` user under the
/// unit: root-only files) but in a credentials directory, as systemd's LoadCredential= leaves
/// them. Returns (config, credentials directory).
fn site_with_credentials(site: &Site, extra: &str) -> (PathBuf, PathBuf) {
    let creds = site.path("credentials");
    std::fs::create_dir(&creds).expect("credentials dir");
    std::fs::rename(site.path("card.key"), creds.join("card.key")).expect("move card key");
    let text = site.config_text(extra).replace(
        r#"card_key_file = "card.key""#,
        r#"card_key_file = "root-only/card.key""#,
    );
    let config = site.path("pintu.toml");
    std::fs::write(&config, text).expect("config");
    (config, creds)
}

fn check_config(config: &Path, credentials: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pintud"));
    cmd.arg("--check-config").arg(config);
    cmd.env_remove("CREDENTIALS_DIRECTORY");
    if let Some(dir) = credentials {
        cmd.env("CREDENTIALS_DIRECTORY", dir);
    }
    cmd.output().expect("run pintud")
}

/// Item 3: under systemd pintud reads its secrets from `$CREDENTIALS_DIRECTORY` (the files
/// themselves are root-only); a missing credential is a file:line:key error naming the
/// LoadCredential= line to add. The old pintud read only the configured path.
#[test]
fn secrets_come_from_the_credentials_directory() {
    let site = Site::new();
    let (config, creds) = site_with_credentials(&site, "");

    // Outside systemd the configured path is read, and here it is not readable.
    let out = check_config(&config, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pintu.toml:") && stderr.contains("trust.card_key_file"),
        "{stderr}"
    );

    // Under systemd: the credential named after the file.
    let out = check_config(&config, Some(&creds));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The credential really is the key the door hashes with: an enrolled card opens.
    let list = site.path("v1.signed");
    let payload = site.payload(
        1,
        vec![site.entry(
            "04A1B2C3D4",
            "alice",
            "2020-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        )],
    );
    std::fs::write(&list, site.sign(&payload)).expect("list");
    let door = Pintud::start_with_env(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("path")],
        &[("CREDENTIALS_DIRECTORY", creds.as_os_str())],
    );
    door.wait_for("list v1", |s| s.list.as_ref().map(|l| l.version) == Some(1));
    assert_eq!(decision(&door, "04A1B2C3D4"), grant());
    drop(door);

    // A credential the unit does not load: the error names the line to add.
    let empty = site.path("no-credentials");
    std::fs::create_dir(&empty).expect("dir");
    let out = check_config(&config, Some(&empty));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("trust.card_key_file")
            && stderr.contains("LoadCredential=card.key:")
            && stderr.contains("root-only/card.key"),
        "{stderr}"
    );

    // An empty credential is no secret: the configured path is tried instead.
    std::fs::write(empty.join("card.key"), "").expect("empty credential");
    let out = check_config(&config, Some(&empty));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// Item 3: the MQTT password comes from a credential too.
#[test]
fn mqtt_password_comes_from_a_credential() {
    let site = Site::new();
    let (config, creds) = site_with_credentials(
        &site,
        "[mqtt]\nhost = \"127.0.0.1\"\ninsecure = true\nusername = \"door\"\npassword_file = \"/etc/pintu-test-absent/mqtt.password\"\n",
    );
    let out = check_config(&config, Some(&creds));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mqtt.password_file") && stderr.contains("LoadCredential=mqtt.password:"),
        "{stderr}"
    );
    std::fs::write(creds.join("mqtt.password"), "s3cret\n").expect("credential");
    let out = check_config(&config, Some(&creds));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Item 3 (ExecStopPost): `--safe-state` reads the lock settings only, so a secret it cannot
/// read (credentials already gone after a stop) does not keep it from driving the relay. The
/// old pintud loaded the whole configuration and exited 2 without touching the relay.
#[test]
fn safe_state_reads_no_secret() {
    let site = Site::new();
    let (config, _creds) = site_with_credentials(&site, "");
    let out = Command::new(env!("CARGO_BIN_EXE_pintud"))
        .args(["--safe-state", "--config"])
        .arg(&config)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run pintud");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("simulated lock"), "{stdout}");

    // Bad lock settings are still refused with file:line:key.
    let bad = std::fs::read_to_string(&config).expect("config").replace(
        "[[reader]]",
        "[lock]\nbackend = \"gpiocdev\"\npin = 99\n\n[[reader]]",
    );
    std::fs::write(&config, bad).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_pintud"))
        .args(["--safe-state", "--config"])
        .arg(&config)
        .output()
        .expect("run pintud");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lock.pin"), "{stderr}");
}

fn report_failure(config: &Path, env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pintud"))
        .args(["--report-failure", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .expect("run pintud --report-failure")
}

/// Item 7: when systemd gives up, pintud-failed.service's `pintud --report-failure` leaves a
/// retained `failed` status and delivers `daemon.failed` (with systemd's reason) through a real
/// Mosquitto, after the events that were still waiting. Before, nothing ran: the office saw only
/// the broker's `offline` last will, the same as a door that lost its network.
#[test]
fn report_failure_publishes_failed_status_and_event() {
    let broker = Broker::start(BrokerOptions::default());
    let site = Site::new();
    let config = site.write_config(&mqtt_section(&broker, ""));

    // A door that ran without reaching its broker: events wait in its outbox.
    let offline = site.path("offline.toml");
    std::fs::write(&offline, site.config_text("")).expect("config");
    let door = Pintud::start(&offline, &site.socket(), &[]);
    door.tap("04FFFFFFFF");
    assert!(door.stop().is_some());

    let sub = Client::connect(&broker, &ClientOptions::new());
    sub.subscribe(&format!("{}/#", topic("").trim_end_matches('/')));
    let out = report_failure(
        &config,
        &[
            ("MONITOR_SERVICE_RESULT", "start-limit-hit"),
            ("MONITOR_EXIT_CODE", "exited"),
            ("MONITOR_EXIT_STATUS", "1"),
            ("MONITOR_UNIT", "pintud.service"),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("0 left in the outbox"), "{stdout}");

    let got = sub.collect_until(
        |m| m.topic == topic("events") && m.json()["kind"] == "daemon.failed",
        Duration::from_secs(20),
    );
    let status: Vec<Value> = got
        .iter()
        .filter(|m| m.topic == topic("status"))
        .map(|m| m.json())
        .collect();
    assert!(
        status
            .iter()
            .any(|s| s["state"] == "failed" && s["reason"] == "start-limit-hit"),
        "{status:?}"
    );
    let events: Vec<Value> = got
        .iter()
        .filter(|m| m.topic == topic("events"))
        .map(|m| m.json())
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    let failed = events.last().expect("events");
    assert_eq!(failed["kind"], "daemon.failed", "{kinds:?}");
    assert_eq!(failed["reason"], "start-limit-hit");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("systemd gave up on pintud.service")),
        "{failed}"
    );
    assert!(
        kinds.contains(&"access.denied") && kinds.contains(&"daemon.stopping"),
        "the waiting events went first, in order: {kinds:?}"
    );
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // The status stays `failed` for whoever looks later (retained).
    let later = Client::connect(&broker, &ClientOptions::new());
    later.subscribe(&topic("status"));
    let retained = later
        .recv_timeout(Duration::from_secs(10))
        .expect("retained status");
    assert_eq!(retained.json()["state"], "failed");
}

/// Item 7: with no broker to reach, the report still records `daemon.failed` durably (exit 0);
/// the next pintud start has it in its events.
#[test]
fn report_failure_without_broker_keeps_the_event_for_the_next_start() {
    let site = Site::new();
    let config = site.write_config("");
    let out = report_failure(&config, &[("MONITOR_SERVICE_RESULT", "exit-code")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("daemon.failed recorded"), "{stdout}");
    let door = Pintud::start(&config, &site.socket(), &[]);
    let failed = door
        .events()
        .into_iter()
        .find(|e| e.kind == pintu::core::event::EventKind::DaemonFailed)
        .expect("daemon.failed in the outbox");
    assert_eq!(failed.reason.as_deref(), Some("exit-code"));

    // A configuration it cannot read: exit 2, nothing recorded.
    let out = report_failure(&site.path("absent.toml"), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// Item 3 (groups): under the unit pintud may not chown at all (`SystemCallFilter=~@privileged`
/// denies it with EPERM), so the socket takes the operators' group from the setgid `/run/pintu`.
/// Here pintud runs under a seccomp filter that denies the chown calls the same way, with its
/// socket directory setgid to `daemon`: the old pintud always chowned, was refused, and did not
/// start.
#[test]
fn control_socket_takes_its_group_from_a_setgid_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    const DAEMON_GID: u32 = 1;
    let site = Site::new();
    let run = site.path("run");
    std::fs::create_dir(&run).expect("run dir");
    let text = site.config_text("").replace(
        "socket = \"control.sock\"\nmode = \"0600\"",
        "socket = \"run/control.sock\"\nmode = \"0660\"\ngroup = \"daemon\"",
    );
    assert!(text.contains("group = \"daemon\""));
    let config = site.path("pintu.toml");
    std::fs::write(&config, text).expect("config");
    std::os::unix::fs::chown(&run, None, Some(DAEMON_GID)).expect("chgrp run");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o2750)).expect("setgid");

    let log = std::fs::File::create(site.path("seccomp.log")).expect("log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pintud"));
    cmd.arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(log);
    let filter = chown_filter();
    // SAFETY: between fork and exec only prctl calls, on a filter built before the fork (no
    // allocation in the child).
    unsafe {
        cmd.pre_exec(move || install_filter(&filter));
    }
    let mut child = cmd.spawn().expect("spawn pintud");
    let socket = run.join("control.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ready = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("pintud exited with {status}"));
        }
        if pintu::door::control::request(
            &socket,
            &pintu::door::control::Request::Status,
            Duration::from_secs(2),
        )
        .is_ok()
        {
            break Ok(());
        }
        if std::time::Instant::now() > deadline {
            break Err("pintud did not become ready".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let meta = std::fs::metadata(&socket);
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(site.path("seccomp.log")).unwrap_or_default();
    ready.unwrap_or_else(|e| panic!("{e}; log:\n{log}"));
    let meta = meta.expect("socket");
    assert_eq!(meta.gid(), DAEMON_GID, "the socket's group");
    assert_eq!(meta.mode() & 0o777, 0o660);
}

/// A seccomp program that fails every chown system call with EPERM, as the unit's
/// `SystemCallFilter=~@privileged` with `SystemCallErrorNumber=EPERM` does.
fn chown_filter() -> Vec<nix::libc::sock_filter> {
    use nix::libc;
    #[cfg(target_arch = "x86_64")]
    const DENIED: [libc::c_long; 4] = [
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_fchown,
        libc::SYS_fchownat,
    ];
    #[cfg(not(target_arch = "x86_64"))]
    const DENIED: [libc::c_long; 2] = [libc::SYS_fchown, libc::SYS_fchownat];
    let n = DENIED.len();
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let mut prog = Vec::with_capacity(n + 3);
    // seccomp_data.nr is at offset 0.
    prog.push(stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0));
    for (i, nr) in DENIED.iter().enumerate() {
        prog.push(libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: (n - i) as u8,
            jf: 0,
            k: *nr as u32,
        });
    }
    prog.push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
    prog.push(stmt(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
    ));
    prog
}

/// Installs `prog` on the calling process (no new privileges first, as systemd does).
fn install_filter(prog: &[nix::libc::sock_filter]) -> std::io::Result<()> {
    use nix::libc;
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl calls; `fprog` points at `prog`, alive for the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The system call names an `strace -f` log holds.
fn traced_calls(path: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(path)
        .expect("strace log")
        .lines()
        .filter_map(|line| {
            // "1234  openat(AT_FDCWD, ..." or "1234  <... openat resumed>..."
            let rest = line.split_once(char::is_whitespace)?.1.trim_start();
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && rest[name.len()..].starts_with('(')).then_some(name)
        })
        .collect()
}

/// The system calls in a `systemd-analyze syscall-filter` group, nested groups expanded.
fn filter_group(analyze: &Path, group: &str, into: &mut std::collections::BTreeSet<String>) {
    let out = Command::new(analyze)
        .args(["syscall-filter", "--no-pager", group])
        .output()
        .expect("systemd-analyze syscall-filter");
    for line in text(&out.stdout).lines().skip(1) {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if name.starts_with('@') {
            filter_group(analyze, name, into);
        } else {
            into.insert(name.to_string());
        }
    }
}

/// Item 13: the system call filter does not break pintud. Every call a real session makes (start
/// with MQTT, a tap, the exit button, SIGTERM, `--safe-state`, `--report-failure`) is in the
/// unit's `@system-service` and outside `~@privileged @resources`, except `clock_adjtime` (the
/// NTP check in status, read-only, which already gets EPERM under `ProtectClock=` and reports
/// "unknown"). Catches a dependency that starts calling, say, `setrlimit` or `sched_setaffinity`.
#[test]
fn pintud_system_calls_fit_the_unit_filter() {
    let (Some(analyze), true) = (systemd_analyze(), Path::new("/usr/bin/strace").exists()) else {
        eprintln!("needs systemd-analyze and strace: skipping");
        return;
    };
    let broker = Broker::start(BrokerOptions::default());
    let site = Site::new();
    let config = site.write_config(&mqtt_section(&broker, ""));
    let strace = |out: &Path, args: &[&str]| {
        let mut cmd = Command::new("/usr/bin/strace");
        cmd.args(["-f", "-qq", "-o"])
            .arg(out)
            .arg(env!("CARGO_BIN_EXE_pintud"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    let traces = [
        site.path("run.trace"),
        site.path("safe.trace"),
        site.path("report.trace"),
    ];
    let mut tracer = strace(&traces[0], &[]).spawn().expect("strace pintud");
    let socket = site.socket();
    let ask = |req: &pintu::door::control::Request| {
        pintu::door::control::request(&socket, req, Duration::from_secs(2))
    };
    // Ready, and the MQTT link has taken the start-up events.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(pintu::door::control::Reply::Status(s)) =
            ask(&pintu::door::control::Request::Status)
        {
            if s.outbox_depth == 0 {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "traced pintud not ready or not connected"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ask(&pintu::door::control::Request::Tap {
        uid: "04A1B2C3D4".into(),
        reader: None,
    })
    .expect("tap");
    ask(&pintu::door::control::Request::Input {
        input: pintu::door::hw::DoorInput::ExitButton,
    })
    .expect("exit button");
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", tracer.id()))
        .expect("strace's children");
    let pid: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("traced pintud's pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    assert!(tracer.wait().expect("strace").success());
    for (trace, args) in [
        (&traces[1], &["--safe-state"][..]),
        (&traces[2], &["--report-failure"][..]),
    ] {
        let status = strace(trace, args).status().expect("strace");
        assert!(status.success(), "pintud {args:?}");
    }

    let mut used = std::collections::BTreeSet::new();
    for trace in &traces {
        used.extend(traced_calls(trace));
    }
    assert!(used.contains("openat") && used.len() > 30, "{used:?}");
    let mut allowed = std::collections::BTreeSet::new();
    filter_group(&analyze, "@system-service", &mut allowed);
    let mut denied = std::collections::BTreeSet::new();
    filter_group(&analyze, "@privileged", &mut denied);
    filter_group(&analyze, "@resources", &mut denied);
    let refused: Vec<&String> = used
        .iter()
        .filter(|c| !allowed.contains(*c) || denied.contains(*c))
        .filter(|c| c.as_str() != "clock_adjtime")
        .collect();
    assert!(
        refused.is_empty(),
        "pintud calls {refused:?}, which pintud.service's SystemCallFilter= refuses (EPERM)"
    );
}

/// Item 7: a door that cannot record anything (its store does not open: here the state directory
/// is under a plain file; a full disk is the usual case) still tells the office: the retained
/// status `failed` says why, and the report exits 1 for the journal.
#[test]
fn report_failure_without_a_store_still_publishes_failed() {
    let broker = Broker::start(BrokerOptions::default());
    let site = Site::new();
    let config_text = site
        .config_text(&mqtt_section(&broker, ""))
        .replace("state_dir = \"state\"", "state_dir = \"card.key/state\"");
    let config = site.path("pintu.toml");
    std::fs::write(&config, config_text).expect("config");
    let sub = Client::connect(&broker, &ClientOptions::new());
    sub.subscribe(&topic("status"));
    let out = report_failure(&config, &[("MONITOR_SERVICE_RESULT", "exit-code")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("NOT recorded") && stderr.contains("status failed published: yes"),
        "{stderr}"
    );
    let got = sub.collect_until(|m| m.json()["state"] == "failed", Duration::from_secs(20));
    let status = got.last().expect("status").json();
    assert_eq!(status["reason"], "exit-code");
    assert!(
        status["detail"]
            .as_str()
            .is_some_and(|d| d.contains("could not be recorded on the door")),
        "{status}"
    );
}
