"""Hot-data cache: key/value views with TTLs and leaderboard sorted sets.

The cache is never the authority. Balance decisions are made by the database
inside the money transaction (see :mod:`persistence.ledger`); balances and
profiles in the cache are *views* for display, written through after each commit
and expiring after their TTL. When the cache is down:

- views fall back to the database (:class:`persistence.factory.Stores` does this);
- cache-only features (leaderboard sorted sets read through :meth:`Cache.ztop` /
  :meth:`Cache.zrank`) raise :class:`~persistence.errors.CacheUnavailable`;
- on recovery every view is dropped (it may have missed write-throughs) and the
  ``on_recover`` hooks run, e.g. to refill leaderboard sets from the database.

Implementations: :class:`MemoryCache` (one process, the embedded default) and
:class:`persistence.rediscache.RedisCache` (shared by every worker and node).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

__all__ = ["Cache", "MemoryCache", "RecoverHook"]

RecoverHook = Callable[[], Awaitable[None]]


class Cache(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def healthy(self) -> bool:
        """False while the cache is known to be down."""
        ...

    #: calls that failed on the cache server, calls refused while it was known down, and
    #: recoveries (0 for a cache that cannot fail)
    errors: int
    refused: int
    recoveries: int

    def on_recover(self, hook: RecoverHook) -> None:
        """Run ``hook`` after the cache came back (after the views were dropped)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """Raises CacheUnavailable."""
        ...

    async def set_many(self, items: Mapping[str, bytes], ttl_s: float, *, nx: bool = False) -> None:
        """Set values with a TTL; with ``nx`` only keys that are absent (read-through fill)."""
        ...

    async def delete(self, keys: Sequence[str]) -> None: ...

    async def zadd(self, board: str, scores: Mapping[str, int], *, ttl_s: float | None = None) -> None:
        """Set members' scores in a sorted set (replace)."""
        ...

    async def ztop(self, board: str, *, limit: int = 10, offset: int = 0) -> list[tuple[str, int]]:
        """Best first; ties in reverse member order (as Redis ``ZREVRANGE``)."""
        ...

    async def zrank(self, board: str, member: str) -> int | None:
        """1-based rank, best first."""
        ...

    async def zdelete(self, board: str) -> None: ...

    async def invalidate_all(self) -> int:
        """Drop every key of this cache; return how many."""
        ...

    async def ping(self) -> None:
        """Raises CacheUnavailable; after an outage a successful ping triggers recovery."""
        ...

    async def close(self) -> None: ...


class MemoryCache:
    """A dict with expiry times, for a single process (``memory://``)."""

    name = "memory"
    errors = 0
    refused = 0
    recoveries = 0

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._kv: dict[str, tuple[bytes, float]] = {}
        self._z: dict[str, dict[str, int]] = {}
        self._z_expiry: dict[str, float] = {}
        self._hooks: list[RecoverHook] = []

    @property
    def healthy(self) -> bool:
        return True

    def on_recover(self, hook: RecoverHook) -> None:
        self._hooks.append(hook)

    async def get(self, key: str) -> bytes | None:
        item = self._kv.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._kv[key]
            return None
        return item[0]

    async def set_many(self, items: Mapping[str, bytes], ttl_s: float, *, nx: bool = False) -> None:
        until = self._clock() + ttl_s
        for k, v in items.items():
            if nx and await self.get(k) is not None:
                continue
            self._kv[k] = (v, until)

    async def delete(self, keys: Sequence[str]) -> None:
        for k in keys:
            self._kv.pop(k, None)

    def _zset(self, board: str) -> dict[str, int]:
        exp = self._z_expiry.get(board)
        if exp is not None and exp <= self._clock():
            self._z.pop(board, None)
            self._z_expiry.pop(board, None)
        return self._z.get(board, {})

    async def zadd(self, board: str, scores: Mapping[str, int], *, ttl_s: float | None = None) -> None:
        z = self._zset(board)
        self._z[board] = z
        z.update(scores)
        if ttl_s is not None:
            self._z_expiry[board] = self._clock() + ttl_s

    def _ordered(self, board: str) -> list[tuple[str, int]]:
        return sorted(self._zset(board).items(), key=lambda kv: (kv[1], kv[0]), reverse=True)

    async def ztop(self, board: str, *, limit: int = 10, offset: int = 0) -> list[tuple[str, int]]:
        return self._ordered(board)[offset : offset + limit]

    async def zrank(self, board: str, member: str) -> int | None:
        for i, (m, _) in enumerate(self._ordered(board), 1):
            if m == member:
                return i
        return None

    async def zdelete(self, board: str) -> None:
        self._z.pop(board, None)
        self._z_expiry.pop(board, None)

    async def invalidate_all(self) -> int:
        n = len(self._kv) + len(self._z)
        self._kv.clear()
        self._z.clear()
        self._z_expiry.clear()
        return n

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
