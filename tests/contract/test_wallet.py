"""Money contract (WAL-1..WAL-5): the same behaviour on memory, SQLite and MySQL."""

from __future__ import annotations

import asyncio
import random

import pytest

from persistence import (
    Entry,
    InsufficientFunds,
    PostingKind,
    StoreError,
    Txn,
    TxnResult,
    spin_txn,
    transfer,
)
from persistence.base import Backend
from persistence.factory import Stores
from tests.contract.conftest import Harness

NOW = 1_700_000_000_000
DEP = PostingKind.DEPOSIT


async def funded(b: Backend, user: str = "u1", amount: int = 1000) -> None:
    await b.wallet.open_wallet("house", "EUR", allow_negative=True)
    [out] = await b.wallet.commit_batch(
        [Txn(key=f"dep:{user}", entries=transfer("house", user, "EUR", amount, DEP))], NOW
    )
    assert isinstance(out, TxnResult)


async def balance(b: Backend, account: str, currency: str = "EUR") -> int | None:
    wb = await b.wallet.get_balance(account, currency)
    return None if wb is None else wb.balance


async def assert_ledger_consistent(b: Backend) -> None:
    assert all(v == 0 for v in (await b.wallet.ledger_totals()).values())
    assert await b.wallet.balance_mismatches() == []


def test_credit_creates_the_account_and_posts_both_legs(harness: Harness) -> None:
    """A deposit from the house creates the player's balance and writes two postings that sum to zero."""

    async def body(b: Backend) -> None:
        await funded(b)
        assert await balance(b, "u1") == 1000
        assert await balance(b, "house") == -1000
        legs = await b.wallet.txn_postings("dep:u1")
        assert [(p.seq, p.account, p.amount, p.kind) for p in legs] == [
            (0, "house", -1000, DEP),
            (1, "u1", 1000, DEP),
        ]
        assert (await b.wallet.postings("u1", "EUR"))[0].txn_key == "dep:u1"
        assert await b.wallet.ledger_totals() == {"EUR": 0}
        await assert_ledger_consistent(b)

    harness.run(body)


def test_open_wallet_is_idempotent(harness: Harness) -> None:
    """Opening a wallet twice keeps the first one and its flag."""

    async def body(b: Backend) -> None:
        first = await b.wallet.open_wallet("house", "EUR", allow_negative=True)
        again = await b.wallet.open_wallet("house", "EUR")
        assert first.allow_negative and again.allow_negative and again.balance == 0
        assert [w.currency for w in await b.wallet.list_balances("house")] == ["EUR"]
        assert await b.wallet.get_balance("nobody", "EUR") is None

    harness.run(body)


def test_same_key_twice_posts_once_and_returns_the_original_result(harness: Harness) -> None:
    """A retried key posts nothing and returns the stored result and reply (WAL-2)."""

    async def body(b: Backend) -> None:
        await funded(b)
        t = spin_txn("r1:spin", player="u1", house="house", currency="EUR", bet=100, win=0, reply=b"first")
        [first] = await b.wallet.commit_batch([t], NOW)
        changed = spin_txn(
            "r1:spin", player="u1", house="house", currency="EUR", bet=999, win=0, reply=b"second"
        )
        [again] = await b.wallet.commit_batch([changed], NOW + 5)
        assert isinstance(first, TxnResult) and isinstance(again, TxnResult)
        assert not first.duplicate and again.duplicate
        assert (again.reply, again.balances, again.committed_at) == (b"first", first.balances, NOW)
        assert await balance(b, "u1") == 900
        assert len(await b.wallet.txn_postings("r1:spin")) == 2
        stored = await b.wallet.get_txn("r1:spin")
        assert stored is not None and stored.reply == b"first" and stored.duplicate

    harness.run(body)


def test_duplicates_in_one_batch_resolve_to_the_first(harness: Harness) -> None:
    """Three copies of a key in one batch post once; the copies are duplicates of the first."""

    async def body(b: Backend) -> None:
        await funded(b)
        t = spin_txn("r2:spin", player="u1", house="house", currency="EUR", bet=100, win=300, reply=b"x")
        outs = await b.wallet.commit_batch([t, t, t], NOW)
        assert all(isinstance(o, TxnResult) for o in outs)
        assert [o.duplicate for o in outs if isinstance(o, TxnResult)] == [False, True, True]
        assert await balance(b, "u1") == 1200
        assert len(await b.wallet.txn_postings("r2:spin")) == 4
        await assert_ledger_consistent(b)

    harness.run(body)


