-- 0003: the control plane's policy decisions, projected onto transfers.
--
-- Every transfer created from now on records the policy rule (and rule set version) that decided
-- it, the USD-equivalent amount policy judged, and the beneficiary it pays (a normalized
-- destination key). The rolling limits count, per client and per (client, beneficiary), the
-- transfers whose funds were locked within a window and not released; the two indexes serve those
-- counts, which the writer reads inside the commit that takes the next hold.

ALTER TABLE transactions ADD COLUMN policy_rule TEXT;
ALTER TABLE transactions ADD COLUMN policy_version INTEGER;
ALTER TABLE transactions ADD COLUMN policy_usd INTEGER CHECK (policy_usd >= 0);
ALTER TABLE transactions ADD COLUMN beneficiary TEXT;
CREATE INDEX transactions_client_locked ON transactions (client_id, locked_at);
CREATE INDEX transactions_beneficiary_locked ON transactions (client_id, beneficiary, locked_at);
