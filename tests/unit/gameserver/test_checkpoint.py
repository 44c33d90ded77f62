"""Checkpoint files (gameserver/checkpoint.py): which one a restarted worker restores."""

from __future__ import annotations

from pathlib import Path

import msgspec

from gameserver.checkpoint import Checkpoint, CheckpointFiles, load
from gameserver.handover import RoutingState, SessionState

MEMBERS = ["0.0", "0.1"]


def checkpoint(generation: int, taken_at: float, members: list[str] = MEMBERS, user: int = 7) -> bytes:
    session = SessionState("demo", user, f"u{user}", 0, f"rt{user}", "sid", 5, [])
    cp = Checkpoint("0.1", generation, taken_at, members, [], RoutingState([], [], {}), {}, [session])
    return msgspec.msgpack.encode(cp)


def test_the_newest_earlier_generation_is_restored(tmp_path: Path) -> None:
    for gen, user in ((10, 1), (20, 2)):
        CheckpointFiles(str(tmp_path), "0.1", gen).write(checkpoint(gen, 100.0, user=user))
    CheckpointFiles(str(tmp_path), "0.0", 25).write(checkpoint(25, 100.0, user=3))  # another member
    cp = load(CheckpointFiles(str(tmp_path), "0.1", 30), MEMBERS, 30.0, 110.0)
    assert cp is not None and [s.user_id for s in cp.sessions] == [2]
    # its own generation's file (a process does not restore itself) is not taken
    assert load(CheckpointFiles(str(tmp_path), "0.1", 10), MEMBERS, 30.0, 110.0) is None


def test_old_other_ring_or_torn_checkpoints_are_not_restored(tmp_path: Path) -> None:
    files = CheckpointFiles(str(tmp_path), "0.1", 1)
    me = CheckpointFiles(str(tmp_path), "0.1", 2)
    files.write(checkpoint(1, 100.0))
    assert load(me, MEMBERS, 30.0, 131.0) is None  # older than the resume grace
    assert load(me, ["0.0", "0.1", "0.2"], 30.0, 110.0) is None  # the ring changed since
    assert load(me, MEMBERS, 30.0, 90.0) is None  # from the future (clock went back)
    files.write(checkpoint(1, 100.0)[:-3])
    assert load(me, MEMBERS, 30.0, 110.0) is None  # torn or corrupt: start fresh
    assert load(me, list(reversed(MEMBERS)), 30.0, 110.0) is None
    files.write(checkpoint(1, 100.0))
    assert load(me, list(reversed(MEMBERS)), 30.0, 110.0) is not None  # member order is irrelevant


def test_the_first_write_drops_the_predecessors_and_a_clean_stop_its_own(tmp_path: Path) -> None:
    CheckpointFiles(str(tmp_path), "0.1", 1).write(b"x")
    mine = CheckpointFiles(str(tmp_path), "0.1", 2)
    mine.write(checkpoint(2, 100.0))
    mine.remove_older()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.1.2.ckpt"]
    mine.remove()
    assert list(tmp_path.iterdir()) == []


def test_take_then_complete_gives_back_every_user_and_membership(tmp_path: Path) -> None:
    """Plain users are left out of the written zones and rebuilt from the sessions and the
    rooms' members; users with variables and proxies (users of other workers) are kept."""
    from gameserver.bus import UnixBus
    from gameserver.checkpoint import SessionCache, complete, take
    from gameserver.config import Config
    from gameserver.hub import Hub
    from gameserver.player import Player
    from gameserver.sharding import ShardedRouter
    from protocol.messages import Variable
    from rooms.roles import Role
    from rooms.snapshot import export_zone
    from rooms.user import User

    config = msgspec.convert({"zones": [{"name": "demo", "rooms": [{"name": "Lobby"}]}]}, Config)
    hub = Hub(config)
    router = ShardedRouter(hub, "0.0", ["0.0"], UnixBus("0.0", str(tmp_path)))
    zone = hub.zones["demo"]
    lobby = zone.room("Lobby").id
    for uid in (1, 2, 3):
        zone.add_user(User(uid, f"u{uid}", Role.USER))
        hub.players[("demo", uid)] = Player(uid, "demo", f"u{uid}", Role.USER, 8, f"rt{uid}")
    zone.join_room(1, lobby)
    zone.join_room(2, lobby, spectator=False)
    zone.set_user_variables(2, [Variable("seat", 4)])
    zone.add_proxy(User(9, "remote", Role.USER))  # a user of another worker, in our lobby
    zone.join_room(9, lobby)
    cache: SessionCache = {}
    take(router, 5, 100.0, cache)
    raw = take(router, 5, 100.0, cache)  # the second time from the cache
    cp = msgspec.msgpack.decode(raw, type=Checkpoint)
    assert sorted(u.id for u in cp.zones[0].users) == [2, 9]  # 1 and 3 are plain
    assert sorted((s.user_id, s.resume_token) for s in cp.sessions) == [(1, "rt1"), (2, "rt2"), (3, "rt3")]
    (back,) = complete(cp, {"demo": ["default"]})
    want = export_zone(zone)
    assert sorted(back.users, key=lambda u: u.id) == sorted(want.users, key=lambda u: u.id)
    assert back.rooms == want.rooms
