//! Tables and properties of the window: acks in order, never a seq acknowledged twice, a
//! reconnect resends what is not acknowledged in order.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

#[test]
fn reason_codes_fall_where_docs_mqtt_md_says() {
    use PubAckReason as R;
    for (reason, want) in [
        (R::Success, Verdict::Delivered),
        (R::NoMatchingSubscribers, Verdict::Delivered),
        (R::PayloadFormatInvalid, Verdict::SetAside),
        (R::ImplementationSpecificError, Verdict::SetAside),
        (R::NotAuthorized, Verdict::Refused),
        (R::TopicNameInvalid, Verdict::Refused),
        (R::QuotaExceeded, Verdict::Refused),
        (R::UnspecifiedError, Verdict::Refused),
        (R::PacketIdentifierInUse, Verdict::Reconnect),
    ] {
        assert_eq!(verdict(reason), want, "{reason:?}");
    }
}

/// Queues events from `outbox` (seqs still undelivered) while the window has room, as the link
/// does; returns the seqs queued.
fn pump(w: &mut Window, outbox: &BTreeSet<u64>) -> Vec<u64> {
    let mut queued = Vec::new();
    while w.room() > 0 {
        let Some(&seq) = outbox.range(w.next_seq()..).next() else {
            break;
        };
        w.queue_event(seq);
        queued.push(seq);
    }
    queued
}

#[test]
fn packet_ids_map_to_seqs_in_queue_order() {
    let mut w = Window::new(3);
    w.reconnected(5);
    let outbox: BTreeSet<u64> = (5..10).collect();
    assert_eq!(pump(&mut w, &outbox), vec![5, 6, 7]);
    assert_eq!(w.room(), 0);
    w.queue_status(Sent::Status);
    for pkid in [1, 2, 3, 4] {
        assert!(w.published(pkid));
    }
    assert!(!w.published(9), "nothing else was queued");
    // Out of order answers still name the right seq; the status's too.
    assert_eq!(w.acked(4, Verdict::Delivered), Acked::Status(Sent::Status));
    assert_eq!(
        w.acked(2, Verdict::Delivered),
        Acked::Event {
            seq: 6,
            verdict: Verdict::Delivered
        }
    );
    assert_eq!(
        w.acked(2, Verdict::Delivered),
        Acked::Unknown,
        "answered once"
    );
    assert_eq!(w.room(), 1);
    assert_eq!(w.events_in_flight(), 2);
}

#[test]
fn verdicts_leave_the_window_as_they_came() {
    for (verdict, want) in [
        (Verdict::Delivered, Verdict::Delivered),
        (Verdict::SetAside, Verdict::SetAside),
        (Verdict::Refused, Verdict::Refused),
        (Verdict::Reconnect, Verdict::Reconnect),
    ] {
        let mut w = Window::new(10);
        w.reconnected(1);
        w.queue_event(1);
        assert!(w.published(7));
        assert_eq!(
            w.acked(7, verdict),
            Acked::Event {
                seq: 1,
                verdict: want
            }
        );
        assert_eq!(w.events_in_flight(), 0);
    }
}

#[test]
fn a_refusal_probes_one_event_at_a_time_and_is_raised_once_per_connection() {
    let mut w = Window::new(10);
    w.reconnected(1);
    assert!(w.refused("not_authorized".into()), "raised the first time");
    assert!(
        !w.refused("not_authorized".into()),
        "not again on this connection"
    );
    assert_eq!(w.room(), 1);
    assert_eq!(w.refusal(), Some("not_authorized"));
    w.reconnected(1);
    assert_eq!(w.room(), 1, "still refused on the next connection");
    assert!(
        w.refused("not_authorized".into()),
        "raised again on a new connection"
    );
    assert_eq!(w.accepted().as_deref(), Some("not_authorized"));
    assert_eq!(w.accepted(), None);
    assert_eq!(w.room(), 10);
}

#[test]
fn an_event_that_breaks_the_connection_twice_alone_is_set_aside() {
    let mut w = Window::new(10);
    w.reconnected(1);
    let outbox: BTreeSet<u64> = (1..=4).collect();
    pump(&mut w, &outbox);
    for pkid in 1..=4 {
        w.published(pkid);
    }
    assert_eq!(w.broke_connection(), Some(Poison::Suspect(1)));
    w.reconnected(1);
    assert_eq!(pump(&mut w, &outbox), vec![1], "the suspect goes out alone");
    w.published(1);
    assert_eq!(w.broke_connection(), Some(Poison::SetAside(1)));
    w.reconnected(1);
    assert_eq!(w.room(), 10, "delivery goes on at full window");
    // A suspect that is delivered is cleared.
    let mut w = Window::new(10);
    w.reconnected(1);
    w.queue_event(1);
    w.published(3);
    w.queue_event(2);
    w.published(4);
    assert_eq!(w.broke_connection(), Some(Poison::Suspect(1)));
    w.reconnected(1);
    w.queue_event(1);
    w.published(1);
    w.acked(1, Verdict::Delivered);
    assert_eq!(w.room(), 10);
    // Nothing in flight: nothing to suspect.
    assert_eq!(Window::new(3).broke_connection(), None);
}

