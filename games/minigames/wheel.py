"""Wheel of fortune: weighted segments, one draw per round.

The visual size of a segment is independent of its weight; the information screen must say that
segment sizes are not the odds. RTP = sum(weight x credits) / sum(weight) / cost.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import accumulate

import msgspec

from ..rng import Rng, weighted_index
from ..round import RoundOutcome, WheelStep
from .common import MiniGameError, Prize, config_hash, outcome_for

__all__ = ["Segment", "WheelConfig", "expected_credits", "spin_wheel", "validate_wheel", "wheel_rtp"]


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    """One wheel segment with an integer weight."""

    id: str
    weight: int
    prize: Prize


class WheelConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A wheel; ``cost`` is the stake in credits (0 when triggered by another game)."""

    kind: str = "wheel"
    id: str
    version: str
    cost: int
    segments: tuple[Segment, ...]


def validate_wheel(config: WheelConfig) -> None:
    """Reject empty wheels, duplicate ids and non-positive weights (RNG-5: all reachable).

    Raises:
        MiniGameError: On the first problem found.
    """
    if not config.segments:
        raise MiniGameError("a wheel needs segments")
    if len({s.id for s in config.segments}) != len(config.segments):
        raise MiniGameError("segment ids must be unique")
    if any(s.weight <= 0 for s in config.segments):
        raise MiniGameError("every segment weight must be positive")
    if config.cost < 0 or any(s.prize.value < 0 for s in config.segments):
        raise MiniGameError("cost and prizes must be non-negative")


def expected_credits(config: WheelConfig) -> Fraction:
    """Exact expected cash prize per spin, in credits."""
    total = sum(s.weight for s in config.segments)
    return Fraction(sum(s.weight * s.prize.credits for s in config.segments), total)


def wheel_rtp(config: WheelConfig) -> Fraction:
    """Exact RTP of a paid wheel.

    Raises:
        MiniGameError: For a free (triggered) wheel, which has no RTP of its own.
    """
    if not config.cost:
        raise MiniGameError("a triggered wheel has an expected value, not an RTP")
    return expected_credits(config) / config.cost


def spin_wheel(config: WheelConfig, rng: Rng, coin: int) -> RoundOutcome:
    """Draw one segment and return the complete round.

    Args:
        config: A validated wheel.
        rng: The injected random source.
        coin: Money value of one credit, in minor units.
    """
    index = weighted_index(rng, list(accumulate(s.weight for s in config.segments)))
    segment = config.segments[index]
    step = WheelStep(
        segment=index,
        segment_id=segment.id,
        prize_kind=segment.prize.kind,
        prize_value=segment.prize.value,
        win=segment.prize.credits * coin,
    )
    return outcome_for(
        game_id=config.id,
        version=config.version,
        config_hash=config_hash(config),
        kind="wheel",
        coin=coin,
        cost=config.cost,
        credits=segment.prize.credits,
        steps=(step,),
    )
