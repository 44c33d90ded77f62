"""Wire messages: msgspec Structs in tagged unions (the `type` field is the tag).

Client -> server: every request carries an `id` (a client-chosen integer, echoed in the
reply). Server -> client: `ok` / `error` replies naming that id, and `event` pushes with a
per-session, strictly increasing `seq`. docs/protocol.md documents every message.

Evolution rules (docs/protocol.md, "Evolving the protocol"): new fields always get a
default; a field's type never changes; a message type is never reused for another
meaning. Unknown fields are ignored so newer clients can talk to older servers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Raw, Struct

from .leaderboard_messages import (  # the leaderboard requests, in the union below
    LeaderboardJoin,
    LeaderboardList,
    LeaderboardResults,
    LeaderboardSnapshot,
    LeaderboardSubscribe,
    LeaderboardUnsubscribe,
)
from .msgbase import (  # re-exported: callers import them from here
    GroupName as GroupName,
    Name as Name,
    Password as Password,
    Request as Request,
    RequestId as RequestId,
    RoomId as RoomId,
    Scope as Scope,
    Text as Text,
    UserId as UserId,
    Variable as Variable,
    VarValue as VarValue,
)
from .rewards_messages import (  # the rewards requests, in the union below
    BonusClaim,
    BonusList,
    LotteryBuy,
    LotteryList,
    LotteryResults,
    LotteryVerify,
    MissionList,
    MissionProgress,
    PickInfo,
    PickOpen,
    PickStart,
    ReferralApply,
    ReferralCode,
    RgConfirm,
    RgExclude,
    RgLimit,
    RgReactivate,
    RgSession,
    RgStatus,
    RgTimeout,
)

_Request = Request

# -- sessions ------------------------------------------------------------------------------


class Login(_Request, tag="login", frozen=True):
    """Log in with a signed token, or as a guest where the zone allows it."""

    token: str | None = None
    guest: bool = False
    zone: str | None = None  # required for guests; must match the token's zone if given
    name: Annotated[str, Meta(max_length=64)] | None = None  # a guest's display name


class Resume(_Request, tag="resume", frozen=True):
    """Re-attach to a session kept after a drop; `last_seq` is the last event seen."""

    token: Annotated[str, Meta(max_length=256)]
    last_seq: Annotated[int, Meta(ge=0)] = 0


class Logout(_Request, tag="logout", frozen=True):
    """Leave every room and end the session; the connection stays open."""


class Ping(_Request, tag="ping", frozen=True):
    """Heartbeat; any request counts as activity, `ping` is the cheapest."""

    t: int | None = None  # echoed back, for the client's own round-trip timing


# -- rooms and groups ----------------------------------------------------------------------


class ListRooms(_Request, tag="list_rooms", frozen=True):
    """Rooms of one group, or of every subscribed group when `group` is omitted."""

    group: GroupName | None = None


MatchOp = Literal["==", "!=", ">", ">=", "<", "<=", "contains", "starts_with", "ends_with"]
#: `free_slots`: a player seat is free; `locked`: password protected
RoomProp = Literal[
    "name", "group", "game", "locked", "users", "spectators", "max_users", "max_spectators", "free_slots"
]


class Condition(Struct, frozen=True, omit_defaults=True):
    """One test of a room search (rooms/match.py): a room property (`prop`) or variable
    (`var`), exactly one of them; `logic` joins it to the conditions before it."""

    op: MatchOp
    value: bool | int | float | str
    prop: RoomProp | None = None
    var: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    logic: Literal["and", "or"] = "and"


#: a chain of conditions, read left to right
Where = Annotated[list[Condition], Meta(max_length=16)]


class FindRooms(_Request, tag="find_rooms", frozen=True):
    """Listed rooms of one group (or every group) matching `where`, by id."""

    group: GroupName | None = None
    where: Where = []
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


#: a user's properties in a user search: `role` (0 guest, 1 user, 2 moderator, 3 admin);
#: `in_room`, `player`, `spectator` in the room being looked at (rooms/match.py)
UserProp = Literal["name", "role", "in_room", "player", "spectator"]


class UserCondition(Struct, frozen=True, omit_defaults=True):
    """One test of a user search: a property (`prop`) or a public user variable (`var`)."""

    op: MatchOp
    value: bool | int | float | str
    prop: UserProp | None = None
    var: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    logic: Literal["and", "or"] = "and"


class FindUsers(_Request, tag="find_users", frozen=True):
    """Users matching `where`: the members of `room`, the users in the rooms of `group`,
    or (neither) every user of the zone; by id."""

    room: RoomId | None = None
    group: GroupName | None = None
    where: Annotated[list[UserCondition], Meta(max_length=16)] = []
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class NewRoom(Struct, frozen=True):
    """The room a quick join creates when none matches (the fields of `create_room`)."""

    name: Name
    group: GroupName = "default"
    game: bool = False
    max_users: Annotated[int, Meta(ge=1, le=10_000)] = 10
    max_spectators: Annotated[int, Meta(ge=0, le=10_000)] = 0
    password: Password = ""
    hidden: bool = False
    variables: Annotated[list[Variable], Meta(max_length=64)] = []


class QuickJoin(_Request, tag="quick_join", frozen=True):
    """Join the best matching open room of `groups` (empty: every group), else create
    `create` and join it."""

    groups: Annotated[list[GroupName], Meta(max_length=32)] = []
    where: Where = []
    spectator: bool = False
    leave: RoomId | None = None
    create: NewRoom | None = None


class SubscribeGroup(_Request, tag="subscribe_group", frozen=True):
    group: GroupName


class UnsubscribeGroup(_Request, tag="unsubscribe_group", frozen=True):
    group: GroupName


class CreateRoom(_Request, tag="create_room", frozen=True):
    name: Name
    group: GroupName = "default"
    game: bool = False
    max_users: Annotated[int, Meta(ge=1, le=10_000)] = 10
    max_spectators: Annotated[int, Meta(ge=0, le=10_000)] = 0
    password: Password = ""
    hidden: bool = False
    variables: Annotated[list[Variable], Meta(max_length=64)] = []
    join: bool = True  # join the creator right away
    spectator: bool = False  # ...as a spectator


class JoinRoom(_Request, tag="join_room", frozen=True):
    room: RoomId | Name  # id, or name
    password: Password = ""
    spectator: bool = False
    leave: RoomId | None = None  # a room to leave once joined


class LeaveRoom(_Request, tag="leave_room", frozen=True):
    room: RoomId


class SwitchRole(_Request, tag="switch_role", frozen=True):
    """Become a spectator (`spectator=true`) or a player in a game room."""

    room: RoomId
    spectator: bool


class ChangeRoom(_Request, tag="change_room", frozen=True):
    """The room's owner (or a moderator) renames it, sets or removes (`""`) its password,
    or resizes it; omitted fields stay as they are."""

    room: RoomId
    name: Name | None = None
    password: Password | None = None
    max_users: Annotated[int, Meta(ge=1, le=10_000)] | None = None
    max_spectators: Annotated[int, Meta(ge=0, le=10_000)] | None = None


class Invite(_Request, tag="invite", frozen=True):
    """Invite users (to a table, a game...): each gets `invitation` and has `seconds` to
    answer with `invitation_reply`; `data` travels with it."""

    users: Annotated[list[UserId], Meta(min_length=1, max_length=8)]
    seconds: Annotated[int, Meta(ge=5, le=300)] = 30
    data: dict[str, Any] | None = None


class InvitationReply(_Request, tag="invitation_reply", frozen=True):
    """Accept or refuse an invitation received; the inviter gets `invitation_reply`."""

    invitation: Annotated[int, Meta(ge=1, le=2**31 - 1)]
    accept: bool
    data: dict[str, Any] | None = None


# -- messages ------------------------------------------------------------------------------


class PublicMessage(_Request, tag="public_message", frozen=True):
    room: RoomId
    text: Text
    data: dict[str, Any] | None = None


class PrivateMessage(_Request, tag="private_message", frozen=True):
    to: UserId
    text: Text
    data: dict[str, Any] | None = None


class ObjectMessage(_Request, tag="object_message", frozen=True):
    """Structured data to a room's users (or some of them), not echoed to the sender."""

    room: RoomId
    data: dict[str, Any]
    to: Annotated[list[UserId], Meta(max_length=1000)] | None = None


