//! The session and the account's own settings:
//! - `POST /api/v1/session` (log in: password, and the TOTP code when the account has one),
//!   `DELETE /api/v1/session` (log out), `GET /api/v1/me`;
//! - `POST /api/v1/session/passkey` and `…/passkey/finish` (log in with password + passkey);
//! - `POST /api/v1/me/password` (own password, the current one given);
//! - `POST /api/v1/me/totp`, `POST /api/v1/me/totp/confirm` (TOTP enrolment);
//! - `GET|POST /api/v1/me/passkeys`, `POST /api/v1/me/passkeys/finish`,
//!   `DELETE /api/v1/me/passkeys/{id}` (passkeys).
//!
//! The `me` endpoints that lift a restriction take a [`LimitedActor`]; the rest an [`Actor`].

use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{ApiError, AppState, ClientAddr};
use crate::auth::login::{self, account_error, LoginForm};
use crate::auth::{accounts, admin, check_origin, cookie_name, passkey, session, totp};
use crate::auth::{Actor, LimitedActor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(log_in).delete(log_out))
        .route("/api/v1/session/passkey", post(passkey_login_start))
        .route("/api/v1/session/passkey/finish", post(passkey_login_finish))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/totp", post(totp_start))
        .route("/api/v1/me/totp/confirm", post(totp_confirm))
        .route("/api/v1/me/passkeys", get(passkeys).post(passkey_add_start))
        .route("/api/v1/me/passkeys/finish", post(passkey_add_finish))
        .route("/api/v1/me/passkeys/{id}", delete(passkey_remove))
}

fn client_of(client: Option<Extension<ClientAddr>>, headers: &HeaderMap) -> (String, String) {
    let addr = client.map(|c| c.0 .0.ip().to_string()).unwrap_or_default();
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (addr, agent)
}

/// The answer to a login: the account, the CSRF token, the restriction, and the cookie.
fn logged_in(state: &AppState, done: login::LoggedIn) -> Result<Response, ApiError> {
    let secure = if state.https { "; Secure" } else { "" };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        cookie_name(state.https),
        done.token,
        state.settings.security.session_lifetime.as_secs()
    );
    let mut response = Json(json!({
        "account": done.account,
        "csrf_token": done.csrf_token,
        "restriction": done.restriction,
    }))
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

