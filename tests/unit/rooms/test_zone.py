"""The zone/room model: membership, groups, messages, variables, moderation (no sockets)."""

from __future__ import annotations

import pytest

from protocol.codes import CloseCode, ErrorCode
from protocol.errors import RequestError
from protocol.messages import Variable
from rooms.config import RoomConfig, ZoneConfig
from rooms.outputs import Disconnect, Send
from rooms.roles import Role
from rooms.user import User
from rooms.zone import Zone

A, B, C, MOD, ADMIN = 1, 2, 3, 10, 20


def zone(**cfg) -> Zone:
    base = dict(
        name="demo",
        guests=True,
        groups=["default", "slots"],
        rooms=[
            RoomConfig("Lobby", max_users=3),
            RoomConfig("VIP", password="pw"),
            RoomConfig("Table", group="slots", game=True, max_users=2, max_spectators=1),
            RoomConfig("Secret", hidden=True),
        ],
    )
    base.update(cfg)
    z = Zone(ZoneConfig(**base))
    for uid, role in [
        (A, Role.USER),
        (B, Role.USER),
        (C, Role.GUEST),
        (MOD, Role.MODERATOR),
        (ADMIN, Role.ADMIN),
    ]:
        z.add_user(User(uid, f"u{uid}", role))
    return z


def events(outputs, name):
    """{recipient: data} for every Send of event `name`."""
    got = {}
    for o in outputs:
        if isinstance(o, Send) and o.event.name == name:
            for r in o.recipients:
                got.setdefault(r, []).append(o.event.data)
    return got


def code_of(fn, *args, **kw):
    with pytest.raises(RequestError) as exc:
        fn(*args, **kw)
    return exc.value.code


def test_login_reply_lists_default_group_rooms_but_not_hidden_ones():
    z = Zone(
        ZoneConfig("z", rooms=[RoomConfig("L"), RoomConfig("H", hidden=True), RoomConfig("S", group="other")])
    )
    reply, _ = z.add_user(User(5, "x", Role.USER))
    assert [r.name for r in reply["rooms"]] == ["L"]
    assert reply["groups"] == ["default"]


def test_join_emits_user_entered_to_others_and_count_to_subscribers():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    reply, out = z.join_room(B, lobby)
    assert [u.id for u in reply.users] == [A, B]
    assert reply.room.users == 2
    assert set(events(out, "user_entered")) == {A}
    assert events(out, "room_count") == {}  # counts are coalesced: see flush_counts
    counts = events(z.flush_counts(), "room_count")
    assert set(counts) == {A, B, C, MOD, ADMIN}  # everyone subscribes "default" at login
    assert counts[A] == [{"room": lobby, "users": 2, "spectators": 0}]


def test_only_group_subscribers_get_room_list_events():
    z = zone()
    table = z.room("Table").id
    z.join_room(A, table)
    assert events(z.flush_counts(), "room_count") == {}
    z.subscribe_group(B, "slots")
    z.join_room(C, table)
    assert set(events(z.flush_counts(), "room_count")) == {B}
    z.unsubscribe_group(B, "slots")
    z.leave_room(C, table)
    assert events(z.flush_counts(), "room_count") == {}


def test_room_counts_are_coalesced_per_flush():
    """Ten joins and leaves between two flushes give one room_count with the final count."""
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.join_room(B, lobby)
    z.leave_room(A, lobby)
    got = events(z.flush_counts(), "room_count")
    assert got[C] == [{"room": lobby, "users": 1, "spectators": 0}]
    assert z.flush_counts() == []


def test_hidden_and_removed_rooms_send_no_counts():
    z = zone()
    z.join_room(A, "Secret")
    reply, _ = z.create_room(B, name="Temp")
    z.leave_room(B, reply.room.id)
    assert events(z.flush_counts(), "room_count") == {}


def test_group_subscription_errors():
    z = zone()
    assert code_of(z.subscribe_group, A, "default") == ErrorCode.ALREADY_SUBSCRIBED
    assert code_of(z.subscribe_group, A, "nope") == ErrorCode.GROUP_NOT_FOUND
    assert code_of(z.unsubscribe_group, A, "slots") == ErrorCode.NOT_SUBSCRIBED
    reply, _ = z.subscribe_group(A, "slots")
    assert [r.name for r in reply["rooms"]] == ["Table"]


def test_join_errors():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    assert code_of(z.join_room, A, lobby) == ErrorCode.ALREADY_IN_ROOM
    assert code_of(z.join_room, A, "VIP", password="bad") == ErrorCode.WRONG_PASSWORD
    assert code_of(z.join_room, A, 999) == ErrorCode.ROOM_NOT_FOUND
    z.join_room(B, lobby)
    z.join_room(C, lobby)
    assert code_of(z.join_room, MOD, lobby) == ErrorCode.ROOM_FULL
    z.join_room(A, "VIP", password="pw")


def test_moderators_pass_passwords():
    z = zone()
    z.join_room(MOD, "VIP")


