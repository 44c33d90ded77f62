"""Ledger and wallet rules: balanced integer postings, idempotency, no negative players."""

from __future__ import annotations

import msgspec
import pytest

from games.ledger import (
    Entry,
    IdempotencyConflict,
    InsufficientFunds,
    Ledger,
    LedgerError,
    Posting,
    cash_account,
    house_account,
    reconcile,
)
from games.rng import RngUnavailable
from games.round import Bet, RoundOutcome, make_outcome
from games.wallet import Funds, Wallet, round_id_for, split_stake, split_win

P, CUR = "acme", "EUR"


def _posting(key: str, *entries: tuple[str, int], kind: str = "bet") -> Posting:
    return Posting(key=key, kind=kind, currency=CUR, entries=tuple(Entry(a, v) for a, v in entries))  # type: ignore[arg-type]


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


def _wallet(cash: int = 0) -> Wallet:
    wallet = Wallet(Ledger(), P, CUR)
    if cash:
        wallet.deposit("alice", "dep-0", cash)
    return wallet


@pytest.mark.parametrize(
    "entries",
    [
        (("a", 5),),
        (("a", 5), ("b", -4)),
        (("a", 1.0), ("b", -1.0)),
    ],
)
def test_unbalanced_or_float_postings_are_refused(entries: tuple[tuple[str, object], ...]) -> None:
    """A posting needs two or more integer entries summing to zero (WAL-1)."""
    with pytest.raises(LedgerError):
        Ledger().post(_posting("k", *entries))  # type: ignore[arg-type]


def test_player_accounts_never_go_negative_but_house_may() -> None:
    """A player debit beyond the balance is refused; the house pays wins in full (WAL-4, WAL-5)."""
    ledger = Ledger()
    alice = cash_account(P, "alice")
    with pytest.raises(InsufficientFunds):
        ledger.post(_posting("k1", (alice, -1), (house_account(P), 1)))
    ledger.post(_posting("k2", (house_account(P), -500), (alice, 500), kind="win"))
    assert ledger.balance(house_account(P), CUR) == -500
    assert ledger.balance(alice, CUR) == 500
    assert ledger.verify() == []


def test_same_key_returns_original_and_different_content_conflicts() -> None:
    """Replaying a key posts nothing; reusing it for other content is an error (WAL-2)."""
    ledger = Ledger()
    posting = _posting("k", ("x/external/a", -3), ("y", 3), kind="deposit")
    assert ledger.post(posting) == (posting, False)
    assert ledger.post(posting) == (posting, True)
    assert len(ledger.postings) == 1
    with pytest.raises(IdempotencyConflict):
        ledger.post(_posting("k", ("x/external/a", -4), ("y", 4), kind="deposit"))


def test_verify_detects_a_tampered_cache() -> None:
    """Cached balances are checked against the entries."""
    ledger = Ledger()
    ledger.post(_posting("k", (house_account(P), -2), (cash_account(P, "a"), 2), kind="win"))
    ledger._balances[(cash_account(P, "a"), CUR)] += 1
    assert ledger.verify()


def test_stake_comes_from_cash_first_and_wins_return_proportionally() -> None:
    """Documented spending order: cash, then bonus; win split by stake source, bonus rounded down."""
    assert split_stake(10, Funds(cash=4, bonus=20)) == (4, 6)
    assert split_stake(10, Funds(cash=40, bonus=20)) == (10, 0)
    with pytest.raises(InsufficientFunds):
        split_stake(10, Funds(cash=4, bonus=5))
    assert split_win(25, 4, 6) == (10, 15)
    assert split_win(7, 1, 2) == (3, 4)
    assert split_win(0, 4, 6) == (0, 0)


def test_play_retry_returns_original_and_posts_nothing() -> None:
    """Ten retries of one spin request give one debit and one credit (WAL-2)."""
    wallet = _wallet(100)
    draws = []

    def draw() -> RoundOutcome:
        draws.append(1)
        return _outcome(10, 25)

    results = [wallet.play("alice", "req-1", 10, draw) for _ in range(10)]
    assert len(draws) == 1
    assert [r.duplicate for r in results] == [False] + [True] * 9
    assert wallet.funds("alice") == Funds(cash=115, bonus=0)
    keys = [p.key for p in wallet.ledger.postings]
    rid = round_id_for(P, "alice", "req-1")
    assert keys.count(f"{rid}:bet") == 1 and keys.count(f"{rid}:win") == 1


def test_insufficient_funds_draws_nothing() -> None:
    """A bet that cannot be covered is refused before any outcome is drawn."""
    wallet = _wallet(5)

    def draw() -> RoundOutcome:
        raise AssertionError("must not draw")

    with pytest.raises(InsufficientFunds):
        wallet.play("alice", "req", 10, draw)
    assert wallet.funds("alice").cash == 5


def test_void_refunds_and_blocks_settlement() -> None:
    """A voided round refunds its stake once; it can no longer be settled (INT-3)."""
    wallet = _wallet(50)
    receipt = wallet.place_bet("alice", "r", 20)
    wallet.void(receipt.round_id)
    wallet.void(receipt.round_id)
    assert wallet.funds("alice").cash == 50
    with pytest.raises(LedgerError):
        wallet.settle(receipt.round_id, 5)
    settled = wallet.place_bet("alice", "s", 20)
    wallet.settle(settled.round_id, 0)
    with pytest.raises(LedgerError):
        wallet.void(settled.round_id)


def test_reconciliation_reports_an_injected_mismatch() -> None:
    """Rounds and ledger agree; a round record with a wrong win is reported (WAL-6)."""
    wallet = _wallet(100)
    wallet.play("alice", "a", 10, lambda: _outcome(10, 30))
    wallet.place_bet("alice", "b", 5)
    assert reconcile(wallet.records(), wallet.ledger.postings).ok
    records = wallet.records()
    wrong = [msgspec.structs.replace(records[0], win=31), *records[1:]]
    report = reconcile(wrong, wallet.ledger.postings)
    assert not report.ok
    assert report.mismatches == (f"{P}:{CUR} win: rounds 31 != ledger 30",)


def test_withdraw_never_overdraws() -> None:
    """Withdrawals are limited to cash (bonus funds are not withdrawable)."""
    wallet = _wallet(30)
    wallet.credit_bonus("alice", "bonus-1", 50)
    with pytest.raises(InsufficientFunds):
        wallet.withdraw("alice", "w", 31)
    wallet.withdraw("alice", "w2", 30)
    assert wallet.funds("alice") == Funds(cash=0, bonus=50)


def test_hundred_concurrent_bets_of_a_fiftieth_allow_fifty() -> None:
    """100 open bets of balance/50 each: exactly 50 are accepted, the rest refused (WAL-4)."""
    wallet = _wallet(100)
    accepted = 0
    for i in range(100):
        try:
            wallet.place_bet("alice", f"c{i}", 2)
            accepted += 1
        except InsufficientFunds:
            pass
    assert accepted == 50
    assert wallet.funds("alice") == Funds(cash=0, bonus=0)


def test_rng_failure_refunds_the_stake() -> None:
    """If the draw fails (RNG unavailable) the stake is refunded and the error surfaces (RNG-8)."""
    wallet = _wallet(40)

    def broken() -> RoundOutcome:
        raise RngUnavailable("entropy source down")

    with pytest.raises(RngUnavailable):
        wallet.play("alice", "req", 10, broken)
    assert wallet.funds("alice").cash == 40
    assert [r.status for r in wallet.records()] == ["voided"]
    assert reconcile(wallet.records(), wallet.ledger.postings).ok