async fn log_in(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Json(form): Json<LoginForm>,
) -> Result<Response, ApiError> {
    // A login from another site's page would log the browser into the attacker's account.
    check_origin(&headers, &state)?;
    let (addr, agent) = client_of(client, &headers);
    let done = login::attempt(&state, &form, &addr, &agent).await?;
    logged_in(&state, done)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeyLoginStart {
    login: String,
    password: String,
}

async fn passkey_login_start(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Json(form): Json<PasskeyLoginStart>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_origin(&headers, &state)?;
    let (addr, agent) = client_of(client, &headers);
    let (ceremony, options) =
        login::passkey_start(&state, &form.login, &form.password, &addr, &agent).await?;
    Ok(Json(json!({ "ceremony": ceremony, "options": options })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeyLoginFinish {
    ceremony: String,
    credential: PublicKeyCredential,
}

async fn passkey_login_finish(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Json(form): Json<PasskeyLoginFinish>,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state)?;
    let (addr, agent) = client_of(client, &headers);
    let done =
        login::passkey_finish(&state, &form.ceremony, &form.credential, &addr, &agent).await?;
    logged_in(&state, done)
}

async fn log_out(
    State(state): State<AppState>,
    LimitedActor(actor): LimitedActor,
) -> Result<Response, ApiError> {
    session::revoke(&state.db, &actor.session.token_hash).await?;
    let secure = if state.https { "; Secure" } else { "" };
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        cookie_name(state.https)
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

async fn me(
    State(state): State<AppState>,
    LimitedActor(actor): LimitedActor,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = &actor.session;
    let account = accounts::get(&state.db, &s.account_id)
        .await
        .map_err(account_error)?;
    let passkeys = passkey::count(&state.db, &s.account_id)
        .await
        .map_err(account_error)?;
    Ok(Json(json!({
        "id": s.account_id,
        "username": s.username,
        "display_name": s.display_name,
        "roles": s.roles,
        "csrf_token": s.csrf_token,
        "session_expires_at_ms": s.expires_at_ms,
        "restriction": s.restriction(),
        "totp_enabled": account.totp_enabled,
        "passkeys": passkeys,
        "passkeys_offered": login::passkeys_offered(&state),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    LimitedActor(actor): LimitedActor,
    Json(form): Json<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    admin::change_own_password(
        &state.db,
        &state.key,
        &actor.audit(),
        actor.account_id(),
        &actor.session.token_hash,
        &form.current_password,
        &form.new_password,
    )
    .await
    .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn totp_start(
    State(state): State<AppState>,
    LimitedActor(actor): LimitedActor,
) -> Result<Json<totp::Enrolment>, ApiError> {
    may_enrol(&state, &actor).await?;
    let enrolment = totp::start(
        &state.db,
        &state.key,
        &actor.audit(),
        actor.account_id(),
        &state.settings.site.name,
    )
    .await
    .map_err(account_error)?;
    Ok(Json(enrolment))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

async fn totp_confirm(
    State(state): State<AppState>,
    LimitedActor(actor): LimitedActor,
    Json(form): Json<Code>,
) -> Result<StatusCode, ApiError> {
    may_enrol(&state, &actor).await?;
    totp::confirm(
        &state.db,
        &state.key,
        &actor.audit(),
        actor.account_id(),
        &actor.session.token_hash,
        &form.code,
    )
    .await
    .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether this session may enrol a second factor: a session that must change its password
/// does that first; a session restricted for lack of a second factor may enrol only when the
/// account has none at all (else the password alone would add a factor beside the existing
/// one: log in again with it).
async fn may_enrol(state: &AppState, actor: &Actor) -> Result<(), ApiError> {
    match actor.session.restriction() {
        Some(r @ session::Restriction::ChangePassword) => Err(crate::auth::restricted(r)),
        Some(session::Restriction::EnrolSecondFactor) => {
            let account = accounts::get(&state.db, actor.account_id())
                .await
                .map_err(account_error)?;
            let passkeys = passkey::count(&state.db, actor.account_id())
                .await
                .map_err(account_error)?;
            if account.totp_enabled || passkeys > 0 {
                return Err(ApiError::Refused {
                    code: "second_factor_required",
                    message: "this account has a second factor: log out and log in with it".into(),
                });
            }
            Ok(())
        }
        None => Ok(()),
    }
}

async fn passkeys(
    State(state): State<AppState>,
    LimitedActor(actor): LimitedActor,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = passkey::list(&state.db, actor.account_id())
        .await
        .map_err(account_error)?;
    Ok(Json(json!({
        "passkeys": list,
        "offered": login::passkeys_offered(&state),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeyName {
    name: String,
}

async fn passkey_add_start(
    State(state): State<AppState>,
    LimitedActor(actor): LimitedActor,
    Json(form): Json<PasskeyName>,
) -> Result<Json<serde_json::Value>, ApiError> {
    may_enrol(&state, &actor).await?;
    let rp = login::relying_party(&state)?;
    let account = accounts::get(&state.db, actor.account_id())
        .await
        .map_err(account_error)?;
    let (ceremony, options) =
        passkey::start_registration(&state.db, &state.key, &rp, &account, &form.name)
            .await
            .map_err(account_error)?;
    Ok(Json(json!({ "ceremony": ceremony, "options": options })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeyAddFinish {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
}

async fn passkey_add_finish(
    State(state): State<AppState>,
    LimitedActor(actor): LimitedActor,
    Json(form): Json<PasskeyAddFinish>,
) -> Result<Json<passkey::PasskeyInfo>, ApiError> {
    may_enrol(&state, &actor).await?;
    let rp = login::relying_party(&state)?;
    let info = passkey::finish_registration(
        &state.db,
        &state.key,
        &actor.audit(),
        &rp,
        actor.account_id(),
        &actor.session.token_hash,
        &form.ceremony,
        &form.credential,
    )
    .await
    .map_err(account_error)?;
    Ok(Json(info))
}

async fn passkey_remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    passkey::remove(
        &state.db,
        &state.key,
        &actor.audit(),
        actor.account_id(),
        &id,
    )
    .await
    .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}
