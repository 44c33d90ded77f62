"""Migrations on SQLite and MySQL: the command, status, down and up again, concurrent start-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence.factory import open_engine
from persistence.migrate import load_migrations, main, migrate_engine, status_engine
from persistence.sql.mysql import MysqlEngine
from tests.contract.conftest import MYSQL_URL, RUN_ID, _with_db, require, run

TABLES = {
    "accounts", "balances", "txns", "ledger", "rounds", "variables", "leaderboard_records",
    "configs", "bans", "audit_log", "lotteries", "bonuses", "missions", "referrals",
}  # fmt: skip


async def tables(url: str) -> set[str]:
    engine = await open_engine(url)
    try:
        async with engine.read() as c:
            if engine.dialect.name == "sqlite":
                rows = await c.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
            else:
                rows = await c.fetchall("SHOW TABLES")
        return {r[0] for r in rows} - {"schema_migrations"}
    finally:
        await engine.close()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with nothing in it (a MySQL database of its own, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/m.db"
        return
    require("MySQL", MYSQL_URL)
    url = _with_db(MYSQL_URL, f"croupier_test_{RUN_ID}_mig")
    yield url

    async def drop() -> None:
        engine = await open_engine(url)
        assert isinstance(engine, MysqlEngine)
        try:
            await engine.drop_database()
        finally:
            await engine.close()

    run(drop())


def test_dialects_have_the_same_migrations() -> None:
    """Every migration exists for both dialects, with up and down parts."""
    lite, my = load_migrations("sqlite"), load_migrations("mysql")
    assert [(m.version, m.name) for m in lite] == [(m.version, m.name) for m in my]
    assert all(m.up and m.down for m in lite + my)
    assert len([s for s in lite[0].up if s.startswith("CREATE TABLE")]) == len(TABLES)


def test_the_command_migrates_reports_reverts_and_reapplies(
    empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m persistence.migrate URL`` creates the schema; --status, --down 0 and a second run work."""
    assert main([empty_db, "--status"]) == 0
    assert "0001 initial: pending" in capsys.readouterr().out
    assert main([empty_db]) == 0
    assert capsys.readouterr().out.split() == ["applied", "0001", "applied", "0002"]
    assert run(tables(empty_db)) == TABLES
    assert main([empty_db]) == 0
    assert capsys.readouterr().out.strip() == "schema is up to date"
    assert main([empty_db, "--down", "0"]) == 0
    assert capsys.readouterr().out.split() == ["reverted", "0002", "reverted", "0001"]
    assert run(tables(empty_db)) == set()
    assert main([empty_db]) == 0
    assert run(tables(empty_db)) == TABLES


def test_concurrent_start_ups_apply_each_migration_once(empty_db: str) -> None:
    """Three processes starting at once: one applies the schema, the others find it done."""

    async def one() -> list[int]:
        engine = await open_engine(empty_db)
        try:
            return await migrate_engine(engine)
        finally:
            await engine.close()

    async def all_three() -> list[list[int]]:
        return list(await asyncio.gather(one(), one(), one()))

    results = run(all_three())
    assert sorted(results) == [[], [], [1, 2]]

    async def status() -> list[tuple[int, str, bool]]:
        engine = await open_engine(empty_db)
        try:
            return await status_engine(engine)
        finally:
            await engine.close()

    assert run(status()) == [(1, "initial", True), (2, "rounds_open_index", True)]


async def _indexes_of_rounds(url: str) -> set[str]:
    engine = await open_engine(url)
    try:
        async with engine.read() as c:
            if engine.dialect.name == "sqlite":
                rows = await c.fetchall(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rounds'"
                )
                return {r[0] for r in rows}
            return {r[2] for r in await c.fetchall("SHOW INDEX FROM rounds")}
    finally:
        await engine.close()


def test_a_database_at_the_first_version_is_upgraded_and_keeps_its_rows(empty_db: str) -> None:
    """A deployed schema (0001, with a round in it) takes 0002's index; down to 1 drops only that."""

    async def at_v1_with_a_round() -> None:
        engine = await open_engine(empty_db)
        try:
            assert await migrate_engine(engine, target=1) == [1]
            async with engine.migration_session() as c:
                await c.execute(
                    "INSERT INTO rounds (round_id, user_id, game_id, bet, win, status, state, balance_before, "
                    "balance_after, created_at, updated_at, settled_at) VALUES (?, ?, ?, 1, 0, 'open', ?, 1, 0, 5, 5, 0)",
                    ("r1", "u1", "pick", b"s"),
                )
        finally:
            await engine.close()

    run(at_v1_with_a_round())
    assert "ix_rounds_open_game" not in run(_indexes_of_rounds(empty_db))
    assert main([empty_db]) == 0
    assert "ix_rounds_open_game" in run(_indexes_of_rounds(empty_db))
    assert main([empty_db, "--down", "1"]) == 0
    assert "ix_rounds_open_game" not in run(_indexes_of_rounds(empty_db))
    assert run(tables(empty_db)) == TABLES
    assert main([empty_db]) == 0

    async def the_round() -> list[tuple[str, str]]:
        engine = await open_engine(empty_db)
        try:
            async with engine.read() as c:
                return [(r[0], r[1]) for r in await c.fetchall("SELECT round_id, status FROM rounds")]
        finally:
            await engine.close()

    assert run(the_round()) == [("r1", "open")]


def test_a_bad_url_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable database makes the command exit 1 with the reason."""
    assert main(["mysql://root@127.0.0.1:1/nothing?connect_timeout=0.5"]) == 1
    assert "migration failed: store unavailable" in capsys.readouterr().err
