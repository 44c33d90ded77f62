"""Rooms across workers: each room lives on one worker, members anywhere reach it by bus.

Ownership (identical in every process, from the ring in gameserver/ring.py):

- a user's *home* is the worker that holds its session: ``ring.owner(user_key(zone, id))``;
- a room's *host* is ``ring.owner(room_key(zone, name))`` — by name, so that creating a
  room and joining it by name both reach the one worker that can enforce unique names.
  Configured rooms keep the ids 1..n on every worker (each worker builds the same list
  and forgets the rooms it does not host); a created room's id carries its host's index:
  ``DYNAMIC_BASE + seq * MAX_WORKERS + index``.

A room request from a user whose room is hosted elsewhere is *called* on the host over
the bus (`op`), with the user's name, role and public variables. The host keeps a
*proxy* of that user in its zone, runs the unchanged `rooms/` operation, replies, and
fans the resulting events out: local sessions directly, remote members by one `deliver`
cast per home worker. Room-list changes (`room_added`, `room_removed`, `room_count`)
are cast to every worker (`dir`), which keeps a listing of remote rooms and tells its own
group subscribers. When a session ends, its home casts `gone` to the hosts of its rooms.
A worker that (re)starts casts `hello`: the others drop its users' proxies and its rooms,
and read its room list.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from itertools import count
from typing import TYPE_CHECKING, Any

import msgspec

from protocol import messages as m
from protocol.codes import CloseCode, ErrorCode
from protocol.errors import RequestError
from protocol.events import OutEvent
from protocol.sfs2x.reconnect import HrcState
from rooms.outputs import Disconnect, Output, Send
from rooms.roles import Role
from rooms.snapshot import RoomState, UserState, ZoneSnapshot, room_from, room_state, user_from, user_state
from rooms.user import User
from rooms.views import UserView
from rooms.zone import Zone

from .bus import Bus, BusError, RemoteError, open_bus
from .handlers import ZONE_HANDLERS
from .handover import (
    EVENTS_PER_SESSION,
    RoutingState,
    SessionState,
    chunks,
    export_sessions,
    export_zones,
    import_sessions,
    import_zones,
)
from .ring import HashRing, room_key, user_key
from .router import ReplyFn

if TYPE_CHECKING:
    from .checkpoint import Checkpoint
    from .hub import Hub

logger = logging.getLogger("croupier.sharding")

DYNAMIC_BASE = 1_000_000
MAX_WORKERS = 1024


def _in_room(hosts: dict[str, set[int]] | None, room_id: int) -> bool:
    """True if a user's rooms hosted elsewhere (`ShardedRouter.remote_rooms`) include it."""
    return hosts is not None and any(room_id in ids for ids in hosts.values())


#: the handover's entry for SmartFox reconnections (protocol/sfs2x/reconnect.py)
SFS_HRC = "sfs2x.hrc"
_LIST_EVENTS = frozenset({"room_added", "room_removed", "room_count", "room_changed"})

_enc = msgspec.msgpack.Encoder()
_dec_request = msgspec.msgpack.Decoder(m.ClientMessage)


def room_ids_for(index: int) -> Iterator[int]:
    """Ids of rooms created on the worker at `index` (no other worker uses them)."""
    if not 0 <= index < MAX_WORKERS:
        raise ValueError(f"worker index must be in 0..{MAX_WORKERS - 1}")
    return (DYNAMIC_BASE + seq * MAX_WORKERS + index for seq in count())


class Shards:
    """Who owns what, given the ring of all workers (in every node)."""

    def __init__(
        self,
        me: str,
        members: list[str],
        zones: dict[str, Zone],
        static: dict[str, dict[int, str]] | None = None,
        leaving: bool = False,
    ) -> None:
        self.me = me
        self.members = sorted(members)
        if me not in self.members and not leaving:
            raise ValueError(f"{me!r} is not one of the ring's members {self.members}")
        self.index = self.members.index(me) if me in self.members else -1
        self.ring = HashRing(self.members)
        #: per zone, configured room id -> name (every worker builds the same list)
        self.static: dict[str, dict[int, str]] = static or {
            name: {rid: room.name for rid, room in zone.rooms.items() if room.static}
            for name, zone in zones.items()
        }

    def home(self, zone: str, user_id: int) -> str:
        return self.ring.owner(user_key(zone, user_id))

    def host_by_name(self, zone: str, name: str) -> str:
        return self.ring.owner(room_key(zone, name))

    def host(self, zone: str, ref: int | str) -> str:
        """The worker hosting room `ref` (an id or a name) of `zone`."""
        if isinstance(ref, str):
            return self.host_by_name(zone, ref)
        name = self.static.get(zone, {}).get(ref)
        if name is not None:
            return self.host_by_name(zone, name)
        if ref >= DYNAMIC_BASE:
            index = (ref - DYNAMIC_BASE) % MAX_WORKERS
            if index < len(self.members):
                return self.members[index]
        raise RequestError(ErrorCode.ROOM_NOT_FOUND, f"no room {ref!r}")


def _user_spec(user: User) -> list[Any]:
    public = [v for v in user.variables.values() if not v.private]
    return [user.id, user.name, int(user.role), public]