#[test]
fn the_offline_status_is_pending_until_acknowledged() {
    let mut w = Window::new(2);
    w.reconnected(0);
    assert!(!w.offline_pending());
    w.queue_status(Sent::Offline);
    assert!(w.offline_pending());
    w.published(9);
    assert!(w.offline_pending());
    assert_eq!(w.acked(9, Verdict::Delivered), Acked::Status(Sent::Offline));
    assert!(!w.offline_pending());
}

/// One step of a random run against a model outbox.
#[derive(Debug, Clone)]
enum Step {
    /// rumqttc sends the oldest queued publish.
    Publish,
    /// The broker answers the in-flight packet at this index (modulo), accepting it.
    Ack(usize),
    /// The broker answers the oldest in-flight packet, accepting it.
    AckOldest,
    /// New events are appended to the outbox.
    Append(u8),
    /// The connection drops and a new one starts.
    Reconnect,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Publish),
        2 => any::<usize>().prop_map(Step::Ack),
        3 => Just(Step::AckOldest),
        2 => (1u8..5).prop_map(Step::Append),
        1 => Just(Step::Reconnect),
    ]
}

/// Runs `steps` through a window of `limit` and a model outbox; checks the properties as it
/// goes and returns what was acknowledged, in order.
fn run(limit: usize, steps: &[Step], in_order_only: bool) -> Vec<u64> {
    let mut w = Window::new(limit);
    let mut outbox: BTreeSet<u64> = BTreeSet::new();
    let mut appended = 0u64;
    let mut acked: Vec<u64> = Vec::new();
    let mut pkid = 0u16;
    // Packet ids sent on this connection, oldest first, not yet answered.
    let mut sent: Vec<u16> = Vec::new();
    let mut queued = 0usize;
    for s in steps {
        match s {
            Step::Publish if queued > 0 => {
                pkid = pkid.wrapping_add(1).max(1);
                assert!(w.published(pkid));
                sent.push(pkid);
                queued -= 1;
            }
            Step::Publish => {}
            Step::Ack(_) | Step::AckOldest if !sent.is_empty() => {
                let i = match s {
                    Step::Ack(i) if !in_order_only => i % sent.len(),
                    _ => 0,
                };
                let p = sent.remove(i);
                match w.acked(p, Verdict::Delivered) {
                    Acked::Event { seq, .. } => {
                        assert!(
                            outbox.remove(&seq),
                            "seq {seq} acknowledged but not in the outbox"
                        );
                        assert!(!acked.contains(&seq), "seq {seq} acknowledged twice");
                        acked.push(seq);
                    }
                    other => panic!("an event's PUBACK answered {other:?}"),
                }
            }
            Step::Ack(_) | Step::AckOldest => {}
            Step::Append(n) => {
                for _ in 0..*n {
                    appended += 1;
                    outbox.insert(appended);
                }
            }
            Step::Reconnect => {
                sent.clear();
                queued = 0;
                let first = outbox.first().copied().unwrap_or(appended + 1);
                w.reconnected(first);
                // Resent in order: the oldest un-acknowledged first, then the rest in seq order.
                let resent = pump(&mut w, &outbox);
                let expected: Vec<u64> = outbox.iter().copied().take(limit).collect();
                assert_eq!(
                    resent, expected,
                    "a reconnect resends the un-acknowledged in order"
                );
                queued += resent.len();
                continue;
            }
        }
        assert!(
            w.events_in_flight() <= limit,
            "the window holds at most {limit}"
        );
        queued += pump(&mut w, &outbox).len();
    }
    acked
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_acknowledges_a_seq_twice_and_resends_in_order(
        limit in 1usize..6,
        steps in proptest::collection::vec(step(), 0..120),
    ) {
        run(limit, &steps, false);
    }

    #[test]
    fn in_order_pubacks_acknowledge_seqs_in_order(
        limit in 1usize..6,
        steps in proptest::collection::vec(step(), 0..120),
    ) {
        let acked = run(limit, &steps, true);
        // Within one connection seqs are acknowledged in increasing order; across a reconnect
        // the first acknowledged is the oldest un-acknowledged, so the sequence still rises.
        prop_assert!(acked.windows(2).all(|p| p[0] < p[1]), "{acked:?}");
    }
}
