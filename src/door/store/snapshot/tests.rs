//! The procedure's records: saved by change, read back after a restart, migrated from the old
//! single-key snapshot; the lockdown.

use std::time::Instant;

use super::super::testing::Door;
use super::*;
use crate::core::card::CardHash;
use crate::core::escort::EscortSettings;
use crate::core::list::Role;
use crate::core::presence::Presence;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn staff(i: u32) -> Occupant {
    let mut card = [0u8; 32];
    card[..4].copy_from_slice(&i.to_be_bytes());
    Occupant::new(
        CardHash(card),
        format!("h{i}"),
        format!("Holder {i}"),
        Role::Staff,
        ts("2026-12-07T10:00:00Z"),
        Instant::now(),
    )
}

/// Saves what `p` changed since the last call.
fn save(store: &Store, p: &mut Presence, floor: Option<Option<Timestamp>>) {
    let changes = ProcedureChanges {
        presence: p.take_changes(),
        floor: false,
    };
    store.save_procedure_changes(&changes, floor).expect("save");
}

#[test]
fn records_saved_by_change_survive_a_flushed_restart_in_entry_order() {
    let door = Door::new();
    let s = EscortSettings::default();
    let mut p = Presence::new();
    {
        let (store, _) = door.open();
        let loaded = store.load_procedure().expect("load");
        assert!(loaded.snapshot.is_none() && !loaded.legacy);
        for i in [7, 3, 9, 1] {
            p.enter(staff(i), &s);
            save(&store, &mut p, None);
        }
        p.exit(
            &staff(9).card,
            Some("exit"),
            ts("2026-12-07T11:00:00Z"),
            Instant::now(),
            &s,
        );
        save(&store, &mut p, Some(Some(ts("2026-12-07T11:00:00Z"))));
        store.flush_blocking().expect("flush");
    }
    let (store, _) = door.open();
    let loaded = store.load_procedure().expect("load");
    assert!(!loaded.legacy && loaded.damaged.is_empty());
    let snap = loaded.snapshot.expect("records");
    assert_eq!(snap.floor, Some(ts("2026-12-07T11:00:00Z")));
    let back = Presence::restore(
        snap.presence,
        ts("2026-12-07T12:00:00Z"),
        Instant::now(),
        std::time::Duration::from_secs(900),
    )
    .expect("restore");
    let holders: Vec<_> = back.occupants().iter().map(|o| o.holder.as_str()).collect();
    assert_eq!(
        holders,
        vec!["h7", "h3", "h1"],
        "entry order, not card order"
    );
}

#[test]
fn a_tap_writes_the_same_bytes_with_a_thousand_inside() {
    let door = Door::new();
    let (store, _) = door.open();
    let s = EscortSettings::default();
    let mut p = Presence::new();
    let cost = |store: &Store, p: &mut Presence, i: u32| {
        let before = store.bytes_written();
        p.enter(staff(i), &s);
        save(store, p, None);
        store.bytes_written() - before
    };
    let empty_room = cost(&store, &mut p, 0);
    for i in 1..1_000 {
        p.enter(staff(i), &s);
        save(&store, &mut p, None);
    }
    let full_room = cost(&store, &mut p, 1_000);
    assert!(empty_room > 0);
    // One record either way (a few digits longer); the whole snapshot would be ~200 kB.
    assert!(
        full_room * 4 <= empty_room * 5,
        "{empty_room} bytes with nobody inside, {full_room} with 1,000 inside"
    );
}

#[test]
fn an_old_single_key_snapshot_is_migrated_once() {
    let door = Door::new();
    let s = EscortSettings::default();
    let mut p = Presence::new();
    for i in [5, 2, 8] {
        p.enter(staff(i), &s);
    }
    let old = ProcedureSnapshot {
        floor: Some(ts("2026-12-07T10:30:00Z")),
        presence: p.snapshot(),
    };
    // The old layout had no entry order in the records.
    let mut json = serde_json::to_value(&old).expect("json");
    for o in json["presence"]["occupants"]
        .as_array_mut()
        .expect("occupants")
    {
        o.as_object_mut().expect("object").remove("order");
    }
    {
        let (store, _) = door.open();
        store
            .save_legacy_procedure_snapshot(&serde_json::to_vec(&json).expect("bytes"))
            .expect("save");
    }
    let (store, _) = door.open();
    let loaded = store.load_procedure().expect("load");
    assert!(loaded.legacy);
    let snap = loaded.snapshot.expect("snapshot");
    // As the daemon does: restore (which numbers the old records in their order), then save.
    let restored = Presence::restore(
        snap.presence,
        ts("2026-12-07T11:00:00Z"),
        Instant::now(),
        std::time::Duration::from_secs(900),
    )
    .expect("restore");
    let migrated = ProcedureSnapshot {
        floor: snap.floor,
        presence: restored.snapshot(),
    };
    store.replace_procedure(&migrated).expect("migrate");
    drop(store);
    let (store, _) = door.open();
    let loaded = store.load_procedure().expect("load");
    assert!(!loaded.legacy, "migrated once");
    let snap = loaded.snapshot.expect("records");
    assert_eq!(snap.floor, old.floor);
    let back = Presence::restore(
        snap.presence,
        ts("2026-12-07T12:00:00Z"),
        Instant::now(),
        std::time::Duration::from_secs(900),
    )
    .expect("restore");
    let holders: Vec<_> = back.occupants().iter().map(|o| o.holder.as_str()).collect();
    assert_eq!(holders, vec!["h5", "h2", "h8"]);
}

#[test]
fn a_damaged_record_is_left_out_and_reported() {
    let door = Door::new();
    let s = EscortSettings::default();
    let mut p = Presence::new();
    {
        let (store, _) = door.open();
        p.enter(staff(1), &s);
        p.enter(staff(2), &s);
        save(&store, &mut p, None);
        store
            .procedure
            .insert(occupant_key(&staff(2).card.0), &b"{not json"[..])
            .expect("damage");
        store.flush_blocking().expect("flush");
    }
    let (store, _) = door.open();
    let loaded = store.load_procedure().expect("load");
    assert_eq!(loaded.damaged.len(), 1);
    let snap = loaded.snapshot.expect("records");
    let holders: Vec<_> = snap
        .presence
        .occupants
        .iter()
        .map(|o| o.holder.as_str())
        .collect();
    assert_eq!(holders, vec!["h1"]);
}

#[test]
fn the_lockdown_is_set_cleared_and_durable_on_return() {
    let door = Door::new();
    {
        let (store, _) = door.open();
        assert_eq!(store.lockdown().expect("read"), None);
        store.set_lockdown(Some("staff")).expect("set");
    }
    {
        let (store, _) = door.open();
        assert_eq!(store.lockdown().expect("read").as_deref(), Some("staff"));
        store.set_lockdown(None).expect("clear");
    }
    let (store, _) = door.open();
    assert_eq!(store.lockdown().expect("read"), None);
}
