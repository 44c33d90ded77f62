"""Exact expected pay of every paytable entry and scatter pay for one spin ("each pay's
contribution" on a par sheet).

Expectation is linear, so lines are handled one at a time from the symbol distribution at each
of their cells; ways games use a DP over reels that carries probability mass only. Values are in
coins per spin (before dividing by the stake).
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

from .distribution import LineMachine, LineState, reel_columns, row_symbols
from .model import ReelTable, SlotGame

__all__ = ["SCATTER_SUFFIX", "spin_contributions"]

Key = tuple[str, int]  # (entry name, or scatter symbol + SCATTER_SUFFIX, count)
SCATTER_SUFFIX = " (scatter)"


def spin_contributions(game: SlotGame, table: ReelTable, lines: int) -> dict[Key, Fraction]:
    """Expected coins per spin from each ``(entry, run)`` and each ``(scatter symbol, count)``.

    Args:
        game: The compiled game.
        table: Base or free reel set.
        lines: Lines played (ignored for ways games).
    """
    result: defaultdict[Key, Fraction] = defaultdict(Fraction)
    if game.is_ways:
        for key, value in _ways(game, table).items():
            result[key] += value
    else:
        machine = LineMachine(game, attribute=True)
        for line in game.paylines[:lines]:
            for key, value in _line(game, table, machine, line).items():
                result[key] += value
            if game.both_ways:
                for key, value in _line(game, table, machine, line, reverse=True).items():
                    result[key] += value
    for key, value in _scatters(game, table, lines).items():
        result[key] += value
    return dict(result)


def _line(
    game: SlotGame, table: ReelTable, machine: LineMachine, line: tuple[int, ...], *, reverse: bool = False
) -> dict[Key, Fraction]:
    """One line's contributions; ``reverse`` reads it from the last reel (the right-to-left
    pays of a both-ways game, where a run across every reel is not paid again)."""
    order = list(range(game.reels))[::-1] if reverse else list(range(game.reels))
    states: dict[LineState, int] = defaultdict(int)
    first = row_symbols(game, table, order[0], line[order[0]])
    cycle = sum(w for _, w in first)
    for symbol, weight in first:
        states[machine.start(symbol)] += weight
    for r in range(1, game.reels):
        dist = row_symbols(game, table, order[r], line[order[r]])
        total = sum(w for _, w in dist)
        cycle *= total
        nxt: dict[LineState, int] = defaultdict(int)
        for state, weight in states.items():
            if not state[1]:
                nxt[state] += weight * total
                continue
            for symbol, w in dist:
                nxt[machine.step(state, symbol, r)] += weight * w
        states = nxt
    out: defaultdict[Key, Fraction] = defaultdict(Fraction)
    for ((value, run, neg_index), _), weight in states.items():
        if value and not (reverse and run == game.reels):
            out[(game.entries[-neg_index].name, run)] += Fraction(value * weight, cycle)
    return dict(out)


def _ways(game: SlotGame, table: ReelTable) -> dict[Key, Fraction]:
    entries = game.entries
    columns = reel_columns(game, table)
    totals = [sum(w for _, w in reel) for reel in columns]
    out: defaultdict[Key, Fraction] = defaultdict(Fraction)
    # state: tuple of (entry, ways) still running -> weight of reels seen so far
    states: dict[tuple[tuple[int, int], ...], int] = {(): 1}
    for r, reel in enumerate(columns):
        rest = 1
        for t in totals[r + 1 :]:
            rest *= t
        nxt: dict[tuple[tuple[int, int], ...], int] = defaultdict(int)
        for live, weight in states.items():
            for column, w in reel:
                if r == 0:
                    live = tuple((i, 1) for i in sorted({i for c in column for i in game.starts[c]}))
                kept = []
                for index, ways in live:
                    k = sum(entries[index].mults[c] for c in column if (entries[index].mask >> c) & 1)
                    if k:
                        kept.append((index, ways * k))
                    elif entries[index].pays[r]:
                        pay = entries[index].pays[r] * ways
                        out[(entries[index].name, r)] += Fraction(pay * weight * w * rest, table.cycle)
                if r == game.reels - 1:
                    for index, ways in kept:
                        pay = entries[index].pays[r + 1] * ways
                        if pay:
                            out[(entries[index].name, r + 1)] += Fraction(pay * weight * w, table.cycle)
                    continue
                nxt[tuple(kept)] += weight * w
        states = nxt
    return dict(out)


def _scatters(game: SlotGame, table: ReelTable, lines: int) -> dict[Key, Fraction]:
    cost = game.cost(lines)
    columns = reel_columns(game, table)
    out: dict[Key, Fraction] = {}
    for code, pays in game.scatter_pays:
        counts: dict[int, int] = {0: 1}
        for reel in columns:
            nxt: dict[int, int] = defaultdict(int)
            for n, weight in counts.items():
                for column, w in reel:
                    nxt[n + column.count(code)] += weight * w
            counts = nxt
        for n, weight in counts.items():
            if pays[n]:
                key = (game.symbols[code] + SCATTER_SUFFIX, n)
                out[key] = out.get(key, Fraction(0)) + Fraction(pays[n] * cost * weight, table.cycle)
    return out
