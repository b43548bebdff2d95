//! Logging in: a login name (username or NIP) and a password, checked against the account;
//! every attempt audited (`login.ok`, `login.fail`). Unknown logins and wrong passwords get the
//! same answer and take the same time.

use serde::Deserialize;

use super::{accounts, password, session};
use crate::api::{ApiError, AppState};
use crate::audit::{self, AuditActor, Entry};

/// The login form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    /// Username or NIP.
    pub login: String,
    /// Password.
    pub password: String,
    /// Current TOTP code, for accounts that need one.
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
}

/// The one answer to a wrong login name or password.
const REFUSED: &str = "wrong login name or password";

/// Checks `form` and opens a session.
pub async fn attempt(
    state: &AppState,
    form: &LoginForm,
    client_addr: &str,
    user_agent: &str,
) -> Result<LoggedIn, ApiError> {
    let login = pintu_core::text::bounded(form.login.trim(), 64);
    let Some(creds) = accounts::credentials(&state.db, &login)
        .await
        .map_err(account_error)?
    else {
        password::verify_nothing(&form.password);
        audit_fail(state, &login, "unknown login", client_addr).await?;
        return Err(ApiError::LoginRefused(REFUSED.into()));
    };
    if !password::verify(&form.password, &creds.password_hash) {
        audit_fail(state, &login, "wrong password", client_addr).await?;
        return Err(ApiError::LoginRefused(REFUSED.into()));
    }
    if creds.disabled {
        audit_fail(state, &login, "account disabled", client_addr).await?;
        return Err(ApiError::LoginRefused(
            "this account is disabled; ask an administrator".into(),
        ));
    }
    let (token, csrf_token) = session::open(
        &state.db,
        &creds.id,
        state.settings.security.session_lifetime,
        client_addr,
        user_agent,
    )
    .await?;
    let account = accounts::get(&state.db, &creds.id)
        .await
        .map_err(account_error)?;
    audit::record_alone(
        &state.db,
        &state.key,
        &AuditActor {
            id: account.id.clone(),
            name: account.username.clone(),
        },
        Entry::new("login.ok", format!("account:{}", account.id))
            .after(serde_json::json!({ "client": client_addr })),
    )
    .await?;
    Ok(LoggedIn {
        account,
        token,
        csrf_token,
    })
}

async fn audit_fail(
    state: &AppState,
    login: &str,
    why: &str,
    client_addr: &str,
) -> Result<(), ApiError> {
    audit::record_alone(
        &state.db,
        &state.key,
        &AuditActor::system(),
        Entry::new("login.fail", format!("login:{login}"))
            .after(serde_json::json!({ "why": why, "client": client_addr })),
    )
    .await?;
    Ok(())
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
        accounts::AccountError::Db(e) => ApiError::Db(e),
    }
}
