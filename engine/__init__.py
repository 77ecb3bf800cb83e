"""The pure core: money, ids, the transfer state machine, decide/evolve, ledger posting rules and
invariants. No I/O, no async, no clock or entropy reads (tests/test_layers.py enforces it)."""
