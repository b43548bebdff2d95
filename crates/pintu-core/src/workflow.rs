//! The SOP's request workflow as a pure state machine: who may move a request where, and when it
//! is late.
//!
//! A request (staff access, visit, removal, server custody) moves submitted → disposed (head) →
//! verified (coordinator) → approved or rejected (approver) → fulfilled (helpdesk) → informed
//! (helpdesk tells the requester); a rejected request goes straight to informed, because the SOP
//! tells the requester either way. Its requester may withdraw it before the decision. Which of the
//! optional steps a site uses, who takes each step and its time standard come from the site's
//! [`Chain`].
//!
//! The office service stores requests and calls [`step`] with the request, the person acting,
//! the action and the time; it gets back an [`Outcome`] (the new stage, the history row, the
//! [`Effect`]s it must carry out) or a [`WorkflowError`] with a stable [`WorkflowError::code`] for
//! the API. [`allowed_actions`] gives the console's buttons, [`due_at`] and [`is_overdue`] the SLA
//! clocks. No I/O: everything is an argument. `docs/workflow.md` is the reference.
//!
//! Segregation of duties (the reason the workflow knows accounts, not only roles): the requester
//! of a request may not dispose, verify, approve or reject it, and the account that verified it
//! may not approve or reject it, whatever roles they hold.

mod chain;
mod duration;
mod names;
mod request;
mod statement;

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use chain::{
    Chain, ChainConfig, ChainError, ChainStep, Sla, SlaError, StepConfig, StepKind, SLA_MAX,
};
pub use duration::{parse_duration, DurationError};
pub use names::{Lang, RequestKind, Role, UnknownName};
pub use request::{Action, ActionKind, Actor, Decision, Request, Stage, StepRecord};
pub use statement::{
    decision_name, decision_of, history_sha256, DecisionStatement, DECISION_TAG, HISTORY_TAG,
};

use crate::text::quoted;

/// Longest note or reason, in characters. Text is refused above it, never cut: what an approver
/// wrote is what the audit keeps.
pub const TEXT_MAX_CHARS: usize = 2000;

/// What the office must do after an accepted step, besides storing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Carry the request out, in the same transaction as the step (commit the step only if this
    /// succeeded): staff access enrols the card, a visit reserves a badge, a removal revokes; each
    /// of these ends in a list signed and published. Server custody records the custody.
    Fulfil {
        /// What the request asks for.
        kind: RequestKind,
    },
    /// Tell the requester the decision (the inform step).
    NotifyRequester {
        /// Approved (and fulfilled) or rejected.
        decision: Decision,
    },
    /// The request now waits for `step` by a holder of `role`, due at `due` (notify them, show it
    /// in their queue).
    Await {
        /// The awaited step.
        step: StepKind,
        /// Who may take it.
        role: Role,
        /// Its SLA deadline.
        due: Timestamp,
    },
}

/// An accepted step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The stage the request enters.
    pub stage: Stage,
    /// The history row to append.
    pub record: StepRecord,
    /// What the office must do, in order.
    pub effects: Vec<Effect>,
}

/// A refused step or submission. Messages are English and name what was needed; [`code`] is
/// stable for the API.
///
/// [`code`]: WorkflowError::code
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WorkflowError {
    /// The acting account is empty.
    #[error("the acting account is empty")]
    EmptyAccount,
    /// Submitting needs the requester or the helpdesk role.
    #[error("account {} may not submit requests: that needs the role requester or helpdesk", quoted(.account))]
    MayNotSubmit {
        /// Who tried.
        account: String,
    },
    /// The action is not possible in the request's stage.
    #[error("cannot {action} a request in stage {stage}; allowed there: {}", kinds(.allowed))]
    NotAllowed {
        /// The action tried.
        action: ActionKind,
        /// The request's stage.
        stage: Stage,
        /// What the stage allows (for anyone).
        allowed: Vec<ActionKind>,
    },
    /// The actor lacks the role the chain names for the step.
    #[error("{action} needs the role {needed}; account {} does not hold it", quoted(.account))]
    WrongRole {
        /// The action tried.
        action: ActionKind,
        /// The role the chain names for it.
        needed: Role,
        /// Who tried.
        account: String,
    },
    /// Only the requester may withdraw.
    #[error("only the requester of a request ({}) may withdraw it", quoted(.requester))]
    NotRequester {
        /// The request's requester.
        requester: String,
    },
    /// Segregation of duties: the requester may not decide on their own request.
    #[error("segregation of duties: the requester of a request may not {action} it")]
    RequesterMayNot {
        /// The action tried.
        action: ActionKind,
    },
    /// Segregation of duties: the verifier may not also decide.
    #[error(
        "segregation of duties: account {} verified this request and may not also {action} it; \
         another holder of the approving role must decide",
        quoted(.account)
    )]
    VerifierMayNot {
        /// The action tried.
        action: ActionKind,
        /// The verifier.
        account: String,
    },
    /// A rejection without a reason.
    #[error("a reason is required to reject a request")]
    ReasonRequired,
    /// A note or reason over [`TEXT_MAX_CHARS`].
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TextTooLong {
        /// `note` or `reason`.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A note or reason with a control character other than a line break or tab.
    #[error(
        "{field} contains the control character {found}; only line breaks and tabs are allowed"
    )]
    TextInvalid {
        /// `note` or `reason`.
        field: &'static str,
        /// The character, escaped (`\u{1b}`).
        found: String,
    },
}

