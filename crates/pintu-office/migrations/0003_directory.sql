-- The office's data of the site: what the TOML register held (`docs/register.md`), one row per
-- item, in the register's order (`position`, so a list built from here has its entries in the
-- same order as one built from the file). Rooms, doors, holders, their cards, the visitor-badge
-- pool, visits and the record of revoked cards. `docs/office-data.md` describes every table.
-- Raw card UIDs are stored only sealed with the service key (`uid_enc`); what the doors use is
-- the keyed hash (`card_hash`, made with the site's card key).

-- The register's site line: one row (id = 1) once a register was imported.
CREATE TABLE site_register (
    id BIGINT PRIMARY KEY,
    site TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    -- The card key file as the register named it (kept for the export).
    card_key_file TEXT NOT NULL,
    -- As written (`30days`).
    list_valid_for TEXT NOT NULL,
    -- The last list version signed.
    list_version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE rooms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE doors (
    -- The door id the doors use (`door_id` in pintu.toml, topic level in MQTT).
    id TEXT PRIMARY KEY,
    room_id TEXT REFERENCES rooms (id),
    name TEXT NOT NULL,
    -- Order in the list's `doors`.
    position BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE holders (
    id TEXT PRIMARY KEY,
    -- The register's holder id (stable, used in lists and events).
    holder_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    nip TEXT,
    unit TEXT NOT NULL,
    -- `staff`, `escort` or `visitor` (the list's role).
    kind TEXT NOT NULL,
    -- KTP: only its type and last four digits (never the number, never a scan).
    ktp_type TEXT,
    ktp_last4 TEXT,
    -- JSON array of door ids; NULL is every door of the list.
    doors_json TEXT,
    -- JSON array of weekly windows (the register's `schedule`); `[]` is at any time.
    schedule_json TEXT NOT NULL,
    -- Validity as written in the register (`2027-01-01`, site-local or RFC 3339) and resolved.
    valid_from TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    valid_from_ms BIGINT NOT NULL,
    valid_until_ms BIGINT NOT NULL,
    request_ref TEXT NOT NULL,
    approver TEXT NOT NULL,
    position BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX holders_name ON holders (name);
CREATE INDEX holders_position ON holders (position);

-- Cards in service: a holder's cards and the badges of the visitor-badge pool.
CREATE TABLE cards (
    id TEXT PRIMARY KEY,
    -- The holder; NULL for a pool badge.
    holder_id TEXT REFERENCES holders (id),
    -- The badge's printed label (`VB-01`) for a pool badge, unique; NULL for a holder's card.
    badge_label TEXT UNIQUE,
    -- The card's id as the doors hash it (HMAC with the site card key, hex): unique.
    card_hash TEXT NOT NULL UNIQUE,
    -- The raw UID, sealed with the service key (context `card-uid`).
    uid_enc TEXT NOT NULL,
    -- `holder` or `badge`.
    kind TEXT NOT NULL,
    -- Order among the holder's cards, or in the badge pool.
    position BIGINT NOT NULL,
    enrolled_at_ms BIGINT NOT NULL
);
CREATE INDEX cards_holder ON cards (holder_id);

-- Approved visits (open and ended), bound to a badge of the pool.
CREATE TABLE visits (
    -- The visit id (`V-2026-0042`).
    id TEXT PRIMARY KEY,
    visitor TEXT NOT NULL,
    host TEXT NOT NULL,
    escort TEXT,
    badge TEXT NOT NULL,
    window_from TEXT NOT NULL,
    window_until TEXT NOT NULL,
    request_ref TEXT NOT NULL,
    approver TEXT NOT NULL,
    ended_at TEXT,
    position BIGINT NOT NULL
);

-- Cards taken out of service, kept for the review and the report.
CREATE TABLE card_revocations (
    id TEXT PRIMARY KEY,
    holder TEXT,
    badge TEXT,
    card_hash TEXT NOT NULL,
    uid_enc TEXT NOT NULL,
    -- As written (`2026-11-24 09:00`, site-local).
    revoked_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    request_ref TEXT NOT NULL,
    by_name TEXT NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX card_revocations_hash ON card_revocations (card_hash);
