"""Binary encoding of SFSObject / SFSArray (spec §3).

Every value is a type byte followed by a body; numbers are big-endian, strings
standard UTF-8. The top level of every SFS2X payload is an SFS_OBJECT
(``12 nn nn ...``).

Encoding (server -> client) is strict, so that every client can read what we
send: UTF_STRING values and SFS_ARRAY counts are limited to 32 767 (the JS
client reads those lengths as signed int16), other counts to 65 535, keys to
1..255 UTF-8 bytes, and BYTE_ARRAY / TEXT to 2**31 - 1 bytes. Any violation
raises :class:`SFSEncodeError`.

Decoding (client -> server) is lenient on lengths (every uint16 is accepted) and
strict on everything else. Hostile input only ever raises
:class:`SFSDecodeError`, and cannot make the decoder allocate much more than the
input's own size:

- nesting deeper than ``max_depth`` containers is rejected (no recursion blow-up);
- more than ``max_items`` entries and elements in all containers together are
  rejected, which bounds memory even for a payload inflated from a tiny packet;
- every count is checked against the bytes left before anything is allocated
  (an object entry takes at least 4 bytes, an array element at least 1, a
  typed-array element its exact width), so a 5-byte input cannot announce
  65 535 elements;
- BOOL must be 0 or 1, keys must be 1..255 bytes and unique, strings valid
  UTF-8, lengths non-negative, type codes known (CLASS = 19 is refused), and
  the value must use the input exactly (no trailing bytes).
"""

from __future__ import annotations

import struct
from typing import Final

from .errors import SFSDecodeError, SFSEncodeError
from .types import Entry, SFSArray, SFSObject, SFSType, SFSValue, check_value

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_ITEMS",
    "decode_array",
    "decode_object",
    "decode_value",
    "encode_array",
    "encode_object",
    "encode_value",
]

#: Maximum nesting of SFS_OBJECT / SFS_ARRAY containers, counting the top level.
#: The message envelope itself uses two levels (envelope, ``p``).
DEFAULT_MAX_DEPTH: Final = 32
#: Maximum number of entries and elements in all containers of one decoded
#: value. Bounds memory: each costs at most ~170 bytes of Python objects.
DEFAULT_MAX_ITEMS: Final = 100_000
#: Upper bound accepted for ``max_depth`` (keeps recursion far from Python's limit).
MAX_DEPTH_LIMIT: Final = 256

_MAX_UTF_STRING: Final = 0x7FFF  # JS reads the length as int16
_MAX_SFS_ARRAY: Final = 0x7FFF  # JS reads the count as int16
_MAX_COUNT: Final = 0xFFFF
_MAX_INT32: Final = 0x7FFFFFFF

_T = SFSType
_NULL, _BOOL, _BYTE, _SHORT, _INT, _LONG = _T.NULL, _T.BOOL, _T.BYTE, _T.SHORT, _T.INT, _T.LONG
_FLOAT, _DOUBLE, _UTF_STRING, _TEXT = _T.FLOAT, _T.DOUBLE, _T.UTF_STRING, _T.TEXT
_BOOL_ARRAY, _BYTE_ARRAY, _UTF_STRING_ARRAY = _T.BOOL_ARRAY, _T.BYTE_ARRAY, _T.UTF_STRING_ARRAY
_SFS_ARRAY, _SFS_OBJECT = _T.SFS_ARRAY, _T.SFS_OBJECT

_H = struct.Struct(">H")
_i = struct.Struct(">i")
_pack_H = _H.pack
_pack_BH = struct.Struct(">BH").pack
_pack_Bh = struct.Struct(">Bh").pack
_pack_Bi = struct.Struct(">Bi").pack
_pack_Bq = struct.Struct(">Bq").pack
_pack_Bf = struct.Struct(">Bf").pack
_pack_Bd = struct.Struct(">Bd").pack
_unpack_H = _H.unpack_from
_unpack_h = struct.Struct(">h").unpack_from
_unpack_i = _i.unpack_from
_unpack_q = struct.Struct(">q").unpack_from
_unpack_f = struct.Struct(">f").unpack_from
_unpack_d = struct.Struct(">d").unpack_from

# Format letter and width of the elements of fixed-width typed arrays.
_ARRAY_FORMATS: Final = {
    _T.SHORT_ARRAY: ("h", 2),
    _T.INT_ARRAY: ("i", 4),
    _T.LONG_ARRAY: ("q", 8),
    _T.FLOAT_ARRAY: ("f", 4),
    _T.DOUBLE_ARRAY: ("d", 8),
}

