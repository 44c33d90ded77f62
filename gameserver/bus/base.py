"""The bus between workers and nodes: one small interface, several carriers.

A member (a worker, named like ``"n0.w1"``) sends *casts* (fire and forget) and *calls*
(a request with an id and a timeout, answered once) to another member by name.
Handlers are registered per message kind and run on the receiver's event loop:
``handler(src, body)`` returns the reply body, or an awaitable of it, for calls.

Frames are MessagePack arrays ``[op, kind, corr, src, body]`` (op: 0 cast, 1 call,
2 reply, 3 error reply with body ``[name, message, code]``). Frames to one member are
queued during a loop tick and carried together at its end (one write or publish), in
order. Each destination's queue is bounded: past `max_queued_bytes` a cast is dropped
(and counted) and a call fails at once with `BusBusy`.

Failures are named: `BusTimeout` (no reply in time), `BusUnreachable` (the member is
not there, or its connection broke with the call in flight), `BusBusy` (queue full),
`RemoteError` (the handler raised; `code` keeps a wire error code when there is one).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import count
from time import perf_counter
from typing import Any

import msgspec

from protocol.errors import RequestError

logger = logging.getLogger("croupier.bus")

CAST, CALL, REPLY, ERROR = 0, 1, 2, 3

Handler = Callable[[str, Any], Any]


class BusError(Exception):
    """A bus request failed; `name` is a stable identifier for logs and replies."""

    name = "bus_error"


class BusTimeout(BusError):
    name = "bus_timeout"


class BusUnreachable(BusError):
    name = "bus_unreachable"


class BusBusy(BusError):
    name = "bus_busy"


class RemoteError(BusError):
    """The remote handler raised. `code` is its wire error code, if it raised one."""

    name = "remote_error"

    def __init__(self, kind: str, message: str, code: int | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.code = code


@dataclass
class BusStats:
    """Counters exported as metrics (gameserver/metrics.py)."""

    casts_sent: int = 0
    calls_sent: int = 0
    frames_received: int = 0
    batches_sent: int = 0
    bytes_sent: int = 0
    dropped: int = 0  # casts dropped: queue full or destination unreachable
    errors: dict[str, int] = field(default_factory=dict)
    #: call round-trip times (seconds), bounded sample for percentiles
    call_latency: list[float] = field(default_factory=list)

    def failed(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1

    def observe(self, seconds: float) -> None:
        lat = self.call_latency
        if len(lat) >= 4096:
            del lat[:2048]
        lat.append(seconds)


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(tuple[int, str, int, str, Any])


class Bus:
    """The carrier-independent part: handlers, calls in flight, batching.

    Subclasses implement `_transmit(dst, frames)`: carry a batch of encoded frames to
    `dst` in order, without blocking (buffer while connecting); when `dst` cannot be
    reached they call `_unreachable(dst, reason)`. They call `_received(frame)` for
    every frame that arrives.
    """

    def __init__(self, me: str, *, max_queued_bytes: int = 8 << 20, default_timeout: float = 2.0) -> None:
        self.me = me
        self.max_queued_bytes = max_queued_bytes
        self.default_timeout = default_timeout
        self.stats = BusStats()
        self._handlers: dict[str, Handler] = {}
        self._calls: dict[int, tuple[asyncio.Future[Any], str, float]] = {}
        self._corr = count(1)
        self._queues: dict[str, list[bytes]] = {}
        self._queued_bytes: dict[str, int] = {}
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    # -- the interface -----------------------------------------------------------------

    def on(self, kind: str, handler: Handler) -> None:
        """Handle messages of `kind`: `handler(src, body)`; its result answers a call."""
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind!r} is already registered")
        self._handlers[kind] = handler

    def cast(self, dst: str, kind: str, body: Any) -> bool:
        """Send without a reply. False if it was dropped (queue full, bus closed)."""
        self.stats.casts_sent += 1
        return self._queue(dst, _enc.encode((CAST, kind, 0, self.me, body)))

    async def call(self, dst: str, kind: str, body: Any, timeout: float | None = None) -> Any:
        """Send a request and wait for its reply body (raises a `BusError`)."""
        self.stats.calls_sent += 1
        loop = self._running_loop()
        corr = next(self._corr)
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._queue(dst, _enc.encode((CALL, kind, corr, self.me, body))):
            self.stats.failed(BusBusy.name)
            raise BusBusy(f"queue to {dst} is full")
        started = perf_counter()
        self._calls[corr] = (fut, dst, started)
        handle = loop.call_later(timeout or self.default_timeout, self._expire, corr)
        try:
            return await fut
        finally:
            handle.cancel()
            self._calls.pop(corr, None)

    async def start(self) -> None:
        """Start receiving."""
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        """Stop: calls in flight fail with `BusUnreachable`."""
        self.closed = True
        for fut, dst, _ in list(self._calls.values()):
            if not fut.done():
                fut.set_exception(BusUnreachable(f"bus closed with a call to {dst} in flight"))
        self._calls.clear()

    # -- carrier side ------------------------------------------------------------------

    def _transmit(self, dst: str, frames: list[bytes]) -> None:
        raise NotImplementedError

    def _received(self, data: bytes) -> None:
        try:
            op, kind, corr, src, body = _dec.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.warning("undecodable bus frame (%d bytes) dropped", len(data))
            self.stats.failed("bad_frame")
            return
        self.stats.frames_received += 1
        if op in (REPLY, ERROR):
            entry = self._calls.get(corr)
            if entry is None or entry[0].done():
                return  # timed out already
            fut, _, started = entry
            self.stats.observe(perf_counter() - started)
            if op == REPLY:
                fut.set_result(body)
            else:
                name, message, code = body
                fut.set_exception(RemoteError(name, message, code))
            return
        handler = self._handlers.get(kind)
        if handler is None:
            self.stats.failed("no_handler")
            if op == CALL:
                self._answer(src, corr, ERROR, ["no_handler", f"{self.me} has no handler for {kind!r}", None])
            return
        try:
            result = handler(src, body)
        except Exception as exc:
            self._fail(src, corr, op, kind, exc)
            return
        if inspect.isawaitable(result):
            self._running_loop().create_task(self._finish(src, corr, op, kind, result))
        elif op == CALL:
            self._answer(src, corr, REPLY, result)

    async def _finish(self, src: str, corr: int, op: int, kind: str, result: Awaitable[Any]) -> None:
        try:
            value = await result
        except Exception as exc:
            self._fail(src, corr, op, kind, exc)
            return
        if op == CALL:
            self._answer(src, corr, REPLY, value)

    def _fail(self, src: str, corr: int, op: int, kind: str, exc: Exception) -> None:
        if isinstance(exc, RequestError):
            body = [exc.code.name.lower(), exc.message, int(exc.code)]
        else:
            logger.exception("bus handler for %s failed", kind, exc_info=exc)
            body = [type(exc).__name__, str(exc), None]
        if op == CALL:
            self._answer(src, corr, ERROR, body)

    def _answer(self, dst: str, corr: int, op: int, body: Any) -> None:
        self._queue(dst, _enc.encode((op, "", corr, self.me, body)))

    def _expire(self, corr: int) -> None:
        entry = self._calls.get(corr)
        if entry is not None and not entry[0].done():
            self.stats.failed(BusTimeout.name)
            entry[0].set_exception(BusTimeout(f"no reply from {entry[1]} in time"))

    def _unreachable(self, dst: str, reason: str) -> None:
        """Fail the calls in flight to `dst` (its connection broke or it is not there)."""
        for fut, d, _ in list(self._calls.values()):
            if d == dst and not fut.done():
                self.stats.failed(BusUnreachable.name)
                fut.set_exception(BusUnreachable(f"{dst}: {reason}"))

    # -- batching ----------------------------------------------------------------------

    def _queue(self, dst: str, frame: bytes) -> bool:
        if self.closed:
            self.stats.dropped += 1
            return False
        size = self._queued_bytes.get(dst, 0) + len(frame)
        if size > self.max_queued_bytes:
            self.stats.dropped += 1
            return False
        self._queued_bytes[dst] = size
        q = self._queues.get(dst)
        if q is None:
            self._queues[dst] = [frame]
        else:
            q.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._running_loop().call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        queues, self._queues = self._queues, {}
        self._queued_bytes.clear()
        stats = self.stats
        for dst, frames in queues.items():
            stats.batches_sent += 1
            stats.bytes_sent += sum(len(f) for f in frames)
            try:
                self._transmit(dst, frames)
            except Exception as exc:  # a carrier fault must not leave calls hanging
                logger.warning("bus transmit to %s failed: %s", dst, exc)
                stats.dropped += len(frames)
                self._unreachable(dst, f"carrier failed: {exc}")

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop
