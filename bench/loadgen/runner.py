"""The parent process: start servers, spread sessions over generator processes, run the
scenario's phases and actions, sample the servers, and merge everything into a report.

Phases: `ramp` (sessions open at the scenario's rate) -> `hold` (`duration` seconds;
actions run at their `at` offsets) -> `closing` (every session closes with 1000) ->
`after` (a few seconds of server samples with no clients: sessions and descriptors
should be back to their baseline). Every phase has a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .progress import Progress
from .scenario import Action, Scenario
from .servers import Fleet, Sampler, check_loopback, fetch_stats
from .stats import Histogram, add_counts, merged
from .worker import MAX_SOCKETS, WorkerConfig, raise_nofile, worker_main

#: sessions per server process the harness plans for (one port holds ~19.9k sockets)
MAX_PER_SERVER = 18_000
DEFAULT_PER_WORKER = 16_000


@dataclass
class Options:
    scenario: Scenario
    connections: int
    duration: float
    out: Path
    #: server processes to start (0 with `targets`)
    servers: int = 1
    base_port: int = 8800
    #: external servers, (host, port, path); none = start `servers` processes
    targets: list[tuple[str, int, str]] = field(default_factory=list)
    workers: int = 0  # 0 = enough for <= DEFAULT_PER_WORKER sockets each
    source_base: str = "127.0.0.2"
    ramp_rate: float | None = None
    concurrency: int | None = None
    allow_unsupported: bool = False
    progress: bool = True
    server_env: dict[str, str] = field(default_factory=dict)
    settle: float = 2.0
    #: admin port of the first started server (GET /stats), the others follow; 0 = none
    admin_base_port: int | None = None
    #: /stats URLs of external servers (with `targets`)
    stats_urls: list[str] = field(default_factory=list)
    #: the targets' protocol: "croupier", or "colyseus" for the peer (needs `targets`)
    protocol: str = "croupier"


def plan_workers(connections: int, requested: int) -> int:
    n = requested or max(1, math.ceil(connections / DEFAULT_PER_WORKER))
    if math.ceil(connections / n) > MAX_SOCKETS:
        raise ValueError(
            f"{connections} connections need at least {math.ceil(connections / MAX_SOCKETS)} generator processes"
        )
    return n


def plan_servers(connections: int, requested: int, restarts: bool = False) -> int:
    """Server processes for `connections`; with restarts, the others must hold one's share."""
    n = requested or max(1, math.ceil(connections / MAX_PER_SERVER))
    if restarts and not requested and connections > MAX_PER_SERVER:
        n = max(n, math.ceil(connections / MAX_PER_SERVER) + 1)
    if math.ceil(connections / n) > MAX_PER_SERVER:
        raise ValueError(
            f"{connections} connections need at least {math.ceil(connections / MAX_PER_SERVER)} server processes"
            f" (each holds at most {MAX_PER_SERVER})"
        )
    return n


def source_ips(base: str, n: int) -> list[str]:
    import ipaddress

    first = ipaddress.IPv4Address(check_loopback(base))
    ips = [first + i for i in range(n)]
    if not all(ip.is_loopback for ip in ips):
        raise ValueError("source addresses would leave 127.0.0.0/8")
    return [str(ip) for ip in ips]


