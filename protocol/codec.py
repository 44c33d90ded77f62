"""Codecs: JSON on text frames, MessagePack on binary frames, one per session.

Encoders and decoders are built once per codec (msgspec perf tips) and shared by every
session that negotiated it. The WebSocket subprotocol picks the codec:
`croupier.v1.json` (the default when none is asked) or `croupier.v1.msgpack`. Raw TCP
always uses MessagePack.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .codes import ErrorCode
from .errors import RequestError
from .messages import CLIENT_TYPES, ClientMessage, Envelope

SUBPROTOCOL_JSON = "croupier.v1.json"
SUBPROTOCOL_MSGPACK = "croupier.v1.msgpack"


class Codec:
    """Encodes server messages and decodes client requests for one wire format."""

    __slots__ = ("name", "binary", "_encode", "_decode", "_decode_envelope")

    def __init__(self, name: str, binary: bool, module: Any) -> None:
        self.name = name
        #: True if messages travel in binary WebSocket frames.
        self.binary = binary
        self._encode = module.Encoder().encode
        self._decode = module.Decoder(ClientMessage).decode
        self._decode_envelope = module.Decoder(Envelope).decode

    def encode(self, msg: Any) -> bytes:
        """Encode a server message (or any Struct / builtin value)."""
        return self._encode(msg)  # type: ignore[no-any-return]

    def decode(self, data: bytes) -> ClientMessage:
        """Decode one client request.

        Raises:
            RequestError: MALFORMED (not parseable), UNKNOWN_MESSAGE (unknown `type`) or
                BAD_REQUEST (a field is missing, mistyped or out of range). Its
                `request_id` attribute holds the request's id when it could be read.
        """
        try:
            return self._decode(data)  # type: ignore[no-any-return]
        except msgspec.ValidationError as exc:
            raise self._explain(data, exc) from None
        except msgspec.DecodeError as exc:
            raise BadRequest(ErrorCode.MALFORMED, f"cannot decode {self.name}: {exc}", None) from None

    def _explain(self, data: bytes, exc: msgspec.ValidationError) -> BadRequest:
        try:
            env = self._decode_envelope(data)
        except msgspec.MsgspecError:
            return BadRequest(ErrorCode.MALFORMED, "a request must be an object", None)
        rid = env.id if isinstance(env.id, int) and not isinstance(env.id, bool) else None
        if not isinstance(env.type, str):
            return BadRequest(ErrorCode.BAD_REQUEST, "missing or non-string `type`", rid)
        if env.type not in CLIENT_TYPES:
            return BadRequest(ErrorCode.UNKNOWN_MESSAGE, f"unknown message type {env.type[:64]!r}", rid)
        return BadRequest(ErrorCode.BAD_REQUEST, str(exc), rid)


class BadRequest(RequestError):
    """A request that could not be decoded; `request_id` is None if unreadable."""

    def __init__(self, code: ErrorCode, message: str, request_id: int | None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


JSON = Codec("json", False, msgspec.json)
MSGPACK = Codec("msgpack", True, msgspec.msgpack)

CODECS_BY_SUBPROTOCOL: dict[str, Codec] = {SUBPROTOCOL_JSON: JSON, SUBPROTOCOL_MSGPACK: MSGPACK}


def choose_subprotocol(offered: list[str]) -> tuple[str | None, Codec]:
    """Pick the codec for a WebSocket upgrade from the client's offered subprotocols.

    Returns the subprotocol to answer with (None if the client offered none we know,
    in which case JSON is used and no subprotocol header is sent).
    """
    for name in offered:
        codec = CODECS_BY_SUBPROTOCOL.get(name.strip())
        if codec is not None:
            return name.strip(), codec
    return None, JSON
