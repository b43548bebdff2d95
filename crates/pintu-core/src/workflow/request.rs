//! A request as the workflow sees it: its stage, who filed it, when it entered the stage, and the
//! steps taken so far; plus the actions people take on it and the people who take them.
//!
//! The office stores these (one row per request, one per step); the workflow reads them and
//! decides. Everything is serde-friendly: stages, actions and roles travel by their stable names.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::chain::StepKind;
use super::names::{named, Lang, RequestKind, Role};

/// Where a request is.
///
/// ```text
/// submitted ─dispose→ disposed ─verify→ verified ─approve→ approved ─fulfil→ fulfilled ─inform→ informed
///                                               └─reject─→ rejected ──────────────────inform→ informed
/// submitted, disposed, verified ─withdraw (by the requester)→ withdrawn
/// ```
/// A chain without dispose or verify skips that stage. `informed` and `withdrawn` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Filed, waiting for the first step of the chain.
    Submitted,
    /// The head disposed it.
    Disposed,
    /// The coordinator verified it.
    Verified,
    /// The approver approved it; waiting to be carried out.
    Approved,
    /// The approver rejected it; waiting for the requester to be told.
    Rejected,
    /// Carried out; waiting for the requester to be told.
    Fulfilled,
    /// Closed: the requester was told the decision (approved and fulfilled, or rejected; the
    /// decision is in the history, see [`Request::decision`]).
    Informed,
    /// Closed: the requester withdrew it before a decision.
    Withdrawn,
}

named!(Stage, "stage",
    "submitted, disposed, verified, approved, rejected, fulfilled, informed, withdrawn", [
    Submitted => "submitted",
    Disposed => "disposed",
    Verified => "verified",
    Approved => "approved",
    Rejected => "rejected",
    Fulfilled => "fulfilled",
    Informed => "informed",
    Withdrawn => "withdrawn",
]);

impl Stage {
    /// Whether the request is closed: nothing more happens to it, no SLA clock runs.
    pub fn is_terminal(self) -> bool {
        matches!(self, Stage::Informed | Stage::Withdrawn)
    }

    /// Whether the approver has not decided yet (so the requester may still withdraw).
    pub fn is_before_decision(self) -> bool {
        matches!(self, Stage::Submitted | Stage::Disposed | Stage::Verified)
    }

    /// The last step taken to reach this stage, in SOP order (`None` for `submitted`, and for
    /// `withdrawn`, which leaves the order).
    pub fn reached_by(self) -> Option<StepKind> {
        match self {
            Stage::Submitted | Stage::Withdrawn => None,
            Stage::Disposed => Some(StepKind::Dispose),
            Stage::Verified => Some(StepKind::Verify),
            Stage::Approved | Stage::Rejected => Some(StepKind::Approve),
            Stage::Fulfilled => Some(StepKind::Fulfil),
            Stage::Informed => Some(StepKind::Inform),
        }
    }

    /// The label shown to people.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Stage::Submitted, Lang::Id) => "Diajukan",
            (Stage::Submitted, Lang::En) => "Submitted",
            (Stage::Disposed, Lang::Id) => "Didisposisi",
            (Stage::Disposed, Lang::En) => "Disposed",
            (Stage::Verified, Lang::Id) => "Diverifikasi",
            (Stage::Verified, Lang::En) => "Verified",
            (Stage::Approved, Lang::Id) => "Disetujui",
            (Stage::Approved, Lang::En) => "Approved",
            (Stage::Rejected, Lang::Id) => "Ditolak",
            (Stage::Rejected, Lang::En) => "Rejected",
            (Stage::Fulfilled, Lang::Id) => "Dilaksanakan",
            (Stage::Fulfilled, Lang::En) => "Fulfilled",
            (Stage::Informed, Lang::Id) => "Selesai (pemohon diberi tahu)",
            (Stage::Informed, Lang::En) => "Closed (requester informed)",
            (Stage::Withdrawn, Lang::Id) => "Ditarik pemohon",
            (Stage::Withdrawn, Lang::En) => "Withdrawn",
        }
    }
}

/// What a person does to a request, with the text that goes with it.
///
/// JSON: `{"action": "reject", "reason": "…"}`; `note` may be left out (empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Forward the request down the chain (head).
    Dispose {
        /// The disposition's instruction, if any.
        #[serde(default)]
        note: String,
    },
    /// Confirm the facts (coordinator).
    Verify {
        /// What the coordinator found (including what the current list says about the person).
        #[serde(default)]
        note: String,
    },
    /// Approve (approver).
    Approve {
        /// Conditions or remarks, if any.
        #[serde(default)]
        note: String,
    },
    /// Reject (approver).
    Reject {
        /// Why; required, so the requester and the audit know.
        reason: String,
    },
    /// Record that the request was carried out (helpdesk).
    Fulfil {
        /// What was done (card number, badge, …), if anything is worth noting.
        #[serde(default)]
        note: String,
    },
    /// Record that the requester was told the result (helpdesk).
    Inform,
    /// Take the request back (its requester, before the decision).
    Withdraw,
}

/// An [`Action`] without its text: what the console shows as a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// See [`Action::Dispose`].
    Dispose,
    /// See [`Action::Verify`].
    Verify,
    /// See [`Action::Approve`].
    Approve,
    /// See [`Action::Reject`].
    Reject,
    /// See [`Action::Fulfil`].
    Fulfil,
    /// See [`Action::Inform`].
    Inform,
    /// See [`Action::Withdraw`].
    Withdraw,
}

named!(ActionKind, "action", "dispose, verify, approve, reject, fulfil, inform, withdraw", [
    Dispose => "dispose",
    Verify => "verify",
    Approve => "approve",
    Reject => "reject",
    Fulfil => "fulfil",
    Inform => "inform",
    Withdraw => "withdraw",
]);

