"""Exact single-spin distributions by dynamic programming over the reels.

Instead of walking every window (32^5 for a 5-reel, 32-stop game) the calculator walks the reels
left to right, keeping only what the remaining reels can still change: for each payline still
"running" the candidate entries and their multipliers, the scatter counts seen so far, and the
distribution of coins already decided. Identical columns of a reel are merged first. The result
is the exact joint distribution of (spin pay in coins, trigger-symbol count) as integer weights
over the full cycle. This module is an implementation independent of :mod:`evaluate`; the test
suite checks the two against each other by brute force on small games.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import Any

from .model import ReelTable, SlotGame

__all__ = [
    "LineMachine",
    "SpinDistribution",
    "TrailMachine",
    "reel_columns",
    "row_symbols",
    "spin_distribution",
]

Running = tuple[tuple[int, int], ...]  # (entry index, multiplier or ways so far)
Best = tuple[int, int, int]  # (value, run, -entry index)
LineState = tuple[Best, Running]
Live = tuple[Any, ...]  # per-mode DP state of the lines or ways still running
StepFn = Callable[[Live, tuple[int, ...], int], tuple[int, Live]]


@dataclass(frozen=True, slots=True)
class SpinDistribution:
    """Exact joint distribution of one spin: ``weights[(coins, trigger_count)]`` over ``cycle``.

    ``trigger_count`` is clamped at the largest count that changes the award.
    """

    weights: dict[tuple[int, int], int]
    cycle: int


def reel_columns(game: SlotGame, table: ReelTable) -> list[list[tuple[tuple[int, ...], int]]]:
    """Per reel, each distinct window column with its total weight."""
    reels = []
    for r in range(game.reels):
        merged: Counter[tuple[int, ...]] = Counter()
        weights = table.weights[r * game.rows if table.cell_model else r]
        if table.cell_model:
            choices = [(col[0], w) for col, w in zip(table.columns[r], weights or (), strict=True)]
            for cells in product(choices, repeat=game.rows):
                weight = 1
                for _, w in cells:
                    weight *= w
                merged[tuple(c for c, _ in cells)] += weight
        else:
            for stop, column in enumerate(table.columns[r]):
                merged[column] += 1 if weights is None else weights[stop]
        reels.append(list(merged.items()))
    return reels


def row_symbols(game: SlotGame, table: ReelTable, reel: int, row: int) -> list[tuple[int, int]]:
    """Distribution of the symbol shown at ``(reel, row)``: ``(code, weight)`` pairs."""
    if table.cell_model:
        weights = table.weights[reel * game.rows] or ()
        return [(col[0], w) for col, w in zip(table.columns[reel], weights, strict=True)]
    counts: Counter[int] = Counter()
    stop_weights = table.weights[reel]
    for stop, column in enumerate(table.columns[reel]):
        counts[column[row]] += 1 if stop_weights is None else stop_weights[stop]
    return list(counts.items())


class LineMachine:
    """Incremental evaluation of one payline, one reel at a time (see :mod:`evaluate` rules).

    A state is ``(best, running)``: ``best = (value, run, -entry)`` decided so far and the
    candidates still matching. With ``attribute`` the winning entry is tracked; without it only
    the value is kept (``run`` and ``entry`` stay 0), which merges more states. A line is
    finished when ``running`` is empty.
    """

    def __init__(self, game: SlotGame, *, attribute: bool = False) -> None:
        self.game = game
        self.attribute = attribute
        self.reels = game.reels
        self.product = game.mult_mode == "product"
        wmax = max((m for e in game.entries for m in e.mults), default=1)
        self.memo: dict[tuple[LineState | None, int, int], LineState] = {}
        # bound[entry][run]: the most a candidate with this run can still pay per unit multiplier
        self.bound = [
            [
                max(
                    e.pays[n] * (wmax ** (n - run) if self.product else wmax)
                    for n in range(run, self.reels + 1)
                )
                for run in range(self.reels + 1)
            ]
            for e in game.entries
        ]

    def _better(self, best: Best, value: int, run: int, index: int) -> Best:
        if not self.attribute:
            return (value, 0, 0) if value > best[0] else best
        candidate = (value, run, -index)
        return candidate if value and candidate > best else best

    def _close(self, best: Best, running: Running, run: int) -> LineState:
        entries = self.game.entries
        if run == self.reels:
            for index, mult in running:
                best = self._better(best, entries[index].pays[run] * mult, run, index)
            return best, ()
        floor = best[0]
        kept = []
        for index, mult in running:
            cap = self.bound[index][run] * mult
            if cap > floor or (self.attribute and cap and cap == floor):
                kept.append((index, mult))
        return best, tuple(kept)

    def start(self, symbol: int) -> LineState:
        """State after the first reel shows ``symbol``."""
        key = (None, symbol, 0)
        hit = self.memo.get(key)
        if hit is None:
            mults = self.game.entries
            running = tuple((i, mults[i].mults[symbol]) for i in self.game.starts[symbol])
            hit = self.memo[key] = self._close((0, 0, 0), running, 1)
        return hit

    def step(self, state: LineState, symbol: int, run: int) -> LineState:
        """State after one more reel; ``run`` is the number of reels already read."""
        key = (state, symbol, run)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        best, running = state
        kept = []
        entries = self.game.entries
        for index, mult in running:
            entry = entries[index]
            if (entry.mask >> symbol) & 1:
                m = entry.mults[symbol]
                kept.append((index, mult * m if self.product else max(mult, m)))
            else:
                best = self._better(best, entry.pays[run] * mult, run, index)
        hit = self.memo[key] = self._close(best, tuple(kept), run + 1)
        return hit


Trail = tuple[tuple[int, int, int], ...]  # (entry index, trailing run, multiplier of the run)


class TrailMachine:
    """Right-to-left evaluation of one payline while reading its reels left to right.

    The right-to-left run of an entry is the run of trailing symbols that match it. A run that
    holds at reel ``r`` with length ``n`` either breaks (the entry restarts from zero) or ends at
    the last reel with length exactly ``n + reels - 1 - r``; so the state keeps, per matching
    entry, ``(entry, run, multiplier)``, or ``(entry, -1, 0)`` once the run cannot end on a
    paying length (it must still be remembered: it is not a fresh start). At the last reel
    :meth:`best` applies the rule of :func:`games.slots.evaluate.evaluate_line_rtl`: the best
    combination (ties to the longer run, then the earlier entry), not paid if it covers every reel.
    """

    def __init__(self, game: SlotGame) -> None:
        self.game = game
        self.product = game.mult_mode == "product"
        self.memo: dict[tuple[Trail, int, int], Trail] = {}
        self.values: dict[Trail, tuple[int, int, int]] = {}
        reels = game.reels
        #: fresh[r]: a run starting after reel r can still end on a paying length; when it
        #: cannot, dead entries and empty trails no longer matter
        self.fresh = [
            any(e.pays[reels - s] for e in game.entries for s in range(r + 1, reels)) for r in range(reels)
        ]

    def step(self, trail: Trail, symbol: int, r: int) -> Trail:
        """The trail after reel ``r`` shows ``symbol``."""
        key = (trail, symbol, r)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        before = {index: (run, mult) for index, run, mult in trail}
        entries = self.game.entries
        rest = self.game.reels - 1 - r
        out = []
        for index in self.game.starts[symbol]:
            run, mult = before.get(index, (0, 1))
            if run < 0 or not entries[index].pays[run + 1 + rest]:
                # still matching, but this run can no longer end on a paying length: keep it
                # (so that it does not restart) as dead until a symbol breaks it
                out.append((index, -1, 0))
                continue
            m = entries[index].mults[symbol]
            out.append((index, run + 1, mult * m if self.product else max(mult, m)))
        if not self.fresh[r]:
            out = [t for t in out if t[1] > 0]
        hit = self.memo[key] = tuple(out)
        return hit

    def best(self, trail: Trail) -> tuple[int, int, int]:
        """``(coins, run, entry)`` of the right-to-left win (coins 0 when none is paid)."""
        hit = self.values.get(trail)
        if hit is not None:
            return hit
        best = (0, 0, 0)
        entries = self.game.entries
        for index, run, mult in trail:
            if run < 0:
                continue
            candidate = (entries[index].pays[run] * mult, run, -index)
            if candidate[0] and candidate > best:
                best = candidate
        result = (0, 0, 0) if best[1] == self.game.reels else (best[0], best[1], -best[2])
        self.values[trail] = result
        return result


def _counted(game: SlotGame) -> tuple[list[int], list[int]]:
    """Symbols whose window count matters, and the count above which nothing changes."""
    clamps: dict[int, int] = {}
    for code, pays in game.scatter_pays:
        clamps[code] = max(clamps.get(code, 0), _last_change(pays))
    if game.trigger is not None:
        last = max(_last_change(game.awards), _last_change(game.reawards))
        clamps[game.trigger] = max(clamps.get(game.trigger, 0), last)
    return list(clamps), [clamps[c] for c in clamps]


def _last_change(table: tuple[int, ...]) -> int:
    return max((n for n in range(1, len(table)) if table[n] != table[n - 1]), default=0)


def spin_distribution(
    game: SlotGame, table: ReelTable, lines: int, line_mult: int = 1, scatter_mult: int = 1
) -> SpinDistribution:
    """Exact distribution of one spin's pay (coins) and trigger count over the whole cycle.

    Args:
        game: The compiled game.
        table: Base or free reel set.
        lines: Lines played (ignored for ways games).
        line_mult: Multiplier of line (way) wins, as in free spins.
        scatter_mult: Multiplier of scatter wins.
    """
    codes, clamps = _counted(game)
    columns = reel_columns(game, table)
    col_counts = [
        [tuple(min(col.count(c), k) for c, k in zip(codes, clamps, strict=True)) for col, _ in reel]
        for reel in columns
    ]
    if game.is_ways:
        step = _ways_step(game)
    else:
        step = _both_ways_step(game, lines) if game.both_ways else _lines_step(game, lines)
    zero = tuple(0 for _ in codes)
    states: dict[tuple[Live, tuple[int, ...]], dict[int, int]] = {((), zero): {0: 1}}
    added: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
    for r, reel in enumerate(columns):
        nxt: defaultdict[tuple[Live, tuple[int, ...]], dict[int, int]] = defaultdict(dict)
        for (live, counts), accs in states.items():
            for (column, weight), extra in zip(reel, col_counts[r], strict=True):
                paid, new_live = step(live, column, r)
                new_counts = added.get((counts, extra))
                if new_counts is None:
                    new_counts = tuple(min(a + b, k) for a, b, k in zip(counts, extra, clamps, strict=True))
                    added[(counts, extra)] = new_counts
                target = nxt[(new_live, new_counts)]
                for acc, c in accs.items():
                    key = acc + paid
                    target[key] = target.get(key, 0) + c * weight
        states = nxt
    return _finish(game, states, codes, lines, table.cycle, (line_mult, scatter_mult))


def _finish(
    game: SlotGame,
    states: dict[tuple[Live, tuple[int, ...]], dict[int, int]],
    codes: list[int],
    lines: int,
    cycle: int,
    mults: tuple[int, int],
) -> SpinDistribution:
    cost = game.cost(lines)
    position = {c: i for i, c in enumerate(codes)}
    weights: defaultdict[tuple[int, int], int] = defaultdict(int)
    for (_, counts), accs in states.items():
        scatter = sum(pays[counts[position[code]]] for code, pays in game.scatter_pays) * cost * mults[1]
        trig = counts[position[game.trigger]] if game.trigger is not None else 0
        for acc, c in accs.items():
            weights[(acc * mults[0] + scatter, trig)] += c
    return SpinDistribution(weights=dict(weights), cycle=cycle)


def _lines_step(game: SlotGame, lines: int) -> StepFn:
    machine = LineMachine(game)
    rows = game.paylines[:lines]

    def step(live: Live, column: tuple[int, ...], r: int) -> tuple[int, Live]:
        paid = 0
        out = []
        if r == 0:
            for i, line in enumerate(rows):
                state = machine.start(column[line[0]])
                if state[1]:
                    out.append((i, state))
                else:
                    paid += state[0][0]
            return paid, tuple(out)
        for i, state in live:
            new = machine.step(state, column[rows[i][r]], r)
            if new[1]:
                out.append((i, new))
            else:
                paid += new[0][0]
        return paid, tuple(out)

    return step


def _both_ways_step(game: SlotGame, lines: int) -> StepFn:
    """Lines paid both ways: the left-to-right machine finishes lines early as usual; every line
    also carries its right-to-left trail to the last reel, where it is paid."""
    machine = LineMachine(game)
    trails = TrailMachine(game)
    rows = game.paylines[:lines]
    last = game.reels - 1

    def step(live: Live, column: tuple[int, ...], r: int) -> tuple[int, Live]:
        paid = 0
        out = []
        items = ((i, None, ()) for i in range(len(rows))) if r == 0 else live
        for i, state, trail in items:
            symbol = column[rows[i][r]]
            if r == 0:
                state = machine.start(symbol)
            elif state is not None:
                state = machine.step(state, symbol, r)
            if state is not None and not state[1]:
                paid += state[0][0]
                state = None
            trail = trails.step(trail, symbol, r)
            if state is not None or trail or trails.fresh[r]:
                out.append((i, state, trail))
        if r == last:
            return paid + sum(trails.best(trail)[0] for _, _, trail in out), ()
        return paid, tuple(out)

    return step


def _ways_step(game: SlotGame) -> StepFn:
    entries = game.entries
    reels = game.reels
    useful = [[any(e.pays[n] for n in range(run, reels + 1)) for run in range(reels + 1)] for e in entries]

    def step(live: Live, column: tuple[int, ...], r: int) -> tuple[int, Live]:
        if r == 0:
            candidates = sorted({i for c in column for i in game.starts[c]})
            live = tuple((i, 1) for i in candidates if useful[i][1])
        paid = 0
        out = []
        for index, ways in live:
            entry = entries[index]
            k = sum(entry.mults[c] for c in column if (entry.mask >> c) & 1)
            if k:
                out.append((index, ways * k))
            else:
                paid += entry.pays[r] * ways
        if r == reels - 1:
            paid += sum(entries[i].pays[reels] * w for i, w in out)
            return paid, ()
        return paid, tuple((i, w) for i, w in out if useful[i][r + 1])

    return step
