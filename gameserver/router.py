"""The router: the one way room and user operations reach the zone that owns them.

`LocalRouter` runs the operation in this process and delivers its outputs to local
players. A sharded router (one worker per room/user shard) implements the same
`submit` by sending the request over the bus to the owner worker; `rooms/` does not
change. The reply callback may be called at once (local) or later (remote).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from protocol.errors import RequestError
from rooms.outputs import Output

from .handlers import ZONE_HANDLERS

if TYPE_CHECKING:
    from .hub import Hub

#: Called once with (reply data, None) or (None, error).
ReplyFn = Callable[[Any, RequestError | None], None]


class Router(Protocol):
    def submit(self, zone: str, user_id: int, request: Any, reply: ReplyFn) -> None:
        """Run `request` for `user_id` in `zone` on the owning shard; call `reply` when done."""

    def deliver(self, zone: str, outputs: list[Output]) -> None:
        """Carry out outputs of a zone operation run here (to every worker concerned)."""

    def session_ended(self, zone: str, user_id: int) -> None:
        """A session of this worker ended (after its local rooms were left)."""

    def sweep(self) -> None:
        """Periodic work: announce the room counts that changed."""

    def owns_user(self, zone: str, user_id: int) -> bool:
        """True if this worker is the user's home (where the user's session and money live)."""


class LocalRouter:
    """Every zone lives in this process."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def submit(self, zone: str, user_id: int, request: Any, reply: ReplyFn) -> None:
        hub = self.hub
        handler = ZONE_HANDLERS.get(type(request))
        if handler is None:
            raise LookupError(f"no handler for {type(request).__name__}")
        try:
            data, outputs = handler(hub.zones[zone], user_id, request, hub.clock.wall())
        except RequestError as exc:
            reply(None, exc)
            return
        reply(data, None)
        if outputs:
            hub.deliver(zone, outputs)
        if hub.zone_state is not None:
            hub.zone_state.after(zone, user_id, request, data, outputs)

    def deliver(self, zone: str, outputs: list[Output]) -> None:
        self.hub.deliver(zone, outputs)

    def session_ended(self, zone: str, user_id: int) -> None:
        pass

    def owns_user(self, zone: str, user_id: int) -> bool:
        return True

    def sweep(self) -> None:
        hub = self.hub
        for name, zone in hub.zones.items():  # coalesced room_count events (rooms/zone.py)
            counts = zone.flush_counts()
            if counts:
                hub.deliver(name, counts)
