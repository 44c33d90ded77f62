"""Coverage-guided fuzzing of the session and dispatcher with atheris (libFuzzer).

Each input is cut into messages fed through a real Hub, over two fake links (one JSON,
one MessagePack session, both logged in). A run fails on any exception escaping the
session or hub, or on a reply with an undocumented or internal error code. Bounded:

    python tests/fuzz/atheris_session.py -max_total_time=60 -rss_limit_mb=512 -timeout=1

(`make fuzz`; tests/fuzz/test_atheris.py runs it for a short time in the suite).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

with atheris.instrument_imports():
    import msgspec

    from gameserver.clock import ManualClock
    from gameserver.config import Config
    from gameserver.connection import Connection
    from gameserver.hub import Hub
    from protocol.codec import JSON, MSGPACK, Codec
    from protocol.codes import ErrorCode
    from rooms.config import RoomConfig, ZoneConfig

ALLOWED = {int(c) for c in ErrorCode} - {int(ErrorCode.INTERNAL)}


class Link:
    kind = "fuzz"
    peer = "fuzz"

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.written: list[Any] = []

    def write(self, payloads: list[bytes]) -> None:
        mod = msgspec.msgpack if self.codec.binary else msgspec.json
        self.written.extend(mod.decode(p) for p in payloads)

    def close(self, code: int, reason: str) -> None:
        pass

    def abort(self) -> None:
        pass

    def buffered(self) -> int:
        return 0


ZONE = ZoneConfig(
    name="demo",
    guests=True,
    room_creation="everyone",
    rooms=[RoomConfig("Lobby"), RoomConfig("Table", game=True, max_users=2, max_spectators=2)],
)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    clock = ManualClock()
    hub = Hub(Config(zones=[ZONE]), clock, call_soon=lambda fn: None)
    conns = []
    for codec in (JSON, MSGPACK):
        link = Link(codec)
        conn = Connection(hub, link, codec)
        hub.connection_made(conn)
        enc = msgspec.msgpack.encode if codec.binary else msgspec.json.encode
        conn.message_received(enc({"type": "login", "id": 1, "guest": True, "zone": "demo"}), codec.binary)
        conn.message_received(enc({"type": "join_room", "id": 2, "room": "Lobby"}), codec.binary)
        conns.append((conn, link))
    for _ in range(fdp.ConsumeIntInRange(1, 8)):
        conn, link = conns[fdp.ConsumeIntInRange(0, 1)]
        conn.message_received(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256)), link.codec.binary)
        clock.advance(0.01)
    hub.sweep()
    hub.flush()
    for _, link in conns:
        for msg in link.written:
            if msg.get("type") == "error" and msg["code"] not in ALLOWED:
                raise AssertionError(f"unexpected error reply {msg}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
