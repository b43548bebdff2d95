-- Access requests (staff access, visit, removal, server custody) and every step taken on them.
-- The pure workflow (pintu_core::workflow) decides each step; these rows are its state.
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    -- Human reference, e.g. `REQ-2026-0042`.
    reference TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    stage TEXT NOT NULL,
    requester_id TEXT NOT NULL REFERENCES accounts (id),
    unit TEXT NOT NULL,
    -- The person the request is about (may differ from the requester).
    subject_name TEXT NOT NULL,
    subject_nip TEXT,
    subject_holder_id TEXT REFERENCES holders (id),
    reason TEXT NOT NULL,
    -- JSON array of door ids asked for.
    doors_json TEXT NOT NULL,
    window_from_ms BIGINT,
    window_until_ms BIGINT,
    -- An attached letter, by name and digest (the file itself is kept outside the database).
    letter_name TEXT,
    letter_sha256 TEXT,
    entered_stage_at_ms BIGINT NOT NULL,
    -- When the awaited step is due (the SLA clock); NULL once closed.
    due_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX requests_stage ON requests (stage, due_at_ms);
CREATE INDEX requests_due ON requests (due_at_ms);
CREATE INDEX requests_requester ON requests (requester_id, created_at_ms);

CREATE TABLE request_steps (
    request_id TEXT NOT NULL REFERENCES requests (id),
    n BIGINT NOT NULL,
    -- The action's kind, and the whole action (with its note or reason) as the workflow's JSON.
    action TEXT NOT NULL,
    action_json TEXT NOT NULL,
    actor_id TEXT NOT NULL REFERENCES accounts (id),
    role TEXT NOT NULL,
    from_stage TEXT NOT NULL,
    to_stage TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (request_id, n)
);
