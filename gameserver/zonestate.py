"""Zone state that outlives a restart: bans, persistent room and user variables, the audit trail.

Bans and room variables are loaded once at start-up; a user's persistent variables when
the user logs in (they arrive as a `user_variables` event right after the login reply).
Changes are written after the zone applied them:
- persistent variables of configured rooms and of registered users through the
  coalescing write-behind (docs/persistence.md: a hard crash can lose about the last
  second of them);
- bans (blacklist) and moderation actions (hash-chained audit log) as soon as possible,
  in background tasks that `close()` waits for.
User-created rooms are ephemeral (they go when empty), so their variables are not kept;
nor are guests' (guest ids are handed out again after a restart).

ZoneState is registered on the hub as a service without request types, for the
session hooks (`player_joined`, `drain`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

import msgspec

from persistence import PersistenceError, Stores
from persistence.records import AuditEntry, Ban, VarDelete, Variable as StoredVariable, VarPut, VarScope
from protocol import messages as m
from protocol.errors import RequestError
from rooms.outputs import Output, Send

from .hub import GUEST_ID_BASE

if TYPE_CHECKING:
    from .hub import Hub
    from .player import Player

logger = logging.getLogger("croupier.zonestate")
_enc = msgspec.msgpack.Encoder().encode
_dec_var = msgspec.msgpack.Decoder(m.Variable).decode


def room_owner(zone: str, room_name: str) -> str:
    return f"{zone}:{room_name}"


def user_owner(zone: str, user_id: int) -> str:
    return f"{zone}:{user_id}"


class ZoneState:
    #: no requests of its own: registered on the hub for the session hooks
    request_types: frozenset[type] = frozenset()

    def __init__(self, hub: Hub, stores: Stores) -> None:
        self.hub = hub
        self.stores = stores
        self._tasks: set[asyncio.Task[None]] = set()
        self._restoring: m.SetUserVariables | None = None

    async def load(self) -> None:
        """Bring back bans and the persistent variables of configured rooms."""
        now_ms = int(self.hub.clock.wall() * 1000)
        for name, zone in self.hub.zones.items():
            for ban in await self.stores.blacklist.list_bans(name, now=now_ms):
                if ban.kind == "user" and ban.value.isdigit():
                    zone.bans[int(ban.value)] = ban.until / 1000 if ban.until else math.inf
            for room in zone.rooms.values():
                if not room.static:
                    continue
                for stored in await self.stores.variables.load_variables(
                    VarScope.ROOM, room_owner(name, room.name)
                ):
                    try:
                        var = _dec_var(stored.value)
                    except msgspec.MsgspecError:
                        logger.warning("skipping unreadable variable %s of room %s", stored.name, room.name)
                        continue
                    room.variables[var.name] = var

    # -- service hooks (gameserver/services.py) -----------------------------------------

    def handle(self, player: Player, req: Any) -> None:
        raise LookupError("zone state handles no requests")

    def player_joined(self, player: Player) -> None:
        """Start restoring a registered user's persistent variables."""
        if player.user_id < GUEST_ID_BASE:
            self._spawn(self._restore_user(player))

    def player_left(self, player: Player) -> None:
        return None

    async def drain(self) -> None:
        await self.close()

    async def _restore_user(self, player: Player) -> None:
        """Load the user's variables and set them through the router, as if the user had.

        The zone then sends the usual `user_variables` events (to the user; public ones
        to its room peers, on every worker). A variable the user set in the meantime
        wins over the stored one.
        """
        zone_name, uid = player.zone, player.user_id
        try:
            async with asyncio.timeout(5.0):
                stored = await self.stores.load_variables(VarScope.USER, user_owner(zone_name, uid))
        except (PersistenceError, TimeoutError) as exc:
            logger.warning("could not load the variables of %s/%s: %s", zone_name, uid, exc)
            return
        if not stored or self.hub.players.get((zone_name, uid)) is not player:
            return  # nothing kept, or the session already ended
        zone = self.hub.zones.get(zone_name)
        user = zone.users.get(uid) if zone is not None else None
        current = user.variables if user is not None else {}
        restored = []
        for item in stored:
            try:
                var = _dec_var(item.value)
            except msgspec.MsgspecError:
                logger.warning("skipping unreadable variable %s of user %s/%s", item.name, zone_name, uid)
                continue
            if var.name not in current and var.value is not None:
                restored.append(var)
        if not restored:
            return

        def reply(data: Any, error: RequestError | None) -> None:
            if error is not None:  # e.g. the zone's limits shrank since they were saved
                logger.warning("could not restore the variables of %s/%s: %s", zone_name, uid, error.message)

        req = m.SetUserVariables(id=0, variables=restored)
        self._restoring = req  # `after` need not write back what was just loaded
        try:
            self.hub.router.submit(zone_name, uid, req, reply)
        finally:
            self._restoring = None

    # -- recording changes ---------------------------------------------------------------

    def after(self, zone: str, user_id: int, request: Any, data: Any, outputs: list[Output]) -> None:
        """Record what a successful zone operation changed (called by the router)."""
        if isinstance(request, m.SetRoomVariables):
            self._room_variables(zone, request.room, outputs)
        elif (
            isinstance(request, m.SetUserVariables)
            and user_id < GUEST_ID_BASE
            and request is not self._restoring
        ):
            self._user_variables(zone, user_id, outputs)
        elif isinstance(request, m.Ban) and request.user < GUEST_ID_BASE:
            # (guest ids are handed out again after a restart: their bans end with the process)
            until = float(data["until"])
            ban = Ban(
                zone=zone,
                kind="user",
                value=str(request.user),
                until=int(until * 1000),
                reason=request.reason,
                created_by=str(user_id),
                created_at=int(self.hub.clock.wall() * 1000),
            )
            self._spawn(self._ban(ban))
        if isinstance(request, m.Ban | m.Kick):
            action = "ban" if isinstance(request, m.Ban) else "kick"
            entry = AuditEntry(
                actor=f"{zone}:{user_id}",
                action=action,
                target=f"{zone}:{request.user}",
                reason=request.reason,
                request_id=str(request.id),
                at=int(self.hub.clock.wall() * 1000),
            )
            self._spawn(self._audit(entry))

    def _room_variables(self, zone: str, room_id: int, outputs: list[Output]) -> None:
        room = self.hub.zones[zone].rooms.get(room_id)
        if room is None or not room.static:
            return
        owner = room_owner(zone, room.name)
        now_ms = int(self.hub.clock.wall() * 1000)
        for out in outputs:
            if not isinstance(out, Send) or out.event.name != "room_variables":
                continue
            for var in out.event.data["variables"]:
                self._put_variable(VarScope.ROOM, owner, var, now_ms)

    def _user_variables(self, zone: str, user_id: int, outputs: list[Output]) -> None:
        owner = user_owner(zone, user_id)
        now_ms = int(self.hub.clock.wall() * 1000)
        for out in outputs:
            # the event to the user itself lists every change (peers see only public ones)
            if not isinstance(out, Send) or out.event.name != "user_variables" or out.recipients != [user_id]:
                continue
            for var in out.event.data["variables"]:
                self._put_variable(VarScope.USER, owner, var, now_ms)
            return

    def _put_variable(self, scope: VarScope, owner: str, var: m.Variable, now_ms: int) -> None:
        try:
            if var.value is not None and var.persistent:
                stored = StoredVariable(
                    scope=scope, owner=owner, name=var.name, value=_enc(var), updated_at=now_ms
                )
                self.stores.put_later(VarPut(var=stored))
            else:  # deleted, or no longer persistent
                self.stores.put_later(VarDelete(scope=scope, owner=owner, name=var.name))
        except PersistenceError as exc:  # write-behind full (database down for long) or closed
            logger.warning("variable %s of %s not saved: %s", var.name, owner, exc)

    async def _ban(self, ban: Ban) -> None:
        await self.stores.blacklist.add_ban(ban)

    async def _audit(self, entry: AuditEntry) -> None:
        await self.stores.audit.append(entry)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("could not store a moderation record: %r", task.exception())

    async def close(self) -> None:
        """Wait for the bans and audit records still being written."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