# ---------------------------------------------------------------------------
# Encoding

_NULL_BYTES = b"\x00"
_TRUE_BYTES = b"\x01\x01"
_FALSE_BYTES = b"\x01\x00"
_BYTE_BYTES = tuple(bytes((2, b)) for b in range(256))

# Encoded keys (uint16 length + UTF-8), cached: keys repeat a lot. Bounded, so
# that a server echoing client-chosen keys cannot grow it without limit.
_KEY_CACHE: dict[str, bytes] = {}
_KEY_CACHE_SIZE: Final = 4096


def _encode_key(key: str) -> bytes:
    raw = key.encode("utf-8")
    if not 0 < len(raw) <= 0xFF:
        raise SFSEncodeError(f"key length must be 1..255 bytes, got {len(raw)}")
    encoded = _pack_H(len(raw)) + raw
    if len(_KEY_CACHE) < _KEY_CACHE_SIZE:
        _KEY_CACHE[key] = encoded
    return encoded


def _write_string(out: bytearray, value: str) -> None:
    raw = value.encode("utf-8")
    if len(raw) > _MAX_UTF_STRING:
        raise SFSEncodeError(f"utf_string too long: {len(raw)} bytes (use text)")
    out += _pack_BH(8, len(raw))
    out += raw


def _write_object(out: bytearray, obj: SFSObject, budget: int) -> None:
    if budget <= 0:
        raise SFSEncodeError("nesting too deep")
    data = obj._data
    if len(data) > _MAX_COUNT:
        raise SFSEncodeError(f"sfs_object has too many keys: {len(data)}")
    out += _pack_BH(18, len(data))
    keys = _KEY_CACHE
    budget -= 1
    for key, (code, value) in data.items():
        k = keys.get(key)
        out += k if k is not None else _encode_key(key)
        # The commonest types are inlined (one call less per value); the
        # others go through _write_value, which handles every type.
        if code is _INT:
            out += _pack_Bi(4, value)
        elif code is _UTF_STRING:
            raw = value.encode("utf-8")  # type: ignore[union-attr]
            if len(raw) > _MAX_UTF_STRING:
                raise SFSEncodeError(f"utf_string too long: {len(raw)} bytes (use text)")
            out += _pack_BH(8, len(raw))
            out += raw
        elif code is _BOOL:
            out += _TRUE_BYTES if value else _FALSE_BYTES
        elif code is _SHORT:
            out += _pack_Bh(3, value)
        else:
            _write_value(out, code, value, budget)


def _write_array(out: bytearray, arr: SFSArray, budget: int) -> None:
    if budget <= 0:
        raise SFSEncodeError("nesting too deep")
    data = arr._data
    if len(data) > _MAX_SFS_ARRAY:
        raise SFSEncodeError(f"sfs_array too long: {len(data)} elements")
    out += _pack_BH(17, len(data))
    budget -= 1
    for code, value in data:
        # Inlined common types, as in _write_object.
        if code is _INT:
            out += _pack_Bi(4, value)
        elif code is _UTF_STRING:
            raw = value.encode("utf-8")  # type: ignore[union-attr]
            if len(raw) > _MAX_UTF_STRING:
                raise SFSEncodeError(f"utf_string too long: {len(raw)} bytes (use text)")
            out += _pack_BH(8, len(raw))
            out += raw
        elif code is _BOOL:
            out += _TRUE_BYTES if value else _FALSE_BYTES
        elif code is _SHORT:
            out += _pack_Bh(3, value)
        else:
            _write_value(out, code, value, budget)


def _write_value(out: bytearray, code: SFSType, value: SFSValue, budget: int) -> None:
    # Ordered roughly by frequency in lobby and casino traffic.
    if code is _INT:
        out += _pack_Bi(4, value)
    elif code is _UTF_STRING:
        _write_string(out, value)  # type: ignore[arg-type]
    elif code is _BOOL:
        out += _TRUE_BYTES if value else _FALSE_BYTES
    elif code is _SHORT:
        out += _pack_Bh(3, value)
    elif code is _SFS_OBJECT:
        _write_object(out, value, budget)  # type: ignore[arg-type]
    elif code is _SFS_ARRAY:
        _write_array(out, value, budget)  # type: ignore[arg-type]
    elif code is _BYTE:
        out += _BYTE_BYTES[value]  # type: ignore[index]
    elif code is _LONG:
        out += _pack_Bq(5, value)
    elif code is _DOUBLE:
        out += _pack_Bd(7, value)
    elif code is _FLOAT:
        out += _pack_Bf(6, value)
    elif code is _NULL:
        out += _NULL_BYTES
    elif code is _TEXT:
        _write_blob(out, code, value.encode("utf-8"))  # type: ignore[union-attr]
    elif code is _BYTE_ARRAY:
        _write_blob(out, code, value)  # type: ignore[arg-type]
    else:
        _write_typed_array(out, code, value)


