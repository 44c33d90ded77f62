"""Packet framing, compression and the TCP PacketReader (spec §2)."""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from protocol.sfs2x import (
    PacketFlags,
    PacketReader,
    PacketTooBig,
    SFSDecodeError,
    decode_packet,
    encode_packet,
)

F = PacketFlags


def _frame(header: int, body: bytes, big: bool = False) -> bytes:
    return bytes([header]) + (struct.pack(">I", len(body)) if big else struct.pack(">H", len(body))) + body


# ---------------------------------------------------------------------------
# Encoding


def test_plain_packet() -> None:
    """Header 0x80, 2-byte big-endian length, payload."""
    assert encode_packet(b"\x12\x00\x00") == b"\x80\x00\x03\x12\x00\x00"


def test_compression_threshold_is_strict() -> None:
    """Payloads of exactly ct bytes are sent plain; ct + 1 bytes are compressed."""
    at = b"a" * 1024
    above = b"a" * 1025
    assert encode_packet(at)[0] == 0x80
    frame = encode_packet(above)
    assert frame[0] == 0xA0
    assert zlib.decompress(frame[3:]) == above
    assert encode_packet(b"a" * 101, compression_threshold=100)[0] == 0xA0
    assert encode_packet(b"a" * 100, compression_threshold=100)[0] == 0x80


def test_compression_disabled_or_useless() -> None:
    """threshold None never compresses; incompressible payloads are sent plain."""
    assert encode_packet(b"a" * 5000, compression_threshold=None)[0] == 0x80
    noise = os.urandom(4000)
    frame = encode_packet(noise, compression_threshold=0)
    assert frame == b"\x80" + struct.pack(">H", 4000) + noise


def test_big_size_above_65535() -> None:
    """BIG_SIZE and a 4-byte length are used only above 65 535 payload bytes."""
    assert encode_packet(b"x" * 65_535, compression_threshold=None)[:3] == b"\x80\xff\xff"
    frame = encode_packet(b"x" * 65_536, compression_threshold=None)
    assert frame[:5] == b"\x88\x00\x01\x00\x00"
    packet = decode_packet(frame, max_packet_size=1 << 20)
    assert packet.flags == F.BINARY | F.BIG_SIZE
    assert packet.wire_size == 65_541


def test_big_compressed() -> None:
    """Compressed and big at once: header a8."""
    payload = os.urandom(70_000) + bytes(100_000)
    frame = encode_packet(payload)
    assert frame[0] == 0xA8
    assert decode_packet(frame).payload == payload


def test_encode_rejects_absurd_payload() -> None:
    """Lengths that do not fit 32 bits cannot be framed."""

    class Huge(bytes):
        def __len__(self) -> int:
            return 1 << 32

    with pytest.raises(ValueError, match="payload too long"):
        encode_packet(Huge(), compression_threshold=None)


# ---------------------------------------------------------------------------
# Decoding one frame


def test_decode_obeys_big_size_flag_not_size() -> None:
    """A small payload with a 4-byte length (the JS client's 65 336 rule) decodes."""
    body = b"\x12\x00\x00"
    assert decode_packet(_frame(0x88, body, big=True)).payload == body
    mid = b"y" * 65_400
    assert decode_packet(_frame(0x88, mid, big=True)).payload == mid
    assert decode_packet(_frame(0x80, mid)).payload == mid


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "empty packet"),
        (b"\x00\x00\x00", "bad header 0x00: binary flag not set"),
        (b"\x20\x00\x00", "binary flag not set"),
        (b"\xc0\x00\x00", "encrypted packets are not supported"),
        (b"\x80\x00", "truncated packet length"),
        (b"\x88\x00\x00\x00", "truncated packet length"),
        (b"\x80\x00\x05abc", "truncated packet: 3 of 5 payload bytes"),
        (b"\x80\x00\x01ab", "1 trailing bytes after packet"),
        (b"\xa0\x00\x03abc", "invalid zlib data"),
        (b"\xa0\x00\x04" + zlib.compress(b"hello")[:4], "truncated zlib data"),
    ],
)
def test_decode_errors(frame: bytes, message: str) -> None:
    """Bad frames raise SFSDecodeError with a short message."""
    with pytest.raises(SFSDecodeError, match=message):
        decode_packet(frame)


def test_trailing_zlib_data() -> None:
    """Bytes after the end of the zlib stream are refused."""
    body = zlib.compress(b"hello") + b"!"
    with pytest.raises(SFSDecodeError, match="trailing bytes after zlib data"):
        decode_packet(_frame(0xA0, body))


def test_unused_bits_and_bluebox_are_ignored() -> None:
    """Bits 0-2 and BLUEBOXED do not change the payload format."""
    packet = decode_packet(_frame(0x97, b"ok"))
    assert packet.payload == b"ok"
    assert F.BLUEBOXED in packet.flags


def test_max_packet_size() -> None:
    """Frames larger than max_packet_size (header included) raise PacketTooBig."""
    frame = encode_packet(b"x" * 97, compression_threshold=None)
    assert decode_packet(frame, max_packet_size=100).payload == b"x" * 97
    with pytest.raises(PacketTooBig, match="packet too big: 101 > 100 bytes") as info:
        decode_packet(encode_packet(b"x" * 98, compression_threshold=None), max_packet_size=100)
    assert (info.value.size, info.value.max_size, info.value.what) == (101, 100, "packet")


