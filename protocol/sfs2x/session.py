"""A sans-I/O session that speaks SFS2X to the client and native requests to the hub.

`SfsSession` has the interface of `protocol.session.Session`, so the hub, `Connection`
and `Player` drive it unchanged: SFS2X packets become the native request Structs of
`protocol/messages.py` (`requests_received`), and the hub's `reply`, `fail` and
`send_event` calls become SFS2X responses and events. One world: SmartFox clients and
native clients share zones and rooms.

What the session answers itself: the handshake (a=0, `tk`/`ct`/`ms`) and ping-pong
(a=29). What it remembers: each internal request id's SFS action (so a reply becomes
the right SFS response and error codes the right `ec`), and the rooms and users it has
told the client about (names and privileges for sender arrays; §7: the client drops
events about rooms it does not know).

Event sequence numbers are not sent. Reconnection (HRC, `reconnect.py`): with a
`Reconnections` registry, a logged-in C#/Unity, AS3 or Java client (not the JavaScript
one, which cannot reconnect) is told `rs` = the window in its login reply, and a dropped
connection leaves its session to the hub's resume grace. A new connection whose
handshake carries `rt` = the old token takes the old session over: it submits a native
`resume` (from the last event the old one was sent) and answers the handshake with the
same token once the hub re-attached the player, so the client fires `connectionResume`;
if the session is gone it answers with a new token (a new session: the client reports the
connection lost). Without a registry, or for a JavaScript client, a dropped connection
ends its session at once (see `connection_lost`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from .. import messages as m
from ..codes import CloseCode, ErrorCode as Native
from ..events import OutEvent
from ..flood import DISCONNECT, WARN, FloodFilter
from ..limits import FloodLimits, SessionLimits
from ..rewards_messages import REWARDS_MESSAGES
from ..session import AUTHENTICATED, CLOSING, OPEN, State
from . import messages as sm
from .auth import new_session_token
from .envelope import (
    Action,
    Controller,
    DisconnectionReason,
    ErrorCode as Ec,
    Message,
    MessageType,
    RecipientMode,
    RoomInfo,
    RoomVariable,
    UserInfo,
    UserVariable,
    decode_frame,
    decode_payload,
    encode_frame,
    error_response,
)
from .errors import SFSDecodeError, SFSEncodeError
from .packet import DEFAULT_COMPRESSION_THRESHOLD
from .reconnect import HrcState, Reconnections
from .types import SFSArray, SFSObject, SFSType

logger = logging.getLogger("croupier.sfs2x")

__all__ = ["CASINO_COMMANDS", "SfsSession", "from_sfs", "to_sfs", "to_sfs_object"]

#: Default extension commands mapped onto native casino and rewards requests (those this
#: build has); the server passes its own table (`extensions`), built from its services'
#: request types.
CASINO_COMMANDS: Final = {
    f"casino.{tag}": m.CLIENT_TYPES[tag]
    for tag in (
        "spin",
        "round_continue",
        "game_info",
        "balance",
        "history",
        "minigame_play",
        *(cls.__struct_config__.tag for cls in REWARDS_MESSAGES),
    )
    if tag in m.CLIENT_TYPES
}

#: The sender shown for server notices (kick and ban messages).
SERVER_USER: Final = UserInfo(-1, "Server", 3)

_INT32: Final = (-(1 << 31), (1 << 31) - 1)
_SCOPES: Final = {
    RecipientMode.USER: "user",
    RecipientMode.ROOM: "room",
    RecipientMode.GROUP: "group",
    RecipientMode.ZONE: "zone",
}
#: Requests with an SFS error response (the others have none: errors are logged only).
_ANSWERED: Final = frozenset(
    {
        Action.LOGIN,
        Action.LOGOUT,
        Action.JOIN_ROOM,
        Action.CREATE_ROOM,
        Action.SUBSCRIBE_ROOM_GROUP,
        Action.UNSUBSCRIBE_ROOM_GROUP,
        Action.CALL_EXTENSION,
        Action.SPECTATOR_TO_PLAYER,
        Action.PLAYER_TO_SPECTATOR,
        Action.CHANGE_ROOM_NAME,
        Action.CHANGE_ROOM_PASSWORD,
        Action.CHANGE_ROOM_CAPACITY,
        Action.INVITATION_REPLY,
    }
)
#: a refused room change (not the owner, a cluster rename, a bad size) as its SFS `ec`
_CHANGE_EC: Final = {
    Action.CHANGE_ROOM_NAME: Ec.ROOM_NAME_CHANGE_ERROR,
    Action.CHANGE_ROOM_PASSWORD: Ec.ROOM_PASSWORD_CHANGE_ERROR,
    Action.CHANGE_ROOM_CAPACITY: Ec.ROOM_CAPACITY_CHANGE_ERROR,
}
#: Native refusals of a spectator/player switch as the SFS `ec` (the client checks only
#: that there is one; §9: 32-35 with the room name)
_SWITCH_EC: Final = {
    Native.ROOM_FULL: Ec.SWITCH_NO_PLAYER_SLOTS,
    Native.SPECTATORS_FULL: Ec.SWITCH_NO_SPECTATOR_SLOTS,
    Native.BAD_REQUEST: Ec.SWITCH_NOT_A_GAME_ROOM,
}
_DISCONNECT_REASONS: Final = {
    CloseCode.KICKED: DisconnectionReason.KICK,
    CloseCode.BANNED: DisconnectionReason.BAN,
    CloseCode.IDLE_TIMEOUT: DisconnectionReason.IDLE,
    CloseCode.AUTH_TIMEOUT: DisconnectionReason.IDLE,
}
#: Close codes the hub treats as final; anything else becomes NORMAL on connection loss.
_FINAL: Final = frozenset({CloseCode.KICKED, CloseCode.BANNED, CloseCode.SESSION_REPLACED})


# -- values: native (JSON-like) <-> SFS ---------------------------------------------------------


def to_sfs(value: Any) -> tuple[SFSType, Any]:
    """The SFS type and value for a plain Python value (types are inferred).

    int -> INT (LONG beyond int32), float -> DOUBLE, str -> UTF_STRING (TEXT when long),
    dict -> SFS_OBJECT, list/tuple -> SFS_ARRAY, bytes -> BYTE_ARRAY, None -> NULL.
    """
    if value is None:
        return SFSType.NULL, None
    if isinstance(value, bool):
        return SFSType.BOOL, value
    if isinstance(value, int):
        return (SFSType.INT if _INT32[0] <= value <= _INT32[1] else SFSType.LONG), value
    if isinstance(value, float):
        return SFSType.DOUBLE, value
    if isinstance(value, str):
        return (SFSType.UTF_STRING if len(value) <= 8000 else SFSType.TEXT), value
    if isinstance(value, SFSObject | SFSArray):
        return (SFSType.SFS_OBJECT if isinstance(value, SFSObject) else SFSType.SFS_ARRAY), value
    if isinstance(value, dict):
        return SFSType.SFS_OBJECT, to_sfs_object(value)
    if isinstance(value, list | tuple):
        arr = SFSArray()
        for item in value:
            arr.add(*to_sfs(item))
        return SFSType.SFS_ARRAY, arr
    if isinstance(value, bytes | bytearray | memoryview):
        return SFSType.BYTE_ARRAY, bytes(value)
    return to_sfs(msgspec.to_builtins(value))


def to_sfs_object(data: Any) -> SFSObject:
    """A dict (or Struct) as an SFSObject; anything else is wrapped as ``{"value": data}``."""
    if isinstance(data, SFSObject):
        return data
    if data is None:
        return SFSObject()
    if not isinstance(data, dict):
        data = msgspec.to_builtins(data)
        if not isinstance(data, dict):
            data = {"value": data}
    obj = SFSObject()
    for key, value in data.items():
        obj.put(str(key), *to_sfs(value))
    return obj


def _var_value(value: Any) -> Any:
    """A native variable value as an SFS variable value (dict/list become SFSObject/SFSArray)."""
    if isinstance(value, dict | list | tuple):
        return to_sfs(value)[1]
    return value


def from_sfs(value: Any) -> Any:
    """An SFS value as a plain Python value (SFSObject -> dict, SFSArray -> list)."""
    if isinstance(value, SFSObject | SFSArray):
        return value.to_python()
    return value


def _room_info(view: dict[str, Any]) -> RoomInfo:
    return RoomInfo(
        id=view["id"],
        name=view["name"],
        group_id=view.get("group", "default"),
        is_game=view.get("game", False),
        is_hidden=view.get("hidden", False),
        is_password_protected=view.get("locked", False),
        user_count=view.get("users", 0),
        max_users=view.get("max_users", 0),
        variables=tuple(
            RoomVariable(
                v["name"], _var_value(v.get("value")), v.get("private", False), v.get("persistent", False)
            )
            for v in view.get("variables", ())
        ),
        spectator_count=view.get("spectators", 0),
        max_spectators=view.get("max_spectators", 0),
    )


def _user_info(view: dict[str, Any]) -> UserInfo:
    return UserInfo(
        id=view["id"],
        name=view.get("name", ""),
        privilege=view.get("role", 0),
        player_id=view.get("player_id", 0),
        variables=tuple(
            UserVariable(v["name"], _var_value(v.get("value")), v.get("private", False))
            for v in view.get("variables", ())
        ),
    )


def _native_variables(variables: Any) -> list[dict[str, Any]]:
    out = []
    for var in variables:
        entry: dict[str, Any] = {"name": var.name, "value": from_sfs(var.value), "private": var.is_private}
        if isinstance(var, RoomVariable):
            entry["persistent"] = var.is_persistent
        out.append(entry)
    return out


def _room_settings(c: sm.CreateRoomRequest) -> dict[str, Any]:
    """A CreateRoom's settings as the native room fields (`create_room`, `quick_join.create`)."""
    return {
        "name": c.name,
        "group": c.group_id,
        "game": c.is_game,
        "max_users": c.max_users,
        "max_spectators": c.max_spectators,
        "password": c.password,
        "variables": _native_variables(c.variables),
    }