def test_overdraft_is_rejected_and_posts_nothing(harness: Harness) -> None:
    """A bet above the balance is refused with InsufficientFunds; nothing is written (WAL-4)."""

    async def body(b: Backend) -> None:
        await funded(b, amount=50)
        [out] = await b.wallet.commit_batch(
            [spin_txn("r3:spin", player="u1", house="house", currency="EUR", bet=51, win=0)], NOW
        )
        assert isinstance(out, InsufficientFunds)
        assert (out.account, out.balance, out.amount) == ("u1", 50, -51)
        assert await balance(b, "u1") == 50
        assert await b.wallet.txn_postings("r3:spin") == []
        assert await b.wallet.get_txn("r3:spin") is None

    harness.run(body)


def test_a_debit_never_creates_an_account(harness: Harness) -> None:
    """Debiting an account that does not exist is an overdraft from zero."""

    async def body(b: Backend) -> None:
        await b.wallet.open_wallet("house", "EUR", allow_negative=True)
        [out] = await b.wallet.commit_batch(
            [Txn(key="w1", entries=transfer("ghost", "house", "EUR", 1, DEP))], NOW
        )
        assert isinstance(out, InsufficientFunds)
        assert await b.wallet.get_balance("ghost", "EUR") is None

    harness.run(body)


def test_a_bet_must_be_covered_before_its_win(harness: Harness) -> None:
    """Entries apply in order: a bet above the balance fails even if the win would cover it."""

    async def body(b: Backend) -> None:
        await funded(b, amount=10)
        [out] = await b.wallet.commit_batch(
            [spin_txn("r4:spin", player="u1", house="house", currency="EUR", bet=20, win=100)], NOW
        )
        assert isinstance(out, InsufficientFunds)
        assert await balance(b, "u1") == 10

    harness.run(body)


def test_the_house_pays_wins_in_full_even_below_zero(harness: Harness) -> None:
    """With the house at 0 a win is still credited in full and the house goes negative (WAL-5)."""

    async def body(b: Backend) -> None:
        await b.wallet.open_wallet("house", "EUR", allow_negative=True)
        await b.wallet.open_wallet("u1", "EUR")
        [out] = await b.wallet.commit_batch(
            [Txn(key="r5:win", entries=transfer("house", "u1", "EUR", 5000, PostingKind.WIN))], NOW
        )
        assert isinstance(out, TxnResult)
        assert out.balance("u1", "EUR") == 5000
        assert out.balance("house", "EUR") is None  # house accounts are not reported
        assert await balance(b, "house") == -5000

    harness.run(body)


def test_one_rejected_txn_does_not_fail_its_batch(harness: Harness) -> None:
    """In one batch, an overdraft is refused and every other txn commits."""

    async def body(b: Backend) -> None:
        await funded(b, "u1", 100)
        await funded(b, "u2", 100)
        batch = [
            spin_txn("a", player="u1", house="house", currency="EUR", bet=60, win=0),
            spin_txn("b", player="u1", house="house", currency="EUR", bet=60, win=0),  # only 40 left
            spin_txn("c", player="u2", house="house", currency="EUR", bet=100, win=20),
            spin_txn("d", player="u1", house="house", currency="EUR", bet=40, win=0),
        ]
        outs = await b.wallet.commit_batch(batch, NOW)
        assert [type(o).__name__ for o in outs] == [
            "TxnResult",
            "InsufficientFunds",
            "TxnResult",
            "TxnResult",
        ]
        first = outs[0]
        assert isinstance(first, TxnResult) and first.balance("u1", "EUR") == 40
        assert (await balance(b, "u1"), await balance(b, "u2")) == (0, 20)
        await assert_ledger_consistent(b)

    harness.run(body)


def test_batch_results_carry_balances_after_each_txn(harness: Harness) -> None:
    """Each result reports the balances right after its own txn, in batch order."""

    async def body(b: Backend) -> None:
        await funded(b)
        outs = await b.wallet.commit_batch(
            [spin_txn(f"s{i}", player="u1", house="house", currency="EUR", bet=100, win=0) for i in range(3)],
            NOW,
        )
        assert [o.balance("u1", "EUR") for o in outs if isinstance(o, TxnResult)] == [900, 800, 700]

    harness.run(body)


def test_multi_currency_txn_must_balance_per_currency(harness: Harness) -> None:
    """A txn may move two currencies at once; each sums to zero."""

    async def body(b: Backend) -> None:
        for cur in ("EUR", "COIN"):
            await b.wallet.open_wallet("house", cur, allow_negative=True)
        t = Txn(
            key="fx",
            entries=(*transfer("house", "u1", "EUR", 5, DEP), *transfer("house", "u1", "COIN", 500, DEP)),
        )
        [out] = await b.wallet.commit_batch([t], NOW)
        assert isinstance(out, TxnResult)
        assert [(w.currency, w.balance) for w in await b.wallet.list_balances("u1")] == [
            ("COIN", 500),
            ("EUR", 5),
        ]
        assert await b.wallet.ledger_totals() == {"COIN": 0, "EUR": 0}

    harness.run(body)


