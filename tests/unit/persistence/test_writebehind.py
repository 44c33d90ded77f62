"""Coalescing write-behind for non-money state."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from persistence import (
    StoreBusy,
    StoreClosed,
    StoreUnavailable,
    Variable,
    VarPut,
    VarScope,
    WriteBehindConfig,
    WriteOp,
)
from persistence.records import VarDelete
from persistence.writebehind import WriteBehind
from tests.unit.persistence.conftest import run


class Sink:
    def __init__(self) -> None:
        self.calls: list[list[WriteOp]] = []
        self.down = False
        self.delay = 0.0

    async def apply(self, ops: Sequence[WriteOp]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise StoreUnavailable("down")
        self.calls.append(list(ops))


def var(name: str, value: bytes) -> VarPut:
    return VarPut(var=Variable(scope=VarScope.ROOM, owner="r", name=name, value=value))


def values(calls: list[list[WriteOp]]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for call in calls:
        for op in call:
            assert isinstance(op, VarPut)
            out[op.var.name] = op.var.value
    return out


SLOW = WriteBehindConfig(flush_interval_ms=60_000)


def test_writes_to_one_key_coalesce() -> None:
    """A thousand puts of one key are written once, with the last value; a delete replaces a put."""

    async def body() -> None:
        sink = Sink()
        wb = WriteBehind(sink.apply, config=SLOW)
        for i in range(1000):
            wb.put(var("pot", str(i).encode()))
        wb.put(var("gone", b"x"))
        wb.put(VarDelete(scope=VarScope.ROOM, owner="r", name="gone"))
        assert wb.dirty == 2
        assert await wb.flush() == 2
        [call] = sink.calls
        assert call[0] == var("pot", b"999") and isinstance(call[1], VarDelete)
        await wb.close()

    run(body())


def test_the_buffer_is_bounded_but_dirty_keys_still_update() -> None:
    """At max_dirty a new key is refused with StoreBusy; a key already dirty can always change."""

    async def body() -> None:
        wb = WriteBehind(Sink().apply, config=WriteBehindConfig(flush_interval_ms=60_000, max_dirty=2))
        wb.put(var("a", b"1"))
        wb.put(var("b", b"1"))
        with pytest.raises(StoreBusy):
            wb.put(var("c", b"1"))
        wb.put(var("a", b"2"))
        assert wb.dirty == 2
        await wb.close()

    run(body())


def test_a_failed_flush_keeps_the_writes_and_newer_values_win() -> None:
    """When the database fails, ops stay dirty; a put made meanwhile replaces the old value."""

    async def body() -> None:
        sink = Sink()
        wb = WriteBehind(sink.apply, config=SLOW)
        wb.put(var("a", b"old"))
        wb.put(var("b", b"keep"))
        sink.down = True
        with pytest.raises(StoreUnavailable):
            await wb.flush()
        wb.put(var("a", b"new"))
        assert wb.dirty == 2 and wb.failures == 1
        sink.down = False
        await wb.flush()
        assert values(sink.calls) == {"a": b"new", "b": b"keep"}
        await wb.close()

    run(body())


def test_background_flush_retries_until_the_database_is_back() -> None:
    """The background task flushes every interval and retries with backoff after a failure."""

    async def body() -> None:
        sink = Sink()
        sink.down = True
        wb = WriteBehind(
            sink.apply, config=WriteBehindConfig(flush_interval_ms=10, max_retry_interval_s=0.02)
        )
        wb.put(var("a", b"1"))
        await asyncio.sleep(0.05)
        assert wb.failures >= 1 and wb.dirty == 1
        sink.down = False
        for _ in range(100):
            if not wb.dirty:
                break
            await asyncio.sleep(0.01)
        assert values(sink.calls) == {"a": b"1"}
        await wb.close()

    run(body())


def test_close_flushes_and_then_refuses() -> None:
    """Graceful shutdown writes what is left; later puts raise StoreClosed."""

    async def body() -> None:
        sink = Sink()
        flushed: list[int] = []
        wb = WriteBehind(sink.apply, config=SLOW, on_flushed=lambda ops: flushed.append(len(ops)))
        wb.put(var("a", b"1"))
        await wb.close()
        assert values(sink.calls) == {"a": b"1"} and flushed == [1]
        with pytest.raises(StoreClosed):
            wb.put(var("b", b"1"))

    run(body())


def test_close_waits_for_a_flush_in_progress() -> None:
    """Closing during a slow background flush neither loses nor duplicates its writes."""

    async def body() -> None:
        sink = Sink()
        sink.delay = 0.05
        wb = WriteBehind(sink.apply, config=WriteBehindConfig(flush_interval_ms=5))
        wb.put(var("a", b"1"))
        await asyncio.sleep(0.02)  # the background flush is running
        wb.put(var("b", b"2"))
        await wb.close()
        assert values(sink.calls) == {"a": b"1", "b": b"2"}
        assert sum(len(c) for c in sink.calls) == 2

    run(body())


def test_large_dirty_sets_are_written_in_chunks() -> None:
    """A flush splits the dirty set into transactions of max_ops_per_txn."""

    async def body() -> None:
        sink = Sink()
        wb = WriteBehind(sink.apply, config=WriteBehindConfig(flush_interval_ms=60_000, max_ops_per_txn=4))
        for i in range(10):
            wb.put(var(f"v{i}", b"x"))
        await wb.flush()
        assert [len(c) for c in sink.calls] == [4, 4, 2]
        await wb.close()

    run(body())


def test_pending_includes_a_flush_in_progress_and_newer_puts_win() -> None:
    """While a flush is writing, its ops still count as pending; a put made meanwhile is newer."""

    async def body() -> None:
        sink = Sink()
        sink.delay = 0.05
        wb = WriteBehind(sink.apply, config=SLOW)
        wb.put(var("a", b"1"))
        wb.put(var("b", b"1"))
        flushing = asyncio.ensure_future(wb.flush())
        await asyncio.sleep(0.01)
        assert wb.dirty == 2  # taken by the flush, not written yet
        wb.put(var("a", b"2"))
        got = {op.var.name: op.var.value for op in wb.pending(("var", "room", "r")) if isinstance(op, VarPut)}
        assert got == {"a": b"2", "b": b"1"}
        assert wb.pending(("var", "room", "other")) == []
        assert wb.dirty == 2  # "a" again, "b" still being written
        await flushing
        assert wb.dirty == 1
        assert [op.coalesce_key for op in wb.pending(("var",))] == [("var", "room", "r", "a")]
        await wb.close()

    run(body())
