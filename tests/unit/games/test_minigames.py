"""Mini-games: exact expected values, brute-force checks, layouts, stored-state rounds."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from games.catalog import read_catalog
from games.minigames import (
    MiniGameError,
    PickConfig,
    PickState,
    Prize,
    ScratchConfig,
    WheelConfig,
    auto_pick,
    expected_credits,
    finish_pick,
    open_box,
    pick_expected_credits,
    play_scratch,
    scratch_expected_credits,
    spin_wheel,
    start_pick,
    wheel_rtp,
)
from games.minigames.pick import validate_pick
from games.minigames.scratch import validate_scratch, winning_symbols
from games.minigames.wheel import validate_wheel
from games.rng import SeededRng
from games.round import RoundOutcome

from .stats import chi2_sf


def _wheel() -> WheelConfig:
    config = msgspec.json.decode(read_catalog("wheel_of_fortune"), type=WheelConfig)
    validate_wheel(config)
    return config


def _pick() -> PickConfig:
    config = msgspec.json.decode(read_catalog("pick_a_box"), type=PickConfig)
    validate_pick(config)
    return config


def _scratch() -> ScratchConfig:
    config = msgspec.json.decode(read_catalog("scratch_card"), type=ScratchConfig)
    validate_scratch(config)
    return config


def test_wheel_expected_value_is_the_weighted_mean() -> None:
    """RTP = sum(weight x prize) / sum(weight) / cost; non-cash awards are not counted."""
    config = _wheel()
    assert expected_credits(config) == Fraction(5 * 25 + 10 * 15 + 20 * 10 + 50 * 4 + 250 * 1, 100)
    assert wheel_rtp(config) == Fraction(925, 1000)
    free = msgspec.structs.replace(config, cost=0)
    with pytest.raises(MiniGameError):
        wheel_rtp(free)


def test_wheel_segment_frequencies_follow_weights_99() -> None:
    """Segments are drawn in proportion to their weights (chi-square, 99%)."""
    config = _wheel()
    rng = SeededRng("wheel")
    draws = 50_000
    counts = Counter(spin_wheel(config, rng, 1).steps[0].segment_id for _ in range(draws))  # type: ignore[union-attr]
    total = sum(s.weight for s in config.segments)
    statistic = sum(
        (counts[s.id] - draws * s.weight / total) ** 2 / (draws * s.weight / total) for s in config.segments
    )
    assert chi2_sf(statistic, len(config.segments) - 1) > 0.01


def test_wheel_round_has_the_slot_round_shape() -> None:
    """A wheel round is a RoundOutcome: stake, win, net, LDW, one step, JSON round trip."""
    outcome = spin_wheel(_wheel(), SeededRng(2), coin=5)
    assert outcome.kind == "wheel" and outcome.stake == 50
    assert outcome.win == outcome.steps[0].win and outcome.net == outcome.win - 50
    assert msgspec.json.decode(msgspec.json.encode(outcome), type=RoundOutcome) == outcome


@pytest.mark.parametrize(
    "segments",
    [
        (),
        ({"id": "a", "weight": 0, "prize": {"value": 1}},),
        ({"id": "a", "weight": 1}, {"id": "a", "weight": 1}),
    ],
)
def test_invalid_wheels_are_rejected(segments: tuple[dict[str, object], ...]) -> None:
    """Empty wheels, zero weights (unreachable, RNG-5) and duplicate ids are refused."""
    data = {"id": "w", "version": "1", "cost": 1, "segments": [{"prize": {}, **s} for s in segments]}
    with pytest.raises(MiniGameError):
        validate_wheel(msgspec.convert(data, WheelConfig))


Strategy = Callable[[PickState], int]
STRATEGIES: dict[str, Strategy] = {
    "lowest": lambda s: min(set(range(len(s.layout))) - set(s.opened)),
    "highest": lambda s: max(set(range(len(s.layout))) - set(s.opened)),
    "odd-first": lambda s: sorted(set(range(len(s.layout))) - set(s.opened), key=lambda b: (b % 2 == 0, b))[
        0
    ],
}


def _brute_pick(config: PickConfig, strategy: Strategy) -> Fraction:
    total = Fraction(0)
    perms = list(itertools.permutations(range(len(config.prizes))))
    for layout in perms:
        state = PickState(coin=1, layout=layout)
        while not state.done:
            state = open_box(config, state, strategy(state))
        total += finish_pick(config, state).win
    return total / len(perms)


prizes = st.builds(Prize, kind=st.sampled_from(["credits", "end", "free_spins"]), value=st.integers(0, 9))


@settings(max_examples=25, deadline=None)
@given(items=st.lists(prizes, min_size=1, max_size=6), data=st.data())
def test_pick_expected_value_equals_brute_force_for_any_strategy(
    items: list[Prize], data: st.DataObject
) -> None:
    """Over every layout, each picking strategy gets exactly the closed-form expected value."""
    config = PickConfig(
        id="p", version="1", cost=1, prizes=tuple(items), picks=data.draw(st.integers(1, len(items)))
    )
    expected = pick_expected_credits(config)
    for strategy in STRATEGIES.values():
        assert _brute_pick(config, strategy) == expected


def test_pick_round_is_drawn_at_start_and_replayed_from_state() -> None:
    """The layout is fixed at start; opening boxes is pure; the stored state resumes exactly."""
    config = _pick()
    state = start_pick(config, SeededRng("pick"), coin=10)
    assert sorted(state.layout) == list(range(len(config.prizes)))
    first = open_box(config, state, 4)
    stored = msgspec.json.decode(msgspec.json.encode(first), type=PickState)
    assert open_box(config, stored, 2) == open_box(config, first, 2)
    with pytest.raises(MiniGameError):
        open_box(config, first, 4)
    if not first.done:
        with pytest.raises(MiniGameError):
            finish_pick(config, first)


def test_abandoned_pick_round_resolves_by_the_documented_default() -> None:
    """auto_pick opens the lowest unopened boxes until the round ends (INT-4)."""
    config = _pick()
    state = auto_pick(config, start_pick(config, SeededRng(9), coin=1))
    assert state.done
    assert list(state.opened) == sorted(state.opened) == list(range(len(state.opened)))
    outcome = finish_pick(config, state)
    assert outcome.kind == "pick" and outcome.stake == config.cost
    assert outcome.win == sum(s.win for s in outcome.steps)


def test_pick_catalog_value() -> None:
    """The shipped pick game: EV = 63 x 46/168 + 1 x 18/56 credits per round (closed form)."""
    assert pick_expected_credits(_pick()) == 63 * Fraction(46, 168) + Fraction(18, 56)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_scratch_layout_never_shows_an_extra_win(seed: int) -> None:
    """The grid shows exactly the drawn tier's symbol `match` times, and nothing else wins."""
    config = _scratch()
    rng = SeededRng(seed)
    for _ in range(20):
        outcome, _ = play_scratch(config, rng, coin=1)
        step = outcome.steps[0]
        tier = next(t for t in config.tiers if t.id == step.tier)  # type: ignore[union-attr]
        grid = step.grid  # type: ignore[union-attr]
        assert len(grid) == config.rows * config.cols
        assert winning_symbols(grid, config.match) == ({tier.symbol} if tier.symbol else set())
        assert outcome.win == tier.prize.credits


