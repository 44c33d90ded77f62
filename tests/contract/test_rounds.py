"""Round records (HIST-1, HIST-2, WAL-3, INT-1) on every backend."""

from __future__ import annotations

import asyncio

import msgspec

from persistence import (
    InsufficientFunds,
    RoundChanged,
    RoundConflict,
    RoundRecord,
    RoundStatus,
    Txn,
    TxnResult,
    spin_txn,
    transfer,
)
from persistence.base import Backend
from persistence.factory import Stores
from persistence.records import PostingKind
from tests.contract.conftest import Harness

NOW = 1_700_000_000_000
OPEN, SETTLED, VOIDED = RoundStatus.OPEN, RoundStatus.SETTLED, RoundStatus.VOIDED


def rnd(round_id: str, user: str = "u1", **kw: object) -> RoundRecord:
    fields: dict[str, object] = {
        "game_id": "fruit",
        "game_version": "1.2",
        "math_version": "m96",
        "currency": "EUR",
    }
    fields.update(kw)
    return RoundRecord(round_id=round_id, user_id=user, **fields)  # type: ignore[arg-type]


async def setup_wallet(b: Backend, amount: int = 1000) -> None:
    await b.wallet.open_wallet("house", "EUR", allow_negative=True)
    await b.wallet.commit_batch(
        [Txn(key="dep", entries=transfer("house", "u1", "EUR", amount, PostingKind.DEPOSIT))], NOW
    )


async def one(b: Backend, txn: Txn, now: int = NOW) -> object:
    [out] = await b.wallet.commit_batch([txn], now)
    return out


def test_a_spin_stores_its_round_with_the_debit_atomically(harness: Harness) -> None:
    """The bet, the win and the round record are committed together (WAL-3), with every HIST-2 field."""

    async def body(b: Backend) -> None:
        await setup_wallet(b)
        r = rnd(
            "r1",
            bet=100,
            win=40,
            state=b"\x01stops",
            balance_before=1000,
            balance_after=940,
            session_id="s1",
            partner_id="p1",
        )
        out = await one(
            b, spin_txn("r1:spin", player="u1", house="house", currency="EUR", bet=100, win=40, round=r)
        )
        assert isinstance(out, TxnResult) and out.round_id == "r1"
        got = await b.rounds.get_round("r1")
        assert got is not None
        assert msgspec.structs.replace(got, created_at=0, updated_at=0, settled_at=0) == r
        assert got.created_at == got.updated_at == got.settled_at == NOW
        assert {p.round_id for p in await b.wallet.txn_postings("r1:spin")} == {"r1"}

    harness.run(body)


def test_a_refused_debit_writes_no_round(harness: Harness) -> None:
    """No round without its stake: an overdraft leaves no round behind (WAL-3)."""

    async def body(b: Backend) -> None:
        await setup_wallet(b, amount=10)
        out = await one(
            b,
            spin_txn("r2:spin", player="u1", house="house", currency="EUR", bet=100, win=0, round=rnd("r2")),
        )
        assert isinstance(out, InsufficientFunds)
        assert await b.rounds.get_round("r2") is None

    harness.run(body)


def test_free_spins_progress_then_settle_and_survive_a_restart(harness: Harness) -> None:
    """An open round is rewritten by later txns of its user, listed as open, restored after reopening, then settled."""

    async def part1(b: Backend) -> None:
        await setup_wallet(b)
        await one(
            b,
            spin_txn(
                "fs:bet",
                player="u1",
                house="house",
                currency="EUR",
                bet=100,
                win=0,
                round=rnd("fs", bet=100, status=OPEN, state=b"spins=10"),
            ),
        )
        await one(
            b,
            Txn(key="fs:step1", entries=(), round=rnd("fs", bet=100, win=30, status=OPEN, state=b"spins=9")),
            NOW + 10,
        )
        [r] = await b.rounds.open_rounds("u1")
        assert (r.round_id, r.state, r.win, r.created_at, r.updated_at) == (
            "fs",
            b"spins=9",
            30,
            NOW,
            NOW + 10,
        )

    harness.run(part1)
    if harness.kind == "memory":
        return  # nothing survives a memory backend

    async def part2(b: Backend) -> None:  # a new process: nothing in memory, load from the database
        snap = await b.load_user("u1")
        assert [r.state for r in snap.open_rounds] == [b"spins=9"]
        assert [(w.currency, w.balance) for w in snap.balances] == [("EUR", 900)]
        out = await one(
            b,
            Txn(
                key="fs:end",
                entries=transfer("house", "u1", "EUR", 80, PostingKind.WIN),
                round=rnd("fs", bet=100, win=80, status=SETTLED, state=b"done"),
            ),
            NOW + 20,
        )
        assert isinstance(out, TxnResult)
        assert await b.rounds.open_rounds("u1") == []
        done = await b.rounds.get_round("fs")
        assert done is not None and (done.status, done.settled_at, done.created_at) == (
            SETTLED,
            NOW + 20,
            NOW,
        )

    harness.run(part2, fresh=False)


