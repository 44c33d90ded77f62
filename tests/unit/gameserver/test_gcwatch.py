"""The garbage-collector policy: pauses timed, survivors frozen, frozen cycles freed on a thaw."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from gameserver import gcwatch
from gameserver.config import Config, ServerSection
from gameserver.gcwatch import PAUSE_BUCKETS, GcStats


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def garbage_cycle() -> weakref.ref[Node]:
    """Two objects that refer to each other and to nothing else: only the collector frees them."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def thawed() -> Iterator[None]:
    """Leave the process's collector as the test found it (nothing frozen)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_pause_lands_in_its_bucket_and_generation() -> None:
    stats = GcStats()
    stats.callback("start", {"generation": 2, "collected": 0, "uncollectable": 0})
    stats._started -= 0.03  # as if the collection had taken 30 ms
    stats.callback("stop", {"generation": 2, "collected": 7, "uncollectable": 0})
    assert stats.full_collections() == 1
    assert sum(stats.counts[0]) == sum(stats.counts[1]) == 0
    bucket = stats.counts[2].index(1)
    assert PAUSE_BUCKETS[bucket - 1] < 0.03 <= PAUSE_BUCKETS[bucket]
    assert stats.collected[2] == 7
    assert 0.03 <= stats.sums[2] == stats.longest[2] < 0.05


def test_install_times_real_collections() -> None:
    stats = gcwatch.install()
    assert gcwatch.install() is stats and gc.callbacks.count(stats.callback) == 1
    before = stats.full_collections()
    gc.collect()
    assert stats.full_collections() == before + 1


def test_survivors_of_a_full_collection_are_frozen(thawed: None) -> None:
    async def run() -> tuple[int, int, int]:
        task = asyncio.create_task(gcwatch.keep_full_collections_short(0.0, check_every=0.01))
        await asyncio.sleep(0.05)
        at_start = gc.get_freeze_count()
        kept = [Node() for _ in range(5000)]  # newer than the first freeze
        gc.collect()  # a full collection: its survivors (kept) are frozen at the next check
        await asyncio.sleep(0.05)
        after = gc.get_freeze_count()
        task.cancel()
        return at_start, after, len(kept)

    at_start, after, kept = asyncio.run(run())
    assert at_start > 0
    assert after >= at_start + kept


def test_a_cycle_among_frozen_objects_waits_for_the_thaw(thawed: None) -> None:
    ref = garbage_cycle()
    # the cycle is already garbage, but a freeze takes it along (that is the leak the thaw bounds)
    gc.freeze()
    gc.collect()
    assert ref() is not None, "a frozen cycle is out of the collector's reach"
    stats = GcStats()
    freed = gcwatch.thaw_and_collect(stats)
    assert ref() is None and freed >= 2
    assert stats.thaws == 1 and gc.get_freeze_count() > 0  # the survivors frozen again


def test_the_thaw_runs_on_its_timer(thawed: None) -> None:
    async def run() -> int:
        stats = gcwatch.install()
        before = stats.thaws
        task = asyncio.create_task(gcwatch.keep_full_collections_short(0.05, check_every=0.01))
        await asyncio.sleep(0.3)
        task.cancel()
        return stats.thaws - before

    assert asyncio.run(run()) >= 2


def test_a_negative_thaw_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="gc_thaw_every"):
        Config(server=ServerSection(gc_thaw_every=-1.0)).check()
