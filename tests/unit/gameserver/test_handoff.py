"""Routing keys, resume-token owners, ring-owned guest ids, the hand-off channel, adoption
of an accepted socket with pre-read bytes (both WebSocket stacks and TCP), and fencing."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import msgspec
import pytest
import uvloop

from gameserver import auth
from gameserver.acceptor import NO_ROUTE, Route, parse_ws_head, sfs_route, tcp_frame_size, tcp_route, ws_route
from gameserver.config import AuthSection, ClusterSection, Config, ServerSection
from gameserver.handoff import Channel, channel_pair
from gameserver.hub import GUEST_ID_BASE, Hub
from gameserver.ring import HashRing, user_key
from gameserver.worker import GuestIds, Lease, WorkerHub, all_members, protocol_for
from protocol.framing import frame
from protocol.sfs2x import encode_frame
from protocol.sfs2x.messages import handshake_request, login_request
from rooms.config import RoomConfig, ZoneConfig
from tests.integration.client import TcpClient, WsClient

SECRET = "unit-secret"


def tok(user: int, zone: str = "demo", ttl: int = 60) -> str:
    return auth.mint(SECRET, user, zone, expires=int(time.time()) + ttl)


def head(target: str, extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n{extra}\r\n".encode()


# -- routing keys ---------------------------------------------------------------------------


def test_ws_head_with_token_routes_to_the_user() -> None:
    assert ws_route(head(f"/ws?token={tok(42)}"), SECRET, time.time()) == Route(user=("demo", 42))


def test_ws_head_with_resume_routes_to_the_named_worker() -> None:
    assert ws_route(head("/ws?resume=1.3.abcDEF_-"), SECRET, time.time()) == Route(
        resume="1.3", token="1.3.abcDEF_-"
    )  # the token too: a session a ring change moved is looked up by it


def test_ws_head_without_key_bad_or_expired_token_has_no_route() -> None:
    now = time.time()
    assert ws_route(head("/ws"), SECRET, now) is NO_ROUTE
    assert ws_route(head(f"/ws?token={tok(42)}x"), SECRET, now) is NO_ROUTE
    assert ws_route(head(f"/ws?token={tok(42, ttl=-5)}"), SECRET, now) is NO_ROUTE
    assert ws_route(head("/ws?resume=plain-single-process-token"), SECRET, now) is NO_ROUTE
    assert ws_route(b"garbage\r\n\r\n", SECRET, now) is NO_ROUTE


def test_parse_ws_head_lowercases_header_names() -> None:
    path, query, headers = parse_ws_head(head("/ws?a=1&b=2", "Sec-WebSocket-Key: K\r\n"))
    assert (path, query, headers["sec-websocket-key"]) == ("/ws", {"a": "1", "b": "2"}, "K")


def test_first_tcp_frame_routes_login_and_resume() -> None:
    login = frame(msgspec.msgpack.encode({"type": "login", "id": 1, "token": tok(7)}))
    assert tcp_frame_size(login[:-1]) is None and tcp_frame_size(login + b"more") == len(login)
    assert tcp_route(login, SECRET, time.time()) == Route(user=("demo", 7))
    resume = frame(msgspec.msgpack.encode({"type": "resume", "id": 1, "token": "0.2.secret"}))
    assert tcp_route(resume, SECRET, time.time()) == Route(resume="0.2", token="0.2.secret")
    guest = frame(msgspec.msgpack.encode({"type": "login", "id": 1, "guest": True, "zone": "demo"}))
    assert tcp_route(guest, SECRET, time.time()) is NO_ROUTE
    assert tcp_route(frame(b"\xc1"), SECRET, time.time()) is NO_ROUTE


def test_first_smartfox_packet_routes_a_reconnection_to_the_worker_its_token_names() -> None:
    back = encode_frame(handshake_request(client_type="UnityPlayer", reconnection_token="0.2.9f3c"))
    assert sfs_route(back[:-1], 4096) is None  # not all in yet
    assert sfs_route(back, 4096) == Route(
        resume="0.2", token="0.2.9f3c"
    )  # the token: a moved one is relocated
    assert sfs_route(encode_frame(handshake_request()), 4096) is NO_ROUTE  # a first connection
    plain = encode_frame(handshake_request(client_type="UnityPlayer", reconnection_token="9f3c" * 8))
    assert sfs_route(plain, 4096) is NO_ROUTE  # a single-process token names nobody
    assert sfs_route(encode_frame(login_request("demo", "x")), 4096) is NO_ROUTE  # not a handshake
    assert sfs_route(b"\x80\x00\x05nope!", 4096) is NO_ROUTE  # garbage: the worker closes it
    assert sfs_route(b"\x80\xff\xff" + bytes(10), 4096) is NO_ROUTE  # above the packet limit


def test_resume_tokens_name_their_issuer() -> None:
    try:
        auth.set_issuer("0.4")
        t = auth.resume_token()
        assert auth.resume_owner(t) == "0.4" and len(t) > 30
        with pytest.raises(ValueError):
            auth.set_issuer("../x")
    finally:
        auth.set_issuer("")
    assert auth.resume_owner(auth.resume_token()) is None  # single process: no prefix
    assert auth.resume_owner("x.y") is None


def test_guest_ids_are_ring_owned_and_never_collide() -> None:
    ring = HashRing(all_members(2, 3))
    allocators = {m: GuestIds(ring, m) for m in ring.members}
    seen: set[int] = set()
    for zone in ("demo", "other"):
        for member, alloc in allocators.items():
            for _ in range(50):
                uid = alloc(zone)
                assert uid >= GUEST_ID_BASE
                assert ring.owner(user_key(zone, uid)) == member
                assert (zone, uid) not in seen
                seen.add((zone, uid))  # type: ignore[arg-type]


# -- the channel and adoption ---------------------------------------------------------------


def config(transport: str = "picows") -> Config:
    return Config(
        server=ServerSection(transport=transport, ws_port=0, tcp_port=0),  # type: ignore[arg-type]
        auth=AuthSection(secret=SECRET),
        zones=[ZoneConfig(name="demo", guests=True, rooms=[RoomConfig("Lobby")])],
        cluster=ClusterSection(),
    )


def test_channel_carries_messages_and_sockets() -> None:
    async def run() -> None:
        a, b = channel_pair()
        got: list[tuple[dict[str, Any], list[socket.socket]]] = []
        closed = asyncio.Event()
        ca = Channel(a, lambda m, s: None, closed.set)
        cb = Channel(b, lambda m, s: got.append((m, s)), lambda: None)
        x, y = socket.socketpair()
        assert ca.send({"t": "adopt", "pre": b"hello"}, [x])
        for i in range(300):  # more than one read batch
            assert ca.send({"t": "n", "i": i})
        while len(got) < 301:
            await asyncio.sleep(0.01)
        msg, socks = got[0]
        assert msg == {"t": "adopt", "pre": b"hello"} and len(socks) == 1
        assert x.fileno() == -1  # the sender's copy is closed once sent
        socks[0].sendall(b"ping")
        assert y.recv(4) == b"ping"
        assert [m["i"] for m, _ in got[1:]] == list(range(300))
        cb.close()
        await asyncio.wait_for(closed.wait(), 2)
        assert not ca.send({"t": "late"})
        socks[0].close()
        y.close()

    uvloop.run(run())


async def _accept_and_adopt(hub: Hub, kind: str, reader: Any) -> None:
    """Accept one client, read its first bytes like the acceptor, adopt it like a worker."""
    loop = asyncio.get_running_loop()
    lsock = reader
    sock, _ = await loop.sock_accept(lsock)
    sock.setblocking(False)
    pre = b""
    while kind == "ws" and b"\r\n\r\n" not in pre or kind == "tcp" and tcp_frame_size(pre) is None:
        pre += await loop.sock_recv(sock, 65536)
    a, b = channel_pair()  # through a real SCM_RIGHTS hand-off
    got: asyncio.Future[socket.socket] = loop.create_future()
    receiver = Channel(b, lambda m, s: got.set_result(s[0]), lambda: None)
    sender = Channel(a, lambda m, s: None, lambda: None)
    sender.send({"t": "adopt"}, [sock])
    adopted = await got
    sender.close()
    receiver.close()
    await loop.connect_accepted_socket(lambda: protocol_for(hub, kind, pre), adopted)


@pytest.mark.parametrize("transport", ["picows", "websockets"])
def test_worker_adopts_a_websocket_with_its_preread_upgrade(transport: str) -> None:
    async def run() -> None:
        hub = Hub(config(transport))
        lsock = socket.create_server(("127.0.0.1", 0))
        lsock.setblocking(False)
        port = lsock.getsockname()[1]
        task = asyncio.create_task(_accept_and_adopt(hub, "ws", lsock))
        client = await WsClient.connect(f"ws://127.0.0.1:{port}/ws?token={tok(9)}", "msgpack")
        await task
        reply = await client.request("login", token=tok(9))
        assert reply["type"] == "ok" and reply["data"]["user"]["id"] == 9
        assert len(hub.connections) == 1
        await client.close()
        lsock.close()

    uvloop.run(run())


def test_worker_adopts_a_tcp_client_with_its_first_frame() -> None:
    async def run() -> None:
        hub = Hub(config())
        lsock = socket.create_server(("127.0.0.1", 0))
        lsock.setblocking(False)
        task = asyncio.create_task(_accept_and_adopt(hub, "tcp", lsock))
        client = await TcpClient.connect(lsock.getsockname()[1])
        await client.send({"type": "login", "id": 1, "token": tok(11)})
        await task
        reply = await client.recv()
        assert reply["type"] == "ok" and reply["id"] == 1
        assert (await client.request("ping"))["type"] == "ok"
        await client.close()
        lsock.close()

    uvloop.run(run())


def test_a_hub_past_its_lease_handles_nothing() -> None:
    async def run() -> None:
        hub = WorkerHub(config())
        hub.lease = Lease(time.monotonic() - 1)
        fenced: list[bool] = []
        hub.on_fenced = lambda: fenced.append(True)

        class Link:
            kind, peer, aborted = "test", "-", False

            def abort(self) -> None:
                self.aborted = True

        class Conn:
            link = Link()

        conn: Any = Conn()
        hub.handle(conn, [object()])  # would fail if it were dispatched
        assert conn.link.aborted and fenced == [True]

    uvloop.run(run())


def test_the_acceptor_routes_whole_split_and_silent_first_bytes() -> None:
    """Real sockets: a head that arrives with the connection is routed at once, one that
    arrives in pieces is read on, a TCP first frame is routed, and a client that sends
    nothing is dropped after the read timeout. Every socket is dispatched or closed."""
    from gameserver.acceptor import Acceptor

    async def body() -> None:
        got: list[tuple[str, bytes, Route]] = []
        acc = Acceptor(
            SECRET,
            0.3,
            1 << 16,
            lambda kind, sock, pre, route: (got.append((kind, pre, route)), sock.close()),
        )
        ws_port = acc.listen("ws", "127.0.0.1", 0, 16)
        tcp_port = acc.listen("tcp", "127.0.0.1", 0, 16)
        whole = head(f"/ws?token={tok(5)}")
        _, w1 = await asyncio.open_connection("127.0.0.1", ws_port)
        w1.write(whole)
        _, w2 = await asyncio.open_connection("127.0.0.1", ws_port)
        await asyncio.sleep(0.05)  # accepted before any byte arrives
        w2.write(whole[:20])
        await asyncio.sleep(0.05)
        w2.write(whole[20:])
        _, t1 = await asyncio.open_connection("127.0.0.1", tcp_port)
        t1.write(frame(msgspec.msgpack.encode({"type": "login", "id": 1, "token": tok(6)})))
        _, silent = await asyncio.open_connection("127.0.0.1", ws_port)
        for _ in range(100):
            if len(got) == 3 and acc.dropped == 1:
                break
            await asyncio.sleep(0.02)
        assert sorted((k, r.user) for k, _, r in got) == [
            ("tcp", ("demo", 6)),
            ("ws", ("demo", 5)),
            ("ws", ("demo", 5)),
        ]
        assert [pre for k, pre, _ in got if k == "ws"] == [whole, whole]
        assert acc.dropped == 1 and acc.accepted == 4
        for w in (w1, w2, t1, silent):
            w.close()
        acc.close()

    uvloop.run(body())
