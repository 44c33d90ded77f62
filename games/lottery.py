"""Lotteries: scheduled draws, ticket rules, prize tiers, commit-reveal verifiable draws.

A draw's numbers are a pure function of its secret seed: ``k`` distinct numbers out of ``N``
taken by a partial Fisher-Yates shuffle over an HMAC-SHA256 stream keyed by the seed (every
combination equally likely, LOT-1). At open, ``sha256(seed)`` is published; at the draw the
seed is revealed, so anyone can run :func:`verify_draw` on the published tickets (LOT-3, RNG-9).
Optional public entropy announced after the sales cutoff (an external, verifiable event) is
mixed in, so not even the seed's custodian knows the numbers before sales close. The result is a
pure function of (seed, tickets): running it again gives the same record, and
:func:`draw_once` returns a stored record instead of drawing twice (LOT-2).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from fractions import Fraction
from math import comb

import msgspec

from .ledger import Entry, Posting, cash_account, house_account
from .rng import DerivedRng, Rng, sample_indices

__all__ = [
    "Draw",
    "DrawResult",
    "LotteryConfig",
    "LotteryError",
    "PrizeTier",
    "Ticket",
    "TicketWin",
    "buy_ticket",
    "commitment_of",
    "draw_numbers",
    "draw_once",
    "new_seed",
    "open_draw",
    "prize_postings",
    "run_draw",
    "tickets_digest",
    "tier_probabilities",
    "validate_lottery",
    "verify_draw",
]

BASIS_POINTS = 10_000


class LotteryError(ValueError):
    """A lottery rule was broken (closed sales, bad numbers, wrong seed...)."""


class PrizeTier(msgspec.Struct, frozen=True, kw_only=True):
    """Prize for tickets matching ``match`` numbers: a ``fixed`` amount per winning ticket, or
    ``pool_share_bp`` basis points of the prize pool shared equally. With ``rollover`` an unwon
    share moves into the next draw's pool."""

    match: int
    fixed: int | None = None
    pool_share_bp: int | None = None
    rollover: bool = False


class LotteryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A versioned lottery: pick ``picks`` of ``1..numbers``; ``pool_bp`` of sales fund the pool."""

    kind: str = "lottery"
    id: str
    version: str
    numbers: int
    picks: int
    ticket_price: int
    max_tickets_per_player: int
    pool_bp: int = 5_000
    tiers: tuple[PrizeTier, ...]


class Draw(msgspec.Struct, frozen=True, kw_only=True):
    """A scheduled draw: sales in ``[opens_at, cutoff_at)``, drawn at ``draws_at`` (ms)."""

    draw_id: str
    lottery_id: str
    opens_at: int
    cutoff_at: int
    draws_at: int
    commitment: str
    rollover_in: int = 0


class Ticket(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable ticket: sorted distinct numbers."""

    ticket_id: str
    draw_id: str
    player: str
    numbers: tuple[int, ...]
    bought_at: int


class TicketWin(msgspec.Struct, frozen=True, kw_only=True):
    """A winning ticket and its prize in minor units."""

    ticket_id: str
    player: str
    match: int
    amount: int


class DrawResult(msgspec.Struct, frozen=True, kw_only=True):
    """The audit record of a completed draw (LOT-3)."""

    draw_id: str
    commitment: str
    seed: str
    public_entropy: str
    tickets_hash: str
    raw: tuple[int, ...]
    numbers: tuple[int, ...]
    sales: int
    pool: int
    wins: tuple[TicketWin, ...]
    rollover_out: int
    unallocated: int


def new_seed(rng: Rng) -> bytes:
    """A fresh 256-bit draw seed from the production RNG."""
    return rng.getrandbits(256).to_bytes(32, "big")


def commitment_of(seed: bytes) -> str:
    """The published commitment: hex SHA-256 of the seed."""
    return hashlib.sha256(seed).hexdigest()


