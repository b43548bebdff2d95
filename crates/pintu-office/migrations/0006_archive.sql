-- The door-event archive: every event a door published, once, keyed by (door, seq).
CREATE TABLE door_events (
    door_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    holder TEXT,
    card TEXT,
    -- The event as the door published it (JSON).
    body TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (door_id, seq)
);
CREATE INDEX door_events_at ON door_events (at_ms);
CREATE INDEX door_events_holder ON door_events (holder, at_ms);

-- Per door: how far the archive has the door's sequence complete, and what is missing.
CREATE TABLE ingest_doors (
    door_id TEXT PRIMARY KEY,
    highest_seq BIGINT NOT NULL,
    contiguous_seq BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);

-- Gaps and conflicts (same (door, seq), different bytes) found by the ingest.
CREATE TABLE ingest_problems (
    id TEXT PRIMARY KEY,
    door_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq_from BIGINT NOT NULL,
    seq_to BIGINT NOT NULL,
    detail TEXT,
    found_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT
);
