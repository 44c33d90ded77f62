"""Bans, persistent room variables and the audit log survive a restart (SQLite file)."""

from __future__ import annotations

import asyncio
import time

import msgspec

from gameserver import auth
from gameserver.config import StoreSection
from persistence import open_stores
from protocol.codes import ErrorCode

from .client import WsClient
from .conftest import SECRET, running_server, server_config


def token(user: int, role: str = "user") -> str:
    return auth.mint(SECRET, user, "demo", name=f"u{user}", role=role, expires=int(time.time()) + 600)


def test_bans_and_persistent_variables_survive_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    cfg = msgspec.structs.replace(server_config(), store=StoreSection(url=url, zone_state=True))

    async def first_run(srv):
        mod = await WsClient.connect(srv.ws_url)
        user = await WsClient.connect(srv.ws_url)
        assert (await mod.request("login", token=token(7, "moderator")))["type"] == "ok"
        assert (await user.request("login", token=token(8)))["type"] == "ok"
        await mod.request("join_room", room="Lobby")
        variables = [
            {"name": "jackpot", "value": 500, "persistent": True},
            {"name": "dealer", "value": "ann", "persistent": True},
            {"name": "temp", "value": 1},
        ]
        assert (await mod.request("set_room_variables", room=1, variables=variables))["type"] == "ok"
        gone = [{"name": "dealer", "value": None}]
        assert (await mod.request("set_room_variables", room=1, variables=gone))["type"] == "ok"
        assert (await mod.request("ban", user=8, hours=1, reason="abuse"))["type"] == "ok"
        await mod.close()

    with running_server(cfg) as srv:
        asyncio.run(first_run(srv))

    async def second_run(srv):
        user = await WsClient.connect(srv.ws_url)
        refused = await user.request("login", token=token(8))
        assert refused["code"] == ErrorCode.USER_BANNED
        other = await WsClient.connect(srv.ws_url)
        await other.request("login", token=token(9))
        joined = await other.request("join_room", room="Lobby")
        names = {v["name"]: v["value"] for v in joined["data"]["room"].get("variables", [])}
        assert names == {"jackpot": 500}  # the deleted and the non-persistent ones are gone
        await user.close()
        await other.close()

    with running_server(cfg) as srv:
        asyncio.run(second_run(srv))

    async def audit():
        stores = await open_stores(url)
        try:
            entries = await stores.audit.entries()
            assert [(e.action, e.actor, e.target, e.reason) for e in entries] == [
                ("ban", "demo:7", "demo:8", "abuse")
            ]
            assert await stores.audit.verify_chain() is None
        finally:
            await stores.close()

    asyncio.run(audit())
