"""A light WebSocket client on a raw asyncio protocol: the generator's cost per socket.

It writes the HTTP upgrade itself, masks its frames with a zero key (RFC 6455 allows any
key; the payload bytes stay as they are), parses the server's unmasked frames, decodes
each message into `Incoming` (the data field stays undecoded until a step asks for it)
and matches replies to requests by id. It trusts the server it load-tests: no UTF-8
check, no limits beyond a maximum message size.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import struct
import time
from collections.abc import Callable
from typing import Any, cast

import msgspec
from msgspec import Raw, Struct

from .stats import DELIVERY, StepStats, sent_stamp

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 4 * 1024 * 1024
#: error codes meaning "this server does not have that message"
UNSUPPORTED_CODES = frozenset({2, 10})  # unknown_message, not_supported
_ZERO_MASK = b"\x00\x00\x00\x00"


class Incoming(Struct):
    """Any server message, leniently: replies, errors, events."""

    type: str
    id: int | None = None
    code: int = 0
    name: str = ""
    seq: int = 0
    event: str = ""
    data: Raw = Raw()


#: the whole header (2 bytes + the zero mask) of a final frame under 126 bytes, by opcode
#: and length: one concatenation per message
_SHORT_HEADS: dict[int, list[bytes]] = {
    op: [bytes((0x80 | op, 0x80 | n)) + _ZERO_MASK for n in range(126)] for op in (0x1, 0x2)
}


def client_frame(payload: bytes, opcode: int) -> bytes:
    """One masked (zero key) final frame."""
    n = len(payload)
    if n < 126:
        heads = _SHORT_HEADS.get(opcode)
        if heads is not None:
            return heads[n] + payload
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + _ZERO_MASK + payload


def frame_span(data: bytes | bytearray, pos: int) -> tuple[int, int, int] | None:
    """The server frame starting at `pos`: (first header byte, payload start, payload end),
    or None while the header or payload is still incomplete. Server frames are unmasked."""
    n = len(data)
    if n - pos < 2:
        return None
    ln = data[pos + 1] & 0x7F
    hl = 2
    if ln == 126:
        if n - pos < 4:
            return None
        ln = int.from_bytes(data[pos + 2 : pos + 4], "big")
        hl = 4
    elif ln == 127:
        if n - pos < 10:
            return None
        ln = int.from_bytes(data[pos + 2 : pos + 10], "big")
        hl = 10
    end = pos + hl + ln
    if end > n:
        return None if ln <= MAX_MESSAGE else (data[pos], pos + hl, end)
    return data[pos], pos + hl, end


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return client_frame(code.to_bytes(2, "big") + reason[:123], 0x8)


def upgrade_request(host: str, port: int, path: str, subprotocol: str) -> tuple[bytes, bytes]:
    """The HTTP upgrade request and the Sec-WebSocket-Accept value to expect."""
    key = base64.b64encode(random.getrandbits(128).to_bytes(16, "big"))  # a nonce, not a secret
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    req = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode("latin-1")
    return req, accept


class HandshakeError(Exception):
    """The server did not accept the upgrade as asked."""


class Shared:
    """Counters shared by every connection of one generator process."""

    __slots__ = (
        "steps",
        "events",
        "recv_ok",
        "recv_error",
        "recv_events",
        "sent",
        "unmatched",
        "unmatched_codes",
        "in_hold",
        "busy",
    )

    def __init__(self) -> None:
        #: True once the whole run's ramp is over (latencies then also go to hold_hist)
        self.in_hold = False
        self.steps: dict[str, StepStats] = {}
        self.events: dict[str, int] = {}
        self.recv_ok = 0
        self.recv_error = 0
        self.recv_events = 0
        #: request messages written
        self.sent = 0
        #: replies with no request waiting (late after a timeout, or id null)
        self.unmatched = 0
        self.unmatched_codes: dict[int, int] = {}
        #: connections that may have requests in flight: the only ones the once-a-second
        #: timeout sweep visits (walking every session cost more than all the pings of
        #: a quiet one). A connection joins on send and leaves once nothing is pending.
        self.busy: set[Any] = set()

    def delivered(self, payload: bytes, now: float) -> None:
        """A room message reached this member: its delivery time, if the sender stamped it."""
        sent = sent_stamp(payload)
        if sent is not None:
            self.step(DELIVERY).record_ok(max(0.0, now - sent), self.in_hold)

    def step(self, label: str) -> StepStats:
        st = self.steps.get(label)
        if st is None:
            st = self.steps[label] = StepStats()
        return st


#: a request in flight: its step's stats, send time, deadline, waiter (one-shot steps),
#: error codes that count as success, error codes that are an expected "no"
Pending = tuple[StepStats, float, float, "asyncio.Future[Incoming] | None", frozenset[int], frozenset[int]]


class WsConn(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "shared",
        "binary",
        "_encode",
        "_decode",
        "_opcode",
        "_req",
        "_accept",
        "transport",
        "_buf",
        "upgraded",
        "handshake",
        "pending",
        "_next_id",
        "close_code",
        "closed",
        "last_seq",
        "on_lost",
        "_frag",
        "abandoned",
    )

    def __init__(
        self,
        shared: Shared,
        binary: bool,
        request: bytes,
        accept: bytes,
        handshake: asyncio.Future[None],
        first_id: int = 0,
    ) -> None:
        self.shared = shared
        self.binary = binary
        self._encode: Callable[[Any], bytes] = ENCODERS[binary]
        self._decode: Callable[[Any], Incoming] = DECODERS[binary]
        self._opcode = 0x2 if binary else 0x1
        self._req = request
        self._accept = accept
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self.upgraded = False
        self.handshake = handshake
        self.pending: dict[int, Pending] = {}
        #: request ids go on from the session's previous connection: a resumed session
        #: must not reuse one (money requests use the id as their idempotency key)
        self._next_id = first_id
        #: the server's close code, 1006 if the socket went without one, None while open
        self.close_code: int | None = None
        self.closed = False
        self.last_seq = 0
        self.on_lost: Callable[[WsConn], None] | None = None
        self._frag: list[bytes] | None = None
        #: aborted by its session after a reply timed out (already counted as a timeout)
        self.abandoned = False

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.transport = t
        t.write(self._req)

    def data_received(self, data: bytes) -> None:
        if self.upgraded and not self._buf:
            # the common case: exactly one short, final text/binary frame (a reply)
            n = len(data)
            if n >= 2 and (data[0] == 0x82 or data[0] == 0x81) and data[1] == n - 2 and n < 128:
                self._message(data[2:], time.monotonic())
                return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > 16384:
                    self._fail_handshake("response headers too long")
                else:
                    self._buf = data
                return
            self._check_upgrade(data[:end])
            if not self.upgraded:
                return
            data = data[end + 4 :]
            if not data:
                return
        self._frames(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.close_code is None:
            self.close_code = 1006
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("closed during the upgrade"))
        cb = self.on_lost
        if cb is not None:
            self.on_lost = None
            cb(self)
        self.transport = None  # no transport <-> protocol cycle left for the collector

    # -- upgrade ------------------------------------------------------------------------

    def _fail_handshake(self, why: str) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(HandshakeError(why))
        if self.transport is not None:
            self.transport.abort()

    def _check_upgrade(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"101":
            self._fail_handshake(f"HTTP {lines[0][:64].decode('latin-1', 'replace')}")
            return
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        if headers.get(b"sec-websocket-accept") != self._accept:
            self._fail_handshake("bad Sec-WebSocket-Accept")
            return
        want = b"croupier.v1.msgpack" if self.binary else b"croupier.v1.json"
        if headers.get(b"sec-websocket-protocol") != want:
            self._fail_handshake(f"subprotocol {want.decode()} not chosen")
            return
        self.upgraded = True
        if not self.handshake.done():
            self.handshake.set_result(None)

    # -- frames in ----------------------------------------------------------------------

    def _frames(self, data: bytes) -> None:
        mv = memoryview(data)
        n = len(data)
        pos = 0
        now = time.monotonic()
        while True:
            span = frame_span(data, pos)
            if span is None:
                break
            b0, start, end = span
            if end - start > MAX_MESSAGE:
                self.abort()
                return
            op = b0 & 0x0F
            if op == 0x1 or op == 0x2:
                if b0 & 0x80:
                    self._message(mv[start:end], now)
                else:
                    self._frag = [bytes(mv[start:end])]
            elif op == 0x0:
                if self._frag is not None:
                    self._frag.append(bytes(mv[start:end]))
                    if b0 & 0x80:
                        whole, self._frag = b"".join(self._frag), None
                        self._message(whole, now)
            elif op == 0x8:
                self._server_close(bytes(mv[start:end]))
            elif op == 0x9 and self.transport is not None and not self.closed:
                self.transport.write(client_frame(bytes(mv[start:end]), 0xA))
            pos = end
        if pos < n:
            self._buf = data[pos:]

    def _message(self, payload: Any, now: float) -> None:
        shared = self.shared
        try:
            msg = self._decode(payload)
        except msgspec.MsgspecError:
            shared.unmatched += 1
            return
        t = msg.type
        if t == "event":
            shared.recv_events += 1
            self.last_seq = msg.seq
            ev = shared.events
            ev[msg.event] = ev.get(msg.event, 0) + 1
            if msg.event == "public_message":
                shared.delivered(bytes(payload), now)
            return
        if t == "ok":
            shared.recv_ok += 1
        elif t == "error":
            shared.recv_error += 1
        else:
            return  # "closing" (TCP only) or something newer
        pending = self.pending
        p = pending.pop(msg.id, None) if msg.id is not None else None
        if not pending:
            shared.busy.discard(self)
        if p is None:
            shared.unmatched += 1
            if t == "error":
                shared.unmatched_codes[msg.code] = shared.unmatched_codes.get(msg.code, 0) + 1
            return
        st, t0, _deadline, fut, accept, declined = p
        if t == "ok" or msg.code in accept:
            st.record_ok(now - t0, shared.in_hold)
        elif msg.code in UNSUPPORTED_CODES:
            st.unsupported += 1
        elif msg.code in declined:
            st.declined += 1
        else:
            st.errors += 1
            st.codes[msg.code] = st.codes.get(msg.code, 0) + 1
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def _server_close(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        if self.close_code is None:
            self.close_code = code
            t = self.transport
            if t is not None and not t.is_closing():
                t.write(close_frame(code if code not in (1005, 1006) else 1000))
        # the server closes TCP first (RFC 6455 7.1.1); abort() later if it does not

    # -- out ----------------------------------------------------------------------------

    def send(
        self,
        msg: dict[str, Any],
        st: StepStats,
        timeout: float,
        fut: asyncio.Future[Incoming] | None = None,
        accept: frozenset[int] = frozenset(),
        declined: frozenset[int] = frozenset(),
    ) -> int:
        """Send a request (an `id` is added); returns the id. Raises if closed."""
        t = self.transport
        if t is None or self.closed or self.close_code is not None:
            raise ConnectionError("connection closed")
        self._next_id += 1
        rid = self._next_id
        msg["id"] = rid
        now = time.monotonic()
        pending = self.pending
        if not pending:
            self.shared.busy.add(self)
        pending[rid] = (st, now, now + timeout, fut, accept, declined)
        t.write(client_frame(self._encode(msg), self._opcode))
        st.sent += 1
        self.shared.sent += 1
        return rid

    @property
    def last_id(self) -> int:
        return self._next_id

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; the server then closes the socket."""
        t = self.transport
        if t is None or self.closed:
            return
        if self.close_code is None:
            self.close_code = code
            t.write(close_frame(code))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def fail_pending(self) -> int:
        """Forget every request in flight (the connection is gone); returns how many."""
        n = len(self.pending)
        for st, _t0, _d, fut, _accept, _declined in self.pending.values():
            st.lost += 1
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionError("connection lost"))
        self.pending.clear()
        self.shared.busy.discard(self)
        return n

    def expire(self, now: float) -> None:
        """Count requests past their deadline as timed out."""
        if not self.pending:
            self.shared.busy.discard(self)
            return
        late = [rid for rid, p in self.pending.items() if now > p[2]]
        for rid in late:
            st, _t0, _d, fut, _a, _n = self.pending.pop(rid)
            st.timeouts += 1
            if fut is not None and not fut.done():
                fut.set_exception(TimeoutError("no reply in time"))


ENCODERS: dict[bool, Callable[[Any], bytes]] = {
    True: msgspec.msgpack.Encoder().encode,
    False: msgspec.json.Encoder().encode,
}
DECODERS: dict[bool, Callable[[Any], Incoming]] = {
    True: msgspec.msgpack.Decoder(Incoming).decode,
    False: msgspec.json.Decoder(Incoming).decode,
}


def decode_data(msg: Incoming, binary: bool) -> Any:
    """A reply's `data`, decoded (None if absent)."""
    raw = bytes(msg.data)
    if not raw:
        return None
    return msgspec.msgpack.decode(raw) if binary else msgspec.json.decode(raw)
