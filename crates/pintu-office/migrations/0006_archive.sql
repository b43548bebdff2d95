-- The door-event archive (src/archive/): every event a door published, once, keyed by
-- (door, seq), and the ingest's state. Everything the ingest knows is here, none of it only in
-- memory, so several pintu-office instances on one PostgreSQL share the work.
CREATE TABLE door_events (
    door_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    -- The event's own time (the door's clock), Unix ms.
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    holder TEXT,
    card TEXT,
    -- The event's `id` (UUID text).
    event_id TEXT NOT NULL,
    -- The event exactly as the door published it (JSON text), and the SHA-256 (hex) of those
    -- bytes: the same digest again is a duplicate, another digest a conflict.
    body TEXT NOT NULL,
    digest TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (door_id, seq)
);
CREATE INDEX door_events_at ON door_events (at_ms);
CREATE INDEX door_events_door_at ON door_events (door_id, at_ms);
CREATE INDEX door_events_holder ON door_events (holder, at_ms);

-- Per door: what is archived (count, lowest and highest seq) and when it was last heard from.
CREATE TABLE ingest_doors (
    door_id TEXT PRIMARY KEY,
    events BIGINT NOT NULL,
    first_seq BIGINT NOT NULL,
    highest_seq BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);

-- The missing seq ranges of each door, kept current: a late event shrinks, splits or closes
-- its gap. A door numbers its events from 1, so missing 1..first-1 is a gap too.
CREATE TABLE ingest_gaps (
    door_id TEXT NOT NULL,
    seq_from BIGINT NOT NULL,
    seq_to BIGINT NOT NULL,
    -- Why the gap is expected, when the ingest can tell (before the first archived event; the
    -- door lost its store and resumed numbering).
    note TEXT,
    found_at_ms BIGINT NOT NULL,
    PRIMARY KEY (door_id, seq_from)
);

-- What the ingest found wrong: `conflict` (another event under an archived (door, seq): the
-- first is kept, this one is here with both digests), `session_lost` (the broker had no session
-- for an instance: events published meanwhile may never come).
CREATE TABLE ingest_problems (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    door_id TEXT,
    seq BIGINT,
    topic TEXT,
    kept_digest TEXT,
    other_digest TEXT,
    other_body TEXT,
    detail TEXT NOT NULL,
    instance TEXT NOT NULL,
    found_at_ms BIGINT NOT NULL
);
CREATE INDEX ingest_problems_found ON ingest_problems (kind, found_at_ms);

-- Messages that are not archivable events (not JSON, wrong schema, door or site not matching
-- the topic, oversize), kept for inspection: the payload as text (bytes that are not UTF-8
-- replaced) and the SHA-256 of the bytes.
CREATE TABLE ingest_rejected (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,
    digest TEXT NOT NULL,
    instance TEXT NOT NULL
);
CREATE INDEX ingest_rejected_at ON ingest_rejected (at_ms);

-- The ingest's counters since the database was created (one row): messages received, events
-- stored, duplicates ignored, conflicts, rejected messages.
CREATE TABLE ingest_counters (
    id BIGINT PRIMARY KEY,
    received BIGINT NOT NULL,
    stored BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    conflicts BIGINT NOT NULL,
    rejected BIGINT NOT NULL
);
INSERT INTO ingest_counters (id, received, stored, duplicates, conflicts, rejected)
VALUES (1, 0, 0, 0, 0, 0);

-- The ingest instances that have connected to the broker (one MQTT session each): an instance
-- seen before that finds no session on the broker may have missed events (`session_lost`).
CREATE TABLE ingest_instances (
    instance TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    first_connected_ms BIGINT NOT NULL,
    last_connected_ms BIGINT NOT NULL
);