def validate_lottery(config: LotteryConfig) -> None:
    """Raises LotteryError for impossible formats or tiers."""
    if not 1 <= config.picks <= config.numbers:
        raise LotteryError("need 1 <= picks <= numbers")
    if config.ticket_price <= 0 or config.max_tickets_per_player <= 0:
        raise LotteryError("price and ticket limit must be positive")
    shares = 0
    for tier in config.tiers:
        if not 0 <= tier.match <= config.picks or (tier.fixed is None) == (tier.pool_share_bp is None):
            raise LotteryError(f"tier {tier.match}: one of fixed or pool_share_bp, valid match count")
        shares += tier.pool_share_bp or 0
    if shares > BASIS_POINTS or len({t.match for t in config.tiers}) != len(config.tiers):
        raise LotteryError("pool shares exceed 100% or a match count repeats")


def open_draw(
    config: LotteryConfig,
    draw_id: str,
    opens_at: int,
    cutoff_at: int,
    draws_at: int,
    seed: bytes,
    rollover_in: int = 0,
) -> Draw:
    """Schedule a draw and commit to its seed (publish the returned ``commitment``)."""
    validate_lottery(config)
    if not opens_at < cutoff_at <= draws_at:
        raise LotteryError("need opens_at < cutoff_at <= draws_at")
    return Draw(
        draw_id=draw_id,
        lottery_id=config.id,
        opens_at=opens_at,
        cutoff_at=cutoff_at,
        draws_at=draws_at,
        commitment=commitment_of(seed),
        rollover_in=rollover_in,
    )


def buy_ticket(
    config: LotteryConfig,
    draw: Draw,
    held: Iterable[Ticket],
    *,
    ticket_id: str,
    player: str,
    numbers: Iterable[int],
    now: int,
) -> Ticket:
    """Validate a purchase at sale time (LOT-2, LOT-4); eligibility checks are the caller's.

    Args:
        held: Tickets the player already holds for this draw.

    Raises:
        LotteryError: If sales are closed, the numbers are invalid or the limit is reached.
    """
    if not draw.opens_at <= now < draw.cutoff_at:
        raise LotteryError("sales are closed")
    chosen = tuple(sorted(numbers))
    if (
        len(chosen) != config.picks
        or len(set(chosen)) != config.picks
        or not all(1 <= n <= config.numbers for n in chosen)
    ):
        raise LotteryError(f"pick {config.picks} distinct numbers from 1 to {config.numbers}")
    if sum(1 for t in held if t.player == player) >= config.max_tickets_per_player:
        raise LotteryError("ticket limit reached")
    return Ticket(ticket_id=ticket_id, draw_id=draw.draw_id, player=player, numbers=chosen, bought_at=now)


def tickets_digest(tickets: Iterable[Ticket]) -> str:
    """Hash of the ticket set, independent of order (published with the result)."""
    encoded = sorted(msgspec.json.encode(t) for t in tickets)
    return hashlib.sha256(b"\n".join(encoded)).hexdigest()


