-- Fulfilling a request changes the directory in the same transaction as the step
-- (`src/requests/fulfil.rs`, docs/workflow.md "Fulfilment"). These columns and tables link the
-- directory's rows to the request they came from, so the request shows what its fulfilment
-- changed and whether the list carrying that change has been published. Numbered 0009: 0007
-- and 0008 are other branches' migrations.

-- The request whose fulfilment enrolled the card (NULL: enrolled through the directory API or
-- imported from a register).
ALTER TABLE cards ADD COLUMN request_id TEXT REFERENCES requests (id);
-- The visit request that reserved the badge.
ALTER TABLE visits ADD COLUMN request_id TEXT REFERENCES requests (id);
-- The removal request that revoked the card.
ALTER TABLE card_revocations ADD COLUMN request_id TEXT REFERENCES requests (id);

-- One row per fulfilled request whose fulfilment changed the directory.
CREATE TABLE request_fulfilments (
    request_id TEXT PRIMARY KEY REFERENCES requests (id),
    -- The highest list version known when the change was made (recorded at publication or
    -- prepared for signature): the list carrying the change has a version above it. NULL when
    -- the fulfilment changed nothing a list carries (server custody).
    list_version_before BIGINT,
    at_ms BIGINT NOT NULL
);

-- What a fulfilment changed, in order: the request view lists these rows.
CREATE TABLE request_changes (
    request_id TEXT NOT NULL REFERENCES requests (id),
    n BIGINT NOT NULL,
    -- `holder.create`, `card.enrol`, `card.revoke`, `visit.reserve`.
    change TEXT NOT NULL,
    -- The holder's key (register id), when a holder is involved.
    holder_key TEXT,
    -- The card's short hash (`c:1a2b3c4d`), never a raw UID, and its whole keyed hash (what
    -- the lists carry: a published list is checked for it).
    card TEXT,
    card_hash TEXT,
    -- The badge label and visit id of a reserved visit.
    badge TEXT,
    visit_id TEXT,
    PRIMARY KEY (request_id, n)
);
