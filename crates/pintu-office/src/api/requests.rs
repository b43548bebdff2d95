//! Requests: `POST /api/v1/requests` (file one), `GET /api/v1/requests` (list: stage, overdue,
//! mine to act, search, paged), `GET /api/v1/requests/{id}` (one, with history and the viewer's
//! allowed actions), `POST /api/v1/requests/{id}/steps` (take a step: the workflow's action JSON,
//! e.g. `{"action":"reject","reason":"…"}`).

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use pintu_core::workflow::{Action, WorkflowError};

use super::{ApiError, AppState};
use crate::auth::Actor;
use crate::requests::{self, ListFilter, NewRequest, RequestError, RequestView};

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

async fn step(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(action): Json<Action>,
) -> Result<Json<RequestView>, ApiError> {
    let view = requests::act(
        &state.db,
        &state.key,
        &state.settings.workflow,
        &actor,
        &id,
        action,
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
        RequestError::Db(e) => ApiError::Db(e),
    }
}
