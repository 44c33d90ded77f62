"""Prometheus metrics of one worker.

Hot paths only bump plain integers on `Counters`; a custom collector turns them into
Prometheus samples at scrape time, so serving 100k messages/s costs no locks and no
label lookups. Exposed by the admin app at `/metrics` (gameserver/admin.py).
"""

from __future__ import annotations

import asyncio
import gc
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .gcwatch import PAUSE_BUCKETS, STATS, GcStats

if TYPE_CHECKING:
    from .bus import BusStats
    from .casino import Casino
    from .hub import Hub

#: Handler latency buckets, seconds.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Counters:
    """Plain counters the hub increments; read by `HubCollector`."""

    __slots__ = ("requests", "errors", "closes", "events", "latency", "latency_sum", "loop_lag")

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()  # by message type
        self.errors: Counter[str] = Counter()  # by error code name
        self.closes: Counter[str] = Counter()  # by close code name
        self.events = 0  # events pushed to players
        self.latency = [0] * (len(BUCKETS) + 1)  # handler latency histogram
        self.latency_sum = 0.0
        self.loop_lag = 0.0

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency[_bucket(seconds)] += 1


class GameStats:
    """Per (zone, game): settled rounds, money staked and won (observed RTP = won / staked)."""

    __slots__ = ("rounds", "staked", "won", "commit_latency", "commit_sum")

    def __init__(self) -> None:
        self.rounds: Counter[tuple[str, str]] = Counter()
        self.staked: Counter[tuple[str, str]] = Counter()
        self.won: Counter[tuple[str, str]] = Counter()
        self.commit_latency = [0] * (len(BUCKETS) + 1)
        self.commit_sum = 0.0

    def record(self, zone: str, game: str, stake: int, win: int) -> None:
        key = (zone, game)
        self.rounds[key] += 1
        self.staked[key] += stake
        self.won[key] += win

    def observe_commit(self, seconds: float) -> None:
        self.commit_sum += seconds
        self.commit_latency[_bucket(seconds)] += 1

    def commit_histogram(self) -> dict[str, int]:
        """Spin commits (submit to durable) per bucket, not cumulative: upper bound in ms
        (`"inf"` above the last), for `/stats`."""
        names = [f"{b * 1000:g}" for b in BUCKETS] + ["inf"]
        return dict(zip(names, self.commit_latency, strict=True))


def _bucket(seconds: float) -> int:
    return bisect_left(BUCKETS, seconds)  # the first bound >= seconds; len(BUCKETS) = +Inf


def _cumulative(counts: list[int], bounds: tuple[float, ...]) -> list[tuple[str, float]]:
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip((*bounds, float("inf")), counts, strict=True):
        running += n
        buckets.append((str(bound) if bound != float("inf") else "+Inf", running))
    return buckets


def _histogram(name: str, doc: str, counts: list[int], total: float) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=_cumulative(counts, BUCKETS), sum_value=total)


def _by_generation(
    family: GaugeMetricFamily | CounterMetricFamily, values: list[float] | list[int]
) -> GaugeMetricFamily | CounterMetricFamily:
    for gen, value in enumerate(values):
        family.add_metric([str(gen)], value)
    return family


def _gc_metrics(g: GcStats) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
    pauses = HistogramMetricFamily(
        "croupier_gc_pause_seconds", "Garbage-collector pauses, by generation", labels=["generation"]
    )
    for gen in range(3):
        pauses.add_metric([str(gen)], _cumulative(g.counts[gen], PAUSE_BUCKETS), g.sums[gen])
    yield pauses
    yield _by_generation(
        GaugeMetricFamily(
            "croupier_gc_pause_max_seconds",
            "Longest garbage-collector pause, by generation",
            labels=["generation"],
        ),
        g.longest,
    )
    yield GaugeMetricFamily(
        "croupier_gc_frozen_objects",
        "Objects moved out of the collector's generations (server.gc_freeze)",
        value=gc.get_freeze_count(),
    )
    yield _by_generation(
        CounterMetricFamily(
            "croupier_gc_collected_objects",
            "Unreachable objects the collector freed (garbage cycles), by generation",
            labels=["generation"],
        ),
        g.collected,
    )
    yield CounterMetricFamily(
        "croupier_gc_thaws",
        "Full collections of the frozen objects too (server.gc_thaw_every)",
        value=g.thaws,
    )


class HubCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        hub, c = self.hub, self.hub.counters
        conns = GaugeMetricFamily("croupier_connections", "Open client connections", labels=["transport"])
        by_kind = Counter(conn.link.kind for conn in hub.connections)
        for kind, n in sorted(by_kind.items()):
            conns.add_metric([kind], n)
        yield conns
        stats = hub.stats()
        yield GaugeMetricFamily("croupier_players", "Player sessions", value=stats["players"])
        yield GaugeMetricFamily(
            "croupier_players_detached", "Sessions waiting for resume", value=stats["detached"]
        )
        zones = GaugeMetricFamily("croupier_zone_users", "Sessions logged into a zone", labels=["zone"])
        per_zone = dict.fromkeys(hub.zones, 0)
        for zname, _ in hub.players:  # sessions held here (zone.users also has remote proxies)
            per_zone[zname] = per_zone.get(zname, 0) + 1
        for name, n in sorted(per_zone.items()):
            zones.add_metric([name], n)
        yield zones
        req = CounterMetricFamily("croupier_requests", "Requests handled, by type", labels=["type"])
        for k, v in sorted(c.requests.items()):
            req.add_metric([k], v)
        yield req
        err = CounterMetricFamily("croupier_errors", "Error replies, by code", labels=["code"])
        for k, v in sorted(c.errors.items()):
            err.add_metric([k], v)
        yield err
        closes = CounterMetricFamily(
            "croupier_closes", "Connections closed by the server, by code", labels=["code"]
        )
        for k, v in sorted(c.closes.items()):
            closes.add_metric([k], v)
        yield closes
        yield CounterMetricFamily("croupier_events", "Events pushed to players", value=c.events)
        yield _histogram(
            "croupier_handler_seconds",
            "Time to handle one request (synchronous part)",
            c.latency,
            c.latency_sum,
        )
        yield GaugeMetricFamily("croupier_loop_lag_seconds", "Event-loop lag, last sample", value=c.loop_lag)
        yield from _gc_metrics(STATS)
        casino = hub.casino
        if casino is not None:
            yield from _casino_metrics(casino)
        bus = getattr(hub.router, "bus", None)
        if bus is not None:
            yield from _bus_metrics(bus.stats)
        for service in hub.service_list:  # services that export their own (leaderboards)
            families = getattr(service, "metric_families", None)
            if families is not None:
                yield from families()


def _bus_metrics(b: BusStats) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The bus between workers (gameserver/bus/): traffic, drops, failures, call latency."""
    yield CounterMetricFamily("croupier_bus_casts", "Casts sent to other workers", value=b.casts_sent)
    yield CounterMetricFamily("croupier_bus_calls", "Calls sent to other workers", value=b.calls_sent)
    yield CounterMetricFamily("croupier_bus_frames_received", "Bus frames received", value=b.frames_received)
    yield CounterMetricFamily("croupier_bus_bytes_sent", "Bus bytes sent", value=b.bytes_sent)
    yield CounterMetricFamily(
        "croupier_bus_dropped", "Casts dropped (queue full, peer away)", value=b.dropped
    )
    err = CounterMetricFamily("croupier_bus_errors", "Bus failures, by name", labels=["error"])
    for k, v in sorted(b.errors.items()):
        err.add_metric([k], v)
    yield err
    lat = sorted(b.call_latency[-1024:])
    q = GaugeMetricFamily(
        "croupier_bus_call_seconds", "Bus call round trip, recent calls", labels=["quantile"]
    )
    for p in (0.5, 0.99):
        q.add_metric([str(p)], lat[min(len(lat) - 1, int(len(lat) * p))] if lat else 0.0)
    yield q


def _casino_metrics(
    casino: Casino,
) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
    g = casino.stats
    labels = ["zone", "game"]
    rounds = CounterMetricFamily("croupier_rounds", "Settled rounds", labels=labels)
    staked = CounterMetricFamily("croupier_staked", "Money staked (minor units)", labels=labels)
    won = CounterMetricFamily("croupier_won", "Money won (minor units)", labels=labels)
    observed = GaugeMetricFamily("croupier_rtp_observed", "Won / staked since start", labels=labels)
    for key in sorted(g.rounds):
        rounds.add_metric(list(key), g.rounds[key])
        staked.add_metric(list(key), g.staked[key])
        won.add_metric(list(key), g.won[key])
        if g.staked[key]:
            observed.add_metric(list(key), g.won[key] / g.staked[key])
    configured = GaugeMetricFamily(
        "croupier_rtp_configured", "Disclosed RTP of the game's profile", labels=labels
    )
    for zone, zc in sorted(casino.zones.items()):
        for name, game in sorted(zc.games.items()):
            if game.rtp is not None:
                configured.add_metric([zone, name], float(game.rtp))
    yield from (rounds, staked, won, observed, configured)
    yield _histogram(
        "croupier_commit_seconds",
        "Wait for a money transaction to be durable",
        g.commit_latency,
        g.commit_sum,
    )
    writer = casino.stores.writer
    ws = writer.stats
    yield GaugeMetricFamily(
        "croupier_ledger_queue", "Money transactions waiting for a batch", value=writer.queued
    )
    yield GaugeMetricFamily(
        "croupier_ledger_available", "1 if the database takes money work", value=int(writer.available)
    )
    yield CounterMetricFamily("croupier_ledger_batches", "Group-commit batches", value=ws.batches)
    yield CounterMetricFamily("croupier_ledger_committed", "Transactions committed", value=ws.committed)
    yield CounterMetricFamily("croupier_ledger_busy", "Transactions refused: queue full", value=ws.busy)
    yield CounterMetricFamily(
        "croupier_ledger_failed", "Transactions failed: database error", value=ws.failed
    )
    cache = casino.stores.cache
    yield GaugeMetricFamily(
        "croupier_cache_up", "1 while the cache (Redis) answers", value=int(cache.healthy)
    )
    yield CounterMetricFamily(
        "croupier_cache_errors",
        "Cache calls that failed on the cache server (marking it down)",
        value=cache.errors,
    )
    yield CounterMetricFamily(
        "croupier_cache_refused",
        "Cache calls refused while the cache was down (views read from the database instead)",
        value=cache.refused,
    )
    yield CounterMetricFamily(
        "croupier_cache_recoveries", "Times the cache came back", value=cache.recoveries
    )


def registry_for(hub: Hub) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(HubCollector(hub))
    return reg


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


async def watch_loop_lag(counters: Counters, interval: float = 0.5) -> None:
    """Sample how late the loop wakes up (a busy or blocked loop shows here)."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        counters.loop_lag = max(0.0, time.perf_counter() - start - interval)
