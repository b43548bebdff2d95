-- The audit trail: append-only, one row per change, approval, signature, login and export.
-- Each row's mac is HMAC-SHA256 (keyed by the service's secret) over the row and the previous
-- row's mac, so an edited, inserted or deleted row breaks the chain (`pintu-office audit verify`).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    -- Account id, or `system`, or `cli:<user>` for the service's own commands.
    actor TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    prev_mac TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);

-- The newest (seq, mac), kept apart so that deleting the newest rows is detected too.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    mac TEXT NOT NULL
);
