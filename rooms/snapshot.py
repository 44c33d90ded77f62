"""A zone's state as plain data, to hand a worker's zones to its successor.

`export_zone` copies every user (local and proxy) and room of a zone into msgspec
Structs; `restore_zone` rebuilds them in a fresh zone built from the same config (its
configured rooms are replaced by the exported ones, with their members and variables).
"""

from __future__ import annotations

from msgspec import Struct

from protocol.messages import Variable

from .roles import Role
from .room import Room
from .user import User
from .zone import Zone


class RoomState(Struct, frozen=True):
    id: int
    name: str
    group: str
    game: bool
    max_users: int
    max_spectators: int
    password: str
    hidden: bool
    owner: int | None
    static: bool
    players: list[tuple[int, int]]  # user id, player id; in join order
    spectators: list[int]
    variables: list[Variable]
    var_setters: dict[str, int]


class UserState(Struct, frozen=True):
    id: int
    name: str
    role: int
    variables: list[Variable]
    rooms: list[int]
    groups: list[str]
    rooms_created: list[int]


class ZoneSnapshot(Struct, frozen=True):
    name: str
    users: list[UserState]
    rooms: list[RoomState]
    groups: list[str]
    bans: dict[int, float]
    max_room_id: int


def room_state(r: Room) -> RoomState:
    return RoomState(
        r.id,
        r.name,
        r.group,
        r.game,
        r.max_users,
        r.max_spectators,
        r.password,
        r.hidden,
        r.owner,
        r.static,
        list(r.players.items()),
        sorted(r.spectators),
        list(r.variables.values()),
        dict(r.var_setters),
    )


def room_from(st: RoomState) -> Room:
    room = Room(
        st.id,
        st.name,
        st.group,
        game=st.game,
        max_users=st.max_users,
        max_spectators=st.max_spectators,
        password=st.password,
        hidden=st.hidden,
        owner=st.owner,
        static=st.static,
    )
    room.players = dict(st.players)
    room.spectators = set(st.spectators)
    room.variables = {v.name: v for v in st.variables}
    room.var_setters = dict(st.var_setters)
    return room


def user_state(user: User, rooms: list[int] | None = None) -> UserState:
    """`rooms`: the room ids to record (default: every room the user is in)."""
    return UserState(
        user.id,
        user.name,
        int(user.role),
        list(user.variables.values()),
        sorted(user.rooms if rooms is None else rooms),
        sorted(user.groups),
        sorted(user.rooms_created),
    )


def user_from(st: UserState) -> User:
    user = User(st.id, st.name, Role(st.role))
    user.variables = {v.name: v for v in st.variables}
    user.rooms = set(st.rooms)
    user.groups = set(st.groups)
    user.rooms_created = set(st.rooms_created)
    return user


def export_zone(zone: Zone) -> ZoneSnapshot:
    return ZoneSnapshot(
        zone.name,
        [user_state(u) for u in zone.users.values()],
        [room_state(r) for r in zone.rooms.values()],
        sorted(zone.groups),
        dict(zone.bans),
        max((r.id for r in zone.rooms.values()), default=0),
    )


def restore_zone(zone: Zone, snap: ZoneSnapshot) -> None:
    """Load `snap` into `zone` (a fresh zone of the same config): users, rooms, groups."""
    if snap.name != zone.name:
        raise ValueError(f"snapshot of zone {snap.name!r} given to zone {zone.name!r}")
    zone.rooms.clear()
    zone.rooms_by_name.clear()
    for rs in snap.rooms:
        room = room_from(rs)
        zone.rooms[room.id] = room
        zone.rooms_by_name[room.name] = room
    for g in snap.groups:
        zone.groups.add(g)
        zone.subscribers.setdefault(g, set())
    zone.users.clear()
    for us in snap.users:
        user = user_from(us)
        zone.users[user.id] = user
        for g in user.groups:
            zone.subscribers.setdefault(g, set()).add(user.id)
    zone.bans.update(snap.bans)
