"""At-least-once delivery meets idempotent scoring across a restart (real Redis stream).

With the Redis event bus the leaderboard writes each counted round id with its score in one
checkpoint and acknowledges the event only after it. So after a crash:

* an event read but not checkpointed is still pending: another owner claims it and counts it;
* an event checkpointed but not acknowledged comes again: the stored round id makes it a
  duplicate, the score does not move.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as aioredis

from gameserver.clock import ManualClock
from gameserver.domain import RedisStreamEvents, RoundSettled
from gameserver.hub import Hub
from gameserver.leaderboards import Leaderboards
from persistence import Stores, open_stores
from tests.contract.conftest import REDIS_URL, redis_url, require  # noqa: F401 - the fixture

from .test_leaderboards import T0, daily, lb_config

pytestmark = pytest.mark.redis
CFG = lb_config(wins=daily())


def settled(n: int, user: int, win: int, at: float) -> RoundSettled:
    return RoundSettled(
        event_id=f"round-{n}",
        zone="demo",
        at_ms=int(at * 1000),
        user_id=user,
        name=f"P{user}",
        game="fruit_slot",
        currency="FUN",
        stake=10,
        win=win,
    )


async def owner(
    stores: Stores, clock: ManualClock, stream: str, node: str
) -> tuple[Leaderboards, RedisStreamEvents]:
    hub = Hub(CFG, clock, call_soon=lambda fn: None)
    bus = RedisStreamEvents(REDIS_URL, stream=stream, node=node, block=0.05, claim_idle=0.3, start_id="0")
    hub.events = bus
    svc = Leaderboards(hub, stores, CFG, instance=node)
    assert svc.durable_dedupe
    await svc.start(tick=False)
    await bus.start()
    return svc, bus


def score(svc: Leaderboards, user: int) -> int | None:
    got = svc.boards[("demo", "wins")].board.index.get(str(user))
    return None if got is None else got[0]


async def until(check: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


def test_an_event_read_but_not_checkpointed_is_counted_once_by_the_next_owner() -> None:
    require("Redis", REDIS_URL)

    async def go() -> None:
        stream = f"croupier_test:{secrets.token_hex(6)}:events"
        stores = await open_stores("memory://")
        clock = ManualClock(T0 + 3600)
        buses: list[RedisStreamEvents] = []  # closed again in `finally` if a check failed first
        try:
            a, bus_a = await owner(stores, clock, stream, "a")
            buses.append(bus_a)
            for n in range(3):
                bus_a.publish(settled(n, 7, 100, clock.wall()))
            await until(lambda: score(a, 7) == 300)  # counted in memory, never checkpointed
            assert bus_a.acked == 0
            await bus_a.close(timeout=0.05)  # the owner dies
            clock.advance(10)
            b, bus_b = await owner(stores, clock, stream, "b")
            buses.append(bus_b)
            await until(lambda: bus_b.claimed == 3)
            # `claimed` counts the entries taken over before they are handled (each checks
            # the stored round ids first, which awaits the store): wait for the handling
            await until(lambda: score(b, 7) == 300)  # once: the checkpoint below holds 300
            b.tick()  # the checkpoint, then the acknowledgements
            await until(lambda: bus_b.acked == 3)
            await b.drain()
            await bus_b.close()
            rows = await stores.backend.leaderboards.top("demo:wins", str(T0))
            assert [(r.owner_id, r.score) for r in rows] == [("7", 300)]
        finally:
            for bus in buses:  # a second close only disconnects again
                await bus.close(timeout=0.05)
            await stores.close()
            r = aioredis.Redis.from_url(REDIS_URL)
            await r.delete(stream)
            await r.aclose()

    asyncio.run(go())


def test_an_event_checkpointed_but_not_acknowledged_is_a_duplicate_after_restart() -> None:
    require("Redis", REDIS_URL)

    async def go() -> None:
        stream = f"croupier_test:{secrets.token_hex(6)}:events"
        stores = await open_stores("memory://")
        clock = ManualClock(T0 + 3600)
        buses: list[RedisStreamEvents] = []  # closed again in `finally` if a check failed first
        try:
            a, bus_a = await owner(stores, clock, stream, "a")
            buses.append(bus_a)
            counted = settled(1, 7, 250, clock.wall())
            waiter = a.on_event(counted)  # as the bus would call it
            assert waiter is not None
            await a.flush()
            await waiter  # durable: the bus would acknowledge now, but the process dies first
            await bus_a.close()
            clock.advance(10)
            b, bus_b = await owner(stores, clock, stream, "b")
            buses.append(bus_b)
            assert score(b, 7) == 250  # restored from the checkpoint
            again = b.on_event(counted)  # redelivered
            assert again is not None
            fresh = b.on_event(
                settled(2, 7, 50, clock.wall() - 5)
            )  # settled before the restart, never counted
            assert fresh is not None
            both = asyncio.gather(again, fresh)
            while not both.done():  # the ticks' checkpoints make them durable
                b.tick()
                await asyncio.sleep(0.01)
            await both
            assert score(b, 7) == 300 and b.stats.duplicates == 1
            await b.drain()
            await bus_b.close()
        finally:
            for bus in buses:  # a second close only disconnects again
                await bus.close(timeout=0.05)
            await stores.close()
            r = aioredis.Redis.from_url(REDIS_URL)
            await r.delete(stream)
            await r.aclose()

    asyncio.run(go())


def test_checkpoints_mirror_the_standings_into_redis_sorted_sets(redis_url: str) -> None:  # noqa: F811
    """With `store.cache_url` on Redis, each checkpoint also writes the period's sorted set:
    the shared truth other nodes read (the database stays authoritative)."""

    async def go() -> None:
        stores = await open_stores("memory://", redis_url)
        clock = ManualClock(T0 + 3600)
        hub = Hub(CFG, clock, call_soon=lambda fn: None)
        svc = Leaderboards(hub, stores, CFG)
        await svc.start(tick=False)
        try:
            for n, (user, win) in enumerate([(1, 500), (2, 900), (1, 100)]):
                svc.on_event(settled(n, user, win, clock.wall()))
            await svc.flush()
            top = await stores.cache.ztop(f"demo:wins:{T0}", limit=10)
            assert top == [("2", 900), ("1", 600)]
        finally:
            await svc.drain()
            await stores.close()

    asyncio.run(go())
