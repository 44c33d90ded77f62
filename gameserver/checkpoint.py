"""Checkpoints of a worker's sessions and rooms, so that users resume after a crash.

A cluster worker writes, every `cluster.checkpoint_interval` seconds, what a rolling
restart would hand over (gameserver/handover.py) minus the event logs: its zones (users,
proxies, hosted rooms with members and variables), its sessions (resume token, session
id, last event seq), its routing maps and the services' per-session state. It goes to one
file per member and process generation in the node's run directory (written to a
temporary name, then renamed: a reader sees a whole checkpoint or the previous one).

When the supervisor restarts a worker that died (SIGKILL, a crash, a fenced stall), the
new process restores the checkpoint of its member if it is younger than the resume
grace and was taken on the same ring. The clients reconnect with their resume tokens and
keep their session and rooms; the resume reply says ``gap: true`` because the events
sent after the checkpoint are gone (docs/cluster.md). Sessions that logged in after the
last checkpoint log in again. Money is not part of it: it is in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from rooms.snapshot import UserState, ZoneSnapshot, room_state, user_state

from .handover import RoutingState, SessionState
from .player import Player

if TYPE_CHECKING:
    from .sharding import ShardedRouter

logger = logging.getLogger("croupier.checkpoint")


class Checkpoint(msgspec.Struct, frozen=True):
    member: str
    generation: int
    #: wall-clock seconds when it was taken
    taken_at: float
    #: the ring it was taken on (a checkpoint of another ring is not restored)
    members: list[str]
    #: the zones, without the *plain* local users (no variables, the default groups, no
    #: created rooms): `complete` rebuilds those from `sessions` and the rooms' members
    zones: list[ZoneSnapshot]
    routing: RoutingState
    services: dict[str, Any]
    #: without events or last seq (the resume after a restore numbers on from the client's)
    sessions: list[SessionState]


class _CheckpointOut(msgspec.Struct, frozen=True):
    """`Checkpoint` as written: the sessions are encoded once per session and reused."""

    member: str
    generation: int
    taken_at: float
    members: list[str]
    zones: list[ZoneSnapshot]
    routing: RoutingState
    services: dict[str, Any]
    sessions: list[msgspec.Raw]


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Checkpoint)
#: (zone, user) -> (the session, its encoded SessionState)
SessionCache = dict[tuple[str, int], tuple[Player, msgspec.Raw]]


def take(router: ShardedRouter, generation: int, now: float, cache: SessionCache) -> bytes:
    """The router's state now, encoded. Sessions and plain users cost a dict lookup each
    (their part does not change during a session); rooms and the rest are copied."""
    hub = router.hub
    players = hub.players
    zones = []
    for zname, zone in hub.zones.items():
        defaults = set(zone.config.default_groups)
        users = [
            user_state(u)
            for uid, u in zone.users.items()
            if (zname, uid) not in players or u.variables or u.rooms_created or u.groups != defaults
        ]
        zones.append(
            ZoneSnapshot(
                zname,
                users,
                [room_state(r) for r in zone.rooms.values()],
                sorted(zone.groups),
                dict(zone.bans),
                max((r.id for r in zone.rooms.values()), default=0),
            )
        )
    raw = []
    for key, p in players.items():
        hit = cache.get(key)
        if hit is None or hit[0] is not p:
            state = SessionState(p.zone, p.user_id, p.name, int(p.role), p.resume_token, p.session_id, 0, [])
            hit = cache[key] = (p, msgspec.Raw(_enc.encode(state)))
        raw.append(hit[1])
    if len(cache) > 2 * len(players) + 1024:  # ended sessions
        for key in [k for k in cache if k not in players]:
            del cache[key]
    routing, services = router.export_routing()
    out = _CheckpointOut(
        router.me, generation, now, list(router.shards.members), zones, routing, services, raw
    )
    return _enc.encode(out)


def complete(cp: Checkpoint, default_groups: dict[str, list[str]]) -> list[ZoneSnapshot]:
    """The checkpoint's zones with the plain users of its sessions put back (members of
    the rooms they are in, subscribed to the zone's default groups)."""
    out = []
    for snap in cp.zones:
        listed = {u.id for u in snap.users}
        rooms_of: dict[int, list[int]] = {}
        for r in snap.rooms:
            for uid, _ in r.players:
                rooms_of.setdefault(uid, []).append(r.id)
            for uid in r.spectators:
                rooms_of.setdefault(uid, []).append(r.id)
        groups = sorted(default_groups.get(snap.name, []))
        plain = [
            UserState(s.user_id, s.name, s.role, [], sorted(rooms_of.get(s.user_id, [])), groups, [])
            for s in cp.sessions
            if s.zone == snap.name and s.user_id not in listed
        ]
        out.append(msgspec.structs.replace(snap, users=snap.users + plain))
    return out