impl ActionKind {
    /// The chain step this action takes (`None` for withdraw, which is no step of the chain).
    pub fn step(self) -> Option<StepKind> {
        match self {
            ActionKind::Dispose => Some(StepKind::Dispose),
            ActionKind::Verify => Some(StepKind::Verify),
            ActionKind::Approve | ActionKind::Reject => Some(StepKind::Approve),
            ActionKind::Fulfil => Some(StepKind::Fulfil),
            ActionKind::Inform => Some(StepKind::Inform),
            ActionKind::Withdraw => None,
        }
    }

    /// The stage the action leads to.
    pub fn leads_to(self) -> Stage {
        match self {
            ActionKind::Dispose => Stage::Disposed,
            ActionKind::Verify => Stage::Verified,
            ActionKind::Approve => Stage::Approved,
            ActionKind::Reject => Stage::Rejected,
            ActionKind::Fulfil => Stage::Fulfilled,
            ActionKind::Inform => Stage::Informed,
            ActionKind::Withdraw => Stage::Withdrawn,
        }
    }

    /// The label shown to people (a button).
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (ActionKind::Dispose, Lang::Id) => "Disposisikan",
            (ActionKind::Dispose, Lang::En) => "Dispose",
            (ActionKind::Verify, Lang::Id) => "Verifikasi",
            (ActionKind::Verify, Lang::En) => "Verify",
            (ActionKind::Approve, Lang::Id) => "Setujui",
            (ActionKind::Approve, Lang::En) => "Approve",
            (ActionKind::Reject, Lang::Id) => "Tolak",
            (ActionKind::Reject, Lang::En) => "Reject",
            (ActionKind::Fulfil, Lang::Id) => "Laksanakan",
            (ActionKind::Fulfil, Lang::En) => "Fulfil",
            (ActionKind::Inform, Lang::Id) => "Beri tahu pemohon",
            (ActionKind::Inform, Lang::En) => "Inform the requester",
            (ActionKind::Withdraw, Lang::Id) => "Tarik kembali",
            (ActionKind::Withdraw, Lang::En) => "Withdraw",
        }
    }
}

impl Action {
    /// The action without its text.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Dispose { .. } => ActionKind::Dispose,
            Action::Verify { .. } => ActionKind::Verify,
            Action::Approve { .. } => ActionKind::Approve,
            Action::Reject { .. } => ActionKind::Reject,
            Action::Fulfil { .. } => ActionKind::Fulfil,
            Action::Inform => ActionKind::Inform,
            Action::Withdraw => ActionKind::Withdraw,
        }
    }

    /// The free text the action carries, with its field name.
    pub fn text(&self) -> Option<(&'static str, &str)> {
        match self {
            Action::Dispose { note }
            | Action::Verify { note }
            | Action::Approve { note }
            | Action::Fulfil { note } => Some(("note", note)),
            Action::Reject { reason } => Some(("reason", reason)),
            Action::Inform | Action::Withdraw => None,
        }
    }
}

/// A person acting: their account and every role they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The account (NIP or username), compared exactly for segregation of duties.
    pub account: String,
    /// The roles the account holds now.
    pub roles: BTreeSet<Role>,
}

impl Actor {
    /// An actor with the given roles.
    pub fn new(account: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Actor {
        Actor {
            account: account.into(),
            roles: roles.into_iter().collect(),
        }
    }

    /// Whether the actor holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// One step taken: the history's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    /// Who took it.
    pub account: String,
    /// In which role: the chain's role for the step; `requester` for a withdrawal.
    pub role: Role,
    /// What they did, with its text.
    pub action: Action,
    /// The stage the request left.
    pub from: Stage,
    /// The stage it entered.
    pub to: Stage,
    /// When.
    pub at: Timestamp,
}

/// The approver's decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
}

/// The state of a request the workflow needs. The request's content (unit, person, doors, window,
/// letter) is the office's; the workflow decides only who may move it where, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// What it asks for.
    pub kind: RequestKind,
    /// Where it is.
    pub stage: Stage,
    /// The requester's account.
    pub requester: String,
    /// When it entered `stage`: the SLA clock of the awaited step starts here.
    pub entered_at: Timestamp,
    /// The steps taken, oldest first.
    pub history: Vec<StepRecord>,
}

impl Request {
    /// The account that verified the request, if it was verified.
    pub fn verifier(&self) -> Option<&str> {
        self.last_by(ActionKind::Verify)
    }

    /// The account that approved or rejected it, if it was decided.
    pub fn decider(&self) -> Option<&str> {
        self.last_by(ActionKind::Approve)
            .or_else(|| self.last_by(ActionKind::Reject))
    }

    /// The approver's decision, if there was one.
    pub fn decision(&self) -> Option<Decision> {
        self.history
            .iter()
            .rev()
            .find_map(|r| match r.action.kind() {
                ActionKind::Approve => Some(Decision::Approved),
                ActionKind::Reject => Some(Decision::Rejected),
                _ => None,
            })
    }

    fn last_by(&self, kind: ActionKind) -> Option<&str> {
        self.history
            .iter()
            .rev()
            .find(|r| r.action.kind() == kind)
            .map(|r| r.account.as_str())
    }

    /// Applies an accepted step: the request enters the outcome's stage, the record joins the
    /// history. The office does the same to its rows, in the transaction that performs the
    /// outcome's effects.
    pub fn apply(&mut self, outcome: &super::Outcome) {
        self.stage = outcome.stage;
        self.entered_at = outcome.record.at;
        self.history.push(outcome.record.clone());
    }
}
