"""The SQLite engine's one-trip batch: BEGIN with the first statement, COMMIT with the
writes, and nothing committed when the last write touched another number of rows."""

from __future__ import annotations

import asyncio

import pytest

from persistence.sql.engine import RowCountMismatch, Write
from persistence.sql.sqlite import SqliteEngine


def _run(tmp_path, body):
    async def go() -> None:
        engine = SqliteEngine(str(tmp_path / "b.db"))
        await engine.open()
        try:
            async with engine.transaction() as c:
                await c.execute("CREATE TABLE bal (acc TEXT PRIMARY KEY, amount INTEGER)")
                await c.execute("INSERT INTO bal VALUES ('a', 10), ('b', 10)")
            await body(engine)
        finally:
            await engine.close()

    asyncio.run(go())


async def _rows(engine: SqliteEngine) -> list[tuple[str, int]]:
    async with engine.read() as c:
        return [(r[0], r[1]) for r in await c.fetchall("SELECT acc, amount FROM bal ORDER BY acc")]


def _update(*accounts: str) -> Write:
    return Write("UPDATE bal SET amount = amount + 1 WHERE acc = ?", [(a,) for a in accounts], each=True)


def test_a_batch_commits_with_its_writes_when_the_count_is_right(tmp_path):
    async def body(engine: SqliteEngine) -> None:
        async with engine.transaction(merge_begin=True) as c:
            rows = await c.fetch_all([("SELECT amount FROM bal WHERE acc = ?", ("a",))])
            assert rows == [[(10,)]]
            assert await c.write_all([_update("a", "b")], commit=True, expect_last=2) == [2]
        assert await _rows(engine) == [("a", 11), ("b", 11)]

    _run(tmp_path, body)


def test_a_batch_whose_last_write_missed_a_row_commits_nothing(tmp_path):
    async def body(engine: SqliteEngine) -> None:
        with pytest.raises(RowCountMismatch):
            async with engine.transaction(merge_begin=True) as c:
                await c.fetch_all([("SELECT amount FROM bal", ())])
                await c.write_all([_update("a", "gone")], commit=True, expect_last=2)
        assert await _rows(engine) == [("a", 10), ("b", 10)]  # the update of `a` was rolled back
        async with engine.transaction(merge_begin=True) as c:  # and the writer is usable
            await c.write_all([_update("b")], commit=True, expect_last=1)
        assert await _rows(engine) == [("a", 10), ("b", 11)]

    _run(tmp_path, body)


def test_a_merged_transaction_that_runs_nothing_leaves_no_transaction_open(tmp_path):
    async def body(engine: SqliteEngine) -> None:
        async with engine.transaction(merge_begin=True):
            pass
        async with engine.transaction() as c:  # a BEGIN inside an open one would fail
            await c.execute("UPDATE bal SET amount = 0 WHERE acc = 'a'")
        assert await _rows(engine) == [("a", 0), ("b", 10)]

    _run(tmp_path, body)
