"""WebSocket frames -> whole messages, with the RFC 6455 checks a transport must make.

Used by both WebSocket stacks: fragment re-assembly (section 5.4), a size limit across
fragments, UTF-8 validity of text messages (section 8.1) and reserved bits (section 5.2).
"""

from __future__ import annotations

from .codes import CloseCode
from .errors import MessageTooBig, ProtocolViolation

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2


class Assembler:
    """Feed data frames in order; get whole messages back."""

    __slots__ = ("max_size", "_parts", "_size", "_binary")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._parts: list[bytes] | None = None
        self._size = 0
        self._binary = False

    def frame(
        self, opcode: int, fin: bool, payload: bytes, reserved: bool = False
    ) -> tuple[bytes, bool] | None:
        """One data frame (text, binary or continuation).

        Returns:
            `(message, is_binary)` when a message is complete, else None.

        Raises:
            ProtocolViolation: 1002 framing error, 1007 bad UTF-8, 1009 too big.
        """
        if reserved:
            raise ProtocolViolation(CloseCode.WS_PROTOCOL_ERROR, "reserved bits must be 0")
        if opcode == OP_CONT:
            if self._parts is None:
                raise ProtocolViolation(CloseCode.WS_PROTOCOL_ERROR, "continuation without a message")
            self._size += len(payload)
            if self._size > self.max_size:
                self._parts = None
                raise MessageTooBig(self._size, self.max_size)
            self._parts.append(payload)
            if not fin:
                return None
            message, self._parts = b"".join(self._parts), None
            return self._done(message, self._binary)
        if self._parts is not None:
            raise ProtocolViolation(CloseCode.WS_PROTOCOL_ERROR, "new message inside a fragmented one")
        if len(payload) > self.max_size:
            raise MessageTooBig(len(payload), self.max_size)
        binary = opcode == OP_BINARY
        if fin:
            return self._done(payload, binary)
        self._parts, self._size, self._binary = [payload], len(payload), binary
        return None

    @staticmethod
    def _done(message: bytes, binary: bool) -> tuple[bytes, bool]:
        if not binary:
            try:
                message.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolViolation(CloseCode.INVALID_TEXT, "text message is not utf-8") from None
        return message, binary