def describe_plan(opts: Options) -> dict[str, Any]:
    """What a run would start, without starting anything (`--plan`)."""
    sc = opts.scenario
    workers = plan_workers(opts.connections, opts.workers)
    restarts = any(a.kind == "rolling_restart" for a in sc.actions)
    servers = 0 if opts.targets else plan_servers(opts.connections, opts.servers, restarts)
    rate = opts.ramp_rate if opts.ramp_rate is not None else sc.ramp.rate
    admin = opts.admin_base_port if opts.admin_base_port is not None else opts.base_port + 100
    return {
        "scenario": sc.name,
        "connections": opts.connections,
        "servers": servers,
        "server_ports": [opts.base_port + i for i in range(servers)],
        "admin_ports": [admin + i for i in range(servers)] if admin else [],
        "targets": [f"ws://{h}:{p}{path}" for h, p, path in opts.targets],
        "sessions_per_server": math.ceil(opts.connections / servers) if servers else None,
        "generators": workers,
        "sessions_per_generator": math.ceil(opts.connections / workers),
        "source_addresses": source_ips(opts.source_base, workers),
        "ramp_s": round(opts.connections / rate, 1) if rate > 0 else "unpaced",
        "hold_s": opts.duration,
        "store": sc.server.store if servers else None,
        "server_config": (sc.server.config or "config/croupier.toml") if servers else None,
        "server_nice": sc.server.nice if servers else None,
    }


class _WorkerHandle:
    def __init__(self, index: int, proc: BaseProcess, pipe: Connection) -> None:
        self.index = index
        self.proc = proc
        self.pipe = pipe
        self.pid: int | None = None
        self.ready = False
        self.ramped_at: float | None = None
        self.ramped_sessions = 0
        self.snap: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        self.gone = False
        self.ihist: dict[str, Histogram] = {}
        self.dropped = 0


