"""WebSocket transport on the websockets library's sans-I/O core, under our own asyncio Protocol.

We drive `websockets.server.ServerProtocol` directly (its documented sans-I/O API) instead
of its asyncio server: that keeps one write call per flush, lets the transport adopt an
already accepted socket, and avoids a task and a queue per connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from protocol.assembler import Assembler
from protocol.codec import CODECS_BY_SUBPROTOCOL, JSON, MSGPACK, Codec, choose_subprotocol
from protocol.errors import ProtocolViolation

from ..connection import Connection
from .sfs2x_tcp import SFS_WS_PATH, new_sfs_session

if TYPE_CHECKING:
    from ..hub import Hub

logger = logging.getLogger("croupier.websockets")
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


def _select_subprotocol(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    chosen, _ = choose_subprotocol(list(offered))
    return Subprotocol(chosen) if chosen is not None else None


class WebsocketsLink(asyncio.Protocol):
    """One WebSocket client (game endpoint or echo endpoint)."""

    kind = "websockets"

    def __init__(self, hub: Hub, path: str, echo_path: str) -> None:
        self.hub = hub
        self.path = path
        self.echo_path = echo_path
        max_size = hub.session_limits.max_message_bytes
        self.ws = ServerProtocol(select_subprotocol=_select_subprotocol, max_size=max_size)
        self.assembler = Assembler(max_size)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.conn: Connection | None = None
        self.echo = False
        self.codec: Codec | None = None
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer: Any = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.hub.session_limits.auth_timeout, self._handshake_timeout)

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame) and event.opcode in _DATA:
                self._frame(event)
        self._send_pending()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        conn, self.conn = self.conn, None
        if conn is not None:
            rcvd = self.ws.close_rcvd
            conn.connection_lost(rcvd.code if rcvd is not None else None)

    # handshake and frames

    def _handshake(self, request: Request) -> None:
        ws = self.ws
        path = request.path.split("?", 1)[0]
        if path not in (self.path, self.echo_path or self.path, SFS_WS_PATH):
            ws.send_response(ws.reject(404, "Not Found\n"))
            return
        response = ws.accept(request)
        ws.send_response(response)
        if ws.state is not State.OPEN:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if path == SFS_WS_PATH:  # an SFS2X client
            self.codec = MSGPACK
            self.conn = Connection(self.hub, self, MSGPACK, new_sfs_session(self.hub))
            self.hub.connection_made(self.conn)
        elif path == self.path:
            self.codec = CODECS_BY_SUBPROTOCOL.get(ws.subprotocol or "", JSON)
            self.conn = Connection(self.hub, self, self.codec)
            self.hub.connection_made(self.conn)
        else:
            self.echo = True

    def _frame(self, frame: Frame) -> None:
        reserved = frame.rsv1 or frame.rsv2 or frame.rsv3
        try:
            done = self.assembler.frame(int(frame.opcode), frame.fin, bytes(frame.data), reserved)
        except ProtocolViolation as exc:
            self.close(int(exc.code), exc.reason)
            return
        if done is None:
            return
        data, binary = done
        if self.echo:
            (self.ws.send_binary if binary else self.ws.send_text)(data)
        elif self.conn is not None and not self.conn.closed:
            self.conn.message_received(data, binary)

    def _handshake_timeout(self) -> None:
        self._timer = None
        if self.transport is not None and self.ws.state is State.CONNECTING:
            self.transport.abort()

    def _send_pending(self) -> None:
        t = self.transport
        if t is None:
            return
        chunks = self.ws.data_to_send()
        if chunks:
            data = b"".join(chunks)
            if data:
                t.write(data)
            if not chunks[-1]:  # the empty chunk: the close handshake is done, close TCP now
                t.close()

    # Link

    def write(self, payloads: list[bytes]) -> None:
        ws = self.ws
        if ws.state is not State.OPEN:
            return
        send = ws.send_binary if self.codec is not None and self.codec.binary else ws.send_text
        for p in payloads:
            send(p)
        self._send_pending()

    def close(self, code: int, reason: str) -> None:
        ws = self.ws
        if ws.state is State.OPEN:
            ws.send_close(code, reason[:120])
        self._send_pending()
        # The protocol closes the TCP connection once the client answers; if it never does:
        t = self.transport
        if t is not None and not t.is_closing():
            asyncio.get_running_loop().call_later(self.hub.close_timeout, t.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0


async def serve_websockets(
    hub: Hub, host: str, port: int, path: str, echo_path: str, backlog: int
) -> asyncio.Server:
    """Listen for WebSocket clients on `path` (and the echo endpoint, if configured)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: WebsocketsLink(hub, path, echo_path), host, port, backlog=backlog)
