//! Presence across restarts at a real pintud: saved one record per occupant, and a store written
//! before that layout (the whole snapshot in one key) starts with the same people inside.

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
    // The snapshot exactly as the door wrote it before: budi entered first, then alice.
    let card = |uid: &str| site.card_key.hash(&uid.parse().expect("uid")).to_hex();
    let legacy = format!(
        r#"{{"floor":"2026-12-07T09:00:00Z","presence":{{"format":1,"occupants":[{{"card":"{}","holder":"budi","name":"Budi","role":"staff","entered_at":"2026-12-07T08:00:00Z","overstay_alarms":0}},{{"card":"{}","holder":"alice","name":"Alice","role":"staff","entered_at":"2026-12-07T08:30:00Z","overstay_alarms":0}}],"unescorted":false}}}}"#,
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
    assert_eq!(entered, ["2026-12-07T08:00:00Z", "2026-12-07T08:30:00Z"]);
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
