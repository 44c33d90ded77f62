"""Exact calculator: published par sheets, mutation test, brute-force and closed-form checks."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings

from games.slots.distribution import spin_distribution
from games.slots.exact import FreeChain, SlotReport, exact_report

from .slot_helpers import (
    brute_contributions,
    brute_round,
    brute_spin,
    catalog_dict,
    game_of,
    small_games,
)

# Wizard of Odds, "Wizard's Fruit Slot" (P1 in the requirements): 8,000 combinations.
FRUIT_PAR = {
    "rtp": Fraction(193, 200),
    "hit_frequency": Fraction(2123, 8000),
    "returns": {
        "base Globe x3": Fraction("0.0625"),
        "base Bar x3": Fraction("0.0125"),
        "base Plum x3": Fraction("0.05625"),
        "base Bell x3": Fraction("0.12"),
        "base Orange x3": Fraction("0.12"),
        "base Cherry x3": Fraction("0.0375"),
        "base Cherry x2": Fraction("0.10625"),
        "base Cherry x1": Fraction("0.45"),
    },
    "sigma": 6.3551,
    "vi90": 10.45,
}


def assert_fruit_par_sheet(report: SlotReport) -> None:
    """Every published Fruit Slot figure, exactly where the page is exact."""
    assert report.cycle == 8000
    assert report.rtp == FRUIT_PAR["rtp"]
    assert report.hit_frequency == FRUIT_PAR["hit_frequency"]
    assert report.hit_frequency_stake == FRUIT_PAR["hit_frequency"]  # every pay is >= the stake
    assert report.contributions == FRUIT_PAR["returns"]
    assert round(report.sigma, 4) == FRUIT_PAR["sigma"]
    assert round(report.volatility_index(1.645), 2) == FRUIT_PAR["vi90"]


def test_fruit_slot_reproduces_wizard_of_odds_exactly() -> None:
    """Fruit Slot: RTP 193/200, hit frequency 2123/8000, each pay's return, sigma 6.3551 (P1)."""
    report = exact_report(game_of(catalog_dict("fruit_slot")))
    assert_fruit_par_sheet(report)
    assert report.rtp_is_exact and report.feature_rtp == 0


@pytest.mark.parametrize(("first", "second"), [("Bell", "Orange"), ("Plum", "Bar"), ("Globe", "Cherry")])
def test_one_transposed_pay_fails_the_par_sheet(first: str, second: str) -> None:
    """Swapping the three-of-a-kind pays of two symbols makes the exact par-sheet test fail."""
    data = catalog_dict("fruit_slot")
    table = data["paytable"]
    table[first]["3"], table[second]["3"] = table[second]["3"], table[first]["3"]
    with pytest.raises(AssertionError):
        assert_fruit_par_sheet(exact_report(game_of(data)))


def test_atkins_diet_matches_published_return() -> None:
    """Atkins Diet (Wizard of Odds design, 20 lines, 3x free spins) returns 0.97045769... (spec)."""
    started = time.perf_counter()
    report = exact_report(game_of(catalog_dict("atkins_diet")))
    elapsed = time.perf_counter() - started
    assert f"{float(report.rtp):.10f}".startswith("0.97045769")
    assert report.cycle == 32**5
    assert report.rtp == report.base_rtp + report.feature_rtp
    assert sum(report.contributions.values()) == report.rtp
    assert elapsed < 15, "operator preview must take seconds"


def test_line_rtp_does_not_depend_on_lines_played() -> None:
    """With uniform strips the RTP is the same for 1, 7 or 20 lines; hit frequency is not."""
    game = game_of(catalog_dict("atkins_diet"))
    reports = [exact_report(game, lines) for lines in (1, 7, 20)]
    assert len({r.rtp for r in reports}) == 1
    assert len({r.base_hit_frequency for r in reports}) == 3


@pytest.mark.parametrize("name", ["fruit_slot", "demo_orchard", "atkins_diet"])
def test_catalog_declared_figures_match_exact_calculation(name: str) -> None:
    """Declared RTP / hit frequency in each shipped file equal the calculator's fractions (OUT-2)."""
    data = catalog_dict(name)
    for profile, declared in data.get("declared", {}).items():
        report = exact_report(game_of(data, profile))
        assert report.rtp == Fraction(declared["rtp"])
        if "hit_frequency" in declared:
            assert report.hit_frequency == Fraction(declared["hit_frequency"])
        if declared.get("cap_loss_bound"):
            assert report.cap_loss_bound == Fraction(declared["cap_loss_bound"])


def test_demo_profiles_differ_only_in_reels() -> None:
    """The demo's two certified profiles share every rule and differ in RTP (AUD-3)."""
    data = catalog_dict("demo_orchard")
    r96, r94 = (exact_report(game_of(data, p)) for p in ("96", "94"))
    assert r96.math_hash == r94.math_hash
    assert Fraction("0.955") < r96.rtp < Fraction("0.97")
    assert Fraction("0.935") < r94.rtp < r96.rtp
    assert r96.trigger_probability == r94.trigger_probability


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_games())
def test_distribution_equals_brute_force(data: dict[str, object]) -> None:
    """The reel-by-reel DP gives exactly the distribution of walking every window."""
    game = game_of(data)
    lines = len(game.paylines)
    dist = spin_distribution(game, game.base, lines)
    merged: dict[tuple[int, int], int] = {}
    for (coins, count), weight in dist.weights.items():
        key = (coins, game.awards[count] if game.has_free_spins else 0)
        merged[key] = merged.get(key, 0) + weight
    assert dist.cycle == game.base.cycle
    assert merged == brute_spin(game, game.base, lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_games())
