"""Every bound the engine, store and runtime rely on, named with its unit and qualifier last.

Each queue, batch, string and amount has an upper bound here, and the asserts at the bottom state
how the bounds relate, so a change that breaks a relation fails at import, not in production.
"""

from __future__ import annotations

# Money. The largest single amount in whole units of any asset; with USDC's scale of 6 this is
# 1e17 minor units, which leaves SQLite's signed 64-bit integers (9.2e18) 92x headroom for sums.
amount_units_max = 100_000_000_000
amount_text_length_max = 40
# FX rates are fixed-point decimals with this many fractional digits ("17.25000000").
rate_decimals = 8
rate_text_length_max = 24
rate_units_max = 1_000_000 * 10**rate_decimals

# Identifiers and client-supplied text.
idempotency_key_length_max = 255
client_id_length_max = 64
user_name_length_max = 128
reference_length_max = 140
metadata_keys_max = 20
metadata_key_length_max = 40
metadata_value_length_max = 500
failure_message_length_max = 500
stream_id_length_max = 64

# Idempotency keys are kept at least this long (API.md: "kept at least 24 h"; Series 4: 24-48 h).
idempotency_key_ttl_us = 48 * 3600 * 1_000_000

# Approvals wait this long in CREATED before the transfer expires. A policy rule requires at most
# this many distinct approvers.
approval_ttl_us = 24 * 3600 * 1_000_000
approvals_required_max = 5

# Policy: a rule set holds at most this many rules and rolling limits; a rolling window spans at
# most this many hours.
policy_rules_max = 200
policy_limits_max = 50
policy_window_hours_max = 31 * 24

# Chain. A confirmation needs this many blocks on top of the one holding the transaction.
confirmations_required = 12
transaction_replacements_max = 10

# Time-in-state thresholds (Series 2 and 9): past these a transfer is "stuck" and ops are alerted.
stuck_after_us = {
    "CREATED": 15 * 60 * 1_000_000,
    "QUOTED": 2 * 60 * 1_000_000,
    "FUNDS_LOCKED": 10 * 60 * 1_000_000,
    "SENT_ON_CHAIN": 5 * 60 * 1_000_000,
    "CONFIRMED": 24 * 3600 * 1_000_000,
    "FIAT_SETTLED": 24 * 3600 * 1_000_000,
}

# Store: group commit. A batch never holds more appends than can wait in the queue.
write_queue_depth_max = 8192
write_batch_max = 1024
events_per_append_max = 16
entries_per_event_max = 16
# SQLite's default limit on host parameters is 32766; stay well inside it in IN (...) lists.
sql_params_per_statement_max = 900

# An appender waits at most this long for the writer's answer; past it the outcome is unknown
# (the append may still commit) and the appender must reload its stream before deciding again.
write_wait_s = 30
write_watch_tick_s = 1

# The store keeps this many recently read or committed transfers' states (about 5 KB each), one
# cache for its writer and its readers: the writer evolves them without re-reading, a reader
# reads only the events after them. Every transfer awaiting its confirmation, finality or
# reconciliation in a busy day wants to be in it: the reconciler reads them all each round, and
# one evicted is read whole again.
transfer_cache_max = 10_000

