"""SfsSession without sockets: SFS2X packets in -> native requests; hub calls -> SFS2X packets out."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings, strategies as st

from protocol import messages as m
from protocol.codes import CloseCode, ErrorCode
from protocol.events import OutEvent
from protocol.limits import FloodLimits, SessionLimits
from protocol.session import AUTHENTICATED, CLOSING
from protocol.sfs2x import (
    Action,
    Message,
    PacketReader,
    SFSArray,
    SFSObject,
    SFSType,
    decode_frame,
    encode_frame,
)
from protocol.sfs2x.messages import extension_request, handshake_request, login_request, ping_request
from protocol.sfs2x.reconnect import HrcState, Reconnections
from protocol.sfs2x.session import SfsSession, to_sfs_object

from . import strategies

LOBBY = {"id": 1, "name": "Lobby", "group": "default", "game": False, "hidden": False, "locked": False,
         "users": 0, "max_users": 50}  # fmt: skip
ALICE = {"id": 7, "name": "alice", "role": 0}
BOB = {"id": 8, "name": "bob", "role": 1}


def new(now: float = 0.0) -> SfsSession:
    return SfsSession(SessionLimits(), FloodLimits(), now)


def feed(s: SfsSession, msg: Message, now: float = 0.0) -> list[Any]:
    s.receive_message(encode_frame(msg), True, now)
    return s.requests_received()


def out(s: SfsSession) -> list[Message]:
    return [decode_frame(p) for p in s.data_to_send()]


def logged_in() -> SfsSession:
    s = new()
    feed(s, handshake_request())
    [login] = feed(s, login_request("demo", "alice"))
    s.authenticate()
    s.reply(login.id, {"zone": "demo", "user": ALICE, "groups": ["default"], "rooms": [LOBBY]})
    s.data_to_send()
    return s


def test_handshake_answered_by_the_session() -> None:
    s = new()
    assert feed(s, handshake_request()) == []
    [resp] = out(s)
    assert (resp.controller, resp.action) == (0, Action.HANDSHAKE)
    p = resp.params
    assert p.get_utf_string("tk") == s.token and len(s.token) == 32
    assert p.type_of("ct") is SFSType.INT and p.type_of("ms") is SFSType.INT
    assert p.get_int("ms") == SessionLimits().max_message_bytes


def test_anything_before_the_handshake_closes() -> None:
    s = new()
    feed(s, login_request("demo", "alice"))
    assert s.close_expected() and s.close_code is CloseCode.PROTOCOL_ERROR


def test_garbage_and_text_frames_close() -> None:
    s = new()
    s.receive_message(b"\x80\x00\x05nope!", True, 0.0)
    assert s.close_code is CloseCode.PROTOCOL_ERROR
    s = new()
    s.receive_message(b"hello", False, 0.0)
    assert s.close_code is CloseCode.UNSUPPORTED_DATA


def test_guest_login_and_response_types() -> None:
    s = new()
    feed(s, handshake_request())
    s.data_to_send()
    [login] = feed(s, login_request("demo", ""))
    assert isinstance(login, m.Login) and login.guest and login.zone == "demo" and login.name is None
    s.authenticate()
    assert s.state is AUTHENTICATED
    s.reply(login.id, {"zone": "demo", "user": ALICE, "groups": ["default"], "rooms": [LOBBY]})
    [resp] = out(s)
    p = resp.params
    assert resp.action == Action.LOGIN
    assert (p.get_utf_string("zn"), p.get_utf_string("un"), p.get_int("id")) == ("demo", "alice", 7)
    assert p.type_of("pi") is SFSType.SHORT and p.type_of("rs") is SFSType.SHORT
    room = p.get_sfs_array("rl").get_sfs_array(0)
    assert (room.get_int(0), room.get_utf_string(1), room.get_short(6), room.get_short(7)) == (
        1,
        "Lobby",
        0,
        50,
    )


def test_token_login_from_login_params() -> None:
    s = new()
    feed(s, handshake_request())
    [login] = feed(s, login_request("demo", "mod", params=SFSObject().put_utf_string("token", "abc.def")))
    assert (
        isinstance(login, m.Login) and login.token == "abc.def" and login.zone == "demo" and not login.guest
    )


def test_a_password_is_taken_as_a_login_token() -> None:
    """Apps that send a session key from their auth service as the password work unchanged
    once that service mints Croupier tokens; a bad one is LOGIN_BAD_PASSWORD (ec 3)."""
    s = new()
    feed(s, handshake_request())
    s.data_to_send()
    [login] = feed(s, login_request("demo", "alice", "5211df07cd46b5585096e3714f622238"))
    assert isinstance(login, m.Login) and login.token == "5211df07cd46b5585096e3714f622238"
    assert login.zone == "demo" and not login.guest
    s.fail(login.id, ErrorCode.BAD_TOKEN, "bad signature")
    [err] = out(s)
    assert err.action == Action.LOGIN and err.params.get_short("ec") == 3


def test_login_errors_map_to_sfs_codes() -> None:
    cases = [
        (ErrorCode.ZONE_NOT_FOUND, 1, ("NoZone",)),
        (ErrorCode.GUESTS_NOT_ALLOWED, 10, ("NoZone",)),
        (ErrorCode.USER_BANNED, 4, ("alice",)),
        (ErrorCode.BAD_TOKEN, 3, ("alice",)),
        (ErrorCode.INTERNAL, 28, ("internal error",)),
    ]
    for code, ec, ep in cases:
        s = new()
        feed(s, handshake_request())
        s.data_to_send()
        [login] = feed(s, login_request("NoZone", "alice"))
        s.fail(login.id, code, "internal error")
        [err] = out(s)
        assert err.action == Action.LOGIN
        assert err.params.type_of("ec") is SFSType.SHORT
        assert (err.params.get_short("ec"), err.params.get_utf_string_array("ep")) == (ec, ep), code


def test_join_flow_ordering_1000_join_1001() -> None:
    s = logged_in()
    [join] = feed(s, Message.system(Action.JOIN_ROOM, SFSObject().put_int("i", 1).put_int("rl", -1)))
    assert isinstance(join, m.JoinRoom) and join.room == 1 and join.leave is None
    # the hub: user_entered to the others (here: this client sees bob enter after it joined)
    s.reply(join.id, {"room": {**LOBBY, "users": 1}, "users": [ALICE]})
    s.send_event(3, OutEvent("room_count", {"room": 1, "users": 1, "spectators": 0}))
    s.send_event(4, OutEvent("user_entered", {"room": 1, "user": BOB}))
    s.send_event(5, OutEvent("room_count", {"room": 1, "users": 2, "spectators": 0}))
    msgs = out(s)
    assert [x.action for x in msgs] == [Action.JOIN_ROOM, 1001, 1000, 1001]
    joined = msgs[0].params
    assert joined.get_sfs_array("r").get_short(6) == 1
    assert joined.get_sfs_array("ul").get_sfs_array(0).get_utf_string(1) == "alice"
    assert msgs[1].params.type_of("uc") is SFSType.SHORT
    assert msgs[2].params.get_sfs_array("u").get_utf_string(1) == "bob"


def test_join_errors() -> None:
    s = logged_in()
    for code, ec, ep in [
        (ErrorCode.ROOM_NOT_FOUND, 22, ()),
        (ErrorCode.ROOM_FULL, 20, ("Lobby",)),
        (ErrorCode.WRONG_PASSWORD, 21, ("Lobby",)),
        (ErrorCode.ALREADY_IN_ROOM, 19, ("Lobby",)),
    ]:
        [join] = feed(s, Message.system(Action.JOIN_ROOM, SFSObject().put_int("i", 1)))
        s.fail(join.id, code, "x")
        [err] = out(s)
        assert (err.action, err.params.get_short("ec"), err.params.get_utf_string_array("ep")) == (4, ec, ep)


def test_player_and_spectator_switching_17_and_18() -> None:
    """a=18 / a=17 become `switch_role`; the reply is the requester's a=18 / a=17, the
    others' `role_switched` events are theirs (the own one is not sent twice)."""
    s = logged_in()
    s.reply(*[r.id for r in feed(s, Message.system(Action.JOIN_ROOM, SFSObject().put_int("i", 1)))],
            {"room": {**LOBBY, "game": True, "users": 2}, "users": [ALICE, BOB]})  # fmt: skip
    out(s)
    [watch] = feed(s, Message.system(Action.PLAYER_TO_SPECTATOR, SFSObject().put_int("r", 1)))
    assert isinstance(watch, m.SwitchRole) and (watch.room, watch.spectator) == (1, True)
    s.reply(watch.id, {"room": 1, "player_id": -1})
    s.send_event(6, OutEvent("role_switched", {"room": 1, "user": 7, "player_id": -1}))  # our own
    [me] = out(s)
    assert me.action == Action.PLAYER_TO_SPECTATOR and (me.params.get_int("r"), me.params.get_int("u")) == (
        1,
        7,
    )
    s.send_event(7, OutEvent("role_switched", {"room": 1, "user": 8, "player_id": 2}))
    [bob] = out(s)
    assert bob.action == Action.SPECTATOR_TO_PLAYER and bob.params.get_int("u") == 8
    assert bob.params.type_of("p") is SFSType.SHORT and bob.params.get_short("p") == 2
    [play] = feed(s, Message.system(Action.SPECTATOR_TO_PLAYER, SFSObject().put_int("r", 1)))
    assert isinstance(play, m.SwitchRole) and not play.spectator
    for code, ec in [
        (ErrorCode.ROOM_FULL, 32),
        (ErrorCode.SPECTATORS_FULL, 33),
        (ErrorCode.BAD_REQUEST, 34),
        (ErrorCode.NOT_IN_ROOM, 35),
    ]:
        [req] = feed(s, Message.system(Action.SPECTATOR_TO_PLAYER, SFSObject().put_int("r", 1)))
        s.fail(req.id, code, "x")
        [err] = out(s)
        assert (err.action, err.params.get_short("ec"), err.params.get_utf_string_array("ep")) == (
            17,
            ec,
            ("Lobby",),
        )


