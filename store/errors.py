"""The store's exceptions. Expected outcomes (a version conflict, insufficient funds, a reused
idempotency key) are not exceptions: they come back as `Rejected` values with a Result code."""

from __future__ import annotations


class StoreError(Exception):
    """Base class."""


class StoreOpenError(StoreError):
    """The data dir is missing, foreign, corrupt or from a newer stablerail: a clear message for
    the operator, never a traceback."""


class StoreUnavailable(StoreError):
    """SQLite failed to write (disk full, I/O error) or the store is closing. Nothing from the
    failed batch was committed; the caller may retry once the store is healthy."""


class InvariantViolation(StoreError):
    """An append broke an invariant the engine should have kept (an illegal transition, an
    unbalanced entry set). A bug: the appender should crash and be restarted from the journal."""
