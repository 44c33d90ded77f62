"""Room search: match expressions, find_rooms and quick-join candidates (no sockets)."""

from __future__ import annotations

import msgspec
import pytest

from protocol.codes import ErrorCode
from protocol.errors import RequestError
from protocol.messages import Condition, FindRooms, UserCondition, Variable
from rooms.config import RoomConfig, ZoneConfig
from rooms.match import matches
from rooms.roles import Role
from rooms.room import Room
from rooms.user import User
from rooms.views import RoomView
from rooms.zone import Zone

A, B, C = 1, 2, 3


def cond(**kw) -> Condition:
    return msgspec.convert(kw, Condition)


def table(**kw) -> Room:
    r = Room(7, kw.pop("name", "Blackjack 1"), kw.pop("group", "tables"), game=True, max_users=3, **kw)
    r.variables = {
        "stake": Variable("stake", 25),
        "ratio": Variable("ratio", 0.5),
        "vip": Variable("vip", True),
        "dealer": Variable("dealer", "Ann Lee"),
    }
    return r


@pytest.mark.parametrize(
    "c, want",
    [
        ({"var": "stake", "op": "==", "value": 25}, True),
        ({"var": "stake", "op": "!=", "value": 25}, False),
        ({"var": "stake", "op": ">", "value": 24}, True),
        ({"var": "stake", "op": ">", "value": 25}, False),
        ({"var": "stake", "op": ">=", "value": 25}, True),
        ({"var": "stake", "op": "<", "value": 25.5}, True),
        ({"var": "stake", "op": "<=", "value": 24}, False),
        ({"var": "ratio", "op": "<", "value": 1}, True),
        ({"var": "vip", "op": "==", "value": True}, True),
        ({"var": "vip", "op": "!=", "value": True}, False),
        ({"var": "dealer", "op": "contains", "value": "n L"}, True),
        ({"var": "dealer", "op": "starts_with", "value": "Ann"}, True),
        ({"var": "dealer", "op": "ends_with", "value": "Ann"}, False),
        ({"var": "dealer", "op": "==", "value": "ann lee"}, False),  # case-sensitive, as SFS2X
        # wrong types and missing variables do not match (and do not fail)
        ({"var": "stake", "op": "==", "value": "25"}, False),
        ({"var": "stake", "op": "contains", "value": "2"}, False),
        ({"var": "vip", "op": "==", "value": 1}, False),
        ({"var": "stake", "op": "==", "value": True}, False),
        ({"var": "vip", "op": ">", "value": True}, False),
        ({"var": "dealer", "op": ">", "value": 1}, False),
        ({"var": "nope", "op": "!=", "value": 1}, False),
        # properties
        ({"prop": "name", "op": "starts_with", "value": "Black"}, True),
        ({"prop": "group", "op": "==", "value": "tables"}, True),
        ({"prop": "game", "op": "==", "value": True}, True),
        ({"prop": "locked", "op": "==", "value": False}, True),
        ({"prop": "users", "op": "==", "value": 0}, True),
        ({"prop": "max_users", "op": ">=", "value": 3}, True),
        ({"prop": "free_slots", "op": "==", "value": True}, True),
    ],
)
def test_one_condition(c, want):
    assert matches(table(), [cond(**c)]) is want


def test_chain_is_read_left_to_right_without_precedence():
    r = table()
    t, f = cond(var="vip", op="==", value=True), cond(var="vip", op="==", value=False)
    or_t = cond(var="vip", op="==", value=True, logic="or")
    or_f = cond(var="vip", op="==", value=False, logic="or")
    assert matches(r, []) is True
    assert matches(r, [t, f]) is False
    assert matches(r, [f, or_t]) is True
    # (f OR t) AND f = False; with precedence f OR (t AND f) would also be False; but
    # (t OR f) AND f = False, where precedence would give t OR (f AND f) = True
    assert matches(r, [t, or_f, f]) is False
    assert matches(r, [f, or_f, or_t]) is True


def test_local_room_and_remote_view_agree():
    r = table(password="pw")
    r.players = {A: 1, B: 2, C: 3}
    view = msgspec.convert(msgspec.to_builtins(r.view()), RoomView)
    for c in [
        cond(prop="users", op="==", value=3),
        cond(prop="free_slots", op="==", value=False),
        cond(prop="locked", op="==", value=True),
        cond(var="stake", op=">=", value=25),
        cond(var="dealer", op="contains", value="Lee"),
    ]:
        assert matches(r, [c]) is True, c
        assert matches(view, [c]) is True, c


