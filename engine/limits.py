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

# Approvals wait this long in CREATED before the transfer expires.
approval_ttl_us = 24 * 3600 * 1_000_000

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

# The writer keeps this many recently appended transfers' states, to evolve without re-reading.
transfer_cache_max = 10_000

# Actors (issue 3 builds on these).
mailbox_depth_max = 256

assert amount_units_max * 10**6 * 92 < 2**63
assert write_batch_max <= write_queue_depth_max
assert events_per_append_max * entries_per_event_max <= sql_params_per_statement_max
assert approval_ttl_us < idempotency_key_ttl_us
assert write_watch_tick_s < write_wait_s
