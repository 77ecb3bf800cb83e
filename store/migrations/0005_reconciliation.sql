-- 0005: reconciliation (Series 5). Both tables are projections of the journal, rebuilt and
-- compared by `stablerail verify`.
--
-- discrepancies: one row per case (stream dc_...), its current state. notes is a JSON array of
-- {at, by, text}; proposal the pending correcting resolution (JSON) or NULL; correction the
-- entries the resolution posted (JSON array).
CREATE TABLE discrepancies (
    discrepancy_id    TEXT    PRIMARY KEY,
    journal_seq       INTEGER NOT NULL REFERENCES journal (seq),
    case_key          TEXT    NOT NULL,
    transaction_id    TEXT,
    discrepancy_type  TEXT    NOT NULL CHECK (discrepancy_type IN (
        'missing_evidence', 'external_only', 'amount_mismatch', 'fee_mismatch', 'fx_mismatch',
        'duplicate_external_event', 'unconfirmed_match', 'balance_drift')),
    severity          TEXT    NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    confidence        INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    source            TEXT    NOT NULL,
    evidence_ids      TEXT    NOT NULL,
    expected_value    TEXT    NOT NULL,
    actual_value      TEXT    NOT NULL,
    sla_deadline      TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN (
        'OPEN', 'INVESTIGATING', 'RESOLVED', 'FALSE_POSITIVE', 'WRITTEN_OFF')),
    owner             TEXT,
    notes             TEXT    NOT NULL DEFAULT '[]',
    proposal          TEXT,
    resolution        TEXT,
    resolution_notes  TEXT,
    resolved_by       TEXT,
    approved_by       TEXT,
    correction        TEXT    NOT NULL DEFAULT '[]',
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    resolved_at       TEXT,
    version           INTEGER NOT NULL CHECK (version >= 1)
) STRICT;
CREATE INDEX discrepancies_status ON discrepancies (status, created_at);
CREATE INDEX discrepancies_type ON discrepancies (discrepancy_type, created_at);
CREATE INDEX discrepancies_transaction ON discrepancies (transaction_id);
CREATE INDEX discrepancies_case ON discrepancies (case_key);
CREATE INDEX discrepancies_created ON discrepancies (created_at, discrepancy_id);

-- evidence_matches: which evidence a RECONCILED transfer was reconciled on (Reconciled.evidence).
-- Evidence not named here is unmatched (the reconciliation summary counts both).
CREATE TABLE evidence_matches (
    evidence_id     TEXT    NOT NULL,
    transaction_id  TEXT    NOT NULL,
    journal_seq     INTEGER NOT NULL REFERENCES journal (seq),
    PRIMARY KEY (evidence_id, transaction_id)
) STRICT, WITHOUT ROWID;
