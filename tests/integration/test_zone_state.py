"""Zone state survives a restart, over real sockets, on SQLite (a file) and on MySQL.

Bans, persistent room variables and the audit log are loaded at start-up; a user's
persistent variables come back at the next login, as a `user_variables` event right
after the login reply (docs/persistence.md: written behind, coalesced per key).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gameserver import auth
from gameserver.config import Config, StoreSection
from persistence import VarScope, open_stores
from protocol.codes import ErrorCode
from tests.contract.conftest import mysql_url  # noqa: F401 - the session database fixture

from .client import WsClient
from .conftest import SECRET, Running, running_server, server_config


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
    else:
        yield request.getfixturevalue("mysql_url")


def state_config(url: str) -> Config:
    return msgspec.structs.replace(server_config(), store=StoreSection(url=url, zone_state=True))


def token(user: int, role: str = "user") -> str:
    return auth.mint(SECRET, user, "demo", name=f"u{user}", role=role, expires=int(time.time()) + 600)


def fresh_ids(n: int) -> list[int]:
    """User ids no other test of the session (on the shared MySQL database) uses."""
    base = 30_000_000 + secrets.randbelow(10**8)
    return [base + i for i in range(n)]


async def login(url: str, user: int, role: str = "user") -> WsClient:
    c = await WsClient.connect(url)
    reply = await c.request("login", token=token(user, role))
    assert reply["type"] == "ok", reply
    return c


def values(event: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v["value"] for v in event["data"]["variables"]}


def test_bans_and_persistent_room_variables_survive_a_restart(store_url: str) -> None:
    mod_id, banned, other = fresh_ids(3)
    cfg = state_config(store_url)

    async def first_run(ws_url: str) -> None:
        mod = await login(ws_url, mod_id, "moderator")
        user = await login(ws_url, banned)
        await mod.request("join_room", room="Lobby")
        variables = [
            {"name": "jackpot", "value": 500, "persistent": True},
            {"name": "dealer", "value": "ann", "persistent": True},
            {"name": "temp", "value": 1},
        ]
        assert (await mod.request("set_room_variables", room=1, variables=variables))["type"] == "ok"
        gone = [{"name": "dealer", "value": None}]
        assert (await mod.request("set_room_variables", room=1, variables=gone))["type"] == "ok"
        assert (await mod.request("ban", user=banned, hours=1, reason="abuse"))["type"] == "ok"
        await mod.close()
        await user.close()

    with running_server(cfg) as srv:
        asyncio.run(first_run(srv.ws_url))

    async def second_run(ws_url: str) -> None:
        user = await WsClient.connect(ws_url)
        refused = await user.request("login", token=token(banned))
        assert refused["code"] == ErrorCode.USER_BANNED
        c = await login(ws_url, other)
        joined = await c.request("join_room", room="Lobby")
        names = {v["name"]: v["value"] for v in joined["data"]["room"].get("variables", [])}
        assert names == {"jackpot": 500}  # the deleted and the non-persistent ones are gone
        await user.close()
        await c.close()

    with running_server(cfg) as srv:
        asyncio.run(second_run(srv.ws_url))

    async def audit() -> None:
        stores = await open_stores(store_url)
        try:
            entries = [e for e in await stores.audit.entries() if e.target == f"demo:{banned}"]
            assert [(e.action, e.actor, e.reason) for e in entries] == [("ban", f"demo:{mod_id}", "abuse")]
            assert await stores.audit.verify_chain() is None
        finally:
            await stores.close()

    asyncio.run(audit())


def test_persistent_user_variables_come_back_at_the_next_login(store_url: str) -> None:
    user, peer = fresh_ids(2)
    cfg = state_config(store_url)
    kept = {"level": 7, "avatar": "fox", "prefs": {"sound": False}}

    async def first_run(ws_url: str) -> None:
        c = await login(ws_url, user)
        variables = [
            {"name": "level", "value": 6, "persistent": True},
            {"name": "avatar", "value": "fox", "persistent": True},
            {"name": "prefs", "value": {"sound": False}, "persistent": True, "private": True},
            {"name": "mood", "value": "happy", "persistent": True},
            {"name": "seat", "value": 3},  # not persistent: gone after logout
        ]
        assert (await c.request("set_user_variables", variables=variables))["type"] == "ok"
        changes = [
            {"name": "level", "value": 7, "persistent": True},  # coalesced with the first write
            {"name": "mood", "value": None},  # deleted
        ]
        assert (await c.request("set_user_variables", variables=changes))["type"] == "ok"
        await c.request("logout")
        c.events.clear()  # the echoes of our own changes
        # logging in again at once (before the write-behind flush) sees the latest values
        again = await c.request("login", token=token(user))
        assert again["type"] == "ok", again
        assert values(await c.event("user_variables")) == kept
        await c.close()

    with running_server(cfg) as srv:
        asyncio.run(first_run(srv.ws_url))

    async def second_run(srv: Running) -> None:
        ws_url = srv.ws_url
        p = await login(ws_url, peer)
        await p.request("join_room", room="Lobby")
        c = await login(ws_url, user)
        restored = await c.event("user_variables")
        assert restored["data"]["user"] == user
        assert values(restored) == kept
        assert all(v["persistent"] for v in restored["data"]["variables"])
        assert srv.server.stores is not None and srv.server.stores.write_behind.dirty == 0  # not written back
        joined = await c.request("join_room", room="Lobby")
        assert joined["type"] == "ok", joined
        # a peer sees the public ones only
        me = next(u for u in joined["data"]["users"] if u["id"] == user)
        assert {v["name"] for v in me.get("variables", [])} == {"level", "avatar"}
        await c.close()
        await p.close()

    with running_server(cfg) as srv:  # a restart: the values come from the database
        asyncio.run(second_run(srv))

    async def stored() -> list[str]:
        stores = await open_stores(store_url)
        try:
            return [v.name for v in await stores.variables.load_variables(VarScope.USER, f"demo:{user}")]
        finally:
            await stores.close()

    assert asyncio.run(stored()) == ["avatar", "level", "prefs"]


def test_guest_variables_are_not_kept(store_url: str) -> None:
    cfg = state_config(store_url)

    async def body(ws_url: str) -> int:
        c = await WsClient.connect(ws_url)
        reply = await c.request("login", guest=True, zone="demo")
        assert reply["type"] == "ok", reply
        var = [{"name": "level", "value": 1, "persistent": True}]
        assert (await c.request("set_user_variables", variables=var))["type"] == "ok"
        await c.close()
        return int(reply["data"]["user"]["id"])

    with running_server(cfg) as srv:
        guest = asyncio.run(body(srv.ws_url))

    async def stored() -> int:
        stores = await open_stores(store_url)
        try:
            return len(await stores.variables.load_variables(VarScope.USER, f"demo:{guest}"))
        finally:
            await stores.close()

    assert asyncio.run(stored()) == 0
