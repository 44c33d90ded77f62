"""One contract for every bus carrier: Unix sockets (one node) and Redis (several nodes).

Each test makes members on one event loop; the carriers are real (Unix sockets in a
temporary directory, the Redis server of the test machine with a per-run channel prefix).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gameserver.bus import Bus, BusBusy, BusTimeout, BusUnreachable, RedisBus, RemoteError, UnixBus
from protocol.codes import ErrorCode
from protocol.errors import RequestError

from .conftest import REDIS_URL, require, run

Factory = Callable[[str], Bus]


@pytest.fixture(params=["unix", pytest.param("redis", marks=pytest.mark.redis)])
def make_bus(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    if request.param == "unix":
        directory = tmp_path / "bus"
        return lambda me, **kw: UnixBus(me, directory, **kw)
    require("Redis", REDIS_URL)
    prefix = f"croupier-test:{secrets.token_hex(4)}:"
    return lambda me, **kw: RedisBus(me, REDIS_URL, prefix=prefix, **kw)


@asynccontextmanager
async def members(make: Factory, *names: str, **kw: Any) -> AsyncIterator[list[Bus]]:
    buses = [make(n, **kw) for n in names]
    for b in buses:
        await b.start()
    try:
        yield buses
    finally:
        for b in buses:
            await b.close()


def test_cast_arrives_in_order(make_bus: Factory) -> None:
    async def body() -> None:
        async with members(make_bus, "w0", "w1") as (a, b):
            got: list[tuple[str, Any]] = []
            done = asyncio.Event()

            def on_note(src: str, body: Any) -> None:
                got.append((src, body))
                if len(got) == 500:
                    done.set()

            b.on("note", on_note)
            for i in range(250):  # two ticks' worth, with a yield between
                a.cast("w1", "note", {"i": i})
            await asyncio.sleep(0)
            for i in range(250, 500):
                a.cast("w1", "note", {"i": i})
            await asyncio.wait_for(done.wait(), 5)
            assert [x["i"] for _, x in got] == list(range(500))
            assert {src for src, _ in got} == {"w0"}
            assert a.stats.batches_sent < 500  # batched per tick, not one write per cast

    run(body())


def test_call_returns_the_handlers_reply_sync_and_async(make_bus: Factory) -> None:
    async def body() -> None:
        async with members(make_bus, "w0", "w1") as (a, b):
            b.on("add", lambda src, x: x["a"] + x["b"])

            async def slow_echo(src: str, x: Any) -> Any:
                await asyncio.sleep(0.01)
                return {"from": src, "x": x}

            b.on("echo", slow_echo)
            results = await asyncio.gather(*(a.call("w1", "add", {"a": i, "b": 1}) for i in range(100)))
            assert results == [i + 1 for i in range(100)]
            assert await a.call("w1", "echo", [1, "two"]) == {"from": "w0", "x": [1, "two"]}
            assert len(a.stats.call_latency) == 101

    run(body())


def test_calls_both_ways_and_to_self(make_bus: Factory) -> None:
    async def body() -> None:
        async with members(make_bus, "w0", "w1") as (a, b):
            a.on("who", lambda src, _: "w0")
            b.on("who", lambda src, _: "w1")
            assert await a.call("w1", "who", None) == "w1"
            assert await b.call("w0", "who", None) == "w0"
            assert await a.call("w0", "who", None) == "w0"

    run(body())


def test_remote_errors_are_named_and_keep_wire_codes(make_bus: Factory) -> None:
    async def body() -> None:
        async with members(make_bus, "w0", "w1") as (a, b):

            def refuse(src: str, _: Any) -> Any:
                raise RequestError(ErrorCode.ROOM_FULL, "room is full")

            def crash(src: str, _: Any) -> Any:
                raise ValueError("boom")

            b.on("refuse", refuse)
            b.on("crash", crash)
            with pytest.raises(RemoteError) as e1:
                await a.call("w1", "refuse", None)
            assert (e1.value.kind, e1.value.code, e1.value.message) == ("room_full", 201, "room is full")
            with pytest.raises(RemoteError) as e2:
                await a.call("w1", "crash", None)
            assert e2.value.kind == "ValueError" and e2.value.code is None
            with pytest.raises(RemoteError) as e3:
                await a.call("w1", "nobody-handles-this", None)
            assert e3.value.kind == "no_handler"
            b.on("ok", lambda src, _: "fine")
            assert await a.call("w1", "ok", None) == "fine"

    run(body())


def test_a_missing_member_fails_fast_as_unreachable(make_bus: Factory) -> None:
    async def body() -> None:
        async with members(make_bus, "w0") as (a,):
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(BusUnreachable):
                await a.call("w9", "anything", None, timeout=5)
            assert loop.time() - started < 2  # not the timeout

    run(body())


def test_a_silent_handler_times_out(make_bus: Factory) -> None:
    async def body() -> None:
        async with members(make_bus, "w0", "w1") as (a, b):
            never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            b.on("hang", lambda src, _: never)
            with pytest.raises(BusTimeout):
                await a.call("w1", "hang", None, timeout=0.2)
            assert a.stats.errors["bus_timeout"] == 1
            never.cancel()

    run(body())


def test_a_member_that_goes_away_fails_calls_in_flight_and_comes_back(make_bus: Factory) -> None:
    async def body() -> None:
        a = make_bus("w0")
        b = make_bus("w1")
        await a.start()
        await b.start()
        try:
            b.on("ping", lambda src, _: "pong")
            assert await a.call("w1", "ping", None) == "pong"
            await b.close()
            with pytest.raises((BusUnreachable, BusTimeout)):
                await a.call("w1", "ping", None, timeout=3)
            b2 = make_bus("w1")  # the worker restarted
            await b2.start()
            try:
                b2.on("ping", lambda src, _: "pong again")
                assert await a.call("w1", "ping", None, timeout=3) == "pong again"
            finally:
                await b2.close()
        finally:
            await a.close()

    run(body())


def test_a_full_queue_refuses_instead_of_growing(make_bus: Factory) -> None:
    async def body() -> None:
        async with members(make_bus, "w0", "w1", max_queued_bytes=4096) as (a, b):
            b.on("blob", lambda src, _: None)
            sent = sum(a.cast("w1", "blob", b"x" * 1000) for _ in range(10))
            assert sent < 10 and a.stats.dropped == 10 - sent
            with pytest.raises(BusBusy):
                await a.call("w1", "blob", b"x" * 5000)

    run(body())


def test_garbage_on_the_wire_is_dropped_not_fatal(make_bus: Factory) -> None:
    async def body() -> None:
        async with members(make_bus, "w0", "w1") as (a, b):
            b.on("ping", lambda src, _: "pong")
            b._received(b"\xc1 not msgpack")
            b._received(b"\x93\x01\x02\x03")  # wrong shape
            assert b.stats.errors["bad_frame"] == 2
            assert await a.call("w1", "ping", None) == "pong"

    run(body())


@pytest.mark.redis
def test_hybrid_bus_uses_unix_within_a_node_and_redis_between_nodes(tmp_path: Path) -> None:
    require("Redis", REDIS_URL)
    prefix = f"croupier-test:{secrets.token_hex(4)}:"

    async def body() -> None:
        from gameserver.bus import HybridBus

        names = ["0.0", "0.1", "1.0"]
        buses = [HybridBus(n, tmp_path / f"node{n[0]}", REDIS_URL, prefix=prefix) for n in names]
        for b in buses:
            b.on("who", lambda src, _, me=b.me: [me, src])
            await b.start()
        try:
            a = buses[0]
            assert await a.call("0.1", "who", None) == ["0.1", "0.0"]
            assert await a.call("1.0", "who", None) == ["1.0", "0.0"]
            assert await buses[2].call("0.1", "who", None) == ["0.1", "1.0"]
            assert a.unix._outbound.keys() == {"0.1"}  # same node: a Unix socket
            assert buses[2].unix._outbound == {}  # other node: Redis only
        finally:
            for b in buses:
                await b.close()

    run(body())
