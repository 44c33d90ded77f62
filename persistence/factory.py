"""Open stores by URL: :func:`open_stores` is the one entry point for the server.

::

    stores = await open_stores("sqlite:///./var/croupier.db")            # embedded default
    stores = await open_stores("mysql://root@127.0.0.1:3306/croupier",
                               "redis://127.0.0.1:6379/0")              # production
    result = await stores.commit(spin_txn(...))        # durable when this returns
    stores.put_later(VarPut(var=...))                   # write-behind, non-money
    await stores.close()                                # drains and flushes
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import msgspec

from persistence.base import Backend
from persistence.cache import Cache, MemoryCache
from persistence.errors import CacheUnavailable, PersistenceError
from persistence.memory import MemoryBackend
from persistence.records import (
    Account,
    LeaderboardOp,
    LeaderboardRecord,
    ProfilePut,
    Txn,
    TxnResult,
    UserSnapshot,
    VarDelete,
    Variable,
    VarPut,
    VarScope,
    WriteOp,
    now_ms,
)
from persistence.sql.backend import SqlBackend
from persistence.sql.engine import SqlEngine
from persistence.url import parse_url
from persistence.writebehind import WriteBehind, WriteBehindConfig
from persistence.writer import GroupCommitWriter, WriterConfig

__all__ = ["Stores", "open_backend", "open_cache", "open_engine", "open_stores"]

log = logging.getLogger(__name__)

_account_enc = msgspec.msgpack.Encoder()
_account_dec = msgspec.msgpack.Decoder(Account)
_MAX_WRITE_THROUGH = 100_000


async def open_engine(url: str) -> SqlEngine:
    """The SQL engine for a ``sqlite://`` or ``mysql://`` URL (not connected yet for MySQL)."""
    u = parse_url(url)
    if u.scheme == "sqlite":
        from persistence.sql.sqlite import SqliteEngine

        checkpoint = u.option("checkpoint_interval", 1.0)  # 0: in the commit, SQLite's way
        engine = SqliteEngine(
            u.path,
            timeout=u.option("timeout", 5.0),
            busy_timeout_ms=u.int_option("busy_timeout_ms", 5000),
            checkpoint_interval=checkpoint if checkpoint > 0 else None,
        )
        await engine.open()
        return engine
    if u.scheme == "mysql":
        from persistence.sql.mysql import MysqlEngine

        return MysqlEngine(
            host=u.host,
            port=u.port or 3306,
            user=u.user or "root",
            password=u.password,
            db=u.database,
            pool_size=u.int_option("pool_size", 8),
            connect_timeout=u.option("connect_timeout", 2.0),
            timeout=u.option("timeout", 5.0),
            lock_wait_timeout=u.int_option("lock_wait_timeout", 5),
        )
    raise ValueError(f"{u.scheme!r} is not an SQL store URL")


async def open_backend(url: str, *, clock: Callable[[], int] = now_ms) -> Backend:
    """The backend for ``memory://``, ``sqlite://...`` or ``mysql://...``."""
    if parse_url(url).scheme == "memory":
        return MemoryBackend(clock=clock)
    return SqlBackend(await open_engine(url), clock=clock)


def open_cache(cache_url: str | None) -> Cache:
    """``None`` or ``memory://``: an in-process cache; ``redis://...``: Redis."""
    if cache_url is None:
        return MemoryCache()
    u = parse_url(cache_url)
    if u.scheme == "memory":
        return MemoryCache()
    if u.scheme in ("redis", "rediss"):
        from persistence.rediscache import RedisCache

        ours = {"prefix", "timeout", "probe_interval_s"}
        base, _, query = cache_url.partition("?")
        rest = "&".join(p for p in query.split("&") if p and p.split("=", 1)[0] not in ours)
        return RedisCache(
            base + ("?" + rest if rest else ""),
            prefix=u.options.get("prefix", "croupier:"),
            timeout=u.option("timeout", 0.25),
            probe_interval_s=u.option("probe_interval_s", 1.0),
        )
    raise ValueError(f"{u.scheme!r} is not a cache URL")


