//! Table tests of the workflow: every (stage, action, role) in the full chain and in short
//! chains, segregation of duties, withdrawal, text rules, effects, SLA clocks, errors and serde.

use super::*;
use jiff::ToSpan;

const T0: &str = "2026-05-04T01:00:00Z";
const REQUESTER: &str = "pemohon";

fn t0() -> Timestamp {
    T0.parse().expect("valid timestamp")
}

fn mins(n: i64) -> Timestamp {
    t0().checked_add(n.minutes()).expect("in range")
}

fn actor(account: &str, roles: &[Role]) -> Actor {
    Actor::new(account, roles.iter().copied())
}

/// The default holder of each role, each a different person from the requester.
fn person(role: Role) -> Actor {
    actor(&format!("{role}-1"), &[role])
}

fn note(kind: ActionKind) -> Action {
    let note = String::from("ok");
    match kind {
        ActionKind::Dispose => Action::Dispose { note },
        ActionKind::Verify => Action::Verify { note },
        ActionKind::Approve => Action::Approve { note },
        ActionKind::Reject => Action::Reject {
            reason: "no letter attached".into(),
        },
        ActionKind::Fulfil => Action::Fulfil { note },
        ActionKind::Inform => Action::Inform,
        ActionKind::Withdraw => Action::Withdraw,
    }
}

fn submitted() -> Request {
    submit(
        RequestKind::StaffAccess,
        &actor(REQUESTER, &[Role::Requester]),
        t0(),
    )
    .expect("submit")
}

/// Takes `kind` by the chain's role holder (or the requester for withdraw), panicking if refused.
fn take(chain: &Chain, r: &mut Request, kind: ActionKind, at: Timestamp) -> Outcome {
    let who = match kind.step() {
        None => actor(REQUESTER, &[Role::Requester]),
        Some(step) => person(chain.get(step).expect("step in chain").role),
    };
    let out = step(chain, r, &who, &note(kind), at).expect("step accepted");
    r.apply(&out);
    out
}

/// A request brought to `stage` through `chain` by the default people.
fn at_stage(chain: &Chain, stage: Stage) -> Request {
    let mut r = submitted();
    let mut t = 0;
    let path: Vec<ActionKind> = match stage {
        Stage::Withdrawn => vec![ActionKind::Withdraw],
        Stage::Rejected => vec![ActionKind::Reject],
        Stage::Informed => vec![ActionKind::Reject, ActionKind::Inform],
        _ => chain
            .steps()
            .iter()
            .map(|s| match s.step {
                StepKind::Dispose => ActionKind::Dispose,
                StepKind::Verify => ActionKind::Verify,
                StepKind::Approve => ActionKind::Approve,
                StepKind::Fulfil => ActionKind::Fulfil,
                StepKind::Inform => ActionKind::Inform,
            })
            .collect(),
    };
    for kind in path {
        if r.stage == stage {
            break;
        }
        if kind != ActionKind::Withdraw && !stage_actions(chain, r.stage).contains(&kind) {
            // Reject/inform paths: walk the chain up to the decision first.
            while !stage_actions(chain, r.stage).contains(&kind) {
                let next = stage_actions(chain, r.stage)[0];
                t += 10;
                take(chain, &mut r, next, mins(t));
            }
        }
        t += 10;
        take(chain, &mut r, kind, mins(t));
    }
    assert_eq!(r.stage, stage, "could not reach {stage}");
    r
}

fn short_chain(steps: &[StepKind]) -> Chain {
    Chain::new(
        steps
            .iter()
            .map(|&step| ChainStep {
                step,
                role: step.default_role(),
                sla: Duration::from_secs(if step == StepKind::Fulfil {
                    180
                } else {
                    86_400
                }),
            })
            .collect(),
    )
    .expect("valid chain")
}