def test_leave_has_no_response_but_1004() -> None:
    s = logged_in()
    [leave] = feed(s, Message.system(Action.LEAVE_ROOM, SFSObject().put_int("r", 1)))
    assert isinstance(leave, m.LeaveRoom) and leave.room == 1
    s.reply(leave.id, {"room": 1})
    s.send_event(2, OutEvent("user_left", {"room": 1, "user": 7}))
    [ev] = out(s)
    assert ev.action == 1004 and (ev.params.get_int("r"), ev.params.get_int("u")) == (1, 7)


def test_create_room_announces_once_then_joins() -> None:
    s = logged_in()
    p = SFSObject().put_utf_string("n", "Mine").put_utf_string("g", "default").put_short("mu", 4)
    [create] = feed(s, Message.system(Action.CREATE_ROOM, p.put_bool("aj", True)))
    assert isinstance(create, m.CreateRoom) and create.join and create.max_users == 4
    room = {**LOBBY, "id": 9, "name": "Mine", "users": 1, "max_users": 4}
    s.reply(create.id, {"room": room, "users": [ALICE]})
    s.send_event(2, OutEvent("room_added", {"room": room}))  # already announced by the reply
    assert [x.action for x in out(s)] == [Action.CREATE_ROOM, Action.JOIN_ROOM]
    s.send_event(3, OutEvent("room_added", {"room": {**room, "id": 10, "name": "Other"}}))
    [added] = out(s)
    assert added.action == Action.CREATE_ROOM and added.params.get_sfs_array("r").get_int(0) == 10


def test_create_room_name_taken() -> None:
    s = logged_in()
    [create] = feed(s, Message.system(Action.CREATE_ROOM, SFSObject().put_utf_string("n", "Lobby")))
    s.fail(create.id, ErrorCode.ROOM_NAME_TAKEN, "taken")
    [err] = out(s)
    assert (err.params.get_short("ec"), err.params.get_utf_string_array("ep")) == (12, ("Lobby",))


def test_groups() -> None:
    s = logged_in()
    [sub] = feed(s, Message.system(Action.SUBSCRIBE_ROOM_GROUP, SFSObject().put_utf_string("g", "slots")))
    assert isinstance(sub, m.SubscribeGroup) and sub.group == "slots"
    s.reply(sub.id, {"group": "slots", "rooms": [{**LOBBY, "id": 3, "group": "slots"}]})
    [resp] = out(s)
    assert resp.action == 15 and resp.params.get_sfs_array("rl").get_sfs_array(0).get_int(0) == 3
    for action, code, ec in [(15, ErrorCode.ALREADY_SUBSCRIBED, 24), (15, ErrorCode.GROUP_NOT_FOUND, 25),
                             (16, ErrorCode.NOT_SUBSCRIBED, 26)]:  # fmt: skip
        [req] = feed(s, Message.system(action, SFSObject().put_utf_string("g", "nope")))
        s.fail(req.id, code, "x")
        [err] = out(s)
        assert (err.action, err.params.get_short("ec"), err.params.get_utf_string_array("ep")) == (
            action,
            ec,
            ("nope",),
        )