def test_settled_and_foreign_rounds_are_immutable(harness: Harness) -> None:
    """Rewriting a settled or voided round, or another user's round, is a RoundConflict and posts nothing."""

    async def body(b: Backend) -> None:
        await setup_wallet(b)
        await one(b, Txn(key="a", entries=(), round=rnd("done", status=SETTLED)))
        await one(b, Txn(key="b", entries=(), round=rnd("void", status=VOIDED)))
        await one(b, Txn(key="c", entries=(), round=rnd("open", status=OPEN)))
        for key, rid, user in (("x1", "done", "u1"), ("x2", "void", "u1"), ("x3", "open", "u2")):
            out = await one(
                b,
                spin_txn(
                    key,
                    player="u1",
                    house="house",
                    currency="EUR",
                    bet=5,
                    win=0,
                    round=rnd(rid, user, status=SETTLED, win=999),
                ),
            )
            assert isinstance(out, RoundConflict), (key, out)
        assert (await b.wallet.get_balance("u1", "EUR")).balance == 1000  # type: ignore[union-attr]
        settled = await b.rounds.get_round("done")
        assert settled is not None and settled.win == 0

    harness.run(body)


def test_open_then_settle_in_the_same_batch(harness: Harness) -> None:
    """Two txns of one round in one batch: the round ends settled, created at the first."""

    async def body(b: Backend) -> None:
        await setup_wallet(b)
        outs = await b.wallet.commit_batch(
            [
                spin_txn(
                    "p:bet",
                    player="u1",
                    house="house",
                    currency="EUR",
                    bet=10,
                    win=0,
                    round=rnd("p", status=OPEN, bet=10),
                ),
                Txn(
                    key="p:win",
                    entries=transfer("house", "u1", "EUR", 50, PostingKind.WIN),
                    round=rnd("p", status=SETTLED, bet=10, win=50),
                ),
            ],
            NOW,
        )
        assert all(isinstance(o, TxnResult) for o in outs)
        r = await b.rounds.get_round("p")
        assert r is not None and (r.status, r.win) == (SETTLED, 50)

    harness.run(body)


def test_history_is_newest_first_and_pages_by_time(harness: Harness) -> None:
    """After 12 rounds, the last 10 come newest first; ``before`` gives the older ones (HIST-1)."""

    async def body(b: Backend) -> None:
        await setup_wallet(b)
        for i in range(12):
            await one(b, Txn(key=f"h{i}", entries=(), round=rnd(f"h{i:02d}")), NOW + i)
        await one(b, Txn(key="other", entries=(), round=rnd("o1", "u2")), NOW)
        page = await b.rounds.history("u1", limit=10)
        assert [r.round_id for r in page] == [f"h{i:02d}" for i in range(11, 1, -1)]
        older = await b.rounds.history("u1", limit=10, before=page[-1].created_at)
        assert [r.round_id for r in older] == ["h01", "h00"]
        assert await b.rounds.history("nobody") == []

    harness.run(body)


def test_pipelined_steps_of_one_round_apply_in_order(harness: Harness) -> None:
    """Steps of one round submitted without waiting, with two batches in flight, land in
    order: the open steps rewrite the round, the last one settles it (no RoundConflict)."""
    from persistence import WriterConfig

    cfg = WriterConfig(max_delay_ms=0, max_batch=1, max_inflight=2, max_queue=1000, commit_timeout_s=20.0)

    async def body(s: Stores) -> None:
        await setup_wallet(s.backend, 10_000)
        txns = []
        for r in range(10):
            for step, status in enumerate((OPEN, OPEN, SETTLED)):
                txns.append(
                    spin_txn(
                        f"r{r}:{step}",
                        player="u1",
                        house="house",
                        currency="EUR",
                        bet=10 if step == 0 else 0,
                        win=5,
                        round=rnd(f"r{r}", status=status, win=5 * (step + 1)),
                    )
                )
        outs = await asyncio.gather(*(s.writer.submit(t) for t in txns), return_exceptions=True)
        assert all(isinstance(o, TxnResult) for o in outs), [o for o in outs if not isinstance(o, TxnResult)]
        for r in range(10):
            got = await s.rounds.get_round(f"r{r}")
            assert got is not None and got.status is SETTLED and got.win == 15

    harness.run_stores(body, writer=cfg)


