"""Exceptions of the protocol layer.

    ProtocolViolation          the peer broke the wire rules; carries a close code
    ├── MessageTooBig          a message above the configured limit (close 1009)
    └── FramingError           a TCP length prefix that cannot be honoured (close 4008)
    RequestError               a request that gets an `error` reply; carries an ErrorCode
    InvalidState               programmer fault: a command in the wrong session state

Inner layers (rooms, games) raise `RequestError` subclasses or their own named errors;
the session edge turns them into wire codes, so internals never leak to clients.
"""

from __future__ import annotations

from .codes import CloseCode, ErrorCode


class ProtocolViolation(Exception):
    """The peer broke the wire rules; the connection is closed with `code`."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class MessageTooBig(ProtocolViolation):
    """A message longer than the configured maximum."""

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(CloseCode.MESSAGE_TOO_BIG, f"message of {size} bytes exceeds {max_size}")
        self.size = size
        self.max_size = max_size


class FramingError(ProtocolViolation):
    """A stream frame header that cannot be parsed or honoured."""

    def __init__(self, reason: str) -> None:
        super().__init__(CloseCode.PROTOCOL_ERROR, reason)


class RequestError(Exception):
    """A request the server refuses; answered with an `error` reply carrying `code`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name.lower()}: {self.message}"


class InvalidState(AssertionError):
    """A command was given in a session state that does not allow it."""
