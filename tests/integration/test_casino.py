"""Casino requests over real sockets against real stores (SQLite file, MySQL).

Each test runs a server on its own loop thread (conftest.running_server); the store is
inspected on the server's loop, through the server's own `Stores`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec
import pytest

from gameserver import auth
from gameserver.casino import account_id
from gameserver.config import CasinoSection, CasinoZone, Config, StoreSection
from persistence import Stores
from protocol.codes import ErrorCode
from protocol.limits import FloodLimits
from tests.contract.conftest import mysql_url  # noqa: F401 - the session database fixture
from tests.faultproxy import FaultProxy

from .client import TcpClient, WsClient
from .conftest import SECRET, Running, running_server, server_config

T = TypeVar("T")
START = 10_000
FAST = FloodLimits(rate=10_000, burst=10_000)


def casino_server_config(url: str, transport: str = "picows", starting_balance: int = START) -> Config:
    base = server_config(transport, flood=FAST)
    zone = CasinoZone(
        games={"fruit_slot": "96.5", "demo_orchard": "96"}, currency="FUN", starting_balance=starting_balance
    )
    return msgspec.structs.replace(
        base,
        store=StoreSection(url=url, commit_timeout=3.0),
        casino=CasinoSection(zones={"demo": zone}),
    )


def on_server(r: Running, coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the server's loop (where its stores live)."""
    return asyncio.run_coroutine_threadsafe(coro, r.loop).result(20)


def stores_of(r: Running) -> Stores:
    assert r.server.stores is not None
    return r.server.stores


def token(user: int) -> str:
    return auth.mint(SECRET, user, "demo", name=f"u{user}", expires=int(time.time()) + 3600)


async def login(url: str, user: int) -> tuple[WsClient, dict[str, Any]]:
    c = await WsClient.connect(url)
    reply = await c.request("login", token=token(user))
    assert reply["type"] == "ok", reply
    return c, reply["data"]


def reconcile(r: Running, accounts: list[str]) -> dict[str, int]:
    """The ledger invariants (WAL-1) and each account's balance (= its ledger sum)."""
    stores = stores_of(r)

    async def check() -> dict[str, int]:
        assert await stores.wallet.ledger_totals() == {"FUN": 0}
        assert await stores.wallet.balance_mismatches() == []
        out = {}
        for a in accounts:
            wb = await stores.wallet.get_balance(a, "FUN")
            assert wb is not None
            out[a] = wb.balance
        return out

    return on_server(r, check())


def postings(r: Running, account: str, kind: str) -> int:
    async def count() -> int:
        rows = await stores_of(r).wallet.postings(account, "FUN", limit=10_000)
        return sum(1 for p in rows if p.kind == kind)

    return on_server(r, count())


async def spin_retry_reconcile(r: Running, user: int) -> None:
    c, _ = await login(r.ws_url, user)
    acct = account_id("demo", user)
    try:
        await c.send({"type": "spin", "id": 1000, "game": "fruit_slot", "coin": 25})
        first = await c.recv()
        while first.get("id") != 1000:
            first = await c.recv()
        assert first["type"] == "ok", first
        d = first["data"]
        assert d["balance"] == START - d["stake"] + d["win"]
        await c.send({"type": "spin", "id": 1000, "game": "fruit_slot", "coin": 25})
        again = await c.recv()
        assert again == first
        total = d["balance"]
        for _ in range(20):
            s = (await c.request("spin", game="fruit_slot", coin=5))["data"]
            assert s["balance"] == total - s["stake"] + s["win"]
            total = s["balance"]
        bal = await c.request("balance")
        assert bal["data"]["balance"] == total
    finally:
        await c.close()
    assert reconcile(r, [acct]) == {acct: total}
    assert postings(r, acct, "bet") == 21
    assert postings(r, acct, "bonus") == 1  # the welcome credit, once


@pytest.mark.parametrize("transport", ["picows", "websockets"])
def test_spin_retry_and_reconciliation_on_sqlite(tmp_path: Path, transport: str) -> None:
    with running_server(casino_server_config(f"sqlite:///{tmp_path}/c.db", transport)) as r:
        asyncio.run(spin_retry_reconcile(r, 11))


