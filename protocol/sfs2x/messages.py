"""Requests and responses of spec §6.1-§6.11, as data in and data out.

Parsers turn the ``params`` of a client request into a small frozen Struct and
raise :class:`~protocol.sfs2x.errors.SFSDecodeError` (usually its subclass
:class:`~protocol.sfs2x.errors.SFSFieldError`) when a required field is missing
or mistyped. Builders return a :class:`~protocol.sfs2x.envelope.Message`
ready for :func:`~protocol.sfs2x.envelope.encode_frame`, with the exact wire
types of the spec. Client-side builders (``*_request``) exist for tests, bots
and benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from .envelope import (
    Action,
    Controller,
    DisconnectionReason,
    Message,
    MessageType,
    RecipientMode,
    RoomInfo,
    RoomVariable,
    UserInfo,
    UserVariable,
    parse_room_variable,
    parse_user_variable,
    room_array,
    room_list,
    room_variable_array,
    user_array,
    user_list,
    user_variable_array,
)
from .errors import SFSDecodeError, SFSFieldError
from .packet import DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_PACKET_SIZE
from .types import SFSArray, SFSObject, SFSType

__all__ = [
    "BanUserRequest",
    "CreateRoomRequest",
    "FindRoomsRequest",
    "FindUsersRequest",
    "InviteUsersRequest",
    "MatchCondition",
    "QuickJoinRequest",
    "ExtensionRequest",
    "GenericMessageRequest",
    "HandshakeRequest",
    "JoinRoomRequest",
    "KickUserRequest",
    "LoginRequest",
    "SetRoomVariablesRequest",
    "admin_message",
    "client_disconnection",
    "extension_request",
    "extension_response",
    "find_rooms_response",
    "find_users_response",
    "invitation",
    "invitation_reply",
    "handshake_request",
    "handshake_response",
    "join_room_response",
    "login_request",
    "login_response",
    "logout_response",
    "moderator_message",
    "object_message",
    "parse_ban_user",
    "parse_change_room_capacity",
    "parse_change_room_name",
    "parse_change_room_password",
    "parse_create_room",
    "parse_extension_request",
    "parse_find_rooms",
    "parse_find_users",
    "parse_invitation_reply",
    "parse_invite_users",
    "parse_generic_message",
    "parse_handshake",
    "parse_join_room",
    "parse_kick_user",
    "parse_leave_room",
    "parse_login",
    "parse_match_expression",
    "parse_quick_join",
    "parse_room_group",
    "parse_set_room_variables",
    "parse_set_user_variables",
    "ping_request",
    "pong",
    "private_message",
    "public_message",
    "room_add",
    "room_capacity_change",
    "room_group_subscribed",
    "room_group_unsubscribed",
    "room_lost",
    "room_name_change",
    "room_password_change",
    "room_variables_update",
    "user_count_change",
    "user_enter_room",
    "user_exit_room",
    "user_lost",
    "user_variables_update",
]

# ---------------------------------------------------------------------------
# Helpers for optional fields


def _opt_int(p: SFSObject, key: str) -> int | None:
    return p.get_int(key) if key in p else None


def _opt_str(p: SFSObject, key: str) -> str | None:
    return p.get_utf_string(key) if key in p else None


def _opt_bool(p: SFSObject, key: str, default: bool = False) -> bool:
    return p.get_bool(key) if key in p else default


def _opt_short(p: SFSObject, key: str, default: int) -> int:
    return p.get_short(key) if key in p else default


def _opt_obj(p: SFSObject, key: str) -> SFSObject | None:
    return p.get_sfs_object(key) if key in p else None


def _arrays(arr: SFSArray) -> list[SFSArray]:
    return [arr.get_sfs_array(i) for i in range(len(arr))]


# ---------------------------------------------------------------------------
# Handshake (a=0), login (a=1), logout (a=2)


class HandshakeRequest(msgspec.Struct, frozen=True):
    """``api`` version, ``cl`` client type, C# ``rt`` reconnection token and ``bin``."""

    api: str
    client_type: str
    reconnection_token: str | None = None
    binary: bool = True


def parse_handshake(p: SFSObject) -> HandshakeRequest:
    """Parse Handshake params: ``api``, ``cl`` (UTF_STRING) and optional ``rt``, ``bin``."""
    return HandshakeRequest(
        api=p.get_utf_string("api"),
        client_type=p.get_utf_string("cl"),
        reconnection_token=_opt_str(p, "rt"),
        binary=_opt_bool(p, "bin", True),
    )


