//! The archive's HTTP API (`/api/v1/archive/…`, read only): events of a period (paged; by door,
//! by holder), one event, gaps, counters and per-door ranges, problems (conflicts, lost
//! sessions), rejected messages. For the roles that review what happened at the doors:
//! coordinator, technical team, auditor, administrator. Documented in `docs/archive.md`.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::api::{ApiError, AppState};
use crate::auth::{Actor, Role};
use crate::input::FieldError;

/// Who may read the archive.
const READERS: [Role; 4] = [
    Role::Coordinator,
    Role::Technical,
    Role::Auditor,
    Role::Administrator,
];

/// The archive's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/archive/events", get(events))
        .route("/api/v1/archive/events/{door}/{seq}", get(event))
        .route("/api/v1/archive/gaps", get(gaps))
        .route("/api/v1/archive/stats", get(stats))
        .route("/api/v1/archive/problems", get(problems))
        .route("/api/v1/archive/rejected", get(rejected))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// From (Unix ms, included).
    #[serde(default)]
    from_ms: i64,
    /// Until (Unix ms, excluded).
    #[serde(default = "far_future")]
    until_ms: i64,
    door: Option<String>,
    holder: Option<String>,
    /// The previous page's `next` (all three, or none).
    after_at_ms: Option<i64>,
    after_door: Option<String>,
    after_seq: Option<i64>,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn far_future() -> i64 {
    i64::MAX
}

fn default_limit() -> i64 {
    100
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Invalid(FieldError::new(field, message))
}

async fn events(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<EventsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require_any(&READERS)?;
    let after = match (q.after_at_ms, q.after_door, q.after_seq) {
        (Some(at_ms), Some(door), Some(seq)) => Some(super::Cursor { at_ms, door, seq }),
        (None, None, None) => None,
        _ => {
            return Err(invalid(
                "after_at_ms",
                "after_at_ms, after_door and after_seq go together",
            ))
        }
    };
    if q.until_ms < q.from_ms {
        return Err(invalid("until_ms", "is before from_ms"));
    }
    let page = super::events(
        &state.db,
        &super::EventQuery {
            from_ms: q.from_ms,
            until_ms: q.until_ms,
            door: q.door,
            holder: q.holder,
            after,
            limit: q.limit,
        },
    )
    .await
    .map_err(internal)?;
    Ok(Json(json!(page)))
}

async fn event(
    State(state): State<AppState>,
    actor: Actor,
    Path((door, seq)): Path<(String, i64)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require_any(&READERS)?;
    match super::event(&state.db, &door, seq)
        .await
        .map_err(internal)?
    {
        Some(e) => Ok(Json(json!(e))),
        None => Err(ApiError::NotFound(format!("event {door}#{seq}"))),
    }
}

async fn gaps(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require_any(&READERS)?;
    let gaps = super::gaps(&state.db).await.map_err(internal)?;
    Ok(Json(json!({ "gaps": gaps })))
}

async fn stats(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require_any(&READERS)?;
    let stats = super::stats(&state.db).await.map_err(internal)?;
    Ok(Json(json!(stats)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProblemsQuery {
    kind: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
}

async fn problems(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<ProblemsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require_any(&READERS)?;
    if let Some(kind) = q.kind.as_deref() {
        if !matches!(kind, "conflict" | "session_lost") {
            return Err(invalid("kind", "conflict or session_lost"));
        }
    }
    let problems = super::problems(&state.db, q.kind.as_deref(), q.limit)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "problems": problems })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    #[serde(default = "default_limit")]
    limit: i64,
}

async fn rejected(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require_any(&READERS)?;
    let rejected = super::rejected(&state.db, q.limit)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "rejected": rejected })))
}

/// An archive failure in the API is a database failure (the queries do nothing else).
fn internal(e: super::ArchiveError) -> ApiError {
    match e {
        super::ArchiveError::Db(db) => ApiError::Db(db),
        other => ApiError::Internal(other.to_string()),
    }
}
