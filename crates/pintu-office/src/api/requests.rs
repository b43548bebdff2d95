//! Requests: `POST /api/v1/requests` (file one), `GET /api/v1/requests` (list: stage, overdue,
//! mine to act, search, paged), `GET /api/v1/requests/{id}` (one, with history and the viewer's
//! allowed actions, each decision's signature verified now), `POST /api/v1/requests/{id}/steps`
//! (take a step: the workflow's action JSON, e.g. `{"action":"dispose","note":"…"}`; an approval
//! or rejection adds the approver's `passphrase`, e.g.
//! `{"action":"reject","reason":"…","passphrase":"…"}`, and is signed with their key; with a key
//! held offline, `"signature_file"` instead; a fulfil step may carry `"fulfilment": {…}`, what
//! carries the request out: `requests::fulfil`), `POST /api/v1/requests/{id}/decision-file`
//! (the decision statement to sign offline with `pintuctl sign`).

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use pintu_core::workflow::{Action, WorkflowError};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{ApiError, AppState};
use crate::auth::Actor;
use crate::directory::DirectoryError;
use crate::input::FieldError;
use crate::requests::{
    self, FulfilContext, Fulfilment, ListFilter, NewRequest, RequestError, RequestView, Step,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/requests", post(file).get(list))
        .route("/api/v1/requests/{id}", get(one))
        .route("/api/v1/requests/{id}/steps", post(step))
        .route("/api/v1/requests/{id}/decision-file", post(decision_file))
}

async fn file(
    State(state): State<AppState>,
    actor: Actor,
    Json(new): Json<NewRequest>,
) -> Result<Json<RequestView>, ApiError> {
    let view = requests::submit(&state.db, &state.key, &state.settings.workflow, &actor, new)
        .await
        .map_err(request_error)?;
    Ok(Json(view))
}

async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<ListFilter>,
) -> Result<Json<requests::RequestPage>, ApiError> {
    let page = requests::list(&state.db, &state.settings.workflow, &actor, &filter)
        .await
        .map_err(request_error)?;
    Ok(Json(page))
}

async fn one(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let view = requests::get(&state.db, &state.settings.workflow, &actor, &id)
        .await
        .map_err(request_error)?;
    Ok(Json(view))
}

/// The step body: the workflow's [`Action`] JSON plus, for a decision, the approver's
/// passphrase, kept out of `Action` (which is stored and audited) and zeroized after the unlock,
/// and, for a fulfil step, what carries it out.
#[derive(Deserialize)]
struct StepBody {
    #[serde(flatten)]
    action: Action,
    /// The passphrase of the approver's signing key (approve, reject).
    #[serde(default)]
    passphrase: Option<String>,
    /// Or, for a key held offline, the signature file `pintuctl sign` made of the decision
    /// statement (`decision-file`).
    #[serde(default)]
    signature_file: Option<serde_json::Value>,
    /// The fulfil step's details (card UID, holder, badge …): see `requests::Fulfilment`.
    #[serde(default)]
    fulfilment: Option<Fulfilment>,
}

/// The decision statement of the caller's `action` as an offline-signing file.
async fn decision_file(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(action): Json<Action>,
) -> Result<Json<pintu::office::offline::PayloadFile>, ApiError> {
    let file = requests::decision_file(
        &state.db,
        &state.key,
        &state.settings.workflow,
        &crate::signing::api::signer(&state),
        &state.settings.site.name,
        &actor,
        &id,
        &action,
    )
    .await
    .map_err(request_error)?;
    Ok(Json(file))
}

async fn step(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(body): Json<StepBody>,
) -> Result<Json<RequestView>, ApiError> {
    let StepBody {
        action,
        passphrase,
        signature_file,
        fulfilment,
    } = body;
    let passphrase = passphrase.map(Zeroizing::new);
    let chain = &state.settings.workflow;
    // Unlocking (Argon2id) and signing happen here, before `act` opens its write transaction.
    let signed = match (passphrase, signature_file) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Invalid(crate::input::FieldError::new(
                "signature_file",
                "give a passphrase or a signature file, not both",
            )))
        }
        (None, Some(file)) => Some(
            requests::offline_decision(
                &state.db,
                chain,
                &crate::signing::api::signer(&state),
                &state.settings.site.name,
                &actor,
                &id,
                &action,
                &serde_json::to_vec(&file).unwrap_or_default(),
            )
            .await
            .map_err(request_error)?,
        ),
        (Some(passphrase), None) => Some(
            requests::sign_decision(
                &state.db,
                chain,
                &crate::signing::api::signer(&state),
                &state.settings.site.name,
                &actor,
                &id,
                &action,
                &passphrase,
            )
            .await
            .map_err(request_error)?,
        ),
        (None, None) => None,
    };
    let fulfil = FulfilContext {
        details: fulfilment.as_ref(),
        card_key_file: state.settings.site.card_key_file.as_deref(),
    };
    let step = Step {
        action,
        signed,
        fulfil,
    };
    let view = requests::act(&state.db, &state.key, chain, &actor, &id, step)
        .await
        .map_err(request_error)?;
    Ok(Json(view))
}

/// A request error as the API shows it: a refused role or duty is 403, a step the stage does
/// not allow is 409, bad text is 422.
pub fn request_error(e: RequestError) -> ApiError {
    match e {
        RequestError::Workflow(w) => {
            let code = w.code();
            let message = w.to_string();
            match w {
                WorkflowError::NotAllowed { .. } => ApiError::Conflict { code, message },
                WorkflowError::ReasonRequired
                | WorkflowError::TextTooLong { .. }
                | WorkflowError::TextInvalid { .. } => {
                    ApiError::Invalid(crate::input::FieldError::new(code, message))
                }
                _ => ApiError::Refused { code, message },
            }
        }
        RequestError::Invalid(f) => ApiError::Invalid(f),
        RequestError::NotFound => ApiError::NotFound("request".into()),
        RequestError::Changed => ApiError::Conflict {
            code: "changed",
            message: e.to_string(),
        },
        RequestError::Fulfilment(f) => {
            let message = f.to_string();
            match f.source {
                DirectoryError::Db(e) => ApiError::Db(e),
                DirectoryError::Sealed => ApiError::Internal(message),
                DirectoryError::Invalid(_) | DirectoryError::NotFound(_) => {
                    ApiError::Invalid(FieldError::new("fulfilment", message))
                }
                DirectoryError::NoSite => ApiError::Conflict {
                    code: "no_site",
                    message,
                },
                DirectoryError::CardKey(_) => ApiError::Conflict {
                    code: "no_card_key",
                    message,
                },
                DirectoryError::Conflict(_) | DirectoryError::Register(_) => ApiError::Conflict {
                    code: "fulfilment_conflict",
                    message,
                },
            }
        }
        RequestError::NoKey { .. } => ApiError::Conflict {
            code: "no_key",
            message: e.to_string(),
        },
        RequestError::KeyHeldOffline { .. } => ApiError::Conflict {
            code: "key_held_offline",
            message: e.to_string(),
        },
        RequestError::Signing(e) => crate::signing::api::signing_error(e),
        RequestError::Db(e) => ApiError::Db(e),
    }
}
