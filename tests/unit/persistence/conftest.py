"""Helpers for the persistence unit tests (no services needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from persistence import PostingKind, StoreError, StoreUnavailable, Txn, spin_txn, transfer
from persistence.base import TxnOutcome
from persistence.memory import MemoryBackend

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """Run one async test body on a fresh loop, with a hard timeout."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def deposit(key: str, user: str = "u1", amount: int = 1000) -> Txn:
    return Txn(key=key, entries=transfer("house", user, "EUR", amount, PostingKind.DEPOSIT))


def bet(key: str, user: str = "u1", amount: int = 10) -> Txn:
    return spin_txn(key, player=user, house="house", currency="EUR", bet=amount, win=0)


class FakeDatabase:
    """A memory backend behind a controllable door: hold commits, fail them, refuse keys, go down."""

    def __init__(self) -> None:
        self.backend = MemoryBackend()
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: BaseException | None = None
        self.refuse: set[str] = set()
        self.down = False
        self.pings = 0

    async def commit(self, txns: Sequence[Txn], now: int) -> list[TxnOutcome]:
        self.batches.append([t.key for t in txns])
        await self.gate.wait()
        if self.down:
            raise StoreUnavailable("fake database is down")
        if self.fail is not None:
            raise self.fail
        if any(t.key in self.refuse for t in txns):
            raise StoreError("value too long")
        return await self.backend.wallet.commit_batch(txns, now)

    async def ping(self) -> None:
        self.pings += 1
        if self.down:
            raise StoreUnavailable("fake database is down")

    async def open_house(self) -> None:
        await self.backend.wallet.open_wallet("house", "EUR", allow_negative=True)