#: FindRooms' `l` (0: every match) as the native search's limit (at most 1,000 rooms)
def _find_limit(limit: int) -> int:
    return 1000 if limit <= 0 else min(limit, 1000)


_SYMBOLS: Final = {"startsWith": "starts_with", "endsWith": "ends_with"}


def _native_where(
    expression: tuple[sm.MatchCondition, ...],
    properties: Mapping[str, str] = sm.ROOM_PROPERTIES,
    constants: Mapping[str, bool] = sm.ROOM_CONSTANTS,
    count: str = "users",
) -> list[dict[str, Any]]:
    """A MatchExpression as the native search's conditions (protocol/messages.py
    `Condition`, `UserCondition`): RoomProperties (or UserProperties) become `prop`, other
    names `var`; a property that is the same for everything here (`${ISD}`, `${IST}`,
    `${ISM}`; a user's `${ISN}`) becomes a condition that is always true or always false
    (on the number property `count`), so the chain keeps its meaning."""
    out: list[dict[str, Any]] = []
    for c in expression:
        cond: dict[str, Any] = {"op": _SYMBOLS.get(c.symbol, c.symbol), "value": c.value}
        if c.name in constants:
            same = constants[c.name] is c.value
            is_bool = isinstance(c.value, bool)
            holds = (c.symbol == "==" and same) or (c.symbol == "!=" and not same and is_bool)
            cond = {"prop": count, "op": ">=" if holds else "<", "value": 0}
        elif c.name in properties:
            cond["prop"] = properties[c.name]
        else:
            cond["var"] = c.name
        if c.logic == "OR":
            cond["logic"] = "or"
        out.append(cond)
    return out


# -- error codes --------------------------------------------------------------------------------

