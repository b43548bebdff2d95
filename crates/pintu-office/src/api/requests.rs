//! Requests: `POST /api/v1/requests` (file one), `GET /api/v1/requests` (list: stage, overdue,
//! mine to act, search, paged), `GET /api/v1/requests/{id}` (one, with history and the viewer's
//! allowed actions), `POST /api/v1/requests/{id}/steps` (take a step: the workflow's action JSON,
//! e.g. `{"action":"reject","reason":"…"}`; a fulfil step may carry `"fulfilment": {…}`, what
//! carries the request out: `requests::fulfil`).

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use pintu_core::workflow::{Action, WorkflowError};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::auth::Actor;
use crate::directory::DirectoryError;
use crate::input::FieldError;
use crate::requests::{
    self, FulfilContext, Fulfilment, ListFilter, NewRequest, RequestError, RequestView,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/requests", post(file).get(list))
        .route("/api/v1/requests/{id}", get(one))
        .route("/api/v1/requests/{id}/steps", post(step))
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

/// The body of a step: the workflow's action JSON and, for a fulfil step, what carries it out.
#[derive(Debug, Deserialize)]
struct StepBody {
    #[serde(flatten)]
    action: Action,
    /// The fulfil step's details (card UID, holder, badge …): see `requests::Fulfilment`.
    #[serde(default)]
    fulfilment: Option<Fulfilment>,
}

async fn step(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(body): Json<StepBody>,
) -> Result<Json<RequestView>, ApiError> {
    let fulfil = FulfilContext {
        details: body.fulfilment.as_ref(),
        card_key_file: state.settings.site.card_key_file.as_deref(),
    };
    let view = requests::act(
        &state.db,
        &state.key,
        &state.settings.workflow,
        &actor,
        &id,
        body.action,
        fulfil,
    )
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
        RequestError::Db(e) => ApiError::Db(e),
    }
}
