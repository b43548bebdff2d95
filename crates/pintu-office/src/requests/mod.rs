//! Access requests in the database, moved along by the pure workflow
//! ([`pintu_core::workflow`]): staff access, visits, removals and server custody. This module
//! loads a request's state, asks the workflow whether the actor may take the step, and stores
//! the step, the new stage, its SLA deadline and the audit record in one transaction.
//!
//! Who sees what: a requester sees the requests they filed; helpdesk, coordinator, approver,
//! head, auditor and administrator see all of them.

pub mod fulfil;
mod offline;
mod signature;
mod store;

use jiff::Timestamp;
use pintu_core::workflow::{
    self, Action, ActionKind, Chain, RequestKind, Stage, StepKind, WorkflowError,
};
use serde::{Deserialize, Serialize};

use crate::auth::{Actor, Role};
use crate::db::DbError;
use crate::input::FieldError;
use crate::signing::SigningError;

pub use fulfil::{FulfilContext, Fulfilment, FulfilmentView};
pub use offline::{decision_file, offline_decision};
pub use signature::{
    sign_decision, statement_of, verify_all, Failure, SignedDecision, StepSignature, Verdict,
};
pub use store::{act, get, list, submit, ListFilter, RequestPage, Step};

/// Roles that see every request.
pub const READ_ALL: [Role; 6] = [
    Role::Helpdesk,
    Role::Coordinator,
    Role::Approver,
    Role::Head,
    Role::Auditor,
    Role::Administrator,
];

/// A request as the requester files it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// What it asks for.
    pub kind: RequestKind,
    /// The requesting unit (bidang / OPD).
    pub unit: String,
    /// The person it is about.
    pub subject_name: String,
    /// Their NIP, if a civil servant.
    #[serde(default)]
    pub subject_nip: Option<String>,
    /// Why.
    pub reason: String,
    /// Door ids asked for (none for a removal of everything).
    #[serde(default)]
    pub doors: Vec<String>,
    /// Start of the access window (RFC 3339), if bounded.
    #[serde(default)]
    pub window_from: Option<Timestamp>,
    /// End of the access window (RFC 3339), if bounded.
    #[serde(default)]
    pub window_until: Option<Timestamp>,
    /// An attached letter: its file name.
    #[serde(default)]
    pub letter_name: Option<String>,
    /// … and its SHA-256 (hex).
    #[serde(default)]
    pub letter_sha256: Option<String>,
}

/// One step of a request's history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StepView {
    /// Position, from 1.
    pub n: i64,
    /// The action with its note or reason.
    pub action: Action,
    /// Who (account id).
    pub actor_id: String,
    /// Their username.
    pub actor_name: String,
    /// The role they acted in.
    pub role: Role,
    /// Stage left.
    pub from: Stage,
    /// Stage entered.
    pub to: Stage,
    /// When (Unix ms).
    pub at_ms: i64,
    /// A decision's signature (approve, reject), verified when the request was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<StepSignature>,
}

/// What the request waits for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Awaiting {
    /// The step.
    pub step: StepKind,
    /// The role that may take it.
    pub role: Role,
}

/// A request with its history, as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequestView {
    /// Id.
    pub id: String,
    /// Human reference (`REQ-2026-0042`).
    pub reference: String,
    /// Kind.
    pub kind: RequestKind,
    /// Stage.
    pub stage: Stage,
    /// The requester's account id.
    pub requester_id: String,
    /// The requester's username.
    pub requester_name: String,
    /// Unit.
    pub unit: String,
    /// Subject.
    pub subject_name: String,
    /// Subject's NIP.
    pub subject_nip: Option<String>,
    /// Reason.
    pub reason: String,
    /// Doors.
    pub doors: Vec<String>,
    /// Window start (Unix ms).
    pub window_from_ms: Option<i64>,
    /// Window end (Unix ms).
    pub window_until_ms: Option<i64>,
    /// Letter name.
    pub letter_name: Option<String>,
    /// Letter digest.
    pub letter_sha256: Option<String>,
    /// Filed at (Unix ms).
    pub created_at_ms: i64,
    /// Entered its stage at (Unix ms).
    pub entered_stage_at_ms: i64,
    /// The awaited step's deadline (Unix ms), while open.
    pub due_at_ms: Option<i64>,
    /// Whether that deadline has passed.
    pub overdue: bool,
    /// What it waits for, while open.
    pub awaiting: Option<Awaiting>,
    /// The steps taken.
    pub history: Vec<StepView>,
    /// What the viewer may do now (the console's buttons).
    pub allowed_actions: Vec<ActionKind>,
    /// What its fulfilment changed in the directory and whether the list carrying that has
    /// been published (one request's view only; `None` in lists and before fulfilment).
    pub fulfilment: Option<FulfilmentView>,
}

/// Why a request call was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The workflow refused the step.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// A field is wrong.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No such request, or not one the viewer may see.
    #[error("request not found")]
    NotFound,
    /// Someone else changed the request at the same moment; the step was not taken.
    #[error("the request changed while this step was taken; reload and try again")]
    Changed,
    /// Carrying the request out (the fulfil step) was refused by the directory; nothing of
    /// the step was recorded.
    #[error(transparent)]
    Fulfilment(Box<fulfil::FulfilError>),
    /// The approver has no signing key, so cannot decide.
    #[error(
        "account {account:?} has no signing key: an approval or a rejection is the approver's \
         signature, so create your signing key first (POST /api/v1/signing/keys with a \
         passphrase)"
    )]
    NoKey {
        /// The approver.
        account: String,
    },
    /// The approver's key is held offline: no passphrase opens it here.
    #[error(
        "your signing key {key_id:?} is held offline: download the decision statement \
         (POST /api/v1/requests/{{id}}/decision-file), sign it with `pintuctl sign --key KEY \
         FILE` and take the step with the signature file as `signature_file`"
    )]
    KeyHeldOffline {
        /// The key.
        key_id: String,
    },
    /// Unlocking or signing failed (wrong passphrase, throttled, damaged key).
    #[error(transparent)]
    Signing(SigningError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for RequestError {
    fn from(e: sqlx::Error) -> Self {
        RequestError::Db(DbError::Query(e))
    }
}

/// The workflow's view of the acting account.
pub fn workflow_actor(actor: &Actor) -> workflow::Actor {
    workflow::Actor::new(
        actor.session.account_id.clone(),
        actor.session.roles.iter().copied(),
    )
}

/// Whether `actor` may see requests filed by `requester_id`.
pub fn may_see(actor: &Actor, requester_id: &str) -> bool {
    actor.session.account_id == requester_id || READ_ALL.iter().any(|r| actor.has(*r))
}

/// Unix ms to a timestamp (stored times are always in range; clamp if not).
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

/// The chain a request is checked against: the site's.
pub(crate) fn due_ms(chain: &Chain, request: &workflow::Request) -> Option<i64> {
    workflow::due_at(chain, request).map(|t| t.as_millisecond())
}
