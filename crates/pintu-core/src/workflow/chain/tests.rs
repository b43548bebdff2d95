//! Chain validation: the default, the shorter SOPs, and every error's message.

use super::*;

fn config(steps: &[(&str, &str, &str)]) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|(step, role, sla)| serde_json::json!({"step": step, "role": role, "sla": sla}))
        .collect();
    serde_json::json!({ "steps": steps })
}

fn parse(steps: &[(&str, &str, &str)]) -> Result<Chain, String> {
    serde_json::from_value::<Chain>(config(steps)).map_err(|e| e.to_string())
}

/// (step, role, sla) as written in the config.
type RawStep = (&'static str, &'static str, &'static str);

const TAIL: [RawStep; 3] = [
    ("approve", "approver", "1 hari"),
    ("fulfil", "helpdesk", "1 hari"),
    ("inform", "helpdesk", "1 hari"),
];

#[test]
fn default_is_the_full_sop() {
    let c = Chain::default();
    let got: Vec<(StepKind, Role, u64)> = c
        .steps()
        .iter()
        .map(|s| (s.step, s.role, s.sla.as_secs()))
        .collect();
    assert_eq!(
        got,
        vec![
            (StepKind::Dispose, Role::Head, 86_400),
            (StepKind::Verify, Role::Coordinator, 86_400),
            (StepKind::Approve, Role::Approver, 86_400),
            (StepKind::Fulfil, Role::Helpdesk, 86_400),
            (StepKind::Inform, Role::Helpdesk, 86_400),
        ]
    );
    let full: Vec<_> = [
        ("dispose", "head", "1 hari"),
        ("verify", "coordinator", "1 day"),
    ]
    .into_iter()
    .chain(TAIL)
    .collect();
    assert_eq!(parse(&full), Ok(c.clone()));
    assert_eq!(
        c.to_string(),
        "dispose (head, 1day) → verify (coordinator, 1day) → approve (approver, 1day) → \
         fulfil (helpdesk, 1day) → inform (helpdesk, 1day)"
    );
}

#[test]
fn serialises_back_to_a_config_that_parses_to_the_same_chain() {
    let c = parse(&[
        ("verify", "coordinator", "2 jam 30 menit"),
        TAIL[0],
        TAIL[1],
        TAIL[2],
    ])
    .expect("valid");
    let json = serde_json::to_value(&c).expect("serialises");
    assert_eq!(json["steps"][0]["sla"], "2h 30m");
    assert_eq!(serde_json::from_value::<Chain>(json).ok(), Some(c));
}

#[test]
fn shorter_sops() {
    // Lumajang-style: no disposition by the head.
    let c = parse(&[
        ("verify", "coordinator", "1 hari"),
        TAIL[0],
        TAIL[1],
        TAIL[2],
    ])
    .expect("ok");
    assert!(!c.has(StepKind::Dispose) && c.has(StepKind::Verify));
    // Kudus-style: the approver decides directly; fulfilment within 3 minutes.
    let c = parse(&[
        ("approve", "approver", "1 hari"),
        ("fulfil", "helpdesk", "3 menit"),
        ("inform", "helpdesk", "30 detik"),
    ])
    .expect("ok");
    assert_eq!(c.steps().len(), 3);
    assert_eq!(c.get(StepKind::Fulfil).map(|s| s.sla.as_secs()), Some(180));
    // Another role than the default is fine (here the head approves).
    let c = parse(&[("approve", "head", "1 hari"), TAIL[1], TAIL[2]]).expect("ok");
    assert_eq!(c.get(StepKind::Approve).map(|s| s.role), Some(Role::Head));
}

#[test]
fn errors_say_what_is_wrong() {
    let cases: Vec<(Vec<RawStep>, &str)> = vec![
        (vec![], "the chain has no approve step; approve, fulfil and inform are in every chain (only dispose and verify may be left out)"),
        (vec![TAIL[0], TAIL[2]], "the chain has no fulfil step"),
        (vec![TAIL[0], TAIL[1]], "the chain has no inform step"),
        (vec![TAIL[0], TAIL[0], TAIL[1], TAIL[2]], "steps[1] (approve): listed twice (also steps[0]); list each step once"),
        (vec![TAIL[0], ("verify", "coordinator", "1 hari"), TAIL[1], TAIL[2]],
            "steps[1] (verify): comes after approve; list the steps in the order dispose, verify, approve, fulfil, inform"),
        (vec![("approve", "requester", "1 hari"), TAIL[1], TAIL[2]],
            "steps[0] (approve): role requester may take no step (the requester is the party asking); use e.g. approver"),
        (vec![TAIL[0], ("fulfil", "auditor", "1 hari"), TAIL[2]],
            "steps[1] (fulfil): role auditor may take no step (auditors only read); use e.g. helpdesk"),
        (vec![("approve", "approver", "1 bulan"), TAIL[1], TAIL[2]],
            "unrecognised duration \"1 bulan\": write e.g."),
        (vec![("approve", "approver", "0 menit"), TAIL[1], TAIL[2]],
            "sla \"0 menit\" is out of range: write more than 0 and at most 366 hari"),
        (vec![("approve", "approver", "367 hari"), TAIL[1], TAIL[2]], "is out of range"),
        (vec![("approve", "kabid", "1 hari"), TAIL[1], TAIL[2]], "unknown variant `kabid`"),
        (vec![("decide", "approver", "1 hari"), TAIL[1], TAIL[2]], "unknown variant `decide`"),
    ];
    for (steps, want) in cases {
        let got = parse(&steps).expect_err("must be refused");
        assert!(got.contains(want), "{steps:?}:\n got  {got}\n want {want}");
    }
    let unknown_key = serde_json::json!({"steps": [], "extra": 1});
    assert!(serde_json::from_value::<Chain>(unknown_key).is_err());
    let unknown_step_key = serde_json::json!({"steps": [{"step": "approve", "role": "approver", "sla": "1 hari", "who": "x"}]});
    assert!(serde_json::from_value::<Chain>(unknown_step_key).is_err());
}

#[test]
fn typed_steps_are_checked_too() {
    let s = |step, role, secs| ChainStep {
        step,
        role,
        sla: Duration::from_secs(secs),
    };
    let tail = [
        s(StepKind::Approve, Role::Approver, 60),
        s(StepKind::Fulfil, Role::Helpdesk, 60),
        s(StepKind::Inform, Role::Helpdesk, 60),
    ];
    assert!(Chain::new(tail.to_vec()).is_ok());
    let mut zero = tail.to_vec();
    zero[2].sla = Duration::ZERO;
    assert_eq!(
        Chain::new(zero).map_err(|e| e.to_string()),
        Err(
            "steps[2] (inform): sla \"0s\" is out of range: write more than 0 and at most 366 hari"
                .into()
        )
    );
    assert_eq!(
        "2 jam".parse::<Sla>().map(Sla::get),
        Ok(Duration::from_secs(7200))
    );
    assert!("1 bulan".parse::<Sla>().is_err());
}
