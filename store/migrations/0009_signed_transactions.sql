-- 0009: the transactions each wallet signed, by wallet and nonce.
--
-- At start the runtime opens each treasury wallet's nonce book from the chain's nonce and the
-- journaled transactions at or above it (below it every nonce is used). It used to read every
-- signed transaction ever journaled, walking the whole journal and keeping them all in memory:
-- at 100,000 transfers stored, a second of start-up and 70 MB (bench growth). This projection
-- names each one (the journal row that holds it, its chain, sender, nonce and hash), so the start
-- reads only those at or above the wallet's nonce.
CREATE TABLE signed_transactions (
    seq          INTEGER PRIMARY KEY,
    chain        TEXT    NOT NULL,
    from_address TEXT    NOT NULL,
    nonce        INTEGER NOT NULL CHECK (nonce >= 0),
    tx_hash      TEXT    NOT NULL
) STRICT;
CREATE INDEX signed_transactions_wallet ON signed_transactions (chain, from_address, nonce);

INSERT INTO signed_transactions (seq, chain, from_address, nonce, tx_hash)
SELECT seq, json_extract(payload, '$.tx.chain'), lower(json_extract(payload, '$.tx.from_address')),
       json_extract(payload, '$.tx.nonce'), json_extract(payload, '$.tx.tx_hash')
FROM journal
WHERE event_type IN ('OnChainSubmitted', 'OnChainReplaced', 'RebalanceSubmitted',
                     'RebalanceReplaced');
