"""Double-entry ledger rules (WAL-1, WAL-2, WAL-4, WAL-5, WAL-6), pure and in memory.

Money moves only as a :class:`Posting`: two or more entries in one currency whose amounts sum to
zero, in integer minor units. Every posting carries an idempotency key; posting the same key
again returns the original posting and changes nothing, while the same key with different
content is refused. Player accounts can never go negative; the house account can (a win is always
paid in full, house liquidity is an alarm, never a game input).

:class:`Ledger` is the reference model the persistence layer implements durably; its balances
are a cache of the entries and :meth:`Ledger.verify` recomputes them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Literal

import msgspec

__all__ = [
    "Entry",
    "IdempotencyConflict",
    "InsufficientFunds",
    "Ledger",
    "LedgerError",
    "Posting",
    "Reconciliation",
    "RoundRecord",
    "bonus_account",
    "cash_account",
    "house_account",
    "reconcile",
]

PostingKind = Literal[
    "deposit", "withdrawal", "bet", "win", "refund", "bonus", "bonus_release", "bonus_forfeit", "prize"
]


class LedgerError(ValueError):
    """A posting violates a ledger rule."""


class InsufficientFunds(LedgerError):
    """A player account would go negative (WAL-4)."""


class IdempotencyConflict(LedgerError):
    """A key was reused for a different posting (WAL-2)."""


class Entry(msgspec.Struct, frozen=True):
    """One side of a posting: ``amount`` minor units added to ``account`` (negative = debit)."""

    account: str
    amount: int


class Posting(msgspec.Struct, frozen=True, kw_only=True):
    """An atomic, balanced money movement. ``round_id`` links bets, wins and refunds to a round."""

    key: str
    kind: PostingKind
    currency: str
    entries: tuple[Entry, ...]
    round_id: str | None = None


def cash_account(partner: str, player: str) -> str:
    """The player's withdrawable balance (scoped by white-label partner)."""
    return f"{partner}/player/{player}/cash"


def bonus_account(partner: str, player: str) -> str:
    """The player's bonus balance, kept apart from cash (BON-3)."""
    return f"{partner}/player/{player}/bonus"


def house_account(partner: str) -> str:
    """The partner's house account: counterparty of bets, wins, deposits; may go negative."""
    return f"{partner}/house"


def _may_go_negative(account: str) -> bool:
    return account.endswith("/house") or "/external/" in account


def _check_shape(posting: Posting) -> None:
    if len(posting.entries) < 2:
        raise LedgerError("a posting needs at least two entries")
    for entry in posting.entries:
        if type(entry.amount) is not int:
            raise LedgerError("amounts are integers in minor units")
    if sum(e.amount for e in posting.entries) != 0:
        raise LedgerError("entries of a posting must sum to zero")


