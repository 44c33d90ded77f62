"""A SQLite money batch is one trip to the writer thread: reads, decision, writes, COMMIT.

Two trips (the reads, then the writes) cost a lone spin 10-17% more CPU: each trip is a
thread wake-up, a GIL hand-over and a wake-up of the event loop (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from persistence.factory import open_backend
from persistence.records import PostingKind, Txn, TxnResult, transfer
from persistence.sql.sqlite import SqliteEngine

NOW = 1_700_000_000_000


def test_a_batch_goes_to_the_writer_thread_once_and_a_duplicate_batch_too(tmp_path: Path) -> None:
    async def scenario() -> None:
        backend: Any = await open_backend(f"sqlite:///{tmp_path / 'm.db'}")
        await backend.migrate()
        try:
            wallet = backend.wallet
            engine = wallet._e
            assert isinstance(engine, SqliteEngine)
            await wallet.open_wallet("house", "EUR", allow_negative=True)
            trips = 0
            run = engine._writer.run

            async def counted(fn: Any, *args: Any) -> Any:
                nonlocal trips
                trips += 1
                return await run(fn, *args)

            engine._writer.run = counted  # type: ignore[method-assign]
            deposit = Txn(key="dep:u1", entries=transfer("house", "u1", "EUR", 500, PostingKind.DEPOSIT))
            bet = Txn(key="bet:u1", entries=transfer("u1", "house", "EUR", 200, PostingKind.BET))
            (first, second) = await wallet.commit_batch([deposit, bet], NOW)
            assert trips == 1
            assert isinstance(second, TxnResult) and not second.duplicate
            assert [(b.account, b.balance) for b in second.balances] == [("u1", 300)]
            (again,) = await wallet.commit_batch([bet], NOW + 1)  # nothing to write: still one trip
            assert trips == 2
            assert isinstance(again, TxnResult) and again.duplicate
            assert (await wallet.get_balance("u1", "EUR")).balance == 300
            async with engine.transaction() as c:  # the writer is not left inside a transaction
                assert await c.fetchall("SELECT COUNT(*) FROM ledger") == [(4,)]
        finally:
            await backend.close()

    asyncio.run(scenario())