class Run:
    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.sc = opts.scenario
        self.fleet: Fleet | None = None
        self.workers: list[_WorkerHandle] = []
        self.timeline: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.phase = "start"
        self.t0 = 0.0
        self.ramp_end: float | None = None
        self.hold_end: float | None = None
        self.actions_log: list[dict[str, Any]] = []
        self.baseline: dict[str, Any] = {}
        self.notes: list[str] = []
        self.progress = Progress(opts.connections, opts.progress)
        self._prev_row: dict[str, Any] | None = None
        self.at_hold_end: dict[str, Any] = {}
        self.source_ips: list[str] = []
        #: errors the parent saw itself (a generator or server process that died)
        self.harness_errors: dict[str, int] = {}
        #: the servers' own /stats at the end of the hold and after the clients left
        self.server_stats: dict[str, list[dict[str, Any] | None]] = {}

    # -- pipes ----------------------------------------------------------------------------

    def _on_pipe(self, h: _WorkerHandle) -> None:
        try:
            while h.pipe.poll():
                self._on_message(h, h.pipe.recv())
        except (EOFError, OSError):
            h.gone = True
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(h.pipe.fileno())

    def _on_message(self, h: _WorkerHandle, msg: dict[str, Any]) -> None:
        kind = msg.get("kind")
        if kind == "ready":
            h.ready = True
            h.pid = int(msg["pid"])
        elif kind in ("snap", "final"):
            for label, raw in msg.get("ihist", {}).items():
                hist = Histogram.from_wire(raw)
                if label in h.ihist:
                    h.ihist[label].merge(hist)
                else:
                    h.ihist[label] = hist
            h.snap = msg
            if kind == "final":
                h.final = msg
        elif kind == "ramped":
            h.ramped_at = float(msg["t"])
            h.ramped_sessions = int(msg.get("sessions", 0))
        elif kind == "dropped":
            h.dropped += int(msg["n"])

    def _broadcast(self, msg: dict[str, Any]) -> None:
        for h in self.workers:
            if not h.gone:
                with contextlib.suppress(OSError, ValueError):
                    h.pipe.send(msg)

    # -- set-up ---------------------------------------------------------------------------

    def _start_servers(self) -> list[tuple[str, int, str]]:
        o = self.o
        if o.targets:
            for host, _port, _path in o.targets:
                check_loopback(host)
            return o.targets
        restarts = any(a.kind == "rolling_restart" for a in self.sc.actions)
        n = plan_servers(o.connections, o.servers, restarts)
        if restarts and n > 1 and math.ceil(o.connections / (n - 1)) > MAX_PER_SERVER:
            self.notes.append(
                f"{n} servers cannot take a restarted server's sessions: the others would hold more than"
                f" {MAX_PER_SERVER} each (add --servers)"
            )
        admin = o.admin_base_port if o.admin_base_port is not None else o.base_port + 100
        self.fleet = Fleet(
            n, o.base_port, self.sc.server, o.out, extra_env=o.server_env, admin_base_port=admin
        )
        self.progress.note(f"starting {n} server process(es) on ports {o.base_port}..{o.base_port + n - 1}")
        self.fleet.start()
        return self.fleet.targets

    def _spawn_workers(self, targets: list[tuple[str, int, str]], lifetime: float) -> None:
        o = self.o
        ips = self.source_ips
        n = len(ips)
        ctx = multiprocessing.get_context("spawn")
        rate = o.ramp_rate if o.ramp_rate is not None else self.sc.ramp.rate
        sc = self.sc
        if o.concurrency is not None:
            import msgspec

            sc = msgspec.structs.replace(sc, ramp=msgspec.structs.replace(sc.ramp, concurrency=o.concurrency))
        for i in range(n):
            count = len(range(i, o.connections, n))
            cfg = WorkerConfig(
                index=i,
                scenario=sc,
                first=i,
                stride=n,
                count=count,
                targets=targets,
                source_ip=ips[i],
                ramp_rate=rate / n if rate > 0 else 0.0,
                lifetime=lifetime,
                protocol=o.protocol,
            )
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=worker_main, args=(cfg, child), name=f"loadgen-{i}", daemon=True)
            proc.start()
            child.close()
            self.workers.append(_WorkerHandle(i, proc, parent))
        loop = asyncio.get_running_loop()
        for h in self.workers:
            loop.add_reader(h.pipe.fileno(), self._on_pipe, h)

    # -- the run --------------------------------------------------------------------------

    async def execute(self) -> dict[str, Any]:
        o = self.o
        o.out.mkdir(parents=True, exist_ok=True)
        rate = o.ramp_rate if o.ramp_rate is not None else self.sc.ramp.rate
        ramp_expected = o.connections / rate if rate > 0 else 0.0
        ramp_limit = ramp_expected * 1.5 + 30.0
        action_time = sum(a.at for a in self.sc.actions) + 60.0 * len(self.sc.actions)
        lifetime = ramp_limit + o.duration + action_time + 120.0
        started_wall = time.time()
        loop = asyncio.get_running_loop()
        # servers inherit this process's open-file limit: lift the soft one to the hard one
        soft = raise_nofile()
        per_server = math.ceil(o.connections / max(1, o.servers or math.ceil(o.connections / MAX_PER_SERVER)))
        if not o.targets and soft < per_server + 100:
            self.notes.append(f"the open-file limit ({soft}) is below the sessions per server ({per_server})")
        # check the plan before any process starts
        self.source_ips = source_ips(o.source_base, plan_workers(o.connections, o.workers))
        for host, _port, _path in o.targets:
            check_loopback(host)
        self._stats_urls()
        try:
            targets = await loop.run_in_executor(None, self._start_servers)
            self._spawn_workers(targets, lifetime)
            deadline = time.monotonic() + 60.0
            while not all(h.ready for h in self.workers):
                if time.monotonic() > deadline or any(not h.proc.is_alive() for h in self.workers):
                    raise RuntimeError("generator processes did not start")
                await asyncio.sleep(0.05)
            sampler = Sampler(self.fleet, [h.pid or 0 for h in self.workers])
            sampler.fds_every = 1 if o.connections <= 20_000 else 5
            await asyncio.sleep(min(1.0, o.settle))
            self.baseline = sampler.sample()
            self.t0 = time.monotonic()
            self.phase = "ramp"
            self._broadcast({"cmd": "start", "t0": self.t0})
            ticker = loop.create_task(self._tick_loop(sampler))
            try:
                await self._phases(ramp_limit)
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            # a few seconds of samples with no clients: back to baseline?
            self.phase = "after"
            sampler.fds_every = 1  # the descriptors left after the clients went: exact
            for _ in range(max(1, int(o.settle))):
                await asyncio.sleep(1.0)
                self._row(sampler.sample())
            urls = self._stats_urls()
            if urls:
                self.server_stats["after"] = await loop.run_in_executor(None, fetch_stats, urls)
        finally:
            self.progress.close()
            await self._teardown()
        from .report import build

        return build(self, started_wall)

    async def _phases(self, ramp_limit: float) -> None:
        o = self.o
        # ramp
        while time.monotonic() - self.t0 < ramp_limit:
            if all(h.ramped_at is not None or h.gone for h in self.workers):
                break
            await asyncio.sleep(0.05)
        else:
            self.notes.append(f"the ramp did not finish within {ramp_limit:.0f} s")
        self.ramp_end = time.monotonic()
        settle = self.sc.ramp.settle
        self.phase = "settle" if settle > 0 else "hold"
        if settle <= 0:
            self._broadcast({"cmd": "hold"})
        hold_start = self.ramp_end
        actions = sorted(self.sc.actions, key=lambda a: a.at)
        pending = list(actions)
        restart_task: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        if settle >= o.duration:
            self.notes.append(
                f"ramp.settle ({settle:.0f} s) >= the hold: no reply counts toward hold_latency"
            )
        end = hold_start + o.duration
        hard_end = end + 60.0 * len(actions) + 30.0
        churns: list[tuple[Action, dict[str, Any]]] = []  # started churn actions, with their log
        for _ in range(int((hard_end - time.monotonic()) / 0.05) + 100):
            now = time.monotonic()
            for a, crec in churns:
                # the last round leaves time to come back before the hold ends
                if now < end - a.spread - 2.0 and now >= crec["next"]:
                    self._broadcast({"cmd": "churn", "fraction": a.fraction, "spread": a.spread})
                    crec["rounds"] += 1
                    crec["next"] = now + a.interval
            if self.phase == "settle" and now - hold_start >= settle:
                self.phase = "hold"
                self._broadcast({"cmd": "hold"})
            while pending and now - hold_start >= pending[0].at:
                a = pending.pop(0)
                rec: dict[str, Any] = {"kind": a.kind, "at_s": round(now - self.t0, 3)}
                self.actions_log.append(rec)
                if a.kind == "drop_all":
                    self._broadcast({"cmd": "drop", "fraction": a.fraction, "spread": a.spread})
                    self.progress.note(
                        f"action: drop {a.fraction:.0%} of connections (reconnect within {a.spread:.0f} s)"
                    )
                elif a.kind == "churn":
                    rec.update({"rounds": 0, "next": now, "fraction": a.fraction, "interval": a.interval})
                    churns.append((a, rec))
                    self.progress.note(
                        f"action: churn {a.fraction:.1%} of sessions every {a.interval:.0f} s (close 1000, log in again)"
                    )
                elif a.kind == "rolling_restart":
                    if self.fleet is None:
                        rec["skipped"] = "external servers (--target) cannot be restarted"
                        self.notes.append(
                            "rolling_restart skipped: the servers were not started by the harness"
                        )
                    else:
                        restart_task = loop.create_task(self._rolling_restart(a.interval, rec))
            busy = restart_task is not None and not restart_task.done()
            if (now >= end and not pending and not busy) or now >= hard_end:
                break
            await asyncio.sleep(0.05)
        for _a, crec in churns:
            crec.pop("next", None)
        if restart_task is not None and not restart_task.done():
            self.notes.append("the rolling restart was still running at the end of the hold")
            restart_task.cancel()
        self.hold_end = time.monotonic()
        if self.fleet is not None:
            dead = [s.index for s in self.fleet.servers if not s.alive()]
            if dead:
                self.harness_errors["server_exited"] = len(dead)
                self.notes.append(f"server process(es) {dead} were not running at the end of the hold")
        self.at_hold_end = {"sessions": sum(int(h.snap["sessions"]) for h in self.workers if h.snap)}
        urls = self._stats_urls()
        if urls:
            self.server_stats["hold_end"] = await loop.run_in_executor(None, fetch_stats, urls)
        self.phase = "closing"
        self._broadcast({"cmd": "stop"})
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            if all(h.final is not None or h.gone for h in self.workers):
                break
            await asyncio.sleep(0.05)
        else:
            self.notes.append("some generator processes sent no final report")
        lost = sum(1 for h in self.workers if h.final is None)
        if lost:
            self.harness_errors["generator_lost"] = lost

    def _stats_urls(self) -> list[str]:
        if self.fleet is not None:
            return self.fleet.stats_urls
        for url in self.o.stats_urls:
            check_loopback(urlsplit(url).hostname or "")
        return self.o.stats_urls

    async def _rolling_restart(self, interval: float, rec: dict[str, Any]) -> None:
        assert self.fleet is not None
        loop = asyncio.get_running_loop()
        rec["servers"] = []
        for i in range(len(self.fleet.servers)):
            self.progress.note(f"action: restarting server {i} (port {self.fleet.servers[i].port})")
            r = await loop.run_in_executor(None, self.fleet.restart, i)
            rec["servers"].append({"index": i, **r})
            await asyncio.sleep(interval)
        rec["done_s"] = round(time.monotonic() - self.t0, 3)

    async def _tick_loop(self, sampler: Sampler) -> None:
        next_t = time.monotonic() + 1.0
        for _ in range(1_000_000):  # cancelled at the end of the run; 11 days at most
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
            next_t += 1.0
            self._row(sampler.sample())

    def _row(self, sample: dict[str, Any]) -> None:
        """One timeline point: the latest counters of every generator plus a server sample."""
        snaps = [h.snap for h in self.workers if h.snap is not None]
        now = time.monotonic()
        row: dict[str, Any] = {
            "t": round(now - self.t0, 2),
            "phase": self.phase,
            "wall": round(time.time(), 3),
        }
        row["open"] = sum(s["open"] for s in snaps)
        row["sessions"] = sum(s["sessions"] for s in snaps)
        row["sent"] = sum(s["sent"] for s in snaps)
        row["received"] = sum(s["recv"]["ok"] + s["recv"]["error"] + s["recv"]["events"] for s in snaps)
        row["errors"] = sum(_error_total(s) for s in snaps)
        prev = self._prev_row
        dt = (row["t"] - prev["t"]) if prev else 1.0
        row["out_per_s"] = (row["sent"] - prev["sent"]) / dt if prev and dt > 0 else 0.0
        row["in_per_s"] = (row["received"] - prev["received"]) / dt if prev and dt > 0 else 0.0
        lat: dict[str, Any] = {}
        labels = {label for h in self.workers for label in h.ihist}
        for label in sorted(labels):
            hist = merged(h.ihist[label] for h in self.workers if label in h.ihist)
            if hist.n:
                lat[label] = {
                    k: v for k, v in hist.summary_ms().items() if k in ("count", "p50_ms", "p99_ms", "max_ms")
                }
        for h in self.workers:
            h.ihist = {}
        row["latency"] = lat
        row["lag_ms"] = max((s["lag_ms"] for s in snaps), default=0.0)
        row["gc_max_ms"] = max((s.get("gc_max_ms", 0.0) for s in snaps), default=0.0)
        servers = [x for x in sample["servers"] if x is not None]
        row["server_rss"] = sum(x["rss"] for x in servers)
        row["server_cpu"] = sum(x["cpu"] for x in servers)
        row["server_fds"] = sum(x["fds"] for x in servers)
        row["servers_up"] = len(servers)
        workers = [x for x in sample["workers"] if x is not None]
        row["worker_cpu"] = sum(x["cpu"] for x in workers)
        row["worker_cpu_max"] = max((x["cpu"] for x in workers), default=0.0)
        row["worker_rss"] = sum(x["rss"] for x in workers)
        # run-queue wait, ms per second, mean per process (absent where the kernel does not say)
        row["server_wait"] = _mean_of(servers, "wait")
        row["worker_wait"] = _mean_of(workers, "wait")
        row["machine_cpu"] = sample["machine_cpu"]
        # CPU used by everything else on the machine (other work skews a run), in % of a core
        ncpu = os.cpu_count() or 1
        row["other_cpu"] = max(0.0, sample["machine_cpu"] * ncpu - row["server_cpu"] - row["worker_cpu"])
        row["irq_cpu"] = sample.get("machine_irq", 0.0) * ncpu  # of which: interrupts, softirqs
        row["steal_cpu"] = sample.get("machine_steal", 0.0) * ncpu  # ... and the hypervisor's
        row["mem_available"] = sample["mem_available"]
        self.timeline.append(row)
        self.samples.append(sample)
        self._prev_row = row
        self.progress.update(row, "spin" if "spin" in lat else "ping")

    async def _teardown(self) -> None:
        loop = asyncio.get_running_loop()
        for h in self.workers:
            with contextlib.suppress(Exception):
                loop.remove_reader(h.pipe.fileno())
        deadline = time.monotonic() + 15.0
        for h in self.workers:
            while h.proc.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if h.proc.is_alive():  # our own child, by PID
                with contextlib.suppress(ProcessLookupError):
                    os.kill(h.proc.pid or 0, 9)
            h.proc.join(5)
            with contextlib.suppress(OSError):
                h.pipe.close()
        if self.fleet is not None:
            await loop.run_in_executor(None, self.fleet.stop)


