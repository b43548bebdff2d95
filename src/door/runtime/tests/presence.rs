//! Presence at a running door task: saved by change, so a tap costs the store the same with a
//! thousand people inside as with nobody (issue 24).

use super::*;

/// A signed list of `n` staff cards (`uid(i)`, holder `h{i}`).
fn crowd_list(door: &Door, n: usize) -> Vec<u8> {
    let now = Timestamp::now();
    let payload = Payload {
        format: list::PAYLOAD_FORMAT,
        site: "site-a".into(),
        doors: vec!["door-1".into()],
        version: 1,
        issued_at: now - SignedDuration::from_hours(1),
        expires_at: now + SignedDuration::from_hours(24),
        time_zone: "Asia/Jakarta".into(),
        entries: (0..n)
            .map(|i| door.entry(&uid(i), &format!("h{i}"), Role::Staff))
            .collect(),
    };
    list::sign(
        &serde_json::to_vec(&payload).unwrap(),
        &[("k1".to_string(), door.key.clone())],
    )
}

/// A 7-byte UID per person.
fn uid(i: usize) -> String {
    format!("04{:012X}", 0x10_0000 + i)
}

/// Bytes the store wrote for one entry tap (taken with the lock secured again, so the relay's
/// own events are the same each time).
async fn tap_cost(door: &Door, i: usize) -> u64 {
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let before = door.handle.store().bytes_written();
    let outcome = door.handle.tap(&uid(i), None).await.unwrap();
    assert_eq!(outcome.decision, "grant", "{outcome:?}");
    door.handle.store().bytes_written() - before
}

/// Issue 24, the regression: 1,000 entries without exits, and the next tap writes about what a
/// tap into the empty room wrote (one occupant's record and the events), not everyone inside.
#[tokio::test]
async fn a_tap_writes_as_much_with_a_thousand_inside_as_into_the_empty_room() {
    let door = door().await;
    let bytes = crowd_list(&door, 1_001);
    let h = door.handle.clone();
    let applied = tokio::task::spawn_blocking(move || h.apply_list(&bytes, "test"))
        .await
        .unwrap();
    assert!(matches!(applied, Ok(Ok(_))), "{applied:?}");
    let empty_room = tap_cost(&door, 0).await;
    for i in 1..1_000 {
        let outcome = door.handle.tap(&uid(i), None).await.unwrap();
        assert_eq!(outcome.decision, "grant", "{outcome:?}");
    }
    assert_eq!(door.handle.status().occupancy, 1_000);
    let full_room = tap_cost(&door, 1_000).await;
    assert_eq!(door.handle.status().occupancy, 1_001);
    assert!(
        empty_room > 0 && full_room > 0,
        "the store counts what it writes"
    );
    // The whole snapshot with 1,000 inside is ~200 kB; one record is ~200 bytes.
    assert!(
        full_room * 4 <= empty_room * 5,
        "{empty_room} bytes into the empty room, {full_room} with 1,000 inside"
    );
}
