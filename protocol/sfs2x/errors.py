"""Exceptions raised by the SFS2X codec.

Hierarchy::

    SFSError                       base class of everything below
    ├── SFSDecodeError(ValueError)   bytes from the network are malformed
    │   ├── SFSFieldError            a field is missing or has the wrong type
    │   └── PacketTooBig             a packet exceeds a configured size limit
    └── SFSEncodeError(ValueError)   a value cannot be put on the wire

Hostile or malformed input only ever raises :class:`SFSDecodeError` (or one of
its subclasses); anything else escaping a decoder is a bug. The transport
should catch :class:`SFSDecodeError`, log it and drop the connection.

:class:`SFSEncodeError` signals a programmer fault on our side (a SHORT out of
range, a key longer than 255 bytes, a cyclic object...). It is raised by the
``put_*`` helpers and by the encoders.

Messages are short, lowercase and without a final period, like
``"truncated utf_string"`` or ``"unknown type code 42"``.
"""

from __future__ import annotations

__all__ = ["PacketTooBig", "SFSDecodeError", "SFSEncodeError", "SFSError", "SFSFieldError"]


class SFSError(Exception):
    """Base class of all SFS2X codec errors."""


class SFSDecodeError(SFSError, ValueError):
    """Malformed bytes: a bad header, a truncated value, an unknown type code...

    Raised by every decoder in this package and reported by
    :class:`~protocol.sfs2x.packet.PacketReader`.
    """


class SFSFieldError(SFSDecodeError):
    """A typed getter found a missing key or a value of another type.

    Raised by ``SFSObject.get_*`` / ``SFSArray.get_*`` and the request parsers,
    so that a request missing a required field is reported like any other
    malformed input.

    Attributes:
        key: the object key (``str``) or array index (``int``) looked up.
        expected: name of the expected SFS type.
        actual: name of the type found, or ``None`` if the key is missing.
    """

    def __init__(self, key: str | int, expected: str, actual: str | None) -> None:
        self.key = key
        self.expected = expected
        self.actual = actual
        super().__init__(key, expected, actual)

    def __str__(self) -> str:
        if self.actual is None:
            return f"missing field {self.key!r} ({self.expected.lower()})"
        return f"field {self.key!r} is {self.actual.lower()}, expected {self.expected.lower()}"


class PacketTooBig(SFSDecodeError):
    """A packet is larger than the configured limit.

    Attributes:
        what: ``"packet"`` (bytes on the wire) or ``"payload"`` (after inflating).
        size: the size announced, in bytes, or ``None`` when only known to be
            larger than the limit (an inflated payload is never fully inflated).
        max_size: the limit, in bytes.
    """

    def __init__(self, what: str, size: int | None, max_size: int) -> None:
        self.what = what
        self.size = size
        self.max_size = max_size
        super().__init__(what, size, max_size)

    def __str__(self) -> str:
        if self.size is None:
            return f"{self.what} too big: more than {self.max_size} bytes"
        return f"{self.what} too big: {self.size} > {self.max_size} bytes"


class SFSEncodeError(SFSError, ValueError):
    """A value cannot be encoded: out of range, wrong Python type, too long..."""
