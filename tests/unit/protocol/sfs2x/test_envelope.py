"""Message envelope, code tables and the shared structures of spec §6.0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from protocol.sfs2x import (
    Action,
    Controller,
    DisconnectionReason,
    ErrorCode,
    Message,
    MessageType,
    PacketReader,
    RoomInfo,
    RoomVariable,
    SFSArray,
    SFSDecodeError,
    SFSEncodeError,
    SFSFieldError,
    SFSObject,
    SFSType,
    UserInfo,
    UserVariable,
    VariableType,
    decode_frame,
    decode_packet_message,
    decode_payload,
    encode_frame,
    encode_object,
    encode_payload,
    error_response,
    room_array,
    room_list,
    user_array,
    user_list,
)
from protocol.sfs2x.envelope import (
    MMOInfo,
    parse_room_array,
    parse_room_variable,
    parse_user_array,
    parse_user_variable,
    room_variable_array,
    user_variable_array,
    variable_entry,
)

T = SFSType


def _types(arr: SFSArray) -> list[SFSType | None]:
    return [arr.type_of(i) for i in range(len(arr))]


# ---------------------------------------------------------------------------
# Code tables


def test_code_tables() -> None:
    """Spot checks of §5, §6.7, §6.11 and §9."""
    assert (Action.HANDSHAKE, Action.CALL_EXTENSION, Action.PING_PONG) == (0, 13, 29)
    assert Action.ROOM_ADD is Action.CREATE_ROOM
    assert (Action.INIT_BUDDY_LIST, Action.GO_ONLINE, Action.JOIN_ROOM_INVITE) == (200, 205, 304)
    assert (Action.CLUSTER_JOIN_OR_CREATE, Action.CLUSTER_INVITE_USERS) == (500, 502)
    assert Action.GAME_SERVER_CONNECTION_REQUIRED == 600
    assert [Action(i).name for i in range(1000, 1008)] == [
        "USER_ENTER_ROOM",
        "USER_COUNT_CHANGE",
        "USER_LOST",
        "ROOM_LOST",
        "USER_EXIT_ROOM",
        "CLIENT_DISCONNECTION",
        "RECONNECTION_FAILURE",
        "SET_MMO_ITEM_VARIABLES",
    ]
    assert Action.LOAD_BALANCER_ERROR == 1600
    assert list(ErrorCode) == [ErrorCode(i) for i in range(43)]
    assert ErrorCode.GENERIC_ERROR == 28 and ErrorCode.INVITATION_NOT_VALID == 42
    assert [r.name for r in DisconnectionReason] == ["IDLE", "KICK", "BAN", "MANUAL", "UNKNOWN"]
    assert [m.value for m in MessageType] == list(range(6)) and MessageType.BUDDY == 5
    assert [v.value for v in VariableType] == list(range(7))


# ---------------------------------------------------------------------------
# Envelope


def test_envelope_types_and_order() -> None:
    """c is a BYTE, a a SHORT, p an SFS_OBJECT, written in the order c, a, p."""
    payload = encode_payload(Message(Controller.EXTENSION, Action.CALL_EXTENSION, SFSObject()))
    assert payload == bytes.fromhex("120003 000163 0201 000161 03000d 000170 120000".replace(" ", ""))
    message = decode_payload(payload)
    assert message == Message(1, 13, SFSObject())
    assert Message.system(Action.LOGOUT) == Message(0, 2)


def test_envelope_range_checks() -> None:
    """Controller and action must fit a BYTE and a SHORT."""
    with pytest.raises(SFSEncodeError, match="byte out of range"):
        encode_payload(Message(256, 0))
    with pytest.raises(SFSEncodeError, match="short out of range"):
        encode_payload(Message(0, 40_000))


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (SFSObject().put_short("a", 0).put_sfs_object("p", SFSObject()), "missing field 'c'"),
        (SFSObject().put_byte("c", 0).put_sfs_object("p", SFSObject()), "missing field 'a'"),
        (SFSObject().put_byte("c", 0).put_short("a", 0), "missing field 'p'"),
        (SFSObject().put_int("c", 0).put_short("a", 0).put_sfs_object("p", SFSObject()), "'c' is int"),
        (SFSObject().put_byte("c", 0).put_int("a", 0).put_sfs_object("p", SFSObject()), "'a' is int"),
        (SFSObject().put_byte("c", 0).put_short("a", 0).put_sfs_array("p", SFSArray()), "'p' is sfs_array"),
    ],
)
def test_envelope_fields_are_required(obj: SFSObject, message: str) -> None:
    """A payload without a well-typed c, a and p is a decode error."""
    with pytest.raises(SFSFieldError, match=message):
        decode_payload(encode_object(obj))


def test_extra_envelope_keys_are_ignored() -> None:
    """Unknown top-level keys do not break decoding."""
    obj = SFSObject().put_byte("c", 0).put_short("a", 29).put_sfs_object("p", SFSObject()).put_int("x", 1)
    assert decode_payload(encode_object(obj)) == Message(0, 29)


def test_unknown_ids_are_representable() -> None:
    """Unknown controllers and actions decode as plain ints for the server to reject."""
    message = Message(7, 4321)
    assert decode_frame(encode_frame(message)) == message


def test_decode_frame_errors_are_documented() -> None:
    """Frame-level and payload-level problems are both SFSDecodeError."""
    with pytest.raises(SFSDecodeError):
        decode_frame(b"\x80\x00\x03\x11\x00\x00")
    with pytest.raises(SFSDecodeError):
        decode_frame(b"\x80\x00\x00")
    with pytest.raises(SFSDecodeError, match="packet too big"):
        decode_frame(encode_frame(Message(0, 0)), max_packet_size=10)
    with pytest.raises(SFSDecodeError, match="too many elements"):
        decode_frame(encode_frame(Message(0, 0, SFSObject().put_int("x", 1))), max_items=3)
    with pytest.raises(SFSDecodeError, match="nesting too deep"):
        decode_frame(encode_frame(Message(0, 0)), max_depth=1)


def test_tcp_path() -> None:
    """PacketReader packets decode to messages with decode_packet_message."""
    reader = PacketReader()
    reader.receive_data(encode_frame(Message(0, 29)) + encode_frame(Message(1, 13)))
    assert [decode_packet_message(p) for p in reader.packets_received()] == [Message(0, 29), Message(1, 13)]


def test_error_response() -> None:
    """ec is a SHORT, ep a UTF_STRING_ARRAY, empty when there are no parameters."""
    message = error_response(Action.JOIN_ROOM, ErrorCode.JOIN_ROOM_FULL, "Lobby")
    assert message == Message(0, 4, SFSObject().put_short("ec", 20).put_utf_string_array("ep", ["Lobby"]))
    assert error_response(Action.LOGIN, ErrorCode.LOGIN_SERVER_FULL).params.get_utf_string_array("ep") == ()
    extension = error_response(
        13, ErrorCode.GENERIC_ERROR, "Insufficient funds", controller=Controller.EXTENSION
    )
    assert extension.controller == 1


# ---------------------------------------------------------------------------
# Variables


@pytest.mark.parametrize(
    ("value", "var_type", "wire"),
    [
        (None, VariableType.NULL, T.NULL),
        (True, VariableType.BOOL, T.BOOL),
        (7, VariableType.INT, T.INT),
        (-(1 << 31), VariableType.INT, T.INT),
        (1 << 31, VariableType.DOUBLE, T.DOUBLE),
        (0.5, VariableType.DOUBLE, T.DOUBLE),
        ("x", VariableType.STRING, T.UTF_STRING),
        (SFSObject(), VariableType.SFS_OBJECT, T.SFS_OBJECT),
        (SFSArray(), VariableType.SFS_ARRAY, T.SFS_ARRAY),
    ],
)
def test_variable_types(value: object, var_type: VariableType, wire: SFSType) -> None:
    """varType and wire type are inferred as the JS client does (whole int32 -> INT, else DOUBLE)."""
    assert variable_entry(value)[0] is var_type  # type: ignore[arg-type]
    assert variable_entry(value)[1][0] is wire  # type: ignore[arg-type]


def test_variable_out_of_range() -> None:
    """Ints beyond 2**53 and other Python types are refused."""
    with pytest.raises(SFSEncodeError, match="variable value out of range"):
        variable_entry(1 << 60)
    with pytest.raises(SFSEncodeError, match="unsupported variable value list"):
        variable_entry([])  # type: ignore[arg-type]


def test_room_variable_array() -> None:
    """[name:UTF_STRING, varType:BYTE, value, isPrivate:BOOL, isPersistent:BOOL]."""
    arr = room_variable_array(RoomVariable("jackpot", 1500, is_persistent=True))
    assert _types(arr) == [T.UTF_STRING, T.BYTE, T.INT, T.BOOL, T.BOOL]
    assert list(arr) == ["jackpot", 2, 1500, False, True]
    assert parse_room_variable(arr) == RoomVariable("jackpot", 1500, False, True)


def test_user_variable_array() -> None:
    """[name, varType:BYTE, value, isPrivate:BOOL]; NULL means delete."""
    arr = user_variable_array(UserVariable("avatar", None))
    assert _types(arr) == [T.UTF_STRING, T.BYTE, T.NULL, T.BOOL]
    assert parse_user_variable(arr) == UserVariable("avatar", None)
    short = SFSArray().add_utf_string("level").add_byte(3).add_double(2.5)
    assert parse_user_variable(short) == UserVariable("level", 2.5, False)


@pytest.mark.parametrize(
    ("arr", "message"),
    [
        (SFSArray().add_utf_string("v").add_byte(9).add_null(), "unknown variable type 9"),
        (SFSArray().add_utf_string("v").add_byte(2).add_short(1), "value does not match type int"),
        (SFSArray().add_utf_string("v").add_byte(4).add_text("s"), "does not match type string"),
        (SFSArray().add_utf_string("v").add_byte(2), "missing field 2"),
        (SFSArray().add_utf_string("v").add_byte(1).add_bool(True).add_byte(1), "field 3 is byte"),
        (SFSArray().add_int(1), "field 0 is int"),
    ],
)
def test_bad_variables(arr: SFSArray, message: str) -> None:
    """Variables from clients with a wrong shape are decode errors."""
    with pytest.raises(SFSDecodeError, match=message):
        parse_room_variable(arr)


# ---------------------------------------------------------------------------
# Room and User arrays


def test_room_array_plain_room() -> None:
    """A non-game room has 9 elements with the spec's types (id INT, counts SHORT)."""
    room = RoomInfo(12, "Lobby", user_count=3, max_users=50, variables=(RoomVariable("topic", "slots"),))
    arr = room_array(room)
    assert _types(arr) == [
        T.INT,
        T.UTF_STRING,
        T.UTF_STRING,
        T.BOOL,
        T.BOOL,
        T.BOOL,
        T.SHORT,
        T.SHORT,
        T.SFS_ARRAY,
    ]
    assert list(arr)[:8] == [12, "Lobby", "default", False, False, False, 3, 50]
    assert arr.get_sfs_array(8) == SFSArray().add_sfs_array(room_variable_array(room.variables[0]))
    assert parse_room_array(arr) == room


