//! Logging in: a login name (username or NIP) and a password, checked against the account,
//! then the second factor when the account has one: a TOTP code in the same form, or a
//! passkey ceremony ([`passkey_start`], [`passkey_finish`]). Every attempt is audited
//! (`login.ok`, `login.fail`) and counted for throttling and lockout ([`throttle`]).
//!
//! Unknown logins and wrong passwords get the same answer and take the same time; a locked
//! account (or a name with as many recent failures) is "locked until …" whatever password is
//! given, so the answer never tells whether a password was right.
//!
//! An account whose roles need a second factor and that has none yet gets a session that may
//! only enrol one (see [`super::Restriction`]).

use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::throttle::{self, Outcome};
use super::{accounts, passkey, password, role, session, totp};
use crate::api::{ApiError, AppState};
use crate::audit::{self, AuditActor, Entry};
use crate::db::now_ms;

/// The login form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    /// Username or NIP.
    pub login: String,
    /// Password.
    pub password: String,
    /// Current TOTP code, for accounts that have TOTP on.
    #[serde(default)]
    pub totp: Option<String>,
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The account.
    pub account: accounts::Account,
    /// The session cookie's token.
    pub token: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// What the session may only do, if restricted.
    pub restriction: Option<session::Restriction>,
}

/// The one answer to a wrong login name or password.
const REFUSED: &str = "wrong login name or password";

/// Who is trying, from where.
struct Attempt<'a> {
    login: String,
    addr: &'a str,
    agent: &'a str,
}

/// An account whose password was right, before its second factor.
struct PasswordOk {
    creds: accounts::Credentials,
}

/// Checks throttling, the lock, the password and the account's state.
async fn check_password(
    state: &AppState,
    at: &Attempt<'_>,
    password_given: &str,
) -> Result<PasswordOk, ApiError> {
    let security = &state.settings.security;
    if let Some(retry_after_secs) = throttle::address_wait(
        &state.db,
        at.addr,
        security.address_max_failures,
        security.address_window,
    )
    .await?
    {
        return Err(ApiError::TooMany { retry_after_secs });
    }
    let creds = accounts::credentials(&state.db, &at.login)
        .await
        .map_err(account_error)?;
    let Some(creds) = creds else {
        password::verify_nothing(password_given);
        let locked = throttle::unknown_name_locked_until(
            &state.db,
            &at.login,
            security.max_failed_logins,
            security.lockout,
        )
        .await?;
        return Err(match locked {
            Some(until) => {
                fail(
                    state,
                    at,
                    Outcome::WhileLocked,
                    "locked",
                    locked_error(until),
                )
                .await
            }
            None => {
                let refusal = ApiError::LoginRefused(REFUSED.into());
                fail(state, at, Outcome::Failed, "unknown login", refusal).await
            }
        });
    };
    if let Some(until) = creds.locked_until_ms.filter(|u| *u > now_ms()) {
        password::verify_nothing(password_given);
        return Err(fail(
            state,
            at,
            Outcome::WhileLocked,
            "locked",
            locked_error(until),
        )
        .await);
    }
    if !password::verify(password_given, &creds.password_hash) {
        return Err(wrong(state, at, &creds, "wrong password", REFUSED).await);
    }
    if creds.disabled {
        let refusal =
            ApiError::LoginRefused("this account is disabled; ask an administrator".into());
        return Err(fail(state, at, Outcome::Failed, "account disabled", refusal).await);
    }
    Ok(PasswordOk { creds })
}

