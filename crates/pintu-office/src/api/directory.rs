//! The directory's API (`docs/office-api.md`, "Directory"): holders, cards, badges, visits, doors
//! and rooms — listed and searched a page at a time on the server (`?q=&page=&per_page=`, at most
//! 100 rows) — their changes, and the register's import and export.
//!
//! Who may do what: helpdesk and administrators read and write; coordinators, approvers, heads
//! and auditors read; requesters see nothing here (their requests are theirs in the requests
//! API); the technical team neither. Raw card UIDs are in answers only for helpdesk and
//! administrators (they enrol cards); everyone else sees the keyed hash. Import and export (the
//! export holds raw UIDs) are for administrators.

use std::path::Path as FilePath;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pintu::office::register::LoadedRegister;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::auth::{Actor, Role};
use crate::directory::cards;
use crate::directory::holders::{self, HolderInput};
use crate::directory::places::{self, DoorInput};
use crate::directory::visits::{self, VisitInput};
use crate::directory::{self, register, DirectoryError, PageQuery, RevokeInput};
use crate::input::FieldError;

/// Roles that read the directory.
const READ: [Role; 6] = [
    Role::Helpdesk,
    Role::Administrator,
    Role::Coordinator,
    Role::Approver,
    Role::Head,
    Role::Auditor,
];

/// Roles that change it.
const WRITE: [Role; 2] = [Role::Helpdesk, Role::Administrator];

/// The directory's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/holders", get(list_holders).post(create_holder))
        .route(
            "/api/v1/holders/{key}",
            get(get_holder).patch(update_holder),
        )
        .route("/api/v1/holders/{key}/cards", post(enrol_card))
        .route("/api/v1/holders/{key}/revoke", post(revoke_holder))
        .route("/api/v1/cards", get(list_cards))
        .route("/api/v1/cards/{id}/revoke", post(revoke_card))
        .route("/api/v1/badges", get(list_badges).post(add_badge))
        .route("/api/v1/badges/{label}/revoke", post(revoke_badge))
        .route("/api/v1/doors", get(list_doors).post(create_door))
        .route("/api/v1/doors/{id}", axum::routing::patch(update_door))
        .route("/api/v1/rooms", get(list_rooms).post(create_room))
        .route("/api/v1/visits", get(list_visits).post(issue_visit))
        .route("/api/v1/visits/{id}/end", post(end_visit))
        .route("/api/v1/register/import", post(import))
        .route("/api/v1/register/export", get(export))
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Db(e) => ApiError::Db(e),
            DirectoryError::Invalid(e) => ApiError::Invalid(e),
            DirectoryError::NotFound(what) => ApiError::NotFound(what),
            DirectoryError::Conflict(message) => ApiError::Conflict {
                code: "conflict",
                message,
            },
            DirectoryError::Register(e) => {
                ApiError::Invalid(FieldError::new("toml", e.to_string()))
            }
            e @ DirectoryError::NoSite => ApiError::Conflict {
                code: "no_site",
                message: e.to_string(),
            },
            e @ DirectoryError::CardKey(_) => ApiError::Conflict {
                code: "no_card_key",
                message: e.to_string(),
            },
            e @ DirectoryError::Sealed => ApiError::Internal(e.to_string()),
        }
    }
}

type Answer = Result<Json<Value>, ApiError>;
type Created = Result<(StatusCode, Json<Value>), ApiError>;

