"""Pick-a-box: n boxes hide a fixed multiset of prizes; the player opens up to k of them.

The whole layout (a uniform permutation of the prizes) is drawn when the round starts and stored
in :class:`PickState`; opening a box only reads it. The player's choices therefore cannot change
the expected value, and a reconnecting player continues the stored round (INT-1, INT-2). An
abandoned round is finished by :func:`auto_pick`, which opens the lowest unopened box (INT-4).
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import msgspec

from ..rng import Rng, shuffle
from ..round import PickStep, RoundOutcome
from .common import MiniGameError, Prize, config_hash, outcome_for

__all__ = [
    "PickConfig",
    "PickState",
    "auto_pick",
    "finish_pick",
    "open_box",
    "pick_expected_credits",
    "start_pick",
    "validate_pick",
]


class PickConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``prizes[i]`` is hidden in one of ``len(prizes)`` boxes; ``picks`` boxes may be opened.
    A prize of kind ``end`` ends the round when revealed."""

    kind: str = "pick"
    id: str
    version: str
    cost: int
    prizes: tuple[Prize, ...]
    picks: int


class PickState(msgspec.Struct, frozen=True, kw_only=True):
    """A pick round in progress: ``layout[box]`` is the index of the prize in that box."""

    coin: int
    layout: tuple[int, ...]
    opened: tuple[int, ...] = ()
    steps: tuple[PickStep, ...] = ()
    done: bool = False


def validate_pick(config: PickConfig) -> None:
    """Raises MiniGameError unless 1 <= picks <= boxes and amounts are non-negative."""
    if not config.prizes or not 1 <= config.picks <= len(config.prizes):
        raise MiniGameError("need at least one box and 1 <= picks <= boxes")
    if config.cost < 0 or any(p.value < 0 for p in config.prizes):
        raise MiniGameError("cost and prizes must be non-negative")


def start_pick(config: PickConfig, rng: Rng, coin: int) -> PickState:
    """Draw the complete layout (unbiased shuffle) before the first pick."""
    layout = list(range(len(config.prizes)))
    shuffle(rng, layout)
    return PickState(coin=coin, layout=tuple(layout))


def open_box(config: PickConfig, state: PickState, box: int) -> PickState:
    """Open one box of a stored round; pure, draws nothing.

    Raises:
        MiniGameError: If the round is over, or the box is out of range or already open.
    """
    if state.done:
        raise MiniGameError("the round is over")
    if not 0 <= box < len(state.layout) or box in state.opened:
        raise MiniGameError("that box cannot be opened")
    prize = config.prizes[state.layout[box]]
    opened = (*state.opened, box)
    ends = prize.kind == "end" or len(opened) == config.picks
    step = PickStep(
        box=box,
        prize_kind=prize.kind,
        prize_value=prize.value,
        win=prize.credits * state.coin,
        ends_round=ends,
    )
    return msgspec.structs.replace(state, opened=opened, steps=(*state.steps, step), done=ends)


def auto_pick(config: PickConfig, state: PickState) -> PickState:
    """Documented default for an abandoned round: open the lowest unopened box until done."""
    while not state.done:
        state = open_box(config, state, min(set(range(len(state.layout))) - set(state.opened)))
    return state


def finish_pick(config: PickConfig, state: PickState) -> RoundOutcome:
    """The completed round as a :class:`RoundOutcome`.

    Raises:
        MiniGameError: If the round still needs picks.
    """
    if not state.done:
        raise MiniGameError("the round still needs picks")
    credits = sum(config.prizes[state.layout[b]].credits for b in state.opened)
    return outcome_for(
        game_id=config.id,
        version=config.version,
        config_hash=config_hash(config),
        kind="pick",
        coin=state.coin,
        cost=config.cost,
        credits=credits,
        steps=state.steps,
    )


def pick_expected_credits(config: PickConfig) -> Fraction:
    """Exact expected cash prize of a round, whatever boxes the player chooses.

    The revealed prizes are a uniform random ordering. A non-ending prize is collected if it
    lies at position ``j <= k`` with all ``m`` ending prizes after it; an ending prize pays if it
    is the first ender and lies at ``j <= k``.
    """
    n, k = len(config.prizes), config.picks
    m = sum(p.kind == "end" for p in config.prizes)
    total = Fraction(0)
    for prize in config.prizes:
        if not prize.credits:
            continue
        if prize.kind == "end":
            reach = sum(Fraction(comb(n - j, m - 1), comb(n - 1, m - 1)) for j in range(1, k + 1))
        else:
            reach = sum(Fraction(comb(n - j, m), comb(n - 1, m)) for j in range(1, k + 1))
        total += Fraction(prize.credits) * reach / n
    return total
