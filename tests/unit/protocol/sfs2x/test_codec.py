"""SFSObject / SFSArray binary codec: layouts, limits and error behaviour (spec §3)."""

from __future__ import annotations

import struct

import pytest

from protocol.sfs2x import (
    SFSArray,
    SFSDecodeError,
    SFSEncodeError,
    SFSObject,
    SFSType,
    decode_array,
    decode_object,
    decode_value,
    encode_array,
    encode_object,
    encode_value,
)
from protocol.sfs2x.codec import DEFAULT_MAX_DEPTH
from protocol.sfs2x.types import Entry

T = SFSType

LAYOUTS = [
    (T.NULL, None, "00"),
    (T.BOOL, True, "0101"),
    (T.BOOL, False, "0100"),
    (T.BYTE, 255, "02ff"),
    (T.SHORT, -2, "03fffe"),
    (T.INT, 1024, "0400000400"),
    (T.LONG, -5, "05fffffffffffffffb"),
    (T.FLOAT, 1.5, "063fc00000"),
    (T.DOUBLE, 1.5, "073ff8000000000000"),
    (T.UTF_STRING, "é", "080002c3a9"),
    (T.BOOL_ARRAY, (True, False), "0900020100"),
    (T.BYTE_ARRAY, b"\x01\x02", "0a000000020102"),
    (T.SHORT_ARRAY, (1, -1), "0b00020001ffff"),
    (T.INT_ARRAY, (1,), "0c000100000001"),
    (T.LONG_ARRAY, (1,), "0d00010000000000000001"),
    (T.FLOAT_ARRAY, (1.5,), "0e00013fc00000"),
    (T.DOUBLE_ARRAY, (1.5,), "0f00013ff8000000000000"),
    (T.UTF_STRING_ARRAY, ("a", ""), "10000200016100" + "00"),
    (T.SFS_ARRAY, SFSArray().add_byte(1), "1100010201"),
    (T.SFS_OBJECT, SFSObject().put_bool("k", True), "120001" + "00016b" + "0101"),
    (T.TEXT, "é", "1400000002c3a9"),
]


@pytest.mark.parametrize(("code", "value", "hex_"), LAYOUTS, ids=[f"{c.name}-{h}" for c, _, h in LAYOUTS])
def test_layout(code: SFSType, value: object, hex_: str) -> None:
    """Every type has the documented body, big-endian, in both directions."""
    assert encode_value(code, value).hex() == hex_
    assert decode_value(bytes.fromhex(hex_)) == (code, value)


def test_empty_containers() -> None:
    """An empty SFSObject is 12 00 00, an empty SFSArray 11 00 00."""
    assert encode_object(SFSObject()) == b"\x12\x00\x00"
    assert encode_array(SFSArray()) == b"\x11\x00\x00"
    assert decode_object(b"\x12\x00\x00") == SFSObject()
    assert decode_array(bytearray(b"\x11\x00\x00")) == SFSArray()
    assert decode_array(memoryview(b"\x11\x00\x00")) == SFSArray()


def _nested(depth: int) -> bytes:
    """An SFS_OBJECT nested ``depth`` levels deep (counting itself)."""
    data = b"\x12\x00\x00"
    for _ in range(depth - 1):
        data = b"\x12\x00\x01\x00\x01x" + data
    return data


@pytest.mark.parametrize(
    ("hex_", "message"),
    [
        ("", "truncated value"),
        ("04000000", "truncated data"),
        ("0102", "invalid bool 2"),
        ("01", "truncated bool"),
        ("02", "truncated byte"),
        ("080005616263", "truncated utf_string"),
        ("0800026162ff", "1 trailing bytes"),
        ("0800019f", "invalid utf-8 at byte 0"),
        ("0802", "truncated data"),
        ("13", "unsupported type class"),
        ("15", "unknown type code 21"),
        ("ff", "unknown type code 255"),
        ("0affffffff", "negative length -1"),
        ("14ffffff00", "negative length"),
        ("0a00000005ab", "truncated byte_array"),
        ("140000000561", "truncated text"),
        ("0900020100ff", "1 trailing bytes"),
        ("09000102", "invalid bool in bool_array"),
        ("0900ff00", "truncated bool_array"),
        ("0bffff0000", "truncated short_array"),
        ("0cffff", "truncated int_array"),
        ("1000020001", "truncated utf_string_array"),
        ("100001000561", "truncated utf_string_array"),
        ("10ffff", "truncated utf_string_array"),
        ("11ffff00", "sfs_array count exceeds remaining bytes"),
        ("12ffff00000000", "sfs_object count exceeds remaining bytes"),
        ("12000100000000", "bad key length 0"),
        ("12000101000000", "bad key length 256"),
        ("1200010005616263", "truncated key"),
        ("12000100026161", "truncated value"),
        ("1200020001610000016100", "duplicate key 'a'"),
        ("12000100019f00", "invalid utf-8"),
    ],
)
def test_malformed_input(hex_: str, message: str) -> None:
    """Malformed values raise SFSDecodeError with a short lowercase message."""
    with pytest.raises(SFSDecodeError, match=message):
        decode_value(bytes.fromhex(hex_))