def test_random_batches_match_a_reference_model(harness: Harness) -> None:
    """300 random bets, wins and retries in random batches agree with a dict model; the ledger stays balanced."""
    rng = random.Random(7)
    users = [f"p{i}" for i in range(6)]

    async def body(b: Backend) -> None:
        await b.wallet.open_wallet("house", "EUR", allow_negative=True)
        model = {u: 0 for u in users}
        seen: dict[str, tuple[str, int]] = {}
        txns: list[Txn] = []
        for i in range(300):
            u = rng.choice(users)
            if rng.random() < 0.1 and seen:
                key = rng.choice(sorted(seen))  # a retry of an earlier key
                u, amount = seen[key]
            else:
                key, amount = f"k{i}", rng.randint(-300, 400)
            if amount >= 0:
                txns.append(Txn(key=key, entries=transfer("house", u, "EUR", amount, DEP)))
            else:
                txns.append(spin_txn(key, player=u, house="house", currency="EUR", bet=-amount, win=0))
            seen.setdefault(key, (u, amount))
        done: set[str] = set()
        i = 0
        while i < len(txns):
            n = rng.randint(1, 40)
            outs = await b.wallet.commit_batch(txns[i : i + n], NOW + i)
            for t, o in zip(txns[i : i + n], outs, strict=True):
                u, amount = seen[t.key]
                if t.key in done:
                    assert isinstance(o, TxnResult) and o.duplicate
                elif model[u] + amount < 0:
                    assert isinstance(o, InsufficientFunds)
                else:
                    assert isinstance(o, TxnResult) and not o.duplicate
                    model[u] += amount
                    done.add(t.key)
            i += n
        for u in users:
            assert (await balance(b, u) or 0) == model[u]
        await assert_ledger_consistent(b)

    harness.run(body)


def test_a_row_the_database_refuses_fails_only_its_txn(harness: Harness) -> None:
    """A txn whose round row the database refuses (out-of-range bet) fails alone; its batch commits."""
    if harness.kind == "memory":
        pytest.skip("the memory backend has no column limits")
    from persistence import RoundRecord

    async def body(s: Stores) -> None:
        await s.wallet.open_wallet("house", "EUR", allow_negative=True)
        bad_round = RoundRecord(round_id="bad", user_id="u1", game_id="g", bet=2**70)
        good = [
            s.writer.submit(Txn(key=f"ok{i}", entries=transfer("house", "u1", "EUR", 10, DEP)))
            for i in range(6)
        ]
        bad = s.writer.submit(
            Txn(key="bad", entries=transfer("house", "u1", "EUR", 10, DEP), round=bad_round)
        )
        more = [
            s.writer.submit(Txn(key=f"ok{i}", entries=transfer("house", "u1", "EUR", 10, DEP)))
            for i in range(6, 9)
        ]
        results = await asyncio.gather(*good, bad, *more, return_exceptions=True)
        assert isinstance(results[6], StoreError)
        assert all(isinstance(r, TxnResult) for i, r in enumerate(results) if i != 6)
        assert await s.balance("u1", "EUR") == 90
        assert await s.wallet.get_txn("bad") is None

    harness.run_stores(body)


def test_ten_concurrent_copies_of_a_spin_debit_and_credit_once(harness: Harness) -> None:
    """The same spin fired 10 times at once through the writer: 1 debit, 1 credit, 10 identical replies (WAL-2)."""

    async def body(s: Stores) -> None:
        await s.wallet.open_wallet("house", "EUR", allow_negative=True)
        await s.commit(Txn(key="dep", entries=transfer("house", "u1", "EUR", 1000, DEP)))
        t = spin_txn(
            "r9:spin", player="u1", house="house", currency="EUR", bet=100, win=250, reply=b"outcome"
        )
        results = await asyncio.gather(*[s.commit(t) for _ in range(10)])
        assert [r.duplicate for r in results].count(False) == 1
        assert {r.reply for r in results} == {b"outcome"}
        assert {r.balance("u1", "EUR") for r in results} == {1150}
        again = await s.commit(t)  # after the batch: from the database
        assert again.duplicate and again.balance("u1", "EUR") == 1150
        kinds = sorted(
            (p.kind, p.amount) for p in await s.wallet.txn_postings("r9:spin") if p.account == "u1"
        )
        assert kinds == [(PostingKind.BET, -100), (PostingKind.WIN, 250)]

    harness.run_stores(body)


