//! MQTT fixtures: a real Mosquitto broker per test, a test PKI, and MQTT clients for tests.
//!
//! - [`Broker::start`] runs `mosquitto` with its own config in a temp dir, on a free loopback
//!   port, so a test can stop, kill and restart it (same port, same persistence file).
//! - [`Pki::generate`] makes a test CA, a server certificate for `127.0.0.1`/`localhost` and,
//!   on demand, client certificates (CN = name).
//! - [`Client`], [`Subscriber`] and [`publish`] are rumqttc (MQTT 3.1.1) clients that run on their
//!   own thread and runtime: they work the same from plain `#[test]`s and from
//!   `#[tokio::test]`s (there, use the `*_async` methods so the test's runtime is not blocked).
//!
//! Every wait is bounded; failures panic with the broker's log.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{Seek as _, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rumqttc::{
    AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS,
    SubscribeReasonCode, TlsConfiguration, Transport,
};

/// The default bound for things that normally take milliseconds (generous: a loaded 2-core CI).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a broker may take to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a broker may take to exit after SIGTERM (it writes its persistence file first).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest MQTT packet the test clients send or accept. Signed lists can be tens of MiB (the
/// door's default `max_size` is 64 MiB); the broker itself has no limit unless a test sets one.
pub const CLIENT_MAX_PACKET: usize = 256 << 20;
/// Pause between reconnect attempts of a client whose broker went away.
const RECONNECT_DELAY: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// Broker
// ---------------------------------------------------------------------------------------------

/// How to configure a test broker. `BrokerOptions::default()` is a plain TCP broker, anonymous
/// clients allowed, no persistence, no ACL, no size limits.
#[derive(Clone, Default)]
pub struct BrokerOptions {
    /// Persistence on: `data/mosquitto.db` in the broker's temp dir, written on `stop()`
    /// (SIGTERM) and on `save()`, never in between (`autosave_interval 0`), so `kill()` loses
    /// exactly what changed since the last save. It survives `restart()`.
    pub persistence: bool,
    /// TLS listener with this PKI's server certificate (and its CA for client certificates).
    pub tls: Option<Pki>,
    /// With `tls`: clients must present a certificate issued by the test CA.
    pub require_certificate: bool,
    /// With `require_certificate`: the certificate's CN is the username (ACLs apply to it);
    /// the password file is not used.
    pub use_identity_as_username: bool,
    /// Users for a password file (made with `mosquitto_passwd`). Empty: no password file.
    pub users: Vec<(String, String)>,
    /// ACL file text (`acl_file`), e.g. `config/mosquitto/acl`.
    pub acl: Option<String>,
    /// `allow_anonymous`; `None` means true when `users` is empty and
    /// `use_identity_as_username` is off, false otherwise.
    pub allow_anonymous: Option<bool>,
    /// `max_packet_size` (bytes); `None` leaves Mosquitto's default: no limit.
    pub max_packet_size: Option<u32>,
    /// `message_size_limit` (bytes); `None` leaves Mosquitto's default: no limit.
    pub message_size_limit: Option<u32>,
    /// Lines appended to the generated config.
    pub extra_config: String,
    /// Log errors and warnings only, not every connection and message (benchmarks: logging each
    /// of 100k messages would be the broker's main work).
    pub quiet: bool,
    /// A whole config instead of the generated one (e.g. the example `mosquitto.conf`).
    /// `{port}` is replaced by the port and `{dir}` by the broker's temp dir (no trailing
    /// slash). The password file and ACL above are still written, to `{dir}/passwd` and
    /// `{dir}/acl`.
    pub config: Option<String>,
}

/// A running Mosquitto, killed when dropped.
pub struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    conf: PathBuf,
    log_path: PathBuf,
    opts: BrokerOptions,
}