def handshake_request(
    api: str = "1.8.6", client_type: str = "JavaScript", reconnection_token: str | None = None
) -> Message:
    """The client's first message (spec §12 vector a); a reconnecting C# client adds
    ``bin`` and ``rt`` = its old session token (§6.1)."""
    p = SFSObject().put_utf_string("api", api).put_utf_string("cl", client_type)
    if reconnection_token is not None:
        p.put_bool("bin", True).put_utf_string("rt", reconnection_token)
    return Message.system(Action.HANDSHAKE, p)


def handshake_response(
    token: str,
    *,
    compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
    max_message_size: int = DEFAULT_MAX_PACKET_SIZE,
    admin_password_hashed: bool | None = None,
) -> Message:
    """``tk:UTF_STRING, ct:INT, ms:INT`` and optional ``aph:BOOL`` (spec §6.1).

    Always send ``ct`` and ``ms``: the C# client fails without them.
    """
    p = SFSObject().put_utf_string("tk", token).put_int("ct", compression_threshold)
    p.put_int("ms", max_message_size)
    if admin_password_hashed is not None:
        p.put_bool("aph", admin_password_hashed)
    return Message.system(Action.HANDSHAKE, p)


class LoginRequest(msgspec.Struct, frozen=True):
    """Login params; ``password`` is ``""`` or ``md5(token + password)`` in hex."""

    zone: str
    user_name: str
    password: str
    params: SFSObject | None = None


def parse_login(p: SFSObject) -> LoginRequest:
    """Parse Login params: ``zn``, ``un``, ``pw`` (UTF_STRING) and optional ``p`` (SFS_OBJECT)."""
    return LoginRequest(
        p.get_utf_string("zn"), p.get_utf_string("un"), p.get_utf_string("pw"), _opt_obj(p, "p")
    )


def login_request(zone: str, user_name: str, password: str = "", params: SFSObject | None = None) -> Message:
    """A Login request; ``password`` must already be hashed (see :func:`~protocol.sfs2x.auth.password_hash`)."""
    p = SFSObject().put_utf_string("zn", zone).put_utf_string("un", user_name).put_utf_string("pw", password)
    if params is not None:
        p.put_sfs_object("p", params)
    return Message.system(Action.LOGIN, p)


def login_response(
    zone: str,
    user_name: str,
    user_id: int,
    privilege: int,
    rooms: Iterable[RoomInfo] = (),
    *,
    reconnection_seconds: int = 0,
    data: SFSObject | None = None,
) -> Message:
    """``zn, un, id:INT, pi:SHORT, rs:SHORT, rl:SFS_ARRAY, p:SFS_OBJECT`` (spec §6.2).

    ``rooms`` are the rooms of the zone's default subscribed groups.
    """
    p = (
        SFSObject()
        .put_utf_string("zn", zone)
        .put_utf_string("un", user_name)
        .put_int("id", user_id)
        .put_short("pi", privilege)
        .put_short("rs", reconnection_seconds)
        .put_sfs_array("rl", room_list(rooms))
        .put_sfs_object("p", SFSObject() if data is None else data)
    )
    return Message.system(Action.LOGIN, p)


def logout_response(zone: str) -> Message:
    """``zn:UTF_STRING`` (spec §6.3)."""
    return Message.system(Action.LOGOUT, SFSObject().put_utf_string("zn", zone))


# ---------------------------------------------------------------------------
# Rooms: join (a=4), leave (a=14/1004), create (a=6), groups (a=15/16), events


class JoinRoomRequest(msgspec.Struct, frozen=True):
    """JoinRoom params: a room id **or** a name, plus optional password and room to leave."""

    room_id: int | None
    room_name: str | None
    password: str | None = None
    leave_room_id: int | None = None
    as_spectator: bool = False


def parse_join_room(p: SFSObject) -> JoinRoomRequest:
    """Parse JoinRoom params: ``i:INT`` or ``n:UTF_STRING``, ``p``, ``rl:INT``, ``sp:BOOL``."""
    req = JoinRoomRequest(
        _opt_int(p, "i"), _opt_str(p, "n"), _opt_str(p, "p"), _opt_int(p, "rl"), _opt_bool(p, "sp")
    )
    if req.room_id is None and req.room_name is None:
        raise SFSFieldError("i", SFSType.INT.name, None)
    return req