def test_wire_limits_and_types():
    dec = msgspec.json.Decoder(FindRooms)
    with pytest.raises(msgspec.ValidationError):
        dec.decode(b'{"type":"find_rooms","id":1,"where":[{"var":"x","op":"~","value":1}]}')
    with pytest.raises(msgspec.ValidationError):
        dec.decode(b'{"type":"find_rooms","id":1,"where":[{"var":"x","op":"==","value":[1]}]}')
    with pytest.raises(msgspec.ValidationError):
        dec.decode(b'{"type":"find_rooms","id":1,"where":[{"prop":"owner","op":"==","value":1}]}')
    many = ",".join(['{"var":"x","op":"==","value":1}'] * 17)
    with pytest.raises(msgspec.ValidationError):
        dec.decode(f'{{"type":"find_rooms","id":1,"where":[{many}]}}'.encode())
    ok = dec.decode(b'{"type":"find_rooms","id":1,"where":[{"var":"x","op":"==","value":1}]}')
    assert ok.limit == 100 and ok.where[0].logic == "and"


# -- the zone ------------------------------------------------------------------------------


def zone() -> Zone:
    z = Zone(
        ZoneConfig(
            name="demo",
            guests=True,
            groups=["default", "tables"],
            rooms=[
                RoomConfig("Lobby", max_users=100),
                RoomConfig("BJ low", group="tables", game=True, max_users=2, max_spectators=1),
                RoomConfig("BJ high", group="tables", game=True, max_users=3),
                RoomConfig("BJ private", group="tables", game=True, max_users=3, password="pw"),
                RoomConfig("BJ hidden", group="tables", game=True, max_users=3, hidden=True),
            ],
        )
    )
    for uid in (A, B, C):
        z.add_user(User(uid, f"u{uid}", Role.USER))
    stakes = {"BJ low": 5, "BJ high": 100, "BJ private": 100, "BJ hidden": 100}
    for name, stake in stakes.items():
        z.rooms_by_name[name].variables["stake"] = Variable("stake", stake)
    return z


def names(z: Zone, rooms) -> list[str]:
    return [z.rooms[r.id if not isinstance(r, int) else r].name for r in rooms]


def test_find_rooms_by_group_variable_and_limit():
    z = zone()
    data, out = z.find_rooms(A, "tables", [], 0)
    assert out == [] and names(z, data["rooms"]) == ["BJ low", "BJ high", "BJ private"]  # hidden never
    data, _ = z.find_rooms(A, None, [cond(var="stake", op=">=", value=50)], 0)
    assert names(z, data["rooms"]) == ["BJ high", "BJ private"]
    data, _ = z.find_rooms(A, None, [cond(var="stake", op=">=", value=50)], 1)
    assert names(z, data["rooms"]) == ["BJ high"]
    data, _ = z.find_rooms(A, None, [cond(prop="game", op="==", value=False)], 0)
    assert names(z, data["rooms"]) == ["Lobby"]


def test_find_rooms_includes_rooms_listed_from_other_workers():
    z = zone()
    remote = RoomView(
        id=900, name="BJ far", group="tables", game=True, hidden=False, locked=False, users=1, max_users=3
    )
    remote.variables = [Variable("stake", 100)]
    z.remote_rooms[900] = remote
    data, _ = z.find_rooms(A, "tables", [cond(var="stake", op="==", value=100)], 0)
    assert [v.id for v in data["rooms"]] == [
        z.rooms_by_name["BJ high"].id,
        z.rooms_by_name["BJ private"].id,
        900,
    ]


def test_find_rooms_errors():
    z = zone()
    with pytest.raises(RequestError) as e:
        z.find_rooms(A, "nope", [], 0)
    assert e.value.code == ErrorCode.GROUP_NOT_FOUND
    for bad in (Condition(op="==", value=1), Condition(op="==", value=1, prop="users", var="x")):
        with pytest.raises(RequestError) as e:
            z.find_rooms(A, None, [bad], 0)
        assert e.value.code == ErrorCode.BAD_REQUEST and "where[0]" in e.value.message


def test_quick_join_candidates_skip_full_locked_hidden_and_joined_rooms_fullest_first():
    z = zone()
    low, high = z.rooms_by_name["BJ low"].id, z.rooms_by_name["BJ high"].id
    assert z.quick_join_candidates(A, ["tables"], [], False, 5) == [low, high]  # equal: oldest first
    z.join_room(B, high)
    assert z.quick_join_candidates(A, ["tables"], [], False, 5) == [high, low]  # players gather
    z.join_room(A, low)
    z.join_room(C, low)  # low is full now (2 players)
    assert z.quick_join_candidates(A, ["tables"], [], False, 5) == [high]
    assert z.quick_join_candidates(B, ["tables"], [], False, 5) == []  # in high already; low full
    assert z.quick_join_candidates(B, ["tables"], [], True, 5) == [low]  # a spectator seat
    assert z.quick_join_candidates(A, [], [cond(var="stake", op="<", value=10)], False, 5) == []
    assert z.quick_join_candidates(A, [], [], False, 1) == [high]
    with pytest.raises(RequestError) as e:
        z.quick_join_candidates(A, ["nope"], [], False, 5)
    assert e.value.code == ErrorCode.GROUP_NOT_FOUND


# -- changing a room -----------------------------------------------------------------------