fn to_json(value: impl serde::Serialize) -> Answer {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn created(value: impl serde::Serialize) -> Created {
    Ok((StatusCode::CREATED, to_json(value)?))
}

fn card_key(state: &AppState) -> Result<pintu::core::card::CardKey, ApiError> {
    Ok(directory::load_card_key(
        state.settings.site.card_key_file.as_deref(),
    )?)
}

/// Whether `actor` may see raw card UIDs.
fn sees_uids(actor: &Actor) -> bool {
    actor.has(Role::Helpdesk) || actor.has(Role::Administrator)
}

async fn list_holders(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<PageQuery>,
) -> Answer {
    actor.require_any(&READ)?;
    to_json(holders::list_holders(&state.db, &q.check()?).await?)
}

async fn get_holder(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> Answer {
    actor.require_any(&READ)?;
    let holder = holders::get_holder(&state.db, &key).await?;
    let cards = cards::holder_cards(&state.db, &state.key, &key, sees_uids(&actor)).await?;
    let mut body = serde_json::to_value(&holder).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["card_list"] =
        serde_json::to_value(cards).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(body))
}

async fn create_holder(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<HolderInput>,
) -> Created {
    actor.require_any(&WRITE)?;
    created(holders::create_holder(&state.db, &state.key, &actor.audit(), &input).await?)
}

async fn update_holder(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    Json(input): Json<HolderInput>,
) -> Answer {
    actor.require_any(&WRITE)?;
    to_json(holders::update_holder(&state.db, &state.key, &actor.audit(), &key, &input).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardBody {
    uid: String,
}

async fn enrol_card(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    Json(body): Json<CardBody>,
) -> Created {
    actor.require_any(&WRITE)?;
    let card_key = card_key(&state)?;
    created(
        cards::enrol_card(
            &state.db,
            &state.key,
            &card_key,
            &actor.audit(),
            &key,
            &body.uid,
        )
        .await?,
    )
}

async fn revoke_holder(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    Json(why): Json<RevokeInput>,
) -> Answer {
    actor.require_any(&WRITE)?;
    let cards = cards::revoke_holder(&state.db, &state.key, &actor.audit(), &key, &why).await?;
    to_json(json!({ "revoked": cards }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    per_page: Option<u32>,
    /// `holder` or `badge`.
    #[serde(default)]
    kind: Option<String>,
}

async fn list_cards(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<CardQuery>,
) -> Answer {
    actor.require_any(&READ)?;
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(k @ ("holder" | "badge")) => Some(k),
        Some(_) => return Err(FieldError::new("kind", "holder or badge").into()),
    };
    let page = PageQuery {
        q: q.q,
        page: q.page,
        per_page: q.per_page,
    }
    .check()?;
    to_json(cards::list_cards(&state.db, &state.key, &page, kind, sees_uids(&actor)).await?)
}

async fn revoke_card(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(why): Json<RevokeInput>,
) -> Answer {
    actor.require_any(&WRITE)?;
    to_json(cards::revoke_card(&state.db, &state.key, &actor.audit(), &id, &why).await?)
}

async fn list_badges(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<PageQuery>,
) -> Answer {
    actor.require_any(&READ)?;
    let page = q.check()?;
    to_json(
        cards::list_cards(
            &state.db,
            &state.key,
            &page,
            Some("badge"),
            sees_uids(&actor),
        )
        .await?,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BadgeBody {
    label: String,
    uid: String,
}

async fn add_badge(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<BadgeBody>,
) -> Created {
    actor.require_any(&WRITE)?;
    let card_key = card_key(&state)?;
    created(
        cards::add_badge(
            &state.db,
            &state.key,
            &card_key,
            &actor.audit(),
            &body.label,
            &body.uid,
        )
        .await?,
    )
}

async fn revoke_badge(
    State(state): State<AppState>,
    actor: Actor,
    Path(label): Path<String>,
    Json(why): Json<RevokeInput>,
) -> Answer {
    actor.require_any(&WRITE)?;
    to_json(cards::revoke_badge(&state.db, &state.key, &actor.audit(), &label, &why).await?)
}

async fn list_doors(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<PageQuery>,
) -> Answer {
    actor.require_any(&READ)?;
    to_json(places::list_doors(&state.db, &q.check()?).await?)
}

async fn create_door(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<DoorInput>,
) -> Created {
    actor.require_any(&WRITE)?;
    created(places::create_door(&state.db, &state.key, &actor.audit(), &input).await?)
}

async fn update_door(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(input): Json<DoorInput>,
) -> Answer {
    actor.require_any(&WRITE)?;
    to_json(places::update_door(&state.db, &state.key, &actor.audit(), &id, &input).await?)
}

async fn list_rooms(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<PageQuery>,
) -> Answer {
    actor.require_any(&READ)?;
    to_json(places::list_rooms(&state.db, &q.check()?).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomBody {
    name: String,
}

async fn create_room(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<RoomBody>,
) -> Created {
    actor.require_any(&WRITE)?;
    created(places::create_room(&state.db, &state.key, &actor.audit(), &body.name).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VisitQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    per_page: Option<u32>,
    /// Only open visits.
    #[serde(default)]
    open: Option<bool>,
}

async fn list_visits(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<VisitQuery>,
) -> Answer {
    actor.require_any(&READ)?;
    let page = PageQuery {
        q: q.q,
        page: q.page,
        per_page: q.per_page,
    }
    .check()?;
    to_json(visits::list_visits(&state.db, &page, q.open.unwrap_or(false)).await?)
}

async fn issue_visit(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<VisitInput>,
) -> Created {
    actor.require_any(&WRITE)?;
    created(visits::issue_visit(&state.db, &state.key, &actor.audit(), &input).await?)
}

async fn end_visit(State(state): State<AppState>, actor: Actor, Path(id): Path<String>) -> Answer {
    actor.require_any(&WRITE)?;
    to_json(visits::end_visit(&state.db, &state.key, &actor.audit(), &id).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    /// The register's text.
    toml: String,
}

async fn import(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<ImportBody>,
) -> Answer {
    actor.require(Role::Administrator)?;
    let card_key = card_key(&state)?;
    let reg = LoadedRegister::parse(FilePath::new("register.toml"), &body.toml)
        .map_err(DirectoryError::from)?;
    to_json(register::import(&state.db, &state.key, &card_key, &actor.audit(), &reg).await?)
}

async fn export(State(state): State<AppState>, actor: Actor) -> Answer {
    actor.require(Role::Administrator)?;
    let text = register::export(&state.db, &state.key, &actor.audit()).await?;
    to_json(json!({ "toml": text }))
}
