"""Request parsers and response builders of spec §6.1-§6.11, and the auth helpers."""

from __future__ import annotations

import pytest

from protocol.sfs2x import (
    Action,
    DisconnectionReason,
    Message,
    MessageType,
    RoomInfo,
    RoomVariable,
    SFSArray,
    SFSDecodeError,
    SFSFieldError,
    SFSObject,
    SFSType,
    UserInfo,
    UserVariable,
    check_password,
    decode_frame,
    encode_frame,
    new_session_token,
    password_hash,
    room_array,
    room_list,
    user_array,
)
from protocol.sfs2x.envelope import RecipientMode, room_variable_array, user_variable_array
from protocol.sfs2x.messages import (
    GenericMessageRequest,
    admin_message,
    client_disconnection,
    extension_request,
    extension_response,
    handshake_response,
    join_room_response,
    login_request,
    login_response,
    logout_response,
    moderator_message,
    object_message,
    parse_ban_user,
    parse_create_room,
    parse_extension_request,
    parse_generic_message,
    parse_handshake,
    parse_join_room,
    parse_kick_user,
    parse_leave_room,
    parse_login,
    parse_room_group,
    parse_set_room_variables,
    parse_set_user_variables,
    ping_request,
    private_message,
    public_message,
    room_add,
    room_group_subscribed,
    room_group_unsubscribed,
    room_lost,
    room_variables_update,
    user_count_change,
    user_enter_room,
    user_exit_room,
    user_lost,
    user_variables_update,
)

T = SFSType
LOBBY = RoomInfo(1, "Lobby", user_count=2, max_users=100)
ALICE = UserInfo(7, "alice", privilege=1)
SERVER = UserInfo(-1, "Server", privilege=3)


def _shape(message: Message) -> dict[str, SFSType]:
    return {key: entry[0] for key, entry in message.params.entries()}


def _roundtrip(message: Message) -> Message:
    decoded = decode_frame(encode_frame(message))
    assert decoded == message
    return decoded


# ---------------------------------------------------------------------------
# Handshake and login


def test_parse_handshake_csharp() -> None:
    """The C# client also sends bin and the reconnection token rt."""
    p = SFSObject().put_utf_string("api", "1.7.0").put_utf_string("cl", "UnityPlayer:x").put_bool("bin", True)
    p.put_utf_string("rt", "abc")
    request = parse_handshake(p)
    assert (request.client_type, request.reconnection_token, request.binary) == ("UnityPlayer:x", "abc", True)
    with pytest.raises(SFSFieldError, match="missing field 'cl'"):
        parse_handshake(SFSObject().put_utf_string("api", "1"))


def test_login_response_shape() -> None:
    """zn, un, id:INT, pi:SHORT, rs:SHORT, rl:SFS_ARRAY of Room arrays, p:SFS_OBJECT."""
    message = login_response("Casino", "Guest#1", 99, 0, [LOBBY], reconnection_seconds=30)
    assert (message.controller, message.action) == (0, Action.LOGIN)
    assert _shape(message) == {
        "zn": T.UTF_STRING,
        "un": T.UTF_STRING,
        "id": T.INT,
        "pi": T.SHORT,
        "rs": T.SHORT,
        "rl": T.SFS_ARRAY,
        "p": T.SFS_OBJECT,
    }
    assert message.params.get_sfs_array("rl") == room_list([LOBBY])
    assert _roundtrip(message).params.get_short("rs") == 30


def test_login_request_with_params() -> None:
    """Custom login parameters travel in p."""
    extra = SFSObject().put_utf_string("ticket", "t-1")
    login = parse_login(_roundtrip(login_request("Casino", "bob", password_hash("tk", "pw"), extra)).params)
    assert login.params == extra and len(login.password) == 32


def test_handshake_response_admin_flag() -> None:
    """aph is a BOOL, sent only when given."""
    assert "aph" not in handshake_response("tk").params
    assert handshake_response("tk", admin_password_hashed=True).params.get_bool("aph") is True


def test_logout_response() -> None:
    """Logout answers zn."""
    assert _shape(logout_response("Casino")) == {"zn": T.UTF_STRING}


def test_auth_helpers() -> None:
    """Tokens are 32 hex chars; check_password compares md5(token + password)."""
    token = new_session_token()
    assert len(token) == 32 and int(token, 16) >= 0 and token != new_session_token()
    assert check_password(token, "secret", password_hash(token, "secret"))
    assert not check_password(token, "secret", password_hash(token, "other"))
    assert check_password(token, "", "")
    assert not check_password(token, "secret", "\udcff")


# ---------------------------------------------------------------------------
# Rooms