@pytest.mark.parametrize("delay", [0.0, 0.2])
def test_the_commit_delay_setting_governs_the_writer(tmp_path: Path, delay: float) -> None:
    """By default a spin commits without waiting for others; `store.commit_delay` makes
    concurrent spins share a batch, with one timer per batch."""
    cfg = casino_server_config(f"sqlite:///{tmp_path}/c.db")
    cfg = msgspec.structs.replace(cfg, store=msgspec.structs.replace(cfg.store, commit_delay=delay))
    with running_server(cfg) as r:
        writer = stores_of(r).writer
        assert writer.config.max_delay_ms == delay * 1000

        async def body() -> None:
            clients = [(await login(r.ws_url, 40 + i))[0] for i in range(4)]
            try:
                before = writer.stats.batches
                replies = await asyncio.gather(
                    *[c.request("spin", game="fruit_slot", coin=5) for c in clients]
                )
                assert [m["type"] for m in replies] == ["ok"] * 4
                batches = writer.stats.batches - before
                if delay:
                    assert batches < 4 and writer.stats.lingers <= writer.stats.batches
                else:
                    assert writer.stats.lingers == 0
            finally:
                for c in clients:
                    await c.close()

        asyncio.run(body())


def test_refusals_over_tcp(tmp_path: Path) -> None:
    with running_server(casino_server_config(f"sqlite:///{tmp_path}/c.db", starting_balance=30)) as r:

        async def body() -> None:
            c = await TcpClient.connect(r.tcp_port)
            try:
                assert (await c.request("login", token=token(12)))["type"] == "ok"
                assert (await c.request("spin", game="nope"))["code"] == ErrorCode.GAME_NOT_FOUND
                assert (await c.request("spin", game="fruit_slot", coin=7))["code"] == ErrorCode.BAD_BET
                poor = await c.request("spin", game="fruit_slot", coin=100)
                assert poor["code"] == ErrorCode.INSUFFICIENT_FUNDS
                info = await c.request("game_info")
                assert {g["game"] for g in info["data"]["games"]} == {"fruit_slot", "demo_orchard"}
                bal = await c.request("balance")
                assert bal["data"]["balance"] == 30
            finally:
                await c.close()

        asyncio.run(body())
        acct = account_id("demo", 12)
        assert reconcile(r, [acct]) == {acct: 30}
        assert postings(r, acct, "bet") == 0


async def open_free_spins(c: WsClient, tries: int = 5000) -> dict[str, Any]:
    for _ in range(tries):
        reply = await c.request("spin", game="demo_orchard", coin=1)
        assert reply["type"] == "ok", reply
        if not reply["data"]["complete"]:
            return dict(reply["data"])
    raise AssertionError("no free spins in time")


async def continue_to_end(c: WsClient, first: dict[str, Any]) -> dict[str, Any]:
    revealed = first["revealed"]
    while True:
        reply = await c.request("round_continue", round=first["round"])
        assert reply["type"] == "ok", reply
        d = reply["data"]
        assert d["revealed"] == revealed + 1
        revealed = d["revealed"]
        if d["complete"]:
            assert d["running_win"] == first["win"]
            return dict(d)


def test_free_spins_continue_after_resume(tmp_path: Path) -> None:
    with running_server(casino_server_config(f"sqlite:///{tmp_path}/c.db")) as r:

        async def body() -> None:
            c, data = await login(r.ws_url, 13)
            first = await open_free_spins(c)
            step = await c.request("round_continue", round=first["round"])
            assert step["data"]["revealed"] == first["revealed"] + 1
            seen = step["data"]
            c.ws.transport.abort()  # the network dies
            await asyncio.sleep(0.2)
            c2 = await WsClient.connect(r.ws_url)
            try:
                c2._id = 500
                resumed = await c2.request("resume", token=data["resume_token"])
                assert resumed["type"] == "ok", resumed
                bal = await c2.request("balance")
                assert bal["data"]["open_rounds"] == [
                    {
                        "round": first["round"],
                        "game": "demo_orchard",
                        "steps": first["steps"],
                        "revealed": seen["revealed"],
                    }
                ]
                # re-sending a step already seen changes nothing
                again = await c2.request("round_continue", round=first["round"], step=seen["revealed"] - 1)
                assert again["data"]["step"] == seen["step"]
                last = await continue_to_end(c2, seen)
                assert last["balance"] == bal["data"]["balance"]
            finally:
                await c2.close()

        asyncio.run(body())
        acct = account_id("demo", 13)
        reconcile(r, [acct])