def draw_numbers(
    config: LotteryConfig, draw_id: str, seed: bytes, public_entropy: bytes = b""
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(raw draw order, sorted numbers)``: k of N from the seed's HMAC stream."""
    context = b"\x00".join((b"croupier-lottery", config.id.encode(), draw_id.encode(), public_entropy))
    raw = tuple(i + 1 for i in sample_indices(DerivedRng(seed, context), config.numbers, config.picks))
    return raw, tuple(sorted(raw))


def run_draw(
    config: LotteryConfig, draw: Draw, seed: bytes, tickets: Iterable[Ticket], public_entropy: bytes = b""
) -> DrawResult:
    """Draw the numbers and settle every tier; a pure function of its inputs.

    Fixed prizes are paid in full by the house, never reduced (WAL-5). Pool tiers share
    ``pool x share`` equally among their winners (rounded down); rounding remainders, the part of
    the pool assigned to no tier and unwon rollover shares go to ``rollover_out``; unwon
    non-rollover shares are ``unallocated`` (they stay with the house).

    Raises:
        LotteryError: If the seed does not match the commitment or a ticket is foreign.
    """
    if commitment_of(seed) != draw.commitment:
        raise LotteryError("the seed does not match the published commitment")
    tickets = list(tickets)
    if any(t.draw_id != draw.draw_id for t in tickets):
        raise LotteryError("a ticket belongs to another draw")
    raw, numbers = draw_numbers(config, draw.draw_id, seed, public_entropy)
    drawn = set(numbers)
    by_match: defaultdict[int, list[Ticket]] = defaultdict(list)
    for t in sorted(tickets, key=lambda t: t.ticket_id):
        by_match[len(drawn.intersection(t.numbers))].append(t)
    sales = len(tickets) * config.ticket_price
    pool = sales * config.pool_bp // BASIS_POINTS + draw.rollover_in
    wins, rollover, unallocated = _settle_tiers(config, by_match, pool)
    return DrawResult(
        draw_id=draw.draw_id,
        commitment=draw.commitment,
        seed=seed.hex(),
        public_entropy=public_entropy.hex(),
        tickets_hash=tickets_digest(tickets),
        raw=raw,
        numbers=numbers,
        sales=sales,
        pool=pool,
        wins=tuple(wins),
        rollover_out=rollover,
        unallocated=unallocated,
    )


def _settle_tiers(
    config: LotteryConfig, by_match: Mapping[int, list[Ticket]], pool: int
) -> tuple[list[TicketWin], int, int]:
    wins: list[TicketWin] = []
    rollover = pool - sum(pool * (t.pool_share_bp or 0) // BASIS_POINTS for t in config.tiers)
    unallocated = 0
    for tier in sorted(config.tiers, key=lambda t: -t.match):
        winners = by_match.get(tier.match, [])
        if tier.fixed is not None:
            wins += [
                TicketWin(ticket_id=t.ticket_id, player=t.player, match=tier.match, amount=tier.fixed)
                for t in winners
            ]
            continue
        share = pool * (tier.pool_share_bp or 0) // BASIS_POINTS
        if not winners:
            if tier.rollover:
                rollover += share
            else:
                unallocated += share
            continue
        each, remainder = divmod(share, len(winners))
        rollover += remainder
        wins += [
            TicketWin(ticket_id=t.ticket_id, player=t.player, match=tier.match, amount=each) for t in winners
        ]
    return wins, rollover, unallocated


def verify_draw(config: LotteryConfig, draw: Draw, result: DrawResult, tickets: Iterable[Ticket]) -> bool:
    """Anyone's check: the revealed seed matches the commitment and recomputes the result."""
    try:
        seed = bytes.fromhex(result.seed)
        again = run_draw(config, draw, seed, tickets, bytes.fromhex(result.public_entropy))
    except (LotteryError, ValueError):
        return False
    return again == result


def draw_once(
    completed: Mapping[str, DrawResult],
    config: LotteryConfig,
    draw: Draw,
    seed: bytes,
    tickets: Iterable[Ticket],
    public_entropy: bytes = b"",
) -> DrawResult:
    """Return the stored result of a completed draw, or run it (the draw id is the key)."""
    stored = completed.get(draw.draw_id)
    return stored if stored is not None else run_draw(config, draw, seed, tickets, public_entropy)


def tier_probabilities(config: LotteryConfig) -> dict[int, Fraction]:
    """Exact odds per ticket of matching exactly ``m`` numbers (hypergeometric)."""
    n, k = config.numbers, config.picks
    return {m: Fraction(comb(k, m) * comb(n - k, k - m), comb(n, k)) for m in range(k + 1)}


def prize_postings(partner: str, currency: str, result: DrawResult) -> list[Posting]:
    """Balanced ledger postings paying each win from the house, keyed per draw and ticket."""
    return [
        Posting(
            key=f"{result.draw_id}:{win.ticket_id}:prize",
            kind="prize",
            currency=currency,
            entries=(
                Entry(house_account(partner), -win.amount),
                Entry(cash_account(partner, win.player), win.amount),
            ),
        )
        for win in result.wins
        if win.amount
    ]
