"""The SFS2X message envelope (spec §4), its code tables (§5, §9) and the
shared structures of §6.0 (Room, User, Room variable, User variable).

Every payload is one SFSObject ``{c: BYTE controller, a: SHORT action,
p: SFS_OBJECT params}``; :class:`Message` is its Python form. A WebSocket
frame goes to a message and back with :func:`decode_frame` /
:func:`encode_frame`; a TCP :class:`~protocol.sfs2x.packet.Packet` goes to a
message with :func:`decode_packet_message`.

The builders take small frozen Structs (:class:`RoomInfo`, :class:`UserInfo`,
:class:`RoomVariable`, :class:`UserVariable`) and emit SFSArrays with exactly
the types the typed clients expect (room id INT, user count SHORT, ...). They
know nothing of the server's own room and user classes: the server converts
its state into these Structs at the edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, TypeAlias

import msgspec

from .codec import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ITEMS, decode_object, encode_object
from .errors import SFSDecodeError, SFSEncodeError, SFSFieldError
from .packet import (
    DEFAULT_COMPRESSION_THRESHOLD,
    DEFAULT_MAX_PACKET_SIZE,
    DEFAULT_MAX_PAYLOAD_SIZE,
    Packet,
    decode_packet,
    encode_packet,
)
from .types import Entry, SFSArray, SFSObject, SFSType, check_value

__all__ = [
    "Action",
    "BanMode",
    "Controller",
    "DisconnectionReason",
    "ErrorCode",
    "MMOInfo",
    "Message",
    "MessageType",
    "Privilege",
    "RecipientMode",
    "RoomInfo",
    "RoomVariable",
    "UserInfo",
    "UserVariable",
    "VariableType",
    "VariableValue",
    "decode_frame",
    "decode_packet_message",
    "decode_payload",
    "encode_frame",
    "encode_payload",
    "error_response",
    "parse_room_array",
    "parse_room_variable",
    "parse_user_array",
    "parse_user_variable",
    "room_array",
    "room_list",
    "room_variable_array",
    "user_array",
    "user_list",
    "user_variable_array",
    "variable_entry",
]

# ---------------------------------------------------------------------------
# Code tables


class Controller(IntEnum):
    """Envelope key ``c`` (spec §4)."""

    SYSTEM = 0
    EXTENSION = 1


class Action(IntEnum):
    """Envelope key ``a`` (spec §5): request ids, response ids and server events.

    Responses reuse the request id. ``ROOM_ADD`` is an alias of ``CREATE_ROOM``
    (the CreateRoom response is the RoomAdd event).
    """

    HANDSHAKE = 0
    LOGIN = 1
    LOGOUT = 2
    GET_ROOM_LIST = 3
    JOIN_ROOM = 4
    AUTO_JOIN = 5
    CREATE_ROOM = 6
    ROOM_ADD = 6
    GENERIC_MESSAGE = 7
    CHANGE_ROOM_NAME = 8
    CHANGE_ROOM_PASSWORD = 9
    OBJECT_MESSAGE = 10
    SET_ROOM_VARIABLES = 11
    SET_USER_VARIABLES = 12
    CALL_EXTENSION = 13
    LEAVE_ROOM = 14
    SUBSCRIBE_ROOM_GROUP = 15
    UNSUBSCRIBE_ROOM_GROUP = 16
    SPECTATOR_TO_PLAYER = 17
    PLAYER_TO_SPECTATOR = 18
    CHANGE_ROOM_CAPACITY = 19
    PUBLIC_MESSAGE = 20
    PRIVATE_MESSAGE = 21
    MODERATOR_MESSAGE = 22
    ADMIN_MESSAGE = 23
    KICK_USER = 24
    BAN_USER = 25
    MANUAL_DISCONNECTION = 26
    FIND_ROOMS = 27
    FIND_USERS = 28
    PING_PONG = 29
    SET_USER_POSITION = 30
    QUICK_JOIN_OR_CREATE_ROOM = 31
    INIT_BUDDY_LIST = 200
    ADD_BUDDY = 201
    BLOCK_BUDDY = 202
    REMOVE_BUDDY = 203
    SET_BUDDY_VARIABLES = 204
    GO_ONLINE = 205
    INVITE_USERS = 300
    INVITATION_REPLY = 301
    CREATE_SFS_GAME = 302
    QUICK_JOIN_GAME = 303
    JOIN_ROOM_INVITE = 304
    CLUSTER_JOIN_OR_CREATE = 500
    CLUSTER_INVITE_USERS = 502
    GAME_SERVER_CONNECTION_REQUIRED = 600
    USER_ENTER_ROOM = 1000
    USER_COUNT_CHANGE = 1001
    USER_LOST = 1002
    ROOM_LOST = 1003
    USER_EXIT_ROOM = 1004
    CLIENT_DISCONNECTION = 1005
    RECONNECTION_FAILURE = 1006
    SET_MMO_ITEM_VARIABLES = 1007
    LOAD_BALANCER_ERROR = 1600


class ErrorCode(IntEnum):
    """Error response key ``ec`` (spec §9); ``ep`` fills the client's template."""

    HANDSHAKE_API_OBSOLETE = 0
    LOGIN_BAD_ZONE_NAME = 1
    LOGIN_BAD_USER_NAME = 2
    LOGIN_BAD_PASSWORD = 3
    LOGIN_BANNED_USER = 4
    LOGIN_ZONE_FULL = 5
    LOGIN_ALREADY_LOGGED = 6
    LOGIN_SERVER_FULL = 7
    LOGIN_INACTIVE_ZONE = 8
    LOGIN_NAME_CONTAINS_BAD_WORDS = 9
    LOGIN_GUEST_NOT_ALLOWED = 10
    LOGIN_BANNED_IP = 11
    ROOM_DUPLICATE_NAME = 12
    CREATE_ROOM_BAD_GROUP = 13
    ROOM_NAME_BAD_SIZE = 14
    ROOM_NAME_CONTAINS_BAD_WORDS = 15
    CREATE_ROOM_ZONE_FULL = 16
    CREATE_ROOM_EXCEED_USER_LIMIT = 17
    CREATE_ROOM_WRONG_PARAMETER = 18
    JOIN_ALREADY_JOINED = 19
    JOIN_ROOM_FULL = 20
    JOIN_BAD_PASSWORD = 21
    JOIN_BAD_ROOM = 22
    JOIN_ROOM_LOCKED = 23
    SUBSCRIBE_GROUP_ALREADY_SUBSCRIBED = 24
    SUBSCRIBE_GROUP_NOT_FOUND = 25
    UNSUBSCRIBE_GROUP_NOT_SUBSCRIBED = 26
    UNSUBSCRIBE_GROUP_NOT_FOUND = 27
    #: The client shows ``ep[0]`` verbatim: use it for custom login and extension errors.
    GENERIC_ERROR = 28
    ROOM_NAME_CHANGE_ERROR = 29
    ROOM_PASSWORD_CHANGE_ERROR = 30
    ROOM_CAPACITY_CHANGE_ERROR = 31
    SWITCH_NO_PLAYER_SLOTS = 32
    SWITCH_NO_SPECTATOR_SLOTS = 33
    SWITCH_NOT_A_GAME_ROOM = 34
    SWITCH_NOT_JOINED_IN_ROOM = 35
    BUDDY_LIST_LOAD_FAILURE = 36
    BUDDY_LIST_FULL = 37
    BUDDY_BLOCK_FAILURE = 38
    BUDDY_TOO_MANY_VARIABLES = 39
    JOIN_GAME_ACCESS_DENIED = 40
    QUICK_JOIN_GAME_NOT_FOUND = 41
    INVITATION_NOT_VALID = 42