def join_room_response(room: RoomInfo, users: Iterable[UserInfo]) -> Message:
    """``r:SFS_ARRAY`` (updated Room array) and ``ul`` (everyone in the room, joiner included)."""
    p = SFSObject().put_sfs_array("r", room_array(room)).put_sfs_array("ul", user_list(users))
    return Message.system(Action.JOIN_ROOM, p)


def parse_leave_room(p: SFSObject) -> int:
    """Parse LeaveRoom params; return the room id ``r``. There is no a=14 response: send 1004."""
    return p.get_int("r")


def user_enter_room(room_id: int, user: UserInfo) -> Message:
    """Event 1000 to the others in the room: ``r:INT, u:SFS_ARRAY`` (the joiner)."""
    p = SFSObject().put_int("r", room_id).put_sfs_array("u", user_array(user))
    return Message.system(Action.USER_ENTER_ROOM, p)


def parse_switch_role(p: SFSObject) -> int:
    """SpectatorToPlayer (a=17) / PlayerToSpectator (a=18) params: the room ``r:INT`` (spec §6.12)."""
    return p.get_int("r")


def spectator_to_player(room_id: int, user_id: int, player_id: int) -> Message:
    """a=17 to everyone in the room: ``r:INT, u:INT, p:SHORT`` (the user's new player id)."""
    p = SFSObject().put_int("r", room_id).put_int("u", user_id).put_short("p", player_id)
    return Message.system(Action.SPECTATOR_TO_PLAYER, p)


def player_to_spectator(room_id: int, user_id: int) -> Message:
    """a=18 to everyone in the room: ``r:INT, u:INT``."""
    return Message.system(Action.PLAYER_TO_SPECTATOR, SFSObject().put_int("r", room_id).put_int("u", user_id))


def user_count_change(room_id: int, user_count: int, spectator_count: int | None = None) -> Message:
    """Event 1001 to group subscribers: ``r:INT, uc:SHORT`` and optional ``sc:SHORT``."""
    p = SFSObject().put_int("r", room_id).put_short("uc", user_count)
    if spectator_count is not None:
        p.put_short("sc", spectator_count)
    return Message.system(Action.USER_COUNT_CHANGE, p)


def user_exit_room(room_id: int, user_id: int) -> Message:
    """Event 1004 to everyone in the room, leaver included: ``r:INT, u:INT``."""
    return Message.system(Action.USER_EXIT_ROOM, SFSObject().put_int("r", room_id).put_int("u", user_id))


def user_lost(user_id: int) -> Message:
    """Event 1002: ``u:INT``; the client drops the user from every room."""
    return Message.system(Action.USER_LOST, SFSObject().put_int("u", user_id))


def room_add(room: RoomInfo) -> Message:
    """The CreateRoom response / RoomAdd event (a=6) to group subscribers: ``r:SFS_ARRAY``."""
    return Message.system(Action.CREATE_ROOM, SFSObject().put_sfs_array("r", room_array(room)))


def room_lost(room_id: int) -> Message:
    """Event 1003 RoomLost to group subscribers: ``r:INT``."""
    return Message.system(Action.ROOM_LOST, SFSObject().put_int("r", room_id))


class CreateRoomRequest(msgspec.Struct, frozen=True):
    """The lobby-relevant CreateRoom params (spec §6.6); MMO keys are not parsed."""

    name: str
    group_id: str = "default"
    password: str = ""
    is_game: bool = False
    max_users: int = 10
    max_spectators: int = 0
    max_variables: int = 5
    variables: tuple[RoomVariable, ...] = ()
    auto_join: bool = False
    leave_room_id: int | None = None
    extension_id: str | None = None
    extension_class: str | None = None


