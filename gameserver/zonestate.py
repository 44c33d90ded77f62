"""Zone state that outlives a restart: bans, persistent room variables, the audit trail.

Loaded once at start-up; changes are written after the zone applied them:
- persistent variables of configured rooms through the coalescing write-behind
  (docs/persistence.md: a hard crash can lose about the last second of them);
- bans (blacklist) and moderation actions (hash-chained audit log) as soon as possible,
  in background tasks that `close()` waits for.
User-created rooms are ephemeral (they go when empty), so their variables are not kept.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

import msgspec

from persistence import Stores
from persistence.records import AuditEntry, Ban, VarDelete, Variable as StoredVariable, VarPut, VarScope
from protocol import messages as m
from rooms.outputs import Output, Send

from .hub import GUEST_ID_BASE

if TYPE_CHECKING:
    from .hub import Hub

logger = logging.getLogger("croupier.zonestate")
_enc = msgspec.msgpack.Encoder().encode
_dec_var = msgspec.msgpack.Decoder(m.Variable).decode


def room_owner(zone: str, room_name: str) -> str:
    return f"{zone}:{room_name}"


class ZoneState:
    def __init__(self, hub: Hub, stores: Stores) -> None:
        self.hub = hub
        self.stores = stores
        self._tasks: set[asyncio.Task[None]] = set()

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

    def after(self, zone: str, user_id: int, request: Any, data: Any, outputs: list[Output]) -> None:
        """Record what a successful zone operation changed (called by the router)."""
        if isinstance(request, m.SetRoomVariables):
            self._room_variables(zone, request.room, outputs)
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
                if var.value is not None and var.persistent:
                    stored = StoredVariable(
                        scope=VarScope.ROOM, owner=owner, name=var.name, value=_enc(var), updated_at=now_ms
                    )
                    self.stores.put_later(VarPut(var=stored))
                else:  # deleted, or no longer persistent
                    self.stores.put_later(VarDelete(scope=VarScope.ROOM, owner=owner, name=var.name))

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
