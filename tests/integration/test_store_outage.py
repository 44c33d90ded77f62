"""Money over real sockets while the database hangs or Redis is down (reliability C3, C4, C7).

The real MariaDB and Redis servers are never touched: each test puts a fault proxy
(tests/faultproxy.py, on loopback) between the game server and the service and makes
*that* hang or refuse. Pass criteria:

- database hung: every spin gets a retryable `unavailable`/`busy` error within the
  commit timeout (never a success for an uncommitted write); sessions stay connected
  and answer pings at once; after recovery every retried spin (same id) settles exactly
  once and a burst of new spins drains; the ledger reconciles;
- Redis down: spins, balances and the welcome credit work (Redis takes no part in any
  money decision); when Redis is back the balance views are rebuilt from commits.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import pytest

from gameserver.casino import account_id
from gameserver.config import StoreSection
from protocol.codes import ErrorCode
from tests.contract.conftest import mysql_url, redis_url  # noqa: F401 - session fixtures
from tests.faultproxy import FaultProxy

from .client import WsClient
from .conftest import Running, running_server
from .test_admin import get, sample
from .test_casino import casino_server_config, login, on_server, postings, reconcile, stores_of

RETRYABLE = (ErrorCode.UNAVAILABLE, ErrorCode.BUSY)
COMMIT_TIMEOUT = 1.5


@pytest.fixture
def db_proxy(mysql_url: str) -> Iterator[tuple[FaultProxy, str]]:  # noqa: F811
    p = urlsplit(mysql_url)
    with FaultProxy(p.hostname or "127.0.0.1", p.port or 3306) as fp:
        netloc = f"{p.username or 'root'}@127.0.0.1:{fp.port}"
        yield fp, urlunsplit((p.scheme, netloc, p.path, "timeout=1&connect_timeout=0.5", ""))


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[tuple[FaultProxy, str]]:  # noqa: F811
    p = urlsplit(redis_url)
    with FaultProxy(p.hostname or "127.0.0.1", p.port or 6379) as fp:
        yield fp, f"redis://127.0.0.1:{fp.port}{p.path}?{p.query}&timeout=0.1&probe_interval_s=0.1"


async def answer(c: WsClient, rid: int, timeout: float = 10.0) -> dict[str, Any]:
    """The reply to request `rid` (events and other replies are skipped)."""
    while True:
        msg = await c.recv(timeout)
        if msg["type"] in ("ok", "error") and msg.get("id") == rid:
            return msg


async def spin_until_ok(c: WsClient, rid: int, deadline: float) -> dict[str, Any]:
    """Send spin `rid` until it succeeds (the retry of an unacknowledged spin: same id)."""
    while True:
        await c.send({"type": "spin", "id": rid, "game": "fruit_slot", "coin": 5})
        reply = await answer(c, rid)
        if reply["type"] == "ok":
            return reply
        assert reply["code"] in RETRYABLE, reply
        assert time.monotonic() < deadline, "the store did not come back"
        await asyncio.sleep(0.1)


@pytest.mark.mysql
def test_hung_database_refuses_spins_keeps_sessions_and_drains_after(
    db_proxy: tuple[FaultProxy, str],
) -> None:
    proxy, url = db_proxy
    base = 40_000_000 + secrets.randbelow(10**8)
    users = [base + i for i in range(6)]
    cfg = casino_server_config(url)
    cfg = msgspec.structs.replace(cfg, store=StoreSection(url=url, commit_timeout=COMMIT_TIMEOUT))

    async def body(r: Running) -> None:
        clients = [(await login(r.ws_url, u))[0] for u in users]
        try:
            for c in clients:  # warm: wallet loaded, welcome credit posted
                assert (await c.request("spin", game="fruit_slot", coin=5))["type"] == "ok"
            proxy.hang()  # like kill -STOP on the database: connections accept, nothing answers
            t0 = time.monotonic()
            rids = []
            for c in clients:
                c._id += 1
                rids.append(c._id)
                await c.send({"type": "spin", "id": c._id, "game": "fruit_slot", "coin": 5})
            # the sessions stay up and answer pings while the money path waits
            for c in clients:
                t1 = time.monotonic()
                assert (await c.request("ping"))["type"] == "ok"
                assert time.monotonic() - t1 < 0.5
            refused = [await answer(c, rid) for c, rid in zip(clients, rids, strict=True)]
            waited = time.monotonic() - t0
            assert all(x["type"] == "error" and x["code"] in RETRYABLE for x in refused), refused
            assert waited < COMMIT_TIMEOUT + 2.0, waited
            # still refused at once (circuit open) or after one timeout, never acknowledged
            down = await clients[0].request("spin", game="fruit_slot", coin=5)
            assert down["type"] == "error" and down["code"] in RETRYABLE, down
            retry0 = clients[0]._id
            proxy.restore()
            deadline = time.monotonic() + 20
            await asyncio.gather(
                *(spin_until_ok(c, rid, deadline) for c, rid in zip(clients, rids, strict=True))
            )
            await spin_until_ok(clients[0], retry0, deadline)

            async def burst(c: WsClient) -> None:  # the queue drains: 20 spins each, all at once
                ids = []
                for _ in range(20):
                    c._id += 1
                    ids.append(c._id)
                    await c.send({"type": "spin", "id": c._id, "game": "fruit_slot", "coin": 1})
                for rid in ids:
                    assert (await answer(c, rid))["type"] == "ok"

            await asyncio.gather(*(burst(c) for c in clients))
            for c in clients:
                assert (await c.request("ping"))["type"] == "ok"  # never disconnected
        finally:
            proxy.restore()
            for c in clients:
                await c.close()

    with running_server(cfg) as r:
        asyncio.run(body(r))
        accounts = [account_id("demo", u) for u in users]
        reconcile(r, accounts)
        # warm spin + the refused one, settled once by its retries + the burst (+1 for the first user)
        assert [postings(r, a, "bet") for a in accounts] == [23] + [22] * (len(users) - 1)
        assert all(postings(r, a, "bonus") == 1 for a in accounts)


@pytest.mark.redis
def test_redis_down_does_not_stop_money_and_views_rebuild(
    redis_proxy: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    proxy, cache_url = redis_proxy
    url = f"sqlite:///{tmp_path}/r.db"
    cfg = casino_server_config(url)
    cfg = msgspec.structs.replace(cfg, store=StoreSection(url=url, cache_url=cache_url, commit_timeout=3.0))
    user = 50_000_000 + secrets.randbelow(10**8)
    acct = account_id("demo", user)

    def view(r: Running) -> bytes | None:
        return on_server(r, stores_of(r).cache.get(f"bal:{acct}:FUN"))

    with running_server(cfg) as r:

        async def body() -> None:
            c, _ = await login(r.ws_url, user)
            try:
                assert (await c.request("spin", game="fruit_slot", coin=5))["type"] == "ok"
                proxy.cut()
                total = 0
                for _ in range(10):  # Redis down: every spin still commits and answers
                    reply = await c.request("spin", game="fruit_slot", coin=5)
                    assert reply["type"] == "ok", reply
                    total = reply["data"]["balance"]
                assert (await c.request("balance"))["data"]["balance"] == total
                assert not stores_of(r).cache.healthy
                _, text = get(r.admin_url + "/metrics")  # the operator sees the outage
                assert sample(text, "croupier_cache_up") == 0
                assert sample(text, "croupier_cache_errors_total") >= 1
                assert sample(text, "croupier_ledger_failed_total") == 0
                proxy.restore()
                deadline = time.monotonic() + 10
                while not stores_of(r).cache.healthy:  # probed every 0.1 s
                    assert time.monotonic() < deadline, "the cache did not recover"
                    await asyncio.sleep(0.05)
                last = await c.request("spin", game="fruit_slot", coin=5)
                assert last["type"] == "ok", last
                _, text = get(r.admin_url + "/metrics")
                assert sample(text, "croupier_cache_up") == 1
                assert sample(text, "croupier_cache_recoveries_total") >= 1
                # the view is written through again after the next commit
                while view(r) != str(last["data"]["balance"]).encode():
                    assert time.monotonic() < deadline, f"balance view not rebuilt: {view(r)!r}"
                    await asyncio.sleep(0.05)
            finally:
                proxy.restore()
                await c.close()

        asyncio.run(body())
        assert reconcile(r, [acct])[acct] == int(view(r) or b"-1")
        assert postings(r, acct, "bet") == 12
        on_server(r, stores_of(r).cache.invalidate_all())


@pytest.mark.mysql
def test_persistent_variables_set_while_the_database_is_down_are_written_after(
    db_proxy: tuple[FaultProxy, str],
) -> None:
    """Non-money state during an outage: the request succeeds at once (written behind),
    the change is kept while the database refuses, and reaches it after recovery."""
    from gameserver.config import Config
    from persistence import VarScope

    from .conftest import server_config

    proxy, url = db_proxy
    cfg: Config = msgspec.structs.replace(server_config(), store=StoreSection(url=url, zone_state=True))
    user = 60_000_000 + secrets.randbelow(10**8)

    with running_server(cfg) as r:

        async def body() -> None:
            c, _ = await login(r.ws_url, user)
            try:
                proxy.cut()
                var = [{"name": "level", "value": 9, "persistent": True}]
                t0 = time.monotonic()
                reply = await c.request("set_user_variables", variables=var)
                assert reply["type"] == "ok", reply
                assert time.monotonic() - t0 < 0.5  # no database in the request path
                await asyncio.sleep(1.5)  # at least one flush fails meanwhile
                assert stores_of(r).write_behind.failures >= 1
                assert stores_of(r).write_behind.dirty == 1
                assert (await c.request("ping"))["type"] == "ok"
                proxy.restore()
                deadline = time.monotonic() + 20  # the retry backoff is at most 10 s
                while stores_of(r).write_behind.dirty:
                    assert time.monotonic() < deadline, "write-behind did not drain"
                    await asyncio.sleep(0.1)
            finally:
                proxy.restore()
                await c.close()

        asyncio.run(body())
        got = on_server(r, stores_of(r).variables.load_variables(VarScope.USER, f"demo:{user}"))
        assert [v.name for v in got] == ["level"]
