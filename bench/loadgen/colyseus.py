"""A light Colyseus client for the load generator: the peer comparison (docs/bench.md).

It speaks the protocol of the Colyseus version pinned in bench/peers/colyseus/
(`@colyseus/core` 0.18, `@colyseus/ws-transport` 0.18), read from their sources:

- **Matchmaking** (HTTP): `POST /matchmake/joinOrCreate/<room>` with the join options as
  JSON answers a seat reservation `{"name", "sessionId", "roomId", "processId"}`.
- **Room connection** (WebSocket): `GET /<processId>/<roomId>?sessionId=<sessionId>`,
  no subprotocol. After the room's `onJoin` the server sends `JOIN_ROOM` (10:
  reconnection token, serializer id, handshake); the client answers one byte `JOIN_ROOM`
  to confirm, and only then is it JOINED (messages queued during onJoin follow).
- **Frames** are binary; the first byte is the protocol code (low 5 bits):
  `ROOM_REQUEST` (21) `[code][requestId][type][msgpack]` is answered by
  `ROOM_RESPONSE` (22) `[code][requestId][status u8][msgpack?]` (status 0 OK,
  1 REJECTED by the handler, 2 ERROR: a fault or no handler); `ROOM_DATA` (13)
  `[code][type][msgpack]` is a message from the room (our "event"); `PING` (18) is
  echoed by the server; `ERROR` (11) `[code][number][string]`; `LEAVE_ROOM` (12).
  Numbers and strings in the header use @colyseus/schema's encoding: a MessagePack-like
  prefix byte, but multi-byte integers are **little-endian**.
- The server pings every connection at the WebSocket level (its liveness check); the
  client answers pongs (wire.WsConn does).

How the scenario's steps map (one connection per session, as for Croupier):

| step | Croupier | Colyseus |
|---|---|---|
| `connect` | TCP + upgrade | matchmake (HTTP, its own TCP connection) + TCP + upgrade |
| `login` | `login` request | seat reservation → `onJoin` → `JOIN_ROOM`, confirmed |
| `join_room` | `join_room` request | folded into `login`: the session joins that room (lower case) |
| `ping` | `ping` request | `PING` frame |
| `chat` | `public_message` | `ROOM_REQUEST "chat"` |
| `spin` | `spin` | `ROOM_REQUEST "spin"` |
| anything else | its type | `ROOM_REQUEST <type>`: "no handler" counts as not supported |

A session of a profile without `join_room` joins the room `casino` (Croupier: the zone).
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import struct
import time
from typing import Any

import msgspec
from msgspec import Raw

from .bot import IP_BIND_ADDRESS_NO_PORT, Bot, CompiledStep
from .stats import StepStats
from .wire import UNSUPPORTED_CODES, Incoming, Shared, WsConn, client_frame, upgrade_request

# Protocol codes (@colyseus/shared-types src/Protocol.ts)
JOIN_ROOM = 10
ERROR = 11
LEAVE_ROOM = 12
ROOM_DATA = 13
ROOM_STATE = 14
ROOM_STATE_PATCH = 15
ROOM_DATA_BYTES = 17
PING = 18
ROOM_REQUEST = 21
ROOM_RESPONSE = 22
CODE_MASK = 0x1F
# ROOM_RESPONSE status (ResponseStatus)
STATUS_OK = 0
STATUS_REJECTED = 1
STATUS_ERROR = 2

#: error codes in the report for Colyseus replies (the server has no numeric codes)
REJECTED_CODE = 900  # the handler rejected the request (e.g. insufficient funds)
FAULT_CODE = 901  # the handler threw
NO_HANDLER_CODE = 2  # no handler for the type: counted as "not supported by server"

#: the room a session joins when its profile has no `join_room` step
DEFAULT_ROOM = "casino"
#: Croupier message types -> Colyseus request types
REQUEST_TYPES = {"public_message": "chat"}
MAX_HTTP = 65536

_PING_FRAME = client_frame(bytes((PING,)), 0x2)
_JOIN_ACK = client_frame(bytes((JOIN_ROOM,)), 0x2)
_pack = msgspec.msgpack.Encoder().encode


class MatchmakeError(Exception):
    """The matchmaking request failed (HTTP status != 200 or a bad body)."""


# -- @colyseus/schema header encoding ------------------------------------------------------


def encode_number(value: int) -> bytes:
    """A non-negative integer as @colyseus/schema `encode.number` writes it."""
    if value < 0x80:
        return bytes((value,))
    if value < 0x100:
        return bytes((0xCC, value))
    if value < 0x10000:
        return b"\xcd" + struct.pack("<H", value)
    if value < 0x100000000:
        return b"\xce" + struct.pack("<I", value)
    return b"\xcf" + struct.pack("<II", value & 0xFFFFFFFF, value >> 32)


def encode_string(value: str) -> bytes:
    """A string as @colyseus/schema `encode.string` writes it (lengths little-endian)."""
    data = value.encode("utf-8")
    n = len(data)
    if n < 0x20:
        return bytes((0xA0 | n,)) + data
    if n < 0x100:
        return bytes((0xD9, n)) + data
    if n < 0x10000:
        return b"\xda" + struct.pack("<H", n) + data
    return b"\xdb" + struct.pack("<I", n) + data


_NUM_FORMATS = {
    0xCA: ("<f", 4),
    0xCB: ("<d", 8),
    0xCC: ("<B", 1),
    0xCD: ("<H", 2),
    0xCE: ("<I", 4),
    0xCF: ("<Q", 8),
    0xD0: ("<b", 1),
    0xD1: ("<h", 2),
    0xD2: ("<i", 4),
    0xD3: ("<q", 8),
}


def decode_number(buf: bytes, pos: int) -> tuple[float, int]:
    """@colyseus/schema `decode.number` at `pos`: (value, next position)."""
    prefix = buf[pos]
    pos += 1
    if prefix < 0x80:
        return prefix, pos
    if prefix > 0xDF:
        return prefix - 0x100, pos
    fmt = _NUM_FORMATS.get(prefix)
    if fmt is None:
        raise ValueError(f"not a number prefix: {prefix:#x}")
    (value,) = struct.unpack_from(fmt[0], buf, pos)
    return value, pos + fmt[1]


def is_string(buf: bytes, pos: int) -> bool:
    """@colyseus/schema `decode.stringCheck` (an empty fixstr does not count)."""
    p = buf[pos]
    return 0xA0 < p < 0xC0 or p in (0xD9, 0xDA, 0xDB)


def decode_string(buf: bytes, pos: int) -> tuple[str, int]:
    prefix = buf[pos]
    pos += 1
    if prefix < 0xC0:
        n = prefix & 0x1F
    elif prefix == 0xD9:
        n = buf[pos]
        pos += 1
    elif prefix == 0xDA:
        (n,) = struct.unpack_from("<H", buf, pos)
        pos += 2
    elif prefix == 0xDB:
        (n,) = struct.unpack_from("<I", buf, pos)
        pos += 4
    else:
        raise ValueError(f"not a string prefix: {prefix:#x}")
    return buf[pos : pos + n].decode("utf-8", "replace"), pos + n


def request_frame(request_id: int, mtype: str, fields: dict[str, Any]) -> bytes:
    """A masked WebSocket frame with one ROOM_REQUEST."""
    body = bytes((ROOM_REQUEST,)) + encode_number(request_id) + encode_string(mtype) + _pack(fields)
    return client_frame(body, 0x2)


# -- the connection ------------------------------------------------------------------------


class ColyseusConn(WsConn):
    """One room connection: WsConn's framing, Colyseus's messages."""

    __slots__ = ("joined", "pings", "reconnection_token")

    def __init__(
        self,
        shared: Shared,
        request: bytes,
        accept: bytes,
        handshake: asyncio.Future[None],
        first_id: int = 0,
    ) -> None:
        super().__init__(shared, True, request, accept, handshake, first_id)
        #: set when the server's JOIN_ROOM arrived (and was confirmed)
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: request ids of the PINGs in flight, oldest first (PING replies carry no id)
        self.pings: collections.deque[int] = collections.deque()
        self.reconnection_token = ""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError("closed before JOIN_ROOM"))
            self.joined.exception()  # retrieved: no "never retrieved" warning if nobody waits
        super().connection_lost(exc)

    def _check_upgrade(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"101":
            self._fail_handshake(f"HTTP {lines[0][:64].decode('latin-1', 'replace')}")
            return
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"sec-websocket-accept":
                if v.strip() != self._accept:
                    break
                self.upgraded = True
                if not self.handshake.done():
                    self.handshake.set_result(None)
                return
        self._fail_handshake("bad Sec-WebSocket-Accept")

    def _message(self, payload: Any, now: float) -> None:
        shared = self.shared
        buf = bytes(payload)
        if not buf:
            shared.unmatched += 1
            return
        code = buf[0] & CODE_MASK
        try:
            if code == ROOM_RESPONSE:
                self._response(buf, now)
            elif code in (ROOM_DATA, ROOM_DATA_BYTES):
                shared.recv_events += 1
                name = decode_string(buf, 1)[0] if is_string(buf, 1) else str(decode_number(buf, 1)[0])
                ev = shared.events
                ev[name] = ev.get(name, 0) + 1
                if name == "public_message":
                    shared.delivered(buf, now)
            elif code == PING:
                self._pong(now)
            elif code == JOIN_ROOM:
                n = buf[1]
                self.reconnection_token = buf[2 : 2 + n].decode("utf-8", "replace")
                t = self.transport
                if t is not None and not self.closed:
                    t.write(_JOIN_ACK)  # confirm: the server marks the client JOINED
                if not self.joined.done():
                    self.joined.set_result(None)
            elif code == ERROR:
                err, pos = decode_number(buf, 1)
                text = decode_string(buf, pos)[0] if pos < len(buf) else ""
                if not self.joined.done():
                    self.joined.set_exception(ConnectionError(f"colyseus error {int(err)}: {text}"))
                else:
                    shared.recv_error += 1
                    shared.unmatched += 1
                    shared.unmatched_codes[int(err)] = shared.unmatched_codes.get(int(err), 0) + 1
            elif code in (ROOM_STATE, ROOM_STATE_PATCH):
                shared.recv_events += 1
                shared.events["state"] = shared.events.get("state", 0) + 1
            else:
                shared.unmatched += 1
        except (IndexError, ValueError, struct.error):
            shared.unmatched += 1

    def _pong(self, now: float) -> None:
        shared = self.shared
        shared.recv_ok += 1
        while self.pings:
            p = self.pending.pop(self.pings.popleft(), None)
            if p is None:
                continue  # timed out (expired) or failed: the next one in line
            st, t0, _deadline, fut, _accept, _declined = p
            st.record_ok(now - t0, shared.in_hold)
            if fut is not None and not fut.done():
                fut.set_result(Incoming("ok"))
            return
        shared.unmatched += 1

    def _response(self, buf: bytes, now: float) -> None:
        shared = self.shared
        rid_f, pos = decode_number(buf, 1)
        rid = int(rid_f)
        status = buf[pos]
        pos += 1
        body = buf[pos:]
        code = 0
        if status == STATUS_OK:
            shared.recv_ok += 1
        else:
            shared.recv_error += 1
            code = REJECTED_CODE
            if status == STATUS_ERROR:
                code = FAULT_CODE
                try:
                    err = msgspec.msgpack.decode(body) if body else None
                except msgspec.MsgspecError:
                    err = None
                if isinstance(err, dict) and err.get("name") == "no_handler":
                    code = NO_HANDLER_CODE
        p = self.pending.pop(rid, None)
        if p is None:
            shared.unmatched += 1
            if code:
                shared.unmatched_codes[code] = shared.unmatched_codes.get(code, 0) + 1
            return
        st, t0, _deadline, fut, accept, declined = p
        if status == STATUS_OK or code in accept:
            st.record_ok(now - t0, shared.in_hold)
        elif code in UNSUPPORTED_CODES:
            st.unsupported += 1
        elif code in declined:
            st.declined += 1
        else:
            st.errors += 1
            st.codes[code] = st.codes.get(code, 0) + 1
        if fut is not None and not fut.done():
            fut.set_result(
                Incoming("ok" if status == STATUS_OK else "error", id=rid, code=code, data=Raw(body))
            )

    def send(
        self,
        msg: dict[str, Any],
        st: StepStats,
        timeout: float,
        fut: asyncio.Future[Incoming] | None = None,
        accept: frozenset[int] = frozenset(),
        declined: frozenset[int] = frozenset(),
    ) -> int:
        """Send a step's message (a PING or a ROOM_REQUEST); returns its request id."""
        t = self.transport
        if t is None or self.closed or self.close_code is not None:
            raise ConnectionError("connection closed")
        self._next_id += 1
        rid = self._next_id
        mtype = msg.pop("type")
        if mtype == "ping":
            frame = _PING_FRAME
            self.pings.append(rid)
        else:
            msg.pop("id", None)
            frame = request_frame(rid, REQUEST_TYPES.get(mtype, mtype), msg)
        now = time.monotonic()
        self.pending[rid] = (st, now, now + timeout, fut, accept, declined)
        self.shared.busy.add(self)  # left by the sweep once nothing is pending
        t.write(frame)
        st.sent += 1
        self.shared.sent += 1
        return rid


