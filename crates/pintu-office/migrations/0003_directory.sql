-- Rooms, doors, cardholders, their cards and the visitor badge pool.
CREATE TABLE rooms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE doors (
    -- The door id the doors use (`door_id` in pintu.toml, topic level in MQTT).
    id TEXT PRIMARY KEY,
    room_id TEXT REFERENCES rooms (id),
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE holders (
    id TEXT PRIMARY KEY,
    -- The register's holder key (stable, used in lists and events).
    holder_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    nip TEXT,
    unit TEXT,
    kind TEXT NOT NULL,
    -- KTP: only its type and last four digits (never a scan by default).
    ktp_last4 TEXT,
    -- JSON: the register entry's access (doors, windows, escort role, validity).
    access_json TEXT NOT NULL,
    valid_from_ms BIGINT,
    valid_until_ms BIGINT,
    request_id TEXT,
    approved_by TEXT,
    revoked_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX holders_name ON holders (name);

CREATE TABLE cards (
    id TEXT PRIMARY KEY,
    holder_id TEXT REFERENCES holders (id),
    -- The card's id as the doors hash it (keyed hash, hex): what lists carry; unique.
    card_hash TEXT NOT NULL UNIQUE,
    -- The raw UID, encrypted with the service key (AEAD, base64): shown only to roles that
    -- need it.
    uid_enc TEXT NOT NULL,
    label TEXT,
    -- `staff`, `visitor_badge`.
    kind TEXT NOT NULL,
    enrolled_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX cards_holder ON cards (holder_id);
