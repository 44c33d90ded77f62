"""Builders and brute-force oracles for the slot tests."""

from __future__ import annotations

import copy
import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import msgspec
from hypothesis import strategies as st

from games.catalog import read_catalog
from games.slots.config import SlotConfig
from games.slots.evaluate import (
    line_hits,
    scatter_hits,
    trigger_count,
    ways_hits,
    window_cells,
    window_coins,
)
from games.slots.model import ReelTable, SlotGame, compile_game
from games.slots.validate import decode_config

Json = dict[str, Any]


def catalog_dict(name: str) -> Json:
    """A shipped game file as a mutable dict."""
    data: Json = json.loads(read_catalog(name))
    return data


def build(data: Json) -> SlotConfig:
    """Decode and validate a config dict (the math hash, if any, is dropped)."""
    data = copy.deepcopy(data)
    data.pop("math_hash", None)
    return decode_config(msgspec.json.encode(data))


def game_of(data: Json, profile: str | None = None) -> SlotGame:
    """Compile a config dict for its first (or the given) profile."""
    config = build(data)
    return compile_game(config, profile or next(iter(config.rtp_profiles)))


def tiny_config(**overrides: Any) -> Json:
    """A 3x1 single-line game with a wild and a scatter, for rule tests."""
    data: Json = {
        "id": "tiny",
        "version": "1",
        "grid": {"reels": 3, "rows": 1},
        "symbols": [
            {"id": "W", "kind": "wild"},
            {"id": "A"},
            {"id": "B"},
            {"id": "S", "kind": "scatter"},
        ],
        "reel_sets": {"base": {"reels": [["A", "B", "W", "S"]] * 3}},
        "evaluation": {
            "lines": {"paylines": [[0, 0, 0]]},
            "scatters": [{"symbol": "S", "pays": {"2": 1, "3": 10}}],
        },
        "paytable": {"W": {"3": 50}, "A": {"2": 2, "3": 20}, "B": {"3": 10}},
        "bets": {"coin_values": [1, 2, 5]},
        "rtp_profiles": {"p": {"reel_set": "base"}},
    }
    data.update(overrides)
    return data


def digit_choices(table: ReelTable) -> list[list[tuple[int, int]]]:
    """Per draw digit, every (stop or symbol index, weight) pair."""
    out = []
    for radix, weights in zip(table.radix, table.weights, strict=True):
        if weights is None:
            out.append([(i, 1) for i in range(radix)])
        else:
            out.append(list(enumerate(weights)))
    return out


def enumerate_windows(game: SlotGame, table: ReelTable) -> list[tuple[tuple[int, ...], int]]:
    """Every window of the cycle with its weight, by walking all stop combinations."""
    windows = []
    for combo in itertools.product(*digit_choices(table)):
        stops = tuple(i for i, _ in combo)
        weight = 1
        for _, w in combo:
            weight *= w
        windows.append((window_cells(game, table, stops), weight))
    return windows


def brute_spin(
    game: SlotGame, table: ReelTable, lines: int, *, free: bool = False
) -> dict[tuple[int, int], int]:
    """Weights of (coins, spins awarded) over the cycle, from the live evaluator.

    With ``free`` the free-spin multipliers and retrigger awards apply.
    """
    cost = game.cost(lines)
    mults = (game.fs_multiplier, game.fs_scatter_multiplier) if free else (1, 1)
    awards = game.reawards if free else game.awards
    dist: defaultdict[tuple[int, int], int] = defaultdict(int)
    for cells, weight in enumerate_windows(game, table):
        award = awards[trigger_count(game, cells)] if game.has_free_spins else 0
        dist[(window_coins(game, cells, cost, lines, *mults), award)] += weight
    return dict(dist)


def brute_contributions(game: SlotGame, table: ReelTable, lines: int) -> dict[tuple[str, int], Fraction]:
    """Expected coins per (entry, run) and (scatter, count), from the live evaluator."""
    cost = game.cost(lines)
    out: defaultdict[tuple[str, int], Fraction] = defaultdict(Fraction)
    for cells, weight in enumerate_windows(game, table):
        hits = ways_hits(game, cells) if game.is_ways else line_hits(game, cells, lines)
        for _, entry, run, _, _, coins, _ in hits:
            out[(game.entries[entry].name, run)] += Fraction(coins * weight, table.cycle)
        for code, n, pay in scatter_hits(game, cells):
            out[(game.symbols[code] + " (scatter)", n)] += Fraction(pay * cost * weight, table.cycle)
    return dict(out)