def test_stale_open_rounds_of_every_user_by_last_write_paged(harness: Harness) -> None:
    """INT-4's sweep: open rounds of a game, of any user, last written before a time,
    oldest write first; settled rounds, other games and recent writes are left out; pages by
    (updated_at, round_id) without skipping or repeating a round of the same millisecond."""

    async def body(b: Backend) -> None:
        opened = [  # (round, user, game, commit time)
            ("a", "u1", "pick", NOW),
            ("b", "u2", "pick", NOW + 5),
            ("c", "u3", "pick", NOW + 5),
            ("d", "u1", "other", NOW + 1),
            ("e", "u2", "pick", NOW + 50),  # written too recently
            ("f", "u3", "pick2", NOW + 7),
        ]
        for rid, user, game, at in opened:
            round_ = rnd(rid, user, game_id=game, status=OPEN, state=b"s")
            assert isinstance(await one(b, Txn(key=f"{rid}:0", entries=(), round=round_), at), TxnResult)
        settled = rnd("a", "u1", game_id="pick", status=SETTLED, state=b"done")
        assert isinstance(await one(b, Txn(key="a:end", entries=(), round=settled), NOW + 2), TxnResult)
        stale = b.rounds.stale_open_rounds
        rows = await stale("pick", NOW + 50)
        assert [(r.round_id, r.updated_at) for r in rows] == [("b", NOW + 5), ("c", NOW + 5)]
        first = await stale("pick", NOW + 50, limit=1)
        assert [r.round_id for r in first] == ["b"]
        rest = await stale("pick", NOW + 51, after=(NOW + 5, "b"), limit=5)
        assert [r.round_id for r in rest] == ["c", "e"]
        assert [r.round_id for r in await stale("pick2", NOW + 50)] == ["f"]
        assert await stale("pick", NOW + 5) == []  # before is exclusive
        assert await stale("nothing", NOW + 100) == []

    harness.run(body)


def test_a_round_written_after_the_state_a_txn_was_computed_from_is_not_overwritten(
    harness: Harness,
) -> None:
    """``round_base``: a transaction computed from a stored round is refused (RoundChanged,
    nothing posted) when the round was written since, also by the batch it is in."""

    async def body(b: Backend) -> None:
        await setup_wallet(b)
        opened = spin_txn(
            "p:bet", player="u1", house="house", currency="EUR", bet=100, win=0,
            round=rnd("p", bet=100, status=OPEN, state=b"boxes="),
        )  # fmt: skip
        assert isinstance(await one(b, opened), TxnResult)
        base = await b.rounds.get_round("p")
        assert base is not None and base.updated_at == NOW
        step = Txn(
            key="p:1", entries=(), round=rnd("p", bet=100, status=OPEN, state=b"boxes=3"), round_base=NOW
        )
        assert isinstance(await one(b, step, NOW + 5), TxnResult)
        stale = Txn(
            key="p:auto",
            entries=transfer("house", "u1", "EUR", 70, PostingKind.WIN),
            round=rnd("p", bet=100, win=70, status=SETTLED, state=b"boxes=1,2"),
            round_base=NOW,  # computed from the state before p:1
        )
        out = await one(b, stale, NOW + 6)
        assert isinstance(out, RoundChanged) and isinstance(out, RoundConflict)
        rec = await b.rounds.get_round("p")
        assert rec is not None and (rec.state, rec.status, rec.updated_at) == (b"boxes=3", OPEN, NOW + 5)
        assert (await b.wallet.get_balance("u1", "EUR")).balance == 900  # type: ignore[union-attr]
        assert await b.wallet.get_txn("p:auto") is None
        # two decisions from the same read in one batch: the first is taken, the second refused
        end = rnd("p", bet=100, win=50, status=SETTLED, state=b"boxes=3,4")
        first = Txn(
            key="p:2",
            entries=transfer("house", "u1", "EUR", 50, PostingKind.WIN),
            round=end,
            round_base=NOW + 5,
        )
        second = Txn(
            key="p:auto2",
            entries=transfer("house", "u1", "EUR", 70, PostingKind.WIN),
            round=end,
            round_base=NOW + 5,
        )
        r1, r2 = await b.wallet.commit_batch([first, second], NOW + 9)
        assert isinstance(r1, TxnResult) and isinstance(r2, RoundConflict)
        assert (await b.wallet.get_balance("u1", "EUR")).balance == 950  # type: ignore[union-attr]
        assert (await b.wallet.get_txn("p:2")) is not None and await b.wallet.get_txn("p:auto2") is None

    harness.run(body)