def test_public_private_object_messages() -> None:
    s = logged_in()
    pub = SFSObject().put_byte("t", 0).put_int("r", 1).put_int("u", 7).put_utf_string("m", "hi")
    [req] = feed(
        s, Message.system(Action.GENERIC_MESSAGE, pub.put_sfs_object("p", SFSObject().put_int("x", 1)))
    )
    assert isinstance(req, m.PublicMessage) and (req.room, req.text, req.data) == (1, "hi", {"x": 1})
    s.reply(req.id, None)
    assert out(s) == []
    s.send_event(2, OutEvent("public_message", {"room": 1, "from": 8, "text": "yo", "data": {"n": 2}}))
    s.send_event(3, OutEvent("private_message", {"from": {"id": 8, "name": "bob"}, "to": 7, "text": "psst"}))
    s.send_event(4, OutEvent("object_message", {"room": 1, "from": 8, "data": {"move": [1, 2]}}))
    p0, p1, p4 = (x.params for x in out(s))
    assert (p0.get_byte("t"), p0.get_int("r"), p0.get_int("u"), p0.get_utf_string("m")) == (0, 1, 8, "yo")
    assert p0.get_sfs_object("p").get_int("n") == 2
    assert (p1.get_byte("t"), p1.get_int("u"), p1.get_sfs_array("sd").get_utf_string(1)) == (1, 8, "bob")
    assert p4.get_byte("t") == 4 and p4.get_sfs_object("p").get_sfs_array("move").get_int(1) == 2
    priv = SFSObject().put_byte("t", 1).put_int("rc", 8).put_utf_string("m", "back")
    [req] = feed(s, Message.system(Action.GENERIC_MESSAGE, priv))
    assert isinstance(req, m.PrivateMessage) and (req.to, req.text) == (8, "back")
    obj = SFSObject().put_byte("t", 4).put_int("r", 1).put_sfs_object("p", SFSObject().put_bool("b", True))
    [req] = feed(s, Message.system(Action.GENERIC_MESSAGE, obj.put_int_array("rc", [8])))
    assert isinstance(req, m.ObjectMessage) and req.data == {"b": True} and req.to == [8]
    mod = SFSObject().put_byte("t", 2).put_utf_string("m", "behave").put_int("rm", 1).put_int("rc", 1)
    [req] = feed(s, Message.system(Action.GENERIC_MESSAGE, mod))
    assert isinstance(req, m.ModeratorMessage) and (req.scope, req.target) == ("room", 1)


def test_variables_both_ways() -> None:
    s = logged_in()
    rv = SFSArray().add_utf_string("pot").add_byte(2).add_int(100).add_bool(False).add_bool(True)
    p = SFSObject().put_int("r", 1).put_sfs_array("vl", SFSArray().add_sfs_array(rv))
    [req] = feed(s, Message.system(Action.SET_ROOM_VARIABLES, p))
    assert isinstance(req, m.SetRoomVariables) and req.variables == [m.Variable("pot", 100, False, True)]
    uv = SFSArray().add_utf_string("lvl").add_byte(4).add_utf_string("gold").add_bool(False)
    [req] = feed(
        s,
        Message.system(
            Action.SET_USER_VARIABLES, SFSObject().put_sfs_array("vl", SFSArray().add_sfs_array(uv))
        ),
    )
    assert isinstance(req, m.SetUserVariables) and req.variables[0].value == "gold"
    s.send_event(
        2, OutEvent("room_variables", {"room": 1, "variables": [m.Variable("pot", {"a": 1})], "by": 8})
    )
    s.send_event(3, OutEvent("user_variables", {"user": 8, "variables": [m.Variable("lvl", None)]}))
    r11, r12 = out(s)
    var = r11.params.get_sfs_array("vl").get_sfs_array(0)
    assert r11.action == 11 and var.get_utf_string(0) == "pot" and var.get_byte(1) == 5
    assert var.get_sfs_object(2).get_int("a") == 1
    uvar = r12.params.get_sfs_array("vl").get_sfs_array(0)
    assert r12.action == 12 and r12.params.get_int("u") == 8 and uvar.get_byte(1) == 0  # NULL: deleted


def test_kick_sends_moderator_message_then_1005_before_close() -> None:
    s = logged_in()
    [kick] = feed(s, Message.system(Action.KICK_USER, SFSObject().put_int("u", 8).put_utf_string("m", "bye")))
    assert isinstance(kick, m.Kick) and (kick.user, kick.reason) == (8, "bye")
    # as the target: the hub pushes `kicked`, then closes with 4004
    s.send_event(5, OutEvent("kicked", {"by": 1, "reason": "spam"}))
    s.close(CloseCode.KICKED, "spam")
    notice, disc = out(s)
    assert (
        notice.action == 7
        and notice.params.get_byte("t") == 2
        and notice.params.get_utf_string("m") == "spam"
    )
    assert (
        disc.action == 1005 and disc.params.type_of("dr") is SFSType.BYTE and disc.params.get_byte("dr") == 1
    )
    assert s.close_expected()
    s.connection_lost(0.0)
    assert s.close_code is CloseCode.KICKED


def test_ban_gives_dr_2_and_idle_dr_0() -> None:
    s = logged_in()
    s.close(CloseCode.BANNED)
    assert out(s)[-1].params.get_byte("dr") == 2
    s = logged_in()
    s.check_timeouts(10_000.0)
    assert s.close_code is CloseCode.IDLE_TIMEOUT and out(s)[-1].params.get_byte("dr") == 0


def test_a_drop_ends_the_session_at_once() -> None:
    s = logged_in()
    s.connection_lost(0.0)
    assert s.close_code is CloseCode.NORMAL  # the hub ends the player: SFS2X cannot resume


def test_ping_pong_answered_directly() -> None:
    s = logged_in()
    assert feed(s, ping_request()) == []
    [pong] = out(s)
    assert pong.action == 29 and len(pong.params) == 0