def _write_blob(out: bytearray, code: SFSType, raw: bytes) -> None:
    if len(raw) > _MAX_INT32:
        raise SFSEncodeError(f"{code.name.lower()} too long: {len(raw)} bytes")
    out += _pack_Bi(code, len(raw))
    out += raw


def _write_typed_array(out: bytearray, code: SFSType, value: SFSValue) -> None:
    if not isinstance(value, tuple):
        raise SFSEncodeError(f"cannot encode type {code.name.lower()}")
    n = len(value)
    if n > _MAX_COUNT:
        raise SFSEncodeError(f"{code.name.lower()} too long: {n} elements")
    out += _pack_BH(code, n)
    if code is _BOOL_ARRAY:
        out += bytes(map(bool, value))
    elif code is _UTF_STRING_ARRAY:
        for item in value:
            raw = item.encode("utf-8")  # type: ignore[union-attr]
            if len(raw) > _MAX_UTF_STRING:
                raise SFSEncodeError(f"utf_string too long: {len(raw)} bytes (use text)")
            out += _pack_H(len(raw))
            out += raw
    else:
        letter, _ = _ARRAY_FORMATS[code]
        out += struct.pack(f">{n}{letter}", *value)


def _encode(container: SFSObject | SFSArray, max_depth: int) -> bytes:
    out = bytearray()
    try:
        if isinstance(container, SFSObject):
            _write_object(out, container, max_depth)
        else:
            _write_array(out, container, max_depth)
    except (struct.error, OverflowError, TypeError, KeyError, IndexError) as exc:
        # Only reachable when entries were stored without the put_* checks.
        raise SFSEncodeError(f"value does not fit its type: {exc}") from exc
    except UnicodeEncodeError:
        raise SFSEncodeError("string is not encodable as utf-8") from None
    except RecursionError:
        raise SFSEncodeError("nesting too deep") from None
    return bytes(out)


