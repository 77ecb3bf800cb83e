"""Durable truth: the hash-chained journal in SQLite (WAL, synchronous=FULL), the group-commit
writer, projections, idempotency records and queries."""