impl WorkflowError {
    /// Stable machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            WorkflowError::EmptyAccount => "account_empty",
            WorkflowError::MayNotSubmit { .. } => "submit_not_allowed",
            WorkflowError::NotAllowed { .. } => "action_not_allowed",
            WorkflowError::WrongRole { .. } => "wrong_role",
            WorkflowError::NotRequester { .. } => "not_requester",
            WorkflowError::RequesterMayNot { .. } => "segregation_requester",
            WorkflowError::VerifierMayNot { .. } => "segregation_verifier",
            WorkflowError::ReasonRequired => "reason_required",
            WorkflowError::TextTooLong { .. } => "text_too_long",
            WorkflowError::TextInvalid { .. } => "text_invalid",
        }
    }
}

fn kinds(allowed: &[ActionKind]) -> String {
    if allowed.is_empty() {
        return "nothing (the request is closed)".to_owned();
    }
    allowed
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A new request filed by `actor` (who must hold the requester or helpdesk role: the helpdesk
/// files for walk-in visitors and letters). It starts in `submitted` with an empty history; its
/// first step is [`awaiting`].
pub fn submit(kind: RequestKind, actor: &Actor, now: Timestamp) -> Result<Request, WorkflowError> {
    if actor.account.trim().is_empty() {
        return Err(WorkflowError::EmptyAccount);
    }
    if !actor.has(Role::Requester) && !actor.has(Role::Helpdesk) {
        return Err(WorkflowError::MayNotSubmit {
            account: actor.account.clone(),
        });
    }
    Ok(Request {
        kind,
        stage: Stage::Submitted,
        requester: actor.account.clone(),
        entered_at: now,
        history: Vec::new(),
    })
}

/// Decides one step: `actor` takes `action` on `request` at `now` under `chain`.
///
/// Checks, in this order: the account is not empty; the stage allows the action; the actor holds
/// the chain's role for it (for withdraw: is the requester); segregation of duties; the text. The
/// recorded time is `now`, but never before `request.entered_at` (office instances' clocks differ
/// a little; a history must not run backwards).
pub fn step(
    chain: &Chain,
    request: &Request,
    actor: &Actor,
    action: &Action,
    now: Timestamp,
) -> Result<Outcome, WorkflowError> {
    let kind = action.kind();
    let role = authorize(chain, request, actor, kind)?;
    if let Some((field, text)) = action.text() {
        check_text(field, text)?;
    }
    if let Action::Reject { reason } = action {
        if reason.trim().is_empty() {
            return Err(WorkflowError::ReasonRequired);
        }
    }
    let at = now.max(request.entered_at);
    let stage = kind.leads_to();
    let mut effects = Vec::new();
    match kind {
        ActionKind::Fulfil => effects.push(Effect::Fulfil { kind: request.kind }),
        ActionKind::Inform => {
            let decision = if request.stage == Stage::Rejected {
                Decision::Rejected
            } else {
                Decision::Approved
            };
            effects.push(Effect::NotifyRequester { decision });
        }
        _ => {}
    }
    if let Some(next) = next_step(chain, stage) {
        effects.push(Effect::Await {
            step: next.step,
            role: next.role,
            due: deadline(at, next.sla),
        });
    }
    Ok(Outcome {
        stage,
        record: StepRecord {
            account: actor.account.clone(),
            role,
            action: action.clone(),
            from: request.stage,
            to: stage,
            at,
        },
        effects,
    })
}

/// The actions `actor` may take on `request` now (the console's buttons): exactly those for
/// which [`step`] would accept valid text.
pub fn allowed_actions(chain: &Chain, request: &Request, actor: &Actor) -> Vec<ActionKind> {
    stage_actions(chain, request.stage)
        .into_iter()
        .filter(|&k| authorize(chain, request, actor, k).is_ok())
        .collect()
}

/// The actions the stage allows, for anyone (roles and segregation not yet considered).
pub fn stage_actions(chain: &Chain, stage: Stage) -> Vec<ActionKind> {
    let mut out = match next_step(chain, stage).map(|s| s.step) {
        None => return Vec::new(),
        Some(StepKind::Dispose) => vec![ActionKind::Dispose],
        Some(StepKind::Verify) => vec![ActionKind::Verify],
        Some(StepKind::Approve) => vec![ActionKind::Approve, ActionKind::Reject],
        Some(StepKind::Fulfil) => vec![ActionKind::Fulfil],
        Some(StepKind::Inform) => vec![ActionKind::Inform],
    };
    if stage.is_before_decision() {
        out.push(ActionKind::Withdraw);
    }
    out
}

/// The step the request waits for, with its role and SLA (`None` when closed).
///
/// Computed from the stage and the chain as it is now, so a site that shortens its chain moves
/// requests already under way on to the next step it still has.
pub fn awaiting<'c>(chain: &'c Chain, request: &Request) -> Option<&'c ChainStep> {
    next_step(chain, request.stage)
}

