"""The round/outcome shape shared by slots and mini-games (OUT-1, OUT-6, INT-1, HIST-2).

A round is drawn completely before anything is shown: :class:`RoundOutcome` holds every step
(base spin, each free spin, each pick) and is what the server persists. Revealing the steps one by
one (:func:`reveal`) reads the stored outcome and never draws again, so a reconnecting client
continues exactly where it stopped. Amounts are integers in minor currency units.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "Bet",
    "LineWin",
    "PickStep",
    "Reveal",
    "RoundOutcome",
    "ScratchStep",
    "ScatterWin",
    "SpinStep",
    "Step",
    "WheelStep",
    "make_outcome",
    "reveal",
]


class Bet(msgspec.Struct, frozen=True, kw_only=True):
    """A wager: ``coin`` minor units per line (or per ways coin), ``lines`` played (lines games)."""

    coin: int
    lines: int | None = None


class LineWin(msgspec.Struct, frozen=True, kw_only=True):
    """One paying line (or, in ways games, one paying symbol with ``ways`` combinations).

    ``direction`` is ``rtl`` for a right-to-left win of a both-ways game (counted from the last
    reel), else ``ltr``.
    """

    line: int
    entry: str
    count: int
    multiplier: int
    ways: int = 1
    pay: int
    amount: int
    direction: Literal["ltr", "rtl"] = "ltr"


class ScatterWin(msgspec.Struct, frozen=True, kw_only=True):
    """A scatter pay: ``pay`` times the stake for ``count`` symbols anywhere."""

    symbol: str
    count: int
    pay: int
    amount: int


class SpinStep(msgspec.Struct, frozen=True, kw_only=True, tag="spin"):
    """One reel spin of a round. ``window[reel][row]`` lists symbol ids, top row first."""

    mode: Literal["base", "free"]
    reel_set: str
    stops: tuple[int, ...]
    window: tuple[tuple[str, ...], ...]
    line_wins: tuple[LineWin, ...]
    scatter_wins: tuple[ScatterWin, ...]
    multiplier: int
    spins_awarded: int
    win: int


class WheelStep(msgspec.Struct, frozen=True, kw_only=True, tag="wheel"):
    """A wheel-of-fortune spin: the segment drawn and what it awards."""

    segment: int
    segment_id: str
    prize_kind: str
    prize_value: int
    win: int


class PickStep(msgspec.Struct, frozen=True, kw_only=True, tag="pick"):
    """One opened box of a pick-a-box round (the layout was drawn when the round started)."""

    box: int
    prize_kind: str
    prize_value: int
    win: int
    ends_round: bool


class ScratchStep(msgspec.Struct, frozen=True, kw_only=True, tag="scratch"):
    """A scratch card: the tier drawn and the symbol grid generated for it (row-major)."""

    tier: str
    grid: tuple[str, ...]
    prize_kind: str
    prize_value: int
    win: int


Step = SpinStep | WheelStep | PickStep | ScratchStep


class RoundOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A complete, immutable round (HIST-2 fields the game can know; the server adds ids/times).

    ``is_ldw`` marks a loss disguised as a win (``0 < win < stake``); ``celebrate`` is true only
    when the win exceeds the stake, so clients never celebrate a return at or below the stake
    (OUT-6, UKGC RTS 14).
    """

    game_id: str
    game_version: str
    math_hash: str
    profile: str
    kind: Literal["slot", "wheel", "pick", "scratch"]
    bet: Bet
    stake: int
    win: int
    net: int
    is_ldw: bool
    celebrate: bool
    capped: bool
    steps: tuple[Step, ...]


class Reveal(msgspec.Struct, frozen=True, kw_only=True):
    """The next step of a stored round and the state to store for the following call."""

    step: Step
    revealed: int
    running_win: int
    complete: bool


def make_outcome(
    *,
    game_id: str,
    game_version: str,
    math_hash: str,
    profile: str,
    kind: Literal["slot", "wheel", "pick", "scratch"],
    bet: Bet,
    stake: int,
    win: int,
    capped: bool,
    steps: tuple[Step, ...],
) -> RoundOutcome:
    """Build a :class:`RoundOutcome`, deriving ``net``, ``is_ldw`` and ``celebrate``."""
    return RoundOutcome(
        game_id=game_id,
        game_version=game_version,
        math_hash=math_hash,
        profile=profile,
        kind=kind,
        bet=bet,
        stake=stake,
        win=win,
        net=win - stake,
        is_ldw=0 < win < stake,
        celebrate=win > stake,
        capped=capped,
        steps=steps,
    )


def reveal(outcome: RoundOutcome, revealed: int) -> Reveal:
    """Return the next unrevealed step of a stored round; never draws anything.

    Args:
        outcome: The persisted round.
        revealed: How many steps the client has already seen (0 for a new round).

    Returns:
        The step, the new ``revealed`` count to persist, the win so far (capped at the round
        win) and whether the round is now fully shown.

    Raises:
        ValueError: If every step has already been revealed.
    """
    if not 0 <= revealed < len(outcome.steps):
        raise ValueError("no step left to reveal")
    running = min(sum(s.win for s in outcome.steps[: revealed + 1]), outcome.win)
    done = revealed + 1 == len(outcome.steps)
    return Reveal(
        step=outcome.steps[revealed],
        revealed=revealed + 1,
        running_win=outcome.win if done else running,
        complete=done,
    )
