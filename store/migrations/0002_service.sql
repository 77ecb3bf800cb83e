-- 0002: the service: API keys, webhook endpoints, and webhook delivery state.
--
-- None of these is a projection of the journal. API keys and endpoints hold secrets (a key's
-- sha256, an endpoint's signing secret), which never enter the journal. Delivery state is the
-- dispatcher's bookkeeping over the outbox, which the journal does project.

CREATE TABLE api_keys (
    key_id         TEXT    PRIMARY KEY,           -- ak_...
    client_id      TEXT,                          -- NULL: a staff key
    role           TEXT    NOT NULL CHECK (role IN (
        'viewer', 'initiator', 'approver', 'admin', 'operator', 'auditor')),
    user_name      TEXT    NOT NULL CHECK (length(user_name) BETWEEN 1 AND 128),
    env            TEXT    NOT NULL CHECK (env IN ('test', 'live')),
    secret_sha256  TEXT    NOT NULL CHECK (length(secret_sha256) = 64),
    created_at     TEXT    NOT NULL,
    revoked_at     TEXT,
    CONSTRAINT staff_keys_have_no_client
        CHECK ((client_id IS NULL) = (role IN ('operator', 'auditor')))
) STRICT;
CREATE INDEX api_keys_client ON api_keys (client_id, key_id);

CREATE TABLE webhook_endpoints (
    endpoint_id      TEXT    PRIMARY KEY,         -- we_...
    client_id        TEXT    NOT NULL,
    url              TEXT    NOT NULL,
    events           TEXT    NOT NULL,            -- JSON array of event types, or ["*"]
    secret           TEXT    NOT NULL,            -- whsec_...: to sign with; never shown again
    status           TEXT    NOT NULL CHECK (status IN ('enabled', 'disabled', 'deleted')),
    disabled_reason  TEXT,
    -- Events from journal rows after this one are owed to the endpoint (not those before it).
    after_seq        INTEGER NOT NULL CHECK (after_seq >= 0),
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_client ON webhook_endpoints (client_id, endpoint_id);

-- One row per (endpoint, event) owed: fanned out from the outbox by the dispatcher.
CREATE TABLE webhook_deliveries (
    endpoint_id      TEXT    NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    event_id         TEXT    NOT NULL REFERENCES outbox (event_id),
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at  TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    PRIMARY KEY (endpoint_id, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);

-- Every attempt, for the endpoint's delivery log.
CREATE TABLE webhook_attempts (
    endpoint_id   TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    attempted_at  TEXT    NOT NULL,
    http_status   INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL CHECK (duration_ms >= 0),
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    PRIMARY KEY (endpoint_id, event_id, attempt),
    FOREIGN KEY (endpoint_id, event_id) REFERENCES webhook_deliveries (endpoint_id, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_attempts_log ON webhook_attempts (endpoint_id, attempted_at DESC);

-- How far the dispatcher has fanned the outbox out (a journal seq).
CREATE TABLE webhook_fanout (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    journal_seq  INTEGER NOT NULL CHECK (journal_seq >= 0)
) STRICT;
INSERT INTO webhook_fanout (id, journal_seq) VALUES (1, 0);

CREATE TRIGGER webhook_attempts_no_update BEFORE UPDATE ON webhook_attempts
BEGIN SELECT RAISE(ABORT, 'webhook_attempts is append-only'); END;
CREATE TRIGGER webhook_attempts_no_delete BEFORE DELETE ON webhook_attempts
BEGIN SELECT RAISE(ABORT, 'webhook_attempts is append-only'); END;
