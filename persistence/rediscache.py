"""Redis cache through ``redis.asyncio`` (URL ``redis://host:6379/0?prefix=croupier:``).

Every call has a short socket timeout and no driver retries, so a dead Redis costs
one timeout, after which the cache is marked down and calls fail at once with
:class:`~persistence.errors.CacheUnavailable`. Every ``probe_interval_s`` one call
tries a ``PING``; when it answers, every key under the prefix is dropped (views
may have missed write-throughs while it was down), the cache is marked healthy
and the ``on_recover`` hooks run (refill leaderboards from the database).

All keys live under ``prefix``, so several deployments (or test runs) can share one
Redis database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from persistence.cache import RecoverHook
from persistence.errors import CacheUnavailable, StoreClosed

__all__ = ["RedisCache"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_DOWN_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
    asyncio.TimeoutError,
)


class RedisCache:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "croupier:",
        timeout: float = 0.25,
        probe_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.timeout = timeout
        self.probe_interval_s = probe_interval_s
        self._clock = clock
        self._r: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._healthy = True
        self._reason = ""
        self._last_probe = 0.0
        self._recovering = asyncio.Lock()
        self._hooks: list[RecoverHook] = []
        self._closed = False
        #: times Redis came back (views dropped, hooks run)
        self.recoveries = 0
        #: calls that failed on Redis (timeout, connection), marking it down
        self.errors = 0
        #: calls refused at once while Redis was known down (callers fell back or failed)
        self.refused = 0

    @property
    def healthy(self) -> bool:
        return self._healthy

    def on_recover(self, hook: RecoverHook) -> None:
        self._hooks.append(hook)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _zk(self, board: str) -> str:
        return self.prefix + "lb:" + board

    def _mark_down(self, exc: BaseException) -> CacheUnavailable:
        self.errors += 1
        if self._healthy:
            log.warning("redis cache down: %s", exc)
        self._healthy = False
        self._reason = f"redis: {type(exc).__name__}: {exc}"
        self._last_probe = self._clock()
        return CacheUnavailable(self._reason)

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        if self._closed:
            raise StoreClosed("cache is closed")
        if not self._healthy:
            await self._try_recover()
        try:
            async with asyncio.timeout(self.timeout * 4):
                return await fn()
        except _DOWN_ERRORS as exc:
            raise self._mark_down(exc) from exc

    async def _try_recover(self) -> None:
        if self._recovering.locked() or self._clock() - self._last_probe < self.probe_interval_s:
            self.refused += 1
            raise CacheUnavailable(self._reason)
        async with self._recovering:
            self._last_probe = self._clock()
            try:
                async with asyncio.timeout(self.timeout * 4):
                    await self._r.ping()
                    dropped = await self._invalidate()
            except _DOWN_ERRORS as exc:
                raise self._mark_down(exc) from exc
            self._healthy = True
            self.recoveries += 1
            log.warning("redis cache back; dropped %d stale keys", dropped)
            for hook in self._hooks:
                try:
                    await hook()
                except Exception:
                    log.exception("cache recovery hook failed")

    async def ping(self) -> None:
        async def do() -> None:
            await self._r.ping()

        await self._call(do)

    async def get(self, key: str) -> bytes | None:
        async def do() -> bytes | None:
            v = await self._r.get(self._k(key))
            return v.encode() if isinstance(v, str) else v

        return await self._call(do)

    async def set_many(self, items: Mapping[str, bytes], ttl_s: float, *, nx: bool = False) -> None:
        if not items:
            return
        ms = max(1, int(ttl_s * 1000))

        async def do() -> None:
            async with self._r.pipeline(transaction=False) as p:
                for k, v in items.items():
                    p.set(self._k(k), v, px=ms, nx=nx)
                await p.execute()

        await self._call(do)

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return

        async def do() -> None:
            await self._r.unlink(*[self._k(k) for k in keys])

        await self._call(do)

    async def zadd(self, board: str, scores: Mapping[str, int], *, ttl_s: float | None = None) -> None:
        if not scores:
            return
        key = self._zk(board)

        async def do() -> None:
            async with self._r.pipeline(transaction=True) as p:
                p.zadd(key, {m: float(s) for m, s in scores.items()})
                if ttl_s is not None:
                    p.pexpire(key, max(1, int(ttl_s * 1000)))
                await p.execute()

        await self._call(do)

    async def ztop(self, board: str, *, limit: int = 10, offset: int = 0) -> list[tuple[str, int]]:
        async def do() -> list[tuple[str, int]]:
            rows: list[Any] = list(
                await self._r.zrevrange(self._zk(board), offset, offset + limit - 1, withscores=True)
            )
            return [(m.decode() if isinstance(m, bytes) else str(m), int(s)) for m, s in rows]

        return await self._call(do)

    async def zrank(self, board: str, member: str) -> int | None:
        async def do() -> int | None:
            r: Any = await self._r.zrevrank(self._zk(board), member)
            return None if r is None else int(r) + 1

        return await self._call(do)

    async def zdelete(self, board: str) -> None:
        async def do() -> None:
            await self._r.unlink(self._zk(board))

        await self._call(do)

    async def _invalidate(self) -> int:
        n = 0
        batch: list[bytes | str] = []
        async for key in self._r.scan_iter(match=self.prefix.replace("*", "\\*") + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                n += int(await self._r.unlink(*batch))
                batch.clear()
        if batch:
            n += int(await self._r.unlink(*batch))
        return n

    async def invalidate_all(self) -> int:
        return await self._call(self._invalidate)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._r.aclose()