class DisconnectionReason(IntEnum):
    """Key ``dr`` (BYTE) of the 1005 ClientDisconnection event (spec §6.11)."""

    IDLE = 0
    KICK = 1
    BAN = 2
    MANUAL = 3
    UNKNOWN = 4


class MessageType(IntEnum):
    """Key ``t`` (BYTE) of GenericMessage, a=7 (spec §6.7)."""

    PUBLIC = 0
    PRIVATE = 1
    MODERATOR = 2
    ADMIN = 3
    OBJECT = 4
    BUDDY = 5


class Privilege(IntEnum):
    """User privilege id (SHORT ``pi`` / User array index 2)."""

    GUEST = 0
    STANDARD = 1
    MODERATOR = 2
    ADMIN = 3


class RecipientMode(IntEnum):
    """Key ``rm`` of moderator and admin messages (spec §6.7)."""

    USER = 0
    ROOM = 1
    GROUP = 2
    ZONE = 3


class BanMode(IntEnum):
    """Key ``b`` of BanUser, a=25 (spec §6.11)."""

    BY_IP = 0
    BY_NAME = 1


class VariableType(IntEnum):
    """Room/User variable ``varType`` (spec §6.0). NULL means "delete the variable"."""

    NULL = 0
    BOOL = 1
    INT = 2
    DOUBLE = 3
    STRING = 4
    SFS_OBJECT = 5
    SFS_ARRAY = 6