def encode_object(obj: SFSObject, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode ``obj`` as an SFS_OBJECT value (``12 nn nn ...``).

    Raises:
        SFSEncodeError: a key or value cannot be encoded, or nesting exceeds
            ``max_depth`` (which also catches cyclic objects).
    """
    if not isinstance(obj, SFSObject):
        raise SFSEncodeError(f"expected an SFSObject, got {type(obj).__name__}")
    return _encode(obj, max_depth)


def encode_array(arr: SFSArray, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode ``arr`` as an SFS_ARRAY value (``11 nn nn ...``).

    Raises:
        SFSEncodeError: as :func:`encode_object`.
    """
    if not isinstance(arr, SFSArray):
        raise SFSEncodeError(f"expected an SFSArray, got {type(arr).__name__}")
    return _encode(arr, max_depth)


def encode_value(code: SFSType, value: object, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode one typed value (type byte + body), checking it first.

    Raises:
        SFSEncodeError: the value does not fit ``code``.
    """
    code = SFSType(code)
    checked = check_value(code, value)
    if isinstance(checked, SFSObject | SFSArray):
        return _encode(checked, max_depth)
    out = bytearray()
    try:
        _write_value(out, code, checked, max_depth)
    except UnicodeEncodeError:
        raise SFSEncodeError("string is not encodable as utf-8") from None
    return bytes(out)


# ---------------------------------------------------------------------------
# Decoding

_NULL_ENTRY: Entry = (_NULL, None)
_TRUE_ENTRY: Entry = (_BOOL, True)
_FALSE_ENTRY: Entry = (_BOOL, False)
_BYTE_ENTRIES: tuple[Entry, ...] = tuple((_BYTE, b) for b in range(256))
_TYPES: tuple[SFSType, ...] = tuple(SFSType)


def _truncated(what: str) -> SFSDecodeError:
    return SFSDecodeError(f"truncated {what}")


def _read_string(data: bytes, pos: int, n: int, what: str) -> tuple[str, int]:
    end = pos + n
    if end > len(data):
        raise _truncated(what)
    return data[pos:end].decode("utf-8"), end


def _read_object(data: bytes, pos: int, budget: int, items: list[int]) -> tuple[SFSObject, int]:
    if budget <= 0:
        raise SFSDecodeError("nesting too deep")
    (count,) = _unpack_H(data, pos)
    pos += 2
    end = len(data)
    # Each entry takes at least 4 bytes: key length (2), key (>= 1), type (1).
    if count * 4 > end - pos:
        raise SFSDecodeError("sfs_object count exceeds remaining bytes")
    items[0] -= count
    if items[0] < 0:
        raise SFSDecodeError("too many elements")
    result: dict[str, Entry] = {}
    budget -= 1
    for _ in range(count):
        (n,) = _unpack_H(data, pos)
        if not 0 < n <= 0xFF:
            raise SFSDecodeError(f"bad key length {n}")
        pos += 2
        key_end = pos + n
        if key_end >= end:
            raise _truncated("key" if key_end > end else "value")
        key = data[pos:key_end].decode("utf-8")
        if key in result:
            raise SFSDecodeError(f"duplicate key {key!r}")
        # The commonest types are inlined (one call less per value); the
        # others go through _read_value, which handles every type.
        code = data[key_end]
        if code == 4:
            result[key] = (_INT, _unpack_i(data, key_end + 1)[0])
            pos = key_end + 5
        elif code == 8:
            (n,) = _unpack_H(data, key_end + 1)
            start = key_end + 3
            pos = start + n
            if pos > end:
                raise _truncated("utf_string")
            result[key] = (_UTF_STRING, data[start:pos].decode("utf-8"))
        else:
            result[key], pos = _read_value(data, key_end, budget, items)
    return SFSObject._wrap(result), pos


def _read_array(data: bytes, pos: int, budget: int, items: list[int]) -> tuple[SFSArray, int]:
    if budget <= 0:
        raise SFSDecodeError("nesting too deep")
    (count,) = _unpack_H(data, pos)
    pos += 2
    end = len(data)
    # Each element takes at least 1 byte (its type).
    if count > end - pos:
        raise SFSDecodeError("sfs_array count exceeds remaining bytes")
    items[0] -= count
    if items[0] < 0:
        raise SFSDecodeError("too many elements")
    result: list[Entry] = []
    append = result.append
    budget -= 1
    for _ in range(count):
        if pos >= end:
            raise _truncated("value")
        # Inlined common types, as in _read_object.
        code = data[pos]
        if code == 4:
            append((_INT, _unpack_i(data, pos + 1)[0]))
            pos += 5
        elif code == 8:
            (n,) = _unpack_H(data, pos + 1)
            start = pos + 3
            pos = start + n
            if pos > end:
                raise _truncated("utf_string")
            append((_UTF_STRING, data[start:pos].decode("utf-8")))
        elif code == 1 and pos + 1 < end and data[pos + 1] <= 1:
            append(_TRUE_ENTRY if data[pos + 1] else _FALSE_ENTRY)
            pos += 2
        elif code == 3:
            append((_SHORT, _unpack_h(data, pos + 1)[0]))
            pos += 3
        else:
            entry, pos = _read_value(data, pos, budget, items)
            append(entry)
    return SFSArray._wrap(result), pos


def _read_value(data: bytes, pos: int, budget: int, items: list[int]) -> tuple[Entry, int]:
    if pos >= len(data):
        raise _truncated("value")
    code = data[pos]
    pos += 1
    # Ordered roughly by frequency, like _write_value.
    if code == 4:
        return (_INT, _unpack_i(data, pos)[0]), pos + 4
    if code == 8:
        (n,) = _unpack_H(data, pos)
        text, pos = _read_string(data, pos + 2, n, "utf_string")
        return (_UTF_STRING, text), pos
    if code == 1:
        if pos >= len(data):
            raise _truncated("bool")
        b = data[pos]
        if b > 1:
            raise SFSDecodeError(f"invalid bool {b}")
        return (_TRUE_ENTRY if b else _FALSE_ENTRY), pos + 1
    if code == 3:
        return (_SHORT, _unpack_h(data, pos)[0]), pos + 2
    if code == 18:
        obj, pos = _read_object(data, pos, budget, items)
        return (_SFS_OBJECT, obj), pos
    if code == 17:
        arr, pos = _read_array(data, pos, budget, items)
        return (_SFS_ARRAY, arr), pos
    if code == 2:
        if pos >= len(data):
            raise _truncated("byte")
        return _BYTE_ENTRIES[data[pos]], pos + 1
    if code == 5:
        return (_LONG, _unpack_q(data, pos)[0]), pos + 8
    if code == 7:
        return (_DOUBLE, _unpack_d(data, pos)[0]), pos + 8
    if code == 6:
        return (_FLOAT, _unpack_f(data, pos)[0]), pos + 4
    if code == 0:
        return _NULL_ENTRY, pos
    if code == 20 or code == 10:
        (n,) = _unpack_i(data, pos)
        pos += 4
        if n < 0:
            raise SFSDecodeError(f"negative length {n}")
        if code == 20:
            text, pos = _read_string(data, pos, n, "text")
            return (_TEXT, text), pos
        if pos + n > len(data):
            raise _truncated("byte_array")
        return (_BYTE_ARRAY, data[pos : pos + n]), pos + n
    if 9 <= code <= 16 and code != 10:
        return _read_typed_array(data, pos, _TYPES[code])
    if code == 19:
        raise SFSDecodeError("unsupported type class")
    raise SFSDecodeError(f"unknown type code {code}")


def _read_typed_array(data: bytes, pos: int, code: SFSType) -> tuple[Entry, int]:
    (count,) = _unpack_H(data, pos)
    pos += 2
    left = len(data) - pos
    if code is _BOOL_ARRAY:
        if count > left:
            raise _truncated("bool_array")
        chunk = data[pos : pos + count]
        if chunk.translate(None, b"\x00\x01"):
            raise SFSDecodeError("invalid bool in bool_array")
        return (code, tuple(map(bool, chunk))), pos + count
    if code is _UTF_STRING_ARRAY:
        if count * 2 > left:
            raise _truncated("utf_string_array")
        strings: list[str] = []
        for _ in range(count):
            (n,) = _unpack_H(data, pos)
            text, pos = _read_string(data, pos + 2, n, "utf_string_array")
            strings.append(text)
        return (code, tuple(strings)), pos
    letter, width = _ARRAY_FORMATS[code]
    if count * width > left:
        raise _truncated(code.name.lower())
    values = struct.unpack_from(f">{count}{letter}", data, pos)
    return (code, values), pos + count * width


def _check_limits(max_depth: int, max_items: int) -> None:
    if not 1 <= max_depth <= MAX_DEPTH_LIMIT:
        raise ValueError(f"max_depth must be 1..{MAX_DEPTH_LIMIT}")
    if max_items < 0:
        raise ValueError("max_items must be >= 0")


def decode_value(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Entry:
    """Decode one typed value that spans all of ``data``; return ``(SFSType, value)``.

    Args:
        max_depth: most nested SFS_OBJECT / SFS_ARRAY containers, top level included.
        max_items: most entries and elements in all containers together
            (typed arrays count as one value).

    Raises:
        SFSDecodeError: ``data`` is not exactly one well-formed value, or a
            limit is exceeded.
    """
    _check_limits(max_depth, max_items)
    if not isinstance(data, bytes):
        data = bytes(data)
    try:
        entry, pos = _read_value(data, 0, max_depth, [max_items])
    except struct.error:
        raise SFSDecodeError("truncated data") from None
    except UnicodeDecodeError as exc:
        raise SFSDecodeError(f"invalid utf-8 at byte {exc.start}") from None
    if pos != len(data):
        raise SFSDecodeError(f"{len(data) - pos} trailing bytes")
    return entry


def decode_object(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> SFSObject:
    """Decode an SFS_OBJECT that spans all of ``data`` (an SFS2X payload).

    Raises:
        SFSDecodeError: ``data`` is malformed, holds another type, or exceeds a
            limit (see :func:`decode_value`).
    """
    if data[:1] != b"\x12":
        raise SFSDecodeError("expected sfs_object")
    return decode_value(data, max_depth=max_depth, max_items=max_items)[1]  # type: ignore[return-value]


def decode_array(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> SFSArray:
    """Decode an SFS_ARRAY that spans all of ``data``.

    Raises:
        SFSDecodeError: as :func:`decode_object`.
    """
    if data[:1] != b"\x11":
        raise SFSDecodeError("expected sfs_array")
    return decode_value(data, max_depth=max_depth, max_items=max_items)[1]  # type: ignore[return-value]
