"""The group-commit writer: batching, acknowledgement after commit, bounds, errors and recovery."""

from __future__ import annotations

import asyncio
import time

import pytest
import uvloop

from persistence import (
    InsufficientFunds,
    InvalidTxn,
    StoreBusy,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    Txn,
    TxnResult,
    WriterConfig,
)
from persistence.records import Entry, PostingKind
from persistence.writer import GroupCommitWriter
from tests.unit.persistence.conftest import FakeDatabase, bet, deposit, run


def make(db: FakeDatabase, **cfg: float) -> GroupCommitWriter:
    defaults: dict[str, float] = {"probe_interval_s": 0.01, "max_probe_interval_s": 0.02}
    defaults.update(cfg)
    return GroupCommitWriter(db.commit, db.ping, config=WriterConfig(**defaults))  # type: ignore[arg-type]


def test_concurrent_submissions_share_one_batch() -> None:
    """Txns submitted within max_delay are committed in one database transaction."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        w = make(db, max_delay_ms=5)
        results = await asyncio.gather(*[w.commit(deposit(f"d{i}", f"u{i}")) for i in range(50)])
        assert [r.key for r in results] == [f"d{i}" for i in range(50)]
        assert len(db.batches) == 1 and len(db.batches[0]) == 50
        assert (w.stats.batches, w.stats.committed) == (1, 50)
        await w.close()

    run(body())


def test_batches_never_exceed_max_batch() -> None:
    """A burst larger than max_batch is split into full batches without waiting."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        w = make(db, max_delay_ms=1000, max_batch=16, max_queue=64)
        t0 = time.monotonic()
        await asyncio.gather(*[w.commit(deposit(f"d{i}", f"u{i}")) for i in range(40)])
        assert [len(b) for b in db.batches] == [16, 16, 8]
        assert time.monotonic() - t0 < 2.0  # the full batches did not wait for the delay
        await w.close()

    run(body())


def test_a_lone_txn_waits_at_most_max_delay() -> None:
    """With nobody to batch with, a txn is committed after about max_delay_ms; 0 means at once."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        for delay_ms, bound in ((20.0, 0.2), (0.0, 0.05)):
            w = make(db, max_delay_ms=delay_ms)
            t0 = time.monotonic()
            await w.commit(deposit(f"d{delay_ms}"))
            elapsed = time.monotonic() - t0
            assert delay_ms / 1000 * 0.9 <= elapsed < bound
            await w.close()

    run(body())


def test_a_waiting_batch_arms_one_timer_on_uvloop() -> None:
    """uvloop rounds timers to whole milliseconds: a batch's wait is one timer, and the
    batch goes when it fires (it used to be re-armed until loop.time() passed, a busy
    wait of ~17 timers and ~300 µs of CPU per 2 ms batch)."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        w = make(db, max_delay_ms=2.5)
        for i in range(20):
            await w.commit(deposit(f"d{i}"))
        assert (w.stats.batches, w.stats.lingers) == (20, 20)
        await w.close()
        idle = make(db, max_delay_ms=0)
        await idle.commit(deposit("now"))
        assert idle.stats.lingers == 0
        await idle.close()

    uvloop.run(body())


def test_nothing_is_acknowledged_before_the_commit_returns() -> None:
    """While the database has not answered, every future is still pending."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        db.gate.clear()
        w = make(db, max_delay_ms=0)
        futures = [w.submit(deposit(f"d{i}", f"u{i}")) for i in range(10)]
        await asyncio.sleep(0.05)
        assert db.batches and not any(f.done() for f in futures)
        db.gate.set()
        assert all(isinstance(r, TxnResult) for r in await asyncio.gather(*futures))
        await w.close()

    run(body())


def test_a_full_queue_refuses_at_once() -> None:
    """Beyond max_queue waiting txns, submit raises StoreBusy and queues nothing."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        db.gate.clear()
        w = make(db, max_delay_ms=0, max_batch=2, max_queue=4)
        first = [w.submit(deposit(f"a{i}", f"u{i}")) for i in range(2)]
        await asyncio.sleep(0.01)  # the first batch is in flight
        queued = [w.submit(deposit(f"b{i}", f"v{i}")) for i in range(4)]
        with pytest.raises(StoreBusy):
            w.submit(deposit("c0"))
        assert w.queued == 4 and w.stats.busy == 1
        db.gate.set()
        await asyncio.gather(*first, *queued)
        assert "c0" not in {k for b in db.batches for k in b}
        await w.close()

    run(body())


def test_in_flight_duplicates_share_the_first_outcome() -> None:
    """A key submitted again while queued or in flight resolves with the first result, marked duplicate."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        db.gate.clear()
        w = make(db, max_delay_ms=0)
        first = w.submit(deposit("d1"))
        await asyncio.sleep(0.01)
        copies = [w.submit(deposit("d1")) for _ in range(3)]
        db.gate.set()
        results = await asyncio.gather(first, *copies)
        assert [r.duplicate for r in results] == [False, True, True, True]
        assert {r.balance("u1", "EUR") for r in results} == {1000}
        assert db.batches == [["d1"]]
        await w.close()

    run(body())


def test_rejections_are_per_txn() -> None:
    """An overdraft fails its own future with InsufficientFunds; its batch neighbours commit."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        w = make(db, max_delay_ms=5)
        outs = await asyncio.gather(
            w.commit(deposit("d1", amount=15)),
            w.commit(bet("b1")),
            w.commit(bet("b2")),
            return_exceptions=True,
        )
        assert [type(o) for o in outs] == [TxnResult, TxnResult, InsufficientFunds]
        assert w.stats.rejected == 1
        await w.close()

    run(body())