def test_room_array_game_room() -> None:
    """A game room adds spectator count and max spectators as SHORTs (11 elements)."""
    room = RoomInfo(5, "Blackjack #1", "tables", True, False, True, 2, 7, spectator_count=1, max_spectators=3)
    arr = room_array(room)
    assert len(arr) == 11 and _types(arr)[9:] == [T.SHORT, T.SHORT]
    assert list(arr)[9:] == [1, 3]
    assert parse_room_array(arr) == room


def test_room_array_mmo_room() -> None:
    """An MMO room has exactly 14 elements; vectors are INT_ARRAY or FLOAT_ARRAY."""
    mmo = MMOInfo((10, 10, 0), (-100, -100, 0), (100, 100, 0))
    arr = room_array(RoomInfo(1, "World", mmo=mmo))
    assert len(arr) == 14
    assert _types(arr)[11:] == [T.INT_ARRAY] * 3
    assert parse_room_array(arr).mmo == mmo
    floats = MMOInfo((1.5, 1.5, 0.0), (-1.0, -1.0, 0.0), (1.0, 1.0, 0.0), floats=True)
    arr = room_array(RoomInfo(1, "World", mmo=floats))
    assert _types(arr)[11:] == [T.FLOAT_ARRAY] * 3
    assert parse_room_array(arr).mmo == floats
    bad = SFSArray(arr.entries()[:11])
    bad.add_int_array([1, 2]).add_int_array([1, 2, 3]).add_int_array([1, 2, 3])
    with pytest.raises(SFSDecodeError, match="mmo vector 11 must have 3 elements"):
        parse_room_array(bad)


