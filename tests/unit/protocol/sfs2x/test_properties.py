"""Hypothesis properties: round trips, and hostile bytes only ever give a value or SFSDecodeError."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings, strategies as st

from protocol.sfs2x import (
    Message,
    PacketReader,
    SFSArray,
    SFSDecodeError,
    SFSObject,
    decode_array,
    decode_frame,
    decode_object,
    decode_packet,
    decode_value,
    encode_array,
    encode_frame,
    encode_object,
    encode_packet,
)

from .strategies import arrays, entries, objects

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(objects)
def test_object_round_trip(obj: SFSObject) -> None:
    """decode(encode(x)) == x for random nested typed objects."""
    data = encode_object(obj)
    assert decode_object(data) == obj
    assert encode_object(decode_object(data)) == data


@FAST
@given(arrays)
def test_array_round_trip(arr: SFSArray) -> None:
    """decode(encode(x)) == x for random nested typed arrays."""
    data = encode_array(arr)
    assert decode_array(data) == arr


@FAST
@given(objects, st.sampled_from([None, 0, 16, 1024]))
def test_frame_round_trip(params: SFSObject, threshold: int | None) -> None:
    """A message survives framing with any compression threshold."""
    message = Message(1, 13, params)
    assert decode_frame(encode_frame(message, compression_threshold=threshold)) == message


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, where, byte in ops:
        if not buf:
            buf.append(byte)
            continue
        i = where % len(buf)
        if kind == 0:
            buf[i] = byte
        elif kind == 1:
            del buf[i]
        elif kind == 2:
            buf.insert(i, byte)
        else:
            del buf[i:]
    return bytes(buf)


_ops = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_documented_error(data: bytes) -> None:
    """Random bytes, with or without an SFS_OBJECT type byte in front, never raise anything undocumented."""
    for candidate in (data, b"\x12" + data, b"\x11" + data):
        with contextlib.suppress(SFSDecodeError):
            decode_value(candidate)


@settings(max_examples=400, deadline=None)
@given(entries, _ops)
def test_mutated_encodings_decode_or_documented_error(entry: object, ops: list[tuple[int, int, int]]) -> None:
    """Valid encodings with bytes changed, removed, inserted or cut never raise anything undocumented."""
    data = encode_array(SFSArray([entry]))  # type: ignore[list-item]
    mutated = _mutate(data, ops)
    with contextlib.suppress(SFSDecodeError):
        decode_value(mutated)


@settings(max_examples=300, deadline=None)
@given(objects, _ops, st.sampled_from([None, 0]))
def test_mutated_frames_decode_or_documented_error(
    params: SFSObject, ops: list[tuple[int, int, int]], threshold: int | None
) -> None:
    """Mutated frames (plain and compressed) give a message or SFSDecodeError, through both decoders."""
    frame = _mutate(encode_frame(Message(0, 7, params), compression_threshold=threshold), ops)
    with contextlib.suppress(SFSDecodeError):
        decode_frame(frame)
    reader = PacketReader()
    reader.receive_data(frame)
    reader.receive_eof()
    for packet in reader.packets_received():
        with contextlib.suppress(SFSDecodeError):
            decode_object(packet.payload)
    assert reader.exc is None or isinstance(reader.exc, SFSDecodeError)


@FAST
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5), st.data())
def test_reader_reassembles_any_chunking(payloads: list[bytes], data: st.DataObject) -> None:
    """Packets cut into random chunks come out whole and in order."""
    stream = b"".join(encode_packet(p, compression_threshold=100) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader = PacketReader()
    got: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.receive_data(stream[start:end])
        got += [p.payload for p in reader.packets_received()]
    assert reader.exc is None
    assert got == payloads
    assert reader.buffered == 0


@FAST
@given(st.binary(max_size=2000))
def test_packet_round_trip(payload: bytes) -> None:
    """encode_packet / decode_packet round-trip any payload."""
    assert decode_packet(encode_packet(payload, compression_threshold=64)).payload == payload