def parse_create_room(p: SFSObject) -> CreateRoomRequest:
    """Parse CreateRoom params (``n``, ``g``, ``p``, ``ig``, ``mu``, ``ms``, ``mv``, ``rv``, ``aj``, ``rl``, ``xn``, ``xc``)."""
    variables = tuple(map(parse_room_variable, _arrays(p.get_sfs_array("rv")))) if "rv" in p else ()
    return CreateRoomRequest(
        name=p.get_utf_string("n"),
        group_id=_opt_str(p, "g") or "default",
        password=_opt_str(p, "p") or "",
        is_game=_opt_bool(p, "ig"),
        max_users=_opt_short(p, "mu", 10),
        max_spectators=_opt_short(p, "ms", 0),
        max_variables=_opt_short(p, "mv", 5),
        variables=variables,
        auto_join=_opt_bool(p, "aj"),
        leave_room_id=_opt_int(p, "rl"),
        extension_id=_opt_str(p, "xn"),
        extension_class=_opt_str(p, "xc"),
    )


# ---------------------------------------------------------------------------
# ChangeRoomName (a=8), ChangeRoomPassword (a=9), ChangeRoomCapacity (a=19) (spec §6.12)


def parse_change_room_name(p: SFSObject) -> tuple[int, str]:
    """ChangeRoomName params: the room ``r:INT`` and its new name ``n:UTF_STRING``."""
    return p.get_int("r"), p.get_utf_string("n")


def parse_change_room_password(p: SFSObject) -> tuple[int, str]:
    """ChangeRoomPassword params: ``r:INT`` and ``p:UTF_STRING`` (empty: no password)."""
    return p.get_int("r"), p.get_utf_string("p")


def parse_change_room_capacity(p: SFSObject) -> tuple[int, int, int]:
    """ChangeRoomCapacity params: ``r:INT``, ``u:INT`` (players) and ``s:INT`` (spectators)."""
    return p.get_int("r"), p.get_int("u"), p.get_int("s")


def room_name_change(room_id: int, name: str) -> Message:
    """a=8, to the room's group and members: ``r:INT, n:UTF_STRING``."""
    return Message.system(
        Action.CHANGE_ROOM_NAME, SFSObject().put_int("r", room_id).put_utf_string("n", name)
    )


def room_password_change(room_id: int, protected: bool) -> Message:
    """a=9: ``r:INT, p:BOOL`` (the room is password protected now)."""
    return Message.system(
        Action.CHANGE_ROOM_PASSWORD, SFSObject().put_int("r", room_id).put_bool("p", protected)
    )


def room_capacity_change(room_id: int, max_users: int, max_spectators: int) -> Message:
    """a=19: ``r:INT, u:INT, s:INT``."""
    p = SFSObject().put_int("r", room_id).put_int("u", max_users).put_int("s", max_spectators)
    return Message.system(Action.CHANGE_ROOM_CAPACITY, p)


# ---------------------------------------------------------------------------
# InviteUsers (a=300) and InvitationReply (a=301) (spec §6.12)

#: InvitationReply's `r` / `ri`: the invitee accepted, refused, or did not answer in time
INVITATION_ACCEPT, INVITATION_REFUSE, INVITATION_EXPIRED = 0, 1, 255


class InviteUsersRequest(msgspec.Struct, frozen=True):
    user_ids: tuple[int, ...]
    seconds: int = 30
    params: SFSObject | None = None


def parse_invite_users(p: SFSObject) -> InviteUsersRequest:
    """InviteUsers params: ``iu:INT_ARRAY`` (the invitees), ``t:SHORT`` (seconds to answer), ``p``."""
    return InviteUsersRequest(p.get_int_array("iu"), _opt_short(p, "t", 30), _opt_obj(p, "p"))


def parse_invitation_reply(p: SFSObject) -> tuple[int, int, SFSObject | None]:
    """InvitationReply params: the invitation ``i:INT``, the reply ``r:BYTE`` (0 accept, 1 refuse), ``p``."""
    return p.get_int("i"), p.get_byte("r"), _opt_obj(p, "p")


def invitation(inviter: UserInfo, invitation_id: int, seconds: int, params: SFSObject | None) -> Message:
    """a=300 to an invitee: ``u`` (the inviter's User array), ``t:SHORT``, ``ii:INT``, ``p``."""
    p = (
        SFSObject()
        .put_sfs_array("u", user_array(inviter))
        .put_short("t", seconds)
        .put_int("ii", invitation_id)
    )
    if params is not None:
        p.put_sfs_object("p", params)
    return Message.system(Action.INVITE_USERS, p)


def invitation_reply(invitee: UserInfo, reply: int, params: SFSObject | None) -> Message:
    """a=301 to the inviter: ``u`` (the invitee's User array), ``ri:BYTE`` (0, 1 or 255), ``p``."""
    p = SFSObject().put_sfs_array("u", user_array(invitee)).put_byte("ri", reply)
    if params is not None:
        p.put_sfs_object("p", params)
    return Message.system(Action.INVITATION_REPLY, p)