# -- the session ---------------------------------------------------------------------------


def room_for(steps: list[CompiledStep]) -> str:
    """The Colyseus room of a profile: its `join_room` room in lower case, else `casino`."""
    for cs in steps:
        if cs.op == "join_room":
            room = cs.step.fields.get("room", "Lobby")
            return str(room).lower().replace(" ", "_")
    return DEFAULT_ROOM


class ColyseusBot(Bot):
    """A session against a Colyseus server: matchmake, join the room, run the steps."""

    __slots__ = ("room",)

    def __init__(self, w: Any, index: int, steps: list[CompiledStep], target: int) -> None:
        super().__init__(w, index, steps, target)
        self.room = room_for(steps)

    async def _establish(self, first: bool) -> bool | None:
        """Matchmake, connect, wait for JOIN_ROOM. True: joined; None: failed."""
        w = self.w
        host, port, _path = w.targets[self.target]
        step0 = self.steps[0]
        st = step0.st
        t0 = time.monotonic()
        try:
            seat = await asyncio.wait_for(self._matchmake(host, port), w.connect_timeout)
        except (OSError, TimeoutError, MatchmakeError) as exc:
            self._connect_failed(first, exc, "matchmake")
            return None
        matchmake_s = time.monotonic() - t0
        path = f"/{seat['processId']}/{seat['roomId']}?sessionId={seat['sessionId']}"
        conn = await self._connect_ws(first, host, port, path)
        if conn is None:
            return None
        self.conn = conn
        st.sent += 1
        t1 = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(conn.joined), step0.step.timeout)
        except TimeoutError:
            st.timeouts += 1
            self._abandon(conn)
            return None
        except ConnectionError:
            if conn.closed:  # gone during onJoin: like a connection lost after login
                st.lost += 1
                return None
            st.errors += 1
            st.codes[REJECTED_CODE] = st.codes.get(REJECTED_CODE, 0) + 1
            self.refused = True
            conn.close()
            return None
        st.record_ok(matchmake_s + time.monotonic() - t1, w.shared.in_hold)
        self.token = None  # no resume: a new seat after a drop
        self._session_up()
        return True

    async def _matchmake(self, host: str, port: int) -> dict[str, Any]:
        """POST /matchmake/joinOrCreate/<room> on a connection of its own."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((self.w.source_ip, 0))
            await loop.sock_connect(sock, (host, port))
            body = json.dumps({"name": self.name}).encode()
            req = (
                f"POST /matchmake/joinOrCreate/{self.room} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode("latin-1") + body
            await loop.sock_sendall(sock, req)
            data = b""
            head_end = -1
            length = -1
            while len(data) < MAX_HTTP:
                chunk = await loop.sock_recv(sock, 16384)
                if not chunk:
                    break
                data += chunk
                if head_end < 0:
                    head_end = data.find(b"\r\n\r\n")
                    if head_end >= 0:
                        for line in data[:head_end].split(b"\r\n")[1:]:
                            k, _, v = line.partition(b":")
                            if k.strip().lower() == b"content-length":
                                length = int(v.strip())
                if head_end >= 0 and length >= 0 and len(data) >= head_end + 4 + length:
                    break
        finally:
            sock.close()
        if head_end < 0:
            raise MatchmakeError("no HTTP response")
        status = data.split(b" ", 2)[1] if data.count(b" ") >= 1 else b""
        payload = data[head_end + 4 :]
        if status != b"200":
            raise MatchmakeError(f"HTTP {status.decode('latin-1', 'replace')}: {payload[:200]!r}")
        try:
            seat = json.loads(payload)
        except ValueError:
            raise MatchmakeError("bad seat reservation") from None
        if not isinstance(seat, dict) or not all(k in seat for k in ("processId", "roomId", "sessionId")):
            raise MatchmakeError(f"bad seat reservation: {payload[:200]!r}")
        return seat

    async def _connect_ws(self, first: bool, host: str, port: int, path: str) -> ColyseusConn | None:
        """TCP + upgrade to the room (Bot._connect with a Colyseus connection)."""
        w = self.w
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((w.source_ip, 0))
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), w.connect_timeout)
        except (OSError, TimeoutError) as exc:
            sock.close()
            self._connect_failed(first, exc)
            return None
        req, accept = upgrade_request(host, port, path, "")
        req = req.replace(b"Sec-WebSocket-Protocol: \r\n", b"")  # Colyseus uses none
        hs: asyncio.Future[None] = loop.create_future()
        conn = ColyseusConn(w.shared, req, accept, hs, self.last_id)
        try:
            await loop.create_connection(lambda: conn, sock=sock)
        except OSError as exc:
            self._connect_failed(first, exc)
            return None
        try:
            await asyncio.wait_for(hs, w.connect_timeout)
        except Exception as exc:
            conn.abort()
            self._connect_failed(first, exc, "handshake")
            return None
        if conn.closed:
            self._connect_failed(first, ConnectionError("closed after the upgrade"), "handshake")
            return None
        conn.on_lost = self._on_lost
        self.conn = conn
        w.connect_stats.record_ok(time.monotonic() - t0, w.in_hold)
        w.connect_stats.sent += 1
        w.open += 1
        w.handshakes += 1
        self.lost = loop.create_future()
        return conn

    async def _one_shot(self, conn: WsConn, cs: CompiledStep) -> bool:
        if cs.op == "join_room":
            return True  # folded into login: the session joined its room there
        return await super()._one_shot(conn, cs)
