"""SFS2X data types and the typed containers :class:`SFSObject` / :class:`SFSArray`.

The C#, AS3 and Java clients read fields through typed getters (``GetShort``,
``GetInt``...), so every value must travel with its exact SFS type (spec §3).
Python has one ``int`` and one ``float``, so the type cannot be inferred: it is
given explicitly when a value is stored, with ``put_<type>`` on an object and
``add_<type>`` on an array::

    params = SFSObject().put_utf_string("zn", "Casino").put_short("pi", 1).put_int("id", 7)
    params.get_short("pi")        # 1
    params.type_of("pi")          # SFSType.SHORT

Each container stores ``(SFSType, value)`` entries. The helpers check the value
at once (range of integers, Python type) and raise :class:`SFSEncodeError`, so a
bug shows up where the value is stored, not later in the encoder. Stored values
are normalised so that ``decode(encode(x)) == x`` holds:

=================  =========================  ====================================
SFS type           Python value               normalisation on put
=================  =========================  ====================================
NULL               ``None``
BOOL               ``bool``
BYTE               ``int`` 0..255             unsigned, as the JS/C# clients read it
SHORT/INT/LONG     ``int`` (16/32/64-bit)     ``IntEnum`` becomes ``int``
FLOAT              ``float``                  rounded to binary32
DOUBLE             ``float``                  ``int`` becomes ``float``
UTF_STRING, TEXT   ``str``
BYTE_ARRAY         ``bytes``                  bytearray/memoryview copied
*_ARRAY            ``tuple`` of the above     any iterable becomes a tuple
SFS_ARRAY          :class:`SFSArray`          stored by reference
SFS_OBJECT         :class:`SFSObject`         stored by reference
=================  =========================  ====================================

Typed getters (``get_int(key)``) return the value only if the stored type is
exactly the one asked for; otherwise they raise :class:`SFSFieldError`, a
subclass of :class:`SFSDecodeError`, so a request with a missing or mistyped
field is handled like any other malformed input. Plain ``obj[key]`` /
``arr[i]`` return the value whatever its type.

Equality compares types as well as values, and ignores key order.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import IntEnum
from typing import Generic, TypeAlias, TypeVar, Union, cast, overload

from .errors import SFSEncodeError, SFSFieldError

__all__ = [
    "Entry",
    "SFSArray",
    "SFSObject",
    "SFSType",
    "SFSValue",
    "check_value",
]


class SFSType(IntEnum):
    """Type codes written before every value on the wire (spec §3)."""

    NULL = 0
    BOOL = 1
    BYTE = 2
    SHORT = 3
    INT = 4
    LONG = 5
    FLOAT = 6
    DOUBLE = 7
    UTF_STRING = 8
    BOOL_ARRAY = 9
    BYTE_ARRAY = 10
    SHORT_ARRAY = 11
    INT_ARRAY = 12
    LONG_ARRAY = 13
    FLOAT_ARRAY = 14
    DOUBLE_ARRAY = 15
    UTF_STRING_ARRAY = 16
    SFS_ARRAY = 17
    SFS_OBJECT = 18
    #: Java/AS3 class serialisation. Not supported by the JS client, never sent,
    #: rejected when decoding.
    CLASS = 19
    #: Long string with a 4-byte length.
    TEXT = 20


#: Any value an :class:`SFSObject` or :class:`SFSArray` can hold.
SFSValue: TypeAlias = Union[
    None,
    bool,
    int,
    float,
    str,
    bytes,
    tuple[bool, ...],
    tuple[int, ...],
    tuple[float, ...],
    tuple[str, ...],
    "SFSArray",
    "SFSObject",
]
#: One stored value with its type.
Entry: TypeAlias = tuple[SFSType, SFSValue]

_NULL, _BOOL, _BYTE, _SHORT, _INT, _LONG, _FLOAT, _DOUBLE = list(SFSType)[:8]
_UTF_STRING, _BOOL_ARRAY, _BYTE_ARRAY, _SHORT_ARRAY, _INT_ARRAY = list(SFSType)[8:13]
_LONG_ARRAY, _FLOAT_ARRAY, _DOUBLE_ARRAY, _UTF_STRING_ARRAY = list(SFSType)[13:17]
_SFS_ARRAY, _SFS_OBJECT, _TEXT = SFSType.SFS_ARRAY, SFSType.SFS_OBJECT, SFSType.TEXT

_F32 = struct.Struct(">f")
_INT_RANGES = {
    _BYTE: (0, 0xFF),
    _SHORT: (-(1 << 15), (1 << 15) - 1),
    _INT: (-(1 << 31), (1 << 31) - 1),
    _LONG: (-(1 << 63), (1 << 63) - 1),
}
_NULL_ENTRY: Entry = (_NULL, None)

# ---------------------------------------------------------------------------
# Validation: each function checks one Python value and returns it normalised.


def _integer(code: SFSType, value: object) -> int:
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SFSEncodeError(f"{code.name.lower()} needs an int, got {type(value).__name__}")
        value = int(value)
    lo, hi = _INT_RANGES[code]
    if not lo <= value <= hi:
        raise SFSEncodeError(f"{code.name.lower()} out of range: {value}")
    return value


def _real(code: SFSType, value: object) -> float:
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SFSEncodeError(f"{code.name.lower()} needs a float, got {type(value).__name__}")
        try:
            value = float(value)
        except OverflowError:
            raise SFSEncodeError(f"{code.name.lower()} out of range") from None
    if code is _FLOAT and math.isfinite(value):
        try:
            value = cast(float, _F32.unpack(_F32.pack(value))[0])
        except OverflowError:
            raise SFSEncodeError(f"float out of range: {value!r}") from None
    return value


def _string(code: SFSType, value: object) -> str:
    if not isinstance(value, str):
        raise SFSEncodeError(f"{code.name.lower()} needs a str, got {type(value).__name__}")
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise SFSEncodeError(f"bool needs a bool, got {type(value).__name__}")
    return value


def _byte_string(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise SFSEncodeError(f"byte_array needs bytes, got {type(value).__name__}")


def _container(code: SFSType, value: object) -> SFSArray | SFSObject:
    expected = SFSArray if code is _SFS_ARRAY else SFSObject
    if not isinstance(value, expected):
        raise SFSEncodeError(f"{code.name.lower()} needs an {expected.__name__}, got {type(value).__name__}")
    return value


def _array(code: SFSType, values: object) -> tuple[object, ...]:
    if isinstance(values, str | bytes | bytearray) or not isinstance(values, Iterable):
        raise SFSEncodeError(f"{code.name.lower()} needs an iterable, got {type(values).__name__}")
    element = SFSType(code - 8)  # BOOL_ARRAY (9) -> BOOL (1) ... UTF_STRING_ARRAY (16) -> UTF_STRING (8)
    if element is _BOOL:
        return tuple(_boolean(v) for v in values)
    if element is _UTF_STRING:
        return tuple(_string(_UTF_STRING_ARRAY, v) for v in values)
    if element is _FLOAT or element is _DOUBLE:
        return tuple(_real(element, v) for v in values)
    items = tuple(values)
    # Fast path: a tuple of plain ints is checked with C-level passes.
    if items and all(type(v) is int for v in items):
        ints = cast("tuple[int, ...]", items)
        lo, hi = _INT_RANGES[element]
        if lo <= min(ints) and max(ints) <= hi:
            return ints
    return tuple(_integer(element, v) for v in items)


def _as_type(code: int) -> SFSType:
    if type(code) is SFSType:
        return code
    try:
        return SFSType(code)
    except ValueError:
        raise SFSEncodeError(f"unknown type code {code}") from None


def check_value(code: SFSType, value: object) -> SFSValue:
    """Check that ``value`` can be stored as SFS type ``code``; return it normalised.

    Raises:
        SFSEncodeError: the value does not fit the type, or ``code`` is CLASS.
    """
    code = _as_type(code)
    if code is _NULL:
        if value is not None:
            raise SFSEncodeError(f"null needs None, got {type(value).__name__}")
        return None
    if code is _BOOL:
        return _boolean(value)
    if code <= _LONG:
        return _integer(code, value)
    if code is _FLOAT or code is _DOUBLE:
        return _real(code, value)
    if code is _UTF_STRING or code is _TEXT:
        return _string(code, value)
    if code is _BYTE_ARRAY:
        return _byte_string(value)
    if code is _SFS_ARRAY or code is _SFS_OBJECT:
        return _container(code, value)
    if _BOOL_ARRAY <= code <= _UTF_STRING_ARRAY:
        return cast(SFSValue, _array(code, value))
    raise SFSEncodeError(f"cannot encode type {code.name.lower()}")


# ---------------------------------------------------------------------------
# Typed getters, shared by SFSObject (keys) and SFSArray (indices).

_K = TypeVar("_K", str, int)


class _TypedGetters(Generic[_K]):
    __slots__ = ()

    def _entry(self, key: _K) -> Entry | None:
        raise NotImplementedError

    def _typed(self, key: _K, code: SFSType) -> SFSValue:
        entry = self._entry(key)
        if entry is None:
            raise SFSFieldError(key, code.name, None)
        if entry[0] is not code:
            raise SFSFieldError(key, code.name, entry[0].name)
        return entry[1]

    def type_of(self, key: _K) -> SFSType | None:
        """Return the SFS type stored under ``key``, or ``None`` if there is none."""
        entry = self._entry(key)
        return None if entry is None else entry[0]

    def is_null(self, key: _K) -> bool:
        """Return whether ``key`` holds a NULL (``False`` if missing)."""
        entry = self._entry(key)
        return entry is not None and entry[0] is _NULL

    def get_bool(self, key: _K) -> bool:
        return cast(bool, self._typed(key, _BOOL))

    def get_byte(self, key: _K) -> int:
        return cast(int, self._typed(key, _BYTE))

    def get_short(self, key: _K) -> int:
        return cast(int, self._typed(key, _SHORT))

    def get_int(self, key: _K) -> int:
        return cast(int, self._typed(key, _INT))

    def get_long(self, key: _K) -> int:
        return cast(int, self._typed(key, _LONG))

    def get_float(self, key: _K) -> float:
        return cast(float, self._typed(key, _FLOAT))

    def get_double(self, key: _K) -> float:
        return cast(float, self._typed(key, _DOUBLE))

    def get_utf_string(self, key: _K) -> str:
        return cast(str, self._typed(key, _UTF_STRING))

    def get_text(self, key: _K) -> str:
        return cast(str, self._typed(key, _TEXT))

    def get_bool_array(self, key: _K) -> tuple[bool, ...]:
        return cast("tuple[bool, ...]", self._typed(key, _BOOL_ARRAY))

    def get_byte_array(self, key: _K) -> bytes:
        return cast(bytes, self._typed(key, _BYTE_ARRAY))

    def get_short_array(self, key: _K) -> tuple[int, ...]:
        return cast("tuple[int, ...]", self._typed(key, _SHORT_ARRAY))

    def get_int_array(self, key: _K) -> tuple[int, ...]:
        return cast("tuple[int, ...]", self._typed(key, _INT_ARRAY))

    def get_long_array(self, key: _K) -> tuple[int, ...]:
        return cast("tuple[int, ...]", self._typed(key, _LONG_ARRAY))

    def get_float_array(self, key: _K) -> tuple[float, ...]:
        return cast("tuple[float, ...]", self._typed(key, _FLOAT_ARRAY))

    def get_double_array(self, key: _K) -> tuple[float, ...]:
        return cast("tuple[float, ...]", self._typed(key, _DOUBLE_ARRAY))

    def get_utf_string_array(self, key: _K) -> tuple[str, ...]:
        return cast("tuple[str, ...]", self._typed(key, _UTF_STRING_ARRAY))

    def get_sfs_array(self, key: _K) -> SFSArray:
        return cast(SFSArray, self._typed(key, _SFS_ARRAY))

    def get_sfs_object(self, key: _K) -> SFSObject:
        return cast(SFSObject, self._typed(key, _SFS_OBJECT))


def _to_python(value: SFSValue) -> object:
    if isinstance(value, SFSObject | SFSArray):
        return value.to_python()
    if isinstance(value, tuple):
        return list(value)
    return value


def _entry_repr(entry: Entry) -> str:
    return f"{entry[0].name}:{entry[1]!r}"


# ---------------------------------------------------------------------------


class SFSObject(_TypedGetters[str], Mapping[str, SFSValue]):
    """An SFS_OBJECT: an ordered mapping of keys to typed values.

    It is a read-only :class:`~collections.abc.Mapping` of key to plain value
    (``obj["id"]``, ``dict(obj)``, ``"id" in obj``) with typed ``put_*``
    setters that return ``self`` for chaining and typed ``get_*`` getters.
    Keys are ``str`` of 1 to 255 UTF-8 bytes; the length is checked when
    encoding.
    """

    __slots__ = ("_data",)

    def __init__(self, entries: Mapping[str, Entry] | None = None) -> None:
        """Create an object, optionally from ``{key: (SFSType, value)}``, checking each value."""
        self._data: dict[str, Entry] = {}
        if entries:
            for key, (code, value) in entries.items():
                self.put(key, code, value)

    @classmethod
    def _wrap(cls, data: dict[str, Entry]) -> SFSObject:
        """Adopt ``data`` without checking it (the decoder builds valid entries)."""
        obj = cls.__new__(cls)
        obj._data = data
        return obj

    # Mapping protocol ------------------------------------------------------

    def __getitem__(self, key: str) -> SFSValue:
        return self._data[key][1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SFSObject):
            return self._data == other._data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {_entry_repr(e)}" for k, e in self._data.items())
        return f"SFSObject({{{inner}}})"

    def _entry(self, key: str) -> Entry | None:
        return self._data.get(key)

    def entries(self) -> Iterable[tuple[str, Entry]]:
        """Return ``(key, (SFSType, value))`` pairs in insertion order."""
        return self._data.items()

    def to_python(self) -> dict[str, object]:
        """Return a plain ``dict`` (nested containers converted, typed arrays as lists), for logs and tests."""
        return {k: _to_python(v) for k, (_, v) in self._data.items()}

    def remove(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._data.pop(key, None)

    # Setters ---------------------------------------------------------------

    def put(self, key: str, code: SFSType, value: object) -> SFSObject:
        """Store ``value`` as SFS type ``code`` (checked); return ``self``."""
        if not isinstance(key, str):
            raise SFSEncodeError(f"key needs a str, got {type(key).__name__}")
        code = _as_type(code)
        self._data[key] = (code, check_value(code, value))
        return self

    def put_null(self, key: str) -> SFSObject:
        self._data[key] = _NULL_ENTRY
        return self

    def put_bool(self, key: str, value: bool) -> SFSObject:
        self._data[key] = (_BOOL, _boolean(value))
        return self

    def put_byte(self, key: str, value: int) -> SFSObject:
        """Store an unsigned byte, 0..255."""
        self._data[key] = (_BYTE, _integer(_BYTE, value))
        return self

    def put_short(self, key: str, value: int) -> SFSObject:
        self._data[key] = (_SHORT, _integer(_SHORT, value))
        return self

    def put_int(self, key: str, value: int) -> SFSObject:
        self._data[key] = (_INT, _integer(_INT, value))
        return self

    def put_long(self, key: str, value: int) -> SFSObject:
        """Store a signed 64-bit integer (the JS client is exact only up to ±2**53)."""
        self._data[key] = (_LONG, _integer(_LONG, value))
        return self

    def put_float(self, key: str, value: float) -> SFSObject:
        """Store a binary32 float; the value is rounded to binary32 now."""
        self._data[key] = (_FLOAT, _real(_FLOAT, value))
        return self

    def put_double(self, key: str, value: float) -> SFSObject:
        self._data[key] = (_DOUBLE, _real(_DOUBLE, value))
        return self

    def put_utf_string(self, key: str, value: str) -> SFSObject:
        """Store a string of at most 32 767 UTF-8 bytes (checked when encoding); use TEXT beyond."""
        self._data[key] = (_UTF_STRING, _string(_UTF_STRING, value))
        return self

    def put_text(self, key: str, value: str) -> SFSObject:
        self._data[key] = (_TEXT, _string(_TEXT, value))
        return self

    def put_bool_array(self, key: str, values: Iterable[bool]) -> SFSObject:
        self._data[key] = (_BOOL_ARRAY, cast(SFSValue, _array(_BOOL_ARRAY, values)))
        return self

    def put_byte_array(self, key: str, value: bytes | bytearray | memoryview) -> SFSObject:
        self._data[key] = (_BYTE_ARRAY, _byte_string(value))
        return self

    def put_short_array(self, key: str, values: Iterable[int]) -> SFSObject:
        self._data[key] = (_SHORT_ARRAY, cast(SFSValue, _array(_SHORT_ARRAY, values)))
        return self

    def put_int_array(self, key: str, values: Iterable[int]) -> SFSObject:
        self._data[key] = (_INT_ARRAY, cast(SFSValue, _array(_INT_ARRAY, values)))
        return self

    def put_long_array(self, key: str, values: Iterable[int]) -> SFSObject:
        self._data[key] = (_LONG_ARRAY, cast(SFSValue, _array(_LONG_ARRAY, values)))
        return self

    def put_float_array(self, key: str, values: Iterable[float]) -> SFSObject:
        self._data[key] = (_FLOAT_ARRAY, cast(SFSValue, _array(_FLOAT_ARRAY, values)))
        return self

    def put_double_array(self, key: str, values: Iterable[float]) -> SFSObject:
        self._data[key] = (_DOUBLE_ARRAY, cast(SFSValue, _array(_DOUBLE_ARRAY, values)))
        return self

    def put_utf_string_array(self, key: str, values: Iterable[str]) -> SFSObject:
        self._data[key] = (_UTF_STRING_ARRAY, cast(SFSValue, _array(_UTF_STRING_ARRAY, values)))
        return self

    def put_sfs_array(self, key: str, value: SFSArray) -> SFSObject:
        self._data[key] = (_SFS_ARRAY, _container(_SFS_ARRAY, value))
        return self

    def put_sfs_object(self, key: str, value: SFSObject) -> SFSObject:
        self._data[key] = (_SFS_OBJECT, _container(_SFS_OBJECT, value))
        return self


class SFSArray(_TypedGetters[int], Sequence[SFSValue]):
    """An SFS_ARRAY: a list of typed values, each with its own type.

    It is a read-only :class:`~collections.abc.Sequence` of plain values
    (``arr[0]``, ``list(arr)``) with typed ``add_*`` appenders that return
    ``self`` for chaining and typed ``get_*`` getters taking an index.
    """

    __slots__ = ("_data",)

    def __init__(self, entries: Iterable[Entry] | None = None) -> None:
        """Create an array, optionally from ``(SFSType, value)`` pairs, checking each value."""
        self._data: list[Entry] = []
        if entries:
            for code, value in entries:
                self.add(code, value)

    @classmethod
    def _wrap(cls, data: list[Entry]) -> SFSArray:
        """Adopt ``data`` without checking it (the decoder builds valid entries)."""
        arr = cls.__new__(cls)
        arr._data = data
        return arr

    @classmethod
    def of(cls, code: SFSType, values: Iterable[object]) -> SFSArray:
        """Build an array whose elements all have type ``code``, e.g. a list of Room arrays."""
        code = _as_type(code)
        if code is _SFS_ARRAY or code is _SFS_OBJECT:
            return cls._wrap([(code, _container(code, v)) for v in values])
        return cls._wrap([(code, check_value(code, v)) for v in values])

    # Sequence protocol -----------------------------------------------------

    @overload
    def __getitem__(self, index: int) -> SFSValue: ...

    @overload
    def __getitem__(self, index: slice) -> SFSArray: ...

    def __getitem__(self, index: int | slice) -> SFSValue:
        if isinstance(index, slice):
            return SFSArray._wrap(self._data[index])
        return self._data[index][1]

    def __iter__(self) -> Iterator[SFSValue]:
        for entry in self._data:
            yield entry[1]

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SFSArray):
            return self._data == other._data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SFSArray([{', '.join(map(_entry_repr, self._data))}])"

    def _entry(self, key: int) -> Entry | None:
        try:
            return self._data[key] if key >= 0 else None
        except IndexError:
            return None

    def entries(self) -> Sequence[Entry]:
        """Return the ``(SFSType, value)`` entries."""
        return self._data

    def to_python(self) -> list[object]:
        """Return a plain ``list`` (nested containers converted, typed arrays as lists), for logs and tests."""
        return [_to_python(v) for _, v in self._data]

    # Appenders -------------------------------------------------------------

    def add(self, code: SFSType, value: object) -> SFSArray:
        """Append ``value`` as SFS type ``code`` (checked); return ``self``."""
        code = _as_type(code)
        self._data.append((code, check_value(code, value)))
        return self

    def add_null(self) -> SFSArray:
        self._data.append(_NULL_ENTRY)
        return self

    def add_bool(self, value: bool) -> SFSArray:
        self._data.append((_BOOL, _boolean(value)))
        return self

    def add_byte(self, value: int) -> SFSArray:
        """Append an unsigned byte, 0..255."""
        self._data.append((_BYTE, _integer(_BYTE, value)))
        return self

    def add_short(self, value: int) -> SFSArray:
        self._data.append((_SHORT, _integer(_SHORT, value)))
        return self

    def add_int(self, value: int) -> SFSArray:
        self._data.append((_INT, _integer(_INT, value)))
        return self

    def add_long(self, value: int) -> SFSArray:
        self._data.append((_LONG, _integer(_LONG, value)))
        return self

    def add_float(self, value: float) -> SFSArray:
        self._data.append((_FLOAT, _real(_FLOAT, value)))
        return self

    def add_double(self, value: float) -> SFSArray:
        self._data.append((_DOUBLE, _real(_DOUBLE, value)))
        return self

    def add_utf_string(self, value: str) -> SFSArray:
        self._data.append((_UTF_STRING, _string(_UTF_STRING, value)))
        return self

    def add_text(self, value: str) -> SFSArray:
        self._data.append((_TEXT, _string(_TEXT, value)))
        return self

    def add_bool_array(self, values: Iterable[bool]) -> SFSArray:
        self._data.append((_BOOL_ARRAY, cast(SFSValue, _array(_BOOL_ARRAY, values))))
        return self

    def add_byte_array(self, value: bytes | bytearray | memoryview) -> SFSArray:
        self._data.append((_BYTE_ARRAY, _byte_string(value)))
        return self

    def add_short_array(self, values: Iterable[int]) -> SFSArray:
        self._data.append((_SHORT_ARRAY, cast(SFSValue, _array(_SHORT_ARRAY, values))))
        return self

    def add_int_array(self, values: Iterable[int]) -> SFSArray:
        self._data.append((_INT_ARRAY, cast(SFSValue, _array(_INT_ARRAY, values))))
        return self

    def add_long_array(self, values: Iterable[int]) -> SFSArray:
        self._data.append((_LONG_ARRAY, cast(SFSValue, _array(_LONG_ARRAY, values))))
        return self

    def add_float_array(self, values: Iterable[float]) -> SFSArray:
        self._data.append((_FLOAT_ARRAY, cast(SFSValue, _array(_FLOAT_ARRAY, values))))
        return self

    def add_double_array(self, values: Iterable[float]) -> SFSArray:
        self._data.append((_DOUBLE_ARRAY, cast(SFSValue, _array(_DOUBLE_ARRAY, values))))
        return self

    def add_utf_string_array(self, values: Iterable[str]) -> SFSArray:
        self._data.append((_UTF_STRING_ARRAY, cast(SFSValue, _array(_UTF_STRING_ARRAY, values))))
        return self

    def add_sfs_array(self, value: SFSArray) -> SFSArray:
        self._data.append((_SFS_ARRAY, _container(_SFS_ARRAY, value)))
        return self

    def add_sfs_object(self, value: SFSObject) -> SFSArray:
        self._data.append((_SFS_OBJECT, _container(_SFS_OBJECT, value)))
        return self
