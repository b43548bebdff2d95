//! Account administration, for administrators only; every change audited with before and
//! after:
//! - `GET /api/v1/accounts?q=&role=&disabled=&after=&limit=` (search, paged by username),
//!   `POST /api/v1/accounts` (create: the first login must change the password),
//!   `GET /api/v1/accounts/{id}`;
//! - `PUT /api/v1/accounts/{id}/roles`, `POST …/disable`, `POST …/enable`, `POST …/unlock`,
//!   `POST …/password` (reset: sessions end, the next login must change it),
//!   `DELETE …/second-factor` (lost phone or key);
//! - `GET …/sessions`, `DELETE …/sessions` (all), `DELETE …/sessions/{session}`.
//!
//! An administrator cannot disable their own account nor reset their own password here (the
//! own password needs the current one: `POST /api/v1/me/password`), and no change may leave
//! the service without an enabled administrator.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};
use crate::auth::accounts::{self, NewAccount};
use crate::auth::login::account_error;
use crate::auth::{admin, passkey, session, Actor, Role};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts", get(list).post(create))
        .route("/api/v1/accounts/{id}", get(detail))
        .route("/api/v1/accounts/{id}/roles", put(set_roles))
        .route("/api/v1/accounts/{id}/disable", post(disable))
        .route("/api/v1/accounts/{id}/enable", post(enable))
        .route("/api/v1/accounts/{id}/unlock", post(unlock))
        .route("/api/v1/accounts/{id}/password", post(reset_password))
        .route(
            "/api/v1/accounts/{id}/second-factor",
            delete(reset_second_factor),
        )
        .route(
            "/api/v1/accounts/{id}/sessions",
            get(sessions).delete(revoke_all),
        )
        .route(
            "/api/v1/accounts/{id}/sessions/{session}",
            delete(revoke_one),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    after: String,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

fn parse_role(name: &str) -> Result<Role, ApiError> {
    name.parse().map_err(|_| {
        ApiError::Invalid(crate::input::FieldError::new(
            "role",
            format!(
                "unknown role {:?}; one of: {}",
                pintu_core::text::bounded(name, 40),
                crate::auth::role::ALL.map(|r| r.as_str()).join(", ")
            ),
        ))
    })
}

async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListQuery>,
) -> Result<Json<admin::Page>, ApiError> {
    actor.require(Role::Administrator)?;
    let search = admin::Search {
        text: pintu_core::text::bounded(&query.q, 100),
        role: query.role.as_deref().map(parse_role).transpose()?,
        disabled: query.disabled,
        after: pintu_core::text::bounded(&query.after, 64),
        limit: query.limit,
    };
    let page = admin::list(&state.db, &search)
        .await
        .map_err(account_error)?;
    Ok(Json(page))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountForm {
    username: String,
    #[serde(default)]
    nip: Option<String>,
    display_name: String,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

fn parse_roles(names: &[String]) -> Result<BTreeSet<Role>, ApiError> {
    names.iter().map(|n| parse_role(n)).collect()
}

async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Json(form): Json<NewAccountForm>,
) -> Result<(StatusCode, Json<accounts::Account>), ApiError> {
    actor.require(Role::Administrator)?;
    let roles = parse_roles(&form.roles)?;
    let account = accounts::create_with(
        &state.db,
        &state.key,
        &actor.audit(),
        NewAccount {
            username: form.username,
            nip: form.nip,
            display_name: form.display_name,
            password: form.password,
            roles,
        },
        true,
    )
    .await
    .map_err(account_error)?;
    Ok((StatusCode::CREATED, Json(account)))
}

async fn detail(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require(Role::Administrator)?;
    let account = accounts::get(&state.db, &id).await.map_err(account_error)?;
    let passkeys = passkey::list(&state.db, &id).await.map_err(account_error)?;
    Ok(Json(json!({ "account": account, "passkeys": passkeys })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesForm {
    roles: Vec<String>,
}

async fn set_roles(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(form): Json<RolesForm>,
) -> Result<Json<accounts::Account>, ApiError> {
    actor.require(Role::Administrator)?;
    let roles = parse_roles(&form.roles)?;
    let account = admin::set_roles(&state.db, &state.key, &actor.audit(), &id, roles)
        .await
        .map_err(account_error)?;
    Ok(Json(account))
}

/// Refuses an administrator's action on their own account where it has its own path.
fn not_own(actor: &Actor, id: &str, what: &str) -> Result<(), ApiError> {
    if actor.account_id() == id {
        return Err(ApiError::Refused {
            code: "own_account",
            message: format!("you cannot {what} your own account here"),
        });
    }
    Ok(())
}

async fn disable(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    actor.require(Role::Administrator)?;
    not_own(&actor, &id, "disable")?;
    accounts::set_disabled(&state.db, &state.key, &actor.audit(), &id, true)
        .await
        .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enable(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    actor.require(Role::Administrator)?;
    accounts::set_disabled(&state.db, &state.key, &actor.audit(), &id, false)
        .await
        .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unlock(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    actor.require(Role::Administrator)?;
    admin::unlock(&state.db, &state.key, &actor.audit(), &id)
        .await
        .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordForm {
    password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(form): Json<PasswordForm>,
) -> Result<StatusCode, ApiError> {
    actor.require(Role::Administrator)?;
    not_own(&actor, &id, "reset the password of")?;
    admin::reset_password(&state.db, &state.key, &actor.audit(), &id, &form.password)
        .await
        .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset_second_factor(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    actor.require(Role::Administrator)?;
    admin::reset_second_factor(&state.db, &state.key, &actor.audit(), &id)
        .await
        .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sessions(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require(Role::Administrator)?;
    accounts::get(&state.db, &id).await.map_err(account_error)?;
    let list = session::list_of(&state.db, &id, state.settings.security.session_idle).await?;
    Ok(Json(json!({ "sessions": list })))
}

async fn revoke_all(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require(Role::Administrator)?;
    let ended = admin::revoke_sessions(&state.db, &state.key, &actor.audit(), &id, None)
        .await
        .map_err(account_error)?;
    Ok(Json(json!({ "ended": ended })))
}

async fn revoke_one(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, session_id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require(Role::Administrator)?;
    let ended = admin::revoke_sessions(
        &state.db,
        &state.key,
        &actor.audit(),
        &id,
        Some(&session_id),
    )
    .await
    .map_err(account_error)?;
    Ok(Json(json!({ "ended": ended })))
}