def test_room_array_range_errors() -> None:
    """Out-of-range values for SHORT or INT fields raise SFSEncodeError."""
    with pytest.raises(SFSEncodeError, match="short out of range"):
        room_array(RoomInfo(1, "Huge", user_count=40_000))
    with pytest.raises(SFSEncodeError, match="int out of range"):
        room_array(RoomInfo(1 << 31, "Bad id"))


def test_user_array() -> None:
    """[id:INT, name:UTF_STRING, privilegeId:SHORT, playerId:SHORT, userVariables:SFS_ARRAY]."""
    user = UserInfo(42, "alice", privilege=1, player_id=-1, variables=(UserVariable("chips", 500),))
    arr = user_array(user)
    assert _types(arr) == [T.INT, T.UTF_STRING, T.SHORT, T.SHORT, T.SFS_ARRAY]
    assert list(arr)[:4] == [42, "alice", 1, -1]
    assert parse_user_array(arr) == user


def test_lists() -> None:
    """room_list / user_list are SFS_ARRAYs of Room / User arrays."""
    rooms = [RoomInfo(1, "a"), RoomInfo(2, "b", is_game=True)]
    users = [UserInfo(1, "x"), UserInfo(2, "y")]
    assert room_list(rooms) == SFSArray().add_sfs_array(room_array(rooms[0])).add_sfs_array(
        room_array(rooms[1])
    )
    assert list(user_list(users)) == [user_array(u) for u in users]
    assert room_list([]) == SFSArray()


def test_no_io_imports() -> None:
    """Importing the package pulls in no asyncio or socket module."""
    code = (
        "import sys, protocol.sfs2x, protocol.sfs2x.messages; "
        "print(sorted(m for m in ('asyncio', 'socket', 'selectors', 'ssl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