def test_logout() -> None:
    s = logged_in()
    [req] = feed(s, Message.system(Action.LOGOUT))
    assert isinstance(req, m.Logout)
    s.deauthenticate()
    s.reply(req.id, {"zone": "demo"})
    [resp] = out(s)
    assert resp.action == 2 and resp.params.get_utf_string("zn") == "demo"
    assert s.state is not AUTHENTICATED


def test_unknown_extension_gets_an_error_response() -> None:
    s = logged_in()
    assert feed(s, extension_request("lobby.hello", SFSObject().put_int("a", 1))) == []
    [resp] = out(s)
    assert (resp.controller, resp.action) == (1, 13)
    assert resp.params.get_utf_string("c") == "lobby.hello"
    p = resp.params.get_sfs_object("p")
    assert p.get_short("ec") == 28 and "not supported" in p.get_utf_string_array("ep")[0]


def test_casino_extension_maps_to_native_request_when_available() -> None:
    if "spin" not in m.CLIENT_TYPES:
        return
    s = logged_in()
    [req] = feed(s, extension_request("casino.spin", SFSObject().put_utf_string("game", "fruit_slot")))
    assert type(req).__struct_config__.tag == "spin"
    s.reply(req.id, {"win": 42, "balance": 10_000_000_000})
    [resp] = out(s)
    assert resp.controller == 1 and resp.params.get_utf_string("c") == "casino.spin"
    p = resp.params.get_sfs_object("p")
    assert p.get_int("win") == 42 and p.get_long("balance") == 10_000_000_000
    assert feed(s, extension_request("casino.spin", SFSObject())) == []  # `game` missing
    [resp] = out(s)
    assert resp.params.get_sfs_object("p").get_short("ec") == 28


def test_messages_before_login_are_dropped() -> None:
    s = new()
    feed(s, handshake_request())
    assert feed(s, Message.system(Action.JOIN_ROOM, SFSObject().put_int("i", 1))) == []
    assert not s.close_expected()


def test_bad_fields_are_reported_not_raised() -> None:
    s = logged_in()
    assert feed(s, Message.system(Action.JOIN_ROOM, SFSObject().put_utf_string("i", "x"))) == []
    [err] = out(s)
    assert err.action == 4 and err.params.get_short("ec") == 28
    assert s.state is AUTHENTICATED and s.state is not CLOSING


def test_to_sfs_object_infers_types() -> None:
    o = to_sfs_object(
        {"i": 1, "l": 2**40, "f": 1.5, "s": "x", "b": True, "n": None, "a": [1, "x"], "o": {"k": 1}}
    )
    assert [o.type_of(k) for k in "ilfsbnao"] == [
        SFSType.INT,
        SFSType.LONG,
        SFSType.DOUBLE,
        SFSType.UTF_STRING,
        SFSType.BOOL,
        SFSType.NULL,
        SFSType.SFS_ARRAY,
        SFSType.SFS_OBJECT,
    ]


_KEYS = ["i", "n", "p", "r", "u", "m", "t", "rc", "rm", "vl", "g", "c", "zn", "un", "pw", "d", "b", "dh", "aj", "mu",
         "rv", "rl", "sp", "api", "cl", "token", "e", "me", "gl", "rs", "tl", "l", "s", "iu"]  # fmt: skip
_ACTIONS = [0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 24, 25, 27, 28, 29, 31, 200, 300, 301,
            1000, 32767]  # fmt: skip
_params = st.dictionaries(st.sampled_from(_KEYS) | strategies.keys, strategies.entries, max_size=6).map(
    SFSObject
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from(_ACTIONS), _params), max_size=6))
def test_hostile_requests_never_raise(msgs: list[tuple[int, int, SFSObject]]) -> None:
    for s in (new(), logged_in()):
        feed(s, handshake_request())
        for controller, action, params in msgs:
            for req in feed(s, Message(controller, action, params)):
                assert type(req) in m.CLIENT_TYPES.values()
                s.fail(req.id, ErrorCode.BAD_REQUEST, "no")
        s.data_to_send()


# -- reconnection (HRC) -----------------------------------------------------------------------

UNITY = "UnityPlayer:Android:2022.3"


def feed_tcp(s: SfsSession, msg: Message, now: float = 0.0) -> list[Any]:
    """As `feed`, for a TCP session (`stream=True`: the transport passes packet payloads)."""
    reader = PacketReader()
    reader.receive_data(encode_frame(msg))
    for packet in reader.packets_received():
        s.receive_message(packet.payload, True, now)
    return s.requests_received()


def hrc_logged_in(reg: Reconnections, client: str = UNITY, stream: bool = True) -> tuple[SfsSession, int]:
    """A session of `client` logged in with HRC on (over TCP unless `stream` is False); the `rs` it was told."""
    s = SfsSession(SessionLimits(), FloodLimits(), 0.0, stream=stream, reconnections=reg)
    put = feed_tcp if stream else feed
    put(s, handshake_request(client_type=client))
    s.data_to_send()
    [login] = put(s, login_request("demo", "alice"))
    s.authenticate()
    data = {
        "zone": "demo",
        "user": ALICE,
        "groups": ["default"],
        "rooms": [LOBBY],
        "resume_token": "native-tk",
    }
    s.reply(login.id, data)
    [resp] = out(s)
    return s, resp.params.get_short("rs")


def test_a_unity_client_is_told_the_window_and_takes_its_session_back() -> None:
    reg = Reconnections(30.0)
    old, rs = hrc_logged_in(reg)
    assert rs == 30 and len(reg) == 1
    [spin] = feed_tcp(old, extension_request("casino.spin", SFSObject().put_utf_string("game", "fruit_slot")))
    old.send_event(5, OutEvent("public_message", {"room": 1, "from": 8, "text": "hi"}))
    assert out(old)[0].params.get_utf_string("m") == "hi"
    old.connection_lost(10.0)
    assert old.close_code is None  # the hub keeps the player for its resume grace
    new = SfsSession(SessionLimits(), FloodLimits(), 12.0, stream=True, reconnections=reg)
    [resume] = feed_tcp(new, handshake_request(client_type=UNITY, reconnection_token=old.token), 12.0)
    assert isinstance(resume, m.Resume) and (resume.token, resume.last_seq) == ("native-tk", 5)
    assert out(new) == []  # answered when the hub gave the player back
    new.authenticate()
    new.reply(resume.id, {"user": 7, "last_seq": 6})
    [hs] = out(new)
    assert hs.action == Action.HANDSHAKE and hs.params.get_utf_string("tk") == old.token
    assert new.state is AUTHENTICATED and new.rooms.keys() == {1}
    new.reply(spin.id, {"round": "r1", "win": 0})  # the reply to a request sent before the drop
    [ext] = out(new)
    assert ext.action == Action.CALL_EXTENSION and ext.params.get_utf_string("c") == "casino.spin"
    [again] = feed_tcp(
        new, extension_request("casino.spin", SFSObject().put_utf_string("game", "fruit_slot"))
    )
    assert again.id > spin.id  # numbering goes on: money request keys never repeat in a session
    assert len(reg) == 1


