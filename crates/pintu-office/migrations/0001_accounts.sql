-- Accounts of the people of the procedure, their roles, and their server-side sessions.
-- Portable SQL for SQLite and PostgreSQL: TEXT ids, BIGINT integers, times in Unix milliseconds.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    -- NIP (Nomor Induk Pegawai, 18 digits) of a civil servant; login by NIP or username.
    nip TEXT UNIQUE,
    display_name TEXT NOT NULL,
    -- PHC string (Argon2id, its parameters and salt inside).
    password_hash TEXT NOT NULL,
    -- TOTP secret, encrypted with the service key (AEAD, base64); NULL until enrolled.
    totp_secret TEXT,
    totp_enabled BIGINT NOT NULL DEFAULT 0,
    -- The TOTP time step of the last code accepted: a code is accepted once (RFC 6238 5.2).
    totp_last_step BIGINT,
    disabled BIGINT NOT NULL DEFAULT 0,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    -- Set when an administrator chose the password: the next session may only change it.
    must_change_password BIGINT NOT NULL DEFAULT 0,
    language TEXT NOT NULL DEFAULT 'id',
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE account_roles (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role TEXT NOT NULL,
    PRIMARY KEY (account_id, role)
);

-- The session cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT,
    client_addr TEXT,
    user_agent TEXT,
    -- 1 when the login proved a second factor (TOTP or passkey); an account whose roles need
    -- one gets, without it, a session that may only enrol one.
    second_factor BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_account ON sessions (account_id);

-- Failed and successful logins, for throttling by address and by account name.
CREATE TABLE login_attempts (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    login TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    success BIGINT NOT NULL
);
CREATE INDEX login_attempts_addr ON login_attempts (client_addr, at_ms);
CREATE INDEX login_attempts_login ON login_attempts (login, at_ms);
CREATE INDEX login_attempts_at ON login_attempts (at_ms);

-- Passkeys (WebAuthn credentials); a passkey counts as the second factor.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    -- The credential id (base64url) the browser names at login; one account per credential.
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- webauthn-rs's Passkey (public key, counter), JSON.
    passkey_json TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_used_ms BIGINT
);
CREATE INDEX passkeys_account ON passkeys (account_id);

-- A WebAuthn ceremony in progress: its state (sealed with the service key) stays on the
-- server, so any instance can finish it; taken once (deleted) and refused after expiry.
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY,
    -- register or login.
    kind TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    -- For a registration: the name the user gave the passkey.
    name TEXT,
    state_sealed TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
