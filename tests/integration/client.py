"""Small test clients: the native protocol over WebSocket (websockets) or TCP, and SFS2X
over TCP (as the C#/Unity API speaks it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection

from protocol.framing import StreamFramer, frame
from protocol.sfs2x import Message, PacketReader, SFSObject, decode_packet_message, encode_frame


class _Client:
    """Requests get ids; replies are matched by id; events are queued in order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._id = 0

    async def send(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raise NotImplementedError

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Send a request and wait for its reply (events that arrive first are kept)."""
        self._id += 1
        rid = self._id
        await self.send({"type": type_, "id": rid, **fields})
        while True:
            msg = await self.recv()
            if msg["type"] in ("ok", "error") and msg.get("id") == rid:
                return msg
            self.events.append(msg)

    async def event(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next event called `name` (earlier other events are kept)."""
        for i, ev in enumerate(self.events):
            if ev.get("event") == name:
                return self.events.pop(i)
        while True:
            msg = await self.recv(timeout)
            if msg.get("event") == name:
                return msg
            self.events.append(msg)


class WsClient(_Client):
    """The native protocol over WebSocket (JSON or MessagePack)."""

    def __init__(self, ws: ClientConnection, binary: bool) -> None:
        super().__init__()
        self.ws = ws
        self.binary = binary

    @classmethod
    async def connect(cls, url: str, codec: str = "json") -> WsClient:
        sub = f"croupier.v1.{codec}"
        ws = await websockets.connect(url, subprotocols=[sub], max_size=2**22)  # type: ignore[list-item]
        assert ws.subprotocol == sub
        return cls(ws, codec == "msgpack")

    def _encode(self, obj: dict[str, Any]) -> str | bytes:
        return msgspec.msgpack.encode(obj) if self.binary else json.dumps(obj)

    def _decode(self, raw: str | bytes) -> dict[str, Any]:
        return msgspec.msgpack.decode(raw) if self.binary else json.loads(raw)  # type: ignore[no-any-return]

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send(self._encode(obj))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        return self._decode(await asyncio.wait_for(self.ws.recv(), timeout))

    async def close(self) -> None:
        await self.ws.close()


class TcpClient(_Client):
    """The same protocol over length-prefixed MessagePack on raw TCP."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.reader = reader
        self.writer = writer
        self.framer = StreamFramer(2**22)
        self.inbox: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, port: int) -> TcpClient:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        while not self.inbox:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise ConnectionError("closed")
            self.framer.receive_data(data)
            self.inbox.extend(msgspec.msgpack.decode(m) for m in self.framer.messages_received())
        return self.inbox.pop(0)

    async def send(self, obj: dict[str, Any]) -> None:
        await self.send_raw(frame(msgspec.msgpack.encode(obj)))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class SfsTcpClient:
    """SFS2X over raw TCP: `write` packets, `recv` what arrived as `(action, params)`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.packets = PacketReader()
        self.inbox: list[tuple[int, SFSObject]] = []  # received, not taken by `until` yet

    @classmethod
    async def connect(cls, port: int) -> SfsTcpClient:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    def write(self, *messages: Message) -> None:
        self.writer.write(b"".join(encode_frame(m) for m in messages))

    async def recv(self, timeout: float = 5.0) -> list[tuple[int, SFSObject]]:
        """The next packets that arrive (at least one), in order."""
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            assert data, "closed"
            self.packets.receive_data(data)
            got = [decode_packet_message(p) for p in self.packets.packets_received()]
            if got:
                return [(m.action, m.params) for m in got]

    async def until(self, action: int, timeout: float = 5.0) -> SFSObject:
        """The params of the next packet of `action` (other packets are kept in `inbox`)."""
        for _ in range(20):
            for i, (a, params) in enumerate(self.inbox):
                if a == action:
                    del self.inbox[i]
                    return params
            self.inbox.extend(await self.recv(timeout))
        raise AssertionError(f"no action {action}")

    def abort(self) -> None:
        """Drop the connection without a goodbye (a network failure, as the server sees it)."""
        self.writer.transport.abort()

    def close(self) -> None:
        self.writer.close()


def http_json(url: str, method: str = "GET", body: Any = None, bearer: str | None = None) -> tuple[int, Any]:
    """An admin-port request with a JSON body and answer: `(status, decoded body)`."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if bearer is not None:
        req.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())