class ShardedRouter:
    """`Router` for a worker in a ring: room requests run on the room's host."""

    def __init__(self, hub: Hub, me: str, members: list[str], bus: Bus, timeout: float = 2.0) -> None:
        self.hub = hub
        self.bus = bus
        self.timeout = timeout
        self.shards = Shards(me, members, hub.zones)
        self.me = me
        for zname, zone in hub.zones.items():  # keep only the configured rooms hosted here
            for rid, rname in self.shards.static[zname].items():
                if self.shards.host_by_name(zname, rname) != me:
                    zone.forget_room(rid)
            zone.use_room_ids(room_ids_for(self.shards.index))
        hub.new_guest_id = self.new_guest_id
        self._guest_seq: dict[str, int] = {}
        #: (zone, user) -> {host: room ids} for this worker's users in rooms hosted elsewhere
        self.remote_rooms: dict[tuple[str, int], dict[str, set[int]]] = {}
        #: hosted rooms whose variables changed since the last sweep (the others' listings)
        self._relist: set[tuple[str, int]] = set()
        #: (zone, user) -> home, for the proxies of remote users in rooms hosted here
        self.homes: dict[tuple[str, int], str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        for kind, fn in (
            ("op", self._on_op),
            ("deliver", self._on_deliver),
            ("disconnect", self._on_disconnect),
            ("gone", self._on_gone),
            ("uvars", self._on_uvars),
            ("dir", self._on_dir),
            ("dir_full", self._on_dir_full),
            ("hello", self._on_hello),
            ("staff", self._on_staff),
            ("adopt", self._on_adopt),
            ("share", self._on_share),
            ("reconcile", self._on_reconcile),
            ("lost", self._on_lost),
            ("zcount", self._on_zcount),
            ("fusers", self._on_find_users),
        ):
            bus.on(kind, fn)
        #: zone population for `max_users` across the ring: every worker casts its
        #: sessions per zone once per sweep (when they changed, and every 10 sweeps)
        self._counts: dict[str, dict[str, int]] = {}  # member -> zone -> sessions
        self._sampled: dict[str, tuple[int, int]] = {}  # zone -> (our sessions, zone.logins) at the sweep
        self._sent: dict[str, int] = {}
        self._sweeps = 0
        for zname, zone in hub.zones.items():
            zone.population = self._population(zname, zone)
        #: set once this worker serves its member: at start, or after a takeover
        self.serving = asyncio.Event()
        #: called with the resume tokens of the sessions a ring change moved here (the
        #: supervisor routes their resumes here, whichever worker their token names)
        self.on_moved_in: Callable[[list[str]], None] | None = None
        #: called with {resume token: new owner} of the sessions a ring change moves away,
        #: before their clients are told to reconnect (so the acceptor knows where they went)
        self.on_moved_out: Callable[[dict[str, str]], None] | None = None

    # -- start-up ----------------------------------------------------------------------

    async def start(self, takeover: float = 0.0, checkpoint: Checkpoint | None = None) -> None:
        """Announce this (re)started worker and read the other workers' room lists.

        `checkpoint`: the crashed predecessor's state, restored first (`restore`).

        `takeover` > 0: this process replaces a draining one of the same member (a rolling
        restart): it waits up to that many seconds for the predecessor's sessions and
        rooms (`adopt`) before serving; without them it starts fresh.
        """
        if takeover > 0:
            self._spawn(self._fresh_after(takeover))
            return
        if checkpoint is not None:
            await self.restore(checkpoint)
            return
        await self._serve(announce=True)

    async def _serve(self, announce: bool) -> None:
        if announce:
            for peer in self._peers():
                self.bus.cast(peer, "hello", None)
        await asyncio.gather(*(self._read_directory(p) for p in self._peers()))
        self.serving.set()

    async def _fresh_after(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self.serving.wait(), delay)
        except TimeoutError:
            logger.warning("no handover from the predecessor of %s: starting fresh", self.me)
            await self._rebind()
            await self._serve(announce=True)

    async def _rebind(self) -> None:
        rebind = getattr(self.bus, "rebind", None)
        if rebind is not None:
            await rebind()

    async def _read_directory(self, peer: str, replace: bool = False) -> None:
        """Add `peer`'s rooms to the listings; `replace`: also drop those it no longer has."""
        try:
            listing = await self.bus.call(peer, "dir_full", None, self.timeout)
        except BusError as exc:  # not up yet: its own hello will make us read it
            logger.info("room list of %s not read: %s", peer, exc)
            return
        for zname, zone in self.hub.zones.items():
            views = listing.get(zname, [])
            if replace:
                have = {v["id"] for v in views}
                for rid in [
                    r for r in zone.remote_rooms if r not in have and self._hosted_by(zname, r) == peer
                ]:
                    outputs = zone.apply_remote("room_removed", {"room": rid})
                    if outputs:
                        self.hub.deliver(zname, outputs)
            for view in views:
                if not (replace and view["id"] in zone.remote_rooms):
                    zone.apply_remote("room_added", {"room": view})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.bus.close()

    # -- ring changes (a worker or node added or removed) --------------------------------

    async def change_ring(self, members: list[str], timeout: float = 10.0) -> dict[str, str]:
        """Adopt the ring `members`: hand the users and rooms that now belong to another
        worker to it (`share`), keep the rest. Moved sessions are closed with 4009; their
        clients resume on the new owner. Returns {resume token: new owner} of the moved
        sessions (the acceptor routes their resumes with it)."""

        hub = self.hub
        leaving = self.me not in members
        new = Shards(self.me, members, hub.zones, self.shards.static, leaving=leaving)
        moved_users = {k for k in hub.players if new.home(*k) != self.me}
        moved_rooms = {
            (zname, rid): new.host_by_name(zname, room.name)
            for zname, zone in hub.zones.items()
            for rid, room in zone.rooms.items()
            if new.host_by_name(zname, room.name) != self.me
        }
        hub.moving |= moved_users  # their requests wait for the new owner (resent after resume)
        if hub.casino is not None:
            await hub.casino.drain()  # rounds in flight finish here first
        for service in hub.service_list:
            if hasattr(service, "release"):  # staged progress is written before the move
                await service.release()
        by_dst: dict[str, list[Any]] = defaultdict(lambda: [[], [], [], []])  # users, rooms, proxies, remote
        sessions = {
            (st.zone, st.user_id): st for st in export_sessions(hub) if (st.zone, st.user_id) in moved_users
        }
        dst_sessions: dict[str, list[SessionState]] = defaultdict(list)
        dst_hrc: dict[str, list[HrcState]] = defaultdict(list)  # their SmartFox sessions (HRC)
        for hrc in hub.sfs_reconnections.export():
            key = (hrc.zone, int(hrc.me["id"]))
            if key in moved_users:
                dst_hrc[new.home(*key)].append(hrc)
        for key in moved_users:
            zname, uid = key
            dst = new.home(zname, uid)
            user = hub.zones[zname].users[uid]
            rooms_to_dst = [rid for rid in user.rooms if moved_rooms.get((zname, rid)) == dst]
            by_dst[dst][0].append([zname, user_state(user, rooms_to_dst)])
            remote: dict[str, set[int]] = {h: set(ids) for h, ids in self.remote_rooms.get(key, {}).items()}
            for rid in user.rooms:
                host = moved_rooms.get((zname, rid), self.me)
                if host != dst:
                    remote.setdefault(host, set()).add(rid)
            remote.pop(dst, None)  # rooms on the new owner become local there
            by_dst[dst][3].extend([zname, uid, h, sorted(ids)] for h, ids in remote.items() if ids)
            dst_sessions[dst].append(sessions[key])
        for (zname, rid), dst in moved_rooms.items():
            zone = hub.zones[zname]
            room = zone.rooms[rid]
            by_dst[dst][1].append([zname, room_state(room)])
            for uid in room.members:  # members homed elsewhere than dst need a proxy there
                if new.home(zname, uid) != dst:
                    by_dst[dst][2].append([zname, user_state(zone.users[uid], [rid])])
        for dst in set(dst_sessions) | set(by_dst):
            users, rooms, proxies, remote = by_dst[dst]
            payload = [users, rooms, proxies, remote, dst_sessions.get(dst, []), dst_hrc.get(dst, [])]
            await self.bus.call(dst, "share", _enc.encode([self.me, payload]), timeout)
        # the others have them now: forget them here
        for (zname, rid), dst in moved_rooms.items():
            zone = hub.zones[zname]
            room = zone.rooms.pop(rid)
            del zone.rooms_by_name[room.name]
            if not room.hidden:
                zone.remote_rooms[rid] = room.view()
            for uid in room.members:
                member = zone.users.get(uid)
                if member is None:
                    continue
                member.rooms.discard(rid)
                if (zname, uid) in hub.players and (zname, uid) not in moved_users:
                    self.remote_rooms.setdefault((zname, uid), {}).setdefault(dst, set()).add(rid)
                elif (zname, uid) not in hub.players:
                    zone.drop_proxy_if_idle(uid)
        moved: dict[str, str] = {}
        closing = []
        for key in moved_users:
            zname, uid = key
            player = hub.players.pop(key)
            hub.by_resume_token.pop(player.resume_token, None)
            for service in hub.service_list:
                service.player_left(player)
            self.remote_rooms.pop(key, None)
            zone = hub.zones[zname]
            user = zone.users[uid]
            for g in user.groups:
                zone.subscribers[g].discard(uid)
            user.groups.clear()
            if not user.rooms:  # still in rooms hosted here: it stays as a proxy
                del zone.users[uid]
            conn = player.conn
            if conn is not None:
                player.conn = None
                conn.player = None
                closing.append(conn)
            moved[player.resume_token] = new.home(zname, uid)
        for dst, states in dst_hrc.items():  # a reconnecting SmartFox client is routed by its token
            for hrc in states:
                moved[hrc.token] = dst
        if self.on_moved_out is not None and moved:  # routed first: the clients reconnect at once
            self.on_moved_out(moved)
        for conn in closing:
            conn.close(CloseCode.RESUME_ELSEWHERE, "your session moved: reconnect and resume")
        hub.moving -= moved_users
        self._adopt_ring(new)
        return moved

    def _adopt_ring(self, new: Shards) -> None:
        self.shards = new
        self._counts = {m: c for m, c in self._counts.items() if m in new.members}
        for key, hosts in list(self.remote_rooms.items()):  # rooms keep their ids; hosts move
            regrouped: dict[str, set[int]] = {}
            for ids in hosts.values():
                for rid in ids:
                    regrouped.setdefault(self.host(key[0], rid), set()).add(rid)
            regrouped.pop(self.me, None)
            if regrouped:
                self.remote_rooms[key] = regrouped
            else:
                del self.remote_rooms[key]
        self.homes = {k: new.home(*k) for k, _ in self.homes.items() if k not in self.hub.players}
        for zone in self.hub.zones.values():
            for uid in list(zone.users):
                key = (zone.name, uid)
                if key not in self.hub.players:
                    self.homes[key] = new.home(*key)
            if new.index >= 0:
                live = set(zone.rooms) | set(zone.remote_rooms)
                zone.use_room_ids(i for i in room_ids_for(new.index) if i not in live)

    async def _on_share(self, src: str, body: bytes) -> int:
        """Users, rooms and sessions that a ring change gave to this worker."""

        sender, (users, rooms, proxies, remote, raw_sessions, *more) = msgspec.msgpack.decode(body)
        hub = self.hub
        for zname, rs in rooms:
            zone = hub.zones[zname]
            rstate = msgspec.convert(rs, RoomState)
            old = zone.rooms.pop(rstate.id, None)  # a fresh configured copy, if any
            if old is not None:
                zone.rooms_by_name.pop(old.name, None)
            room = room_from(rstate)
            zone.rooms[room.id] = room
            zone.rooms_by_name[room.name] = room
            zone.remote_rooms.pop(room.id, None)
            for uid in room.members:  # our own users in it were remote members until now
                key = (zname, uid)
                if key in hub.players:
                    zone.users[uid].rooms.add(room.id)
                    hosts = self.remote_rooms.get(key)
                    if hosts is not None:
                        for ids in hosts.values():
                            ids.discard(room.id)
                        for h in [h for h, ids in hosts.items() if not ids]:
                            del hosts[h]
                        if not hosts:
                            del self.remote_rooms[key]
        for zname, us in users:
            zone = hub.zones[zname]
            st = msgspec.convert(us, UserState)
            mine = zone.users.get(st.id)  # a proxy of it (rooms hosted here), if any
            user = user_from(st)
            if mine is not None:
                user.rooms |= mine.rooms
            zone.users[user.id] = user
            for g in user.groups:
                zone.subscribers.setdefault(g, set()).add(user.id)
            self.homes.pop((zname, user.id), None)
        for zname, us in proxies:
            zone = hub.zones[zname]
            st = msgspec.convert(us, UserState)
            if (zname, st.id) in hub.players:
                continue
            proxy = zone.users.get(st.id)
            if proxy is None:
                proxy = user_from(msgspec.structs.replace(st, groups=[], rooms_created=[]))
                zone.users[proxy.id] = proxy
            else:
                proxy.rooms |= set(st.rooms)
            self.homes[(zname, st.id)] = self.shards.home(zname, st.id)
        for zname, uid, host, ids in remote:
            self.remote_rooms.setdefault((zname, uid), {}).setdefault(host, set()).update(ids)
        moved_in = msgspec.convert(raw_sessions, list[SessionState])
        import_sessions(hub, moved_in)
        if more and more[0]:  # their SmartFox sessions, for the clients' reconnections (HRC)
            from .transports.sfs2x_tcp import adopt_reconnections

            adopt_reconnections(hub, msgspec.convert(more[0], list[HrcState]))
        if self.on_moved_in is not None and moved_in:
            self.on_moved_in([s.resume_token for s in moved_in])
        for zname, rs in rooms:  # everyone's listing: these rooms are hosted here now
            if not rs["hidden"]:
                self._announce(zname, OutEvent("room_count", {"room": rs["id"]}))
        return len(raw_sessions)

    # -- handover (rolling restart: gameserver/handover.py) -------------------------------

    def export_state(
        self, events: int | None = None
    ) -> tuple[list[ZoneSnapshot], RoutingState, dict[str, Any], list[SessionState]]:
        """This worker's zones, routing maps, services' per-session state and sessions
        (with up to `events` events each; None: the handover's default)."""

        routing, services = self.export_routing()
        # SmartFox clients that can reconnect (HRC) take their sessions back at the successor
        services[SFS_HRC] = self.hub.sfs_reconnections.export()
        sessions = export_sessions(self.hub, EVENTS_PER_SESSION if events is None else events)
        return export_zones(self.hub), routing, services, sessions

    def export_routing(self) -> tuple[RoutingState, dict[str, Any]]:
        """The routing maps, and the services' per-session state (leaderboard subscriptions)."""
        routing = RoutingState(
            [(z, u, h) for (z, u), h in self.homes.items()],
            [
                (z, u, host, sorted(ids))
                for (z, u), hosts in self.remote_rooms.items()
                for host, ids in hosts.items()
            ],
            dict(self._guest_seq),
        )
        services = {
            type(svc).__name__: svc.handover_state()
            for svc in self.hub.service_list
            if hasattr(svc, "handover_state")
        }
        return routing, services

    def import_state(
        self, zones: list[ZoneSnapshot], routing: RoutingState, services: dict[str, Any]
    ) -> None:
        """The zones, routing maps and services' state of `export_state` (sessions apart)."""

        import_zones(self.hub, zones)
        for svc in self.hub.service_list:
            if hasattr(svc, "adopt_handover"):
                svc.adopt_handover(services.get(type(svc).__name__))
        self.homes = {(z, u): h for z, u, h in routing.homes}
        self.remote_rooms = {}
        for z, u, host, ids in routing.remote_rooms:
            self.remote_rooms.setdefault((z, u), {})[host] = set(ids)
        self._guest_seq.update(routing.guest_seq)
        for zone in self.hub.zones.values():
            top = max((rid for rid in zone.rooms if rid >= DYNAMIC_BASE), default=0)
            zone.use_room_ids(i for i in room_ids_for(self.shards.index) if i > top)
        hrc = services.get(SFS_HRC)
        if hrc:
            from .transports.sfs2x_tcp import adopt_reconnections

            adopt_reconnections(self.hub, msgspec.convert(hrc, list[HrcState]))

    async def hand_over(self, directory: str, timeout: float = 10.0) -> int:
        """Give this worker's sessions and rooms to its successor (listening as
        ``<me>.next`` in `directory`); stop talking on the bus. Returns sessions moved.

        Raises `BusError` if the successor did not take them (nothing is lost then: the
        sessions stay here and the clients log in again)."""
        from .bus import UnixBus

        hub = self.hub
        hub.frozen = True  # nothing changes after the copy
        zones, routing, services, sessions = self.export_state()
        await self.bus.close()  # from here on peers reach the successor (or retry)
        client = UnixBus(f"{self.me}.handover", directory, default_timeout=timeout)
        await client.start()
        try:
            target = f"{self.me}.next"
            await client.call(target, "adopt", ["zones", _enc.encode([zones, routing, services])], timeout)
            for part in chunks(sessions):
                await client.call(target, "adopt", ["sessions", _enc.encode(part)], timeout)
            await client.call(target, "adopt", ["done", b""], timeout)
        finally:
            await client.close()
        return len(sessions)

    async def _on_adopt(self, src: str, body: list[Any]) -> int:

        step, payload = body
        if step == "zones":
            zones, routing, services = msgspec.msgpack.decode(
                payload, type=tuple[list[ZoneSnapshot], RoutingState, dict[str, Any]]
            )
            self.import_state(zones, routing, services)
            return len(zones)
        if step == "sessions":
            return import_sessions(self.hub, msgspec.msgpack.decode(payload, type=list[SessionState]))
        await self._rebind()  # "done": take over the member's bus socket
        await self._serve(announce=False)  # the peers keep our users' proxies and rooms
        for zname, zone in self.hub.zones.items():  # refresh the others' listings of our rooms
            for room in zone.rooms.values():
                if not room.hidden:
                    self._announce(zname, OutEvent("room_count", {"room": room.id}))
        logger.info("took over %s: %d sessions", self.me, len(self.hub.players))
        return len(self.hub.players)

    # -- restore after a crash (gameserver/checkpoint.py) --------------------------------

    async def restore(self, cp: Checkpoint) -> int:
        """Start from the checkpoint of this member's crashed predecessor, then reconcile
        with the peers what changed after it. Returns the sessions restored."""

        from .checkpoint import complete

        hub = self.hub
        defaults = {name: list(z.config.default_groups) for name, z in hub.zones.items()}
        self.import_state(complete(cp, defaults), cp.routing, cp.services)
        mine = [s for s in cp.sessions if self.shards.home(s.zone, s.user_id) == self.me]
        import_sessions(hub, mine, restored=True)
        for zname, zone in hub.zones.items():  # users of the checkpoint without a session here
            for uid in [
                u for u in zone.users if (zname, u) not in hub.players and (zname, u) not in self.homes
            ]:
                outputs = zone.remove_user(uid)
                if outputs:
                    self.deliver(zname, outputs)
        users = [[z, u] for z, u in hub.players]
        peers = self._peers()
        for peer in peers:
            self.bus.cast(peer, "hello", {"restored": True})
        await asyncio.gather(*(self._read_directory(p) for p in peers))
        await asyncio.gather(*(self._reconcile(p, users) for p in peers))
        self.serving.set()
        logger.info("restored %s from its checkpoint: %d sessions", self.me, len(mine))
        return len(mine)

    async def _reconcile(self, peer: str, users: list[list[Any]]) -> None:
        """Agree with `peer` on room memberships after a restore: the host's rooms are the
        truth for who is in them, the home's session list for who exists."""
        try:
            reply = await self.bus.call(peer, "reconcile", users, self.timeout * 5)
        except BusError as exc:  # down: its own hello (when it starts) resets both sides
            logger.info("reconcile with %s skipped: %s", peer, exc)
            return
        theirs, ours = reply  # their users in our rooms, our users in their rooms
        hub = self.hub
        for key, hosts in list(self.remote_rooms.items()):
            hosts.pop(peer, None)
            if not hosts:
                del self.remote_rooms[key]
        for z, u, ids in ours:
            if (z, u) in hub.players and ids:
                self.remote_rooms.setdefault((z, u), {})[peer] = set(ids)
        truth = {(z, u): (set(ids), spec) for z, u, ids, spec in theirs}
        lost: list[list[Any]] = []
        for zname, zone in hub.zones.items():  # their users' proxies here: as they say
            for uid in [u for u in zone.users if self.homes.get((zname, u)) == peer]:
                user = zone.users[uid]
                want, _ = truth.pop((zname, uid), (set(), None))
                for rid in sorted(user.rooms - want):  # left after the checkpoint
                    self._sync_member(zname, uid, rid, join=False, lost=lost)
                for rid in sorted(want - user.rooms):  # joined after it
                    self._sync_member(zname, uid, rid, join=True, lost=lost)
                if not user.rooms:
                    self.homes.pop((zname, uid), None)
                    zone.drop_proxy_if_idle(uid)
        for (zname, uid), (ids, spec) in truth.items():  # no proxy in the checkpoint
            zone = hub.zones[zname]
            pid, name, role, public = spec
            proxy = zone.add_proxy(User(pid, name, Role(role)))
            proxy.variables = {v["name"]: msgspec.convert(v, m.Variable) for v in public}
            self.homes[(zname, uid)] = peer
            for rid in sorted(ids):
                self._sync_member(zname, uid, rid, join=True, lost=lost)
            if not proxy.rooms:
                self.homes.pop((zname, uid), None)
                zone.drop_proxy_if_idle(uid)
        if lost:
            self.bus.cast(peer, "lost", lost)

    def _sync_member(self, zname: str, uid: int, rid: int, *, join: bool, lost: list[list[Any]]) -> None:
        """Join or leave room `rid` for a remote user's proxy, announcing it to the room;
        a room that no longer exists (or is full) is `lost` for that user."""
        zone = self.hub.zones[zname]
        user = zone.users[uid]
        if rid not in zone.rooms:
            user.rooms.discard(rid)
            if join:
                lost.append([zname, uid, [rid]])
            return
        try:
            if join:
                _, outputs = zone.join_room(uid, rid, password=zone.rooms[rid].password)
            else:
                _, outputs = zone.leave_room(uid, rid)
        except RequestError:
            if join:
                lost.append([zname, uid, [rid]])
            return
        if outputs:
            self.deliver(zname, outputs)

    def _on_reconcile(self, src: str, body: list[Any]) -> list[Any]:
        """`src` restored a checkpoint: drop the proxies of its users that are gone, and
        tell it where our users are in its rooms and where its users are in ours."""
        hub = self.hub
        alive = {(z, u) for z, u in body}
        for key, home in list(self.homes.items()):
            if home == src and key not in alive:
                self._on_gone(src, list(key))
        theirs = [
            [z, u, sorted(hosts[src]), _user_spec(hub.zones[z].users[u])]
            for (z, u), hosts in self.remote_rooms.items()
            if hosts.get(src) and (z, u) in hub.players
        ]
        ours = []
        for (z, u), home in self.homes.items():
            if home == src:
                user = hub.zones[z].users.get(u)
                if user is not None and user.rooms:
                    ours.append([z, u, sorted(user.rooms)])
        return [theirs, ours]

    def _on_lost(self, src: str, body: list[Any]) -> None:
        """Rooms of `src` our users were in but that its restore does not have: they left."""
        hub = self.hub
        for zname, uid, ids in body:
            hosts = self.remote_rooms.get((zname, uid))
            if hosts is None or src not in hosts:
                continue
            hosts[src].difference_update(ids)
            if not hosts[src]:
                del hosts[src]
            if not hosts:
                del self.remote_rooms[(zname, uid)]
            player = hub.players.get((zname, uid))
            if player is not None:
                for rid in ids:
                    player.push(OutEvent("user_left", {"room": rid, "user": uid}))

    def new_guest_id(self, zone: str) -> int:
        """The next guest id of `zone` whose home is this worker (unique in the ring)."""
        from .hub import GUEST_ID_BASE

        seq = self._guest_seq.get(zone, GUEST_ID_BASE)
        while self.shards.home(zone, seq) != self.me:
            seq += 1
        self._guest_seq[zone] = seq + 1
        return seq

    def owns_user(self, zone: str, user_id: int) -> bool:
        return self.shards.home(zone, user_id) == self.me

    def _peers(self) -> list[str]:
        return [p for p in self.shards.members if p != self.me]

    # -- Router ------------------------------------------------------------------------

    def submit(self, zone: str, user_id: int, request: Any, reply: ReplyFn) -> None:
        if isinstance(request, m.ModeratorMessage | m.AdminMessage) and request.scope in ("group", "zone"):
            self._staff_broadcast(zone, user_id, request, reply)
            return
        if isinstance(request, m.ChangeRoom) and request.name is not None:
            # rooms live on the worker their name hashes to: a new name would point elsewhere
            reply(None, RequestError(ErrorCode.NOT_SUPPORTED, "rooms cannot be renamed in a cluster"))
            return
        if isinstance(request, m.FindUsers) and request.room is None:
            self._find_users_everywhere(zone, user_id, request, reply)
            return
        target = self._target(zone, request)
        if target is None or target == self.me:
            self._run_local(zone, user_id, request, reply)
            if isinstance(request, m.SetUserVariables):
                self._spread_user_variables(zone, user_id)
            return
        if isinstance(request, m.JoinRoom) and request.leave is not None:
            leave = request.leave
            request = msgspec.structs.replace(request, leave=None)

            def reply_then_leave(data: Any, error: RequestError | None) -> None:
                reply(data, error)
                if error is None:
                    self.submit(zone, user_id, m.LeaveRoom(id=0, room=leave), lambda d, e: None)

            self._call(target, zone, user_id, request, reply_then_leave)
            return
        self._call(target, zone, user_id, request, reply)

    def _roomless(self, zone: str) -> Callable[[int], bool]:
        """Whether a user is one of this worker's players and in no room, here or elsewhere."""
        players, z, remote = self.hub.players, self.hub.zones[zone], self.remote_rooms
        return lambda uid: (zone, uid) in players and not z.users[uid].rooms and (zone, uid) not in remote

    def _find_users_everywhere(self, zone: str, user_id: int, request: m.FindUsers, reply: ReplyFn) -> None:
        """A user search over a group or the zone: every worker looks at the rooms it hosts
        (and its players in no room); the union, by id."""
        try:
            data, _ = self.hub.zones[zone].find_users(
                user_id, None, request.group, request.where, request.limit, roomless=self._roomless(zone)
            )
        except RequestError as exc:
            reply(None, exc)
            return
        found: dict[int, UserView] = {v.id: v for v in data["users"]}
        peers = self._peers()
        if not peers:
            reply(data, None)
            return
        body = [zone, request.group, _enc.encode(request.where), request.limit]

        async def go() -> None:
            results = await asyncio.gather(
                *(self.bus.call(p, "fusers", body, self.timeout) for p in peers), return_exceptions=True
            )
            partial = False
            for peer, got in zip(peers, results, strict=True):
                if isinstance(got, BaseException):  # its users are left out; the others answer
                    logger.warning("user search at %s failed: %s", peer, got)
                    partial = True
                    continue
                for v in got:
                    view = msgspec.convert(v, UserView)
                    found.setdefault(view.id, view)
            data: dict[str, Any] = {"users": [found[uid] for uid in sorted(found)[: request.limit]]}
            if partial:
                data["partial"] = True  # a worker did not answer: some users may be missing
            reply(data, None)

        self._spawn(go())

    def _on_find_users(self, src: str, body: list[Any]) -> list[Any]:
        zname, group, raw, limit = body
        zone = self.hub.zones.get(zname)
        if zone is None:
            return []
        where = msgspec.msgpack.decode(raw, type=list[m.UserCondition])
        rooms = [r for r in zone.rooms.values() if not r.hidden and (group is None or r.group == group)]
        found = zone.users_in(where, rooms, self._roomless(zname) if group is None else None)
        return [found[uid] for uid in sorted(found)[:limit]]

    def _staff_broadcast(self, zone: str, user_id: int, request: Any, reply: ReplyFn) -> None:
        """A zone or group staff message: checked here, then every worker tells its part."""
        handler = ZONE_HANDLERS[type(request)]
        try:
            data, outputs = handler(self.hub.zones[zone], user_id, request, self.hub.clock.wall())
        except RequestError as exc:
            reply(None, exc)
            return
        reply(data, None)
        event = OutEvent(f"{'admin' if isinstance(request, m.AdminMessage) else 'moderator'}_message", None)
        for out in outputs:
            if isinstance(out, Send):
                event = out.event
        body = [zone, request.scope, request.target, event.name, event.data]
        self._on_staff(self.me, body)
        for peer in self._peers():
            self.bus.cast(peer, "staff", body)

    def session_ended(self, zone: str, user_id: int) -> None:
        """The user's session ended here: leave the rooms hosted elsewhere."""
        hosts = self.remote_rooms.pop((zone, user_id), None)
        for host in hosts or ():
            self.bus.cast(host, "gone", [zone, user_id])

    def host(self, zone: str, ref: int | str) -> str:
        """The worker hosting room `ref`: by name, through this worker's own rooms and
        its listing of the others' (a room keeps its id when a ring change moves it)."""
        if isinstance(ref, int):
            z = self.hub.zones[zone]
            room = z.rooms.get(ref)
            if room is not None:
                return self.me
            view = z.remote_rooms.get(ref)
            if view is not None:
                return self.shards.host_by_name(zone, view.name)
        return self.shards.host(zone, ref)

    def _target(self, zone: str, r: Any) -> str | None:
        s = self.shards
        if isinstance(r, m.JoinRoom):
            return self.host(zone, r.room)
        if isinstance(r, m.CreateRoom):
            return s.host_by_name(zone, r.name)
        if isinstance(r, m.FindUsers) and r.room is not None:
            return self.host(zone, r.room)
        if isinstance(r, m.LeaveRoom | m.SwitchRole | m.ChangeRoom | m.PublicMessage | m.SetRoomVariables):
            return self.host(zone, r.room)
        if isinstance(r, m.ObjectMessage):
            return self.host(zone, r.room)
        if isinstance(r, m.PrivateMessage):
            return s.home(zone, r.to)
        if isinstance(r, m.Kick | m.Ban):
            return s.home(zone, r.user)
        if isinstance(r, m.ModeratorMessage | m.AdminMessage):  # user or room scope
            if r.scope == "user" and isinstance(r.target, int):
                return s.home(zone, r.target)
            if r.scope == "room" and r.target is not None:
                return self.host(zone, r.target)
        return None  # list_rooms, subscriptions, user variables: the home zone

    def _run_local(self, zone: str, user_id: int, request: Any, reply: ReplyFn) -> None:
        hub = self.hub
        handler = ZONE_HANDLERS[type(request)]
        try:
            data, outputs = handler(hub.zones[zone], user_id, request, hub.clock.wall())
        except RequestError as exc:
            reply(None, exc)
            return
        reply(data, None)
        if outputs:
            self.deliver(zone, outputs)
        if hub.zone_state is not None:
            hub.zone_state.after(zone, user_id, request, data, outputs)

    def _call(self, target: str, zone: str, user_id: int, request: Any, reply: ReplyFn) -> None:
        user = self.hub.zones[zone].user(user_id)
        body = [zone, _user_spec(user), _enc.encode(request)]

        async def go() -> None:
            try:
                result = await self.bus.call(target, "op", body, self.timeout)
            except RemoteError as exc:
                if exc.code is not None:
                    reply(None, RequestError(ErrorCode(exc.code), exc.message))
                else:
                    reply(None, RequestError(ErrorCode.INTERNAL, "internal error"))
                return
            except BusError as exc:
                logger.warning("room request to %s failed: %s", target, exc)
                reply(
                    None,
                    RequestError(
                        ErrorCode.UNAVAILABLE, f"the room's worker did not answer ({exc.name}): retry"
                    ),
                )
                return
            data, rooms = result
            key = (zone, user_id)
            if key in self.hub.players or self.hub.players.get(key) is not None:
                hosts = self.remote_rooms.setdefault(key, {})
                if rooms:
                    hosts[target] = set(rooms)
                else:
                    hosts.pop(target, None)
                    if not hosts:
                        del self.remote_rooms[key]
            else:  # the session ended while the call was in flight
                self.bus.cast(target, "gone", [zone, user_id])
            reply(data, None)

        self._spawn(go())

    def _spread_user_variables(self, zone: str, user_id: int) -> None:
        hosts = self.remote_rooms.get((zone, user_id))
        if not hosts:
            return
        user = self.hub.zones[zone].users.get(user_id)
        if user is None:
            return
        public = [v for v in user.variables.values() if not v.private]
        for host in hosts:
            self.bus.cast(host, "uvars", [zone, user_id, public])

    # -- fan-out -----------------------------------------------------------------------

    def deliver(self, zone: str, outputs: list[Output]) -> None:
        """Local sessions get theirs; remote members one cast per home; lists to all."""
        hub = self.hub
        hub.deliver(zone, outputs)
        players = hub.players
        homes = self.homes
        remote: dict[str, list[Any]] = defaultdict(list)
        for out in outputs:
            if isinstance(out, Send):
                event = out.event
                if event.name in _LIST_EVENTS:
                    self._announce(zone, event)
                elif event.name == "room_variables":  # the others' listings: at the next sweep
                    self._relist.add((zone, event.data["room"]))
                by_home: dict[str, list[int]] = {}
                for uid in out.recipients:
                    if (zone, uid) in players:
                        continue
                    home = homes.get((zone, uid))
                    if home is not None:
                        by_home.setdefault(home, []).append(uid)
                for home, uids in by_home.items():
                    remote[home].append([uids, event.name, event.data])
            elif isinstance(out, Disconnect) and (zone, out.user_id) not in players:
                home = homes.get((zone, out.user_id)) or self.shards.home(zone, out.user_id)
                self.bus.cast(home, "disconnect", [zone, out.user_id, int(out.code), out.reason])
        for home, items in remote.items():
            self.bus.cast(home, "deliver", [zone, items])

    def _announce(self, zone: str, event: OutEvent) -> None:
        data = event.data
        if event.name == "room_changed" and data["room"].hidden:
            return  # hidden rooms are not listed anywhere
        if event.name == "room_count":  # others need the whole listing entry
            room = self.hub.zones[zone].rooms.get(data["room"])
            if room is None:
                return
            data = {"room": room.view()}
        for peer in self._peers():
            self.bus.cast(peer, "dir", [zone, event.name, data])

    def sweep(self) -> None:
        """Room counts, coalesced, to local subscribers and every other worker; our
        sessions per zone to the others (zone `max_users` counts every worker's)."""
        for name, zone in self.hub.zones.items():
            counts = zone.flush_counts(always=True)
            if counts:
                self.deliver(name, counts)
        relist, self._relist = self._relist, set()
        for name, rid in sorted(relist):
            room = self.hub.zones[name].rooms.get(rid)
            if room is not None and not room.hidden:
                for peer in self._peers():
                    self.bus.cast(peer, "dir", [name, "room_listing", {"room": room.view()}])
        players = self.hub.players
        zones = self.hub.zones
        # one zone (the usual case): no pass over every session
        sessions = {next(iter(zones)): len(players)} if len(zones) == 1 else Counter(z for z, _ in players)
        for name, zone in self.hub.zones.items():
            self._sampled[name] = (sessions.get(name, 0), zone.logins)
        self._sweeps += 1
        mine = {name: sessions.get(name, 0) for name in self.hub.zones}
        if mine != self._sent or self._sweeps % 10 == 0:
            self._sent = mine
            for peer in self._peers():
                self.bus.cast(peer, "zcount", mine)

    def _population(self, zname: str, zone: Zone) -> Callable[[], int]:
        """Sessions of `zname` on every worker: ours at the last sweep plus the logins
        since (logouts since are not subtracted), plus the others' last counts."""

        def population() -> int:
            ours, logins = self._sampled.get(zname, (0, zone.logins))
            others = sum(c.get(zname, 0) for m, c in self._counts.items() if m != self.me)
            return ours + (zone.logins - logins) + others

        return population

    def _on_zcount(self, src: str, body: dict[str, int]) -> None:
        self._counts[src] = body

    # -- bus handlers (run on the receiving worker) --------------------------------------

    def _on_op(self, src: str, body: list[Any]) -> list[Any]:
        zname, spec, raw = body
        hub = self.hub
        zone = hub.zones[zname]
        request = _dec_request.decode(raw)
        uid, name, role, public = spec
        key = (zname, uid)
        if key not in hub.players:
            proxy = zone.add_proxy(User(uid, name, Role(role)))
            if proxy is not None and not proxy.rooms:
                proxy.variables = {v["name"]: msgspec.convert(v, m.Variable) for v in public}
            self.homes[key] = src
        handler = ZONE_HANDLERS[type(request)]
        try:
            data, outputs = handler(zone, uid, request, hub.clock.wall())
            if outputs:
                self.deliver(zname, outputs)  # before a transient proxy is dropped
        finally:
            rooms: list[int] = []
            if key not in hub.players:
                zone.drop_proxy_if_idle(uid)
                user = zone.users.get(uid)
                if user is None:
                    self.homes.pop(key, None)
                else:
                    rooms = sorted(user.rooms)
        if hub.zone_state is not None:
            hub.zone_state.after(zname, uid, request, data, outputs)
        return [data, rooms]

    def _on_deliver(self, src: str, body: list[Any]) -> None:
        zone, items = body
        players = self.hub.players
        pushed = 0
        for uids, name, data in items:
            event = OutEvent(name, data)
            for uid in uids:
                player = players.get((zone, uid))
                if player is not None:
                    player.push(event)
                    pushed += 1
        self.hub.counters.events += pushed

    def _on_disconnect(self, src: str, body: list[Any]) -> None:
        zone, uid, code, reason = body
        self.hub.deliver(zone, [Disconnect(uid, CloseCode(code), reason)])

    def _on_gone(self, src: str, body: list[Any]) -> None:
        zone, uid = body
        key = (zone, uid)
        if key in self.hub.players:
            return  # the user lives here now
        self.homes.pop(key, None)
        outputs = self.hub.zones[zone].remove_user(uid)
        if outputs:
            self.deliver(zone, outputs)

    def _on_uvars(self, src: str, body: list[Any]) -> None:
        zone, uid, public = body
        variables = [msgspec.convert(v, m.Variable) for v in public]
        outputs = self.hub.zones[zone].proxy_variables(uid, variables)
        if outputs:
            self.deliver(zone, outputs)

    def _on_dir(self, src: str, body: list[Any]) -> None:
        zname, event, data = body
        zone = self.hub.zones.get(zname)
        if zone is not None:
            outputs = zone.apply_remote(event, data)
            if outputs and event == "room_changed":  # its members had it from the host
                rid = data["room"]["id"]
                joined = self.remote_rooms
                outputs = [
                    Send(tuple(u for u in o.recipients if not _in_room(joined.get((zname, u)), rid)), o.event)
                    if isinstance(o, Send)
                    else o
                    for o in outputs
                ]
            if outputs:
                self.hub.deliver(zname, outputs)  # local subscribers only: no echo

    def _on_dir_full(self, src: str, body: Any) -> dict[str, list[Any]]:
        return {
            name: [r.view() for r in zone.rooms.values() if not r.hidden]
            for name, zone in self.hub.zones.items()
        }

    def _on_hello(self, src: str, body: Any) -> None:
        """`src` (re)started: its sessions and rooms are gone; read its room list.

        ``{"restored": true}``: it restored its checkpoint (gameserver/checkpoint.py), so
        its sessions and rooms continue; `reconcile` follows. Only its room list is read
        again, dropping the rooms it no longer has."""
        if isinstance(body, dict) and body.get("restored"):
            self._spawn(self._read_directory(src, replace=True))
            return
        for key, home in list(self.homes.items()):
            if home == src:
                self._on_gone(src, list(key))
        for zname, zone in self.hub.zones.items():
            for rid in [rid for rid in zone.remote_rooms if self._hosted_by(zname, rid) == src]:
                outputs = zone.apply_remote("room_removed", {"room": rid})
                if outputs:
                    self.hub.deliver(zname, outputs)
        for key, hosts in list(self.remote_rooms.items()):
            hosts.pop(src, None)
            if not hosts:
                del self.remote_rooms[key]
        self._spawn(self._read_directory(src))

    def _on_staff(self, src: str, body: list[Any]) -> None:
        """Zone scope: this worker's sessions; group scope: members of rooms hosted here."""
        zname, scope, target, name, data = body
        zone = self.hub.zones.get(zname)
        if zone is None:
            return
        event = OutEvent(name, data)
        if scope == "zone":
            recipients = [uid for (z, uid) in self.hub.players if z == zname]
            self.hub.deliver(zname, [Send(recipients, event)])
        else:
            members = {uid for r in zone.rooms.values() if r.group == target for uid in r.members}
            if members:
                self.deliver(zname, [Send(members, event)])

    def _hosted_by(self, zone: str, room_id: int) -> str | None:
        try:
            return self.host(zone, room_id)
        except RequestError:
            return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def attach_router(
    hub: Hub,
    me: str,
    members: list[str],
    bus: Bus,
    timeout: float = 2.0,
    takeover: float = 0.0,
    checkpoint: Checkpoint | None = None,
) -> ShardedRouter:
    """Start `bus` and make `hub` the worker `me` of the ring `members`.

    Call it before the worker accepts sessions (with `takeover`, wait for
    `router.serving`: see `ShardedRouter.start`); `ShardedRouter.close()` when it stops.
    """
    await bus.start()
    router = ShardedRouter(hub, me, members, bus, timeout)
    hub.router = router
    await router.start(takeover, checkpoint)
    return router


async def join_ring(
    hub: Hub, me: str, members: list[str], bus_url: str, timeout: float = 2.0, prefix: str = "croupier:bus:"
) -> ShardedRouter:
    """`attach_router` with a bus opened from a URL: ``unix:///dir`` (the workers of one
    node) or ``redis://...`` (across nodes)."""
    return await attach_router(hub, me, members, open_bus(me, bus_url, prefix), timeout)
