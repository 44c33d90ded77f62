"""The cyclic garbage collector of a server process: its pauses measured, full collections kept short.

A server holds about 40 GC-tracked objects per session (connection, session, player, user,
room membership, transport). CPython's full collection (generation 2) walks all of them with
the event loop stopped, and during a ramp it runs again each time the long-lived objects have
grown by a quarter: at 16,000 sessions one took 433 ms here (bench/RESULTS.md).

With `freeze` on, the objects that survived a full collection are moved out of the collector's
generations (`gc.freeze()`), so the next full collection walks only what is newer. Frozen
objects freed by reference counting go as before (sessions break their own reference cycles
when they end); only garbage *cycles* among frozen objects would stay. Every `thaw_every`
seconds (first at a random point of the interval, so workers do not pause together) the frozen
objects go back for one full collection that frees those. `croupier_gc_frozen_objects` shows
the frozen count, `croupier_gc_pause_seconds` every pause.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from bisect import bisect_left
from typing import Any

#: Pause buckets, seconds.
PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class GcStats:
    """Pauses of the collector by generation (histogram counts, sums, the longest)."""

    __slots__ = ("counts", "sums", "longest", "collected", "thaws", "_started")

    def __init__(self) -> None:
        self.counts = [[0] * (len(PAUSE_BUCKETS) + 1) for _ in range(3)]
        self.sums = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self.collected = [0, 0, 0]
        self.thaws = 0
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        """A `gc.callbacks` entry: time each collection."""
        if phase == "start":
            self._started = time.perf_counter()
            return
        seconds = time.perf_counter() - self._started
        gen = info["generation"]
        self.sums[gen] += seconds
        self.collected[gen] += info["collected"]
        if seconds > self.longest[gen]:
            self.longest[gen] = seconds
        self.counts[gen][bisect_left(PAUSE_BUCKETS, seconds)] += 1

    def full_collections(self) -> int:
        return sum(self.counts[2])


#: The process's collector statistics (the collector is per process, so is this).
STATS = GcStats()
_installed = False


def install() -> GcStats:
    """Start timing collections (idempotent)."""
    global _installed
    if not _installed:
        gc.callbacks.append(STATS.callback)
        _installed = True
    return STATS


async def keep_full_collections_short(thaw_every: float, check_every: float = 1.0) -> None:
    """Freeze survivors after each full collection; thaw and collect every `thaw_every` s (0: never).

    Runs as a background task of the server; freezes once at the start (config, games, modules).
    """
    stats = install()
    gc.freeze()
    seen = stats.full_collections()
    loop = asyncio.get_running_loop()
    next_thaw = loop.time() + random.uniform(0.5, 1.0) * thaw_every if thaw_every > 0 else None
    while True:
        await asyncio.sleep(check_every)
        if next_thaw is not None and loop.time() >= next_thaw:
            next_thaw = loop.time() + thaw_every
            thaw_and_collect(stats)
            seen = stats.full_collections()
            continue
        done = stats.full_collections()
        if done != seen:  # the collector ran a full collection since the last check
            gc.freeze()
            seen = done


def thaw_and_collect(stats: GcStats) -> int:
    """One full collection over every object, frozen ones included; then freeze the survivors."""
    gc.unfreeze()
    stats.thaws += 1
    freed = gc.collect()
    gc.freeze()
    return freed