def test_top_level_type() -> None:
    """decode_object needs an SFS_OBJECT, decode_array an SFS_ARRAY."""
    with pytest.raises(SFSDecodeError, match="expected sfs_object"):
        decode_object(b"\x11\x00\x00")
    with pytest.raises(SFSDecodeError, match="expected sfs_array"):
        decode_array(b"\x12\x00\x00")
    with pytest.raises(SFSDecodeError, match="expected sfs_object"):
        decode_object(b"")


def test_max_depth() -> None:
    """Nesting deeper than max_depth containers is refused when decoding and encoding."""
    assert decode_object(_nested(DEFAULT_MAX_DEPTH))
    with pytest.raises(SFSDecodeError, match="nesting too deep"):
        decode_object(_nested(DEFAULT_MAX_DEPTH + 1))
    with pytest.raises(SFSDecodeError, match="nesting too deep"):
        decode_object(_nested(3), max_depth=2)
    deep = SFSObject()
    for _ in range(DEFAULT_MAX_DEPTH):
        deep = SFSObject().put_sfs_object("x", deep)
    with pytest.raises(SFSEncodeError, match="nesting too deep"):
        encode_object(deep)
    assert encode_object(deep, max_depth=DEFAULT_MAX_DEPTH + 1)
    with pytest.raises(ValueError, match="max_depth"):
        decode_object(b"\x12\x00\x00", max_depth=0)


def test_cyclic_object_is_refused() -> None:
    """A cycle is caught by the depth limit instead of recursing forever."""
    obj = SFSObject()
    obj.put_sfs_array("a", SFSArray().add_sfs_object(obj))
    with pytest.raises(SFSEncodeError, match="nesting too deep"):
        encode_object(obj)


def test_hostile_counts_do_not_allocate() -> None:
    """A 5-byte input announcing 65 535 elements is refused before allocation, for every typed array."""
    for code in range(9, 18):
        if code == 10:
            continue
        with pytest.raises(SFSDecodeError):
            decode_value(bytes([code, 0xFF, 0xFF, 0, 0]))
    with pytest.raises(SFSDecodeError, match="truncated byte_array"):
        decode_value(b"\x0a\x7f\xff\xff\xff\x00")


def test_uint16_lengths_are_accepted_when_decoding() -> None:
    """Lengths up to 65 535 decode (lenient), even though we never send them."""
    raw = "x" * 40_000
    data = b"\x08" + struct.pack(">H", len(raw)) + raw.encode()
    assert decode_value(data) == (T.UTF_STRING, raw)
    array = b"\x11" + struct.pack(">H", 40_000) + b"\x00" * 40_000
    assert len(decode_array(array)) == 40_000


def test_encode_limits() -> None:
    """Strings over 32 767 bytes, SFS_ARRAYs over 32 767 elements and bad keys are refused."""
    assert encode_value(T.UTF_STRING, "x" * 32_767)
    with pytest.raises(SFSEncodeError, match="utf_string too long: 32768 bytes \\(use text\\)"):
        encode_value(T.UTF_STRING, "x" * 32_768)
    with pytest.raises(SFSEncodeError, match="utf_string too long"):
        encode_value(T.UTF_STRING_ARRAY, ["é" * 20_000])
    assert encode_value(T.TEXT, "x" * 70_000)[:5] == b"\x14\x00\x01\x11\x70"
    with pytest.raises(SFSEncodeError, match="sfs_array too long: 32768"):
        encode_array(SFSArray.of(T.NULL, [None] * 32_768))
    with pytest.raises(SFSEncodeError, match="int_array too long: 65536"):
        encode_value(T.INT_ARRAY, [0] * 65_536)
    with pytest.raises(SFSEncodeError, match="sfs_object has too many keys"):
        encode_object(SFSObject({str(i): (T.NULL, None) for i in range(65_536)}))
    with pytest.raises(SFSEncodeError, match="key length must be 1..255 bytes, got 0"):
        encode_object(SFSObject().put_int("", 1))
    with pytest.raises(SFSEncodeError, match="got 256"):
        encode_object(SFSObject().put_int("é" * 128, 1))
    assert encode_object(SFSObject().put_int("k" * 255, 1))


