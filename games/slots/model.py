"""A slot configuration compiled for one RTP profile: integer codes and lookup tables.

:func:`compile_game` is the bridge between the declarative file and both the evaluator and the
exact calculator. A partner picks a profile here, never per player (AUD-3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from math import prod
from operator import itemgetter

from .config import ConfigError, FreeSpins, ReelSet, SlotConfig, SymbolDef, math_hash

__all__ = ["Entry", "ReelTable", "SlotGame", "compile_game"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A payable combination: a symbol (or group) paid by exact left-aligned run length.

    Attributes:
        name: Paytable key (symbol or group id).
        mask: Bit ``c`` set when symbol code ``c`` matches (members plus substituting wilds).
        pays: ``pays[n]`` coins for a run of exactly ``n`` (index 0 unused).
        mults: Per symbol code, the multiplier a matching symbol applies (1 unless a
            substituting wild with a multiplier).
    """

    name: str
    mask: int
    pays: tuple[int, ...]
    mults: tuple[int, ...]

    def matches(self, code: int) -> bool:
        """True if the symbol code continues a run of this entry."""
        return (self.mask >> code) & 1 == 1


@dataclass(frozen=True, slots=True)
class ReelTable:
    """One reel set, ready to draw from.

    Attributes:
        name: Reel-set id from the config.
        cell_model: True for ``weighted_cell`` (one draw per cell), else one draw per reel.
        columns: Strip models: per reel, per stop, the window column (top to bottom). Cell
            model: per reel, the symbol code of each weighted entry, as 1-tuples.
        weights: Per draw digit (reel, or cell for the cell model): weights, or None if uniform.
        cumulative: Running totals of ``weights`` (None if uniform).
        radix: Per draw digit, the number of equally likely raw values (stops or total weight).
        cycle: Number of equally likely raw outcomes of one spin (product of ``radix``).
    """

    name: str
    cell_model: bool
    columns: tuple[tuple[tuple[int, ...], ...], ...]
    weights: tuple[tuple[int, ...] | None, ...]
    cumulative: tuple[tuple[int, ...] | None, ...]
    radix: tuple[int, ...]
    cycle: int


@dataclass(frozen=True, slots=True)
class SlotGame:
    """Everything the evaluator and the calculator need, with symbols as integer codes."""

    config: SlotConfig
    profile: str
    math_hash: str
    symbols: tuple[str, ...]
    reels: int
    rows: int
    entries: tuple[Entry, ...]
    starts: tuple[tuple[int, ...], ...]
    paylines: tuple[tuple[int, ...], ...]
    ways_cost: int | None
    mult_mode: str
    scatter_pays: tuple[tuple[int, tuple[int, ...]], ...]
    trigger: int | None
    awards: tuple[int, ...]
    reawards: tuple[int, ...]
    fs_multiplier: int
    fs_scatter_multiplier: int
    retrigger: bool
    max_spins: int | None
    max_win: int | None
    base: ReelTable
    free: ReelTable
    line_symbols: tuple[Callable[[tuple[int, ...]], tuple[int, ...]], ...] = field(compare=False, repr=False)
    line_cache: dict[tuple[int, ...], tuple[int, int, int, int]] = field(
        default_factory=dict, compare=False, repr=False
    )
    #: lines also pay right to left (``Lines.direction == "both"``)
    both_ways: bool = False

    @property
    def is_ways(self) -> bool:
        """True for a ways-to-win game."""
        return self.ways_cost is not None

    @property
    def has_free_spins(self) -> bool:
        """True if the game has a free-spin feature."""
        return self.trigger is not None

    def cost(self, lines: int | None = None) -> int:
        """Stake in coins: the number of played lines, or the ways cost."""
        if self.ways_cost is not None:
            return self.ways_cost
        return len(self.paylines) if lines is None else lines

    def code(self, symbol: str) -> int:
        """Integer code of a symbol id."""
        return self.symbols.index(symbol)


