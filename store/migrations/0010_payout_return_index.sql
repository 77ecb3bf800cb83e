-- 0010: a chain transaction is looked up as a provider's return of a payout for every token
-- transfer the chain indexer keeps that is not our payment (store/queries.transfer_paid_by), and
-- for every incoming one the reconciler explains. Without an index that lookup read every row of
-- external_events, so its cost grew with all the evidence ever kept. A partial index on the
-- returned transaction's hash: only payout_returned reports, which name one.
CREATE INDEX external_events_payout_return ON external_events
    (json_extract(normalized_data, '$.return_tx_hash'))
    WHERE event_type = 'payout_returned';