def test_the_owner_renames_locks_and_resizes_a_room_and_its_audience_is_told():
    z = zone()
    z.subscribe_group(C, "tables")
    z.create_room(A, name="Mine", group="tables", game=True, max_users=4, max_spectators=1)
    rid = z.rooms_by_name["Mine"].id
    z.join_room(B, rid)
    data, out = z.change_room(A, rid, name="Ours", password="pw", max_users=2, max_spectators=0)
    assert data["changed"] == ["name", "password", "max_users", "max_spectators"]
    view = data["room"]
    assert (view.name, view.locked, view.max_users, view.max_spectators) == ("Ours", True, 2, 0)
    [send] = out
    assert send.event.name == "room_changed" and set(send.recipients) == {A, B, C}  # members and subscribers
    assert z.room("Ours").id == rid
    with pytest.raises(RequestError):
        z.room("Mine")
    # fewer seats than players: no one leaves, no one else joins
    z.change_room(A, rid, max_users=1)
    assert set(z.rooms[rid].players) == {A, B}
    with pytest.raises(RequestError) as e:
        z.join_room(C, rid, password="pw")
    assert e.value.code == ErrorCode.ROOM_FULL


def test_changing_a_room_is_for_its_owner_and_checked():
    z = zone()
    z.create_room(A, name="Mine", group="tables", max_users=4)
    rid = z.rooms_by_name["Mine"].id
    for bad, code in [
        (dict(user=B, max_users=2), ErrorCode.PERMISSION_DENIED),
        (dict(user=A, name="BJ low"), ErrorCode.ROOM_NAME_TAKEN),
        (dict(user=A, max_spectators=2), ErrorCode.BAD_REQUEST),  # not a game room
    ]:
        user = bad.pop("user")
        with pytest.raises(RequestError) as e:
            z.change_room(user, rid, **bad)
        assert e.value.code == code
    data, out = z.change_room(A, rid, max_users=4)  # no change: nothing sent
    assert data["changed"] == [] and out == []
    mod = 9
    z.add_user(User(mod, "mod", Role.MODERATOR))
    data, _ = z.change_room(mod, z.rooms_by_name["Lobby"].id, password="staff")  # configured rooms: staff
    assert data["changed"] == ["password"]
    hidden = z.rooms_by_name["BJ hidden"]
    z.join_room(B, hidden.id)
    _, out = z.change_room(mod, hidden.id, max_users=5)
    assert [tuple(o.recipients) for o in out] == [(B,)]  # a hidden room's members only


# -- users -----------------------------------------------------------------------------------


def ucond(**kw) -> UserCondition:
    return msgspec.convert(kw, UserCondition)


def test_find_users_by_room_group_or_zone_with_room_relative_roles():
    z = zone()
    low = z.rooms_by_name["BJ low"].id
    z.add_user(User(4, "dora", Role.GUEST))
    z.add_user(User(5, "eve", Role.MODERATOR))
    z.users[B].variables = {"level": Variable("level", 7), "secret": Variable("secret", 1, private=True)}
    z.join_room(A, low)
    z.join_room(B, low, spectator=True)
    z.join_room(C, z.rooms_by_name["Lobby"].id)
    ids = lambda data: [v.id for v in data["users"]]  # noqa: E731
    data, _ = z.find_users(A, low, None, [], 0)
    assert ids(data) == [A, B] and [v.player_id for v in data["users"]] == [1, -1]
    data, _ = z.find_users(A, low, None, [ucond(prop="spectator", op="==", value=True)], 0)
    assert ids(data) == [B]
    data, _ = z.find_users(A, None, "tables", [ucond(prop="player", op="==", value=True)], 0)
    assert ids(data) == [A] and data["users"][0].player_id == 0  # not a room search: no player id
    data, _ = z.find_users(A, None, None, [ucond(prop="in_room", op="==", value=False)], 0)
    assert ids(data) == [4, 5]  # the zone: users in no room too
    data, _ = z.find_users(A, None, None, [ucond(prop="role", op=">=", value=2)], 0)
    assert ids(data) == [5]
    data, _ = z.find_users(A, None, None, [ucond(var="level", op=">", value=5)], 0)
    assert ids(data) == [B]
    data, _ = z.find_users(A, None, None, [ucond(var="secret", op="==", value=1)], 0)
    assert ids(data) == []  # private variables are not seen
    data, _ = z.find_users(A, None, None, [ucond(prop="name", op="starts_with", value="d")], 0)
    assert ids(data) == [4]
    data, _ = z.find_users(A, None, None, [], 2)
    assert ids(data) == [A, B]
    for args, code in [
        ((low, "tables", []), ErrorCode.BAD_REQUEST),
        ((None, "nope", []), ErrorCode.GROUP_NOT_FOUND),
        ((999, None, []), ErrorCode.ROOM_NOT_FOUND),
        ((None, None, [UserCondition(op="==", value=1)]), ErrorCode.BAD_REQUEST),
    ]:
        with pytest.raises(RequestError) as e:
            z.find_users(A, *args, 0)
        assert e.value.code == code