def test_encode_refuses_unencodable_strings() -> None:
    """Lone surrogates are not UTF-8."""
    with pytest.raises(SFSEncodeError, match="not encodable as utf-8"):
        encode_object(SFSObject().put_utf_string("k", "\ud800"))
    with pytest.raises(SFSEncodeError, match="not encodable as utf-8"):
        encode_value(T.TEXT, "\udfff")
    with pytest.raises(SFSEncodeError, match="not encodable as utf-8"):
        encode_object(SFSObject().put_int("\ud800", 1))


def test_unchecked_entries_fail_cleanly() -> None:
    """Entries stored behind the checks still give SFSEncodeError, not struct.error."""
    bad: dict[str, Entry] = {"x": (T.SHORT, 1 << 20)}
    with pytest.raises(SFSEncodeError, match="does not fit its type"):
        encode_object(SFSObject._wrap(bad))
    with pytest.raises(SFSEncodeError, match="cannot encode type class"):
        encode_object(SFSObject._wrap({"x": (T.CLASS, None)}))
    with pytest.raises(SFSEncodeError, match="expected an SFSObject"):
        encode_object(SFSArray())  # type: ignore[arg-type]
    with pytest.raises(SFSEncodeError, match="expected an SFSArray"):
        encode_array(SFSObject())  # type: ignore[arg-type]


def test_every_truncation_is_a_documented_error() -> None:
    """Every strict prefix of a rich encoding raises SFSDecodeError."""
    inner = SFSArray().add_long_array([1, 2]).add_text("τ").add_sfs_object(SFSObject().put_null("n"))
    obj = SFSObject().put_utf_string_array("u", ["ab", "c"]).put_sfs_array("a", inner).put_double("d", 2.0)
    data = encode_object(obj)
    assert decode_object(data) == obj
    for end in range(len(data)):
        with pytest.raises(SFSDecodeError):
            decode_object(data[:end])


def test_limits_inside_containers() -> None:
    """The same limits hold for values inside objects and arrays, and for nested arrays."""
    long = "x" * 32_768
    with pytest.raises(SFSEncodeError, match="utf_string too long"):
        encode_object(SFSObject().put_utf_string("k", long))
    with pytest.raises(SFSEncodeError, match="utf_string too long"):
        encode_array(SFSArray().add_utf_string(long))
    with pytest.raises(SFSDecodeError, match="truncated utf_string"):
        decode_object(bytes.fromhex("120001 00016b 080009 6162".replace(" ", "")))
    with pytest.raises(SFSDecodeError, match="truncated utf_string"):
        decode_array(bytes.fromhex("110001 080009 6162".replace(" ", "")))
    deep_bytes = b"\x11\x00\x01" * DEFAULT_MAX_DEPTH + b"\x11\x00\x00"
    with pytest.raises(SFSDecodeError, match="nesting too deep"):
        decode_array(deep_bytes)
    assert decode_array(deep_bytes, max_depth=DEFAULT_MAX_DEPTH + 1)
    deep = SFSArray()
    for _ in range(DEFAULT_MAX_DEPTH):
        deep = SFSArray().add_sfs_array(deep)
    with pytest.raises(SFSEncodeError, match="nesting too deep"):
        encode_array(deep)


def test_huge_blob_and_runaway_depth() -> None:
    """A BYTE_ARRAY over 2**31 - 1 bytes and a cycle with an absurd max_depth give SFSEncodeError."""

    class Huge(bytes):
        def __len__(self) -> int:
            return 1 << 31

    with pytest.raises(SFSEncodeError, match="byte_array too long"):
        encode_object(SFSObject().put_byte_array("b", Huge()))
    obj = SFSObject()
    obj.put_sfs_object("self", obj)
    with pytest.raises(SFSEncodeError, match="nesting too deep"):
        encode_object(obj, max_depth=1_000_000)


def test_max_items_bounds_memory() -> None:
    """Entries and elements of all containers together are limited, typed arrays counting once."""
    many = b"\x11" + struct.pack(">H", 1000) + b"\x11\x00\x00" * 1000
    assert len(decode_array(many, max_items=1000)) == 1000
    with pytest.raises(SFSDecodeError, match="too many elements"):
        decode_array(many, max_items=999)
    nested = encode_object(SFSObject().put_sfs_object("a", SFSObject().put_int("b", 1).put_int("c", 2)))
    assert decode_object(nested, max_items=3)
    with pytest.raises(SFSDecodeError, match="too many elements"):
        decode_object(nested, max_items=2)
    assert decode_object(encode_object(SFSObject().put_int_array("i", range(5000))), max_items=1)
    with pytest.raises(ValueError, match="max_items"):
        decode_array(many, max_items=-1)
