-- Approvers' keys (encrypted), payloads waiting for signatures, the signatures, and what was
-- published.
CREATE TABLE approver_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    -- ed25519 public key, hex.
    public_key TEXT NOT NULL UNIQUE,
    -- The secret key sealed with a key derived from the approver's passphrase: JSON with the
    -- KDF (Argon2id) parameters, salt, AEAD nonce and ciphertext.
    sealed_secret TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    retired_at_ms BIGINT
);
CREATE INDEX approver_keys_account ON approver_keys (account_id);

-- A list or door command waiting for k signatures over exactly these bytes.
CREATE TABLE payloads (
    id TEXT PRIMARY KEY,
    -- `list`, `command`.
    kind TEXT NOT NULL,
    -- Door id for a door's list or command; NULL for the site list.
    door_id TEXT,
    -- The exact bytes to sign, base64, and their SHA-256 (hex).
    body_b64 TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    list_version BIGINT,
    created_by TEXT NOT NULL REFERENCES accounts (id),
    created_at_ms BIGINT NOT NULL,
    -- `pending`, `published`, `superseded`.
    status TEXT NOT NULL,
    published_at_ms BIGINT
);
CREATE INDEX payloads_status ON payloads (status, created_at_ms);

CREATE TABLE signatures (
    payload_id TEXT NOT NULL REFERENCES payloads (id),
    public_key TEXT NOT NULL,
    account_id TEXT REFERENCES accounts (id),
    signature TEXT NOT NULL,
    -- `service` (signed here with the passphrase) or `offline` (uploaded from pintuctl sign).
    how TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (payload_id, public_key)
);
