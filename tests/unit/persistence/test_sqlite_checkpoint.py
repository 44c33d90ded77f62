"""WAL checkpoints run on their own connection and thread, not inside a writer's COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from persistence.errors import StoreError
from persistence.factory import open_engine
from persistence.sql.sqlite import BACKSTOP_PAGES, SqliteEngine


async def _autocheckpoint(engine: SqliteEngine) -> int:
    """The writer connection's own checkpoint threshold (read in its thread)."""
    w = engine._writer

    def read() -> int:
        assert w.conn is not None
        return int(w.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    return await w.run(read)


async def _write(engine: SqliteEngine, rows: int) -> None:
    async with engine.transaction() as c:
        await c.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER, pad BLOB)")
    for i in range(rows):
        async with engine.transaction() as c:
            await c.execute("INSERT INTO t VALUES (?, ?)", (i, b"p" * 2000))


def test_the_background_checkpoint_copies_the_wal_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = SqliteEngine(str(tmp_path / "t.db"), checkpoint_interval=0.05)
        await engine.open()
        try:
            assert await _autocheckpoint(engine) == BACKSTOP_PAGES  # the commit checkpoints only far behind
            await _write(engine, 50)
            for _ in range(100):
                if engine.checkpoint_stats["frames_copied"] > 0:
                    break
                await asyncio.sleep(0.02)
            assert engine.checkpoint_stats["runs"] >= 1 and engine.checkpoint_stats["frames_copied"] > 0
            await _write(engine, 5)
            busy, frames, copied = await engine.checkpoint()
            assert busy == 0 and copied == frames  # nothing left behind in the WAL
        finally:
            await engine.close()
        con = sqlite3.connect(str(tmp_path / "t.db"))  # every committed row is in the file
        assert con.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 55
        con.close()

    asyncio.run(scenario())


def test_checkpoint_interval_0_leaves_the_checkpoints_to_the_commits(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = await open_engine(f"sqlite:///{tmp_path}/t.db?checkpoint_interval=0")
        assert isinstance(engine, SqliteEngine)
        try:
            assert engine.checkpoint_interval is None and engine._checkpointer is None
            assert await _autocheckpoint(engine) == 1000  # SQLite's default
            with pytest.raises(StoreError):
                await engine.checkpoint()
            await _write(engine, 3)
        finally:
            await engine.close()
        default = await open_engine(f"sqlite:///{tmp_path}/u.db")
        assert isinstance(default, SqliteEngine) and default.checkpoint_interval == 1.0
        await default.close()

    asyncio.run(scenario())