_EC: Final = {
    Native.ZONE_NOT_FOUND: Ec.LOGIN_BAD_ZONE_NAME,
    Native.GUESTS_NOT_ALLOWED: Ec.LOGIN_GUEST_NOT_ALLOWED,
    Native.USER_BANNED: Ec.LOGIN_BANNED_USER,
    Native.ZONE_FULL: Ec.LOGIN_ZONE_FULL,
    Native.ALREADY_LOGGED_IN: Ec.LOGIN_ALREADY_LOGGED,
    Native.BAD_TOKEN: Ec.LOGIN_BAD_PASSWORD,
    Native.TOKEN_EXPIRED: Ec.LOGIN_BAD_PASSWORD,
    Native.ROOM_NOT_FOUND: Ec.JOIN_BAD_ROOM,
    Native.ROOM_FULL: Ec.JOIN_ROOM_FULL,
    Native.SPECTATORS_FULL: Ec.JOIN_ROOM_FULL,
    Native.WRONG_PASSWORD: Ec.JOIN_BAD_PASSWORD,
    Native.ALREADY_IN_ROOM: Ec.JOIN_ALREADY_JOINED,
    Native.ROOM_LOCKED: Ec.JOIN_ROOM_LOCKED,
    Native.ROOM_NAME_TAKEN: Ec.ROOM_DUPLICATE_NAME,
    Native.TOO_MANY_ROOMS: Ec.CREATE_ROOM_EXCEED_USER_LIMIT,
    Native.ALREADY_SUBSCRIBED: Ec.SUBSCRIBE_GROUP_ALREADY_SUBSCRIBED,
    Native.NOT_SUBSCRIBED: Ec.UNSUBSCRIBE_GROUP_NOT_SUBSCRIBED,
}


def sfs_error(action: int, code: int, message: str, ctx: dict[str, str]) -> tuple[int, tuple[str, ...]]:
    """The SFS ``ec`` and ``ep`` for a native error code on request ``action``."""
    if code == Native.GROUP_NOT_FOUND:
        ec = (
            Ec.UNSUBSCRIBE_GROUP_NOT_FOUND
            if action == Action.UNSUBSCRIBE_ROOM_GROUP
            else Ec.CREATE_ROOM_BAD_GROUP
            if action == Action.CREATE_ROOM
            else Ec.SUBSCRIBE_GROUP_NOT_FOUND
        )
    elif action in (Action.SPECTATOR_TO_PLAYER, Action.PLAYER_TO_SPECTATOR):
        ec = _SWITCH_EC.get(code, Ec.SWITCH_NOT_JOINED_IN_ROOM)  # type: ignore[call-overload]
    elif action == Action.INVITATION_REPLY:
        ec = Ec.INVITATION_NOT_VALID
    elif action in _CHANGE_EC and code not in (Native.ROOM_NAME_TAKEN, Native.ROOM_NOT_FOUND):
        ec = _CHANGE_EC[action]  # type: ignore[index]
    else:
        ec = _EC.get(code, Ec.GENERIC_ERROR)  # type: ignore[call-overload]
    zone, name, room, group = (
        ctx.get("zone", ""),
        ctx.get("name", ""),
        ctx.get("room", ""),
        ctx.get("group", ""),
    )
    params: dict[int, tuple[str, ...]] = {
        Ec.LOGIN_BAD_ZONE_NAME: (zone,),
        Ec.LOGIN_GUEST_NOT_ALLOWED: (zone,),
        Ec.LOGIN_BANNED_USER: (name,),
        Ec.LOGIN_ZONE_FULL: (zone,),
        Ec.LOGIN_ALREADY_LOGGED: (name, zone),
        Ec.LOGIN_BAD_PASSWORD: (name,),
        Ec.ROOM_DUPLICATE_NAME: (room,),
        Ec.CREATE_ROOM_BAD_GROUP: (room, group),
        Ec.CREATE_ROOM_EXCEED_USER_LIMIT: ("1",),
        Ec.JOIN_ALREADY_JOINED: (room,),
        Ec.JOIN_ROOM_FULL: (room,),
        Ec.JOIN_BAD_PASSWORD: (room,),
        Ec.JOIN_BAD_ROOM: (),
        Ec.JOIN_ROOM_LOCKED: (room,),
        Ec.SUBSCRIBE_GROUP_ALREADY_SUBSCRIBED: (group,),
        Ec.SUBSCRIBE_GROUP_NOT_FOUND: (group,),
        Ec.UNSUBSCRIBE_GROUP_NOT_SUBSCRIBED: (group,),
        Ec.UNSUBSCRIBE_GROUP_NOT_FOUND: (group,),
        Ec.SWITCH_NO_PLAYER_SLOTS: (room,),
        Ec.SWITCH_NO_SPECTATOR_SLOTS: (room,),
        Ec.SWITCH_NOT_A_GAME_ROOM: (room,),
        Ec.SWITCH_NOT_JOINED_IN_ROOM: (room,),
        Ec.ROOM_NAME_CHANGE_ERROR: (room,),
        Ec.ROOM_PASSWORD_CHANGE_ERROR: (room,),
        Ec.ROOM_CAPACITY_CHANGE_ERROR: (room,),
    }
    return int(ec), params.get(ec, (message,))


@dataclass(slots=True)
class _Pending:
    action: int
    ctx: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    """A request the session answers with an SFS error itself (it never reaches the hub)."""

    def __init__(self, ec: int, *params: str) -> None:
        super().__init__(ec, params)
        self.ec = ec
        self.params = params


