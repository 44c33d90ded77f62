"""MySQL / MariaDB engine over aiomysql, with a small reconnecting pool.

- Connections run in autocommit mode; :meth:`MysqlEngine.transaction` opens an
  explicit ``START TRANSACTION`` at READ COMMITTED, with strict SQL mode.
- Every statement and every connect has a timeout. A connection that timed out,
  was cancelled or lost its socket is discarded (never returned to the pool), and
  the idle connections are dropped too, so the next call reconnects.
- Values are inlined as escaped literals (``utf8mb4``, backslash escapes, bytes as
  hex): one multi-row INSERT per table per batch, with no per-value driver cost.
- Driver errors become :mod:`persistence.errors`: connection and timeout errors are
  ``StoreUnavailable``, deadlocks and lock waits ``StoreBusy``, duplicate keys
  ``Conflict``, other refusals ``StoreError``.

Durability depends on the server: ``innodb_flush_log_at_trx_commit=1`` (and
``sync_binlog=1`` with a binlog) make every COMMIT durable.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiomysql

from persistence.errors import (
    Conflict,
    PersistenceError,
    StaleConnection,
    StoreBusy,
    StoreClosed,
    StoreError,
    StoreUnavailable,
)
from persistence.sql.engine import (
    _MYSQL_ESCAPE,
    _MYSQL_NEEDS_ESCAPE,
    MYSQL,
    Param,
    Row,
    RowCountMismatch,
    SqlConn,
    Write,
    mysql_string,
)

__all__ = ["MysqlEngine", "literal", "render"]

_ESCAPE = _MYSQL_ESCAPE
_MAX_STATEMENT = 4 << 20  # bytes per multi-row INSERT (max_allowed_packet is 16 MiB by default)
_CLIENT_MULTI_STATEMENTS = 1 << 16
_BUSY_CODES = {1205: "lock wait timeout", 1213: "deadlock", 1040: "too many connections"}
_SESSION_SETUP = (
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
)


class _QuietCursor(aiomysql.Cursor):  # type: ignore[misc]
    """A cursor that does not fetch and re-raise server warnings as Python warnings.

    With strict SQL mode every data problem is an error; the remaining warnings are
    expected ones ("database exists" for IF NOT EXISTS, duplicates skipped by
    INSERT IGNORE), and fetching them would cost a round trip.
    """

    async def _show_warnings(self, conn: Any) -> None:
        return None


def literal(v: Param) -> str:
    """One value as a MySQL literal (the connection charset is utf8mb4)."""
    if type(v) is int:
        return str(v)
    if type(v) is str:
        return mysql_string(v)
    if type(v) is bytes:
        return "X'" + v.hex() + "'"
    if v is None:
        return "NULL"
    if type(v) is bool:
        return "1" if v else "0"
    if isinstance(v, enum.Enum):
        return literal(v.value)
    if isinstance(v, str):
        return "'" + str.translate(v, _ESCAPE) + "'"
    if isinstance(v, int):
        return str(int(v))
    raise TypeError(f"cannot store {type(v).__name__} in MySQL")


_NEEDS_ESCAPE = _MYSQL_NEEDS_ESCAPE


def _row(row: Sequence[Param], memo: dict[str, str]) -> str:
    """``(v1,v2,...)``; string literals are memoised (accounts and ids repeat within a batch).

    The hot path of a batch (about five rows per spin): ids and keys rarely need an
    escape, and one regex search is cheaper than ``str.translate`` on every string.
    """
    parts: list[str] = []
    append = parts.append
    for v in row:
        t = type(v)
        if t is int:
            append(str(v))
        elif t is str:
            lit = memo.get(v)  # type: ignore[arg-type]
            if lit is None:
                lit = memo[v] = "'" + (v.translate(_ESCAPE) if _NEEDS_ESCAPE(v) else v) + "'"  # type: ignore[index, union-attr, arg-type, operator]
            append(lit)
        else:
            append(literal(v))
    return "(" + ",".join(parts) + ")"


_split_cache: dict[str, list[str]] = {}


def render(sql: str, params: Sequence[Param]) -> str:
    """Replace each ``?`` in ``sql`` with the literal of the matching parameter."""
    if not params:
        return sql
    parts = _split_cache.get(sql)
    if parts is None:
        parts = sql.split("?")
        if len(_split_cache) < 2048:
            _split_cache[sql] = parts
    if len(parts) != len(params) + 1:
        raise ValueError(f"{len(parts) - 1} placeholders for {len(params)} parameters")
    out = [parts[0]]
    for p, tail in zip(params, parts[1:], strict=True):
        out.append(literal(p))
        out.append(tail)
    return "".join(out)


def _map_error(exc: BaseException) -> PersistenceError:
    if isinstance(exc, PersistenceError):
        return exc
    if isinstance(exc, TimeoutError):
        return StoreUnavailable("mysql: timed out")
    if isinstance(exc, aiomysql.MySQLError):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        text = f"mysql {code}: {exc.args[1] if len(exc.args) > 1 else exc}"
        if code in _BUSY_CODES:
            return StoreBusy(f"mysql: {_BUSY_CODES[code]}")
        if isinstance(exc, aiomysql.IntegrityError):
            return Conflict(text) if code == 1062 else StoreError(text)
        if code >= 2000 or isinstance(exc, aiomysql.InterfaceError) or code == 0:
            return StoreUnavailable(text)
        if isinstance(exc, aiomysql.OperationalError) and code in (
            1053,
            1927,
            1152,
            1158,
            1159,
            1160,
            1161,
        ):
            return StoreUnavailable(text)  # server shutdown / aborted connection
        return StoreError(text)
    if isinstance(exc, OSError | EOFError | asyncio.IncompleteReadError | RuntimeError | AttributeError):
        # aiomysql raises AttributeError/RuntimeError when its socket vanished mid-call.
        return StoreUnavailable(f"mysql: {type(exc).__name__}: {exc}")
    return StoreError(f"mysql: {type(exc).__name__}: {exc}")


def _alive(conn: _Conn) -> bool:
    """False when the server already closed this idle connection (EOF or reset seen by the loop)."""
    reader = getattr(conn.raw, "_reader", None)
    if reader is None:
        return False
    try:
        return not reader.at_eof() and reader.exception() is None
    except Exception:
        return True


def _keeps_connection(err: PersistenceError) -> bool:
    """Whether the connection is still in a known state after ``err`` (then roll back and reuse)."""
    return isinstance(err, StoreError | StoreBusy)


class _Conn:
    def __init__(self, raw: Any, timeout: float) -> None:
        self.raw = raw
        self._timeout = timeout
        self._cur: Any = None
        self.broken = False
        self.committed = False
        self.begin_pending = False  # START TRANSACTION goes out with the next statements
        self.reused = False  # taken from the idle pool (may have died while idle)

    async def _query(self, sql: str) -> Any:
        if self.begin_pending:
            self.begin_pending = False
            await self._query("START TRANSACTION")
        try:
            async with asyncio.timeout(self._timeout):
                cur = self._cur
                if cur is None:
                    cur = self._cur = await self.raw.cursor()
                await cur.execute(sql)
                return cur
        except BaseException as exc:
            err = _map_error(exc)
            if isinstance(exc, asyncio.CancelledError) or not _keeps_connection(err):
                self.broken = True
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise err from exc

    async def _results(self, sql: str, n: int) -> list[tuple[int, list[Row]]]:
        """Send ``n`` statements joined by ``;`` in one round trip; (rowcount, rows) of each."""
        begin = self.begin_pending
        if begin:  # the transaction's START rides along with its first statements
            self.begin_pending = False
            sql, n = "START TRANSACTION;" + sql, n + 1
        try:
            async with asyncio.timeout(self._timeout):
                cur = await self._query(sql)
                out = [(int(cur.rowcount), list(cur._rows or ()))]
                while len(out) < n:
                    if not await cur.nextset():
                        raise StoreError(f"expected {n} results, got {len(out)}")
                    out.append((int(cur.rowcount), list(cur._rows or ())))
                return out[1:] if begin else out
        except BaseException as exc:
            err = _map_error(exc)
            if isinstance(exc, asyncio.CancelledError) or not _keeps_connection(err):
                self.broken = True
            if begin and self.reused and type(err) is StoreUnavailable and not isinstance(exc, TimeoutError):
                raise StaleConnection(err.reason) from exc
            if isinstance(exc, asyncio.CancelledError | PersistenceError):
                raise
            raise err from exc

    async def fetch_all(self, queries: Sequence[tuple[str, Sequence[Param]]]) -> list[list[Row]]:
        if not queries:
            return []
        sql = ";".join(render(q, p) for q, p in queries)
        return [rows for _, rows in await self._results(sql, len(queries))]

    async def write_all(
        self, writes: Sequence[Write], *, commit: bool = False, expect_last: int | None = None
    ) -> list[int]:
        if expect_last is not None:  # the check must come between the writes and the COMMIT
            counts = await self.write_all(writes)
            if counts and counts[-1] != expect_last:
                raise RowCountMismatch(f"the last write touched {counts[-1]} rows, expected {expect_last}")
            if commit:
                await self.execute("COMMIT")
                self.committed = True
            return counts
        statements: list[str] = []
        owners: list[int] = []  # which write each statement belongs to
        memo: dict[str, str] = {}
        for i, w in enumerate(writes):
            if w.each:
                statements.extend(render(w.head, row) for row in w.rows)
                owners.extend([i] * len(w.rows))
            elif w.text:
                statements.append(f"{w.head} {','.join(w.text)}{w.tail}")
                owners.append(i)
            elif w.rows:
                values = ",".join(_row(row, memo) for row in w.rows)
                statements.append(f"{w.head} {values}{w.tail}")
                owners.append(i)
        if commit:
            statements.append("COMMIT")
            owners.append(-1)
        counts = [0] * len(writes)
        start = 0
        while start < len(statements):  # one round trip per ~4 MiB of SQL
            end, size = start, 0
            while end < len(statements) and (end == start or size + len(statements[end]) < _MAX_STATEMENT):
                size += len(statements[end]) + 1
                end += 1
            results = await self._results(";".join(statements[start:end]), end - start)
            for owner, (count, _) in zip(owners[start:end], results, strict=True):
                if owner >= 0:
                    counts[owner] += count
            start = end
        self.committed = commit
        return counts

    async def execute(self, sql: str, params: Sequence[Param] = ()) -> int:
        cur = await self._query(render(sql, params))
        return int(cur.rowcount)

    async def fetchall(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        cur = await self._query(render(sql, params))
        rows = cur._rows
        return list(rows) if rows else []

    async def insert_many(self, head: str, rows: Sequence[Sequence[Param]], tail: str = "") -> int:
        n = 0
        memo: dict[str, str] = {}
        values: list[str] = []
        size = 0
        for row in rows:
            text = _row(row, memo)
            values.append(text)
            size += len(text) + 1
            if size >= _MAX_STATEMENT:
                n += int((await self._query(f"{head} {','.join(values)}{tail}")).rowcount)
                values, size = [], 0
        if values:
            n += int((await self._query(f"{head} {','.join(values)}{tail}")).rowcount)
        return n

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Param]]) -> int:
        n = 0
        for row in rows:
            n += await self.execute(sql, row)
        return n


class MysqlEngine:
    """Pool of at most ``pool_size`` aiomysql connections to one database."""

    dialect = MYSQL

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 3306,
        user: str = "root",
        password: str = "",
        db: str,
        pool_size: int = 8,
        connect_timeout: float = 2.0,
        timeout: float = 5.0,
        lock_wait_timeout: int = 5,
    ) -> None:
        self.host, self.port, self.user, self.db = host, port, user, db
        self._password = password
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._lock_wait = lock_wait_timeout
        self._idle: deque[_Conn] = deque()
        self._slots = asyncio.Semaphore(pool_size)
        self._closed = False

    async def _connect(self, db: str | None) -> _Conn:
        raw: Any = None
        try:
            async with asyncio.timeout(self.connect_timeout + 1.0):
                raw = await aiomysql.connect(
                    host=self.host,
                    port=self.port,
                    user=self.user,
                    password=self._password,
                    db=db,
                    charset="utf8mb4",
                    autocommit=True,
                    cursorclass=_QuietCursor,
                    client_flag=_CLIENT_MULTI_STATEMENTS,
                    connect_timeout=self.connect_timeout,
                )
                conn = _Conn(raw, self.timeout)
                for stmt in (
                    *_SESSION_SETUP,
                    f"SET SESSION innodb_lock_wait_timeout = {int(self._lock_wait)}",
                ):
                    await conn.execute(stmt)
                return conn
        except BaseException as exc:
            if raw is not None:
                raw.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            err = _map_error(exc)
            if isinstance(err, StoreError) and "1049" in str(err):
                raise StoreError(f"database {db!r} does not exist: run the migrations") from exc
            if isinstance(err, StoreError):
                raise StoreUnavailable(str(err)) from exc
            raise err from exc

    async def _acquire(self) -> _Conn:
        if self._closed:
            raise StoreClosed("mysql engine is closed")
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise StoreBusy("mysql: connection pool exhausted") from exc
        try:
            while self._idle:
                conn = self._idle.pop()
                if _alive(conn):
                    conn.reused = True
                    return conn
                conn.raw.close()
            conn = await self._connect(self.db)
            conn.reused = False
            return conn
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn: _Conn) -> None:
        try:
            if conn.broken or self._closed or conn.raw.closed:
                conn.raw.close()
                if conn.broken:
                    self._drop_idle()
            else:
                self._idle.append(conn)
        finally:
            self._slots.release()

    def _drop_idle(self) -> None:
        """After a connection error the idle ones are probably dead too: reconnect lazily."""
        while self._idle:
            self._idle.pop().raw.close()

    async def _begin(self) -> _Conn:
        """A connection inside START TRANSACTION; a pooled connection found dead is replaced once."""
        for attempt in (1, 2):
            reused = bool(self._idle)
            conn = await self._acquire()
            conn.committed = False
            try:
                await conn.execute("START TRANSACTION")
                return conn
            except StoreUnavailable:
                self._release(conn)
                if not reused or attempt == 2:
                    raise
            except BaseException:
                self._release(conn)
                raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def transaction(self, *, merge_begin: bool = False) -> AsyncIterator[SqlConn]:
        if merge_begin:
            conn = await self._acquire()
            conn.committed = False
            conn.begin_pending = True
        else:
            conn = await self._begin()
        try:
            yield conn
            if conn.begin_pending:  # nothing was sent: no transaction to end
                conn.begin_pending = False
            elif not conn.committed:
                await conn.execute("COMMIT")
        except BaseException:
            if conn.begin_pending:  # nothing was sent
                conn.begin_pending = False
            elif not conn.broken:
                try:
                    await conn.execute("ROLLBACK")
                except BaseException:
                    conn.broken = True
            raise
        finally:
            self._release(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlConn]:
        conn = await self._acquire()
        try:
            yield conn
        finally:
            self._release(conn)

    @asynccontextmanager
    async def migration_session(self) -> AsyncIterator[SqlConn]:
        await self.ensure_database()
        async with self.read() as conn:
            rows = await conn.fetchall("SELECT GET_LOCK('croupier_migrate', 30)")
            if not rows or rows[0][0] != 1:
                raise StoreBusy("mysql: another process is migrating")
            try:
                yield conn
            finally:
                await conn.execute("SELECT RELEASE_LOCK('croupier_migrate')")

    async def ensure_database(self) -> None:
        """``CREATE DATABASE IF NOT EXISTS`` (utf8mb4, binary collation)."""
        conn = await self._connect(None)
        try:
            name = self.db.replace("`", "``")
            await conn.execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        finally:
            conn.raw.close()

    async def drop_database(self) -> None:
        """Drop the whole database. Used for testing purposes only."""
        conn = await self._connect(None)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS `{self.db.replace('`', '``')}`")
        finally:
            conn.raw.close()

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.fetchall("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._idle:
            conn = self._idle.pop()
            try:
                async with asyncio.timeout(1.0):
                    await conn.raw.ensure_closed()
            except BaseException:
                conn.raw.close()