def test_a_reconnection_after_the_session_is_gone_gets_a_new_session() -> None:
    reg = Reconnections(30.0)
    old, _ = hrc_logged_in(reg)
    old.connection_lost(10.0)
    late = SfsSession(SessionLimits(), FloodLimits(), 41.0, stream=True, reconnections=reg)
    assert feed_tcp(late, handshake_request(client_type=UNITY, reconnection_token=old.token), 41.0) == []
    [hs] = out(late)
    assert hs.params.get_utf_string("tk") == late.token != old.token  # past the window: new
    old2, _ = hrc_logged_in(reg)
    old2.connection_lost(50.0)
    refused = SfsSession(SessionLimits(), FloodLimits(), 51.0, stream=True, reconnections=reg)
    [resume] = feed_tcp(refused, handshake_request(client_type=UNITY, reconnection_token=old2.token), 51.0)
    refused.fail(resume.id, ErrorCode.RESUME_FAILED, "no such session")  # the hub ended it
    [hs] = out(refused)
    assert hs.params.get_utf_string("tk") == refused.token != old2.token and refused.rooms == {}
    assert refused.state is not AUTHENTICATED


def test_javascript_clients_and_closes_by_the_server_end_the_session_at_once() -> None:
    reg = Reconnections(30.0)
    js, rs = hrc_logged_in(reg, client="JavaScript")
    assert rs == 0 and len(reg) == 0
    js.connection_lost(1.0)
    assert js.close_code is CloseCode.NORMAL
    unity, _ = hrc_logged_in(reg)
    unity.check_timeouts(10_000.0)  # idle: closed by the server
    unity.connection_lost(10_000.0)
    assert unity.close_code is CloseCode.NORMAL and len(reg) == 0  # the hub ends it
    assert hrc_logged_in(Reconnections(0.0))[1] == 0  # resume_grace = 0: no HRC
    assert hrc_logged_in(reg, stream=False)[1] == 0  # the WebSocket path (JavaScript, WebGL)


def test_hostile_handshakes_take_nothing_over() -> None:
    """An unknown or oversize `rt` gets a new session; a second handshake in a session is
    refused (it could otherwise take another session over); `rt` on the WebSocket path
    (JavaScript, WebGL) is ignored, the dropped session stays where it is."""
    reg = Reconnections(30.0)
    victim, _ = hrc_logged_in(reg)
    victim.connection_lost(5.0)
    for rt in ("nope", "x" * 5000, victim.token.upper()):
        s = SfsSession(SessionLimits(), FloodLimits(), 6.0, stream=True, reconnections=reg)
        assert feed_tcp(s, handshake_request(client_type=UNITY, reconnection_token=rt), 6.0) == []
        [hs] = out(s)
        assert hs.params.get_utf_string("tk") == s.token != victim.token
    ws = SfsSession(SessionLimits(), FloodLimits(), 6.0, reconnections=reg)  # the WebSocket path
    assert feed(ws, handshake_request(client_type=UNITY, reconnection_token=victim.token), 6.0) == []
    assert out(ws)[0].params.get_utf_string("tk") == ws.token != victim.token
    again, _ = hrc_logged_in(reg)
    token = again.token
    assert feed_tcp(again, handshake_request(client_type=UNITY, reconnection_token=victim.token), 7.0) == []
    assert out(again) == [] and again.token == token and again.state is AUTHENTICATED  # refused, logged
    back = SfsSession(SessionLimits(), FloodLimits(), 8.0, stream=True, reconnections=reg)
    [resume] = feed_tcp(back, handshake_request(client_type=UNITY, reconnection_token=victim.token), 8.0)
    assert isinstance(resume, m.Resume)  # the victim's session was still there for its own client


def test_a_session_dropped_again_after_a_reconnection_keeps_its_own_window() -> None:
    """The registry's purge: the first drop's deadline does not end the session that took
    it over and dropped later; that one's own deadline does."""
    reg = Reconnections(30.0)
    first, _ = hrc_logged_in(reg)
    first.connection_lost(0.0)
    second = SfsSession(SessionLimits(), FloodLimits(), 20.0, stream=True, reconnections=reg)
    [resume] = feed_tcp(second, handshake_request(client_type=UNITY, reconnection_token=first.token), 20.0)
    second.authenticate()
    second.reply(resume.id, {"user": 7, "last_seq": 0})
    second.connection_lost(25.0)
    assert reg.take(first.token, 40.0) is second  # past the first deadline (30), inside its own (55)
    reg.add(second)
    reg.dropped(second, 40.0)
    assert reg.take(first.token, 70.0) is None and len(reg) == 0  # past 40 + 30


def test_malformed_and_refused_switches_get_their_sfs_errors() -> None:
    s = logged_in()
    feed(s, Message.system(Action.SPECTATOR_TO_PLAYER, SFSObject()))  # no `r`
    [err] = out(s)
    assert err.action == Action.SPECTATOR_TO_PLAYER and err.params.get_short("ec") == 28
    [req] = feed(s, Message.system(Action.PLAYER_TO_SPECTATOR, SFSObject().put_int("r", 99)))
    s.fail(req.id, ErrorCode.ROOM_NOT_FOUND, "x")  # a room the client never saw
    [err] = out(s)
    assert (err.action, err.params.get_short("ec"), err.params.get_utf_string_array("ep")) == (
        18,
        35,
        ("99",),
    )


# -- FindRooms (a=27) and QuickJoinOrCreateRoom (a=31) ----------------------------------------


def expression(*links: tuple[str | None, str, int, str, Any]) -> SFSArray:
    """A MatchExpression as the official client sends it (5 elements per link)."""
    arr = SFSArray()
    for logic, name, kind, symbol, value in links:
        item = SFSArray()
        item.add_null() if logic is None else item.add_utf_string(logic)
        item.add_utf_string(name).add_byte(kind).add_utf_string(symbol)
        if isinstance(value, bool):
            item.add_bool(value)
        elif isinstance(value, float):
            item.add_double(value)
        else:
            item.add_utf_string(value)
        arr.add_sfs_array(item)
    return arr