def test_contributions_equal_brute_force(data: dict[str, object]) -> None:
    """Each pay's contribution equals the brute-force attribution of the live evaluator."""
    game = game_of(data)
    lines = len(game.paylines)
    cost = game.cost(lines)
    expected = {
        f"base {k} x{n}": v / cost for (k, n), v in brute_contributions(game, game.base, lines).items()
    }
    assert exact_report(game).contributions == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_games(free_spins=True))
def test_round_figures_equal_free_spin_tree(data: dict[str, object]) -> None:
    """With capped retriggers, RTP, variance and both hit frequencies equal the expanded tree."""
    game = game_of(data)
    lines = len(game.paylines)
    cost = game.cost(lines)
    tree = brute_round(game, lines)
    report = exact_report(game)
    mean = sum(t * p for t, p in tree.items())
    assert report.rtp == mean / cost
    assert report.variance == (sum(t * t * p for t, p in tree.items()) - mean**2) / cost**2
    assert report.hit_frequency == sum(p for t, p in tree.items() if t > 0)
    assert report.hit_frequency_stake == sum(p for t, p in tree.items() if t >= cost)
    assert sum(report.contributions.values()) == report.rtp


def test_max_win_cap_is_exact_without_features() -> None:
    """A binding cap on a feature-less game is applied exactly: E[min(win, cap)]."""
    data = catalog_dict("fruit_slot")
    data["max_win"] = {"multiple_of_total_bet": 50}
    report = exact_report(game_of(data))
    # Globe pays 500 and Bar 100 (1 combination each), both capped to 50 of 8000.
    assert report.rtp == Fraction(7720 - 450 - 50, 8000)
    assert report.rtp_is_exact


def test_cap_bound_brackets_the_true_capped_rtp() -> None:
    """When the cap can bind inside free spins the true capped RTP lies within the bound."""
    data = {
        **catalog_dict("fruit_slot"),
        "symbols": [{"id": s} for s in ("Cherry", "Orange", "Bell", "Globe", "Plum", "Bar")]
        + [{"id": "Lemon", "kind": "scatter"}],
        "features": {"free_spins": {"trigger": "Lemon", "awards": {"2": 2}, "multiplier": 2, "max_spins": 4}},
        "max_win": {"multiple_of_total_bet": 60},
    }
    data.pop("declared")
    game = game_of(data)
    report = exact_report(game)
    tree = brute_round(game, 1)
    capped = sum(min(t, 60) * p for t, p in tree.items())
    assert not report.rtp_is_exact and report.cap_loss_bound is not None
    assert report.rtp - report.cap_loss_bound <= capped < report.rtp


def _single_reel_chain(award: int, triggers: int, stops: int, max_spins: int | None) -> dict[str, object]:
    strip = ["S"] * triggers + ["A"] * (stops - triggers)
    return {
        "id": "chain",
        "version": "1",
        "grid": {"reels": 1, "rows": 1},
        "symbols": [{"id": "A"}, {"id": "S", "kind": "scatter"}],
        "reel_sets": {"r": {"reels": [strip]}},
        "evaluation": {"lines": {"paylines": [[0]]}, "scatters": [{"symbol": "S", "pays": {"1": 1}}]},
        "paytable": {"A": {"1": 1}},
        "features": {"free_spins": {"trigger": "S", "awards": {"1": award}, "max_spins": max_spins}},
        "bets": {"coin_values": [1]},
        "rtp_profiles": {"p": {"reel_set": "r"}},
    }


def test_expected_free_spins_closed_form() -> None:
    """Spins per trigger equal a / (1 - a p) for award a and retrigger probability p (rule 4)."""
    report = exact_report(game_of(_single_reel_chain(award=2, triggers=1, stops=4, max_spins=None)))
    a, p = 2, Fraction(1, 4)
    assert report.expected_free_spins == a / (1 - a * p)
    assert report.trigger_probability == p
    # every spin pays exactly one coin, so the round pays 1 + p * a / (1 - a p)
    assert report.rtp == 1 + p * a / (1 - a * p)


def test_capped_chain_converges_to_the_closed_form() -> None:
    """The finite Markov solution approaches the branching-process formula as max_spins grows."""
    unbounded = exact_report(game_of(_single_reel_chain(2, 1, 5, None)))
    bounded = exact_report(game_of(_single_reel_chain(2, 1, 5, 80)))
    assert bounded.rtp < unbounded.rtp
    assert abs(float(unbounded.rtp - bounded.rtp)) < 1e-6
    assert abs(float(unbounded.variance - bounded.variance)) < 1e-3


def test_infinite_feature_is_rejected() -> None:
    """A retrigger rate of one spin or more per spin has no finite RTP and is refused."""
    with pytest.raises(ValueError):
        FreeChain({(1, 4): 1, (1, 0): 3}, 4, None)
    with pytest.raises(ValueError):
        exact_report(game_of(_single_reel_chain(award=4, triggers=1, stops=4, max_spins=None)))
