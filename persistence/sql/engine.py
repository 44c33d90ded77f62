"""The small surface the SQL stores need from a database engine.

SQL is written once with ``?`` placeholders; each engine runs it its own way
(sqlite3 binds parameters, the MySQL engine inlines escaped literals). The few
statements whose syntax differs (upsert, row locks, insert-or-ignore) come from
the :class:`Dialect`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from persistence.errors import StoreError

__all__ = [
    "MYSQL",
    "SQLITE",
    "Dialect",
    "Row",
    "SqlConn",
    "SqlEngine",
    "ThreadConn",
    "Write",
    "mysql_string",
    "placeholders",
]

Row = tuple[Any, ...]
Param = str | int | bytes | None
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    for_update: str
    insert_ignore: str
    """``INSERT OR IGNORE`` / ``INSERT IGNORE``."""

    def upsert(self, keys: Sequence[str], set_cols: Sequence[str], add_cols: Sequence[str] = ()) -> str:
        """The tail of an INSERT that updates the existing row on a key conflict.

        ``set_cols`` take the inserted value; ``add_cols`` add it to the stored one.
        """
        new = "excluded.{0}" if self.name == "sqlite" else "VALUES({0})"
        sets = [f"{c} = {c} + {new.format(c)}" for c in add_cols]
        sets += [f"{c} = {new.format(c)}" for c in set_cols]
        if self.name == "sqlite":
            return f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(sets)}"
        return f" ON DUPLICATE KEY UPDATE {', '.join(sets)}"


SQLITE = Dialect(name="sqlite", for_update="", insert_ignore="INSERT OR IGNORE")
MYSQL = Dialect(name="mysql", for_update=" FOR UPDATE", insert_ignore="INSERT IGNORE")


@dataclass(frozen=True, slots=True)
class Write:
    """One write of a pipelined group (:meth:`SqlConn.write_all`).

    With ``each=False``, ``head`` is ``INSERT INTO t (a, b) VALUES`` and ``rows`` become
    one multi-row statement followed by ``tail``; with ``each=True``, ``head`` is a whole
    statement with ``?`` markers, run once per row.
    """

    head: str
    rows: Sequence[Sequence[Param]]
    tail: str = ""
    each: bool = False
    text: Sequence[str] = ()
    """MySQL only: the rows already rendered as ``(v1,v2,...)`` literals (then ``rows`` is empty)."""


_MYSQL_ESCAPE = {
    0: "\\0",
    ord("\\"): "\\\\",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    26: "\\Z",
    ord("'"): "\\'",
    ord('"'): '\\"',
}
_MYSQL_NEEDS_ESCAPE = re.compile("[\\x00\\\\\n\r\x1a'\"]").search


def mysql_string(s: str) -> str:
    """``s`` as a MySQL string literal (utf8mb4 connection, backslash escapes)."""
    return "'" + (s.translate(_MYSQL_ESCAPE) if _MYSQL_NEEDS_ESCAPE(s) else s) + "'"


def placeholders(n: int) -> str:
    """``(?, ?, ...)`` with ``n`` markers."""
    return "(" + ", ".join("?" * n) + ")"


class SqlConn(Protocol):
    async def execute(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Run one statement; return the affected row count."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Param] = ()) -> list[Row]: ...

    async def insert_many(self, head: str, rows: Sequence[Sequence[Param]], tail: str = "") -> int:
        """``head`` is ``INSERT INTO t (a, b) VALUES``; one multi-row statement (or executemany).

        Returns the affected row count (MySQL counts an upsert that updated as 2).
        """
        ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Param]]) -> int:
        """Run ``sql`` once per parameter row; return the total affected row count."""
        ...

    async def fetch_all(self, queries: Sequence[tuple[str, Sequence[Param]]]) -> list[list[Row]]:
        """Run several SELECTs in one round trip; one row list per query."""
        ...

    async def write_all(
        self, writes: Sequence[Write], *, commit: bool = False, expect_last: int | None = None
    ) -> list[int]:
        """Run several writes in one round trip (and COMMIT with them when ``commit``).

        Returns the affected row count of each write. Statements after a failing one
        are not run; the transaction is then rolled back by :meth:`SqlEngine.transaction`.
        ``expect_last``: COMMIT only if the last write touched exactly that many rows,
        else raise :class:`RowCountMismatch` (SQLite checks between the writes and the
        COMMIT in the same call; MySQL sends the COMMIT after the check, one more trip).
        """
        ...


class ThreadConn(Protocol):
    """A :class:`SqlConn` whose connection lives on a thread of its own (SQLite): a whole
    transaction can be handed to that thread in one trip with :meth:`in_thread`, where
    the ``*_now`` forms of :meth:`SqlConn.fetch_all` and :meth:`SqlConn.write_all` run."""

    async def in_thread(self, fn: Callable[[ThreadConn], T]) -> T: ...

    def fetch_all_now(self, queries: Sequence[tuple[str, Sequence[Param]]]) -> list[list[Row]]: ...

    def write_all_now(
        self, writes: Sequence[Write], *, commit: bool = False, expect_last: int | None = None
    ) -> list[int]: ...


class RowCountMismatch(StoreError):
    """A write touched another number of rows than the batch planned: nothing is committed."""


class SqlEngine(Protocol):
    dialect: Dialect

    def transaction(self, *, merge_begin: bool = False) -> AbstractAsyncContextManager[SqlConn]:
        """BEGIN (taking the write lock on SQLite); COMMIT on exit, ROLLBACK on error.

        ``merge_begin``: MySQL sends the BEGIN with the first pipelined group
        (:meth:`SqlConn.fetch_all` / :meth:`SqlConn.write_all`), saving a round trip; a
        pooled connection found dead by that group raises :class:`StaleConnection`
        (nothing ran: the caller may run the transaction again).
        """
        ...

    def read(self) -> AbstractAsyncContextManager[SqlConn]:
        """A connection in autocommit mode for reads."""
        ...

    def migration_session(self) -> AbstractAsyncContextManager[SqlConn]:
        """A connection holding the migration lock, for DDL."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
