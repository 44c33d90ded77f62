"""One timer per generator process for every session's periodic steps.

A loop timer per session and step (what `Bot` used to schedule) costs a TimerHandle, a
heap push and pop, a callback of its own and a `get_running_loop` per send, for every
ping of every session. The wheel keeps due entries in slots of `tick` seconds and runs
them from one loop timer: sessions due in the same tick are sent in one callback, and
a tick with nothing due costs nothing (the timer is armed only while entries wait).

Entries are not cancelled one by one: each carries its session's `epoch`, and a
session that stops its periodic steps bumps its epoch, so stale entries are skipped
when their slot comes up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

#: slot length: a periodic step runs within this much after its due time
TICK = 0.01

Entry = tuple[Callable[[Any, int, int], None], Any, int, int]


class Wheel:
    """Due times quantised to `tick`; `add` from the loop's thread only."""

    __slots__ = ("tick", "_slots", "_next", "_handle", "_loop", "pending")

    def __init__(self, tick: float = TICK) -> None:
        self.tick = tick
        self._slots: dict[int, list[Entry]] = {}
        #: the first slot not run yet
        self._next = 0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: entries waiting (stale ones included until their slot runs)
        self.pending = 0

    def add(
        self, delay: float, fire: Callable[[Any, int, int], None], arg: Any, left: int, epoch: int
    ) -> None:
        """Call `fire(arg, left, epoch)` in about `delay` seconds (never earlier)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        due = int((loop.time() + delay) / self.tick) + 1
        if self._handle is None:
            self._next = due
            self._handle = loop.call_at(due * self.tick, self._run)
        elif due < self._next:  # earlier than everything waiting (never while `_run` runs)
            self._handle.cancel()
            self._next = due
            self._handle = loop.call_at(due * self.tick, self._run)
        slot = self._slots.get(due)
        if slot is None:
            self._slots[due] = [(fire, arg, left, epoch)]
        else:
            slot.append((fire, arg, left, epoch))
        self.pending += 1

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        now_slot = int(loop.time() / self.tick)
        slots = self._slots
        k = self._next
        while k <= now_slot:
            entries = slots.pop(k, None)
            k += 1
            self._next = k  # entries added while these run go to later slots
            if entries is not None:
                self.pending -= len(entries)
                for fire, arg, left, epoch in entries:
                    fire(arg, left, epoch)
        if slots:
            self._handle = loop.call_at(self._next * self.tick, self._run)
        else:
            self._handle = None

    def clear(self) -> None:
        """Forget every entry (the run is over)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._slots.clear()
        self.pending = 0
