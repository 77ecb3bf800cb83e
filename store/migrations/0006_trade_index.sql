-- 0006: a provider's trade report names trades by the provider's id; finding the transfer behind
-- one must not scan every transfer.
CREATE INDEX transactions_provider_trade ON transactions (provider_trade_id)
    WHERE provider_trade_id IS NOT NULL;
