"""Who owns a leaderboard, and where its output goes: the one place that decides routing.

Two hops, both decided here:

* **score update → owner**: a settled round concerns the boards of its zone; each board
  belongs to the ring member its key `l:<zone>:<board>` hashes to (gameserver/ring.py).
  Only the owner applies scores, ticks the stream and pays prizes.
* **owner → subscriber's worker**: deltas, own-rank changes and notifications are for a
  user; the user's session lives on the member its key `u:<zone>:<user>` hashes to.

One process is the only member: both hops are local calls. In a cluster
(`Leaderboards.join_cluster`) the ring is the router's (`router.shards.ring`, so it follows
ring changes) and `forward` batches the events for users elsewhere: one `lb.push` cast per
member per loop iteration, carrying each event once with that member's user ids
(`flush`). Scores for boards owned elsewhere are cast by the service (`lb.score`); with the
Redis event bus each owner reads every event through its own consumer group
(`leaderboards@<member>`) and keeps the boards it owns, so that hop needs no bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from protocol.events import OutEvent

from ..ring import HashRing, leaderboard_key, user_key

if TYPE_CHECKING:
    from ..bus import Bus
    from ..hub import Hub
    from ..sharding import ShardedRouter

#: `forward_event(member, zone, user_id, event)`: deliver on another member.
ForwardEvent = Callable[[str, str, int, OutEvent], None]

#: The bus message that carries events to the users of one member:
#: `[[zone, event name, data, [user ids]], ...]`.
PUSH = "lb.push"


class Ownership:
    """Board and user ownership over a ring; local delivery through the hub."""

    def __init__(self, hub: Hub, ring: HashRing | None = None, me: str = "local") -> None:
        self.hub = hub
        self.me = me
        self._ring = ring or HashRing([me])
        #: in a cluster: the ring is the router's (it changes when workers come and go)
        self.router: ShardedRouter | None = None
        self.bus: Bus | None = None
        self.forward: ForwardEvent | None = None
        #: events for users on other members while no forwarder is plugged in
        self.unrouted_events = 0
        #: score updates for boards owned elsewhere (this member ignores them)
        self.foreign_scores = 0
        #: `lb.push` casts sent, and the ones the bus refused (queue full, closed)
        self.casts = 0
        self.dropped_casts = 0
        #: member -> id(event) -> [zone, name, data, user ids] (sent at the end of the tick)
        self._batches: dict[str, dict[int, list[Any]]] = {}
        self._keep: list[OutEvent] = []  # the batched events stay alive (their ids are keys)
        self._flush_scheduled = False
        self._owners: dict[tuple[str, str], str] = {}
        self._owners_ring: HashRing | None = None

    @property
    def ring(self) -> HashRing:
        return self.router.shards.ring if self.router is not None else self._ring

    @property
    def alone(self) -> bool:
        """The only member owns everything: no hashing on the hot paths."""
        return self.ring.members == (self.me,)

    def connect(self, router: ShardedRouter) -> None:
        """Route over the router's ring and bus (cluster mode)."""
        self.router = router
        self.me = router.me
        self.bus = router.bus
        self.forward = self._batch

    def board_owner(self, zone: str, board: str) -> str:
        ring = self.ring
        if ring is not self._owners_ring:  # a few boards, asked per round: hash them once
            self._owners, self._owners_ring = {}, ring
        owner = self._owners.get((zone, board))
        if owner is None:
            owner = self._owners[(zone, board)] = ring.owner(leaderboard_key(zone, board))
        return owner

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

    def _batch(self, member: str, zone: str, user_id: int, event: OutEvent) -> None:
        items = self._batches.setdefault(member, {})
        item = items.get(id(event))
        if item is None:
            items[id(event)] = [zone, event.name, event.data, [user_id]]
            self._keep.append(event)
        else:
            item[3].append(user_id)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """One `lb.push` cast per member with everything batched since the last flush."""
        self._flush_scheduled = False
        batches, self._batches = self._batches, {}
        self._keep = []
        bus = self.bus
        if bus is None:
            return
        for member, items in batches.items():
            self.casts += 1
            if not bus.cast(member, PUSH, list(items.values())):
                self.dropped_casts += 1
