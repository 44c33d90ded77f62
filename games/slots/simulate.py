"""Offline Monte-Carlo simulation of slot rounds with confidence intervals (OUT-2 fallback).

Simulation is for verification and for games too large to enumerate; it uses the same round
engine as live play (:func:`games.slots.spin.run_round`). It is the one game module allowed to
use :class:`games.rng.SeededRng`, so that a run is reproducible from its seed. Never call it to
decide real play.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..rng import Rng, SeededRng
from .model import SlotGame
from .spin import run_round

__all__ = ["SimulationResult", "simulate"]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Totals of a simulation run, in coins; ratios are per unit of stake.

    Attributes:
        rounds: Rounds played.
        cost: Stake per round in coins.
        total: Sum of round wins.
        total_squares: Sum of squared round wins.
        hits: Rounds with a win.
        hits_stake: Rounds winning at least the stake.
        triggers: Rounds that triggered free spins.
        capped: Rounds ended by the max-win cap.
    """

    rounds: int
    cost: int
    total: int
    total_squares: int
    hits: int
    hits_stake: int
    triggers: int
    capped: int

    @property
    def rtp(self) -> float:
        """Observed return per unit of stake."""
        return self.total / (self.rounds * self.cost)

    @property
    def sigma(self) -> float:
        """Sample standard deviation of the round win, in stakes."""
        n = self.rounds
        mean = self.total / n
        var = (self.total_squares - n * mean * mean) / max(n - 1, 1)
        return math.sqrt(max(var, 0.0)) / self.cost

    @property
    def hit_frequency(self) -> float:
        """Observed P(round win > 0)."""
        return self.hits / self.rounds

    def interval(self, z: float = 2.576, sigma: float | None = None) -> tuple[float, float]:
        """Two-sided confidence interval for the RTP: ``rtp +/- z * sigma / sqrt(n)``.

        Args:
            z: Normal quantile (2.576 = 99%, 3.29 = 99.9%).
            sigma: Known per-round sigma in stakes (e.g. from the exact calculator); the sample
                sigma is used when omitted.
        """
        half = z * (self.sigma if sigma is None else sigma) / math.sqrt(self.rounds)
        return self.rtp - half, self.rtp + half


def simulate(
    game: SlotGame,
    rounds: int,
    *,
    seed: int | str | bytes | None = None,
    rng: Rng | None = None,
    lines: int | None = None,
) -> SimulationResult:
    """Play ``rounds`` complete rounds and total the results.

    Args:
        game: The compiled game.
        rounds: Number of rounds (each a base spin plus any free spins).
        seed: Seed for a reproducible run (uses :class:`SeededRng`).
        rng: Alternatively, any random source.
        lines: Lines played; defaults to all.

    Raises:
        ValueError: Unless exactly one of ``seed`` and ``rng`` is given.
    """
    if (seed is None) == (rng is None):
        raise ValueError("give exactly one of seed and rng")
    source: Rng = SeededRng(seed) if seed is not None else rng  # type: ignore[assignment]
    lines = len(game.paylines) if lines is None else lines
    cost = game.cost(lines)
    total = squares = hits = hits_stake = triggers = capped = 0
    for _ in range(rounds):
        result = run_round(game, source, lines)
        win = result.coins
        total += win
        squares += win * win
        hits += win > 0
        hits_stake += win >= cost
        triggers += result.steps[0].awarded > 0
        capped += result.capped
    return SimulationResult(
        rounds=rounds,
        cost=cost,
        total=total,
        total_squares=squares,
        hits=hits,
        hits_stake=hits_stake,
        triggers=triggers,
        capped=capped,
    )
