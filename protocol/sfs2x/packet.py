"""SFS2X packet framing (spec §2), the same over WebSocket and TCP.

::

    +--------+----------------------------+------------------------------+
    | header | length (2 or 4 bytes, BE)  | payload (length bytes)       |
    +--------+----------------------------+------------------------------+

The header is a set of :class:`PacketFlags`. BINARY is always set; COMPRESSED
means the payload is a zlib stream (RFC 1950); BIG_SIZE means a 4-byte length.
The length counts the payload bytes on the wire, after compression.

Over WebSocket every frame carries exactly one packet: use
:func:`encode_packet` and :func:`decode_packet`. Over TCP packets may be split
or merged by the stream: feed the bytes to a :class:`PacketReader`.

Decoding enforces two limits, both raising :class:`PacketTooBig` (a
:class:`SFSDecodeError`):

- ``max_packet_size``: header + length + payload as received. A TCP reader
  checks it as soon as the length field is in, before buffering the payload.
- ``max_payload_size``: the payload after inflating. Inflation stops as soon as
  the limit is passed, so a zlib bomb costs at most ``max_payload_size`` bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntFlag
from typing import Final

from .errors import PacketTooBig, SFSDecodeError

__all__ = [
    "DEFAULT_COMPRESSION_THRESHOLD",
    "DEFAULT_MAX_PACKET_SIZE",
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "Packet",
    "PacketFlags",
    "PacketReader",
    "decode_packet",
    "encode_packet",
]


class PacketFlags(IntFlag):
    """Bits of the packet header byte (spec §2). Bits 0-2 are unused."""

    BIG_SIZE = 0x08
    BLUEBOXED = 0x10
    COMPRESSED = 0x20
    ENCRYPTED = 0x40
    BINARY = 0x80


#: Payloads strictly larger than this are compressed (the usual SFS2X ``ct``).
DEFAULT_COMPRESSION_THRESHOLD: Final = 1024
#: Default inbound limit on a whole packet as received (the ``ms`` to advertise).
DEFAULT_MAX_PACKET_SIZE: Final = 1_000_000
#: Default inbound limit on a payload after inflating.
DEFAULT_MAX_PAYLOAD_SIZE: Final = 4_000_000

_BINARY: Final = 0x80
_ENCRYPTED: Final = 0x40
_COMPRESSED: Final = 0x20
_BIG_SIZE: Final = 0x08
_SMALL_MAX: Final = 0xFFFF
_BIG_MAX: Final = 0xFFFFFFFF

_pack_BH = struct.Struct(">BH").pack
_pack_BI = struct.Struct(">BI").pack
_unpack_H = struct.Struct(">H").unpack_from
_unpack_I = struct.Struct(">I").unpack_from


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded packet.

    Attributes:
        payload: the payload, already inflated if it was compressed; decode it
            with :func:`protocol.sfs2x.codec.decode_object`.
        flags: the header flags as received.
        wire_size: bytes the packet took on the wire (header + length + payload).
    """

    payload: bytes
    flags: PacketFlags
    wire_size: int


def encode_packet(
    payload: bytes,
    *,
    compression_threshold: int | None = DEFAULT_COMPRESSION_THRESHOLD,
    compression_level: int = zlib.Z_DEFAULT_COMPRESSION,
) -> bytes:
    """Frame ``payload`` (an encoded SFSObject) as one packet.

    The payload is zlib-compressed when it is strictly longer than
    ``compression_threshold`` (``None`` disables compression), and the
    compressed form is kept only if it is shorter. BIG_SIZE is set when the
    payload on the wire is longer than 65 535 bytes.

    Returns:
        The packet; send it as one binary WebSocket frame, or write it to TCP.

    Raises:
        ValueError: the payload is longer than 2**32 - 1 bytes.
    """
    header = _BINARY
    if compression_threshold is not None and len(payload) > compression_threshold:
        compressed = zlib.compress(payload, compression_level)
        if len(compressed) < len(payload):
            payload = compressed
            header |= _COMPRESSED
    n = len(payload)
    if n <= _SMALL_MAX:
        return _pack_BH(header, n) + payload
    if n > _BIG_MAX:
        raise ValueError(f"payload too long: {n} bytes")
    return _pack_BI(header | _BIG_SIZE, n) + payload


def _check_header(header: int) -> None:
    # §2: BINARY is always set (the C# reader rejects packets without it).
    if not header & _BINARY:
        raise SFSDecodeError(f"bad header 0x{header:02x}: binary flag not set")
    # §2: AES encryption is a TCP-only option we do not offer.
    if header & _ENCRYPTED:
        raise SFSDecodeError("encrypted packets are not supported")


