"""Server events as values that are encoded once per codec, however many recipients.

A room broadcast to 500 members builds one `OutEvent`; each recipient's session wraps
the cached body in its own `Event(seq=...)` envelope, so the payload is serialized once
per wire format, not once per recipient.
"""

from __future__ import annotations

from typing import Any

from msgspec import Raw

from .codec import Codec


class OutEvent:
    """An event name and payload, with its encoded body cached per codec."""

    __slots__ = ("name", "data", "_json", "_msgpack")

    def __init__(self, name: str, data: Any = None) -> None:
        self.name = name
        self.data = data
        self._json: Raw | None = None
        self._msgpack: Raw | None = None

    def body(self, codec: Codec) -> Raw:
        """The encoded payload for `codec`, computed on first use."""
        if codec.binary:
            if self._msgpack is None:
                self._msgpack = Raw(codec.encode(self.data))
            return self._msgpack
        if self._json is None:
            self._json = Raw(codec.encode(self.data))
        return self._json

    def __repr__(self) -> str:
        return f"OutEvent({self.name!r}, {self.data!r})"
