"""Server-side WebSocket frame encoding (RFC 6455 section 5.2), for batched writes.

Server frames are never masked, so a frame is a 2-10 byte header and the payload. The
transport builds every frame a client gets in one loop tick and writes them at once:
one write call per client per tick instead of one per message.
"""

from __future__ import annotations

import struct

OP_TEXT = 0x1
OP_BINARY = 0x2
_FIN = 0x80
_pack_16 = struct.Struct("!BBH").pack
_pack_64 = struct.Struct("!BBQ").pack


def frame_header(opcode: int, size: int) -> bytes:
    """The header of an unmasked, final frame carrying `size` bytes."""
    first = _FIN | opcode
    if size < 126:
        return bytes((first, size))
    if size < 65536:
        return _pack_16(first, 126, size)
    return _pack_64(first, 127, size)


#: the headers of final text / binary frames under 126 bytes, by opcode and size
_SHORT_HEADERS: dict[int, list[bytes]] = {
    op: [bytes((_FIN | op, n)) for n in range(126)] for op in (OP_TEXT, OP_BINARY)
}


def encode_frames(payloads: list[bytes], opcode: int) -> bytes:
    """Every payload as one final frame, joined into one buffer."""
    if len(payloads) == 1:  # most flushes: one reply
        p = payloads[0]
        n = len(p)
        heads = _SHORT_HEADERS.get(opcode)
        if n < 126 and heads is not None:
            return heads[n] + p
    parts: list[bytes] = []
    for p in payloads:
        parts.append(frame_header(opcode, len(p)))
        parts.append(p)
    return b"".join(parts)


OP_CLOSE = 0x8

#: Close codes a peer may send (RFC 6455 section 7.4; 1004-1006 and 1015 are reserved).
_VALID_PEER_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def close_frame(code: int, reason: str = "") -> bytes:
    """A server close frame (reason truncated to fit the 125-byte control frame limit)."""
    raw = reason.encode("utf-8")[:123]
    while raw:  # don't cut a multi-byte character in half
        try:
            raw.decode("utf-8")
            break
        except UnicodeDecodeError:
            raw = raw[:-1]
    payload = code.to_bytes(2, "big") + raw
    return frame_header(OP_CLOSE, len(payload)) + payload


def close_reply(payload: bytes) -> tuple[int, str]:
    """The close code and reason to answer a peer's close frame payload with.

    An empty payload is answered with 1000; a malformed one (1 byte, a reserved code)
    with 1002; a reason that is not UTF-8 with 1007 (RFC 6455 sections 5.5.1, 7.4).
    """
    if not payload:
        return 1000, ""
    if len(payload) == 1:
        return 1002, "bad close frame"
    code = int.from_bytes(payload[:2], "big")
    if code not in _VALID_PEER_CODES and not 3000 <= code <= 4999:
        return 1002, "bad close code"
    try:
        payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        return 1007, "close reason is not utf-8"
    return code, ""
