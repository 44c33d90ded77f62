"""The "done when" scenario over real sockets: every transport, both codecs, and TCP."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from protocol.codes import CloseCode, ErrorCode

from .client import TcpClient, WsClient
from .conftest import Running


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_guest_lobby_chat_variables_two_clients(server: Running, codec: str):
    """Log in as guests, list rooms, join the lobby, chat, set variables, see each other."""

    async def scenario():
        a = await WsClient.connect(server.ws_url, codec)
        b = await WsClient.connect(server.ws_url, codec)
        la = await a.request("login", guest=True, zone="demo", name="alice")
        lb = await b.request("login", guest=True, zone="demo", name="bob")
        assert la["type"] == lb["type"] == "ok"
        rooms = await a.request("list_rooms")
        lobby = next(r for r in rooms["data"]["rooms"] if r["name"] == "Lobby")
        assert (await a.request("join_room", room=lobby["id"]))["type"] == "ok"
        joined = await b.request("join_room", room="Lobby")
        assert {u["name"] for u in joined["data"]["users"]} == {"alice", "bob"}
        entered = await a.event("user_entered")
        assert entered["data"]["user"]["name"] == "bob"
        await b.request("public_message", room=lobby["id"], text="hi alice")
        msg = await a.event("public_message")
        assert msg["data"]["text"] == "hi alice" and msg["data"]["from"] == lb["data"]["user"]["id"]
        await b.request("set_room_variables", room=lobby["id"], variables=[{"name": "pot", "value": 100}])
        rv = await a.event("room_variables")
        assert rv["data"]["variables"] == [{"name": "pot", "value": 100}]
        await a.request("set_user_variables", variables=[{"name": "level", "value": 3}])
        uv = await b.event("user_variables")
        assert uv["data"]["user"] == la["data"]["user"]["id"]
        await b.request("private_message", to=la["data"]["user"]["id"], text="psst")
        pm = await a.event("private_message")
        assert pm["data"]["from"]["name"] == "bob"
        await a.close()
        left = await b.event("user_left", timeout=5)
        assert left["data"]["user"] == la["data"]["user"]["id"]
        await b.close()

    run(scenario())


def test_tcp_client_shares_rooms_with_websocket_client(server: Running):
    """A native TCP client and a WebSocket client in the same room see each other's messages."""

    async def scenario():
        t = await TcpClient.connect(server.tcp_port)
        w = await WsClient.connect(server.ws_url)
        assert (await t.request("login", guest=True, zone="demo", name="unity"))["type"] == "ok"
        assert (await w.request("login", guest=True, zone="demo", name="web"))["type"] == "ok"
        await t.request("join_room", room="Lobby")
        await w.request("join_room", room="Lobby")
        assert (await t.event("user_entered"))["data"]["user"]["name"] == "web"
        await w.request("public_message", room=1, text="from the browser")
        assert (await t.event("public_message"))["data"]["text"] == "from the browser"
        assert (await w.event("public_message"))["data"]["text"] == "from the browser"  # the echo
        await t.request("public_message", room=1, text="from unity")
        assert (await w.event("public_message"))["data"]["text"] == "from unity"
        pong = await t.request("ping", t=7)
        assert pong["data"]["t"] == 7
        await t.close()
        await w.close()

    run(scenario())


def test_resume_after_drop_replays_missed_events(server: Running):
    async def scenario():
        a = await WsClient.connect(server.ws_url)
        b = await WsClient.connect(server.ws_url)
        login = await a.request("login", guest=True, zone="demo", name="a")
        await b.request("login", guest=True, zone="demo", name="b")
        await a.request("join_room", room="Lobby")
        await b.request("join_room", room="Lobby")
        await a.event("user_entered")
        last = max(e["seq"] for e in a.events) if a.events else 0
        last = max(last, 2)
        a.ws.transport.abort()  # an unexpected drop: no close frame
        await asyncio.sleep(0.1)
        await b.request("public_message", room=1, text="missed")
        a2 = await WsClient.connect(server.ws_url)
        r = await a2.request("resume", token=login["data"]["resume_token"], last_seq=last)
        assert r["type"] == "ok", r
        ev = await a2.event("public_message")
        assert ev["data"]["text"] == "missed" and ev["seq"] > last
        await a2.close()
        await b.close()

    run(scenario())


def test_zones_are_isolated_over_the_wire(server: Running):
    async def scenario():
        a = await WsClient.connect(server.ws_url)
        o = await WsClient.connect(server.ws_url)
        await a.request("login", guest=True, zone="demo")
        lo = await o.request("login", guest=True, zone="other")
        r = await a.request("private_message", to=lo["data"]["user"]["id"], text="x")
        assert r["code"] == ErrorCode.USER_NOT_FOUND
        await a.close()
        await o.close()

    run(scenario())


def test_unknown_path_is_refused(server: Running):
    async def scenario():
        with pytest.raises(websockets.InvalidStatus) as exc:
            await websockets.connect(server.ws_url.replace("/ws", "/nope"))
        assert exc.value.response.status_code == 404

    run(scenario())


def test_no_subprotocol_means_json(server: Running):
    async def scenario():
        ws = await websockets.connect(server.ws_url)
        assert ws.subprotocol is None
        await ws.send('{"type":"ping","id":1}')
        assert '"type":"ok"' in await ws.recv()
        await ws.close()

    run(scenario())


def test_logout_then_close_code_normal(server: Running):
    async def scenario():
        a = await WsClient.connect(server.ws_url)
        await a.request("login", guest=True, zone="demo")
        assert (await a.request("logout"))["type"] == "ok"
        assert (await a.request("list_rooms"))["code"] == ErrorCode.NOT_LOGGED_IN
        await a.close()
        assert a.ws.close_code == CloseCode.NORMAL

    run(scenario())


@pytest.mark.parametrize("transport", ["picows", "websockets"])
def test_the_send_tick_holds_events_but_not_replies(transport: str):
    """With `server.event_tick_ms`, a chat reaches the other member about a tick later,
    while replies do not wait; a reply written first takes the waiting event with it."""
    import time

    import msgspec

    from .conftest import running_server, server_config

    config = server_config(transport)
    config = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, event_tick_ms=150))

    async def scenario(srv: Running):
        a = await WsClient.connect(srv.ws_url)
        b = await WsClient.connect(srv.ws_url)
        await a.request("login", guest=True, zone="demo", name="a")
        await b.request("login", guest=True, zone="demo", name="b")
        await a.request("join_room", room="Lobby")
        await b.request("join_room", room="Lobby")
        await a.event("user_entered")
        t0 = time.monotonic()
        await b.request("public_message", room=1, text="on the tick")
        replied = time.monotonic() - t0
        msg = await a.event("public_message")
        delivered = time.monotonic() - t0
        assert msg["data"]["text"] == "on the tick"
        assert replied < 0.14 <= delivered < 2.0, (replied, delivered)
        # a reply does not wait, and the event waiting for a goes out with it, first
        await b.request("public_message", room=1, text="taken along")
        t1 = time.monotonic()
        pong = await a.request("ping", t=1)
        assert time.monotonic() - t1 < 0.14 and pong["data"]["t"] == 1
        assert [e["data"]["text"] for e in a.events if e.get("event") == "public_message"] == ["taken along"]
        await a.close()
        await b.close()

    with running_server(config) as srv:
        run(scenario(srv))
