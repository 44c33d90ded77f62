"""What room operations produce: events to deliver, and users to disconnect.

`rooms/` never touches a socket: the router turns `Send` into pushes to the sessions of
`recipients` (wherever they live) and `Disconnect` into a close.
"""

from __future__ import annotations

from collections.abc import Collection

from protocol.codes import CloseCode
from protocol.events import OutEvent


class Send:
    """Deliver `event` to each user id in `recipients`."""

    __slots__ = ("recipients", "event")

    def __init__(self, recipients: Collection[int], event: OutEvent) -> None:
        self.recipients = recipients
        self.event = event

    def __repr__(self) -> str:
        return f"Send({sorted(self.recipients)}, {self.event!r})"


class Disconnect:
    """Close the session of `user_id` with `code` (kick, ban)."""

    __slots__ = ("user_id", "code", "reason")

    def __init__(self, user_id: int, code: CloseCode, reason: str) -> None:
        self.user_id = user_id
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Disconnect({self.user_id}, {self.code.name})"


Output = Send | Disconnect
