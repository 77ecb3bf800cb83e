-- 0004: the audit log (Series 3): one row per command that reached the API (accepted, refused or
-- unauthorized), per admin action from the command line and per control-plane change the system
-- makes itself, hash-chained like the journal (engine/audit.py). Append-only: triggers refuse
-- UPDATE and DELETE.

CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY CHECK (seq >= 1),
    at             TEXT    NOT NULL,
    actor_id       TEXT    NOT NULL,
    actor_type     TEXT    NOT NULL CHECK (actor_type IN (
        'user', 'admin', 'system', 'service', 'anonymous')),
    action_type    TEXT    NOT NULL,
    resource_type  TEXT    NOT NULL,
    resource_id    TEXT,
    request_id     TEXT,
    outcome        TEXT    NOT NULL,
    record         TEXT    NOT NULL,            -- the canonical JSON the hash covers
    prev_hash      BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash           BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_resource ON audit_log (resource_id, seq);
CREATE INDEX audit_log_action ON audit_log (action_type, seq);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