def test_spectators_and_player_ids():
    z = zone()
    table = z.room("Table").id
    r1, _ = z.join_room(A, table)
    r2, _ = z.join_room(B, table)
    assert [u.player_id for u in r2.users] == [1, 2]
    assert code_of(z.join_room, C, table) == ErrorCode.ROOM_FULL
    r3, _ = z.join_room(C, table, spectator=True)
    assert r3.room.spectators == 1
    assert {u.id: u.player_id for u in r3.users}[C] == -1
    assert code_of(z.join_room, MOD, table, spectator=True) == ErrorCode.SPECTATORS_FULL
    z.leave_room(A, table)
    reply, out = z.switch_role(C, table, spectator=False)
    assert reply["player_id"] == 1  # the lowest free player id
    assert events(out, "role_switched")[B] == [{"room": table, "user": C, "player_id": 1}]


def test_leaver_gets_user_left_too():
    """The leaver's own user_left is how its client knows the leave is complete."""
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.join_room(B, lobby)
    _, out = z.leave_room(A, lobby)
    assert set(events(out, "user_left")) == {A, B}
    assert code_of(z.leave_room, A, lobby) == ErrorCode.NOT_IN_ROOM


def test_user_room_lifecycle_created_announced_removed_when_empty():
    z = zone()
    reply, out = z.create_room(A, name="Mine", max_users=4)
    room_id = reply.room.id
    assert set(events(out, "room_added")) == {A, B, C, MOD, ADMIN}
    assert z.room(room_id).owner == A
    _, out = z.leave_room(A, room_id)
    assert set(events(out, "room_removed")) == {A, B, C, MOD, ADMIN}
    assert code_of(z.room, room_id) == ErrorCode.ROOM_NOT_FOUND
    assert not z.users[A].rooms_created


def test_configured_rooms_are_never_removed():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.leave_room(A, lobby)
    assert z.room(lobby).name == "Lobby"


def test_room_creation_rules():
    z = zone(room_creation="users", max_rooms_per_user=1)
    assert code_of(z.create_room, C, name="G") == ErrorCode.ROOM_CREATION_DENIED  # guest
    z.create_room(A, name="One", join=False)
    assert code_of(z.create_room, A, name="Two") == ErrorCode.TOO_MANY_ROOMS
    assert code_of(z.create_room, B, name="One") == ErrorCode.ROOM_NAME_TAKEN
    assert code_of(z.create_room, B, name="X", group="nowhere") == ErrorCode.GROUP_NOT_FOUND
    z2 = zone(room_creation="none")
    assert code_of(z2.create_room, A, name="N") == ErrorCode.ROOM_CREATION_DENIED


def test_hidden_rooms_are_not_announced_but_joinable():
    z = zone()
    _, out = z.create_room(A, name="Private", hidden=True, join=False)
    assert events(out, "room_added") == {}
    reply, _ = z.join_room(B, "Private")
    assert reply.room.hidden


def test_public_message_reaches_members_including_sender():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.join_room(B, lobby)
    _, out = z.public_message(A, lobby, "hi", {"x": 1})
    assert events(out, "public_message") == {
        A: [{"room": lobby, "from": A, "text": "hi", "data": {"x": 1}}],
        B: [{"room": lobby, "from": A, "text": "hi", "data": {"x": 1}}],
    }
    assert code_of(z.public_message, C, lobby, "x") == ErrorCode.NOT_IN_ROOM


def test_text_length_limit():
    z = zone(max_text_length=5)
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    assert code_of(z.public_message, A, lobby, "toolong") == ErrorCode.MESSAGE_TOO_LONG


def test_private_message_to_recipient_and_echo():
    z = zone()
    _, out = z.private_message(A, B, "psst")
    got = events(out, "private_message")
    assert set(got) == {A, B}
    assert got[B][0]["from"] == {"id": A, "name": "u1"}
    assert code_of(z.private_message, A, 404, "x") == ErrorCode.USER_NOT_FOUND


def test_object_message_excludes_sender_and_filters_recipients():
    z = zone()
    lobby = z.room("Lobby").id
    for u in (A, B, C):
        z.join_room(u, lobby)
    _, out = z.object_message(A, lobby, {"move": 3})
    assert set(events(out, "object_message")) == {B, C}
    _, out = z.object_message(A, lobby, {"move": 3}, to=[C, MOD])
    assert set(events(out, "object_message")) == {C}


def test_staff_messages_need_roles():
    z = zone()
    assert code_of(z.staff_message, A, "moderator", "hey", "zone", None) == ErrorCode.PERMISSION_DENIED
    assert code_of(z.staff_message, MOD, "admin", "hey", "zone", None) == ErrorCode.PERMISSION_DENIED
    _, out = z.staff_message(MOD, "moderator", "hey", "user", B)
    assert set(events(out, "moderator_message")) == {B}
    _, out = z.staff_message(ADMIN, "admin", "maintenance", "zone", None)
    assert set(events(out, "admin_message")) == {A, B, C, MOD, ADMIN}
    assert code_of(z.staff_message, MOD, "moderator", "x", "room", None) == ErrorCode.BAD_REQUEST


