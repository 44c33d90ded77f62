"""A wallet batch's last trip, on SQLite and on MariaDB: the writes and the COMMIT, and
nothing committed when the last write touched another number of rows than planned (an
account vanished). SQLite also runs the BEGIN with the batch's first statement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from persistence.factory import open_engine
from persistence.sql.engine import RowCountMismatch, SqlEngine, Write

Body = Callable[[SqlEngine], Awaitable[None]]


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def run(request, tmp_path) -> Callable[[Body], None]:
    url = f"sqlite:///{tmp_path}/b.db" if request.param == "sqlite" else request.getfixturevalue("mysql_url")

    def go(body: Body) -> None:
        async def main() -> None:
            engine = await open_engine(url)
            try:
                async with engine.transaction() as c:
                    await c.execute("DROP TABLE IF EXISTS batch_bal")
                async with engine.transaction() as c:
                    await c.execute("CREATE TABLE batch_bal (acc VARCHAR(8) PRIMARY KEY, amount INTEGER)")
                async with engine.transaction() as c:
                    await c.execute("INSERT INTO batch_bal VALUES ('a', 10), ('b', 10)")
                await body(engine)
            finally:
                async with engine.transaction() as c:
                    await c.execute("DROP TABLE IF EXISTS batch_bal")
                await engine.close()

        asyncio.run(main())

    return go


async def _rows(engine: SqlEngine) -> list[tuple[str, int]]:
    async with engine.read() as c:
        return [(r[0], r[1]) for r in await c.fetchall("SELECT acc, amount FROM batch_bal ORDER BY acc")]


def _update(*accounts: str) -> Write:
    return Write(
        "UPDATE batch_bal SET amount = amount + 1 WHERE acc = ?", [(a,) for a in accounts], each=True
    )


def test_a_batch_commits_with_its_writes_when_the_count_is_right(run):
    async def body(engine: SqlEngine) -> None:
        async with engine.transaction(merge_begin=True) as c:
            rows = await c.fetch_all([("SELECT amount FROM batch_bal WHERE acc = ?", ("a",))])
            assert [list(r) for r in rows[0]] == [[10]]
            assert await c.write_all([_update("a", "b")], commit=True, expect_last=2) == [2]
        assert await _rows(engine) == [("a", 11), ("b", 11)]

    run(body)


def test_a_batch_whose_last_write_missed_a_row_commits_nothing(run):
    async def body(engine: SqlEngine) -> None:
        with pytest.raises(RowCountMismatch):
            async with engine.transaction(merge_begin=True) as c:
                await c.fetch_all([("SELECT amount FROM batch_bal", ())])
                await c.write_all([_update("a", "gone")], commit=True, expect_last=2)
        assert await _rows(engine) == [("a", 10), ("b", 10)]  # the update of `a` was rolled back
        async with engine.transaction(merge_begin=True) as c:  # and the engine is usable
            await c.write_all([_update("b")], commit=True, expect_last=1)
        assert await _rows(engine) == [("a", 10), ("b", 11)]

    run(body)


def test_a_merged_transaction_that_runs_nothing_leaves_no_transaction_open(run):
    async def body(engine: SqlEngine) -> None:
        async with engine.transaction(merge_begin=True):
            pass
        async with engine.transaction() as c:  # a BEGIN inside an open one would fail (SQLite)
            await c.execute("UPDATE batch_bal SET amount = 0 WHERE acc = 'a'")
        assert await _rows(engine) == [("a", 0), ("b", 10)]

    run(body)