def _mean_of(procs: list[dict[str, float]], key: str) -> float | None:
    """The mean of `key` over the process samples that have it (None if none do)."""
    values = [x[key] for x in procs if key in x]
    return sum(values) / len(values) if values else None


def _error_total(snap: dict[str, Any]) -> int:
    """Errors in one generator's counters (see report.error_breakdown)."""
    n = int(sum(snap["errors"].values()))
    for label, st in snap["steps"].items():
        if label != "connect":
            n += int(st["errors"]) + int(st["timeouts"])
    n += int(sum(snap.get("unmatched_codes", {}).values()))
    return n


def merge_finals(finals: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over every generator's final report."""
    out: dict[str, Any] = {
        "steps": {},
        "events": {},
        "counters": {},
        "errors": {},
        "recv": {},
        "unmatched_codes": {},
    }
    hists: dict[str, list[Histogram]] = {}
    hold_hists: dict[str, list[Histogram]] = {}
    reconnect: list[Histogram] = []
    for f in finals:
        add_counts(out["steps"], f["steps"])
        add_counts(out["events"], f["events"])
        add_counts(out["counters"], f["counters"])
        add_counts(out["errors"], f["errors"])
        add_counts(out["recv"], f["recv"])
        add_counts(out["unmatched_codes"], {str(k): v for k, v in f.get("unmatched_codes", {}).items()})
        for label, raw in f.get("hist", {}).items():
            hists.setdefault(label, []).append(Histogram.from_wire(raw))
        for label, raw in f.get("hold_hist", {}).items():
            hold_hists.setdefault(label, []).append(Histogram.from_wire(raw))
        reconnect.append(Histogram.from_wire(f["reconnect"]))
        for key in ("sent", "unmatched", "handshakes", "held_at_stop"):
            out[key] = out.get(key, 0) + int(f.get(key, 0))
    out["hist"] = {label: merged(hs) for label, hs in hists.items()}
    out["hold_hist"] = {label: merged(hs) for label, hs in hold_hists.items()}
    out["reconnect_hist"] = merged(reconnect)
    return out


def run(opts: Options) -> dict[str, Any]:
    """Run a scenario to the end; returns the report (also written to `opts.out`)."""
    import uvloop

    from .report import write

    report = uvloop.run(Run(opts).execute(), debug=False)
    write(report, opts.out)
    return report