def test_parse_join_room() -> None:
    """JoinRoom by id or by name, with optional password, room to leave and spectator flag."""
    by_id = parse_join_room(SFSObject().put_int("i", 3).put_int("rl", 1).put_bool("sp", True))
    assert (by_id.room_id, by_id.room_name, by_id.leave_room_id, by_id.as_spectator) == (3, None, 1, True)
    by_name = parse_join_room(SFSObject().put_utf_string("n", "Lobby").put_utf_string("p", "pw"))
    assert (by_name.room_id, by_name.room_name, by_name.password) == (None, "Lobby", "pw")
    with pytest.raises(SFSFieldError, match="missing field 'i'"):
        parse_join_room(SFSObject())
    with pytest.raises(SFSFieldError, match="'i' is short"):
        parse_join_room(SFSObject().put_short("i", 3))


def test_join_and_room_events() -> None:
    """Join response and the events around it carry the spec's keys and types."""
    join = join_room_response(LOBBY, [ALICE])
    assert _shape(join) == {"r": T.SFS_ARRAY, "ul": T.SFS_ARRAY}
    assert join.params.get_sfs_array("ul").get_sfs_array(0) == user_array(ALICE)
    _roundtrip(join)
    enter = user_enter_room(1, ALICE)
    assert (enter.action, _shape(enter)) == (1000, {"r": T.INT, "u": T.SFS_ARRAY})
    count = user_count_change(1, 3)
    assert (count.action, _shape(count)) == (1001, {"r": T.INT, "uc": T.SHORT})
    assert _shape(user_count_change(1, 3, 1)) == {"r": T.INT, "uc": T.SHORT, "sc": T.SHORT}
    assert (user_lost(7).action, _shape(user_lost(7))) == (1002, {"u": T.INT})
    assert (room_lost(1).action, _shape(room_lost(1))) == (1003, {"r": T.INT})
    leave = user_exit_room(1, 7)
    assert (leave.action, _shape(leave)) == (1004, {"r": T.INT, "u": T.INT})
    add = room_add(LOBBY)
    assert (add.action, add.params.get_sfs_array("r")) == (6, room_array(LOBBY))
    assert parse_leave_room(SFSObject().put_int("r", 1)) == 1


def test_create_room() -> None:
    """CreateRoom params with defaults; initial variables are parsed."""
    variable = RoomVariable("bet", 10)
    p = (
        SFSObject()
        .put_utf_string("n", "Poker")
        .put_bool("ig", True)
        .put_short("mu", 6)
        .put_sfs_array("rv", SFSArray().add_sfs_array(room_variable_array(variable)))
        .put_bool("aj", True)
    )
    request = parse_create_room(p)
    assert (request.name, request.group_id, request.is_game, request.max_users) == (
        "Poker",
        "default",
        True,
        6,
    )
    assert (request.max_spectators, request.max_variables, request.auto_join) == (0, 5, True)
    assert request.variables == (variable,)
    assert parse_create_room(SFSObject().put_utf_string("n", "x")).variables == ()


def test_room_groups() -> None:
    """Subscribe answers g and rl; unsubscribe answers g."""
    assert parse_room_group(SFSObject().put_utf_string("g", "tables")) == "tables"
    subscribed = room_group_subscribed("tables", [LOBBY])
    assert (subscribed.action, _shape(subscribed)) == (15, {"g": T.UTF_STRING, "rl": T.SFS_ARRAY})
    assert room_group_unsubscribed("tables").action == 16


# ---------------------------------------------------------------------------
# Generic messages


def test_parse_generic_messages() -> None:
    """Each message type requires its own fields."""
    public = SFSObject().put_byte("t", 0).put_int("r", 1).put_int("u", 7).put_utf_string("m", "hi")
    assert parse_generic_message(public) == GenericMessageRequest(MessageType.PUBLIC, room_id=1, message="hi")
    private = SFSObject().put_byte("t", 1).put_int("rc", 8).put_utf_string("m", "psst")
    assert parse_generic_message(private).recipient == 8
    obj = SFSObject().put_byte("t", 4).put_int("r", 1).put_sfs_object("p", SFSObject().put_int("x", 1))
    assert parse_generic_message(obj).recipients is None
    assert parse_generic_message(obj.put_int_array("rc", [8, 9])).recipients == (8, 9)
    mod = (
        SFSObject().put_byte("t", 2).put_utf_string("m", "!").put_int("rm", 2).put_utf_string("rc", "tables")
    )
    parsed = parse_generic_message(mod)
    assert (parsed.recipient_mode, parsed.recipient) == (RecipientMode.GROUP, "tables")
    zone = SFSObject().put_byte("t", 3).put_utf_string("m", "!").put_int("rm", 3)
    assert parse_generic_message(zone).recipient is None
    buddy = SFSObject().put_byte("t", 5).put_utf_string("m", "yo")
    assert parse_generic_message(buddy).message == "yo"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (SFSObject().put_byte("t", 9), "unknown message type 9"),
        (SFSObject().put_byte("t", 0).put_utf_string("m", "x"), "missing field 'r'"),
        (SFSObject().put_byte("t", 1).put_utf_string("m", "x"), "missing field 'rc'"),
        (SFSObject().put_byte("t", 2).put_utf_string("m", "x").put_int("rm", 7), "unknown recipient mode 7"),
        (SFSObject().put_byte("t", 2).put_utf_string("m", "x").put_int("rm", 0), "missing field 'rc'"),
        (SFSObject().put_int("t", 0), "'t' is int"),
    ],
)
def test_bad_generic_messages(params: SFSObject, message: str) -> None:
    """Malformed generic messages are decode errors."""
    with pytest.raises(SFSDecodeError, match=message):
        parse_generic_message(params)


