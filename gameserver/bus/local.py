"""The local bus: Unix sockets between the workers of one node.

Each member listens on ``{directory}/{member}.sock``. A member connects to a peer on
first use and keeps the connection; frames are length-prefixed (protocol/framing.py)
and a tick's frames to one peer go out in one write. Each connection carries one
direction: replies travel on the replier's own connection back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from protocol.errors import FramingError, MessageTooBig
from protocol.framing import StreamFramer, frame_many

from .base import Bus

logger = logging.getLogger("croupier.bus")

MAX_FRAME = 16 << 20


def socket_path(directory: str | os.PathLike[str], member: str) -> str:
    return str(Path(directory) / f"{member}.sock")


class _Inbound(asyncio.Protocol):
    def __init__(self, bus: UnixBus) -> None:
        self.bus = bus
        self.framer = StreamFramer(MAX_FRAME)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        self.bus._inbound.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.framer.receive_data(data)
        except (FramingError, MessageTooBig) as exc:
            logger.warning("bad bus stream, closing: %s", exc)
            assert self.transport is not None
            self.transport.abort()
            return
        received = self.bus._received
        for frame in self.framer.messages_received():
            received(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.bus._inbound.discard(self)


class _Outbound(asyncio.Protocol):
    """One peer's outgoing connection; buffers while connecting."""

    def __init__(self, bus: UnixBus, dst: str) -> None:
        self.bus = bus
        self.dst = dst
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.connecting: asyncio.Task[None] | None = None

    def send(self, frames: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.write(frame_many(frames))
            return
        self.pending.extend(frames)
        if self.connecting is None:
            self.connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_unix_connection(lambda: self, socket_path(self.bus.directory, self.dst))
        except OSError as exc:
            self.connecting = None
            dropped, self.pending = self.pending, []
            self.bus.stats.dropped += len(dropped)
            self.bus._unreachable(self.dst, f"cannot connect: {exc.strerror or exc}")
            return
        self.connecting = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.pending:
            pending, self.pending = self.pending, []
            self.transport.write(frame_many(pending))  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:  # one-way: nothing comes back
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.bus._outbound.get(self.dst) is self:
            del self.bus._outbound[self.dst]
        self.bus._unreachable(self.dst, "connection lost")


class UnixBus(Bus):
    """Members of one node, over Unix sockets in `directory`."""

    def __init__(
        self,
        me: str,
        directory: str | os.PathLike[str],
        *,
        max_queued_bytes: int = 8 << 20,
        default_timeout: float = 2.0,
        listen_as: str | None = None,
    ) -> None:
        """`listen_as`: listen under another name for now (a successor waiting to take
        over `me`); `rebind()` then takes `me`'s socket."""
        super().__init__(me, max_queued_bytes=max_queued_bytes, default_timeout=default_timeout)
        self.directory = str(directory)
        self.listen_as = listen_as
        self._server: asyncio.AbstractServer | None = None
        self._outbound: dict[str, _Outbound] = {}
        self._inbound: set[_Inbound] = set()

    @property
    def path(self) -> str:
        return socket_path(self.directory, self.listen_as or self.me)

    async def start(self) -> None:
        await super().start()
        os.makedirs(self.directory, exist_ok=True)
        await self._listen()

    async def _listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a stale socket of a previous run (or the predecessor's)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _Inbound(self), self.path)

    async def rebind(self) -> None:
        """Stop listening as `listen_as` and take over `me`'s socket path."""
        if self.listen_as is None:
            return
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.listen_as = None
        await self._listen()

    async def close(self) -> None:
        await super().close()
        if self._server is not None:
            self._server.close()
            for conn in list(self._inbound):
                if conn.transport is not None:
                    conn.transport.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._server = None
        for out in list(self._outbound.values()):
            if out.connecting is not None:
                out.connecting.cancel()
            if out.transport is not None:
                out.transport.close()
        self._outbound.clear()

    def _transmit(self, dst: str, frames: list[bytes]) -> None:
        if dst == self.me:  # to ourselves: no socket, next tick
            loop = self._running_loop()
            for f in frames:
                loop.call_soon(self._received, f)
            return
        out = self._outbound.get(dst)
        if out is None:
            out = self._outbound[dst] = _Outbound(self, dst)
        out.send(frames)
