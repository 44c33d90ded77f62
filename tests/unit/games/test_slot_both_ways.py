"""Both-ways paylines: the rule, the exact calculator against brute force and a mirror
identity, simulation against exact, and the math hash of left-to-right games."""

from __future__ import annotations

import copy
from fractions import Fraction

from games.rng import SeededRng
from games.round import Bet
from games.slots import compile_game, decode_config, play_round
from games.slots.config import math_hash
from games.slots.distribution import spin_distribution
from games.slots.evaluate import line_hits
from games.slots.exact import exact_report
from games.slots.simulate import simulate

from .slot_helpers import brute_contributions, brute_spin, build, catalog_dict, game_of, tiny_config

Z = 3.29


def both(data: dict[str, object]) -> dict[str, object]:
    out = copy.deepcopy(data)
    out["evaluation"]["lines"]["direction"] = "both"  # type: ignore[index]
    return out


def hits(symbols: str) -> list[tuple[str, int, int, int]]:
    game = game_of(both(tiny_config()))
    cells = tuple(game.code(s) for s in symbols)
    return [(game.entries[e].name, run, coins, d) for _, e, run, _, _, coins, d in line_hits(game, cells, 1)]


def test_a_line_pays_each_direction_and_a_full_line_once():
    assert hits("AAB") == [("A", 2, 2, 1)]
    assert hits("BAA") == [("A", 2, 2, -1)]  # right to left only
    assert hits("AAA") == [("A", 3, 20, 1)]  # across every reel: paid once
    assert hits("WWA") == [("A", 3, 20, 1)]  # the right-to-left best is the same full A run
    assert hits("BWW") == [("B", 3, 10, 1)]
    assert hits("ABA") == []


def test_exact_distribution_and_contributions_equal_brute_force():
    game = game_of(both(tiny_config()))
    dist = spin_distribution(game, game.base, 1)
    assert dist.weights == {(c, 0): w for (c, _), w in brute_spin(game, game.base, 1).items()}
    expected = {f"base {k} x{n}": v for (k, n), v in brute_contributions(game, game.base, 1).items()}
    assert exact_report(game).contributions == expected


def test_mirror_reels_pay_twice_the_line_return_minus_full_lines():
    """Identical reels and one straight line: right to left pays what left to right pays,
    except full lines (paid once); scatters are paid once either way."""
    ltr, two = (exact_report(game_of(d)) for d in (tiny_config(), both(tiny_config())))
    scatter = sum((v for k, v in ltr.contributions.items() if "(scatter)" in k), Fraction(0))
    full = sum(
        (v for k, v in ltr.contributions.items() if k.endswith(" x3") and "(scatter)" not in k), Fraction(0)
    )
    assert two.rtp == 2 * (ltr.rtp - scatter) - full + scatter
    assert two.rtp > ltr.rtp


def test_simulated_both_ways_rtp_within_the_exact_band():
    data = both(catalog_dict("fruit_slot"))
    game = game_of(data)
    report = exact_report(game)
    result = simulate(game, 100_000, seed="both-ways")
    low, high = result.interval(Z, sigma=report.sigma)
    assert low <= float(report.rtp) <= high


def test_both_ways_changes_the_math_hash_and_left_to_right_hashes_stay():
    data = catalog_dict("fruit_slot")
    plain = build(data)
    explicit = copy.deepcopy(data)
    explicit["evaluation"]["lines"]["direction"] = "ltr"  # type: ignore[index]
    assert math_hash(build(explicit)) == math_hash(plain)
    assert math_hash(build(both(data))) != math_hash(plain)


def test_right_to_left_wins_are_marked_in_the_outcome():
    data = both(tiny_config())
    data["reel_sets"] = {"base": {"reels": [["B"], ["A"], ["A"]]}}  # type: ignore[index]
    game = compile_game(decode_config(__import__("json").dumps(data).encode()), "p")
    outcome = play_round(game, SeededRng(1), Bet(coin=2))
    (win,) = outcome.steps[0].line_wins  # type: ignore[union-attr]
    assert (win.entry, win.count, win.direction, win.amount) == ("A", 2, "rtl", 4)
    assert outcome.win == 4
