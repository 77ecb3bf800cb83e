-- 0001: the journal, Series 6's four core tables, and the projections around them.
--
-- Every table is STRICT (an amount is an INTEGER or the insert fails; no float can sneak in).
-- The journal is the truth: every other table below except idempotency_keys is either a
-- projection of it (rebuilt and compared by `stablerail verify`) or, for external_events,
-- anchored in it by a sha256 of the raw payload. UPDATE and DELETE on journal, ledger_entries
-- and external_events are refused by triggers.

CREATE TABLE journal (
    seq          INTEGER PRIMARY KEY,            -- global order, 1, 2, 3, ... without gaps
    stream_id    TEXT    NOT NULL CHECK (length(stream_id) BETWEEN 1 AND 64),
    version      INTEGER NOT NULL CHECK (version >= 1),
    event_type   TEXT    NOT NULL,
    payload      TEXT    NOT NULL,               -- the event, msgspec JSON
    recorded_at  TEXT    NOT NULL,               -- RFC 3339 UTC, microseconds
    request_id   TEXT,
    prev_hash    BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash         BLOB    NOT NULL CHECK (length(hash) = 32),
    -- Optimistic concurrency is the key: a second writer of the same version fails here.
    UNIQUE (stream_id, version)
) STRICT;

-- The transfer projection: the state machine's anchor (Series 6 "transactions").
CREATE TABLE transactions (
    transaction_id      TEXT    PRIMARY KEY,
    client_id           TEXT    NOT NULL,
    idempotency_key     TEXT    NOT NULL,
    request_hash        TEXT    NOT NULL,
    status              TEXT    NOT NULL CHECK (status IN (
        'CREATED', 'QUOTED', 'FUNDS_LOCKED', 'SENT_ON_CHAIN', 'CONFIRMED',
        'FIAT_SETTLED', 'RECONCILED', 'FAILED', 'CANCELLED', 'EXPIRED')),
    route               TEXT    NOT NULL CHECK (route IN ('wallet', 'bank')),
    source_amount       INTEGER NOT NULL CHECK (source_amount > 0),
    source_currency     TEXT    NOT NULL,
    target_amount       INTEGER CHECK (target_amount > 0),
    target_currency     TEXT    NOT NULL,
    quote_id            TEXT,
    fx_rate             TEXT,
    fee                 INTEGER CHECK (fee >= 0),
    destination         TEXT    NOT NULL,
    reference           TEXT,
    approvals_required  INTEGER NOT NULL CHECK (approvals_required >= 0),
    approval_state      TEXT    NOT NULL CHECK (approval_state IN (
        'not_required', 'pending', 'approved', 'rejected')),
    on_chain_tx_hash    TEXT,
    bank_reference      TEXT,
    provider_trade_id   TEXT,
    failure_code        TEXT,
    failure_message     TEXT,
    metadata            TEXT    NOT NULL,
    version             INTEGER NOT NULL CHECK (version >= 1),
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    status_since        TEXT    NOT NULL,
    quoted_at           TEXT,
    locked_at           TEXT,
    sent_at             TEXT,
    confirmed_at        TEXT,
    settled_at          TEXT,
    reconciled_at       TEXT,
    CONSTRAINT unique_client_idempotency UNIQUE (client_id, idempotency_key)
) STRICT;
CREATE INDEX transactions_status ON transactions (status, status_since);
CREATE INDEX transactions_client_created ON transactions (client_id, created_at DESC, transaction_id DESC);
CREATE INDEX transactions_on_chain_hash ON transactions (on_chain_tx_hash)
    WHERE on_chain_tx_hash IS NOT NULL;

-- The value truth: one row per ledger line; a ledger transaction is the set of lines one journal
-- event posted (journal_seq), balanced per currency.
CREATE TABLE ledger_entries (
    journal_seq     INTEGER NOT NULL REFERENCES journal (seq),
    leg             INTEGER NOT NULL CHECK (leg >= 0),
    transaction_id  TEXT    REFERENCES transactions (transaction_id),
    account_id      TEXT    NOT NULL,
    currency        TEXT    NOT NULL,
    debit_amount    INTEGER NOT NULL DEFAULT 0 CHECK (debit_amount >= 0),
    credit_amount   INTEGER NOT NULL DEFAULT 0 CHECK (credit_amount >= 0),
    entry_type      TEXT    NOT NULL,
    effective_at    TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    PRIMARY KEY (journal_seq, leg),
    CONSTRAINT debit_xor_credit CHECK (
        (debit_amount > 0 AND credit_amount = 0) OR (debit_amount = 0 AND credit_amount > 0))
) STRICT, WITHOUT ROWID;
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, currency, effective_at);
CREATE INDEX ledger_entries_effective_at ON ledger_entries (effective_at);