class ModeratorMessage(_Request, tag="moderator_message", frozen=True):
    text: Text
    scope: Scope = "zone"
    target: int | str | None = None  # user id, room id, group name; none for the zone
    data: dict[str, Any] | None = None


class AdminMessage(_Request, tag="admin_message", frozen=True):
    text: Text
    scope: Scope = "zone"
    target: int | str | None = None
    data: dict[str, Any] | None = None


# -- variables -----------------------------------------------------------------------------


class SetRoomVariables(_Request, tag="set_room_variables", frozen=True):
    room: RoomId
    variables: Annotated[list[Variable], Meta(min_length=1, max_length=64)]


class SetUserVariables(_Request, tag="set_user_variables", frozen=True):
    variables: Annotated[list[Variable], Meta(min_length=1, max_length=64)]


# -- moderation ----------------------------------------------------------------------------


class Kick(_Request, tag="kick", frozen=True):
    user: UserId
    reason: Annotated[str, Meta(max_length=256)] = ""


class Ban(_Request, tag="ban", frozen=True):
    user: UserId
    hours: Annotated[float, Meta(gt=0, le=24 * 365 * 10)] = 24
    reason: Annotated[str, Meta(max_length=256)] = ""


# -- casino (docs/protocol.md, "Casino") ----------------------------------------------------

