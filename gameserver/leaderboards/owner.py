"""Who owns a leaderboard, and where its output goes: the one place that decides routing.

Two hops, both decided here:

* **score update → owner**: a settled round concerns the boards of its zone; each board
  belongs to the ring member its key `l:<zone>:<board>` hashes to (gameserver/ring.py).
  Only the owner applies scores, ticks the stream and pays prizes.
* **owner → subscriber's worker**: deltas, own-rank changes and notifications are for a
  user; the user's session lives on the member its key `u:<zone>:<user>` hashes to.

Today one process is the only member, so both hops are local calls. When the cross-worker
bus carries leaderboard traffic, `forward_score` and `forward_event` are where it plugs in
(they count what could not be routed, so nothing is dropped silently meanwhile). With the
Redis event bus each owner reads every event through its own consumer group
(`leaderboards@<member>`) and keeps the boards it owns, so the first hop needs no bus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from protocol.events import OutEvent

from ..ring import HashRing, leaderboard_key, user_key

if TYPE_CHECKING:
    from ..hub import Hub

#: `forward_event(member, zone, user_id, event)`: deliver on another member.
ForwardEvent = Callable[[str, str, int, OutEvent], None]


class Ownership:
    """Board and user ownership over a ring; local delivery through the hub."""

    def __init__(self, hub: Hub, ring: HashRing | None = None, me: str = "local") -> None:
        self.hub = hub
        self.me = me
        self.ring = ring or HashRing([me])
        #: the only member owns everything: no hashing on the hot paths
        self.alone = self.ring.members == (me,)
        self.forward: ForwardEvent | None = None
        #: events for users on other members while no forwarder is plugged in
        self.unrouted_events = 0
        #: score updates for boards owned elsewhere (this member ignores them)
        self.foreign_scores = 0

    def board_owner(self, zone: str, board: str) -> str:
        return self.ring.owner(leaderboard_key(zone, board))

    def owns_board(self, zone: str, board: str) -> bool:
        return self.alone or self.board_owner(zone, board) == self.me

    def user_owner(self, zone: str, user_id: int) -> str:
        return self.ring.owner(user_key(zone, user_id))

    def to_user(self, zone: str, user_id: int, event: OutEvent) -> bool:
        """Push `event` to the user's session, wherever it is; False if it is nowhere."""
        owner = self.me if self.alone else self.user_owner(zone, user_id)
        if owner != self.me:
            if self.forward is None:
                self.unrouted_events += 1
                return False
            self.forward(owner, zone, user_id, event)
            return True
        player = self.hub.players.get((zone, user_id))
        if player is None:
            return False
        player.push(event)
        return True