/// Checks `form` and opens a session.
pub async fn attempt(
    state: &AppState,
    form: &LoginForm,
    client_addr: &str,
    user_agent: &str,
) -> Result<LoggedIn, ApiError> {
    let at = Attempt {
        login: pintu_core::text::bounded(form.login.trim(), 64),
        addr: client_addr,
        agent: user_agent,
    };
    let ok = check_password(state, &at, &form.password).await?;
    let creds = &ok.creds;
    let second_factor = match (&creds.totp_secret, form.totp.as_deref()) {
        (Some(sealed), Some(code)) => {
            let mut tx = state.db.begin_write().await?;
            let accepted = totp::accept(&mut tx, &state.key, &creds.id, sealed, code)
                .await
                .map_err(account_error)?;
            tx.commit().await?;
            if !accepted {
                let message = "wrong or already used TOTP code (a code counts once; wait for the \
                               next one)";
                return Err(wrong(state, &at, creds, "wrong or reused TOTP code", message).await);
            }
            true
        }
        (Some(_), None) => return Err(second_factor_needed("the TOTP code (field totp)")),
        (None, _) => {
            let needs = creds.roles.iter().any(|r| role::needs_second_factor(*r));
            let passkeys = passkey::count(&state.db, &creds.id)
                .await
                .map_err(account_error)?;
            if needs && passkeys > 0 {
                // Not a restricted session that could enrol TOTP with the password alone.
                return Err(if passkeys_offered(state) {
                    second_factor_needed("your passkey (POST /api/v1/session/passkey)")
                } else {
                    ApiError::Refused {
                        code: "passkeys_unavailable",
                        message: "this account logs in with a passkey, which needs the \
                                  service's HTTPS address; ask an administrator"
                            .into(),
                    }
                });
            }
            false
        }
    };
    open_session(state, &at, &creds.id, second_factor).await
}

/// The passkey step's start: the password checked, a ceremony for the account's passkeys.
pub async fn passkey_start(
    state: &AppState,
    login: &str,
    password_given: &str,
    client_addr: &str,
    user_agent: &str,
) -> Result<(String, RequestChallengeResponse), ApiError> {
    let rp = relying_party(state)?;
    let at = Attempt {
        login: pintu_core::text::bounded(login.trim(), 64),
        addr: client_addr,
        agent: user_agent,
    };
    let ok = check_password(state, &at, password_given).await?;
    passkey::start_login(&state.db, &state.key, &rp, &ok.creds.id)
        .await
        .map_err(account_error)?
        .ok_or(ApiError::Refused {
            code: "no_passkey",
            message: "this account has no passkey; log in with the password (and TOTP code)".into(),
        })
}

/// The passkey step's finish: a full session when the passkey is accepted.
pub async fn passkey_finish(
    state: &AppState,
    ceremony: &str,
    credential: &PublicKeyCredential,
    client_addr: &str,
    user_agent: &str,
) -> Result<LoggedIn, ApiError> {
    let rp = relying_party(state)?;
    if let Some(retry_after_secs) = throttle::address_wait(
        &state.db,
        client_addr,
        state.settings.security.address_max_failures,
        state.settings.security.address_window,
    )
    .await?
    {
        return Err(ApiError::TooMany { retry_after_secs });
    }
    let account_id =
        match passkey::finish_login(&state.db, &state.key, &rp, ceremony, credential).await {
            Ok(id) => id,
            Err(e) => {
                let at = Attempt {
                    login: String::from("(passkey)"),
                    addr: client_addr,
                    agent: user_agent,
                };
                return Err(fail(
                    state,
                    &at,
                    Outcome::Failed,
                    "passkey refused",
                    account_error(e),
                )
                .await);
            }
        };
    let account = accounts::get(&state.db, &account_id)
        .await
        .map_err(account_error)?;
    let at = Attempt {
        login: account.username.clone(),
        addr: client_addr,
        agent: user_agent,
    };
    // The account may have been disabled or locked during the ceremony.
    if account.disabled || account.locked_until_ms.is_some_and(|u| u > now_ms()) {
        let refusal = ApiError::LoginRefused("this account is disabled or locked".into());
        return Err(fail(state, &at, Outcome::Failed, "disabled or locked", refusal).await);
    }
    open_session(state, &at, &account_id, true).await
}

/// Whether this listener offers passkeys.
pub fn passkeys_offered(state: &AppState) -> bool {
    !state.settings.server.public_origins.is_empty() && state.https
}

/// The relying party, or the refusal when passkeys are not offered.
pub fn relying_party(state: &AppState) -> Result<webauthn_rs::Webauthn, ApiError> {
    passkey::relying_party(
        state.https,
        &state.settings.server.public_origins,
        &state.settings.site.name,
    )
    .ok_or(ApiError::Refused {
        code: "passkeys_unavailable",
        message: "passkeys need HTTPS and server.public_origins with a host name".into(),
    })
}