def test_scratch_expected_value_and_pool_model() -> None:
    """Independent EV is the weighted mean; dealing a whole pool pays exactly the pool's prizes."""
    config = _scratch()
    assert scratch_expected_credits(config) == Fraction(200 * 2 + 80 * 4 + 25 * 10 + 6 * 50 + 400, 1000)
    pool_config = msgspec.structs.replace(
        config,
        model="pool",
        tiers=tuple(msgspec.structs.replace(t, weight=max(1, t.weight // 20)) for t in config.tiers),
    )
    pool: dict[str, int] | None = {t.id: t.weight for t in pool_config.tiers}
    rng = SeededRng("pool")
    cards = sum(t.weight for t in pool_config.tiers)
    paid = 0
    seen: Counter[str] = Counter()
    for _ in range(cards):
        outcome, pool = play_scratch(pool_config, rng, 1, pool)
        paid += outcome.win
        seen[outcome.steps[0].tier] += 1  # type: ignore[union-attr]
    assert seen == {t.id: t.weight for t in pool_config.tiers}
    assert Fraction(paid, cards) == scratch_expected_credits(pool_config)
    with pytest.raises(MiniGameError):
        play_scratch(pool_config, rng, 1, pool)


def test_scratch_layout_feasibility_is_validated() -> None:
    """A grid that cannot be filled without an extra win is rejected at load."""
    config = msgspec.structs.replace(
        _scratch(), symbols=("cherry", "bell", "seven", "star", "coin", "clover")[:4]
    )
    with pytest.raises(MiniGameError):
        validate_scratch(msgspec.structs.replace(config, tiers=config.tiers[:2]))