class CheckpointFiles:
    """A member's checkpoints in `directory`, one file per process generation
    (``<member>.<generation>.ckpt``): a stalled predecessor that wakes up and writes once
    more before it sees it is fenced cannot overwrite its successor's checkpoint."""

    def __init__(self, directory: str, member: str, generation: int) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.member = member
        self.generation = generation
        self.path = self._path(generation)

    def _path(self, generation: int) -> str:
        return os.path.join(self.directory, f"{self.member}.{generation}.ckpt")

    def _generations(self) -> list[int]:
        out = []
        prefix = f"{self.member}."
        for name in os.listdir(self.directory):
            if name.startswith(prefix) and name.endswith(".ckpt"):
                gen = name[len(prefix) : -len(".ckpt")]
                if gen.isdigit():
                    out.append(int(gen))
        return sorted(out)

    def write(self, data: bytes) -> None:
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path)

    def read_previous(self) -> bytes | None:
        """The newest checkpoint of an earlier generation of this member, if any."""
        for gen in reversed(self._generations()):
            if gen < self.generation:
                try:
                    with open(self._path(gen), "rb") as f:
                        return f.read()
                except FileNotFoundError:
                    continue
        return None

    def remove_older(self) -> None:
        """Drop the predecessors' checkpoints (ours supersedes them)."""
        for gen in self._generations():
            if gen < self.generation:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(gen))

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def load(files: CheckpointFiles, members: list[str], max_age: float, now: float) -> Checkpoint | None:
    """The newest checkpoint of an earlier process of this member, if it can be restored:
    whole, taken on the same ring, and younger than `max_age` seconds."""
    raw = files.read_previous()
    if raw is None:
        return None
    try:
        cp = _dec.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        logger.warning("checkpoint of %s unreadable (%s): starting fresh", files.member, exc)
        return None
    age = now - cp.taken_at
    if cp.members != sorted(members) or not 0 <= age <= max_age:
        logger.info("checkpoint of %s not restored (another ring, or %.1f s old)", files.member, age)
        return None
    return cp


class Checkpointer:
    """Writes the worker's checkpoint every `interval` seconds while `may_write()`."""

    def __init__(
        self,
        router: ShardedRouter,
        files: CheckpointFiles,
        interval: float,
        may_write: Callable[[], bool],
    ) -> None:
        self.router = router
        self.files = files
        self.interval = interval
        self.may_write = may_write
        self.written = 0
        #: seconds the last checkpoint took to build and encode on the event loop
        self.last_encode_s = 0.0
        self.last_bytes = 0
        self._cache: SessionCache = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(Exception):
                await self.write_once()

    async def write_once(self) -> bool:
        """Take and write one checkpoint (False if writing is not allowed now)."""
        router = self.router
        if not self.may_write() or router.hub.frozen or not router.serving.is_set():
            return False
        t0 = time.perf_counter()
        data = take(router, self.files.generation, time.time(), self._cache)
        self.last_encode_s = time.perf_counter() - t0
        self.last_bytes = len(data)
        await asyncio.to_thread(self.files.write, data)
        if self.written == 0:
            await asyncio.to_thread(self.files.remove_older)
        self.written += 1
        return True

    async def stop(self, remove: bool) -> None:
        """Stop writing; `remove`: delete the checkpoint (a clean exit ended the sessions)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if remove:
            self.files.remove()