# ---------------------------------------------------------------------------
# FindRooms (a=27) and QuickJoinOrCreateRoom (a=31): match expressions (spec §6.12)

#: SFS2X RoomProperties names, as the native room search names them (rooms/match.py)
ROOM_PROPERTIES: Final = {
    "${N}": "name",
    "${G}": "group",
    "${MXU}": "max_users",
    "${MXS}": "max_spectators",
    "${UC}": "users",
    "${SC}": "spectators",
    "${ISG}": "game",
    "${ISP}": "locked",
    "${HFP}": "free_slots",
}
#: RoomProperties of room kinds this server does not have: the same for every room
#: (no SFSGame, no MMO room; every room is of the default kind)
ROOM_CONSTANTS: Final = {"${IST}": False, "${ISM}": False, "${ISD}": True}
#: SFS2X UserProperties names, as the native user search names them (`role` is the
#: privilege id); `${ISN}` (an NPC) is false for every user here
USER_PROPERTIES: Final = {
    "${N}": "name",
    "${ISP}": "player",
    "${ISS}": "spectator",
    "${PRID}": "role",
    "${IAR}": "in_room",
}
USER_CONSTANTS: Final = {"${ISN}": False}
#: the matcher's type id (BoolMatch 0, NumberMatch 1, StringMatch 2) -> the value's type
_MATCH_TYPES: Final = {0: SFSType.BOOL, 1: SFSType.DOUBLE, 2: SFSType.UTF_STRING}


def _type_name(arr: SFSArray, i: int) -> str | None:
    code = arr.type_of(i)
    return None if code is None else code.name


class MatchCondition(msgspec.Struct, frozen=True):
    """One link of a MatchExpression chain: ``[logic | null, name, type, symbol, value]``."""

    logic: str | None  # "AND" / "OR"; None on the first
    name: str  # a room variable, or a RoomProperties name such as ``${UC}``
    kind: int  # 0 bool, 1 number, 2 string
    symbol: str  # "==", "!=", ">", ">=", "<", "<=", "contains", "startsWith", "endsWith"
    value: bool | float | str


def parse_match_expression(arr: SFSArray, key: str = "e") -> tuple[MatchCondition, ...]:
    """A MatchExpression as the client sends it: an SFS_ARRAY of 5-element SFS_ARRAYs."""
    out = []
    for i in range(len(arr)):
        if arr.type_of(i) is not SFSType.SFS_ARRAY:
            raise SFSFieldError(f"{key}[{i}]", SFSType.SFS_ARRAY.name, _type_name(arr, i))
        item = arr.get_sfs_array(i)
        if len(item) != 5:
            raise SFSDecodeError(f"{key}[{i}]: a match expression has 5 elements, not {len(item)}")
        logic = None if item.is_null(0) else item.get_utf_string(0)
        if logic not in (None, "AND", "OR"):
            raise SFSDecodeError(f"{key}[{i}]: logic operator {logic!r}")
        kind = item.get_byte(2)
        code = _MATCH_TYPES.get(kind)
        if code is None:
            raise SFSDecodeError(f"{key}[{i}]: matcher type {kind}")
        if item.type_of(4) is not code:
            raise SFSFieldError(f"{key}[{i}][4]", code.name, _type_name(item, 4))
        value = item[4]
        assert isinstance(value, bool | float | str)
        out.append(MatchCondition(logic, item.get_utf_string(1), kind, item.get_utf_string(3), value))
    return tuple(out)


class FindRoomsRequest(msgspec.Struct, frozen=True):
    expression: tuple[MatchCondition, ...]
    group_id: str | None = None
    limit: int = 0  # 0: every match


def parse_find_rooms(p: SFSObject) -> FindRoomsRequest:
    """FindRooms params: ``e:SFS_ARRAY`` (the expression), ``g:UTF_STRING``, ``l:SHORT``."""
    return FindRoomsRequest(
        parse_match_expression(p.get_sfs_array("e")), _opt_str(p, "g"), _opt_short(p, "l", 0)
    )


