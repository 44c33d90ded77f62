"""Errors raised by the persistence layer.

Every backend maps its driver exceptions into this hierarchy, so callers never
see an ``aiomysql``, ``sqlite3`` or ``redis`` exception::

    PersistenceError
    ├── StoreBusy           retryable: queue full, lock contention, deadlock
    ├── StoreUnavailable    retryable: database down, connection lost, timeout
    │   └── StaleConnection a pooled connection was dead before anything ran (retried inside)
    ├── CacheUnavailable    the Redis cache is down (cache-only features)
    ├── NotFound
    ├── StoreError          the database refused a statement (constraint, data too long)
    │   └── Conflict        optimistic version or uniqueness conflict
    ├── TxnRejected         a money transaction was refused; nothing was posted
    │   ├── InsufficientFunds
    │   └── RoundConflict
    │       └── RoundChanged  written since the transaction's ``round_base``: read it again
    ├── InvalidTxn          the transaction is malformed (caller bug); ValueError
    └── StoreClosed         the store or writer was closed

``StoreBusy`` and ``StoreUnavailable`` on a money operation mean *not
acknowledged*: the outcome may be either committed or not (for example when
the connection dropped during COMMIT). Retry with the **same idempotency key**;
the retry returns the original result if the first attempt did commit.
"""

from __future__ import annotations

__all__ = [
    "CacheUnavailable",
    "Conflict",
    "InsufficientFunds",
    "StaleConnection",
    "InvalidTxn",
    "NotFound",
    "PersistenceError",
    "RoundChanged",
    "RoundConflict",
    "StoreBusy",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "TxnRejected",
]


class PersistenceError(Exception):
    """Base class of every error raised by ``persistence``."""


class StoreBusy(PersistenceError):
    """The store cannot take more work right now; retry later with the same key."""

    def __init__(self, reason: str = "busy") -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"store busy: {self.reason}"


class StoreUnavailable(PersistenceError):
    """The database is unreachable or timed out; retry later with the same key."""

    def __init__(self, reason: str = "unavailable") -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"store unavailable: {self.reason}"


class StaleConnection(StoreUnavailable):
    """A pooled connection was found dead by a transaction's first statements, before
    anything of the transaction ran: it may be run again at once on a new connection.
    Backends retry it themselves; callers only ever see :class:`StoreUnavailable`."""


class CacheUnavailable(PersistenceError):
    """The cache (Redis) is down; only cache-only features fail with this."""

    def __init__(self, reason: str = "cache down") -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"cache unavailable: {self.reason}"


class NotFound(PersistenceError):
    """The record does not exist."""


class StoreError(PersistenceError):
    """The database refused a statement (constraint violation, value too long)."""


class Conflict(StoreError):
    """A uniqueness or optimistic-version check failed."""


class TxnRejected(PersistenceError):
    """A money transaction was refused by a business rule; nothing was posted."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"txn {self.key!r} rejected: {self.reason}"


class InsufficientFunds(TxnRejected):
    """A posting would make a non-negative account go below zero."""

    def __init__(self, key: str, account: str, currency: str, balance: int, amount: int) -> None:
        super().__init__(
            key, f"insufficient funds on {account}/{currency}: balance {balance}, posting {amount}"
        )
        self.account = account
        self.currency = currency
        self.balance = balance
        self.amount = amount


class RoundConflict(TxnRejected):
    """The round record cannot be written: it is already settled or belongs to another user."""


class RoundChanged(RoundConflict):
    """The round was written after the state the transaction was computed from (``round_base``)."""


class InvalidTxn(PersistenceError, ValueError):
    """The transaction is malformed (unbalanced, empty key, bad amounts): a caller bug."""


class StoreClosed(PersistenceError):
    """The store, writer or cache was closed."""