def brute_round(game: SlotGame, lines: int) -> dict[int, Fraction]:
    """Exact distribution of the uncapped round win (coins) by expanding the free-spin tree.

    Only for tiny games with ``max_spins`` set (the tree must be finite).
    """
    assert game.max_spins is not None or not game.has_free_spins
    base = brute_spin(game, game.base, lines)
    free = brute_spin(game, game.free, lines, free=True) if game.has_free_spins else {}
    cap = game.max_spins or 0
    memo: dict[tuple[int, int], dict[int, Fraction]] = {}

    def chain(remaining: int, awarded: int) -> dict[int, Fraction]:
        if remaining == 0:
            return {0: Fraction(1)}
        key = (remaining, awarded)
        if key not in memo:
            out: defaultdict[int, Fraction] = defaultdict(Fraction)
            for (x, k), w in free.items():
                add = min(k, cap - awarded)
                for t, q in chain(remaining - 1 + add, awarded + add).items():
                    out[x + t] += Fraction(w, game.free.cycle) * q
            memo[key] = dict(out)
        return memo[key]

    result: defaultdict[int, Fraction] = defaultdict(Fraction)
    for (b, a), w in base.items():
        a = min(a, cap)
        for t, q in chain(a, a).items():
            result[b + t] += Fraction(w, game.base.cycle) * q
    return dict(result)


@st.composite
def small_games(draw: Callable[..., Any], *, free_spins: bool = False) -> Json:
    """Random small games covering every reel model, lines/ways, groups, wild multipliers."""
    model = draw(st.sampled_from(["strip", "weighted_strip", "weighted_cell"]))
    ways = draw(st.booleans())
    reels = draw(st.integers(1, 3 if model == "weighted_cell" else 4))
    rows = draw(st.integers(1, 2 if model == "weighted_cell" else 3))
    symbols = ["W", "A", "B", "C", "S"]
    wild_mult = draw(st.integers(1, 3))
    reel_lists = []
    weights = []
    for _ in range(reels):
        if model == "weighted_cell":
            reel = draw(st.lists(st.sampled_from(symbols), min_size=1, max_size=3, unique=True))
        else:
            reel = draw(st.lists(st.sampled_from(symbols), min_size=rows, max_size=5))
        reel_lists.append(reel)
        weights.append([draw(st.integers(1, 4)) for _ in reel])
    reel_set: Json = {"model": model, "reels": reel_lists}
    if model != "strip":
        reel_set["weights"] = weights
    pays = st.dictionaries(st.integers(1, reels).map(str), st.integers(0, 30), max_size=reels)
    cells = reels * rows
    evaluation: Json = {
        "scatters": [
            {
                "symbol": "S",
                "pays": draw(st.dictionaries(st.integers(1, cells).map(str), st.integers(0, 5), max_size=3)),
            }
        ],
        "wild_multipliers": "product" if ways else draw(st.sampled_from(["product", "max"])),
    }
    if ways:
        evaluation["ways"] = {"cost": draw(st.integers(1, 10))}
    else:
        line = st.lists(st.integers(0, rows - 1), min_size=reels, max_size=reels)
        evaluation["lines"] = {
            "paylines": draw(st.lists(line, min_size=1, max_size=4)),
            "direction": draw(st.sampled_from(["ltr", "both"])),
        }
    data: Json = {
        "id": "random",
        "version": "1",
        "grid": {"reels": reels, "rows": rows},
        "symbols": [
            {
                "id": "W",
                "kind": "wild",
                "multiplier": wild_mult,
                "not_substitute_for": draw(st.sampled_from([[], ["C"]])),
            },
            {"id": "A"},
            {"id": "B"},
            {"id": "C"},
            {"id": "S", "kind": "scatter"},
        ],
        "groups": {"AB": ["A", "B"]},
        "reel_sets": {"base": reel_set, "free": reel_set},
        "evaluation": evaluation,
        "paytable": {k: draw(pays) for k in ("W", "A", "B", "C", "AB")},
        "bets": {"coin_values": [1]},
        "rtp_profiles": {"p": {"reel_set": "base", "free_reel_set": "free"}},
    }
    if free_spins:
        data["features"] = {
            "free_spins": {
                "trigger": "S",
                "awards": {str(draw(st.integers(1, min(cells, 2)))): draw(st.integers(1, 3))},
                "multiplier": draw(st.integers(1, 3)),
                "multiply_scatters": draw(st.booleans()),
                "retrigger": draw(st.booleans()),
                "retrigger_awards": draw(st.sampled_from([None, {"1": 1}, {str(min(cells, 2)): 2}])),
                "max_spins": draw(st.integers(1, 4)),
            }
        }
    return data