impl Broker {
    /// Writes the config, picks a free loopback port and starts `mosquitto -c conf`; returns
    /// once it accepts connections. Panics (with the log) if it does not start.
    pub fn start(opts: BrokerOptions) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("pintu-mosquitto-")
            .tempdir()
            .expect("create a temp dir for mosquitto");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create mosquitto's persistence dir");
        if !opts.users.is_empty() {
            write_password_file(&dir.path().join("passwd"), &opts.users);
        }
        if let Some(acl) = &opts.acl {
            std::fs::write(dir.path().join("acl"), acl).expect("write the ACL file");
        }
        let conf = dir.path().join("mosquitto.conf");
        let log_path = dir.path().join("mosquitto.log");
        let mut broker = Broker {
            dir,
            port: 0,
            child: None,
            conf,
            log_path,
            opts,
        };
        // Picking a port and binding it later is racy (another process may take it in between):
        // on "address in use", try another one.
        for attempt in 1..=5 {
            broker.port = free_port();
            let text = broker.config_text();
            std::fs::write(&broker.conf, text).expect("write mosquitto.conf");
            match broker.spawn() {
                Ok(()) => return broker,
                Err(SpawnError::PortTaken) if attempt < 5 => continue,
                Err(e) => panic!(
                    "mosquitto did not start: {e}\nconfig:\n{}\nlog:\n{}",
                    std::fs::read_to_string(&broker.conf).unwrap_or_default(),
                    broker.log()
                ),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// The address clients connect to. The TLS server certificate names it (and `localhost`).
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's temp dir (config, log, password file, ACL, `data/` for persistence).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PKI the broker's TLS listener uses, if any.
    pub fn pki(&self) -> Option<&Pki> {
        self.opts.tls.as_ref()
    }

    /// Everything Mosquitto logged so far (all starts), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (e.g. `"Denied PUBLISH"`); false after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the broker with SIGTERM and waits for it to exit (it saves its persistence file
    /// first). Clients see the connection close; new connections are refused.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "mosquitto did not exit within {STOP_TIMEOUT:?} of SIGTERM; log:\n{}",
                        self.log()
                    );
                }
            }
        }
    }

    /// Makes a persistent broker write its database now (SIGUSR1) and waits until it has.
    pub fn save(&mut self) {
        assert!(
            self.opts.persistence,
            "save() needs BrokerOptions::persistence"
        );
        let child = self.child.as_ref().expect("save() needs a running broker");
        const SAVING: &str = "Saving in-memory database";
        let before = self.log().matches(SAVING).count();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).expect("SIGUSR1 mosquitto");
        let deadline = Instant::now() + TIMEOUT;
        while self.log().matches(SAVING).count() <= before {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not save; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The save runs in Mosquitto's only thread and is logged before it starts: once a new
        // connection has been accepted (and logged) after it, the file is complete.
        let probe = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).expect("probe mosquitto");
        let needle = format!(
            "New connection from 127.0.0.1:{}",
            probe.local_addr().expect("probe address").port()
        );
        assert!(
            self.wait_log(&needle, TIMEOUT),
            "mosquitto did not accept a probe after saving; log:\n{}",
            self.log()
        );
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<nix::unistd::Pid> {
        self.child
            .as_ref()
            .map(|c| nix::unistd::Pid::from_raw(c.id() as i32))
    }

    /// Sends it a signal (SIGSTOP stalls it with its connections open; SIGCONT resumes it).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(pid, signal);
        }
    }

    /// Kills the broker with SIGKILL (a crash: nothing is saved beyond what autosave wrote).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port with the same config and persistence file,
    /// stopping it first (SIGTERM) if it runs.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!(
                "mosquitto did not restart on port {}: {e}\nlog:\n{}",
                self.port,
                self.log()
            );
        }
    }

    fn spawn(&mut self) -> Result<(), SpawnError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open mosquitto's log file");
        let mut log_for_stdout = log.try_clone().expect("clone the log file handle");
        let offset = log_for_stdout
            .seek(SeekFrom::End(0))
            .expect("seek mosquitto's log");
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&self.conf)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .map_err(|e| SpawnError::Other(format!("spawn {}: {e}", mosquitto_bin().display())))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let this_run = self.log().get(offset as usize..).unwrap_or("").to_string();
            let exited = self
                .child
                .as_mut()
                .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited {
                self.child = None;
                return Err(if this_run.contains("Address already in use") {
                    SpawnError::PortTaken
                } else {
                    SpawnError::Other("mosquitto exited".into())
                });
            }
            // "running" is logged after the listener is open; the connect proves it is ours.
            if this_run.contains(" running")
                && TcpStream::connect_timeout(
                    &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
                    Duration::from_secs(1),
                )
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(SpawnError::Other(format!(
                    "not accepting connections on port {} after {READY_TIMEOUT:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn config_text(&self) -> String {
        let dir = self.dir.path().display().to_string();
        if let Some(template) = &self.opts.config {
            return template
                .replace("{port}", &self.port.to_string())
                .replace("{dir}", &dir);
        }
        let o = &self.opts;
        let mut c = String::from("# Written by pintu-testkit's broker.rs for one test or bench.\n");
        // Run as root (tests in a container): stay root rather than switch to the "mosquitto"
        // user, which could not read the temp dir.
        if nix::unistd::geteuid().is_root() {
            c.push_str("user root\n");
        }
        c.push_str(&format!("listener {} 127.0.0.1\n", self.port));
        if let Some(pki) = &o.tls {
            c.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                pki.ca_cert.display(),
                pki.server_cert.display(),
                pki.server_key.display()
            ));
            if o.require_certificate {
                c.push_str("require_certificate true\n");
                if o.use_identity_as_username {
                    c.push_str("use_identity_as_username true\n");
                }
            }
        }
        let anonymous = o
            .allow_anonymous
            .unwrap_or(o.users.is_empty() && !o.use_identity_as_username);
        c.push_str(&format!("allow_anonymous {anonymous}\n"));
        if !o.users.is_empty() {
            c.push_str(&format!("password_file {dir}/passwd\n"));
        }
        if o.acl.is_some() {
            c.push_str(&format!("acl_file {dir}/acl\n"));
        }
        if o.persistence {
            // Saved only on SIGTERM and on `save()` (SIGUSR1): a `kill()` loses exactly what
            // changed since, deterministically.
            c.push_str(&format!(
                "persistence true\npersistence_location {dir}/data/\nautosave_interval 0\n"
            ));
        } else {
            c.push_str("persistence false\n");
        }
        // Test subscribers must never lose a message to a full queue (default: 1000). Not 0
        // ("no maximum"): Mosquitto 2.0.11 then disconnects a client after each publish the
        // ACL denies.
        c.push_str("max_queued_messages 1000000\n");
        if let Some(n) = o.max_packet_size {
            c.push_str(&format!("max_packet_size {n}\n"));
        }
        if let Some(n) = o.message_size_limit {
            c.push_str(&format!("message_size_limit {n}\n"));
        }
        if o.quiet {
            // Information stays: "running" says the listener is open (see spawn); what is left
            // out is the per-packet debug log and the connection messages.
            c.push_str(
                "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
                 connection_messages false\n",
            );
        } else {
            c.push_str(
                "log_dest stderr\nlog_type all\nconnection_messages true\n\
                 log_timestamp true\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n",
            );
        }
        c.push_str(&o.extra_config);
        c.push('\n');
        c
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

#[derive(Debug)]
enum SpawnError {
    PortTaken,
    Other(String),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::PortTaken => f.write_str("port already in use"),
            SpawnError::Other(s) => f.write_str(s),
        }
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr of 127.0.0.1:0").port()
}

