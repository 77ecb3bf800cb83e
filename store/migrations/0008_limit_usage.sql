-- 0008: the rolling limits' usage, by minute.
--
-- A hold used to be checked against a rolling limit by counting, row by row, every hold of the
-- client (or of the client and beneficiary) in the limit's window, in the commit that takes it:
-- its cost grew with the client's volume (13 ms a commit at 24,000 holds in a day). This
-- projection keeps, per client (beneficiary '') and per client and beneficiary, the holds taken
-- in each minute (by locked_at's first 16 characters, YYYY-MM-DDTHH:MM) that are still spending,
-- and their USD. A window's usage is then its minutes after the first, summed, plus the holds of
-- its first minute counted exactly from `transactions` (store/view.py): the same figure, read in
-- time that grows with the window's length in minutes, not with the client's volume.
--
-- Rows are kept when they fall to zero (a hold taken and released): a rebuild from the journal
-- yields the same rows, which is what `verify` checks. No CHECK on the counts: a release is
-- written as an upsert of a negative delta.
CREATE TABLE limit_usage (
    client_id   TEXT    NOT NULL,
    beneficiary TEXT    NOT NULL,
    minute      TEXT    NOT NULL,
    holds       INTEGER NOT NULL,
    usd         INTEGER NOT NULL,
    PRIMARY KEY (client_id, beneficiary, minute)
) STRICT, WITHOUT ROWID;

INSERT INTO limit_usage (client_id, beneficiary, minute, holds, usd)
SELECT client_id, '', substr(locked_at, 1, 16),
       sum(status IN ('CONFIRMED', 'FIAT_SETTLED', 'FUNDS_LOCKED', 'RECONCILED', 'SENT_ON_CHAIN')),
       coalesce(sum(CASE WHEN status IN ('CONFIRMED', 'FIAT_SETTLED', 'FUNDS_LOCKED', 'RECONCILED', 'SENT_ON_CHAIN') THEN policy_usd END), 0)
FROM transactions WHERE locked_at IS NOT NULL
GROUP BY client_id, substr(locked_at, 1, 16);

INSERT INTO limit_usage (client_id, beneficiary, minute, holds, usd)
SELECT client_id, beneficiary, substr(locked_at, 1, 16),
       sum(status IN ('CONFIRMED', 'FIAT_SETTLED', 'FUNDS_LOCKED', 'RECONCILED', 'SENT_ON_CHAIN')),
       coalesce(sum(CASE WHEN status IN ('CONFIRMED', 'FIAT_SETTLED', 'FUNDS_LOCKED', 'RECONCILED', 'SENT_ON_CHAIN') THEN policy_usd END), 0)
FROM transactions WHERE locked_at IS NOT NULL AND beneficiary IS NOT NULL
GROUP BY client_id, beneficiary, substr(locked_at, 1, 16);
