"""Window drawing and evaluation: stops, line/way wins, scatters, feature triggers.

All amounts here are in *coins* (line bets); the round code converts to money. The rules:

* Lines pay left to right from the first reel. For each payable entry (symbol or group) the run
  is the number of leading symbols that match it (the symbol itself, a group member, or a wild
  that substitutes for it). The line pays the highest ``pays[run] * multiplier`` over all entries,
  so a pure-wild run pays the wild's own entry when that is higher (W W W St St pays 5 x Steak,
  not 3 x W). Ties go to the longer run, then the earlier paytable entry.
* Both ways (``Lines.direction == "both"``): each line is also evaluated right to left (the same
  rule on the reversed symbols). If that direction's best combination covers every reel it is
  not paid again: it is the same combination as the left-to-right win.
* Ways: each entry pays ``pays[run] * ways`` where ``ways`` is the product over the first
  ``run`` reels of the matching cells (weighted by wild multipliers).
* Scatters count every visible instance; the pay is a multiple of the total stake.
"""

from __future__ import annotations

from bisect import bisect_right

from ..rng import Rng
from .model import ReelTable, SlotGame

__all__ = [
    "LineHit",
    "ScatterHit",
    "draw_stops",
    "evaluate_line",
    "evaluate_line_rtl",
    "line_hits",
    "scatter_hits",
    "trigger_count",
    "ways_hits",
    "window_cells",
    "window_coins",
]

# (line index, entry index, run length, multiplier, ways, coins, direction: 1 = from the left,
# -1 = from the right)
LineHit = tuple[int, int, int, int, int, int, int]
# (symbol code, count, multiple of stake)
ScatterHit = tuple[int, int, int]

_CACHE_LIMIT = 200_000  # per game; beyond it lines are evaluated without memoising


def draw_stops(table: ReelTable, rng: Rng) -> tuple[int, ...]:
    """Draw one spin's stops with a single unbiased draw over the whole cycle.

    The draw ``r`` in ``[0, cycle)`` is split into mixed-radix digits, one per reel (or per cell
    for the cell model); each digit is uniform and independent of the others. Weighted digits
    are mapped to a stop (or symbol) through the cumulative weights.

    Returns:
        Per reel the stop index (top row), or per cell the symbol index (cell model).
    """
    r = rng.randbelow(table.cycle)
    stops = []
    for radix, cumulative in zip(table.radix, table.cumulative, strict=True):
        r, digit = divmod(r, radix)
        stops.append(digit if cumulative is None else bisect_right(cumulative, digit))
    return tuple(stops)


def window_cells(game: SlotGame, table: ReelTable, stops: tuple[int, ...]) -> tuple[int, ...]:
    """Flattened window, reel-major: ``cells[reel * rows + row]`` is a symbol code."""
    if table.cell_model:
        rows = game.rows
        return tuple(table.columns[d // rows][s][0] for d, s in enumerate(stops))
    cells: tuple[int, ...] = ()
    for column, stop in zip(table.columns, stops, strict=True):
        cells += column[stop]
    return cells


def evaluate_line(game: SlotGame, symbols: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Pay of one line's symbols, memoised per symbol tuple.

    Returns:
        ``(coins, entry index or -1, run length, multiplier)``.
    """
    cached = game.line_cache.get(symbols)
    if cached is not None:
        return cached
    result = _evaluate_line(game, symbols)
    if len(game.line_cache) < _CACHE_LIMIT:
        game.line_cache[symbols] = result
    return result


def evaluate_line_rtl(game: SlotGame, symbols: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Right-to-left pay of one line's symbols (both-ways games): the left-to-right rule on the
    reversed symbols, with a combination across every reel paid only left to right."""
    result = evaluate_line(game, symbols[::-1])
    return _NO_WIN if result[2] == game.reels else result


_NO_WIN = (0, -1, 0, 1)


def _evaluate_line(game: SlotGame, symbols: tuple[int, ...]) -> tuple[int, int, int, int]:
    best = (0, -1, 0, 1)
    product = game.mult_mode == "product"
    for index in game.starts[symbols[0]]:
        entry = game.entries[index]
        run, mult = 0, 1
        for code in symbols:
            if not (entry.mask >> code) & 1:
                break
            run += 1
            m = entry.mults[code]
            if m != 1:
                mult = mult * m if product else max(mult, m)
        value = entry.pays[run] * mult
        if value > best[0] or (value and value == best[0] and run > best[2]):
            best = (value, index, run, mult)
    return best


def line_hits(game: SlotGame, cells: tuple[int, ...], lines: int) -> list[LineHit]:
    """Every paying line among the first ``lines`` paylines."""
    hits = []
    for i, getter in enumerate(game.line_symbols[:lines]):
        symbols = getter(cells)
        coins, entry, run, mult = evaluate_line(game, symbols)
        if coins:
            hits.append((i, entry, run, mult, 1, coins, 1))
        if game.both_ways:
            coins, entry, run, mult = evaluate_line_rtl(game, symbols)
            if coins:
                hits.append((i, entry, run, mult, 1, coins, -1))
    return hits


def ways_hits(game: SlotGame, cells: tuple[int, ...]) -> list[LineHit]:
    """Every paying entry of a ways game (line index is -1)."""
    rows = game.rows
    columns = [cells[r * rows : (r + 1) * rows] for r in range(game.reels)]
    candidates = sorted({e for code in columns[0] for e in game.starts[code]})
    hits = []
    for index in candidates:
        entry = game.entries[index]
        ways, run = 1, 0
        for column in columns:
            k = sum(entry.mults[c] for c in column if (entry.mask >> c) & 1)
            if not k:
                break
            ways *= k
            run += 1
        coins = entry.pays[run] * ways
        if coins:
            hits.append((-1, index, run, 1, ways, coins, 1))
    return hits


def scatter_hits(game: SlotGame, cells: tuple[int, ...]) -> list[ScatterHit]:
    """Every paying scatter: ``(symbol code, count, multiple of the stake)``."""
    hits = []
    for code, pays in game.scatter_pays:
        count = cells.count(code)
        if pays[count]:
            hits.append((code, count, pays[count]))
    return hits


def trigger_count(game: SlotGame, cells: tuple[int, ...]) -> int:
    """Number of free-spin trigger symbols in the window (0 if the game has none)."""
    return 0 if game.trigger is None else cells.count(game.trigger)


def window_coins(
    game: SlotGame, cells: tuple[int, ...], cost: int, lines: int, line_mult: int = 1, scatter_mult: int = 1
) -> int:
    """Total pay of a window in coins (line or way wins plus scatters at ``cost`` coins a stake),
    with the line and scatter parts multiplied as in free spins.

    This is the fast path used by the engine core; :func:`line_hits` and friends give the detail.
    """
    total = 0
    if game.ways_cost is None:
        cache = game.line_cache
        for getter in game.line_symbols[:lines]:
            symbols = getter(cells)
            hit = cache.get(symbols)
            total += (hit if hit is not None else evaluate_line(game, symbols))[0]
            if game.both_ways:
                total += evaluate_line_rtl(game, symbols)[0]
    else:
        total = sum(h[5] for h in ways_hits(game, cells))
    scatter = 0
    for code, pays in game.scatter_pays:
        scatter += pays[cells.count(code)]
    return total * line_mult + scatter * cost * scatter_mult