/// Finds a program on PATH or in the given fallback (Debian puts `mosquitto` in /usr/sbin,
/// which a non-root PATH may lack).
fn find_program(name: &str, env_override: &str, fallback: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_override) {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    let path = on_path.unwrap_or_else(|| PathBuf::from(fallback));
    assert!(
        path.is_file(),
        "{name} not found (PATH, {fallback}): install it with `apt-get install mosquitto` \
         (scripts/test does), or set {env_override}"
    );
    path
}

fn mosquitto_bin() -> PathBuf {
    find_program("mosquitto", "PINTU_MOSQUITTO", "/usr/sbin/mosquitto")
}

/// Writes a Mosquitto password file (sha512-pbkdf2, Mosquitto 2.0's default) with
/// `mosquitto_passwd -b`.
pub fn write_password_file(path: &Path, users: &[(String, String)]) {
    let bin = find_program(
        "mosquitto_passwd",
        "PINTU_MOSQUITTO_PASSWD",
        "/usr/bin/mosquitto_passwd",
    );
    for (i, (user, password)) in users.iter().enumerate() {
        let mut cmd = Command::new(&bin);
        if i == 0 {
            cmd.arg("-c");
        }
        let out = cmd
            .arg("-b")
            .arg(path)
            .arg(user)
            .arg(password)
            .stdin(Stdio::null())
            .output()
            .expect("run mosquitto_passwd");
        assert!(
            out.status.success(),
            "mosquitto_passwd for {user:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PKI
// ---------------------------------------------------------------------------------------------

/// A test CA with a server certificate for `127.0.0.1` and `localhost`; PEM files in `dir`.
#[derive(Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    issuer: Arc<Issuer<'static, KeyPair>>,
}

/// A client certificate (CN = `name`) and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct ClientCert {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// Makes a new CA (ECDSA P-256) and a server certificate signed by it, and writes
    /// `ca.crt`, `server.crt` and `server.key` into `dir` (created if missing). Each call makes
    /// a different CA: a second `Pki` is "another CA" that the first one's clients do not trust.
    pub fn generate(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("create the PKI dir");
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name.push(
            DnType::CommonName,
            format!(
                "Pintu test CA {}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
        );
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate().expect("generate the server key");
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .expect("sign the server certificate");

        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            issuer: Arc::new(issuer),
        };
        std::fs::write(&pki.ca_cert, ca_cert.pem()).expect("write ca.crt");
        std::fs::write(&pki.server_cert, server_cert.pem()).expect("write server.crt");
        std::fs::write(&pki.server_key, server_key.serialize_pem()).expect("write server.key");
        pki
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca_cert).expect("read ca.crt")
    }

    /// Issues a client certificate with CN = `name` (the username with
    /// `use_identity_as_username`); writes `<name>.crt` and `<name>.key`.
    pub fn client_cert(&self, name: &str) -> ClientCert {
        let key = KeyPair::generate().expect("generate a client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the client certificate");
        let c = ClientCert {
            name: name.to_string(),
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        };
        std::fs::write(&c.cert, cert.pem()).expect("write the client certificate");
        std::fs::write(&c.key, key.serialize_pem()).expect("write the client key");
        c
    }
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki").field("dir", &self.dir).finish()
    }
}