def test_zlib_bomb_is_stopped() -> None:
    """A 50 KB packet inflating to 50 MB is refused after inflating at most max_payload_size + 1 bytes."""
    bomb = zlib.compress(bytes(50_000_000), 9)
    assert len(bomb) < 65_535
    with pytest.raises(PacketTooBig, match="payload too big: more than 4000000 bytes"):
        decode_packet(_frame(0xA0, bomb))
    with pytest.raises(PacketTooBig):
        decode_packet(_frame(0xA0, zlib.compress(b"a" * 11)), max_payload_size=10)
    assert decode_packet(_frame(0xA0, zlib.compress(b"a" * 10)), max_payload_size=10).payload == b"a" * 10


def test_plain_payload_limit() -> None:
    """max_payload_size applies to plain payloads too."""
    with pytest.raises(PacketTooBig, match="payload too big: 11 > 10 bytes"):
        decode_packet(_frame(0x80, b"a" * 11), max_payload_size=10)


# ---------------------------------------------------------------------------
# TCP re-assembly


def _stream() -> tuple[bytes, list[bytes]]:
    payloads = [b"\x12\x00\x00", b"p" * 2000, os.urandom(300), b"", b"q" * 70_000]
    stream = b"".join(encode_packet(p) for p in payloads[:-1])
    stream += encode_packet(payloads[-1], compression_threshold=None)
    stream += _frame(0x88, b"tiny", big=True)
    return stream, [*payloads, b"tiny"]


def test_reader_every_split_point() -> None:
    """The stream split in two at every byte boundary gives the same packets."""
    payloads = [b"\x12\x00\x00", b"z" * 1500, b"abc", b"w" * 5]
    stream = b"".join(encode_packet(p) for p in payloads) + _frame(0x88, b"big-flag", big=True)
    expected = [*payloads, b"big-flag"]
    for cut in range(len(stream) + 1):
        reader = PacketReader()
        reader.receive_data(stream[:cut])
        first = reader.packets_received()
        reader.receive_data(stream[cut:])
        got = [p.payload for p in first + reader.packets_received()]
        assert got == expected, cut
        assert reader.exc is None and reader.buffered == 0


def test_reader_byte_by_byte_and_all_at_once() -> None:
    """One byte at a time, or every packet in one chunk, including big and compressed ones."""
    stream, expected = _stream()
    reader = PacketReader()
    reader.receive_data(stream)
    packets = reader.packets_received()
    assert [p.payload for p in packets] == expected
    assert sum(p.wire_size for p in packets) == len(stream)
    assert reader.packets_received() == []

    reader = PacketReader()
    got = []
    for i in range(len(stream)):
        reader.receive_data(stream[i : i + 1])
        got += reader.packets_received()
    assert [p.payload for p in got] == expected
    reader.receive_eof()
    assert reader.exc is None


def test_reader_bad_header_keeps_earlier_packets() -> None:
    """Packets before a bad header are delivered; the error is stored and later data discarded."""
    reader = PacketReader()
    reader.receive_data(encode_packet(b"one") + encode_packet(b"two") + b"\x00garbage")
    assert [p.payload for p in reader.packets_received()] == [b"one", b"two"]
    assert isinstance(reader.exc, SFSDecodeError)
    assert "binary flag not set" in str(reader.exc)
    reader.receive_data(encode_packet(b"three"))
    assert reader.packets_received() == []
    assert reader.buffered == 0


def test_reader_bad_header_is_reported_early() -> None:
    """A bad first byte is reported without waiting for more data."""
    reader = PacketReader()
    reader.receive_data(b"\x40")
    assert reader.exc is not None


def test_reader_oversize_is_reported_from_the_length_field() -> None:
    """An announced oversize packet fails as soon as its length is known, before the payload."""
    reader = PacketReader(max_packet_size=1000)
    reader.receive_data(b"\x88\x7f\xff\xff\xff")
    assert isinstance(reader.exc, PacketTooBig)
    assert reader.exc.size == 0x7FFFFFFF + 5
    assert reader.buffered == 0


def test_reader_bad_payload_keeps_earlier_packets() -> None:
    """A corrupt compressed payload stops the reader after the good packets."""
    reader = PacketReader(max_payload_size=100)
    reader.receive_data(encode_packet(b"ok") + _frame(0xA0, b"not zlib") + encode_packet(b"later"))
    assert [p.payload for p in reader.packets_received()] == [b"ok"]
    assert isinstance(reader.exc, SFSDecodeError) and "invalid zlib data" in str(reader.exc)


def test_reader_eof_inside_packet() -> None:
    """EOF in the middle of a packet is an error; EOF between packets is not."""
    reader = PacketReader()
    reader.receive_data(encode_packet(b"hello")[:4])
    assert reader.buffered == 4
    reader.receive_eof()
    assert isinstance(reader.exc, SFSDecodeError)
    assert "stream ended inside a packet (4 bytes)" in str(reader.exc)
