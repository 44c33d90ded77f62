"""Leaderboard and tournament requests (docs/protocol.md, "Leaderboards").

A client subscribes to a board and gets a snapshot (the top N, its own standing and its
neighbours, with the stream's `epoch` and `seq`), then `leaderboard_delta` events once per
tick while the top N changes and `leaderboard_rank` events when its own standing changes.
A client that sees a gap in `seq` asks for `leaderboard_snapshot` (with the last
`epoch`/`seq` it applied: the reply then carries the missed deltas if the server still
has them, else a fresh snapshot).

Server events (names are the `event` field of an `event` envelope):

* `leaderboard_delta` — `{board_id, epoch, seq, entered, left, moved, prev_epoch, window}`
* `leaderboard_rank` — `{board_id, epoch, seq, me}` (`me` null: no score yet)
* `tournament_result` — `{board_id, period, window, position, rank, score, prize, currency}`
* `reward_granted` — `{source, board_id, period, amount, currency, key}`
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from .msgbase import Request

#: A board's name inside the zone (`[leaderboards.zones.<zone>.<board>]`).
BoardName = Annotated[str, Meta(min_length=1, max_length=64)]
#: A stream epoch as the server sent it.
Epoch = Annotated[str, Meta(min_length=1, max_length=256)]

#: Event names pushed by the leaderboard service.
DELTA_EVENT = "leaderboard_delta"
RANK_EVENT = "leaderboard_rank"
RESULT_EVENT = "tournament_result"
REWARD_EVENT = "reward_granted"


class LeaderboardList(Request, tag="leaderboard_list", frozen=True):
    """The zone's boards: rules, current window, tournament prizes, whether you joined."""


class LeaderboardSubscribe(Request, tag="leaderboard_subscribe", frozen=True):
    """Start receiving deltas of `board`; the reply is a snapshot."""

    board: BoardName


class LeaderboardUnsubscribe(Request, tag="leaderboard_unsubscribe", frozen=True):
    board: BoardName


class LeaderboardSnapshot(Request, tag="leaderboard_snapshot", frozen=True):
    """Gap recovery: with `epoch` and `seq` (the last delta applied), the missed deltas if
    the server still holds them, else (or without them) a fresh snapshot."""

    board: BoardName
    epoch: Epoch | None = None
    seq: Annotated[int, Meta(ge=0)] | None = None


class LeaderboardJoin(Request, tag="leaderboard_join", frozen=True):
    """Join the current period of a tournament whose board requires joining."""

    board: BoardName


class LeaderboardResults(Request, tag="leaderboard_results", frozen=True):
    """The archived final standings of a finished period (default: the last one)."""

    board: BoardName
    period: Annotated[int, Meta(ge=0)] | None = None  # the period's start (epoch seconds)
    limit: Annotated[int, Meta(ge=1, le=100)] = 10


LEADERBOARD_TYPES: frozenset[type] = frozenset(
    {
        LeaderboardList,
        LeaderboardSubscribe,
        LeaderboardUnsubscribe,
        LeaderboardSnapshot,
        LeaderboardJoin,
        LeaderboardResults,
    }
)