def test_find_rooms_maps_the_expression_and_answers_fr() -> None:
    s = logged_in()
    e = expression(
        (None, "${UC}", 1, ">=", 1.0),
        ("AND", "stake", 1, "<", 50.0),
        ("OR", "dealer", 2, "startsWith", "Ann"),
        ("AND", "${ISG}", 0, "==", True),
        ("AND", "${ISD}", 0, "==", True),  # every room here: always true
        ("OR", "${IST}", 0, "==", True),  # none here: always false
    )
    [find] = feed(
        s, Message.system(Action.FIND_ROOMS, SFSObject().put_sfs_array("e", e).put_utf_string("g", "tables"))
    )
    assert isinstance(find, m.FindRooms) and find.group == "tables" and find.limit == 1000  # no `l`: all
    got = [msgspec.to_builtins(c) for c in find.where]
    assert got == [
        {"op": ">=", "value": 1.0, "prop": "users"},
        {"op": "<", "value": 50.0, "var": "stake"},
        {"op": "starts_with", "value": "Ann", "var": "dealer", "logic": "or"},
        {"op": "==", "value": True, "prop": "game"},
        {"op": ">=", "value": 0, "prop": "users"},
        {"op": "<", "value": 0, "prop": "users", "logic": "or"},
    ]
    s.reply(find.id, {"rooms": [{**LOBBY, "id": 3, "group": "tables", "users": 2}]})
    [resp] = out(s)
    assert resp.action == Action.FIND_ROOMS
    fr = resp.params.get_sfs_array("fr")
    assert len(fr) == 1 and fr.get_sfs_array(0).get_int(0) == 3
    assert 3 not in s.rooms  # found rooms are not joined or listed rooms of the client
    [limited] = feed(
        s, Message.system(Action.FIND_ROOMS, SFSObject().put_sfs_array("e", e).put_short("l", 5))
    )
    assert limited.limit == 5 and limited.group is None


def test_find_rooms_failures_answer_an_empty_list() -> None:
    """The client reads `fr` of every a=27 (it has no error path there)."""
    s = logged_in()
    [find] = feed(
        s,
        Message.system(
            Action.FIND_ROOMS, SFSObject().put_sfs_array("e", expression()).put_utf_string("g", "x")
        ),
    )
    s.fail(find.id, ErrorCode.GROUP_NOT_FOUND, "no group")
    bad = [
        SFSObject(),  # no expression
        SFSObject().put_sfs_array("e", SFSArray().add_int(1)),  # not an array of arrays
        SFSObject().put_sfs_array("e", SFSArray().add_sfs_array(SFSArray().add_null())),  # 1 element, not 5
        SFSObject().put_sfs_array("e", expression((None, "x", 7, "==", 1.0))),  # matcher type 7
        SFSObject().put_sfs_array("e", expression(("XOR", "x", 1, "==", 1.0))),
        SFSObject().put_sfs_array("e", expression((None, "x", 1, "~", 1.0))),  # unknown operator
        SFSObject().put_sfs_array("e", expression(*[(None, "x", 1, "==", 1.0)] * 17)),  # too long
    ]
    for p in bad:
        assert feed(s, Message.system(Action.FIND_ROOMS, p)) == []
    msgs = out(s)
    assert [x.action for x in msgs] == [Action.FIND_ROOMS] * (1 + len(bad))
    assert all(len(x.params.get_sfs_array("fr")) == 0 for x in msgs)
    assert s.state is AUTHENTICATED


def test_a_bool_matcher_with_a_number_is_a_bad_field() -> None:
    s = logged_in()
    item = SFSArray().add_null().add_utf_string("vip").add_byte(0).add_utf_string("==").add_double(1.0)
    assert (
        feed(
            s,
            Message.system(Action.FIND_ROOMS, SFSObject().put_sfs_array("e", SFSArray().add_sfs_array(item))),
        )
        == []
    )
    [resp] = out(s)
    assert resp.action == Action.FIND_ROOMS and len(resp.params.get_sfs_array("fr")) == 0


def test_quick_join_or_create_maps_to_quick_join_and_answers_as_a_join() -> None:
    s = logged_in()
    rs = SFSObject().put_utf_string("n", "Table 9").put_utf_string("g", "tables").put_bool("ig", True)
    rs.put_short("mu", 4).put_short("ms", 2)
    p = SFSObject().put_sfs_array("me", expression((None, "${HFP}", 0, "==", True)))
    p.put_utf_string_array("gl", ["tables", "vip"]).put_sfs_object("rs", rs).put_int("tl", 1)
    [quick] = feed(s, Message.system(Action.QUICK_JOIN_OR_CREATE_ROOM, p))
    assert isinstance(quick, m.QuickJoin) and quick.groups == ["tables", "vip"] and quick.leave == 1
    assert quick.where[0].prop == "free_slots" and quick.where[0].value is True
    assert quick.create is not None and (quick.create.name, quick.create.group, quick.create.game) == (
        "Table 9",
        "tables",
        True,
    )
    assert (quick.create.max_users, quick.create.max_spectators) == (4, 2)
    room = {**LOBBY, "id": 12, "name": "Table 9", "group": "tables", "game": True, "users": 1, "max_users": 4}
    s.reply(quick.id, {"room": room, "users": [ALICE]})
    [joined] = out(s)
    assert joined.action == Action.JOIN_ROOM and joined.params.get_sfs_array("r").get_int(0) == 12
    assert 12 in s.rooms
    # refusals come as JoinRoom errors (the client has no a=31 handler)
    [again] = feed(s, Message.system(Action.QUICK_JOIN_OR_CREATE_ROOM, p))
    s.fail(again.id, ErrorCode.ROOM_NAME_TAKEN, "taken")
    [err] = out(s)
    assert (err.action, err.params.get_short("ec"), err.params.get_utf_string_array("ep")) == (
        4,
        12,
        ("Table 9",),
    )
    no_rs = SFSObject().put_sfs_array("me", expression()).put_utf_string_array("gl", ["tables"])
    [plain] = feed(s, Message.system(Action.QUICK_JOIN_OR_CREATE_ROOM, no_rs))
    assert plain.create is None and plain.leave is None
    s.fail(plain.id, ErrorCode.ROOM_NOT_FOUND, "no open room matches")
    [err] = out(s)
    assert (err.action, err.params.get_short("ec")) == (4, 22)
    assert feed(s, Message.system(Action.QUICK_JOIN_OR_CREATE_ROOM, SFSObject())) == []  # no `me`
    [err] = out(s)
    assert (err.action, err.params.get_short("ec")) == (4, 28)