def compile_game(config: SlotConfig, profile: str) -> SlotGame:
    """Compile a validated configuration for one certified RTP profile.

    Args:
        config: A configuration returned by ``decode_config``.
        profile: A key of ``config.rtp_profiles``.

    Returns:
        The compiled game.

    Raises:
        ConfigError: If the profile does not exist.
    """
    if profile not in config.rtp_profiles:
        raise ConfigError([f"unknown RTP profile {profile!r}"])
    codes = {s.id: i for i, s in enumerate(config.symbols)}
    entries = _entries(config, codes)
    starts = tuple(tuple(i for i, e in enumerate(entries) if e.matches(c)) for c in range(len(codes)))
    chosen = config.rtp_profiles[profile]
    fs = config.features.free_spins
    lines = config.evaluation.lines
    ways = config.evaluation.ways
    cells = config.grid.reels * config.grid.rows
    return SlotGame(
        config=config,
        profile=profile,
        math_hash=math_hash(config),
        symbols=tuple(codes),
        reels=config.grid.reels,
        rows=config.grid.rows,
        entries=entries,
        starts=starts,
        paylines=lines.paylines if lines is not None else (),
        ways_cost=ways.cost if ways is not None else None,
        mult_mode=config.evaluation.wild_multipliers,
        scatter_pays=tuple((codes[s.symbol], _at_least(s.pays, cells)) for s in config.evaluation.scatters),
        trigger=codes[fs.trigger] if fs is not None else None,
        awards=_at_least(fs.awards, cells) if fs is not None else (0,) * (cells + 1),
        reawards=_reawards(fs, cells),
        fs_multiplier=fs.multiplier if fs is not None else 1,
        fs_scatter_multiplier=fs.multiplier if fs is not None and fs.multiply_scatters else 1,
        retrigger=fs.retrigger if fs is not None else False,
        max_spins=fs.max_spins if fs is not None else None,
        max_win=config.max_win.multiple_of_total_bet if config.max_win is not None else None,
        base=_reel_table(chosen.reel_set, config, codes),
        free=_reel_table(chosen.free_reel_set or chosen.reel_set, config, codes),
        line_symbols=tuple(_line_getter(line, config.grid.rows) for line in lines.paylines)
        if lines is not None
        else (),
        both_ways=lines is not None and lines.direction == "both",
    )


def _line_getter(line: tuple[int, ...], rows: int) -> Callable[[tuple[int, ...]], tuple[int, ...]]:
    """Function returning a payline's symbols from the flattened window (reel-major cells)."""
    indices = [reel * rows + row for reel, row in enumerate(line)]
    if len(indices) == 1:
        only = indices[0]
        return lambda cells: (cells[only],)
    return itemgetter(*indices)


def _reawards(fs: FreeSpins | None, cells: int) -> tuple[int, ...]:
    """Spins added by a retrigger per trigger count (all zero without retriggers)."""
    if fs is None or not fs.retrigger:
        return (0,) * (cells + 1)
    return _at_least(fs.awards if fs.retrigger_awards is None else fs.retrigger_awards, cells)


def _at_least(values: Mapping[int, int], limit: int) -> tuple[int, ...]:
    """Dense table: index n -> value of the largest key <= n (0 below the smallest key)."""
    table = [0] * (limit + 1)
    current = 0
    for n in range(limit + 1):
        current = values.get(n, current)
        table[n] = current
    return tuple(table)


def _substitutes(wild: SymbolDef, config: SlotConfig) -> set[str]:
    if wild.substitutes == "*":
        subs = {s.id for s in config.symbols if s.kind == "regular"}
    else:
        subs = set(wild.substitutes)
    return subs - set(wild.not_substitute_for) - {wild.id}


def _entries(config: SlotConfig, codes: dict[str, int]) -> tuple[Entry, ...]:
    wilds = [(codes[s.id], s.multiplier, _substitutes(s, config)) for s in config.symbols if s.kind == "wild"]
    entries = []
    for name, pays in config.paytable.items():
        if not any(pays.values()):
            continue
        members = set(config.groups.get(name, (name,)))
        mask = 0
        mults = [1] * len(codes)
        for m in members:
            mask |= 1 << codes[m]
        for code, multiplier, subs in wilds:
            if subs & members and not mask >> code & 1:
                mask |= 1 << code
                mults[code] = multiplier
        dense = tuple(pays.get(n, 0) for n in range(config.grid.reels + 1))
        entries.append(Entry(name=name, mask=mask, pays=dense, mults=tuple(mults)))
    return tuple(entries)


def _reel_table(name: str, config: SlotConfig, codes: dict[str, int]) -> ReelTable:
    reel_set: ReelSet = config.reel_sets[name]
    rows = config.grid.rows
    strips = [tuple(codes[s] for s in reel) for reel in reel_set.reels]
    weights = reel_set.weights
    if reel_set.model == "weighted_cell":
        assert weights is not None
        columns: tuple[tuple[tuple[int, ...], ...], ...] = tuple(
            tuple((c,) for c in strip) for strip in strips
        )
        per_cell = [weights[r] for r in range(len(strips)) for _ in range(rows)]
        return ReelTable(
            name=name,
            cell_model=True,
            columns=columns,
            weights=tuple(per_cell),
            cumulative=tuple(tuple(accumulate(w)) for w in per_cell),
            radix=tuple(sum(w) for w in per_cell),
            cycle=prod(sum(w) for w in per_cell),
        )
    columns = tuple(
        tuple(tuple(strip[(stop + k) % len(strip)] for k in range(rows)) for stop in range(len(strip)))
        for strip in strips
    )
    if reel_set.model == "strip" or weights is None:
        return ReelTable(
            name=name,
            cell_model=False,
            columns=columns,
            weights=(None,) * len(strips),
            cumulative=(None,) * len(strips),
            radix=tuple(len(s) for s in strips),
            cycle=prod(len(s) for s in strips),
        )
    return ReelTable(
        name=name,
        cell_model=False,
        columns=columns,
        weights=tuple(weights),
        cumulative=tuple(tuple(accumulate(w)) for w in weights),
        radix=tuple(sum(w) for w in weights),
        cycle=prod(sum(w) for w in weights),
    )