impl ClientCert {
    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(&self.cert).expect("read the client certificate")
    }

    pub fn key_pem(&self) -> Vec<u8> {
        std::fs::read(&self.key).expect("read the client key")
    }
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// TLS settings of a test client.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// CA certificates (PEM) the client trusts for the server certificate.
    pub ca_pem: Vec<u8>,
    /// Client certificate and key (PEM), for `require_certificate`.
    pub client_auth: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientTls {
    /// Trusts `pki`'s CA; no client certificate.
    pub fn trusting(pki: &Pki) -> ClientTls {
        ClientTls {
            ca_pem: pki.ca_pem(),
            client_auth: None,
        }
    }

    /// Presents `cert` to the broker.
    pub fn with_cert(mut self, cert: &ClientCert) -> ClientTls {
        self.client_auth = Some((cert.cert_pem(), cert.key_pem()));
        self
    }
}

/// Connection settings of a test client. `ClientOptions::default()`: random client id, no
/// credentials, plain TCP, clean session.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Client id; `None` makes a random one (`t-` + 12 hex digits).
    pub client_id: Option<String>,
    /// Username and password.
    pub credentials: Option<(String, String)>,
    pub tls: Option<ClientTls>,
    /// Clean session off (`clean_session = false`): the broker keeps the subscriptions and
    /// queues QoS 1 messages while the client is away.
    pub persistent_session: bool,
    /// Last will: topic, payload, retain (QoS 1).
    pub last_will: Option<(String, Vec<u8>, bool)>,
}

impl ClientOptions {
    pub fn new() -> ClientOptions {
        ClientOptions::default()
    }

    pub fn id(mut self, id: &str) -> ClientOptions {
        self.client_id = Some(id.to_string());
        self
    }

    pub fn user(mut self, username: &str, password: &str) -> ClientOptions {
        self.credentials = Some((username.to_string(), password.to_string()));
        self
    }

    pub fn tls(mut self, tls: ClientTls) -> ClientOptions {
        self.tls = Some(tls);
        self
    }

    pub fn persistent(mut self) -> ClientOptions {
        self.persistent_session = true;
        self
    }

    pub fn will(mut self, topic: &str, payload: &[u8], retain: bool) -> ClientOptions {
        self.last_will = Some((topic.to_string(), payload.to_vec(), retain));
        self
    }

    /// The rumqttc options these settings make for `broker` (also useful to build a client of
    /// one's own against the fixture).
    pub fn mqtt_options(&self, broker: &Broker) -> MqttOptions {
        install_crypto_provider();
        let id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        let mut o = MqttOptions::new(id, broker.host(), broker.port());
        o.set_keep_alive(Duration::from_secs(10));
        o.set_clean_session(!self.persistent_session);
        o.set_max_packet_size(CLIENT_MAX_PACKET, CLIENT_MAX_PACKET);
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some((topic, payload, retain)) = &self.last_will {
            o.set_last_will(LastWill::new(
                topic.clone(),
                payload.clone(),
                QoS::AtLeastOnce,
                *retain,
            ));
        }
        if let Some(tls) = &self.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca: tls.ca_pem.clone(),
                alpn: None,
                client_auth: tls.client_auth.clone(),
            }));
        }
        o
    }
}

/// Installs rustls' ring provider as the process default (once; later calls are no-ops).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    });
}