# Actors. A mailbox holds at most this many messages; a sender that finds it full waits at most
# `mailbox_send_wait_s` and then gets `Busy`.
mailbox_depth_max = 256
mailbox_send_wait_s = 5
# An actor with nothing to do for this long passivates (its state is the journal's).
actor_idle_s = 60
# A call to a rail: each attempt has a deadline; attempts are bounded; waits between them grow.
rail_call_timeout_s = 10
rail_attempts_max = 5
rail_retry_base_us = 200_000
rail_retry_cap_us = 30 * 1_000_000
# A crashing actor is restarted from its journal at most this many times per window; past that
# the transfer is flagged for an operator.
restart_budget_max = 5
restart_window_us = 10 * 60 * 1_000_000
restart_delay_base_us = 100_000
restart_delay_cap_us = 10 * 1_000_000
# Recovery at start re-activates non-terminal transfers in pages of this many.
recovery_page_max = 512
# A quote that expires before the funds lock is re-taken at most this many times, then expired.
requotes_max = 3
# How far a provider's fill may be from the quoted rate before it is not slippage to book as FX
# P&L but an fx_mismatch case (basis points; `[pricing.slippage]` sets it per corridor).
slippage_tolerance_bps = 50
slippage_tolerance_bps_max = 1_000
# How much more than the rail amount a payout's fill may cost the provider's balance before the
# ledger books it (the balance checks' window for a payout paid and not yet booked).
fill_cost_window_bps = 500
# Supervisors' polling, in virtual or real seconds. Settlement is polled as well as called back,
# because webhooks get lost.
timer_poll_s = 1
chain_poll_s = 2
settlement_poll_base_us = 5 * 1_000_000
settlement_poll_cap_us = 5 * 60 * 1_000_000
reconcile_retry_base_us = 5 * 1_000_000
reconcile_retry_cap_us = 10 * 60 * 1_000_000
# A supervisor's round works on this many transfers at once, so their journal appends (evidence,
# alerts) share group commits instead of each waiting for its own.
supervisor_fanout_max = 128
# Past these the supervisor lets go; the STUCK timer's re-drive hands the transfer back to it.
settlement_polls_max = 40
reconcile_attempts_max = 40
# Reconciliation (Series 5). A fuzzy lookup looks at most this many candidates in its amount range.
reconcile_fuzzy_scan_max = 64
# The chain indexer's feed: blocks read per request (a block is read once it has
# confirmations_required, the depth at which a transfer counts as confirmed).
index_blocks_max = 1_000
# When each source's report is late (after the transfer's confirmation): missing evidence after.
evidence_due_chain_us = 30 * 60 * 1_000_000
evidence_due_provider_us = 2 * 3600 * 1_000_000
evidence_due_bank_us = 3600 * 1_000_000
# How long a case may stay unresolved, by severity (Series 5: 24 h normally, 72 h for edge cases).
discrepancy_sla_us = {
    "CRITICAL": 1 * 3600 * 1_000_000,
    "HIGH": 24 * 3600 * 1_000_000,
    "MEDIUM": 72 * 3600 * 1_000_000,
    "LOW": 72 * 3600 * 1_000_000,
}
discrepancy_note_length_max = 1000
discrepancy_notes_max = 200
# An unclaimed report becomes an external-only case only after this (its transfer may lag it).
external_only_grace_us = 3600 * 1_000_000
# The pipeline's round: how often it re-reads the sources and the ledger.
reconcile_round_us = 60 * 1_000_000
# Balance-level checks (engine.balances): how often each held account is read against its holder,
# how long a drift the transfers in flight do not explain must stay before it is a case, and how
# many transfers in flight a check folds (past that the window is not known: no case is opened).
balance_check_us = 5 * 60 * 1_000_000
balance_drift_persist_us = 30 * 60 * 1_000_000
balance_in_flight_max = 20_000
# A STUCK timer re-drives the transfer's pending effects at most this often.
stuck_redrive_us = 60 * 1_000_000
# How often a requested withdrawal (engine.rebalance) is asked about, and an approved move whose
# first step failed on a passing error is tried again.
withdrawal_poll_us = 10 * 1_000_000
# A bank payout not accepted by any provider this long after its payment confirmed is asked for
# again (engine.timers' payout timer, re-fired every stuck_redrive_us): a provider that refused
# it may have a successor by now (a breaker closed, prefunding topped up).
payout_redrive_us = 2 * 60 * 1_000_000
idempotency_sweep_us = 3600 * 1_000_000
# A transaction pending this many blocks (or priced under the base fee) is replaced with a higher
# fee; a replacement bids at least 12.5% more (the common node rule is 10%).
tx_stuck_blocks = 6
fee_bump_numerator = 9
fee_bump_denominator = 8
# A confirmed transaction is watched for reorgs until it is this deep.
finality_blocks = 2 * confirmations_required
timers_per_poll_max = 512
# The timer supervisor reads the timers table when a timer it knows of falls due, and at least
# this often (engine clock): a timer another process wrote to the data dir fires this late at most.
timers_reread_us = 10_000_000

# The HTTP API (API.md): request bodies, pages, how long a create waits for its synchronous steps.
request_body_bytes_max = 64 * 1024
page_limit_max = 100
page_limit_default = 20
# The console's time-in-state chart reads at most this many open transfers (the oldest).
dashboard_open_max = 10_000
create_decided_wait_s = 10
# The audit log's head is written to the anchor file at least this often (when it moved).
audit_anchor_s = 60

# Webhooks: at most this many attempts per event and endpoint, waits doubling from the base to the
# cap with jitter (about three days in all); each attempt has a deadline; a round of the
# dispatcher sends at most this many deliveries at once.
webhook_attempts_max = 18
webhook_retry_base_us = 5 * 1_000_000
webhook_retry_cap_us = 24 * 3600 * 1_000_000
webhook_timeout_s = 10
webhook_poll_ms = 500
webhook_batch_max = 128
webhook_url_length_max = 2048
webhook_endpoints_per_client_max = 20

assert amount_units_max * 10**6 * 92 < 2**63
assert write_batch_max <= write_queue_depth_max
assert events_per_append_max * entries_per_event_max <= sql_params_per_statement_max
assert approval_ttl_us < idempotency_key_ttl_us
assert write_watch_tick_s < write_wait_s
assert rail_retry_base_us <= rail_retry_cap_us
assert finality_blocks > confirmations_required
assert fee_bump_numerator * 10 > fee_bump_denominator * 11
assert page_limit_default <= page_limit_max
assert webhook_retry_base_us <= webhook_retry_cap_us
assert webhook_batch_max <= supervisor_fanout_max
