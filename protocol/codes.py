"""The one table of wire codes: error codes (in `error` replies) and close codes.

Every code a client can see is defined here and documented in docs/protocol.md.
Close codes use the WebSocket application range (4000-4999) except where RFC 6455
already names the situation (1000, 1001, 1002, 1003, 1007, 1009, 1011).
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Codes carried by an `error` reply. The connection stays open."""

    # Request shape (1-99)
    MALFORMED = 1  # not valid JSON / MessagePack, or not an object
    UNKNOWN_MESSAGE = 2  # the `type` is not one this server knows (version mismatch?)
    BAD_REQUEST = 3  # a field is missing, of the wrong type, or out of range
    NOT_LOGGED_IN = 4  # the request needs a logged-in session
    ALREADY_LOGGED_IN = 5
    RATE_LIMITED = 6  # flood filter: the request was dropped
    INTERNAL = 7  # an unexpected server fault; details are in the server log only
    BUSY = 8  # retryable: a queue is full or a dependency is slow
    UNAVAILABLE = 9  # retryable: a dependency (database) is down
    NOT_SUPPORTED = 10  # a known message this server does not support (yet)

    # Login and sessions (100-199)
    BAD_TOKEN = 100  # signature, format or zone mismatch
    TOKEN_EXPIRED = 101
    ZONE_NOT_FOUND = 102
    GUESTS_NOT_ALLOWED = 103
    USER_BANNED = 104
    ZONE_FULL = 105
    RESUME_FAILED = 106  # session gone or events no longer buffered: log in again
    BAD_NAME = 107
    #: a token login on a worker that does not own the user: reconnect with `?token=` in the
    #: WebSocket URL (TCP: send `login` as the first frame) so the acceptor routes it to the owner
    WRONG_WORKER = 110

    # Rooms and groups (200-299)
    ROOM_NOT_FOUND = 200
    ROOM_FULL = 201
    WRONG_PASSWORD = 202
    ALREADY_IN_ROOM = 203
    NOT_IN_ROOM = 204
    ROOM_NAME_TAKEN = 205
    ROOM_CREATION_DENIED = 206
    TOO_MANY_ROOMS = 207
    GROUP_NOT_FOUND = 208
    ALREADY_SUBSCRIBED = 209
    NOT_SUBSCRIBED = 210
    SPECTATORS_FULL = 211
    ROOM_LOCKED = 212

    # Users, messages, variables, moderation (300-399)
    USER_NOT_FOUND = 300
    PERMISSION_DENIED = 301
    VARIABLE_INVALID = 302  # bad name, type, size, or too many variables
    VARIABLE_READ_ONLY = 303  # a private room variable owned by someone else
    MESSAGE_TOO_LONG = 304
    INVITATION_NOT_FOUND = 305  # no such invitation to this user: answered, expired or never sent

    # Casino (400-499)
    NO_CASINO = 400  # this zone offers no casino games
    GAME_NOT_FOUND = 401
    BAD_BET = 402  # coin value or line count the game does not offer
    INSUFFICIENT_FUNDS = 403
    POLICY_REFUSED = 404  # responsible-gaming policy (limit, time-out, minimum cycle...)
    ROUND_NOT_FOUND = 405
    ROUND_IN_PROGRESS = 406  # finish the open round of this game first (round_continue)
    ROUND_COMPLETE = 407  # every step of the round has been revealed
    REQUEST_ID_REUSED = 408  # this request id was used by another money request
    # Rewards: lotteries, bonuses, missions, referrals, responsible gaming (409-429)
    LOTTERY_NOT_FOUND = 409  # no such lottery (or draw) in this zone
    SALES_CLOSED = 410  # no draw on sale now (before opening, after the cutoff)
    BAD_TICKET = 411  # numbers out of range, repeated, or the wrong count
    TICKET_LIMIT = 412  # max_tickets_per_player for this draw reached
    DRAW_PENDING = 413  # the draw has not happened yet: no result to show or verify
    BONUS_NOT_FOUND = 414  # no such offer, or not active now
    BONUS_CLAIMED = 415  # already claimed (today, for the daily reward)
    BONUS_ACTIVE = 416  # a bonus is still being wagered: finish it first
    MISSION_NOT_FOUND = 417  # no such mission, or not active now
    REFERRAL_INVALID = 418  # unknown code, or the player's own code
    REFERRAL_EXISTS = 419  # the player was already referred
    LIMIT_INVALID = 420  # duration not offered, no pending increase, still cooling off
    NOT_EXCLUDED = 421  # rg_reactivate: no self-exclusion, or it has not expired

    # Leaderboards and tournaments (430-449)
    BOARD_NOT_FOUND = 430  # no such leaderboard in this zone
    NOT_JOINED = 431  # reserved: the tournament requires `leaderboard_join` (scores are not counted)
    JOIN_NOT_REQUIRED = 432  # this board counts every eligible player: nothing to join
    TOURNAMENT_CLOSED = 433  # the tournament has not started yet or has ended
    TOO_MANY_SUBSCRIPTIONS = 434  # leaderboards.max_subscriptions per session
    RESULTS_NOT_FOUND = 435  # no archived results for that period


class CloseCode(IntEnum):
    """Codes the server closes a connection with (WebSocket close code, or TCP `closing`)."""

    NORMAL = 1000  # logout, or a clean close by either side
    GOING_AWAY = 1001  # server shutting down or draining: resume with your token
    WS_PROTOCOL_ERROR = 1002  # a WebSocket framing error (RFC 6455)
    UNSUPPORTED_DATA = 1003  # a text frame on a MessagePack session (or binary on JSON)
    INVALID_TEXT = 1007  # a text message that is not UTF-8
    MESSAGE_TOO_BIG = 1009  # a message above limits.max_message_bytes
    INTERNAL_ERROR = 1011

    AUTH_TIMEOUT = 4001  # no login within limits.auth_timeout
    IDLE_TIMEOUT = 4002  # nothing received within limits.idle_timeout
    SESSION_REPLACED = 4003  # the same user logged in on another connection
    KICKED = 4004
    BANNED = 4005
    RATE_LIMITED = 4006  # flood filter: too many warnings
    TOO_SLOW = 4007  # the client does not read fast enough (outgoing queue full)
    PROTOCOL_ERROR = 4008  # the byte stream cannot be parsed (TCP framing)
    RESUME_ELSEWHERE = 4009  # move: reconnect and resume (worker draining / ring change)
    WRONG_NODE = 4010  # the user lives on another node: the reason is its address; reconnect there


#: Close codes after which a client should reconnect and send `resume`.
RESUMABLE_CLOSE_CODES = frozenset({CloseCode.GOING_AWAY, CloseCode.RESUME_ELSEWHERE})
