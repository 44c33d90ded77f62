"""Scratch cards: a grid of symbols; ``match`` equal symbols win that symbol's tier prize.

Two explicit models: ``independent`` draws each card's tier from the weights (odds constant);
``pool`` deals from a finite pool of cards (weights are card counts) without replacement, so the
RTP is exact per pool but the odds move during it and must be disclosed. The symbol layout is
generated to match the tier: the winning symbol appears exactly ``match`` times and every other
symbol fewer, so a card can never show an extra, unadvertised win.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from itertools import accumulate
from typing import Literal

import msgspec

from ..rng import Rng, shuffle, weighted_index
from ..round import RoundOutcome, ScratchStep
from .common import MiniGameError, Prize, config_hash, outcome_for

__all__ = [
    "ScratchConfig",
    "ScratchTier",
    "play_scratch",
    "scratch_expected_credits",
    "validate_scratch",
    "winning_symbols",
]


class ScratchTier(msgspec.Struct, frozen=True, kw_only=True):
    """A prize tier: ``symbol`` (None for a losing card) matched ``match`` times pays ``prize``."""

    id: str
    weight: int
    symbol: str | None = None
    prize: Prize = Prize()


class ScratchConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A scratch-card game; ``cost`` credits per card."""

    kind: str = "scratch"
    id: str
    version: str
    cost: int
    rows: int
    cols: int
    match: int
    symbols: tuple[str, ...]
    tiers: tuple[ScratchTier, ...]
    model: Literal["independent", "pool"] = "independent"


def validate_scratch(config: ScratchConfig) -> None:
    """Check that every tier can be laid out without an extra win.

    Raises:
        MiniGameError: On the first problem found.
    """
    cells = config.rows * config.cols
    if config.match < 2 or not config.tiers or any(t.weight <= 0 for t in config.tiers):
        raise MiniGameError("need match >= 2 and positive tier weights")
    symbols = set(config.symbols)
    for tier in config.tiers:
        if tier.symbol is not None and tier.symbol not in symbols:
            raise MiniGameError(f"tier {tier.id}: unknown symbol")
        others = len(symbols) - (tier.symbol is not None)
        fill = cells - (config.match if tier.symbol is not None else 0)
        if fill < 0 or others * (config.match - 1) < fill:
            raise MiniGameError(f"tier {tier.id}: the grid cannot be filled without an extra win")
    winners = [t.symbol for t in config.tiers if t.symbol is not None]
    if len(winners) != len(set(winners)):
        raise MiniGameError("each winning symbol belongs to one tier")


def scratch_expected_credits(config: ScratchConfig) -> Fraction:
    """Exact expected cash prize per card (per card of a full pool for the pool model)."""
    total = sum(t.weight for t in config.tiers)
    return Fraction(sum(t.weight * t.prize.credits for t in config.tiers), total)


def winning_symbols(grid: tuple[str, ...], match: int) -> set[str]:
    """Symbols shown at least ``match`` times (what a player would read as a win)."""
    return {s for s, n in Counter(grid).items() if n >= match}


def _layout(config: ScratchConfig, tier: ScratchTier, rng: Rng) -> tuple[str, ...]:
    cells = config.rows * config.cols
    fillers = [s for s in config.symbols if s != tier.symbol for _ in range(config.match - 1)]
    shuffle(rng, fillers)
    grid = fillers[: cells - (config.match if tier.symbol is not None else 0)]
    if tier.symbol is not None:
        grid += [tier.symbol] * config.match
    shuffle(rng, grid)
    return tuple(grid)


def play_scratch(
    config: ScratchConfig, rng: Rng, coin: int, pool: dict[str, int] | None = None
) -> tuple[RoundOutcome, dict[str, int] | None]:
    """Draw a card and its layout.

    Args:
        config: A validated game.
        rng: The injected random source.
        coin: Money value of one credit, in minor units.
        pool: For the pool model, the cards left per tier (start with the tier weights).

    Returns:
        The round and, for the pool model, the pool after this card.

    Raises:
        MiniGameError: If the pool model has no pool or the pool is empty.
    """
    if config.model == "pool":
        if pool is None or sum(pool.values()) <= 0:
            raise MiniGameError("the pool is empty")
        weights = [pool.get(t.id, 0) for t in config.tiers]
    else:
        weights = [t.weight for t in config.tiers]
    index = weighted_index(rng, list(accumulate(weights)))
    tier = config.tiers[index]
    step = ScratchStep(
        tier=tier.id,
        grid=_layout(config, tier, rng),
        prize_kind=tier.prize.kind,
        prize_value=tier.prize.value,
        win=tier.prize.credits * coin,
    )
    outcome = outcome_for(
        game_id=config.id,
        version=config.version,
        config_hash=config_hash(config),
        kind="scratch",
        coin=coin,
        cost=config.cost,
        credits=tier.prize.credits,
        steps=(step,),
    )
    if pool is None:
        return outcome, None
    return outcome, {**pool, tier.id: pool[tier.id] - 1}
