"""Length-prefixed framing for the raw TCP transport (native / Unity clients).

Each message is a 4-byte big-endian unsigned length followed by that many bytes of
MessagePack. `StreamFramer` is sans-I/O: feed it whatever the socket returned, pull whole
messages out. docs/protocol.md, "TCP transport".
"""

from __future__ import annotations

from .errors import FramingError, MessageTooBig

HEADER_SIZE = 4


def frame(payload: bytes) -> bytes:
    """One message with its length prefix."""
    return len(payload).to_bytes(HEADER_SIZE, "big") + payload


def frame_many(payloads: list[bytes]) -> bytes:
    """Several messages as one buffer, for a single write call."""
    parts: list[bytes] = []
    for p in payloads:
        parts.append(len(p).to_bytes(HEADER_SIZE, "big"))
        parts.append(p)
    return b"".join(parts)


class StreamFramer:
    """Re-assembles length-prefixed messages from an arbitrary byte stream."""

    __slots__ = ("max_size", "_buf", "_messages")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._messages: list[bytes] = []

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; then call `messages_received`.

        Raises:
            MessageTooBig: a length prefix above `max_size` (nothing is buffered for it).
            FramingError: a zero-length message.
        """
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        while end - pos >= HEADER_SIZE:
            size = int.from_bytes(buf[pos : pos + HEADER_SIZE], "big")
            if size > self.max_size:
                raise MessageTooBig(size, self.max_size)
            if size == 0:
                raise FramingError("empty frame")
            if end - pos - HEADER_SIZE < size:
                break
            start = pos + HEADER_SIZE
            self._messages.append(bytes(buf[start : start + size]))
            pos = start + size
        if pos:
            del buf[:pos]

    def messages_received(self) -> list[bytes]:
        """Whole messages received since the last call."""
        messages, self._messages = self._messages, []
        return messages

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message held so far."""
        return len(self._buf)
