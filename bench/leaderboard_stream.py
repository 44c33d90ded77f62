"""Leaderboard streaming under load: N subscribers, R score updates/s, delta delivery latency.

Two modes (both run by default):

* ``inproc``: one hub with N logged-in sessions on in-memory links (no sockets), the real
  leaderboard service and tick driver, a feeder publishing R settled rounds/s on the event
  bus. Every session subscribes to one board (top 10); a sample of the links decodes what is
  written to them. This is the server's own cost of fan-out.
* ``sockets``: the same server in a child process, listening on 127.0.0.1, with the feeder
  inside it (the casino's durable commits are not part of this bench), and N WebSocket
  clients spread over C client processes (bench/wsclient.py, JSON).

Latency: each update carries its publish time (ms) in the player's name, so every row of
a delta says when the score it shows was produced. Reported per delivered delta:

* ``update→client``: receive time minus the publish time of the oldest row the delta
  changed: includes up to one tick of batching (the tick is the design's batching window);
* ``tick→client``: receive time minus the newest row's publish time: the fan-out delay
  after the tick (at R updates/s the newest update is < 1 ms older than the tick).

It also reports the server's event-loop lag (a 5 ms probe; what other sessions' requests
would wait) and the tick cost.

Run: ``python -m bench.leaderboard_stream`` (defaults: 10,000 subscribers, 10,000 updates/s,
10 s per mode); ``--mode sockets --subscribers 2000 --clients 3``; ``--json`` for a summary line;
``BENCH_GC_FREEZE=1``: ``gc.freeze()`` once the sessions are set up (what full collections cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec

from gameserver.config import (
    Config,
    LeaderboardBoard,
    LeaderboardsSection,
    LimitsSection,
    ServerSection,
)
from gameserver.connection import Connection
from gameserver.domain import RoundSettled
from gameserver.hub import GUEST_ID_BASE, Hub
from gameserver.leaderboards import Leaderboards
from protocol.codec import JSON
from protocol.limits import FloodLimits
from rooms.config import RoomConfig, ZoneConfig

ZONE = "bench"
BOARD = "wins"
PLAYERS = 100_000  # distinct players whose rounds settle
_dec = msgspec.json.Decoder()


def bench_config(tick: float, port: int = 0) -> Config:
    return Config(
        server=ServerSection(host="127.0.0.1", ws_port=port, tcp_port=-1, sweep_interval=1.0, backlog=16384),
        limits=LimitsSection(
            idle_timeout=600,
            heartbeat_interval=300,
            auth_timeout=60,
            max_outgoing_bytes=8 << 20,
            replay_buffer=16,
        ),
        zones=[
            ZoneConfig(
                name=ZONE,
                guests=True,
                max_users=1_000_000,
                rooms=[RoomConfig("Lobby", max_users=10)],
                default_groups=[],
                flood=FloodLimits(rate=1e6, burst=10**6),
            )
        ],
        leaderboards=LeaderboardsSection(
            zones={ZONE: {BOARD: LeaderboardBoard(top_n=10)}}, tick_interval=tick
        ),
    )


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def summarize(name: str, xs: list[float]) -> dict[str, float]:
    return {
        f"{name}_p50_ms": round(pct(xs, 50), 1),
        f"{name}_p99_ms": round(pct(xs, 99), 1),
        f"{name}_max_ms": round(max(xs), 1) if xs else float("nan"),
    }


class Samples:
    """What sampled connections received: delta arrival times by seq, and the age of the
    score changes each delta carried."""

    def __init__(self) -> None:
        self.update: list[float] = []  # receive - publish of each changed score in a delta
        self.arrivals: list[tuple[int, float]] = []  # (delta seq, receive ms)
        self.deltas = 0
        self.ranks = 0

    def message(self, payload: bytes, now_ms: float, view: dict[str, int]) -> None:
        msg = _dec.decode(payload)
        if msg.get("type") != "event":
            return
        if msg["event"] == "leaderboard_rank":
            self.ranks += 1
            return
        if msg["event"] != "leaderboard_delta":
            return
        data = msg["data"]
        self.deltas += 1
        self.arrivals.append((data["seq"], now_ms))
        for r in data["entered"] + data["moved"]:
            user, score = r["user_id"], r["score"]
            if view.get(user) != score and r["name"].startswith("t"):
                self.update.append(now_ms - int(r["name"][1:]))
            view[user] = score
        for user in data["left"]:
            view.pop(user, None)


def tick_delays(arrivals: list[tuple[int, float]], emitted: dict[int, float]) -> list[float]:
    return [at - emitted[seq] for seq, at in arrivals if seq in emitted]


def record_ticks(svc: Leaderboards) -> dict[int, float]:
    """Wrap the service's tick: the wall time (ms) each delta seq was emitted."""
    emitted: dict[int, float] = {}
    stream = svc.boards[(ZONE, BOARD)].stream
    tick = svc.tick

    def timed() -> None:
        before, at = stream.seq, time.time() * 1000
        tick()
        if stream.seq != before:
            emitted[stream.seq] = at

    svc.tick = timed  # type: ignore[method-assign]
    return emitted