def test_room_variables_pushed_to_members_and_private_ones_protected():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.join_room(B, lobby)
    _, out = z.set_room_variables(A, lobby, [Variable("jackpot", 500, private=True)])
    assert set(events(out, "room_variables")) == {A, B}
    assert code_of(z.set_room_variables, B, lobby, [Variable("jackpot", 1)]) == ErrorCode.VARIABLE_READ_ONLY
    z.set_room_variables(MOD, lobby, [Variable("jackpot", 600)])  # staff may
    assert z.room(lobby).variables["jackpot"].value == 600
    assert code_of(z.set_room_variables, C, lobby, [Variable("x", 1)]) == ErrorCode.NOT_IN_ROOM


def test_setting_a_variable_to_its_current_value_sends_nothing():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.set_room_variables(A, lobby, [Variable("v", 1)])
    reply, out = z.set_room_variables(A, lobby, [Variable("v", 1)])
    assert reply == {"changed": 0} and out == []


def test_null_deletes_a_variable():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.set_room_variables(A, lobby, [Variable("v", "x")])
    _, out = z.set_room_variables(A, lobby, [Variable("v", None)])
    assert events(out, "room_variables")[A][0]["variables"] == [Variable("v")]
    assert "v" not in z.room(lobby).variables


def test_non_persistent_room_variables_leave_with_their_setter():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.join_room(B, lobby)
    z.set_room_variables(A, lobby, [Variable("temp", 1), Variable("keep", 2, persistent=True)])
    _, out = z.leave_room(A, lobby)
    assert events(out, "room_variables")[B][0]["variables"] == [Variable("temp")]
    assert set(z.room(lobby).variables) == {"keep"}


def test_variable_limits():
    z = zone(max_room_variables=2, max_variable_bytes=20)
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    too_many = [Variable("a", 1), Variable("b", 2), Variable("c", 3)]
    assert code_of(z.set_room_variables, A, lobby, too_many) == ErrorCode.VARIABLE_INVALID
    assert z.room(lobby).variables == {}  # all or nothing
    assert code_of(z.set_room_variables, A, lobby, [Variable("big", "x" * 50)]) == ErrorCode.VARIABLE_INVALID
    inf = [Variable("odds", {"x": [float("inf")]})]
    assert code_of(z.set_room_variables, A, lobby, inf) == ErrorCode.VARIABLE_INVALID


def test_user_variables_private_to_owner_public_to_room_peers():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.join_room(B, lobby)
    _, out = z.set_user_variables(A, [Variable("avatar", "cat"), Variable("secret", 1, private=True)])
    got = events(out, "user_variables")
    assert [v.name for v in got[A][0]["variables"]] == ["avatar", "secret"]
    assert [v.name for v in got[B][0]["variables"]] == ["avatar"]
    assert C not in got
    reply, _ = z.join_room(C, lobby)
    a_view = next(u for u in reply.users if u.id == A)
    assert [v.name for v in a_view.variables] == ["avatar"]


def test_kick_and_ban_follow_roles():
    z = zone()
    assert code_of(z.kick, A, B) == ErrorCode.PERMISSION_DENIED
    assert code_of(z.kick, MOD, ADMIN) == ErrorCode.PERMISSION_DENIED
    _, out = z.kick(MOD, B, "spam")
    assert events(out, "kicked") == {B: [{"by": MOD, "reason": "spam"}]}
    [d] = [o for o in out if isinstance(o, Disconnect)]
    assert (d.user_id, d.code) == (B, CloseCode.KICKED)
    _, out = z.ban(ADMIN, MOD, hours=1, reason="abuse", now=1000.0)
    assert [o.code for o in out if isinstance(o, Disconnect)] == [CloseCode.BANNED]


def test_ban_refuses_login_until_it_expires():
    z = zone()
    z.ban(MOD, B, hours=2, reason="", now=0.0)
    z.remove_user(B)
    assert code_of(z.check_login, B, 3600.0) == ErrorCode.USER_BANNED
    z.check_login(B, 7201.0)


def test_remove_user_leaves_rooms():
    z = zone()
    lobby = z.room("Lobby").id
    z.join_room(A, lobby)
    z.join_room(B, lobby)
    out = z.remove_user(A)
    assert set(events(out, "user_left")) == {A, B}
    assert z.room(lobby).members == [B]
    assert A not in z.users


def test_zone_full():
    z = Zone(ZoneConfig("z", max_users=1))
    z.add_user(User(1, "a", Role.USER))
    assert code_of(z.check_login, 2, 0.0) == ErrorCode.ZONE_FULL


def test_zones_are_isolated():
    """Two zones share nothing: a user of one is unknown in the other."""
    z1, z2 = zone(), Zone(ZoneConfig("other", rooms=[RoomConfig("Lobby")]))
    assert code_of(z2.private_message, A, B, "x") == ErrorCode.USER_NOT_FOUND
    assert z1.room("Lobby") is not z2.room("Lobby")
