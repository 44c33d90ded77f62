"""Player wallet rules over the ledger: deposits, bets, wins, refunds, idempotent retries.

Keys are derived from the client's request id (WAL-2): a round id is a hash of
``(partner, player, request_id)`` and its postings are ``<round_id>:bet``, ``<round_id>:win`` and
``<round_id>:refund``. Retrying a request returns the original result and posts nothing.

Spending order (BON-3), documented and tested: a stake is taken from **cash first, then bonus**.
A win is credited back in proportion to where the stake came from, the bonus share rounded
down (so rounding always favours withdrawable cash).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from .ledger import (
    Entry,
    IdempotencyConflict,
    InsufficientFunds,
    Ledger,
    LedgerError,
    Posting,
    PostingKind,
    RoundRecord,
    bonus_account,
    cash_account,
    house_account,
)
from .round import RoundOutcome

__all__ = [
    "BetReceipt",
    "Funds",
    "PlayResult",
    "Settlement",
    "Wallet",
    "round_id_for",
    "split_stake",
    "split_win",
]


class Funds(msgspec.Struct, frozen=True):
    """A player's balances in one currency."""

    cash: int
    bonus: int

    @property
    def total(self) -> int:
        """Cash plus bonus."""
        return self.cash + self.bonus


class BetReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """A debited stake and where it came from."""

    round_id: str
    player: str
    stake: int
    from_cash: int
    from_bonus: int


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """A settled round: the win and where it was credited."""

    round_id: str
    stake: int
    win: int
    to_cash: int
    to_bonus: int


class PlayResult(msgspec.Struct, frozen=True, kw_only=True):
    """Result of :meth:`Wallet.play`; ``duplicate`` marks a replayed request."""

    round_id: str
    outcome: RoundOutcome
    settlement: Settlement
    duplicate: bool


def round_id_for(partner: str, player: str, request_id: str) -> str:
    """Deterministic round id for a client request (the idempotency root, WAL-2)."""
    digest = hashlib.sha256(f"{partner}\x00{player}\x00{request_id}".encode()).hexdigest()
    return f"r_{digest[:32]}"


def split_stake(stake: int, funds: Funds) -> tuple[int, int]:
    """``(from_cash, from_bonus)`` for a stake: cash first, then bonus.

    Raises:
        InsufficientFunds: If cash plus bonus cannot cover the stake.
    """
    if stake > funds.total:
        raise InsufficientFunds("stake exceeds the balance")
    from_cash = min(stake, funds.cash)
    return from_cash, stake - from_cash


def split_win(win: int, from_cash: int, from_bonus: int) -> tuple[int, int]:
    """``(to_cash, to_bonus)``: in proportion to the stake's sources, bonus share rounded down."""
    stake = from_cash + from_bonus
    to_bonus = win * from_bonus // stake if stake else 0
    return win - to_bonus, to_bonus


@dataclass(slots=True)
class _Round:
    receipt: BetReceipt
    status: Literal["open", "settled", "voided"] = "open"
    settlement: Settlement | None = None
    outcome: RoundOutcome | None = None