-- A cache of SUM(debit), SUM(credit) per account, written in the same transaction as the entries.
-- Balances are derived from ledger_entries; this row only makes the check-and-hold cheap, and
-- verify recomputes it from the entries.
CREATE TABLE account_balances (
    account_id  TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    debits      INTEGER NOT NULL CHECK (debits >= 0),
    credits     INTEGER NOT NULL CHECK (credits >= 0),
    PRIMARY KEY (account_id, currency)
) STRICT, WITHOUT ROWID;

-- Retry safety at the API boundary (Series 4). Not a projection: it is the record of requests.
CREATE TABLE idempotency_keys (
    client_id        TEXT    NOT NULL,
    idempotency_key  TEXT    NOT NULL,
    request_hash     TEXT    NOT NULL,
    transaction_id   TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('IN_PROGRESS', 'COMPLETED', 'FAILED')),
    response_status  INTEGER,
    response_body    BLOB,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    expires_at       TEXT    NOT NULL,
    PRIMARY KEY (client_id, idempotency_key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_keys_status ON idempotency_keys (status);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Evidence from external systems, raw and normalized (Series 6, 8). Matching results live in their
-- own table (reconciliation), so this one stays append-only.
CREATE TABLE external_events (
    event_id         TEXT    PRIMARY KEY,
    journal_seq      INTEGER NOT NULL UNIQUE REFERENCES journal (seq),
    transaction_id   TEXT,
    provider         TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    external_ref     TEXT    NOT NULL,
    occurred_at      TEXT    NOT NULL,
    received_at      TEXT    NOT NULL,
    normalized_data  TEXT    NOT NULL,
    raw_payload      BLOB    NOT NULL,
    raw_sha256       TEXT    NOT NULL,
    CONSTRAINT unique_provider_event UNIQUE (provider, external_ref, event_type)
) STRICT;
CREATE INDEX external_events_transaction ON external_events (transaction_id);
CREATE INDEX external_events_occurred ON external_events (occurred_at);

-- Quotes: price commitments with a TTL, issued to a client and captured by at most one transfer.
CREATE TABLE quotes (
    quote_id         TEXT    PRIMARY KEY,
    client_id        TEXT,
    provider         TEXT    NOT NULL,
    source_currency  TEXT    NOT NULL,
    target_currency  TEXT    NOT NULL,
    source_amount    INTEGER NOT NULL CHECK (source_amount > 0),
    fee              INTEGER NOT NULL CHECK (fee >= 0),
    rate             TEXT    NOT NULL,
    target_amount    INTEGER NOT NULL CHECK (target_amount > 0),
    rail_currency    TEXT    NOT NULL,
    rail_amount      INTEGER NOT NULL CHECK (rail_amount > 0),
    payout_address   TEXT,
    issued_at        TEXT    NOT NULL,
    expires_at       TEXT    NOT NULL,
    transaction_id   TEXT    REFERENCES transactions (transaction_id)
) STRICT;

-- Durable timers, projected from each transfer's state (engine.timers): a timer exists exactly
-- while its condition does.
CREATE TABLE timers (
    transaction_id  TEXT    NOT NULL REFERENCES transactions (transaction_id),
    kind            TEXT    NOT NULL,
    due_at          TEXT    NOT NULL,
    PRIMARY KEY (transaction_id, kind)
) STRICT, WITHOUT ROWID;
CREATE INDEX timers_due ON timers (due_at);

-- The webhook outbox: one row per client-visible event, written in the same transaction as the
-- journal row that caused it. The payload (the transfer as of that event) is rendered at delivery
-- from the journal up to journal_seq; delivery attempts are tracked separately by the dispatcher.
CREATE TABLE outbox (
    event_id        TEXT    PRIMARY KEY,
    journal_seq     INTEGER NOT NULL REFERENCES journal (seq),
    client_id       TEXT    NOT NULL,
    transaction_id  TEXT    REFERENCES transactions (transaction_id),
    event_type      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL
) STRICT;
CREATE INDEX outbox_client ON outbox (client_id, event_id);
CREATE INDEX outbox_journal ON outbox (journal_seq);

CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END;
CREATE TRIGGER external_events_no_update BEFORE UPDATE ON external_events
BEGIN SELECT RAISE(ABORT, 'external_events is append-only'); END;
CREATE TRIGGER external_events_no_delete BEFORE DELETE ON external_events
BEGIN SELECT RAISE(ABORT, 'external_events is append-only'); END;
