"""Handing a worker's sessions and rooms to its successor (rolling restart).

The draining worker freezes (requests get a retryable `busy`), copies its zones
(users, proxies, hosted rooms: rooms/snapshot.py), its sessions (resume token, event
log tail) and its routing maps into `WorkerSnapshot` pieces, and calls its successor
over the bus. The successor rebuilds them, takes over the worker's bus socket, and
then serves the clients, which reconnect with their resume tokens (close 4009) and get
the events they missed. Money is not part of it: balances and rounds are in the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from protocol.events import OutEvent
from protocol.replay import EventLog
from rooms.roles import Role
from rooms.snapshot import ZoneSnapshot, export_zone, restore_zone

from .player import Player

if TYPE_CHECKING:
    from .hub import Hub

#: Events per session handed over for replay (the client was connected until the move,
#: so it needs only the last few).
EVENTS_PER_SESSION = 32
#: Sessions per bus call (keeps each frame well under the bus's frame limit).
SESSIONS_PER_CHUNK = 500


class SessionState(msgspec.Struct, frozen=True, array_like=True):
    zone: str
    user_id: int
    name: str
    role: int
    resume_token: str
    session_id: str
    last_seq: int
    events: list[tuple[int, str, Any]]


class RoutingState(msgspec.Struct, frozen=True):
    """The sharded router's maps (gameserver/sharding.py)."""

    homes: list[tuple[str, int, str]]  # zone, proxy user, its home worker
    remote_rooms: list[tuple[str, int, str, list[int]]]  # zone, user, host, room ids there
    guest_seq: dict[str, int]


def export_sessions(hub: Hub, events_per_session: int = EVENTS_PER_SESSION) -> list[SessionState]:
    out = []
    for (zone, uid), p in hub.players.items():
        events = (
            [(seq, ev.name, ev.data) for seq, ev in p.log.buffered()[-events_per_session:]]
            if events_per_session
            else []
        )
        out.append(
            SessionState(zone, uid, p.name, int(p.role), p.resume_token, p.session_id, p.log.last_seq, events)
        )
    return out


def import_sessions(hub: Hub, sessions: list[SessionState], restored: bool = False) -> int:
    """Detached sessions, ready for `resume` (within the resume grace from now).

    `restored`: from a crashed worker's checkpoint, so their last events are lost; their
    first resume is accepted whatever seq the client saw (the reply says ``gap``)."""
    now = hub.clock.monotonic()
    replay = hub.config.limits.replay_buffer
    for s in sessions:
        player = Player(s.user_id, s.zone, s.name, Role(s.role), replay, s.resume_token)
        player.session_id = s.session_id
        player.log = EventLog.restore(replay, s.last_seq, [(seq, OutEvent(n, d)) for seq, n, d in s.events])
        player.gap = restored
        hub.players[(s.zone, s.user_id)] = player
        hub.detach(player, now)
        hub.by_resume_token[s.resume_token] = player
        for service in hub.service_list:
            service.player_joined(player)
    return len(sessions)


def export_zones(hub: Hub) -> list[ZoneSnapshot]:
    return [export_zone(z) for z in hub.zones.values()]


def import_zones(hub: Hub, zones: list[ZoneSnapshot]) -> None:
    for snap in zones:
        zone = hub.zones.get(snap.name)
        if zone is not None:
            restore_zone(zone, snap)


def chunks(items: list[Any], size: int = SESSIONS_PER_CHUNK) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]