def test_100_parallel_bets_of_a_fiftieth_of_the_balance(harness: Harness) -> None:
    """With balance B, 100 parallel bets of B/50 through the writer: exactly 50 succeed (WAL-4)."""

    async def body(s: Stores) -> None:
        await s.wallet.open_wallet("house", "EUR", allow_negative=True)
        await s.commit(Txn(key="dep", entries=transfer("house", "u1", "EUR", 5000, DEP)))
        bets = [
            spin_txn(f"b{i}", player="u1", house="house", currency="EUR", bet=100, win=0) for i in range(100)
        ]
        results = await asyncio.gather(*[s.commit(t) for t in bets], return_exceptions=True)
        assert sum(isinstance(r, TxnResult) for r in results) == 50
        assert all(isinstance(r, TxnResult | InsufficientFunds) for r in results)
        assert await s.balance("u1", "EUR") == 0
        assert (await s.wallet.get_balance("u1", "EUR")) is not None

    harness.run_stores(body)


def test_zero_amount_entries_and_empty_txns_are_allowed(harness: Harness) -> None:
    """A free round with no money movement still commits (and is idempotent)."""

    async def body(b: Backend) -> None:
        outs = await b.wallet.commit_batch(
            [Txn(key="free", entries=()), Txn(key="z", entries=(Entry("u9", "EUR", 0, DEP),))], NOW
        )
        assert all(isinstance(o, TxnResult) for o in outs)
        [again] = await b.wallet.commit_batch([Txn(key="free", entries=())], NOW)
        assert isinstance(again, TxnResult) and again.duplicate

    harness.run(body)


def test_two_writers_on_one_database_never_post_a_key_twice(harness: Harness) -> None:
    """Two workers' writers race on the same keys, players and house: every key posts once."""
    if harness.kind == "memory":
        pytest.skip("two memory backends share nothing")
    from persistence.factory import open_stores
    from tests.contract.conftest import run

    async def body() -> None:
        a = await open_stores(harness.url)
        b = await open_stores(harness.url)
        try:
            await a.backend.clear()
            await a.wallet.open_wallet("house", "EUR", allow_negative=True)
            for u in range(5):
                await a.commit(Txn(key=f"dep{u}", entries=transfer("house", f"p{u}", "EUR", 1000, DEP)))
            spins = [
                spin_txn(f"s{i}", player=f"p{i % 5}", house="house", currency="EUR", bet=10, win=0)
                for i in range(60)
            ]
            results = await asyncio.gather(
                *[a.commit(t) for t in spins], *[b.commit(t) for t in reversed(spins)], return_exceptions=True
            )
            assert all(isinstance(r, TxnResult) for r in results), [
                r for r in results if not isinstance(r, TxnResult)
            ]
            assert sum(not r.duplicate for r in results if isinstance(r, TxnResult)) == 60
            assert [len(await a.wallet.txn_postings(t.key)) for t in spins] == [2] * len(spins)
            assert [await balance(a.backend, f"p{u}") for u in range(5)] == [880] * 5
            await assert_ledger_consistent(a.backend)
        finally:
            await a.close()
            await b.close()

    run(body())


@pytest.mark.parametrize("max_batch", [1, 3])
def test_pipelined_batches_keep_each_accounts_order(harness: Harness, max_batch: int) -> None:
    """With two batches in flight, one account's transactions submitted without waiting
    still apply in submission order: outcomes and balances match a sequential model."""
    from persistence import WriterConfig

    cfg = WriterConfig(
        max_delay_ms=0, max_batch=max_batch, max_inflight=2, max_queue=1000, commit_timeout_s=20.0
    )
    rng = random.Random(7)

    async def body(s: Stores) -> None:
        await s.wallet.open_wallet("house", "EUR", allow_negative=True)
        txns: list[Txn] = []
        for i in range(120):
            user = f"p{i % 3}"
            if rng.random() < 0.3:
                txns.append(Txn(key=f"d{i}", entries=transfer("house", user, "EUR", 70, DEP)))
            else:
                txns.append(spin_txn(f"s{i}", player=user, house="house", currency="EUR", bet=50, win=0))
        outs = await asyncio.gather(*(s.writer.submit(t) for t in txns), return_exceptions=True)
        model: dict[str, int] = {}
        for t, out in zip(txns, outs, strict=True):
            user = next(e.account for e in t.entries if e.account != "house")
            have = model.get(user, 0)
            want = have + sum(e.amount for e in t.entries if e.account == user)
            if want < 0:
                assert isinstance(out, InsufficientFunds), (t.key, out)
            else:
                assert isinstance(out, TxnResult), (t.key, out)
                assert out.balance(user, "EUR") == want, t.key
                model[user] = want
        for user, want in model.items():
            assert await balance(s.backend, user) == want
        assert await s.wallet.balance_mismatches() == []

    harness.run_stores(body, writer=cfg)