/// A message a client received.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Set on retained messages delivered because of a (new) subscription; a message forwarded
    /// live arrives with retain false even if it was published retained (MQTT 3.1.1).
    pub retain: bool,
}

impl Message {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "payload on {} is not JSON: {e}: {}",
                self.topic,
                self.text()
            )
        })
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = if self.payload.len() > 200 {
            format!("<{} bytes>", self.payload.len())
        } else {
            self.text()
        };
        write!(
            f,
            "{}{} {shown:?}",
            self.topic,
            if self.retain { " (retained)" } else { "" }
        )
    }
}

type Reply = mpsc::Sender<Result<(), String>>;

enum Cmd {
    Publish {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
        reply: Reply,
    },
    Subscribe {
        filter: String,
        reply: Reply,
    },
    /// Send DISCONNECT (no will), then end.
    Disconnect,
    /// Drop the connection without DISCONNECT (the broker publishes the will).
    Abort,
}

#[derive(Default)]
struct ClientState {
    connected: bool,
    /// Completed (re)connections: counted at CONNACK once the subscriptions are back in place.
    connections: u64,
    last_error: Option<String>,
}

struct Shared {
    state: Mutex<ClientState>,
    changed: Condvar,
}

struct Inner {
    cmd: tokio::sync::mpsc::UnboundedSender<Cmd>,
    rx: Mutex<mpsc::Receiver<Message>>,
    shared: Arc<Shared>,
}

/// An MQTT 3.1.1 client (rumqttc) on its own thread. QoS 1 for everything. After its first
/// connection it reconnects by itself when the broker goes away, and re-subscribes (with a
/// clean session). Received messages queue up until read with `recv_timeout`,
/// `collect_until`, …
pub struct Client {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Client {
    /// Connects (waits for CONNACK); panics if the broker refuses.
    pub fn connect(broker: &Broker, opts: &ClientOptions) -> Client {
        Client::try_connect(broker, opts).unwrap_or_else(|e| {
            panic!(
                "MQTT connect to {}:{} failed: {e}\nbroker log:\n{}",
                broker.host(),
                broker.port(),
                broker.log()
            )
        })
    }

    /// Connects; `Err` with rumqttc's error when the TCP connection, TLS handshake or CONNACK
    /// fails (refused port, untrusted certificate, bad credentials, …) or takes over `TIMEOUT`.
    pub fn try_connect(broker: &Broker, opts: &ClientOptions) -> Result<Client, String> {
        Client::try_connect_with(opts.mqtt_options(broker))
    }

