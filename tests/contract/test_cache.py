"""Cache contract over the memory cache and real Redis, and the Redis-down behaviour (C4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from persistence import (
    Account,
    CacheUnavailable,
    InsufficientFunds,
    LeaderboardOp,
    LeaderboardRecord,
    PostingKind,
    Txn,
    spin_txn,
    transfer,
)
from persistence.cache import Cache
from persistence.factory import Stores, open_cache, open_stores
from tests.contract.conftest import RUN_ID, run
from tests.faultproxy import FaultProxy


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


def with_cache(url: str, body: object) -> None:
    async def go() -> None:
        cache = open_cache(url)
        try:
            await cache.invalidate_all()
            await body(cache)  # type: ignore[operator]
        finally:
            await cache.invalidate_all()
            await cache.close()

    run(go())


def test_values_expire_and_nx_does_not_overwrite(cache_url: str) -> None:
    """set_many stores with a TTL; nx only fills absent keys; delete removes."""

    async def body(c: Cache) -> None:
        await c.set_many({"a": b"1", "b": b"2"}, 30)
        await c.set_many({"a": b"stale", "c": b"3"}, 30, nx=True)
        assert [await c.get(k) for k in "abc"] == [b"1", b"2", b"3"]
        await c.delete(["b", "zz"])
        assert await c.get("b") is None
        await c.set_many({"short": b"x"}, 0.05)
        await asyncio.sleep(0.12)
        assert await c.get("short") is None

    with_cache(cache_url, body)


def test_sorted_sets_rank_best_first(cache_url: str) -> None:
    """zadd replaces scores; ztop and zrank order by score, best first."""

    async def body(c: Cache) -> None:
        await c.zadd("lb:w1", {"alice": 10, "bob": 30, "carol": 20})
        await c.zadd("lb:w1", {"alice": 40})
        assert await c.ztop("lb:w1", limit=2) == [("alice", 40), ("bob", 30)]
        assert await c.ztop("lb:w1", limit=5, offset=2) == [("carol", 20)]
        assert (await c.zrank("lb:w1", "carol"), await c.zrank("lb:w1", "nobody")) == (3, None)
        await c.zdelete("lb:w1")
        assert await c.ztop("lb:w1") == []

    with_cache(cache_url, body)


def test_invalidate_all_drops_only_its_own_keys(cache_url: str) -> None:
    """Two caches with different prefixes share a Redis database without touching each other."""
    if cache_url == "memory://":
        pytest.skip("prefixes only matter on a shared Redis")
    other_url = cache_url.replace(f"croupier_test_{RUN_ID}:", f"croupier_test_{RUN_ID}_other:")

    async def body(c: Cache) -> None:
        other = open_cache(other_url)
        try:
            await other.set_many({"k": b"keep"}, 30)
            await c.set_many({"k": b"drop"}, 30)
            await c.zadd("lb", {"m": 1})
            assert await c.invalidate_all() == 2
            assert await c.get("k") is None and await other.get("k") == b"keep"
        finally:
            await other.invalidate_all()
            await other.close()

    with_cache(cache_url, body)


def with_stores(db: str, cache_url: str, body: object) -> None:
    async def go() -> None:
        stores = await open_stores(db, cache_url)
        try:
            await stores.cache.invalidate_all()
            await stores.wallet.open_wallet("house", "EUR", allow_negative=True)
            await body(stores)  # type: ignore[operator]
        finally:
            await stores.cache.invalidate_all()
            await stores.close()

    run(go())


async def settle(stores: Stores) -> None:
    """Let the background cache write-through finish."""
    task = stores._wt_task
    if task is not None:
        await task


def test_balance_view_is_written_through_after_commit(cache_url: str, tmp_path: Path) -> None:
    """After a commit the balance view holds the committed balance; misses read the database."""

    async def body(s: Stores) -> None:
        assert await s.balance("u1", "EUR") is None
        await s.commit(Txn(key="d", entries=transfer("house", "u1", "EUR", 500, PostingKind.DEPOSIT)))
        await settle(s)
        assert await s.cache.get("bal:u1:EUR") == b"500"
        await s.commit(spin_txn("s1", player="u1", house="house", currency="EUR", bet=100, win=0))
        await settle(s)
        assert await s.balance("u1", "EUR") == 400
        await s.cache.delete(["bal:u1:EUR"])
        assert await s.balance("u1", "EUR") == 400  # read-through from the database
        assert await s.cache.get("bal:u1:EUR") == b"400"

    with_stores(f"sqlite:///{tmp_path}/c.db", cache_url, body)


def test_account_view_is_invalidated_on_update(cache_url: str, tmp_path: Path) -> None:
    """The account view is filled on read and dropped when the account changes."""

    async def body(s: Stores) -> None:
        acc = await s.accounts.create_account(Account(user_id="u1", zone="z", name="alice"))
        assert await s.account("u1") == acc
        assert await s.cache.get("acct:u1") is not None
        await s.update_account(Account(user_id="u1", zone="z", name="alice2"))
        got = await s.account("u1")
        assert got is not None and got.name == "alice2"

    with_stores(f"sqlite:///{tmp_path}/c.db", cache_url, body)


def test_a_wrong_cached_balance_never_allows_an_overdraft(cache_url: str, tmp_path: Path) -> None:
    """Balance decisions come from the database: an inflated view in the cache changes nothing."""

    async def body(s: Stores) -> None:
        await s.commit(Txn(key="d", entries=transfer("house", "u1", "EUR", 50, PostingKind.DEPOSIT)))
        await settle(s)
        await s.cache.set_many({"bal:u1:EUR": b"1000000"}, 30)
        with pytest.raises(InsufficientFunds):
            await s.commit(spin_txn("s1", player="u1", house="house", currency="EUR", bet=100, win=0))
        wb = await s.wallet.get_balance("u1", "EUR")
        assert wb is not None and wb.balance == 50

    with_stores(f"sqlite:///{tmp_path}/c.db", cache_url, body)


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[tuple[FaultProxy, str]]:
    p = urlsplit(redis_url)
    with FaultProxy(p.hostname or "127.0.0.1", p.port or 6379) as fp:
        url = f"redis://127.0.0.1:{fp.port}{p.path}?{p.query}&timeout=0.1&probe_interval_s=0.1"
        yield fp, url


@pytest.mark.redis
def test_redis_down_degrades_then_rebuilds(redis_proxy: tuple[FaultProxy, str], tmp_path: Path) -> None:
    """Redis down: balances still come from the database, money still commits, cache-only calls fail
    clearly; back up: stale views are dropped and leaderboards are refilled from the database."""
    proxy, url = redis_proxy

    async def body(s: Stores) -> None:
        await s.commit(Txn(key="d", entries=transfer("house", "u1", "EUR", 1000, PostingKind.DEPOSIT)))
        await s.submit_scores(
            [LeaderboardRecord(board_id="daily", period="d1", owner_id="u1", score=5)], LeaderboardOp.BEST
        )
        await settle(s)
        assert await s.balance("u1", "EUR") == 1000
        proxy.cut()
        t0 = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await s.cache.ztop("daily:d1")
        assert time.monotonic() - t0 < 1.0
        t0 = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await s.cache.ztop("daily:d1")  # known down: refused at once
        assert time.monotonic() - t0 < 0.05
        assert (s.cache.errors, s.cache.refused, s.cache.recoveries) == (1, 1, 0)  # /metrics shows these
        # money and balances do not depend on Redis
        await s.commit(spin_txn("s1", player="u1", house="house", currency="EUR", bet=100, win=0))
        assert await s.balance("u1", "EUR") == 900
        await s.submit_scores(
            [LeaderboardRecord(board_id="daily", period="d1", owner_id="u2", score=9)], LeaderboardOp.BEST
        )
        proxy.restore()
        await asyncio.sleep(0.15)
        assert await s.balance("u1", "EUR") == 900  # the stale 1000 was dropped on recovery
        assert s.cache.healthy and s.cache.recoveries == 1
        assert await s.cache.ztop("daily:d1") == [("u2", 9), ("u1", 5)]  # refilled from the database

    async def go() -> None:
        stores = await open_stores(f"sqlite:///{tmp_path}/r.db", url)
        try:
            await stores.wallet.open_wallet("house", "EUR", allow_negative=True)
            await body(stores)
        finally:
            proxy.restore()
            await stores.cache.invalidate_all()
            await stores.close()

    run(go())


@pytest.mark.redis
def test_a_down_cache_recovers_with_only_commits(redis_proxy: tuple[FaultProxy, str], tmp_path: Path) -> None:
    """With no cache reads at all, commits alone get a down Redis probed and the views back."""
    proxy, url = redis_proxy

    async def go() -> None:
        stores = await open_stores(f"sqlite:///{tmp_path}/w.db", url)
        try:
            await stores.wallet.open_wallet("house", "EUR", allow_negative=True)
            await stores.commit(
                Txn(key="d", entries=transfer("house", "u1", "EUR", 1000, PostingKind.DEPOSIT))
            )
            await settle(stores)
            proxy.cut()
            await stores.commit(spin_txn("s1", player="u1", house="house", currency="EUR", bet=100, win=0))
            await settle(stores)  # the write-through finds Redis down
            assert not stores.cache.healthy
            await stores.commit(spin_txn("s2", player="u1", house="house", currency="EUR", bet=100, win=0))
            proxy.restore()
            deadline = time.monotonic() + 5
            while not stores.cache.healthy:
                assert time.monotonic() < deadline, "nothing probed the cache"
                await asyncio.sleep(0.02)
            assert await stores.cache.get("bal:u1:EUR") is None  # the stale 1000 was dropped
            await stores.commit(spin_txn("s3", player="u1", house="house", currency="EUR", bet=100, win=0))
            await settle(stores)
            assert await stores.cache.get("bal:u1:EUR") == b"700"
        finally:
            proxy.restore()
            await stores.cache.invalidate_all()
            await stores.close()

    run(go())
