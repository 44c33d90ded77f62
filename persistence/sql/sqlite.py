"""SQLite engine: sqlite3 connections each owned by one dedicated thread.

The event loop never touches the database file: every statement is handed to the
connection's thread (``run_in_executor`` on a one-thread executor). Writes go
through one writer connection (``BEGIN IMMEDIATE`` ... ``COMMIT``), reads
through a second, read-only one, which WAL mode lets run beside the writer.

Durability: ``journal_mode=WAL`` and ``synchronous=FULL``, so a COMMIT has
reached the disk (fsync of the WAL) before :meth:`transaction` returns.

Checkpoints (copying the WAL back into the database file, with its fsync) run on a
third connection and thread, every ``checkpoint_interval`` seconds (``PASSIVE``: they
never wait for, nor block, the writer). By default SQLite runs them inside the COMMIT
that crosses 1,000 WAL pages, and every spin queued behind that commit waits for it;
the writer's own automatic checkpoint is kept only as a backstop, at 10,000 pages.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from persistence.errors import (
    Conflict,
    PersistenceError,
    StoreBusy,
    StoreClosed,
    StoreError,
    StoreUnavailable,
)
from persistence.sql.engine import SQLITE, Param, Row, RowCountMismatch, SqlConn, Write, placeholders

__all__ = ["SqliteEngine"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: WAL pages after which a COMMIT checkpoints by itself (the background checkpoint's backstop)
BACKSTOP_PAGES = 10_000

_UNAVAILABLE = ("disk i/o", "unable to open", "readonly", "disk is full", "not a database", "malformed")


def _map_error(exc: sqlite3.Error) -> PersistenceError:
    text = str(exc)
    low = text.lower()
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(text) if "unique" in low or "primary key" in low else StoreError(text)
    if "locked" in low or "busy" in low:
        return StoreBusy(f"sqlite: {text}")
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in low:
        return StoreClosed(text)
    if any(w in low for w in _UNAVAILABLE):
        return StoreUnavailable(f"sqlite: {text}")
    return StoreError(text)


class _Worker:
    """One thread and the sqlite3 connection it owns."""

    def __init__(self, name: str) -> None:
        self._ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.conn: sqlite3.Connection | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._ex, fn, *args)
        except sqlite3.Error as exc:
            raise _map_error(exc) from exc
        except RuntimeError as exc:  # executor shut down
            raise StoreClosed("sqlite engine is closed") from exc

    def submit(self, fn: Callable[[], object]) -> None:
        """Queue ``fn`` without waiting (used for ROLLBACK on the error path)."""
        with suppress(RuntimeError):
            self._ex.submit(fn)

    def shutdown(self) -> None:
        self._ex.shutdown(wait=True)

    async def close(self) -> None:
        """Close the connection in its thread, then stop the thread."""

        def close_conn() -> None:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

        try:
            await self.run(close_conn)
        finally:
            self.shutdown()


def _connect(path: str, busy_ms: int, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    else:
        # Switching to WAL needs a moment alone with the file; when several processes
        # open a new database at once SQLite may answer BUSY without waiting.
        for attempt in range(50):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    conn.close()
                    raise
                time.sleep(0.02)
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """One PASSIVE checkpoint: (busy, WAL frames, frames copied back)."""
    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


class _Conn:
    """:class:`SqlConn` over a worker's connection."""

    def __init__(self, worker: _Worker, timeout: float) -> None:
        self._w = worker
        self._timeout = timeout
        self.committed = False
        #: the BEGIN of a `transaction(merge_begin=True)`, run with the first statement
        self.begin: Callable[[], None] | None = None

    def _c(self) -> sqlite3.Connection:
        if self._w.conn is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._w.conn

    async def _run(self, fn: Callable[[], T]) -> T:
        begin = self.begin
        if begin is not None:  # one trip to the thread for the BEGIN and the first statement
            self.begin = None
            first = fn

            def fn() -> T:
                begin()
                return first()

        try:
            async with asyncio.timeout(self._timeout):
                return await self._w.run(fn)
        except TimeoutError as exc:
            raise StoreUnavailable(f"sqlite statement timed out after {self._timeout}s") from exc

    async def execute(self, sql: str, params: Sequence[Param] = ()) -> int:
        return await self._run(lambda: self._c().execute(sql, params).rowcount)

    async def fetchall(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        return await self._run(lambda: self._c().execute(sql, params).fetchall())

    async def insert_many(self, head: str, rows: Sequence[Sequence[Param]], tail: str = "") -> int:
        if not rows:
            return 0
        return await self.execute_many(f"{head} {placeholders(len(rows[0]))}{tail}", rows)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Param]]) -> int:
        return await self._run(lambda: self._c().executemany(sql, rows).rowcount)

    async def fetch_all(self, queries: Sequence[tuple[str, Sequence[Param]]]) -> list[list[Row]]:
        return await self._run(lambda: self.fetch_all_now(queries))

    async def write_all(
        self, writes: Sequence[Write], *, commit: bool = False, expect_last: int | None = None
    ) -> list[int]:
        return await self._run(lambda: self.write_all_now(writes, commit=commit, expect_last=expect_last))

    async def in_thread(self, fn: Callable[[_Conn], T]) -> T:
        """Run ``fn(self)`` in the connection's thread, in one trip (with a merged BEGIN):
        its ``*_now`` calls run there back to back, with no trip to the event loop and
        back between them. ``fn`` runs on that thread: it must not touch the loop."""
        return await self._run(lambda: fn(self))

    # -- the statements themselves, on the connection's thread ----------------------------

    def fetch_all_now(self, queries: Sequence[tuple[str, Sequence[Param]]]) -> list[list[Row]]:
        c = self._c()
        return [c.execute(sql, params).fetchall() for sql, params in queries]

    def write_all_now(
        self, writes: Sequence[Write], *, commit: bool = False, expect_last: int | None = None
    ) -> list[int]:
        c = self._c()
        counts = []
        for w in writes:
            if not w.rows:
                counts.append(0)
                continue
            sql = w.head if w.each else f"{w.head} {placeholders(len(w.rows[0]))}{w.tail}"
            counts.append(c.executemany(sql, w.rows).rowcount)
        if expect_last is not None and counts and counts[-1] != expect_last:
            raise RowCountMismatch(f"the last write touched {counts[-1]} rows, expected {expect_last}")
        if commit:
            c.execute("COMMIT")
            self.committed = True
        return counts


