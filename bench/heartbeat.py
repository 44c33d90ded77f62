"""What a held session costs: server and load-generator CPU per login and per heartbeat.

One `croupier run` process (picows, the session-only config of the load runs: no casino)
and G load-generator processes (bench/loadgen's own `Worker`, real loopback sockets, each
from its own 127.0.0.x address). Every session runs the profile

    login  ->  idle for --guard seconds  ->  ping every --every seconds

so one run has three windows that do not overlap:

1. **login**: from `start` until every session has logged in (TCP connect, WebSocket
   upgrade, guest login; --concurrency in flight per generator, unpaced);
2. **held**: sessions logged in, nothing sent (the server's sweeps, the generators'
   timers and reports): CPU per 1,000 held sessions per second;
3. **ping**: every session pings (each with its own phase): CPU per ping reply, and the
   same minus the held cost of the window.

CPU is read at the window edges by two clocks (see `_cpu`): user + system time, and the
scheduler's run time (`*_run`, ns resolution); pings
are the generators' counted `ok` replies. `--compare DIR` runs the same rounds against
another checkout (e.g. `git archive <commit> | tar -x -C DIR`), interleaved A, B, A, B,
and prints B/A ratios: both trees run their own server and their own generator code.

Run: `python -m bench.heartbeat` (`make bench-heartbeat`); loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
SERVER_CONFIG = "bench/scenarios/servers/sessions.toml"

#: A generator process: bench/loadgen's worker, from the tree in the working directory;
#: its configuration arrives as JSON over the inherited pipe.
_GENERATOR = (
    "import sys, msgspec\n"
    "from multiprocessing.connection import Connection\n"
    "from bench.loadgen.worker import WorkerConfig, worker_main\n"
    "pipe = Connection(int(sys.argv[1]))\n"
    "worker_main(msgspec.json.decode(pipe.recv_bytes(), type=WorkerConfig), pipe)\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tree: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env.update(extra)
    return env


def _cpu(p: psutil.Process) -> tuple[float, float]:
    """CPU seconds of `p` by two clocks: (user + system time, run time).

    User + system time (what `top` and the load runs' sampler show) moves in 10 ms clock
    ticks, too coarse for the quiet window; the scheduler's run time of every thread
    (/proc/<pid>/task/*/schedstat) counts nanoseconds. Both are reported.
    """
    t = p.cpu_times()
    ticks = float(t.user + t.system)
    total = 0
    try:
        for tid in os.listdir(f"/proc/{p.pid}/task"):
            with open(f"/proc/{p.pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return ticks, ticks
    return ticks, total / 1e9


class Server:
    """One `croupier run` of `tree`, WebSocket only, on a free port (`env` may turn the
    other listeners on, or change any other setting)."""

    def __init__(
        self, tree: Path, config: str = SERVER_CONFIG, store: str = "", env: dict[str, str] | None = None
    ) -> None:
        self.port = _free_port()
        self.admin_port = _free_port()
        settings = {
            "CROUPIER_SERVER_WS_PORT": str(self.port),
            "CROUPIER_SERVER_TCP_PORT": "-1",
            "CROUPIER_SERVER_SFS_TCP_PORT": "-1",
            "CROUPIER_SERVER_ADMIN_PORT": str(self.admin_port),
            "CROUPIER_SERVER_TRANSPORT": "picows",
            "CROUPIER_LIMITS_IDLE_TIMEOUT": "600",
            **({"CROUPIER_STORE_URL": store} if store else {}),
            **(env or {}),
        }
        env = _env(tree, **settings)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gameserver", "run", "--config", config, "--log-level", "WARNING"],
            cwd=tree,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        for line in self.proc.stdout:
            if "ws://" in line or time.monotonic() > deadline:
                break
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> tuple[float, float]:
        return _cpu(self.ps)

    def gc_pauses(self) -> dict[str, float]:
        """The server's collector pauses over the whole run, from its /metrics (NaN where a
        tree does not export them): the longest full collection, the count of full
        collections, and the time paused in all generations."""
        out = {"server_gc_full_max_ms": math.nan, "server_gc_full": math.nan, "server_gc_total_ms": math.nan}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10) as r:
                text = r.read().decode()
        except OSError:
            return out
        total, seen = 0.0, False
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name == 'croupier_gc_pause_max_seconds{generation="2"}':
                out["server_gc_full_max_ms"] = float(value) * 1e3
            elif name == 'croupier_gc_pause_seconds_count{generation="2"}':
                out["server_gc_full"] = float(value)
            elif name.startswith("croupier_gc_pause_seconds_sum{"):
                total, seen = total + float(value), True
        if seen:
            out["server_gc_total_ms"] = total * 1e3
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Generator:
    """One load-generator process of `tree`, driven over a pipe like bench/loadgen's runner."""

    def __init__(self, tree: Path, cfg: dict[str, Any]) -> None:
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _GENERATOR, str(child.fileno())],
            cwd=tree,
            env=_env(tree),
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self.pipe = Connection(parent.detach())
        self.pipe.send_bytes(json.dumps(cfg).encode())
        self.ps = psutil.Process(self.proc.pid)
        self.ready = False
        self.ramped = False
        self.sessions = 0
        self.snap: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None

    def cpu(self) -> tuple[float, float]:
        return _cpu(self.ps)

    def on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("kind")
        if kind == "ready":
            self.ready = True
        elif kind == "ramped":
            self.ramped = True
            self.sessions = int(msg.get("sessions", 0))
        elif kind == "snap":
            self.snap = msg
        elif kind == "final":
            self.snap = self.final = msg

    def stop(self) -> None:
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.pipe.close()


def _step(snap: dict[str, Any] | None, label: str, key: str) -> int:
    if snap is None:
        return 0
    return int(snap.get("steps", {}).get(label, {}).get(key, 0))


def _pump(gens: list[Generator], timeout: float) -> None:
    """Read whatever the generators sent within `timeout` seconds."""
    by_pipe = {g.pipe: g for g in gens if not g.pipe.closed}
    for pipe in wait(list(by_pipe), timeout):
        g = by_pipe[pipe]  # type: ignore[index]
        with contextlib.suppress(EOFError, OSError):
            while g.pipe.poll():
                g.on_message(g.pipe.recv())


def _until(gens: list[Generator], cond: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        _pump(gens, 0.05)


def _sleep_pumping(gens: list[Generator], seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        _pump(gens, min(left, 0.05))


def _next_snap(gens: list[Generator]) -> None:
    """Wait for the next report of the first generator (window edges line up with reports)."""
    first = gens[0]
    before = first.snap
    _until(gens, lambda: first.snap is not before, 5.0, "a generator report")


def _scenario(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "heartbeat",
        "description": "login, idle, then ping periodically (bench/heartbeat.py)",
        "codec": "msgpack",
        "zone": "demo",
        "connections": args.connections,
        "duration": 60.0,
        "ramp": {"rate": 0.0, "concurrency": args.concurrency, "settle": 0.0},
        "reconnect": {"enabled": False},
        "profiles": [
            {
                "name": "heartbeat",
                "steps": [
                    {"op": "login", "timeout": 30.0},
                    {"op": "idle", "seconds": args.guard},
                    {"op": "ping", "every": args.every, "jitter": 0.1, "timeout": 30.0},
                ],
            }
        ],
    }


def one_run(tree: Path, args: argparse.Namespace, env: dict[str, str] | None = None) -> dict[str, float]:
    """One server (with `env` added to its environment) + generators from `tree`: the three
    windows' figures."""
    server = Server(tree, args.config, args.store, env)
    gens: list[Generator] = []
    try:
        n = args.generators
        scenario = _scenario(args)
        lifetime = args.guard + args.every + args.seconds + 60.0
        for i in range(n):
            cfg = {
                "index": i,
                "scenario": scenario,
                "first": i,
                "stride": n,
                "count": len(range(i, args.connections, n)),
                "targets": [["127.0.0.1", server.port, "/ws"]],
                "source_ip": f"127.0.0.{2 + i}",
                "ramp_rate": 0.0,
                "lifetime": lifetime,
            }
            gens.append(Generator(tree, cfg))
        _until(gens, lambda: all(g.ready for g in gens), 30.0, "the generators to start")
        time.sleep(0.5)

        def cpus() -> tuple[float, float, float, float]:
            """(server, generators) by user + system time, then the same by run time."""
            sv = server.cpu()
            gv = [g.cpu() for g in gens]
            return sv[0], sum(x[0] for x in gv), sv[1], sum(x[1] for x in gv)

        # 1. login
        l0 = cpus()
        t0 = time.monotonic()
        for g in gens:
            g.pipe.send({"cmd": "start", "t0": t0})
        _until(gens, lambda: all(g.ramped for g in gens), args.guard, "the logins")
        l1 = cpus()
        ramp_s = time.monotonic() - t0
        logins = sum(g.sessions for g in gens)
        if logins < args.connections:
            raise RuntimeError(f"only {logins} of {args.connections} sessions logged in")
        if ramp_s + 4.0 > args.guard:
            raise RuntimeError(f"the logins took {ramp_s:.1f} s: raise --guard above {ramp_s + 4:.0f} s")
        for g in gens:
            g.pipe.send({"cmd": "hold"})  # what the runner does after the ramp (gc.freeze)
        # 2. held, nothing sent (until the first ping, `guard` s after the first login)
        _sleep_pumping(gens, 1.0)
        _next_snap(gens)
        h0 = cpus()
        th0 = time.monotonic()
        held_s = max(1.0, t0 + args.guard - th0 - 1.0)
        _sleep_pumping(gens, held_s)
        h1 = cpus()
        held_s = time.monotonic() - th0
        _next_snap(gens)
        if sum(_step(g.snap, "ping", "sent") for g in gens):
            raise RuntimeError("pings were sent in the held window: raise --guard")
        # 3. ping: every session is past its idle step and its first ping's phase
        _sleep_pumping(gens, max(0.0, t0 + ramp_s + args.guard + args.every + 1.0 - time.monotonic()))
        _next_snap(gens)
        p0, c0 = cpus(), sum(_step(g.snap, "ping", "ok") for g in gens)
        tp0 = time.monotonic()
        _sleep_pumping(gens, args.seconds - 0.5)
        _next_snap(gens)
        p1, c1 = cpus(), sum(_step(g.snap, "ping", "ok") for g in gens)
        ping_s = time.monotonic() - tp0
        pings = c1 - c0
        errors = sum(_step(g.snap, "ping", k) for g in gens for k in ("errors", "timeouts", "lost")) + sum(
            _step(g.snap, "login", k) for g in gens for k in ("errors", "timeouts")
        )
        for g in gens:
            g.pipe.send({"cmd": "stop"})
        _until(gens, lambda: all(g.final is not None for g in gens), 30.0, "the generators' final reports")
        gc_pauses = server.gc_pauses()
    finally:
        for g in gens:
            g.stop()
        server.stop()
    k = args.connections / 1000
    out: dict[str, float] = {"logins": logins, "logins_per_s": logins / ramp_s, "pings_per_s": pings / ping_s}
    for clock, (si, gi) in (("", (0, 1)), ("_run", (2, 3))):  # user + system time; run time
        held_server = (h1[si] - h0[si]) / held_s  # CPU-s per s
        held_gen = (h1[gi] - h0[gi]) / held_s
        ping_server, ping_gen = p1[si] - p0[si], p1[gi] - p0[gi]
        out |= {
            f"server_us_per_login{clock}": (l1[si] - l0[si]) / logins * 1e6,
            f"gen_us_per_login{clock}": (l1[gi] - l0[gi]) / logins * 1e6,
            f"server_ms_per_1k_held_per_s{clock}": held_server / k * 1e3,
            f"gen_ms_per_1k_held_per_s{clock}": held_gen / k * 1e3,
            f"server_us_per_ping{clock}": ping_server / pings * 1e6,
            f"gen_us_per_ping{clock}": ping_gen / pings * 1e6,
            f"server_us_per_ping_net{clock}": (ping_server - held_server * ping_s) / pings * 1e6,
            f"gen_us_per_ping_net{clock}": (ping_gen - held_gen * ping_s) / pings * 1e6,
            f"server_cores_ping{clock}": ping_server / ping_s,
            f"gen_cores_ping{clock}": ping_gen / ping_s,
        }
    out |= gc_pauses
    out["errors"] = errors
    return out


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=6000, help="sessions (at most 20,000)")
    p.add_argument("--generators", type=int, default=1, help="load-generator processes")
    p.add_argument("--every", type=float, default=1.0, help="ping period of each session, s")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the ping window, s")
    p.add_argument("--guard", type=float, default=16.0, help="idle seconds between login and pinging")
    p.add_argument("--concurrency", type=int, default=100, help="logins in flight per generator")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument(
        "--config",
        default=SERVER_CONFIG,
        help="the server's config, relative to the tree (default: sessions only, no casino)",
    )
    p.add_argument("--store", default="", help="the server's store URL (default: the config's)")
    p.add_argument("--tree", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    p.add_argument("--compare", type=Path, default=None, help="another checkout, run interleaved (B/A)")
    p.add_argument(
        "--compare-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="B's server gets this environment variable too (e.g. CROUPIER_SERVER_GC_FREEZE=false"
        " with --compare . to measure one setting); repeatable",
    )
    p.add_argument("--json", type=Path, default=None, help="write every round's figures here")
    args = p.parse_args()
    if not 1 <= args.connections <= 20_000:
        p.error("--connections: 1..20,000 (loopback, one server process)")
    if args.connections / args.generators > 18_000:
        p.error("at most 18,000 sessions per generator process")
    trees = [args.tree.resolve()] + ([args.compare.resolve()] if args.compare else [])
    names = ["A", "B"][: len(trees)]
    if args.compare_env and not args.compare:
        p.error("--compare-env needs --compare")
    if any("=" not in kv for kv in args.compare_env):
        p.error("--compare-env: KEY=VALUE")
    envs = {"A": {}, "B": dict(kv.split("=", 1) for kv in args.compare_env)}
    rows: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    load0 = os.getloadavg()[0]
    for r in range(args.rounds):
        for name, tree in zip(names, trees, strict=True):
            row = one_run(tree, args, envs[name])
            rows[name].append(row)
            print(
                f"round {r + 1} {name} ({tree}): " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()),
                flush=True,
            )
    print(
        f"\n{args.connections} sessions, {args.generators} generator(s), ping every {args.every} s; "
        f"medians of {args.rounds} round(s); load average {load0:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    for name, tree in zip(names, trees, strict=True):
        extra = " ".join(f"{k}={v}" for k, v in envs[name].items())
        print(f"  {name}: {tree}" + (f" with {extra}" if extra else ""))
    keys = list(rows["A"][0])
    if len(names) == 1:
        print("| metric | value |\n|---|---:|")
        for k in keys:
            print(f"| {k} | {_fmt(statistics.median(x[k] for x in rows['A']))} |")
    else:
        print("| metric | A | B | B / A |\n|---|---:|---:|---:|")
        for k in keys:
            a = statistics.median(x[k] for x in rows["A"])
            b = statistics.median(x[k] for x in rows["B"])
            ratios = [y[k] / x[k] for x, y in zip(rows["A"], rows["B"], strict=True) if x[k]]
            ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
            print(f"| {k} | {_fmt(a)} | {_fmt(b)} | {ratio} |")
    if args.json is not None:
        args.json.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