def test_room_changes_8_9_19_map_to_change_room_and_are_sent_once() -> None:
    s = logged_in()
    table = {**LOBBY, "id": 5, "name": "Table", "game": True, "max_users": 4, "max_spectators": 1}
    s.rooms[5] = dict(table)
    [pw] = feed(
        s, Message.system(Action.CHANGE_ROOM_PASSWORD, SFSObject().put_int("r", 5).put_utf_string("p", "x"))
    )
    assert isinstance(pw, m.ChangeRoom) and (pw.room, pw.password, pw.name, pw.max_users) == (
        5,
        "x",
        None,
        None,
    )
    s.reply(pw.id, {"room": {**table, "locked": True}, "changed": ["password"]})
    s.send_event(2, OutEvent("room_changed", {"room": {**table, "locked": True}, "changed": ["password"]}))
    [resp] = out(s)  # the event found nothing new
    assert resp.action == Action.CHANGE_ROOM_PASSWORD
    assert resp.params.get_int("r") == 5 and resp.params.get_bool("p") is True
    cap = SFSObject().put_int("r", 5).put_int("u", 6).put_int("s", 0)
    [c] = feed(s, Message.system(Action.CHANGE_ROOM_CAPACITY, cap))
    assert (c.max_users, c.max_spectators, c.password) == (6, 0, None)
    [n] = feed(
        s, Message.system(Action.CHANGE_ROOM_NAME, SFSObject().put_int("r", 5).put_utf_string("n", "T2"))
    )
    assert n.name == "T2"
    # another user's change of both: two events to this client
    changed = {**table, "locked": True, "name": "T2", "max_users": 6, "max_spectators": 0}
    s.send_event(
        3, OutEvent("room_changed", {"room": changed, "changed": ["name", "max_users", "max_spectators"]})
    )
    name, capacity = out(s)
    assert (name.action, name.params.get_utf_string("n")) == (Action.CHANGE_ROOM_NAME, "T2")
    assert capacity.action == Action.CHANGE_ROOM_CAPACITY
    assert [capacity.params.type_of(k) for k in "rus"] == [SFSType.INT] * 3
    assert (capacity.params.get_int("u"), capacity.params.get_int("s")) == (6, 0)
    s.reply(c.id, {"room": changed, "changed": []})
    s.reply(n.id, {"room": changed, "changed": []})
    assert out(s) == []
    s.send_event(4, OutEvent("room_changed", {"room": {**changed, "id": 99}, "changed": ["name"]}))
    assert out(s) == []  # a room the client does not know: it would drop it


def test_refused_room_changes_get_29_30_31_or_the_name_taken() -> None:
    s = logged_in()
    s.rooms[5] = {**LOBBY, "id": 5, "name": "Table"}
    cases = [
        (
            Action.CHANGE_ROOM_NAME,
            SFSObject().put_int("r", 5).put_utf_string("n", "T"),
            ErrorCode.PERMISSION_DENIED,
            29,
        ),
        (
            Action.CHANGE_ROOM_NAME,
            SFSObject().put_int("r", 5).put_utf_string("n", "T"),
            ErrorCode.NOT_SUPPORTED,
            29,
        ),
        (
            Action.CHANGE_ROOM_NAME,
            SFSObject().put_int("r", 5).put_utf_string("n", "T"),
            ErrorCode.ROOM_NAME_TAKEN,
            12,
        ),
        (
            Action.CHANGE_ROOM_PASSWORD,
            SFSObject().put_int("r", 5).put_utf_string("p", ""),
            ErrorCode.PERMISSION_DENIED,
            30,
        ),
        (
            Action.CHANGE_ROOM_CAPACITY,
            SFSObject().put_int("r", 5).put_int("u", 2).put_int("s", 3),
            ErrorCode.BAD_REQUEST,
            31,
        ),
        (
            Action.CHANGE_ROOM_CAPACITY,
            SFSObject().put_int("r", 5).put_int("u", 2).put_int("s", 0),
            ErrorCode.ROOM_NOT_FOUND,
            22,
        ),
    ]
    for action, params, code, ec in cases:
        [req] = feed(s, Message.system(action, params))
        s.fail(req.id, code, "no")
        [err] = out(s)
        assert (err.action, err.params.get_short("ec")) == (action, ec)
        if ec != 22:
            assert err.params.get_utf_string_array("ep") in (("Table",), ("T",))
    # out-of-range sizes never reach the hub
    for u in (0, 10_001):
        assert (
            feed(
                s,
                Message.system(
                    Action.CHANGE_ROOM_CAPACITY, SFSObject().put_int("r", 5).put_int("u", u).put_int("s", 0)
                ),
            )
            == []
        )
        [err] = out(s)
        assert (err.action, err.params.get_short("ec")) == (Action.CHANGE_ROOM_CAPACITY, 28)


