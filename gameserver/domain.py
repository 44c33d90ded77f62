"""Domain events and the event buses: in-process, and Redis Streams across nodes.

Domain events (a round settled, a bonus granted, a mission completed, a lottery drawn,
a referral qualified) are published after the change they describe is durable.
Consumers (leaderboards, missions, referrals, notifications) subscribe by name and must
be idempotent: delivery is at least once, so the same event may arrive twice.

A consumer is called with the event and returns None (done) or an awaitable: the event
counts as handled when the awaitable finishes (e.g. when the consumer's own effect is
durable). A Redis consumer acknowledges only then.

`LocalEvents` delivers within this process on the next loop tick; a consumer that
raises is logged and does not stop the others. `RedisStreamEvents` implements the same
`EventBus` protocol over one Redis stream: one consumer group per consumer name, entries
acknowledged (XACK) after the consumer finished, entries left pending by a consumer that
failed or crashed claimed again (XAUTOCLAIM) after `claim_idle` seconds.

What "at least once" covers (docs/leaderboards.md, "Event bus"): an event is published
after its commit. With `LocalEvents`, events not yet delivered when the process dies are
lost (a window of one loop tick after each commit). With Redis, the window is from the
commit until the stream write (the outbox is flushed every loop tick; while Redis is down
the outbox holds up to `outbox_limit` events, then the oldest are dropped and counted);
once in the stream, an event is redelivered until a consumer acknowledged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Union

import msgspec

logger = logging.getLogger("croupier.domain")


class DomainEvent(msgspec.Struct, tag_field="kind", frozen=True, kw_only=True):
    """Base of domain events. `event_id` is unique per fact (consumers dedupe on it)."""

    event_id: str
    zone: str
    at_ms: int


class RoundSettled(DomainEvent, tag="round_settled", frozen=True, kw_only=True):
    """A casino round was committed (settled, or opened with its whole outcome drawn).

    `event_id` is the round id. `stake` and `win` are in the zone's currency units;
    `complete` is false for a multi-step round whose steps are still being revealed
    (its money is already posted). `committed_at` is the commit's timestamp (epoch ms, the
    ledger's clock): a casino round's record carries it as `created_at`, a pick round's as
    `settled_at` (0 = unknown, e.g. an event from an older node).
    """

    user_id: int
    name: str
    game: str
    currency: str
    stake: int
    win: int
    complete: bool = True
    committed_at: int = 0


class MissionCompleted(DomainEvent, tag="mission_completed", frozen=True, kw_only=True):
    """A mission instance was rewarded (its reward posted). `event_id` is
    `mission_event_id(reward key)`: one per instance, as short as a round id (consumers
    store it in 64-character columns); `points` are the mission's leaderboard points
    (boards of metric `mission_points` count them)."""

    user_id: int
    name: str
    mission: str
    points: int


def mission_event_id(reward_key: str) -> str:
    """The `MissionCompleted` id of a mission instance's reward key (40 characters)."""
    return "mission:" + hashlib.blake2b(reward_key.encode(), digest_size=16).hexdigest()


def event_types() -> tuple[type[DomainEvent], ...]:
    """Every concrete event type defined so far (the wire union of `RedisStreamEvents`):
    the subclasses of `DomainEvent`, however deep, wherever they are defined."""
    out: list[type[DomainEvent]] = []
    todo = list(DomainEvent.__subclasses__())
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return tuple(sorted(out, key=lambda c: c.__name__))


Consumer = Callable[[DomainEvent], Awaitable[None] | None]


class EventBus(Protocol):
    def publish(self, event: DomainEvent) -> None:
        """Hand `event` to every subscribed consumer (at least once)."""

    def subscribe(self, name: str, consumer: Consumer) -> None:
        """Register a named consumer (a name identifies one consumer group)."""


