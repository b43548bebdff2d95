//! The archive's store and queries on both engines: de-duplication by (door, seq), conflicts
//! with both digests, gaps opened and filled, rejected messages kept, paging.

use super::*;
use crate::db_test;

fn ev(door: &str, seq: u64, id: u128, kind: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema": pintu::core::event::EVENT_SCHEMA, "id": uuid::Uuid::from_u128(id), "seq": seq,
        "time": format!("2026-05-04T01:{:02}:{:02}Z", seq / 60 % 60, seq % 60),
        "site": "s", "door": door, "kind": kind, "holder": format!("h{}", seq % 2),
    }))
    .unwrap_or_default()
}

fn msg(door: &str, payload: Vec<u8>) -> Message {
    Message {
        topic: format!("pintu/s/{door}/events"),
        payload,
    }
}

fn gap_list(gaps: &[Gap]) -> Vec<(&str, i64, i64)> {
    gaps.iter()
        .map(|g| (g.door.as_str(), g.from, g.to))
        .collect()
}

db_test!(async fn stores_once_counts_duplicates_conflicts_and_finds_gaps(t) {
    let batch: Vec<Message> = [("a", 1, 1), ("a", 2, 2), ("a", 2, 2), ("a", 5, 5), ("b", 3, 13)]
        .into_iter()
        .map(|(d, s, i)| msg(d, ev(d, s, i, "lock.secured")))
        .collect();
    let out = store_batch(&t.db, "s", "t", &batch).await.expect("store");
    assert_eq!(out[2], Stored::Duplicate { door: "a".into(), seq: 2 });
    assert_eq!(out[3], Stored::New { door: "a".into(), seq: 5, gap: Some((3, 4)), filled: false });
    let more = vec![
        msg("a", ev("a", 5, 99, "lock.secured")),
        msg("b", ev("a", 6, 6, "x")),
        msg("a", b"not json".to_vec()),
    ];
    let out = store_batch(&t.db, "s", "t", &more).await.expect("store");
    assert_eq!(out[0], Stored::Conflict { door: "a".into(), seq: 5 });
    assert!(matches!(&out[1], Stored::Rejected { reason } if reason.contains("topic")), "{out:?}");
    let s = stats(&t.db).await.expect("stats");
    assert_eq!(
        s.counters,
        Counters { received: 8, stored: 4, duplicates: 1, conflicts: 1, rejected: 2 }
    );
    assert_eq!(
        s.doors.iter().map(|d| (d.door.as_str(), d.events, d.first, d.last)).collect::<Vec<_>>(),
        vec![("a", 3, 1, 5), ("b", 1, 3, 3)]
    );
    let g = gaps(&t.db).await.expect("gaps");
    assert_eq!(gap_list(&g), vec![("a", 3, 4), ("b", 1, 2)]);
    assert_eq!(g[1].note.as_deref(), Some(store::BEFORE_FIRST));
    let conflicts = problems(&t.db, Some("conflict"), 10).await.expect("problems");
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!((c.door.as_deref(), c.seq), (Some("a"), Some(5)));
    assert_eq!(c.kept_digest.as_deref(), Some(digest(&ev("a", 5, 5, "lock.secured")).as_str()));
    assert_eq!(c.other_digest.as_deref(), Some(digest(&ev("a", 5, 99, "lock.secured")).as_str()));
    let r = rejected(&t.db, 10).await.expect("rejected");
    assert_eq!(r.len(), 2);
    assert!(r.iter().any(|m| m.payload == "not json" && m.reason.starts_with("malformed")));
    // The first event is kept byte for byte.
    let kept = super::event(&t.db, "a", 5).await.expect("event").expect("archived");
    assert_eq!(kept.body.as_bytes(), event_bytes_a5().as_slice());
});

fn event_bytes_a5() -> Vec<u8> {
    ev("a", 5, 5, "lock.secured")
}

db_test!(async fn late_events_shrink_split_and_close_gaps(t) {
    let first: Vec<Message> = [4u64, 10].iter().map(|s| msg("a", ev("a", *s, *s as u128, "lock.secured"))).collect();
    store_batch(&t.db, "s", "t", &first).await.expect("store");
    assert_eq!(gap_list(&gaps(&t.db).await.expect("gaps")), vec![("a", 1, 3), ("a", 5, 9)]);
    let late: Vec<Message> = [2u64, 5, 7, 9].iter().map(|s| msg("a", ev("a", *s, *s as u128, "lock.secured"))).collect();
    let out = store_batch(&t.db, "s", "t", &late).await.expect("store");
    assert!(out.iter().all(|s| matches!(s, Stored::New { filled: true, .. })), "{out:?}");
    let g = gaps(&t.db).await.expect("gaps");
    assert_eq!(gap_list(&g), vec![("a", 1, 1), ("a", 3, 3), ("a", 6, 6), ("a", 8, 8)]);
    assert_eq!(g[0].note.as_deref(), Some(store::BEFORE_FIRST));
    assert_eq!(g[1].note, None);
    let rest: Vec<Message> = [1u64, 3, 6, 8].iter().map(|s| msg("a", ev("a", *s, *s as u128, "lock.secured"))).collect();
    store_batch(&t.db, "s", "t", &rest).await.expect("store");
    assert!(gaps(&t.db).await.expect("gaps").is_empty());
    let s = stats(&t.db).await.expect("stats");
    assert_eq!((s.doors[0].events, s.doors[0].first, s.doors[0].last), (10, 1, 10));
});

