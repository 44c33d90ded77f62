"""Per-connection limits the sans-I/O session enforces (defaults documented in README)."""

from __future__ import annotations

from msgspec import Struct


class SessionLimits(Struct, frozen=True):
    """Limits for one connection. All times are seconds."""

    max_message_bytes: int = 64 * 1024
    #: Messages waiting to be flushed to the socket; more means the client is too slow.
    max_pending_messages: int = 4096
    auth_timeout: float = 5.0
    idle_timeout: float = 60.0


class FloodLimits(Struct, frozen=True):
    """The flood filter: a token bucket of `rate` messages/s with room for `burst`."""

    rate: float = 20.0
    burst: int = 40
    #: Dropped messages answered with RATE_LIMITED before the session is closed.
    max_warnings: int = 5
