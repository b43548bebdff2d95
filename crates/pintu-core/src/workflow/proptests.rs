//! Property tests of the workflow: random chains, random people with random roles, random
//! sequences of actions at random times. Whatever happens, no request is fulfilled without an
//! approval by a holder of the approving role who is neither its requester nor its verifier;
//! closed requests accept nothing; the history grows by exactly one per accepted step; stages
//! follow the chain's order; the console's buttons are exactly the accepted actions.

use super::*;
use proptest::prelude::*;

const PEOPLE: usize = 5;

fn chain_strategy() -> impl Strategy<Value = Chain> {
    let role = prop::sample::select(vec![
        Role::Helpdesk,
        Role::Coordinator,
        Role::Approver,
        Role::Head,
        Role::Technical,
        Role::Administrator,
    ]);
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(role, 5),
        1u64..200_000,
    )
        .prop_map(|(dispose, verify, roles, sla)| {
            let steps = StepKind::ALL
                .iter()
                .zip(roles)
                .filter(|(k, _)| match k {
                    StepKind::Dispose => dispose,
                    StepKind::Verify => verify,
                    _ => true,
                })
                .map(|(&step, role)| ChainStep {
                    step,
                    role,
                    sla: Duration::from_secs(sla),
                })
                .collect();
            Chain::new(steps).expect("generated chains are valid")
        })
}

/// People 0..PEOPLE with random role sets; person 0 files the request.
fn people_strategy() -> impl Strategy<Value = Vec<Actor>> {
    prop::collection::vec(
        prop::collection::btree_set(prop::sample::select(Role::ALL), 0..4),
        PEOPLE,
    )
    .prop_map(|sets| {
        sets.into_iter()
            .enumerate()
            .map(|(i, mut roles)| {
                if i == 0 {
                    roles.insert(Role::Requester);
                }
                Actor {
                    account: format!("p{i}"),
                    roles,
                }
            })
            .collect()
    })
}

fn action_strategy() -> impl Strategy<Value = Action> {
    let text = prop_oneof![
        3 => Just(String::from("ok")),
        1 => Just(String::new()),
        1 => Just(String::from("  ")),
        1 => Just("x".repeat(TEXT_MAX_CHARS + 1)),
    ];
    (0usize..7, text).prop_map(|(k, t)| match k {
        0 => Action::Dispose { note: t },
        1 => Action::Verify { note: t },
        2 => Action::Approve { note: t },
        3 => Action::Reject { reason: t },
        4 => Action::Fulfil { note: t },
        5 => Action::Inform,
        _ => Action::Withdraw,
    })
}

fn valid(kind: ActionKind) -> Action {
    match kind {
        ActionKind::Dispose => Action::Dispose {
            note: String::new(),
        },
        ActionKind::Verify => Action::Verify {
            note: String::new(),
        },
        ActionKind::Approve => Action::Approve {
            note: String::new(),
        },
        ActionKind::Reject => Action::Reject { reason: "r".into() },
        ActionKind::Fulfil => Action::Fulfil {
            note: String::new(),
        },
        ActionKind::Inform => Action::Inform,
        ActionKind::Withdraw => Action::Withdraw,
    }
}

/// `kind` carrying the text `like` carries (so invalid text is steered too).
fn with_text(kind: ActionKind, like: &Action) -> Action {
    let t = like.text().map(|(_, t)| t.to_owned()).unwrap_or_default();
    match kind {
        ActionKind::Dispose => Action::Dispose { note: t },
        ActionKind::Verify => Action::Verify { note: t },
        ActionKind::Approve => Action::Approve { note: t },
        ActionKind::Reject => Action::Reject { reason: t },
        ActionKind::Fulfil => Action::Fulfil { note: t },
        ActionKind::Inform => Action::Inform,
        ActionKind::Withdraw => Action::Withdraw,
    }
}

/// The stages a request may pass through under `chain`, written out independently of the
/// workflow's own lookup: the approval path, and the rejection path.
fn paths(chain: &Chain) -> (Vec<Stage>, Vec<Stage>) {
    let stage_of = |k: StepKind| match k {
        StepKind::Dispose => Stage::Disposed,
        StepKind::Verify => Stage::Verified,
        StepKind::Approve => Stage::Approved,
        StepKind::Fulfil => Stage::Fulfilled,
        StepKind::Inform => Stage::Informed,
    };
    let mut approve = vec![Stage::Submitted];
    approve.extend(chain.steps().iter().map(|s| stage_of(s.step)));
    let before: Vec<Stage> = approve
        .iter()
        .copied()
        .take_while(|s| *s != Stage::Approved)
        .collect();
    let mut reject = before;
    reject.extend([Stage::Rejected, Stage::Informed]);
    (approve, reject)
}

