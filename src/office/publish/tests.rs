//! The delivery order, tested with a fake broker that looks at the register on disk at each step.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;

use crate::office::register::testing::{office_dir, REGISTER};

/// An office dir: register, card key and signing key `k1`.
struct Office {
    dir: tempfile::TempDir,
}

impl Office {
    fn new() -> Office {
        let (dir, _) = office_dir();
        keys::keygen(dir.path(), "k1").unwrap();
        Office { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn keys(&self) -> Vec<PathBuf> {
        vec![self.path("k1.key")]
    }

    fn load(&self) -> LoadedRegister {
        LoadedRegister::load(&self.path("register.toml")).unwrap()
    }

    fn version_on_disk(&self) -> u64 {
        self.load().register.list.version
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.path("register.toml")).unwrap()
    }
}

/// What the fake broker saw: the register's version on disk at connect and at publish time.
#[derive(Default, Debug)]
struct Seen {
    at_connect: Option<u64>,
    at_publish: Option<u64>,
    published: Option<(String, Vec<u8>)>,
}

#[derive(Clone)]
struct FakeBroker {
    register: PathBuf,
    refuse_connect: bool,
    refuse_publish: bool,
    seen: Rc<RefCell<Seen>>,
}

impl FakeBroker {
    fn new(o: &Office) -> FakeBroker {
        FakeBroker {
            register: o.path("register.toml"),
            refuse_connect: false,
            refuse_publish: false,
            seen: Rc::default(),
        }
    }

    fn version(&self) -> u64 {
        LoadedRegister::load(&self.register)
            .unwrap()
            .register
            .list
            .version
    }
}

fn refused(what: &str) -> OfficeError {
    OfficeError::Connect {
        broker: "fake:1883".into(),
        message: what.into(),
    }
}

impl ListChannel for FakeBroker {
    type Link = FakeBroker;

    fn broker(&self) -> String {
        "fake:1883".into()
    }

    fn list_topic(&self, site: &str) -> String {
        format!("pintu/{site}/list")
    }

    async fn connect(&self, _len: usize) -> Result<FakeBroker, OfficeError> {
        self.seen.borrow_mut().at_connect = Some(self.version());
        if self.refuse_connect {
            return Err(refused("cannot connect"));
        }
        Ok(self.clone())
    }
}

impl ListLink for FakeBroker {
    async fn publish_retained(self, topic: &str, list: Vec<u8>) -> Result<Duration, OfficeError> {
        self.seen.borrow_mut().at_publish = Some(self.version());
        if self.refuse_publish {
            return Err(refused("no PUBACK"));
        }
        self.seen.borrow_mut().published = Some((topic.to_string(), list));
        Ok(Duration::from_millis(3))
    }
}

fn deliver(
    o: &Office,
    broker: Option<FakeBroker>,
    out: Option<&Path>,
) -> Result<Delivered, PublishError> {
    let mut reg = o.load();
    let plan = DeliveryPlan::prepare(&reg, &o.keys(), out, || Ok(broker))?;
    client::block_on(plan.deliver(&mut reg, Timestamp::now())).unwrap()
}

#[test]
fn the_version_is_recorded_after_connecting_and_before_publishing() {
    let o = Office::new();
    let broker = FakeBroker::new(&o);
    let out = o.path("list.signed");
    let done = deliver(&o, Some(broker.clone()), Some(&out)).unwrap();
    let seen = broker.seen.borrow();
    assert_eq!(
        seen.at_connect,
        Some(4),
        "connect before the register changes"
    );
    assert_eq!(
        seen.at_publish,
        Some(5),
        "the version is recorded before the list leaves"
    );
    assert_eq!(done.list.version, 5);
    assert_eq!(o.version_on_disk(), 5);
    let (topic, bytes) = seen.published.clone().unwrap();
    assert_eq!(topic, "pintu/s/list");
    assert_eq!(
        bytes,
        std::fs::read(&out).unwrap(),
        "the same list on both ways"
    );
    assert_eq!(
        done.published.unwrap(),
        Published {
            topic,
            broker: "fake:1883".into(),
            took: Duration::from_millis(3)
        }
    );
    assert!(
        o.text().contains("version = 5  # last signed"),
        "comments kept"
    );
}

#[test]
fn an_unreachable_broker_changes_nothing() {
    let o = Office::new();
    let mut broker = FakeBroker::new(&o);
    broker.refuse_connect = true;
    let out = o.path("list.signed");
    let e = deliver(&o, Some(broker), Some(&out)).unwrap_err();
    assert!(matches!(e, PublishError::Connect(_)), "{e}");
    assert_eq!(o.text(), REGISTER);
    assert!(!out.exists(), "no file written");
}

#[test]
fn an_unacknowledged_list_keeps_its_version_and_the_next_one_is_above() {
    let o = Office::new();
    let mut broker = FakeBroker::new(&o);
    broker.refuse_publish = true;
    let e = deliver(&o, Some(broker), None).unwrap_err();
    assert!(
        matches!(e, PublishError::NotAcknowledged { version: 5, .. }),
        "{e}"
    );
    assert_eq!(
        o.version_on_disk(),
        5,
        "a version that may have left is never reused"
    );
    let again = deliver(&o, Some(FakeBroker::new(&o)), None).unwrap();
    assert_eq!(again.list.version, 6);
}

#[test]
fn sign_and_publish_record_the_version_the_same_way() {
    let o = Office::new();
    let mut reg = o.load();
    let signed = sign_to_file(&mut reg, &o.keys(), &o.path("a.signed"), Timestamp::now()).unwrap();
    assert_eq!(signed.list.version, 5);
    let after_sign = o.text();
    let published = deliver(&o, Some(FakeBroker::new(&o)), None).unwrap();
    assert_eq!(published.list.version, 6);
    assert_eq!(
        after_sign.replace("version = 5", "version = 6"),
        o.text(),
        "one way of recording a version"
    );
}

/// Issue 16: `sign --out /missing/dir/x` raised the version before failing.
#[test]
fn sign_checks_the_output_directory_before_raising_the_version() {
    let o = Office::new();
    let mut reg = o.load();
    let out = o.path("usb/list.signed");
    let e = sign_to_file(&mut reg, &o.keys(), &out, Timestamp::now()).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("usb does not exist (is the USB stick mounted?)"),
        "{e}"
    );
    assert_eq!(o.text(), REGISTER);
}

#[test]
fn prepare_refuses_what_cannot_be_delivered_before_anything_changes() {
    let o = Office::new();
    let reg = o.load();
    let none = || Ok(None::<FakeBroker>);
    let e = DeliveryPlan::prepare(&reg, &[], Some(&o.path("x")), none)
        .err()
        .unwrap();
    assert!(matches!(e, PublishError::NoKey), "{e}");
    let e = DeliveryPlan::prepare(&reg, &o.keys(), None, none)
        .err()
        .unwrap();
    assert!(matches!(e, PublishError::NoDestination), "{e}");
    let e = DeliveryPlan::prepare(&reg, &[o.path("nope.key")], Some(&o.path("x")), none)
        .err()
        .unwrap();
    assert!(e.to_string().contains("nope.key"), "{e}");
    // The broker settings are only resolved once a key is given.
    let e = DeliveryPlan::<FakeBroker>::prepare(&reg, &[], None, || Err(refused("bad")))
        .err()
        .unwrap();
    assert!(matches!(e, PublishError::NoKey), "{e}");
    assert_eq!(o.text(), REGISTER);
}