class Stores:
    """The backend's stores, the cache, and this worker's writers, behind one object.

    Attributes ``accounts``, ``wallet``, ``rounds``, ``variables``, ``leaderboards``,
    ``configs``, ``blacklist``, ``audit``, ``lotteries``, ``bonuses``, ``missions`` and
    ``referrals`` are the backend's stores (:mod:`persistence.base`).
    """

    def __init__(
        self,
        backend: Backend,
        cache: Cache,
        *,
        writer_config: WriterConfig | None = None,
        write_behind_config: WriteBehindConfig | None = None,
        view_ttl_s: float = 300.0,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.view_ttl_s = view_ttl_s
        b = backend
        self.accounts, self.wallet, self.rounds, self.variables = b.accounts, b.wallet, b.rounds, b.variables
        self.leaderboards, self.configs, self.blacklist, self.audit = (
            b.leaderboards,
            b.configs,
            b.blacklist,
            b.audit,
        )
        self.lotteries, self.bonuses, self.missions, self.referrals = (
            b.lotteries,
            b.bonuses,
            b.missions,
            b.referrals,
        )
        self.writer = GroupCommitWriter(
            b.wallet.commit_batch, b.ping, config=writer_config, clock=clock, on_commit=self._write_through
        )
        self.write_behind = WriteBehind(b.apply_writes, config=write_behind_config, on_flushed=self._flushed)
        self._wt: dict[str, bytes] = {}
        self._wt_task: asyncio.Task[None] | None = None
        self._cache_watch: asyncio.Task[None] | None = None
        self._boards: set[tuple[str, str]] = set()
        cache.on_recover(self._refill_boards)

    # -- money ------------------------------------------------------------------------

    async def commit(self, txn: Txn) -> TxnResult:
        """Commit a money transaction through the group-commit writer; durable on return.

        Raises:
            InvalidTxn, StoreBusy, StoreUnavailable, StoreClosed, TxnRejected, StoreError:
                see :mod:`persistence.writer`.
        """
        return await self.writer.commit(txn)

    # -- non-money write-behind -------------------------------------------------------

    def put_later(self, op: WriteOp) -> None:
        """Queue a coalesced non-money write (see :mod:`persistence.writebehind`)."""
        self.write_behind.put(op)

    async def load_variables(self, scope: VarScope, owner: str) -> list[Variable]:
        """An owner's persistent variables as last written: the database, with the
        write-behind changes not flushed yet laid over it (read-your-writes within this
        process, e.g. a user who logs in again a moment after logging out)."""
        stored = {v.name: v for v in await self.backend.variables.load_variables(scope, owner)}
        for op in self.write_behind.pending(("var", scope.value, owner)):
            if isinstance(op, VarPut):
                stored[op.var.name] = op.var
            elif isinstance(op, VarDelete):
                stored.pop(op.name, None)
        return [stored[name] for name in sorted(stored)]

    # -- views (cache with database fallback) -----------------------------------------

    async def balance(self, account: str, currency: str) -> int | None:
        """A balance for display: from the cache, else from the database (never fails on cache errors)."""
        key = f"bal:{account}:{currency}"
        try:
            hit = await self.cache.get(key)
            if hit is not None:
                return int(hit)
        except CacheUnavailable:
            pass
        wb = await self.backend.wallet.get_balance(account, currency)
        if wb is None:
            return None
        with contextlib.suppress(CacheUnavailable):
            await self.cache.set_many({key: str(wb.balance).encode()}, self.view_ttl_s, nx=True)
        return wb.balance

    async def account(self, user_id: str) -> Account | None:
        """An account from the cache, else from the database."""
        key = f"acct:{user_id}"
        try:
            hit = await self.cache.get(key)
            if hit is not None:
                return _account_dec.decode(hit)
        except CacheUnavailable:
            pass
        acc = await self.backend.accounts.get_account(user_id)
        if acc is not None:
            with contextlib.suppress(CacheUnavailable):
                await self.cache.set_many({key: _account_enc.encode(acc)}, self.view_ttl_s, nx=True)
        return acc

    async def update_account(self, account: Account) -> Account:
        """Update in the database, then drop the cached view."""
        stored = await self.backend.accounts.update_account(account)
        with contextlib.suppress(CacheUnavailable):
            await self.cache.delete([f"acct:{account.user_id}"])
        return stored

    async def load_user(self, user_id: str) -> UserSnapshot:
        """Account, balances, open rounds (free spins to resume) and user variables, from the database."""
        return await self.backend.load_user(user_id)

    # -- leaderboards -----------------------------------------------------------------

    async def submit_scores(
        self, records: Sequence[LeaderboardRecord], op: LeaderboardOp
    ) -> list[LeaderboardRecord]:
        """Write scores to the database (the truth), then to the cache's sorted sets (best effort)."""
        stored = await self.backend.leaderboards.submit_scores(records, op)
        by_board: dict[tuple[str, str], dict[str, int]] = {}
        for r in stored:
            by_board.setdefault((r.board_id, r.period), {})[r.owner_id] = r.score
        for (board, period), scores in by_board.items():
            self._boards.add((board, period))
            with contextlib.suppress(CacheUnavailable):
                await self.cache.zadd(f"{board}:{period}", scores)
        return stored

    async def refill_leaderboard(self, board_id: str, period: str, *, limit: int = 10_000) -> int:
        """Rebuild a board's sorted set from the database; return the number of entries."""
        self._boards.add((board_id, period))
        rows = await self.backend.leaderboards.top(board_id, period, limit=limit)
        await self.cache.zdelete(f"{board_id}:{period}")
        await self.cache.zadd(f"{board_id}:{period}", {r.owner_id: r.score for r in rows})
        return len(rows)

    async def _refill_boards(self) -> None:
        for board, period in sorted(self._boards):
            await self.refill_leaderboard(board, period)

    # -- cache write-through ------------------------------------------------------------

    def _write_through(self, results: Sequence[TxnResult]) -> None:
        if not self.cache.healthy:
            # the views are dropped when the cache recovers; make sure something probes it
            # (a cache only written through after commits would otherwise never be retried)
            if self._cache_watch is None or self._cache_watch.done():
                self._cache_watch = asyncio.get_running_loop().create_task(self._watch_cache())
            return
        for r in results:
            for b in r.balances:
                self._wt[f"bal:{b.account}:{b.currency}"] = str(b.balance).encode()
        if len(self._wt) > _MAX_WRITE_THROUGH:
            log.warning("cache write-through backlog over %d keys: dropped", _MAX_WRITE_THROUGH)
            self._wt.clear()
        if self._wt and (self._wt_task is None or self._wt_task.done()):
            self._wt_task = asyncio.get_running_loop().create_task(self._drain_write_through())

    async def _watch_cache(self) -> None:
        """Ping a down cache every probe interval until it is back (it then drops its views)."""
        interval = float(getattr(self.cache, "probe_interval_s", 1.0))
        while not self.cache.healthy:
            await asyncio.sleep(interval)
            with contextlib.suppress(PersistenceError):
                await self.cache.ping()

    async def _drain_write_through(self) -> None:
        while self._wt:
            items, self._wt = self._wt, {}
            try:
                await self.cache.set_many(items, self.view_ttl_s)
            except CacheUnavailable:
                self._wt.clear()
                return
            except PersistenceError:
                log.exception("cache write-through failed")
                return

    def _flushed(self, ops: Sequence[WriteOp]) -> None:
        keys = [f"acct:{op.user_id}" for op in ops if isinstance(op, ProfilePut)]
        if keys and self.cache.healthy:
            asyncio.get_running_loop().create_task(self._drop_views(keys))

    async def _drop_views(self, keys: list[str]) -> None:
        with contextlib.suppress(CacheUnavailable):
            await self.cache.delete(keys)

    # -- lifecycle --------------------------------------------------------------------

    async def close(self) -> None:
        """Flush write-behind, drain the writer, then close the cache and the database."""
        try:
            await self.write_behind.close()
        except PersistenceError as exc:
            log.error("write-behind: %d keys not written at shutdown: %s", self.write_behind.dirty, exc)
        await self.writer.close()
        if self._cache_watch is not None:
            self._cache_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cache_watch
        if self._wt_task is not None:
            with contextlib.suppress(Exception):
                await self._wt_task
        await self.cache.close()
        await self.backend.close()

    async def __aenter__(self) -> Stores:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def default_writer_config(url: str) -> WriterConfig:
    """The writer limits ``open_stores`` uses when none are given.

    SQLite has a single writer connection: a second batch in flight would only queue
    for it, with its commit timeout already running, so it commits one batch at a time.
    MySQL pipelines two batches (per-account order kept, see :mod:`persistence.writer`).
    """
    if url.startswith("sqlite"):
        return WriterConfig(max_inflight=1)
    return WriterConfig()


async def open_stores(
    url: str,
    cache_url: str | None = None,
    *,
    migrate: bool = True,
    writer: WriterConfig | None = None,
    write_behind: WriteBehindConfig | None = None,
    view_ttl_s: float = 300.0,
    clock: Callable[[], int] = now_ms,
) -> Stores:
    """Open the database at ``url`` (and the cache at ``cache_url``), ready to use.

    Args:
        url: ``memory://``, ``sqlite:///./var/croupier.db`` or ``mysql://user@host:3306/db``.
        cache_url: ``None``/``memory://`` (in-process) or ``redis://host:6379/0``.
        migrate: apply pending migrations now (else the database must be migrated
            already, e.g. with ``python -m persistence.migrate URL``).

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    backend = await open_backend(url, clock=clock)
    try:
        if migrate:
            await backend.migrate()
        else:
            await backend.ping()
    except BaseException:
        await backend.close()
        raise
    return Stores(
        backend,
        open_cache(cache_url),
        writer_config=writer or default_writer_config(url),
        write_behind_config=write_behind,
        view_ttl_s=view_ttl_s,
        clock=clock,
    )