/// When the awaited step is due: entering the stage plus the step's SLA. `None` when closed.
pub fn due_at(chain: &Chain, request: &Request) -> Option<Timestamp> {
    awaiting(chain, request).map(|s| deadline(request.entered_at, s.sla))
}

/// Whether the awaited step is past its due time at `now` (due exactly now is not yet overdue).
pub fn is_overdue(chain: &Chain, request: &Request, now: Timestamp) -> bool {
    overdue_by(chain, request, now).is_some()
}

/// How far past its due time the awaited step is at `now`; `None` when not overdue or closed.
pub fn overdue_by(chain: &Chain, request: &Request, now: Timestamp) -> Option<Duration> {
    let due = due_at(chain, request)?;
    (now > due).then(|| now.duration_since(due).unsigned_abs())
}

fn deadline(from: Timestamp, sla: Duration) -> Timestamp {
    // Only spans with calendar units can fail; a plain duration saturates at the maximum.
    from.saturating_add(sla).unwrap_or(Timestamp::MAX)
}

fn next_step(chain: &Chain, stage: Stage) -> Option<&ChainStep> {
    match stage {
        _ if stage.is_terminal() => None,
        // A rejection skips fulfilment: the requester is told.
        Stage::Rejected => chain.get(StepKind::Inform),
        _ => chain.first_after(stage.reached_by()),
    }
}

/// Whether `actor` may take `kind` on `request` now, and in which role.
fn authorize(
    chain: &Chain,
    request: &Request,
    actor: &Actor,
    kind: ActionKind,
) -> Result<Role, WorkflowError> {
    if actor.account.trim().is_empty() {
        return Err(WorkflowError::EmptyAccount);
    }
    let allowed = stage_actions(chain, request.stage);
    if !allowed.contains(&kind) {
        return Err(WorkflowError::NotAllowed {
            action: kind,
            stage: request.stage,
            allowed,
        });
    }
    let Some(step) = kind.step() else {
        // Withdraw is the requester's right on their own request, not a role's.
        if actor.account != request.requester {
            return Err(WorkflowError::NotRequester {
                requester: request.requester.clone(),
            });
        }
        return Ok(Role::Requester);
    };
    let Some(role) = chain.get(step).map(|s| s.role) else {
        // stage_actions only offers steps of the chain; kept as a refusal rather than a panic.
        return Err(WorkflowError::NotAllowed {
            action: kind,
            stage: request.stage,
            allowed,
        });
    };
    if !actor.has(role) {
        return Err(WorkflowError::WrongRole {
            action: kind,
            needed: role,
            account: actor.account.clone(),
        });
    }
    let deciding = matches!(kind, ActionKind::Approve | ActionKind::Reject);
    if (deciding || matches!(kind, ActionKind::Dispose | ActionKind::Verify))
        && actor.account == request.requester
    {
        return Err(WorkflowError::RequesterMayNot { action: kind });
    }
    if deciding {
        if let Some(verifier) = request.verifier().filter(|v| *v == actor.account) {
            return Err(WorkflowError::VerifierMayNot {
                action: kind,
                account: verifier.to_owned(),
            });
        }
    }
    Ok(role)
}

fn check_text(field: &'static str, text: &str) -> Result<(), WorkflowError> {
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(WorkflowError::TextInvalid {
            field,
            found: c.escape_unicode().to_string(),
        });
    }
    let len = text.chars().count();
    if len > TEXT_MAX_CHARS {
        return Err(WorkflowError::TextTooLong {
            field,
            len,
            max: TEXT_MAX_CHARS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
