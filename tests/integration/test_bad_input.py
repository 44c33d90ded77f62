"""Bad input over real sockets: each case gets its documented code; the server carries on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import msgspec
import pytest
import websockets

from protocol.codes import CloseCode, ErrorCode
from protocol.framing import frame
from protocol.limits import FloodLimits

from .client import TcpClient, WsClient
from .conftest import Running, running_server, server_config


def run(coro):
    return asyncio.run(coro)


async def closed_with(ws: websockets.ClientConnection, timeout: float = 5.0) -> int | None:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return ws.close_code


def test_malformed_and_unknown_requests_get_errors_and_the_connection_stays(server: Running):
    async def scenario():
        a = await WsClient.connect(server.ws_url)
        for raw, code in [
            ("{oops", ErrorCode.MALFORMED),
            ('{"type":"warp","id":4}', ErrorCode.UNKNOWN_MESSAGE),
            ('{"type":"join_room","id":5,"room":[1]}', ErrorCode.BAD_REQUEST),
            ('{"type":"join_room","id":6,"room":1}', ErrorCode.NOT_LOGGED_IN),
        ]:
            await a.ws.send(raw)
            reply = json.loads(await a.ws.recv())
            assert reply["type"] == "error" and reply["code"] == code, reply
        assert (await a.request("login", guest=True, zone="demo"))["type"] == "ok"
        await a.close()

    run(scenario())


def test_oversize_message_closes_1009(server: Running):
    async def scenario():
        ws = await websockets.connect(server.ws_url, max_size=None)
        await ws.send("x" * (65 * 1024))
        assert await closed_with(ws) == CloseCode.MESSAGE_TOO_BIG

    run(scenario())


def test_text_frame_on_msgpack_session_closes_1003(server: Running):
    async def scenario():
        a = await WsClient.connect(server.ws_url, "msgpack")
        await a.ws.send('{"type":"ping","id":1}')
        assert await closed_with(a.ws) == CloseCode.UNSUPPORTED_DATA

    run(scenario())


def test_invalid_utf8_text_closes_1007(server: Running):
    async def scenario():
        ws = await websockets.connect(server.ws_url)
        await ws.send(b"\xff\xfe".decode("latin-1").encode("latin-1"), text=True)
        assert await closed_with(ws) == CloseCode.INVALID_TEXT

    run(scenario())


def test_flood_is_throttled_then_closed_4006(server: Running):
    async def scenario():
        a = await WsClient.connect(server.ws_url)
        await a.request("login", guest=True, zone="demo")
        ping = json.dumps({"type": "ping", "id": 1})
        codes = []
        with contextlib.suppress(websockets.ConnectionClosed):
            for _ in range(200):
                await a.ws.send(ping)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                msg = json.loads(await asyncio.wait_for(a.ws.recv(), 5))
                codes.append(msg.get("code"))
        assert ErrorCode.RATE_LIMITED in codes
        assert a.ws.close_code == CloseCode.RATE_LIMITED

    run(scenario())


def test_other_sessions_do_not_notice_a_misbehaving_one(server: Running):
    async def scenario():
        good = await WsClient.connect(server.ws_url)
        await good.request("login", guest=True, zone="demo")
        for _ in range(20):
            bad = await websockets.connect(server.ws_url)
            await bad.send(b"\x00\x01garbage")
            await closed_with(bad)
        assert (await good.request("ping", t=1))["type"] == "ok"
        await good.close()

    run(scenario())


def test_auth_timeout_closes_4001():
    with running_server(server_config(auth_timeout=0.3, idle_timeout=5, heartbeat_interval=1)) as srv:

        async def scenario():
            ws = await websockets.connect(srv.ws_url)
            assert await closed_with(ws, timeout=3) == CloseCode.AUTH_TIMEOUT

        run(scenario())


def test_idle_timeout_closes_4002():
    with running_server(server_config(idle_timeout=0.5, heartbeat_interval=0.2)) as srv:

        async def scenario():
            a = await WsClient.connect(srv.ws_url)
            await a.request("login", guest=True, zone="demo")
            assert await closed_with(a.ws, timeout=3) == CloseCode.IDLE_TIMEOUT

        run(scenario())


def test_slow_reader_is_dropped_and_others_keep_going():
    """A client that stops reading is dropped (4007) once its unsent backlog passes the limit."""
    cfg = server_config(
        flood=FloodLimits(rate=100_000, burst=100_000),
        max_outgoing_bytes=64 * 1024,
        max_pending_messages=100_000,
    )
    with running_server(cfg) as srv:

        async def scenario():
            # A TCP client with a tiny receive buffer that logs in, joins, then never reads.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", srv.tcp_port))
            sock.setblocking(False)
            slow_r, slow_w = await asyncio.open_connection(sock=sock)
            for i, req in enumerate(
                [{"type": "login", "guest": True, "zone": "demo"}, {"type": "join_room", "room": "Lobby"}]
            ):
                slow_w.write(frame(msgspec.msgpack.encode({**req, "id": i + 1})))
            await slow_w.drain()
            await asyncio.sleep(0.2)
            assert srv.server.hub.stats()["players"] == 1
            talker = await TcpClient.connect(srv.tcp_port)
            await talker.request("login", guest=True, zone="demo")
            await talker.request("join_room", room="Lobby")
            # object messages go to the others only, so the talker's own inbox stays empty
            msg = frame(
                msgspec.msgpack.encode(
                    {"type": "object_message", "id": 0, "room": 1, "data": {"x": "y" * 4000}}
                )
            )
            for _ in range(40):
                await talker.send_raw(msg * 64)  # 10 MB in all
                if srv.server.hub.stats()["connections"] == 1:
                    break
            assert (await talker.request("ping", t=1))["type"] == "ok"  # the talker is still served
            # the slow one's connection is gone; its session waits for a resume, like any drop
            assert srv.server.hub.stats() == {"connections": 1, "players": 2, "detached": 1}
            with contextlib.suppress(ConnectionError):
                while await asyncio.wait_for(slow_r.read(1 << 20), 5):
                    pass  # what the kernel had already accepted, then EOF or reset
            await talker.close()
            slow_w.close()
            with contextlib.suppress(ConnectionError):
                await slow_w.wait_closed()

        run(scenario())


def test_tcp_oversize_length_prefix_closes(server: Running):
    async def scenario():
        t = await TcpClient.connect(server.tcp_port)
        await t.send_raw((10**9).to_bytes(4, "big"))
        msg = await t.recv()
        assert msg == {"type": "closing", "code": CloseCode.MESSAGE_TOO_BIG, "reason": msg["reason"]}
        await t.close()

    run(scenario())
