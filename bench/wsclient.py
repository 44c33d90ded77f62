"""A minimal WebSocket client on raw asyncio protocols, cheap enough to load a server.

It does the HTTP upgrade itself, sends masked frames (zero mask key: the bytes are
unchanged, RFC 6455 allows any key) and parses unmasked server frames. Used by the
benchmarks only; it trusts the server.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable

from .loadgen.wire import client_frame, frame_span


class WsClientProtocol(asyncio.Protocol):
    """Calls `on_message(payload)` for each server message after the handshake."""

    def __init__(self, host: str, path: str, subprotocol: str, on_message: Callable[[bytes], None]) -> None:
        self.host = host
        self.path = path
        self.subprotocol = subprotocol
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {self.subprotocol}\r\n\r\n"
        )
        transport.write(req.encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(buf[:80]).decode("latin-1")))
                return
            del buf[: end + 4]
            self._upgraded = True
            self.opened.set_result(None)
        pos = 0
        while (span := frame_span(buf, pos)) is not None:
            b0, start, end = span
            opcode = b0 & 0x0F
            payload = bytes(buf[start:end])
            pos = end
            if opcode in (1, 2):
                self.on_message(payload)
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, payload: bytes, opcode: int = 0x2) -> None:
        """One masked frame (zero key, see bench/loadgen/wire.py)."""
        if self.transport is not None:
            self.transport.write(client_frame(payload, opcode))


async def connect(
    host: str,
    port: int,
    path: str,
    subprotocol: str,
    on_message: Callable[[bytes], None],
    local_ip: str | None = None,
) -> WsClientProtocol:
    loop = asyncio.get_running_loop()
    local = (local_ip, 0) if local_ip else None
    _, proto = await loop.create_connection(
        lambda: WsClientProtocol(host, path, subprotocol, on_message), host, port, local_addr=local
    )
    await proto.opened
    return proto
