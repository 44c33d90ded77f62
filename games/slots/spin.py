"""Slot rounds as pure functions: ``play_round(game, rng, bet) -> RoundOutcome``.

The whole round (base spin plus every free spin, retriggers included) is drawn before the result
is returned (OUT-1); the stored outcome is then revealed step by step with
:func:`games.round.reveal` and is never re-drawn (INT-1). The outcome depends only on the RNG
stream: the bet size and line count change the amounts, never the stops (RNG-6).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..rng import Rng
from ..round import Bet, LineWin, RoundOutcome, ScatterWin, SpinStep, make_outcome
from .evaluate import (
    draw_stops,
    line_hits,
    scatter_hits,
    trigger_count,
    ways_hits,
    window_cells,
    window_coins,
)
from .model import ReelTable, SlotGame

__all__ = ["InvalidBet", "RawRound", "RoundTooLong", "check_bet", "play_round", "run_round"]

# A round longer than this is treated as a malfunction (void and refund, INT-3). With a valid
# game (expected retriggers per spin below one) the chance of reaching it is negligible.
MAX_STEPS = 100_000


class InvalidBet(ValueError):
    """The bet uses a coin value or line count the game does not offer."""


class RoundTooLong(RuntimeError):
    """The free-spin chain exceeded :data:`MAX_STEPS`; the round must be voided and refunded."""


@dataclass(frozen=True, slots=True)
class RawStep:
    """One drawn spin, in coins: ``coins`` already includes the free-spin multiplier."""

    free: bool
    stops: tuple[int, ...]
    cells: tuple[int, ...]
    coins: int
    awarded: int


@dataclass(frozen=True, slots=True)
class RawRound:
    """A drawn round in coins; ``coins`` is capped at the max win."""

    coins: int
    capped: bool
    steps: tuple[RawStep, ...]


def check_bet(game: SlotGame, bet: Bet) -> int:
    """Validate a bet and return the number of lines played (the ways cost for ways games).

    Raises:
        InvalidBet: If the coin value or line count is not offered.
    """
    if bet.coin not in game.config.bets.coin_values:
        raise InvalidBet(f"coin value {bet.coin} is not offered")
    if game.is_ways:
        if bet.lines is not None:
            raise InvalidBet("ways games take no line count")
        return game.cost()
    total = len(game.paylines)
    lines = total if bet.lines is None else bet.lines
    lines_cfg = game.config.evaluation.lines
    selectable = lines_cfg is not None and lines_cfg.selectable
    if not (lines == total or (selectable and 1 <= lines <= total)):
        raise InvalidBet(f"{lines} lines cannot be played")
    return lines


def _draw(
    game: SlotGame, table: ReelTable, rng: Rng, cost: int, lines: int, free: bool
) -> tuple[RawStep, int]:
    stops = draw_stops(table, rng)
    cells = window_cells(game, table, stops)
    if free:
        coins = window_coins(game, cells, cost, lines, game.fs_multiplier, game.fs_scatter_multiplier)
    else:
        coins = window_coins(game, cells, cost, lines)
    return RawStep(free, stops, cells, coins, 0), trigger_count(game, cells)


def run_round(game: SlotGame, rng: Rng, lines: int) -> RawRound:
    """Draw a complete round in coins (the engine core shared by play and simulation).

    Args:
        game: The compiled game.
        rng: The injected random source.
        lines: Lines played (ignored by ways games).

    Returns:
        The round: total coins (capped), whether the cap ended it, and every step.

    Raises:
        RoundTooLong: If the free-spin chain exceeds :data:`MAX_STEPS` spins.
    """
    cost = game.cost(lines)
    cap = game.max_win * cost if game.max_win is not None else None
    base, count = _draw(game, game.base, rng, cost, lines, False)
    awarded = remaining = _limit(game, game.awards[count] if game.has_free_spins else 0, 0)
    steps = [RawStep(False, base.stops, base.cells, base.coins, awarded)]
    total = base.coins
    while remaining and (cap is None or total < cap):
        if len(steps) > MAX_STEPS:
            raise RoundTooLong(f"more than {MAX_STEPS} free spins in one round")
        spin, count = _draw(game, game.free, rng, cost, lines, True)
        add = _limit(game, game.reawards[count], awarded)
        awarded += add
        remaining += add - 1
        steps.append(RawStep(True, spin.stops, spin.cells, spin.coins, add))
        total += spin.coins
    capped = cap is not None and total >= cap
    return RawRound(coins=min(total, cap) if cap is not None else total, capped=capped, steps=tuple(steps))


def _limit(game: SlotGame, award: int, awarded: int) -> int:
    if game.max_spins is None:
        return award
    return max(0, min(award, game.max_spins - awarded))


def play_round(game: SlotGame, rng: Rng, bet: Bet) -> RoundOutcome:
    """Play one complete slot round.

    Args:
        game: The compiled game (one certified RTP profile).
        rng: The injected random source (``SystemRng`` in production).
        bet: Coin value and line count.

    Returns:
        The complete outcome: stake, win, net, LDW flag, each step with stops, window, line and
        scatter wins. Persist it before showing anything (RNG-7).

    Raises:
        InvalidBet: If the bet is not offered.
        RoundTooLong: If the round must be voided (INT-3).
    """
    lines = check_bet(game, bet)
    cost = game.cost(lines)
    raw = run_round(game, rng, lines)
    steps = tuple(_spin_step(game, step, bet.coin, cost, lines) for step in raw.steps)
    return make_outcome(
        game_id=game.config.id,
        game_version=game.config.version,
        math_hash=game.math_hash,
        profile=game.profile,
        kind="slot",
        bet=Bet(coin=bet.coin, lines=None if game.is_ways else lines),
        stake=cost * bet.coin,
        win=raw.coins * bet.coin,
        capped=raw.capped,
        steps=steps,
    )


def _spin_step(game: SlotGame, step: RawStep, coin: int, cost: int, lines: int) -> SpinStep:
    table = game.free if step.free else game.base
    mult = game.fs_multiplier if step.free else 1
    scatter_mult = game.fs_scatter_multiplier if step.free else 1
    hits = ways_hits(game, step.cells) if game.is_ways else line_hits(game, step.cells, lines)
    rows = game.rows
    return SpinStep(
        mode="free" if step.free else "base",
        reel_set=table.name,
        stops=step.stops,
        window=tuple(
            tuple(game.symbols[c] for c in step.cells[r * rows : (r + 1) * rows]) for r in range(game.reels)
        ),
        line_wins=tuple(
            LineWin(
                line=line + 1,
                entry=game.entries[entry].name,
                count=run,
                multiplier=wild_mult,
                ways=ways,
                pay=coins,
                amount=coins * coin * mult,
                direction="ltr" if direction > 0 else "rtl",
            )
            for line, entry, run, wild_mult, ways, coins, direction in hits
        ),
        scatter_wins=tuple(
            ScatterWin(symbol=game.symbols[code], count=n, pay=pay, amount=pay * cost * coin * scatter_mult)
            for code, n, pay in scatter_hits(game, step.cells)
        ),
        multiplier=mult,
        spins_awarded=step.awarded,
        win=step.coins * coin,
    )
