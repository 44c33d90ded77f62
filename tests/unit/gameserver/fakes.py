"""Test doubles for the gameserver: a recording transport link and a hub factory."""

from __future__ import annotations

import json
from typing import Any

from gameserver.clock import ManualClock
from gameserver.config import Config, LimitsSection
from gameserver.connection import Connection
from gameserver.hub import Hub
from protocol.codec import JSON
from rooms.config import RoomConfig, ZoneConfig

SECRET = "test-secret"


class FakeLink:
    """Records what the hub writes and how it closes."""

    kind = "fake"

    def __init__(self) -> None:
        self.peer = "test"
        self.written: list[dict[str, Any]] = []
        #: the number of messages in each write call, in order
        self.writes: list[int] = []
        self.closed: tuple[int, str] | None = None
        self.backlog = 0

    def write(self, payloads: list[bytes]) -> None:
        self.writes.append(len(payloads))
        self.written.extend(json.loads(p) for p in payloads)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def abort(self) -> None:
        self.closed = (0, "aborted")

    def buffered(self) -> int:
        return self.backlog

    def take(self) -> list[dict[str, Any]]:
        out, self.written = self.written, []
        return out

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.take() if m["type"] == "event" and (name is None or m["event"] == name)]


class Client:
    """A connection on a hub, fed JSON objects, flushed by hand."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.link = FakeLink()
        self.conn = Connection(hub, self.link, JSON)
        hub.connection_made(self.conn)
        self._next = 1

    def send(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Send a request (an id is added) and return its reply, if one was written."""
        rid = obj.setdefault("id", self._next)
        self._next += 1
        self.conn.message_received(json.dumps(obj).encode(), False)
        self.hub.flush()
        for i, m in enumerate(self.link.written):
            if m["type"] in ("ok", "error") and m.get("id") == rid:
                return self.link.written.pop(i)
        return None

    def drop(self, peer_code: int | None = None) -> None:
        """The network connection dies."""
        self.conn.connection_lost(peer_code)


def make_hub(**limits: Any) -> tuple[Hub, ManualClock]:
    zone = ZoneConfig(
        name="demo",
        guests=True,
        room_creation="everyone",
        groups=["default", "slots"],
        rooms=[RoomConfig("Lobby"), RoomConfig("Table", group="slots", game=True, max_users=1)],
    )
    config = Config(
        limits=LimitsSection(**limits),
        zones=[zone, ZoneConfig(name="closed", guests=False, rooms=[RoomConfig("Lobby")])],
    )
    config = Config(limits=config.limits, zones=config.zones, auth=type(config.auth)(secret=SECRET))
    clock = ManualClock()
    return Hub(config, clock, call_soon=lambda fn: None), clock