type Row = (Stage, &'static [(ActionKind, Option<Role>)]);
use ActionKind as A;

/// The full SOP: per stage, the actions it allows and the role for each (`None`: the requester).
const FULL: &[Row] = &[
    (
        Stage::Submitted,
        &[(A::Dispose, Some(Role::Head)), (A::Withdraw, None)],
    ),
    (
        Stage::Disposed,
        &[(A::Verify, Some(Role::Coordinator)), (A::Withdraw, None)],
    ),
    (
        Stage::Verified,
        &[
            (A::Approve, Some(Role::Approver)),
            (A::Reject, Some(Role::Approver)),
            (A::Withdraw, None),
        ],
    ),
    (Stage::Approved, &[(A::Fulfil, Some(Role::Helpdesk))]),
    (Stage::Rejected, &[(A::Inform, Some(Role::Helpdesk))]),
    (Stage::Fulfilled, &[(A::Inform, Some(Role::Helpdesk))]),
    (Stage::Informed, &[]),
    (Stage::Withdrawn, &[]),
];

/// Kudus-style: the approver decides directly.
const APPROVE_ONLY: &[Row] = &[
    (
        Stage::Submitted,
        &[
            (A::Approve, Some(Role::Approver)),
            (A::Reject, Some(Role::Approver)),
            (A::Withdraw, None),
        ],
    ),
    (Stage::Approved, &[(A::Fulfil, Some(Role::Helpdesk))]),
    (Stage::Rejected, &[(A::Inform, Some(Role::Helpdesk))]),
    (Stage::Fulfilled, &[(A::Inform, Some(Role::Helpdesk))]),
    (Stage::Informed, &[]),
    (Stage::Withdrawn, &[]),
];

/// Lumajang-style: no disposition, the coordinator verifies.
const NO_DISPOSE: &[Row] = &[
    (
        Stage::Submitted,
        &[(A::Verify, Some(Role::Coordinator)), (A::Withdraw, None)],
    ),
    (
        Stage::Verified,
        &[
            (A::Approve, Some(Role::Approver)),
            (A::Reject, Some(Role::Approver)),
            (A::Withdraw, None),
        ],
    ),
    (Stage::Approved, &[(A::Fulfil, Some(Role::Helpdesk))]),
    (Stage::Rejected, &[(A::Inform, Some(Role::Helpdesk))]),
    (Stage::Fulfilled, &[(A::Inform, Some(Role::Helpdesk))]),
    (Stage::Informed, &[]),
    (Stage::Withdrawn, &[]),
];

/// Checks every (stage, action, role) of `table` against `step` and `allowed_actions`; the
/// requester (holding every role) is tried too.
fn check_table(chain: &Chain, table: &[Row]) {
    for &(stage, row) in table {
        let r = at_stage(chain, stage);
        let allowed: Vec<ActionKind> = row.iter().map(|(k, _)| *k).collect();
        assert_eq!(stage_actions(chain, stage), allowed, "stage {stage}");
        for &kind in ActionKind::ALL {
            let expected_role = row.iter().find(|(k, _)| *k == kind).map(|(_, role)| *role);
            for &role in Role::ALL {
                let who = person(role);
                let got = step(chain, &r, &who, &note(kind), mins(500));
                let buttons = allowed_actions(chain, &r, &who);
                let ctx = format!("stage {stage}, {kind} by {role}");
                match expected_role {
                    None => {
                        assert_eq!(
                            got,
                            Err(WorkflowError::NotAllowed {
                                action: kind,
                                stage,
                                allowed: allowed.clone()
                            }),
                            "{ctx}"
                        );
                    }
                    Some(None) => assert_eq!(
                        got,
                        Err(WorkflowError::NotRequester {
                            requester: REQUESTER.into()
                        }),
                        "{ctx}"
                    ),
                    Some(Some(needed)) if needed == role => {
                        let out = got.unwrap_or_else(|e| panic!("{ctx}: refused: {e}"));
                        assert_eq!(out.stage, kind.leads_to(), "{ctx}");
                        assert_eq!(
                            (out.record.from, out.record.to),
                            (stage, out.stage),
                            "{ctx}"
                        );
                        assert_eq!(out.record.role, role, "{ctx}");
                        assert_eq!(out.record.account, who.account, "{ctx}");
                    }
                    Some(Some(needed)) => assert_eq!(
                        got,
                        Err(WorkflowError::WrongRole {
                            action: kind,
                            needed,
                            account: who.account.clone()
                        }),
                        "{ctx}"
                    ),
                }
                let accepted = step(chain, &r, &who, &note(kind), mins(500)).is_ok();
                assert_eq!(
                    buttons.contains(&kind),
                    accepted,
                    "{ctx}: buttons {buttons:?}"
                );
            }
            // The requester, holding every role: only withdraw (and fulfil/inform, which are
            // no decision) is open to them.
            let me = actor(REQUESTER, Role::ALL);
            let got = step(chain, &r, &me, &note(kind), mins(500));
            let ctx = format!("stage {stage}, {kind} by the requester");
            match expected_role {
                None => assert_eq!(
                    got.map_err(|e| e.code()),
                    Err("action_not_allowed"),
                    "{ctx}"
                ),
                Some(_) => match kind {
                    A::Dispose | A::Verify | A::Approve | A::Reject => assert_eq!(
                        got,
                        Err(WorkflowError::RequesterMayNot { action: kind }),
                        "{ctx}"
                    ),
                    _ => assert!(got.is_ok(), "{ctx}: {got:?}"),
                },
            }
        }
    }
}

#[test]
fn every_stage_action_and_role_in_the_full_chain() {
    check_table(&Chain::full(), FULL);
}

#[test]
fn every_stage_action_and_role_in_short_chains() {
    check_table(
        &short_chain(&[StepKind::Approve, StepKind::Fulfil, StepKind::Inform]),
        APPROVE_ONLY,
    );
    check_table(
        &short_chain(&[
            StepKind::Verify,
            StepKind::Approve,
            StepKind::Fulfil,
            StepKind::Inform,
        ]),
        NO_DISPOSE,
    );
}

#[test]
fn the_role_is_the_chains_not_the_default() {
    // A site where the head approves and the technical team fulfils.
    let chain = Chain::new(vec![
        ChainStep {
            step: StepKind::Approve,
            role: Role::Head,
            sla: Duration::from_secs(60),
        },
        ChainStep {
            step: StepKind::Fulfil,
            role: Role::Technical,
            sla: Duration::from_secs(60),
        },
        ChainStep {
            step: StepKind::Inform,
            role: Role::Helpdesk,
            sla: Duration::from_secs(60),
        },
    ])
    .expect("valid");
    let r = submitted();
    assert_eq!(
        step(&chain, &r, &person(Role::Approver), &note(A::Approve), t0()),
        Err(WorkflowError::WrongRole {
            action: A::Approve,
            needed: Role::Head,
            account: "approver-1".into()
        })
    );
    let out =
        step(&chain, &r, &person(Role::Head), &note(A::Approve), t0()).expect("head approves");
    assert_eq!(out.record.role, Role::Head);
    let mut r = r;
    r.apply(&out);
    assert_eq!(
        allowed_actions(&chain, &r, &person(Role::Technical)),
        vec![A::Fulfil]
    );
    assert!(allowed_actions(&chain, &r, &person(Role::Helpdesk)).is_empty());
}

#[test]
fn a_person_with_several_roles_acts_in_the_one_the_step_needs() {
    let chain = Chain::full();
    let r = at_stage(&chain, Stage::Disposed);
    let both = actor("ani", &[Role::Head, Role::Coordinator, Role::Auditor]);
    assert_eq!(allowed_actions(&chain, &r, &both), vec![A::Verify]);
    let out = step(&chain, &r, &both, &note(A::Verify), mins(100)).expect("verifies");
    assert_eq!(out.record.role, Role::Coordinator);
}

#[test]
fn the_verifier_may_not_decide_but_another_approver_may() {
    let chain = Chain::full();
    let mut r = at_stage(&chain, Stage::Disposed);
    let budi = actor("budi", &[Role::Coordinator, Role::Approver]);
    take_by(&chain, &mut r, &budi, note(A::Verify));
    assert_eq!(r.verifier(), Some("budi"));
    for kind in [A::Approve, A::Reject] {
        let e = step(&chain, &r, &budi, &note(kind), mins(200)).expect_err("segregation");
        assert_eq!(
            e,
            WorkflowError::VerifierMayNot {
                action: kind,
                account: "budi".into()
            }
        );
        assert_eq!(e.code(), "segregation_verifier");
    }
    assert!(allowed_actions(&chain, &r, &budi).is_empty());
    assert_eq!(
        allowed_actions(&chain, &r, &person(Role::Approver)),
        vec![A::Approve, A::Reject]
    );
    // The disposer may decide: the SOP's Kadis disposes to the Kabid; if one person is both, no
    // second pair of eyes is lost that the verifier does not already give.
    let kadis = actor("head-1", &[Role::Head, Role::Approver]);
    assert!(step(&chain, &r, &kadis, &note(A::Approve), mins(200)).is_ok());
}

fn take_by(chain: &Chain, r: &mut Request, who: &Actor, action: Action) {
    let out = step(chain, r, who, &action, r.entered_at).expect("accepted");
    r.apply(&out);
}

#[test]
fn the_requester_may_withdraw_only_before_the_decision() {
    let chain = Chain::full();
    let me = actor(REQUESTER, &[Role::Requester]);
    for stage in [Stage::Submitted, Stage::Disposed, Stage::Verified] {
        let r = at_stage(&chain, stage);
        assert!(allowed_actions(&chain, &r, &me).contains(&A::Withdraw));
        let out = step(&chain, &r, &me, &Action::Withdraw, mins(300)).expect("withdraws");
        assert_eq!(
            (out.stage, out.record.role),
            (Stage::Withdrawn, Role::Requester)
        );
        assert!(out.effects.is_empty(), "{:?}", out.effects);
        // Not even an administrator may withdraw someone else's request.
        let admin = actor("admin", Role::ALL);
        assert_eq!(
            step(&chain, &r, &admin, &Action::Withdraw, mins(300)).map_err(|e| e.code()),
            Err("not_requester")
        );
    }
    for stage in [
        Stage::Approved,
        Stage::Rejected,
        Stage::Fulfilled,
        Stage::Informed,
    ] {
        let r = at_stage(&chain, stage);
        assert!(!allowed_actions(&chain, &r, &me).contains(&A::Withdraw));
        assert_eq!(
            step(&chain, &r, &me, &Action::Withdraw, mins(300)).map_err(|e| e.code()),
            Err("action_not_allowed")
        );
    }
    // A requester without the requester role (the helpdesk filed it) may withdraw too.
    let hd = actor("hd", &[Role::Helpdesk]);
    let r = submit(RequestKind::Visit, &hd, t0()).expect("helpdesk files");
    assert!(step(&chain, &r, &hd, &Action::Withdraw, t0()).is_ok());
}

#[test]
fn a_rejection_needs_a_reason_and_text_is_bounded() {
    let chain = Chain::full();
    let r = at_stage(&chain, Stage::Verified);
    let kabid = person(Role::Approver);
    let reject = |reason: &str| {
        step(
            &chain,
            &r,
            &kabid,
            &Action::Reject {
                reason: reason.into(),
            },
            mins(100),
        )
    };
    assert_eq!(reject(""), Err(WorkflowError::ReasonRequired));
    assert_eq!(reject(" \n\t "), Err(WorkflowError::ReasonRequired));
    assert!(reject("x").is_ok());
    assert!(reject("baris satu\r\nbaris dua\tdst").is_ok());
    assert!(reject(&"é".repeat(TEXT_MAX_CHARS)).is_ok());
    assert_eq!(
        reject(&"é".repeat(TEXT_MAX_CHARS + 1)),
        Err(WorkflowError::TextTooLong {
            field: "reason",
            len: 2001,
            max: 2000
        })
    );
    assert_eq!(
        reject("ok\u{1b}[2J"),
        Err(WorkflowError::TextInvalid {
            field: "reason",
            found: "\\u{1b}".into()
        })
    );
    let approve = |note: String| step(&chain, &r, &kabid, &Action::Approve { note }, mins(100));
    assert!(approve(String::new()).is_ok(), "a note is optional");
    assert_eq!(
        approve("n".repeat(5000)).map_err(|e| e.code()),
        Err("text_too_long")
    );
    // Role and stage come before text: the wrong person learns nothing about the text rules.
    let e = step(
        &chain,
        &r,
        &person(Role::Helpdesk),
        &Action::Reject {
            reason: String::new(),
        },
        t0(),
    );
    assert_eq!(e.map_err(|e| e.code()), Err("wrong_role"));
}

#[test]
fn effects_tell_the_office_what_to_do() {
    let chain = Chain::full();
    let mut r = submitted();
    let day = |t: Timestamp| t.checked_add(24.hours()).expect("in range");
    let out = take(&chain, &mut r, A::Dispose, mins(10));
    assert_eq!(
        out.effects,
        vec![Effect::Await {
            step: StepKind::Verify,
            role: Role::Coordinator,
            due: day(mins(10))
        }]
    );
    take(&chain, &mut r, A::Verify, mins(20));
    let out = take(&chain, &mut r, A::Approve, mins(30));
    assert_eq!(
        out.effects,
        vec![Effect::Await {
            step: StepKind::Fulfil,
            role: Role::Helpdesk,
            due: day(mins(30))
        }]
    );
    let out = take(&chain, &mut r, A::Fulfil, mins(40));
    assert_eq!(
        out.effects,
        vec![
            Effect::Fulfil {
                kind: RequestKind::StaffAccess
            },
            Effect::Await {
                step: StepKind::Inform,
                role: Role::Helpdesk,
                due: day(mins(40))
            },
        ]
    );
    let out = take(&chain, &mut r, A::Inform, mins(50));
    assert_eq!(
        out.effects,
        vec![Effect::NotifyRequester {
            decision: Decision::Approved
        }]
    );
    assert_eq!(r.decision(), Some(Decision::Approved));
    assert_eq!(r.history.len(), 5);

    let mut r = at_stage(&chain, Stage::Verified);
    let out = take(&chain, &mut r, A::Reject, mins(100));
    assert_eq!(out.stage, Stage::Rejected);
    assert_eq!(
        out.effects,
        vec![Effect::Await {
            step: StepKind::Inform,
            role: Role::Helpdesk,
            due: day(mins(100))
        }]
    );
    let out = take(&chain, &mut r, A::Inform, mins(110));
    assert_eq!(
        out.effects,
        vec![Effect::NotifyRequester {
            decision: Decision::Rejected
        }]
    );
    assert_eq!(
        (r.stage, r.decision()),
        (Stage::Informed, Some(Decision::Rejected))
    );
    assert!(r.stage.is_terminal());
}

#[test]
fn fulfil_names_what_the_kind_needs() {
    let chain = short_chain(&[StepKind::Approve, StepKind::Fulfil, StepKind::Inform]);
    for &kind in RequestKind::ALL {
        let mut r = submit(kind, &actor(REQUESTER, &[Role::Requester]), t0()).expect("submit");
        take(&chain, &mut r, A::Approve, mins(1));
        let out = take(&chain, &mut r, A::Fulfil, mins(2));
        assert_eq!(out.effects[0], Effect::Fulfil { kind });
    }
}

#[test]
fn sla_clocks() {
    let chain = short_chain(&[StepKind::Approve, StepKind::Fulfil, StepKind::Inform]);
    let mut r = submitted();
    let day = 24 * 60;
    assert_eq!(
        awaiting(&chain, &r).map(|s| (s.step, s.role)),
        Some((StepKind::Approve, Role::Approver))
    );
    assert_eq!(due_at(&chain, &r), Some(mins(day)));
    assert!(
        !is_overdue(&chain, &r, mins(day)),
        "due exactly now is not late yet"
    );
    assert!(is_overdue(&chain, &r, mins(day + 1)));
    assert_eq!(
        overdue_by(&chain, &r, mins(day + 90)),
        Some(Duration::from_secs(90 * 60))
    );
    assert_eq!(overdue_by(&chain, &r, mins(5)), None);
    // The clock restarts at each stage: fulfil's standard here is 3 minutes.
    take(&chain, &mut r, A::Approve, mins(day + 90));
    assert_eq!(due_at(&chain, &r), Some(mins(day + 93)));
    assert!(is_overdue(&chain, &r, mins(day + 94)));
    take(&chain, &mut r, A::Fulfil, mins(day + 94));
    take(&chain, &mut r, A::Inform, mins(day + 95));
    // Closed: no clock, never overdue.
    assert_eq!((due_at(&chain, &r), awaiting(&chain, &r)), (None, None));
    assert!(!is_overdue(&chain, &r, Timestamp::MAX));
    let w = at_stage(&chain, Stage::Withdrawn);
    assert_eq!(due_at(&chain, &w), None);
    // A deadline past the end of time saturates instead of failing.
    let mut late = submitted();
    late.entered_at = Timestamp::MAX;
    assert_eq!(due_at(&chain, &late), Some(Timestamp::MAX));
}

#[test]
fn a_step_never_predates_the_stage_it_leaves() {
    let chain = Chain::full();
    let mut r = submitted();
    r.entered_at = mins(60);
    let out = step(&chain, &r, &person(Role::Head), &note(A::Dispose), mins(59)).expect("ok");
    assert_eq!(out.record.at, mins(60));
}

#[test]
fn a_shortened_chain_moves_requests_under_way_on() {
    // Disposed under the full chain, then the site drops verify.
    let r = at_stage(&Chain::full(), Stage::Disposed);
    let short = short_chain(&[
        StepKind::Dispose,
        StepKind::Approve,
        StepKind::Fulfil,
        StepKind::Inform,
    ]);
    assert_eq!(
        stage_actions(&short, r.stage),
        vec![A::Approve, A::Reject, A::Withdraw]
    );
    assert_eq!(
        awaiting(&short, &r).map(|s| s.step),
        Some(StepKind::Approve)
    );
}

#[test]
fn submitting() {
    for role in [Role::Requester, Role::Helpdesk] {
        let r = submit(RequestKind::Removal, &person(role), t0()).expect("may submit");
        assert_eq!(
            (r.stage, r.entered_at, r.history.len()),
            (Stage::Submitted, t0(), 0)
        );
        assert_eq!(r.requester, format!("{role}-1"));
    }
    let e = submit(RequestKind::Visit, &person(Role::Auditor), t0()).expect_err("auditor");
    assert_eq!(e.code(), "submit_not_allowed");
    assert_eq!(
        e.to_string(),
        "account \"auditor-1\" may not submit requests: that needs the role requester or helpdesk"
    );
    let e = submit(RequestKind::Visit, &actor(" ", &[Role::Requester]), t0()).expect_err("empty");
    assert_eq!(e.code(), "account_empty");
    let r = submitted();
    let e = step(
        &Chain::full(),
        &r,
        &actor("", Role::ALL),
        &note(A::Dispose),
        t0(),
    );
    assert_eq!(e, Err(WorkflowError::EmptyAccount));
}

#[test]
fn error_messages_name_what_was_needed() {
    let chain = Chain::full();
    let r = submitted();
    let msg = |who: &Actor, kind| {
        step(&chain, &r, who, &note(kind), t0())
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        msg(&person(Role::Approver), A::Approve),
        "cannot approve a request in stage submitted; allowed there: dispose, withdraw"
    );
    assert_eq!(
        msg(&person(Role::Coordinator), A::Dispose),
        "dispose needs the role head; account \"coordinator-1\" does not hold it"
    );
    assert_eq!(
        msg(&actor(REQUESTER, &[Role::Head]), A::Dispose),
        "segregation of duties: the requester of a request may not dispose it"
    );
    assert_eq!(
        msg(&person(Role::Head), A::Withdraw),
        "only the requester of a request (\"pemohon\") may withdraw it"
    );
    let closed = at_stage(&chain, Stage::Withdrawn);
    assert_eq!(
        step(&chain, &closed, &person(Role::Head), &note(A::Dispose), t0())
            .expect_err("closed")
            .to_string(),
        "cannot dispose a request in stage withdrawn; allowed there: nothing (the request is closed)"
    );
    let r = at_stage(&chain, Stage::Verified);
    let e = step(
        &chain,
        &r,
        &person(Role::Approver),
        &Action::Reject { reason: "".into() },
        t0(),
    );
    assert_eq!(
        e.map_err(|e| e.to_string()),
        Err("a reason is required to reject a request".into())
    );
}

#[test]
fn serde_forms() {
    let a: Action = serde_json::from_str(r#"{"action":"reject","reason":"no KTP"}"#).expect("ok");
    assert_eq!(
        a,
        Action::Reject {
            reason: "no KTP".into()
        }
    );
    let a: Action = serde_json::from_str(r#"{"action":"verify"}"#).expect("note defaults");
    assert_eq!(
        a,
        Action::Verify {
            note: String::new()
        }
    );
    let a: Action = serde_json::from_str(r#"{"action":"inform"}"#).expect("unit action");
    assert_eq!(a, Action::Inform);
    assert!(
        serde_json::from_str::<Action>(r#"{"action":"reject"}"#).is_err(),
        "reason is required"
    );
    assert!(serde_json::from_str::<Action>(r#"{"action":"approve","sig":"x"}"#).is_err());
    assert_eq!(
        serde_json::to_string(&Action::Withdraw).expect("serialises"),
        r#"{"action":"withdraw"}"#
    );
    let chain = Chain::full();
    let mut r = at_stage(&chain, Stage::Verified);
    let out = take(&chain, &mut r, A::Approve, mins(100));
    let json = serde_json::to_value(&out).expect("serialises");
    assert_eq!(json["stage"], "approved");
    assert_eq!(json["record"]["action"]["action"], "approve");
    assert_eq!(json["effects"][0]["effect"], "await");
    assert_eq!(json["effects"][0]["role"], "helpdesk");
    let back: Request =
        serde_json::from_str(&serde_json::to_string(&r).expect("serialises")).expect("parses");
    assert_eq!(back, r);
    for &s in Stage::ALL {
        assert_eq!(s.as_str().parse::<Stage>(), Ok(s));
        assert_eq!(
            serde_json::to_value(s).ok(),
            Some(serde_json::json!(s.as_str()))
        );
        assert!(!s.label(Lang::Id).is_empty());
    }
    for &k in ActionKind::ALL {
        assert_eq!(k.as_str().parse::<ActionKind>(), Ok(k));
        assert_eq!(note(k).kind(), k);
    }
}