def _log_failure(name: str, event_id: str) -> Callable[[asyncio.Future[Any]], None]:
    def done(fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            logger.error("consumer %s failed on %s", name, event_id, exc_info=fut.exception())

    return done


class LocalEvents:
    """In-process delivery on the next loop tick, in publish order."""

    def __init__(self) -> None:
        self.consumers: dict[str, Consumer] = {}
        self.published = 0

    def subscribe(self, name: str, consumer: Consumer) -> None:
        if name in self.consumers:
            raise ValueError(f"consumer {name!r} already subscribed")
        self.consumers[name] = consumer

    def publish(self, event: DomainEvent) -> None:
        self.published += 1
        if not self.consumers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (unit tests): deliver now
            self._deliver(event)
            return
        loop.call_soon(self._deliver, event)

    def _deliver(self, event: DomainEvent) -> None:
        for name, consumer in list(self.consumers.items()):
            try:
                result = consumer(event)
            except Exception:
                logger.exception("consumer %s failed on %s", name, event.event_id)
                continue
            if result is not None and inspect.isawaitable(result):
                fut = asyncio.ensure_future(result)
                fut.add_done_callback(_log_failure(name, event.event_id))


# -- Redis Streams ---------------------------------------------------------------------------

_enc = msgspec.msgpack.Encoder()
_FIELD = b"e"
_decoders: dict[tuple[type[DomainEvent], ...], msgspec.msgpack.Decoder[Any]] = {}


def _decoder() -> msgspec.msgpack.Decoder[Any]:
    """A decoder for the tagged union of every event type (rebuilt when one is added)."""
    types = event_types()
    dec = _decoders.get(types)
    if dec is None:
        union: Any = types[0] if len(types) == 1 else Union[types]  # noqa: UP007 - a runtime union
        dec = _decoders[types] = msgspec.msgpack.Decoder(union)
    return dec


class RedisStreamEvents:
    """An `EventBus` over one Redis stream with a consumer group per consumer name.

    `publish` is synchronous (callers sit on the money path): the event goes to a bounded
    outbox that a writer task sends with pipelined XADDs. Each subscribed name reads with
    XREADGROUP as consumer `node`; a batch is handed to the consumer in stream order, and
    acknowledged once every returned awaitable finished (batches overlap, at most
    `max_inflight` unacknowledged ones per group). A failed event is not acknowledged and is
    claimed again after `claim_idle` seconds, by this node or any other.

    Start with `await bus.start()` (after `subscribe`), stop with `await bus.close()`.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "croupier:events",
        node: str = "",
        claim_idle: float = 30.0,
        maxlen: int = 1_000_000,
        batch: int = 500,
        block: float = 0.2,
        max_inflight: int = 32,
        outbox_limit: int = 100_000,
        start_id: str = "$",
    ) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.stream = stream
        self.node = node or f"node-{os.getpid()}"
        self.claim_idle = claim_idle
        self.maxlen = maxlen
        self.batch = batch
        self.block = block
        self.max_inflight = max_inflight
        self.outbox_limit = outbox_limit
        self.start_id = start_id
        self._r: Any = aioredis.Redis.from_url(url, socket_timeout=block + 5.0, socket_connect_timeout=2.0)
        self.consumers: dict[str, Consumer] = {}
        self._outbox: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._acks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closing = False
        # counters (tests, metrics)
        self.published = 0
        self.written = 0
        self.dropped = 0
        self.delivered = 0
        self.acked = 0
        self.failed = 0
        self.claimed = 0

    # -- EventBus ----------------------------------------------------------------------

    def subscribe(self, name: str, consumer: Consumer) -> None:
        if name in self.consumers:
            raise ValueError(f"consumer {name!r} already subscribed")
        self.consumers[name] = consumer
        if self._started:
            self._tasks.append(asyncio.get_running_loop().create_task(self._read(name, consumer)))

    def publish(self, event: DomainEvent) -> None:
        self.published += 1
        if len(self._outbox) >= self.outbox_limit:
            self._outbox.popleft()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 10_000 == 0:
                logger.error("event outbox full (Redis down?): %d events dropped", self.dropped)
        self._outbox.append(_enc.encode(event))
        self._wake.set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Create the groups (at `start_id` for a new group) and start the tasks."""
        self._started = True
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._write(), name="events-writer"))
        for name, consumer in self.consumers.items():
            self._tasks.append(loop.create_task(self._read(name, consumer), name=f"events-{name}"))

    async def close(self, timeout: float = 2.0) -> None:
        """Flush the outbox (up to `timeout`), let the readers stop after their current
        read (they block at most `block` seconds), finish acknowledgements, disconnect.

        Tasks are cancelled only if they overrun: a command cancelled inside the driver
        may leave its connection behind, so the readers stop on their own first.
        """
        self._closing = True
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._tasks:  # the writer flushes until the deadline; a reader stops within `block`
            await asyncio.wait(self._tasks, timeout=max(0.0, deadline - loop.time()) + self.block + 1.0)
        if self._acks:
            await asyncio.wait(list(self._acks), timeout=max(0.0, deadline - loop.time()))
        tasks = [t for t in [*self._tasks, *self._acks] if not t.done()]
        for task in tasks:  # unacknowledged entries stay pending
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._r.aclose(), 1.0)

    # -- writer ------------------------------------------------------------------------

    async def _write(self) -> None:
        while True:
            if not self._outbox:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            items = [self._outbox.popleft() for _ in range(min(len(self._outbox), self.batch))]
            try:
                async with self._r.pipeline(transaction=False) as p:
                    for data in items:
                        p.xadd(self.stream, {_FIELD: data}, maxlen=self.maxlen, approximate=True)
                    await p.execute()
                self.written += len(items)
            except asyncio.CancelledError:
                self._outbox.extendleft(reversed(items))
                raise
            except Exception as exc:
                self._outbox.extendleft(reversed(items))
                if self._closing:
                    logger.error(
                        "event stream write failed at close (%s): %d events not written",
                        exc,
                        len(self._outbox),
                    )
                    return
                logger.warning("event stream write failed (%s): retrying", exc)
                await asyncio.sleep(0.5)

    # -- readers -----------------------------------------------------------------------

    async def _ensure_group(self, group: str) -> None:
        import redis.exceptions

        try:
            await self._r.xgroup_create(self.stream, group, id=self.start_id, mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self, group: str, consumer: Consumer) -> None:
        loop = asyncio.get_running_loop()
        inflight = asyncio.Semaphore(self.max_inflight)
        while not self._closing:  # reconnects after errors
            try:
                await self._ensure_group(group)
                # entries this consumer name read before a restart and never acknowledged
                await self._pending_of_mine(group, consumer, inflight)
                next_claim = loop.time() + self.claim_idle / 2
                while not self._closing:
                    got = await self._r.xreadgroup(
                        group, self.node, {self.stream: ">"}, count=self.batch, block=int(self.block * 1000)
                    )
                    for _stream, entries in got or ():
                        await self._handle(group, consumer, entries, inflight)
                    if loop.time() >= next_claim:
                        await self._claim(group, consumer, inflight)
                        next_claim = loop.time() + max(0.05, self.claim_idle / 2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closing:
                    return
                logger.warning("event stream read (%s) failed (%s): retrying", group, exc)
                await asyncio.sleep(0.5)

    async def _pending_of_mine(self, group: str, consumer: Consumer, inflight: asyncio.Semaphore) -> None:
        start = "0"
        while True:
            got = await self._r.xreadgroup(group, self.node, {self.stream: start}, count=self.batch)
            entries = [e for _s, es in got or () for e in es if e[1]]
            if not entries:
                return
            await self._handle(group, consumer, entries, inflight)
            start = entries[-1][0]

    async def _claim(self, group: str, consumer: Consumer, inflight: asyncio.Semaphore) -> None:
        """Take over entries pending longer than `claim_idle` (their consumer failed or died)."""
        start = "0-0"
        for _ in range(100):  # bounded per call
            reply = await self._r.xautoclaim(
                self.stream, group, self.node, int(self.claim_idle * 1000), start_id=start, count=self.batch
            )
            start, entries = reply[0], reply[1]
            entries = [e for e in entries if e[1]]
            if entries:
                self.claimed += len(entries)
                await self._handle(group, consumer, entries, inflight)
            if start in (b"0-0", "0-0"):
                return

    async def _handle(
        self, group: str, consumer: Consumer, entries: list[Any], inflight: asyncio.Semaphore
    ) -> None:
        """Run the consumer on each entry in order; acknowledge when its work finished."""
        ids: list[Any] = []
        waits: list[tuple[Any, Awaitable[None]]] = []
        dec = _decoder()
        for entry_id, fields in entries:
            data = fields.get(_FIELD)
            try:
                event = dec.decode(data)
            except (msgspec.DecodeError, TypeError):
                logger.error("undecodable event %s in %s: acknowledged and skipped", entry_id, self.stream)
                ids.append(entry_id)
                continue
            self.delivered += 1
            try:
                result = consumer(event)
            except Exception:
                self.failed += 1
                logger.exception("consumer %s failed on %s (redelivered later)", group, event.event_id)
                continue
            if result is not None and inspect.isawaitable(result):
                waits.append((entry_id, result))
            else:
                ids.append(entry_id)
        if not waits:
            await self._ack(group, ids)
            return
        await inflight.acquire()
        task = asyncio.get_running_loop().create_task(self._ack_after(group, ids, waits, inflight))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _ack_after(
        self,
        group: str,
        ids: list[Any],
        waits: list[tuple[Any, Awaitable[None]]],
        inflight: asyncio.Semaphore,
    ) -> None:
        try:
            results = await asyncio.gather(*(w for _, w in waits), return_exceptions=True)
            for (entry_id, _), result in zip(waits, results, strict=True):
                if isinstance(result, BaseException):
                    self.failed += 1
                    logger.error(
                        "consumer %s failed on entry %s (redelivered later): %r", group, entry_id, result
                    )
                else:
                    ids.append(entry_id)
            await self._ack(group, ids)
        except Exception as exc:  # unacknowledged entries are claimed again later
            logger.warning("acknowledging %d events of %s failed: %s", len(ids), group, exc)
        finally:
            inflight.release()

    async def _ack(self, group: str, ids: list[Any]) -> None:
        if ids:
            await self._r.xack(self.stream, group, *ids)
            self.acked += len(ids)


def open_events(url: str | None, **options: Any) -> LocalEvents | RedisStreamEvents:
    """The bus for `events.url`: in-process when None, else Redis Streams."""
    if url is None:
        return LocalEvents()
    return RedisStreamEvents(url, **options)
