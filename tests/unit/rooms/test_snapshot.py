"""A zone handed over as data comes back the same, and keeps working."""

from __future__ import annotations

import msgspec
import pytest

from protocol.codes import ErrorCode
from protocol.errors import RequestError
from protocol.messages import Variable
from rooms.config import RoomConfig, ZoneConfig
from rooms.outputs import Send
from rooms.roles import Role
from rooms.snapshot import ZoneSnapshot, export_zone, restore_zone
from rooms.user import User
from rooms.zone import Zone

CONFIG = ZoneConfig(
    name="demo",
    guests=True,
    room_creation="everyone",
    open_groups=True,
    rooms=[RoomConfig("Lobby", max_users=50), RoomConfig("Poker", game=True, max_users=4, max_spectators=2)],
)


def busy_zone() -> Zone:
    z = Zone(CONFIG)
    for uid, name in ((1, "ann"), (2, "bob"), (3, "cid")):
        z.add_user(User(uid, name, Role.USER))
    z.join_room(1, "Lobby")
    z.join_room(2, "Lobby")
    z.join_room(2, "Poker")
    z.join_room(3, "Poker", spectator=True)
    z.set_room_variables(1, 1, [Variable("topic", "jackpots"), Variable("secret", 7, private=True)])
    z.set_user_variables(2, [Variable("avatar", "cat"), Variable("pin", 1234, private=True)])
    z.create_room(1, name="ann's table", group="tables", max_users=3)
    z.subscribe_group(3, "tables")
    z.bans[99] = 2e9
    return z


def test_export_survives_the_wire_and_restores_the_same_zone() -> None:
    z = busy_zone()
    wire = msgspec.msgpack.encode(export_zone(z))
    snap = msgspec.msgpack.decode(wire, type=ZoneSnapshot)
    fresh = Zone(CONFIG)
    restore_zone(fresh, snap)
    assert export_zone(fresh) == export_zone(z)
    assert fresh.list_rooms(3, None) == z.list_rooms(3, None)
    assert fresh.subscribers["tables"] == {3}
    assert fresh.rooms[2].player_id(2) == z.rooms[2].player_id(2)


def test_a_restored_zone_keeps_working() -> None:
    fresh = Zone(CONFIG)
    restore_zone(
        fresh, msgspec.msgpack.decode(msgspec.msgpack.encode(export_zone(busy_zone())), type=ZoneSnapshot)
    )
    _, out = fresh.public_message(2, 2, "still here")
    assert sorted(out[0].recipients) == [2, 3]  # bob plays, cid watches
    fresh.leave_room(1, fresh.rooms_by_name["ann's table"].id)
    assert "ann's table" not in fresh.rooms_by_name  # removed when empty, as before
    out = fresh.remove_user(2)
    assert [o.event.name for o in out if isinstance(o, Send)][:1] == ["user_left"]
    fresh.check_login(1, 0)
    with pytest.raises(RequestError) as banned:
        fresh.check_login(99, 0)
    assert banned.value.code is ErrorCode.USER_BANNED