def test_free_spins_continue_after_restart(tmp_path: Path) -> None:
    config = casino_server_config(f"sqlite:///{tmp_path}/c.db")
    with running_server(config) as r:

        async def first_part() -> dict[str, Any]:
            c, _ = await login(r.ws_url, 14)
            try:
                return await open_free_spins(c)
            finally:
                await c.close()

        first = asyncio.run(first_part())
        before = reconcile(r, [account_id("demo", 14)])
    with running_server(config) as r:

        async def second_part() -> None:
            c, _ = await login(r.ws_url, 14)
            try:
                bal = await c.request("balance")
                assert bal["data"]["balance"] == before[account_id("demo", 14)]
                assert [o["round"] for o in bal["data"]["open_rounds"]] == [first["round"]]
                blocked = await c.request("spin", game="demo_orchard", coin=1)
                assert blocked["code"] == ErrorCode.ROUND_IN_PROGRESS
                await continue_to_end(c, first)
                hist = await c.request("history", limit=1)
                h = hist["data"]["rounds"][0]
                assert h["round"] == first["round"] and h["status"] == "settled"
                assert h["steps"][0] == first["step"]
            finally:
                await c.close()

        asyncio.run(second_part())
        acct = account_id("demo", 14)
        assert reconcile(r, [acct]) == before  # revealing moved no money


# -- MySQL, for real ---------------------------------------------------------------------------


@pytest.mark.mysql
def test_spin_retry_and_reconciliation_on_mysql(mysql_url: str) -> None:  # noqa: F811
    with running_server(casino_server_config(mysql_url)) as r:
        asyncio.run(spin_retry_reconcile(r, 20_000 + secrets.randbelow(10**6)))


@pytest.fixture
def proxy(mysql_url: str) -> Iterator[FaultProxy]:  # noqa: F811
    p = urlsplit(mysql_url)
    with FaultProxy(p.hostname or "127.0.0.1", p.port or 3306) as fp:
        yield fp


@pytest.mark.mysql
def test_database_down_is_unavailable_with_no_ack(mysql_url: str, proxy: FaultProxy) -> None:  # noqa: F811
    p = urlsplit(mysql_url)
    url = urlunsplit(
        (
            p.scheme,
            f"{p.username or 'root'}@127.0.0.1:{proxy.port}",
            p.path,
            "timeout=1&connect_timeout=0.5",
            "",
        )
    )
    user = 20_000 + secrets.randbelow(10**6)
    acct = account_id("demo", user)
    with running_server(casino_server_config(url)) as r:

        async def body() -> None:
            c, _ = await login(r.ws_url, user)
            try:
                ok = await c.request("spin", game="fruit_slot", coin=5)
                assert ok["type"] == "ok", ok
                proxy.cut()
                down = await c.request("spin", game="fruit_slot", coin=5)
                assert down["type"] == "error" and down["code"] == ErrorCode.UNAVAILABLE, down
                rid = c._id
                proxy.restore()
                # the session stayed up; the same id is retried until the store is back
                deadline = time.monotonic() + 15
                while True:
                    await c.send({"type": "spin", "id": rid, "game": "fruit_slot", "coin": 5})
                    retry = await c.recv()
                    while retry.get("id") != rid:
                        retry = await c.recv()
                    if retry["type"] == "ok":
                        break
                    assert retry["code"] in (ErrorCode.UNAVAILABLE, ErrorCode.BUSY), retry
                    assert time.monotonic() < deadline, "the store did not come back"
                    await asyncio.sleep(0.2)
                bal = await c.request("balance")
                assert bal["data"]["balance"] == retry["data"]["balance"]
            finally:
                await c.close()

        asyncio.run(body())
        # the failed attempt posted at most once (its retry returned the true outcome)
        assert postings(r, acct, "bet") == 2
        reconcile(r, [acct])


@pytest.mark.mysql
def test_free_spins_round_on_mysql(mysql_url: str) -> None:  # noqa: F811
    user = 20_000 + secrets.randbelow(10**6)
    with running_server(casino_server_config(mysql_url)) as r:

        async def body() -> None:
            c, _ = await login(r.ws_url, user)
            try:
                first = await open_free_spins(c)
                await continue_to_end(c, first)
                done = await c.request("round_continue", round=first["round"])
                assert done["code"] == ErrorCode.ROUND_COMPLETE
            finally:
                await c.close()

        asyncio.run(body())
        reconcile(r, [account_id("demo", user)])