def find_rooms_response(rooms: Iterable[RoomInfo]) -> Message:
    """FindRooms response (a=27): ``fr:SFS_ARRAY`` of Room arrays."""
    return Message.system(Action.FIND_ROOMS, SFSObject().put_sfs_array("fr", room_list(rooms)))


class FindUsersRequest(msgspec.Struct, frozen=True):
    expression: tuple[MatchCondition, ...]
    room_id: int | None = None
    group_id: str | None = None
    limit: int = 0  # 0: every match


def parse_find_users(p: SFSObject) -> FindUsersRequest:
    """FindUsers params: ``e:SFS_ARRAY``, the target ``r:INT`` (a room) or ``g:UTF_STRING``
    (a group; neither: the zone), ``l:SHORT``."""
    return FindUsersRequest(
        parse_match_expression(p.get_sfs_array("e")),
        _opt_int(p, "r"),
        _opt_str(p, "g"),
        _opt_short(p, "l", 0),
    )


def find_users_response(users: Iterable[UserInfo]) -> Message:
    """FindUsers response (a=28): ``fu:SFS_ARRAY`` of User arrays."""
    return Message.system(Action.FIND_USERS, SFSObject().put_sfs_array("fu", user_list(users)))


class QuickJoinRequest(msgspec.Struct, frozen=True):
    expression: tuple[MatchCondition, ...]
    group_ids: tuple[str, ...]
    settings: CreateRoomRequest | None = None
    leave_room_id: int | None = None


def parse_quick_join(p: SFSObject) -> QuickJoinRequest:
    """QuickJoinOrCreateRoom params: ``me`` (expression), ``gl:UTF_STRING_ARRAY``, ``rs``
    (the params of a CreateRoom request) and ``tl:INT`` (a room to leave)."""
    settings = p.get_sfs_object("rs") if "rs" in p else None
    return QuickJoinRequest(
        parse_match_expression(p.get_sfs_array("me"), "me"),
        p.get_utf_string_array("gl") if "gl" in p else (),
        parse_create_room(settings) if settings is not None else None,
        _opt_int(p, "tl"),
    )


def parse_room_group(p: SFSObject) -> str:
    """Parse Subscribe/UnsubscribeRoomGroup params; return the group id ``g``."""
    return p.get_utf_string("g")


def room_group_subscribed(group_id: str, rooms: Iterable[RoomInfo]) -> Message:
    """SubscribeRoomGroup response (a=15): ``g:UTF_STRING, rl:SFS_ARRAY``."""
    p = SFSObject().put_utf_string("g", group_id).put_sfs_array("rl", room_list(rooms))
    return Message.system(Action.SUBSCRIBE_ROOM_GROUP, p)


def room_group_unsubscribed(group_id: str) -> Message:
    """UnsubscribeRoomGroup response (a=16): ``g:UTF_STRING``."""
    return Message.system(Action.UNSUBSCRIBE_ROOM_GROUP, SFSObject().put_utf_string("g", group_id))


# ---------------------------------------------------------------------------
# GenericMessage (a=7)


class GenericMessageRequest(msgspec.Struct, frozen=True):
    """A GenericMessage from a client; which fields are set depends on ``type``.

    - PUBLIC: ``room_id``, ``message``, ``params``.
    - PRIVATE: ``recipient`` (user id), ``message``, ``params``.
    - OBJECT: ``room_id``, ``params`` (the payload), ``recipients`` (``None`` = whole room).
    - MODERATOR / ADMIN: ``message``, ``params``, ``recipient_mode`` and
      ``recipient`` (user or room id, group id, or ``None`` for the zone).
    - BUDDY: the raw fields, not validated.
    """

    type: MessageType
    room_id: int | None = None
    message: str | None = None
    params: SFSObject | None = None
    recipient: int | str | None = None
    recipients: tuple[int, ...] | None = None
    recipient_mode: RecipientMode | None = None