def _inflate(data: bytes, max_payload_size: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(data, max_payload_size + 1)
    except zlib.error:
        raise SFSDecodeError("invalid zlib data") from None
    if len(payload) > max_payload_size:
        raise PacketTooBig("payload", None, max_payload_size)
    if not inflater.eof:
        raise SFSDecodeError("truncated zlib data")
    if inflater.unused_data:
        raise SFSDecodeError("trailing bytes after zlib data")
    return payload


def _finish(header: int, body: bytes, wire_size: int, max_payload_size: int) -> Packet:
    if header & _COMPRESSED:
        body = _inflate(body, max_payload_size)
    elif len(body) > max_payload_size:
        raise PacketTooBig("payload", len(body), max_payload_size)
    return Packet(body, PacketFlags(header), wire_size)


def decode_packet(
    frame: bytes | bytearray | memoryview,
    *,
    max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
) -> Packet:
    """Decode one packet that spans exactly ``frame`` (a WebSocket message).

    Returns:
        The packet; decode its payload with
        :func:`protocol.sfs2x.codec.decode_object`, or use
        :func:`protocol.sfs2x.envelope.decode_frame` to do both.

    Raises:
        SFSDecodeError: bad header, truncated packet, trailing bytes, bad zlib.
        PacketTooBig: a limit was exceeded.
    """
    frame = bytes(frame)
    if len(frame) > max_packet_size:
        raise PacketTooBig("packet", len(frame), max_packet_size)
    if not frame:
        raise SFSDecodeError("empty packet")
    header = frame[0]
    _check_header(header)
    size = 5 if header & _BIG_SIZE else 3
    if len(frame) < size:
        raise SFSDecodeError("truncated packet length")
    n = _unpack_I(frame, 1)[0] if size == 5 else _unpack_H(frame, 1)[0]
    if len(frame) != size + n:
        if len(frame) < size + n:
            raise SFSDecodeError(f"truncated packet: {len(frame) - size} of {n} payload bytes")
        raise SFSDecodeError(f"{len(frame) - size - n} trailing bytes after packet")
    return _finish(header, frame[size:], len(frame), max_payload_size)


class PacketReader:
    """Sans-I/O re-assembler of packets from a TCP byte stream.

    Feed it whatever the socket gives with :meth:`receive_data`, then collect
    complete packets with :meth:`packets_received`. It never raises on bad
    input: the first error is stored in :attr:`exc`, every packet complete
    before it is still returned, and all later data is discarded. When
    :attr:`exc` is set, the caller should close the connection.

    Args:
        max_packet_size: limit on header + length + payload, checked as soon as
            the length field is received.
        max_payload_size: limit on a payload after inflating.
    """

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> None:
        self.max_packet_size = max_packet_size
        self.max_payload_size = max_payload_size
        #: The error that stopped the reader, or ``None``.
        self.exc: SFSDecodeError | None = None
        # Bytes received but not yet parsed into a packet.
        self._buffer = bytearray()
        # Packets parsed but not yet collected.
        self._packets: list[Packet] = []

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete packet waiting for more data."""
        return len(self._buffer)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Receive bytes from the stream.

        After calling this method, call :meth:`packets_received` and handle the
        packets in order, then check :attr:`exc` and close the connection if it
        is set.
        """
        if self.exc is not None:
            return
        buffer = self._buffer
        buffer += data
        pos = 0
        try:
            pos = self._parse(buffer)
        except SFSDecodeError as exc:
            self.exc = exc
            buffer.clear()
            return
        del buffer[:pos]

    def _parse(self, buffer: bytearray) -> int:
        pos = 0
        end = len(buffer)
        while pos < end:
            header = buffer[pos]
            _check_header(header)
            size = 5 if header & _BIG_SIZE else 3
            if end - pos < size:
                break
            n = _unpack_I(buffer, pos + 1)[0] if size == 5 else _unpack_H(buffer, pos + 1)[0]
            if size + n > self.max_packet_size:
                raise PacketTooBig("packet", size + n, self.max_packet_size)
            if end - pos < size + n:
                break
            body = bytes(buffer[pos + size : pos + size + n])
            # Consume the packet before finishing it, so that a bad payload
            # keeps the packets before it.
            pos += size + n
            self._packets.append(_finish(header, body, size + n, self.max_payload_size))
        return pos

    def receive_eof(self) -> None:
        """Signal the end of the stream.

        If an incomplete packet is buffered, :attr:`exc` is set to an
        :class:`SFSDecodeError`.
        """
        if self.exc is None and self._buffer:
            self.exc = SFSDecodeError(f"stream ended inside a packet ({len(self._buffer)} bytes)")
            self._buffer.clear()

    def packets_received(self) -> list[Packet]:
        """Return the packets completed since the last call, in stream order."""
        packets, self._packets = self._packets, []
        return packets
