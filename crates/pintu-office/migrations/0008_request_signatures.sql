-- A request's decision (approve or reject) is the approver's signature: the decision statement
-- (pintu_core::workflow::DecisionStatement, `pintu-request-decision-v1`) they signed, the
-- signature and the key, one row per decision step, written in the transaction of the step.
-- `pintu-office requests verify` rebuilds each statement from the request's rows and checks it.
CREATE TABLE request_signatures (
    request_id TEXT NOT NULL,
    -- The step (request_steps.n) that took the decision.
    n BIGINT NOT NULL,
    key_id TEXT NOT NULL REFERENCES approver_keys (id),
    -- The approver (the step's actor).
    account_id TEXT NOT NULL REFERENCES accounts (id),
    -- The site named in the statement (`[site] name` when it was signed).
    site TEXT NOT NULL,
    -- When the approver signed (Unix ms), as in the statement.
    signed_at_ms BIGINT NOT NULL,
    -- The statement's exact bytes (UTF-8 text) and the ed25519 signature over them, base64.
    statement TEXT NOT NULL,
    signature TEXT NOT NULL,
    -- `service` (signed here with the passphrase) or `offline`.
    how TEXT NOT NULL,
    PRIMARY KEY (request_id, n),
    FOREIGN KEY (request_id, n) REFERENCES request_steps (request_id, n)
);