def parse_generic_message(p: SFSObject) -> GenericMessageRequest:
    """Parse GenericMessage params (spec §6.7). The sender ``u`` is ignored: it is the session's user.

    Raises:
        SFSDecodeError: unknown type, or a field required by the type is missing.
    """
    code = p.get_byte("t")
    try:
        kind = MessageType(code)
    except ValueError:
        raise SFSDecodeError(f"unknown message type {code}") from None
    params = _opt_obj(p, "p")
    if kind is MessageType.PUBLIC:
        return GenericMessageRequest(
            kind, room_id=p.get_int("r"), message=p.get_utf_string("m"), params=params
        )
    if kind is MessageType.PRIVATE:
        return GenericMessageRequest(
            kind, message=p.get_utf_string("m"), params=params, recipient=p.get_int("rc")
        )
    if kind is MessageType.OBJECT:
        recipients = p.get_int_array("rc") if "rc" in p else None
        return GenericMessageRequest(
            kind, room_id=p.get_int("r"), params=params or SFSObject(), recipients=recipients
        )
    if kind is MessageType.MODERATOR or kind is MessageType.ADMIN:
        mode_code = p.get_int("rm")
        try:
            mode = RecipientMode(mode_code)
        except ValueError:
            raise SFSDecodeError(f"unknown recipient mode {mode_code}") from None
        recipient: int | str | None = None
        if mode is RecipientMode.USER or mode is RecipientMode.ROOM:
            recipient = p.get_int("rc")
        elif mode is RecipientMode.GROUP:
            recipient = p.get_utf_string("rc")
        return GenericMessageRequest(
            kind, message=p.get_utf_string("m"), params=params, recipient=recipient, recipient_mode=mode
        )
    return GenericMessageRequest(kind, room_id=_opt_int(p, "r"), message=_opt_str(p, "m"), params=params)


def _generic(kind: MessageType, params: SFSObject | None) -> SFSObject:
    p = SFSObject().put_byte("t", kind)
    if params is not None:
        p.put_sfs_object("p", params)
    return p


def public_message(room_id: int, sender_id: int, message: str, data: SFSObject | None = None) -> Message:
    """Public message to every user in the room, sender included: ``t=0, r, u, m, p?``."""
    p = _generic(MessageType.PUBLIC, data).put_int("r", room_id).put_int("u", sender_id)
    return Message.system(Action.GENERIC_MESSAGE, p.put_utf_string("m", message))


def private_message(
    sender_id: int, message: str, data: SFSObject | None = None, sender: UserInfo | None = None
) -> Message:
    """Private message: ``t=1, u, m, p?`` and ``sd`` (the sender's User array) if given."""
    p = _generic(MessageType.PRIVATE, data).put_int("u", sender_id).put_utf_string("m", message)
    if sender is not None:
        p.put_sfs_array("sd", user_array(sender))
    return Message.system(Action.GENERIC_MESSAGE, p)


def object_message(sender_id: int, data: SFSObject) -> Message:
    """Object message to the recipients, sender excluded: ``t=4, u, p``."""
    p = _generic(MessageType.OBJECT, data).put_int("u", sender_id)
    return Message.system(Action.GENERIC_MESSAGE, p)


def moderator_message(message: str, sender: UserInfo, data: SFSObject | None = None) -> Message:
    """Moderator message: ``t=2, m, p?, sd`` (for example a kick notice, sender id -1 "Server")."""
    p = (
        _generic(MessageType.MODERATOR, data)
        .put_utf_string("m", message)
        .put_sfs_array("sd", user_array(sender))
    )
    return Message.system(Action.GENERIC_MESSAGE, p)


def admin_message(message: str, sender: UserInfo, data: SFSObject | None = None) -> Message:
    """Admin message: ``t=3, m, p?, sd``."""
    p = _generic(MessageType.ADMIN, data).put_utf_string("m", message).put_sfs_array("sd", user_array(sender))
    return Message.system(Action.GENERIC_MESSAGE, p)


# ---------------------------------------------------------------------------
# Variables (a=11, a=12)


class SetRoomVariablesRequest(msgspec.Struct, frozen=True):
    room_id: int
    variables: tuple[RoomVariable, ...]


def parse_set_room_variables(p: SFSObject) -> SetRoomVariablesRequest:
    """Parse SetRoomVariables params: ``r:INT, vl:SFS_ARRAY`` of Room-variable arrays."""
    return SetRoomVariablesRequest(
        p.get_int("r"), tuple(map(parse_room_variable, _arrays(p.get_sfs_array("vl"))))
    )


def parse_set_user_variables(p: SFSObject) -> tuple[UserVariable, ...]:
    """Parse SetUserVariables params: ``vl:SFS_ARRAY`` of User-variable arrays (the user is the sender)."""
    return tuple(map(parse_user_variable, _arrays(p.get_sfs_array("vl"))))


