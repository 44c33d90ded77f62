"""SmartFoxServer 2X clients: the session factory for `/BlueBox/websocket` and the SFS2X TCP listener.

Unmodified SFS2X clients connect either over WebSocket at the path the client hard-wires
(`/BlueBox/websocket`, routed by the WebSocket transports to a `Connection` with an
`SfsSession`), or over raw TCP (desktop/mobile C#/Unity, Java, AS3; conventionally port
9933), where packets are re-assembled from the stream by `PacketReader`. Both share the
hub, zones and rooms with the native transports.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any, cast

import msgspec

from protocol.codec import MSGPACK
from protocol.codes import CloseCode
from protocol.messages import CLIENT_TYPES
from protocol.sfs2x.packet import PacketReader
from protocol.sfs2x.reconnect import HrcState
from protocol.sfs2x.session import SfsSession

from .. import auth
from ..connection import Connection

if TYPE_CHECKING:
    from ..hub import Hub

logger = logging.getLogger("croupier.sfs2x.tcp")

#: The WebSocket path every SFS2X client uses (hard-wired in the client).
SFS_WS_PATH = "/BlueBox/websocket"


#: hub -> (services registered when it was built, its extension table): one table for
#: every session (services are registered at start-up; a new one rebuilds it)
_TABLES: weakref.WeakKeyDictionary[Hub, tuple[int, dict[str, type]]] = weakref.WeakKeyDictionary()


def extensions(hub: Hub) -> dict[str, type]:
    """Zone-extension commands: `casino.<request type>` for every request a service of
    this server handles (casino, rewards, leaderboards...), e.g. `casino.spin`."""
    cached = _TABLES.get(hub)
    if cached is not None and cached[0] == len(hub.services):
        return cached[1]
    table = {f"casino.{tag}": cls for tag, cls in CLIENT_TYPES.items() if cls in hub.services}
    _TABLES[hub] = (len(hub.services), table)
    return table


def new_sfs_session(hub: Hub, stream: bool = False) -> SfsSession:
    """A fresh SFS2X session with the hub's limits (`stream`: TCP payloads, not WebSocket packets)."""
    return SfsSession(
        hub.session_limits,
        hub.default_flood,
        hub.clock.monotonic(),
        stream=stream,
        extensions=extensions(hub),
        reconnections=hub.sfs_reconnections,
        token_prefix=f"{auth.issuer()}." if auth.issuer() else "",
    )


def adopt_reconnections(hub: Hub, states: list[HrcState]) -> int:
    """A predecessor's SFS2X sessions (rolling restart), waiting for their clients to
    reconnect here; the rooms they knew are this worker's views of them. Returns how many."""
    now = hub.clock.monotonic()
    views: dict[str, dict[int, dict[str, Any]]] = {}
    for name, zone in hub.zones.items():
        listed = {rid: msgspec.to_builtins(r.view()) for rid, r in zone.rooms.items()}
        listed.update((rid, msgspec.to_builtins(v)) for rid, v in zone.remote_rooms.items())
        views[name] = listed
    for st in states:
        new_sfs_session(hub, stream=True).adopt(st, views.get(st.zone, {}), now)
    return len(states)


class SfsTcpLink(asyncio.Protocol):
    """One SFS2X TCP client: packets re-assembled in, our packets written back to back."""

    kind = "sfs2x-tcp"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.peer = "?"
        self.transport: asyncio.Transport | None = None
        limit = hub.session_limits.max_message_bytes
        self.reader = PacketReader(max_packet_size=limit, max_payload_size=4 * limit)
        self.conn: Connection | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer: Any = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.conn = Connection(self.hub, self, MSGPACK, new_sfs_session(self.hub, stream=True))
        self.hub.connection_made(self.conn)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None or conn.closed:
            return  # after a close, input is read and dropped
        reader = self.reader
        reader.receive_data(data)
        for packet in reader.packets_received():
            conn.message_received(packet.payload, True)
            if conn.closed or conn.session.close_expected():
                return
        if reader.exc is not None:
            conn.close(CloseCode.PROTOCOL_ERROR, f"bad SFS2X packet: {reader.exc}")

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.connection_lost(None)

    # Link

    def write(self, payloads: list[bytes]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(payloads))

    def close(self, code: int, reason: str) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        # SFS2X has no close message (1005 was queued by the session for kick/ban/idle):
        # half-close and let the client close its side, then drop the socket.
        t.write_eof()
        asyncio.get_running_loop().call_later(self.hub.close_timeout, t.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0


async def serve_sfs_tcp(hub: Hub, host: str, port: int, backlog: int) -> asyncio.Server:
    """Listen for SFS2X TCP clients; returns the asyncio server."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SfsTcpLink(hub), host, port, backlog=backlog)
