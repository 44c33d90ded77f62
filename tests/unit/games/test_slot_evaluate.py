"""Slot rules and rounds: line evaluation, scatters, free spins, cap, reveal, RNG-5/RNG-6."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from games.rng import SeededRng
from games.round import Bet, RoundOutcome, SpinStep, reveal
from games.slots.evaluate import draw_stops, evaluate_line, scatter_hits, window_cells
from games.slots.model import SlotGame
from games.slots.spin import InvalidBet, play_round

from .slot_helpers import catalog_dict, game_of, tiny_config


class FixedRng:
    """Returns the given raw values in order (for exhaustive reachability checks)."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)

    def randbelow(self, n: int) -> int:
        value = self.values.pop(0)
        assert 0 <= value < n
        return value

    def getrandbits(self, k: int) -> int:  # pragma: no cover - not used by the slot engine
        raise NotImplementedError


def _codes(game: SlotGame, *symbols: str) -> tuple[int, ...]:
    return tuple(game.code(s) for s in symbols)


@pytest.fixture(scope="module")
def atkins() -> SlotGame:
    return game_of(catalog_dict("atkins_diet"))


def _line(game: SlotGame, *symbols: str) -> tuple[int, str, int]:
    coins, entry, run, _ = evaluate_line(game, _codes(game, *symbols))
    return coins, game.entries[entry].name if entry >= 0 else "", run


def test_pure_wild_run_loses_to_longer_substituted_run(atkins: SlotGame) -> None:
    """W W W Steak Steak pays five steaks (1000), not three Atkins (50) (engine rule 1)."""
    assert _line(atkins, "Atkins", "Atkins", "Atkins", "Steak", "Steak") == (1000, "Steak", 5)


def test_pure_wild_pays_its_own_entry_when_higher(atkins: SlotGame) -> None:
    """W W W Bacon Ham pays three Atkins (50) rather than four bacons (25)."""
    assert _line(atkins, "Atkins", "Atkins", "Atkins", "Bacon", "Ham") == (50, "Atkins", 3)
    assert _line(atkins, *["Atkins"] * 5) == (5000, "Atkins", 5)


def test_wins_are_left_aligned(atkins: SlotGame) -> None:
    """A run must start on reel 1: Ham Steak Steak Steak Steak pays nothing."""
    assert _line(atkins, "Ham", "Steak", "Steak", "Steak", "Steak")[0] == 0
    assert _line(atkins, "Steak", "Steak", "Ham", "Steak", "Steak") == (3, "Steak", 2)


def test_wild_never_substitutes_for_the_scatter(atkins: SlotGame) -> None:
    """Scale Atkins Atkins pays no line: the wild does not complete scatters."""
    assert _line(atkins, "Scale", "Atkins", "Atkins", "Ham", "Ham")[0] == 0


def test_scatter_counts_anywhere_including_several_per_reel() -> None:
    """Every visible scatter counts, also two on one reel; the pay is x total stake."""
    data = tiny_config(grid={"reels": 3, "rows": 2})
    data["evaluation"]["lines"]["paylines"] = [[0, 0, 0], [1, 1, 1]]
    data["reel_sets"]["base"]["reels"] = [["S", "S", "A"], ["B", "A", "W"], ["S", "A", "B"]]
    game = game_of(data)
    cells = window_cells(game, game.base, (0, 0, 0))
    assert scatter_hits(game, cells) == [(game.code("S"), 3, 10)]


def test_wild_multiplier_product_and_max() -> None:
    """Substituting wilds multiply line wins: x2 each (product) or x2 once (max)."""
    data = tiny_config()
    data["symbols"][0]["multiplier"] = 2
    product = game_of(data)
    assert evaluate_line(product, _codes(product, "A", "W", "W"))[0] == 20 * 4
    data["evaluation"]["wild_multipliers"] = "max"
    maximum = game_of(data)
    assert evaluate_line(maximum, _codes(maximum, "A", "W", "W"))[0] == 20 * 2
    # a pure-wild line is not multiplied by its own wilds
    assert evaluate_line(maximum, _codes(maximum, "W", "W", "W"))[0] == 50


def test_group_entries_pay_mixed_symbols() -> None:
    """A group entry ("any A or B") pays mixed runs; the higher single entry still wins."""
    data = tiny_config(groups={"AnyAB": ["A", "B"]})
    data["paytable"]["AnyAB"] = {"3": 5}
    game = game_of(data)
    assert _line(game, "A", "B", "A") == (5, "AnyAB", 3)
    assert _line(game, "A", "A", "A") == (20, "A", 3)


def test_ways_pay_product_of_matching_cells() -> None:
    """Ways: two A on reel 1 and one on reel 2 make 2 ways of a 2-run."""
    data = tiny_config(grid={"reels": 3, "rows": 2})
    data["evaluation"] = {"ways": {"cost": 10}}
    data["reel_sets"]["base"]["reels"] = [["A", "A", "B"], ["A", "B", "B"], ["B", "B", "S"]]
    game = game_of(data)
    outcome = play_round(game, FixedRng(0), Bet(coin=1))
    wins = {(w.entry, w.count, w.ways) for w in outcome.steps[0].line_wins}  # type: ignore[union-attr]
    assert ("A", 2, 2) in wins
    assert outcome.stake == 10