def room_variables_update(room_id: int, variables: Iterable[RoomVariable]) -> Message:
    """a=11 ``r:INT, vl:SFS_ARRAY`` (changed variables only; value ``None`` deletes)."""
    vl = SFSArray.of(SFSType.SFS_ARRAY, map(room_variable_array, variables))
    return Message.system(
        Action.SET_ROOM_VARIABLES, SFSObject().put_int("r", room_id).put_sfs_array("vl", vl)
    )


def user_variables_update(user_id: int, variables: Iterable[UserVariable]) -> Message:
    """a=12 ``u:INT, vl:SFS_ARRAY``."""
    vl = SFSArray.of(SFSType.SFS_ARRAY, map(user_variable_array, variables))
    return Message.system(
        Action.SET_USER_VARIABLES, SFSObject().put_int("u", user_id).put_sfs_array("vl", vl)
    )


# ---------------------------------------------------------------------------
# Extensions (c=1, a=13)


class ExtensionRequest(msgspec.Struct, frozen=True):
    """An extension call: ``room_id`` is -1 for the Zone extension."""

    command: str
    room_id: int
    params: SFSObject


def parse_extension_request(p: SFSObject) -> ExtensionRequest:
    """Parse the params of a c=1, a=13 message: ``c:UTF_STRING, r:INT, p:SFS_OBJECT``.

    A missing ``r`` is taken as -1 and a missing ``p`` as an empty object.
    """
    params = _opt_obj(p, "p")
    room_id = _opt_int(p, "r")
    return ExtensionRequest(p.get_utf_string("c"), -1 if room_id is None else room_id, params or SFSObject())


def extension_request(command: str, params: SFSObject | None = None, room_id: int = -1) -> Message:
    """A client extension call (c=1, a=13)."""
    p = SFSObject().put_utf_string("c", command).put_int("r", room_id)
    p.put_sfs_object("p", SFSObject() if params is None else params)
    return Message(Controller.EXTENSION, Action.CALL_EXTENSION, p)


def extension_response(command: str, params: SFSObject | None = None, room_id: int | None = None) -> Message:
    """Extension response or push (c=1, a=13): ``c:UTF_STRING, p:SFS_OBJECT`` and optional ``r:INT``."""
    p = (
        SFSObject()
        .put_utf_string("c", command)
        .put_sfs_object("p", SFSObject() if params is None else params)
    )
    if room_id is not None:
        p.put_int("r", room_id)
    return Message(Controller.EXTENSION, Action.CALL_EXTENSION, p)


# ---------------------------------------------------------------------------
# Ping (a=29), kick (a=24), ban (a=25), disconnection (1005)


def ping_request() -> Message:
    """The lag-monitor ping (a=29, empty ``p``)."""
    return Message.system(Action.PING_PONG)


def pong() -> Message:
    """The answer to a ping: a=29 with an empty ``p`` (spec §12 vector g)."""
    return Message.system(Action.PING_PONG)


class KickUserRequest(msgspec.Struct, frozen=True):
    user_id: int
    delay: int = 5
    message: str | None = None


def parse_kick_user(p: SFSObject) -> KickUserRequest:
    """Parse KickUser params: ``u:INT``, ``d:INT`` (seconds, default 5), ``m`` optional."""
    delay = _opt_int(p, "d")
    return KickUserRequest(p.get_int("u"), 5 if delay is None else delay, _opt_str(p, "m"))


class BanUserRequest(msgspec.Struct, frozen=True):
    user_id: int
    delay: int = 5
    mode: int = 1
    hours: int = 24
    message: str | None = None


def parse_ban_user(p: SFSObject) -> BanUserRequest:
    """Parse BanUser params: ``u, d, b`` (0 by IP, 1 by name), ``dh`` (hours), ``m`` optional."""
    delay, mode, hours = _opt_int(p, "d"), _opt_int(p, "b"), _opt_int(p, "dh")
    return BanUserRequest(
        p.get_int("u"),
        5 if delay is None else delay,
        1 if mode is None else mode,
        24 if hours is None else hours,
        _opt_str(p, "m"),
    )


def client_disconnection(reason: DisconnectionReason) -> Message:
    """Event 1005, sent just before closing: ``dr:BYTE`` (spec §12 vector e)."""
    return Message.system(Action.CLIENT_DISCONNECTION, SFSObject().put_byte("dr", reason))
