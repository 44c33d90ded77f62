"""Stateful test: a simple model balance equals the ledger balance after every step.

Operations: deposits, bonus grants, complete spins, concurrent open spins of one player settled
or voided later in any order, withdrawals, and retries of any earlier request (duplicates and
reordered retries). Invariants: model == ledger, entries sum to zero, cached balances equal the
entries, players never negative, one bet and at most one win per round, reconciliation clean.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from games.ledger import InsufficientFunds, Ledger, reconcile
from games.round import Bet, RoundOutcome, make_outcome
from games.wallet import Funds, Wallet

PLAYERS = ("alice", "bob")


def _outcome(stake: int, win: int) -> RoundOutcome:
    return make_outcome(
        game_id="g",
        game_version="1",
        math_hash="h",
        profile="p",
        kind="slot",
        bet=Bet(coin=stake),
        stake=stake,
        win=win,
        capped=False,
        steps=(),
    )


@dataclass(frozen=True)
class Request:
    kind: str
    player: str
    request_id: str
    amount: int
    win: int = 0


class WalletMachine(RuleBasedStateMachine):
    requests = Bundle("requests")

    @initialize()
    def setup(self) -> None:
        self.wallet = Wallet(Ledger(), "acme", "EUR")
        self.model = {p: [0, 0] for p in PLAYERS}  # cash, bonus
        self.counter = 0
        self.open: dict[str, tuple[str, int, int]] = {}  # round_id -> player, from_cash, from_bonus
        self.results: dict[str, Any] = {}

    def _next_id(self) -> str:
        self.counter += 1
        return f"req-{self.counter}"

    def _take(self, player: str, stake: int) -> tuple[int, int] | None:
        cash, bonus = self.model[player]
        if stake > cash + bonus:
            return None
        from_cash = min(cash, stake)
        self.model[player] = [cash - from_cash, bonus - (stake - from_cash)]
        return from_cash, stake - from_cash

    def _give(self, player: str, win: int, from_cash: int, from_bonus: int) -> None:
        to_bonus = win * from_bonus // (from_cash + from_bonus)
        self.model[player][0] += win - to_bonus
        self.model[player][1] += to_bonus

    @rule(target=requests, player=st.sampled_from(PLAYERS), amount=st.integers(1, 500))
    def deposit(self, player: str, amount: int) -> Request:
        request = Request("deposit", player, self._next_id(), amount)
        self.results[request.request_id] = self.wallet.deposit(player, request.request_id, amount)
        self.model[player][0] += amount
        return request

    @rule(player=st.sampled_from(PLAYERS), amount=st.integers(1, 200))
    def grant_bonus(self, player: str, amount: int) -> None:
        self.wallet.credit_bonus(player, f"bonus-{self._next_id()}", amount)
        self.model[player][1] += amount

    @rule(
        target=requests, player=st.sampled_from(PLAYERS), stake=st.integers(1, 100), win=st.integers(0, 400)
    )
    def spin(self, player: str, stake: int, win: int) -> Request:
        request = Request("spin", player, self._next_id(), stake, win)
        split = self._take(player, stake)
        try:
            self.results[request.request_id] = self.wallet.play(
                player, request.request_id, stake, lambda: _outcome(stake, win)
            )
        except InsufficientFunds:
            assert split is None
            return request
        assert split is not None
        self._give(player, win, *split)
        return request

    @rule(target=requests, player=st.sampled_from(PLAYERS), stake=st.integers(1, 100))
    def open_spin(self, player: str, stake: int) -> Request:
        """A spin whose bet is taken now and settled later (concurrent spins of one player)."""
        request = Request("bet", player, self._next_id(), stake)
        split = self._take(player, stake)
        try:
            receipt = self.wallet.place_bet(player, request.request_id, stake)
        except InsufficientFunds:
            assert split is None
            return request
        assert split is not None and (receipt.from_cash, receipt.from_bonus) == split
        self.results[request.request_id] = receipt
        self.open[receipt.round_id] = (player, *split)
        return request

    @precondition(lambda self: self.open)
    @rule(data=st.data(), win=st.integers(0, 400), void=st.booleans())
    def finish_open_spin(self, data: st.DataObject, win: int, void: bool) -> None:
        round_id = data.draw(st.sampled_from(sorted(self.open)))
        player, from_cash, from_bonus = self.open.pop(round_id)
        if void:
            self.wallet.void(round_id)
            self.model[player][0] += from_cash
            self.model[player][1] += from_bonus
        else:
            self.wallet.settle(round_id, win)
            self._give(player, win, from_cash, from_bonus)

    @rule(player=st.sampled_from(PLAYERS), amount=st.integers(1, 300))
    def withdraw(self, player: str, amount: int) -> None:
        request_id = self._next_id()
        try:
            self.wallet.withdraw(player, request_id, amount)
        except InsufficientFunds:
            assert amount > self.model[player][0]
            return
        self.model[player][0] -= amount

    @rule(request=requests)
    def retry(self, request: Request) -> None:
        """Any earlier request, replayed at any later time, changes nothing and returns the original."""
        before = len(self.wallet.ledger.postings)
        original = self.results.get(request.request_id)
        again: Any
        if request.kind == "deposit":
            again = self.wallet.deposit(request.player, request.request_id, request.amount)
        elif request.kind == "bet":
            if original is None:
                return  # the bet was refused; retrying it is a new attempt, not a replay
            again = self.wallet.place_bet(request.player, request.request_id, request.amount)
        else:
            if original is None:
                return

            def must_not_draw() -> RoundOutcome:
                raise AssertionError("a retry must never draw again")

            replay = self.wallet.play(request.player, request.request_id, request.amount, must_not_draw)
            assert replay.duplicate
            again, original = replay.settlement, original.settlement
        assert again == original
        assert len(self.wallet.ledger.postings) == before

    @invariant()
    def model_matches_ledger(self) -> None:
        for player, (cash, bonus) in self.model.items():
            assert self.wallet.funds(player) == Funds(cash=cash, bonus=bonus)
            assert cash >= 0 and bonus >= 0

    @invariant()
    def ledger_is_sound(self) -> None:
        ledger = self.wallet.ledger
        assert ledger.verify() == []
        per_round = Counter((p.round_id, p.kind) for p in ledger.postings if p.round_id)
        assert all(n == 1 for n in per_round.values())
        assert reconcile(self.wallet.records(), ledger.postings).ok


TestWallet = WalletMachine.TestCase
TestWallet.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