class SfsSession:
    """One SFS2X client connection, with the interface of `protocol.session.Session`.

    Args:
        limits: the connection limits (the `ms` advertised is `max_message_bytes`).
        flood: the flood filter before login (`authenticate` may switch it).
        now: monotonic time of the connection.
        stream: True on raw TCP, where the transport passes packet payloads
            (re-assembled by `PacketReader`); False on WebSocket (one packet per message).
        compression_threshold: the `ct` advertised and used for our own packets.
        extensions: extension command -> the native request it becomes (its fields are
            the command's params); `CASINO_COMMANDS` by default.
        reconnections: the server's HRC registry (None: no reconnection).
        token_prefix: put before each session token `tk` (a cluster worker's
            `<member>.`, which routes a reconnecting client back to it).
    """

    def __init__(
        self,
        limits: SessionLimits,
        flood: FloodLimits,
        now: float,
        *,
        stream: bool = False,
        compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
        extensions: Mapping[str, type] | None = None,
        reconnections: Reconnections | None = None,
        token_prefix: str = "",
    ) -> None:
        self.limits = limits
        self.reconnections = reconnections
        self.extensions = CASINO_COMMANDS if extensions is None else extensions
        self.stream = stream
        self.compression_threshold = compression_threshold
        self.state: State = OPEN
        self.close_code: CloseCode | None = None
        self.close_reason = ""
        self.token_prefix = token_prefix
        self.token = token_prefix + new_session_token()
        self.handshaken = False
        self._flood = FloodFilter(flood, now)
        self._requests: list[Any] = []
        self._out: list[bytes] = []
        self._opened_at = now
        self._last_rx = now
        self._ids = 0
        self._pending: dict[int, _Pending] = {}
        #: what the client has been told: room views and user views (plain dicts)
        self.rooms: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.me: dict[str, Any] | None = None
        self.zone = ""
        self._created: set[int] = set()  # rooms announced by a CreateRoom reply already
        #: HRC: the client can reconnect (not JavaScript, a registry), the native resume
        #: token of the logged-in player, the last event sent, when the connection dropped
        self.hrc = False
        self.resume_token: str | None = None
        self.last_seq = 0
        self.dropped_at: float | None = None

    # -- input ----------------------------------------------------------------------------------

    def receive_message(self, data: bytes, binary: bool, now: float) -> None:
        """Feed one packet (WebSocket) or one packet payload (TCP, `stream=True`)."""
        if self.state >= CLOSING:
            return
        self._last_rx = now
        max_bytes = self.limits.max_message_bytes
        if len(data) > max_bytes:
            self.close(CloseCode.MESSAGE_TOO_BIG, f"message above {max_bytes} bytes")
            return
        if not binary:
            self.close(CloseCode.UNSUPPORTED_DATA, "SFS2X clients send binary frames")
            return
        try:
            if self.stream:
                msg = decode_payload(data)
            else:
                msg = decode_frame(data, max_packet_size=max_bytes, max_payload_size=4 * max_bytes)
        except SFSDecodeError as exc:
            self.close(CloseCode.PROTOCOL_ERROR, f"bad SFS2X packet: {exc}")
            return
        verdict = self._flood.check(now)
        if verdict:
            if verdict is DISCONNECT:
                self.close(CloseCode.RATE_LIMITED, "too many messages")
            elif verdict is WARN:
                logger.debug("sfs2x: flood filter dropped action %d", msg.action)
            return
        try:
            self._dispatch(msg)
        except (SFSDecodeError, msgspec.ValidationError) as exc:
            self._refuse(msg.controller, msg.action, Ec.GENERIC_ERROR, f"bad request: {exc}")
        except _Refused as exc:
            self._refuse(msg.controller, msg.action, exc.ec, *exc.params)

    def _dispatch(self, msg: Message) -> None:
        action, p = msg.action, msg.params
        if not self.handshaken and (msg.controller != Controller.SYSTEM or action != Action.HANDSHAKE):
            self.close(CloseCode.PROTOCOL_ERROR, "handshake first")
            return
        if msg.controller == Controller.EXTENSION:
            self._extension(p)
            return
        if msg.controller != Controller.SYSTEM:
            logger.debug("sfs2x: unknown controller %d", msg.controller)
            return
        if action == Action.HANDSHAKE:
            if self.handshaken:
                raise _Refused(Ec.GENERIC_ERROR, "handshake already done")
            hs = sm.parse_handshake(p)
            self.handshaken = True
            reg = self.reconnections
            # TCP only: the WebSocket path serves the JavaScript and WebGL clients, which
            # cannot reconnect (their users would linger for the window after each drop)
            self.hrc = (
                reg is not None
                and reg.window > 0
                and self.stream
                and not hs.client_type.startswith("JavaScript")
            )
            old = (
                reg.take(hs.reconnection_token, self._last_rx)
                if reg and self.hrc and hs.reconnection_token
                else None
            )
            if old is not None and old.resume_token is not None:
                self._take_over(old)
            else:
                self._handshake_done()
        elif action == Action.PING_PONG:
            self._send(sm.pong())
        elif action == Action.LOGIN:
            self._login(sm.parse_login(p))
        elif self.state is not AUTHENTICATED:
            logger.debug("sfs2x: action %d before login dropped", action)
        else:
            self._logged_in(action, p)

    def _handshake_done(self) -> None:
        self._send(
            sm.handshake_response(
                self.token,
                compression_threshold=self.compression_threshold,
                max_message_size=self.limits.max_message_bytes,
            )
        )

    def _take_over(self, old: SfsSession) -> None:
        """HRC: become the dropped session `old` (its token, what its client knows, its
        request numbering) and ask the hub for the player back; the handshake is answered
        when the hub replies."""
        self.token, self.resume_token = old.token, old.resume_token
        self.rooms, self.users, self.me, self.zone = dict(old.rooms), dict(old.users), old.me, old.zone
        self._created, self._ids = set(old._created), old._ids
        self._pending, old._pending = old._pending, {}  # replies still to come land here
        self.hrc = True
        assert old.resume_token is not None
        self._submit(Action.HANDSHAKE, "resume", {"token": old.resume_token, "last_seq": old.last_seq})

    def hrc_state(self) -> HrcState | None:
        """This session for a successor (rolling restart), if its client can reconnect."""
        if not self.hrc or self.resume_token is None or self.me is None or self.close_code is not None:
            return None
        return HrcState(
            self.token,
            self.resume_token,
            self.zone,
            self.me,
            list(self.rooms),
            list(self._created),
            self._ids,
            self.last_seq,
            self.dropped_at,
        )

    def adopt(self, st: HrcState, rooms: Mapping[int, dict[str, Any]], now: float) -> None:
        """Become a dropped session of a predecessor (its `hrc_state`), waiting in the
        registry for its client; `rooms`: views of the rooms it knew, where this worker
        has them. Requests in flight at the move are not answered (the client's own
        timeouts apply)."""
        assert self.reconnections is not None
        self.token, self.resume_token, self.zone, self.me = st.token, st.resume_token, st.zone, st.me
        self.rooms = {rid: dict(rooms[rid]) for rid in st.rooms if rid in rooms}
        self.users = {st.me["id"]: st.me}
        self._created, self._ids, self.last_seq = set(st.created), st.ids, st.last_seq
        self.handshaken, self.hrc, self.state = True, True, State.CLOSED
        self.dropped_at = now if st.dropped_at is None else min(st.dropped_at, now)
        self.reconnections.adopt(self, self.dropped_at)

    def _login(self, req: sm.LoginRequest) -> None:
        if self.state is AUTHENTICATED:
            raise _Refused(Ec.LOGIN_ALREADY_LOGGED, req.user_name, req.zone)
        ctx = {"zone": req.zone, "name": req.user_name}
        token = None
        if req.params is not None and "token" in req.params:
            token = req.params.get_utf_string("token")
        # A password is taken as a login token: a SmartFox app whose login sends a session
        # key from the operator's auth service as the password works unchanged once that
        # service mints Croupier tokens (a bad or expired one: LOGIN_BAD_PASSWORD, ec 3).
        token = token or req.password
        if token:
            self._submit(Action.LOGIN, "login", {"token": token, "zone": req.zone or None}, ctx)
        else:
            fields = {"guest": True, "zone": req.zone, "name": req.user_name or None}
            self._submit(Action.LOGIN, "login", fields, ctx)

    def _logged_in(self, action: int, p: SFSObject) -> None:
        if action == Action.LOGOUT:
            self._submit(action, "logout", {})
        elif action == Action.JOIN_ROOM:
            j = sm.parse_join_room(p)
            ref: int | str = j.room_id if j.room_id is not None else (j.room_name or "")
            room = self.rooms.get(ref) if isinstance(ref, int) else None
            fields: dict[str, Any] = {"room": ref, "password": j.password or "", "spectator": j.as_spectator}
            if j.leave_room_id is not None and j.leave_room_id >= 0:
                fields["leave"] = j.leave_room_id
            self._submit(action, "join_room", fields, {"room": room["name"] if room else str(ref)})
        elif action == Action.LEAVE_ROOM:
            self._submit(action, "leave_room", {"room": sm.parse_leave_room(p)})
        elif action == Action.CREATE_ROOM:
            c = sm.parse_create_room(p)
            fields = {**_room_settings(c), "join": c.auto_join}
            self._submit(action, "create_room", fields, {"room": c.name, "group": c.group_id})
        elif action == Action.SUBSCRIBE_ROOM_GROUP or action == Action.UNSUBSCRIBE_ROOM_GROUP:
            group = sm.parse_room_group(p)
            kind = "subscribe_group" if action == Action.SUBSCRIBE_ROOM_GROUP else "unsubscribe_group"
            self._submit(action, kind, {"group": group}, {"group": group})
        elif action == Action.GENERIC_MESSAGE:
            self._generic(sm.parse_generic_message(p))
        elif action == Action.SET_ROOM_VARIABLES:
            r = sm.parse_set_room_variables(p)
            self._submit(
                action, "set_room_variables", {"room": r.room_id, "variables": _native_variables(r.variables)}
            )
        elif action == Action.SET_USER_VARIABLES:
            uv = sm.parse_set_user_variables(p)
            self._submit(action, "set_user_variables", {"variables": _native_variables(uv)})
        elif action == Action.SPECTATOR_TO_PLAYER or action == Action.PLAYER_TO_SPECTATOR:
            room_id = sm.parse_switch_role(p)
            room = self.rooms.get(room_id)
            fields = {"room": room_id, "spectator": action == Action.PLAYER_TO_SPECTATOR}
            self._submit(action, "switch_role", fields, {"room": room["name"] if room else str(room_id)})
        elif action in (Action.CHANGE_ROOM_NAME, Action.CHANGE_ROOM_PASSWORD, Action.CHANGE_ROOM_CAPACITY):
            self._change_room(action, p)
        elif action == Action.FIND_ROOMS:
            f = sm.parse_find_rooms(p)
            fields = {
                "group": f.group_id,
                "where": _native_where(f.expression),
                "limit": _find_limit(f.limit),
            }
            self._submit(action, "find_rooms", fields)
        elif action == Action.FIND_USERS:
            u = sm.parse_find_users(p)
            where = _native_where(u.expression, sm.USER_PROPERTIES, sm.USER_CONSTANTS, "role")
            fields = {"room": u.room_id, "group": u.group_id, "where": where, "limit": _find_limit(u.limit)}
            self._submit(action, "find_users", fields)
        elif action == Action.QUICK_JOIN_OR_CREATE_ROOM:
            q = sm.parse_quick_join(p)
            fields = {"groups": list(q.group_ids), "where": _native_where(q.expression)}
            if q.leave_room_id is not None and q.leave_room_id >= 0:
                fields["leave"] = q.leave_room_id
            ctx = {"room": ""}
            if q.settings is not None:
                fields["create"] = _room_settings(q.settings)
                ctx = {"room": q.settings.name, "group": q.settings.group_id}
            self._submit(action, "quick_join", fields, ctx)
        elif action == Action.INVITE_USERS:
            iu = sm.parse_invite_users(p)
            data = from_sfs(iu.params) if iu.params is not None else None
            seconds = max(5, min(iu.seconds, 300))
            self._submit(action, "invite", {"users": list(iu.user_ids), "seconds": seconds, "data": data})
        elif action == Action.INVITATION_REPLY:
            invitation_id, reply, params = sm.parse_invitation_reply(p)
            data = from_sfs(params) if params is not None else None
            fields = {"invitation": invitation_id, "accept": reply == sm.INVITATION_ACCEPT, "data": data}
            self._submit(action, "invitation_reply", fields)
        elif action == Action.KICK_USER:
            k = sm.parse_kick_user(p)
            self._submit(action, "kick", {"user": k.user_id, "reason": k.message or ""})
        elif action == Action.BAN_USER:
            b = sm.parse_ban_user(p)
            fields = {"user": b.user_id, "hours": b.hours if b.hours > 0 else 24, "reason": b.message or ""}
            self._submit(action, "ban", fields)
        else:
            logger.info("sfs2x: action %d is not supported yet", action)

    def _change_room(self, action: int, p: SFSObject) -> None:
        fields: dict[str, Any]
        if action == Action.CHANGE_ROOM_NAME:
            room_id, name = sm.parse_change_room_name(p)
            fields = {"room": room_id, "name": name}
        elif action == Action.CHANGE_ROOM_PASSWORD:
            room_id, password = sm.parse_change_room_password(p)
            fields = {"room": room_id, "password": password}
        else:
            room_id, users, spectators = sm.parse_change_room_capacity(p)
            fields = {"room": room_id, "max_users": users, "max_spectators": spectators}
        room = self.rooms.get(room_id)
        self._submit(action, "change_room", fields, {"room": room["name"] if room else str(room_id)})

    def _room_changed(self, view: dict[str, Any]) -> None:
        """a=8 / a=9 / a=19 for what differs from the room as this client knows it (the
        reply and the event of one change both come here: the second finds nothing new)."""
        rid = view["id"]
        known = self.rooms.get(rid)
        if known is None:
            return  # the client does not know the room: it would drop them
        if view["name"] != known["name"]:
            self._send(sm.room_name_change(rid, view["name"]))
        if view.get("locked", False) != known.get("locked", False):
            self._send(sm.room_password_change(rid, view.get("locked", False)))
        users, spectators = view.get("max_users", 0), view.get("max_spectators", 0)
        if (users, spectators) != (known.get("max_users", 0), known.get("max_spectators", 0)):
            self._send(sm.room_capacity_change(rid, users, spectators))
        known.update(view)

    def _generic(self, g: sm.GenericMessageRequest) -> None:
        data = from_sfs(g.params) if g.params is not None else None
        a = Action.GENERIC_MESSAGE
        if g.type is MessageType.PUBLIC:
            self._submit(a, "public_message", {"room": g.room_id, "text": g.message or "", "data": data})
        elif g.type is MessageType.PRIVATE:
            self._submit(a, "private_message", {"to": g.recipient, "text": g.message or "", "data": data})
        elif g.type is MessageType.OBJECT:
            fields: dict[str, Any] = {"room": g.room_id, "data": data or {}}
            if g.recipients is not None:
                fields["to"] = list(g.recipients)
            self._submit(a, "object_message", fields)
        elif g.type is MessageType.MODERATOR or g.type is MessageType.ADMIN:
            kind = "moderator_message" if g.type is MessageType.MODERATOR else "admin_message"
            scope = _SCOPES[g.recipient_mode or RecipientMode.ZONE]
            fields = {"text": g.message or "", "scope": scope, "target": g.recipient, "data": data}
            self._submit(a, kind, fields)
        else:
            logger.info("sfs2x: buddy messages are not supported yet")

    def _extension(self, p: SFSObject) -> None:
        ext = sm.parse_extension_request(p)
        cls = self.extensions.get(ext.command)
        if cls is None or self.state is not AUTHENTICATED:
            why = (
                "log in first"
                if cls is not None
                else f"extension command {ext.command!r} is not supported yet"
            )
            self._send(self._extension_error(ext.command, Native.NOT_SUPPORTED, why))
            return
        params = from_sfs(ext.params)
        try:
            tag = cls.__struct_config__.tag  # type: ignore[attr-defined]
            self._submit(Action.CALL_EXTENSION, tag, params, {"cmd": ext.command})
        except msgspec.ValidationError as exc:
            self._send(self._extension_error(ext.command, Native.BAD_REQUEST, f"bad request: {exc}"))

    @staticmethod
    def _extension_error(command: str, code: int, message: str) -> Message:
        """An extension error: c=1 a=13 with ``p = {ec: SHORT, ep: [message], code: INT}``."""
        params = SFSObject().put_short("ec", Ec.GENERIC_ERROR).put_utf_string_array("ep", (message,))
        params.put_int("code", int(code)).put_utf_string("error", message)
        return sm.extension_response(command, params)

    def _submit(
        self, action: int, tag: str, fields: dict[str, Any], ctx: dict[str, str] | None = None
    ) -> None:
        self._ids += 1
        rid = self._ids
        cls = m.CLIENT_TYPES[tag]
        request = msgspec.convert({**fields, "type": tag, "id": rid}, cls)
        self._pending[rid] = _Pending(action, ctx or {})
        self._requests.append(request)

    def _refuse(self, controller: int, action: int, ec: int, *params: str) -> None:
        if controller == Controller.EXTENSION:
            self._send(self._extension_error("", Native.BAD_REQUEST, params[0] if params else ""))
        elif action == Action.FIND_ROOMS:  # the client reads `fr` of any a=27: none found
            logger.debug("sfs2x: FindRooms refused: %s", params)
            self._send(sm.find_rooms_response(()))
        elif action == Action.FIND_USERS:
            logger.debug("sfs2x: FindUsers refused: %s", params)
            self._send(sm.find_users_response(()))
        elif action == Action.QUICK_JOIN_OR_CREATE_ROOM:  # as a JoinRoom error (a=4)
            self._send(error_response(Action.JOIN_ROOM, ec, *params))
        elif action in _ANSWERED:
            self._send(error_response(action, ec, *params))
        else:
            logger.debug("sfs2x: action %d refused: %s", action, params)

    def requests_received(self) -> list[Any]:
        """Native requests (protocol/messages.py Structs) since the last call."""
        requests, self._requests = self._requests, []
        return requests

    # -- commands from the hub ------------------------------------------------------------------

    def authenticate(self, flood: FloodLimits | None = None) -> None:
        if self.state is OPEN:
            self.state = AUTHENTICATED
        if flood is not None and flood != self._flood.limits:
            self._flood.limits = flood

    def deauthenticate(self) -> None:
        if self.state is AUTHENTICATED:
            self.state = OPEN

    def restart_auth_clock(self, now: float) -> None:
        self._opened_at = now
        self._last_rx = now

    def reply(self, request_id: int, data: Any = None) -> None:
        """The hub's `ok` reply to internal request `request_id`, as the SFS response."""
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return
        data = msgspec.to_builtins(data) if data is not None else None
        action = pending.action
        if action == Action.HANDSHAKE:  # HRC: the hub gave the player back
            assert self.reconnections is not None
            self.reconnections.add(self)
            self._handshake_done()
        elif action == Action.LOGIN and isinstance(data, dict):
            user = data["user"]
            self.me, self.zone = user, data["zone"]
            self.users[user["id"]] = user
            rooms = [self._learn_room(r) for r in data.get("rooms", ())]
            extra = SFSObject()
            if data.get("branding"):
                extra.put_sfs_object("branding", to_sfs_object(data["branding"]))
            window = 0
            if self.hrc and self.reconnections is not None and data.get("resume_token"):
                self.resume_token = data["resume_token"]
                self.reconnections.add(self)
                window = min(int(self.reconnections.window), 32767)
            self._send(
                sm.login_response(
                    self.zone,
                    user["name"],
                    user["id"],
                    user.get("role", 0),
                    map(_room_info, rooms),
                    reconnection_seconds=window,
                    data=extra,
                )
            )
        elif action == Action.LOGOUT:
            self._send(sm.logout_response(self.zone or (data or {}).get("zone", "")))
            if self.reconnections is not None:
                self.reconnections.remove(self)
            self.resume_token = None
            self.rooms.clear()
            self.users.clear()
            self.me = None
        elif action == Action.JOIN_ROOM and isinstance(data, dict):
            self._joined(data)
        elif action == Action.CREATE_ROOM and isinstance(data, dict):
            room = self._learn_room(data["room"])
            self._created.add(room["id"])
            self._send(sm.room_add(_room_info(room)))
            if "users" in data:
                self._joined(data)
        elif action == Action.SUBSCRIBE_ROOM_GROUP and isinstance(data, dict):
            rooms = [self._learn_room(r) for r in data.get("rooms", ())]
            self._send(sm.room_group_subscribed(data["group"], map(_room_info, rooms)))
        elif action == Action.UNSUBSCRIBE_ROOM_GROUP and isinstance(data, dict):
            self._send(sm.room_group_unsubscribed(data["group"]))
        elif action == Action.CALL_EXTENSION:
            self._send(sm.extension_response(pending.ctx.get("cmd", ""), to_sfs_object(data)))
        elif action in _CHANGE_EC and isinstance(data, dict):
            self._room_changed(data["room"])
        elif action == Action.FIND_ROOMS and isinstance(data, dict):
            self._send(sm.find_rooms_response(map(_room_info, data["rooms"])))
        elif action == Action.FIND_USERS and isinstance(data, dict):
            self._send(sm.find_users_response(map(_user_info, data["users"])))
        elif action == Action.QUICK_JOIN_OR_CREATE_ROOM and isinstance(data, dict):
            self._joined(data)  # the client has no a=31 handler: the JoinRoom response
        elif (
            action in (Action.SPECTATOR_TO_PLAYER, Action.PLAYER_TO_SPECTATOR)
            and isinstance(data, dict)
            and self.me is not None
        ):  # the requester's own answer; the others get the `role_switched` event
            self._switched(data["room"], self.me["id"], data["player_id"])

    def _joined(self, data: dict[str, Any]) -> None:
        room = self._learn_room(data["room"])
        users = data.get("users", [])
        for u in users:
            self.users[u["id"]] = u
        self._send(sm.join_room_response(_room_info(room), map(_user_info, users)))

    def _learn_room(self, view: dict[str, Any]) -> dict[str, Any]:
        self.rooms[view["id"]] = view
        return view

    def fail(self, request_id: int | None, code: Native, message: str) -> None:
        """The hub's `error` reply, as the SFS error response of the request's action."""
        pending = self._pending.pop(request_id, None) if request_id is not None else None
        if pending is None:
            logger.debug("sfs2x: error %s without a request: %s", code, message)
            return
        if pending.action == Action.HANDSHAKE:  # HRC: the session is gone (expired, ended)
            logger.debug("sfs2x: reconnection refused: %s", message)
            self.token, self.resume_token = self.token_prefix + new_session_token(), None
            self.rooms, self.users, self.me, self.zone = {}, {}, None, ""
            self._created, self._pending = set(), {}
            self._handshake_done()  # a new session: the client reports the connection lost
        elif pending.action == Action.CALL_EXTENSION:
            self._send(self._extension_error(pending.ctx.get("cmd", ""), code, message))
        elif pending.action == Action.FIND_ROOMS:  # the client reads `fr` of any a=27: none found
            logger.debug("sfs2x: FindRooms failed: %s %s", code, message)
            self._send(sm.find_rooms_response(()))
        elif pending.action == Action.FIND_USERS:  # nor has it one for a=28
            logger.debug("sfs2x: FindUsers failed: %s %s", code, message)
            self._send(sm.find_users_response(()))
        elif pending.action == Action.QUICK_JOIN_OR_CREATE_ROOM:  # as a JoinRoom error (a=4)
            ec, params = sfs_error(Action.JOIN_ROOM, int(code), message, pending.ctx)
            self._send(error_response(Action.JOIN_ROOM, ec, *params))
        elif pending.action in _ANSWERED:
            ec, params = sfs_error(pending.action, int(code), message, pending.ctx)
            self._send(error_response(pending.action, ec, *params))
        else:
            logger.debug("sfs2x: action %d failed: %s %s", pending.action, code, message)

    def send_event(self, seq: int, event: OutEvent) -> None:
        """A native event as the SFS2X event(s); `seq` is not sent (kept for HRC)."""
        if seq:
            self.last_seq = seq
        name = event.name
        data = msgspec.to_builtins(event.data) if event.data is not None else {}
        try:
            self._event(name, data)
        except (KeyError, TypeError, SFSEncodeError):
            logger.exception("sfs2x: cannot translate event %s", name)

    def _event(self, name: str, d: Any) -> None:
        if name == "room_added":
            room = self._learn_room(d["room"])
            if room["id"] in self._created:
                self._created.discard(room["id"])
                return
            self._send(sm.room_add(_room_info(room)))
        elif name == "room_removed":
            self.rooms.pop(d["room"], None)
            self._send(sm.room_lost(d["room"]))
        elif name == "room_changed":
            self._room_changed(d["room"])
        elif name == "room_count":
            known = self.rooms.get(d["room"])
            if known is not None:
                known["users"], known["spectators"] = d["users"], d.get("spectators", 0)
            self._send(sm.user_count_change(d["room"], d["users"], d.get("spectators", 0)))
        elif name == "user_entered":
            user = d["user"]
            self.users[user["id"]] = user
            self._send(sm.user_enter_room(d["room"], _user_info(user)))
        elif name == "user_left":
            self._send(sm.user_exit_room(d["room"], d["user"]))
        elif name == "public_message":
            data = to_sfs_object(d["data"]) if d.get("data") else None
            self._send(sm.public_message(d["room"], d["from"], d.get("text", ""), data))
        elif name == "private_message":
            sender = d["from"]
            known = self.users.get(sender["id"], {})
            info = UserInfo(sender["id"], sender.get("name", ""), known.get("role", 0))
            data = to_sfs_object(d["data"]) if d.get("data") else None
            self._send(sm.private_message(sender["id"], d.get("text", ""), data, sender=info))
        elif name == "object_message":
            self._send(sm.object_message(d["from"], to_sfs_object(d.get("data"))))
        elif name == "moderator_message" or name == "admin_message":
            s = d["from"]
            info = UserInfo(s["id"], s.get("name", ""), s.get("role", 0))
            data = to_sfs_object(d["data"]) if d.get("data") else None
            build = sm.moderator_message if name == "moderator_message" else sm.admin_message
            self._send(build(d.get("text", ""), info, data))
        elif name == "room_variables":
            known = self.rooms.get(d["room"])
            if known is not None:
                current = {v["name"]: v for v in known.get("variables", ())}
                for v in d["variables"]:
                    if v.get("value") is None:
                        current.pop(v["name"], None)
                    else:
                        current[v["name"]] = v
                known["variables"] = list(current.values())
            rvs = [
                RoomVariable(
                    v["name"], _var_value(v.get("value")), v.get("private", False), v.get("persistent", False)
                )
                for v in d["variables"]
            ]
            self._send(sm.room_variables_update(d["room"], rvs))
        elif name == "user_variables":
            uvs = [
                UserVariable(v["name"], _var_value(v.get("value")), v.get("private", False))
                for v in d["variables"]
            ]
            self._send(sm.user_variables_update(d["user"], uvs))
        elif name == "kicked" or name == "banned":
            what = "kicked" if name == "kicked" else "banned"
            self._send(sm.moderator_message(d.get("reason") or f"You have been {what}", SERVER_USER))
        elif name == "invitation":
            params = to_sfs_object(d["data"]) if d.get("data") else None
            self._send(sm.invitation(_user_info(d["from"]), d["id"], d.get("seconds", 30), params))
        elif name == "invitation_reply":
            invitee = d["from"]
            reply = (
                sm.INVITATION_EXPIRED
                if d.get("expired")
                else sm.INVITATION_ACCEPT
                if d.get("accept")
                else sm.INVITATION_REFUSE
            )
            known = self.users.get(invitee["id"], {})
            view = {**known, **invitee} if "name" in invitee else {"name": "", **known, "id": invitee["id"]}
            params = to_sfs_object(d["data"]) if d.get("data") else None
            self._send(sm.invitation_reply(_user_info(view), reply, params))
        elif name == "role_switched":
            if self.me is None or d["user"] != self.me["id"]:  # our own: the reply says it
                self._switched(d["room"], d["user"], d["player_id"])
        else:  # anything else (casino pushes...) as an extension push named after the event
            self._send(sm.extension_response(name, to_sfs_object(d)))

    def _switched(self, room: int, user: int, player_id: int) -> None:
        """a=17 (a player now, with its player id) or a=18 (a spectator now)."""
        known = self.users.get(user)
        if known is not None:
            known["player_id"] = player_id
        if player_id >= 0:
            self._send(sm.spectator_to_player(room, user, player_id))
        else:
            self._send(sm.player_to_spectator(room, user))

    def send_raw(self, payload: bytes) -> None:
        """Queue an already encoded SFS2X packet."""
        self._queue(payload)

    def close(self, code: CloseCode, reason: str = "") -> None:
        """Close with `code`; kick, ban and idle closes first send 1005 with the reason."""
        if self.state >= CLOSING:
            return
        dr = _DISCONNECT_REASONS.get(code)
        if dr is not None and self.handshaken:
            self._send(sm.client_disconnection(dr))
        self.state = CLOSING
        self.close_code = code
        self.close_reason = reason
        logger.debug("= sfs2x session closing: %s %s", code.name, reason)

    def connection_lost(self, now: float = 0.0) -> None:
        """The transport is gone. A logged-in session of a client that can reconnect (HRC)
        and that dropped unexpectedly is left to the hub's resume grace; else it ends now."""
        resumable = (
            self.hrc
            and self.state is AUTHENTICATED
            and self.close_code is None
            and self.resume_token is not None
            and self.reconnections is not None
        )
        self.state = State.CLOSED
        if resumable:
            assert self.reconnections is not None
            self.dropped_at = now
            self.reconnections.dropped(self, self.dropped_at)
            return
        if self.reconnections is not None:
            self.reconnections.remove(self)
        if self.close_code not in _FINAL:
            self.close_code = CloseCode.NORMAL

    def check_timeouts(self, now: float) -> None:
        if self.state is OPEN and now - self._opened_at > self.limits.auth_timeout:
            self.close(CloseCode.AUTH_TIMEOUT, "no login in time")
        elif self.state <= AUTHENTICATED and now - self._last_rx > self.limits.idle_timeout:
            self.close(CloseCode.IDLE_TIMEOUT, "no message in time")

    # -- output ---------------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        try:
            packet = encode_frame(msg, compression_threshold=self.compression_threshold)
        except SFSEncodeError:
            logger.exception("sfs2x: cannot encode action %d", msg.action)
            return
        self._queue(packet)

    def _queue(self, payload: bytes) -> None:
        if self.state >= CLOSING:
            return
        self._out.append(payload)
        if len(self._out) > self.limits.max_pending_messages:
            self._out.clear()
            self.close(CloseCode.TOO_SLOW, "outgoing queue full")

    def has_data(self) -> bool:
        return bool(self._out)

    def data_to_send(self) -> list[bytes]:
        """Encoded SFS2X packets, one per WebSocket message (or written back to back on TCP)."""
        out, self._out = self._out, []
        return out

    def close_expected(self) -> bool:
        return self.state is CLOSING
