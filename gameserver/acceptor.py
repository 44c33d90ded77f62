"""The acceptor: binds the public ports, learns each client's routing key, hands it off.

It runs in the supervisor process. For each accepted socket it reads just enough to
know whose connection it is, then the supervisor passes the socket and the bytes read
to the owning worker (gameserver/handoff.py, SCM_RIGHTS):

- WebSocket: the HTTP upgrade request head. `?token=<login token>` -> the token's user
  (signature and expiry checked here: a bad token carries no key); `?resume=<resume
  token>` -> the worker the token names. Otherwise no key.
- Raw TCP: the first length-prefixed MessagePack frame: a `login` with a `token`, or a
  `resume`. Anything else: no key.
- SmartFox TCP: the first packet (the handshake). A reconnecting client's `rt` (its old
  session token, HRC) names the worker that holds its session; else no key.

A connection without a key goes to the least-loaded worker. The worker completes the
WebSocket handshake; nothing here writes to a client except a redirect to another node
(`redirect_ws` / `redirect_tcp`: close code 4010 with the node's address as the reason).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import msgspec

from protocol.codec import choose_subprotocol
from protocol.codes import CloseCode
from protocol.framing import HEADER_SIZE, frame
from protocol.messages import Closing
from protocol.sfs2x import Action, Controller, PacketReader, SFSDecodeError, decode_packet_message
from protocol.sfs2x.messages import parse_handshake

from . import auth

logger = logging.getLogger("croupier.acceptor")

#: Largest HTTP upgrade request head we read (picows also stops at 16 KiB).
MAX_HEAD = 16 * 1024
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(frozen=True, slots=True)
class Route:
    """What the acceptor learnt: a token user, or the worker a resume token names."""

    user: tuple[str, int] | None = None  # (zone, user id) from a verified login token
    resume: str | None = None  # ring member from a resume token
    token: str | None = None  # the resume token itself (a moved session is looked up by it)

    @property
    def empty(self) -> bool:
        return self.user is None and self.resume is None


NO_ROUTE = Route()


def _route_for(token: str | None, resume: str | None, secret: str, now: float) -> Route:
    if token:
        try:
            claims = auth.verify(secret, token, now)
        except Exception:  # a bad token: the worker answers the login with its error
            return NO_ROUTE
        return Route(user=(claims.z, claims.u))
    if resume:
        owner = auth.resume_owner(resume)
        if owner is not None:
            return Route(resume=owner, token=resume)
    return NO_ROUTE


def head_complete(buf: bytes | bytearray) -> bool:
    return b"\r\n\r\n" in buf


def parse_ws_head(head: bytes) -> tuple[str, dict[str, str], dict[str, str]]:
    """(path, query, headers) of an HTTP request head; headers are lower-cased names.

    Raises:
        ValueError: not an HTTP request line.
    """
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("not an HTTP request")
    target = parts[1]
    path, _, qs = target.partition("?")
    query = {k: v[0] for k, v in parse_qs(qs, keep_blank_values=False).items() if v}
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return path, query, headers


def ws_route(head: bytes, secret: str, now: float) -> Route:
    """The routing key of a WebSocket upgrade request (`?token=` / `?resume=`)."""
    try:
        _, query, _ = parse_ws_head(head)
    except ValueError:
        return NO_ROUTE
    return _route_for(query.get("token"), query.get("resume"), secret, now)


class _FirstFrame(msgspec.Struct):
    type: str = ""
    token: str | None = None


_decode_first = msgspec.msgpack.Decoder(_FirstFrame).decode


def tcp_frame_size(buf: bytes | bytearray) -> int | None:
    """Bytes of the first whole frame (header included), or None while incomplete."""
    if len(buf) < HEADER_SIZE:
        return None
    size = HEADER_SIZE + int.from_bytes(buf[:HEADER_SIZE], "big")
    return size if len(buf) >= size else None


def tcp_route(first: bytes, secret: str, now: float) -> Route:
    """The routing key of the first raw TCP frame (header included)."""
    try:
        msg = _decode_first(first[HEADER_SIZE:])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return NO_ROUTE
    if msg.type == "login":
        return _route_for(msg.token, None, secret, now)
    if msg.type == "resume":
        return _route_for(None, msg.token, secret, now)
    return NO_ROUTE


def redirect_ws(sock: socket.socket, head: bytes, code: int, reason: str) -> None:
    """Complete the upgrade and close at once with `code`; `reason` is the address to use."""
    try:
        _, _, headers = parse_ws_head(head)
    except ValueError:
        headers = {}
    key = headers.get("sec-websocket-key", "").encode("latin-1")
    accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())  # RFC 6455 4.2.2
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    chosen, _ = choose_subprotocol(offered)
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + accept,
    ]
    if chosen is not None:
        lines.append(b"Sec-WebSocket-Protocol: " + chosen.encode("ascii"))
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")[:123]
    close_frame = bytes([0x88, len(payload)]) + payload
    _send_and_close(sock, b"\r\n".join(lines) + b"\r\n\r\n" + close_frame)


def redirect_tcp(sock: socket.socket, code: int, reason: str) -> None:
    _send_and_close(sock, frame(msgspec.msgpack.encode(Closing(code, reason))))


def _send_and_close(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.send(data)  # small: fits the empty send buffer of a fresh socket
        sock.shutdown(socket.SHUT_WR)
    # Give the client a moment to read before the descriptor goes (an early close with
    # unread input would send RST).
    asyncio.get_running_loop().call_later(1.0, sock.close)


Dispatch = Callable[[str, socket.socket, bytes, Route], None]


class Acceptor:
    """Listening sockets of one node and the first-bytes reader of each new client.

    No task, future or timer per connection: a client whose first bytes came with it is
    routed in the accept callback; otherwise a reader callback collects its bytes, and
    one timer for all of them drops those still silent after `read_timeout`.
    """

    def __init__(self, secret: str, read_timeout: float, max_frame: int, dispatch: Dispatch) -> None:
        self.secret = secret
        self.read_timeout = read_timeout
        self.max_frame = max_frame
        self.dispatch = dispatch
        self.listeners: list[tuple[str, socket.socket]] = []
        self.accepted = 0
        self.dropped = 0  # closed before a key was learnt (timeout, EOF, garbage)
        #: fd -> (socket, kind, bytes so far, deadline) of clients still being read
        self._reading: dict[int, tuple[socket.socket, str, bytearray, float]] = {}
        self._expiry: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def listen(self, kind: str, host: str, port: int, backlog: int) -> int:
        """Bind and listen; returns the bound port. `kind`: "ws", "tcp" or "sfs"."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
        self.listeners.append((kind, sock))
        self._loop.add_reader(sock.fileno(), self._accept, kind, sock)
        return int(sock.getsockname()[1])

    def close(self) -> None:
        for _, sock in self.listeners:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self.listeners.clear()
        for fd, (sock, _, _, _) in list(self._reading.items()):
            self._stop_reading(fd)
            sock.close()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _accept(self, kind: str, lsock: socket.socket) -> None:
        for _ in range(256):
            try:
                sock, _ = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE...: back off a little, keep the backlog
                logger.warning("accept failed: %s", exc)
                self._loop.remove_reader(lsock.fileno())
                self._loop.call_later(0.1, self._loop.add_reader, lsock.fileno(), self._accept, kind, lsock)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            buf = bytearray()
            if not self._read_some(kind, sock, buf):  # not there yet: wait for it
                fd = sock.fileno()
                self._reading[fd] = (sock, kind, buf, self._loop.time() + self.read_timeout)
                self._loop.add_reader(fd, self._on_readable, fd)
                if self._expiry is None:
                    self._expiry = self._loop.call_later(self.read_timeout / 4, self._expire)

    def _on_readable(self, fd: int) -> None:
        entry = self._reading.get(fd)
        if entry is None:
            return
        sock, kind, buf, _ = entry
        if self._read_some(kind, sock, buf, fd):
            self._stop_reading(fd)

    def _read_some(self, kind: str, sock: socket.socket, buf: bytearray, fd: int | None = None) -> bool:
        """Read what is there; dispatch or close the socket once done. True if done."""
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                data = b""
            if not data:  # closed before the first message
                self._drop(sock, fd)
                return True
            buf += data
            route = self._route_of(kind, buf)
            if route is not None:
                if fd is not None:
                    self._stop_reading(fd)
                self.dispatch(kind, sock, bytes(buf), route)
                return True

    def _route_of(self, kind: str, buf: bytearray) -> Route | None:
        """The route once enough of `buf` has arrived, else None."""
        if kind == "ws":
            if head_complete(buf):
                return ws_route(bytes(buf), self.secret, time.time())
            if len(buf) > MAX_HEAD:
                return NO_ROUTE  # the worker rejects it
            return None
        if kind == "sfs":
            return sfs_route(bytes(buf), self.max_frame)
        if len(buf) >= HEADER_SIZE and int.from_bytes(buf[:HEADER_SIZE], "big") > self.max_frame:
            return NO_ROUTE  # the worker closes it (message too big)
        size = tcp_frame_size(buf)
        if size is not None:
            return tcp_route(bytes(buf[:size]), self.secret, time.time())
        return None

    def _stop_reading(self, fd: int) -> None:
        if self._reading.pop(fd, None) is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(fd)

    def _drop(self, sock: socket.socket, fd: int | None) -> None:
        if fd is not None:
            self._stop_reading(fd)
        self.dropped += 1
        sock.close()

    def _expire(self) -> None:
        """Drop the clients that sent too little within `read_timeout`."""
        self._expiry = None
        now = self._loop.time()
        for fd, (sock, _, _, deadline) in list(self._reading.items()):
            if deadline <= now:
                self._drop(sock, fd)
        if self._reading:
            self._expiry = self._loop.call_later(self.read_timeout / 4, self._expire)


def sfs_route(buf: bytes, max_packet: int) -> Route | None:
    """The route of a SmartFox TCP client once its first packet is in (None: not yet): the
    worker named by a reconnecting client's `rt` (SFS2X session tokens carry the worker,
    as resume tokens do); NO_ROUTE for a first connection or anything the worker rejects."""
    reader = PacketReader(max_packet_size=max_packet, max_payload_size=4 * max_packet)
    reader.receive_data(buf)
    packets = reader.packets_received()
    if reader.exc is not None:
        return NO_ROUTE
    if not packets:
        return None
    try:
        msg = decode_packet_message(packets[0])
        if msg.controller != Controller.SYSTEM or msg.action != Action.HANDSHAKE:
            return NO_ROUTE
        rt = parse_handshake(msg.params).reconnection_token
    except SFSDecodeError:
        return NO_ROUTE
    owner = auth.resume_owner(rt) if rt else None
    # the token too: a session moved by a ring change is looked up by it (`relocated`)
    return Route(resume=owner, token=rt) if owner is not None else NO_ROUTE


__all__ = [
    "Acceptor",
    "Route",
    "NO_ROUTE",
    "CloseCode",
    "ws_route",
    "tcp_route",
    "sfs_route",
    "parse_ws_head",
]