def test_a_refused_row_is_isolated_by_bisection() -> None:
    """When the database refuses one txn's rows, the batch is split until only that txn fails."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        db.refuse = {"d13"}
        w = make(db, max_delay_ms=5, max_batch=32)
        outs = await asyncio.gather(
            *[w.commit(deposit(f"d{i}", f"u{i}")) for i in range(32)], return_exceptions=True
        )
        assert [i for i, o in enumerate(outs) if not isinstance(o, TxnResult)] == [13]
        assert isinstance(outs[13], StoreError)
        assert len(db.batches) <= 1 + 2 * 5  # log2(32) levels of halves
        await w.close()

    run(body())


def test_database_down_fails_fast_then_recovers() -> None:
    """StoreUnavailable fails the batch and the queue, refuses new work at once, and clears when ping works."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        w = make(db, max_delay_ms=0)
        await w.commit(deposit("d0"))
        db.down = True
        with pytest.raises(StoreUnavailable):
            await w.commit(deposit("d1"))
        assert not w.available
        with pytest.raises(StoreUnavailable):
            w.submit(deposit("d2"))
        await asyncio.sleep(0.05)
        assert db.pings >= 1 and not w.available
        db.down = False
        for _ in range(100):
            if w.available:
                break
            await asyncio.sleep(0.01)
        assert w.available
        result = await w.commit(deposit("d1"))
        assert not result.duplicate
        await w.close()

    run(body())


def test_a_hung_commit_times_out_as_unavailable() -> None:
    """A batch that takes longer than commit_timeout_s fails with StoreUnavailable, never success."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        db.gate.clear()
        w = make(db, max_delay_ms=0, commit_timeout_s=0.05)
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match="timed out"):
            await w.commit(deposit("d1"))
        assert time.monotonic() - t0 < 0.5
        db.gate.set()
        await w.close()

    run(body())


def test_lock_contention_is_busy_and_keeps_the_circuit_closed() -> None:
    """StoreBusy from the database is passed to the batch's callers; the writer stays available."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        w = make(db, max_delay_ms=0)
        db.fail = StoreBusy("deadlock")
        with pytest.raises(StoreBusy):
            await w.commit(deposit("d1"))
        assert w.available
        db.fail = None
        assert not (await w.commit(deposit("d1"))).duplicate
        await w.close()

    run(body())


def test_malformed_txns_are_refused_at_submit() -> None:
    """Unbalanced, empty-key or float amounts raise InvalidTxn before anything is queued."""

    async def body() -> None:
        w = make(FakeDatabase())
        bad = [
            Txn(key="x", entries=(Entry("a", "EUR", 5, PostingKind.BET),)),
            Txn(key="", entries=()),
            Txn(
                key="y",
                entries=(Entry("a", "EUR", 1.5, PostingKind.BET), Entry("b", "EUR", -1.5, PostingKind.BET)),
            ),  # type: ignore[arg-type]
        ]
        for t in bad:
            with pytest.raises(InvalidTxn):
                w.submit(t)
        assert w.queued == 0
        await w.close()

    run(body())


def test_close_drains_the_queue_then_refuses() -> None:
    """close() commits what is queued; afterwards submit raises StoreClosed."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        w = make(db, max_delay_ms=50)
        futures = [w.submit(deposit(f"d{i}", f"u{i}")) for i in range(5)]
        await w.close()
        assert all(f.done() and isinstance(f.result(), TxnResult) for f in futures)
        with pytest.raises(StoreClosed):
            w.submit(deposit("late"))

    run(body())


def test_on_commit_sees_committed_results_only() -> None:
    """The hook gets fresh commits, not duplicates or rejections; a failing hook breaks nothing."""

    async def body() -> None:
        db = FakeDatabase()
        await db.open_house()
        seen: list[str] = []

        def hook(results: object) -> None:
            seen.extend(r.key for r in results)  # type: ignore[attr-defined]
            raise RuntimeError("hook bug")

        w = GroupCommitWriter(db.commit, db.ping, config=WriterConfig(max_delay_ms=5), on_commit=hook)
        await asyncio.gather(
            w.commit(deposit("d1", amount=10)), w.commit(bet("b1", amount=50)), return_exceptions=True
        )
        await w.commit(deposit("d1", amount=10))
        assert seen == ["d1"]
        await w.close()

    run(body())


def test_a_backend_bug_fails_the_callers_instead_of_hanging() -> None:
    """A backend that returns the wrong number of outcomes fails its batch with StoreError."""

    async def body() -> None:
        async def broken(txns: object, now: int) -> list[object]:
            return []

        async def ping() -> None:
            return None

        w = GroupCommitWriter(broken, ping, config=WriterConfig(max_delay_ms=0))  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            await w.commit(deposit("d1"))
        await w.close()

    run(body())
