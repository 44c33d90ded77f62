"""Raw TCP transport: 4-byte length-prefixed MessagePack frames (protocol/framing.py).

For native (Unity/C#) clients. Same messages and session semantics as WebSocket; a close
is announced with a `closing` message before the socket is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from protocol.codec import MSGPACK
from protocol.codes import CloseCode
from protocol.errors import ProtocolViolation
from protocol.framing import StreamFramer, frame, frame_many
from protocol.messages import Closing

from ..connection import Connection

if TYPE_CHECKING:
    from ..hub import Hub

logger = logging.getLogger("croupier.tcp")


class TcpLink(asyncio.Protocol):
    """One TCP client: framing in, batched framed writes out."""

    kind = "tcp"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.peer = "?"
        self.transport: asyncio.Transport | None = None
        self.framer = StreamFramer(hub.session_limits.max_message_bytes)
        self.conn: Connection | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer: Any = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.conn = Connection(self.hub, self, MSGPACK)
        self.hub.connection_made(self.conn)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None or conn.closed:
            return  # after a close, input is read and dropped
        try:
            self.framer.receive_data(data)
        except ProtocolViolation as exc:
            conn.close(exc.code, exc.reason)
            return
        for message in self.framer.messages_received():
            conn.message_received(message, True)
            if conn.closed or conn.session.close_expected():
                break

    def eof_received(self) -> bool:
        return False  # close our side too (this also completes a close we started)

    def connection_lost(self, exc: Exception | None) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.connection_lost(None)

    # Link

    def write(self, payloads: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.write(frame_many(payloads))

    def close(self, code: int, reason: str) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        t.write(frame(MSGPACK.encode(Closing(code, reason))))
        # Half-close and let the client close its side; closing now, with its unread data
        # in our receive buffer, would make the kernel send RST and destroy `closing`.
        t.write_eof()
        asyncio.get_running_loop().call_later(self.hub.close_timeout, t.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0


async def serve_tcp(hub: Hub, host: str, port: int, backlog: int) -> asyncio.Server:
    """Listen for native clients; returns the asyncio server."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: TcpLink(hub), host, port, backlog=backlog)


__all__ = ["TcpLink", "serve_tcp", "CloseCode"]