async fn open_session(
    state: &AppState,
    at: &Attempt<'_>,
    account_id: &str,
    second_factor: bool,
) -> Result<LoggedIn, ApiError> {
    throttle::account_succeeded(&state.db, account_id).await?;
    throttle::record(&state.db, &at.login, at.addr, Outcome::Succeeded).await?;
    let (token, csrf_token) = session::open(
        &state.db,
        account_id,
        state.settings.security.session_lifetime,
        at.addr,
        at.agent,
        second_factor,
    )
    .await?;
    let account = accounts::get(&state.db, account_id)
        .await
        .map_err(account_error)?;
    let restriction =
        session::restriction_for(account.must_change_password, second_factor, &account.roles);
    audit::record_alone(
        &state.db,
        &state.key,
        &AuditActor {
            id: account.id.clone(),
            name: account.username.clone(),
        },
        Entry::new("login.ok", format!("account:{}", account.id)).after(serde_json::json!({
            "client": at.addr,
            "second_factor": second_factor,
            "restriction": restriction,
        })),
    )
    .await?;
    Ok(LoggedIn {
        account,
        token,
        csrf_token,
        restriction,
    })
}

fn second_factor_needed(what: &str) -> ApiError {
    ApiError::Refused {
        code: "second_factor_needed",
        message: format!("password accepted; this account also needs {what}"),
    }
}

fn locked_error(until_ms: i64) -> ApiError {
    let until = jiff::Timestamp::from_millisecond(until_ms)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| until_ms.to_string());
    ApiError::Refused {
        code: "account_locked",
        message: format!(
            "too many failed logins: locked until {until} (UTC); wait, or ask an administrator \
             to unlock it"
        ),
    }
}

/// A wrong password or code for an existing account: counted towards its lockout.
async fn wrong(
    state: &AppState,
    at: &Attempt<'_>,
    creds: &accounts::Credentials,
    why: &str,
    message: &str,
) -> ApiError {
    let security = &state.settings.security;
    let locked = throttle::account_failed(
        &state.db,
        &state.key,
        &creds.id,
        security.max_failed_logins,
        security.lockout,
    )
    .await;
    let refusal = match locked {
        Ok(Some(until)) => locked_error(until),
        Ok(None) => ApiError::LoginRefused(message.into()),
        Err(e) => return e.into(),
    };
    fail(state, at, Outcome::Failed, why, refusal).await
}

/// Records a refused attempt (`login_attempts` and `login.fail`) and returns `refusal`, or
/// the failure to record it.
async fn fail(
    state: &AppState,
    at: &Attempt<'_>,
    outcome: Outcome,
    why: &str,
    refusal: ApiError,
) -> ApiError {
    if let Err(e) = throttle::record(&state.db, &at.login, at.addr, outcome).await {
        return e.into();
    }
    let recorded = audit::record_alone(
        &state.db,
        &state.key,
        &AuditActor::system(),
        Entry::new("login.fail", format!("login:{}", at.login))
            .after(serde_json::json!({ "why": why, "client": at.addr })),
    )
    .await;
    match recorded {
        Ok(_) => refusal,
        Err(e) => e.into(),
    }
}

/// An account error as the API shows it.
pub fn account_error(e: accounts::AccountError) -> ApiError {
    match e {
        accounts::AccountError::Invalid { field, message } => {
            ApiError::Invalid(crate::input::FieldError::new(field, message))
        }
        accounts::AccountError::Taken(what) => ApiError::Conflict {
            code: "taken",
            message: format!("{what} is already used by another account"),
        },
        accounts::AccountError::NotFound => ApiError::NotFound("account".into()),
        accounts::AccountError::LastAdministrator => ApiError::Conflict {
            code: "last_administrator",
            message: accounts::AccountError::LastAdministrator.to_string(),
        },
        accounts::AccountError::Refused { code, message } => match code {
            "internal" => ApiError::Internal(message),
            "not_found" => ApiError::NotFound("session".into()),
            "totp_enabled" | "totp_not_started" => ApiError::Conflict { code, message },
            _ => ApiError::Refused { code, message },
        },
        accounts::AccountError::Db(e) => ApiError::Db(e),
    }
}