def test_sessions_move_to_a_successor_and_their_clients_take_them_back_there() -> None:
    """A rolling restart: the registry's sessions go to the successor as `HrcState`s
    (encoded as the handover does), wait there as dropped sessions, and a reconnection
    with the old token takes one back; sessions that cannot reconnect do not move."""
    old_reg = Reconnections(30.0)
    s, _ = hrc_logged_in(old_reg)
    [join] = feed_tcp(s, Message.system(Action.JOIN_ROOM, SFSObject().put_int("i", 1)))
    s.reply(join.id, {"room": {**LOBBY, "users": 1}, "users": [ALICE]})
    s.send_event(9, OutEvent("public_message", {"room": 1, "from": 7, "text": "x"}))
    [spin] = feed_tcp(s, extension_request("casino.spin", SFSObject().put_utf_string("game", "fruit_slot")))
    out(s)
    gone, _ = hrc_logged_in(old_reg)  # dropped before the move: its window keeps running
    gone.connection_lost(5.0)
    kicked, _ = hrc_logged_in(old_reg)
    kicked.close(CloseCode.KICKED, "bye")  # closed by the server: not resumable
    states = msgspec.msgpack.decode(msgspec.msgpack.encode(old_reg.export()), type=list[HrcState])
    assert sorted(st.token for st in states) == sorted([s.token, gone.token])
    new_reg = Reconnections(30.0)
    rooms = {1: {**LOBBY, "users": 1}}
    for state in states:
        SfsSession(SessionLimits(), FloodLimits(), 20.0, stream=True, reconnections=new_reg).adopt(
            state, rooms, 20.0
        )
    assert len(new_reg) == 2
    back = SfsSession(SessionLimits(), FloodLimits(), 21.0, stream=True, reconnections=new_reg)
    [resume] = feed_tcp(back, handshake_request(client_type=UNITY, reconnection_token=s.token), 21.0)
    assert isinstance(resume, m.Resume) and (resume.token, resume.last_seq) == ("native-tk", 9)
    back.authenticate()
    back.reply(resume.id, {"user": 7, "last_seq": 9})
    [hs] = out(back)
    assert hs.action == Action.HANDSHAKE and hs.params.get_utf_string("tk") == s.token
    assert back.rooms.keys() == {1} and back.me == ALICE and back.zone == "demo"
    [again] = feed_tcp(
        back, extension_request("casino.spin", SFSObject().put_utf_string("game", "fruit_slot"))
    )
    assert again.id > spin.id  # the numbering moved with it
    back.reply(spin.id, {"round": "r1"})  # a reply owed at the move is not carried over
    assert out(back) == []
    late = SfsSession(SessionLimits(), FloodLimits(), 36.0, stream=True, reconnections=new_reg)
    feed_tcp(late, handshake_request(client_type=UNITY, reconnection_token=gone.token), 36.0)
    [hs] = out(late)  # dropped at 5 s, window 30 s: gone at 36 s, a new session
    assert hs.params.get_utf_string("tk") != gone.token


def test_find_users_28_maps_user_properties_and_answers_fu() -> None:
    s = logged_in()
    e = expression(
        (None, "${N}", 2, "startsWith", "b"),
        ("AND", "${ISP}", 0, "==", True),  # a user's ${ISP} is "is player", not "is private"
        ("OR", "${PRID}", 1, ">=", 2.0),
        ("AND", "${ISN}", 0, "==", False),  # no NPCs here: always true
        ("AND", "level", 1, ">", 3.0),
    )
    [find] = feed(s, Message.system(Action.FIND_USERS, SFSObject().put_sfs_array("e", e).put_int("r", 1)))
    assert isinstance(find, m.FindUsers) and (find.room, find.group, find.limit) == (1, None, 1000)
    assert [msgspec.to_builtins(c) for c in find.where] == [
        {"op": "starts_with", "value": "b", "prop": "name"},
        {"op": "==", "value": True, "prop": "player"},
        {"op": ">=", "value": 2.0, "prop": "role", "logic": "or"},
        {"op": ">=", "value": 0, "prop": "role"},
        {"op": ">", "value": 3.0, "var": "level"},
    ]
    s.reply(find.id, {"users": [{**BOB, "player_id": 1, "variables": [{"name": "level", "value": 5}]}]})
    [resp] = out(s)
    assert resp.action == Action.FIND_USERS
    fu = resp.params.get_sfs_array("fu")
    assert (
        len(fu) == 1
        and fu.get_sfs_array(0).get_int(0) == 8
        and fu.get_sfs_array(0).get_utf_string(1) == "bob"
    )
    [by_group] = feed(
        s,
        Message.system(
            Action.FIND_USERS, SFSObject().put_sfs_array("e", e).put_utf_string("g", "x").put_short("l", 3)
        ),
    )
    assert (by_group.room, by_group.group, by_group.limit) == (None, "x", 3)
    s.fail(by_group.id, ErrorCode.GROUP_NOT_FOUND, "no")  # no error path in the client: none found
    assert feed(s, Message.system(Action.FIND_USERS, SFSObject())) == []  # no expression
    msgs = out(s)
    assert [x.action for x in msgs] == [Action.FIND_USERS] * 2
    assert all(len(x.params.get_sfs_array("fu")) == 0 for x in msgs)


def test_invitations_300_and_301_both_ways() -> None:
    s = logged_in()
    p = (
        SFSObject()
        .put_int_array("iu", [8, 9])
        .put_short("t", 400)
        .put_sfs_object("p", SFSObject().put_utf_string("k", "v"))
    )
    [inv] = feed(s, Message.system(Action.INVITE_USERS, p))
    assert isinstance(inv, m.Invite) and inv.users == [8, 9] and inv.seconds == 300 and inv.data == {"k": "v"}
    s.reply(inv.id, {"invitation": 77, "invited": [8, 9]})
    assert out(s) == []  # SFS2X does not answer an InviteUsers
    s.send_event(3, OutEvent("invitation", {"id": 78, "from": BOB, "seconds": 20, "data": {"table": "T"}}))
    [got] = out(s)
    assert got.action == Action.INVITE_USERS and got.params.get_int("ii") == 78
    assert got.params.get_short("t") == 20 and got.params.get_sfs_array("u").get_utf_string(1) == "bob"
    assert got.params.get_sfs_object("p").get_utf_string("table") == "T"
    [rep] = feed(s, Message.system(Action.INVITATION_REPLY, SFSObject().put_int("i", 78).put_byte("r", 0)))
    assert isinstance(rep, m.InvitationReply) and (rep.invitation, rep.accept, rep.data) == (78, True, None)
    s.reply(rep.id, {"invitation": 78})
    [no] = feed(s, Message.system(Action.INVITATION_REPLY, SFSObject().put_int("i", 78).put_byte("r", 1)))
    assert no.accept is False
    s.fail(no.id, ErrorCode.INVITATION_NOT_FOUND, "answered already")
    [err] = out(s)
    assert (err.action, err.params.get_short("ec")) == (Action.INVITATION_REPLY, 42)
    for data, ri in [
        ({"invitation": 77, "from": BOB, "accept": True, "data": {"seat": 1}}, 0),
        ({"invitation": 77, "from": {**BOB, "id": 9, "name": "cid"}, "accept": False, "data": None}, 1),
        ({"invitation": 77, "from": {"id": 10}, "accept": False, "expired": True}, 255),
    ]:
        s.send_event(4, OutEvent("invitation_reply", data))
        [ev] = out(s)
        assert ev.action == Action.INVITATION_REPLY and ev.params.get_byte("ri") == ri
        assert ev.params.get_sfs_array("u").get_int(0) == data["from"]["id"]