@dataclass
class Wallet:
    """Wallet rules for one partner and currency on top of a :class:`Ledger`.

    One writer owns a player's wallet (the actor model of the server), so a player's "concurrent"
    spins arrive here one after another; each still settles independently.
    """

    ledger: Ledger
    partner: str
    currency: str
    _rounds: dict[str, _Round] = field(default_factory=dict)

    def funds(self, player: str) -> Funds:
        """Current balances of a player."""
        return Funds(
            cash=self.ledger.balance(cash_account(self.partner, player), self.currency),
            bonus=self.ledger.balance(bonus_account(self.partner, player), self.currency),
        )

    def _post(
        self, key: str, kind: PostingKind, entries: list[tuple[str, int]], round_id: str | None = None
    ) -> Posting:
        posting = Posting(
            key=key,
            kind=kind,
            currency=self.currency,
            entries=tuple(Entry(a, v) for a, v in entries if v),
            round_id=round_id,
        )
        return self.ledger.post(posting)[0]

    def deposit(self, player: str, request_id: str, amount: int) -> Posting:
        """Credit cash from the payment provider; idempotent per request id."""
        _positive(amount)
        external = f"{self.partner}/external/payments"
        key = f"deposit:{round_id_for(self.partner, player, request_id)}"
        return self._post(key, "deposit", [(external, -amount), (cash_account(self.partner, player), amount)])

    def withdraw(self, player: str, request_id: str, amount: int) -> Posting:
        """Pay cash out to the payment provider; never below zero; idempotent per request id."""
        _positive(amount)
        external = f"{self.partner}/external/payments"
        key = f"withdrawal:{round_id_for(self.partner, player, request_id)}"
        return self._post(
            key, "withdrawal", [(cash_account(self.partner, player), -amount), (external, amount)]
        )

    def credit_bonus(self, player: str, key: str, amount: int) -> Posting:
        """Grant bonus funds from the house (used by the bonus rules); idempotent per key."""
        _positive(amount)
        return self._post(
            key,
            "bonus",
            [(house_account(self.partner), -amount), (bonus_account(self.partner, player), amount)],
        )

    def place_bet(self, player: str, request_id: str, stake: int) -> BetReceipt:
        """Debit a stake and open a round; a retry returns the original receipt.

        Raises:
            InsufficientFunds: If the player cannot cover the stake (nothing is posted).
            IdempotencyConflict: If the request id was used with a different stake or player.
        """
        _positive(stake)
        round_id = round_id_for(self.partner, player, request_id)
        known = self._rounds.get(round_id)
        if known is not None:
            if known.receipt.stake != stake or known.receipt.player != player:
                raise IdempotencyConflict(f"request {request_id!r} was a different bet")
            return known.receipt
        from_cash, from_bonus = split_stake(stake, self.funds(player))
        self._post(
            f"{round_id}:bet",
            "bet",
            [
                (cash_account(self.partner, player), -from_cash),
                (bonus_account(self.partner, player), -from_bonus),
                (house_account(self.partner), stake),
            ],
            round_id,
        )
        receipt = BetReceipt(
            round_id=round_id, player=player, stake=stake, from_cash=from_cash, from_bonus=from_bonus
        )
        self._rounds[round_id] = _Round(receipt=receipt)
        return receipt

    def settle(self, round_id: str, win: int) -> Settlement:
        """Credit a round's win in full (WAL-5); a retry returns the original settlement.

        Raises:
            LedgerError: If the round is unknown or voided, or ``win`` is negative.
            IdempotencyConflict: If the round was already settled with another win.
        """
        state = self._open_round(round_id)
        if state.settlement is not None:
            if state.settlement.win != win:
                raise IdempotencyConflict(f"round {round_id} already settled with another win")
            return state.settlement
        if win < 0 or type(win) is not int:
            raise LedgerError("a win is a non-negative integer")
        r = state.receipt
        to_cash, to_bonus = split_win(win, r.from_cash, r.from_bonus)
        if win:
            self._post(
                f"{round_id}:win",
                "win",
                [
                    (house_account(self.partner), -win),
                    (cash_account(self.partner, r.player), to_cash),
                    (bonus_account(self.partner, r.player), to_bonus),
                ],
                round_id,
            )
        state.settlement = Settlement(
            round_id=round_id, stake=r.stake, win=win, to_cash=to_cash, to_bonus=to_bonus
        )
        state.status = "settled"
        return state.settlement

    def void(self, round_id: str) -> Posting:
        """Refund an unsettled round's stake to where it came from (INT-3); idempotent.

        Raises:
            LedgerError: If the round is unknown or already settled.
        """
        state = self._rounds.get(round_id)
        if state is None:
            raise LedgerError(f"unknown round {round_id}")
        if state.status == "settled":
            raise LedgerError("a settled round cannot be voided; post a correction instead")
        r = state.receipt
        state.status = "voided"
        return self._post(
            f"{round_id}:refund",
            "refund",
            [
                (house_account(self.partner), -r.stake),
                (cash_account(self.partner, r.player), r.from_cash),
                (bonus_account(self.partner, r.player), r.from_bonus),
            ],
            round_id,
        )

    def play(self, player: str, request_id: str, stake: int, draw: Callable[[], RoundOutcome]) -> PlayResult:
        """Debit, draw once, store the outcome, credit: the whole money path of one round.

        A retried request returns the stored outcome and settlement and posts nothing; a round
        whose bet was taken but not settled is completed from its stored outcome, never redrawn.

        Raises:
            InsufficientFunds: Before anything is drawn, if the stake is not covered.
            LedgerError: If the drawn outcome's stake differs from ``stake`` (the round is voided).
            Exception: Whatever ``draw`` raised (e.g. ``RngUnavailable``); the stake is refunded.
        """
        round_id = round_id_for(self.partner, player, request_id)
        known = self._rounds.get(round_id)
        if known is not None and known.settlement is not None and known.outcome is not None:
            return PlayResult(
                round_id=round_id, outcome=known.outcome, settlement=known.settlement, duplicate=True
            )
        self.place_bet(player, request_id, stake)
        state = self._rounds[round_id]
        if state.outcome is None:
            try:
                outcome = draw()
            except Exception:
                # RNG failure or feature fault: the stake goes back and the error propagates
                # ("game unavailable", RNG-8 / INT-3); the voided round stays on record.
                self.void(round_id)
                raise
            if outcome.stake != stake:
                self.void(round_id)
                raise LedgerError("the outcome's stake differs from the debited stake")
            state.outcome = outcome
        settlement = self.settle(round_id, state.outcome.win)
        return PlayResult(round_id=round_id, outcome=state.outcome, settlement=settlement, duplicate=False)

    def records(self) -> list[RoundRecord]:
        """Round records as the round store would hold them (for reconciliation)."""
        return [
            RoundRecord(
                round_id=rid,
                partner=self.partner,
                player=s.receipt.player,
                currency=self.currency,
                stake=s.receipt.stake,
                win=s.settlement.win if s.settlement else 0,
                status=s.status,
            )
            for rid, s in self._rounds.items()
        ]

    def _open_round(self, round_id: str) -> _Round:
        state = self._rounds.get(round_id)
        if state is None:
            raise LedgerError(f"unknown round {round_id}")
        if state.status == "voided":
            raise LedgerError(f"round {round_id} was voided")
        return state


def _positive(amount: int) -> None:
    if type(amount) is not int or amount <= 0:
        raise LedgerError("amounts are positive integers in minor units")