# ---------------------------------------------------------------------------
# The envelope


@dataclass(frozen=True, slots=True)
class Message:
    """One SFS2X message: controller ``c``, action ``a``, params ``p``.

    ``controller`` and ``action`` are plain ints so that unknown values can be
    represented; compare them with :class:`Controller` and :class:`Action`.
    """

    controller: int
    action: int
    params: SFSObject = field(default_factory=SFSObject)

    @classmethod
    def system(cls, action: int, params: SFSObject | None = None) -> Message:
        """A controller-0 message (every built-in request, response and event)."""
        return cls(Controller.SYSTEM, action, SFSObject() if params is None else params)


def encode_payload(message: Message, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode ``message`` as a payload (an SFSObject, not yet framed).

    Raises:
        SFSEncodeError: controller or action out of range, or a bad param.
    """
    envelope = SFSObject().put_byte("c", message.controller).put_short("a", message.action)
    envelope.put_sfs_object("p", message.params)
    return encode_object(envelope, max_depth=max_depth)


def encode_frame(
    message: Message,
    *,
    compression_threshold: int | None = DEFAULT_COMPRESSION_THRESHOLD,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """Encode ``message`` as one packet: send it as one binary WebSocket frame or write it to TCP.

    Raises:
        SFSEncodeError: as :func:`encode_payload`.
    """
    payload = encode_payload(message, max_depth=max_depth)
    return encode_packet(payload, compression_threshold=compression_threshold)


def decode_payload(
    payload: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, max_items: int = DEFAULT_MAX_ITEMS
) -> Message:
    """Decode a payload into a :class:`Message`.

    ``c`` must be a BYTE, ``a`` a SHORT and ``p`` an SFS_OBJECT; other keys are
    ignored. ``max_depth`` and ``max_items`` are the limits of
    :func:`~protocol.sfs2x.codec.decode_value`.

    Raises:
        SFSDecodeError: malformed payload, a limit exceeded, or a missing or
            mistyped ``c``/``a``/``p`` (:class:`~protocol.sfs2x.errors.SFSFieldError`).
    """
    envelope = decode_object(payload, max_depth=max_depth, max_items=max_items)
    return Message(envelope.get_byte("c"), envelope.get_short("a"), envelope.get_sfs_object("p"))


def decode_packet_message(
    packet: Packet, *, max_depth: int = DEFAULT_MAX_DEPTH, max_items: int = DEFAULT_MAX_ITEMS
) -> Message:
    """Decode the payload of a packet from :class:`~protocol.sfs2x.packet.PacketReader`.

    Raises:
        SFSDecodeError: as :func:`decode_payload`.
    """
    return decode_payload(packet.payload, max_depth=max_depth, max_items=max_items)


def decode_frame(
    frame: bytes | bytearray | memoryview,
    *,
    max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Message:
    """Decode one binary WebSocket frame (exactly one packet) into a :class:`Message`.

    Raises:
        SFSDecodeError: anything wrong with the frame; the transport should log
            it and close the connection.
    """
    packet = decode_packet(frame, max_packet_size=max_packet_size, max_payload_size=max_payload_size)
    return decode_payload(packet.payload, max_depth=max_depth, max_items=max_items)


def error_response(action: int, code: int, *params: str, controller: int = Controller.SYSTEM) -> Message:
    """Build the error response that replaces the normal response to ``action`` (spec §6.0).

    ``ec`` is a SHORT, ``ep`` a UTF_STRING_ARRAY (empty if no ``params``). With
    :attr:`ErrorCode.GENERIC_ERROR` the client shows ``params[0]`` verbatim.
    """
    p = SFSObject().put_short("ec", code).put_utf_string_array("ep", params)
    return Message(controller, action, p)


# ---------------------------------------------------------------------------
# Shared structures (spec §6.0)

#: Value of a Room or User variable; the SFS type is inferred (see :func:`variable_entry`).
VariableValue: TypeAlias = None | bool | int | float | str | SFSObject | SFSArray

_INT32_MIN: Final = -(1 << 31)
_INT32_MAX: Final = (1 << 31) - 1
_DOUBLE_EXACT: Final = 1 << 53

# varType -> wire type of the value
_VAR_WIRE_TYPES: Final = {
    VariableType.NULL: SFSType.NULL,
    VariableType.BOOL: SFSType.BOOL,
    VariableType.INT: SFSType.INT,
    VariableType.DOUBLE: SFSType.DOUBLE,
    VariableType.STRING: SFSType.UTF_STRING,
    VariableType.SFS_OBJECT: SFSType.SFS_OBJECT,
    VariableType.SFS_ARRAY: SFSType.SFS_ARRAY,
}


class RoomVariable(msgspec.Struct, frozen=True):
    """A Room variable; ``value=None`` means "delete it" (varType NULL)."""

    name: str
    value: VariableValue
    is_private: bool = False
    is_persistent: bool = False


class UserVariable(msgspec.Struct, frozen=True):
    """A User variable; ``value=None`` means "delete it" (varType NULL)."""

    name: str
    value: VariableValue
    is_private: bool = False


class MMOInfo(msgspec.Struct, frozen=True):
    """The three extra vectors of an MMO room (Room array indices 11-13).

    Sent as INT_ARRAY (the values must then be ints), or FLOAT_ARRAY when
    ``floats`` is true.
    """

    default_aoi: tuple[float, float, float]
    map_low_limit: tuple[float, float, float]
    map_high_limit: tuple[float, float, float]
    floats: bool = False


class RoomInfo(msgspec.Struct, frozen=True):
    """What a client needs to know about a room (the Room array, spec §6.0)."""

    id: int
    name: str
    group_id: str = "default"
    is_game: bool = False
    is_hidden: bool = False
    is_password_protected: bool = False
    user_count: int = 0
    max_users: int = 10
    variables: tuple[RoomVariable, ...] = ()
    #: Sent only for game (or MMO) rooms.
    spectator_count: int = 0
    max_spectators: int = 0
    mmo: MMOInfo | None = None


class UserInfo(msgspec.Struct, frozen=True):
    """What a client needs to know about a user (the User array, spec §6.0).

    ``player_id`` is 0 outside game rooms, 1..N for players and -1 for spectators.
    """

    id: int
    name: str
    privilege: int = Privilege.GUEST
    player_id: int = 0
    variables: tuple[UserVariable, ...] = ()


def variable_entry(value: VariableValue) -> tuple[VariableType, Entry]:
    """Return the varType and the typed wire value for a variable value.

    ``None`` -> NULL, ``bool`` -> BOOL, ``int`` -> INT if it fits int32 (else
    DOUBLE, as the JS client does, if exact), ``float`` -> DOUBLE, ``str`` ->
    STRING (UTF_STRING), SFSObject and SFSArray as themselves.

    Raises:
        SFSEncodeError: unsupported Python type, or an int too large for a double.
    """
    if value is None:
        return VariableType.NULL, (SFSType.NULL, None)
    if isinstance(value, bool):
        return VariableType.BOOL, (SFSType.BOOL, value)
    if isinstance(value, int):
        if _INT32_MIN <= value <= _INT32_MAX:
            return VariableType.INT, (SFSType.INT, int(value))
        if -_DOUBLE_EXACT <= value <= _DOUBLE_EXACT:
            return VariableType.DOUBLE, (SFSType.DOUBLE, float(value))
        raise SFSEncodeError(f"variable value out of range: {value}")
    if isinstance(value, float):
        return VariableType.DOUBLE, (SFSType.DOUBLE, value)
    if isinstance(value, str):
        return VariableType.STRING, (SFSType.UTF_STRING, value)
    if isinstance(value, SFSObject):
        return VariableType.SFS_OBJECT, (SFSType.SFS_OBJECT, value)
    if isinstance(value, SFSArray):
        return VariableType.SFS_ARRAY, (SFSType.SFS_ARRAY, value)
    raise SFSEncodeError(f"unsupported variable value {type(value).__name__}")


def _variable_head(name: str, value: VariableValue) -> SFSArray:
    var_type, (code, wire) = variable_entry(value)
    return SFSArray().add_utf_string(name).add_byte(var_type).add(code, wire)


def room_variable_array(var: RoomVariable) -> SFSArray:
    """``[name:UTF_STRING, varType:BYTE, value, isPrivate:BOOL, isPersistent:BOOL]``."""
    arr = _variable_head(var.name, var.value)
    return arr.add_bool(var.is_private).add_bool(var.is_persistent)


def user_variable_array(var: UserVariable) -> SFSArray:
    """``[name:UTF_STRING, varType:BYTE, value, isPrivate:BOOL]``."""
    return _variable_head(var.name, var.value).add_bool(var.is_private)


def _parse_variable_head(arr: SFSArray) -> tuple[str, VariableValue]:
    name = arr.get_utf_string(0)
    code = arr.get_byte(1)
    try:
        var_type = VariableType(code)
    except ValueError:
        raise SFSDecodeError(f"unknown variable type {code}") from None
    wire = _VAR_WIRE_TYPES[var_type]
    actual = arr.type_of(2)
    if actual is None:
        raise SFSFieldError(2, wire.name, None)
    if actual is not wire:
        raise SFSDecodeError(f"variable {name!r}: value does not match type {var_type.name.lower()}")
    return name, arr[2]  # type: ignore[return-value]


def _optional_bool(arr: SFSArray, index: int) -> bool:
    return arr.get_bool(index) if index < len(arr) else False


def parse_room_variable(arr: SFSArray) -> RoomVariable:
    """Parse a Room-variable array (for example from SetRoomVariables ``vl``).

    ``isPrivate`` and ``isPersistent`` default to false when absent.

    Raises:
        SFSDecodeError: a field is missing or mistyped, or the value does not
            match its varType.
    """
    name, value = _parse_variable_head(arr)
    return RoomVariable(name, value, _optional_bool(arr, 3), _optional_bool(arr, 4))


def parse_user_variable(arr: SFSArray) -> UserVariable:
    """Parse a User-variable array (for example from SetUserVariables ``vl``).

    Raises:
        SFSDecodeError: as :func:`parse_room_variable`.
    """
    name, value = _parse_variable_head(arr)
    return UserVariable(name, value, _optional_bool(arr, 3))


def _vector(values: tuple[float, float, float], floats: bool) -> Entry:
    code = SFSType.FLOAT_ARRAY if floats else SFSType.INT_ARRAY
    return code, check_value(code, values)


def room_array(room: RoomInfo) -> SFSArray:
    """Build the Room array of ``room`` (spec §6.0).

    Raises:
        SFSEncodeError: a field is out of range for its type (for example a
            user count above 32 767).
    """
    arr = (
        SFSArray()
        .add_int(room.id)
        .add_utf_string(room.name)
        .add_utf_string(room.group_id)
        .add_bool(room.is_game)
        .add_bool(room.is_hidden)
        .add_bool(room.is_password_protected)
        .add_short(room.user_count)
        .add_short(room.max_users)
        .add_sfs_array(SFSArray.of(SFSType.SFS_ARRAY, map(room_variable_array, room.variables)))
    )
    # Indices 9-10 exist for game rooms, and for MMO rooms, whose array must
    # have exactly 14 elements.
    if room.is_game or room.mmo is not None:
        arr.add_short(room.spectator_count).add_short(room.max_spectators)
    if room.mmo is not None:
        mmo = room.mmo
        for vector in (mmo.default_aoi, mmo.map_low_limit, mmo.map_high_limit):
            arr.add(*_vector(vector, mmo.floats))
    return arr


def user_array(user: UserInfo) -> SFSArray:
    """Build the User array of ``user``: ``[id:INT, name, privilegeId:SHORT, playerId:SHORT, vars]``.

    Raises:
        SFSEncodeError: a field is out of range for its type.
    """
    return (
        SFSArray()
        .add_int(user.id)
        .add_utf_string(user.name)
        .add_short(user.privilege)
        .add_short(user.player_id)
        .add_sfs_array(SFSArray.of(SFSType.SFS_ARRAY, map(user_variable_array, user.variables)))
    )


def room_list(rooms: Iterable[RoomInfo]) -> SFSArray:
    """An SFS_ARRAY of Room arrays (login ``rl``, FindRooms ``fr``, group subscription ``rl``)."""
    return SFSArray.of(SFSType.SFS_ARRAY, map(room_array, rooms))


def user_list(users: Iterable[UserInfo]) -> SFSArray:
    """An SFS_ARRAY of User arrays (JoinRoom ``ul``, FindUsers ``fu``)."""
    return SFSArray.of(SFSType.SFS_ARRAY, map(user_array, users))


def _parse_vector(arr: SFSArray, index: int) -> tuple[tuple[float, float, float], bool]:
    code = arr.type_of(index)
    values = arr.get_float_array(index) if code is SFSType.FLOAT_ARRAY else arr.get_int_array(index)
    if len(values) != 3:
        raise SFSDecodeError(f"mmo vector {index} must have 3 elements")
    return (values[0], values[1], values[2]), code is SFSType.FLOAT_ARRAY


def parse_room_array(arr: SFSArray) -> RoomInfo:
    """Parse a Room array (the inverse of :func:`room_array`; useful to clients and tests).

    Raises:
        SFSDecodeError: a field is missing or mistyped.
    """
    variables = tuple(parse_room_variable(v) for v in _arrays(arr.get_sfs_array(8)))
    spectators, max_spectators, mmo = 0, 0, None
    if len(arr) > 9:
        spectators, max_spectators = arr.get_short(9), arr.get_short(10)
    if len(arr) > 11:
        (aoi, floats), (low, _), (high, _) = (_parse_vector(arr, i) for i in (11, 12, 13))
        mmo = MMOInfo(aoi, low, high, floats)
    return RoomInfo(
        id=arr.get_int(0),
        name=arr.get_utf_string(1),
        group_id=arr.get_utf_string(2),
        is_game=arr.get_bool(3),
        is_hidden=arr.get_bool(4),
        is_password_protected=arr.get_bool(5),
        user_count=arr.get_short(6),
        max_users=arr.get_short(7),
        variables=variables,
        spectator_count=spectators,
        max_spectators=max_spectators,
        mmo=mmo,
    )


def parse_user_array(arr: SFSArray) -> UserInfo:
    """Parse a User array (the inverse of :func:`user_array`).

    Raises:
        SFSDecodeError: a field is missing or mistyped.
    """
    variables = tuple(parse_user_variable(v) for v in _arrays(arr.get_sfs_array(4)))
    return UserInfo(
        id=arr.get_int(0),
        name=arr.get_utf_string(1),
        privilege=arr.get_short(2),
        player_id=arr.get_short(3),
        variables=variables,
    )


def _arrays(arr: SFSArray) -> Iterable[SFSArray]:
    """Yield the elements of ``arr``, each of which must be an SFS_ARRAY."""
    for index in range(len(arr)):
        yield arr.get_sfs_array(index)
