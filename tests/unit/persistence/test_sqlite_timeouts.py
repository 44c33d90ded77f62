"""A transaction whose caller timed out must not leave the SQLite writer inside a transaction.

Found by the 200k soak: under CPU starvation a BEGIN ran in the writer thread after its
caller had given up, and every later batch failed with "cannot start a transaction within
a transaction" until the process restarted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from persistence.errors import StoreUnavailable
from persistence.sql.sqlite import SqliteEngine


def test_a_timed_out_begin_does_not_poison_the_writer(tmp_path):
    async def scenario() -> None:
        engine = SqliteEngine(str(tmp_path / "t.db"), timeout=0.1)
        await engine.open()
        try:
            async with engine.transaction() as c:
                await c.execute("CREATE TABLE t (x INTEGER)")
            # Another process holds the write lock for 0.3 s: our BEGIN IMMEDIATE starts in the
            # writer thread, waits on the lock (busy_timeout), and succeeds after its caller
            # timed out at 0.1 s.
            other = sqlite3.connect(str(tmp_path / "t.db"), isolation_level=None, check_same_thread=False)
            other.execute("BEGIN IMMEDIATE")
            release = threading.Timer(0.3, lambda: other.execute("ROLLBACK"))
            release.start()
            with pytest.raises(StoreUnavailable):
                async with engine.transaction() as c:
                    await c.execute("INSERT INTO t VALUES (1)")
            release.join()
            other.close()
            await asyncio.sleep(0.2)  # the abandoned BEGIN has run by now
            async with engine.transaction() as c:
                await c.execute("INSERT INTO t VALUES (2)")
            async with engine.read() as c:
                assert await c.fetchall("SELECT x FROM t") == [(2,)]
        finally:
            await engine.close()

    asyncio.run(scenario())