db_test!(async fn a_seq_resumed_gap_is_explained(t) {
    let mut resumed: serde_json::Value =
        serde_json::from_slice(&ev("a", 10001, 2, "store.rebuilt")).expect("json");
    resumed["reason"] = "seq_resumed".into();
    let batch = vec![
        msg("a", ev("a", 1, 1, "daemon.started")),
        msg("a", resumed.to_string().into_bytes()),
    ];
    store_batch(&t.db, "s", "t", &batch).await.expect("store");
    let g = gaps(&t.db).await.expect("gaps");
    assert_eq!(gap_list(&g), vec![("a", 2, 10000)]);
    assert!(g[0].note.as_deref().unwrap_or("").contains("seq_resumed"));
});

db_test!(async fn events_are_paged_by_time_and_filtered_by_door_and_holder(t) {
    let batch: Vec<Message> = (1..=30u64)
        .flat_map(|s| [msg("a", ev("a", s, s as u128, "lock.secured")), msg("b", ev("b", s, 100 + s as u128, "lock.secured"))])
        .collect();
    store_batch(&t.db, "s", "t", &batch).await.expect("store");
    let base = 1_777_856_400_000i64;
    let mut q = EventQuery { from_ms: base, until_ms: base + 3_600_000, limit: 7, ..Default::default() };
    let mut seen = Vec::new();
    loop {
        let page = events(&t.db, &q).await.expect("page");
        seen.extend(page.events.iter().map(|e| (e.at_ms, e.door.clone(), e.seq)));
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 60);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "by time, door, seq, no repeats");
    sorted.dedup();
    assert_eq!(sorted.len(), 60);
    let only_b_h1 = events(&t.db, &EventQuery {
        from_ms: base, until_ms: base + 10_000, door: Some("b".into()), holder: Some("h1".into()),
        limit: 100, ..Default::default()
    }).await.expect("page");
    assert_eq!(only_b_h1.events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3, 5, 7, 9]);
    assert!(only_b_h1.next.is_none());
    assert_eq!(only_b_h1.events[0].parsed().map(|e| e.seq), Some(1));
});

db_test!(async fn repeats_inside_one_batch_are_settled_in_order(t) {
    store_batch(&t.db, "s", "t", &[msg("a", ev("a", 1, 1, "lock.secured"))]).await.expect("store");
    let batch = vec![
        msg("a", ev("a", 1, 1, "lock.secured")),
        msg("a", ev("a", 1, 7, "lock.secured")),
        msg("a", ev("a", 2, 2, "lock.secured")),
        msg("a", ev("a", 2, 2, "lock.secured")),
        msg("a", ev("a", 2, 8, "lock.secured")),
        msg("a", ev("a", 4, 4, "lock.secured")),
    ];
    let out = store_batch(&t.db, "s", "t", &batch).await.expect("store");
    assert_eq!(
        out,
        vec![
            Stored::Duplicate { door: "a".into(), seq: 1 },
            Stored::Conflict { door: "a".into(), seq: 1 },
            Stored::New { door: "a".into(), seq: 2, gap: None, filled: false },
            Stored::Duplicate { door: "a".into(), seq: 2 },
            Stored::Conflict { door: "a".into(), seq: 2 },
            Stored::New { door: "a".into(), seq: 4, gap: Some((3, 3)), filled: false },
        ]
    );
    let c = stats(&t.db).await.expect("stats").counters;
    assert_eq!((c.stored, c.duplicates, c.conflicts), (3, 2, 2));
    // Many more than one INSERT statement holds.
    let many: Vec<Message> = (5..=450u64).map(|s| msg("a", ev("a", s, u128::from(s), "lock.secured"))).collect();
    store_batch(&t.db, "s", "t", &many).await.expect("store");
    let s = stats(&t.db).await.expect("stats");
    assert_eq!((s.doors[0].events, s.doors[0].last), (449, 450));
    assert_eq!(gap_list(&gaps(&t.db).await.expect("gaps")), vec![("a", 3, 3)]);
});
