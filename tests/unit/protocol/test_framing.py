"""Length-prefixed TCP framing, WebSocket frame assembly and server frame encoding."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from protocol.assembler import OP_BINARY, OP_CONT, OP_TEXT, Assembler
from protocol.codes import CloseCode
from protocol.errors import FramingError, MessageTooBig, ProtocolViolation
from protocol.framing import StreamFramer, frame, frame_many
from protocol.wsframe import close_frame, close_reply, encode_frames, frame_header


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20), st.integers(1, 64))
def test_stream_framer_reassembles_any_split(payloads, chunk):
    """Messages come out whole and in order however the stream is cut."""
    data = frame_many(payloads)
    f = StreamFramer(max_size=1000)
    out: list[bytes] = []
    for i in range(0, len(data), chunk):
        f.receive_data(data[i : i + chunk])
        out.extend(f.messages_received())
    assert out == payloads
    assert f.buffered == 0


def test_stream_framer_rejects_oversize_before_buffering():
    f = StreamFramer(max_size=10)
    with pytest.raises(MessageTooBig) as exc:
        f.receive_data((11).to_bytes(4, "big"))
    assert exc.value.code is CloseCode.MESSAGE_TOO_BIG


def test_stream_framer_rejects_empty_frame():
    with pytest.raises(FramingError):
        StreamFramer(10).receive_data(b"\0\0\0\0")


def test_frame_is_length_prefixed():
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_ws_frame_header_lengths(size):
    """7-bit, 16-bit and 64-bit payload lengths (RFC 6455 5.2)."""
    h = frame_header(0x2, size)
    assert h[0] == 0x82
    if size < 126:
        assert h[1] == size and len(h) == 2
    elif size < 65536:
        assert h[1] == 126 and int.from_bytes(h[2:4], "big") == size
    else:
        assert h[1] == 127 and int.from_bytes(h[2:10], "big") == size


def test_encode_frames_concatenates():
    assert encode_frames([b"a", b"bc"], 0x1) == b"\x81\x01a\x81\x02bc"


def test_assembler_joins_fragments():
    a = Assembler(100)
    assert a.frame(OP_TEXT, False, b"he") is None
    assert a.frame(OP_CONT, False, b"l") is None
    assert a.frame(OP_CONT, True, b"lo") == (b"hello", False)


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([(OP_CONT, True, b"x")], CloseCode.WS_PROTOCOL_ERROR),
        ([(OP_TEXT, False, b"x"), (OP_BINARY, True, b"y")], CloseCode.WS_PROTOCOL_ERROR),
        ([(OP_TEXT, True, b"\xff\xfe")], CloseCode.INVALID_TEXT),
        ([(OP_BINARY, False, b"x" * 60), (OP_CONT, True, b"y" * 60)], CloseCode.MESSAGE_TOO_BIG),
    ],
)
def test_assembler_violations(frames, code):
    a = Assembler(100)
    with pytest.raises(ProtocolViolation) as exc:
        for op, fin, data in frames:
            a.frame(op, fin, data)
    assert exc.value.code == code


def test_assembler_rejects_reserved_bits():
    with pytest.raises(ProtocolViolation):
        Assembler(10).frame(OP_BINARY, True, b"x", reserved=True)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", 1000),
        (b"\x03", 1002),
        (b"\x03\xe8", 1000),
        (b"\x0f\xa1bye", 4001),
        (b"\x03\xed", 1002),  # 1005 is reserved
        (b"\x03\xe8\xff", 1007),
    ],
)
def test_close_reply(payload, expected):
    assert close_reply(payload)[0] == expected


def test_close_frame_fits_control_frame_limit():
    f = close_frame(4004, "é" * 200)
    assert f[0] == 0x88 and f[1] <= 125
    f[4:].decode("utf-8")
