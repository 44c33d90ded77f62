"""One generator process: its share of the sessions, from one loopback source address.

The parent talks to it over a pipe: `start` (ramp up now), `drop` (abort some
connections: a reconnect storm), `stop` (close every session, send the final report).
It sends `ready`, a `snap` of its counters every second, `ramped` once every session
had its first try, and `final`. It stops by itself at its deadline or if the parent goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import resource
import time
from multiprocessing.connection import Connection
from typing import Any

from msgspec import Struct

from .bot import Bot, CompiledStep
from .scenario import Scenario, assign_profile
from .stats import Histogram
from .wheel import Wheel
from .wire import Shared

#: sockets one generator process may hold (the open-file limit is 20,000)
MAX_SOCKETS = 18_000


class WorkerConfig(Struct, frozen=True):
    index: int
    scenario: Scenario
    #: this process's sessions: first, first + stride, ... (count of them)
    first: int
    stride: int
    count: int
    #: (host, port, path) of each server
    targets: list[tuple[str, int, str]]
    source_ip: str
    #: new connections per second from this process (0 = no pacing)
    ramp_rate: float
    #: hard limit on this process's life, seconds after `start`
    lifetime: float
    connect_timeout: float = 10.0
    close_timeout: float = 10.0
    #: the servers' protocol: "croupier" (native) or "colyseus" (the peer, bench/loadgen/colyseus.py)
    protocol: str = "croupier"


def raise_nofile() -> int:
    """Lift the soft open-file limit to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Worker:
    def __init__(self, cfg: WorkerConfig, pipe: Connection) -> None:
        self.cfg = cfg
        self.pipe = pipe
        self.scenario = cfg.scenario
        self.targets = cfg.targets
        self.source_ip = cfg.source_ip
        self.binary = cfg.scenario.codec == "msgpack"
        self.subprotocol = f"croupier.v1.{cfg.scenario.codec}"
        self.connect_timeout = cfg.connect_timeout
        self.shared = Shared()
        self.connect_stats = self.shared.step("connect")
        self.resume_stats = self.shared.step("resume")
        self.reconnect_hist = Histogram()
        self.open = 0
        self.sessions = 0
        self.handshakes = 0
        self.counters: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.stopping = False
        self.in_hold = False
        self.bots: list[Bot] = []
        #: every session's periodic steps (pings, spins...) on one loop timer
        self.wheel = Wheel()
        self.first_tries = 0
        self.max_lag = 0.0
        self.gc_max = 0.0
        self._gc_t0 = 0.0
        self.held_at_stop: int | None = None
        self._sleepers: set[asyncio.Future[bool]] = set()
        self._started: asyncio.Future[float] | None = None
        self._stop: asyncio.Future[None] | None = None
        self._ramped: asyncio.Event | None = None
        self.profiles: list[list[CompiledStep]] = [
            [CompiledStep(s, self.shared.step(s.name)) for s in p.steps] for p in cfg.scenario.profiles
        ]
        self.weights = [p.weight for p in cfg.scenario.profiles]
        self.bot_class: type[Bot] = Bot
        if cfg.protocol == "colyseus":
            from .colyseus import ColyseusBot

            self.bot_class = ColyseusBot

    # -- garbage collection ----------------------------------------------------------------

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        elif self._gc_t0:
            pause = time.perf_counter() - self._gc_t0
            if pause > self.gc_max:
                self.gc_max = pause

    @staticmethod
    def _freeze() -> None:
        """Move every object alive now out of the collector's sight.

        Sessions live for the whole run; without this each full collection walks all of
        them (tens of ms per 10k sessions) and shows up as latency. Garbage in reference
        cycles among frozen objects is not collected, which a bounded run can afford.
        """
        gc.freeze()

    # -- small services for bots ----------------------------------------------------------

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1

    async def sleep(self, delay: float) -> bool:
        """Sleep unless the run stops first; False if it did.

        Each sleeper has its own future (the stop wakes them all): thousands of waiters
        on one shared future would make each wake-up O(waiters).
        """
        if self.stopping:
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(delay, _resolve, fut, True)
        self._sleepers.add(fut)
        try:
            return await fut
        finally:
            timer.cancel()
            self._sleepers.discard(fut)

    def _first_done(self) -> None:
        self.first_tries += 1
        if self.first_tries >= self.cfg.count and self._ramped is not None:
            self._ramped.set()

    # -- the pipe -------------------------------------------------------------------------

    def _send(self, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.pipe.send(msg)

    def _on_pipe(self) -> None:
        try:
            while self.pipe.poll():
                self._command(self.pipe.recv())
        except (EOFError, OSError):  # the parent went away
            asyncio.get_running_loop().remove_reader(self.pipe.fileno())
            self._command({"cmd": "stop"})

    def _command(self, msg: dict[str, Any]) -> None:
        cmd = msg.get("cmd")
        if cmd == "start" and self._started is not None and not self._started.done():
            self._started.set_result(float(msg.get("t0", time.monotonic())))
        elif cmd == "hold":
            self.in_hold = self.shared.in_hold = True
            self._freeze()
        elif cmd == "drop":
            self._drop(float(msg.get("fraction", 1.0)), float(msg.get("spread", 5.0)))
        elif cmd == "churn":
            self._churn(float(msg.get("fraction", 0.02)), float(msg.get("spread", 5.0)))
        elif cmd == "stop" and self._stop is not None and not self._stop.done():
            self.held_at_stop = self.sessions
            self._stop.set_result(None)

    def _drop(self, fraction: float, spread: float) -> None:
        live = [b for b in self.bots if b.conn is not None and not b.conn.closed]
        n = min(len(live), round(fraction * len(live)))
        dropped = sum(1 for b in random.sample(live, n) if b.drop(spread))
        self.counters["drop_commands"] = self.counters.get("drop_commands", 0) + 1
        self._send({"kind": "dropped", "w": self.cfg.index, "n": dropped})

    def _churn(self, fraction: float, spread: float) -> None:
        live = [b for b in self.bots if b.logged_in and b.conn is not None and not b.conn.closed]
        n = min(len(live), round(fraction * len(live)))
        for b in random.sample(live, n):
            b.recycle(spread)

    # -- reports --------------------------------------------------------------------------

    def snapshot(self, kind: str = "snap") -> dict[str, Any]:
        sh = self.shared
        steps = {label: st.counters() for label, st in sh.steps.items()}
        ihist = {label: st.ihist.to_wire() for label, st in sh.steps.items() if st.ihist.n}
        for st in sh.steps.values():
            if st.ihist.n:
                st.ihist = Histogram()
        out: dict[str, Any] = {
            "kind": kind,
            "w": self.cfg.index,
            "pid": os.getpid(),
            "t": time.monotonic(),
            "open": self.open,
            "sessions": self.sessions,
            "handshakes": self.handshakes,
            "sent": sh.sent,
            "recv": {"ok": sh.recv_ok, "error": sh.recv_error, "events": sh.recv_events},
            "unmatched": sh.unmatched,
            "unmatched_codes": dict(sh.unmatched_codes),
            "events": dict(sh.events),
            "counters": dict(self.counters),
            "errors": dict(self.errors),
            "steps": steps,
            "ihist": ihist,
            "lag_ms": round(self.max_lag * 1e3, 2),
            "gc_max_ms": round(self.gc_max * 1e3, 2),
            "rss": _rss_bytes(),
        }
        self.max_lag = 0.0
        self.gc_max = 0.0
        if kind == "final":
            out["hist"] = {label: st.hist.to_wire() for label, st in sh.steps.items() if st.hist.n}
            out["hold_hist"] = {
                label: st.hold_hist.to_wire() for label, st in sh.steps.items() if st.hold_hist.n
            }
            out["reconnect"] = self.reconnect_hist.to_wire()
            out["held_at_stop"] = self.held_at_stop if self.held_at_stop is not None else self.sessions
        return out

    def _ticks(self, interval: float) -> range:
        """A bound for a periodic helper: enough ticks for the process's whole life."""
        return range(int(self.cfg.lifetime / interval) + 100)

    async def _report_loop(self) -> None:
        for _ in self._ticks(1.0):
            await asyncio.sleep(1.0)
            self._send(self.snapshot())
            self._freeze()  # what survived a second is likely to live on: keep GC passes short

    async def _lag_loop(self) -> None:
        for _ in self._ticks(0.1):
            t = time.monotonic()
            await asyncio.sleep(0.1)
            lag = time.monotonic() - t - 0.1
            if lag > self.max_lag:
                self.max_lag = lag

    async def _sweep_loop(self) -> None:
        for _ in self._ticks(1.0):
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for c in list(self.shared.busy):  # connections with requests in flight only
                c.expire(now)

    # -- ramp and life --------------------------------------------------------------------

    async def _ramp(self) -> None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(self.scenario.ramp.concurrency)
        start = time.monotonic()
        rate = cfg.ramp_rate
        ntargets = len(cfg.targets)

        def released() -> None:
            sem.release()
            self._first_done()

        for j in range(cfg.count):
            if self.stopping:
                return
            if rate > 0:
                delay = start + j / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await sem.acquire()
            if self.stopping:
                sem.release()
                return
            index = cfg.first + j * cfg.stride
            steps = self.profiles[assign_profile(index, self.weights)]
            bot = self.bot_class(self, index, steps, index % ntargets)
            self.bots.append(bot)
            bot.task = loop.create_task(bot.run(released))
            if j % 500 == 499:
                self._freeze()

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        self._stop = loop.create_future()
        self._ramped = asyncio.Event()
        if self.cfg.count == 0:
            self._ramped.set()
        loop.add_reader(self.pipe.fileno(), self._on_pipe)
        gc.callbacks.append(self._gc_callback)
        gc.set_threshold(20_000, 20, 100)  # fewer, still short, young collections
        self._freeze()
        self._send({"kind": "ready", "w": self.cfg.index, "pid": os.getpid(), "nofile": raise_nofile()})
        try:
            await asyncio.wait_for(asyncio.shield(self._started), 120)
        except TimeoutError:
            return
        deadline = time.monotonic() + self.cfg.lifetime
        helpers = [loop.create_task(c) for c in (self._report_loop(), self._lag_loop(), self._sweep_loop())]
        ramp = loop.create_task(self._ramp())
        ramped: asyncio.Future[Any] = loop.create_task(self._ramped.wait())
        stop: asyncio.Future[Any] = self._stop
        try:
            await asyncio.wait(
                {ramped, stop},
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if ramped.done():
                self._send(
                    {"kind": "ramped", "w": self.cfg.index, "t": time.monotonic(), "sessions": self.sessions}
                )
                await asyncio.wait({self._stop}, timeout=max(0.0, deadline - time.monotonic()))
            if self.held_at_stop is None:
                self.held_at_stop = self.sessions
            await self._close_all(ramp)
        finally:
            ramped.cancel()
            for h in helpers:
                h.cancel()
            self._send(self.snapshot("final"))
            loop.remove_reader(self.pipe.fileno())

    async def _close_all(self, ramp: asyncio.Task[None]) -> None:
        self.stopping = True
        for fut in list(self._sleepers):
            _resolve(fut, False)
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)
        ramp.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ramp
        self.wheel.clear()  # no more periodic requests
        await self._drain(self.cfg.close_timeout)
        for bot in self.bots:
            bot.stop()
        tasks = [b.task for b in self.bots if b.task is not None and not b.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.cfg.close_timeout)
        left = 0
        for bot in self.bots:
            if bot.conn is not None and not bot.conn.closed:
                left += 1
                bot.conn.abort()
        if left:
            self.counters["close_timeouts"] = left
        await asyncio.sleep(0)
        for t in tasks:
            t.cancel()

    async def _drain(self, seconds: float) -> None:
        """Wait (up to `seconds`) for the replies to requests in flight. Closing every session
        at once keeps this process busy for seconds on a loaded machine; replies the server
        sent before that must not be read late and counted as timeouts."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and any(b.conn is not None and b.conn.pending for b in self.bots):
            await asyncio.sleep(0.02)


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


def worker_main(cfg: WorkerConfig, pipe: Connection) -> None:
    """The process entry point."""
    import uvloop

    raise_nofile()
    uvloop.run(Worker(cfg, pipe).main(), debug=False)