    /// Connects with rumqttc options of one's own.
    pub fn try_connect_with(mqtt: MqttOptions) -> Result<Client, String> {
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let (msg_tx, msg_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(ClientState::default()),
            changed: Condvar::new(),
        });
        let shared2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mqtt-test-client".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build the test client's runtime");
                rt.block_on(run_client(mqtt, cmd_rx, msg_tx, ready_tx, shared2));
            })
            .expect("spawn the test client's thread");
        let client = Client {
            inner: Arc::new(Inner {
                cmd: cmd_tx,
                rx: Mutex::new(msg_rx),
                shared,
            }),
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(TIMEOUT) {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no CONNACK within {TIMEOUT:?}")),
        }
    }

    /// Subscribes with QoS 1 and waits for the SUBACK; panics if it fails or is refused.
    pub fn subscribe(&self, filter: &str) {
        if let Err(e) = self.try_subscribe(filter) {
            panic!("subscribe {filter:?}: {e}");
        }
    }

    /// Subscribes with QoS 1; `Err` if the SUBACK says failure (0x80) or does not come.
    /// (Mosquitto 2.0 grants a subscription to a filter the ACL does not allow to read, and
    /// then delivers nothing the ACL forbids: check delivery, not the SUBACK.)
    pub fn try_subscribe(&self, filter: &str) -> Result<(), String> {
        self.inner.request(|reply| Cmd::Subscribe {
            filter: filter.to_string(),
            reply,
        })
    }

    /// Publishes with QoS 1 and waits for the PUBACK; panics on failure. With MQTT 3.1.1 a
    /// publish the ACL denies is still acknowledged (and dropped).
    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        if let Err(e) = self.try_publish(topic, payload, retain) {
            panic!("publish to {topic:?}: {e}");
        }
    }

    pub fn try_publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), String> {
        let payload = payload.into();
        self.inner.request(|reply| Cmd::Publish {
            topic: topic.to_string(),
            payload,
            retain,
            reply,
        })
    }

    /// The next message, or `None` after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        self.inner.recv_timeout(timeout)
    }

    /// The next message; panics after [`TIMEOUT`] saying what was awaited.
    pub fn expect_message(&self, what: &str) -> Message {
        self.recv_timeout(TIMEOUT)
            .unwrap_or_else(|| panic!("no message within {TIMEOUT:?}: expected {what}"))
    }

    /// Receives until a message satisfies `pred` (included) and returns all received; panics
    /// after `timeout` listing what did arrive.
    pub fn collect_until(
        &self,
        pred: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Vec<Message> {
        self.inner
            .collect_until(pred, timeout)
            .unwrap_or_else(|got| panic!("timed out after {timeout:?}; received: {got:#?}"))
    }

    /// Like `collect_until`, `Err(received)` on timeout.
    pub fn try_collect_until(
        &self,
        pred: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Message>, Vec<Message>> {
        self.inner.collect_until(pred, timeout)
    }

    /// The messages already received and not yet read.
    pub fn drain(&self) -> Vec<Message> {
        let rx = self.inner.rx.lock().expect("message queue lock");
        rx.try_iter().collect()
    }

    pub fn is_connected(&self) -> bool {
        self.inner
            .shared
            .state
            .lock()
            .expect("state lock")
            .connected
    }

    /// How many times the client has connected (and re-subscribed) so far: 1 after `connect`.
    pub fn connections(&self) -> u64 {
        self.inner
            .shared
            .state
            .lock()
            .expect("state lock")
            .connections
    }

    /// Waits until `connections() >= n`, i.e. the client is back (subscriptions restored)
    /// after a broker restart: `let n = c.connections(); broker.restart();
    /// assert!(c.wait_connections(n + 1, TIMEOUT))`.
    pub fn wait_connections(&self, n: u64, timeout: Duration) -> bool {
        self.inner.wait_state(timeout, |s| s.connections >= n)
    }

    /// Waits until the client has noticed that its connection is gone.
    pub fn wait_disconnected(&self, timeout: Duration) -> bool {
        self.inner.wait_state(timeout, |s| !s.connected)
    }

    /// The last connection error seen (while reconnecting).
    pub fn last_error(&self) -> Option<String> {
        self.inner
            .shared
            .state
            .lock()
            .expect("state lock")
            .last_error
            .clone()
    }

    /// Disconnects cleanly (DISCONNECT: the broker does not publish the will).
    pub fn disconnect(mut self) {
        self.finish(Cmd::Disconnect);
    }

    /// Drops the connection without DISCONNECT, like a crash or a cut cable: the broker
    /// publishes the will.
    pub fn abort(mut self) {
        self.finish(Cmd::Abort);
    }

    fn finish(&mut self, how: Cmd) {
        let _ = self.inner.cmd.send(how);
        if let Some(t) = self.thread.take() {
            // The client's thread ends within its own bounded waits.
            let _ = t.join();
        }
    }

    // Async variants for #[tokio::test]: the waiting happens on tokio's blocking pool.

    pub async fn recv_async(&self, timeout: Duration) -> Option<Message> {
        let inner = self.inner.clone();
        blocking(move || inner.recv_timeout(timeout)).await
    }

    pub async fn expect_message_async(&self, what: &str) -> Message {
        self.recv_async(TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("no message within {TIMEOUT:?}: expected {what}"))
    }

    pub async fn collect_until_async(
        &self,
        pred: impl FnMut(&Message) -> bool + Send + 'static,
        timeout: Duration,
    ) -> Vec<Message> {
        let inner = self.inner.clone();
        blocking(move || inner.collect_until(pred, timeout))
            .await
            .unwrap_or_else(|got| panic!("timed out after {timeout:?}; received: {got:#?}"))
    }

    pub async fn publish_async(&self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        let inner = self.inner.clone();
        let (topic, payload) = (topic.to_string(), payload.into());
        let t = topic.clone();
        let r = blocking(move || {
            inner.request(|reply| Cmd::Publish {
                topic: t,
                payload,
                retain,
                reply,
            })
        })
        .await;
        if let Err(e) = r {
            panic!("publish to {topic:?}: {e}");
        }
    }

    pub async fn subscribe_async(&self, filter: &str) {
        let inner = self.inner.clone();
        let f = filter.to_string();
        let r = blocking(move || inner.request(|reply| Cmd::Subscribe { filter: f, reply })).await;
        if let Err(e) = r {
            panic!("subscribe {filter:?}: {e}");
        }
    }

    pub async fn wait_connections_async(&self, n: u64, timeout: Duration) -> bool {
        let inner = self.inner.clone();
        blocking(move || inner.wait_state(timeout, |s| s.connections >= n)).await
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.finish(Cmd::Disconnect);
    }
}

impl Inner {
    fn request(&self, make: impl FnOnce(Reply) -> Cmd) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.cmd
            .send(make(tx))
            .map_err(|_| "the client has stopped".to_string())?;
        match rx.recv_timeout(TIMEOUT) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("no acknowledgement within {TIMEOUT:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err("the client has stopped".into()),
        }
    }

    fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        self.rx
            .lock()
            .expect("message queue lock")
            .recv_timeout(timeout)
            .ok()
    }

    fn collect_until(
        &self,
        mut pred: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Message>, Vec<Message>> {
        let deadline = Instant::now() + timeout;
        let rx = self.rx.lock().expect("message queue lock");
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(m) => {
                    let done = pred(&m);
                    got.push(m);
                    if done {
                        return Ok(got);
                    }
                }
                Err(_) => return Err(got),
            }
        }
    }

    fn wait_state(&self, timeout: Duration, pred: impl Fn(&ClientState) -> bool) -> bool {
        let guard = self.shared.state.lock().expect("state lock");
        let (guard, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |s| !pred(s))
            .expect("state lock");
        pred(&guard)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("the blocking test-client task panicked")
}

/// The client's event loop: runs on the client's own thread and runtime.
async fn run_client(
    mqtt: MqttOptions,
    mut cmds: tokio::sync::mpsc::UnboundedReceiver<Cmd>,
    messages: mpsc::Sender<Message>,
    ready: mpsc::Sender<Result<(), String>>,
    shared: Arc<Shared>,
) {
    let (client, mut eventloop) = AsyncClient::new(mqtt, 64);
    // Poll on a task of its own, so that queueing a request never waits on the poll loop.
    let (ev_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let poller = tokio::spawn(async move {
        loop {
            let ev = eventloop.poll().await;
            let failed = ev.is_err();
            if ev_tx.send(ev).is_err() {
                break;
            }
            if failed {
                // The next poll reconnects.
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    });
    let update = |f: &dyn Fn(&mut ClientState)| {
        let mut s = shared.state.lock().expect("state lock");
        f(&mut s);
        shared.changed.notify_all();
    };
    let mut ready = Some(ready);
    let mut filters: Vec<String> = Vec::new();
    // Replies waiting for their packet id (requests go out in order), then for the ack.
    let mut queued_pubs: VecDeque<Reply> = VecDeque::new();
    let mut pubs: HashMap<u16, Reply> = HashMap::new();
    let mut queued_subs: VecDeque<Option<Reply>> = VecDeque::new();
    let mut subs: HashMap<u16, Option<Reply>> = HashMap::new();
    // Re-subscriptions still to be acknowledged after a reconnect.
    let mut resubscribing = 0usize;
    let mut disconnecting: Option<Instant> = None;

    loop {
        let timeout = match disconnecting {
            Some(t) => t.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            cmd = cmds.recv(), if disconnecting.is_none() => match cmd {
                Some(Cmd::Publish { topic, payload, retain, reply }) => {
                    queued_pubs.push_back(reply);
                    if let Err(e) = client.publish(topic, QoS::AtLeastOnce, retain, payload).await {
                        if let Some(r) = queued_pubs.pop_back() {
                            let _ = r.send(Err(e.to_string()));
                        }
                    }
                }
                Some(Cmd::Subscribe { filter, reply }) => {
                    queued_subs.push_back(Some(reply));
                    filters.push(filter.clone());
                    if let Err(e) = client.subscribe(filter, QoS::AtLeastOnce).await {
                        filters.pop();
                        if let Some(Some(r)) = queued_subs.pop_back() {
                            let _ = r.send(Err(e.to_string()));
                        }
                    }
                }
                Some(Cmd::Disconnect) | None => {
                    let connected = shared.state.lock().expect("state lock").connected;
                    if !connected || client.disconnect().await.is_err() {
                        break;
                    }
                    disconnecting = Some(Instant::now() + Duration::from_secs(2));
                }
                Some(Cmd::Abort) => break,
            },
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Ok(()));
                        }
                        // A clean session lost its subscriptions: put them back.
                        resubscribing = 0;
                        if !ack.session_present {
                            for f in &filters {
                                queued_subs.push_back(None);
                                if client.subscribe(f.clone(), QoS::AtLeastOnce).await.is_ok() {
                                    resubscribing += 1;
                                } else {
                                    queued_subs.pop_back();
                                }
                            }
                        }
                        let done = resubscribing == 0;
                        update(&|s| {
                            s.connected = true;
                            if done {
                                s.connections += 1;
                            }
                        });
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = messages.send(Message {
                            topic: p.topic,
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        // A publish re-sent after a reconnect keeps its packet id.
                        if let Entry::Vacant(slot) = pubs.entry(pkid) {
                            if let Some(r) = queued_pubs.pop_front() {
                                slot.insert(r);
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Some(r) = pubs.remove(&ack.pkid) {
                            let _ = r.send(Ok(()));
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Subscribe(pkid))) => {
                        if let Some(r) = queued_subs.pop_front() {
                            subs.insert(pkid, r);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let failed = ack
                            .return_codes
                            .iter()
                            .any(|c| matches!(c, SubscribeReasonCode::Failure));
                        match subs.remove(&ack.pkid) {
                            Some(Some(r)) => {
                                let _ = r.send(if failed {
                                    Err("SUBACK: failure (0x80)".into())
                                } else {
                                    Ok(())
                                });
                            }
                            Some(None) => {
                                resubscribing = resubscribing.saturating_sub(1);
                                if resubscribing == 0 {
                                    update(&|s| s.connections += 1);
                                }
                            }
                            None => {}
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) if disconnecting.is_some() => break,
                    Ok(_) => {}
                    Err(e) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(describe(&e)));
                            break;
                        }
                        if disconnecting.is_some() {
                            break;
                        }
                        let msg = describe(&e);
                        update(&|s| {
                            s.connected = false;
                            s.last_error = Some(msg.clone());
                        });
                    }
                }
            },
            _ = tokio::time::sleep(timeout), if disconnecting.is_some() => break,
        }
    }
    poller.abort();
    update(&|s| s.connected = false);
}

fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::Io(io) => format!("I/O: {io} ({:?})", io.kind()),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriber and one-shot publish
// ---------------------------------------------------------------------------------------------

/// A client subscribed (QoS 1) to one topic filter; derefs to [`Client`] for `recv_timeout`,
/// `collect_until`, more `subscribe`s, …
pub struct Subscriber(Client);

impl Subscriber {
    /// Connects and subscribes (waits for CONNACK and SUBACK); panics on failure.
    pub fn connect(broker: &Broker, filter: &str, opts: &ClientOptions) -> Subscriber {
        let c = Client::connect(broker, opts);
        c.subscribe(filter);
        Subscriber(c)
    }

    pub fn try_connect(
        broker: &Broker,
        filter: &str,
        opts: &ClientOptions,
    ) -> Result<Subscriber, String> {
        let c = Client::try_connect(broker, opts)?;
        c.try_subscribe(filter)?;
        Ok(Subscriber(c))
    }

    pub fn into_client(self) -> Client {
        self.0
    }
}

impl std::ops::Deref for Subscriber {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.0
    }
}