def test_generic_message_builders() -> None:
    """Outgoing messages carry t as a BYTE and the sender as documented."""
    public = public_message(1, 7, "hi")
    assert _shape(public) == {"t": T.BYTE, "r": T.INT, "u": T.INT, "m": T.UTF_STRING}
    data = SFSObject().put_int("x", 1)
    private = private_message(7, "psst", data, sender=ALICE)
    assert _shape(private) == {
        "t": T.BYTE,
        "p": T.SFS_OBJECT,
        "u": T.INT,
        "m": T.UTF_STRING,
        "sd": T.SFS_ARRAY,
    }
    assert private.params.get_byte("t") == MessageType.PRIVATE
    assert _shape(object_message(7, data)) == {"t": T.BYTE, "p": T.SFS_OBJECT, "u": T.INT}
    moderator = moderator_message("You are kicked", SERVER)
    assert moderator.params.get_byte("t") == 2
    assert moderator.params.get_sfs_array("sd") == user_array(SERVER)
    assert admin_message("Restart soon", SERVER).params.get_byte("t") == 3
    for message in (public, private, moderator):
        _roundtrip(message)


# ---------------------------------------------------------------------------
# Variables


def test_variables_requests_and_updates() -> None:
    """SetRoomVariables / SetUserVariables parse and their updates rebuild the arrays."""
    room_vars = (RoomVariable("pot", 250.5), RoomVariable("old", None))
    p = SFSObject().put_int("r", 1)
    p.put_sfs_array("vl", SFSArray.of(T.SFS_ARRAY, map(room_variable_array, room_vars)))
    request = parse_set_room_variables(p)
    assert (request.room_id, request.variables) == (1, room_vars)
    update = room_variables_update(1, request.variables)
    assert update.action == 11 and update.params == p

    user_vars = (UserVariable("chips", 1000, is_private=True),)
    vl = SFSArray.of(T.SFS_ARRAY, map(user_variable_array, user_vars))
    assert parse_set_user_variables(SFSObject().put_sfs_array("vl", vl)) == user_vars
    assert user_variables_update(7, user_vars).params == SFSObject().put_int("u", 7).put_sfs_array("vl", vl)
    with pytest.raises(SFSFieldError, match="field 0 is int"):
        parse_set_user_variables(SFSObject().put_sfs_array("vl", SFSArray().add_int(1)))


# ---------------------------------------------------------------------------
# Extensions, ping, moderation


def test_extension_request_round_trip() -> None:
    """c=1 a=13 with c, r and p; missing r means the Zone extension (-1)."""
    params = SFSObject().put_int("bet", 5)
    message = _roundtrip(extension_request("casino.spin", params, room_id=4))
    assert (message.controller, message.action) == (1, 13)
    request = parse_extension_request(message.params)
    assert (request.command, request.room_id, request.params) == ("casino.spin", 4, params)
    bare = parse_extension_request(SFSObject().put_utf_string("c", "casino.balance"))
    assert (bare.room_id, bare.params) == (-1, SFSObject())
    response = _roundtrip(extension_response("casino.spin", params, room_id=4))
    assert response.params.get_int("r") == 4 and response.params.get_sfs_object("p") == params


def test_ping_is_empty() -> None:
    """The lag-monitor ping is a=29 with an empty p."""
    assert ping_request() == Message(0, 29, SFSObject())


def test_kick_and_ban() -> None:
    """Kick and ban params with the API defaults (delay 5 s, ban by name for 24 h)."""
    kick = parse_kick_user(SFSObject().put_int("u", 9))
    assert (kick.user_id, kick.delay, kick.message) == (9, 5, None)
    ban = parse_ban_user(SFSObject().put_int("u", 9).put_int("b", 0).put_utf_string("m", "bye"))
    assert (ban.user_id, ban.delay, ban.mode, ban.hours, ban.message) == (9, 5, 0, 24, "bye")
    full = parse_ban_user(SFSObject().put_int("u", 1).put_int("d", 0).put_int("dh", 1))
    assert (full.delay, full.hours, full.mode) == (0, 1, 1)


def test_disconnection_reasons() -> None:
    """1005 dr is a BYTE for every reason."""
    for reason in DisconnectionReason:
        message = _roundtrip(client_disconnection(reason))
        assert message.params.get_byte("dr") == reason