def test_every_stop_is_reachable() -> None:
    """Each raw value maps to a distinct stop combination covering the whole cycle (RNG-5)."""
    game = game_of(tiny_config())
    seen = {draw_stops(game.base, FixedRng(r)) for r in range(game.base.cycle)}
    assert len(seen) == game.base.cycle == 4**3


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), coin=st.sampled_from([1, 2, 5, 10, 25]), lines=st.integers(1, 20))
def test_stops_do_not_depend_on_the_bet(seed: int, coin: int, lines: int) -> None:
    """The same RNG stream gives the same stops whatever the coin and line count (RNG-6)."""
    game = game_of(catalog_dict("atkins_diet"))
    reference = play_round(game, SeededRng(seed), Bet(coin=1, lines=20))
    other = play_round(game, SeededRng(seed), Bet(coin=coin, lines=lines))
    assert [s.stops for s in other.steps] == [s.stops for s in reference.steps]  # type: ignore[union-attr]


def _spins(outcome: RoundOutcome) -> list[SpinStep]:
    steps = [s for s in outcome.steps if isinstance(s, SpinStep)]
    assert len(steps) == len(outcome.steps)
    return steps


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_round_amounts_are_consistent(seed: int) -> None:
    """win = sum of steps, step win = its line and scatter wins, net and LDW flags (OUT-6)."""
    game = game_of(catalog_dict("demo_orchard"), "96")
    outcome = play_round(game, SeededRng(seed), Bet(coin=5, lines=20))
    steps = _spins(outcome)
    assert outcome.stake == 100
    for step in steps:
        assert step.win == sum(w.amount for w in step.line_wins) + sum(w.amount for w in step.scatter_wins)
    assert outcome.win == min(sum(s.win for s in steps), 5000 * outcome.stake)
    assert outcome.net == outcome.win - outcome.stake
    assert outcome.is_ldw == (0 < outcome.win < outcome.stake)
    assert outcome.celebrate == (outcome.win > outcome.stake)
    awarded = sum(s.spins_awarded for s in steps)
    assert len(steps) - 1 == awarded or outcome.capped


def _find_seed(game: SlotGame, predicate: object, limit: int = 20_000) -> RoundOutcome:
    for seed in range(limit):
        outcome = play_round(game, SeededRng(seed), Bet(coin=1, lines=20))
        if predicate(outcome):  # type: ignore[operator]
            return outcome
    raise AssertionError("no seed found")


def test_free_spin_round_is_drawn_whole_and_revealed_from_storage() -> None:
    """A triggered round holds all free spins; reveal replays them without any RNG (INT-1)."""
    game = game_of(catalog_dict("atkins_diet"))
    outcome = _find_seed(game, lambda o: len(o.steps) > 1)
    stored = msgspec.json.encode(outcome)
    restored = msgspec.json.decode(stored, type=RoundOutcome)
    assert restored == outcome
    revealed, shown = 0, []
    while revealed < len(restored.steps):
        step = reveal(restored, revealed)
        shown.append(step.step)
        revealed = step.revealed
    assert shown == list(outcome.steps)
    assert step.complete and step.running_win == outcome.win
    steps = _spins(outcome)
    assert steps[0].mode == "base" and steps[0].spins_awarded == 10
    assert all(s.mode == "free" and s.multiplier == 3 for s in steps[1:])
    with pytest.raises(ValueError):
        reveal(restored, revealed)


def test_max_win_cap_ends_the_round() -> None:
    """Reaching the cap pays exactly the cap and forfeits the remaining free spins."""
    data = catalog_dict("atkins_diet")
    data["max_win"] = {"multiple_of_total_bet": 8}  # above the 5x scatter pay of the trigger
    game = game_of(data)
    outcome = _find_seed(game, lambda o: o.capped and len(o.steps) > 1)
    assert outcome.win == 8 * outcome.stake
    assert len(outcome.steps) - 1 < sum(s.spins_awarded for s in _spins(outcome))


@pytest.mark.parametrize(
    ("bet", "message"),
    [(Bet(coin=3), "coin"), (Bet(coin=1, lines=0), "lines"), (Bet(coin=1, lines=21), "lines")],
)
def test_invalid_bets_are_rejected(bet: Bet, message: str) -> None:
    """Only offered coin values and line counts can be played."""
    game = game_of(catalog_dict("atkins_diet"))
    with pytest.raises(InvalidBet, match=message):
        play_round(game, SeededRng(1), bet)


def test_fixed_line_game_refuses_a_line_count() -> None:
    """A game without line selection plays all its lines only."""
    game = game_of(catalog_dict("fruit_slot"))
    assert play_round(game, SeededRng(1), Bet(coin=1, lines=1)).stake == 1
    data = tiny_config(grid={"reels": 3, "rows": 2})
    data["evaluation"]["lines"]["paylines"] = [[0, 0, 0], [1, 1, 1]]
    with pytest.raises(InvalidBet):
        play_round(game_of(data), SeededRng(1), Bet(coin=1, lines=1))


def test_free_spin_scatter_multiplier_and_retrigger_awards_are_configurable() -> None:
    """Scatter wins can stay unmultiplied in free spins; retriggers can award a different count."""
    data = catalog_dict("atkins_diet")
    data["features"]["free_spins"].update({"multiply_scatters": False, "retrigger_awards": {"3": 5}})
    game = game_of(data)

    def scatter_in_free(o: RoundOutcome) -> bool:
        return any(s.mode == "free" and s.scatter_wins for s in _spins(o))

    outcome = _find_seed(game, scatter_in_free, limit=100_000)
    for step in _spins(outcome)[1:]:
        for win in step.scatter_wins:
            assert win.amount == win.pay * outcome.stake
        for line in step.line_wins:
            assert line.amount == line.pay * 3
        if step.scatter_wins and any(w.count >= 3 for w in step.scatter_wins):
            assert step.spins_awarded == 5
