"""The bus between workers, and rooms whose members live on two workers.

Part 1, raw bus (two processes, each its own uvloop): calls per second (a window of
concurrent calls) with round-trip percentiles, and casts per second, over the Unix bus
and the Redis bus, side by side.

Part 2, a room across workers (two sharded worker processes plus one client process, real
WebSockets): M members send public messages to one room; we time send -> receipt at
every member. Run once with every member on the room's host worker ("local") and once
with half of them on the other worker ("split", fanned out through the bus), in the same
run; the report gives the ratio.

Run: `python -m bench.bus` (about a minute; `--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from typing import Any

import uvloop

from gameserver.bus import Bus, RedisBus, UnixBus

REDIS_URL = os.environ.get("CROUPIER_BENCH_REDIS", "redis://127.0.0.1:6379/15")


def make_bus(kind: str, me: str, where: str) -> Bus:
    if kind == "unix":
        return UnixBus(me, where)
    return RedisBus(me, REDIS_URL, prefix=f"croupier-bench:{where}:")


def _echo_member(kind: str, where: str, ready: Any, stop: Any) -> None:
    async def main() -> None:
        bus = make_bus(kind, "echo", where)
        bus.on("echo", lambda src, body: body)
        count = [0]

        def on_cast(src: str, body: Any) -> None:
            count[0] += 1

        bus.on("cast", on_cast)
        bus.on("count", lambda src, body: count[0])
        await bus.start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await bus.close()

    uvloop.run(main())


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def _drive(kind: str, where: str, seconds: float) -> dict[str, float]:
    bus = make_bus(kind, "driver", where)
    await bus.start()
    body = {"room": 1, "text": "good luck everyone, the jackpot is hot tonight", "from": 12345}
    lat: list[float] = []
    calls = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal calls
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            await bus.call("echo", "echo", body)
            lat.append(time.perf_counter() - t)
            calls += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(64)))
    call_rate = calls / (time.perf_counter() - started)
    # casts: bursts of 1000 per tick; every 10 bursts a call waits for the receiver to
    # catch up (flow control: Redis disconnects a pub/sub reader that falls far behind)
    before = await bus.call("echo", "count", None)
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            bus.cast("echo", "cast", body)
        sent += 1000
        if sent % 10_000 == 0:
            await bus.call("echo", "count", None, timeout=30)
        else:
            await asyncio.sleep(0)
    arrived = await bus.call("echo", "count", None, timeout=30) - before  # ordered after the casts
    cast_rate = arrived / (time.perf_counter() - started)
    await bus.close()
    return {
        "calls_per_s": call_rate,
        "call_p50_ms": statistics.median(lat) * 1000,
        "call_p99_ms": pct(lat, 0.99) * 1000,
        "casts_per_s": cast_rate,
        "casts_lost": sent - arrived,
    }


def raw_bus(kind: str, seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    where = tempfile.mkdtemp(prefix="croupier-bus-bench-") if kind == "unix" else str(os.getpid())
    proc = ctx.Process(target=_echo_member, args=(kind, where, ready, stop), daemon=True)
    proc.start()
    try:
        if not ready.wait(10):
            raise RuntimeError("echo member did not start")
        return uvloop.run(_drive(kind, where, seconds))
    finally:
        stop.set()
        proc.join(5)
        if proc.is_alive():
            proc.kill()


# -- part 2: one room, members on one or two workers -------------------------------------


def _worker(me: str, members: list[str], bus_dir: str, ports: Any, ready: Any, stop: Any) -> None:
    from gameserver.config import AuthSection, Config, LimitsSection, ServerSection
    from gameserver.hub import Hub
    from gameserver.server import start
    from gameserver.sharding import join_ring
    from protocol.limits import FloodLimits
    from rooms.config import RoomConfig, ZoneConfig

    cfg = Config(
        server=ServerSection(host="127.0.0.1", ws_port=0, tcp_port=-1, admin_port=-1),
        limits=LimitsSection(idle_timeout=600, heartbeat_interval=300),
        auth=AuthSection(secret="bench"),
        zones=[
            ZoneConfig(
                name="bench",
                guests=True,
                rooms=[RoomConfig("Hall", max_users=10_000)],
                flood=FloodLimits(rate=100_000, burst=100_000),
            )
        ],
    )

    async def main() -> None:
        hub = Hub(cfg)
        router = await join_ring(hub, me, members, f"unix://{bus_dir}")
        server = await start(cfg, hub=hub)
        ports[me] = server.ws_port
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await server.stop(0.2)
        await router.close()

    uvloop.run(main())


class _Member:
    """A light MessagePack client (bench/wsclient.py) that times public messages."""

    def __init__(self) -> None:
        import msgspec

        self.enc = msgspec.msgpack.Encoder()
        self.dec = msgspec.msgpack.Decoder()
        self.proto: Any = None
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.latencies: list[float] = []
        self.next_id = 1

    async def open(self, url: str) -> None:
        from urllib.parse import urlsplit

        from bench.wsclient import connect

        u = urlsplit(url)
        assert u.hostname is not None and u.port is not None
        self.proto = await connect(u.hostname, u.port, u.path, "croupier.v1.msgpack", self.on_message)

    def on_message(self, payload: bytes) -> None:
        msg = self.dec.decode(payload)
        kind = msg.get("type")
        if kind in ("ok", "error"):
            fut = self.waiting.pop(msg.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif kind == "event" and msg.get("event") == "public_message":
            self.latencies.append(time.perf_counter() - float(msg["data"]["text"]))

    async def request(self, obj: dict[str, Any]) -> Any:
        rid = self.next_id
        self.next_id += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        self.send({**obj, "id": rid})
        return await asyncio.wait_for(fut, 10)

    def send(self, obj: dict[str, Any]) -> None:
        self.proto.send(self.enc.encode(obj))

    def drain(self) -> None:
        self.latencies.clear()

    def take_latencies(self, _: str) -> list[float]:
        got, self.latencies = self.latencies, []
        return got

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()


async def _room_run(urls: list[str], senders: int, messages: int, interval: float = 0.02) -> dict[str, float]:
    clients = [_Member() for _ in urls]
    await asyncio.gather(*(c.open(u) for c, u in zip(clients, urls, strict=True)))
    try:
        for i, c in enumerate(clients):
            r = await c.request({"type": "login", "guest": True, "zone": "bench", "name": f"m{i}"})
            assert r["type"] == "ok", r
        for c in clients:
            r = await c.request({"type": "join_room", "room": "Hall"})
            assert r["type"] == "ok", r
        room = r["data"]["room"]["id"]
        await asyncio.sleep(0.3)
        for c in clients:
            c.drain()
        lat: list[float] = []
        expected = senders * messages * len(clients)
        started = time.perf_counter()
        for _ in range(messages):
            stamp = time.perf_counter()
            for c in clients[:senders]:
                c.send({"type": "public_message", "id": 0, "room": room, "text": f"{stamp}"})
            await asyncio.sleep(interval)
            for c in clients:
                lat.extend(c.take_latencies("public_message"))
        deadline = time.perf_counter() + 10
        while len(lat) < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
            for c in clients:
                lat.extend(c.take_latencies("public_message"))
        elapsed = time.perf_counter() - started
        return {
            "delivered": len(lat),
            "expected": expected,
            "deliveries_per_s": len(lat) / elapsed,
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": pct(lat, 0.99) * 1000,
        }
    finally:
        for c in clients:
            c.close()


def room_bench(members_n: int, senders: int, messages: int) -> dict[str, dict[str, float]]:
    from gameserver.sharding import Shards
    from rooms.config import RoomConfig, ZoneConfig
    from rooms.zone import Zone

    ring = ["w0", "w1"]
    host = Shards(
        "w0", ring, {"bench": Zone(ZoneConfig(name="bench", rooms=[RoomConfig("Hall")]))}
    ).host_by_name("bench", "Hall")
    other = next(w for w in ring if w != host)
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    ports = manager.dict()
    stop = ctx.Event()
    bus_dir = tempfile.mkdtemp(prefix="croupier-room-bench-")
    procs = []
    for me in ring:
        ready = ctx.Event()
        p = ctx.Process(target=_worker, args=(me, ring, bus_dir, ports, ready, stop), daemon=True)
        p.start()
        procs.append(p)
        if not ready.wait(20):
            raise RuntimeError(f"worker {me} did not start")
    try:
        url = {w: f"ws://127.0.0.1:{ports[w]}/ws" for w in ring}
        local = [url[host]] * members_n
        split = [url[host] if i % 2 else url[other] for i in range(members_n)]
        # guests land where they connect (each worker hands out ids it owns)
        results = {}
        for name, urls in (("local", local), ("split", split)):
            results[name] = uvloop.run(_room_run(urls, senders, messages))
        return results
    finally:
        stop.set()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        manager.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 4.0
    print(f"raw bus, two processes, {seconds:.0f} s per case")
    rows = {}
    for kind in ("unix", *(() if args.skip_redis else ("redis",))):
        rows[kind] = r = raw_bus(kind, seconds)
        print(
            f"  {kind:<6} calls {r['calls_per_s']:>9,.0f}/s  p50 {r['call_p50_ms']:.2f} ms  p99 {r['call_p99_ms']:.2f} ms"
            f"   casts {r['casts_per_s']:>10,.0f}/s  lost {r['casts_lost']:.0f}"
        )
    if "redis" in rows:
        u, rd = rows["unix"], rows["redis"]
        print(
            f"  unix/redis: calls x{u['calls_per_s'] / rd['calls_per_s']:.1f}, casts x{u['casts_per_s'] / rd['casts_per_s']:.1f}"
        )
    members_n, senders, messages = (20, 2, 20) if args.quick else (100, 5, 100)
    print(
        f"one room, {members_n} members, {senders} senders x {messages} messages every 20 ms,"
        " two worker processes, one client process"
    )
    res = room_bench(members_n, senders, messages)
    for name, r in res.items():
        print(
            f"  {name:<6} delivered {r['delivered']:.0f}/{r['expected']:.0f}  {r['deliveries_per_s']:>9,.0f} deliveries/s"
            f"  p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms"
        )
    loc, spl = res["local"], res["split"]
    print(
        f"  split/local: throughput x{spl['deliveries_per_s'] / loc['deliveries_per_s']:.2f},"
        f" p99 x{spl['p99_ms'] / loc['p99_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
