"""Real network faults between the writer and MariaDB (through tests/faultproxy.py).

The pass criteria of reliability test C3/C7: a money write is never acknowledged
unless committed; a down or hung database gives a fast, named, retryable error;
memory stays bounded; after recovery the same writer works again and a retried
key posts exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from persistence import (
    PostingKind,
    StoreBusy,
    StoreUnavailable,
    Txn,
    TxnResult,
    Variable,
    VarPut,
    VarScope,
    WriteBehindConfig,
    WriterConfig,
    spin_txn,
    transfer,
)
from persistence.factory import Stores, open_stores
from persistence.records import now_ms
from tests.contract.conftest import run
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.mysql

FAST = WriterConfig(
    max_delay_ms=1,
    max_batch=4,
    max_queue=8,
    commit_timeout_s=1.0,
    probe_interval_s=0.05,
    max_probe_interval_s=0.2,
)


@pytest.fixture
def proxy(mysql_url: str) -> Iterator[FaultProxy]:
    p = urlsplit(mysql_url)
    with FaultProxy(p.hostname or "127.0.0.1", p.port or 3306) as fp:
        yield fp


def via(proxy: FaultProxy, mysql_url: str) -> str:
    p = urlsplit(mysql_url)
    netloc = f"{p.username or 'root'}@127.0.0.1:{proxy.port}"
    return urlunsplit((p.scheme, netloc, p.path, "timeout=1&connect_timeout=0.5", ""))


async def opened(url: str, **kw: object) -> Stores:
    stores = await open_stores(url, writer=FAST, **kw)  # type: ignore[arg-type]
    await stores.backend.clear()
    await stores.wallet.open_wallet("house", "EUR", allow_negative=True)
    await stores.commit(Txn(key="dep", entries=transfer("house", "u1", "EUR", 10_000, PostingKind.DEPOSIT)))
    return stores


def spin(key: str) -> Txn:
    return spin_txn(key, player="u1", house="house", currency="EUR", bet=10, win=0)


async def wait_available(stores: Stores, within: float = 5.0) -> float:
    t0 = time.monotonic()
    while not stores.writer.available:
        assert time.monotonic() - t0 < within, "writer did not recover"
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def postings(stores: Stores, key: str) -> int:
    return len(await stores.wallet.txn_postings(key))


def test_database_down_fails_fast_and_recovers(proxy: FaultProxy, mysql_url: str) -> None:
    """Connections cut: StoreUnavailable in well under a second, fast refusals while down, then normal service."""

    async def body() -> None:
        stores = await opened(via(proxy, mysql_url))
        try:
            proxy.cut()
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await stores.commit(spin("k1"))
            assert time.monotonic() - t0 < 1.0
            assert not stores.writer.available
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable):
                stores.writer.submit(spin("k2"))  # circuit open: refused at once
            assert time.monotonic() - t0 < 0.01
            with pytest.raises(StoreUnavailable):
                await stores.wallet.get_balance("u1", "EUR")
            proxy.restore()
            await wait_available(stores)
            again = await stores.commit(spin("k1"))  # the client's retry of the unacknowledged spin
            assert again.balance("u1", "EUR") == 9_990
            assert await postings(stores, "k1") == 2
            assert await stores.wallet.balance_mismatches() == []
        finally:
            proxy.restore()
            await stores.close()

    run(body())


def test_hung_database_times_out_and_queue_stays_bounded(proxy: FaultProxy, mysql_url: str) -> None:
    """A hung server: callers get StoreBusy beyond max_queue at once, the rest StoreUnavailable after the timeout."""

    async def body() -> None:
        stores = await opened(via(proxy, mysql_url))
        try:
            proxy.hang()
            t0 = time.monotonic()
            futures = [stores.writer.submit(spin(f"h{i}")) for i in range(FAST.max_queue)]
            await asyncio.sleep(0.05)  # the first batch is now in flight and hanging
            # (a second one waits for the first to hold its row locks, which it never does)
            in_flight = FAST.max_queue - stores.writer.queued
            assert in_flight == FAST.max_batch
            more = [stores.writer.submit(spin(f"m{i}")) for i in range(in_flight)]
            with pytest.raises(StoreBusy):
                stores.writer.submit(spin("overflow"))
            assert stores.writer.queued == FAST.max_queue
            results = await asyncio.gather(*futures, *more, return_exceptions=True)
            elapsed = time.monotonic() - t0
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert elapsed < FAST.commit_timeout_s + 1.0
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await stores.wallet.get_balance("u1", "EUR")  # reads have a timeout too
            assert time.monotonic() - t0 < 2.5
            proxy.restore()
            await wait_available(stores)
            keys = [f"h{i}" for i in range(FAST.max_queue)] + [f"m{i}" for i in range(in_flight)]
            for i in range(0, len(keys), FAST.max_batch):  # retries, within the queue bound
                retried = await asyncio.gather(
                    *[stores.commit(spin(k)) for k in keys[i : i + FAST.max_batch]]
                )
                assert all(isinstance(r, TxnResult) for r in retried)
            assert [await postings(stores, k) for k in keys] == [2] * len(keys)
            assert await stores.balance("u1", "EUR") == 10_000 - 10 * len(keys)
        finally:
            proxy.restore()
            await stores.close()

    run(body())


def test_pool_reconnects_after_connections_are_dropped(proxy: FaultProxy, mysql_url: str) -> None:
    """When the server drops every connection (a restart), the next commit reconnects without an error."""

    async def body() -> None:
        stores = await opened(via(proxy, mysql_url))
        try:
            await stores.wallet.get_balance("u1", "EUR")
            proxy.close_all_connections()
            await asyncio.sleep(0.05)
            result = await stores.commit(spin("after-restart"))
            assert result.balance("u1", "EUR") == 9_990
            assert stores.writer.available
        finally:
            await stores.close()

    run(body())


def test_a_batch_on_a_pooled_connection_dropped_just_now_is_run_again(
    proxy: FaultProxy, mysql_url: str
) -> None:
    """Connections dropped a moment before a batch: its first round trip finds the pooled
    connection dead before anything ran, and the batch runs again on a new one."""

    async def body() -> None:
        stores = await opened(via(proxy, mysql_url))
        try:
            for i in range(5):
                await stores.wallet.get_balance("u1", "EUR")  # a connection back in the pool
                proxy.close_all_connections()
                # straight to the backend, with no pause: the loop has not seen the EOF yet
                [result] = await stores.wallet.commit_batch([spin(f"drop{i}")], now_ms())
                assert isinstance(result, TxnResult)
                assert result.balance("u1", "EUR") == 10_000 - 10 * (i + 1)
            assert await stores.wallet.balance_mismatches() == []
        finally:
            await stores.close()

    run(body())


def test_write_behind_keeps_its_changes_while_down_and_drains_after(
    proxy: FaultProxy, mysql_url: str
) -> None:
    """Non-money writes made during an outage are kept (bounded) and written once the database is back."""

    async def body() -> None:
        wb = WriteBehindConfig(
            flush_interval_ms=50, max_dirty=3, flush_timeout_s=1.0, max_retry_interval_s=0.1
        )
        stores = await opened(via(proxy, mysql_url), write_behind=wb)
        try:
            proxy.cut()
            for i in range(3):
                stores.put_later(
                    VarPut(var=Variable(scope=VarScope.ROOM, owner="r1", name=f"v{i}", value=b"x"))
                )
            with pytest.raises(StoreBusy):
                stores.put_later(VarPut(var=Variable(scope=VarScope.ROOM, owner="r1", name="v9", value=b"x")))
            stores.put_later(VarPut(var=Variable(scope=VarScope.ROOM, owner="r1", name="v0", value=b"new")))
            await asyncio.sleep(0.3)
            assert stores.write_behind.dirty == 3 and stores.write_behind.failures >= 1
            proxy.restore()
            t0 = time.monotonic()
            while stores.write_behind.dirty:
                assert time.monotonic() - t0 < 5, "write-behind did not drain"
                await asyncio.sleep(0.02)
            got = {v.name: v.value for v in await stores.variables.load_variables(VarScope.ROOM, "r1")}
            assert got == {"v0": b"new", "v1": b"x", "v2": b"x"}
        finally:
            proxy.restore()
            await stores.close()

    run(body())


def test_unreachable_database_fails_at_open() -> None:
    """Opening stores on a closed port raises StoreUnavailable quickly."""

    async def body() -> None:
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await open_stores("mysql://root@127.0.0.1:1/croupier?connect_timeout=0.5")
        assert time.monotonic() - t0 < 1.0

    run(body())
