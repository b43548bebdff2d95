//! The server-room procedure at a real door: serial readers on pseudo-terminals (an entry reader
//! outside, an exit reader inside), a signed list carrying an approved visit, and the outbox.
//! A visitor and an escort enter together, the escort leaves first (`visitor.unescorted`), the
//! visitor leaves (`visit.closed`, the SOP's exit record); presence survives a restart.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use pintu::core::event::{Event, EventKind};
use pintu::core::list::{self, Role};
use pintu::core::visit::Visit;
use pintu::door::control::{Occupant, Reply, Request};

use crate::common::{Pintud, Site};
use crate::serial::Pty;

/// EM4100 cards (5 bytes).
const ESCORT: &str = "1A007430FA";
const VISITOR: &str = "62E3086CED";

fn serial_reader(name: &str, role: &str, pty: &Pty) -> String {
    format!(
        "\n[[reader]]\nname = \"{name}\"\nrole = \"{role}\"\nbackend = \"serial\"\nport = \"{}\"\nprotocol = \"em4100\"\nhold = \"100ms\"\n",
        pty.slave.display()
    )
}

fn signed_list_with_visit(site: &Site) -> Vec<u8> {
    let now = Timestamp::now();
    let mut escort = site.entry(
        ESCORT,
        "h-escort",
        "2020-01-01T00:00:00Z",
        "2099-01-01T00:00:00Z",
    );
    escort.role = Role::Escort;
    let from = (now - SignedDuration::from_hours(1)).to_string();
    let until = (now + SignedDuration::from_hours(2)).to_string();
    let mut badge = site.entry(VISITOR, "badge-07", &from, &until);
    badge.role = Role::Visitor;
    let visit = Visit {
        id: "V-2026-0042".into(),
        badge: badge.card,
        visitor: "Budi (PT Vendor)".into(),
        host: "h-escort".into(),
        valid_from: badge.valid_from,
        valid_until: badge.valid_until,
    };
    let payload = site.payload(1, vec![escort, badge]);
    let bytes = list::payload_bytes(&payload, &[visit]).expect("payload bytes");
    list::sign(&bytes, &site.keys[..1])
}

fn events_of(door: &Pintud, kind: EventKind) -> Vec<Event> {
    door.events()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

fn wait_event(door: &Pintud, kind: EventKind, n: usize) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = events_of(door, kind);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} {} event(s); log:\n{}",
            kind.as_str(),
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn who(door: &Pintud) -> Vec<Occupant> {
    match door.request(&Request::Who) {
        Reply::Who { occupants } => occupants,
        other => panic!("unexpected reply to who: {other:?}"),
    }
}

