"""Lottery: ticket rules, commit-reveal verification, tiers and rollover, uniform draws."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction

import msgspec
import pytest

from games.catalog import read_catalog
from games.ledger import Ledger
from games.lottery import (
    Draw,
    LotteryConfig,
    LotteryError,
    PrizeTier,
    Ticket,
    buy_ticket,
    commitment_of,
    draw_numbers,
    draw_once,
    new_seed,
    open_draw,
    prize_postings,
    run_draw,
    tier_probabilities,
    validate_lottery,
    verify_draw,
)
from games.rng import DerivedRng, SeededRng, SystemRng

from .stats import chi2_uniform_pvalue

CONFIG = LotteryConfig(
    id="pick3of10",
    version="1",
    numbers=10,
    picks=3,
    ticket_price=100,
    max_tickets_per_player=3,
    pool_bp=6000,
    tiers=(
        PrizeTier(match=3, pool_share_bp=7000, rollover=True),
        PrizeTier(match=2, pool_share_bp=2000),
        PrizeTier(match=1, fixed=50),
    ),
)
OPEN, CUTOFF, DRAW = 1_000, 5_000, 6_000


def _seed(label: str) -> bytes:
    return SeededRng(label).getrandbits(256).to_bytes(32, "big")


def _setup(label: str = "draw") -> tuple[bytes, Draw]:
    seed = _seed(label)
    return seed, open_draw(CONFIG, f"d-{label}", OPEN, CUTOFF, DRAW, seed)


def _tickets(draw: Draw, picks: Sequence[tuple[str, tuple[int, ...]]]) -> list[Ticket]:
    held: list[Ticket] = []
    for i, (player, numbers) in enumerate(picks):
        held.append(
            buy_ticket(CONFIG, draw, held, ticket_id=f"t{i}", player=player, numbers=numbers, now=OPEN + i)
        )
    return held


def test_sales_window_numbers_and_ticket_limit() -> None:
    """Tickets sell only before the cutoff, with valid numbers, up to the per-player limit (LOT-2, LOT-4)."""
    _, draw = _setup()
    held = _tickets(draw, [("ann", (1, 2, 3)), ("ann", (4, 5, 6)), ("ann", (7, 8, 9))])
    with pytest.raises(LotteryError, match="limit"):
        buy_ticket(CONFIG, draw, held, ticket_id="x", player="ann", numbers=(1, 2, 4), now=OPEN)
    for numbers, now in [
        ((1, 2, 2), OPEN),
        ((0, 1, 2), OPEN),
        ((1, 2), OPEN),
        ((1, 2, 3), CUTOFF),
        ((1, 2, 3), OPEN - 1),
    ]:
        with pytest.raises(LotteryError):
            buy_ticket(CONFIG, draw, [], ticket_id="y", player="bob", numbers=numbers, now=now)
    assert held[0].numbers == (1, 2, 3)


def test_draw_is_pure_verifiable_and_happens_once() -> None:
    """Same (seed, tickets) give the same record; anyone can verify it; a stored draw is returned (LOT-2, LOT-3)."""
    seed, draw = _setup()
    tickets = _tickets(draw, [("ann", (1, 2, 3)), ("bob", (2, 5, 9)), ("cid", (4, 6, 8))])
    result = run_draw(CONFIG, draw, seed, tickets)
    assert run_draw(CONFIG, draw, seed, list(reversed(tickets))) == result
    assert verify_draw(CONFIG, draw, result, tickets)
    assert result.commitment == commitment_of(seed) == draw.commitment
    assert draw_once({result.draw_id: result}, CONFIG, draw, b"\x00" * 32, []) is result
    assert sorted(result.raw) == list(result.numbers) and len(set(result.numbers)) == 3


def test_tampering_breaks_verification() -> None:
    """One changed seed byte, a changed number or an extra ticket fail verification (RNG-9)."""
    seed, draw = _setup()
    tickets = _tickets(draw, [("ann", (1, 2, 3))])
    result = run_draw(CONFIG, draw, seed, tickets)
    flipped = bytes([seed[0] ^ 1]) + seed[1:]
    with pytest.raises(LotteryError):
        run_draw(CONFIG, draw, flipped, tickets)
    assert not verify_draw(CONFIG, draw, msgspec.structs.replace(result, seed=flipped.hex()), tickets)
    other = (4, 5, 6) if result.numbers == (1, 2, 3) else (1, 2, 3)
    assert not verify_draw(CONFIG, draw, msgspec.structs.replace(result, numbers=other), tickets)
    extra = Ticket(
        ticket_id="zz", draw_id=result.draw_id, player="eve", numbers=result.numbers, bought_at=CUTOFF + 1
    )
    assert not verify_draw(CONFIG, draw, result, [*tickets, extra])


def test_public_entropy_changes_the_numbers() -> None:
    """Entropy published after cutoff is part of the derivation (the custodian cannot foresee it)."""
    seed, draw = _setup()
    results = {draw_numbers(CONFIG, "d", seed, bytes([i]))[1] for i in range(20)}
    assert len(results) > 1


def test_prize_tiers_rollover_and_money_conservation() -> None:
    """Pool shares split equally, remainders and unwon jackpot roll over, fixed prizes paid in full."""
    seed, draw = _setup("tiers")
    _, numbers = draw_numbers(CONFIG, draw.draw_id, seed)
    others = [n for n in range(1, 11) if n not in numbers]
    picks = [
        ("ann", (numbers[0], numbers[1], others[0])),
        ("bob", (numbers[0], numbers[2], others[1])),
        ("cid", (numbers[1], numbers[2], others[2])),
        ("dan", (numbers[0], others[3], others[4])),
        ("eve", (others[0], others[1], others[2])),
    ]
    result = run_draw(CONFIG, draw, seed, _tickets(draw, picks))
    pool = 5 * 100 * 6000 // 10000
    assert result.pool == pool == 300
    two = [w for w in result.wins if w.match == 2]
    assert [w.amount for w in two] == [20, 20, 20]  # 2000 bp of 300 = 60, three winners
    assert [(w.player, w.amount) for w in result.wins if w.match == 1] == [("dan", 50)]
    # jackpot unwon (rolls over) plus the 10% of the pool no tier claims
    assert result.rollover_out == 300 * 7000 // 10000 + (300 - 210 - 60)
    assert sum(w.amount for w in two) + result.rollover_out + result.unallocated == pool


def test_rollover_feeds_the_next_pool() -> None:
    """A draw opened with the previous rollover has it in its pool."""
    seed = _seed("next")
    draw = open_draw(CONFIG, "d2", OPEN, CUTOFF, DRAW, seed, rollover_in=1234)
    assert run_draw(CONFIG, draw, seed, []).pool == 1234


def test_prize_postings_are_balanced_and_keyed_per_ticket() -> None:
    """Prizes post as balanced entries with per-ticket keys; reposting changes nothing."""
    seed, draw = _setup("post")
    _, numbers = draw_numbers(CONFIG, draw.draw_id, seed)
    tickets = _tickets(draw, [("ann", numbers), ("bob", numbers)])
    result = run_draw(CONFIG, draw, seed, tickets)
    ledger = Ledger()
    for posting in prize_postings("acme", "EUR", result) * 2:
        ledger.post(posting)
    assert ledger.verify() == []
    assert len(ledger.postings) == len([w for w in result.wins if w.amount])


def test_tier_odds_are_hypergeometric() -> None:
    """Exact odds for 3 of 10 sum to one; P(3 matches) = 1/120."""
    odds = tier_probabilities(CONFIG)
    assert sum(odds.values()) == 1
    assert odds[3] == Fraction(1, 120)


def test_all_combinations_equally_likely_99() -> None:
    """Every one of the 120 3-of-10 combinations is equally likely at 99% (LOT-1, RNG-4)."""
    index: dict[tuple[int, ...], int] = {c: i for i, c in enumerate(itertools.combinations(range(1, 11), 3))}
    counts = [0] * len(index)
    root = _seed("uniform")
    for i in range(60_000):
        counts[index[draw_numbers(CONFIG, f"u{i}", root)[1]]] += 1
    assert chi2_uniform_pvalue(counts) > 0.01


def test_seeds_come_from_the_production_rng_and_are_long() -> None:
    """Draw seeds are 256 bits from the OS CSPRNG; short derivation keys are refused."""
    a, b = new_seed(SystemRng()), new_seed(SystemRng())
    assert len(a) == 32 and a != b
    with pytest.raises(ValueError):
        DerivedRng(b"short", b"ctx")


def test_catalog_lottery_loads_with_published_odds() -> None:
    """The shipped 6-of-49 game validates; the jackpot odds are 1 in 13,983,816."""
    config = msgspec.json.decode(read_catalog("lottery_6of49"), type=LotteryConfig)
    validate_lottery(config)
    assert tier_probabilities(config)[6] == Fraction(1, 13_983_816)
