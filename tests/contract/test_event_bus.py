"""The event bus contract over the in-process bus and Redis Streams (real Redis).

Every bus: each named consumer gets each event, in publish order; a consumer that raises
does not stop the others; an async consumer's awaitable decides when the event is handled.
Redis only: an event whose consumer failed, or whose node died before acknowledging, is
delivered again (at least once); acknowledged events are not.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from gameserver.domain import DomainEvent, LocalEvents, MissionCompleted, RedisStreamEvents, RoundSettled

from .conftest import REDIS_URL, require, run

Bus = LocalEvents | RedisStreamEvents


def settled(n: int, user: int = 1) -> RoundSettled:
    return RoundSettled(
        event_id=f"round-{n}",
        zone="demo",
        at_ms=1_000 + n,
        user_id=user,
        name=f"u{user}",
        game="fruit_slot",
        currency="FUN",
        stake=10,
        win=n,
    )


def redis_bus(stream: str, node: str = "n1", **kw: Any) -> RedisStreamEvents:
    return RedisStreamEvents(REDIS_URL, stream=stream, node=node, block=0.05, start_id="0", **kw)


async def drop(stream: str) -> None:
    r = aioredis.Redis.from_url(REDIS_URL)
    await r.delete(stream)
    await r.aclose()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require("Redis", REDIS_URL)
    return str(request.param)


def with_bus(kind: str, body: Callable[[Bus], Awaitable[None]], subscribe: Callable[[Bus], None]) -> None:
    async def go() -> None:
        stream = f"croupier_test:{secrets.token_hex(6)}:events"
        bus: Bus = LocalEvents() if kind == "local" else redis_bus(stream)
        subscribe(bus)
        if isinstance(bus, RedisStreamEvents):
            await bus.start()
        try:
            await body(bus)
        finally:
            if isinstance(bus, RedisStreamEvents):
                await bus.close()
                await drop(stream)

    run(go())


def test_every_consumer_gets_every_event_in_order(kind: str) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def subscribe(bus: Bus) -> None:
        bus.subscribe("a", lambda e: seen["a"].append(e.event_id))
        bus.subscribe("b", lambda e: seen["b"].append(e.event_id))

    async def body(bus: Bus) -> None:
        for n in range(50):
            bus.publish(settled(n))
        await eventually(lambda: len(seen["a"]) == 50 and len(seen["b"]) == 50)
        await asyncio.sleep(0.1)  # nothing more arrives
        want = [f"round-{n}" for n in range(50)]
        assert seen["a"] == want and seen["b"] == want

    with_bus(kind, body, subscribe)


def test_events_keep_their_type_and_fields(kind: str) -> None:
    got: list[DomainEvent] = []

    async def body(bus: Bus) -> None:
        bus.publish(settled(7, user=42))
        await eventually(lambda: len(got) == 1)
        assert got[0] == settled(7, user=42) and isinstance(got[0], RoundSettled)

    with_bus(kind, body, lambda bus: bus.subscribe("a", got.append))


def test_a_failing_consumer_does_not_stop_the_others(kind: str) -> None:
    ok: list[str] = []

    def boom(e: DomainEvent) -> None:
        raise RuntimeError("consumer bug")

    def subscribe(bus: Bus) -> None:
        bus.subscribe("bad", boom)
        bus.subscribe("good", lambda e: ok.append(e.event_id))

    async def body(bus: Bus) -> None:
        bus.publish(settled(1))
        bus.publish(settled(2))
        await eventually(lambda: ok == ["round-1", "round-2"])

    with_bus(kind, body, subscribe)


def test_an_async_consumer_finishes_its_work(kind: str) -> None:
    done: list[str] = []
    release = asyncio.Event()

    async def work(e: DomainEvent) -> None:
        await release.wait()
        done.append(e.event_id)

    async def body(bus: Bus) -> None:
        bus.publish(settled(1))
        await asyncio.sleep(0.2)
        assert done == []
        if isinstance(bus, RedisStreamEvents):  # read, not acknowledged while the work runs
            assert bus.delivered == 1 and bus.acked == 0
        release.set()
        await eventually(lambda: done == ["round-1"])
        if isinstance(bus, RedisStreamEvents):
            await eventually(lambda: bus.acked == 1)

    with_bus(kind, body, lambda bus: bus.subscribe("a", work))


class TestBonusGranted(DomainEvent, tag="test_bonus_granted", frozen=True, kw_only=True):
    """An event type defined outside gameserver/domain.py (as missions or bonuses will)."""

    __test__ = False
    user_id: int
    amount: int


def test_event_types_defined_elsewhere_travel_too(kind: str) -> None:
    got: list[DomainEvent] = []

    done = MissionCompleted(
        event_id="mission:1", zone="demo", at_ms=6, user_id=3, name="P3", mission="m", points=9
    )

    async def body(bus: Bus) -> None:
        bus.publish(TestBonusGranted(event_id="b-1", zone="demo", at_ms=5, user_id=3, amount=700))
        bus.publish(settled(1))
        bus.publish(done)
        await eventually(lambda: len(got) == 3)
        assert got[0] == TestBonusGranted(event_id="b-1", zone="demo", at_ms=5, user_id=3, amount=700)
        assert isinstance(got[1], RoundSettled)
        assert got[2] == done

    with_bus(kind, body, lambda bus: bus.subscribe("a", got.append))


def test_duplicate_subscription_is_refused(kind: str) -> None:
    async def body(bus: Bus) -> None:
        with pytest.raises(ValueError):
            bus.subscribe("a", lambda e: None)

    with_bus(kind, body, lambda bus: bus.subscribe("a", lambda e: None))


# -- Redis only: at least once ---------------------------------------------------------------


@pytest.mark.redis
def test_a_failed_event_is_delivered_again_until_it_succeeds() -> None:
    require("Redis", REDIS_URL)
    attempts: list[str] = []

    def flaky(e: DomainEvent) -> None:
        attempts.append(e.event_id)
        if len(attempts) < 3:
            raise RuntimeError("transient")

    async def go() -> None:
        stream = f"croupier_test:{secrets.token_hex(6)}:events"
        bus = redis_bus(stream, claim_idle=0.2)
        bus.subscribe("a", flaky)
        await bus.start()
        try:
            bus.publish(settled(1))
            await eventually(lambda: bus.acked == 1)
            assert attempts == ["round-1"] * 3
            pending = await bus._r.xpending(stream, "a")
            assert pending["pending"] == 0
        finally:
            await bus.close()
            await drop(stream)

    run(go())


@pytest.mark.redis
def test_a_node_that_dies_before_acknowledging_is_taken_over() -> None:
    """Node 1 reads the events but dies before its (async) work finishes: node 2 claims
    them after `claim_idle` and handles each exactly once more."""
    require("Redis", REDIS_URL)
    first: list[str] = []
    second: list[str] = []
    never = asyncio.Event()

    async def stuck(e: DomainEvent) -> None:
        first.append(e.event_id)
        await never.wait()

    async def go() -> None:
        stream = f"croupier_test:{secrets.token_hex(6)}:events"
        one = redis_bus(stream, node="n1", claim_idle=0.3)
        one.subscribe("lb", stuck)
        await one.start()
        for n in range(5):
            one.publish(settled(n))
        await eventually(lambda: len(first) == 5)
        await one.close(timeout=0.05)  # "crash": the work never finished, nothing acknowledged
        two = redis_bus(stream, node="n2", claim_idle=0.3)
        two.subscribe("lb", lambda e: second.append(e.event_id))
        await two.start()
        try:
            await eventually(lambda: two.acked == 5)
            assert sorted(second) == sorted(first) and len(second) == 5
            assert two.claimed == 5
            await asyncio.sleep(0.8)  # claimed and acknowledged: never again
            assert len(second) == 5
        finally:
            await two.close()
            await drop(stream)

    run(go())


@pytest.mark.redis
def test_a_restarted_node_gets_its_own_pending_entries_at_once() -> None:
    require("Redis", REDIS_URL)
    first: list[str] = []
    again: list[str] = []
    never = asyncio.Event()

    async def stuck(e: DomainEvent) -> None:
        first.append(e.event_id)
        await never.wait()

    async def go() -> None:
        stream = f"croupier_test:{secrets.token_hex(6)}:events"
        one = redis_bus(stream, node="stable", claim_idle=60)
        one.subscribe("lb", stuck)
        await one.start()
        one.publish(settled(1))
        await eventually(lambda: first == ["round-1"])
        await one.close(timeout=0.05)
        back = redis_bus(stream, node="stable", claim_idle=60)  # same name, long claim time
        back.subscribe("lb", lambda e: again.append(e.event_id))
        await back.start()
        try:
            await eventually(lambda: again == ["round-1"], timeout=3)
        finally:
            await back.close()
            await drop(stream)

    run(go())


def recorder(into: list[str]) -> Callable[[DomainEvent], None]:
    return lambda e: into.append(e.event_id)


@pytest.mark.redis
def test_nodes_in_one_group_share_the_events() -> None:
    require("Redis", REDIS_URL)
    got: dict[str, list[str]] = {"n1": [], "n2": []}

    async def go() -> None:
        stream = f"croupier_test:{secrets.token_hex(6)}:events"
        buses = []
        for node in ("n1", "n2"):
            b = redis_bus(stream, node=node, batch=5)
            b.subscribe("lb", recorder(got[node]))
            await b.start()
            buses.append(b)
        try:
            for n in range(200):
                buses[n % 2].publish(settled(n))
            await eventually(lambda: len(got["n1"]) + len(got["n2"]) == 200)
            await asyncio.sleep(0.2)
            every = got["n1"] + got["n2"]
            assert sorted(every) == sorted(f"round-{n}" for n in range(200))  # each once
        finally:
            for b in buses:
                await b.close()
            await drop(stream)

    run(go())


def test_the_outbox_is_bounded_while_redis_is_unreachable() -> None:
    async def go() -> None:
        bus = RedisStreamEvents("redis://127.0.0.1:1/0", stream="x", outbox_limit=10)
        for n in range(25):
            bus.publish(settled(n))
        assert len(bus._outbox) == 10 and bus.dropped == 15
        await bus._r.aclose()

    run(go())