class SqliteEngine:
    """Engine over one SQLite file (``:memory:`` works too, with a single connection)."""

    dialect = SQLITE

    def __init__(
        self,
        path: str,
        *,
        timeout: float = 5.0,
        busy_timeout_ms: int = 5000,
        checkpoint_interval: float | None = 1.0,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self._busy_ms = busy_timeout_ms
        self._writer = _Worker("sqlite-writer")
        self._memory = path == ":memory:"
        self._reader = self._writer if self._memory else _Worker("sqlite-reader")
        self._write_lock = asyncio.Lock()
        self._closed = False
        #: None: SQLite's own checkpoints in the COMMIT that crosses 1,000 WAL pages
        self.checkpoint_interval = None if self._memory else checkpoint_interval
        self._checkpointer: _Worker | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self.checkpoint_stats = {"runs": 0, "frames_copied": 0, "failures": 0}

    async def open(self) -> None:
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

        background = self.checkpoint_interval is not None

        def open_writer() -> None:
            self._writer.conn = _connect(self.path, self._busy_ms, readonly=False)
            if background:
                self._writer.conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")

        await self._writer.run(open_writer)
        if self._reader is not self._writer:
            reader = self._reader

            def open_reader() -> None:
                reader.conn = _connect(self.path, self._busy_ms, readonly=True)

            await self._reader.run(open_reader)
        if self.checkpoint_interval is not None:
            cp = self._checkpointer = _Worker("sqlite-checkpoint")
            cp.conn = await cp.run(_connect, self.path, self._busy_ms, False)
            self._checkpoints = asyncio.get_running_loop().create_task(
                self._checkpoint_loop(self.checkpoint_interval), name="sqlite-checkpoint"
            )

    async def _checkpoint_loop(self, interval: float) -> None:
        stats = self.checkpoint_stats
        while True:
            await asyncio.sleep(interval)
            try:
                _busy, _frames, copied = await self.checkpoint()
            except StoreClosed:
                return
            except PersistenceError as exc:  # the next run tries again
                stats["failures"] += 1
                log.warning("sqlite checkpoint failed: %s", exc)
                continue
            stats["runs"] += 1
            stats["frames_copied"] += copied

    async def checkpoint(self) -> tuple[int, int, int]:
        """Run one background checkpoint now: (busy, WAL frames, frames copied back)."""
        self._check()
        cp = self._checkpointer
        if cp is None or cp.conn is None:
            raise StoreError("this engine has no background checkpoint")
        return await cp.run(_checkpoint, cp.conn)

    def _check(self) -> None:
        if self._closed:
            raise StoreClosed("sqlite engine is closed")

    @asynccontextmanager
    async def transaction(self, *, merge_begin: bool = False) -> AsyncIterator[SqlConn]:
        self._check()
        async with self._write_lock:
            conn = _Conn(self._writer, self.timeout)
            w = self._writer

            def begin() -> None:
                c = conn._c()
                if c.in_transaction:
                    # left open by a statement whose caller timed out while it was queued
                    # or running in the thread: that caller already failed, so undo it
                    c.execute("ROLLBACK")
                c.execute("BEGIN IMMEDIATE")

            try:
                if merge_begin:
                    conn.begin = begin
                else:
                    await conn._run(begin)
                yield conn
                if conn.begin is not None:  # no statement ran: no transaction to end
                    conn.begin = None
                elif not conn.committed:
                    await conn.execute("COMMIT")
            except BaseException:

                def rollback() -> None:
                    if w.conn is not None and w.conn.in_transaction:
                        w.conn.execute("ROLLBACK")

                w.submit(rollback)
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlConn]:
        self._check()
        if self._memory:
            async with self._write_lock:
                yield _Conn(self._writer, self.timeout)
        else:
            yield _Conn(self._reader, self.timeout)

    def migration_session(self) -> AbstractAsyncContextManager[SqlConn]:
        return self.transaction()

    async def ping(self) -> None:
        async with self.read() as c:
            await c.fetchall("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with suppress(asyncio.CancelledError):
                await self._checkpoints
        if self._checkpointer is not None:
            await self._checkpointer.close()
        async with self._write_lock:
            for w in {id(self._writer): self._writer, id(self._reader): self._reader}.values():
                await w.close()
