"""A zone: its users, room groups, rooms and bans, and every operation on them.

Each operation validates, changes state and returns `(reply, outputs)`: the data for the
requester's `ok` reply, and the events (`Send`) and disconnections (`Disconnect`) the
router must carry out. Errors are raised as `RequestError` with a wire code. Time is
passed in (`now`, seconds), never read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import msgspec

from protocol.codes import CloseCode, ErrorCode
from protocol.errors import RequestError
from protocol.events import OutEvent
from protocol.messages import Condition, UserCondition, Variable

from . import match as matchlib, variables as varlib
from .config import RoomConfig, ZoneConfig
from .outputs import Disconnect, Output, Send
from .roles import Role
from .room import Room
from .user import User
from .views import JoinedView, RoomView, UserView

Result = tuple[Any, list[Output]]


def _err(code: ErrorCode, message: str) -> RequestError:
    return RequestError(code, message)


class Zone:
    """All state of one zone. Single-threaded: call it from one event loop only."""

    def __init__(self, config: ZoneConfig, room_ids: Iterator[int] | None = None) -> None:
        """`room_ids` numbers user-created rooms (configured rooms are always 1..n, in
        order); a sharded server gives each worker ids that no other worker uses."""
        self.config = config
        self.name = config.name
        self.users: dict[int, User] = {}
        #: logins so far (add_user calls); a sharded worker counts zone population with it
        self.logins = 0
        #: how many users the zone holds, for `max_users`: this process's users by default;
        #: a sharded worker counts every worker's sessions (gameserver/sharding.py)
        self.population: Callable[[], int] = lambda: len(self.users)
        self.rooms: dict[int, Room] = {}
        self.rooms_by_name: dict[str, Room] = {}
        self.groups: set[str] = set(config.groups) | set(config.default_groups)
        self.subscribers: dict[str, set[int]] = {g: set() for g in self.groups}
        self.bans: dict[int, float] = {}  # user id -> ban end (epoch seconds)
        self._dirty_counts: set[int] = set()  # rooms whose user count changed (flush_counts)
        self._room_ids: Iterator[int] = count(1)
        for rc in config.rooms:
            self._add_configured_room(rc)
        if room_ids is not None:
            self._room_ids = room_ids
        #: rooms hosted by other workers, as listed (sharded servers keep it up to date)
        self.remote_rooms: dict[int, RoomView] = {}

    # -- users -------------------------------------------------------------------------

    def check_login(self, user_id: int, now: float) -> None:
        """Raise if `user_id` may not log in now (banned, zone full)."""
        until = self.bans.get(user_id)
        if until is not None:
            if until > now:
                raise _err(ErrorCode.USER_BANNED, f"banned for {math.ceil((until - now) / 60)} more minutes")
            del self.bans[user_id]
        if user_id not in self.users and self.population() >= self.config.max_users:
            raise _err(ErrorCode.ZONE_FULL, f"zone {self.name!r} is full")

    def add_user(self, user: User) -> Result:
        """Log `user` in: subscribe the default groups; reply with the zone view."""
        if user.id in self.users:
            raise _err(ErrorCode.ALREADY_LOGGED_IN, "user already in zone")
        self.users[user.id] = user
        self.logins += 1
        for g in self.config.default_groups:
            user.groups.add(g)
            self.subscribers[g].add(user.id)
        reply = {
            "zone": self.name,
            "user": user.view(),
            "groups": sorted(user.groups),
            "rooms": self._listed_rooms(user.groups),
            "branding": self.config.branding,
        }
        return reply, []

    def remove_user(self, user_id: int) -> list[Output]:
        """The user logged out or its session ended: leave every room, drop subscriptions."""
        user = self.users.pop(user_id, None)
        if user is None:
            return []
        out: list[Output] = []
        for room_id in list(user.rooms):
            self._leave(user, self.rooms[room_id], out)
        for g in user.groups:
            self.subscribers[g].discard(user_id)
        return out

    def add_proxy(self, user: User) -> User:
        """A user whose session lives on another worker, as a member of rooms hosted here.

        Proxies subscribe no groups; `remove_user` takes them out of their rooms."""
        return self.users.setdefault(user.id, user)

    def drop_proxy_if_idle(self, user_id: int) -> None:
        """Forget a proxy that is in no room here (nothing to announce)."""
        user = self.users.get(user_id)
        if user is not None and not user.rooms and not user.rooms_created and not user.groups:
            del self.users[user_id]

    def user(self, user_id: int) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise _err(ErrorCode.USER_NOT_FOUND, f"no user {user_id} in this zone") from None

    # -- groups and room lists ---------------------------------------------------------

    def list_rooms(self, user_id: int, group: str | None) -> Result:
        user = self.user(user_id)
        if group is None:
            return {"rooms": self._listed_rooms(user.groups)}, []
        self._check_group(group)
        return {"rooms": self._listed_rooms((group,))}, []

    def subscribe_group(self, user_id: int, group: str) -> Result:
        user = self.user(user_id)
        self._check_group(group)
        if group in user.groups:
            raise _err(ErrorCode.ALREADY_SUBSCRIBED, f"already subscribed to {group!r}")
        user.groups.add(group)
        self.subscribers[group].add(user_id)
        return {"group": group, "rooms": self._listed_rooms((group,))}, []

    def unsubscribe_group(self, user_id: int, group: str) -> Result:
        user = self.user(user_id)
        if group not in user.groups:
            raise _err(ErrorCode.NOT_SUBSCRIBED, f"not subscribed to {group!r}")
        user.groups.discard(group)
        self.subscribers[group].discard(user_id)
        return {"group": group}, []

    def _check_group(self, group: str) -> None:
        if group not in self.groups:
            raise _err(ErrorCode.GROUP_NOT_FOUND, f"no group {group!r}")

    def _listed_rooms(self, groups: Any) -> list[RoomView]:
        wanted = set(groups)
        views = [r.view() for r in self.rooms.values() if r.group in wanted and not r.hidden]
        if self.remote_rooms:
            views.extend(v for v in self.remote_rooms.values() if v.group in wanted)
            views.sort(key=lambda v: v.id)
        return views

    def _searched(self, groups: Any, where: list[Condition]) -> Iterator[Room | RoomView]:
        """Listed rooms (hosted here, then elsewhere) of `groups` (None: every group)
        that satisfy `where`, in id order within each part."""
        why = matchlib.check(where)
        if why is not None:
            raise _err(ErrorCode.BAD_REQUEST, why)
        wanted = None if groups is None else set(groups)
        hosted, listed = matchlib.rooms_predicate(where)
        for r in self.rooms.values():
            if not r.hidden and (wanted is None or r.group in wanted) and hosted(r):
                yield r
        for v in self.remote_rooms.values():
            if (wanted is None or v.group in wanted) and listed(v):
                yield v

    def find_rooms(self, user_id: int, group: str | None, where: list[Condition], limit: int) -> Result:
        """Listed rooms of `group` (None: every group) matching `where`, at most `limit`
        (0: no limit), by id."""
        self.user(user_id)
        if group is not None:
            self._check_group(group)
        found = sorted(
            (
                r.view() if isinstance(r, Room) else r
                for r in self._searched(None if group is None else (group,), where)
            ),
            key=lambda v: v.id,
        )
        return {"rooms": found[:limit] if limit else found}, []

    def quick_join_candidates(
        self, user_id: int, groups: list[str], where: list[Condition], spectator: bool, limit: int
    ) -> list[int]:
        """Rooms a quick join may try, best first: listed, not password protected, not
        joined yet, with a free seat of the kind asked for, matching `where`; the fullest
        first (players gather), then the oldest."""
        user = self.user(user_id)
        for g in groups:
            self._check_group(g)
        found: list[tuple[int, int, int]] = []
        for r in self._searched(groups or None, where):
            if r.id in user.rooms:
                continue
            if isinstance(r, Room):
                locked, taken = bool(r.password), len(r.spectators if spectator else r.players)
            else:
                locked, taken = r.locked, r.spectators if spectator else r.users
            if locked or taken >= (r.max_spectators if spectator else r.max_users):
                continue
            found.append((-taken, r.id, r.id))
        found.sort()
        return [rid for _, _, rid in found[:limit]]

    def find_users(
        self,
        user_id: int,
        room: int | None,
        group: str | None,
        where: list[UserCondition],
        limit: int,
        *,
        roomless: Callable[[int], bool] | None = None,
    ) -> Result:
        """Users matching `where`: the members of `room`, the users in the listed rooms of
        `group`, or (neither) every user of the zone; at most `limit` (0: no limit), by id.

        A user matches if it does in one of the rooms looked at (`player` and `spectator`
        are about that room; the view's `player_id` too, for a room), or, for the whole
        zone, as a user in no room (`roomless(uid)` says who is; by default a user without
        rooms here)."""
        self.user(user_id)
        if room is not None and group is not None:
            raise _err(ErrorCode.BAD_REQUEST, "give `room` or `group`, not both")
        why = matchlib.check(where)
        if why is not None:
            raise _err(ErrorCode.BAD_REQUEST, why)
        if room is not None:
            found = self.users_in(where, [self.room(room)], None, room_views=True)
        else:
            if group is not None:
                self._check_group(group)
            rooms = [r for r in self.rooms.values() if not r.hidden and (group is None or r.group == group)]
            alone = None
            if group is None:
                alone = roomless or (lambda uid: not self.users[uid].rooms)
            found = self.users_in(where, rooms, alone)
        ids = sorted(found)
        return {"users": [found[uid] for uid in (ids[:limit] if limit else ids)]}, []

    def users_in(
        self,
        where: list[UserCondition],
        rooms: list[Room],
        roomless: Callable[[int], bool] | None,
        *,
        room_views: bool = False,
    ) -> dict[int, UserView]:
        """user id -> view of the members of `rooms`, and (with `roomless`) the users in no
        room, that match `where` (the first room a user matches in wins)."""
        users = self.users
        match = matchlib.user_predicate(where)
        found: dict[int, UserView] = {}
        for r in rooms:
            for uid in r.members:
                if uid in found:
                    continue
                user = users.get(uid)
                pid = r.player_id(uid)
                if user is not None and match(user, pid):
                    found[uid] = user.view(pid if room_views else 0)
        if roomless is not None:
            for uid, user in users.items():
                if uid not in found and roomless(uid) and match(user, None):
                    found[uid] = user.view()
        return found

    def use_room_ids(self, room_ids: Iterator[int]) -> None:
        """Number the rooms created from now on from `room_ids` (see __init__)."""
        self._room_ids = room_ids

    def forget_room(self, room_id: int) -> None:
        """Drop a configured room that another worker hosts (at start-up, before use)."""
        room = self.rooms.pop(room_id)
        del self.rooms_by_name[room.name]

    def apply_remote(self, event: str, data: dict[str, Any]) -> list[Output]:
        """Update the listing of rooms hosted elsewhere from their owner's `room_added`,
        `room_removed`, `room_count` or `room_changed` event, and announce it to this
        worker's subscribers; `room_listing` (new variables) only updates it."""
        ref = data.get("room")
        if (ref.get("id") if isinstance(ref, dict) else ref) in self.rooms:
            return []  # hosted here (a stale listing from a worker that is handing it over)
        if event == "room_listing":  # a listed room's variables changed: no one is told
            listed = msgspec.convert(data["room"], RoomView)
            if listed.id in self.remote_rooms:
                self.remote_rooms[listed.id] = listed
            return []
        if event == "room_removed":
            view = self.remote_rooms.pop(data["room"], None)
            group = data.get("group") or (view.group if view is not None else None)
        else:
            view = msgspec.convert(data["room"], RoomView)
            self.remote_rooms[view.id] = view
            group = view.group
            if event == "room_count":
                data = {"room": view.id, "users": view.users, "spectators": view.spectators}
        if group is None:
            return []
        if group not in self.groups:  # an open group created on another worker
            self.groups.add(group)
            self.subscribers[group] = set()
        subs = self.subscribers[group]
        return [Send(tuple(subs), OutEvent(event, data))] if subs else []

    # -- rooms -------------------------------------------------------------------------

    def _add_configured_room(self, rc: RoomConfig) -> Room:
        self.groups.add(rc.group)
        self.subscribers.setdefault(rc.group, set())
        room = self._new_room(
            rc.name,
            rc.group,
            game=rc.game,
            max_users=rc.max_users,
            max_spectators=rc.max_spectators,
            password=rc.password,
            hidden=rc.hidden,
            owner=None,
            static=True,
        )
        for var in rc.variables:
            room.variables[var.name] = var
        return room

    def _new_room(self, name: str, group: str, **settings: Any) -> Room:
        room = Room(next(self._room_ids), name, group, **settings)
        self.rooms[room.id] = room
        self.rooms_by_name[name] = room
        return room

    def room(self, ref: int | str) -> Room:
        """A room by id or by name."""
        room = self.rooms.get(ref) if isinstance(ref, int) else self.rooms_by_name.get(ref)
        if room is None:
            raise _err(ErrorCode.ROOM_NOT_FOUND, f"no room {ref!r}")
        return room

    def create_room(
        self,
        user_id: int,
        *,
        name: str,
        group: str = "default",
        game: bool = False,
        max_users: int = 10,
        max_spectators: int = 0,
        password: str = "",
        hidden: bool = False,
        variables: list[Variable] | None = None,
        join: bool = True,
        spectator: bool = False,
    ) -> Result:
        """Create a room owned by the user; announce it; optionally join it."""
        user = self.user(user_id)
        cfg = self.config
        allowed = cfg.room_creation == "everyone" or (cfg.room_creation == "users" and user.role >= Role.USER)
        if not allowed:
            raise _err(ErrorCode.ROOM_CREATION_DENIED, "room creation is not allowed for you in this zone")
        if name in self.rooms_by_name:
            raise _err(ErrorCode.ROOM_NAME_TAKEN, f"a room named {name!r} exists")
        if group not in self.groups:
            if not cfg.open_groups:
                raise _err(ErrorCode.GROUP_NOT_FOUND, f"no group {group!r}")
            self.groups.add(group)
            self.subscribers[group] = set()
        if len(user.rooms_created) >= cfg.max_rooms_per_user and user.role < Role.MODERATOR:
            raise _err(ErrorCode.TOO_MANY_ROOMS, f"at most {cfg.max_rooms_per_user} rooms per user")
        if len(self.rooms) >= cfg.max_rooms:
            raise _err(ErrorCode.TOO_MANY_ROOMS, "this zone has no room for more rooms")
        initial: dict[str, Variable] = {}
        if variables:
            varlib.apply(initial, variables, cfg.max_room_variables, cfg.max_variable_bytes)
        room = self._new_room(
            name,
            group,
            game=game,
            max_users=max_users,
            max_spectators=max_spectators,
            password=password,
            hidden=hidden,
            owner=user_id,
        )
        room.variables = initial
        room.var_setters = dict.fromkeys(initial, user_id)
        user.rooms_created.add(room.id)
        out: list[Output] = []
        if not hidden:
            out.append(Send(tuple(self.subscribers[group]), OutEvent("room_added", {"room": room.view()})))
        if join:
            joined, join_out = self.join_room(user_id, room.id, password=password, spectator=spectator)
            out.extend(join_out)
            return joined, out
        return {"room": room.view()}, out

    def join_room(
        self,
        user_id: int,
        ref: int | str,
        *,
        password: str = "",
        spectator: bool = False,
        leave: int | None = None,
    ) -> Result:
        """Join a room as a player or spectator; optionally leave another one after."""
        user = self.user(user_id)
        room = self.room(ref)
        if room.is_member(user_id):
            raise _err(ErrorCode.ALREADY_IN_ROOM, f"already in room {room.name!r}")
        if room.password and password != room.password and user.role < Role.MODERATOR:
            raise _err(ErrorCode.WRONG_PASSWORD, f"wrong password for room {room.name!r}")
        if spectator:
            if len(room.spectators) >= room.max_spectators:
                raise _err(ErrorCode.SPECTATORS_FULL, f"no spectator seats in room {room.name!r}")
        elif len(room.players) >= room.max_users:
            raise _err(ErrorCode.ROOM_FULL, f"room {room.name!r} is full")
        others = room.members
        if spectator:
            room.spectators.add(user_id)
        else:
            room.players[user_id] = room.free_player_id()
        user.rooms.add(room.id)
        out: list[Output] = []
        if others:
            entered = {"room": room.id, "user": user.view(room.player_id(user_id))}
            out.append(Send(others, OutEvent("user_entered", entered)))
        self._count_changed(room, out)
        users = [self.users[uid].view(room.player_id(uid)) for uid in room.members]
        reply = JoinedView(room.view(), users)
        if leave is not None and leave != room.id and leave in user.rooms:
            self._leave(user, self.rooms[leave], out)
        return reply, out

    def leave_room(self, user_id: int, room_id: int) -> Result:
        user = self.user(user_id)
        room = self.room(room_id)
        if not room.is_member(user_id):
            raise _err(ErrorCode.NOT_IN_ROOM, f"not in room {room.name!r}")
        out: list[Output] = []
        self._leave(user, room, out)
        return {"room": room_id}, out

    def switch_role(self, user_id: int, room_id: int, spectator: bool) -> Result:
        """Player -> spectator or back, in a game room."""
        self.user(user_id)
        room = self.room(room_id)
        if not room.is_member(user_id):
            raise _err(ErrorCode.NOT_IN_ROOM, f"not in room {room.name!r}")
        if not room.game:
            raise _err(ErrorCode.BAD_REQUEST, "only game rooms have spectators")
        if spectator == (user_id in room.spectators):
            return {"room": room.id, "player_id": room.player_id(user_id)}, []
        if spectator:
            if len(room.spectators) >= room.max_spectators:
                raise _err(ErrorCode.SPECTATORS_FULL, f"no spectator seats in room {room.name!r}")
            del room.players[user_id]
            room.spectators.add(user_id)
        else:
            if len(room.players) >= room.max_users:
                raise _err(ErrorCode.ROOM_FULL, f"room {room.name!r} is full")
            room.spectators.discard(user_id)
            room.players[user_id] = room.free_player_id()
        pid = room.player_id(user_id)
        out: list[Output] = [
            Send(
                room.members, OutEvent("role_switched", {"room": room.id, "user": user_id, "player_id": pid})
            )
        ]
        self._count_changed(room, out)
        return {"room": room.id, "player_id": pid}, out

    def change_room(
        self,
        user_id: int,
        room_id: int,
        *,
        name: str | None = None,
        password: str | None = None,
        max_users: int | None = None,
        max_spectators: int | None = None,
    ) -> Result:
        """The room's owner (or a moderator) renames it, sets or removes its password
        (""), or resizes it; fields left None stay. Fewer seats than occupants removes no
        one: the room takes no one until they are fewer. `room_changed` (the new view and
        what changed) goes to the group's subscribers and the room's members."""
        user = self.user(user_id)
        room = self.room(room_id)
        if room.owner != user_id and user.role < Role.MODERATOR:
            raise _err(ErrorCode.PERMISSION_DENIED, f"only the owner of room {room.name!r} can change it")
        if max_spectators is not None and max_spectators > 0 and not room.game:
            raise _err(ErrorCode.BAD_REQUEST, "only game rooms have spectators")
        changed: list[str] = []
        if name is not None and name != room.name:
            if name in self.rooms_by_name:
                raise _err(ErrorCode.ROOM_NAME_TAKEN, f"a room named {name!r} exists")
            del self.rooms_by_name[room.name]
            room.name = name
            self.rooms_by_name[name] = room
            changed.append("name")
        if password is not None and password != room.password:
            room.password = password
            changed.append("password")
        if max_users is not None and max_users != room.max_users:
            room.max_users = max_users
            changed.append("max_users")
        if max_spectators is not None and max_spectators != room.max_spectators:
            room.max_spectators = max_spectators
            changed.append("max_spectators")
        view = room.view()
        out: list[Output] = []
        if changed:
            listeners = (
                set(room.members) if room.hidden else set(self.subscribers[room.group]) | set(room.members)
            )
            if listeners:
                out.append(
                    Send(tuple(listeners), OutEvent("room_changed", {"room": view, "changed": changed}))
                )
        return {"room": view, "changed": changed}, out

    def close_room(self, room_id: int) -> Result:
        """Everyone leaves the room (each gets `user_left`, as in a leave); a user-created room
        goes away with its last member, a configured one stays, empty. For operators: no
        user asks for it."""
        room = self.room(room_id)
        out: list[Output] = []
        members = list(room.members)
        for uid in members:
            user = self.users.get(uid)
            if user is not None:
                self._leave(user, room, out)
        return {"room": room_id, "left": members, "removed": room_id not in self.rooms}, out

    def _leave(self, user: User, room: Room, out: list[Output]) -> None:
        room.players.pop(user.id, None)
        room.spectators.discard(user.id)
        user.rooms.discard(room.id)
        # The leaver gets user_left too: that is how its client knows the leave is done.
        out.append(Send([*room.members, user.id], OutEvent("user_left", {"room": room.id, "user": user.id})))
        for name in [n for n, setter in room.var_setters.items() if setter == user.id]:
            var = room.variables.get(name)
            if var is not None and not var.persistent:
                del room.variables[name]
                del room.var_setters[name]
                gone = {"room": room.id, "variables": [Variable(name)], "by": user.id}
                if room.members:
                    out.append(Send(room.members, OutEvent("room_variables", gone)))
        if room.is_empty() and not room.static:
            self._remove_room(room, out)
        else:
            self._count_changed(room, out)

    def _remove_room(self, room: Room, out: list[Output]) -> None:
        del self.rooms[room.id]
        del self.rooms_by_name[room.name]
        if room.owner is not None and room.owner in self.users:
            self.users[room.owner].rooms_created.discard(room.id)
        if not room.hidden:
            gone = {"room": room.id, "group": room.group}
            out.append(Send(tuple(self.subscribers[room.group]), OutEvent("room_removed", gone)))

    def _count_changed(self, room: Room, out: list[Output]) -> None:
        """Note a user-count change; `flush_counts` announces it.

        Counts go to every subscriber of the room's group, and a lobby group can have
        100k subscribers: one event per join would be O(subscribers) per join. So changes
        are coalesced per room and sent at most once per `flush_counts` call (the hub
        calls it once per sweep, every second by default).
        """
        if not room.hidden:
            self._dirty_counts.add(room.id)

    def flush_counts(self, always: bool = False) -> list[Output]:
        """One `room_count` event per room whose count changed since the last call
        (with `always`, even when no one here subscribes: other workers may)."""
        out: list[Output] = []
        dirty, self._dirty_counts = self._dirty_counts, set()
        for room_id in sorted(dirty):
            room = self.rooms.get(room_id)
            if room is None:
                continue  # removed meanwhile: room_removed was sent
            subs = self.subscribers[room.group]
            if subs or always:
                data = {"room": room.id, "users": len(room.players), "spectators": len(room.spectators)}
                out.append(Send(tuple(subs), OutEvent("room_count", data)))
        return out

    # -- messages ----------------------------------------------------------------------

    def _check_text(self, text: str) -> None:
        if len(text) > self.config.max_text_length:
            raise _err(ErrorCode.MESSAGE_TOO_LONG, f"at most {self.config.max_text_length} characters")

    def public_message(self, user_id: int, room_id: int, text: str, data: Any = None) -> Result:
        """To every member of a joined room, the sender included."""
        self.user(user_id)
        room = self.room(room_id)
        if not room.is_member(user_id):
            raise _err(ErrorCode.NOT_IN_ROOM, f"not in room {room.name!r}")
        self._check_text(text)
        msg = {"room": room.id, "from": user_id, "text": text, "data": data}
        return None, [Send(room.members, OutEvent("public_message", msg))]

    def private_message(self, user_id: int, to: int, text: str, data: Any = None) -> Result:
        """To one user of the zone, echoed to the sender."""
        sender = self.user(user_id)
        self.user(to)
        self._check_text(text)
        msg = {"from": {"id": sender.id, "name": sender.name}, "to": to, "text": text, "data": data}
        return None, [Send({to, user_id}, OutEvent("private_message", msg))]

    def object_message(self, user_id: int, room_id: int, data: Any, to: list[int] | None = None) -> Result:
        """Structured data to the room's members (or the listed ones), not to the sender."""
        self.user(user_id)
        room = self.room(room_id)
        if not room.is_member(user_id):
            raise _err(ErrorCode.NOT_IN_ROOM, f"not in room {room.name!r}")
        members = set(room.members)
        targets = members if to is None else members & set(to)
        targets.discard(user_id)
        msg = {"room": room.id, "from": user_id, "data": data}
        return None, [Send(targets, OutEvent("object_message", msg))] if targets else []

    def staff_message(
        self, user_id: int, kind: str, text: str, scope: str, target: int | str | None, data: Any = None
    ) -> Result:
        """A moderator (kind="moderator") or admin ("admin") message to a user, room, group or zone."""
        sender = self.user(user_id)
        needed = Role.ADMIN if kind == "admin" else Role.MODERATOR
        if sender.role < needed:
            raise _err(ErrorCode.PERMISSION_DENIED, f"{kind} messages need the {needed.name.lower()} role")
        self._check_text(text)
        recipients: set[int] | list[int]
        if scope == "zone":
            recipients = set(self.users)
        elif scope == "user" and isinstance(target, int):
            recipients = {self.user(target).id}
        elif scope == "room" and isinstance(target, int | str):
            recipients = self.room(target).members
        elif scope == "group" and isinstance(target, str):
            self._check_group(target)
            recipients = {uid for r in self.rooms.values() if r.group == target for uid in r.members}
        else:
            raise _err(ErrorCode.BAD_REQUEST, f"scope {scope!r} needs a matching target")
        sent_by = {"id": sender.id, "name": sender.name, "role": int(sender.role)}
        msg = {"from": sent_by, "text": text, "scope": scope, "data": data}
        return None, [Send(recipients, OutEvent(f"{kind}_message", msg))] if recipients else []

    # -- variables ---------------------------------------------------------------------

    def set_room_variables(self, user_id: int, room_id: int, changes: list[Variable]) -> Result:
        """Members set room variables; a private one only its setter (or staff) may change."""
        user = self.user(user_id)
        room = self.room(room_id)
        if not room.is_member(user_id) and user.role < Role.MODERATOR:
            raise _err(ErrorCode.NOT_IN_ROOM, f"not in room {room.name!r}")
        for var in changes:
            old = room.variables.get(var.name)
            owner = room.var_setters.get(var.name)
            if old is not None and old.private and owner != user_id and user.role < Role.MODERATOR:
                raise _err(
                    ErrorCode.VARIABLE_READ_ONLY, f"room variable {var.name!r} is private to its setter"
                )
        cfg = self.config
        changed = varlib.apply(room.variables, changes, cfg.max_room_variables, cfg.max_variable_bytes)
        for var in changed:
            if var.value is None:
                room.var_setters.pop(var.name, None)
            else:
                room.var_setters[var.name] = user_id
        if not changed:
            return {"changed": 0}, []
        msg = {"room": room.id, "variables": changed, "by": user_id}
        return {"changed": len(changed)}, [Send(room.members, OutEvent("room_variables", msg))]

    def set_user_variables(self, user_id: int, changes: list[Variable]) -> Result:
        """Public variables go to everyone sharing a room with the user; private ones to it alone."""
        user = self.user(user_id)
        cfg = self.config
        changed = varlib.apply(user.variables, changes, cfg.max_user_variables, cfg.max_variable_bytes)
        if not changed:
            return {"changed": 0}, []
        out: list[Output] = [
            Send([user_id], OutEvent("user_variables", {"user": user_id, "variables": changed}))
        ]
        public = [v for v in changed if not v.private]
        if public:
            peers = {uid for rid in user.rooms for uid in self.rooms[rid].members}
            peers.discard(user_id)
            if peers:
                out.append(Send(peers, OutEvent("user_variables", {"user": user_id, "variables": public})))
        return {"changed": len(changed)}, out

    def proxy_variables(self, user_id: int, public: list[Variable]) -> list[Output]:
        """A proxy's public variables changed on its home worker: tell its rooms here."""
        user = self.users.get(user_id)
        if user is None or not public:
            return []
        for var in public:  # validated on the home worker already
            if var.value is None:
                user.variables.pop(var.name, None)
            else:
                user.variables[var.name] = var
        peers = {uid for rid in user.rooms for uid in self.rooms[rid].members}
        peers.discard(user_id)
        if not peers:
            return []
        return [Send(peers, OutEvent("user_variables", {"user": user_id, "variables": public}))]

    # -- moderation --------------------------------------------------------------------

    def _check_moderation(self, actor: User, target: User) -> None:
        if actor.role < Role.MODERATOR:
            raise _err(ErrorCode.PERMISSION_DENIED, "kick and ban need the moderator role")
        if target.role >= actor.role:
            raise _err(ErrorCode.PERMISSION_DENIED, "you can only moderate users of a lower role")

    def kick(self, user_id: int, target_id: int, reason: str = "") -> Result:
        actor, target = self.user(user_id), self.user(target_id)
        self._check_moderation(actor, target)
        note = OutEvent("kicked", {"by": actor.id, "reason": reason})
        return {"user": target.id}, [Send([target.id], note), Disconnect(target.id, CloseCode.KICKED, reason)]

    def ban(self, user_id: int, target_id: int, hours: float, reason: str, now: float) -> Result:
        actor, target = self.user(user_id), self.user(target_id)
        self._check_moderation(actor, target)
        until = now + hours * 3600
        self.bans[target.id] = until
        note = OutEvent("banned", {"by": actor.id, "reason": reason, "until": int(until)})
        out: list[Output] = [Send([target.id], note), Disconnect(target.id, CloseCode.BANNED, reason)]
        return {"user": target.id, "until": int(until)}, out