fn is_prefix(visited: &[Stage], path: &[Stage]) -> bool {
    visited.len() <= path.len() && path[..visited.len()] == *visited
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_walks_keep_the_sop(
        chain in chain_strategy(),
        people in people_strategy(),
        kind in prop::sample::select(RequestKind::ALL),
        moves in prop::collection::vec(
            (0..PEOPLE, action_strategy(), -600i64..100_000, any::<bool>()),
            0..40,
        ),
    ) {
        let t0: Timestamp = "2026-05-04T01:00:00Z".parse().expect("valid");
        let mut r = submit(kind, &people[0], t0).expect("person 0 is a requester");
        let mut now = t0;
        let mut visited = vec![Stage::Submitted];
        let approve_role = chain.get(StepKind::Approve).map(|s| s.role).expect("mandatory");
        let (approve_path, reject_path) = paths(&chain);

        for (who, action, dt, smart) in moves {
            now = now.checked_add(jiff::SignedDuration::from_secs(dt)).expect("in range");
            let before = r.clone();
            // Half the moves are steered: someone with a button other than withdraw presses it
            // (with the generated text, valid or not), so walks get far along the chain.
            let buttons: Vec<(&Actor, ActionKind)> = people
                .iter()
                .flat_map(|p| allowed_actions(&chain, &r, p).into_iter().map(move |k| (p, k)))
                .filter(|(_, k)| *k != ActionKind::Withdraw)
                .collect();
            let (actor, action) = match buttons.get(who % buttons.len().max(1)) {
                Some(&(p, k)) if smart => (p, with_text(k, &action)),
                _ => (&people[who], action),
            };

            // The buttons are exactly what step accepts (with valid text), for everyone.
            for p in &people {
                let buttons = allowed_actions(&chain, &r, p);
                for &k in ActionKind::ALL {
                    let ok = step(&chain, &r, p, &valid(k), now).is_ok();
                    prop_assert_eq!(buttons.contains(&k), ok, "{} {} at {}", p.account, k, r.stage);
                }
                if r.stage.is_terminal() {
                    prop_assert!(buttons.is_empty());
                }
            }

            match step(&chain, &r, actor, &action, now) {
                Ok(out) => {
                    prop_assert!(!before.stage.is_terminal(), "a closed request accepted {:?}", action);
                    prop_assert_eq!(out.record.from, before.stage);
                    prop_assert_eq!(out.record.to, out.stage);
                    prop_assert!(out.record.at >= before.entered_at);
                    r.apply(&out);
                    prop_assert_eq!(r.history.len(), before.history.len() + 1);
                    visited.push(r.stage);
                }
                Err(e) => {
                    if before.stage.is_terminal() {
                        prop_assert_eq!(e.code(), "action_not_allowed");
                    }
                    prop_assert_eq!(&r, &before);
                }
            }

            // Stages follow the chain: a prefix of the approval or the rejection path, or such a
            // prefix before the decision followed by withdrawn.
            let (last, head) = visited.split_last().expect("never empty");
            let ok = is_prefix(&visited, &approve_path)
                || is_prefix(&visited, &reject_path)
                || (*last == Stage::Withdrawn
                    && is_prefix(head, &approve_path)
                    && head.last().is_some_and(|s| s.is_before_decision()));
            prop_assert!(ok, "stages {:?} under {}", visited, chain);

            // Nothing is fulfilled without a proper approval.
            if matches!(r.stage, Stage::Fulfilled | Stage::Informed) && r.decision() == Some(Decision::Approved) {
                let approval = r.history.iter().find(|s| s.action.kind() == ActionKind::Approve);
                let approval = approval.expect("fulfilled implies an approval");
                prop_assert_eq!(approval.role, approve_role);
                prop_assert_ne!(&approval.account, &r.requester);
                prop_assert_ne!(Some(approval.account.as_str()), r.verifier());
                let approver = people.iter().find(|p| p.account == approval.account).expect("known");
                prop_assert!(approver.has(approve_role));
                prop_assert!(r.history.iter().any(|s| s.action.kind() == ActionKind::Fulfil));
            }
            if r.stage == Stage::Fulfilled {
                prop_assert_eq!(r.decision(), Some(Decision::Approved));
            }
            // No rejection without a reason, none by the requester or the verifier.
            if let Some(rej) = r.history.iter().find(|s| s.action.kind() == ActionKind::Reject) {
                if let Action::Reject { reason } = &rej.action {
                    prop_assert!(!reason.trim().is_empty());
                }
                prop_assert_ne!(&rej.account, &r.requester);
                prop_assert_ne!(Some(rej.account.as_str()), r.verifier());
            }
            // Nobody decided, verified or disposed their own request.
            for s in &r.history {
                if matches!(s.action.kind(), ActionKind::Dispose | ActionKind::Verify) {
                    prop_assert_ne!(&s.account, &r.requester);
                }
                if s.action.kind() == ActionKind::Withdraw {
                    prop_assert_eq!(&s.account, &r.requester);
                }
            }
            // Times in the history never run backwards.
            prop_assert!(r.history.windows(2).all(|w| w[0].at <= w[1].at));
            prop_assert_eq!(due_at(&chain, &r).is_none(), r.stage.is_terminal());
        }
    }

    /// A request walked along its chain by the right people always closes, and every accepted
    /// step is exactly one history row.
    #[test]
    fn the_right_people_always_get_a_request_through(
        chain in chain_strategy(),
        reject in any::<bool>(),
    ) {
        let t0: Timestamp = "2026-05-04T01:00:00Z".parse().expect("valid");
        let me = Actor::new("me", [Role::Requester]);
        let mut r = submit(RequestKind::Visit, &me, t0).expect("submit");
        let mut steps = 0;
        while !r.stage.is_terminal() {
            let next = awaiting(&chain, &r).expect("open requests await a step");
            // A fresh person per step: segregation never blocks.
            let who = Actor::new(format!("s{steps}"), [next.role]);
            let buttons = allowed_actions(&chain, &r, &who);
            let kind = if buttons.contains(&ActionKind::Reject) && reject {
                ActionKind::Reject
            } else {
                buttons[0]
            };
            let out = step(&chain, &r, &who, &valid(kind), t0).expect("accepted");
            r.apply(&out);
            steps += 1;
            prop_assert_eq!(r.history.len(), steps);
            prop_assert!(steps <= 5);
        }
        prop_assert_eq!(r.stage, Stage::Informed);
        prop_assert_eq!(r.decision(), Some(if reject { Decision::Rejected } else { Decision::Approved }));
    }
}
