//! Presence across restarts at a real pintud: saved one record per occupant, and a store written
//! before that layout (the whole snapshot in one key) starts with the same people inside.

use jiff::{SignedDuration, Timestamp};
use pintu::core::list::Role;
use pintu::door::control::{Occupant, Reply, Request};
use pintu::door::store::Store;

use crate::common::{Pintud, Site};

const ALICE: &str = "04A1B2C3D4E5F6";
const BUDI: &str = "04A1B2C3D4E5F7";

fn who(door: &Pintud) -> Vec<Occupant> {
    match door.request(&Request::Who) {
        Reply::Who { occupants } => occupants,
        other => panic!("unexpected reply to who: {other:?}"),
    }
}

fn holders(door: &Pintud) -> Vec<String> {
    who(door).into_iter().map(|o| o.holder).collect()
}

fn list(site: &Site) -> std::path::PathBuf {
    let mut alice = site.entry(
        ALICE,
        "alice",
        "2025-01-01T00:00:00Z",
        "2035-01-01T00:00:00Z",
    );
    alice.role = Role::Staff;
    let budi = site.entry(BUDI, "budi", "2025-01-01T00:00:00Z", "2035-01-01T00:00:00Z");
    let path = site.path("list.signed");
    std::fs::write(&path, site.sign(&site.payload(1, vec![alice, budi]))).expect("list");
    path
}

/// Issue 24: a door upgraded from the single-key snapshot keeps who was inside (in their order,
/// with their entry times), migrates once, and saves by record from then on.
#[test]
fn a_store_from_before_presence_records_starts_with_the_same_people_inside() {
    let site = Site::new();
    let config = site.write_config("");
    let list = list(&site);
    let args = ["--list", list.to_str().expect("utf-8 path")];
    // The snapshot exactly as the door wrote it before: budi entered first, then alice (within
    // the entry-only door's presence expiry).
    let now = Timestamp::now().round(jiff::Unit::Second).expect("round");
    let budi_at = now - SignedDuration::from_hours(2);
    let alice_at = now - SignedDuration::from_hours(1);
    let card = |uid: &str| site.card_key.hash(&uid.parse().expect("uid")).to_hex();
    let legacy = format!(
        r#"{{"floor":"{alice_at}","presence":{{"format":1,"occupants":[{{"card":"{}","holder":"budi","name":"Budi","role":"staff","entered_at":"{budi_at}","overstay_alarms":0}},{{"card":"{}","holder":"alice","name":"Alice","role":"staff","entered_at":"{alice_at}","overstay_alarms":0}}],"unescorted":false}}}}"#,
        card(BUDI),
        card(ALICE)
    );
    {
        let (store, _) = Store::open(&site.store_options(), &site.policy()).expect("store");
        store
            .save_legacy_procedure_snapshot(legacy.as_bytes())
            .expect("legacy snapshot");
    }
    let door = Pintud::start(&config, &site.socket(), &args);
    door.wait_for("the list", |s| s.list.is_some());
    assert_eq!(holders(&door), ["budi", "alice"], "restored in entry order");
    let entered: Vec<_> = who(&door)
        .iter()
        .map(|o| o.entered_at.to_string())
        .collect();
    assert_eq!(entered, [budi_at.to_string(), alice_at.to_string()]);
    assert_eq!(door.status().occupancy, 2);
    assert!(door.log_text().contains("presence snapshot migrated"));
    assert_eq!(door.stop(), Some(0));

    // Migrated once: the next start reads the records.
    let door = Pintud::start(&config, &site.socket(), &args);
    door.wait_for("the list", |s| s.list.is_some());
    assert_eq!(holders(&door), ["budi", "alice"]);
    assert!(!door.log_text().contains("presence snapshot migrated"));
    assert_eq!(door.stop(), Some(0));
    {
        let (store, _) = Store::open(&site.store_options(), &site.policy()).expect("store");
        let loaded = store.load_procedure().expect("load");
        assert!(!loaded.legacy, "the old key is gone");
        assert_eq!(
            loaded.snapshot.expect("records").presence.occupants.len(),
            2
        );
    }
}

/// Seeds the store with `who` inside since `ago` (records, as the door writes them).
fn seed_inside(site: &Site, who: &[(&str, &str, SignedDuration)]) {
    use pintu::core::escort::EscortSettings;
    use pintu::core::presence::{Occupant, Presence};
    use pintu::core::procedure::ProcedureChanges;
    let mut p = Presence::new();
    for (uid, holder, ago) in who {
        let card = site.card_key.hash(&uid.parse().expect("uid"));
        let o = Occupant::new(
            card,
            *holder,
            *holder,
            Role::Staff,
            Timestamp::now() - *ago,
            std::time::Instant::now(),
        );
        p.enter(o, &EscortSettings::default());
    }
    let (store, _) = Store::open(&site.store_options(), &site.policy()).expect("store");
    let changes = ProcedureChanges {
        presence: p.take_changes(),
        floor: false,
    };
    store.save_procedure_changes(&changes, None).expect("save");
    store.flush_blocking().expect("flush");
}

/// Issue 24 item 2: a door without an exit reader drops whoever has been recorded inside past
/// its presence expiry (12 h unless configured), with `presence.expired`, and the drop is saved;
/// `presence_expiry = "off"` keeps them.
#[test]
fn an_entry_only_door_drops_presence_past_its_expiry() {
    let site = Site::new();
    let list = list(&site);
    let args = ["--list", list.to_str().expect("utf-8 path")];
    seed_inside(
        &site,
        &[
            (BUDI, "budi", SignedDuration::from_hours(13)),
            (ALICE, "alice", SignedDuration::from_hours(11)),
        ],
    );
    // The default for an entry-only door: 12 h.
    let config = site.write_config("");
    let door = Pintud::start(&config, &site.socket(), &args);
    door.wait_for("budi's presence to expire", |s| s.occupancy == 1);
    assert_eq!(holders(&door), ["alice"]);
    let expired: Vec<_> = door
        .events()
        .into_iter()
        .filter(|e| e.kind == pintu::core::event::EventKind::PresenceExpired)
        .collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0].holder.as_deref(), Some("budi"));
    assert_eq!(expired[0].reason.as_deref(), Some("presence_expiry"));
    assert_eq!(door.stop(), Some(0));

    // Configured shorter: alice goes too; the drop survives a restart.
    let config = site.write_config("\n[visits]\npresence_expiry = \"10h\"\n");
    let door = Pintud::start(&config, &site.socket(), &args);
    door.wait_for("alice's presence to expire", |s| s.occupancy == 0);
    assert_eq!(door.stop(), Some(0));
    let door = Pintud::start(&config, &site.socket(), &args);
    assert!(holders(&door).is_empty());
    assert_eq!(door.stop(), Some(0));

    // Off: kept however long.
    let site = Site::new();
    seed_inside(&site, &[(BUDI, "budi", SignedDuration::from_hours(48))]);
    let list = self::list(&site);
    let args = ["--list", list.to_str().expect("utf-8 path")];
    let config = site.write_config("\n[visits]\npresence_expiry = \"off\"\n");
    let door = Pintud::start(&config, &site.socket(), &args);
    door.wait_for("the list", |s| s.list.is_some());
    // Ticks come every second: give it two.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    assert_eq!(holders(&door), ["budi"]);
    assert_eq!(door.stop(), Some(0));
}
