"""Shared pieces of the mini-games: prizes, weights and outcome construction."""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from ..round import Bet, RoundOutcome, Step, make_outcome

__all__ = ["MiniGameError", "Prize", "config_hash", "outcome_for"]


class MiniGameError(ValueError):
    """A mini-game configuration or move is invalid."""


class Prize(msgspec.Struct, frozen=True, kw_only=True):
    """A prize. ``credits`` pay ``value`` credits (money = credits x coin); ``free_spins`` and
    ``bonus`` are non-cash awards handed to the caller; ``end`` ends a pick round (it may still
    pay ``value`` credits)."""

    kind: Literal["credits", "free_spins", "bonus", "end"] = "credits"
    value: int = 0

    @property
    def credits(self) -> int:
        """Cash value in credits (``end`` prizes may carry credits too)."""
        return self.value if self.kind in ("credits", "end") else 0


def outcome_for(
    *,
    game_id: str,
    version: str,
    config_hash: str,
    kind: Literal["wheel", "pick", "scratch"],
    coin: int,
    cost: int,
    credits: int,
    steps: tuple[Step, ...],
) -> RoundOutcome:
    """A mini-game round in the same shape as a slot round (stake and win in minor units)."""
    return make_outcome(
        game_id=game_id,
        game_version=version,
        math_hash=config_hash,
        profile="default",
        kind=kind,
        bet=Bet(coin=coin),
        stake=cost * coin,
        win=credits * coin,
        capped=False,
        steps=steps,
    )


def config_hash(config: msgspec.Struct) -> str:
    """SHA-256 of a mini-game configuration (AUD-2)."""
    data = msgspec.json.encode(msgspec.to_builtins(config, str_keys=True), order="sorted")
    return hashlib.sha256(data).hexdigest()