class Ledger:
    """Append-only postings with cached balances per (account, currency).

    A ledger is owned by one writer (the player's worker), so no locking is needed here.
    """

    def __init__(self) -> None:
        self.postings: list[Posting] = []
        self._by_key: dict[str, Posting] = {}
        self._balances: defaultdict[tuple[str, str], int] = defaultdict(int)

    def balance(self, account: str, currency: str) -> int:
        """Current balance of an account in a currency."""
        return self._balances.get((account, currency), 0)

    def find(self, key: str) -> Posting | None:
        """The posting recorded under an idempotency key, if any."""
        return self._by_key.get(key)

    def post(self, posting: Posting) -> tuple[Posting, bool]:
        """Apply a posting once.

        Returns:
            ``(posting, duplicate)``: the recorded posting and whether the key was already used
            (then nothing changed).

        Raises:
            LedgerError: If the posting is unbalanced or not in integer minor units.
            IdempotencyConflict: If the key was used for a different posting.
            InsufficientFunds: If a player account would go negative.
        """
        existing = self._by_key.get(posting.key)
        if existing is not None:
            if existing != posting:
                raise IdempotencyConflict(f"key {posting.key!r} already used for a different posting")
            return existing, True
        _check_shape(posting)
        after: dict[str, int] = defaultdict(int)
        for entry in posting.entries:
            after[entry.account] += entry.amount
        for account, delta in after.items():
            if not _may_go_negative(account) and self.balance(account, posting.currency) + delta < 0:
                raise InsufficientFunds(f"{account} cannot go below zero")
        for account, delta in after.items():
            self._balances[(account, posting.currency)] += delta
        self.postings.append(posting)
        self._by_key[posting.key] = posting
        return posting, False

    def verify(self) -> list[str]:
        """Recompute balances from the entries; return every discrepancy (empty when sound)."""
        problems = []
        recomputed: defaultdict[tuple[str, str], int] = defaultdict(int)
        totals: defaultdict[str, int] = defaultdict(int)
        for posting in self.postings:
            for entry in posting.entries:
                recomputed[(entry.account, posting.currency)] += entry.amount
                totals[posting.currency] += entry.amount
        for key in set(recomputed) | set(self._balances):
            if recomputed.get(key, 0) != self._balances.get(key, 0):
                problems.append(f"cached balance of {key} differs from its entries")
        problems += [f"entries in {cur} sum to {total}" for cur, total in totals.items() if total]
        if len(self._by_key) != len(self.postings):
            problems.append("idempotency keys are not unique")
        return problems


class RoundRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the round store says about a round's money, for reconciliation (HIST-2 subset)."""

    round_id: str
    partner: str
    player: str
    currency: str
    stake: int
    win: int
    status: Literal["open", "settled", "voided"]


class Reconciliation(msgspec.Struct, frozen=True, kw_only=True):
    """Totals per (partner, currency) from rounds and from the ledger, and any mismatch."""

    rounds: dict[str, dict[str, int]]
    ledger: dict[str, dict[str, int]]
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when rounds and ledger agree everywhere."""
        return not self.mismatches


def _round_totals(rounds: Iterable[RoundRecord]) -> dict[str, dict[str, int]]:
    totals: defaultdict[str, dict[str, int]] = defaultdict(lambda: {"bet": 0, "win": 0, "refund": 0})
    for r in rounds:
        bucket = totals[f"{r.partner}:{r.currency}"]
        bucket["bet"] += r.stake
        if r.status == "settled":
            bucket["win"] += r.win
        elif r.status == "voided":
            bucket["refund"] += r.stake
    return dict(totals)


def _ledger_totals(postings: Iterable[Posting]) -> dict[str, dict[str, int]]:
    totals: defaultdict[str, dict[str, int]] = defaultdict(lambda: {"bet": 0, "win": 0, "refund": 0})
    for p in postings:
        if p.kind not in ("bet", "win", "refund"):
            continue
        house = [e for e in p.entries if e.account.endswith("/house")]
        if not house:
            continue
        partner = house[0].account.rsplit("/house", 1)[0]
        totals[f"{partner}:{p.currency}"][p.kind] += abs(sum(e.amount for e in house))
    return dict(totals)


def reconcile(rounds: Iterable[RoundRecord], postings: Iterable[Posting]) -> Reconciliation:
    """Compare bets, wins and refunds of the round records with the ledger (WAL-6).

    Args:
        rounds: Round records of the period.
        postings: Ledger postings of the same period.

    Returns:
        Both sets of totals per ``"partner:currency"`` and a description of every mismatch.
    """
    by_rounds = _round_totals(rounds)
    by_ledger = _ledger_totals(postings)
    mismatches = []
    for scope in sorted(set(by_rounds) | set(by_ledger)):
        expected = by_rounds.get(scope, {"bet": 0, "win": 0, "refund": 0})
        actual = by_ledger.get(scope, {"bet": 0, "win": 0, "refund": 0})
        for kind in ("bet", "win", "refund"):
            if expected[kind] != actual[kind]:
                mismatches.append(f"{scope} {kind}: rounds {expected[kind]} != ledger {actual[kind]}")
    return Reconciliation(rounds=by_rounds, ledger=by_ledger, mismatches=tuple(mismatches))
