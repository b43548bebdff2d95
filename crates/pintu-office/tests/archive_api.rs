//! The archive's read-only API over HTTP on both databases: the roles that review the doors read
//! events (paged, by door and holder), one event, gaps, counters, problems and rejected messages;
//! others are refused; bad queries say which field.

use pintu_office::archive::{self, Message};
use pintu_office::auth::Role;
use pintu_office::db_test;
use pintu_testkit::SITE;
use serde_json::Value;

use crate::archive::{event, topic};
use crate::support::{Client, Office};

/// The office's base URL (its router serves the archive's routes).
async fn archive_base(office: &Office) -> String {
    office.base.clone()
}

async fn seed(office: &Office) {
    let mut batch: Vec<Message> = [1u64, 2, 3, 6]
        .iter()
        .map(|s| Message {
            topic: topic("door-1"),
            payload: event("door-1", *s).into_bytes(),
        })
        .collect();
    batch.push(Message {
        topic: topic("door-2"),
        payload: b"not json".to_vec(),
    });
    // The sites of the test office and the fixture differ: the archive's site is the door's.
    archive::store_batch(&office.t.db, SITE, "a", &batch)
        .await
        .expect("store");
}

db_test!(async fn the_archive_reads_over_http_for_the_roles_that_review(t) {
    let office = Office::start(t).await;
    seed(&office).await;
    let base = archive_base(&office).await;
    office.account("auditor", &[Role::Auditor]).await;
    office.account("pemohon", &[Role::Requester]).await;
    let auditor = office.login("auditor").await.at(&base);

    let (status, stats) = auditor.get("/api/v1/archive/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!((stats["stored"].as_i64(), stats["rejected"].as_i64()), (Some(4), Some(1)));
    assert_eq!(stats["doors"][0]["last"], 6);

    // Paged: two at a time, following `next`.
    let mut seqs = Vec::new();
    let mut path = "/api/v1/archive/events?door=door-1&limit=2".to_string();
    loop {
        let (status, page) = auditor.get(&path).await;
        assert_eq!(status, 200, "{page}");
        seqs.extend(page["events"].as_array().expect("events").iter().map(|e| e["seq"].as_i64()));
        let next = &page["next"];
        if next.is_null() {
            break;
        }
        path = format!(
            "/api/v1/archive/events?door=door-1&limit=2&after_at_ms={}&after_door={}&after_seq={}",
            next["at_ms"], next["door"].as_str().expect("door"), next["seq"]
        );
    }
    assert_eq!(seqs, vec![Some(1), Some(2), Some(3), Some(6)]);

    let (status, one) = auditor.get("/api/v1/archive/events/door-1/2").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["body"].as_str(), Some(event("door-1", 2).as_str()));
    let (status, _) = auditor.get("/api/v1/archive/events/door-1/4").await;
    assert_eq!(status, 404);

    let (status, gaps) = auditor.get("/api/v1/archive/gaps").await;
    assert_eq!(status, 200);
    assert_eq!((gaps["gaps"][0]["from"].as_i64(), gaps["gaps"][0]["to"].as_i64()), (Some(4), Some(5)));
    let (status, rejected) = auditor.get("/api/v1/archive/rejected").await;
    assert_eq!(status, 200);
    assert_eq!(rejected["rejected"][0]["payload"], "not json");
    let (status, problems) = auditor.get("/api/v1/archive/problems?kind=conflict").await;
    assert_eq!((status, problems["problems"].as_array().map(Vec::len)), (200, Some(0)));

    // Bad queries name the field.
    let (status, body) = auditor.get("/api/v1/archive/problems?kind=bogus").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "kind");
    let (status, body) = auditor.get("/api/v1/archive/events?after_seq=3").await;
    assert_eq!(status, 422, "{body}");

    // A requester is refused; no session is refused.
    let pemohon = office.login("pemohon").await.at(&base);
    let (status, body): (u16, Value) = pemohon.get("/api/v1/archive/events").await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = Client::new(&base).get("/api/v1/archive/stats").await;
    assert_eq!(status, 401);
});