GameName = Annotated[str, Meta(min_length=1, max_length=64)]
RoundRef = Annotated[str, Meta(min_length=1, max_length=64)]


class Spin(_Request, tag="spin", frozen=True):
    """Play one round of a slot game; the whole outcome is drawn and settled at once.

    `id` is the idempotency key (with the zone and user): re-sending the same id returns
    the original reply and posts nothing.
    """

    game: GameName
    coin: Annotated[int, Meta(ge=1, le=2**53)] | None = None  # coin value; none = the smallest
    lines: Annotated[int, Meta(ge=1, le=1000)] | None = None  # lines played; none = all
    #: A client-chosen idempotency key that outlives the session (e.g. a UUID kept until
    #: the reply arrives): a retry after a reconnect, a new login or a server restart
    #: returns the original round. Without it, retries must come in the same session.
    key: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")] | None = None


class MinigamePlay(_Request, tag="minigame_play", frozen=True):
    """Buy and play one paid mini-game round (wheel, scratch card); settled like a spin."""

    game: GameName
    coin: Annotated[int, Meta(ge=1, le=2**53)] | None = None  # money per credit; none = the smallest
    key: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")] | None = None


class RoundContinue(_Request, tag="round_continue", frozen=True):
    """Reveal the next step (free spin) of a multi-step round from its stored outcome.

    `step` is the number of steps the client has seen: a step already revealed is sent
    again without any change; none = the next one.
    """

    round: RoundRef
    step: Annotated[int, Meta(ge=0, le=100_000)] | None = None


class GameInfo(_Request, tag="game_info", frozen=True):
    """The zone's game catalogue, or one game's paytable, rules and disclosed RTP."""

    game: GameName | None = None


class Balance(_Request, tag="balance", frozen=True):
    """The player's balance and rounds still in progress."""


class History(_Request, tag="history", frozen=True):
    """The player's rounds, newest first; page with `before` (a round's `created_at`)."""

    limit: Annotated[int, Meta(ge=1, le=1000)] = 10
    before: Annotated[int, Meta(ge=0)] | None = None


ClientMessage = (
    Login
    | Resume
    | Logout
    | Ping
    | ListRooms
    | FindRooms
    | FindUsers
    | QuickJoin
    | SubscribeGroup
    | UnsubscribeGroup
    | CreateRoom
    | JoinRoom
    | LeaveRoom
    | SwitchRole
    | ChangeRoom
    | Invite
    | InvitationReply
    | PublicMessage
    | PrivateMessage
    | ObjectMessage
    | ModeratorMessage
    | AdminMessage
    | SetRoomVariables
    | SetUserVariables
    | Kick
    | Ban
    | Spin
    | RoundContinue
    | GameInfo
    | Balance
    | History
    | MinigamePlay
    | LotteryList
    | LotteryBuy
    | LotteryResults
    | LotteryVerify
    | BonusList
    | BonusClaim
    | MissionList
    | MissionProgress
    | ReferralCode
    | ReferralApply
    | RgStatus
    | RgLimit
    | RgConfirm
    | RgTimeout
    | RgExclude
    | RgReactivate
    | RgSession
    | PickInfo
    | PickStart
    | PickOpen
    | LeaderboardList
    | LeaderboardSubscribe
    | LeaderboardUnsubscribe
    | LeaderboardSnapshot
    | LeaderboardJoin
    | LeaderboardResults
)

#: Every client message type, by its wire tag.
CLIENT_TYPES: dict[str, type[_Request]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in ClientMessage.__args__  # type: ignore[attr-defined]
}


# -- server -> client ----------------------------------------------------------------------


class Ok(Struct, tag_field="type", tag="ok"):
    """Success reply to request `id`; `data` depends on the request (docs/protocol.md)."""

    id: int
    data: Any = None


class Error(Struct, tag_field="type", tag="error"):
    """Failure reply to request `id` (null when the request could not be read)."""

    id: int | None
    code: int
    name: str  # the code's name, lowercase, for humans and logs
    message: str  # English, for the client developer


class Event(Struct, tag_field="type", tag="event"):
    """A server push. `seq` increases by one per event within a session."""

    seq: int
    event: str
    data: Raw | Any = None


class Closing(Struct, tag_field="type", tag="closing"):
    """Sent on the TCP transport just before the server closes the socket."""

    code: int
    reason: str


ServerMessage = Ok | Error | Event | Closing


class Envelope(Struct):
    """A lenient view used only on the error path: which request failed, and as what."""

    id: Any = None
    type: Any = None


# -- helpers used by tests and clients -----------------------------------------------------


def to_builtins(msg: Struct) -> Any:
    """A message as plain dicts and lists (for logs and tests)."""
    return msgspec.to_builtins(msg)