#[test]
fn visitor_and_escort_enter_escort_leaves_first_then_the_visit_is_closed() {
    let site = Site::new();
    let mut front = Pty::open();
    let mut back = Pty::open();
    let extra = format!(
        "{}{}",
        serial_reader("front", "entry", &front),
        serial_reader("back", "exit", &back)
    );
    let config = site.write_config(&extra);
    let list = site.path("list.signed");
    std::fs::write(&list, signed_list_with_visit(&site)).expect("list");
    let args = ["--list", list.to_str().expect("utf-8 path")];
    let door = Pintud::start(&config, &site.socket(), &args);
    door.wait_for("the list", |s| s.list.is_some());
    // Both serial readers are open before the first frame.
    let deadline = Instant::now() + Duration::from_secs(15);
    while door.log_text().matches("serial port open").count() < 2 {
        assert!(Instant::now() < deadline, "readers: {}", door.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }

    // The visitor's badge alone does not open: it waits for an escort.
    front.frame(VISITOR);
    let awaited = wait_event(&door, EventKind::EscortAwaited, 1);
    assert_eq!(awaited[0].reader.as_deref(), Some("front"));
    assert!(events_of(&door, EventKind::LockReleased).is_empty());
    // The escort taps within the window: both are in, the lock released once.
    front.frame(ESCORT);
    let granted = wait_event(&door, EventKind::AccessGranted, 2);
    let visitor_grant = granted
        .iter()
        .find(|e| e.holder.as_deref() == Some("badge-07"))
        .expect("the visitor's grant");
    assert_eq!(visitor_grant.escort.as_deref(), Some("h-escort"));
    assert_eq!(visitor_grant.visit.as_deref(), Some("V-2026-0042"));
    assert_eq!(events_of(&door, EventKind::LockReleased).len(), 1);
    let inside = who(&door);
    assert_eq!(inside.len(), 2, "{inside:?}");
    let status = door.status();
    assert_eq!((status.occupancy, status.visitors_inside), (2, 1));
    let out = crate::common::pintuctl(&[
        "--socket",
        site.socket().to_str().expect("utf-8 path"),
        "who",
    ]);
    let text = crate::common::text(&out.stdout);
    assert!(out.status.success(), "{}", crate::common::text(&out.stderr));
    assert!(
        text.contains("Holder badge-07 (badge-07)")
            && text.contains("visit V-2026-0042, escorted by h-escort")
            && text.contains("Holder h-escort"),
        "{text}"
    );

    // Presence survives a restart.
    assert_eq!(door.stop(), Some(0));
    let door = Pintud::start(&config, &site.socket(), &args);
    let deadline = Instant::now() + Duration::from_secs(15);
    while door.log_text().matches("serial port open").count() < 2 {
        assert!(Instant::now() < deadline, "readers: {}", door.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let inside = who(&door);
    assert_eq!(inside.len(), 2, "restored presence: {inside:?}");
    let visitor = inside
        .iter()
        .find(|o| o.role == "visitor")
        .expect("visitor inside");
    assert_eq!(visitor.escort.as_deref(), Some("h-escort"));
    assert_eq!(visitor.visit.as_deref(), Some("V-2026-0042"));

    // The escort leaves first: the visitor is unescorted.
    back.frame(ESCORT);
    let alarm = wait_event(&door, EventKind::VisitorUnescorted, 1);
    assert_eq!(alarm[0].visit.as_deref(), Some("V-2026-0042"));
    // The visitor leaves: the visit is closed with the SOP's exit record.
    back.frame(VISITOR);
    let closed = wait_event(&door, EventKind::VisitClosed, 1);
    let c = &closed[0];
    assert_eq!(c.visit.as_deref(), Some("V-2026-0042"));
    assert_eq!(c.visitor.as_deref(), Some("Budi (PT Vendor)"));
    assert_eq!(c.escort.as_deref(), Some("h-escort"));
    let (entered, exited) = (
        c.entered_at.expect("entered_at"),
        c.exited_at.expect("exited_at"),
    );
    assert!(entered <= exited);
    assert!(c.duration_s.is_some());
    assert!(c.card.as_deref().is_some_and(|m| m.starts_with("c:")));
    assert!(who(&door).is_empty());
    assert_eq!(door.status().occupancy, 0);
    // Every visit.closed matches the visitor's entry.
    assert_eq!(
        events_of(&door, EventKind::VisitClosed).len(),
        events_of(&door, EventKind::AccessGranted)
            .iter()
            .filter(|e| e.visit.as_deref() == Some("V-2026-0042")
                && e.reader.as_deref() == Some("front"))
            .count()
    );
}

#[test]
fn a_visitor_without_an_escort_times_out_denied() {
    let site = Site::new();
    let mut front = Pty::open();
    let extra = format!(
        "{}\n[visits]\nescort_window = \"1s\"\n",
        serial_reader("front", "entry", &front)
    );
    let config = site.write_config(&extra);
    let list = site.path("list.signed");
    std::fs::write(&list, signed_list_with_visit(&site)).expect("list");
    let door = Pintud::start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("utf-8 path")],
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !door.log_text().contains("serial port open") {
        assert!(Instant::now() < deadline, "reader: {}", door.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    front.frame(VISITOR);
    wait_event(&door, EventKind::EscortAwaited, 1);
    let denied = wait_event(&door, EventKind::AccessDenied, 1);
    assert_eq!(denied[0].reason.as_deref(), Some("escort_timeout"));
    assert!(events_of(&door, EventKind::LockReleased).is_empty());
    assert!(who(&door).is_empty());
}