async def feed(hub: Hub, rate: int, seconds: float, stop: asyncio.Event, subscribers: int = 0) -> int:
    """Publish `rate` settled rounds per second in 10 ms batches; returns how many.

    One round in ten is played by a subscriber (guest ids from GUEST_ID_BASE, in login
    order), so own-rank events flow too."""
    rng = random.Random(7)
    loop = asyncio.get_running_loop()
    per = max(1, rate // 100)
    sent = 0
    start = loop.time()
    n = 0
    while not stop.is_set() and loop.time() - start < seconds:
        n += 1
        now_ms = int(time.time() * 1000)
        name = f"t{now_ms}"
        for _ in range(per):
            sent += 1
            hub.events.publish(
                RoundSettled(
                    event_id=f"b{sent}",
                    zone=ZONE,
                    at_ms=now_ms,
                    user_id=GUEST_ID_BASE + rng.randrange(subscribers)
                    if subscribers and rng.random() < 0.1
                    else rng.randrange(1, PLAYERS),
                    name=name,
                    game="fruit_slot",
                    currency="FUN",
                    stake=10,
                    win=rng.randrange(0, 1000),
                )
            )
        await asyncio.sleep(max(0.0, start + n * 0.01 - loop.time()))
    return sent


async def probe_lag(stop: asyncio.Event, out: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.005)
        out.append((loop.time() - t - 0.005) * 1000)


# -- in-process ------------------------------------------------------------------------------


class MemLink:
    kind = "bench"

    def __init__(self, samples: Samples | None) -> None:
        self.peer = "bench"
        self.samples = samples
        self.view: dict[str, int] = {}
        self.bytes = 0
        self.backlog = 0

    def write(self, payloads: list[bytes]) -> None:
        now_ms = time.time() * 1000
        for p in payloads:
            self.bytes += len(p)
            if self.samples is not None:
                self.samples.message(p, now_ms, self.view)

    def close(self, code: int, reason: str) -> None:
        pass

    def abort(self) -> None:
        pass

    def buffered(self) -> int:
        return 0


async def run_inproc(
    subscribers: int, rate: int, seconds: float, tick: float, sample_every: int
) -> dict[str, Any]:
    config = bench_config(tick)
    hub = Hub(config)
    svc = Leaderboards(hub, None, config)
    hub.register(svc)
    emitted = record_ticks(svc)
    await svc.start()
    samples = Samples()
    links = []
    for i in range(subscribers):
        link = MemLink(samples if i % sample_every == 0 else None)
        conn = Connection(hub, link, JSON)
        hub.connection_made(conn)
        name = f"s{i}"
        conn.message_received(
            msgspec.json.encode({"type": "login", "id": 1, "guest": True, "zone": ZONE, "name": name}), False
        )
        conn.message_received(
            msgspec.json.encode({"type": "leaderboard_subscribe", "id": 2, "board": BOARD}), False
        )
        links.append(link)
    await asyncio.sleep(0.5)
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        import gc

        gc.freeze()
    samples.update.clear()
    samples.arrivals.clear()
    lag: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.get_running_loop().create_task(probe_lag(stop, lag))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    ticks0, pushes0 = svc.stats.ticks, svc.stats.pushes
    tick_total0 = svc.stats.tick_seconds_total
    svc.stats.tick_seconds_max = 0.0
    sent = await feed(hub, rate, seconds, stop, subscribers)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    await asyncio.sleep(tick * 2)
    stop.set()
    await probe
    ticks = svc.stats.ticks - ticks0
    out: dict[str, Any] = {
        "mode": "inproc",
        "subscribers": subscribers,
        "updates_per_s": round(sent / elapsed),
        "tick_s": tick,
        "seconds": round(elapsed, 1),
        "server_cpu_pct": round(100 * cpu / elapsed),
        "pushes_per_s": round((svc.stats.pushes - pushes0) / elapsed),
        "deltas_sampled": samples.deltas,
        "rank_events_sampled": samples.ranks,
        "tick_mean_ms": round(1000 * (svc.stats.tick_seconds_total - tick_total0) / max(1, ticks), 2),
        "tick_max_ms": round(1000 * svc.stats.tick_seconds_max, 2),
        **summarize("update_to_client", samples.update),
        **summarize("tick_to_client", tick_delays(samples.arrivals, emitted)),
        **summarize("loop_lag", lag),
    }
    await svc.drain()
    return out


# -- real sockets ---------------------------------------------------------------------------


def _server_main(
    port_q: Any, result_q: Any, rate: int, seconds: float, tick: float, go: Any, subscribers: int
) -> None:
    import uvloop

    from gameserver.server import start

    async def main() -> None:
        config = bench_config(tick)
        server = await start(config)
        svc = Leaderboards(server.hub, None, config)
        server.hub.register(svc)
        emitted = record_ticks(svc)
        await svc.start()
        port_q.put(server.ws_port)
        while not go.is_set():
            await asyncio.sleep(0.05)
        if os.environ.get("BENCH_GC_FREEZE") == "1":  # the sessions are set up: out of the GC's scans
            import gc

            gc.freeze()
        lag: list[float] = []
        stop = asyncio.Event()
        probe = asyncio.get_running_loop().create_task(probe_lag(stop, lag))
        cpu0, t0 = time.process_time(), time.perf_counter()
        pushes0 = svc.stats.pushes
        sent = await feed(server.hub, rate, seconds, stop, subscribers)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        await asyncio.sleep(tick * 2)
        stop.set()
        await probe
        result_q.put(
            {
                "emitted": emitted,
                "updates_per_s": round(sent / elapsed),
                "server_cpu_pct": round(100 * cpu / elapsed),
                "pushes_per_s": round((svc.stats.pushes - pushes0) / elapsed),
                "tick_max_ms": round(1000 * svc.stats.tick_seconds_max, 2),
                **summarize("loop_lag", lag),
            }
        )
        await asyncio.sleep(1.0)
        await server.stop(drain_seconds=0.2)

    uvloop.run(main())


def _client_main(
    port: int, first: int, count: int, seconds: float, ready_q: Any, result_q: Any, go: Any
) -> None:
    import uvloop

    from bench.wsclient import connect

    async def main() -> None:
        samples = Samples()
        conns = []
        warm = True

        def receiver() -> Callable[[bytes], None]:
            view: dict[str, int] = {}

            def on_message(payload: bytes) -> None:
                if not warm:
                    samples.message(payload, time.time() * 1000, view)

            return on_message

        for i in range(first, first + count):
            c = await connect("127.0.0.1", port, "/ws", "croupier.v1.json", receiver())
            login = {"type": "login", "id": 1, "guest": True, "zone": ZONE, "name": f"c{i}"}
            c.send(msgspec.json.encode(login), 0x1)
            c.send(msgspec.json.encode({"type": "leaderboard_subscribe", "id": 2, "board": BOARD}), 0x1)
            conns.append(c)
        ready_q.put(count)
        while not go.is_set():
            await asyncio.sleep(0.05)
        warm = False
        cpu0 = time.process_time()
        await asyncio.sleep(seconds + 0.5)
        result_q.put(
            {
                "update": samples.update,
                "arrivals": samples.arrivals,
                "deltas": samples.deltas,
                "ranks": samples.ranks,
                "cpu": time.process_time() - cpu0,
            }
        )
        for c in conns:
            if c.transport is not None:
                c.transport.close()

    uvloop.run(main())


def run_sockets(subscribers: int, rate: int, seconds: float, tick: float, clients: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    port_q, server_q, ready_q, client_q = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    server = ctx.Process(
        target=_server_main, args=(port_q, server_q, rate, seconds, tick, go, subscribers), daemon=True
    )
    server.start()
    procs = [server]
    try:
        port = port_q.get(timeout=30)
        per = subscribers // clients
        for k in range(clients):
            n = per if k < clients - 1 else subscribers - per * (clients - 1)
            p = ctx.Process(
                target=_client_main, args=(port, k * per, n, seconds, ready_q, client_q, go), daemon=True
            )
            p.start()
            procs.append(p)
        connected = sum(ready_q.get(timeout=120) for _ in range(clients))
        time.sleep(1.0)  # subscriptions answered
        go.set()
        srv = server_q.get(timeout=seconds + 60)
        results = [client_q.get(timeout=seconds + 60) for _ in range(clients)]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    update = [x for r in results for x in r["update"]]
    emitted = srv.pop("emitted")
    tick_l = [x for r in results for x in tick_delays(r["arrivals"], emitted)]
    return {
        "mode": "sockets",
        "subscribers": connected,
        "client_processes": clients,
        "tick_s": tick,
        "seconds": seconds,
        **srv,
        "deltas_received": sum(r["deltas"] for r in results),
        "rank_events_received": sum(r["ranks"] for r in results),
        "client_cpu_pct": round(100 * sum(r["cpu"] for r in results) / (seconds + 0.5)),
        **summarize("update_to_client", update),
        **summarize("tick_to_client", tick_l),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["inproc", "sockets", "both"], default="both")
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--socket-subscribers", type=int, default=0, help="sockets mode (default: --subscribers)")
    ap.add_argument("--rate", type=int, default=10_000, help="score updates per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tick", type=float, default=0.25)
    ap.add_argument("--clients", type=int, default=3, help="client processes (sockets mode)")
    ap.add_argument("--sample-every", type=int, default=20, help="in-process: decode every n-th link")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = []
    print(f"# leaderboard stream bench, pid {os.getpid()}, {os.cpu_count()} cores", flush=True)
    runs: list[Callable[[], dict[str, Any]]] = []
    if args.mode in ("inproc", "both"):
        runs.append(
            lambda: asyncio.run(
                run_inproc(args.subscribers, args.rate, args.seconds, args.tick, args.sample_every)
            )
        )
    if args.mode in ("sockets", "both"):
        n = args.socket_subscribers or args.subscribers
        runs.append(lambda: run_sockets(n, args.rate, args.seconds, args.tick, args.clients))
    for run in runs:
        r = run()
        results.append(r)
        for k, v in r.items():
            print(f"{k:<28} {v}", flush=True)
        print(flush=True)
    if args.json:
        print(json.dumps(results))
    if len(results) > 1:
        _ = statistics  # keeps the import for ad-hoc analysis


if __name__ == "__main__":
    main()
