-- 0007: rebalancing moves live only in the journal (rb_ streams); finding them (at start, and the
-- move a chain transaction pays) must not scan every event. A partial index: only their events.
CREATE INDEX journal_rebalance_events ON journal (event_type)
    WHERE event_type GLOB 'Rebalance*';
