-- Approvals are signatures: approvers' keys (sealed), payloads waiting for k signatures, the
-- signatures, and the throttle on wrong passphrases. Portable SQL for SQLite and PostgreSQL.

-- One row per approver key. The id is the key id doors know it by (`[[trust.keys]] id`),
-- derived from the account (`budi-2026`) and never reused, so it is the primary key.
CREATE TABLE approver_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    -- ed25519 public key, standard base64 (as in a `.pub` file and a door's config).
    public_key TEXT NOT NULL UNIQUE,
    -- The secret key sealed with a key derived from the approver's passphrase: JSON with the
    -- KDF (Argon2id) parameters and salt, the AEAD (XChaCha20-Poly1305) nonce and ciphertext
    -- (docs/signing.md).
    sealed_secret TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- Set when a newer key replaced it: a retired key no longer signs.
    retired_at_ms BIGINT
);
CREATE INDEX approver_keys_account ON approver_keys (account_id, retired_at_ms);

-- A list or door command waiting for k signatures over exactly these bytes.
CREATE TABLE payloads (
    id TEXT PRIMARY KEY,
    -- `list`, `command`.
    kind TEXT NOT NULL,
    -- The site the payload names.
    site TEXT NOT NULL,
    -- Door id for a door's list or a command; NULL for the site list.
    door_id TEXT,
    -- The exact bytes to sign, base64, and their SHA-256 (hex).
    body_b64 TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    -- A list's version (NULL for a command).
    list_version BIGINT,
    -- One line saying what it is, for pages and the offline file.
    summary TEXT NOT NULL,
    -- The payload's own `expires_at` (Unix ms): past it, doors refuse it and so do we.
    expires_at_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES accounts (id),
    created_at_ms BIGINT NOT NULL,
    -- `pending`, `published`, `superseded`.
    status TEXT NOT NULL,
    published_at_ms BIGINT
);
CREATE INDEX payloads_status ON payloads (status, created_at_ms);

CREATE TABLE signatures (
    payload_id TEXT NOT NULL REFERENCES payloads (id),
    key_id TEXT NOT NULL REFERENCES approver_keys (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    -- ed25519 signature over the signing context and the payload bytes, standard base64.
    signature TEXT NOT NULL,
    -- `service` (signed here with the passphrase) or `offline` (uploaded from pintuctl sign).
    how TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (payload_id, key_id),
    -- One approver counts once, whichever of their keys signed.
    UNIQUE (payload_id, account_id)
);

-- Unlock attempts not (yet) known to be right: a row is written before the passphrase is
-- tried and removed when it was right, so the rows of the last 15 minutes are the wrong (or
-- unfinished) tries the throttle counts, on every instance sharing the database.
CREATE TABLE signing_attempts (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    at_ms BIGINT NOT NULL
);
CREATE INDEX signing_attempts_account ON signing_attempts (account_id, at_ms);