/// Connects, publishes one QoS 1 message, waits for the PUBACK, disconnects. Panics on failure.
pub fn publish(
    broker: &Broker,
    topic: &str,
    payload: impl Into<Vec<u8>>,
    retain: bool,
    opts: &ClientOptions,
) {
    if let Err(e) = try_publish(broker, topic, payload, retain, opts) {
        panic!("publish to {topic:?}: {e}\nbroker log:\n{}", broker.log());
    }
}

pub fn try_publish(
    broker: &Broker,
    topic: &str,
    payload: impl Into<Vec<u8>>,
    retain: bool,
    opts: &ClientOptions,
) -> Result<(), String> {
    let c = Client::try_connect(broker, opts)?;
    c.try_publish(topic, payload, retain)?;
    c.disconnect();
    Ok(())
}

/// `publish` for `#[tokio::test]`s: the connection runs on tokio's blocking pool.
pub async fn publish_async(
    broker: &Broker,
    topic: &str,
    payload: impl Into<Vec<u8>>,
    retain: bool,
    opts: &ClientOptions,
) {
    let mqtt = opts.mqtt_options(broker);
    let (t, payload) = (topic.to_string(), payload.into());
    let r = blocking(move || {
        let c = Client::try_connect_with(mqtt)?;
        c.try_publish(&t, payload, retain)?;
        c.disconnect();
        Ok::<(), String>(())
    })
    .await;
    if let Err(e) = r {
        panic!("publish to {topic:?}: {e}\nbroker log:\n{}", broker.log());
    }
}
