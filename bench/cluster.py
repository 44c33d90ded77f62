"""Cluster bench: sessions held by N workers, and a rolling restart under load.

    python -m bench.cluster held --workers 3 --connections 30000 --duration 20
    python -m bench.cluster rolling --workers 2 --players 100 --idle 1000
    python -m bench.cluster rolling --workers 2 --players 100 --idle 1000 --kill

`held` starts `gameserver run --workers N` (the sessions config: no casino) and drives
it with the load generator (`bench/loadgen`, idle scenario, `--target` plus the
supervisor's aggregated `/stats`), sampling each worker's connections, RSS and open
descriptors from `GET /admin/workers` and /proc. One process holds at most ~19,900
sockets here (open-file limit 20,000): more sessions than that need several workers.

`rolling` starts a cluster with a casino on a fresh SQLite file; `--players` clients
spin (each spin has a client key) and `--idle` clients only hold; then it asks for a
rolling restart (`POST /admin/rolling-restart`). Clients closed with 4009/1001 reconnect
(`?resume=`, else a fresh login) and retry an unanswered spin with its key. At the end
every acknowledged spin is looked up in the ledger. Pass: 0 failed requests, 0
acknowledged spins missing. With `--kill`, worker 0.0 is SIGKILLed instead (its clients
log in again); pass also needs every close to come from that worker. Only processes started here are signalled, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-cluster-secret"


@dataclass
class Running:
    proc: subprocess.Popen[str]
    ws_url: str
    admin_url: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.admin_url + path, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str) -> Any:
        req = urllib.request.Request(self.admin_url + path, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


@contextlib.contextmanager
def supervisor(config: Path, workers: int, env: dict[str, str]) -> Iterator[Running]:
    cmd = [sys.executable, "-m", "gameserver", "run", "--config", str(config), "--workers", str(workers)]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "WARNING"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        urls: dict[str, str] = {}
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline().strip()
            if not line:
                break
            for scheme in ("ws://", "http://"):
                if line.startswith(scheme):
                    urls[scheme] = line.split()[0]
            if line.startswith("workers:"):
                break
        if {"ws://", "http://"} - set(urls):
            raise SystemExit(f"the cluster did not start ({urls})")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
        yield Running(proc, urls["ws://"], urls["http://"].rsplit("/", 1)[0])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _proc_stats(pid: int) -> tuple[int, int]:
    """(RSS bytes, open descriptors) of one process, from /proc."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0, 0
    return rss, fds


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process so far, from /proc (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_during(rows: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> dict[str, float]:
    """Mean CPU (% of one core) of the workers together and of the supervisor (with its
    acceptor) over the consecutive samples for which `keep` holds."""
    spent = {"workers": 0.0, "supervisor": 0.0}
    wall = 0.0
    for a, b in zip(rows, rows[1:], strict=False):
        if not (keep(a) and keep(b)):
            continue
        wall += b["t"] - a["t"]
        spent["supervisor"] += max(0.0, b["sup_cpu"] - a["sup_cpu"])
        for member, w in b["workers"].items():
            before = a["workers"].get(member)
            if before is not None and before["pid"] == w["pid"]:
                spent["workers"] += max(0.0, w["cpu"] - before["cpu"])
    return {k: round(v / wall * 100, 1) if wall else 0.0 for k, v in spent.items()}


class Sampler(threading.Thread):
    """Once a second: every worker's connections (heartbeats), RSS, descriptors and CPU
    time, and the supervisor's CPU time."""

    def __init__(self, cluster: Running) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.rows: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                view = self.cluster.get("/admin/workers")
            except OSError:
                continue
            row: dict[str, Any] = {
                "t": time.monotonic(),
                "workers": {},
                "sup_cpu": _proc_cpu(self.cluster.pid),
            }
            for w in view["workers"]:
                if w["current"]:
                    rss, fds = _proc_stats(w["pid"])
                    row["workers"][w["worker"]] = {
                        "connections": w["connections"],
                        "rss": rss,
                        "fds": fds,
                        "pid": w["pid"],
                        "cpu": _proc_cpu(w["pid"]),
                    }
            self.rows.append(row)


def cmd_held(args: argparse.Namespace) -> int:
    env = {
        "CROUPIER_SERVER_WS_PORT": str(args.port),
        "CROUPIER_SERVER_TCP_PORT": "-1",
        "CROUPIER_SERVER_SFS_TCP_PORT": "-1",
        "CROUPIER_SERVER_ADMIN_PORT": str(args.port + 100),
    }
    config = REPO / args.config
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with supervisor(config, args.workers, env) as c:
        base = {w["worker"]: _proc_stats(w["pid"])[0] for w in c.get("/admin/workers")["workers"]}
        sampler = Sampler(c)
        sampler.start()
        loadgen = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--scenario",
            args.scenario,
            "--connections",
            str(args.connections),
            "--duration",
            str(args.duration),
            "--target",
            c.ws_url,
            "--stats-url",
            c.admin_url + "/stats",
            "--no-progress",
            "--out",
            str(out / "loadgen"),
        ]
        if args.rate:
            loadgen += ["--rate", str(args.rate)]
        if args.generators:
            loadgen += ["--workers", str(args.generators)]
        print("$", " ".join(loadgen[1:]), flush=True)
        code = subprocess.call(loadgen, cwd=REPO)
        sampler.stop.set()
        sampler.join(5)
        with urllib.request.urlopen(c.admin_url + "/metrics", timeout=10) as r:
            supervisor_counts = [
                ln
                for ln in r.read().decode().splitlines()
                if ln.startswith(("croupier_supervisor_", "croupier_acceptor_")) and ln.split()[-1] != "0.0"
            ]
    report = json.loads((out / "loadgen" / "report.json").read_text())
    peak = max(sampler.rows, key=lambda r: sum(w["connections"] for w in r["workers"].values()))
    total = sum(w["connections"] for w in peak["workers"].values())
    print(f"\nloadgen exit code {code}; held at end: {report['connections']['held_at_end']}")
    print(f"peak sessions held by the workers: {total}")

    def held(row: dict[str, Any]) -> bool:
        return sum(w["connections"] for w in row["workers"].values()) >= 0.99 * args.connections

    ramp = cpu_during(sampler.rows, lambda row: not held(row))
    hold = cpu_during(sampler.rows, held)
    print(
        f"CPU (% of one core), ramp: workers {ramp['workers']}%, supervisor+acceptor {ramp['supervisor']}%;"
        f" hold: workers {hold['workers']}%, supervisor+acceptor {hold['supervisor']}%"
    )
    for member, w in sorted(peak["workers"].items()):
        grown = w["rss"] - base.get(member, 0)
        per = grown / w["connections"] / 1024 if w["connections"] else 0.0
        print(
            f"  worker {member}: {w['connections']} connections, {w['fds']} fds, "
            f"RSS {w['rss'] / 2**20:.0f} MiB ({per:.1f} KiB per session above its start)"
        )
    print(f"errors.total {report['errors']['total']} {report['errors'].get('by_kind')}")
    print(f"handshakes/s {report['connections'].get('handshakes_per_s')}")
    print("supervisor:", "; ".join(supervisor_counts) or "all counters 0")
    other = report.get("machine", {}).get("other_cpu_mean_percent")
    print(f"other processes on the machine: {other}% of a core")
    lat = report["steps"].get("ping", {}).get("hold_latency", {})
    print(f"ping hold latency p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms")
    # The loadgen samples only servers it started: with --target its RSS criterion has no
    # value. The workers' RSS is sampled here instead (above).
    failed = [
        cr["metric"]
        for cr in report["criteria"]
        if not cr["pass"] and cr["metric"] != "server.rss_per_session_kib"
    ]
    print("PASS" if not failed and total == args.connections else f"FAIL: {failed or 'sessions not held'}")
    (out / "cluster.json").write_text(
        json.dumps(
            {"peak": peak, "base_rss": base, "loadgen_exit": code, "cpu": {"ramp": ramp, "hold": hold}}
        )
    )
    return 0 if not failed and total == args.connections else 1


# -- rolling restart under load ------------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    acked: dict[tuple[int, str], str] = field(default_factory=dict)  # (user, key) -> round id
    failed: list[Any] = field(default_factory=list)
    closes: Counter[int] = field(default_factory=Counter)
    closes_by_worker: Counter[str] = field(default_factory=Counter)  # the worker that held the session
    resumed: int = 0
    relogged: int = 0
    gaps: list[float] = field(default_factory=list)  # seconds from a close to the next ack
    latencies: list[float] = field(default_factory=list)


def _token(user: int) -> str:
    from gameserver import auth

    return auth.mint(SECRET, user, "demo", expires=int(time.time()) + 3600)


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.rid = 0

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        self.rid += 1
        rid = self.rid
        await self.ws.send(json.dumps({"type": type_, "id": rid, **fields}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 15))
            if msg.get("type") in ("ok", "error") and msg.get("id") == rid:
                return msg  # type: ignore[no-any-return]


async def spinner(url: str, user: int, t: Tally, stop: asyncio.Event) -> None:
    n, resume, closed_at = 0, None, None
    pending: str | None = None  # a key sent without a reply: retried with the same key
    while not stop.is_set():
        target = f"{url}?resume={resume}" if resume else f"{url}?token={_token(user)}"
        try:
            async with websockets.connect(target, subprotocols=["croupier.v1.json"]) as ws:  # type: ignore[list-item]
                c = Client(ws)
                if resume:
                    r = await c.request("resume", token=resume)
                    if r["type"] != "ok":
                        resume = None
                        t.relogged += 1
                        continue
                    t.resumed += 1
                else:
                    r = await c.request("login", token=_token(user))
                    if r["type"] != "ok":
                        t.failed.append(r)
                        await asyncio.sleep(0.5)
                        continue
                    resume = r["data"]["resume_token"]
                while not stop.is_set():
                    key = pending or f"u{user}-{n}"
                    pending = key
                    started = time.perf_counter()
                    t.sent += 1
                    r = await c.request("spin", game="fruit_slot", coin=1, key=key)
                    if r["type"] == "ok":
                        t.latencies.append(time.perf_counter() - started)
                        t.acked[(user, key)] = r["data"]["round"]
                        if closed_at is not None:
                            t.gaps.append(time.monotonic() - closed_at)
                            closed_at = None
                    else:
                        t.failed.append(r)
                    pending = None
                    n += 1
                    await asyncio.sleep(random.uniform(0.05, 0.15))
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            t.closes[code] += 1
            t.closes_by_worker[_holder(resume)] += 1
            closed_at = closed_at or time.monotonic()
        except (OSError, TimeoutError) as exc:
            t.failed.append(repr(exc))
            await asyncio.sleep(0.2)


def _holder(resume_token: str | None) -> str:
    from gameserver import auth

    return (auth.resume_owner(resume_token) if resume_token else None) or "?"


async def idler(url: str, t: Tally, stop: asyncio.Event) -> None:
    """A guest that holds and pings; moved, it resumes (a fresh guest login if it cannot)."""
    resume: str | None = None
    while not stop.is_set():
        target = f"{url}?resume={resume}" if resume else url
        try:
            async with websockets.connect(target, subprotocols=["croupier.v1.json"]) as ws:  # type: ignore[list-item]
                c = Client(ws)
                if resume:
                    r = await c.request("resume", token=resume)
                    if r["type"] != "ok":
                        resume = None
                        t.relogged += 1
                        continue
                    t.resumed += 1
                else:
                    r = await c.request("login", guest=True, zone="demo")
                    if r["type"] != "ok":
                        t.failed.append(r)
                    else:
                        resume = r["data"]["resume_token"]
                while not stop.is_set():
                    await asyncio.sleep(random.uniform(1.0, 3.0))
                    if (await c.request("ping"))["type"] != "ok":
                        t.failed.append("ping")
        except websockets.ConnectionClosed as exc:
            t.closes[exc.rcvd.code if exc.rcvd is not None else 1006] += 1
            t.closes_by_worker[_holder(resume)] += 1
        except (OSError, TimeoutError) as exc:
            t.failed.append(repr(exc))
            await asyncio.sleep(0.2)


async def _reconcile(store_url: str, t: Tally) -> int:
    from gameserver.casino import account_id, txn_key
    from persistence import open_stores

    stores = await open_stores(store_url)
    missing = 0
    try:
        for (user, key), round_id in t.acked.items():
            res = await stores.wallet.get_txn(txn_key("spin", account_id("demo", user), "k", key))
            if res is None or res.round_id != round_id:
                missing += 1
        assert await stores.wallet.ledger_totals() == {"FUN": 0}
    finally:
        await stores.close()
    return missing


def cmd_rolling(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    config = tmp / "cluster.toml"
    config.write_text(
        f"""
[server]
host = "127.0.0.1"
ws_port = {args.port}
tcp_port = -1
admin_port = {args.port + 100}
[auth]
secret = "{SECRET}"
[limits]
close_timeout = 1.0
[store]
url = "sqlite:///{tmp}/bench.db"
[cluster]
drain_timeout = 10.0
[casino.zones.demo]
currency = "FUN"
starting_balance = 1000000
games = {{ fruit_slot = "96.5" }}
[[zones]]
name = "demo"
guests = true
flood = {{ rate = 1000.0, burst = 1000 }}
[[zones.rooms]]
name = "Lobby"
max_users = 100000
"""
    )
    t = Tally()
    with supervisor(config, args.workers, {}) as c:
        before = {w["worker"]: w["pid"] for w in c.get("/admin/workers")["workers"] if w["current"]}

        async def run() -> tuple[float, int]:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(idler(c.ws_url, t, stop)) for _ in range(args.idle)]
            tasks += [asyncio.create_task(spinner(c.ws_url, 1 + u, t, stop)) for u in range(args.players)]
            await asyncio.sleep(args.warmup)
            acked_before = len(t.acked)
            started = time.monotonic()
            if args.kill:  # SIGKILL worker 0.0 (a PID this bench's supervisor started)
                os.kill(before["0.0"], signal.SIGKILL)
            else:
                await asyncio.to_thread(c.post, "/admin/rolling-restart")
            replaced = {"0.0": before["0.0"]} if args.kill else before
            while True:
                await asyncio.sleep(0.25)
                view = await asyncio.to_thread(c.get, "/admin/workers")
                now = {w["worker"]: w["pid"] for w in view["workers"] if w["current"] and w["ready"]}
                if not view["rolling_restart"] and all(now.get(m, pid) != pid for m, pid in replaced.items()):
                    break
                if time.monotonic() - started > 120:
                    raise SystemExit("the workers were not replaced in 120 s")
            took = time.monotonic() - started
            await asyncio.sleep(args.after)
            stop.set()
            await asyncio.wait(tasks, timeout=30)
            return took, acked_before

        took, acked_before = asyncio.run(run())
    missing = asyncio.run(_reconcile(f"sqlite:///{tmp}/bench.db", t))
    lat = sorted(t.latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0.0

    print(f"workers {args.workers}, spinning players {args.players}, idle sessions {args.idle}")
    what = "SIGKILL of worker 0.0 -> its replacement ready" if args.kill else "rolling restart"
    print(f"{what} took {took:.1f} s")
    print(f"spins sent {t.sent}, acknowledged {len(t.acked)} ({acked_before} before the restart)")
    print(f"failed requests: {len(t.failed)} {t.failed[:3]}")
    print(f"acknowledged spins missing from the ledger: {missing}")
    print(f"closes by code: {dict(t.closes)}; resumed {t.resumed}, logged in again {t.relogged}")
    print(f"closes by the worker that held the session: {dict(t.closes_by_worker)}")
    if t.gaps:
        gaps = sorted(t.gaps)
        print(f"close -> next acknowledged spin: p50 {gaps[len(gaps) // 2]:.2f} s, max {gaps[-1]:.2f} s")
    print(f"spin latency p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms")
    spared = not args.kill or set(t.closes_by_worker) <= {"0.0"}  # the other workers' clients stayed
    return 0 if not t.failed and missing == 0 and spared else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    held = sub.add_parser("held", help="sessions held by N workers (load generator, idle scenario)")
    held.add_argument("--workers", type=int, default=3)
    held.add_argument("--connections", type=int, default=30_000)
    held.add_argument("--duration", type=float, default=20.0)
    held.add_argument("--rate", type=float, default=0.0, help="ramp rate (default: the scenario's)")
    held.add_argument(
        "--generators",
        type=int,
        default=0,
        help="load generator processes (default: one per 16,000 sessions)",
    )
    held.add_argument("--port", type=int, default=8850)
    held.add_argument("--out", default="bench/out/cluster-held")
    held.add_argument("--scenario", default="bench/scenarios/idle.toml", help="load generator scenario")
    held.add_argument(
        "--config",
        default="bench/scenarios/servers/sessions.toml",
        help="server config (no casino by default)",
    )
    roll = sub.add_parser("rolling", help="rolling restart under load, checked against the ledger")
    roll.add_argument("--workers", type=int, default=2)
    roll.add_argument("--players", type=int, default=100)
    roll.add_argument("--idle", type=int, default=1000)
    roll.add_argument("--warmup", type=float, default=5.0)
    roll.add_argument("--after", type=float, default=3.0)
    roll.add_argument("--port", type=int, default=8870)
    roll.add_argument("--kill", action="store_true", help="SIGKILL worker 0.0 instead of a rolling restart")
    args = p.parse_args(argv)
    return cmd_held(args) if args.cmd == "held" else cmd_rolling(args)


if __name__ == "__main__":
    sys.exit(main())
