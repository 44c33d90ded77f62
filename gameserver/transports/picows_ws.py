"""WebSocket transport on picows (Cython, callback-based; the fastest stack measured).

picows hands us frames; this module re-assembles fragmented messages, checks UTF-8 and
the close handshake, and writes our own pre-built frames in one call per flush
(protocol/wsframe.py) through picows' underlying transport.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import picows
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest
from picows.picows import WSProtocol  # type: ignore[attr-defined]

from protocol.assembler import Assembler
from protocol.codec import CODECS_BY_SUBPROTOCOL, MSGPACK, Codec, choose_subprotocol
from protocol.errors import ProtocolViolation
from protocol.wsframe import OP_BINARY, OP_TEXT, close_reply, encode_frames

from ..connection import Connection
from .sfs2x_tcp import SFS_WS_PATH, new_sfs_session

if TYPE_CHECKING:
    from ..hub import Hub

logger = logging.getLogger("croupier.picows")
# picows logs every client framing error at ERROR and every connection at INFO; those are
# client faults and routine events, answered with close codes, not server errors.
logging.getLogger("picows").setLevel(logging.CRITICAL)

_TEXT, _BINARY, _CONT = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
_CLOSE, _PING = WSMsgType.CLOSE, WSMsgType.PING
#: the opcodes as plain ints (`WSMsgType.value` is an enum property: about 1 us a frame)
_OP_TEXT, _OP_BINARY, _OP_CONT = int(_TEXT.value), int(_BINARY.value), int(_CONT.value)


class _MessageListener(WSListener):  # type: ignore[misc]
    """Frames -> whole messages (protocol/assembler.py), and the close handshake."""

    # no per-connection __dict__ (WSListener already takes weak references: picows keeps a proxy)
    __slots__ = ("transport", "assembler", "close_timeout", "_closed", "peer_code", "_max", "_partial")

    def __init__(self, max_message: int, close_timeout: float) -> None:
        self.transport: WSTransport | None = None
        self.assembler = Assembler(max_message)
        self.close_timeout = close_timeout
        self._closed = False
        self.peer_code: int | None = None
        self._max = max_message
        #: a fragmented message is being assembled (the assembler returned None)
        self._partial = False

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        op = frame.msg_type
        if op is _BINARY:
            if (
                frame.fin
                and not self._partial
                and not self._closed
                and frame.payload_size <= self._max
                and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            ):
                # a whole binary message in one frame, within the limit: nothing for
                # the assembler to check or join (text still goes there: UTF-8)
                self.on_message(frame.get_payload_as_bytes(), True)
                return None
            opcode = _OP_BINARY
        elif op is _TEXT:
            opcode = _OP_TEXT
        elif op is _CONT:
            opcode = _OP_CONT
        else:
            opcode = -1
        if opcode >= 0:
            if self._closed:
                return None  # after our close frame, data is read and dropped (RFC 6455 1.4)
            try:
                done = self.assembler.frame(
                    opcode, frame.fin, frame.get_payload_as_bytes(), frame.rsv1 or frame.rsv2 or frame.rsv3
                )
            except ProtocolViolation as exc:
                return self.close(int(exc.code), exc.reason)
            if done is None:
                self._partial = True
            else:
                self._partial = False
                self.on_message(*done)
            return None
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            return self.close(1002, "reserved bits must be 0")
        if op is _CLOSE:
            code, reason = close_reply(frame.get_payload_as_bytes())
            self.peer_code = code
            if self._closed:  # the client answered our close: the handshake is complete
                transport.disconnect()
                return None
            return self.close(code, reason)
        if op is _PING:
            transport.send_pong(frame.get_payload_as_bytes())
        return None  # PONG needs nothing

    def on_message(self, data: bytes, binary: bool) -> None:
        raise NotImplementedError

    def close(self, code: int, reason: str) -> None:
        t = self.transport
        if t is None or self._closed:
            return
        self._closed = True
        # picows types the code as its WSCloseCode enum, but takes any int (4000-4999 too)
        t.send_close(cast(Any, code), reason.encode("utf-8")[:123])  # picows then ignores further sends
        if self.peer_code is not None:  # we are answering the client's close
            t.disconnect()
        else:
            # Wait for the client's close frame: closing now, with its unread data in our
            # receive buffer, would make the kernel send RST and destroy our last frames.
            asyncio.get_running_loop().call_later(self.close_timeout, t.disconnect)


class PicowsLink(_MessageListener):
    """A game connection over picows."""

    __slots__ = ("hub", "codec", "sfs", "opcode", "peer", "conn", "_out")
    kind = "picows"

    def __init__(self, hub: Hub, codec: Codec, sfs: bool = False) -> None:
        super().__init__(hub.session_limits.max_message_bytes, hub.close_timeout)
        self.hub = hub
        self.codec = codec
        self.sfs = sfs  # an SFS2X client (/BlueBox/websocket)
        self.opcode = OP_BINARY if codec.binary else OP_TEXT
        self.peer = "?"
        self.conn: Connection | None = None
        #: picows' underlying transport, where our own frames are written
        self._out: Any = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self._out = transport.underlying_transport
        peer: Any = self._out.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        session = new_sfs_session(self.hub) if self.sfs else None
        self.conn = Connection(self.hub, self, self.codec, session)
        self.hub.connection_made(self.conn)

    def on_message(self, data: bytes, binary: bool) -> None:
        conn = self.conn
        if conn is not None and not conn.closed:
            conn.message_received(data, binary)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.connection_lost(self.peer_code)

    def write(self, payloads: list[bytes]) -> None:
        out = self._out
        if out is not None and not self._closed:
            out.write(encode_frames(payloads, self.opcode))

    def abort(self) -> None:
        if self._out is not None:
            self._closed = True
            self._out.abort()

    def buffered(self) -> int:
        out = self._out
        return out.get_write_buffer_size() if out is not None else 0  # type: ignore[no-any-return]


class EchoListener(_MessageListener):
    """Echoes every message: the endpoint WebSocket conformance suites run against."""

    __slots__ = ()
    kind = "echo"

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_message(self, data: bytes, binary: bool) -> None:
        if self.transport is not None and not self._closed:
            self.transport.underlying_transport.write(encode_frames([data], OP_BINARY if binary else OP_TEXT))


def _offered(request: WSUpgradeRequest) -> list[str]:
    value = request.headers.get("Sec-WebSocket-Protocol") or ""
    return [p for p in value.split(",") if p.strip()]


_SWITCHING_PROTOCOLS = HTTPStatus.SWITCHING_PROTOCOLS


class _Prepared101(picows.WSUpgradeResponse):  # type: ignore[misc]
    """picows' 101 response, with its bytes prepared once per subprotocol.

    picows builds each upgrade response through a CIMultiDict, enum lookups and one
    f-string per header (about 7% of a login's server CPU); this one holds the same
    headers in the same order and writes the status line and them from one prepared
    prefix. picows then sets `Sec-WebSocket-Accept` and calls `to_bytes()` once.
    """

    __slots__ = ("_head",)

    def __init__(self, subprotocol: str | None) -> None:
        headers: Any = {} if subprotocol is None else {"Sec-WebSocket-Protocol": subprotocol}
        headers.update({"Connection": "upgrade", "Upgrade": "websocket"})
        self.version = b"HTTP/1.1"
        self.status = _SWITCHING_PROTOCOLS
        self.headers = headers
        self.body = None
        self._head = _PREFIXES.get(subprotocol)

    def to_bytes(self) -> bytearray:
        accept = self.headers.get("Sec-WebSocket-Accept")
        head = self._head
        if head is None or accept is None or len(self.headers) != head[1]:
            return super().to_bytes()  # type: ignore[no-any-return]  # not the usual shape
        out = bytearray(head[0])
        out += f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        return out


def _prefix(subprotocol: str | None) -> tuple[bytes, int]:
    """The status line and headers before `Sec-WebSocket-Accept`, and the header count after it."""
    response = picows.WSUpgradeResponse.create_101_response(
        extra_headers=None if subprotocol is None else {"Sec-WebSocket-Protocol": subprotocol}
    )
    head = bytes(response.to_bytes())
    assert head.endswith(b"\r\n\r\n")
    return head[:-2], len(response.headers) + 1


_PREFIXES: dict[str | None, tuple[bytes, int]] = {}
_PREFIXES.update({sp: _prefix(sp) for sp in (None, *CODECS_BY_SUBPROTOCOL)})


def listener_factory(hub: Hub, path: str, echo_path: str) -> Callable[[WSUpgradeRequest], Any]:
    def factory(request: WSUpgradeRequest) -> Any:
        req_path = request.path.decode("latin-1").split("?", 1)[0]
        if req_path == path:
            subprotocol, codec = choose_subprotocol(_offered(request))
            listener = PicowsLink(hub, codec)
            return picows.WSUpgradeResponseWithListener(_Prepared101(subprotocol), listener)
        if req_path == SFS_WS_PATH:
            return PicowsLink(hub, MSGPACK, sfs=True)
        if echo_path and req_path == echo_path:
            return EchoListener(hub.session_limits.max_message_bytes, hub.close_timeout)
        return None  # 404

    return factory


_READ_BUFFER_INIT = 2048  # 14 KiB per idle connection instead of 28 (research)


async def serve_picows(
    hub: Hub, host: str, port: int, path: str, echo_path: str, backlog: int
) -> asyncio.Server:
    """Listen for WebSocket clients on `path` (and the echo endpoint, if configured)."""
    return await picows.ws_create_server(
        listener_factory(hub, path, echo_path),
        host,
        port,
        websocket_handshake_timeout=hub.session_limits.auth_timeout,
        max_frame_size=hub.session_limits.max_message_bytes + 16,
        read_buffer_init_size=_READ_BUFFER_INIT,
        enable_auto_pong=False,  # we answer pings ourselves, after checking reserved bits
        backlog=backlog,
    )


class _AdoptedProtocol(WSProtocol):  # type: ignore[misc]
    """picows' server protocol for a socket accepted by another process (fd hand-off).

    The acceptor already read the HTTP upgrade request (and maybe more): those bytes are
    fed through the BufferedProtocol interface right after `connection_made`, before the
    event loop reads the socket itself. `WSProtocol`'s constructor is picows-internal
    (2.3.x; tests/unit/gameserver/test_handoff.py covers it).
    """

    def __init__(self, preread: bytes, *args: Any) -> None:
        super().__init__(*args)
        self._preread = preread

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        view, self._preread = memoryview(self._preread), b""
        while view:
            buf = self.get_buffer(-1)
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            self.buffer_updated(n)
            view = view[n:]


def adopted_protocol(hub: Hub, path: str, echo_path: str, preread: bytes) -> asyncio.BaseProtocol:
    """A protocol for `loop.connect_accepted_socket`: the same settings as `serve_picows`."""
    return _AdoptedProtocol(  # type: ignore[no-any-return]
        preread,
        None,  # host+port (client side only)
        None,  # ws_path (client side only)
        False,  # is_client_side
        listener_factory(hub, path, echo_path),
        logging.getLogger("picows.server"),
        True,  # disconnect_on_exception
        hub.session_limits.auth_timeout,
        False,  # enable_auto_ping
        20.0,
        20.0,
        picows.WSAutoPingStrategy.PING_WHEN_IDLE,
        False,  # enable_auto_pong: we answer pings ourselves
        hub.session_limits.max_message_bytes + 16,
        None,  # extra_headers
        _READ_BUFFER_INIT,
    )
